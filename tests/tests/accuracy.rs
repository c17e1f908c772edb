//! The simulator's accuracy counts are computed from what nodes really reported: suspicions
//! raised versus heard, offline reports about members of the observer's own side of a
//! split, and suspicions raised by members just resumed from a stall. These tests check the
//! counting against the reports (and the nodes' own counters); they assert nothing about
//! how good today's numbers are.

use std::time::Duration;

use swim_tests::foca_impl::FocaNewLan;
use swim_tests::protocol::Protocol;
use swim_tests::scenario::{self, Options, Outcome, Scenario};
use swim_tests::swim_impl::Swim;
use swim_tests::{Change, NetConfig, Observation, Resume, Sim, Timing};

/// Runs `scenario` and keeps every report any node made.
fn observed<P: Protocol>(scenario: Scenario, options: &Options) -> (Outcome, Vec<Observation>) {
    let mut reports = Vec::new();
    let outcome = scenario::run_observed::<P>(scenario, options, &mut |o| reports.push(*o));
    (outcome, reports)
}

#[test]
fn a_suspicion_is_firsthand_exactly_when_the_node_accused_the_member_itself() {
    let n = 20;
    let mut sim = Sim::<Swim>::new(n, 3, Timing::default(), NetConfig::default());
    for i in 1..n as u32 {
        sim.start(i, 0);
    }
    assert!(sim.run_until_views_agree(Duration::from_secs(30), &mut |_| {}));
    let before: Vec<u64> =
        (0..n as u32).map(|i| sim.node(i).unwrap().node().counters().suspicions).collect();
    sim.set_loss(0.2);
    let (mut own, mut heard) = (vec![0u64; n], 0u64);
    sim.run_for(Duration::from_secs(120), &mut |o| {
        if o.report.change == Change::Suspect {
            if o.report.firsthand {
                own[o.viewer as usize] += 1;
            } else {
                heard += 1;
            }
        }
    });
    // The node's own count of accusations: probes that failed and made their target suspect.
    for i in 0..n {
        let accusations = sim.node(i as u32).unwrap().node().counters().suspicions - before[i];
        assert_eq!(own[i], accusations, "node {i}");
    }
    // 20% loss over 120 s makes both kinds (3 helpers make a false suspicion rare at 5%).
    assert!(own.iter().sum::<u64>() > 0 && heard > 0, "own {own:?}, heard {heard}");
}

#[test]
fn suspicions_heard_count_every_suspect_report_not_raised_by_its_node() {
    let mut options = Options::new(20, 7);
    options.loss = 0.05;
    options.loss_duration = Duration::from_secs(60);
    let (outcome, reports) = observed::<Swim>(Scenario::Loss, &options);
    // The join phase is clean: every suspicion comes from the lossy phase.
    let heard = reports
        .iter()
        .filter(|o| o.report.change == Change::Suspect && !o.report.firsthand)
        .count() as u64;
    assert_eq!(outcome.suspect_events_heard, Some(Some(heard)));
    // foca takes in others' suspicions silently: no count rather than a wrong zero.
    let (foca, _) = observed::<FocaNewLan>(Scenario::Loss, &options);
    assert_eq!(foca.suspect_events_heard, Some(None));
}

#[test]
fn a_partition_counts_the_offline_reports_about_the_observers_own_side() {
    let mut options = Options::new(24, 11);
    options.timing.reap_timeout = Duration::from_secs(10);
    options.partition_duration = Some(Duration::from_secs(30));
    let half = 12;
    let (outcome, reports) = observed::<Swim>(Scenario::Partition, &options);
    assert!(outcome.converged, "{outcome:?}");
    let offline = |same: bool| {
        reports
            .iter()
            .filter(|o| o.report.change == Change::Offline)
            .filter(|o| o.report.subject.is_some_and(|s| (s >= half) == (o.viewer >= half)) == same)
            .count() as u64
    };
    // Each side declared the other offline: the split was seen.
    assert!(offline(false) >= 2 * 12 * 12, "cross-side offline reports: {}", offline(false));
    // The network is clean before the split and the run ends when views agree after the
    // heal, so every same-side offline report falls in the measured window.
    assert_eq!(outcome.false_offline_same_side, Some(offline(true)));
}

/// Suspicions a member raised itself within 2 s after a stall, about members that did not
/// stall since that stall began, recomputed from the stall log and the reports.
fn accusations_after_stalls(outcome: &Outcome, reports: &[Observation]) -> u64 {
    let log = &outcome.stall_log;
    // Member `s` ran throughout `from..=at`: none of its stalls begun by `at` ended after
    // `from`.
    let ran = |s: u32, from, at| {
        log.iter().filter(|t| t.member == s && t.from <= at).all(|t| t.until <= from)
    };
    let mut count = 0;
    for stall in log {
        let window = stall.until..=stall.until + Duration::from_secs(2);
        count += reports
            .iter()
            .filter(|o| o.viewer == stall.member && o.report.firsthand && window.contains(&o.at))
            .filter(|o| o.report.change == Change::Suspect)
            .filter(|o| o.report.subject.is_some_and(|s| ran(s, stall.from, o.at)))
            .count() as u64;
    }
    count
}

fn check_stalls<P: Protocol>(resume: Resume) {
    let mut options = Options::new(20, 13);
    options.stalls = 30;
    options.stall_resume = resume;
    let (outcome, reports) = observed::<P>(Scenario::Stall, &options);
    let log = &outcome.stall_log;
    assert_eq!((outcome.stalls, log.len()), (Some(30), 30));
    for (stall, next) in log.iter().zip(&log[1..]) {
        assert!(stall.until <= next.from, "stalls do not overlap");
    }
    // A stalled member reports nothing while it is stopped.
    for stall in log {
        let during = stall.from + Duration::from_micros(1)..stall.until;
        let spoke = reports.iter().any(|o| o.viewer == stall.member && during.contains(&o.at));
        assert!(!spoke, "{} {resume:?}: member {} spoke during its stall", P::NAME, stall.member);
    }
    let expected = accusations_after_stalls(&outcome, &reports);
    assert_eq!(outcome.false_suspect_by_resumed, Some(expected), "{} {resume:?}", P::NAME);
    let offline = reports.iter().filter(|o| o.report.change == Change::Offline).count() as u64;
    assert_eq!(outcome.false_offline, Some(offline), "{} {resume:?}", P::NAME);
}

#[test]
fn stalls_count_the_suspicions_raised_by_just_resumed_members() {
    for resume in [Resume::TimersFirst, Resume::AsQueued, Resume::SocketFirst] {
        check_stalls::<Swim>(resume);
        check_stalls::<FocaNewLan>(resume);
    }
}
