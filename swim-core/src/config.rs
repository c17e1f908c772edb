//! Configuration, with the Python `swim-protocol` package's names and defaults.

use alloc::string::String;
use alloc::vec::Vec;
use core::net::SocketAddr;
use core::time::Duration;

use crate::auth::Keyring;
use crate::metadata::Metadata;
use crate::wire::{IP_UDP_OVERHEAD, MAX_NAME_LEN};

/// Smallest accepted `mtu_size`: the IPv4 minimum reassembly size (RFC 791).
pub const MIN_MTU_SIZE: usize = 576;
/// Largest accepted `mtu_size`: the largest IP packet.
pub const MAX_MTU_SIZE: usize = 65535;

/// Most helpers asked to probe one target indirectly (`ping_req_count`).
pub(crate) const MAX_HELPERS: usize = 8;

/// Largest accepted `max_stream_message`: 64 MiB.
pub const MAX_STREAM_MESSAGE: usize = 64 << 20;

/// Room a stream message needs besides one member's metadata: header, sender, body and the
/// record around the metadata, with names at their longest.
const STREAM_OVERHEAD: usize = 1024;

/// Longest accepted duration of any setting: a day. Longer intervals and timeouts would
/// stall a cluster for good, and keeping every duration this short keeps every deadline
/// arithmetic (a timeout stretched by the health score, a backoff doubled) far from
/// overflowing.
pub const MAX_DURATION: Duration = Duration::from_secs(86_400);

