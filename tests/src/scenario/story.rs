//! A scenario in progress: the simulator, the scenario's own random stream and what has been
//! measured so far, with the steps stories are made of (run, wait for a goal, pick a member).

use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use swim_core::Instant;

use super::measure::{FullViews, Goal, MetadataViews, Milestones, secs};
use super::{Options, Outcome};
use crate::digest::mix64;
use crate::protocol::Protocol;
use crate::sim::{Observation, Sim};

/// Goals are checked this often while a story waits for one.
const CHECK_EVERY: Duration = Duration::from_millis(100);

/// A scenario in progress.
pub(super) struct Story<'o, P: Protocol> {
    /// The cluster.
    pub(super) sim: Sim<P>,
    /// How the scenario runs.
    pub(super) opts: &'o Options,
    /// What it measured so far.
    pub(super) out: Outcome,
    /// The scenario's choices (which member crashes, when nodes start...), apart from the
    /// simulator's own streams.
    rng: ChaCha8Rng,
    /// Hears every report too (tests check the scenario's counts against it).
    tap: &'o mut dyn FnMut(&Observation),
}

impl<'o, P: Protocol> Story<'o, P> {
    /// A story on `sim`, nothing measured yet; `tap` hears every report.
    pub(super) fn new(
        sim: Sim<P>,
        opts: &'o Options,
        out: Outcome,
        tap: &'o mut dyn FnMut(&Observation),
    ) -> Self {
        let rng = ChaCha8Rng::seed_from_u64(mix64(opts.seed ^ 0x7363_656e_6172_696f));
        Story { sim, opts, out, rng, tap }
    }

    /// Number of nodes.
    pub(super) fn n(&self) -> u32 {
        self.sim.len() as u32
    }

    /// The virtual time.
    pub(super) fn now(&self) -> Instant {
        self.sim.instant()
    }

    /// A uniform draw in `0..n`.
    pub(super) fn below(&mut self, n: u32) -> u32 {
        ((u64::from(self.rng.next_u32()) * u64::from(n)) >> 32) as u32
    }

    /// A random member other than node 0, the seed everyone joined through (node 0 if it
    /// is alone).
    pub(super) fn any_but_the_seed(&mut self) -> u32 {
        let n = self.n();
        if n > 1 { 1 + self.below(n - 1) } else { 0 }
    }

    /// Runs for `duration`, handing every report to `hear`.
    pub(super) fn run_for(&mut self, duration: Duration, hear: impl FnMut(&Observation)) {
        let at = self.now() + duration;
        self.run_until(at, hear);
    }

    /// Runs until `at`, handing every report to `hear`.
    pub(super) fn run_until(&mut self, at: Instant, mut hear: impl FnMut(&Observation)) {
        let tap = &mut self.tap;
        self.sim.run_until(at, &mut |o| {
            tap(o);
            hear(o);
        });
    }

    /// Runs until `goal` is reached (checked every 100 ms of virtual time) or `limit`
    /// passes, handing every report to `hear` with the goal.
    pub(super) fn wait<G: Goal>(
        &mut self,
        limit: Duration,
        goal: &mut G,
        mut hear: impl FnMut(&mut G, &Observation),
    ) {
        let end = self.now() + limit;
        while self.now() < end && !goal.reached() {
            let next = (self.now() + CHECK_EVERY).min(end);
            self.run_until(next, |o| hear(goal, o));
        }
    }

    /// Waits for `goal` up to the scenario's goal limit.
    pub(super) fn wait_for_goal<G: Goal>(
        &mut self,
        goal: &mut G,
        hear: impl FnMut(&mut G, &Observation),
    ) {
        self.wait(self.opts.goal_limit, goal, hear);
    }

    /// The premise of every scenario but `join` measures it: every node starts within the
    /// first virtual second, all joining through node 0, and the cluster runs until every
    /// node sees every other online (and, when members start with metadata, holds every
    /// other's metadata) or the join limit passes. Returns whether they all did.
    pub(super) fn join(&mut self) -> bool {
        let n = self.sim.len();
        let mut starts: Vec<(u64, u32)> =
            (1..n as u32).map(|i| (self.rng.next_u64() % 1_000_000, i)).collect();
        starts.sort_unstable();
        let with_metadata = self.opts.timing.metadata_bytes > 0;
        let mut goal = JoinGoal {
            views: FullViews::new(n),
            full: Milestones::new(Instant::ZERO, n, self.opts.curve),
            metadata: with_metadata
                .then(|| (MetadataViews::new(n), Milestones::new(Instant::ZERO, n, false))),
        };
        for (at, i) in starts {
            self.run_until(Instant::from_micros(at), |o| goal.observe(o));
            self.sim.start(i, 0);
        }
        self.wait(self.opts.join_limit, &mut goal, |goal, o| goal.observe(o));
        let JoinGoal { views, full, metadata } = goal;
        let round = secs(self.opts.timing.gossip_interval);
        self.out.converge_s = Some(full.all_s());
        self.out.converge_p99_s = Some(full.p99_s());
        self.out.converge_rounds = Some(full.all_s().map(|s| s / round));
        self.out.converged_nodes = Some(views.count);
        let mut joined = full.reached();
        if let Some((_, known)) = &metadata {
            self.out.metadata_all_s = Some(known.all_s());
            self.out.metadata_p99_s = Some(known.p99_s());
            joined &= known.reached();
        }
        self.out.curve = full.into_curve();
        joined
    }
}

/// The join's goal: full views everywhere, and every member's metadata everywhere when
/// members start with some.
struct JoinGoal {
    views: FullViews,
    full: Milestones,
    metadata: Option<(MetadataViews, Milestones)>,
}

impl JoinGoal {
    fn observe(&mut self, o: &Observation) {
        self.views.observe(o);
        self.full.record(self.views.count, o.at);
        if let Some((views, known)) = &mut self.metadata {
            views.observe(o);
            known.record(views.count, o.at);
        }
    }
}

impl Goal for JoinGoal {
    fn reached(&self) -> bool {
        self.full.reached() && self.metadata.as_ref().is_none_or(|(_, known)| known.reached())
    }
}
