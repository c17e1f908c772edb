//! The discrete-event engine: a virtual clock, one binary heap of deliveries and timer
//! wake-ups ordered by (time, sequence), and a virtual network between N nodes.
//!
//! Everything random comes from the master seed: the network draws from its own ChaCha8
//! stream, and every node (and every restart of it) gets a seed derived from the master seed,
//! its index and its life. Nothing iterates a hash map and the wall clock only sizes up work
//! (below), so a seed fixes the whole trace, summarised by [`Sim::digest`].
//!
//! # Execution model: windows of `latency_min`, run on several threads
//!
//! At N >= 1000 an event costs 10-40 µs, nearly all of it the node's own handling of a
//! datagram, so the engine runs nodes on several threads (a conservative, window-based
//! parallel discrete-event simulation):
//!
//! - **Why a window is safe.** No datagram arrives sooner than [`NetConfig::latency_min`]
//!   after it was sent (jitter, reordering and slow members only add). So if the earliest
//!   queued entry is at T, nothing a node sends while handling events in
//!   `[T, T + latency_min)` can arrive inside that window: every node's inputs for the window
//!   are already queued, and nodes are independent. The engine takes the window's entries
//!   out of the queue, groups them by node, and runs each node through its own entries in
//!   (time, sequence) order. Timer wake-ups and paused backlog that a node schedules for
//!   itself inside the window join that node's local queue, after everything queued before
//!   (as a fresh sequence number would put them). A window never passes `run_until`'s
//!   `until`, so commands (crash, partition, ...) still take effect at exact times.
//! - **Threads.** Nodes come in blocks of eight. The calling thread and its workers (one
//!   fewer than [`Sim::set_threads`], spawned by the first window worth splitting in each
//!   `run_until`) claim the window's non-empty blocks one at a time until none is left, so
//!   one expensive event (a large anti-entropy exchange) does not leave a thread idle. The
//!   calling thread never waits for a worker to start (on a busy machine that can take
//!   milliseconds): it claims whatever is left, then closes the window, so a worker that
//!   wakes late skips it. Windows whose expected work (events times a running average of
//!   the wall time per event) is small run on the calling thread alone: a hand-off would
//!   cost more than it saves. The wall clock only chooses how a window runs, never what it
//!   computes.
//! - **Why it stays deterministic.** Nothing shared is touched inside a window: a node's
//!   sends, reports, handled datagrams (for the digest) and queue entries due after the
//!   window are recorded as `Effect`s in its thread's `Outbox`, tagged with the time and the
//!   node. After the window the calling thread applies the effects of all outboxes in
//!   (time, node, order within the node) order: only then does the network draw loss,
//!   jitter and duplication from its random stream and queue deliveries, the digest advance
//!   and observers hear reports. That order depends neither on the number of threads nor on
//!   which thread ran which node, so a seed gives the same trace however the engine runs.
//!   (Reports of the same microsecond reach observers in node order, and deliveries to a
//!   node at the same microsecond are handled in (send time, sender) order.)
//! - With `latency_min` zero a window is one microsecond: a datagram sent at T to arrive at T
//!   is queued after the window and handled in the next one, still at T.
//!
//! Cost per event is what makes 10,000 nodes possible: each node has at most one live timer
//! entry (re-armed only when its `poll_timeout` changes; stale entries are skipped by
//! generation), datagram payloads live in a recycled slab, and a node's view of who is online
//! is a bitset kept up to date from its reports rather than recomputed.

use std::cmp::Ordering;
use std::collections::{BTreeSet, BinaryHeap};
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError, RwLock, mpsc};
use std::thread::Scope;
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use swim_core::Instant;

use crate::digest::{Digest, mix64};
use crate::protocol::{Protocol, Report, Timing, addr, index_of};

/// The virtual network's behaviour. Latency of a datagram is the link's base latency (fixed per
/// link, drawn from `latency_min..=latency_max` by hashing the pair) plus uniform jitter, plus
/// `reorder_delay` with probability `reorder`.
#[derive(Clone, Debug)]
pub struct NetConfig {
    /// Smallest base latency of a link. Also the engine's window length (see the module
    /// docs): the larger, the more events run in parallel.
    pub latency_min: Duration,
    /// Largest base latency of a link.
    pub latency_max: Duration,
    /// Per-datagram extra delay, uniform in `0..jitter`; overlapping delays reorder datagrams.
    pub jitter: Duration,
    /// Probability a datagram is lost.
    pub loss: f64,
    /// Probability a datagram is delivered twice.
    pub duplicate: f64,
    /// Probability a datagram is held back by `reorder_delay`.
    pub reorder: f64,
    /// Extra delay of a reordered datagram.
    pub reorder_delay: Duration,
}

impl Default for NetConfig {
    /// A LAN: 1–5 ms links, 0.5 ms jitter, nothing lost.
    fn default() -> Self {
        NetConfig {
            latency_min: Duration::from_millis(1),
            latency_max: Duration::from_millis(5),
            jitter: Duration::from_micros(500),
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay: Duration::from_millis(20),
        }
    }
}

/// Counts of what the engine did.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Deliveries and timer wake-ups handed to nodes.
    pub events: u64,
    /// Timer entries skipped because the node re-armed or went down.
    pub stale_timers: u64,
    /// Datagrams nodes sent.
    pub datagrams_sent: u64,
    /// Bytes nodes sent.
    pub bytes_sent: u64,
    /// Datagrams handed to a node.
    pub delivered: u64,
    /// Datagrams dropped by random loss.
    pub lost: u64,
    /// Datagrams dropped by a partition or cut link.
    pub partitioned: u64,
    /// Datagrams to a crashed node or an unknown address.
    pub undeliverable: u64,
    /// Extra copies delivered.
    pub duplicated: u64,
    /// Times a node asked to be woken at or before the time it was just woken (a core that
    /// does this would spin; the engine nudges it by 1 µs and counts).
    pub timer_spins: u64,
}

impl Stats {
    /// Adds the counts a thread kept during a window (sums do not depend on order).
    fn absorb(&mut self, shard: &mut Stats) {
        let shard = std::mem::take(shard);
        self.events += shard.events;
        self.stale_timers += shard.stale_timers;
        self.datagrams_sent += shard.datagrams_sent;
        self.bytes_sent += shard.bytes_sent;
        self.delivered += shard.delivered;
        self.lost += shard.lost;
        self.partitioned += shard.partitioned;
        self.undeliverable += shard.undeliverable;
        self.duplicated += shard.duplicated;
        self.timer_spins += shard.timer_spins;
    }
}

