//! The scenarios `swim-sim` runs and the tests assert on. Each builds a [`Sim`], drives it
//! through a story in virtual time and measures it; the result is an [`Outcome`] whose JSON
//! keys are the ones issue 3 lists.
//!
//! Every scenario but `join` starts from a joined cluster: N nodes start within one virtual
//! second, each knowing only node 0, and the scenario waits (up to `join_limit`) until every
//! node sees every other online.

use std::cell::Cell;
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use serde::Serialize;
use swim_core::Instant;

use crate::digest::mix64;
use crate::protocol::{Change, Protocol, Timing};
use crate::sim::{NetConfig, Observation, Sim};

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
    /// Threads the engine may use; `None`: one per core. Speed only: results are the same.
    pub threads: Option<usize>,
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
            threads: None,
        }
    }
}

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
    /// Dissemination curve: (seconds since the measured phase began, fraction informed).
    #[serde(skip)]
    pub curve: Vec<(f64, f64)>,
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn since(later: Instant, earlier: Instant) -> f64 {
    secs(later.saturating_duration_since(earlier))
}

/// Which nodes see every other running node online, kept from reports.
struct FullViews {
    full: Vec<bool>,
    count: usize,
    target: u32,
}

impl FullViews {
    fn new(n: usize) -> Self {
        FullViews {
            full: vec![n <= 1; n],
            count: if n <= 1 { n } else { 0 },
            target: n.saturating_sub(1) as u32,
        }
    }

    fn observe(&mut self, o: &Observation) {
        let now_full = o.online_count == self.target;
        let slot = &mut self.full[o.viewer as usize];
        if *slot != now_full {
            *slot = now_full;
            if now_full {
                self.count += 1;
            } else {
                self.count -= 1;
            }
        }
    }

    /// Recomputes from the simulator (after crashes change who should be seen).
    fn resync<P: Protocol>(&mut self, sim: &Sim<P>) {
        let up = (0..sim.len() as u32).filter(|&i| sim.is_up(i)).count();
        self.target = up.saturating_sub(1) as u32;
        self.count = 0;
        for i in 0..sim.len() as u32 {
            let full = sim.is_up(i) && sim.online_count(i) == self.target;
            self.full[i as usize] = full;
            self.count += usize::from(full);
        }
    }
}

/// Runs `step`-long slices until `done` or `limit` after now; returns when `done` first held.
fn run_until_done<P: Protocol>(
    sim: &mut Sim<P>,
    limit: Duration,
    observe: &mut impl FnMut(&Observation),
    mut done: impl FnMut(&Sim<P>) -> bool,
) -> Option<Instant> {
    let end = sim.instant() + limit;
    let step = Duration::from_millis(100);
    while sim.instant() < end {
        if done(sim) {
            return Some(sim.instant());
        }
        let next = (sim.instant() + step).min(end);
        sim.run_until(next, observe);
    }
    done(sim).then(|| sim.instant())
}

fn p99_count(n: usize) -> usize {
    (n * 99).div_ceil(100)
}

/// Everything a run needs besides the simulator.
struct Run {
    opts: Options,
    rng: ChaCha8Rng,
}

impl Run {
    fn new(opts: &Options) -> Self {
        Run {
            opts: opts.clone(),
            rng: ChaCha8Rng::seed_from_u64(mix64(opts.seed ^ 0x7363_656e_6172_696f)),
        }
    }

    fn below(&mut self, n: u32) -> u32 {
        ((u64::from(self.rng.next_u32()) * u64::from(n)) >> 32) as u32
    }

