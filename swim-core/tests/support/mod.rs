//! A few nodes on a virtual network in virtual time, like quinn-proto's `Pair`: tests read as
//! stories (start, act, run, assert the events and datagrams).

#![allow(dead_code, unreachable_pub)]

use std::collections::{BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use swim_core::wire::{Body, Flags, Header, Packet, PacketWriter, Record, Sender, Version};
use swim_core::{Config, Event, Instant, Keyring, Node, Status, TAG_LEN};

/// The tests' shared secret.
pub const SECRET: &str = "test secret";

/// A packet (header and payload) sealed as a holder of the tests' key would seal it for the
/// member named `receiver` (empty: for an address).
pub fn seal(receiver: &str, packet: Vec<u8>) -> Vec<u8> {
    Keyring::new(SECRET).seal_packet(packet, "", receiver)
}

/// A sequenced nonce a live member could use at `now`, high in its millisecond so that it
/// is new to every receiver.
pub fn nonce(now: Instant, count: u64) -> u64 {
    let wall_ms = EPOCH_MS + now.as_micros() / 1000;
    swim_core::SEQUENCED | ((wall_ms << 20) + (1 << 19) + count)
}

/// A packet as a holder of the tests' key could forge it: any header flags, sender, nonce
/// and records, at most `limit` bytes, for the member named `receiver`.
pub fn forge_with(
    receiver: &str,
    flags: u8,
    limit: usize,
    sender: Sender<'_>,
    nonce: u64,
    body: &Body<'_>,
    records: &[Record<'_>],
) -> Vec<u8> {
    let header = Header::new(Version::V2, Flags(flags), nonce);
    let mut writer = PacketWriter::new(Vec::new(), limit, &header, &sender, body).unwrap();
    for record in records {
        assert!(writer.push(record), "the records fit one packet");
    }
    seal(receiver, writer.finish())
}

/// A datagram as a holder of the tests' key could forge it: any sender, nonce and records,
/// for the member named `receiver`.
pub fn forge(
    receiver: &str,
    sender: Sender<'_>,
    nonce: u64,
    body: &Body<'_>,
    records: &[Record<'_>],
) -> Vec<u8> {
    forge_with(receiver, 0, 1452, sender, nonce, body, records)
}

/// A stream message as a holder of the tests' key could forge it, for the member named
/// `receiver` (empty: for an address).
pub fn forge_stream(
    receiver: &str,
    sender: Sender<'_>,
    nonce: u64,
    body: &Body<'_>,
    records: &[Record<'_>],
) -> Vec<u8> {
    forge_with(receiver, Flags::STREAM, 1 << 20, sender, nonce, body, records)
}

/// A record of `name` at `addr`: `status` at `incarnation`, no metadata, no accuser.
pub fn record<'a>(name: &'a str, addr: SocketAddr, incarnation: u64, status: Status) -> Record<'a> {
    Record {
        name,
        addr,
        incarnation,
        status,
        meta_version: 0,
        metadata: None,
        accuser: None,
        meta_hash: None,
        streams: false,
    }
}

/// One-way delay of every link.
pub const LATENCY: Duration = Duration::from_millis(1);

/// One-way delay of a stream message (a connection's handshake and the message).
pub const STREAM_LATENCY: Duration = Duration::from_millis(3);

/// A datagram seen on the virtual network.
#[derive(Clone, Debug)]
pub struct Sent {
    pub at: Instant,
    pub from: usize,
    pub to: SocketAddr,
    pub bytes: Vec<u8>,
}

impl Sent {
    /// The decoded packet (tests share one key, so only the tag is stripped).
    pub fn packet(&self) -> Packet<'_> {
        Packet::decode(&self.bytes[..self.bytes.len() - TAG_LEN]).expect("nodes send valid packets")
    }

    /// The message type's name, e.g. "Ping".
    pub fn kind(&self) -> String {
        let body = format!("{:?}", self.packet().body);
        body.split([' ', '{']).next().unwrap_or_default().to_string()
    }
}

pub struct Cluster {
    pub now: Instant,
    pub nodes: Vec<Node<ChaCha8Rng>>,
    pub addrs: Vec<SocketAddr>,
    /// Events each node reported, in order.
    pub events: Vec<Vec<(Instant, Event)>>,
    /// Every datagram any node sent.
    pub log: Vec<Sent>,
    /// Every stream message any node sent.
    pub stream_log: Vec<Sent>,
    in_flight: VecDeque<(Instant, usize, SocketAddr, Vec<u8>)>,
    streams_in_flight: VecDeque<(Instant, usize, SocketAddr, Vec<u8>)>,
    /// Crashed nodes: they neither send nor receive.
    pub down: BTreeSet<usize>,
    /// Directed links that drop every datagram: (from, to). Streams are cut by
    /// `stream_cut`.
    pub cut: BTreeSet<(usize, usize)>,
    /// Directed links that break every stream: (from, to).
    pub stream_cut: BTreeSet<(usize, usize)>,
    /// Probability that any datagram is lost.
    pub loss: f64,
    loss_rng: ChaCha8Rng,
    seed: u64,
    /// Steps in a row that did not move the clock.
    stalled: u32,
}

/// A uniform float in `[0, 1)` from any RNG.
trait RandomUnit {
    fn random_unit(&mut self) -> f64;
}

impl<R: rand_core::Rng> RandomUnit for R {
    fn random_unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

pub fn addr(i: usize) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7000 + i as u16))
}

