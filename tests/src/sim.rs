//! The discrete-event engine: a virtual clock, one binary heap of deliveries and timer
//! wake-ups ordered by (time, sequence), and a virtual network between N nodes.
//!
//! Everything random comes from the master seed: the network draws from its own ChaCha8
//! stream, and every node (and every restart of it) gets a seed derived from the master seed,
//! its index and its life. Nothing iterates a hash map and nothing reads the wall clock, so a
//! seed fixes the whole trace, summarised by [`Sim::digest`].
//!
//! Cost per event is what makes 10,000 nodes possible: each node has at most one live timer
//! entry (re-armed only when its `poll_timeout` changes; stale entries are skipped by
//! generation), datagram payloads live in a recycled slab, and a node's view of who is online
//! is a bitset kept up to date from its reports rather than recomputed.

use std::cmp::Ordering;
use std::collections::{BTreeSet, BinaryHeap};
use std::net::SocketAddr;
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
    /// Smallest base latency of a link.
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

/// The network half of the engine, split from the nodes so a node can send while borrowed.
struct Net {
    heap: BinaryHeap<Entry>,
    seq: u64,
    payloads: Vec<Vec<u8>>,
    free: Vec<u32>,
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

    fn send(&mut self, now: u64, from: u32, to: SocketAddr, bytes: &[u8]) {
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
            let slot = self.store(bytes);
            self.push(at, Kind::Deliver, to, from, slot);
        }
    }
}

/// N nodes of one implementation on a virtual network in virtual time.
pub struct Sim<P: Protocol> {
    nodes: Vec<Slot<P>>,
    net: Net,
    now: u64,
    seed: u64,
    timing: Timing,
    pending: Vec<Observation>,
}

impl<P: Protocol> Sim<P> {
    /// `n` nodes created at time zero, none joined. All randomness derives from `seed`.
    pub fn new(n: usize, seed: u64, timing: Timing, net: NetConfig) -> Self {
        let words = n.div_ceil(64);
        let mut sim = Sim {
            nodes: Vec::with_capacity(n),
            net: Net {
                heap: BinaryHeap::with_capacity(n * 8),
                seq: 0,
                payloads: Vec::new(),
                free: Vec::new(),
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
            now: 0,
            seed,
            timing,
            pending: Vec::new(),
        };
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

    /// Runs every event up to and including `until`, passing each node report to `observe`;
    /// the clock then reads `until`.
    pub fn run_until(&mut self, until: Instant, observe: &mut impl FnMut(&Observation)) {
        let until = until.as_micros();
        self.flush(observe);
        while let Some(entry) = self.net.heap.peek().copied() {
            if entry.at > until {
                break;
            }
            self.net.heap.pop();
            self.now = self.now.max(entry.at);
            match entry.kind {
                Kind::Deliver => self.deliver(entry),
                Kind::Timer => self.wake(entry),
            }
            self.flush(observe);
        }
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

    fn deliver(&mut self, entry: Entry) {
        let slot = &mut self.nodes[entry.node as usize];
        match slot.state {
            State::Down => {
                self.net.stats.undeliverable += 1;
                self.net.free.push(entry.data);
                return;
            }
            State::Paused { until } if until > self.now => {
                // Still in the socket buffer: same order, handled when the pause ends.
                self.net.push(until, Kind::Deliver, entry.node, entry.from, entry.data);
                return;
            }
            _ => slot.state = State::Up,
        }
        let Some(proto) = slot.proto.as_mut() else {
            return;
        };
        let payload = &self.net.payloads[entry.data as usize];
        self.net.digest.write(self.now);
        self.net.digest.write(u64::from(entry.from) << 32 | u64::from(entry.node));
        self.net.digest.write_bytes(payload);
        self.net.stats.delivered += 1;
        self.net.stats.events += 1;
        proto.handle_datagram(Instant::from_micros(self.now), addr(entry.from), payload);
        self.net.free.push(entry.data);
        self.settle(entry.node);
    }

    fn wake(&mut self, entry: Entry) {
        let slot = &mut self.nodes[entry.node as usize];
        if slot.timer_gen != entry.data || slot.state == State::Down {
            self.net.stats.stale_timers += 1;
            return;
        }
        if let State::Paused { until } = slot.state {
            if until > self.now {
                slot.timer_at = Some(until);
                self.net.push(until, Kind::Timer, entry.node, 0, entry.data);
                return;
            }
            slot.state = State::Up;
        }
        slot.timer_at = None;
        let Some(proto) = slot.proto.as_mut() else {
            return;
        };
        self.net.stats.events += 1;
        proto.handle_timeout(Instant::from_micros(self.now));
        self.settle_after(entry.node, true);
    }

    /// After any input or command: send what node `i` wants sent, record its reports, and
    /// re-arm its timer if its deadline moved.
    fn settle(&mut self, i: u32) {
        self.settle_after(i, false);
    }

    fn settle_after(&mut self, i: u32, woke: bool) {
        let now = self.now;
        let n = self.nodes.len();
        let slot = &mut self.nodes[i as usize];
        let Some(proto) = slot.proto.as_mut() else {
            return;
        };
        let net = &mut self.net;
        proto.drain_transmits(|to, bytes| net.send(now, i, to, bytes));
        while let Some(report) = proto.poll_report() {
            if let Some(s) = report.subject.filter(|&s| (s as usize) < n) {
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
            net.digest.write(now);
            net.digest.write(
                u64::from(i) << 40
                    | report.change.code() << 32
                    | u64::from(report.subject.unwrap_or(u32::MAX)),
            );
            self.pending.push(Observation {
                at: Instant::from_micros(now),
                viewer: i,
                report,
                online_count: slot.online_count,
            });
        }
        let deadline = proto.poll_timeout().map(|t| {
            let t = t.as_micros();
            if woke && t <= now {
                net.stats.timer_spins += 1;
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
                net.push(at, Kind::Timer, i, 0, slot.timer_gen);
            }
        }
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
}
