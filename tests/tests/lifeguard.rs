//! Lifeguard in the simulator: with slow members in the cluster, Lifeguard must cut false
//! reports about the healthy members by a wide margin without slowing real detection much.
//! The full benchmark (N = 100, 4 slow members, 10 seeds x 600 s) is in docs/BENCHMARKS.md.

use std::time::Duration;

use swim_tests::scenario::{self, Options, Outcome, Scenario};
use swim_tests::swim_impl::Swim;

fn stress(lifeguard: bool, seed: u64) -> Outcome {
    let mut options = Options::new(30, seed);
    options.loss = 0.01;
    options.slow = 2;
    options.loss_duration = Duration::from_secs(120);
    options.timing.lifeguard = lifeguard;
    scenario::run::<Swim>(Scenario::Stress, &options)
}

#[test]
fn lifeguard_cuts_false_reports_about_healthy_members() {
    let (mut on_offline, mut off_offline, mut on_suspect, mut off_suspect) = (0, 0, 0, 0);
    for seed in 1..=3 {
        let on = stress(true, seed);
        let off = stress(false, seed);
        assert!(on.converged && off.converged, "the crash is detected either way");
        assert_eq!((on.lifeguard, off.lifeguard, on.slow), (Some(true), Some(false), Some(2)));
        on_offline += on.false_offline_healthy.unwrap();
        off_offline += off.false_offline_healthy.unwrap();
        on_suspect += on.false_suspect_healthy.unwrap();
        off_suspect += off.false_suspect_healthy.unwrap();
        // Detection of the real crash stays close to plain SWIM's.
        let (on_detect, off_detect) =
            (on.detect_all_s.unwrap().unwrap(), off.detect_all_s.unwrap().unwrap());
        assert!(
            on_detect <= off_detect * 1.5 + 1.0,
            "seed {seed}: {on_detect} s vs {off_detect} s"
        );
    }
    // Without Lifeguard the slow members declare healthy ones offline again and again.
    assert!(off_offline >= 100, "plain SWIM: {off_offline} false offline reports");
    assert!(on_offline * 50 <= off_offline, "Lifeguard: {on_offline} vs {off_offline}");
    assert!(on_suspect * 5 <= off_suspect, "suspicions: {on_suspect} vs {off_suspect}");
}
