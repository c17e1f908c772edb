//! What a scenario measured: one [`Outcome`], printed by `swim-sim --json` as one object.
//! Its keys are a contract (docs/BENCHMARKS.md and the testbed read them): keep them, add
//! freely.

use serde::Serialize;
use swim_core::Instant;

/// What a scenario measured. Keys of other scenarios are `None` and left out of JSON; a
/// time the scenario measures but never reached is `Some(None)`, printed as `null`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Outcome {
    /// Scenario name.
    pub scenario: &'static str,
    /// Implementation name ("swim" or "foca").
    #[serde(rename = "impl")]
    pub implementation: &'static str,
    /// Cluster size.
    pub nodes: usize,
    /// Master seed.
    pub seed: u64,
    /// Loss probability used.
    pub loss: f64,
    /// Whether the scenario's goal was reached.
    pub converged: bool,
    /// Datagrams sent per member per virtual second, over the scenario's phase: the join
    /// for `join`, everything after the join phase otherwise.
    pub msgs_per_member_s: f64,
    /// Bytes sent per member per virtual second, over the same phase.
    pub bytes_per_member_s: f64,
    /// Wall seconds (filled in by the runner).
    pub wall_s: f64,
    /// CPU seconds of the process (filled in by the runner).
    pub cpu_s: f64,
    /// Peak RSS in MiB (filled in by the runner).
    pub peak_rss_mib: f64,
    /// Deliveries and timer wake-ups simulated.
    pub sim_events: u64,
    /// Those of the scenario's own phase (the same phase as `msgs_per_member_s`: the join
    /// for `join`, everything after the join otherwise), so that the speed of a steady
    /// state is measured on the steady state, not on a join dominated by large datagrams.
    pub phase_sim_events: u64,
    /// Wall seconds of that phase.
    pub phase_wall_s: f64,
    /// CPU seconds of the process during that phase.
    pub phase_cpu_s: f64,
    /// Trace digest, hex.
    pub trace_digest: String,
    /// Virtual seconds simulated.
    pub virtual_s: f64,
    /// Seconds from the first start to every node seeing every other online (join phase).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub converge_s: Option<Option<f64>>,
    /// Seconds until 99% of nodes had the full view.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub converge_p99_s: Option<Option<f64>>,
    /// `converge_s` in gossip rounds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub converge_rounds: Option<Option<f64>>,
    /// Nodes with the full view at the end of the join phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub converged_nodes: Option<usize>,
    /// Stream messages sent per member per virtual second, over the same phase as
    /// `msgs_per_member_s` (swim with `--streams on`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_msgs_per_member_s: Option<f64>,
    /// Stream bytes sent per member per virtual second, over the same phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_bytes_per_member_s: Option<f64>,
    /// Bytes of metadata each member started with (`--metadata`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata_bytes: Option<usize>,
    /// Seconds from the first start until every node held every other node's metadata
    /// (join phase, with `--metadata`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata_all_s: Option<Option<f64>>,
    /// Seconds until 99% of nodes held every other node's metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata_p99_s: Option<Option<f64>>,
    /// Seconds from the crash until the first survivor saw the node offline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detect_first_s: Option<Option<f64>>,
    /// Seconds from the crash until every survivor saw the node offline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detect_all_s: Option<Option<f64>>,
    /// Suspicions reported about healthy members (after the join phase).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub false_suspect: Option<u64>,
    /// Offline (foca: down) reports about healthy members (after the join phase).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub false_offline: Option<u64>,
    /// Times a healthy node had to take a new identity (foca); swim refutes in place.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forced_rejoins: Option<u64>,
    /// Refutations of accusations (swim; foca reports these as rejoins).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refutations: Option<u64>,
    /// Nodes holding the complete live view at the end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_views: Option<usize>,
    /// Length of the lossy phase, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<f64>,
    /// Seconds from the update until every node knew it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_all_s: Option<Option<f64>>,
    /// Seconds from the update until 99% of nodes knew it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_p99_s: Option<Option<f64>>,
    /// `update_all_s` in gossip rounds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_rounds: Option<Option<f64>>,
    /// `update_p99_s` in gossip rounds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_p99_rounds: Option<Option<f64>>,
    /// Seconds from the split until every node saw the other half offline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split_detect_s: Option<Option<f64>>,
    /// Seconds from the heal until all views agree.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heal_s: Option<Option<f64>>,
    /// Entries about departed (crashed for good or left) members after quiescence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stale_members: Option<usize>,
    /// Whether Lifeguard was on (`stress`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifeguard: Option<bool>,
    /// Slow members (`stress`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slow: Option<usize>,
    /// Suspicions reported about healthy members: not slow, not crashed (`stress`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub false_suspect_healthy: Option<u64>,
    /// Offline reports about healthy members (`stress`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub false_offline_healthy: Option<u64>,
    /// Suspect reports heard second-hand: suspect events at nodes other than the accuser,
    /// about any member, after the join phase. `null` for foca, whose members take in
    /// others' suspicions without reporting them (its suspect reports are all its own).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suspect_events_heard: Option<Option<u64>>,
    /// Offline reports about members on the observer's own side of the split, from the
    /// split until views agree after the heal (`partition`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub false_offline_same_side: Option<u64>,
    /// Stalls: a member paused, its datagrams queued, then resumed (`stall`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stalls: Option<usize>,
    /// Suspicions a member raised itself (its own probe failed) within 2 s after resuming
    /// from a stall, about members that were not stalled since its own stall began
    /// (`stall`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub false_suspect_by_resumed: Option<u64>,
    /// Dissemination curve: (seconds since the measured phase began, fraction informed).
    #[serde(skip)]
    pub curve: Vec<(f64, f64)>,
    /// The stalls of `stall`, in order.
    #[serde(skip)]
    pub stall_log: Vec<Stall>,
}

/// One stall of the `stall` scenario.
#[derive(Clone, Copy, Debug)]
pub struct Stall {
    /// The member paused.
    pub member: u32,
    /// When it stopped.
    pub from: Instant,
    /// When it resumed.
    pub until: Instant,
}