    /// Starts every node within the first virtual second, all joining through node 0, and
    /// runs until every node sees every other online or the join limit passes.
    fn join<P: Protocol>(&mut self, sim: &mut Sim<P>, out: &mut Outcome) -> bool {
        let n = sim.len();
        let mut starts: Vec<(u64, u32)> =
            (1..n as u32).map(|i| (self.rng.next_u64() % 1_000_000, i)).collect();
        starts.sort_unstable();
        let mut views = FullViews::new(n);
        let mut p99_at = None;
        let all_at: Cell<Option<Instant>> = Cell::new(None);
        let mut curve = Vec::new();
        let record_curve = self.opts.curve;
        let needed = p99_count(n);
        let mut observe = |o: &Observation| {
            views.observe(o);
            if p99_at.is_none() && views.count >= needed {
                p99_at = Some(o.at);
            }
            if all_at.get().is_none() && views.count == n {
                all_at.set(Some(o.at));
            }
            if record_curve {
                curve.push((secs(o.at.since_origin()), views.count as f64 / n as f64));
            }
        };
        for (at, i) in starts {
            sim.run_until(Instant::from_micros(at), &mut observe);
            sim.start(i, 0);
        }
        let limit = self.opts.join_limit;
        run_until_done(sim, limit, &mut observe, |_| all_at.get().is_some());
        let all_at = all_at.get();
        out.converge_s = Some(all_at.map(|t| secs(t.since_origin())));
        out.converge_p99_s = Some(p99_at.map(|t| secs(t.since_origin())));
        let round = secs(self.opts.timing.gossip_interval);
        out.converge_rounds = out.converge_s.map(|s| s.map(|s| s / round));
        out.converged_nodes = Some(views.count);
        if record_curve {
            out.curve = curve;
        }
        all_at.is_some()
    }
}

/// Runs `scenario` with implementation `P`.
pub fn run<P: Protocol>(scenario: Scenario, opts: &Options) -> Outcome {
    let mut net = opts.net.clone();
    if scenario != Scenario::Loss {
        net.loss = opts.loss;
    }
    let mut sim: Sim<P> = Sim::new(opts.nodes, opts.seed, opts.timing.clone(), net);
    if let Some(threads) = opts.threads {
        sim.set_threads(threads);
    }
    let mut run = Run::new(opts);
    let mut out = Outcome {
        scenario: scenario.name(),
        implementation: P::NAME,
        nodes: opts.nodes,
        seed: opts.seed,
        loss: opts.loss,
        ..Outcome::default()
    };
    let joined = run.join(&mut sim, &mut out);
    // Traffic is measured over the scenario's own phase (the join phase for `join`).
    let phase = if scenario == Scenario::Join {
        (0, 0, Instant::ZERO)
    } else {
        (sim.stats().datagrams_sent, sim.stats().bytes_sent, sim.instant())
    };
    out.converged = match scenario {
        Scenario::Join => joined,
        _ if !joined => {
            // Joined views are the premise of every other scenario; report the join.
            false
        }
        Scenario::Detect => detect(&mut sim, &mut run, &mut out),
        Scenario::Loss => loss(&mut sim, &mut run, &mut out),
        Scenario::Update => update(&mut sim, &mut run, &mut out),
        Scenario::Partition => partition(&mut sim, &mut run, &mut out),
        Scenario::Churn => churn(&mut sim, &mut run, &mut out),
        Scenario::Stress => stress(&mut sim, &mut run, &mut out),
    };
    let stats = sim.stats();
    let elapsed = secs(sim.instant().since_origin()).max(1e-9);
    let phase_s = since(sim.instant(), phase.2).max(1e-9);
    let members = opts.nodes.max(1) as f64;
    out.msgs_per_member_s = (stats.datagrams_sent - phase.0) as f64 / members / phase_s;
    out.bytes_per_member_s = (stats.bytes_sent - phase.1) as f64 / members / phase_s;
    out.sim_events = stats.events;
    out.trace_digest = format!("{:016x}", sim.digest());
    out.virtual_s = elapsed;
    out
}

/// Counts suspect and offline reports about members in `healthy`.
#[derive(Default)]
struct FalseReports {
    suspect: u64,
    offline: u64,
    refuted: u64,
    rejoined: u64,
}

impl FalseReports {
    fn observe(&mut self, o: &Observation, healthy: impl Fn(u32) -> bool) {
        match (o.report.change, o.report.subject) {
            (Change::Suspect, Some(s)) if healthy(s) => self.suspect += 1,
            (Change::Offline, Some(s)) if healthy(s) => self.offline += 1,
            (Change::Refuted, _) => self.refuted += 1,
            (Change::Rejoined, _) => self.rejoined += 1,
            _ => {}
        }
    }
}