/// A report from a node, with when and which node.
#[derive(Clone, Copy, Debug)]
pub struct Observation {
    /// When the node reported it.
    pub at: Instant,
    /// The reporting node.
    pub viewer: u32,
    /// What it reported.
    pub report: Report,
    /// How many other nodes the viewer sees online after this report.
    pub online_count: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Deliver,
    Timer,
}

/// One queue entry; `data` is a payload slot for deliveries and a generation for timers.
#[derive(Clone, Copy, Debug)]
struct Entry {
    at: u64,
    seq: u64,
    kind: Kind,
    node: u32,
    from: u32,
    data: u32,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    /// Reversed, so `BinaryHeap` pops the earliest (time, sequence) first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Up,
    Paused { until: u64 },
    Down,
}

struct Slot<P> {
    proto: Option<P>,
    state: State,
    timer_at: Option<u64>,
    timer_gen: u32,
    life: u32,
    /// Bit s set: this node sees node s online.
    online: Vec<u64>,
    online_count: u32,
}

/// Payloads of datagrams in flight, recycled. Read by every thread during a window, written
/// only between windows.
#[derive(Default)]
struct Slab {
    payloads: Vec<Vec<u8>>,
    free: Vec<u32>,
}

impl Slab {
    fn store(&mut self, bytes: &[u8]) -> u32 {
        if let Some(slot) = self.free.pop() {
            let buf = &mut self.payloads[slot as usize];
            buf.clear();
            buf.extend_from_slice(bytes);
            slot
        } else {
            self.payloads.push(bytes.to_vec());
            (self.payloads.len() - 1) as u32
        }
    }
}

/// The shared half of the engine: queue, network model, digest. Only touched between
/// windows, when effects are applied in a fixed order.
struct Net {
    heap: BinaryHeap<Entry>,
    seq: u64,
    rng: ChaCha8Rng,
    config: NetConfig,
    loss_threshold: u64,
    duplicate_threshold: u64,
    reorder_threshold: u64,
    group: Vec<u8>,
    blocked: BTreeSet<(u8, u8)>,
    cuts: BTreeSet<(u32, u32)>,
    /// Extra delay, in microseconds, before each node handles a datagram (slow members).
    slow: Vec<u64>,
    link_salt: u64,
    stats: Stats,
    digest: Digest,
    nodes: u32,
}

