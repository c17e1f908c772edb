//! The state machine: a [`Node`] drives its parts (the member table, the prober, the gossip
//! queue, anti-entropy, the timers) and alone builds and sends datagrams.
//!
//! Methods come in four kinds, as in quinn-proto: `handle_*` (input), commands, `poll_*`
//! (output) and queries, all in this file. The rest of the node's own work is split by what
//! sets it off:
//!
//! - `receive`: a datagram, from the socket to the answer it gets;
//! - `facts`: applying what a node hears (precedence, refutation, suspicion, reaping);
//! - `probing`: the probe cycle and ping-reqs, driving the prober;
//! - `anti_entropy`: the exchange steps, driving the anti-entropy part;
//! - `rounds`: the periodic rounds (gossip, rejoin);
//! - `send`: the one path that builds, seals and queues a datagram (or stream message);
//! - `streams`: a stream message, from the driver to the answer it gets, and the stream
//!   ping; `fetch`: metadata too large for a datagram; `push_pull`: full-state exchanges.

mod anti_entropy;
mod facts;
mod fetch;
mod probing;
mod push_pull;
mod receive;
mod rounds;
mod send;
mod streams;

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use core::net::SocketAddr;
use core::time::Duration;

use bytes::Bytes;
use rand_core::Rng;

use crate::auth::Keyring;
use crate::config::{Config, ConfigError};
use crate::counters::Counters;
use crate::event::Event;
use crate::exchange::Peer;
use crate::gossip::GossipQueue;
use crate::members::{Member, MemberId, Members, State, is_member_addr};
use crate::metadata::{MAX_KEY_LEN, Metadata};
use crate::outbox::{Outbox, Transmit};
use crate::probe::Prober;
use crate::random::{random_below, unit};
use crate::replay::{Nonces, WallClock};
use crate::status::{Status, StatusFilter};
use crate::streams::{StreamMessage, Streams};
use crate::sync::AntiEntropy;
use crate::time::{Clock, Instant};
use crate::timers::{Timer, Timers};
use crate::wire::Record;

/// Why local metadata was refused. The metadata is unchanged.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataError {
    /// With this change, this member's record would not fit in one datagram (and this
    /// node has no `streams` to carry it otherwise).
    #[error("metadata would take {size} bytes in a datagram of at most {limit}")]
    TooLarge {
        /// The signed datagram size the record alone would need.
        size: usize,
        /// The largest datagram allowed by `mtu_size`.
        limit: usize,
    },
    /// The encoded map would exceed `max_metadata_size`.
    #[error("metadata of {size} bytes exceeds max_metadata_size ({limit})")]
    ExceedsLimit {
        /// Bytes of the encoded map with this change.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// A key longer than 255 bytes.
    #[error("metadata key of {0} bytes is longer than 255")]
    KeyTooLong(usize),
    /// The metadata version reached its largest value (only forged facts can bring it
    /// there, and none can go beyond the wall clock).
    #[error("the metadata version cannot grow any further")]
    VersionExhausted,
}

/// One member of a SWIM cluster, as a pure state machine.
///
/// Feed it time, datagrams and commands; drain what it wants sent, when it wants to be
/// woken, and what changed. See the [crate documentation](crate) for the drive loop.
#[derive(Debug)]
pub struct Node<R> {
    config: Config,
    rng: R,
    /// The driver's clock, made monotonic.
    clock: Clock,
    /// The wall clock, for nonces and for checking others'.
    wall: WallClock,
    /// The nonces of this node's datagrams.
    nonces: Nonces,
    members: Members,
    gossip: GossipQueue,
    prober: Prober,
    sync: AntiEntropy,
    timers: Timers,
    outbox: Outbox,
    streams: Streams,
    events: VecDeque<Event>,
    counters: Counters,
    /// Addresses to join through (the configured ones and those given to `join`).
    peers: Vec<SocketAddr>,
    /// Heard from another member since `join` (or ever).
    joined: bool,
    left: bool,
    join_backoff: Duration,
    /// Decrypted datagrams are opened here (reused).
    opened: Vec<u8>,
    /// Scratch for sampling members (reused).
    sampling: Vec<MemberId>,
    /// The entries of an anti-entropy answer (reused).
    entries: Vec<MemberId>,
}

