//! The event queues: the shared [`Calendar`] of deliveries and timer wake-ups, a node's own
//! [`EventQueue`] inside a window, and the slab that holds the payloads of datagrams in
//! flight.
//!
//! Sequence numbers break ties between entries of the same microsecond in the order they
//! were queued, so the order never depends on a queue's internals.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// What a queue entry does to its node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A datagram arrives.
    Deliver,
    /// A stream message arrives.
    Stream,
    /// The node's timer fires.
    Timer,
}

/// One queue entry; `data` is a payload slot for deliveries and a generation for timers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry {
    /// Microseconds of virtual time.
    pub(crate) at: u64,
    pub(crate) seq: u64,
    pub(crate) kind: Kind,
    /// The node the entry is for.
    pub(crate) node: u32,
    /// The sender of a delivery.
    pub(crate) from: u32,
    pub(crate) data: u32,
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

/// Entries in (time, sequence) order; each new entry gets the next sequence number.
#[derive(Default)]
pub(crate) struct EventQueue {
    heap: BinaryHeap<Entry>,
    seq: u64,
}

impl EventQueue {
    /// An empty queue with room for `capacity` entries.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        EventQueue { heap: BinaryHeap::with_capacity(capacity), seq: 0 }
    }

    /// Queues a new entry after every entry queued before it at the same time.
    pub(crate) fn push(&mut self, at: u64, kind: Kind, node: u32, from: u32, data: u32) {
        self.seq += 1;
        self.heap.push(Entry { at, seq: self.seq, kind, node, from, data });
    }

    /// Queues entries that already have their sequence numbers.
    pub(crate) fn extend(&mut self, entries: impl IntoIterator<Item = Entry>) {
        self.heap.extend(entries);
    }

    /// Numbers the next new entry `seq + 1`.
    pub(crate) fn number_after(&mut self, seq: u64) {
        self.seq = seq;
    }

    /// The time of the earliest entry.
    pub(crate) fn next_at(&self) -> Option<u64> {
        self.heap.peek().map(|e| e.at)
    }

    /// Takes the earliest entry.
    pub(crate) fn pop(&mut self) -> Option<Entry> {
        self.heap.pop()
    }

    /// Takes the earliest entry if it is due by `last`.
    pub(crate) fn pop_due(&mut self, last: u64) -> Option<Entry> {
        if self.heap.peek().is_some_and(|e| e.at <= last) { self.heap.pop() } else { None }
    }

    /// Drops every entry (sequence numbers go on).
    pub(crate) fn clear(&mut self) {
        self.heap.clear();
    }
}

/// Width of a calendar bucket, as a shift of microseconds: 1,024 µs, about the engine's
/// window (`latency_min`, 1 ms by default), so that a window drains one or two buckets.
const BUCKET_SHIFT: u32 = 10;

/// Buckets in the calendar's ring: about 4.2 s of virtual time, past a probe period and its
/// timeouts; later entries (reaping, rejoining) wait in a heap until the ring reaches them.
const RING: u64 = 4096;

/// The shared queue: a calendar of 1,024 µs buckets, each an unsorted list, over a ring of
/// [`RING`] buckets, with a heap for entries beyond it.
///
/// The engine never pops entries one by one: it asks for the earliest time, then takes every
/// entry due by the end of that window and sorts them itself (by node, time, sequence). A
/// bucket list serves both in a few reads, where popping a binary heap of a few thousand
/// entries costs a dozen cache-cold comparisons per entry (7% of a steady state at N = 1000).
/// Which entries a window takes, and so the trace, is the same as with a heap.
pub(crate) struct Calendar {
    /// Bucket `b % RING` holds the entries with `at >> BUCKET_SHIFT == b`, for `b` from
    /// `cursor` to `cursor + RING - 1`; bucket `cursor` also those due earlier (queued at a
    /// time already passed, they are the earliest anyway).
    buckets: Vec<Vec<Entry>>,
    /// The earliest bucket that may hold entries.
    cursor: u64,
    /// Entries in `buckets`.
    near: usize,
    /// Entries of buckets `cursor + RING` and later.
    far: BinaryHeap<Entry>,
    seq: u64,
}

impl Calendar {
    /// An empty calendar.
    pub(crate) fn new() -> Self {
        let buckets = (0..RING).map(|_| Vec::new()).collect();
        Calendar { buckets, cursor: 0, near: 0, far: BinaryHeap::new(), seq: 0 }
    }

    /// Queues a new entry after every entry queued before it at the same time.
    pub(crate) fn push(&mut self, at: u64, kind: Kind, node: u32, from: u32, data: u32) {
        self.seq += 1;
        self.place(Entry { at, seq: self.seq, kind, node, from, data });
    }

    fn place(&mut self, entry: Entry) {
        let bucket = (entry.at >> BUCKET_SHIFT).max(self.cursor);
        if bucket < self.cursor + RING {
            self.buckets[(bucket % RING) as usize].push(entry);
            self.near += 1;
        } else {
            self.far.push(entry);
        }
    }

    /// The last sequence number handed out.
    pub(crate) fn seq(&self) -> u64 {
        self.seq
    }

