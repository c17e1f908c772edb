//! The state machine that ties membership, probing, gossip and anti-entropy together.
//!
//! Methods come in four kinds, as in quinn-proto: `handle_*` (input), commands, `poll_*`
//! (output) and queries. The failure detector lives in `probe.rs`, anti-entropy in `sync.rs`;
//! both add `impl` blocks to [`Node`].

use alloc::collections::{BTreeSet, VecDeque};
use alloc::string::String;
use alloc::vec::Vec;
use core::net::SocketAddr;
use core::time::Duration;
use smol_str::SmolStr;

use bytes::Bytes;
use rand_core::Rng;

use crate::auth::{Binding, Keyring};
use crate::config::{Config, ConfigError, LegacyWire};
use crate::counters::{Counters, DropReason};
use crate::event::Event;
use crate::exchange::{Exchanges, Peer, Step};
use crate::gossip::GossipQueue;
use crate::member::{Member, MemberId, Members, State};
use crate::metadata::{MAX_KEY_LEN, Metadata};
use crate::outbox::{Outbox, Transmit};
use crate::probe::Prober;
use crate::replay::{Nonces, WallClock, check_future, check_time};
use crate::status::{Status, StatusFilter};
use crate::time::{Clock, Instant};
use crate::wire::{
    Body, DecodeError, Flags, Header, Packet, PacketWriter, Record, Sender, Version,
};

/// How much more an answer may weigh than its request while its receiver has not shown
/// that it receives at its address (QUIC's rule for unvalidated addresses): a request sent
/// with a victim's address gets the victim at most this much traffic.
pub(crate) const AMPLIFICATION_LIMIT: usize = 3;

/// Where a datagram goes: an address, and the name of the member there, to which the
/// datagram is bound (`None` for a seed known only by its address).
#[derive(Clone, Debug)]
pub(crate) struct Destination {
    pub(crate) addr: SocketAddr,
    pub(crate) receiver: Option<SmolStr>,
}

/// A datagram being written: the packet so far, and its header (for sealing).
struct Draft {
    writer: PacketWriter,
    header: Header,
}

/// Why local metadata was refused. The metadata is unchanged.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataError {
    /// With this change, this member's record would not fit in one datagram.
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
    /// there, and each may raise it by at most 2^32).
    #[error("the metadata version cannot grow any further")]
    VersionExhausted,
}

/// Periodic timers, one deadline each (quinn-proto's timer table).
#[derive(Clone, Copy, Debug)]
enum Timer {
    Probe = 0,
    Gossip = 1,
    Sync = 2,
    Rejoin = 3,
}

/// One member of a SWIM cluster, as a pure state machine.
///
/// Feed it time, datagrams and commands; drain what it wants sent, when it wants to be
/// woken, and what changed. See the [crate documentation](crate) for the drive loop.
#[derive(Debug)]
pub struct Node<R> {
    pub(crate) config: Config,
    pub(crate) rng: R,
    pub(crate) members: Members,
    pub(crate) gossip: GossipQueue,
    pub(crate) prober: Prober,
    /// Suspicion expiries and reap times, by member.
    pub(crate) deadlines: BTreeSet<(Instant, MemberId)>,
    timers: [Option<Instant>; 4],
    pub(crate) seeds: Vec<SocketAddr>,
    /// Heard from another member since `join` (or ever).
    joined: bool,
    pub(crate) left: bool,
    join_backoff: Duration,
    outbox: Outbox,
    /// Anti-entropy exchanges in progress.
    pub(crate) exchanges: Exchanges,
    /// Decrypted datagrams are opened here (reused).
    opened: Vec<u8>,
    pub(crate) events: VecDeque<Event>,
    pub(crate) counters: Counters,
    /// Reused for member sampling.
    pub(crate) scratch: Vec<MemberId>,
    /// A peer's anti-entropy summaries while they are compared with ours (reused).
    pub(crate) summaries: Vec<(u32, u32, bool)>,
    /// Lifeguard local health score, 0 (healthy) to `lifeguard.max_health`.
    pub(crate) health: u32,
    /// The nonces of this node's datagrams.
    nonces: Nonces,
    /// The wall clock, for nonces and for checking others'.
    wall: WallClock,
    /// When a ping or ack last showed a member's table equal to ours.
    pub(crate) last_agreement: Option<Instant>,
    /// The driver's clock, made monotonic.
    clock: Clock,
}