/// How a node behaves. Build with [`Config::new`], adjust fields, then hand it to
/// [`Node::new`](crate::Node::new), which calls [`Config::validate`].
///
/// Names and timing defaults are the Python swim-protocol package's, tuned for small
/// clusters on a LAN. Every node of a cluster should use the same timing and `mtu_size`.
/// Each field below gives its default; the fields without one (`keyring`, `local_name`,
/// `local_addr`) are [`Config::new`]'s arguments.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// Shared secrets: the first signs every datagram, all verify. Holding one means being
    /// able to join the cluster. No default: given to [`Config::new`].
    pub keyring: Keyring,
    /// This member's unique name, at most 255 bytes; by convention `host:port`, as the
    /// Python swim-protocol package names members. No default: given to [`Config::new`].
    pub local_name: String,
    /// The address other members send to (the advertised address; drivers may bind
    /// another). No default: given to [`Config::new`] (drivers fill it in once bound).
    pub local_addr: SocketAddr,
    /// Addresses of members to join through (default none). Retried with backoff until one
    /// answers, and again whenever this node sees no one else available, so partitions heal
    /// by themselves.
    pub peers: Vec<SocketAddr>,
    /// The initial metadata of this member (default empty).
    pub local_metadata: Metadata,
    /// Time between probes (default 1 s). Shorter detects failures sooner and costs one
    /// ping and one ack per member per interval.
    pub ping_interval: Duration,
    /// Time to wait for a direct ack before asking others to probe (default 0.3 s). Must be
    /// below `ping_interval`; too short on a slow network turns delay into indirect probes.
    pub ping_timeout: Duration,
    /// Members asked to probe indirectly when the direct ping times out (default 3, as
    /// memberlist's `IndirectChecks`; the Python package asks 1). A probe then fails only if
    /// both direct pings and every helper's relay are lost: at 5% loss, with the second
    /// direct ping, about 1 probe in 16,000 with 3 helpers against 1 in 570 with 1. In the
    /// simulator (32 members, 5% loss, 600 s, seeds 1-3) that is 1-2 false suspicions, all
    /// refuted, instead of 28-30 with one helper, for about 12% more bytes (the ping-reqs
    /// cost more than the suspicions and refutations they avoid). Without loss no ping-req
    /// is sent.
    pub ping_req_count: usize,
    /// Time to wait for a relayed ack after sending ping-reqs (default 0.9 s). A probe fails,
    /// and its target becomes suspect, `ping_timeout + ping_req_timeout` after the ping.
    pub ping_req_timeout: Duration,
    /// Time a member stays suspect before it is declared offline (default 5 s). Longer gives
    /// a slow member more time to refute; shorter detects crashes sooner. With Lifeguard's
    /// dynamic suspicion (on by default) this is the shortest suspicion: a suspicion starts
    /// at up to [`Lifeguard::suspicion_max_mult`] times it (4x by default, 20 s) and falls
    /// towards it as other members confirm it; in clusters above 1000 members both grow with
    /// `log10(N) / 3` (see [`Lifeguard::confirmations`]).
    pub suspect_timeout: Duration,
    /// Time between anti-entropy exchanges with one random member (default 0.5 s). Repairs
    /// whatever gossip missed; costs one small datagram per interval when views agree.
    pub sync_interval: Duration,
    /// Largest IP packet, IP and UDP headers included (default 1500; the Python package
    /// counts the payload only). Datagrams are at most `mtu_size - 48` bytes
    /// ([`Config::max_datagram`], the receive buffer a loop needs); larger incoming
    /// datagrams are dropped, so every node needs the same value.
    pub mtu_size: usize,
    /// Time between gossip rounds, each sending pending membership facts to `gossip_fanout`
    /// random members (default 0.2 s). Facts also ride on every ping, ack and ping-req.
    pub gossip_interval: Duration,
    /// Members each gossip round sends to (default 3, at most 16). Higher spreads faster,
    /// costs more.
    pub gossip_fanout: usize,
    /// Each fact is sent `retransmit_mult * ceil(log10(N + 1))` times (default 4, 1 to 64), enough to
    /// reach every member with high probability; anti-entropy repairs the rest.
    pub retransmit_mult: u32,
    /// Time an offline or left member is kept before it is forgotten (default 60 s); its
    /// name is then remembered as a tombstone for as long again, so stale gossip cannot
    /// resurrect it. Bounds memory under churn.
    pub reap_timeout: Duration,
    /// Time between attempts to reach members outside the current view: seeds not seen as
    /// available and offline members not yet reaped (default 10 s). This is what heals a
    /// partition once the two sides have given up on each other.
    pub rejoin_interval: Duration,
    /// The Lifeguard extensions (Dadgar, Phillips, Currey, 2017), all on by default; see
    /// [`Lifeguard`].
    pub lifeguard: Lifeguard,
    /// The wall clock, in milliseconds since the Unix epoch, at the instant given to
    /// [`Node::new`](crate::Node::new) (default 0: unset, which validation refuses while
    /// `replay_protection` is on). Every datagram carries a sequence number derived from
    /// the wall clock, and receivers refuse a datagram they already accepted or whose clock
    /// lies further ahead of theirs than `max_clock_skew`, or further behind than
    /// `max_datagram_age` (replay protection, like WireGuard's
    /// handshake timestamps). The drivers set it from the system clock, and keep the node's
    /// wall clock right with [`Node::set_wall_clock`](crate::Node::set_wall_clock); a custom
    /// loop does the same, e.g. from `std::time::SystemTime`.
    pub epoch_ms: u64,
    /// Replay protection (default on): this node numbers its datagrams from its wall clock
    /// (`epoch_ms`) and refuses replays and datagrams without numbers. Turn it off only for
    /// a node without any wall clock: its datagrams are then refused by nodes that have one,
    /// and it accepts any datagram again that it accepted once.
    pub replay_protection: bool,
    /// Most members the table holds, this node included (default 65,536). Facts about new
    /// members beyond it are refused and counted, so a misbehaving peer holding the key
    /// cannot exhaust memory by inventing members.
    pub max_members: usize,
    /// Most members at one IP address, this node included (default 64). Facts about further
    /// new members at that IP are refused and counted, so a peer holding the key cannot aim
    /// every node's probes at one host by inventing members there. Raise it to run more
    /// members than that on one host (all on loopback, say).
    pub max_members_per_ip: usize,
    /// Largest metadata of a member, counted as the bytes of its encoding: its keys and
    /// values plus two or three bytes of framing per entry (default 64 KiB). Local metadata
    /// beyond it is refused when set; remote metadata beyond it is ignored and counted. A
    /// member's metadata costs this much memory at most, plus a few dozen bytes. Without
    /// `streams`, a member's record with its metadata must also fit one datagram (about
    /// 1.4 kB at the default `mtu_size`): larger metadata is refused when set, and others'
    /// larger metadata is never fetched.
    pub max_metadata_size: usize,
    /// Stream messages (default off): the driver carries the messages of
    /// [`Node::poll_stream`](crate::Node::poll_stream) over a reliable transport (the
    /// drivers: TCP on the same port as UDP) and hands what arrives to
    /// [`Node::handle_stream`](crate::Node::handle_stream). It lets metadata grow past a
    /// datagram (fetched over a stream from its member), adds full-state push-pull
    /// exchanges (`push_pull_interval`) and a stream ping before a member that does not
    /// answer UDP probes is suspected. Off, the node is datagram-only and tells others so;
    /// a custom loop that carries no streams leaves it off.
    pub streams: bool,
    /// Largest stream message, sent or accepted (default 1 MiB): drivers check a frame's
    /// length prefix against it before reading the frame. Must hold the largest metadata.
    pub max_stream_message: usize,
    /// With `streams`: a full-state exchange over a stream with one random member that
    /// speaks streams (and with the seeds on join), every `push_pull_interval` scaled as
    /// memberlist does for clusters above 32 members: times `ceil(log2(N / 32)) + 1`.
    /// `None` turns it off (the default: see docs/BENCHMARKS.md, "Streams").
    pub push_pull_interval: Option<Duration>,
    /// How long a metadata fetch or push-pull waits for its answer before it is asked of
    /// another member or given up (default 5 s).
    pub stream_timeout: Duration,
    /// The cluster's label (memberlist's `Label`; default empty). It is bound into every
    /// datagram's tag without travelling on the wire, so two clusters that share a secret
    /// and a network stay apart: a datagram of another label fails authentication. At most
    /// 255 bytes; every member of a cluster needs the same label.
    pub label: String,
    /// Encrypt every datagram (AES-256-GCM-SIV with a key derived from the keyring's first
    /// secret) instead of only authenticating it (default off). Receivers open encrypted and
    /// plain datagrams alike, so encryption is turned on in two steps: set `encrypt` on every
    /// member, then `require_encryption`. Costs no extra bytes.
    pub encrypt: bool,
    /// Refuse datagrams that are not encrypted (default off): the second step of turning
    /// encryption on.
    pub require_encryption: bool,
    /// How far ahead of this node's wall clock a datagram's sequence number (derived from
    /// its sender's clock) may be (default 5 s): so far apart may members' clocks be. A
    /// datagram from further in the future is dropped and counted (`clock_skew`), so a
    /// forged sequence number cannot lock a member out of its own window for longer than
    /// this; the default is short enough that such a lock-out ends before a suspicion can
    /// run out (at 10 s it did not). NTP keeps clocks within milliseconds; a member whose
    /// clock is further off than this cannot talk to the cluster.
    pub max_clock_skew: Duration,
    /// How old a datagram may be, by its sequence number, when this node handles it
    /// (default 30 s): network delay, time spent in a slow receiver's queue, and clocks
    /// behind this node's (up to `max_clock_skew`). An older datagram is dropped and counted
    /// (`clock_skew`): a datagram captured before this node restarted is worthless to an
    /// attacker once it is this old.
    pub max_datagram_age: Duration,
    /// Rolling upgrade from wire version 1 (default [`LegacyWire::Refuse`]): see
    /// [`LegacyWire`] for the procedure.
    pub legacy_wire: LegacyWire,
}

