//! Datagrams waiting to be sent, and the buffers they are written in, recycled so that a
//! node in steady state sends without allocating.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::net::SocketAddr;

use crate::counters::Counters;

/// Outgoing buffers kept for recycling.
const SPARE_BUFFERS: usize = 32;

/// A datagram to send, borrowed from the node until the next
/// [`Node::poll_transmit`](crate::Node::poll_transmit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transmit<'a> {
    /// Where to send it.
    pub destination: SocketAddr,
    /// The sealed datagram.
    pub payload: &'a [u8],
}

#[derive(Debug)]
struct Outgoing {
    to: SocketAddr,
    bytes: Vec<u8>,
}

/// The queue of sealed datagrams and the spare buffers.
#[derive(Debug)]
pub(crate) struct Outbox {
    queue: VecDeque<Outgoing>,
    /// The datagram last handed out, whose buffer is recycled at the next poll.
    current: Option<Outgoing>,
    spare: Vec<Vec<u8>>,
    /// Capacity of a new buffer: the largest datagram.
    capacity: usize,
}

impl Outbox {
    pub(crate) fn new(capacity: usize) -> Self {
        Outbox { queue: VecDeque::new(), current: None, spare: Vec::new(), capacity }
    }

    /// An empty buffer to write a datagram in.
    pub(crate) fn buffer(&mut self) -> Vec<u8> {
        let mut buffer = self.spare.pop().unwrap_or_else(|| Vec::with_capacity(self.capacity));
        buffer.clear();
        buffer
    }

    /// Takes back a buffer that was not sent.
    pub(crate) fn recycle(&mut self, buffer: Vec<u8>) {
        if self.spare.len() < SPARE_BUFFERS {
            self.spare.push(buffer);
        }
    }

    /// Queues a sealed datagram.
    pub(crate) fn push(&mut self, to: SocketAddr, bytes: Vec<u8>) {
        self.queue.push_back(Outgoing { to, bytes });
    }

    /// The next datagram to send, counted as sent.
    pub(crate) fn poll(&mut self, counters: &mut Counters) -> Option<Transmit<'_>> {
        if let Some(sent) = self.current.take() {
            self.recycle(sent.bytes);
        }
        let next = self.queue.pop_front()?;
        counters.datagrams_out += 1;
        counters.bytes_out += next.bytes.len() as u64;
        let current = self.current.insert(next);
        Some(Transmit { destination: current.to, payload: &current.bytes })
    }
}
