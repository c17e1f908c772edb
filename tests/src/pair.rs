//! Two real swim-core nodes wired back to back, for the micro-benchmarks and the allocation
//! test. Their link is the simulator's network model ([`Network`], here 1 ms, nothing lost)
//! and datagrams wait in its event queue; the harness allocates nothing once warm, as
//! datagrams travel in a pool of recycled buffers.

use std::net::SocketAddr;
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use swim_core::wire::{Body, Header, Packet};
use swim_core::{Instant, Keyring, NONCE_LEN, Node, TAG_LEN};

use crate::protocol::{Timing, addr};
use crate::sim::network::{NetConfig, Network};
use crate::sim::queue::{EventQueue, Kind, Slab};
use crate::swim_impl::Swim;

/// The pair's `epoch_ms` (replay protection on, as the drivers run it).
pub const EPOCH_MS: u64 = 1_600_000_000_000;

/// Datagram buffers made up front: far more than two nodes ever have in flight.
const POOL: usize = 64;

/// Room in each buffer: a full datagram.
const BUFFER: usize = 1500;

/// A joined pair of nodes and the datagrams between them.
pub struct Pair {
    /// Node 0.
    pub a: Node<ChaCha8Rng>,
    /// Node 1.
    pub b: Node<ChaCha8Rng>,
    /// The virtual time.
    pub now: Instant,
    /// The link between a (node 0) and b (node 1).
    network: Network,
    /// Datagrams in flight.
    queue: EventQueue,
    /// Their payloads.
    slab: Slab,
    /// Pings a sent to b, and acks b sent back, since creation.
    pub pings: u64,
    /// Acks b sent to a.
    pub acks: u64,
    /// The last ping a sent to b (signed), kept when `keep_ping` is set.
    pub last_ping: Vec<u8>,
    /// Whether to copy each ping into `last_ping` (allocates on the first copy only).
    pub keep_ping: bool,
    /// Where encrypted datagrams are opened to tell pings from acks (room made up front).
    opened: Vec<u8>,
    /// The shared keyring and the two names, to open what the nodes send.
    keyring: Keyring,
    names: [String; 2],
}

/// The message type of a sealed datagram for `receiver`, if it opens and decodes.
fn body_kind(
    keyring: &Keyring,
    datagram: &[u8],
    receiver: &str,
    opened: &mut Vec<u8>,
) -> Option<u8> {
    let packet = keyring.open_packet(datagram, "", receiver, opened)?;
    match Packet::decode(packet).ok()?.body {
        Body::Ping { .. } => Some(0),
        Body::Ack { .. } => Some(1),
        _ => Some(2),
    }
}

/// Whether `datagram` (signed, not encrypted) is a ping.
pub fn is_ping(datagram: &[u8]) -> bool {
    let signed = datagram.get(..datagram.len().saturating_sub(TAG_LEN)).unwrap_or_default();
    Packet::decode(signed).is_ok_and(|packet| matches!(packet.body, Body::Ping { .. }))
}

impl Pair {
    /// Two nodes with the simulator's configuration and replay protection on; b joins a, and
    /// they run for `settle` of virtual time so join gossip has drained.
    pub fn joined(settle: Duration) -> Self {
        Pair::joined_with(settle, false)
    }

    /// [`Pair::joined`], with every datagram encrypted if `encrypt` is set.
    pub fn joined_with(settle: Duration, encrypt: bool) -> Self {
        let timing = Timing::default();
        let mk = |i: u32| {
            let mut config = Swim::config(i, &timing);
            config.epoch_ms = EPOCH_MS;
            config.encrypt = encrypt;
            Node::new(config, ChaCha8Rng::seed_from_u64(u64::from(i)), Instant::ZERO)
                .expect("valid config")
        };
        let mut pair = Pair {
            a: mk(0),
            b: mk(1),
            now: Instant::ZERO,
            network: Network::new(NetConfig::fixed(Duration::from_millis(1)), 0, 2),
            queue: EventQueue::with_capacity(POOL),
            slab: Slab::with_buffers(POOL, BUFFER),
            pings: 0,
            acks: 0,
            last_ping: Vec::with_capacity(1500),
            keep_ping: false,
            opened: Vec::with_capacity(BUFFER),
            keyring: Keyring::new(""),
            names: [addr(0).to_string(), addr(1).to_string()],
        };
        pair.keyring = pair.a.config().keyring.clone();
        pair.b.join(Instant::ZERO, [addr(0)]);
        pair.run_for(settle);
        pair
    }

    /// The address of node a.
    pub fn a_addr(&self) -> SocketAddr {
        addr(0)
    }

    /// Puts what both nodes want sent on the link and drops their events.
    fn collect(&mut self) {
        let (keyring, names) = (&self.keyring, &self.names);
        while let Some(t) = self.a.poll_transmit() {
            if body_kind(keyring, t.payload, &names[1], &mut self.opened) == Some(0) {
                self.pings += 1;
                if self.keep_ping {
                    self.last_ping.clear();
                    self.last_ping.extend_from_slice(t.payload);
                }
            }
            let fate = self.network.fate(0, 1);
            for delay in fate.delays() {
                let slot = self.slab.store(t.payload);
                self.queue.push(self.now.as_micros() + delay, Kind::Deliver, 1, 0, slot);
            }
        }
        while let Some(t) = self.b.poll_transmit() {
            if body_kind(keyring, t.payload, &names[0], &mut self.opened) == Some(1) {
                self.acks += 1;
            }
            let fate = self.network.fate(1, 0);
            for delay in fate.delays() {
                let slot = self.slab.store(t.payload);
                self.queue.push(self.now.as_micros() + delay, Kind::Deliver, 0, 1, slot);
            }
        }
        while self.a.poll_event().is_some() {}
        while self.b.poll_event().is_some() {}
    }

    /// Runs to the next delivery or deadline.
    pub fn step(&mut self) {
        self.collect();
        let next_delivery = self.queue.next_at().map(Instant::from_micros);
        let next = [next_delivery, self.a.poll_timeout(), self.b.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(self.now + Duration::from_millis(1));
        self.now = self.now.max(next);
        while let Some(entry) = self.queue.pop_due(self.now.as_micros()) {
            let node = if entry.node == 0 { &mut self.a } else { &mut self.b };
            node.handle_datagram(self.now, addr(entry.from), self.slab.get(entry.data));
            self.slab.release(entry.data);
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

/// `datagram` (sealed for `receiver`, plain or encrypted) with its nonce replaced and sealed
/// again: lets a benchmark replay "the same" ping without tripping replay protection.
pub fn renonce(datagram: &mut Vec<u8>, nonce: u64, keyring: &Keyring, receiver: &str) {
    let mut opened = Vec::new();
    let Some(packet) = keyring.open_packet(datagram, "", receiver, &mut opened) else { return };
    let mut packet = packet.to_vec();
    let Ok(header) = Header::parse(&packet) else { return };
    let at = header.encoded_len() - NONCE_LEN;
    packet[at..at + NONCE_LEN].copy_from_slice(&nonce.to_be_bytes());
    *datagram = keyring.seal_packet(packet, "", receiver);
}

/// A sequenced nonce for a pair member's datagram at `now`, `count` into its millisecond
/// (past what the node itself uses there).
pub fn nonce_at(now: Instant, count: u64) -> u64 {
    let wall_ms = EPOCH_MS + now.as_micros() / 1000;
    swim_core::SEQUENCED | ((wall_ms << 20) + (1 << 19) + count)
}
