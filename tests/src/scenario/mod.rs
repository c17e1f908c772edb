//! The scenarios `swim-sim` runs and the tests assert on. Each builds a [`Sim`], drives it
//! through a story in virtual time (a few steps: run, crash, split, wait until every node
//! sees something) and measures it; the result is an [`Outcome`], whose JSON keys
//! docs/BENCHMARKS.md describes.
//!
//! Every scenario but `join` starts from a joined cluster: N nodes start within one virtual
//! second, each knowing only node 0, and the scenario waits (up to `join_limit`) until every
//! node sees every other online.

mod churn;
mod detect;
mod loss;
mod measure;
mod outcome;
mod partition;
pub mod stall;
mod story;
mod stress;
mod update;

use std::time::Duration;

use serde::Serialize;
use swim_core::Instant;

use self::measure::since;
pub use self::outcome::{Outcome, Stall};
use self::story::Story;
use crate::protocol::{Protocol, Timing};
use crate::sim::{NetConfig, Observation, Resume, Sim};

/// Which story to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// N nodes start within one second knowing only node 0: time to full views.
    Join,
    /// A joined cluster, one node crashes: time until survivors see it offline.
    Detect,
    /// A joined cluster under random loss: false suspicions and declarations.
    Loss,
    /// A joined cluster, one node changes its metadata: time until everyone knows.
    Update,
    /// A joined cluster split in halves for longer than the reap time, then healed.
    Partition,
    /// A joined cluster where members crash, restart and leave: false declarations, and
    /// entries about departed members left after quiescence.
    Churn,
    /// A joined cluster with `--slow` overloaded members (every datagram handled
    /// `--slow-delay` late) under 1% loss: false reports about the healthy members, then a
    /// real crash and its detection (Lifeguard's benchmark).
    Stress,
    /// A joined cluster where, one at a time, `--stalls` members stall (paused for
    /// `--stall-duration`, their datagrams queued, then resumed): suspicions the resumed
    /// members raise about healthy ones.
    Stall,
}

impl Scenario {
    /// The name used on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Join => "join",
            Scenario::Detect => "detect",
            Scenario::Loss => "loss",
            Scenario::Update => "update",
            Scenario::Partition => "partition",
            Scenario::Churn => "churn",
            Scenario::Stress => "stress",
            Scenario::Stall => "stall",
        }
    }
}

/// How to run a scenario.
#[derive(Clone, Debug)]
pub struct Options {
    /// Cluster size.
    pub nodes: usize,
    /// Master seed.
    pub seed: u64,
    /// Loss probability: during the `loss` phase for `loss`, from the start otherwise.
    pub loss: f64,
    /// Protocol timing.
    pub timing: Timing,
    /// Network behaviour (its `loss` is replaced by `loss` above, see there).
    pub net: NetConfig,
    /// Longest virtual time to wait for the initial join.
    pub join_limit: Duration,
    /// Longest virtual time to wait for the scenario's goal (detection, update, heal...).
    pub goal_limit: Duration,
    /// Length of the `loss` phase.
    pub loss_duration: Duration,
    /// Length of the `partition`; `None`: reap + suspect timeouts + 30 s.
    pub partition_duration: Option<Duration>,
    /// Length of the `churn` phase.
    pub churn_duration: Duration,
    /// Record the dissemination curve (fraction informed over time).
    pub curve: bool,
    /// Slow members in `stress`.
    pub slow: usize,
    /// How late a slow member handles each datagram.
    pub slow_delay: Duration,
    /// Stalls in `stall`.
    pub stalls: usize,
    /// How long a member stays paused in `stall`.
    pub stall_duration: Duration,
    /// Time from one stall's start to the next's in `stall` (longer than a stall, so no
    /// two overlap).
    pub stall_every: Duration,
    /// What a stalled member handles first when it resumes: by default the datagrams
    /// waiting in its socket, as the drivers do (`TimersFirst` is the older drivers' order,
    /// which the core alone must survive too).
    pub stall_resume: Resume,
    /// Threads the engine may use; `None`: one per core. Speed only: results are the same.
    pub threads: Option<usize>,
    /// Bytes of the value `update` publishes (0: the two bytes "2").
    pub update_bytes: usize,
}