fn threshold(p: f64) -> u64 {
    if p <= 0.0 {
        0
    } else if p >= 1.0 {
        u64::MAX
    } else {
        (p * u64::MAX as f64) as u64
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl Net {
    fn push(&mut self, at: u64, kind: Kind, node: u32, from: u32, data: u32) {
        self.seq += 1;
        self.heap.push(Entry { at, seq: self.seq, kind, node, from, data });
    }

    fn chance(&mut self, threshold: u64) -> bool {
        threshold != 0 && self.rng.next_u64() < threshold
    }

    fn blocked(&self, from: u32, to: u32) -> bool {
        (!self.blocked.is_empty()
            && self.blocked.contains(&(self.group[from as usize], self.group[to as usize])))
            || (!self.cuts.is_empty() && self.cuts.contains(&(from, to)))
    }

    fn latency(&mut self, from: u32, to: u32) -> u64 {
        let min = micros(self.config.latency_min);
        let span = micros(self.config.latency_max).saturating_sub(min);
        let (a, b) = (from.min(to), from.max(to));
        let base = min + mix64(self.link_salt ^ (u64::from(a) << 32 | u64::from(b))) % (span + 1);
        let jitter = micros(self.config.jitter);
        let extra = if jitter == 0 { 0 } else { self.rng.next_u64() % jitter };
        base + extra
    }

    fn send(&mut self, slab: &mut Slab, now: u64, from: u32, to: SocketAddr, bytes: &[u8]) {
        self.stats.datagrams_sent += 1;
        self.stats.bytes_sent += bytes.len() as u64;
        let Some(to) = index_of(to).filter(|&t| t < self.nodes) else {
            self.stats.undeliverable += 1;
            return;
        };
        if self.blocked(from, to) {
            self.stats.partitioned += 1;
            return;
        }
        if self.chance(self.loss_threshold) {
            self.stats.lost += 1;
            return;
        }
        let copies = if self.chance(self.duplicate_threshold) {
            self.stats.duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            let mut at = now + self.latency(from, to) + self.slow[to as usize];
            if self.chance(self.reorder_threshold) {
                at += micros(self.config.reorder_delay);
            }
            let slot = slab.store(bytes);
            self.push(at, Kind::Deliver, to, from, slot);
        }
    }

    /// Applies what the threads of a window recorded, in (time, node, order within the node)
    /// order, which no thread count or claim order changes; then recycles the payloads the
    /// window consumed (only now: the digest reads them here).
    fn apply(
        &mut self,
        outboxes: &mut [&mut Outbox],
        order: &mut Vec<(u64, u32, u32, u32)>,
        pending: &mut Vec<Observation>,
        slab: &mut Slab,
    ) {
        order.clear();
        for (s, outbox) in outboxes.iter().enumerate() {
            let tagged = outbox.effects.iter().enumerate();
            order.extend(tagged.map(|(k, e)| (e.at, e.node, s as u32, k as u32)));
        }
        // A node's effects all sit in one outbox, in the order it produced them: (outbox,
        // index) only orders effects of the same node at the same time.
        order.sort_unstable();
        for &(_, _, s, k) in order.iter() {
            let outbox = &outboxes[s as usize];
            let Tagged { at, node, effect } = outbox.effects[k as usize];
            match effect {
                Effect::Delivered { from, slot } => {
                    self.digest.write(at);
                    self.digest.write(u64::from(from) << 32 | u64::from(node));
                    self.digest.write_bytes(&slab.payloads[slot as usize]);
                }
                Effect::Sent { to, start, len } => {
                    self.send(slab, at, node, to, &outbox.bytes[start..start + len]);
                }
                Effect::Reported { report, online_count } => {
                    self.digest.write(at);
                    self.digest.write(
                        u64::from(node) << 40
                            | report.change.code() << 32
                            | u64::from(report.subject.unwrap_or(u32::MAX)),
                    );
                    pending.push(Observation {
                        at: Instant::from_micros(at),
                        viewer: node,
                        report,
                        online_count,
                    });
                }
                Effect::Queued { at, kind, from, data } => self.push(at, kind, node, from, data),
            }
        }
        // Which thread freed a slot varies from run to run; sorted, the slab's reuse order
        // does not.
        let freed = slab.free.len();
        for outbox in outboxes.iter_mut() {
            slab.free.append(&mut outbox.freed);
        }
        slab.free[freed..].sort_unstable();
        for outbox in outboxes {
            self.stats.absorb(&mut outbox.stats);
            outbox.effects.clear();
            outbox.bytes.clear();
        }
    }
}

/// Something a node did inside a window that touches shared state, applied after the window
/// by [`Net::apply`].
#[derive(Clone, Copy, Debug)]
enum Effect {
    /// The node handled the datagram in payload slot `slot` (the digest records it).
    Delivered { from: u32, slot: u32 },
    /// The node sent `bytes[start..start + len]` of its outbox.
    Sent { to: SocketAddr, start: usize, len: usize },
    /// The node reported something.
    Reported { report: Report, online_count: u32 },
    /// A queue entry for the node itself, due after the window.
    Queued { at: u64, kind: Kind, from: u32, data: u32 },
}

/// An effect with when and which node produced it.
#[derive(Clone, Copy, Debug)]
struct Tagged {
    at: u64,
    node: u32,
    effect: Effect,
}

/// What the nodes one thread ran did in a window (one outbox per thread); kept between
/// windows to reuse its buffers.
#[derive(Default)]
struct Outbox {
    effects: Vec<Tagged>,
    /// Payloads of `Effect::Sent`.
    bytes: Vec<u8>,
    /// Payload slots handled (or dropped) in the window.
    freed: Vec<u32>,
    stats: Stats,
    /// The events of the node being run, and those it schedules for itself in the window.
    queue: BinaryHeap<Entry>,
    /// Sequence numbers for entries a node schedules inside the window: they start above
    /// every queued entry's, so they sort after everything queued before, as a fresh entry
    /// in the shared queue would.
    seq: u64,
}

/// What handling a node's events reads besides the node itself.
struct Window<'a> {
    /// The window's last microsecond; `None` when settling a node after a command, where
    /// everything a node schedules goes to the shared queue.
    last: Option<u64>,
    /// The payload slab (only read during a window).
    payloads: &'a [Vec<u8>],
    /// Number of nodes, to ignore reports about unknown subjects.
    nodes: usize,
}

impl Outbox {
    /// Runs the nodes of a block (`slots`, the first being node `first`) through `events`,
    /// which are grouped by node and, within a node, in (time, sequence) order.
    fn run_block<P: Protocol>(
        &mut self,
        slots: &mut [Slot<P>],
        first: usize,
        events: &[Entry],
        window: &Window<'_>,
    ) {
        for group in events.chunk_by(|a, b| a.node == b.node) {
            let slot = &mut slots[group[0].node as usize - first];
            self.queue.clear();
            self.queue.extend(group.iter().copied());
            while let Some(entry) = self.queue.pop() {
                match entry.kind {
                    Kind::Deliver => self.deliver(slot, entry, window),
                    Kind::Timer => self.wake(slot, entry, window),
                }
            }
        }
    }

    /// Queues an entry for `node` inside the window if it falls there, else for the shared
    /// queue after the window.
    fn schedule(&mut self, window: &Window<'_>, now: u64, node: u32, entry: (u64, Kind, u32, u32)) {
        let (at, kind, from, data) = entry;
        if window.last.is_some_and(|last| at <= last) {
            self.seq += 1;
            self.queue.push(Entry { at, seq: self.seq, kind, node, from, data });
        } else {
            let effect = Effect::Queued { at, kind, from, data };
            self.effects.push(Tagged { at: now, node, effect });
        }
    }

    fn deliver<P: Protocol>(&mut self, slot: &mut Slot<P>, entry: Entry, window: &Window<'_>) {
        let now = entry.at;
        match slot.state {
            State::Down => {
                self.stats.undeliverable += 1;
                self.freed.push(entry.data);
                return;
            }
            State::Paused { until } if until > now => {
                // Still in the socket buffer: same order, handled when the pause ends.
                let backlog = (until, Kind::Deliver, entry.from, entry.data);
                self.schedule(window, now, entry.node, backlog);
                return;
            }
            _ => slot.state = State::Up,
        }
        let Some(proto) = slot.proto.as_mut() else {
            self.freed.push(entry.data);
            return;
        };
        let effect = Effect::Delivered { from: entry.from, slot: entry.data };
        self.effects.push(Tagged { at: now, node: entry.node, effect });
        self.stats.delivered += 1;
        self.stats.events += 1;
        let payload = &window.payloads[entry.data as usize];
        proto.handle_datagram(Instant::from_micros(now), addr(entry.from), payload);
        self.freed.push(entry.data);
        self.settle(slot, entry.node, now, false, window);
    }

    fn wake<P: Protocol>(&mut self, slot: &mut Slot<P>, entry: Entry, window: &Window<'_>) {
        let now = entry.at;
        if slot.timer_gen != entry.data || slot.state == State::Down {
            self.stats.stale_timers += 1;
            return;
        }
        if let State::Paused { until } = slot.state {
            if until > now {
                slot.timer_at = Some(until);
                self.schedule(window, now, entry.node, (until, Kind::Timer, 0, entry.data));
                return;
            }
            slot.state = State::Up;
        }
        slot.timer_at = None;
        let Some(proto) = slot.proto.as_mut() else {
            return;
        };
        self.stats.events += 1;
        proto.handle_timeout(Instant::from_micros(now));
        self.settle(slot, entry.node, now, true, window);
    }

    /// After any input or command: record what node `i` wants sent and its reports, and
    /// re-arm its timer if its deadline moved.
    fn settle<P: Protocol>(
        &mut self,
        slot: &mut Slot<P>,
        i: u32,
        now: u64,
        woke: bool,
        window: &Window<'_>,
    ) {
        let Some(proto) = slot.proto.as_mut() else {
            return;
        };
        let (effects, bytes) = (&mut self.effects, &mut self.bytes);
        proto.drain_transmits(|to, datagram| {
            let start = bytes.len();
            bytes.extend_from_slice(datagram);
            let effect = Effect::Sent { to, start, len: datagram.len() };
            effects.push(Tagged { at: now, node: i, effect });
        });
        while let Some(report) = proto.poll_report() {
            if let Some(s) = report.subject.filter(|&s| (s as usize) < window.nodes) {
                let (word, bit) = ((s / 64) as usize, 1u64 << (s % 64));
                if let (Some(w), Some(online)) = (slot.online.get_mut(word), report.online) {
                    let was = *w & bit != 0;
                    if was != online {
                        *w ^= bit;
                        if online {
                            slot.online_count += 1;
                        } else {
                            slot.online_count -= 1;
                        }
                    }
                }
            }
            let effect = Effect::Reported { report, online_count: slot.online_count };
            self.effects.push(Tagged { at: now, node: i, effect });
        }
        let deadline = proto.poll_timeout().map(|t| {
            let t = t.as_micros();
            if woke && t <= now {
                self.stats.timer_spins += 1;
                now + 1
            } else if t <= now {
                // Due now (e.g. gossip brought forward by a command): wake at once, but
                // never at a time already handled.
                now
            } else {
                t
            }
        });
        if deadline != slot.timer_at {
            slot.timer_gen = slot.timer_gen.wrapping_add(1);
            slot.timer_at = deadline;
            if let Some(at) = deadline {
                self.schedule(window, now, i, (at, Kind::Timer, 0, slot.timer_gen));
            }
        }
    }
}

/// Windows expected to take less wall time than this (nanoseconds) run on the calling
/// thread alone: handing work to a worker and back costs about 6 µs. A swim event costs
/// 10-40 µs at N >= 1000, the benchmark's trivial protocol 0.1 µs.
const PARALLEL_MIN_WORK_NS: f64 = 50_000.0;

/// The most threads a window is spread over, whatever [`Sim::set_threads`] asks.
const MAX_THREADS: usize = 64;

/// Nodes per block, the unit threads claim: small enough to balance windows of a few dozen
/// events, large enough that a run needs few locks.
const BLOCK: usize = 8;

/// The entries of one window, grouped by block.
#[derive(Default)]
struct Batch {
    /// The window's last microsecond.
    last: u64,
    /// Sorted by (node, time, sequence).
    entries: Vec<Entry>,
    /// (block, first entry, end) of each block with entries.
    groups: Vec<(usize, usize, usize)>,
}

impl Batch {
    /// Takes every entry due by `self.last` out of the queue.
    fn fill(&mut self, heap: &mut BinaryHeap<Entry>) {
        self.entries.clear();
        while let Some(entry) = heap.peek()
            && entry.at <= self.last
        {
            self.entries.extend(heap.pop());
        }
        self.entries.sort_unstable_by_key(|e| (e.node, e.at, e.seq));
        self.groups.clear();
        let mut from = 0;
        for run in self.entries.chunk_by(|a, b| a.node as usize / BLOCK == b.node as usize / BLOCK)
        {
            self.groups.push((run[0].node as usize / BLOCK, from, from + run.len()));
            from += run.len();
        }
    }
}

/// What the threads of one [`Sim::run_until`] share. Each thread claims the next unclaimed
/// block of the batch until none is left, so an expensive event (a large anti-entropy
/// exchange) does not leave the other threads idle; which thread ran a node changes nothing
/// (module docs).
struct Shared<'s, P> {
    /// The nodes in blocks; a block is locked only by the thread that claimed it.
    blocks: Vec<Mutex<&'s mut [Slot<P>]>>,
    /// Written by the calling thread between windows, read by all during one.
    batch: RwLock<Batch>,
    slab: &'s RwLock<Slab>,
    /// Index of the next unclaimed group of the batch.
    next: AtomicUsize,
    nodes: usize,
    /// One per thread, the calling thread's first; each thread locks its own while it works,
    /// the calling thread all of them between windows.
    outboxes: Vec<Mutex<Outbox>>,
    gate: Mutex<Gate>,
    /// Signalled when the last worker leaves a closed window.
    left: Condvar,
}

