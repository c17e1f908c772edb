//! The windowed executor: runs the queue in windows of `latency_min`, each window's nodes on
//! several threads (a conservative, window-based parallel discrete-event simulation).
//!
//! At N >= 1000 an event costs 10-40 µs, nearly all of it the node's own handling of a
//! datagram, so nodes run on several threads:
//!
//! - **Why a window is safe.** No datagram arrives sooner than `latency_min` after it was
//!   sent (jitter, reordering and slow members only add). So if the earliest queued entry is
//!   at T, nothing a node sends while handling events in `[T, T + latency_min)` can arrive
//!   inside that window: every node's inputs for the window are already queued, and nodes
//!   are independent. The executor takes the window's entries out of the queue, groups them
//!   by node, and runs each node through its own entries in (time, sequence) order. Timer
//!   wake-ups and paused backlog that a node schedules for itself inside the window join
//!   that node's local queue, after everything queued before (as a fresh sequence number
//!   would put them). A window never passes `run_until`'s `until`, so commands (crash,
//!   partition, ...) still take effect at exact times.
//! - **Threads.** Nodes come in blocks of eight. The calling thread and its workers (one
//!   fewer than the thread count, spawned by the first window worth splitting in each
//!   `run`) claim the window's non-empty blocks one at a time until none is left, so one
//!   expensive event (a large anti-entropy exchange) does not leave a thread idle. The
//!   calling thread never waits for a worker to start (on a busy machine that can take
//!   milliseconds): it claims whatever is left, then closes the window, so a worker that
//!   wakes late skips it. Windows whose expected work (events times a running average of
//!   the wall time per event) is small run on the calling thread alone: a hand-off would
//!   cost more than it saves. The wall clock only chooses how a window runs, never what it
//!   computes.
//! - **Why it stays deterministic.** Effects are applied after the window in an order no
//!   thread count changes (see [`super::effects`]). (Reports of the same microsecond reach
//!   observers in node order, and deliveries to a node at the same microsecond are handled
//!   in (send time, sender) order.)
//! - With `latency_min` zero a window is one microsecond: a datagram sent at T to arrive at T
//!   is queued after the window and handled in the next one, still at T.

use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError, RwLock, mpsc};
use std::thread::Scope;

use super::Observation;
use super::effects::{Commons, Outbox, Window};
use super::network::micros;
use super::node::Slot;
use super::queue::{Calendar, Entry, Slab};
use crate::protocol::Protocol;

/// Windows expected to take less wall time than this (nanoseconds) run on the calling
/// thread alone: handing work to a worker and back costs about 6 µs. A swim event costs
/// 10-40 µs at N >= 1000, the benchmark's trivial protocol 0.1 µs.
const PARALLEL_MIN_WORK_NS: f64 = 50_000.0;

/// The most threads a window is spread over, whatever [`Executor::set_threads`] asks.
const MAX_THREADS: usize = 64;

/// Nodes per block, the unit threads claim: small enough to balance windows of a few dozen
/// events, large enough that a run needs few locks.
const BLOCK: usize = 8;

/// How windows run, and the buffers they reuse.
pub(crate) struct Executor {
    /// Threads a window may use.
    threads: usize,
    /// Smallest expected work (ns) worth spreading a window over threads.
    pub(crate) parallel_min_ns: f64,
    /// Running average of the wall time an event takes, to size windows up. The wall clock
    /// decides only how a window runs, never what it computes.
    event_ns: f64,
    /// The current window's entries.
    batch: Batch,
    /// One per thread.
    outboxes: Vec<Outbox>,
    /// The effects of a window in the order they are applied.
    order: Vec<(u64, u32, u32, u32)>,
}

impl Executor {
    /// An executor using up to `threads` threads.
    pub(crate) fn new(threads: usize) -> Self {
        let mut executor = Executor {
            threads: 1,
            parallel_min_ns: PARALLEL_MIN_WORK_NS,
            event_ns: 0.0,
            batch: Batch::default(),
            outboxes: vec![Outbox::default()],
            order: Vec::new(),
        };
        executor.set_threads(threads);
        executor
    }

    /// Runs windows on up to `threads` threads (clamped to 1..=64).
    pub(crate) fn set_threads(&mut self, threads: usize) {
        self.threads = threads.clamp(1, MAX_THREADS);
        self.outboxes.resize_with(self.threads, Outbox::default);
    }