impl Node<rand_chacha::ChaCha8Rng> {
    /// A node whose random generator (ChaCha8) is seeded with `seed`, so that a run can be
    /// repeated exactly (tests, simulations) without an RNG crate of your own. Seed
    /// production nodes from the operating system (`Node::start` with `std`, or
    /// [`Node::new`] with any `rand_core` 0.10 generator): the generator decides the probe
    /// order and the random numbers others must not guess.
    pub fn seeded(config: Config, seed: u64, now: Instant) -> Result<Self, ConfigError> {
        use rand_core::SeedableRng;
        Node::new(config, rand_chacha::ChaCha8Rng::seed_from_u64(seed), now)
    }
}

impl<R: Rng> Node<R> {
    /// A node that has not contacted anyone yet; call [`Node::join`] to do so. `rng` is any
    /// `rand_core` 0.10 generator; see also [`Node::seeded`] (and `Node::start` with the
    /// `std` feature, which seeds from the operating system and reads the wall clock).
    pub fn new(config: Config, mut rng: R, now: Instant) -> Result<Self, ConfigError> {
        config.validate()?;
        // Checked here rather than by `validate`: drivers fill the address in after binding.
        if !is_member_addr(config.local_addr) {
            return Err(ConfigError::InvalidAddress { field: "local_addr" });
        }
        let size = self_record_size(&config, &config.local_metadata, 1);
        let limit = config.max_datagram();
        if size > limit && !config.streams {
            return Err(ConfigError::TooLarge { field: "local_metadata", size, limit });
        }
        let name = config.local_name.as_str().into();
        let mut members = Members::new(name, config.local_addr, config.local_metadata.clone(), now);
        if let Some(local) = members.get_mut(Members::LOCAL) {
            local.set_speaks_streams(config.streams);
        }
        let mut gossip = GossipQueue::default();
        gossip.enqueue(Members::LOCAL, true);
        // Random phases keep a cluster started at once from probing, gossiping and syncing in
        // lockstep: with one gossip phase for all, a fact waits a whole gossip interval at
        // every hop instead of half of one on average.
        let mut timers = Timers::default();
        timers.set(Timer::Probe, now + config.ping_interval.mul_f64(unit(&mut rng)));
        timers.set(Timer::Gossip, now + config.gossip_interval.mul_f64(unit(&mut rng)));
        timers.set(Timer::Sync, now + config.sync_interval.mul_f64(unit(&mut rng)));
        timers.set(Timer::Rejoin, now + config.rejoin_interval);
        if let Some(interval) = config.push_pull_interval.filter(|_| config.streams) {
            timers.set(Timer::PushPull, now + interval.mul_f64(unit(&mut rng)));
        }
        let epoch_ms = if config.replay_protection { config.epoch_ms } else { 0 };
        Ok(Node {
            peers: config.peers.clone(),
            join_backoff: config.ping_interval,
            outbox: Outbox::new(config.max_datagram()),
            streams: Streams::default(),
            wall: WallClock::new(epoch_ms, now),
            config,
            rng,
            clock: Clock::new(now),
            nonces: Nonces::default(),
            members,
            gossip,
            prober: Prober::default(),
            sync: AntiEntropy::new(),
            timers,
            events: VecDeque::new(),
            counters: Counters::default(),
            joined: false,
            left: false,
            opened: Vec::new(),
            sampling: Vec::new(),
            entries: Vec::new(),
        })
    }

    // ---------------------------------------------------------------- inputs

