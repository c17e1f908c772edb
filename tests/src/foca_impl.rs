//! foca 2 behind the simulator's [`Protocol`] trait, for a like-for-like comparison.
//!
//! - Identity: the node's IPv4 address and port plus a 16-bit `bump` that
//!   [`Identity::renew`] raises, so a node the cluster declared down rejoins under a new
//!   identity (foca's documented auto-rejoin); a restarted process starts with `bump` = its
//!   life count so it wins over its previous identity. 8 bytes on the wire.
//! - Codec: a compact hand-written binary codec (foca ships none without serde).
//! - Timers: foca asks for each timer separately (`submit_after`); the adapter keeps them
//!   in a heap and reports the earliest as its one deadline.
//! - Metadata: foca has none; the `update` scenario uses a custom broadcast
//!   `(subject, version, value)`, deduplicated by subject and version.
//! - Configuration: a [`Flavour`]: `Config::new_lan(N)` untouched ([`NewLan`], how foca's
//!   users run it), or `new_lan` with swim's timing mapped onto it ([`config`]; see
//!   `docs/BENCHMARKS.md`).
//!
//! foca does not report suspicions (without its unstable notifications); `Change::Suspect`
//! is reported when this node *starts* a suspicion timer (it failed to reach a member),
//! which counts fewer events than swim's "any node learned of a suspicion": foca's members
//! learn of others' suspicions silently, so there is no count of suspicions heard.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::fmt;
use std::marker::PhantomData;
use std::net::{SocketAddr, SocketAddrV4};
use std::num::{NonZeroU8, NonZeroU32, NonZeroUsize};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::{Buf, BufMut};
use foca::{
    BroadcastHandler, Codec, Config, Foca as FocaNode, Header, Identity, Invalidates, Member,
    Message, Notification, PeriodicParams, Runtime, State, Timer,
};
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use swim_core::Instant;

use crate::protocol::{Change, Protocol, Report, Timing, addr, index_of};

/// A foca identity: address plus a renewal counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct FocaId {
    addr: SocketAddrV4,
    bump: u16,
}

impl FocaId {
    fn index(&self) -> Option<u32> {
        index_of(SocketAddr::V4(self.addr))
    }
}

impl Identity for FocaId {
    type Addr = SocketAddrV4;

    fn renew(&self) -> Option<Self> {
        Some(FocaId { addr: self.addr, bump: self.bump.wrapping_add(1) })
    }

    fn addr(&self) -> SocketAddrV4 {
        self.addr
    }

    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        // Wrapping comparison, so renewals keep winning past u16::MAX.
        (self.bump.wrapping_sub(adversary.bump) as i16) > 0
    }
}

/// Why a datagram could not be decoded.
#[derive(Debug)]
pub struct DecodeError;

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("malformed foca datagram")
    }
}

impl std::error::Error for DecodeError {}

/// A compact binary codec: ids 8 bytes, incarnations 2, message tag 1, probe number 1.
#[derive(Clone, Copy, Debug, Default)]
pub struct BinaryCodec;

fn put_id(id: &FocaId, buf: &mut impl BufMut) {
    buf.put_slice(&id.addr.ip().octets());
    buf.put_u16(id.addr.port());
    buf.put_u16(id.bump);
}

fn get_id(buf: &mut impl Buf) -> Result<FocaId, DecodeError> {
    if buf.remaining() < 8 {
        return Err(DecodeError);
    }
    let ip = buf.get_u32();
    let port = buf.get_u16();
    let bump = buf.get_u16();
    Ok(FocaId { addr: SocketAddrV4::new(ip.into(), port), bump })
}

fn get_u8(buf: &mut impl Buf) -> Result<u8, DecodeError> {
    if buf.remaining() < 1 {
        return Err(DecodeError);
    }
    Ok(buf.get_u8())
}

fn get_u16(buf: &mut impl Buf) -> Result<u16, DecodeError> {
    if buf.remaining() < 2 {
        return Err(DecodeError);
    }
    Ok(buf.get_u16())
}

impl Codec<FocaId> for BinaryCodec {
    type Error = DecodeError;

