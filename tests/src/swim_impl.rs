//! swim-core behind the simulator's [`Protocol`] trait.

use std::net::SocketAddr;

use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use swim_core::{Config, Event, Instant, Keyring, Lifeguard, Node, SmolStr, Status};

use crate::protocol::{
    Change, METADATA_KEY, Protocol, Report, Timing, addr, index_of_name, initial_metadata,
};

/// A swim-core [`Node`] named by its address (`"10.0.3.7:7946"`), as the Python
/// swim-protocol package names its members.
pub struct Swim {
    node: Node<ChaCha8Rng>,
    index: u32,
    /// The node's count of its own accusations (`Counters::suspicions`) already matched to
    /// a `MemberSuspect` event: a suspect event is firsthand while the count is ahead.
    accusations_reported: u64,
    /// A member that joined as suspect: its suspicion, reported after the join.
    joined_suspect: Option<SmolStr>,
}

impl Swim {
    /// The swim-core configuration a simulated node uses.
    pub fn config(index: u32, timing: &Timing) -> Config {
        let a = addr(index);
        let mut config = Config::new(a.to_string(), a, Keyring::new("simulated cluster secret"));
        config.ping_interval = timing.ping_interval;
        config.ping_timeout = timing.ping_timeout;
        config.ping_req_timeout = timing.ping_req_timeout;
        config.ping_req_count = timing.ping_req_count;
        config.suspect_timeout = timing.suspect_timeout;
        config.sync_interval = timing.sync_interval;
        config.gossip_interval = timing.gossip_interval;
        config.gossip_fanout = timing.gossip_fanout;
        config.retransmit_mult = timing.retransmit_mult;
        config.reap_timeout = timing.reap_timeout;
        config.rejoin_interval = timing.rejoin_interval;
        if !timing.lifeguard {
            config.lifeguard = Lifeguard::OFF;
        }
        config.streams = timing.streams;
        config.push_pull_interval = timing.push_pull_interval;
        if timing.metadata_bytes > 0 {
            let value = initial_metadata(index, timing.metadata_bytes);
            config.local_metadata = [(METADATA_KEY, value)].into_iter().collect();
        }
        config
    }

    /// The wrapped node.
    pub fn node(&self) -> &Node<ChaCha8Rng> {
        &self.node
    }

    /// Before each input: accusations not matched to an event by now never will be (the
    /// node reports events right after the input that caused them).
    fn sync_accusations(&mut self) {
        self.accusations_reported = self.node.counters().suspicions;
    }

    /// Whether the suspect event being reported is one of this node's own accusations: its
    /// own count of accusations rose during the input (a probe that failed makes exactly
    /// one accusation and one event; suspicions heard from others count none).
    fn take_accusation(&mut self) -> bool {
        let own = self.node.counters().suspicions > self.accusations_reported;
        if own {
            self.accusations_reported += 1;
        }
        own
    }

    fn report(&self, change: Change, name: &str) -> Report {
        let subject = index_of_name(name).filter(|&s| s != self.index);
        // The event says what the status became, without a lookup (a member that joins as
        // suspect is reported joined, then suspect, so the last word is right).
        let online = match change {
            Change::Joined | Change::Alive => Some(true),
            Change::Suspect | Change::Offline | Change::Left | Change::Reaped => Some(false),
            _ => None,
        };
        Report::new(change, subject, online)
    }
}

impl Protocol for Swim {
    const NAME: &'static str = "swim";

    fn new(
        index: u32,
        _life: u32,
        _cluster_size: usize,
        timing: &Timing,
        seed: u64,
        now: Instant,
    ) -> Self {
        let mut config = Self::config(index, timing);
        // Replay protection on, as the drivers run it: the epoch is the process's start in
        // (virtual) milliseconds, so it grows across restarts.
        config.epoch_ms = 1_600_000_000_000 + now.as_micros() / 1000;
        let node = Node::new(config, ChaCha8Rng::seed_from_u64(seed), now)
            .expect("the simulator's configuration is valid");
        Swim { node, index, accusations_reported: 0, joined_suspect: None }
    }

