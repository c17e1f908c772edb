//! What the simulator needs from a membership implementation: one trait, so swim and foca
//! run through the same network, clock and scenarios.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use swim_core::{Config, Instant, Keyring};

/// Timing and dissemination settings shared by every implementation. Each adapter maps them
/// onto its own configuration (see `docs/BENCHMARKS.md` for the foca mapping).
#[derive(Clone, Debug)]
pub struct Timing {
    /// Time between probes.
    pub ping_interval: Duration,
    /// Time to wait for a direct ack before probing indirectly.
    pub ping_timeout: Duration,
    /// Time to wait for an indirect ack.
    pub ping_req_timeout: Duration,
    /// Members asked to probe indirectly.
    pub ping_req_count: usize,
    /// Time a member stays suspect before it is declared offline.
    pub suspect_timeout: Duration,
    /// Time between anti-entropy exchanges.
    pub sync_interval: Duration,
    /// Time between gossip rounds.
    pub gossip_interval: Duration,
    /// Members each gossip round sends to.
    pub gossip_fanout: usize,
    /// Sends per fact are `retransmit_mult * ceil(log10(N + 1))`.
    pub retransmit_mult: u32,
    /// Time an offline member is kept before it is forgotten.
    pub reap_timeout: Duration,
    /// Time between attempts to reach members outside the view.
    pub rejoin_interval: Duration,
    /// Whether Lifeguard is on, with swim-core's default settings (swim only: foca has no
    /// Lifeguard).
    pub lifeguard: bool,
    /// Whether nodes carry stream messages (swim only): metadata past a datagram, the
    /// stream ping, push-pull.
    pub streams: bool,
    /// With `streams`: the push-pull interval (swim only), `None` for none.
    pub push_pull_interval: Option<Duration>,
    /// Bytes of metadata each member starts with (0: none), its value
    /// [`initial_metadata`]`(index, bytes)` under the key [`METADATA_KEY`].
    pub metadata_bytes: usize,
}

/// The key of the metadata members start with (`Timing::metadata_bytes`).
pub const METADATA_KEY: &str = "blob";

/// The metadata value node `index` starts with: `bytes` bytes that differ between nodes.
pub fn initial_metadata(index: u32, bytes: usize) -> Vec<u8> {
    let seed = crate::digest::mix64(u64::from(index));
    (0..bytes).map(|k| (seed >> ((k % 8) * 8)) as u8 ^ (k / 8) as u8).collect()
}

impl Default for Timing {
    /// swim-core's defaults, read from [`Config::new`] so the two cannot drift apart.
    fn default() -> Self {
        let defaults = Config::new("defaults", addr(0), Keyring::new("defaults"));
        Timing {
            ping_interval: defaults.ping_interval,
            ping_timeout: defaults.ping_timeout,
            ping_req_timeout: defaults.ping_req_timeout,
            ping_req_count: defaults.ping_req_count,
            suspect_timeout: defaults.suspect_timeout,
            sync_interval: defaults.sync_interval,
            gossip_interval: defaults.gossip_interval,
            gossip_fanout: defaults.gossip_fanout,
            retransmit_mult: defaults.retransmit_mult,
            reap_timeout: defaults.reap_timeout,
            rejoin_interval: defaults.rejoin_interval,
            lifeguard: defaults.lifeguard.is_on(),
            streams: defaults.streams,
            push_pull_interval: defaults.push_pull_interval,
            metadata_bytes: 0,
        }
    }
}

/// What a node reported, with the member it is about turned into a node index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// A member was seen for the first time.
    Joined,
    /// A member is suspected.
    Suspect,
    /// A member was declared offline (foca: down).
    Offline,
    /// A member left gracefully.
    Left,
    /// A member is online again after being suspect, offline or left.
    Alive,
    /// A member was forgotten.
    Reaped,
    /// A member's metadata changed (or, for foca, a custom broadcast about it arrived).
    Metadata,
    /// This node was accused and refuted (swim) or had to take a new identity (foca).
    Refuted,
    /// This node took a new identity because the cluster declared it down (foca only).
    Rejoined,
    /// This node heard from the cluster for the first time after joining.
    JoinedCluster,
}

impl Change {
    /// A small stable code, for the trace digest.
    pub fn code(self) -> u64 {
        self as u64
    }
}

