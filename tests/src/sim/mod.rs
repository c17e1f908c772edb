//! The discrete-event engine: N nodes of one [`Protocol`] on a virtual network, in virtual
//! time.
//!
//! - [`network`]: the network model (latency, jitter, loss, duplication, reordering,
//!   partitions, cut links, slow receivers); it decides what becomes of each datagram, and
//!   when each stream message (reliable, with bandwidth) arrives.
//! - `queue`: the event queue, deliveries and timer wake-ups ordered by (time, sequence),
//!   and the slab of payloads in flight.
//! - `node`: one node's process state, its single live timer and the set of nodes it sees
//!   online.
//! - `effects`: what nodes do inside a window, recorded, and applied afterwards in a fixed
//!   order.
//! - `executor`: runs the queue in windows of `latency_min`, each window's nodes on several
//!   threads (its docs explain why that is safe and deterministic).
//! - [`Sim`]: the public face: commands (start, crash, pause, partition...), running, and
//!   queries.
//!
//! Everything random comes from the master seed: the network draws from its own ChaCha8
//! stream, and every node (and every restart of it) gets a seed derived from the master seed,
//! its index and its life. Nothing iterates a hash map and the wall clock only sizes up work,
//! so a seed fixes the whole trace, summarised by [`Sim::digest`], whatever the number of
//! threads.
//!
//! Cost per event is what makes 10,000 nodes possible: each node has at most one live timer
//! entry (re-armed only when its `poll_timeout` changes; stale entries are skipped by
//! generation), datagram payloads live in a recycled slab, and a node's view of who is online
//! is a bitset kept up to date from its reports rather than recomputed.

mod effects;
mod executor;
pub mod network;
mod node;
pub(crate) mod queue;

#[cfg(test)]
mod tests;

use std::num::NonZeroUsize;
use std::sync::{PoisonError, RwLock};
use std::time::Duration;

use swim_core::Instant;

use self::effects::Commons;
use self::executor::Executor;
pub use self::network::NetConfig;
use self::network::{Network, micros};
pub use self::node::Resume;
use self::node::{Slot, State};
use self::queue::{Kind, Slab};
use crate::digest::mix64;
use crate::protocol::{Protocol, Report, Timing, addr};

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
    /// Stream messages nodes sent.
    pub streams_sent: u64,
    /// Their bytes.
    pub stream_bytes_sent: u64,
    /// Stream messages handed to a node.
    pub streams_delivered: u64,
    /// Stream messages broken by a partition, a cut link or the receiver's crash.
    pub streams_broken: u64,
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
        self.streams_sent += shard.streams_sent;
        self.stream_bytes_sent += shard.stream_bytes_sent;
        self.streams_delivered += shard.streams_delivered;
        self.streams_broken += shard.streams_broken;
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

/// N nodes of one implementation on a virtual network in virtual time.
pub struct Sim<P: Protocol> {
    nodes: Vec<Slot<P>>,
    commons: Commons,
    slab: RwLock<Slab>,
    now: u64,
    seed: u64,
    timing: Timing,
    /// Reports of commands, handed to the observer of the next run.
    pending: Vec<Observation>,
    executor: Executor,
}