/// Which window workers may join. The calling thread never waits for a worker to *start*:
/// on a busy machine a worker may not be scheduled for milliseconds, so the calling thread
/// claims every block itself and closes the window; a worker that wakes up late finds it
/// closed and does nothing. It only waits for workers already inside.
#[derive(Default)]
struct Gate {
    window: u64,
    open: bool,
    /// Workers inside the window now.
    active: usize,
    /// Workers that joined it.
    joined: usize,
}

impl<P: Protocol> Shared<'_, P> {
    /// Runs unclaimed groups of the current batch into `outbox` until none is left.
    fn work(&self, outbox: &mut Outbox) {
        let batch = self.batch.read().unwrap_or_else(PoisonError::into_inner);
        let slab = self.slab.read().unwrap_or_else(PoisonError::into_inner);
        let window = Window { last: Some(batch.last), payloads: &slab.payloads, nodes: self.nodes };
        loop {
            // Relaxed: the counter only hands out indices; the locks order everything else.
            let g = self.next.fetch_add(1, AtomicOrdering::Relaxed);
            let Some(&(block, from, to)) = batch.groups.get(g) else {
                break;
            };
            let mut slots = self.blocks[block].lock().unwrap_or_else(PoisonError::into_inner);
            outbox.run_block(&mut slots, block * BLOCK, &batch.entries[from..to], &window);
        }
    }

    fn gate(&self) -> MutexGuard<'_, Gate> {
        self.gate.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Lets workers join the batch just filled.
    fn open(&self) -> u64 {
        self.next.store(0, AtomicOrdering::Relaxed);
        let mut gate = self.gate();
        gate.window += 1;
        gate.open = true;
        gate.joined = 0;
        gate.window
    }

    /// Worker `thread`'s part in `window`, if that window is still open.
    fn help(&self, thread: usize, window: u64) {
        {
            let mut gate = self.gate();
            if !gate.open || gate.window != window {
                return;
            }
            gate.active += 1;
            gate.joined += 1;
        }
        self.work(&mut lock(&self.outboxes[thread]));
        let mut gate = self.gate();
        gate.active -= 1;
        if gate.active == 0 {
            self.left.notify_one();
        }
    }

    /// Closes the window to late workers, waits for those inside; returns how many joined.
    fn close(&self) -> usize {
        let mut gate = self.gate();
        gate.open = false;
        while gate.active > 0 {
            gate = self.left.wait(gate).unwrap_or_else(PoisonError::into_inner);
        }
        gate.joined
    }
}

