//! Cluster stories in virtual time, on the deterministic simulator: sized to run in seconds.
//! Every bound asserted here is in virtual time; nothing reads the wall clock.

use std::time::Duration;

use swim_core::{Instant, Status};
use swim_tests::protocol::addr;
use swim_tests::scenario::{self, Options, Scenario};
use swim_tests::swim_impl::Swim;
use swim_tests::{Change, NetConfig, Observation, Sim, Timing};

fn status(sim: &Sim<Swim>, viewer: u32, subject: u32) -> Option<Status> {
    sim.node(viewer)?.node().member(&addr(subject).to_string()).map(|m| m.status())
}

/// Starts `n` nodes, all joining through node 0 within the first 100 ms, and runs until
/// every node sees every other online (asserting it happens within `limit`).
fn joined(n: usize, seed: u64, timing: Timing, net: NetConfig, limit: Duration) -> Sim<Swim> {
    let mut sim = Sim::<Swim>::new(n, seed, timing, net);
    for i in 1..n as u32 {
        sim.run_until(Instant::from_micros(u64::from(i) * 100), &mut |_| {});
        sim.start(i, 0);
    }
    assert!(
        sim.run_until_views_agree(limit, &mut |_| {}),
        "{n} nodes did not converge within {limit:?}"
    );
    sim
}

#[test]
fn three_nodes_join_see_each_other_and_see_a_leave() {
    let mut sim = joined(3, 7, Timing::default(), NetConfig::default(), Duration::from_secs(5));
    for v in 0..3 {
        for s in 0..3 {
            if v != s {
                assert_eq!(status(&sim, v, s), Some(Status::Online), "{v} about {s}");
            }
        }
    }
    // A quiet minute: nobody is suspected on a perfect network.
    let mut suspicions = 0;
    sim.run_for(Duration::from_secs(60), &mut |o| {
        if matches!(o.report.change, Change::Suspect | Change::Offline) {
            suspicions += 1;
        }
    });
    assert_eq!(suspicions, 0);
    // Node 2 leaves: both others learn it left (not that it failed).
    sim.leave(2);
    let mut left = Vec::new();
    sim.run_for(Duration::from_secs(3), &mut |o: &Observation| {
        if o.report.change == Change::Left && o.report.subject == Some(2) {
            left.push(o.viewer);
        }
    });
    left.sort_unstable();
    assert_eq!(left, vec![0, 1]);
    assert_eq!(status(&sim, 0, 2), Some(Status::Left));
    assert_eq!(status(&sim, 1, 2), Some(Status::Left));
}

#[test]
fn hundred_nodes_join_through_one_seed() {
    let outcome = scenario::run::<Swim>(Scenario::Join, &Options::new(100, 3));
    assert!(outcome.converged, "{outcome:?}");
    assert_eq!(outcome.converged_nodes, Some(100));
    let all = outcome.converge_s.flatten().expect("converged");
    let p99 = outcome.converge_p99_s.flatten().expect("converged");
    assert!(p99 <= all);
    // Starts spread over the first second; gossip with fanout 3 and anti-entropy every
    // 0.5 s should need only a few seconds more.
    assert!(all < 10.0, "took {all} virtual seconds");
}

#[test]
fn a_crash_is_seen_offline_by_every_survivor() {
    let outcome = scenario::run::<Swim>(Scenario::Detect, &Options::new(50, 5));
    assert!(outcome.converged, "{outcome:?}");
    let first = outcome.detect_first_s.flatten().expect("detected");
    let all = outcome.detect_all_s.flatten().expect("detected");
    // A failed probe takes ping_timeout + ping_req_timeout after the probe, then 5 s of
    // suspicion: never sooner than 5 s, and with 50 members round-robin well within 20 s.
    assert!(first >= 5.0, "first detection after {first} s");
    assert!(all >= first && all < 20.0, "all survivors after {all} s");
    assert_eq!(outcome.false_offline, Some(0));
    assert_eq!(outcome.false_suspect, Some(0));
}

#[test]
fn a_partition_longer_than_the_reap_time_heals() {
    let timing = Timing {
        reap_timeout: Duration::from_secs(10),
        rejoin_interval: Duration::from_secs(5),
        ..Timing::default()
    };
    let n = 40u32;
    let half = n / 2;
    let mut sim = joined(n as usize, 11, timing, NetConfig::default(), Duration::from_secs(10));
    sim.partition(|i| u8::from(i >= half));
    let mut reaped_across = 0;
    sim.run_for(Duration::from_secs(40), &mut |o| {
        if o.report.change == Change::Reaped
            && o.report.subject.is_some_and(|s| (s >= half) != (o.viewer >= half))
        {
            reaped_across += 1;
        }
    });
    // Each side declared the other offline and then forgot it (reaped it).
    for v in 0..n {
        let own = if v < half { half - 1 } else { n - half - 1 };
        assert_eq!(sim.online_count(v), own, "node {v} during the partition");
    }
    assert_eq!(reaped_across, n * half, "every node reaps the other half");
    assert_eq!(status(&sim, 0, n - 1), None);
    sim.heal();
    assert!(
        sim.run_until_views_agree(Duration::from_secs(120), &mut |_| {}),
        "views did not reconverge after the heal"
    );
    for v in 0..n {
        for s in 0..n {
            if v != s {
                assert_eq!(status(&sim, v, s), Some(Status::Online), "{v} about {s}");
            }
        }
    }
}