    /// The time of the earliest entry (moving the cursor to its bucket).
    pub(crate) fn next_at(&mut self) -> Option<u64> {
        loop {
            if self.near == 0 {
                let first = self.far.peek()?.at >> BUCKET_SHIFT;
                self.cursor = self.cursor.max(first);
                self.bring_near();
            }
            let bucket = &self.buckets[(self.cursor % RING) as usize];
            if let Some(at) = bucket.iter().map(|e| e.at).min() {
                return Some(at);
            }
            self.cursor += 1;
            self.bring_near();
        }
    }

    /// Moves the far entries the ring now covers into it.
    fn bring_near(&mut self) {
        while self.far.peek().is_some_and(|e| e.at >> BUCKET_SHIFT < self.cursor + RING) {
            let entry = self.far.pop().expect("just peeked");
            self.place(entry);
        }
    }

    /// Moves every entry due by `last` into `out`, in no particular order.
    pub(crate) fn drain_due(&mut self, last: u64, out: &mut Vec<Entry>) {
        let due = last >> BUCKET_SHIFT;
        let before = out.len();
        // Bucket `cursor` may hold entries due before it begins, even when `last` does.
        let end = due.clamp(self.cursor, self.cursor + RING - 1);
        for b in self.cursor..=end {
            let bucket = &mut self.buckets[(b % RING) as usize];
            if b < due {
                out.append(bucket);
            } else {
                bucket.retain(|e| {
                    let keep = e.at > last;
                    if !keep {
                        out.push(*e);
                    }
                    keep
                });
            }
        }
        self.near -= out.len() - before;
        while let Some(entry) = self.far.peek().filter(|e| e.at <= last).copied() {
            self.far.pop();
            out.push(entry);
        }
    }

    /// Entries queued.
    pub(crate) fn len(&self) -> usize {
        self.near + self.far.len()
    }

    /// Entries of `kind` queued.
    #[cfg(test)]
    pub(crate) fn count(&self, kind: Kind) -> usize {
        let near = self.buckets.iter().flatten();
        near.chain(self.far.iter()).filter(|e| e.kind == kind).count()
    }
}

/// Payloads of datagrams in flight, in recycled buffers.
#[derive(Default)]
pub(crate) struct Slab {
    payloads: Vec<Vec<u8>>,
    free: Vec<u32>,
}

impl Slab {
    /// A slab with `count` free buffers of `capacity` bytes each, so that storing datagrams
    /// up to that size allocates nothing until more than `count` are in flight.
    pub(crate) fn with_buffers(count: usize, capacity: usize) -> Self {
        Slab {
            payloads: (0..count).map(|_| Vec::with_capacity(capacity)).collect(),
            free: (0..count as u32).rev().collect(),
        }
    }

    /// Copies `bytes` into a free buffer; returns its slot.
    pub(crate) fn store(&mut self, bytes: &[u8]) -> u32 {
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

    /// The payload in `slot`.
    pub(crate) fn get(&self, slot: u32) -> &[u8] {
        &self.payloads[slot as usize]
    }

    /// Every buffer, by slot (for readers that share the slab).
    pub(crate) fn payloads(&self) -> &[Vec<u8>] {
        &self.payloads
    }

    /// Frees one slot.
    pub(crate) fn release(&mut self, slot: u32) {
        self.free.push(slot);
    }

    /// Frees the slots several threads consumed. Which thread freed a slot varies from run
    /// to run; sorted, the order in which slots are reused does not.
    pub(crate) fn release_all<'a>(&mut self, batches: impl IntoIterator<Item = &'a mut Vec<u32>>) {
        let freed = self.free.len();
        for batch in batches {
            self.free.append(batch);
        }
        self.free[freed..].sort_unstable();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drains `calendar` window by window the way the engine does; returns (at, seq) in the
    /// order of the windows, each window sorted.
    fn windows(calendar: &mut Calendar, span: u64, until: u64) -> Vec<(u64, u64)> {
        let mut taken = Vec::new();
        let mut window = Vec::new();
        while let Some(first) = calendar.next_at()
            && first <= until
        {
            window.clear();
            calendar.drain_due((first + span - 1).min(until), &mut window);
            assert!(!window.is_empty(), "a window at {first} took nothing");
            window.sort_unstable_by_key(|e| (e.at, e.seq));
            taken.extend(window.iter().map(|e| (e.at, e.seq)));
        }
        taken
    }

    #[test]
    fn takes_what_a_heap_would_in_the_same_windows() {
        let mut calendar = Calendar::new();
        let mut heap = EventQueue::default();
        let mut x = 12_345_u64;
        let mut draw = |n: u64| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (x >> 33) % n
        };
        let mut now = 0;
        for round in 0..50 {
            // Near entries, far ones beyond the ring, and some due before the cursor's
            // bucket (a command at a time the cursor has passed).
            for _ in 0..40 {
                let at = match draw(3) {
                    0 => now + draw(3_000),
                    1 => now + draw(20_000_000),
                    _ => now.saturating_sub(draw(2_000)),
                };
                calendar.push(at, Kind::Timer, round, 0, 0);
                heap.push(at, Kind::Timer, round, 0, 0);
            }
            now += 1 + draw(400_000);
            let mut expected = Vec::new();
            while let Some(first) = heap.next_at()
                && first <= now
            {
                let last = (first + 999).min(now);
                let mut window = Vec::new();
                while let Some(e) = heap.pop_due(last) {
                    window.push((e.at, e.seq));
                }
                expected.extend(window);
            }
            assert_eq!(windows(&mut calendar, 1000, now), expected, "round {round}");
            assert_eq!(calendar.len(), heap.heap.len());
        }
    }
}
