//! A member as a node sees it: its name, address, status, incarnation and metadata, and the
//! bookkeeping each entry carries (marks, replay window).

use alloc::boxed::Box;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use smol_str::SmolStr;

use crate::metadata::Metadata;
use crate::replay::ReplayWindow;
use crate::status::Status;
use crate::time::Instant;
use crate::wire::Record;

/// Index of a member in the table's slab. Reused after a member is reaped, so holders must
/// drop it on removal (the node does).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct MemberId(pub(crate) u32);

impl MemberId {
    pub(super) fn index(self) -> usize {
        self.0 as usize
    }
}

/// The metadata of every member known to publish none (its version is not 0): shared, so
/// that in a cluster without metadata no entry allocates any.
pub(super) static NO_METADATA: Metadata = Metadata::new();

/// An entry's 32-bit counter with this value holds its counter in the entry's [`Extra`]:
/// incarnations and metadata versions count up by one from 0, so only a member that
/// refuted or changed its metadata four billion times (or a forger within the plausibility
/// bound) reaches it.
const WIDE: u32 = u32::MAX;

/// A counter as an entry keeps it: itself, or [`WIDE`].
fn narrow(counter: u64) -> u32 {
    u32::try_from(counter).ok().filter(|&n| n != WIDE).unwrap_or(WIDE)
}

/// What few entries need, boxed: metadata that is not empty, and counters beyond 32 bits.
/// While an entry has one, it holds both of the entry's counters in full.
#[derive(Clone, Debug)]
pub(super) struct Extra {
    metadata: Option<Metadata>,
    incarnation: u64,
    meta_version: u64,
}

/// A member of the cluster as this node sees it.
#[derive(Clone, Debug)]
// Fields in this order: see below.
#[repr(C)]
pub struct Member {
    // Every node holds one of these per member, so a cluster of N holds N² of them: the
    // fields are packed (32-bit counters, the address, the time in seconds) to keep an
    // entry small, what few members need is boxed (metadata, wide counters: `Extra`), and
    // what only members that are not online need (a suspicion, a deadline) lives in the
    // table's side tables. The name is stored inline: looking a member up by name then
    // touches one entry, not two allocations, which is most of what handling a datagram
    // costs in a large cluster. What a lookup and a received record read (name,
    // incarnation, metadata version, status, address) comes first, in the entry's first
    // 64 bytes, so that handling a record touches one or two cache lines of the entry
    // rather than all of it; the rest follows without padding.
    pub(super) name: SmolStr,
    /// The incarnation, or [`WIDE`].
    incarnation: u32,
    /// The metadata version, or [`WIDE`].
    meta_version: u32,
    pub(super) status: Status,
    /// What it has shown, and the family of its address: see [`Marks`].
    pub(super) marks: Marks,
    pub(super) addr: PackedAddr,
    /// When this node last saw its status change, in whole seconds since the origin
    /// (136 years fit): see [`Member::status_changed_at`].
    pub(super) changed_secs: u32,
    /// Metadata and wide counters. No metadata with a version above 0: known to be empty
    /// (see `NO_METADATA`).
    extra: Option<Box<Extra>>,
    /// The sequenced nonces of its datagrams already accepted.
    pub(crate) replay: ReplayWindow,
}

/// What a member has shown this node, one bit each, and one bit of its address (the entry
/// stays within 80 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Marks(u8);

impl Marks {
    /// It showed that it receives what is sent to its address (it answered a probe, or
    /// echoed an anti-entropy step). Until then, answers to it are kept small.
    pub(super) const VALIDATED: u8 = 1;
    /// Its datagrams say that it accepts stream messages.
    pub(super) const STREAMS: u8 = 2;
    /// It showed that it holds this node in its table (it sent this node a datagram bound
    /// to its name), so that datagrams to it may name their sender short. Cleared when it
    /// moves, goes offline or leaves, or leaves a probe unanswered.
    pub(super) const KNOWS_US: u8 = 4;
    /// It left a probe unanswered, or moved, since it last showed that it holds this node:
    /// it may have forgotten us (restarted, or reaped us), so it is sent our full name.
    pub(super) const MAY_NOT_KNOW_US: u8 = 8;
    /// Not something it showed: its address is an IPv6 one (see [`PackedAddr`]), kept here
    /// rather than in a byte of its own.
    pub(super) const V6: u8 = 16;

    pub(super) fn has(self, mark: u8) -> bool {
        self.0 & mark != 0
    }

    pub(super) fn set(&mut self, mark: u8, on: bool) {
        if on {
            self.0 |= mark;
        } else {
            self.0 &= !mark;
        }
    }
}

