//! The real-network testbed behind `swim-testbed`: member processes (`swim-member`) in
//! network namespaces of their own on a private bridge, the simulator's scenarios played on
//! them with real crashes (SIGKILL), stalls (SIGSTOP), loss and partitions (nftables), and
//! what only a real run shows: CPU, memory and bytes on the wire per member.
//!
//! - [`net`]: namespaces, bridge, filters, and cleanup (also of a killed run's leftovers).
//! - [`fleet`]: the member processes and what they report.
//! - [`line`](mod@line): what a member and the testbed say to each other.
//! - [`views`]: who each member sees online, from its reports.
//! - [`scenarios`] and [`faults`]: the scenarios, measured with the simulator's JSON keys.
//! - [`simulated`]: the simulator's side of a comparison.
//! - [`table`]: both sides printed next to each other.

pub mod faults;
pub mod fleet;
pub mod line;
pub mod net;
pub mod scenarios;
pub mod simulated;
pub mod table;
pub mod views;

use std::path::PathBuf;
use std::time::Duration;

use crate::protocol::Timing;
pub use simulated::Scenario;

/// Why a run could not be made.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An external tool (`ip`, `nft`, `kill`) or the member program failed.
    #[error("{0}")]
    Tool(String),
    /// The machine cannot host the testbed (not root, a tool missing).
    #[error("cannot run the testbed here: {0}")]
    Unsupported(String),
    /// The plan asks for something impossible.
    #[error("invalid plan: {0}")]
    Plan(String),
}

/// What to run: the scenario and every parameter both sides share.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The scenario.
    pub scenario: Scenario,
    /// Members.
    pub nodes: u32,
    /// Seeds the testbed's choices (start order, crash and update targets, stall phases)
    /// and the members' RNGs.
    pub seed: u64,
    /// Independent loss per datagram (0..1): during the lossy phase of `loss`, from the
    /// join on otherwise.
    pub loss: f64,
    /// Protocol timing (the members' and the simulator's).
    pub timing: Timing,
    /// Length of the lossy phase of `loss` and the stalling phase of `stress`.
    pub duration: Duration,
    /// Length of the churn phase of `churn`.
    pub churn_duration: Duration,
    /// Length of the split of `partition`; `None`: reap + suspect timeouts + 30 s.
    pub partition: Option<Duration>,
    /// Members stalled in `stress`.
    pub slow: usize,
    /// Stalls in `stall` (one member at a time).
    pub stalls: usize,
    /// How long a stall lasts.
    pub stall: Duration,
    /// `stress`: time from the start of one stall of a member to the start of its next;
    /// `stall`: from the start of one stall to the start of the next.
    pub stall_every: Duration,
    /// Longest wait for the join and for the scenario's goal.
    pub limit: Duration,
    /// The simulator's link latency (and jitter) in a comparison.
    pub sim_latency: Duration,
    /// The `swim-member` program.
    pub member: PathBuf,
}

impl Plan {
    /// The split's length.
    pub fn partition_duration(&self) -> Duration {
        let t = &self.timing;
        self.partition.unwrap_or(t.reap_timeout + t.suspect_timeout + Duration::from_secs(30))
    }

    /// Checks what would otherwise fail half-way.
    pub fn validate(&self) -> Result<(), Error> {
        if !(2..=1000).contains(&self.nodes) {
            return Err(Error::Plan(format!("--nodes {} (2 to 1000)", self.nodes)));
        }
        if !(0.0..1.0).contains(&self.loss) {
            return Err(Error::Plan(format!("--loss {} (0 to below 1)", self.loss)));
        }
        if self.stall >= self.stall_every {
            return Err(Error::Plan("a stall must be shorter than the time between".into()));
        }
        Ok(())
    }

    /// The command-line flags giving a member this plan's timing.
    pub fn member_args(&self) -> Vec<String> {
        let t = &self.timing;
        let ms = |d: Duration| d.as_millis().to_string();
        let mut args = vec![
            ("--ping-interval-ms", ms(t.ping_interval)),
            ("--ping-timeout-ms", ms(t.ping_timeout)),
            ("--ping-req-timeout-ms", ms(t.ping_req_timeout)),
            ("--ping-req-count", t.ping_req_count.to_string()),
            ("--suspect-timeout-ms", ms(t.suspect_timeout)),
            ("--sync-interval-ms", ms(t.sync_interval)),
            ("--gossip-interval-ms", ms(t.gossip_interval)),
            ("--gossip-fanout", t.gossip_fanout.to_string()),
            ("--retransmit-mult", t.retransmit_mult.to_string()),
            ("--reap-timeout-ms", ms(t.reap_timeout)),
            ("--rejoin-interval-ms", ms(t.rejoin_interval)),
        ]
        .into_iter()
        .flat_map(|(flag, value)| [flag.to_owned(), value])
        .collect::<Vec<_>>();
        if !t.lifeguard {
            args.push("--no-lifeguard".into());
        }
        args
    }
}

/// Whether this machine can host the testbed: root, `ip`, `nft` and `kill` present.
pub fn check_host() -> Result<(), Error> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned));
    if uid.as_deref() != Some("0") {
        return Err(Error::Unsupported("network namespaces need root".into()));
    }
    for tool in ["ip", "nft", "kill"] {
        let found = std::process::Command::new(tool)
            .arg(if tool == "kill" { "-l" } else { "-V" })
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            return Err(Error::Unsupported(format!(
                "`{tool}` is missing (apt-get install nftables iproute2 procps)"
            )));
        }
    }
    Ok(())
}
