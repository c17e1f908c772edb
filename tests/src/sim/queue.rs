//! The event queue: deliveries and timer wake-ups ordered by (time, sequence), and the slab
//! that holds the payloads of datagrams in flight.
//!
//! Sequence numbers break ties between entries of the same microsecond in the order they
//! were queued, so the order never depends on the heap's internals.

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

    /// The last sequence number handed out.
    pub(crate) fn seq(&self) -> u64 {
        self.seq
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

    /// Entries queued.
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Entries of `kind` queued.
    #[cfg(test)]
    pub(crate) fn count(&self, kind: Kind) -> usize {
        self.heap.iter().filter(|e| e.kind == kind).count()
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