impl Member {
    /// A member as first learned: no metadata known, nothing shown.
    pub(super) fn new(name: SmolStr, addr: SocketAddr, state: State, now: Instant) -> Self {
        let mut member = Member {
            name,
            incarnation: 0,
            meta_version: 0,
            status: state.status,
            marks: Marks::default(),
            addr: PackedAddr::from(addr),
            changed_secs: 0,
            extra: None,
            replay: ReplayWindow::default(),
        };
        member.marks.set(Marks::V6, addr.is_ipv6());
        member.set_changed_at(now);
        member.set_incarnation(state.incarnation);
        member
    }

    /// The unique name (the Python swim-protocol package uses `host:port`), as events carry
    /// it: it reads as a `&str`, and cloning it never allocates.
    pub fn name(&self) -> &SmolStr {
        &self.name
    }

    /// The address the member advertises.
    pub fn addr(&self) -> SocketAddr {
        self.addr.get(self.marks.has(Marks::V6))
    }

    /// What this node believes about the member.
    pub fn status(&self) -> Status {
        self.status
    }

    /// The member's incarnation: raised by the member itself to refute suspicion.
    pub fn incarnation(&self) -> u64 {
        match &self.extra {
            Some(extra) => extra.incarnation,
            None => u64::from(self.incarnation),
        }
    }

    /// The metadata, or `None` while it is unknown (which differs from known and empty).
    pub fn metadata(&self) -> Option<&Metadata> {
        match self.extra.as_ref().and_then(|extra| extra.metadata.as_ref()) {
            Some(metadata) => Some(metadata),
            None => (self.meta_version() > 0).then_some(&NO_METADATA),
        }
    }

    /// Version of the metadata held (0: unknown). Set by the member itself.
    pub fn meta_version(&self) -> u64 {
        match &self.extra {
            Some(extra) => extra.meta_version,
            None => u64::from(self.meta_version),
        }
    }

    pub(super) fn set_incarnation(&mut self, incarnation: u64) {
        let narrow = narrow(incarnation);
        if narrow == WIDE || self.extra.is_some() {
            self.extra_mut().incarnation = incarnation;
        }
        self.incarnation = narrow;
        self.tidy();
    }

    /// Replaces the metadata and its version (empty metadata is kept as none: see
    /// `NO_METADATA`).
    pub(super) fn set_metadata(&mut self, metadata: Metadata, version: u64) {
        let metadata = (!metadata.is_empty()).then_some(metadata);
        let narrow = narrow(version);
        if narrow == WIDE || metadata.is_some() || self.extra.is_some() {
            let extra = self.extra_mut();
            extra.metadata = metadata;
            extra.meta_version = version;
        }
        self.meta_version = narrow;
        self.tidy();
    }

    /// The entry's `Extra`, made if it had none (holding the counters as they are).
    fn extra_mut(&mut self) -> &mut Extra {
        let (incarnation, meta_version) = (self.incarnation(), self.meta_version());
        self.extra
            .get_or_insert_with(|| Box::new(Extra { metadata: None, incarnation, meta_version }))
    }

    /// Whether the entry has an `Extra`.
    #[cfg(test)]
    pub(super) fn is_boxed(&self) -> bool {
        self.extra.is_some()
    }

    /// Drops the entry's `Extra` once it holds nothing the entry cannot.
    fn tidy(&mut self) {
        let narrow = self.incarnation != WIDE && self.meta_version != WIDE;
        if narrow && self.extra.as_ref().is_some_and(|extra| extra.metadata.is_none()) {
            self.extra = None;
        }
    }

    /// When this node last saw the member's status change (or learned of it), to the second:
    /// the instant rounded down to a whole second since the origin.
    pub fn status_changed_at(&self) -> Instant {
        Instant::from_secs(u64::from(self.changed_secs))
    }

    /// Notes that its status changed at `now`.
    pub(super) fn set_changed_at(&mut self, now: Instant) {
        self.changed_secs = u32::try_from(now.as_micros() / 1_000_000).unwrap_or(u32::MAX);
    }

    /// Moves it to `addr`.
    pub(super) fn set_addr(&mut self, addr: SocketAddr) {
        self.addr = PackedAddr::from(addr);
        self.marks.set(Marks::V6, addr.is_ipv6());
    }