/// Speaking wire version 1 during a rolling upgrade from a release that speaks only it.
///
/// Version 2 binds datagrams to their receivers and cluster label and derives sequence
/// numbers from time, which version 1 cannot check, so a cluster moves in three steps, each
/// finished on every member before the next (as with key rotation):
///
/// 1. Replace each member's binary with this release, configured with [`LegacyWire::Speak`]:
///    it speaks version 1, so members not yet replaced understand it, and accepts both.
/// 2. Switch each member to [`LegacyWire::Accept`]: it speaks version 2 and still accepts
///    version 1 from members not yet switched.
/// 3. Switch each member to [`LegacyWire::Refuse`], the default.
///
/// While version 1 is accepted, its datagrams have only version 1's protections: they are
/// not bound to their receiver, their answers are not checked for an echo, and their
/// sequence numbers are not checked against the clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum LegacyWire {
    /// Speak and accept version 2 only (the last step, and the default).
    #[default]
    Refuse,
    /// Speak version 2, and accept version 1 too (the second step).
    Accept,
    /// Speak version 1, and accept both (the first step). Needs an empty `label` and no
    /// encryption, which version 1 has not.
    Speak,
}

/// HashiCorp's Lifeguard extensions to SWIM, which make a slow or overloaded member far less
/// likely to cause false failure declarations. [`Lifeguard::default`] turns every part on;
/// [`Lifeguard::OFF`] gives plain SWIM, where `suspect_timeout` is fixed, as in the Python
/// swim-protocol package.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Lifeguard {
    /// Local health awareness: the highest value of this node's health score (default 8;
    /// 0 turns it off). A failed probe raises the score by the nacks expected from its
    /// ping-req helpers that did not come (by one if no nack was expected): helpers that
    /// nacked reached this node and could not reach the target either, which blames the
    /// target, not this node. Each accusation this node had to refute raises it by one;
    /// each successful probe lowers it by one. The probe interval and the probe
    /// timeouts are multiplied by `score + 1`, so a node that is itself the problem (a CPU
    /// stall, a saturated link) probes less eagerly and waits longer before accusing others.
    pub max_health: u32,
    /// Nacks: a ping-req helper that hears nothing from the target within its own ping
    /// timeout answers the requester with a nack, so the requester can tell "the target is
    /// unreachable" from "I am the problem" (default on).
    pub nacks: bool,
    /// Dynamic suspicion: independent confirmations (distinct members suspecting the same
    /// incarnation) that bring a suspicion's timeout from its maximum down to its minimum
    /// (K, default 3; 0 turns it off and `suspect_timeout` is fixed). With C confirmations the
    /// timeout is `max(min, max - (max - min) * ln(C + 1) / ln(K + 1))`, where
    /// `min = suspect_timeout * max(1, log10(N) / 3)` for a cluster of N members (exactly
    /// `suspect_timeout` up to 1000 members) and `max = min * suspicion_max_mult`. K is capped
    /// at N - 2, the members that could confirm besides the suspect and the first accuser.
    pub confirmations: u32,
    /// Dynamic suspicion: the longest suspicion as a multiple of the shortest (default 4).
    pub suspicion_max_mult: u32,
    /// Buddy system: a datagram to a member we suspect carries that suspicion first, so the
    /// suspect learns at once and can refute (default on).
    pub buddy: bool,
}