fn detect<P: Protocol>(sim: &mut Sim<P>, run: &mut Run, out: &mut Outcome) -> bool {
    let n = sim.len() as u32;
    let mut reports = FalseReports::default();
    sim.run_for(Duration::from_secs(5), &mut |o| reports.observe(o, |_| true));
    let target = if n > 1 { 1 + run.below(n - 1) } else { 0 };
    let crashed_at = sim.instant();
    sim.crash(target);
    let survivors = n.saturating_sub(1) as usize;
    let mut seen = vec![false; n as usize];
    seen[target as usize] = true;
    let mut count = 0;
    let mut first = None;
    let all: Cell<Option<Instant>> = Cell::new(None);
    let mut curve = Vec::new();
    let record_curve = run.opts.curve;
    let mut observe = |o: &Observation| {
        reports.observe(o, |s| s != target);
        let about_target = o.report.subject == Some(target);
        let gone = matches!(o.report.change, Change::Offline | Change::Reaped);
        if about_target && gone && !seen[o.viewer as usize] {
            seen[o.viewer as usize] = true;
            count += 1;
            first.get_or_insert(o.at);
            if count == survivors {
                all.set(Some(o.at));
            }
            if record_curve {
                curve.push((since(o.at, crashed_at), count as f64 / survivors as f64));
            }
        }
    };
    run_until_done(sim, run.opts.goal_limit, &mut observe, |_| all.get().is_some());
    let all = all.get();
    out.detect_first_s = Some(first.map(|t| since(t, crashed_at)));
    out.detect_all_s = Some(all.map(|t| since(t, crashed_at)));
    out.false_suspect = Some(reports.suspect);
    out.false_offline = Some(reports.offline);
    if record_curve {
        out.curve = curve;
    }
    all.is_some()
}

fn loss<P: Protocol>(sim: &mut Sim<P>, run: &mut Run, out: &mut Outcome) -> bool {
    let n = sim.len();
    sim.set_loss(run.opts.loss);
    let mut reports = FalseReports::default();
    let mut views = FullViews::new(n);
    views.resync(sim);
    let start = sim.instant();
    let mut curve = Vec::new();
    let record_curve = run.opts.curve;
    sim.run_for(run.opts.loss_duration, &mut |o| {
        reports.observe(o, |_| true);
        views.observe(o);
        if record_curve {
            curve.push((since(o.at, start), views.count as f64 / n as f64));
        }
    });
    out.false_suspect = Some(reports.suspect);
    out.false_offline = Some(reports.offline);
    out.forced_rejoins = Some(reports.rejoined);
    out.refutations = Some(reports.refuted);
    // A complete live view holds every other node as a member (online, or suspect while
    // it refutes: at 5% loss some suspicion is always in flight somewhere).
    let full = (0..n as u32)
        .filter(|&v| {
            sim.node(v).is_some_and(|p| (0..n as u32).all(|s| s == v || p.sees_available(s)))
        })
        .count();
    out.full_views = Some(full);
    out.duration_s = Some(secs(run.opts.loss_duration));
    if record_curve {
        out.curve = curve;
    }
    full == n && reports.offline == 0
}

fn stress<P: Protocol>(sim: &mut Sim<P>, run: &mut Run, out: &mut Outcome) -> bool {
    let n = sim.len() as u32;
    // Slow members: never node 0 (the seed), at most all but two others.
    let k = run.opts.slow.min(n.saturating_sub(3) as usize);
    let mut slow = vec![false; n as usize];
    let mut chosen = 0;
    while chosen < k {
        let i = 1 + run.below(n - 1);
        if !slow[i as usize] {
            slow[i as usize] = true;
            chosen += 1;
            sim.slow(i, run.opts.slow_delay);
        }
    }
    // Only swim has Lifeguard.
    out.lifeguard = Some(run.opts.timing.lifeguard && P::NAME == "swim");
    out.slow = Some(k);
    let mut reports = FalseReports::default();
    sim.run_for(run.opts.loss_duration, &mut |o| reports.observe(o, |s| !slow[s as usize]));
    // A real crash of a healthy member: detection at every healthy survivor.
    let healthy: Vec<u32> = (1..n).filter(|&i| !slow[i as usize]).collect();
    let target = healthy[run.below(healthy.len() as u32) as usize];
    let crashed_at = sim.instant();
    sim.crash(target);
    let survivors = (0..n).filter(|&i| i != target && !slow[i as usize]).count();
    let mut seen = vec![false; n as usize];
    let (mut count, mut first) = (0, None);
    let all: Cell<Option<Instant>> = Cell::new(None);
    let mut observe = |o: &Observation| {
        reports.observe(o, |s| s != target && !slow[s as usize]);
        let gone = matches!(o.report.change, Change::Offline | Change::Reaped);
        let viewer = o.viewer as usize;
        if o.report.subject == Some(target) && gone && !slow[viewer] && !seen[viewer] {
            seen[viewer] = true;
            count += 1;
            first.get_or_insert(o.at);
            if count == survivors {
                all.set(Some(o.at));
            }
        }
    };
    run_until_done(sim, run.opts.goal_limit, &mut observe, |_| all.get().is_some());
    out.false_suspect_healthy = Some(reports.suspect);
    out.false_offline_healthy = Some(reports.offline);
    out.detect_first_s = Some(first.map(|t| since(t, crashed_at)));
    out.detect_all_s = Some(all.get().map(|t| since(t, crashed_at)));
    out.duration_s = Some(secs(run.opts.loss_duration));
    all.get().is_some()
}