    /// The member's state as a wire record, naming `accuser` (the latest accuser of its
    /// suspicion), with its metadata if asked and known (and its metadata's hash, which the
    /// writer sends instead when the metadata is too large).
    pub(super) fn record<'a>(
        &'a self,
        with_metadata: bool,
        accuser: Option<&'a str>,
    ) -> Record<'a> {
        let metadata = self.metadata().filter(|_| with_metadata);
        Record {
            name: &self.name,
            addr: self.addr(),
            incarnation: self.incarnation(),
            status: self.status,
            meta_version: self.meta_version(),
            metadata: metadata.map(Metadata::entries),
            accuser,
            meta_hash: metadata.map(Metadata::hash),
            streams: self.speaks_streams(),
        }
    }

    /// Whether it accepts stream messages at its address: as it last said itself (the minor
    /// version of its datagrams), or as others said if it never spoke to this node.
    pub fn speaks_streams(&self) -> bool {
        self.marks.has(Marks::STREAMS)
    }

    /// Whether it accepts stream messages, as it just showed (or others said).
    pub(crate) fn set_speaks_streams(&mut self, speaks: bool) {
        self.marks.set(Marks::STREAMS, speaks);
    }

    /// Whether it showed that it receives at its address.
    pub(crate) fn is_validated(&self) -> bool {
        self.marks.has(Marks::VALIDATED)
    }

    /// It showed that it receives at its address.
    pub(crate) fn validate(&mut self) {
        self.marks.set(Marks::VALIDATED, true);
    }

    /// Whether datagrams to it may name their sender short: it is online and showed that
    /// it holds this node, or the cluster is `settled` (the last digest root this node
    /// heard equalled its own: the tables agree, so every member holds every other) and it
    /// has not since left a probe unanswered.
    pub(crate) fn takes_short_sender(&self, settled: bool) -> bool {
        let holds_us =
            self.marks.has(Marks::KNOWS_US) || (settled && !self.marks.has(Marks::MAY_NOT_KNOW_US));
        holds_us && self.status == Status::Online
    }

    /// It showed that it holds this node in its table (it sent a datagram bound to us).
    pub(crate) fn knows_us(&mut self) {
        self.marks.set(Marks::KNOWS_US, true);
        self.marks.set(Marks::MAY_NOT_KNOW_US, false);
    }

    /// It may have forgotten this node: it left a probe unanswered, or moved.
    pub(crate) fn may_not_know_us(&mut self) {
        self.marks.set(Marks::KNOWS_US, false);
        self.marks.set(Marks::MAY_NOT_KNOW_US, true);
    }

    /// It went offline or left: what it showed of its table is forgotten.
    pub(crate) fn forget_knows_us(&mut self) {
        self.marks.set(Marks::KNOWS_US, false);
    }
}

/// A socket address in 18 bytes instead of `SocketAddr`'s 32 (no IPv6 flow label or scope,
/// which the wire format does not carry either), and one bit elsewhere: whether it is an
/// IPv6 address (an IPv4 one takes the first four bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct PackedAddr {
    ip: [u8; 16],
    port: u16,
}

impl PackedAddr {
    pub(super) fn get(&self, v6: bool) -> SocketAddr {
        let ip = if v6 {
            IpAddr::V6(Ipv6Addr::from(self.ip))
        } else {
            IpAddr::V4(Ipv4Addr::new(self.ip[0], self.ip[1], self.ip[2], self.ip[3]))
        };
        SocketAddr::new(ip, self.port)
    }
}

impl From<SocketAddr> for PackedAddr {
    fn from(addr: SocketAddr) -> Self {
        let mut ip = [0; 16];
        match addr.ip() {
            IpAddr::V4(v4) => ip[..4].copy_from_slice(&v4.octets()),
            IpAddr::V6(v6) => ip = v6.octets(),
        }
        PackedAddr { ip, port: addr.port() }
    }
}

/// The facts about a member that the digest covers and gossip carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct State {
    pub(crate) incarnation: u64,
    pub(crate) status: Status,
}

/// A reaped member, remembered so stale gossip cannot resurrect it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tombstone {
    pub(crate) incarnation: u64,
    /// Offline or left: a member that left is never brought back by its old incarnation.
    pub(crate) status: Status,
    pub(crate) expires: Instant,
    /// The highest nonce accepted from it: older datagrams stay replays after reaping.
    pub(crate) last_nonce: u64,
}

/// Whether `addr` can be a member's: a unicast address with a port. Broadcast, multicast
/// and unspecified addresses would turn every probe into traffic for many hosts or none.
pub(crate) fn is_member_addr(addr: SocketAddr) -> bool {
    let ip = addr.ip();
    let broadcast = matches!(ip, IpAddr::V4(v4) if v4.is_broadcast());
    addr.port() != 0 && !ip.is_unspecified() && !ip.is_multicast() && !broadcast
}
