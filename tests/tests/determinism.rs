//! The same seed gives the same trace, whatever the number of engine threads; another seed
//! gives another.

use swim_tests::foca_impl::Foca;
use swim_tests::scenario::{self, Options, Scenario};
use swim_tests::swim_impl::Swim;

fn lossy(seed: u64) -> Options {
    let mut options = Options::new(40, seed);
    options.loss = 0.05;
    options.net.duplicate = 0.02;
    options.net.reorder = 0.02;
    options
}

#[test]
fn same_seed_same_digest_other_seed_other_digest() {
    let a = scenario::run::<Swim>(Scenario::Detect, &lossy(42));
    let b = scenario::run::<Swim>(Scenario::Detect, &lossy(42));
    let c = scenario::run::<Swim>(Scenario::Detect, &lossy(43));
    assert_eq!(a.trace_digest, b.trace_digest);
    assert_eq!(a.sim_events, b.sim_events);
    assert_eq!(a.detect_all_s, b.detect_all_s);
    assert_ne!(a.trace_digest, c.trace_digest);
}

#[test]
fn foca_runs_are_deterministic_too() {
    let a = scenario::run::<Foca>(Scenario::Join, &Options::new(30, 7));
    let b = scenario::run::<Foca>(Scenario::Join, &Options::new(30, 7));
    let c = scenario::run::<Foca>(Scenario::Join, &Options::new(30, 8));
    assert_eq!(a.trace_digest, b.trace_digest);
    assert_ne!(a.trace_digest, c.trace_digest);
}

#[test]
fn the_thread_count_changes_nothing() {
    let run = |threads| {
        let mut options = lossy(42);
        options.nodes = 120;
        options.threads = Some(threads);
        scenario::run::<Swim>(Scenario::Detect, &options)
    };
    let (a, b) = (run(1), run(2));
    assert_eq!(a.trace_digest, b.trace_digest);
    assert_eq!(a.sim_events, b.sim_events);
    assert_eq!(a.detect_all_s, b.detect_all_s);
}
