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

use crate::auth::{Keyring, SEQUENCED};
use crate::config::{Config, ConfigError};
use crate::counters::{Counters, DropReason};
use crate::event::Event;
use crate::gossip::GossipQueue;
use crate::member::{Member, MemberId, Members, State};
use crate::metadata::{MAX_KEY_LEN, Metadata};
use crate::probe::Prober;
use crate::status::{Status, StatusFilter};
use crate::time::{Clock, Instant};
use crate::wire::{Body, DecodeError, MetadataEntries, Packet, PacketWriter, Record, Sender};

/// Outgoing datagrams kept for recycling, so steady state sends without allocating.
const SPARE_BUFFERS: usize = 32;

/// A datagram to send, borrowed from the node until the next [`Node::poll_transmit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transmit<'a> {
    /// Where to send it.
    pub destination: SocketAddr,
    /// The signed datagram.
    pub payload: &'a [u8],
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
    /// Keys and values would exceed `max_metadata_size`.
    #[error("metadata of {size} bytes exceeds max_metadata_size ({limit})")]
    ExceedsLimit {
        /// Bytes of keys and values with this change.
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

#[derive(Debug)]
struct Outgoing {
    to: SocketAddr,
    bytes: Vec<u8>,
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
    outgoing: VecDeque<Outgoing>,
    current: Option<Outgoing>,
    spare: Vec<Vec<u8>>,
    pub(crate) events: VecDeque<Event>,
    pub(crate) counters: Counters,
    /// Reused for member sampling.
    pub(crate) scratch: Vec<MemberId>,
    /// A peer's anti-entropy summaries while they are compared with ours (reused).
    pub(crate) summaries: Vec<(u32, u32, bool)>,
    /// Lifeguard local health score, 0 (healthy) to `lifeguard.max_health`.
    pub(crate) health: u32,
    /// Datagrams given a sequenced nonce so far.
    datagrams_signed: u64,
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

impl<R: Rng> Node<R> {
    /// A node that has not contacted anyone yet; call [`Node::join`] to do so.
    pub fn new(config: Config, mut rng: R, now: Instant) -> Result<Self, ConfigError> {
        config.validate()?;
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
        let prober = Prober::new(&mut rng);
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
            outgoing: VecDeque::new(),
            current: None,
            spare: Vec::new(),
            events: VecDeque::new(),
            counters: Counters::default(),
            scratch: Vec::new(),
            summaries: Vec::new(),
            health: 0,
            datagrams_signed: 0,
            last_agreement: None,
            clock: Clock::new(now),
        })
    }

    // ---------------------------------------------------------------- inputs

    /// Handles a datagram received from `from`. Anything that fails authentication or
    /// decoding is dropped and counted ([`Counters::dropped`]) before any state changes.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        let now = self.clock.observe(now);
        self.counters.datagrams_in += 1;
        self.counters.bytes_in += datagram.len() as u64;
        if self.left {
            // Answering would make others learn of us again after they reaped us.
            return self.counters.drop(DropReason::Left);
        }
        if datagram.len() > self.config.max_datagram() {
            return self.counters.drop(DropReason::TooLarge);
        }
        let Some(signed) = self.config.secret.verify(datagram) else {
            return self.counters.drop(DropReason::Unauthenticated);
        };
        let packet = match Packet::decode(signed) {
            Ok(packet) => packet,
            Err(DecodeError::UnsupportedVersion(_)) => {
                return self.counters.drop(DropReason::UnsupportedVersion);
            }
            Err(DecodeError::UnknownMessageType(_)) => {
                return self.counters.drop(DropReason::UnknownMessage);
            }
            Err(_) => return self.counters.drop(DropReason::Malformed),
        };
        if packet.sender.name == self.members.local().name() {
            return self.counters.drop(DropReason::FromSelf);
        }
        if let Body::Ping { target, .. } = packet.body
            && !target.is_empty()
            && target != self.members.local().name()
        {
            return self.counters.drop(DropReason::Misdirected);
        }
        if !self.is_fresh(packet.sender.name, packet.nonce) {
            return self.counters.drop(DropReason::Replayed);
        }
        // Authenticated, well-formed and new: from here on, state may change.
        let sender = match self.note_sender(now, &packet.sender, packet.nonce) {
            Ok(id) => Some(id),
            Err(reason) => return self.counters.drop(reason),
        };
        // Facts learned by anti-entropy are old news to the cluster: applied, not re-gossiped,
        // except what the sender says about itself, which is first-hand.
        let spread = !matches!(packet.body, Body::SyncEntries { .. });
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
        match packet.body {
            Body::Ping { seq, root, .. } => {
                self.note_root(now, root);
                let root = self.members.digest().root();
                self.send(from, &Body::Ack { seq, root }, sender);
            }
            Body::Ack { seq, root } => {
                self.note_root(now, root);
                if let Some(sender) = sender {
                    self.handle_ack(seq, sender);
                }
            }
            Body::Nack { seq } => {
                if let Some(sender) = sender {
                    self.handle_nack(seq, sender);
                }
            }
            Body::PingReq { seq, target, .. } => {
                self.handle_ping_req(now, from, sender, seq, target);
            }
            Body::Gossip => {}
            Body::SyncDigest { root, members } => {
                self.handle_sync_digest(from, sender, root, members as usize);
            }
            Body::SyncBuckets { shift, hashes } => {
                let summaries = packet.minor_version >= 1;
                self.handle_sync_buckets(from, shift, hashes, summaries);
            }
            Body::SyncSummaries { shift, buckets, summaries } => {
                self.handle_sync_summaries(from, shift, buckets, summaries);
            }
            Body::SyncWant { names } => self.handle_sync_want(from, names),
            Body::SyncEntries { shift, want } => self.handle_sync_entries(from, shift, want),
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
                self.send_digest(self.seeds[i], None);
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
        let now = self.clock.observe(now);
        let key = key.into();
        if key.len() > MAX_KEY_LEN {
            return Err(MetadataError::KeyTooLong(key.len()));
        }
        let mut metadata = self.local_metadata().clone();
        metadata.insert(key, value);
        if metadata.payload_len() > self.config.max_metadata_size {
            let (size, limit) = (metadata.payload_len(), self.config.max_metadata_size);
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

    /// Removes a local metadata value, returning it; `Ok(None)` (and nothing sent) if absent.
    pub fn remove_metadata(
        &mut self,
        now: Instant,
        key: &str,
    ) -> Result<Option<Bytes>, MetadataError> {
        let now = self.clock.observe(now);
        let mut metadata = self.local_metadata().clone();
        let Some(removed) = metadata.remove(key) else { return Ok(None) };
        let version = self.next_meta_version()?;
        self.replace_local_metadata(now, metadata, version);
        Ok(Some(removed))
    }

    /// The version a change of local metadata takes.
    fn next_meta_version(&self) -> Result<u64, MetadataError> {
        self.members.local().meta_version().checked_add(1).ok_or(MetadataError::VersionExhausted)
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
        if let Some(sent) = self.current.take() {
            self.recycle(sent.bytes);
        }
        let next = self.outgoing.pop_front()?;
        self.counters.datagrams_out += 1;
        self.counters.bytes_out += next.bytes.len() as u64;
        let current = self.current.insert(next);
        Some(Transmit { destination: current.to, payload: &current.bytes })
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
                self.send_digest(self.seeds[i], None);
            }
            let mut offline = core::mem::take(&mut self.scratch);
            self.sample(StatusFilter::OFFLINE, 3, &[], &mut offline);
            for &id in &offline {
                if let Some(addr) = self.members.get(id).map(Member::addr) {
                    self.send_digest(addr, Some(id));
                }
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
            self.send_digest(*seed, None);
        } else {
            let mut chosen = core::mem::take(&mut self.scratch);
            self.sample(StatusFilter::OFFLINE, 1, &[], &mut chosen);
            if let Some(&id) = chosen.first()
                && let Some(addr) = self.members.get(id).map(Member::addr)
            {
                self.send_digest(addr, Some(id));
            }
            self.scratch = chosen;
        }
    }

    // --------------------------------------------------------------- sending

    /// Queues a datagram to `to`: the message, then (if `about` is a member we do not
    /// believe online) that member's own record, so it can refute at once, then as much
    /// pending gossip as fits.
    pub(crate) fn send(&mut self, to: SocketAddr, body: &Body<'_>, about: Option<MemberId>) {
        let mut buffer = self.take_buffer();
        let nonce = self.next_nonce();
        let local = self.members.local();
        let sender =
            Sender { name: local.name(), addr: local.addr(), incarnation: local.incarnation() };
        let max = self.config.max_datagram();
        let Some(mut writer) = PacketWriter::new(&mut buffer, max, nonce, &sender, body) else {
            return self.recycle(buffer);
        };
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
            self.members.get(*id).is_some_and(|member| writer.push(&member.record(with_metadata)))
        });
        // A left node's own record, in every datagram, is its announcement being spent; a
        // correction to a member about itself tells nobody else, so its fact stays queued.
        let already = written.map(|id| (id, self.left));
        let limit = self.retransmit_limit();
        self.gossip.fill(&mut writer, &self.members, limit, already);
        writer.finish();
        self.queue(to, buffer);
    }

    /// Signs a finished packet and queues it.
    pub(crate) fn queue(&mut self, to: SocketAddr, mut buffer: Vec<u8>) {
        self.config.secret.sign(&mut buffer);
        self.outgoing.push_back(Outgoing { to, bytes: buffer });
    }

    pub(crate) fn take_buffer(&mut self) -> Vec<u8> {
        self.spare.pop().unwrap_or_else(|| Vec::with_capacity(self.config.max_datagram()))
    }

    pub(crate) fn recycle(&mut self, buffer: Vec<u8>) {
        if self.spare.len() < SPARE_BUFFERS {
            self.spare.push(buffer);
        }
    }

    /// The next datagram's nonce: a sequence number from the epoch when there is one
    /// (replay protection), random salt otherwise.
    pub(crate) fn next_nonce(&mut self) -> u64 {
        if self.config.epoch_ms == 0 {
            return self.rng.next_u64() & !SEQUENCED;
        }
        self.datagrams_signed += 1;
        SEQUENCED | ((self.config.epoch_ms << 20) + self.datagrams_signed)
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
        metadata: Some(MetadataEntries::Map(metadata)),
        accuser: None,
    };
    crate::wire::max_overhead(config.local_name.len()) + record.encoded_len()
}
