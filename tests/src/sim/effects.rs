//! What nodes do inside a window, recorded, and how it reaches the shared state afterwards.
//!
//! Nothing shared is touched inside a window: a node's sends, reports, handled datagrams (for
//! the digest) and queue entries due after the window are recorded as [`Effect`]s in its
//! thread's [`Outbox`], tagged with the time and the node. After the window the calling
//! thread applies the effects of all outboxes in (time, node, order within the node) order
//! ([`Commons::apply`]): only then does the network draw loss, jitter and duplication from
//! its random stream and queue deliveries, the digest advance and observers hear reports.
//! That order depends neither on the number of threads nor on which thread ran which node.

use std::net::SocketAddr;

use swim_core::Instant;

use super::network::{Fate, Network};
use super::queue::{Calendar, EventQueue, Kind, Slab};
use super::{Observation, Stats};
use crate::digest::Digest;
use crate::protocol::{Report, index_of};

/// Deliveries up to this size go into the trace digest whole (every datagram does).
const DIGESTED_WHOLE: usize = 4096;

/// Something a node did inside a window that touches shared state.
#[derive(Clone, Copy, Debug)]
enum Effect {
    /// The node handled the datagram in payload slot `slot` (the digest records it).
    Delivered { from: u32, slot: u32 },
    /// The node sent `bytes[start..start + len]` of its outbox.
    Sent { to: SocketAddr, start: usize, len: usize },
    /// The node sent `bytes[start..start + len]` of its outbox as a stream message.
    Streamed { to: SocketAddr, start: usize, len: usize },
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

/// What handling a node's entries reads besides the node itself.
pub(crate) struct Window<'a> {
    /// The window's last microsecond; `None` when settling a node after a command, where
    /// everything a node schedules goes to the shared queue.
    pub(crate) last: Option<u64>,
    /// The payload slab's buffers (only read during a window).
    pub(crate) payloads: &'a [Vec<u8>],
    /// Number of nodes, to ignore reports about unknown subjects.
    pub(crate) nodes: usize,
}

/// What the nodes one thread ran did in a window (one outbox per thread); kept between
/// windows to reuse its buffers.
#[derive(Default)]
pub(crate) struct Outbox {
    effects: Vec<Tagged>,
    /// Payloads of `Effect::Sent`.
    bytes: Vec<u8>,
    /// Payload slots handled (or dropped) in the window.
    freed: Vec<u32>,
    /// Counts kept during the window, added to the engine's after it.
    pub(crate) stats: Stats,
    /// The entries of the node being run, and those it schedules for itself in the window.
    /// New entries are numbered after every entry of the shared queue, so they sort after
    /// everything queued before, as a fresh entry in the shared queue would.
    pub(crate) queue: EventQueue,
}

impl Outbox {
    /// The node handled the datagram in `slot` at `at`.
    pub(crate) fn delivered(&mut self, at: u64, node: u32, from: u32, slot: u32) {
        let effect = Effect::Delivered { from, slot };
        self.effects.push(Tagged { at, node, effect });
    }

    /// The node sent `datagram` to `to` at `at`.
    pub(crate) fn sent(&mut self, at: u64, node: u32, to: SocketAddr, datagram: &[u8]) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(datagram);
        let effect = Effect::Sent { to, start, len: datagram.len() };
        self.effects.push(Tagged { at, node, effect });
    }

    /// The node sent `message` to `to` over a stream at `at`.
    pub(crate) fn streamed(&mut self, at: u64, node: u32, to: SocketAddr, message: &[u8]) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(message);
        let effect = Effect::Streamed { to, start, len: message.len() };
        self.effects.push(Tagged { at, node, effect });
    }

    /// The node reported `report` at `at`, seeing `online_count` others online after it.
    pub(crate) fn reported(&mut self, at: u64, node: u32, report: Report, online_count: u32) {
        let effect = Effect::Reported { report, online_count };
        self.effects.push(Tagged { at, node, effect });
    }

    /// The payload in `slot` is no longer needed (freed after the window).
    pub(crate) fn free(&mut self, slot: u32) {
        self.freed.push(slot);
    }

    /// Queues an entry for `node` inside the window if it falls there, else for the shared
    /// queue after the window.
    pub(crate) fn schedule(
        &mut self,
        window: &Window<'_>,
        now: u64,
        node: u32,
        entry: (u64, Kind, u32, u32),
    ) {
        let (at, kind, from, data) = entry;
        if window.last.is_some_and(|last| at <= last) {
            self.queue.push(at, kind, node, from, data);
        } else {
            let effect = Effect::Queued { at, kind, from, data };
            self.effects.push(Tagged { at: now, node, effect });
        }
    }
}