    /// After a command at `now`: node `i`'s sends, reports and timer, applied at once.
    pub(crate) fn settle<P: Protocol>(
        &mut self,
        nodes: &mut [Slot<P>],
        i: u32,
        now: u64,
        commons: &mut Commons,
        slab: &mut Slab,
        pending: &mut Vec<Observation>,
    ) {
        let window = Window { last: None, payloads: &[], nodes: nodes.len() };
        let outbox = &mut self.outboxes[0];
        nodes[i as usize].settle(i, now, false, outbox, &window);
        commons.apply(&mut [outbox], &mut self.order, pending, slab);
    }

    /// Runs every entry due by `until` (microseconds), window by window, handing each
    /// window's reports to `observe` (through `pending`, reused).
    pub(crate) fn run<P: Protocol>(
        &mut self,
        nodes: &mut [Slot<P>],
        commons: &mut Commons,
        slab: &RwLock<Slab>,
        until: u64,
        pending: &mut Vec<Observation>,
        observe: &mut impl FnMut(&Observation),
    ) {
        // Nothing sent in a window can arrive in it (module docs). With instantaneous links
        // the window is one microsecond and same-time arrivals go to the next window.
        let span = micros(commons.network.latency_min()).max(1);
        let crew = Crew::new(nodes, slab, &mut self.batch, &mut self.outboxes);
        std::thread::scope(|scope| {
            let mut workers: Vec<Worker> = Vec::new();
            while let Some(first) = commons.queue.next_at()
                && first <= until
            {
                let last = first.saturating_add(span - 1).min(until);
                let (events, split) = self.fill(&crew, &mut commons.queue, last);
                // Only a choice between threads needs the wall clock (two reads a window).
                let started = (self.threads > 1).then(std::time::Instant::now);
                let joined = if split {
                    if workers.is_empty() {
                        workers =
                            (1..self.threads).map(|t| Worker::spawn(scope, &crew, t)).collect();
                    }
                    crew.run_split(&workers)
                } else {
                    crew.run_alone()
                };
                // CPU time spent on the window, per event (the threads in it were all busy).
                if let Some(started) = started {
                    let ns = started.elapsed().as_nanos() as f64 * (joined + 1) as f64;
                    self.event_ns += (ns / events as f64 - self.event_ns) / 16.0;
                }
                crew.merge(commons, &mut self.order, pending, split);
                for observation in pending.drain(..) {
                    observe(&observation);
                }
            }
        });
        (self.batch, self.outboxes) = crew.into_parts();
    }