fn lock(outbox: &Mutex<Outbox>) -> MutexGuard<'_, Outbox> {
    outbox.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A thread that helps with windows for the length of one [`Sim::run_until`], spawned when
/// the first window worth splitting comes (spawning costs about 85 µs here, a wake-up a few).
struct Worker {
    windows: mpsc::Sender<u64>,
}

impl Worker {
    fn spawn<'scope, P: Protocol>(
        scope: &'scope Scope<'scope, '_>,
        shared: &'scope Shared<'_, P>,
        thread: usize,
    ) -> Self {
        let (windows, inbox) = mpsc::channel();
        scope.spawn(move || {
            for window in inbox {
                shared.help(thread, window);
            }
        });
        Worker { windows }
    }
}

/// N nodes of one implementation on a virtual network in virtual time.
pub struct Sim<P: Protocol> {
    nodes: Vec<Slot<P>>,
    net: Net,
    slab: RwLock<Slab>,
    now: u64,
    seed: u64,
    timing: Timing,
    pending: Vec<Observation>,
    /// Threads a window may use.
    threads: usize,
    /// Smallest expected work (ns) worth spreading a window over threads.
    parallel_min_ns: f64,
    /// Running average of the wall time an event takes, to size windows up. The wall clock
    /// decides only how a window runs, never what it computes.
    event_ns: f64,
    /// The current window's entries (buffers reused).
    batch: Batch,
    /// One per thread (reused).
    outboxes: Vec<Outbox>,
    /// The effects of a window in the order they are applied (reused).
    order: Vec<(u64, u32, u32, u32)>,
}

impl<P: Protocol> Sim<P> {
    /// `n` nodes created at time zero, none joined. All randomness derives from `seed`.
    /// Windows use as many threads as the machine has cores (see [`Sim::set_threads`]).
    pub fn new(n: usize, seed: u64, timing: Timing, net: NetConfig) -> Self {
        let words = n.div_ceil(64);
        let threads = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        let mut sim = Sim {
            nodes: Vec::with_capacity(n),
            net: Net {
                heap: BinaryHeap::with_capacity(n * 8),
                seq: 0,
                rng: ChaCha8Rng::seed_from_u64(mix64(seed ^ 0x6e65_7477_6f72_6b00)),
                loss_threshold: threshold(net.loss),
                duplicate_threshold: threshold(net.duplicate),
                reorder_threshold: threshold(net.reorder),
                config: net,
                group: vec![0; n],
                blocked: BTreeSet::new(),
                cuts: BTreeSet::new(),
                slow: vec![0; n],
                link_salt: mix64(seed ^ 0x6c69_6e6b),
                stats: Stats::default(),
                digest: Digest::new(seed),
                nodes: n as u32,
            },
            slab: RwLock::new(Slab::default()),
            now: 0,
            seed,
            timing,
            pending: Vec::new(),
            threads: 1,
            parallel_min_ns: PARALLEL_MIN_WORK_NS,
            event_ns: 0.0,
            batch: Batch::default(),
            outboxes: vec![Outbox::default()],
            order: Vec::new(),
        };
        sim.set_threads(threads);
        for i in 0..n as u32 {
            let proto = P::new(i, 0, n, &sim.timing, sim.node_seed(i, 0), Instant::ZERO);
            sim.nodes.push(Slot {
                proto: Some(proto),
                state: State::Up,
                timer_at: None,
                timer_gen: 0,
                life: 0,
                online: vec![0; words],
                online_count: 0,
            });
            sim.settle(i);
        }
        sim
    }

    fn node_seed(&self, index: u32, life: u32) -> u64 {
        mix64(self.seed ^ mix64(u64::from(index) << 32 | u64::from(life)))
    }

    /// Runs windows on up to `threads` threads (clamped to 1..=64; 1 runs everything on the
    /// calling thread). Changes speed only: the trace and results are the same for any value.
    pub fn set_threads(&mut self, threads: usize) {
        self.threads = threads.clamp(1, MAX_THREADS);
        self.outboxes.resize_with(self.threads, Outbox::default);
    }

    // ------------------------------------------------------------ commands

    /// Node `i` joins through node `seed`, now.
    pub fn join(&mut self, i: u32, seed: u32) {
        let now = self.instant();
        if let Some(proto) = self.nodes[i as usize].proto.as_mut() {
            proto.join(now, addr(seed));
            self.settle(i);
        }
    }

    /// Node `i`'s process starts now (its first one, created unstarted by [`Sim::new`], is
    /// replaced, so its timers begin now rather than at time zero) and joins through `seed`.
    pub fn start(&mut self, i: u32, seed: u32) {
        let now = self.instant();
        let n = self.nodes.len();
        let life = self.nodes[i as usize].life;
        let mut proto = P::new(i, life, n, &self.timing, self.node_seed(i, life), now);
        proto.join(now, addr(seed));
        let slot = &mut self.nodes[i as usize];
        slot.proto = Some(proto);
        slot.state = State::Up;
        self.settle(i);
    }

    /// Node `i` leaves gracefully, now (it keeps running to spread the news).
    pub fn leave(&mut self, i: u32) {
        let now = self.instant();
        if let Some(proto) = self.nodes[i as usize].proto.as_mut() {
            proto.leave(now);
            self.settle(i);
        }
    }

    /// Node `i` publishes `key = value`; false if refused or the node is down.
    pub fn set_metadata(&mut self, i: u32, key: &str, value: &[u8]) -> bool {
        let now = self.instant();
        let Some(proto) = self.nodes[i as usize].proto.as_mut() else {
            return false;
        };
        let ok = proto.set_metadata(now, key, value);
        self.settle(i);
        ok
    }

    /// Node `i` crashes: its state is dropped, datagrams to it vanish, its timers stop.
    pub fn crash(&mut self, i: u32) {
        let slot = &mut self.nodes[i as usize];
        slot.proto = None;
        slot.state = State::Down;
        slot.timer_at = None;
        slot.timer_gen = slot.timer_gen.wrapping_add(1);
        slot.online.fill(0);
        slot.online_count = 0;
    }