    /// Handles a datagram received from `from` (the address it came from, which only
    /// matters for recognising a seed: answers go to the address the sender authenticated).
    /// Anything that fails authentication, decoding or the replay checks is dropped and
    /// counted ([`Counters::dropped`]) before any state changes.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        let now = self.clock.observe(now);
        self.counters.datagrams_in += 1;
        self.counters.bytes_in += datagram.len() as u64;
        // Opened (decrypted) here; its own buffer, as it outlives calls that change the node.
        let mut opened = core::mem::take(&mut self.opened);
        if let Err(reason) = self.receive(now, from, datagram, &mut opened) {
            self.counters.drop(reason);
        }
        self.opened = opened;
    }

    /// Handles a stream message received from `from` (the address of the connection it came
    /// on: an answer larger than a few times the message goes to a member only if its
    /// address has that IP or it showed otherwise that it receives there). The driver has
    /// checked the frame's length against `max_stream_message` before reading it. Like a
    /// datagram, anything that fails authentication, decoding or the replay checks is
    /// dropped and counted before any state changes, and so is every stream message to a
    /// node without [`Config::streams`].
    pub fn handle_stream(&mut self, now: Instant, from: SocketAddr, message: &[u8]) {
        let now = self.clock.observe(now);
        self.counters.streams_in += 1;
        self.counters.stream_bytes_in += message.len() as u64;
        let mut opened = core::mem::take(&mut self.opened);
        if let Err(reason) = self.receive_stream(now, from, message, &mut opened) {
            self.counters.streams_dropped += 1;
            self.counters.drop(reason);
        }
        self.opened = opened;
    }

    /// Runs whatever is due at `now`. Safe to call early or more than once: only expired
    /// deadlines act.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.clock.observe(now);
        if self.timers.due(Timer::Gossip, now) {
            self.gossip_round();
            self.timers.reschedule(Timer::Gossip, now, self.config.gossip_interval);
        }
        if self.left {
            return;
        }
        if self.timers.due(Timer::Probe, now) {
            let interval = self.prober.scaled(self.config.ping_interval);
            self.timers.reschedule(Timer::Probe, now, interval);
            self.start_probe(now);
        }
        self.probe_timeouts(now);
        self.expire_deadlines(now);
        self.members.expire_tombstones(now);
        if let Some(due) = self.sync_deadline().filter(|at| *at <= now) {
            // Rounds skipped as quiet would have sent nothing: start from the first one
            // that may send, so that the phase and the following rounds are unchanged.
            self.timers.set(Timer::Sync, due);
            self.timers.reschedule(Timer::Sync, now, self.config.sync_interval);
            self.sync_round(now);
        }
        if self.timers.due(Timer::Rejoin, now) {
            self.rejoin_round(now);
        }
        if self.timers.due(Timer::PushPull, now) {
            self.push_pull_round(now);
        }
        self.retry_fetches(now);
    }

    /// Tells the node the wall clock: `wall_ms` milliseconds since the Unix epoch at `now`.
    /// The node's wall clock otherwise runs from `Config::epoch_ms` with the monotonic time
    /// it is given, which drifts from the wall clock when the host is suspended or the
    /// clock is corrected. Drivers call this whenever they read their clocks; nonces and the
    /// checks of other members' nonces follow it at once.
    pub fn set_wall_clock(&mut self, now: Instant, wall_ms: u64) {
        let now = self.clock.observe(now);
        if self.config.replay_protection {
            self.wall = WallClock::new(wall_ms, now);
        }
    }

    // -------------------------------------------------------------- commands

    /// Joins the cluster through `peers` (added to the configured ones): sends each an
    /// anti-entropy digest now and, until one answers, retries all peers with backoff. After
    /// [`Node::leave`], rejoins with a higher incarnation. On a node that has already joined,
    /// only new peers are contacted, and not those that are addresses of available members
    /// (drivers call this with every address a re-resolved name yields); readiness is kept.
    pub fn join(&mut self, now: Instant, peers: impl IntoIterator<Item = SocketAddr>) {
        let now = self.clock.observe(now);
        let known = self.peers.len();
        for peer in peers {
            if peer != self.config.local_addr && !self.peers.contains(&peer) {
                self.peers.push(peer);
            }
        }
        if self.left {
            self.left = false;
            self.joined = false;
            let incarnation = self.members.local().incarnation().saturating_add(1);
            let online = State { incarnation, status: Status::Online };
            self.members.set_state(Members::LOCAL, online, now);
            self.timers.set(Timer::Probe, now + self.config.ping_interval);
            self.timers.set(Timer::Sync, now + self.config.sync_interval);
            if let Some(interval) = self.config.push_pull_interval.filter(|_| self.config.streams) {
                self.timers.set(Timer::PushPull, now + interval);
            }
        }
        self.gossip.enqueue(Members::LOCAL, true);
        if self.joined {
            for i in known..self.peers.len() {
                let peer = self.peers[i];
                if !self.members_with(StatusFilter::AVAILABLE).any(|m| m.addr() == peer) {
                    self.send_digest(Peer::Seed(peer));
                }
            }
            return;
        }
        self.join_backoff = self.config.ping_interval;
        self.timers.set(Timer::Rejoin, now);
        self.rejoin_round(now);
    }

    /// Leaves gracefully: announces [`Status::Left`] with a higher incarnation to a few
    /// members at once, then keeps gossiping it. Probing and anti-entropy stop. Once
    /// [`Node::poll_timeout`] returns `None`, the announcement has been sent as often as any
    /// other fact and the node can be dropped.
    pub fn leave(&mut self, now: Instant) {
        let now = self.clock.observe(now);
        if self.left {
            return;
        }
        self.left = true;
        let incarnation = self.members.local().incarnation().saturating_add(1);
        self.members.set_state(Members::LOCAL, State { incarnation, status: Status::Left }, now);
        self.gossip.enqueue(Members::LOCAL, false);
        self.timers.stop_all();
        self.timers.set(Timer::Gossip, now);
        self.prober.clear();
        self.gossip_round();
        self.timers.reschedule(Timer::Gossip, now, self.config.gossip_interval);
    }

    /// Sets a local metadata value; the new version spreads from the next gossip round, which
    /// is brought forward to now.
    pub fn set_metadata(
        &mut self,
        now: Instant,
        key: impl Into<String>,
        value: impl Into<Bytes>,
    ) -> Result<(), MetadataError> {
        let key = key.into();
        if key.len() > MAX_KEY_LEN {
            return Err(MetadataError::KeyTooLong(key.len()));
        }
        let mut metadata = self.local_metadata().clone();
        metadata.insert(key, value);
        self.replace_metadata(now, metadata)
    }

    /// Removes a local metadata value, returning it; `Ok(None)` (and nothing sent) if absent.
    pub fn remove_metadata(
        &mut self,
        now: Instant,
        key: &str,
    ) -> Result<Option<Bytes>, MetadataError> {
        let mut metadata = self.local_metadata().clone();
        let Some(removed) = metadata.remove(key) else { return Ok(None) };
        self.replace_metadata(now, metadata)?;
        Ok(Some(removed))
    }

    /// Replaces the whole local metadata map in one version (the Python package's
    /// `update(new_metadata=...)`): other members see the old map or the new one, nothing in
    /// between. If the new map is refused, the old one stays.
    pub fn replace_metadata(
        &mut self,
        now: Instant,
        metadata: Metadata,
    ) -> Result<(), MetadataError> {
        let now = self.clock.observe(now);
        if let Some(key) = metadata.keys().find(|key| key.len() > MAX_KEY_LEN) {
            return Err(MetadataError::KeyTooLong(key.len()));
        }
        if metadata.encoded_len() > self.config.max_metadata_size {
            let (size, limit) = (metadata.encoded_len(), self.config.max_metadata_size);
            return Err(MetadataError::ExceedsLimit { size, limit });
        }
        let version = self.members.local().meta_version().checked_add(1);
        let version = version.ok_or(MetadataError::VersionExhausted)?;
        let size = self_record_size(&self.config, &metadata, version);
        if size > self.config.max_datagram() && !self.config.streams {
            return Err(MetadataError::TooLarge { size, limit: self.config.max_datagram() });
        }
        self.replace_local_metadata(now, metadata, version);
        Ok(())
    }

    /// Replaces the keyring, e.g. to rotate keys: add the new key everywhere, then make it
    /// first everywhere, then remove the old one.
    pub fn set_keyring(&mut self, keyring: Keyring) -> Result<(), ConfigError> {
        let mut config = self.config.clone();
        config.keyring = keyring;
        config.validate()?;
        self.config = config;
        Ok(())
    }

    // --------------------------------------------------------------- outputs

    /// The next datagram to send. The payload is borrowed until the next call, which lets
    /// the node reuse its buffer.
    pub fn poll_transmit(&mut self) -> Option<Transmit<'_>> {
        self.outbox.poll(&mut self.counters)
    }

    /// The next stream message to send (only with [`Config::streams`]): the driver connects
    /// to the destination, writes the message with a 4-byte big-endian length prefix, and
    /// may drop it if that fails (the node retries what matters).
    pub fn poll_stream(&mut self) -> Option<StreamMessage> {
        let message = self.streams.poll()?;
        self.counters.streams_out += 1;
        self.counters.stream_bytes_out += message.payload.len() as u64;
        Some(message)
    }

    /// When to call [`Node::handle_timeout`] next; `None` once a node that left has nothing
    /// more to send.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let gossip = self.timers.get(Timer::Gossip).filter(|_| !self.gossip.is_empty());
        let next = if self.left {
            // Done once the announcement is spent, or when no one is left to tell.
            let audience = self.members.count(StatusFilter::AVAILABLE) > 0;
            gossip.filter(|_| audience)
        } else {
            [
                gossip,
                self.timers.get(Timer::Probe),
                self.sync_deadline(),
                self.timers.get(Timer::Rejoin),
                self.timers.get(Timer::PushPull),
                self.streams.next_deadline(),
                self.prober.next_deadline(),
                self.members.next_deadline(),
                self.members.next_tombstone_expiry(),
            ]
            .into_iter()
            .flatten()
            .min()
        };
        next.map(|at| self.clock.to_driver(at))
    }

    /// The first anti-entropy round that may send: while pings and acks keep showing that
    /// the tables agree, the rounds before it would send nothing, and a node that woke for
    /// each of them would spend its CPU on wake-ups (two a second by default).
    fn sync_deadline(&self) -> Option<Instant> {
        let until = self.sync.quiet_until(self.sync_quiet());
        self.timers.skipping_until(Timer::Sync, until, self.config.sync_interval)
    }

    /// How long an equal root heard on a ping or ack spares anti-entropy digests: three
    /// probe intervals (a node hears about two roots a second), at least `sync_interval`.
    pub(super) fn sync_quiet(&self) -> Duration {
        self.config.sync_interval.max(self.config.ping_interval.saturating_mul(3))
    }

    /// The next membership change to report.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    // --------------------------------------------------------------- queries

    /// This node as a member.
    pub fn local_member(&self) -> &Member {
        self.members.local()
    }

    /// Every known member, this node included, in no particular order (the same order for
    /// the same history: sort by name for display).
    pub fn members(&self) -> impl Iterator<Item = &Member> + '_ {
        self.members.iter().map(|(_, member)| member)
    }

    /// Members whose status matches `filter`, this node included if it matches.
    pub fn members_with(&self, filter: StatusFilter) -> impl Iterator<Item = &Member> + '_ {
        self.members().filter(move |m| filter.matches(m.status()))
    }

    /// Up to `count` other members matching `filter`, chosen at random with `rng` (not the
    /// node's own generator, so that asking changes nothing), none named in `exclude`.
    /// Never this node.
    pub fn find(
        &self,
        rng: &mut impl Rng,
        count: usize,
        filter: StatusFilter,
        exclude: &[&str],
    ) -> Vec<&Member> {
        let mut candidates: Vec<&Member> = self
            .members
            .iter()
            .filter(|(id, m)| {
                *id != Members::LOCAL
                    && filter.matches(m.status())
                    && !exclude.contains(&&**m.name())
            })
            .map(|(_, member)| member)
            .collect();
        let count = count.min(candidates.len());
        for i in 0..count {
            let j = i + random_below(rng, candidates.len() - i);
            candidates.swap(i, j);
        }
        candidates.truncate(count);
        candidates
    }

    /// A member by name.
    pub fn member(&self, name: &str) -> Option<&Member> {
        self.members.by_name(name)
    }

    /// Totals of work done and datagrams dropped.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Whether this node has heard from another member since it (last) joined: it is part of
    /// the cluster. [`Event::Joined`] announces it.
    pub fn is_ready(&self) -> bool {
        self.joined
    }

    /// Whether this node left (and did not rejoin).
    pub fn has_left(&self) -> bool {
        self.left
    }

    /// Number of membership facts waiting to be gossiped.
    pub fn pending_gossip(&self) -> usize {
        self.gossip.len()
    }

    /// The Lifeguard local health score: 0 when healthy, up to `lifeguard.max_health` when
    /// this node appears to be the slow one. Probe interval and timeouts scale by score + 1.
    pub fn health(&self) -> u32 {
        self.prober.health()
    }

    /// Number of metadata fetches waiting for their answer.
    pub fn pending_fetches(&self) -> usize {
        self.streams.fetches()
    }

    /// Number of reaped members still remembered as tombstones.
    pub fn tombstones(&self) -> usize {
        self.members.tombstones()
    }

    /// This node's own metadata.
    fn local_metadata(&self) -> &Metadata {
        // The local member's metadata is set at creation and only ever replaced.
        static EMPTY: Metadata = Metadata::new();
        self.members.local().metadata().unwrap_or(&EMPTY)
    }

    /// Publishes `metadata` as this node's, at `version`.
    fn replace_local_metadata(&mut self, now: Instant, metadata: Metadata, version: u64) {
        let previous = Some(self.local_metadata().clone());
        self.members.set_metadata(Members::LOCAL, metadata.clone(), version);
        self.gossip.enqueue(Members::LOCAL, true);
        let name = self.members.local().name().clone();
        self.events.push_back(Event::MetadataChanged { name, version, metadata, previous });
        // Start spreading at once rather than at the next round.
        self.timers.set_by(Timer::Gossip, now);
    }
}

/// Bytes of a datagram carrying only this node's record with `metadata`.
fn self_record_size(config: &Config, metadata: &Metadata, version: u64) -> usize {
    let record = Record {
        name: &config.local_name,
        addr: config.local_addr,
        incarnation: u64::MAX,
        status: Status::Online,
        meta_version: version.max(u64::from(u32::MAX)),
        metadata: Some(metadata.entries()),
        accuser: None,
        meta_hash: None,
        streams: false,
    };
    crate::wire::max_overhead(config.local_name.len()) + record.encoded_len()
}