/// The shared half of the engine: queue, network model, counts and digest. Only touched
/// between windows, when effects are applied in a fixed order.
pub(crate) struct Commons {
    pub(crate) queue: Calendar,
    pub(crate) network: Network,
    pub(crate) stats: Stats,
    pub(crate) digest: Digest,
    nodes: u32,
}

impl Commons {
    /// An empty queue and a network of `nodes` nodes; every draw derives from `seed`.
    pub(crate) fn new(network: Network, seed: u64, nodes: usize) -> Self {
        Commons {
            queue: Calendar::new(),
            network,
            stats: Stats::default(),
            digest: Digest::new(seed),
            nodes: nodes as u32,
        }
    }

    /// Applies what the threads of a window recorded, in (time, node, order within the node)
    /// order, which no thread count or claim order changes; then recycles the payloads the
    /// window consumed (only now: the digest reads them here).
    pub(crate) fn apply(
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
            let tagged = outbox.effects[k as usize];
            self.apply_one(tagged, &outbox.bytes, pending, slab);
        }
        slab.release_all(outboxes.iter_mut().map(|o| &mut o.freed));
        for outbox in outboxes {
            self.stats.absorb(&mut outbox.stats);
            outbox.effects.clear();
            outbox.bytes.clear();
        }
    }

    fn apply_one(
        &mut self,
        tagged: Tagged,
        bytes: &[u8],
        pending: &mut Vec<Observation>,
        slab: &mut Slab,
    ) {
        let Tagged { at, node, effect } = tagged;
        match effect {
            Effect::Delivered { from, slot } => {
                self.digest.write(at);
                self.digest.write(u64::from(from) << 32 | u64::from(node));
                let payload = slab.get(slot);
                if payload.len() <= DIGESTED_WHOLE {
                    self.digest.write_bytes(payload);
                } else {
                    // A large stream message: its length, header and tag (which depends on
                    // every byte) stand for it, so that 16 GB of metadata need not be read
                    // twice.
                    self.digest.write(payload.len() as u64);
                    self.digest.write_bytes(&payload[..64]);
                    self.digest.write_bytes(&payload[payload.len() - 16..]);
                }
            }
            Effect::Sent { to, start, len } => {
                self.send(slab, at, node, to, &bytes[start..start + len]);
            }
            Effect::Streamed { to, start, len } => {
                self.send_stream(slab, at, node, to, &bytes[start..start + len]);
            }
            Effect::Reported { report, online_count } => {
                self.digest.write(at);
                self.digest.write(
                    u64::from(node) << 40
                        | report.change.code() << 32
                        | u64::from(report.subject.unwrap_or(u32::MAX)),
                );
                let at = Instant::from_micros(at);
                pending.push(Observation { at, viewer: node, report, online_count });
            }
            Effect::Queued { at, kind, from, data } => self.queue.push(at, kind, node, from, data),
        }
    }

    /// Puts a stream message on the network: counted, then broken or queued for delivery.
    fn send_stream(&mut self, slab: &mut Slab, now: u64, from: u32, to: SocketAddr, bytes: &[u8]) {
        self.stats.streams_sent += 1;
        self.stats.stream_bytes_sent += bytes.len() as u64;
        let Some(to) = index_of(to).filter(|&t| t < self.nodes) else {
            self.stats.streams_broken += 1;
            return;
        };
        match self.network.stream_arrival(from, to, bytes.len(), now) {
            Some(at) => {
                let slot = slab.store(bytes);
                self.queue.push(at, Kind::Stream, to, from, slot);
            }
            None => self.stats.streams_broken += 1,
        }
    }

    /// Puts a datagram on the network: counted, then lost, dropped or queued for delivery.
    fn send(&mut self, slab: &mut Slab, now: u64, from: u32, to: SocketAddr, bytes: &[u8]) {
        self.stats.datagrams_sent += 1;
        self.stats.bytes_sent += bytes.len() as u64;
        let Some(to) = index_of(to).filter(|&t| t < self.nodes) else {
            self.stats.undeliverable += 1;
            return;
        };
        let fate = self.network.fate(from, to);
        match fate {
            Fate::Partitioned => self.stats.partitioned += 1,
            Fate::Lost => self.stats.lost += 1,
            Fate::Duplicated { .. } => self.stats.duplicated += 1,
            Fate::Delivered { .. } => {}
        }
        for delay in fate.delays() {
            let slot = slab.store(bytes);
            self.queue.push(now + delay, Kind::Deliver, to, from, slot);
        }
    }
}