impl<P: Protocol> Sim<P> {
    /// `n` nodes created at time zero, none joined. All randomness derives from `seed`.
    /// Windows use as many threads as the machine has cores (see [`Sim::set_threads`]).
    pub fn new(n: usize, seed: u64, timing: Timing, net: NetConfig) -> Self {
        let threads = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        let mut sim = Sim {
            nodes: Vec::with_capacity(n),
            commons: Commons::new(Network::new(net, seed, n), seed, n),
            slab: RwLock::new(Slab::default()),
            now: 0,
            seed,
            timing,
            pending: Vec::new(),
            executor: Executor::new(threads),
        };
        for i in 0..n as u32 {
            let proto = P::new(i, 0, n, &sim.timing, sim.node_seed(i, 0), Instant::ZERO);
            sim.nodes.push(Slot::new(proto, n));
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
        self.executor.set_threads(threads);
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
        let life = self.nodes[i as usize].life;
        self.launch(i, life, seed);
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
        self.nodes[i as usize].crash();
    }

    /// Node `i` starts again as a fresh process under the same name and address, and joins
    /// through `seed`.
    pub fn restart(&mut self, i: u32, seed: u32) {
        let life = self.nodes[i as usize].life + 1;
        self.nodes[i as usize].online.clear();
        self.launch(i, life, seed);
    }

    /// A new process for node `i` in its `life`, joining through `seed` now.
    fn launch(&mut self, i: u32, life: u32, seed: u32) {
        let now = self.instant();
        let n = self.nodes.len();
        let mut proto = P::new(i, life, n, &self.timing, self.node_seed(i, life), now);
        proto.join(now, addr(seed));
        let slot = &mut self.nodes[i as usize];
        slot.life = life;
        slot.proto = Some(proto);
        slot.state = State::Up;
        self.settle(i);
    }

    /// Node `i` handles every datagram `delay` after it arrives from now on (an overloaded
    /// member: its timers still fire on time, so its own probes see late acks); zero undoes it.
    pub fn slow(&mut self, i: u32, delay: Duration) {
        self.commons.network.slow(i, delay);
    }

    /// Node `i` stops processing for `duration` (an overloaded member): datagrams wait in
    /// its socket buffer and its timers fire late, all at the end of the pause, in the order
    /// they came due.
    pub fn pause(&mut self, i: u32, duration: Duration) {
        self.pause_then(i, duration, Resume::AsQueued);
    }

    /// [`Sim::pause`], with `resume` choosing what the node handles first when it resumes.
    pub fn pause_then(&mut self, i: u32, duration: Duration, resume: Resume) {
        let until = self.now + micros(duration);
        if let Some((at, generation)) = self.nodes[i as usize].pause(self.now, until, resume) {
            self.commons.queue.push(at, Kind::Timer, i, 0, generation);
        }
    }

    /// Splits the nodes into groups (`group_of(i)`, at most 256): datagrams between
    /// different groups are dropped both ways until [`Sim::heal`].
    pub fn partition(&mut self, group_of: impl Fn(u32) -> u8) {
        self.commons.network.partition(group_of);
    }

    /// Drops datagrams from group `from` to group `to` only (a one-way partition); groups
    /// are assigned by `group_of`.
    pub fn partition_one_way(&mut self, group_of: impl Fn(u32) -> u8, from: u8, to: u8) {
        self.commons.network.partition_one_way(group_of, from, to);
    }

    /// Drops datagrams on the directed link `from -> to`.
    pub fn cut(&mut self, from: u32, to: u32) {
        self.commons.network.cut(from, to);
    }

    /// Drops datagrams, but not stream messages, on the directed link `from -> to` (a
    /// firewall that blocks UDP).
    pub fn block_datagrams(&mut self, from: u32, to: u32) {
        self.commons.network.block_datagrams(from, to);
    }

    /// Removes every partition, cut and datagram block.
    pub fn heal(&mut self) {
        self.commons.network.heal();
    }

    /// Changes the loss probability from now on.
    pub fn set_loss(&mut self, loss: f64) {
        self.commons.network.set_loss(loss);
    }

    // ------------------------------------------------------------- running

    /// Runs every event up to and including `until`, passing each node report to `observe`
    /// (after each window, in time order); the clock then reads `until`.
    pub fn run_until(&mut self, until: Instant, observe: &mut impl FnMut(&Observation)) {
        let until = until.as_micros();
        for observation in self.pending.drain(..) {
            observe(&observation);
        }
        let Sim { nodes, commons, slab, pending, executor, .. } = self;
        executor.run(nodes, commons, slab, until, pending, observe);
        self.now = self.now.max(until);
    }

    /// Runs for `duration` of virtual time.
    pub fn run_for(&mut self, duration: Duration, observe: &mut impl FnMut(&Observation)) {
        let until = Instant::from_micros(self.now + micros(duration));
        self.run_until(until, observe);
    }

    /// Runs until every running node sees exactly the running nodes online (checked every
    /// 100 ms of virtual time) or `limit` passes; returns whether they do.
    pub fn run_until_views_agree(
        &mut self,
        limit: Duration,
        observe: &mut impl FnMut(&Observation),
    ) -> bool {
        let end = self.now + micros(limit);
        while !self.views_agree() && self.now < end {
            let next = (self.now + 100_000).min(end);
            self.run_until(Instant::from_micros(next), observe);
        }
        self.views_agree()
    }

    /// After a command: node `i`'s sends, reports and timer, applied at once.
    fn settle(&mut self, i: u32) {
        let slab = self.slab.get_mut().unwrap_or_else(PoisonError::into_inner);
        let (nodes, commons, pending) = (&mut self.nodes, &mut self.commons, &mut self.pending);
        self.executor.settle(nodes, i, self.now, commons, slab, pending);
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

    /// Whether node `i` is paused now.
    pub fn is_paused(&self, i: u32) -> bool {
        matches!(self.nodes[i as usize].state, State::Paused { until, .. } if until > self.now)
    }

    /// How many other nodes node `i` sees online, from its reports.
    pub fn online_count(&self, i: u32) -> u32 {
        self.nodes[i as usize].online.count()
    }

    /// Whether node `viewer` sees node `subject` online, from its reports.
    pub fn sees_online(&self, viewer: u32, subject: u32) -> bool {
        self.nodes[viewer as usize].online.contains(subject)
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
        &self.commons.stats
    }

    /// The running hash of every delivered datagram (time, link, bytes) and every report.
    pub fn digest(&self) -> u64 {
        self.commons.digest.value()
    }

    /// Entries waiting in the event queue.
    pub fn queued(&self) -> usize {
        self.commons.queue.len()
    }
}
