//! Two real swim-core nodes wired back to back (1 ms links), for the micro-benchmarks and the
//! allocation test. The harness itself allocates nothing once built: datagrams travel in a
//! fixed pool of buffers.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use swim_core::wire::{Body, Header, Packet};
use swim_core::{Instant, Keyring, NONCE_LEN, Node, TAG_LEN};

use crate::protocol::{Timing, addr};
use crate::swim_impl::Swim;

/// The pair's `epoch_ms` (replay protection on, as the drivers run it).
pub const EPOCH_MS: u64 = 1_600_000_000_000;

const POOL: usize = 64;

/// A joined pair of nodes and the datagrams between them.
pub struct Pair {
    /// Node 0.
    pub a: Node<ChaCha8Rng>,
    /// Node 1.
    pub b: Node<ChaCha8Rng>,
    /// The virtual time.
    pub now: Instant,
    /// (delivery time, to b?, pool slot)
    in_flight: VecDeque<(Instant, bool, usize)>,
    pool: Vec<Vec<u8>>,
    free: Vec<usize>,
    /// Pings a sent to b, and acks b sent back, since creation.
    pub pings: u64,
    /// Acks b sent to a.
    pub acks: u64,
    /// The last ping a sent to b (signed), kept when `keep_ping` is set.
    pub last_ping: Vec<u8>,
    /// Whether to copy each ping into `last_ping` (allocates on the first copy only).
    pub keep_ping: bool,
}

/// The message type of a signed datagram, if it decodes.
fn body_kind(datagram: &[u8]) -> Option<u8> {
    let signed = datagram.get(..datagram.len().checked_sub(TAG_LEN)?)?;
    match Packet::decode(signed).ok()?.body {
        Body::Ping { .. } => Some(0),
        Body::Ack { .. } => Some(1),
        _ => Some(2),
    }
}

/// Whether `datagram` (signed) is a ping.
pub fn is_ping(datagram: &[u8]) -> bool {
    body_kind(datagram) == Some(0)
}

impl Pair {
    /// Two nodes with the simulator's configuration and replay protection on; b joins a, and
    /// they run for `settle` of virtual time so join gossip has drained.
    pub fn joined(settle: Duration) -> Self {
        let timing = Timing::default();
        let mk = |i: u32| {
            let mut config = Swim::config(i, &timing);
            config.epoch_ms = EPOCH_MS;
            Node::new(config, ChaCha8Rng::seed_from_u64(u64::from(i)), Instant::ZERO)
                .expect("valid config")
        };
        let mut pair = Pair {
            a: mk(0),
            b: mk(1),
            now: Instant::ZERO,
            in_flight: VecDeque::with_capacity(POOL),
            pool: (0..POOL).map(|_| Vec::with_capacity(1500)).collect(),
            free: (0..POOL).collect(),
            pings: 0,
            acks: 0,
            last_ping: Vec::with_capacity(1500),
            keep_ping: false,
        };
        pair.b.join(Instant::ZERO, [addr(0)]);
        pair.run_for(settle);
        pair
    }

    /// The address of node a.
    pub fn a_addr(&self) -> SocketAddr {
        addr(0)
    }

    fn collect(&mut self) {
        let at = self.now + Duration::from_millis(1);
        while let Some(t) = self.a.poll_transmit() {
            let Some(slot) = self.free.pop() else { continue };
            self.pool[slot].clear();
            self.pool[slot].extend_from_slice(t.payload);
            if body_kind(t.payload) == Some(0) {
                self.pings += 1;
                if self.keep_ping {
                    self.last_ping.clear();
                    self.last_ping.extend_from_slice(t.payload);
                }
            }
            self.in_flight.push_back((at, true, slot));
        }
        while let Some(t) = self.b.poll_transmit() {
            let Some(slot) = self.free.pop() else { continue };
            self.pool[slot].clear();
            self.pool[slot].extend_from_slice(t.payload);
            if body_kind(t.payload) == Some(1) {
                self.acks += 1;
            }
            self.in_flight.push_back((at, false, slot));
        }
        while self.a.poll_event().is_some() {}
        while self.b.poll_event().is_some() {}
    }

    /// Runs to the next delivery or deadline.
    pub fn step(&mut self) {
        self.collect();
        let next_delivery = self.in_flight.front().map(|(at, ..)| *at);
        let next = [next_delivery, self.a.poll_timeout(), self.b.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(self.now + Duration::from_millis(1));
        self.now = self.now.max(next);
        while self.in_flight.front().is_some_and(|(at, ..)| *at <= self.now) {
            let Some((_, to_b, slot)) = self.in_flight.pop_front() else { break };
            if to_b {
                self.b.handle_datagram(self.now, addr(0), &self.pool[slot]);
            } else {
                self.a.handle_datagram(self.now, addr(1), &self.pool[slot]);
            }
            self.free.push(slot);
        }
        self.a.handle_timeout(self.now);
        self.b.handle_timeout(self.now);
        self.collect();
    }

    /// Runs for `duration` of virtual time.
    pub fn run_for(&mut self, duration: Duration) {
        let end = self.now + duration;
        while self.now < end {
            self.step();
        }
    }
}

/// `datagram` (a plain one, sealed for `receiver`) with its nonce replaced and sealed again:
/// lets a benchmark replay "the same" ping without tripping replay protection.
pub fn renonce(datagram: &mut Vec<u8>, nonce: u64, keyring: &Keyring, receiver: &str) {
    let Ok(header) = Header::parse(datagram) else { return };
    let at = header.encoded_len() - NONCE_LEN;
    datagram.truncate(datagram.len() - TAG_LEN);
    datagram[at..at + NONCE_LEN].copy_from_slice(&nonce.to_be_bytes());
    *datagram = keyring.seal_packet(core::mem::take(datagram), "", receiver);
}

/// A sequenced nonce for a pair member's datagram at `now`, `count` into its millisecond
/// (past what the node itself uses there).
pub fn nonce_at(now: Instant, count: u64) -> u64 {
    let wall_ms = EPOCH_MS + now.as_micros() / 1000;
    swim_core::SEQUENCED | ((wall_ms << 20) + (1 << 19) + count)
}