    /// Takes the window ending at `last` out of the queue; returns its entries and whether
    /// it is worth splitting over threads.
    fn fill<P>(&self, crew: &Crew<'_, P>, queue: &mut Calendar, last: u64) -> (usize, bool) {
        let mut batch = crew.batch.write().unwrap_or_else(PoisonError::into_inner);
        batch.last = last;
        batch.fill(queue);
        let events = batch.entries.len();
        let worth = events as f64 * self.event_ns >= self.parallel_min_ns;
        let split = worth && self.threads > 1 && batch.groups.len() > 1;
        for outbox in &crew.outboxes {
            lock(outbox).queue.number_after(queue.seq());
        }
        (events, split)
    }
}

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
    fn fill(&mut self, queue: &mut Calendar) {
        self.entries.clear();
        queue.drain_due(self.last, &mut self.entries);
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

/// Runs the nodes of a block (`slots`, the first being node `first`) through `entries`,
/// which are grouped by node and, within a node, in (time, sequence) order.
fn run_block<P: Protocol>(
    out: &mut Outbox,
    slots: &mut [Slot<P>],
    first: usize,
    entries: &[Entry],
    window: &Window<'_>,
) {
    for group in entries.chunk_by(|a, b| a.node == b.node) {
        let slot = &mut slots[group[0].node as usize - first];
        out.queue.clear();
        out.queue.extend(group.iter().copied());
        while let Some(entry) = out.queue.pop() {
            slot.handle(entry, out, window);
        }
    }
}

/// What the threads of one [`Executor::run`] share. Each thread claims the next unclaimed
/// block of the batch until none is left; which thread ran a node changes nothing (module
/// docs).
struct Crew<'s, P> {
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

impl<'s, P: Protocol> Crew<'s, P> {
    /// Borrows the nodes and takes the executor's buffers for one run.
    fn new(
        nodes: &'s mut [Slot<P>],
        slab: &'s RwLock<Slab>,
        batch: &mut Batch,
        outboxes: &mut Vec<Outbox>,
    ) -> Self {
        Crew {
            nodes: nodes.len(),
            blocks: nodes.chunks_mut(BLOCK).map(Mutex::new).collect(),
            batch: RwLock::new(std::mem::take(batch)),
            slab,
            next: AtomicUsize::new(0),
            outboxes: std::mem::take(outboxes).into_iter().map(Mutex::new).collect(),
            gate: Mutex::new(Gate::default()),
            left: Condvar::new(),
        }
    }

    /// Gives the buffers back.
    fn into_parts(self) -> (Batch, Vec<Outbox>) {
        let batch = self.batch.into_inner().unwrap_or_else(PoisonError::into_inner);
        let outboxes = self
            .outboxes
            .into_iter()
            .map(|o| o.into_inner().unwrap_or_else(PoisonError::into_inner))
            .collect();
        (batch, outboxes)
    }

    /// Runs the window on the calling thread alone.
    fn run_alone(&self) -> usize {
        self.next.store(0, AtomicOrdering::Relaxed);
        self.work(&mut lock(&self.outboxes[0]));
        0
    }

    /// Runs the window with whichever workers join in time; returns how many did.
    fn run_split(&self, workers: &[Worker]) -> usize {
        let window = self.open();
        for worker in workers {
            // A worker only hangs up by panicking; the scope re-raises that.
            let _ = worker.windows.send(window);
        }
        self.work(&mut lock(&self.outboxes[0]));
        self.close()
    }

    /// Applies the window's effects to the shared state. `split`: workers may have filled
    /// their outboxes; otherwise only the calling thread's holds anything, and is applied
    /// alone, without gathering the others (two allocations a window, 300,000 windows in a
    /// steady-state run).
    fn merge(
        &self,
        commons: &mut Commons,
        order: &mut Vec<(u64, u32, u32, u32)>,
        pending: &mut Vec<Observation>,
        split: bool,
    ) {
        if !split {
            let mut outbox = lock(&self.outboxes[0]);
            let mut slab = self.slab.write().unwrap_or_else(PoisonError::into_inner);
            commons.apply(&mut [&mut outbox], order, pending, &mut slab);
            return;
        }
        let mut filled: Vec<MutexGuard<'_, Outbox>> = self.outboxes.iter().map(lock).collect();
        let mut filled: Vec<&mut Outbox> = filled.iter_mut().map(|o| &mut **o).collect();
        let mut slab = self.slab.write().unwrap_or_else(PoisonError::into_inner);
        commons.apply(&mut filled, order, pending, &mut slab);
    }

    /// Runs unclaimed groups of the current batch into `outbox` until none is left.
    fn work(&self, outbox: &mut Outbox) {
        let batch = self.batch.read().unwrap_or_else(PoisonError::into_inner);
        let slab = self.slab.read().unwrap_or_else(PoisonError::into_inner);
        let window =
            Window { last: Some(batch.last), payloads: slab.payloads(), nodes: self.nodes };
        loop {
            // Relaxed: the counter only hands out indices; the locks order everything else.
            let g = self.next.fetch_add(1, AtomicOrdering::Relaxed);
            let Some(&(block, from, to)) = batch.groups.get(g) else {
                break;
            };
            let mut slots = self.blocks[block].lock().unwrap_or_else(PoisonError::into_inner);
            run_block(outbox, &mut slots, block * BLOCK, &batch.entries[from..to], &window);
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

/// A thread that helps with windows for the length of one [`Executor::run`], spawned when
/// the first window worth splitting comes (spawning costs about 85 µs here, a wake-up a few).
struct Worker {
    windows: mpsc::Sender<u64>,
}

impl Worker {
    fn spawn<'scope, P: Protocol>(
        scope: &'scope Scope<'scope, '_>,
        crew: &'scope Crew<'_, P>,
        thread: usize,
    ) -> Self {
        let (windows, inbox) = mpsc::channel();
        scope.spawn(move || {
            for window in inbox {
                crew.help(thread, window);
            }
        });
        Worker { windows }
    }
}