impl Lifeguard {
    /// Plain SWIM: no health score, no nacks, fixed suspicion timeout, no buddy system.
    pub const OFF: Lifeguard = Lifeguard {
        max_health: 0,
        nacks: false,
        confirmations: 0,
        suspicion_max_mult: 1,
        buddy: false,
    };

    /// Whether any part is on.
    pub fn is_on(&self) -> bool {
        *self != Lifeguard::OFF
    }
}

impl Default for Lifeguard {
    fn default() -> Self {
        Lifeguard {
            max_health: 8,
            nacks: true,
            confirmations: 3,
            suspicion_max_mult: 4,
            buddy: true,
        }
    }
}

impl Config {
    /// A configuration with the defaults given for each field. Replay protection is on and
    /// needs `epoch_ms`, the wall clock at the node's start, which this does not read (the
    /// core reads no clock): set it, or start the node with `Node::start` (feature `std`),
    /// which sets it from the system clock, as the drivers do.
    pub fn new(local_name: impl Into<String>, local_addr: SocketAddr, keyring: Keyring) -> Self {
        Config {
            keyring,
            local_name: local_name.into(),
            local_addr,
            peers: Vec::new(),
            local_metadata: Metadata::new(),
            ping_interval: Duration::from_millis(1000),
            ping_timeout: Duration::from_millis(300),
            ping_req_count: 3,
            ping_req_timeout: Duration::from_millis(900),
            suspect_timeout: Duration::from_millis(5000),
            sync_interval: Duration::from_millis(500),
            mtu_size: 1500,
            gossip_interval: Duration::from_millis(200),
            gossip_fanout: 3,
            retransmit_mult: 4,
            reap_timeout: Duration::from_secs(60),
            rejoin_interval: Duration::from_secs(10),
            lifeguard: Lifeguard::default(),
            epoch_ms: 0,
            replay_protection: true,
            max_members: 65_536,
            max_members_per_ip: 64,
            max_metadata_size: 64 * 1024,
            streams: false,
            max_stream_message: crate::wire::DEFAULT_MAX_STREAM_MESSAGE,
            push_pull_interval: None,
            stream_timeout: Duration::from_secs(5),
            label: String::new(),
            encrypt: false,
            require_encryption: false,
            max_clock_skew: Duration::from_secs(5),
            max_datagram_age: Duration::from_secs(30),
            legacy_wire: LegacyWire::Refuse,
        }
    }