    fn encode_header(
        &mut self,
        header: &Header<FocaId>,
        mut buf: impl BufMut,
    ) -> Result<(), Self::Error> {
        if buf.remaining_mut() < 8 + 2 + 8 + 1 + 1 + 8 {
            return Err(DecodeError);
        }
        put_id(&header.src, &mut buf);
        buf.put_u16(header.src_incarnation);
        put_id(&header.dst, &mut buf);
        match &header.message {
            Message::Ping(n) => {
                buf.put_u8(0);
                buf.put_u8(*n);
            }
            Message::Ack(n) => {
                buf.put_u8(1);
                buf.put_u8(*n);
            }
            Message::PingReq { target, probe_number } => {
                buf.put_u8(2);
                buf.put_u8(*probe_number);
                put_id(target, &mut buf);
            }
            Message::IndirectPing { origin, probe_number } => {
                buf.put_u8(3);
                buf.put_u8(*probe_number);
                put_id(origin, &mut buf);
            }
            Message::IndirectAck { target, probe_number } => {
                buf.put_u8(4);
                buf.put_u8(*probe_number);
                put_id(target, &mut buf);
            }
            Message::ForwardedAck { origin, probe_number } => {
                buf.put_u8(5);
                buf.put_u8(*probe_number);
                put_id(origin, &mut buf);
            }
            Message::Announce => buf.put_u8(6),
            Message::Feed => buf.put_u8(7),
            Message::Gossip => buf.put_u8(8),
            Message::Broadcast => buf.put_u8(9),
            Message::TurnUndead => buf.put_u8(10),
        }
        Ok(())
    }

    fn decode_header(&mut self, mut buf: impl Buf) -> Result<Header<FocaId>, Self::Error> {
        let src = get_id(&mut buf)?;
        let src_incarnation = get_u16(&mut buf)?;
        let dst = get_id(&mut buf)?;
        let message = match get_u8(&mut buf)? {
            0 => Message::Ping(get_u8(&mut buf)?),
            1 => Message::Ack(get_u8(&mut buf)?),
            tag @ 2..=5 => {
                let probe_number = get_u8(&mut buf)?;
                let id = get_id(&mut buf)?;
                match tag {
                    2 => Message::PingReq { target: id, probe_number },
                    3 => Message::IndirectPing { origin: id, probe_number },
                    4 => Message::IndirectAck { target: id, probe_number },
                    _ => Message::ForwardedAck { origin: id, probe_number },
                }
            }
            6 => Message::Announce,
            7 => Message::Feed,
            8 => Message::Gossip,
            9 => Message::Broadcast,
            10 => Message::TurnUndead,
            _ => return Err(DecodeError),
        };
        Ok(Header { src, src_incarnation, dst, message })
    }

    fn encode_member(
        &mut self,
        member: &Member<FocaId>,
        mut buf: impl BufMut,
    ) -> Result<(), Self::Error> {
        if buf.remaining_mut() < 11 {
            return Err(DecodeError);
        }
        put_id(member.id(), &mut buf);
        buf.put_u16(member.incarnation());
        buf.put_u8(match member.state() {
            State::Alive => 0,
            State::Suspect => 1,
            State::Down => 2,
        });
        Ok(())
    }

    fn decode_member(&mut self, mut buf: impl Buf) -> Result<Member<FocaId>, Self::Error> {
        let id = get_id(&mut buf)?;
        let incarnation = get_u16(&mut buf)?;
        let state = match get_u8(&mut buf)? {
            0 => State::Alive,
            1 => State::Suspect,
            2 => State::Down,
            _ => return Err(DecodeError),
        };
        Ok(Member::new(id, incarnation, state))
    }
}

/// Which subject a metadata broadcast is about: a newer one replaces an older one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetaKey(u32);