fn update<P: Protocol>(sim: &mut Sim<P>, run: &mut Run, out: &mut Outcome) -> bool {
    let n = sim.len() as u32;
    sim.run_for(Duration::from_secs(5), &mut |_| {});
    let source = run.below(n);
    let started = sim.instant();
    let mut informed = vec![false; n as usize];
    informed[source as usize] = true;
    let mut count = 1usize;
    let needed = p99_count(n as usize);
    let mut p99 = (count >= needed).then_some(started);
    let all: Cell<Option<Instant>> = Cell::new(None);
    let mut curve = vec![(0.0, 1.0 / f64::from(n))];
    let record_curve = run.opts.curve;
    if !sim.set_metadata(source, "version", b"2") {
        return false;
    }
    let mut observe = |o: &Observation| {
        if o.report.change == Change::Metadata
            && o.report.subject == Some(source)
            && !informed[o.viewer as usize]
        {
            informed[o.viewer as usize] = true;
            count += 1;
            if count >= needed {
                p99.get_or_insert(o.at);
            }
            if count == n as usize {
                all.set(Some(o.at));
            }
            if record_curve {
                curve.push((since(o.at, started), count as f64 / f64::from(n)));
            }
        }
    };
    run_until_done(sim, run.opts.goal_limit, &mut observe, |_| all.get().is_some());
    let all = all.get();
    // Reports say when; the final state must agree.
    let known = (0..n)
        .filter(|&v| {
            v == source || sim.node(v).is_some_and(|p| p.has_metadata(source, "version", b"2"))
        })
        .count();
    let round = secs(run.opts.timing.gossip_interval);
    out.update_all_s = Some(all.map(|t| since(t, started)));
    out.update_p99_s = Some(p99.map(|t| since(t, started)));
    out.update_rounds = out.update_all_s.map(|s| s.map(|s| s / round));
    out.update_p99_rounds = out.update_p99_s.map(|s| s.map(|s| s / round));
    if record_curve {
        out.curve = curve;
    }
    all.is_some() && known == n as usize
}

fn partition<P: Protocol>(sim: &mut Sim<P>, run: &mut Run, out: &mut Outcome) -> bool {
    let n = sim.len();
    let half = (n / 2) as u32;
    let timing = run.opts.timing.clone();
    let duration = run
        .opts
        .partition_duration
        .unwrap_or(timing.reap_timeout + timing.suspect_timeout + Duration::from_secs(30));
    sim.run_for(Duration::from_secs(5), &mut |_| {});
    let split_at = sim.instant();
    sim.partition(|i| u8::from(i >= half));
    // Each node should come to see exactly its own half online.
    let own_half = |v: u32| if v < half { half - 1 } else { n as u32 - half - 1 };
    let mut split = vec![false; n];
    let mut split_count = 0;
    let mut split_all = None;
    let mut views = FullViews::new(n);
    sim.run_for(duration, &mut |o| {
        let v = o.viewer as usize;
        let now_split = o.online_count == own_half(o.viewer);
        if now_split && !split[v] {
            split[v] = true;
            split_count += 1;
            if split_count == n {
                split_all.get_or_insert(o.at);
            }
        }
        views.observe(o);
    });
    out.split_detect_s = Some(split_all.map(|t| since(t, split_at)));
    let healed_at = sim.instant();
    sim.heal();
    views.resync(sim);
    let mut curve = Vec::new();
    let record_curve = run.opts.curve;
    let all = Cell::new((views.count == n).then_some(healed_at));
    let mut observe = |o: &Observation| {
        views.observe(o);
        if all.get().is_none() && views.count == n {
            all.set(Some(o.at));
        }
        if record_curve {
            curve.push((since(o.at, healed_at), views.count as f64 / n as f64));
        }
    };
    run_until_done(sim, run.opts.goal_limit, &mut observe, |_| all.get().is_some());
    let all = all.get();
    out.heal_s = Some(all.map(|t| since(t, healed_at)));
    if record_curve {
        out.curve = curve;
    }
    all.is_some() && sim.views_agree()
}

