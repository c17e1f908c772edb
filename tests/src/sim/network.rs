//! The virtual network's model: what becomes of one datagram on the link between two nodes.
//!
//! A link has a base latency, fixed per link (drawn from `latency_min..=latency_max` by
//! hashing the pair, so it does not depend on the order of sends), plus uniform jitter per
//! datagram and, with probability `reorder`, an extra `reorder_delay`. A datagram may be lost
//! (probability `loss`), delivered twice (`duplicate`), dropped by a partition between groups
//! of nodes or a cut directed link, or handled late by a slow receiver.
//!
//! A stream message (a one-way message over a connection, see `swim_core::StreamMessage`)
//! is reliable: it is not lost, duplicated or jittered, only broken by a partition or a cut
//! link (not by [`Network::block_datagrams`], which models a firewall that drops UDP) and by
//! the receiver's crash. It arrives after a connection handshake (one round trip of the
//! link's base latency), its transfer through the sender's uplink at `stream_bandwidth`
//! (messages of one sender queue there one after the other, so a node that serves many
//! fetches at once serves them in turn), and the link's latency once more.
//!
//! The model only decides; it neither stores payloads nor keeps time, so the simulator's
//! engine and the two-node [`Pair`](crate::pair::Pair) share it. Every random draw comes
//! from its own ChaCha8 stream, in a fixed order per datagram (loss, duplication, then per
//! copy jitter and reordering), and a probability of zero or one draws nothing.

use std::collections::BTreeSet;
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

use crate::digest::mix64;

/// The virtual network's behaviour. Latency of a datagram is the link's base latency (fixed per
/// link, drawn from `latency_min..=latency_max` by hashing the pair) plus uniform jitter, plus
/// `reorder_delay` with probability `reorder`.
#[derive(Clone, Debug)]
pub struct NetConfig {
    /// Smallest base latency of a link. Also the engine's window length (see
    /// [`crate::sim`]): the larger, the more events run in parallel.
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
    /// Bytes per second a node's uplink carries stream messages at.
    pub stream_bandwidth: u64,
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
            stream_bandwidth: 125_000_000,
        }
    }
}

impl NetConfig {
    /// Every link takes exactly `latency`: no jitter, loss, duplication or reordering.
    pub fn fixed(latency: Duration) -> Self {
        NetConfig {
            latency_min: latency,
            latency_max: latency,
            jitter: Duration::ZERO,
            ..NetConfig::default()
        }
    }
}

/// What becomes of one datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Dropped by a partition or a cut link.
    Partitioned,
    /// Dropped by random loss.
    Lost,
    /// Delivered once, after `delay` microseconds.
    Delivered {
        /// Microseconds from send to the receiver handling it.
        delay: u64,
    },
    /// Delivered twice, after each delay (microseconds).
    Duplicated {
        /// Delays of the first and the second copy.
        delays: [u64; 2],
    },
}

impl Fate {
    /// The delays of the copies that arrive (none, one or two), in the order they were drawn.
    pub fn delays(&self) -> &[u64] {
        match self {
            Fate::Partitioned | Fate::Lost => &[],
            Fate::Delivered { delay } => std::slice::from_ref(delay),
            Fate::Duplicated { delays } => delays,
        }
    }
}

/// The links between `nodes` nodes: latency, loss, duplication, reordering, partitions, cut
/// links and slow receivers.
pub struct Network {
    config: NetConfig,
    rng: ChaCha8Rng,
    loss_threshold: u64,
    duplicate_threshold: u64,
    reorder_threshold: u64,
    /// The partition group of each node.
    group: Vec<u8>,
    /// (from group, to group) pairs that drop everything.
    blocked: BTreeSet<(u8, u8)>,
    /// Directed node links that drop everything.
    cuts: BTreeSet<(u32, u32)>,
    /// Directed node links that drop datagrams only.
    datagram_blocks: BTreeSet<(u32, u32)>,
    /// When each node's uplink has sent every stream message given to it, microseconds.
    uplink_free: Vec<u64>,
    /// Extra delay, in microseconds, before each node handles a datagram (slow members).
    slow: Vec<u64>,
    link_salt: u64,
}