pub fn name(i: usize) -> String {
    addr(i).to_string()
}

/// The wall clock of the tests at virtual time zero, in milliseconds since the Unix epoch.
pub const EPOCH_MS: u64 = 1_700_000_000_000;

/// Node `i`'s configuration for a process started at virtual time zero, with replay
/// protection on (as the drivers run it).
pub fn config(i: usize) -> Config {
    config_at(i, Instant::ZERO)
}

/// Node `i`'s configuration for a process started at `now`.
pub fn config_at(i: usize, now: Instant) -> Config {
    let mut config = Config::new(name(i), addr(i), Keyring::new(SECRET));
    config.epoch_ms = EPOCH_MS + now.as_micros() / 1000;
    config
}

/// A lone node `i` started at virtual time zero, not joined to anyone.
pub fn node(i: usize) -> Node<ChaCha8Rng> {
    Node::new(config(i), ChaCha8Rng::seed_from_u64(i as u64), Instant::ZERO).unwrap()
}

impl Cluster {
    /// `n` nodes with default configs; none has joined anyone.
    pub fn new(n: usize, seed: u64) -> Self {
        Self::with_configs((0..n).map(config).collect(), seed)
    }

    pub fn with_configs(configs: Vec<Config>, seed: u64) -> Self {
        let n = configs.len();
        let addrs = configs.iter().map(|c| c.local_addr).collect();
        let nodes = configs
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                Node::new(
                    c,
                    ChaCha8Rng::seed_from_u64(seed.wrapping_mul(1000).wrapping_add(i as u64)),
                    Instant::ZERO,
                )
                .unwrap()
            })
            .collect();
        Cluster {
            now: Instant::ZERO,
            nodes,
            addrs,
            events: vec![Vec::new(); n],
            log: Vec::new(),
            stream_log: Vec::new(),
            in_flight: VecDeque::new(),
            streams_in_flight: VecDeque::new(),
            down: BTreeSet::new(),
            cut: BTreeSet::new(),
            stream_cut: BTreeSet::new(),
            loss: 0.0,
            loss_rng: ChaCha8Rng::seed_from_u64(seed ^ 0x5eed),
            seed,
            stalled: 0,
        }
    }

    /// `n` nodes where every node joins through node 0, run until all see all online.
    pub fn joined(n: usize, seed: u64) -> Self {
        let mut cluster = Cluster::new(n, seed);
        for i in 1..n {
            let seed = cluster.addrs[0];
            cluster.nodes[i].join(Instant::ZERO, [seed]);
        }
        assert!(
            cluster.run_until(Duration::from_secs(30), |c| c.all_see_all_online()),
            "cluster did not converge"
        );
        cluster.clear_history();
        cluster
    }

    pub fn clear_history(&mut self) {
        self.log.clear();
        self.stream_log.clear();
        for events in &mut self.events {
            events.clear();
        }
    }

    /// Replaces node `i` by a fresh process with `config` (a restart); its wall clock is set
    /// from the start of the new process, as the drivers do.
    pub fn restart(&mut self, i: usize, mut config: Config) {
        config.epoch_ms = EPOCH_MS + self.now.as_micros() / 1000;
        self.seed = self.seed.wrapping_add(1);
        let rng = ChaCha8Rng::seed_from_u64(self.seed.wrapping_mul(7919).wrapping_add(i as u64));
        self.nodes[i] = Node::new(config, rng, self.now).unwrap();
        self.down.remove(&i);
    }

    /// Adds a node with `config`, started now (its wall clock set from now, as the drivers
    /// do) and not joined to anyone.
    pub fn add(&mut self, mut config: Config) -> usize {
        config.epoch_ms = EPOCH_MS + self.now.as_micros() / 1000;
        self.seed = self.seed.wrapping_add(1);
        let i = self.nodes.len();
        let rng = ChaCha8Rng::seed_from_u64(self.seed.wrapping_mul(7919).wrapping_add(i as u64));
        self.addrs.push(config.local_addr);
        self.nodes.push(Node::new(config, rng, self.now).unwrap());
        self.events.push(Vec::new());
        i
    }

    fn index_of(&self, addr: SocketAddr) -> Option<usize> {
        self.addrs.iter().position(|a| *a == addr)
    }

    /// Drains every node's outputs into the network and the event logs.
    fn collect(&mut self) {
        for i in 0..self.nodes.len() {
            while let Some(t) = self.nodes[i].poll_transmit() {
                let (to, bytes) = (t.destination, t.payload.to_vec());
                self.log.push(Sent { at: self.now, from: i, to, bytes: bytes.clone() });
                self.in_flight.push_back((self.now + LATENCY, i, to, bytes));
            }
            while let Some(m) = self.nodes[i].poll_stream() {
                let sent = Sent { at: self.now, from: i, to: m.destination, bytes: m.payload };
                self.stream_log.push(sent.clone());
                let at = self.now + STREAM_LATENCY;
                self.streams_in_flight.push_back((at, i, sent.to, sent.bytes));
            }
            while let Some(event) = self.nodes[i].poll_event() {
                self.events[i].push((self.now, event));
            }
        }
    }

    /// Advances to the next delivery or deadline and handles it; false if there was none
    /// (every node is down or has no deadline, and nothing is in flight).
    pub fn step(&mut self) -> bool {
        self.collect();
        let next_delivery = [&self.in_flight, &self.streams_in_flight]
            .into_iter()
            .filter_map(|queue| queue.front().map(|(at, ..)| *at))
            .min();
        let next_timeout = (0..self.nodes.len())
            .filter(|i| !self.down.contains(i))
            .filter_map(|i| self.nodes[i].poll_timeout())
            .min();
        let next = match (next_delivery, next_timeout) {
            (Some(d), Some(t)) => d.min(t),
            (Some(d), None) => d,
            (None, Some(t)) => t,
            (None, None) => return false,
        };
        if next <= self.now {
            // A deadline at or before now that handling does not move would spin forever:
            // a core bug, reported instead of hanging the test.
            self.stalled += 1;
            assert!(
                self.stalled < 100_000,
                "no progress at {:?}: a deadline is never cleared",
                self.now
            );
        } else {
            self.stalled = 0;
        }
        self.now = self.now.max(next);
        while self.in_flight.front().is_some_and(|(at, ..)| *at <= self.now) {
            let (_, from, to, bytes) = self.in_flight.pop_front().unwrap();
            let Some(to_index) = self.index_of(to) else {
                continue;
            };
            if self.down.contains(&from)
                || self.down.contains(&to_index)
                || self.cut.contains(&(from, to_index))
                || (self.loss > 0.0 && self.loss_rng.random_unit() < self.loss)
            {
                continue;
            }
            self.nodes[to_index].handle_datagram(self.now, self.addrs[from], &bytes);
        }
        while self.streams_in_flight.front().is_some_and(|(at, ..)| *at <= self.now) {
            let (_, from, to, bytes) = self.streams_in_flight.pop_front().unwrap();
            let Some(to_index) = self.index_of(to) else { continue };
            if self.down.contains(&from)
                || self.down.contains(&to_index)
                || self.stream_cut.contains(&(from, to_index))
            {
                continue;
            }
            self.nodes[to_index].handle_stream(self.now, self.addrs[from], &bytes);
        }
        for i in 0..self.nodes.len() {
            if !self.down.contains(&i)
                && self.nodes[i].poll_timeout().is_some_and(|t| t <= self.now)
            {
                self.nodes[i].handle_timeout(self.now);
            }
        }
        self.collect();
        true
    }

    pub fn run_for(&mut self, duration: Duration) {
        let end = self.now + duration;
        while self.now < end {
            if !self.step() {
                self.now = end; // Nothing left to happen.
            }
        }
    }

    /// Runs until `done` holds (true) or `limit` passes (false).
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Cluster) -> bool) -> bool {
        let end = self.now + limit;
        while self.now < end {
            if done(self) {
                return true;
            }
            if !self.step() {
                self.now = end;
            }
        }
        done(self)
    }

    /// The status node `viewer` holds about node `subject`.
    pub fn status(&self, viewer: usize, subject: usize) -> Option<Status> {
        self.nodes[viewer].member(&name(subject)).map(|m| m.status())
    }

    pub fn all_see_all_online(&self) -> bool {
        let up: Vec<usize> = (0..self.nodes.len()).filter(|i| !self.down.contains(i)).collect();
        up.iter().all(|&v| up.iter().all(|&s| self.status(v, s) == Some(Status::Online)))
    }

    /// Events of node `i` matching `pred`.
    pub fn events_of(&self, i: usize, pred: impl Fn(&Event) -> bool) -> Vec<Event> {
        self.events[i].iter().filter(|(_, e)| pred(e)).map(|(_, e)| e.clone()).collect()
    }

    /// Datagrams sent by `from` of the given kind.
    pub fn sent(&self, from: usize, kind: &str) -> Vec<Sent> {
        self.log.iter().filter(|s| s.from == from && s.kind() == kind).cloned().collect()
    }
}