    fn join(&mut self, now: Instant, seed: SocketAddr) {
        self.sync_accusations();
        self.node.join(now, [seed]);
    }

    fn leave(&mut self, now: Instant) {
        self.sync_accusations();
        self.node.leave(now);
    }

    fn set_metadata(&mut self, now: Instant, key: &str, value: &[u8]) -> bool {
        self.sync_accusations();
        self.node.set_metadata(now, key, value.to_vec()).is_ok()
    }

    fn handle_datagram(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        self.sync_accusations();
        self.node.handle_datagram(now, from, bytes);
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.sync_accusations();
        self.node.handle_timeout(now);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.node.poll_timeout()
    }

    fn drain_transmits(&mut self, mut send: impl FnMut(SocketAddr, &[u8])) {
        while let Some(t) = self.node.poll_transmit() {
            send(t.destination, t.payload);
        }
    }

    fn handle_stream(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        self.sync_accusations();
        self.node.handle_stream(now, from, bytes);
    }

    fn drain_streams(&mut self, mut send: impl FnMut(SocketAddr, Vec<u8>)) {
        while let Some(message) = self.node.poll_stream() {
            send(message.destination, message.payload);
        }
    }

    fn poll_report(&mut self) -> Option<Report> {
        if let Some(name) = self.joined_suspect.take() {
            let mut report = self.report(Change::Suspect, &name);
            report.firsthand = self.take_accusation();
            return Some(report);
        }
        loop {
            let event = self.node.poll_event()?;
            let (change, name) = match &event {
                Event::MemberJoined { name, status: Status::Suspect, .. } => {
                    self.joined_suspect = Some(name.clone());
                    (Change::Joined, name)
                }
                // A forgotten member taken back as offline: no one's view of who is online
                // changes until it refutes.
                Event::MemberJoined { status: Status::Offline | Status::Left, .. } => continue,
                Event::MemberJoined { name, .. } => (Change::Joined, name),
                Event::MemberSuspect { name, .. } => (Change::Suspect, name),
                Event::MemberOffline { name, .. } => (Change::Offline, name),
                Event::MemberLeft { name, .. } => (Change::Left, name),
                Event::MemberAlive { name, .. } => (Change::Alive, name),
                Event::MetadataChanged { name, .. } => (Change::Metadata, name),
                Event::MemberReaped { name, .. } => (Change::Reaped, name),
                Event::Joined => return Some(Report::new(Change::JoinedCluster, None, None)),
                Event::Refuted { .. } => return Some(Report::new(Change::Refuted, None, None)),
                _ => continue,
            };
            let mut report = self.report(change, name);
            report.firsthand = change == Change::Suspect && self.take_accusation();
            return Some(report);
        }
    }

    fn sees_online(&self, subject: u32) -> bool {
        self.node.member(&addr(subject).to_string()).is_some_and(|m| m.status() == Status::Online)
    }

    fn sees_available(&self, subject: u32) -> bool {
        self.node.member(&addr(subject).to_string()).is_some_and(|m| m.status().is_available())
    }

    fn sees_all_available(&self, me: u32, nodes: u32) -> bool {
        // One pass over the table instead of a lookup by name per subject: the end of a
        // `loss` run asks this of every node about every other.
        let others = (0..nodes).filter(|&s| s != me).count();
        let available = self
            .node
            .members()
            .filter(|m| m.status().is_available())
            .filter_map(|m| index_of_name(m.name()))
            .filter(|&s| s < nodes && s != me)
            .count();
        available == others
    }

    fn knows(&self, subject: u32) -> bool {
        self.node.member(&addr(subject).to_string()).is_some()
    }

    fn entries(&self) -> usize {
        self.node.members().count()
    }

    fn has_metadata(&self, subject: u32, key: &str, value: &[u8]) -> bool {
        self.node
            .member(&addr(subject).to_string())
            .and_then(|m| m.metadata())
            .and_then(|m| m.get(key))
            .is_some_and(|v| v.as_ref() == value)
    }
}