/// A probability as a threshold on a uniform `u64`; zero never draws.
fn threshold(p: f64) -> u64 {
    if p <= 0.0 {
        0
    } else if p >= 1.0 {
        u64::MAX
    } else {
        (p * u64::MAX as f64) as u64
    }
}

/// A duration in whole microseconds, saturating.
pub(crate) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl Network {
    /// The links between `nodes` nodes; every draw derives from `seed`.
    pub fn new(config: NetConfig, seed: u64, nodes: usize) -> Self {
        Network {
            rng: ChaCha8Rng::seed_from_u64(mix64(seed ^ 0x6e65_7477_6f72_6b00)),
            loss_threshold: threshold(config.loss),
            duplicate_threshold: threshold(config.duplicate),
            reorder_threshold: threshold(config.reorder),
            config,
            group: vec![0; nodes],
            blocked: BTreeSet::new(),
            cuts: BTreeSet::new(),
            datagram_blocks: BTreeSet::new(),
            uplink_free: vec![0; nodes],
            slow: vec![0; nodes],
            link_salt: mix64(seed ^ 0x6c69_6e6b),
        }
    }

    /// Decides what becomes of a datagram from node `from` to node `to` (both below the
    /// `nodes` the network was made for).
    pub fn fate(&mut self, from: u32, to: u32) -> Fate {
        let firewalled =
            !self.datagram_blocks.is_empty() && self.datagram_blocks.contains(&(from, to));
        if firewalled || self.blocked(from, to) {
            return Fate::Partitioned;
        }
        if self.chance(self.loss_threshold) {
            return Fate::Lost;
        }
        if self.chance(self.duplicate_threshold) {
            let first = self.delay(from, to);
            let second = self.delay(from, to);
            Fate::Duplicated { delays: [first, second] }
        } else {
            Fate::Delivered { delay: self.delay(from, to) }
        }
    }

    /// When a stream message of `len` bytes that node `from` sends to node `to` at `now`
    /// (microseconds) arrives, or `None` if a partition or a cut link breaks it. Draws
    /// nothing from the random stream.
    pub fn stream_arrival(&mut self, from: u32, to: u32, len: usize, now: u64) -> Option<u64> {
        if self.blocked(from, to) {
            return None;
        }
        let latency = self.base_latency(from, to);
        let transfer = (len as u64).saturating_mul(1_000_000) / self.config.stream_bandwidth.max(1);
        let uplink = &mut self.uplink_free[from as usize];
        let start = (*uplink).max(now + 2 * latency);
        *uplink = start + transfer;
        Some(*uplink + latency + self.slow[to as usize])
    }

    /// The smallest delay any datagram can have.
    pub fn latency_min(&self) -> Duration {
        self.config.latency_min
    }

    /// Changes the loss probability from now on.
    pub fn set_loss(&mut self, loss: f64) {
        self.config.loss = loss;
        self.loss_threshold = threshold(loss);
    }

    /// Node `i` handles every datagram `delay` after it arrives; zero undoes it.
    pub fn slow(&mut self, i: u32, delay: Duration) {
        if let Some(slot) = self.slow.get_mut(i as usize) {
            *slot = micros(delay);
        }
    }

    /// Puts node `i` in group `group_of(i)` and drops datagrams between different groups,
    /// both ways.
    pub fn partition(&mut self, group_of: impl Fn(u32) -> u8) {
        self.assign_groups(group_of);
        let groups: BTreeSet<u8> = self.group.iter().copied().collect();
        for &a in &groups {
            for &b in &groups {
                if a != b {
                    self.blocked.insert((a, b));
                }
            }
        }
    }

    /// Puts node `i` in group `group_of(i)` and drops datagrams from group `from` to group
    /// `to` only.
    pub fn partition_one_way(&mut self, group_of: impl Fn(u32) -> u8, from: u8, to: u8) {
        self.assign_groups(group_of);
        self.blocked.insert((from, to));
    }

    /// Drops datagrams on the directed link `from -> to`.
    pub fn cut(&mut self, from: u32, to: u32) {
        self.cuts.insert((from, to));
    }

    /// Drops datagrams (but not stream messages) on the directed link `from -> to`: a
    /// firewall that blocks UDP.
    pub fn block_datagrams(&mut self, from: u32, to: u32) {
        self.datagram_blocks.insert((from, to));
    }

    /// Removes every partition, cut and datagram block.
    pub fn heal(&mut self) {
        self.blocked.clear();
        self.cuts.clear();
        self.datagram_blocks.clear();
        self.group.fill(0);
    }

    fn assign_groups(&mut self, group_of: impl Fn(u32) -> u8) {
        for (i, group) in self.group.iter_mut().enumerate() {
            *group = group_of(i as u32);
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

    /// One copy's delay: the link's latency, the receiver's slowness, maybe reordering.
    fn delay(&mut self, from: u32, to: u32) -> u64 {
        let mut delay = self.latency(from, to) + self.slow[to as usize];
        if self.chance(self.reorder_threshold) {
            delay += micros(self.config.reorder_delay);
        }
        delay
    }

    /// The link's fixed latency, without jitter.
    fn base_latency(&self, from: u32, to: u32) -> u64 {
        let min = micros(self.config.latency_min);
        let span = micros(self.config.latency_max).saturating_sub(min);
        let (a, b) = (from.min(to), from.max(to));
        min + mix64(self.link_salt ^ (u64::from(a) << 32 | u64::from(b))) % (span + 1)
    }

    fn latency(&mut self, from: u32, to: u32) -> u64 {
        let base = self.base_latency(from, to);
        let jitter = micros(self.config.jitter);
        let extra = if jitter == 0 { 0 } else { self.rng.next_u64() % jitter };
        base + extra
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_link_draws_nothing_and_takes_its_latency() {
        let mut net = Network::new(NetConfig::fixed(Duration::from_millis(1)), 3, 2);
        for _ in 0..100 {
            assert_eq!(net.fate(0, 1), Fate::Delivered { delay: 1_000 });
        }
    }

    #[test]
    fn partitions_drop_between_groups_and_cuts_one_direction() {
        let mut net = Network::new(NetConfig::default(), 3, 4);
        net.partition(|i| u8::from(i >= 2));
        assert_eq!(net.fate(0, 2), Fate::Partitioned);
        assert_eq!(net.fate(3, 1), Fate::Partitioned);
        assert_eq!(net.fate(0, 1).delays().len(), 1);
        net.heal();
        net.cut(0, 2);
        assert_eq!(net.fate(0, 2), Fate::Partitioned);
        assert_eq!(net.fate(2, 0).delays().len(), 1);
    }

    #[test]
    fn streams_queue_in_the_senders_uplink_and_survive_datagram_blocks() {
        let mut config = NetConfig::fixed(Duration::from_millis(1));
        config.stream_bandwidth = 1_000_000; // a byte per microsecond
        let mut net = Network::new(config, 3, 3);
        // Handshake (2 ms), 10,000 bytes (10 ms), then the link (1 ms).
        assert_eq!(net.stream_arrival(0, 1, 10_000, 0), Some(13_000));
        // The next one waits for the uplink.
        assert_eq!(net.stream_arrival(0, 2, 1_000, 0), Some(14_000));
        assert_eq!(net.stream_arrival(1, 0, 1_000, 0), Some(4_000));
        net.block_datagrams(0, 1);
        assert_eq!(net.fate(0, 1), Fate::Partitioned);
        assert_eq!(net.stream_arrival(0, 1, 0, 50_000), Some(53_000));
        net.cut(0, 1);
        assert_eq!(net.stream_arrival(0, 1, 0, 60_000), None);
    }

    #[test]
    fn a_slow_receiver_adds_its_delay() {
        let mut net = Network::new(NetConfig::fixed(Duration::from_millis(1)), 3, 2);
        net.slow(1, Duration::from_millis(7));
        assert_eq!(net.fate(0, 1), Fate::Delivered { delay: 8_000 });
        assert_eq!(net.fate(1, 0), Fate::Delivered { delay: 1_000 });
    }
}