impl Invalidates for MetaKey {
    fn invalidates(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

/// Metadata carried as custom broadcasts: `subject u32, version u32, value`.
#[derive(Debug, Default)]
pub struct MetaStore {
    values: BTreeMap<u32, (u32, Vec<u8>)>,
    changed: Vec<u32>,
}

/// The shared handle: foca owns the handler, the adapter reads what it learned. A mutex
/// rather than a `RefCell` so the node is `Send` (the engine runs nodes on worker threads);
/// only the owning node ever locks it, so it is never contended.
#[derive(Clone, Debug, Default)]
pub struct MetaHandler(Arc<Mutex<MetaStore>>);

impl MetaHandler {
    fn store(&self) -> MutexGuard<'_, MetaStore> {
        // A panic while holding the lock already fails the run; the store itself is
        // always consistent (each update is one insert and one push).
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl BroadcastHandler<FocaId> for MetaHandler {
    type Key = MetaKey;
    type Error = DecodeError;

    fn receive_item(
        &mut self,
        data: &[u8],
        _sender: Option<&FocaId>,
    ) -> Result<Option<MetaKey>, DecodeError> {
        if data.len() < 8 {
            return Err(DecodeError);
        }
        let subject = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
        let version = u32::from_be_bytes([data[4], data[5], data[6], data[7]]);
        let mut store = self.store();
        if store.values.get(&subject).is_some_and(|(v, _)| *v >= version) {
            return Ok(None);
        }
        store.values.insert(subject, (version, data[8..].to_vec()));
        store.changed.push(subject);
        Ok(Some(MetaKey(subject)))
    }
}

/// A timer foca asked for, ordered earliest first.
struct Pending {
    at: u64,
    seq: u64,
    timer: Timer<FocaId>,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// foca's runtime: collects datagrams, timers and notifications for the adapter.
#[derive(Default)]
struct Collect {
    now: u64,
    seq: u64,
    timers: BinaryHeap<Pending>,
    outbox: VecDeque<(SocketAddr, Vec<u8>)>,
    spare: Vec<Vec<u8>>,
    notes: VecDeque<Note>,
}

enum Note {
    Up(FocaId),
    Down(FocaId),
    SuspectStarted(FocaId),
    Rejoined,
}

impl Runtime<FocaId> for Collect {
    fn notify(&mut self, notification: Notification<'_, FocaId>) {
        match notification {
            Notification::MemberUp(id) => self.notes.push_back(Note::Up(*id)),
            Notification::MemberDown(id) => self.notes.push_back(Note::Down(*id)),
            Notification::Rename(old, new) => {
                self.notes.push_back(Note::Down(*old));
                self.notes.push_back(Note::Up(*new));
            }
            Notification::Rejoin(_) => self.notes.push_back(Note::Rejoined),
            _ => {}
        }
    }

    fn send_to(&mut self, to: FocaId, data: &[u8]) {
        let mut buf = self.spare.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(data);
        self.outbox.push_back((SocketAddr::V4(to.addr), buf));
    }

    fn submit_after(&mut self, event: Timer<FocaId>, after: Duration) {
        if let Timer::ChangeSuspectToDown { member_id, .. } = &event {
            self.notes.push_back(Note::SuspectStarted(*member_id));
        }
        self.seq += 1;
        let after = u64::try_from(after.as_micros()).unwrap_or(u64::MAX);
        self.timers.push(Pending {
            at: self.now.saturating_add(after),
            seq: self.seq,
            timer: event,
        });
    }
}

/// The foca configuration used for `timing` in a cluster of `cluster_size`: foca's
/// `new_lan` with every shared knob set to swim's value. With `lan_announce`, the announce
/// periods stay `new_lan`'s own (30 s to 1 member, 65 s to down members) instead of swim's
/// anti-entropy and rejoin periods.
pub fn config(timing: &Timing, cluster_size: usize, lan_announce: bool) -> Config {
    let n = NonZeroU32::new(cluster_size.max(1) as u32).expect("max(1) is non-zero");
    let mut config = Config::new_lan(n);
    config.probe_period = timing.ping_interval;
    config.probe_rtt = timing.ping_timeout;
    config.num_indirect_probes =
        NonZeroUsize::new(timing.ping_req_count.max(1)).expect("max(1) is non-zero");
    // swim sends each fact retransmit_mult * ceil(log10(N + 1)) times.
    let log = ((cluster_size as f64) + 1.0).log10().ceil().max(1.0) as u32;
    let sends = (timing.retransmit_mult * log).clamp(1, 255) as u8;
    config.max_transmissions = NonZeroU8::new(sends).expect("clamped to 1..=255");
    config.suspect_to_down_after = timing.suspect_timeout;
    config.remove_down_after = Some(timing.reap_timeout);
    config.max_packet_size = NonZeroUsize::new(1452).expect("non-zero");
    config.notify_down_members = true;
    config.periodic_gossip = Some(PeriodicParams {
        frequency: timing.gossip_interval,
        num_members: NonZeroUsize::new(timing.gossip_fanout.max(1)).expect("non-zero"),
    });
    // foca's repair mechanism is the announce (answered with a feed of members); swim's is
    // one anti-entropy exchange per sync_interval: same period, one member.
    config.periodic_announce = Some(PeriodicParams {
        frequency: timing.sync_interval,
        num_members: NonZeroUsize::new(1).expect("non-zero"),
    });
    // swim's rejoin round contacts one offline member every rejoin_interval.
    config.periodic_announce_to_down_members = Some(PeriodicParams {
        frequency: timing.rejoin_interval,
        num_members: NonZeroUsize::new(1).expect("non-zero"),
    });
    if lan_announce {
        let lan = Config::new_lan(n);
        config.periodic_announce = lan.periodic_announce;
        config.periodic_announce_to_down_members = lan.periodic_announce_to_down_members;
    }
    config
}

/// Which foca configuration a simulated node runs.
pub trait Flavour: Send {
    /// The implementation's name in `swim-sim --impl` and in JSON.
    const NAME: &'static str;

    /// The configuration for a node in a cluster of `cluster_size` with `timing`.
    fn config(timing: &Timing, cluster_size: usize) -> Config;
}

/// foca's `new_lan` with swim's timing, anti-entropy mapped onto announces ([`config`]).
#[derive(Debug)]
pub struct Mapped;

impl Flavour for Mapped {
    const NAME: &'static str = "foca";

    fn config(timing: &Timing, cluster_size: usize) -> Config {
        config(timing, cluster_size, false)
    }
}

/// foca's `new_lan` with swim's timing but `new_lan`'s own announce periods ([`config`]).
#[derive(Debug)]
pub struct MappedLanAnnounce;

impl Flavour for MappedLanAnnounce {
    const NAME: &'static str = "foca-lan";

    fn config(timing: &Timing, cluster_size: usize) -> Config {
        config(timing, cluster_size, true)
    }
}

/// foca as its users run it on a LAN: `Config::new_lan(N)` untouched, swim's timing ignored.
#[derive(Debug)]
pub struct NewLan;

impl Flavour for NewLan {
    const NAME: &'static str = "foca-newlan";

    fn config(_timing: &Timing, cluster_size: usize) -> Config {
        let n = NonZeroU32::new(cluster_size.max(1) as u32).expect("max(1) is non-zero");
        // Nothing is changed, not even the packet size limit (new_lan's 1400 bytes): the
        // simulated network has no MTU and every node runs the same limit.
        Config::new_lan(n)
    }
}

/// A foca node in the simulator, with the mapped configuration ([`config`]).
pub type Foca = FocaAdapter<Mapped>;

/// A foca node with `new_lan`'s own announce periods (`swim-sim --impl foca-lan`).
pub type FocaLan = FocaAdapter<MappedLanAnnounce>;

/// A foca node with `Config::new_lan(N)` untouched (`swim-sim --impl foca-newlan`).
pub type FocaNewLan = FocaAdapter<NewLan>;

/// A foca node in the simulator, configured by its [`Flavour`] `F`.
pub struct FocaAdapter<F: Flavour> {
    flavour: PhantomData<F>,
    foca: FocaNode<FocaId, BinaryCodec, ChaCha8Rng, MetaHandler>,
    runtime: Collect,
    meta: MetaHandler,
    index: u32,
    meta_version: u32,
    seen: BTreeMap<u32, ()>,
    errors: u64,
}

impl<F: Flavour> FocaAdapter<F> {
    /// Datagrams or timers foca refused with an error (decode failures, stale timers...).
    pub fn errors(&self) -> u64 {
        self.errors
    }

    fn find(&self, subject: u32) -> Option<&Member<FocaId>> {
        self.foca.iter_membership_state().find(|m| m.id().index() == Some(subject))
    }
}

impl<F: Flavour> Protocol for FocaAdapter<F> {
    const NAME: &'static str = F::NAME;
    const REPORTS_HEARD_SUSPICIONS: bool = false;

    fn new(
        index: u32,
        life: u32,
        cluster_size: usize,
        timing: &Timing,
        seed: u64,
        now: Instant,
    ) -> Self {
        let SocketAddr::V4(v4) = addr(index) else { unreachable!("simulated addresses are IPv4") };
        let id = FocaId { addr: v4, bump: life as u16 };
        let meta = MetaHandler::default();
        let foca = FocaNode::with_custom_broadcast(
            id,
            F::config(timing, cluster_size),
            ChaCha8Rng::seed_from_u64(seed),
            BinaryCodec,
            meta.clone(),
        );
        FocaAdapter {
            flavour: PhantomData,
            foca,
            runtime: Collect { now: now.as_micros(), ..Collect::default() },
            meta,
            index,
            meta_version: 0,
            seen: BTreeMap::new(),
            errors: 0,
        }
    }

    fn join(&mut self, now: Instant, seed: SocketAddr) {
        self.runtime.now = now.as_micros();
        let SocketAddr::V4(addr) = seed else { return };
        // Announces are accepted by any identity at the address.
        if self.foca.announce(FocaId { addr, bump: 0 }, &mut self.runtime).is_err() {
            self.errors += 1;
        }
    }

    fn leave(&mut self, now: Instant) {
        self.runtime.now = now.as_micros();
        if self.foca.leave_cluster(&mut self.runtime).is_err() {
            self.errors += 1;
        }
    }

    fn set_metadata(&mut self, now: Instant, _key: &str, value: &[u8]) -> bool {
        self.runtime.now = now.as_micros();
        self.meta_version += 1;
        let mut item = Vec::with_capacity(8 + value.len());
        item.extend_from_slice(&self.index.to_be_bytes());
        item.extend_from_slice(&self.meta_version.to_be_bytes());
        item.extend_from_slice(value);
        let ok = self.foca.add_broadcast(&item).is_ok();
        // Our own change is not news to report.
        self.meta.store().changed.clear();
        // foca sends custom broadcasts only piggybacked or with `broadcast`.
        if self.foca.broadcast(&mut self.runtime).is_err() {
            self.errors += 1;
        }
        ok
    }

    fn handle_datagram(&mut self, now: Instant, _from: SocketAddr, bytes: &[u8]) {
        self.runtime.now = now.as_micros();
        if self.foca.handle_data(bytes, &mut self.runtime).is_err() {
            self.errors += 1;
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        let now = now.as_micros();
        self.runtime.now = now;
        while self.runtime.timers.peek().is_some_and(|p| p.at <= now) {
            let Some(pending) = self.runtime.timers.pop() else {
                break;
            };
            if self.foca.handle_timer(pending.timer, &mut self.runtime).is_err() {
                self.errors += 1;
            }
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.runtime.timers.peek().map(|p| Instant::from_micros(p.at))
    }

    fn drain_transmits(&mut self, mut send: impl FnMut(SocketAddr, &[u8])) {
        while let Some((to, bytes)) = self.runtime.outbox.pop_front() {
            send(to, &bytes);
            if self.runtime.spare.len() < 32 {
                self.runtime.spare.push(bytes);
            }
        }
    }

    fn poll_report(&mut self) -> Option<Report> {
        let changed = self.meta.store().changed.pop();
        if let Some(subject) = changed {
            let subject = Some(subject).filter(|&s| s != self.index);
            return Some(Report::new(Change::Metadata, subject, None));
        }
        loop {
            let note = self.runtime.notes.pop_front()?;
            let report = match note {
                Note::Up(id) => {
                    let Some(s) = id.index() else { continue };
                    let first = self.seen.insert(s, ()).is_none();
                    let change = if first { Change::Joined } else { Change::Alive };
                    Report::new(change, Some(s), Some(true))
                }
                Note::Down(id) => {
                    let Some(s) = id.index() else { continue };
                    // A rename reports the old identity down and the new one up: only a
                    // member with no live identity left is offline.
                    let online = self.foca.iter_members().any(|m| m.id().index() == Some(s));
                    if online {
                        continue;
                    }
                    Report::new(Change::Offline, Some(s), Some(false))
                }
                Note::SuspectStarted(id) => {
                    let Some(s) = id.index() else { continue };
                    // foca keeps suspects among its active members; only the member whose
                    // probe failed runs a suspicion timer, so every one is its own.
                    Report { firsthand: true, ..Report::new(Change::Suspect, Some(s), None) }
                }
                Note::Rejoined => Report::new(Change::Rejoined, None, None),
            };
            return Some(report);
        }
    }

    fn sees_online(&self, subject: u32) -> bool {
        self.foca.iter_members().any(|m| m.id().index() == Some(subject))
    }

    fn sees_available(&self, subject: u32) -> bool {
        // foca's active members are the alive and the suspect ones.
        self.sees_online(subject)
    }

    fn knows(&self, subject: u32) -> bool {
        self.find(subject).is_some()
    }

    fn entries(&self) -> usize {
        self.foca.iter_membership_state().len() + 1
    }

    fn has_metadata(&self, subject: u32, _key: &str, value: &[u8]) -> bool {
        self.meta.store().values.get(&subject).is_some_and(|(_, v)| v.as_slice() == value)
    }
}