impl Options {
    /// Defaults for `nodes` nodes and `seed`.
    pub fn new(nodes: usize, seed: u64) -> Self {
        Options {
            nodes,
            seed,
            loss: 0.0,
            timing: Timing::default(),
            net: NetConfig::default(),
            join_limit: Duration::from_secs(300),
            goal_limit: Duration::from_secs(300),
            loss_duration: Duration::from_secs(600),
            partition_duration: None,
            churn_duration: Duration::from_secs(60),
            curve: false,
            slow: 4,
            slow_delay: Duration::from_secs(6),
            stalls: 100,
            stall_duration: Duration::from_secs(3),
            stall_every: Duration::from_secs(6),
            stall_resume: Resume::SocketFirst,
            threads: None,
            update_bytes: 0,
        }
    }
}

/// Runs `scenario` with implementation `P`.
pub fn run<P: Protocol>(scenario: Scenario, opts: &Options) -> Outcome {
    run_observed::<P>(scenario, opts, &mut |_| {})
}

/// Runs `scenario` with implementation `P`, handing every report any node makes to
/// `observe` as well (to check a scenario's counts against the reports themselves).
pub fn run_observed<P: Protocol>(
    scenario: Scenario,
    opts: &Options,
    observe: &mut dyn FnMut(&Observation),
) -> Outcome {
    let mut net = opts.net.clone();
    if scenario != Scenario::Loss {
        net.loss = opts.loss;
    }
    let mut sim: Sim<P> = Sim::new(opts.nodes, opts.seed, opts.timing.clone(), net);
    if let Some(threads) = opts.threads {
        sim.set_threads(threads);
    }
    let out = Outcome {
        scenario: scenario.name(),
        implementation: P::NAME,
        nodes: opts.nodes,
        seed: opts.seed,
        loss: opts.loss,
        ..Outcome::default()
    };
    let mut story = Story::new(sim, opts, out, observe);
    let mut clocks = PhaseClocks::start(story.sim.stats().events);
    let joined = story.join();
    // Traffic is measured over the scenario's own phase (the join phase for `join`).
    let phase = if scenario == Scenario::Join {
        (0, 0, Instant::ZERO, 0, 0)
    } else {
        clocks = PhaseClocks::start(story.sim.stats().events);
        let stats = story.sim.stats();
        let streams = (stats.streams_sent, stats.stream_bytes_sent);
        (stats.datagrams_sent, stats.bytes_sent, story.now(), streams.0, streams.1)
    };
    story.out.converged = match scenario {
        Scenario::Join => joined,
        // Joined views are the premise of every other scenario; report the join.
        _ if !joined => false,
        Scenario::Detect => detect::run(&mut story),
        Scenario::Loss => loss::run(&mut story),
        Scenario::Update => update::run(&mut story),
        Scenario::Partition => partition::run(&mut story),
        Scenario::Churn => churn::run(&mut story),
        Scenario::Stress => stress::run(&mut story),
        Scenario::Stall => stall::run(&mut story),
    };
    let Story { sim, mut out, .. } = story;
    let stats = sim.stats();
    let phase_s = since(sim.instant(), phase.2).max(1e-9);
    let members = opts.nodes.max(1) as f64;
    out.msgs_per_member_s = (stats.datagrams_sent - phase.0) as f64 / members / phase_s;
    out.bytes_per_member_s = (stats.bytes_sent - phase.1) as f64 / members / phase_s;
    if opts.timing.streams {
        let messages = (stats.streams_sent - phase.3) as f64;
        out.stream_msgs_per_member_s = Some(messages / members / phase_s);
        let bytes = (stats.stream_bytes_sent - phase.4) as f64;
        out.stream_bytes_per_member_s = Some(bytes / members / phase_s);
    }
    if opts.timing.metadata_bytes > 0 {
        out.metadata_bytes = Some(opts.timing.metadata_bytes);
    }
    out.sim_events = stats.events;
    (out.phase_sim_events, out.phase_wall_s, out.phase_cpu_s) = clocks.stop(stats.events);
    out.trace_digest = format!("{:016x}", sim.digest());
    out.virtual_s = since(sim.instant(), Instant::ZERO).max(1e-9);
    out
}

/// Where the wall clock, the process's CPU time and the event count stood when a phase
/// began. They only measure: nothing the simulation computes reads them.
struct PhaseClocks {
    wall: std::time::Instant,
    cpu_s: f64,
    events: u64,
}

impl PhaseClocks {
    fn start(events: u64) -> Self {
        PhaseClocks { wall: std::time::Instant::now(), cpu_s: crate::sys::cpu_s(), events }
    }

    /// Events, wall seconds and CPU seconds since the start.
    fn stop(&self, events: u64) -> (u64, f64, f64) {
        let cpu_s = (crate::sys::cpu_s() - self.cpu_s).max(0.0);
        (events - self.events, self.wall.elapsed().as_secs_f64(), cpu_s)
    }
}