#[test]
fn a_rolling_restart_of_every_node_converges() {
    let n = 30u32;
    let mut sim =
        joined(n as usize, 13, Timing::default(), NetConfig::default(), Duration::from_secs(10));
    let mut offline_about_restarted = 0;
    for i in 0..n {
        // A quick restart (1 s down), then 4 s before the next node goes.
        sim.crash(i);
        sim.run_for(Duration::from_secs(1), &mut |_| {});
        sim.restart(i, (i + 1) % n);
        sim.run_for(Duration::from_secs(4), &mut |o| {
            if o.report.change == Change::Offline {
                offline_about_restarted += 1;
            }
        });
    }
    assert!(
        sim.run_until_views_agree(Duration::from_secs(60), &mut |_| {}),
        "views did not converge after the rolling restart"
    );
    // A 1 s outage is shorter than a probe plus suspicion: no one should be declared offline.
    assert_eq!(offline_about_restarted, 0);
}

#[test]
fn a_metadata_update_reaches_everyone() {
    let outcome = scenario::run::<Swim>(Scenario::Update, &Options::new(100, 17));
    assert!(outcome.converged, "{outcome:?}");
    let all = outcome.update_all_s.flatten().expect("everyone informed");
    assert!(all < 5.0, "update took {all} virtual seconds");
}

#[test]
fn five_percent_loss_for_600_seconds_declares_no_healthy_member_offline() {
    let mut options = Options::new(100, 19);
    options.loss = 0.05;
    let outcome = scenario::run::<Swim>(Scenario::Loss, &options);
    assert_eq!(outcome.duration_s, Some(600.0));
    assert_eq!(outcome.false_offline, Some(0), "{outcome:?}");
    assert_eq!(outcome.full_views, Some(100), "{outcome:?}");
    // Suspicions are expected at 5% loss (about 1.8% of probes with one indirect probe);
    // every one must have been refuted.
    assert!(outcome.converged);
}

#[test]
fn churn_leaves_no_stale_members_after_quiescence() {
    let mut options = Options::new(30, 23);
    options.timing.reap_timeout = Duration::from_secs(15);
    options.churn_duration = Duration::from_secs(30);
    let outcome = scenario::run::<Swim>(Scenario::Churn, &options);
    assert_eq!(outcome.stale_members, Some(0), "{outcome:?}");
    assert_eq!(outcome.false_offline, Some(0), "{outcome:?}");
    assert!(outcome.converged, "{outcome:?}");
}

#[test]
fn a_paused_node_is_suspected_and_refutes() {
    let mut sim = joined(10, 29, Timing::default(), NetConfig::default(), Duration::from_secs(5));
    // Paused longer than a probe cycle but shorter than ping + suspicion.
    sim.pause(4, Duration::from_secs(4));
    let mut suspected = false;
    let mut offline = false;
    let mut refuted = false;
    sim.run_for(Duration::from_secs(20), &mut |o| match o.report.change {
        Change::Suspect if o.report.subject == Some(4) => suspected = true,
        Change::Offline if o.report.subject == Some(4) => offline = true,
        Change::Refuted if o.viewer == 4 => refuted = true,
        _ => {}
    });
    assert!(suspected, "a 4 s pause should fail at least one probe");
    assert!(refuted, "the paused node refutes once it runs again");
    assert!(!offline, "refuted before the suspicion ran out");
    assert!(sim.views_agree());
}

#[test]
fn duplication_and_reordering_do_not_disturb_a_cluster() {
    let net = NetConfig {
        duplicate: 0.1,
        reorder: 0.1,
        jitter: Duration::from_millis(5),
        ..NetConfig::default()
    };
    let mut sim = joined(20, 31, Timing::default(), net, Duration::from_secs(10));
    let mut bad = 0;
    sim.run_for(Duration::from_secs(60), &mut |o| {
        if matches!(o.report.change, Change::Suspect | Change::Offline) {
            bad += 1;
        }
    });
    assert!(sim.stats().duplicated > 0);
    assert_eq!(bad, 0);
    assert!(sim.views_agree());
}

#[test]
fn a_one_way_partition_is_survived_through_indirect_probes() {
    let mut sim = joined(10, 37, Timing::default(), NetConfig::default(), Duration::from_secs(5));
    // Node 3 can no longer reach node 7 directly; everything else works.
    sim.cut(3, 7);
    let mut offline = 0;
    sim.run_for(Duration::from_secs(60), &mut |o| {
        if o.report.change == Change::Offline {
            offline += 1;
        }
    });
    assert!(sim.stats().partitioned > 0);
    assert_eq!(offline, 0, "indirect probes and refutation keep 7 online");
    assert!(sim.views_agree());
}