    /// Node `i` starts again as a fresh process under the same name and address, and joins
    /// through `seed`.
    pub fn restart(&mut self, i: u32, seed: u32) {
        let now = self.instant();
        let n = self.nodes.len();
        let life = self.nodes[i as usize].life + 1;
        let node_seed = self.node_seed(i, life);
        let mut proto = P::new(i, life, n, &self.timing, node_seed, now);
        proto.join(now, addr(seed));
        let slot = &mut self.nodes[i as usize];
        slot.life = life;
        slot.proto = Some(proto);
        slot.state = State::Up;
        slot.online.fill(0);
        slot.online_count = 0;
        self.settle(i);
    }

    /// Node `i` handles every datagram `delay` after it arrives from now on (an overloaded
    /// member: its timers still fire on time, so its own probes see late acks); zero undoes it.
    pub fn slow(&mut self, i: u32, delay: Duration) {
        if let Some(slot) = self.net.slow.get_mut(i as usize) {
            *slot = micros(delay);
        }
    }

    /// Node `i` stops processing for `duration` (an overloaded member): datagrams wait in
    /// its socket buffer and its timers fire late, all at the end of the pause.
    pub fn pause(&mut self, i: u32, duration: Duration) {
        let until = self.now + micros(duration);
        let slot = &mut self.nodes[i as usize];
        if slot.state != State::Down {
            slot.state = State::Paused { until };
        }
    }

    /// Splits the nodes into groups (`group_of(i)`, at most 256): datagrams between
    /// different groups are dropped both ways until [`Sim::heal`].
    pub fn partition(&mut self, group_of: impl Fn(u32) -> u8) {
        for i in 0..self.nodes.len() as u32 {
            self.net.group[i as usize] = group_of(i);
        }
        let groups: BTreeSet<u8> = self.net.group.iter().copied().collect();
        for &a in &groups {
            for &b in &groups {
                if a != b {
                    self.net.blocked.insert((a, b));
                }
            }
        }
    }

    /// Drops datagrams from group `from` to group `to` only (a one-way partition); groups
    /// are assigned by `group_of`.
    pub fn partition_one_way(&mut self, group_of: impl Fn(u32) -> u8, from: u8, to: u8) {
        for i in 0..self.nodes.len() as u32 {
            self.net.group[i as usize] = group_of(i);
        }
        self.net.blocked.insert((from, to));
    }

    /// Drops datagrams on the directed link `from -> to`.
    pub fn cut(&mut self, from: u32, to: u32) {
        self.net.cuts.insert((from, to));
    }

    /// Removes every partition and cut.
    pub fn heal(&mut self) {
        self.net.blocked.clear();
        self.net.cuts.clear();
        self.net.group.fill(0);
    }

    /// Changes the loss probability from now on.
    pub fn set_loss(&mut self, loss: f64) {
        self.net.config.loss = loss;
        self.net.loss_threshold = threshold(loss);
    }

    // ------------------------------------------------------------- running

    /// Runs every event up to and including `until`, passing each node report to `observe`
    /// (after each window, in time order); the clock then reads `until`.
    pub fn run_until(&mut self, until: Instant, observe: &mut impl FnMut(&Observation)) {
        let until = until.as_micros();
        self.flush(observe);
        // Nothing sent in a window can arrive in it (module docs). With instantaneous links
        // the window is one microsecond and same-time arrivals go to the next window.
        let span = micros(self.net.config.latency_min).max(1);
        let Sim {
            nodes,
            net,
            slab,
            pending,
            threads,
            parallel_min_ns,
            event_ns,
            batch,
            outboxes,
            order,
            ..
        } = self;
        let shared = Shared {
            nodes: nodes.len(),
            blocks: nodes.chunks_mut(BLOCK).map(Mutex::new).collect(),
            batch: RwLock::new(std::mem::take(batch)),
            slab,
            next: AtomicUsize::new(0),
            outboxes: std::mem::take(outboxes).into_iter().map(Mutex::new).collect(),
            gate: Mutex::new(Gate::default()),
            left: Condvar::new(),
        };
        std::thread::scope(|scope| {
            let mut workers: Vec<Worker> = Vec::new();
            while let Some(first) = net.heap.peek().map(|e| e.at)
                && first <= until
            {
                let (events, split) = {
                    let mut batch = shared.batch.write().unwrap_or_else(PoisonError::into_inner);
                    batch.last = first.saturating_add(span - 1).min(until);
                    batch.fill(&mut net.heap);
                    let events = batch.entries.len();
                    let worth = events as f64 * *event_ns >= *parallel_min_ns;
                    (events, worth && *threads > 1 && batch.groups.len() > 1)
                };
                for outbox in &shared.outboxes {
                    lock(outbox).seq = net.seq;
                }
                let started = std::time::Instant::now();
                let mut joined = 0;
                if split {
                    if workers.is_empty() {
                        workers = (1..*threads).map(|t| Worker::spawn(scope, &shared, t)).collect();
                    }
                    let window = shared.open();
                    for worker in &workers {
                        // A worker only hangs up by panicking; the scope re-raises that.
                        let _ = worker.windows.send(window);
                    }
                    shared.work(&mut lock(&shared.outboxes[0]));
                    joined = shared.close();
                } else {
                    shared.next.store(0, AtomicOrdering::Relaxed);
                    shared.work(&mut lock(&shared.outboxes[0]));
                }
                // CPU time spent on the window, per event (the threads in it were all busy).
                let ns = started.elapsed().as_nanos() as f64 * (joined + 1) as f64;
                *event_ns += (ns / events as f64 - *event_ns) / 16.0;
                let mut filled: Vec<MutexGuard<'_, Outbox>> =
                    shared.outboxes.iter().map(lock).collect();
                let mut filled: Vec<&mut Outbox> = filled.iter_mut().map(|o| &mut **o).collect();
                let mut slab = slab.write().unwrap_or_else(PoisonError::into_inner);
                net.apply(&mut filled, order, pending, &mut slab);
                drop(slab);
                for observation in pending.drain(..) {
                    observe(&observation);
                }
            }
        });
        *batch = shared.batch.into_inner().unwrap_or_else(PoisonError::into_inner);
        *outboxes = shared
            .outboxes
            .into_iter()
            .map(|o| o.into_inner().unwrap_or_else(PoisonError::into_inner))
            .collect();
        self.now = self.now.max(until);
    }

    /// Runs for `duration` of virtual time.
    pub fn run_for(&mut self, duration: Duration, observe: &mut impl FnMut(&Observation)) {
        let until = Instant::from_micros(self.now + micros(duration));
        self.run_until(until, observe);
    }