    /// Largest datagram this configuration sends or accepts.
    pub fn max_datagram(&self) -> usize {
        self.mtu_size.saturating_sub(IP_UDP_OVERHEAD)
    }

    /// Checks every field; the error names the first bad one and why.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_keys()?;
        self.validate_timing()?;
        self.validate_sizes()?;
        self.validate_wire()?;
        Ok(())
    }

    fn validate_keys(&self) -> Result<(), ConfigError> {
        require(!self.keyring.is_empty(), ConfigError::Empty { field: "keyring" })?;
        require(!self.keyring.has_empty_secret(), ConfigError::Empty { field: "keyring" })?;
        let keys = self.keyring.len() <= crate::auth::MAX_KEYS;
        require(keys, out_of_range("keyring", "at most 8 secrets"))?;
        require(!self.local_name.is_empty(), ConfigError::Empty { field: "local_name" })?;
        let name = self.local_name.len() <= MAX_NAME_LEN;
        require(name, out_of_range("local_name", "at most 255 bytes"))
    }

    fn validate_timing(&self) -> Result<(), ConfigError> {
        let durations = [
            ("ping_interval", self.ping_interval),
            ("ping_timeout", self.ping_timeout),
            ("ping_req_timeout", self.ping_req_timeout),
            ("suspect_timeout", self.suspect_timeout),
            ("sync_interval", self.sync_interval),
            ("gossip_interval", self.gossip_interval),
            ("reap_timeout", self.reap_timeout),
            ("rejoin_interval", self.rejoin_interval),
            ("max_clock_skew", self.max_clock_skew),
            ("max_datagram_age", self.max_datagram_age),
            ("stream_timeout", self.stream_timeout),
            ("push_pull_interval", self.push_pull_interval.unwrap_or(MAX_DURATION)),
        ];
        for (field, duration) in durations {
            let in_range = !duration.is_zero() && duration <= MAX_DURATION;
            require(in_range, out_of_range(field, "above zero and at most a day"))?;
        }
        require(
            self.ping_timeout < self.ping_interval,
            ConfigError::Conflict {
                field: "ping_timeout",
                other: "ping_interval",
                reason: "a probe must time out before the next one starts",
            },
        )?;
        require(self.epoch_ms < 1 << 43, out_of_range("epoch_ms", "below 2^43 (year 2248)"))?;
        require(
            self.epoch_ms != 0 || !self.replay_protection,
            ConfigError::Conflict {
                field: "epoch_ms",
                other: "replay_protection",
                reason: "replay protection needs the wall clock (milliseconds since 1970) at \
                         the node's start",
            },
        )
    }

    fn validate_sizes(&self) -> Result<(), ConfigError> {
        let mtu = (MIN_MTU_SIZE..=MAX_MTU_SIZE).contains(&self.mtu_size);
        require(mtu, out_of_range("mtu_size", "between 576 and 65535"))?;
        let fanout = (1..=crate::random::MAX_SAMPLE).contains(&self.gossip_fanout);
        require(fanout, out_of_range("gossip_fanout", "between 1 and 16"))?;
        let helpers = self.ping_req_count <= MAX_HELPERS;
        require(helpers, out_of_range("ping_req_count", "at most 8"))?;
        let mult = (1..=64).contains(&self.retransmit_mult);
        require(mult, out_of_range("retransmit_mult", "between 1 and 64"))?;
        require(self.max_members >= 2, out_of_range("max_members", "at least 2"))?;
        let per_ip = self.max_members_per_ip >= 1;
        require(per_ip, out_of_range("max_members_per_ip", "at least 1"))?;
        let (size, limit) = (self.local_metadata.encoded_len(), self.max_metadata_size);
        require(size <= limit, ConfigError::TooLarge { field: "local_metadata", size, limit })?;
        let stream = (self.max_datagram()..=MAX_STREAM_MESSAGE).contains(&self.max_stream_message);
        require(stream, out_of_range("max_stream_message", "between a datagram and 64 MiB"))?;
        let (size, limit) = (self.max_metadata_size, self.max_stream_message);
        let fits = size.saturating_add(STREAM_OVERHEAD) <= limit;
        require(fits, ConfigError::TooLarge { field: "max_metadata_size", size, limit })?;
        let lifeguard = &self.lifeguard;
        let mult = lifeguard.suspicion_max_mult >= 1;
        require(mult, out_of_range("lifeguard.suspicion_max_mult", "at least 1"))?;
        let health = lifeguard.max_health <= 64;
        require(health, out_of_range("lifeguard.max_health", "at most 64"))?;
        let confirmations = lifeguard.confirmations <= 64;
        require(confirmations, out_of_range("lifeguard.confirmations", "at most 64"))?;
        let label = self.label.len() <= MAX_NAME_LEN;
        require(label, out_of_range("label", "at most 255 bytes"))?;
        require(
            !self.peers.contains(&self.local_addr),
            ConfigError::Conflict {
                field: "peers",
                other: "local_addr",
                reason: "a node does not join through itself",
            },
        )
    }

    fn validate_wire(&self) -> Result<(), ConfigError> {
        // Version 1 carries neither label nor encryption: speaking it cannot honour them, and
        // accepting it would let datagrams through that they exist to keep out.
        let conflict =
            |field, reason| ConfigError::Conflict { field, other: "legacy_wire", reason };
        let speaks_v1 = self.legacy_wire == LegacyWire::Speak;
        let accepts_v1 = self.legacy_wire != LegacyWire::Refuse;
        require(!accepts_v1 || self.label.is_empty(), conflict("label", "version 1 has no label"))?;
        let encrypts = self.encrypt || self.require_encryption;
        require(!speaks_v1 || !encrypts, conflict("encrypt", "version 1 cannot be encrypted"))?;
        require(
            !accepts_v1 || !self.require_encryption,
            conflict("require_encryption", "version 1 cannot be encrypted"),
        )?;
        require(
            self.encrypt || !self.require_encryption,
            ConfigError::Conflict {
                field: "require_encryption",
                other: "encrypt",
                reason: "a node that requires encryption must send encrypted too",
            },
        )
    }
}