fn churn<P: Protocol>(sim: &mut Sim<P>, run: &mut Run, out: &mut Outcome) -> bool {
    let n = sim.len() as u32;
    let timing = run.opts.timing.clone();
    // A node counts as healthy once it has run for this long: any offline report about it
    // after that is about its current life.
    let settle = timing.suspect_timeout + timing.ping_interval * 3 + Duration::from_secs(20);
    let mut up_since: Vec<Option<Instant>> = vec![Some(Instant::ZERO); n as usize];
    let mut departed = vec![false; n as usize];
    let mut reports = FalseReports::default();
    let mut observe_into = |o: &Observation, up_since: &[Option<Instant>]| {
        reports.observe(o, |s| {
            up_since[s as usize].is_some_and(|t| o.at.saturating_duration_since(t) >= settle)
        });
    };
    // Every second of the churn phase one running node (never node 0, the seed) crashes,
    // leaves, or crashes and comes back 5-20 s later under the same name.
    let mut restarts: Vec<(Instant, u32)> = Vec::new();
    let end = sim.instant() + run.opts.churn_duration;
    while sim.instant() < end && n > 2 {
        let next = sim.instant() + Duration::from_secs(1);
        let snapshot = up_since.clone();
        sim.run_until(next, &mut |o| observe_into(o, &snapshot));
        let now = sim.instant();
        restarts.sort_unstable();
        while restarts.first().is_some_and(|(at, _)| *at <= now) {
            let (_, i) = restarts.remove(0);
            sim.restart(i, 0);
            up_since[i as usize] = Some(now);
        }
        let candidate = 1 + run.below(n - 1);
        if up_since[candidate as usize].is_none() || departed[candidate as usize] {
            continue;
        }
        match run.below(4) {
            0 => {
                sim.leave(candidate);
                departed[candidate as usize] = true;
                up_since[candidate as usize] = None;
            }
            1 => {
                sim.crash(candidate);
                departed[candidate as usize] = true;
                up_since[candidate as usize] = None;
            }
            _ => {
                sim.crash(candidate);
                up_since[candidate as usize] = None;
                let back = now + Duration::from_secs(5 + u64::from(run.below(16)));
                restarts.push((back, candidate));
            }
        }
    }
    for (_, i) in restarts {
        sim.restart(i, 0);
        up_since[i as usize] = Some(sim.instant());
    }
    // Left nodes have said goodbye: give the news a few seconds to spread, then stop them
    // so only the departure remains to be reaped.
    let snapshot = up_since.clone();
    sim.run_for(Duration::from_secs(5), &mut |o| observe_into(o, &snapshot));
    for i in 0..n {
        if departed[i as usize] && sim.is_up(i) {
            sim.crash(i);
        }
    }
    // Quiescence: long enough for every departure to be declared, reaped and forgotten.
    let quiet = timing.suspect_timeout + timing.reap_timeout * 2 + Duration::from_secs(30);
    let snapshot = up_since.clone();
    sim.run_for(quiet, &mut |o| observe_into(o, &snapshot));
    let live: Vec<u32> = (0..n).filter(|&i| sim.is_up(i)).collect();
    let stale = live
        .iter()
        .filter_map(|&v| sim.node(v))
        .map(|p| (0..n).filter(|&s| departed[s as usize] && p.knows(s)).count())
        .sum();
    out.false_suspect = Some(reports.suspect);
    out.false_offline = Some(reports.offline);
    out.refutations = Some(reports.refuted);
    out.forced_rejoins = Some(reports.rejoined);
    out.stale_members = Some(stale);
    let agree = sim.views_agree();
    out.full_views = Some(
        live.iter().filter(|&&v| live.iter().all(|&s| s == v || sim.sees_online(v, s))).count(),
    );
    agree && stale == 0
}