    fn flush(&mut self, observe: &mut impl FnMut(&Observation)) {
        for observation in self.pending.drain(..) {
            observe(&observation);
        }
    }

    /// After a command: node `i`'s sends, reports and timer, applied at once.
    fn settle(&mut self, i: u32) {
        let window = Window { last: None, payloads: &[], nodes: self.nodes.len() };
        self.outboxes[0].settle(&mut self.nodes[i as usize], i, self.now, false, &window);
        let slab = self.slab.get_mut().unwrap_or_else(PoisonError::into_inner);
        let outbox = &mut self.outboxes[0];
        self.net.apply(&mut [outbox], &mut self.order, &mut self.pending, slab);
    }

    // ------------------------------------------------------------- queries

    /// The virtual time.
    pub fn instant(&self) -> Instant {
        Instant::from_micros(self.now)
    }

    /// Number of nodes (up or down).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Node `i`'s implementation, unless it is crashed.
    pub fn node(&self, i: u32) -> Option<&P> {
        self.nodes[i as usize].proto.as_ref()
    }

    /// Whether node `i` is running (not crashed; paused counts as running).
    pub fn is_up(&self, i: u32) -> bool {
        self.nodes[i as usize].state != State::Down
    }

    /// How many other nodes node `i` sees online, from its reports.
    pub fn online_count(&self, i: u32) -> u32 {
        self.nodes[i as usize].online_count
    }

    /// Whether node `viewer` sees node `subject` online, from its reports.
    pub fn sees_online(&self, viewer: u32, subject: u32) -> bool {
        let words = &self.nodes[viewer as usize].online;
        words.get((subject / 64) as usize).is_some_and(|w| w & (1 << (subject % 64)) != 0)
    }

    /// Whether every running node sees exactly the running nodes (others) online.
    pub fn views_agree(&self) -> bool {
        let up: Vec<u32> = (0..self.nodes.len() as u32).filter(|&i| self.is_up(i)).collect();
        let expected = up.len().saturating_sub(1) as u32;
        up.iter().all(|&v| {
            self.online_count(v) == expected && up.iter().all(|&s| s == v || self.sees_online(v, s))
        })
    }

    /// What the engine did so far.
    pub fn stats(&self) -> &Stats {
        &self.net.stats
    }

    /// The running hash of every delivered datagram (time, link, bytes) and every report.
    pub fn digest(&self) -> u64 {
        self.net.digest.value()
    }

    /// Entries waiting in the event queue.
    pub fn queued(&self) -> usize {
        self.net.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Change, Report, Timing};
    use crate::swim_impl::Swim;

    /// Every `period` µs sends its index to node `(index + 1) % n`; records what it receives.
    struct Ring {
        index: u32,
        n: u32,
        next: u64,
        period: u64,
        sent: u64,
        received: Vec<(u64, u32)>,
        outbox: Vec<SocketAddr>,
        reports: Vec<Report>,
    }

    impl Protocol for Ring {
        const NAME: &'static str = "ring";

        fn new(index: u32, _l: u32, n: usize, _t: &Timing, _s: u64, now: Instant) -> Self {
            Ring {
                index,
                n: n as u32,
                next: now.as_micros() + 10_000,
                period: 10_000,
                sent: 0,
                received: Vec::new(),
                outbox: Vec::new(),
                reports: Vec::new(),
            }
        }
        fn join(&mut self, _now: Instant, _seed: SocketAddr) {}
        fn leave(&mut self, _now: Instant) {}
        fn set_metadata(&mut self, _now: Instant, _k: &str, _v: &[u8]) -> bool {
            false
        }
        fn handle_datagram(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
            assert_eq!(index_of(from), Some(u32::from(bytes[0])));
            self.received.push((now.as_micros(), u32::from(bytes[0])));
            self.reports.push(Report {
                change: Change::Alive,
                subject: Some(u32::from(bytes[0])),
                online: Some(true),
            });
        }
        fn handle_timeout(&mut self, now: Instant) {
            assert!(now.as_micros() >= self.next, "woken early");
            self.next += self.period;
            self.sent += 1;
            self.outbox.push(addr((self.index + 1) % self.n));
        }
        fn poll_timeout(&self) -> Option<Instant> {
            Some(Instant::from_micros(self.next))
        }
        fn drain_transmits(&mut self, mut send: impl FnMut(SocketAddr, &[u8])) {
            for to in self.outbox.drain(..) {
                send(to, &[self.index as u8]);
            }
        }
        fn poll_report(&mut self) -> Option<Report> {
            self.reports.pop()
        }
        fn sees_online(&self, _s: u32) -> bool {
            false
        }
        fn sees_available(&self, _s: u32) -> bool {
            false
        }
        fn knows(&self, _s: u32) -> bool {
            false
        }
        fn entries(&self) -> usize {
            1
        }
        fn has_metadata(&self, _s: u32, _k: &str, _v: &[u8]) -> bool {
            false
        }
    }

    fn ring(n: usize, net: NetConfig) -> Sim<Ring> {
        Sim::new(n, 7, Timing::default(), net)
    }

    #[test]
    fn delivers_within_the_link_latency_and_wakes_on_time() {
        let mut sim = ring(4, NetConfig::default());
        sim.run_for(Duration::from_secs(1), &mut |_| {});
        for i in 0..4 {
            let node = sim.node(i).unwrap();
            assert_eq!(node.sent, 100, "one send per 10 ms");
            assert!(node.received.len() >= 99);
            for &(at, from) in &node.received {
                assert_eq!(from, (i + 3) % 4);
                // Sent at a multiple of 10 ms, delivered 1–5.5 ms later.
                let delay = at % 10_000;
                assert!((1_000..=5_500).contains(&delay), "delay {delay} µs");
            }
        }
        assert_eq!(sim.stats().timer_spins, 0);
        assert_eq!(sim.online_count(1), 1, "reports feed the online bitset");
        assert!(sim.sees_online(1, 0) && !sim.sees_online(1, 2));
    }

    #[test]
    fn loss_is_close_to_its_probability() {
        let mut sim = ring(10, NetConfig { loss: 0.2, ..NetConfig::default() });
        sim.run_for(Duration::from_secs(10), &mut |_| {});
        let stats = sim.stats();
        let rate = stats.lost as f64 / stats.datagrams_sent as f64;
        assert!((0.18..0.22).contains(&rate), "lost {rate}");
        assert_eq!(stats.delivered + stats.lost + in_flight(&sim), stats.datagrams_sent);
    }