fn require(ok: bool, error: ConfigError) -> Result<(), ConfigError> {
    if ok { Ok(()) } else { Err(error) }
}

fn out_of_range(field: &'static str, expected: &'static str) -> ConfigError {
    ConfigError::OutOfRange { field, expected }
}

/// Why a configuration was refused: each kind names the offending field ([`Self::field`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A value that must be given is empty (no secret, an empty secret, no name).
    #[error("`{field}` must not be empty")]
    Empty {
        /// The field.
        field: &'static str,
    },
    /// A number, size or duration outside what works.
    #[error("`{field}` must be {expected}")]
    OutOfRange {
        /// The field.
        field: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// A field whose value cannot work with another field's.
    #[error("`{field}` cannot be used with this `{other}`: {reason}")]
    Conflict {
        /// The field refused.
        field: &'static str,
        /// The field it conflicts with.
        other: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// A value too large to fit where it must go (metadata in a datagram, or its limit).
    #[error("`{field}` takes {size} bytes where at most {limit} fit")]
    TooLarge {
        /// The field.
        field: &'static str,
        /// Its size in bytes.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// An address no member can have: unspecified, multicast, broadcast, or port 0 (a
    /// driver fills in the bound port before creating the node).
    #[error("`{field}` must be a unicast address with a port")]
    InvalidAddress {
        /// The field.
        field: &'static str,
    },
    /// The operating system gave no randomness to seed the node.
    #[error("the operating system gave no randomness to seed the node")]
    NoRandomness,
}

impl ConfigError {
    /// The name of the offending field (`rng` for [`ConfigError::NoRandomness`]).
    pub fn field(&self) -> &'static str {
        match self {
            ConfigError::Empty { field }
            | ConfigError::OutOfRange { field, .. }
            | ConfigError::Conflict { field, .. }
            | ConfigError::TooLarge { field, .. }
            | ConfigError::InvalidAddress { field } => field,
            ConfigError::NoRandomness => "rng",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    fn config() -> Config {
        let addr = SocketAddr::from(([127, 0, 0, 1], 2001));
        let mut config = Config::new("127.0.0.1:2001", addr, Keyring::new("s"));
        config.epoch_ms = 1_700_000_000_000;
        config
    }

    #[test]
    fn defaults_are_the_seeds_and_valid() {
        let c = config();
        assert_eq!(c.ping_interval, Duration::from_secs(1));
        assert_eq!(c.ping_timeout, Duration::from_millis(300));
        // Three helpers, not the seed's one: false suspicions under loss (see the field).
        assert_eq!(c.ping_req_count, 3);
        assert_eq!(c.ping_req_timeout, Duration::from_millis(900));
        assert_eq!(c.suspect_timeout, Duration::from_secs(5));
        assert_eq!(c.sync_interval, Duration::from_millis(500));
        assert_eq!(c.mtu_size, 1500);
        assert_eq!(c.max_datagram(), 1452);
        assert_eq!(c.validate(), Ok(()));
        // Without a wall clock, only with replay protection explicitly off.
        let mut unprotected = config();
        unprotected.epoch_ms = 0;
        assert_eq!(unprotected.validate().unwrap_err().field(), "epoch_ms");
        unprotected.replay_protection = false;
        assert_eq!(unprotected.validate(), Ok(()));
    }

    #[test]
    fn errors_name_the_field() {
        type Mutation = fn(&mut Config);
        let cases: [(Mutation, &str); 9] = [
            (|c| c.local_name.clear(), "local_name"),
            (|c| c.local_name = "x".repeat(256), "local_name"),
            (|c| c.keyring = Keyring::from_secrets(["a", ""]), "keyring"),
            (|c| c.ping_interval = Duration::ZERO, "ping_interval"),
            (|c| c.ping_timeout = Duration::from_secs(1), "ping_timeout"),
            (|c| c.mtu_size = 100, "mtu_size"),
            (|c| c.gossip_fanout = 0, "gossip_fanout"),
            (|c| c.retransmit_mult = 65, "retransmit_mult"),
            (|c| c.peers.push(c.local_addr), "peers"),
        ];
        for (mutate, field) in cases {
            let mut c = config();
            mutate(&mut c);
            let error = c.validate().unwrap_err();
            assert_eq!(error.field(), field);
            assert!(error.to_string().contains(field));
        }
    }
}