/// One report from a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Report {
    /// What happened.
    pub change: Change,
    /// The node index it is about; `None` for reports about the node itself.
    pub subject: Option<u32>,
    /// Whether, after the input that caused it, the node sees the subject as online;
    /// `None` when the report does not change that (a metadata change).
    pub online: Option<bool>,
    /// For `Suspect`: this node raised the suspicion itself (its own probe failed) rather
    /// than hearing it from another member. False for every other change.
    pub firsthand: bool,
}

impl Report {
    /// A report of `change` about `subject` that this node did not conclude itself.
    pub fn new(change: Change, subject: Option<u32>, online: Option<bool>) -> Self {
        Report { change, subject, online, firsthand: false }
    }
}

/// A membership implementation the simulator can drive. Every method is deterministic:
/// same construction seed and same calls give the same outputs. `Send` because the engine
/// hands the nodes of one time window to several threads (see [`crate::sim`]).
pub trait Protocol: Sized + Send {
    /// Short name, e.g. "swim".
    const NAME: &'static str;

    /// Whether `Suspect` reports include suspicions heard from other members, not only
    /// those the node raised itself (foca reports only its own).
    const REPORTS_HEARD_SUSPICIONS: bool = true;

    /// A node with index `index` in a cluster of (about) `cluster_size`, not yet joined;
    /// `life` counts restarts of this node (0 for the first process).
    fn new(
        index: u32,
        life: u32,
        cluster_size: usize,
        timing: &Timing,
        seed: u64,
        now: Instant,
    ) -> Self;
    /// Starts joining through the node at `seed`.
    fn join(&mut self, now: Instant, seed: SocketAddr);
    /// Leaves gracefully.
    fn leave(&mut self, now: Instant);
    /// Publishes a metadata value; returns false if the implementation refused it.
    fn set_metadata(&mut self, now: Instant, key: &str, value: &[u8]) -> bool;
    /// A datagram arrived.
    fn handle_datagram(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]);
    /// A deadline passed (may be called early).
    fn handle_timeout(&mut self, now: Instant);
    /// The next deadline.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Hands every pending datagram to `send`.
    fn drain_transmits(&mut self, send: impl FnMut(SocketAddr, &[u8]));
    /// A stream message arrived (implementations without streams ignore it).
    fn handle_stream(&mut self, _now: Instant, _from: SocketAddr, _bytes: &[u8]) {}
    /// Hands every pending stream message to `send` (none without streams).
    fn drain_streams(&mut self, _send: impl FnMut(SocketAddr, Vec<u8>)) {}
    /// The next report.
    fn poll_report(&mut self) -> Option<Report>;
    /// Whether this node sees node `subject` as online.
    fn sees_online(&self, subject: u32) -> bool;
    /// Whether this node sees node `subject` as a member: online or suspect (not offline,
    /// left or unknown).
    fn sees_available(&self, subject: u32) -> bool;
    /// Whether this node, node `me`, sees every other of nodes `0..nodes` as available
    /// ([`Protocol::sees_available`]).
    fn sees_all_available(&self, me: u32, nodes: u32) -> bool {
        (0..nodes).all(|s| s == me || self.sees_available(s))
    }
    /// Whether this node holds an entry about node `subject`, whatever its status.
    fn knows(&self, subject: u32) -> bool;
    /// Member entries this node holds, itself included, whatever their status.
    fn entries(&self) -> usize;
    /// Whether this node holds metadata `key = value` for `subject`.
    fn has_metadata(&self, subject: u32, key: &str, value: &[u8]) -> bool;
}

/// The address of node `index`: 10.x.y.z:7946, one address per index, so the simulator maps
/// addresses back to nodes with arithmetic rather than a map.
pub fn addr(index: u32) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::from(0x0a00_0000 | index), 7946))
}

/// The node index of an address made by [`addr`].
pub fn index_of(addr: SocketAddr) -> Option<u32> {
    match addr {
        SocketAddr::V4(v4) if v4.port() == 7946 => {
            let bits = u32::from(*v4.ip());
            (bits >> 24 == 10).then_some(bits & 0x00ff_ffff)
        }
        _ => None,
    }
}

/// The node index in a member name made from [`addr`] (`"10.0.3.7:7946"`).
pub fn index_of_name(name: &str) -> Option<u32> {
    index_of(name.parse().ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip() {
        for i in [0, 1, 255, 256, 9_999, 70_000] {
            assert_eq!(index_of(addr(i)), Some(i));
            assert_eq!(index_of_name(&addr(i).to_string()), Some(i));
        }
        assert_eq!(index_of("127.0.0.1:7946".parse().unwrap()), None);
    }
}