    #[test]
    fn a_one_way_partition_blocks_one_direction_only() {
        let mut sim = ring(2, NetConfig::default());
        // Group 1 (node 1) cannot reach group 0 (node 0).
        sim.partition_one_way(|i| i as u8, 1, 0);
        sim.run_for(Duration::from_secs(1), &mut |_| {});
        assert!(sim.node(0).unwrap().received.is_empty());
        assert!(sim.node(1).unwrap().received.len() >= 99);
        sim.heal();
        sim.run_for(Duration::from_secs(1), &mut |_| {});
        assert!(sim.node(0).unwrap().received.len() >= 99);
    }

    #[test]
    fn a_paused_node_handles_its_backlog_when_it_resumes() {
        let mut sim = ring(2, NetConfig::default());
        sim.run_for(Duration::from_millis(100), &mut |_| {});
        let before = sim.node(1).unwrap().received.len();
        sim.pause(1, Duration::from_millis(500));
        sim.run_for(Duration::from_millis(499), &mut |_| {});
        assert_eq!(sim.node(1).unwrap().received.len(), before, "nothing while paused");
        sim.run_for(Duration::from_millis(2), &mut |_| {});
        let node = sim.node(1).unwrap();
        let resumed_at = 600_000;
        let backlog = node.received.iter().filter(|(at, _)| *at == resumed_at).count();
        assert!(backlog >= 49, "the 50 datagrams of the pause arrive at its end: {backlog}");
    }

    #[test]
    fn a_crashed_node_receives_nothing_and_a_restart_starts_fresh() {
        let mut sim = ring(3, NetConfig::default());
        sim.run_for(Duration::from_millis(100), &mut |_| {});
        sim.crash(1);
        assert!(sim.node(1).is_none() && !sim.is_up(1));
        sim.run_for(Duration::from_millis(100), &mut |_| {});
        assert!(sim.stats().undeliverable >= 9);
        assert!(sim.node(2).unwrap().received.len() <= 11, "node 1 sent nothing while down");
        sim.restart(1, 0);
        sim.run_for(Duration::from_millis(100), &mut |_| {});
        let node = sim.node(1).unwrap();
        assert!(node.received.iter().all(|(at, _)| *at >= 200_000));
        assert!(node.received.len() >= 9);
    }

    #[test]
    fn duplication_delivers_extra_copies() {
        let mut sim = ring(4, NetConfig { duplicate: 0.5, ..NetConfig::default() });
        sim.run_for(Duration::from_secs(1), &mut |_| {});
        let stats = sim.stats();
        assert!(stats.duplicated > 100);
        assert_eq!(stats.delivered + in_flight(&sim), stats.datagrams_sent + stats.duplicated);
    }

    /// Datagrams still in the queue.
    fn in_flight(sim: &Sim<Ring>) -> u64 {
        sim.net.heap.iter().filter(|e| e.kind == Kind::Deliver).count() as u64
    }

    #[test]
    fn the_same_seed_gives_the_same_digest() {
        let net = NetConfig { loss: 0.1, duplicate: 0.1, reorder: 0.1, ..NetConfig::default() };
        let run = |seed| {
            let mut sim: Sim<Ring> = Sim::new(20, seed, Timing::default(), net.clone());
            sim.run_for(Duration::from_secs(2), &mut |_| {});
            sim.digest()
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
    }

    /// Everything a run shows: digest, counters, every observation, final views.
    fn trace<P: Protocol>(sim: &mut Sim<P>, story: impl Fn(&mut Sim<P>, u32)) -> String {
        let mut observed = Vec::new();
        for step in 0..40 {
            story(sim, step);
            sim.run_for(Duration::from_millis(250), &mut |o| {
                observed.push((o.at, o.viewer, o.report, o.online_count));
            });
        }
        let views: Vec<u32> = (0..sim.len() as u32).map(|i| sim.online_count(i)).collect();
        format!("{:x} {:?} {observed:?} {views:?}", sim.digest(), sim.stats())
    }

    /// A swim cluster through joins, a pause, a slow member, a partition and a crash, under
    /// loss, duplication and reordering.
    fn eventful(sim: &mut Sim<Swim>, step: u32) {
        let n = sim.len() as u32;
        match step {
            0 => (1..n).for_each(|i| sim.start(i, 0)),
            8 => sim.pause(3, Duration::from_millis(1500)),
            10 => sim.slow(5, Duration::from_millis(400)),
            14 => sim.partition(|i| u8::from(i % 4 == 1)),
            20 => sim.heal(),
            24 => sim.crash(7),
            30 => sim.restart(7, 0),
            _ => {}
        }
    }

    #[test]
    fn threads_change_nothing_but_speed() {
        let net = NetConfig { loss: 0.05, duplicate: 0.05, reorder: 0.05, ..NetConfig::default() };
        let run = |threads: usize| {
            let mut sim: Sim<Swim> = Sim::new(48, 3, Timing::default(), net.clone());
            sim.set_threads(threads);
            // Split every window, however small, to exercise the hand-off.
            sim.parallel_min_ns = 0.0;
            trace(&mut sim, eventful)
        };
        let one = run(1);
        assert_eq!(one, run(2));
        assert_eq!(one, run(3));
    }

    #[test]
    fn instantaneous_links_are_handled_in_later_windows_at_the_same_time() {
        let net = NetConfig {
            latency_min: Duration::ZERO,
            latency_max: Duration::ZERO,
            jitter: Duration::ZERO,
            ..NetConfig::default()
        };
        let mut sim = ring(4, net.clone());
        sim.run_for(Duration::from_millis(100), &mut |_| {});
        for i in 0..4 {
            let node = sim.node(i).unwrap();
            assert_eq!(node.received.len(), 10, "sent every 10 ms, received at once");
            assert!(node.received.iter().all(|(at, _)| at % 10_000 == 0));
        }
        let run = |threads: usize| {
            let mut sim: Sim<Swim> = Sim::new(16, 5, Timing::default(), net.clone());
            sim.set_threads(threads);
            sim.parallel_min_ns = 0.0;
            trace(&mut sim, eventful)
        };
        assert_eq!(run(1), run(2));
    }
}