/// Where a state change came from, beyond the state itself.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Fact<'a> {
    /// The address the fact gives (applied only with a higher incarnation).
    pub(crate) addr: Option<SocketAddr>,
    /// For a suspicion, who suspects.
    pub(crate) accuser: Option<&'a str>,
}

impl Node<rand_chacha::ChaCha8Rng> {
    /// A node whose random generator (ChaCha8) is seeded with `seed`, so that a run can be
    /// repeated exactly (tests, simulations) without an RNG crate of your own. Seed
    /// production nodes from the operating system (`Node::start` with `std`, or
    /// [`Node::new`] with any `rand_core` 0.10 generator): the seed decides the probe
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
        if !crate::facts::is_member_addr(config.local_addr) {
            return Err(ConfigError::new("local_addr", "must be a unicast address with a port"));
        }
        let name: SmolStr = SmolStr::new(config.local_name.as_str());
        let size = self_record_size(&config, &config.local_metadata, 1);
        if size > config.max_datagram() {
            return Err(ConfigError::new("local_metadata", "does not fit in one datagram"));
        }
        let members = Members::new(name, config.local_addr, config.local_metadata.clone(), now);
        let mut gossip = GossipQueue::default();
        gossip.enqueue(Members::LOCAL, true);
        // Random phases keep a cluster started at once from probing and syncing in lockstep.
        let probe_at = now + config.ping_interval.mul_f64(unit(&mut rng));
        let sync_at = now + config.sync_interval.mul_f64(unit(&mut rng));
        let seeds = config.peers.clone();
        let prober = Prober::default();
        let outbox = Outbox::new(config.max_datagram());
        let epoch_ms = if config.replay_protection { config.epoch_ms } else { 0 };
        let wall = WallClock::new(epoch_ms, now);
        Ok(Node {
            timers: [
                Some(probe_at),
                Some(now + config.gossip_interval),
                Some(sync_at),
                Some(now + config.rejoin_interval),
            ],
            join_backoff: config.ping_interval,
            config,
            rng,
            members,
            gossip,
            prober,
            deadlines: BTreeSet::new(),
            seeds,
            joined: false,
            left: false,
            outbox,
            exchanges: Exchanges::new(),
            opened: Vec::new(),
            events: VecDeque::new(),
            counters: Counters::default(),
            scratch: Vec::new(),
            summaries: Vec::new(),
            health: 0,
            nonces: Nonces::default(),
            wall,
            last_agreement: None,
            clock: Clock::new(now),
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
        let mut opened = core::mem::take(&mut self.opened);
        if let Err(reason) = self.receive(now, from, datagram, &mut opened) {
            self.counters.drop(reason);
        }
        self.opened = opened;
    }

    /// Takes a datagram through every check, then applies it.
    fn receive(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &[u8],
        scratch: &mut Vec<u8>,
    ) -> Result<(), DropReason> {
        if self.left {
            // Answering would make others learn of us again after they reaped us.
            return Err(DropReason::Left);
        }
        if datagram.len() > self.config.max_datagram() {
            return Err(DropReason::TooLarge);
        }
        // A header that cannot be read cannot be authenticated either.
        let header = Header::parse(datagram).map_err(|_| DropReason::Unauthenticated)?;
        let opened = self.authenticate(&header, datagram, scratch)?;
        let packet = Packet::decode(opened).map_err(|error| match error {
            DecodeError::UnknownMessageType(_) => DropReason::UnknownMessage,
            _ => DropReason::Malformed,
        })?;
        self.admit(now, from, &packet)?;
        // Authenticated, well-formed, new and expected: from here on, state may change.
        let sender = self.note_sender(now, &packet.sender, packet.header.nonce)?;
        // Facts learned by anti-entropy are old news to the cluster: applied, not re-gossiped,
        // except what the sender says about itself, which is first-hand.
        let spread = !matches!(packet.body, Body::SyncEntries);
        for record in packet.records.iter() {
            let first_hand = record.name == packet.sender.name;
            self.apply_record(now, &record, spread || first_hand);
        }
        if !self.joined {
            self.joined = true;
            self.join_backoff = self.config.ping_interval;
            self.timers[Timer::Rejoin as usize] = Some(now + self.config.rejoin_interval);
            self.events.push_back(Event::Joined);
        }
        if self.members.get(sender).map(Member::addr) != Some(packet.sender.addr) {
            // We hold the sender at another address, and it did not outrank that: it
            // restarted on a new address, or someone aims our answers elsewhere. It is only
            // told what we hold, so that a restarted member moves past its previous life.
            self.send_correction(sender, packet.sender.addr, datagram.len());
            return Ok(());
        }
        let limit = self.answer_limit(sender, datagram.len());
        self.dispatch_body(now, sender, &packet, limit);
        Ok(())
    }

    /// Opens the datagram with this node's binding: for this node by name, or (flagged so)
    /// for its address, always with the cluster's label.
    fn authenticate<'a>(
        &self,
        header: &Header,
        datagram: &'a [u8],
        scratch: &'a mut Vec<u8>,
    ) -> Result<&'a [u8], DropReason> {
        let to_address = header.flags.has(Flags::TO_ADDRESS);
        let receiver = if to_address { "" } else { self.members.local().name() };
        let binding = Binding { label: &self.config.label, receiver };
        let opened = self.config.secret.open(datagram, header, &binding, scratch);
        let opened = opened.ok_or(DropReason::Unauthenticated)?;
        match header.version {
            Version::V1 if self.config.legacy_wire == LegacyWire::Refuse => {
                Err(DropReason::UnsupportedVersion)
            }
            Version::V2
                if self.config.require_encryption && !header.flags.has(Flags::ENCRYPTED) =>
            {
                Err(DropReason::Unencrypted)
            }
            _ => Ok(opened),
        }
    }

    /// The checks an authentic packet must pass before it may change anything.
    fn admit(
        &mut self,
        now: Instant,
        from: SocketAddr,
        packet: &Packet<'_>,
    ) -> Result<(), DropReason> {
        let local = self.members.local().name();
        if packet.sender.name == local {
            return Err(DropReason::FromSelf);
        }
        let misdirected = match packet.body {
            // Only a join may be sent to an address without the receiver's name.
            _ if packet.header.flags.has(Flags::TO_ADDRESS) => {
                !matches!(packet.body, Body::SyncDigest { .. })
            }
            // Version 1 names the receiver of a ping only.
            Body::Ping { target, .. } => !target.is_empty() && target != local,
            _ => false,
        };
        if misdirected {
            return Err(DropReason::Misdirected);
        }
        let nonce = packet.header.nonce;
        let wall = self.wall.millis(now);
        if packet.header.version == Version::V2 {
            check_time(nonce, wall, self.config.max_clock_skew, self.config.max_datagram_age)?;
        } else {
            // Version 1 numbered datagrams from its sender's start, so only a nonce from the
            // future is certainly forged.
            check_future(nonce, wall, self.config.max_clock_skew)?;
        }
        if !self.is_fresh(packet.sender.name, nonce) {
            return Err(DropReason::Replayed);
        }
        if !self.solicited(now, from, packet) {
            return Err(DropReason::Unsolicited);
        }
        Ok(())
    }

    /// Whether an anti-entropy step follows one of ours (other messages always may come): to
    /// the address it claims, echoing our cookie. Version 1 echoes nothing, so its steps
    /// are taken only from members that have shown they receive at their address.
    fn solicited(&mut self, now: Instant, from: SocketAddr, packet: &Packet<'_>) -> bool {
        let member = self.members.id(packet.sender.name);
        let addr = packet.sender.addr;
        let trusted = |node: &Self, echo: Option<u32>| {
            echo.is_some()
                || member.and_then(|id| node.members.get(id)).is_some_and(|m| m.is_validated())
        };
        match packet.body {
            Body::SyncBuckets { .. } => self.exchanges.take_digest(member, addr, from, now),
            Body::SyncSummaries { echo, .. } => {
                trusted(self, echo)
                    && member.is_some_and(|id| {
                        self.exchanges.follows(id, addr, Step::Buckets, echo, now)
                    })
            }
            Body::SyncWant { echo, .. } => {
                trusted(self, echo)
                    && member.is_some_and(|id| {
                        self.exchanges.follows(id, addr, Step::Summaries, echo, now)
                    })
            }
            _ => true,
        }
    }

    /// Acts on the message itself; answers go to `sender`, at most `limit` bytes each.
    fn dispatch_body(&mut self, now: Instant, sender: MemberId, packet: &Packet<'_>, limit: usize) {
        match packet.body {
            Body::Ping { seq, root, .. } => {
                self.note_root(now, root);
                let root = self.members.digest().root();
                self.send_to(sender, &Body::Ack { seq, root }, Some(sender), limit);
            }
            Body::Ack { seq, root } => {
                self.note_root(now, root);
                self.handle_ack(seq, sender);
            }
            Body::Nack { seq } => self.handle_nack(seq, sender),
            Body::PingReq { seq, target, .. } => {
                self.handle_ping_req(now, sender, seq, target, limit);
            }
            Body::Gossip | Body::SyncEntries => {}
            Body::SyncDigest { root, members } => {
                self.handle_sync_digest(now, sender, root, members as usize, limit);
            }
            Body::SyncBuckets { cookie, shift, hashes } => {
                let summaries = packet.header.version == Version::V2 || packet.header.minor >= 1;
                if summaries {
                    self.handle_sync_buckets(now, sender, cookie, shift, hashes);
                }
            }
            Body::SyncSummaries { echo, cookie, shift, buckets, summaries } => {
                self.validate(sender);
                let request = (echo, cookie);
                self.handle_sync_summaries(now, sender, request, shift, buckets, summaries);
            }
            Body::SyncWant { echo, names } => {
                self.validate(sender);
                self.handle_sync_want(now, sender, echo, names);
            }
        }
    }

    /// Runs whatever is due at `now`. Safe to call early or more than once: only expired
    /// deadlines act.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.clock.observe(now);
        if self.due(Timer::Gossip, now) {
            self.gossip_round();
            self.reschedule(Timer::Gossip, now, self.config.gossip_interval);
        }
        if self.left {
            return;
        }
        if self.due(Timer::Probe, now) {
            self.reschedule(Timer::Probe, now, self.scaled(self.config.ping_interval));
            self.start_probe(now);
        }
        self.probe_timeouts(now);
        self.expire_deadlines(now);
        self.members.expire_tombstones(now);
        if self.due(Timer::Sync, now) {
            self.reschedule(Timer::Sync, now, self.config.sync_interval);
            self.sync_round(now);
        }
        if self.due(Timer::Rejoin, now) {
            self.rejoin_round(now);
        }
    }

    // -------------------------------------------------------------- commands

    /// Joins the cluster through `seeds` (added to the configured `peers`): sends each an
    /// anti-entropy digest now and, until one answers, retries all seeds with backoff. After
    /// [`Node::leave`], rejoins with a higher incarnation. On a node that has already joined,
    /// only the new seeds are contacted and readiness is kept (drivers call this when a
    /// re-resolved name yields a new address).
    pub fn join(&mut self, now: Instant, seeds: impl IntoIterator<Item = SocketAddr>) {
        let now = self.clock.observe(now);
        let known = self.seeds.len();
        for seed in seeds {
            if seed != self.config.local_addr && !self.seeds.contains(&seed) {
                self.seeds.push(seed);
            }
        }
        if self.left {
            self.left = false;
            self.joined = false;
            let incarnation = self.members.local().incarnation().saturating_add(1);
            let online = State { incarnation, status: Status::Online };
            self.members.set_state(Members::LOCAL, online, now);
            self.timers[Timer::Probe as usize] = Some(now + self.config.ping_interval);
            self.timers[Timer::Sync as usize] = Some(now + self.config.sync_interval);
        }
        self.gossip.enqueue(Members::LOCAL, true);
        if self.joined {
            for i in known..self.seeds.len() {
                self.send_digest(Peer::Seed(self.seeds[i]));
            }
            return;
        }
        self.join_backoff = self.config.ping_interval;
        self.timers[Timer::Rejoin as usize] = Some(now);
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
        self.timers = [None, Some(now), None, None];
        self.prober.clear();
        self.gossip_round();
        self.reschedule(Timer::Gossip, now, self.config.gossip_interval);
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
        let version = self.next_meta_version()?;
        let size = self_record_size(&self.config, &metadata, version);
        if size > self.config.max_datagram() {
            return Err(MetadataError::TooLarge { size, limit: self.config.max_datagram() });
        }
        self.replace_local_metadata(now, metadata, version);
        Ok(())
    }

    /// The version a change of local metadata takes.
    fn next_meta_version(&self) -> Result<u64, MetadataError> {
        self.members.local().meta_version().checked_add(1).ok_or(MetadataError::VersionExhausted)
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

    /// Replaces the keyring, e.g. to rotate keys: add the new key everywhere, then make it
    /// first everywhere, then remove the old one.
    pub fn set_keyring(&mut self, keyring: Keyring) -> Result<(), ConfigError> {
        let mut config = self.config.clone();
        config.secret = keyring;
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

    /// When to call [`Node::handle_timeout`] next; `None` once a node that left has nothing
    /// more to send.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_deadline().map(|at| self.clock.to_driver(at))
    }

    /// The earliest deadline, in the node's time.
    fn next_deadline(&self) -> Option<Instant> {
        let gossip = self.timers[Timer::Gossip as usize].filter(|_| !self.gossip.is_empty());
        if self.left {
            // Done once the announcement is spent, or when no one is left to tell.
            let audience = self.members.count(StatusFilter::AVAILABLE) > 0;
            return gossip.filter(|_| audience);
        }
        [
            gossip,
            self.timers[Timer::Probe as usize],
            self.timers[Timer::Sync as usize],
            self.timers[Timer::Rejoin as usize],
            self.prober.next_deadline(),
            self.deadlines.first().map(|(at, _)| *at),
            self.members.next_tombstone_expiry(),
        ]
        .into_iter()
        .flatten()
        .min()
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

    /// Up to `count` other members matching `filter`, chosen at random, none named in
    /// `exclude`. Never this node.
    pub fn find(&mut self, count: usize, filter: StatusFilter, exclude: &[&str]) -> Vec<&Member> {
        let mut candidates: Vec<MemberId> = self
            .members
            .iter()
            .filter(|(id, m)| {
                *id != Members::LOCAL && filter.matches(m.status()) && !exclude.contains(&m.name())
            })
            .map(|(id, _)| id)
            .collect();
        let count = count.min(candidates.len());
        for i in 0..count {
            let j = i + random_below(&mut self.rng, candidates.len() - i);
            candidates.swap(i, j);
        }
        candidates.truncate(count);
        candidates.iter().filter_map(|id| self.members.get(*id)).collect()
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

    /// Whether this node has heard from another member since it joined.
    pub fn is_joined(&self) -> bool {
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
        self.health
    }

    /// Number of reaped members still remembered as tombstones.
    pub fn tombstones(&self) -> usize {
        self.members.tombstones()
    }

    pub(crate) fn replace_local_metadata(
        &mut self,
        now: Instant,
        metadata: Metadata,
        version: u64,
    ) {
        self.members.set_metadata(Members::LOCAL, metadata, version);
        self.gossip.enqueue(Members::LOCAL, true);
        let name = self.name_of(Members::LOCAL);
        self.events.push_back(Event::MetadataChanged { name, version });
        // Start spreading at once rather than at the next round.
        let gossip = &mut self.timers[Timer::Gossip as usize];
        *gossip = Some(gossip.map_or(now, |at| at.min(now)));
    }

    // ---------------------------------------------------------------- timers

    fn due(&self, timer: Timer, now: Instant) -> bool {
        self.timers[timer as usize].is_some_and(|at| at <= now)
    }

    /// The next deadline one interval on; after a stall, one interval from now rather than a
    /// burst of catch-up rounds.
    fn reschedule(&mut self, timer: Timer, now: Instant, interval: Duration) {
        let slot = &mut self.timers[timer as usize];
        let next = slot.map_or(now, |at| at + interval);
        *slot = Some(if next <= now { now + interval } else { next });
    }

    /// Joining or isolated: every seed and a few offline members, with backoff. Otherwise:
    /// one contact outside the view (a seed not seen available, or an offline member).
    fn rejoin_round(&mut self, now: Instant) {
        let others_available = self.members.count(StatusFilter::AVAILABLE) > 1;
        if !self.joined || !others_available {
            for i in 0..self.seeds.len() {
                self.send_digest(Peer::Seed(self.seeds[i]));
            }
            let mut offline = core::mem::take(&mut self.scratch);
            self.sample(StatusFilter::OFFLINE, 3, &[], &mut offline);
            for &id in &offline {
                self.send_digest(Peer::Member(id));
            }
            self.scratch = offline;
            self.timers[Timer::Rejoin as usize] = Some(now + self.join_backoff);
            self.join_backoff =
                self.join_backoff.saturating_mul(2).min(self.config.rejoin_interval);
            return;
        }
        self.join_backoff = self.config.ping_interval;
        self.timers[Timer::Rejoin as usize] = Some(now + self.config.rejoin_interval);
        let available = |addr: &SocketAddr| {
            self.members_with(StatusFilter::AVAILABLE).any(|m| m.addr() == *addr)
        };
        let outside_seeds: Vec<SocketAddr> =
            self.seeds.iter().copied().filter(|seed| !available(seed)).collect();
        let offline = self.members.count(StatusFilter::OFFLINE);
        let pick = random_below(&mut self.rng, outside_seeds.len() + offline.min(1));
        if let Some(seed) = outside_seeds.get(pick) {
            self.send_digest(Peer::Seed(*seed));
        } else {
            let mut chosen = core::mem::take(&mut self.scratch);
            self.sample(StatusFilter::OFFLINE, 1, &[], &mut chosen);
            if let Some(&id) = chosen.first() {
                self.send_digest(Peer::Member(id));
            }
            self.scratch = chosen;
        }
    }

    // --------------------------------------------------------------- sending

    /// The node's time as of its latest input.
    pub(crate) fn clock_now(&self) -> Instant {
        self.clock.now()
    }

    /// The wall clock (milliseconds since the Unix epoch) as of the latest input, if this
    /// node has one.
    pub(crate) fn wall_ms(&self) -> Option<u64> {
        self.wall.millis(self.clock.now())
    }

    /// `max_clock_skew` in milliseconds.
    pub(crate) fn skew_ms(&self) -> u64 {
        u64::try_from(self.config.max_clock_skew.as_millis()).unwrap_or(u64::MAX)
    }

    /// Where a member is reached, and the name its datagrams are bound to.
    pub(crate) fn destination(&self, id: MemberId) -> Option<Destination> {
        let member = self.members.get(id)?;
        Some(Destination { addr: member.addr(), receiver: Some(member.name_shared().clone()) })
    }

    /// How large an answer to a request of `request_len` bytes from `id` may be: a whole
    /// datagram once the member showed that it receives at its address, a small multiple of
    /// the request until then.
    pub(crate) fn answer_limit(&self, id: MemberId, request_len: usize) -> usize {
        let max = self.config.max_datagram();
        match self.members.get(id) {
            Some(member) if member.is_validated() => max,
            _ => request_len.saturating_mul(AMPLIFICATION_LIMIT).min(max),
        }
    }

    /// The member showed that it receives at its address.
    pub(crate) fn validate(&mut self, id: MemberId) {
        if let Some(member) = self.members.get_mut(id) {
            member.validate();
        }
    }

    /// [`Node::send`] to a member.
    pub(crate) fn send_to(
        &mut self,
        id: MemberId,
        body: &Body<'_>,
        about: Option<MemberId>,
        limit: usize,
    ) -> Option<u64> {
        let to = self.destination(id)?;
        self.send(&to, body, about, limit)
    }

    /// Queues a datagram of at most `limit` bytes: the message, then (if `about` is a member
    /// we do not believe online) that member's own record, so it can refute at once, then as
    /// much pending gossip as fits. Returns the datagram's nonce.
    pub(crate) fn send(
        &mut self,
        to: &Destination,
        body: &Body<'_>,
        about: Option<MemberId>,
        limit: usize,
    ) -> Option<u64> {
        let mut draft = self.draft(to, body, limit)?;
        // Restarted members and the far side of a healed partition learn they were declared
        // offline; with Lifeguard's buddy system, a suspect learns it is suspected.
        // A node that left says so in everything it still sends: a receiver that already
        // forgot it must not take the datagram for the first contact of a live member.
        let buddy = self.config.lifeguard.buddy;
        let correction = if self.left {
            Some(Members::LOCAL)
        } else {
            about.filter(|id| {
                self.members.get(*id).is_some_and(|m| match m.status() {
                    Status::Online => false,
                    Status::Suspect => buddy,
                    Status::Offline | Status::Left => true,
                })
            })
        };
        // (With its metadata if that is queued too: the record then stands for the fact.)
        let with_metadata = self.left && self.gossip.queued_with_metadata(Members::LOCAL);
        let written = correction.filter(|id| {
            let member = self.members.get(*id);
            member.is_some_and(|member| draft.writer.push(&member.record(with_metadata)))
        });
        // A left node's own record, in every datagram, is its announcement being spent; a
        // correction to a member about itself tells nobody else, so its fact stays queued.
        let already = written.map(|id| (id, self.left));
        let retransmits = self.retransmit_limit();
        self.gossip.fill(&mut draft.writer, &self.members, retransmits, already);
        Some(self.seal(draft, to))
    }

    /// Sends a member `body` alone: no correction, no gossip.
    pub(crate) fn send_bare(&mut self, id: MemberId, body: &Body<'_>) {
        let Some(to) = self.destination(id) else { return };
        if let Some(draft) = self.draft(&to, body, usize::MAX) {
            self.seal(draft, &to);
        }
    }

    /// Tells a member only what we hold about it, at `addr`, within the answer limit of an
    /// unvalidated address.
    fn send_correction(&mut self, id: MemberId, addr: SocketAddr, request_len: usize) {
        let Some(Destination { receiver, .. }) = self.destination(id) else { return };
        let to = Destination { addr, receiver };
        let limit = request_len.saturating_mul(AMPLIFICATION_LIMIT);
        let Some(mut draft) = self.draft(&to, &Body::Gossip, limit) else { return };
        if let Some(member) = self.members.get(id) {
            draft.writer.push(&member.record(false));
        }
        self.seal(draft, &to);
    }

    /// Starts a datagram to `to`: header (the version this node speaks, the next nonce),
    /// sender and body. `None` if even that does not fit `limit`.
    fn draft(&mut self, to: &Destination, body: &Body<'_>, limit: usize) -> Option<Draft> {
        let version = match self.config.legacy_wire {
            LegacyWire::Speak => Version::V1,
            LegacyWire::Accept | LegacyWire::Refuse => Version::V2,
        };
        let mut flags = 0;
        if to.receiver.is_none() {
            flags |= Flags::TO_ADDRESS;
        }
        if self.config.encrypt && version == Version::V2 {
            flags |= Flags::ENCRYPTED;
        }
        let wall = self.wall.millis(self.clock.now());
        let header = Header::new(version, Flags(flags), self.nonces.next(wall, &mut self.rng));
        let local = self.members.local();
        let sender =
            Sender { name: local.name(), addr: local.addr(), incarnation: local.incarnation() };
        let limit = limit.min(self.config.max_datagram());
        match PacketWriter::new(self.outbox.buffer(), limit, &header, &sender, body) {
            Ok(writer) => Some(Draft { writer, header }),
            Err(buffer) => {
                self.outbox.recycle(buffer);
                None
            }
        }
    }

    /// Seals a finished datagram for its receiver and queues it; returns its nonce.
    fn seal(&mut self, draft: Draft, to: &Destination) -> u64 {
        let mut bytes = draft.writer.finish();
        let receiver = to.receiver.as_deref().unwrap_or("");
        let binding = Binding { label: &self.config.label, receiver };
        self.config.secret.seal(&mut bytes, &draft.header, &binding);
        self.outbox.push(to.addr, bytes);
        draft.header.nonce
    }

    /// Sends `records` (with metadata) to `to` as SyncEntries: at most `datagrams` of them,
    /// as many records each as fit. Records that cannot fit even alone are skipped. Returns
    /// how many datagrams went.
    pub(crate) fn send_entries(
        &mut self,
        to: &Destination,
        ids: &[MemberId],
        datagrams: usize,
    ) -> usize {
        let mut next = 0;
        for sent in 0..datagrams {
            if next >= ids.len() {
                return sent;
            }
            let Some(mut draft) = self.draft(to, &Body::SyncEntries, usize::MAX) else {
                return sent;
            };
            while let Some(id) = ids.get(next) {
                let Some(member) = self.members.get(*id) else {
                    next += 1; // Gone (the lists are exact, so this does not happen).
                    continue;
                };
                if !draft.writer.push(&member.record(true)) && draft.writer.records() > 0 {
                    break;
                }
                // Pushed, or cannot fit even alone (metadata from a larger MTU): skipped.
                next += 1;
            }
            self.seal(draft, to);
        }
        datagrams
    }

    /// Takes a buffer for scratch work; give it back with [`Node::recycle`].
    pub(crate) fn take_buffer(&mut self) -> Vec<u8> {
        self.outbox.buffer()
    }

    pub(crate) fn recycle(&mut self, buffer: Vec<u8>) {
        self.outbox.recycle(buffer);
    }

    // --------------------------------------------------------------- helpers

    pub(crate) fn local_metadata(&self) -> &Metadata {
        // The local member's metadata is set at creation and only ever replaced.
        static EMPTY: Metadata = Metadata::new();
        self.members.local().metadata().unwrap_or(&EMPTY)
    }

    pub(crate) fn name_of(&self, id: MemberId) -> SmolStr {
        self.members.get(id).map_or_else(|| SmolStr::new(""), |m| m.name_shared().clone())
    }

    /// Up to `count` distinct members other than this node matching `filter` and not in
    /// `exclude`, into `out`. Random probes of the slab first (O(1) each when most members
    /// match, which is the common case), then a full scan if those were unlucky.
    pub(crate) fn sample(
        &mut self,
        filter: StatusFilter,
        count: usize,
        exclude: &[MemberId],
        out: &mut Vec<MemberId>,
    ) {
        out.clear();
        let bound = self.members.id_bound() as usize;
        let matches = |members: &Members, id: MemberId, out: &Vec<MemberId>| {
            id != Members::LOCAL
                && !exclude.contains(&id)
                && !out.contains(&id)
                && members.get(id).is_some_and(|m| filter.matches(m.status()))
        };
        for _ in 0..count * 4 + 4 {
            if out.len() == count || bound <= 1 {
                return;
            }
            let id = MemberId(random_below(&mut self.rng, bound) as u32);
            if matches(&self.members, id, out) {
                out.push(id);
            }
        }
        if out.len() == count {
            return;
        }
        // Unlucky or sparse: take the rest uniformly from a scan.
        let start = out.len();
        for i in 0..bound {
            let id = MemberId(i as u32);
            if matches(&self.members, id, out) {
                out.push(id);
            }
        }
        let total = out.len();
        for i in start..count.min(total) {
            let j = i + random_below(&mut self.rng, total - i);
            out.swap(i, j);
        }
        out.truncate(count.min(total));
    }
}

/// A uniform integer in `0..n` (0 when `n` is 0), by Lemire's multiply-shift.
pub(crate) fn random_below(rng: &mut impl Rng, n: usize) -> usize {
    ((u64::from(rng.next_u32()) * n as u64) >> 32) as usize
}

/// A uniform float in `[0, 1)`.
fn unit(rng: &mut impl Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
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
    };
    crate::wire::max_overhead(config.local_name.len()) + record.encoded_len()
}
