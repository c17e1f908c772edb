//! The simulator's side of `--compare`: the same scenario, N, timing and loss run through
//! the public entry points `swim-sim` uses, with the network's latency set to a bridge's.
//! Everything the testbed takes from the simulator's scenario module passes through here.

use std::time::Duration;

use crate::scenario::{self, Options};
use crate::swim_impl::Swim;
use crate::testbed::Plan;

pub use crate::scenario::{Outcome, Scenario};

/// Runs `plan`'s scenario in the simulator with `seed`; the outcome as `swim-sim --json`
/// prints it.
pub fn run(plan: &Plan, seed: u64) -> serde_json::Value {
    let mut opts = Options::new(plan.nodes as usize, seed);
    opts.loss = plan.loss;
    opts.timing = plan.timing.clone();
    opts.loss_duration = plan.duration;
    opts.churn_duration = plan.churn_duration;
    opts.partition_duration = Some(plan.partition_duration());
    opts.join_limit = plan.limit;
    opts.goal_limit = plan.limit;
    opts.slow = plan.slow;
    opts.slow_delay = plan.stall;
    opts.stalls = plan.stalls;
    opts.stall_duration = plan.stall;
    opts.stall_every = plan.stall_every;
    // A bridge between namespaces delivers in tens of microseconds, not the 1-5 ms of the
    // simulator's default LAN; the window of the engine shrinks with it, which costs only
    // simulation speed at these sizes.
    opts.net.latency_min = plan.sim_latency;
    opts.net.latency_max = plan.sim_latency;
    opts.net.jitter = plan.sim_latency;
    // The real run is over; one thread keeps the other core free for everyone else.
    opts.threads = Some(1);
    let outcome = scenario::run::<Swim>(plan.scenario, &opts);
    serde_json::to_value(outcome).unwrap_or_default()
}

/// The scenario's name, as `swim-sim` prints it.
pub fn name(scenario: Scenario) -> &'static str {
    scenario.name()
}

/// An empty outcome for the real side to fill, so both sides carry the same keys.
pub fn outcome(plan: &Plan) -> Outcome {
    Outcome {
        scenario: plan.scenario.name(),
        implementation: "swim",
        nodes: plan.nodes as usize,
        seed: plan.seed,
        loss: plan.loss,
        ..Outcome::default()
    }
}

/// The simulator's default for the length of a phase the real run also needs.
pub fn default_churn_duration() -> Duration {
    Options::new(1, 1).churn_duration
}

/// The simulator's defaults for `stall`: how many stalls, and the time between their
/// starts.
pub fn default_stalls() -> (usize, Duration) {
    let opts = Options::new(1, 1);
    (opts.stalls, opts.stall_every)
}
