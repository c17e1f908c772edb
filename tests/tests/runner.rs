//! The runner's contract: every scenario, with every implementation, produces the JSON keys
//! docs/BENCHMARKS.md documents, and the `swim-sim` binary prints them as its last line.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use swim_tests::foca_impl::{Foca, FocaLan, FocaNewLan};
use swim_tests::protocol::Protocol;
use swim_tests::scenario::{self, Options, Scenario};
use swim_tests::swim_impl::Swim;

const ALWAYS: &[&str] = &[
    "scenario",
    "impl",
    "nodes",
    "seed",
    "loss",
    "converged",
    "msgs_per_member_s",
    "bytes_per_member_s",
    "wall_s",
    "cpu_s",
    "peak_rss_mib",
    "sim_events",
    "phase_sim_events",
    "phase_wall_s",
    "phase_cpu_s",
    "trace_digest",
];

fn keys(scenario: Scenario) -> &'static [&'static str] {
    match scenario {
        Scenario::Join => &["converge_s", "converge_p99_s", "converge_rounds", "converged_nodes"],
        Scenario::Detect => &[
            "detect_first_s",
            "detect_all_s",
            "false_suspect",
            "false_offline",
            "suspect_events_heard",
        ],
        Scenario::Loss => &[
            "false_suspect",
            "false_offline",
            "forced_rejoins",
            "full_views",
            "duration_s",
            "suspect_events_heard",
        ],
        Scenario::Update => &["update_all_s", "update_rounds"],
        Scenario::Partition => &["heal_s", "false_offline_same_side", "suspect_events_heard"],
        Scenario::Churn => &["false_offline", "stale_members", "suspect_events_heard"],
        Scenario::Stress => &[
            "lifeguard",
            "slow",
            "false_suspect_healthy",
            "false_offline_healthy",
            "detect_all_s",
            "suspect_events_heard",
        ],
        Scenario::Stall => &[
            "stalls",
            "false_suspect_by_resumed",
            "false_suspect",
            "false_offline",
            "refutations",
            "forced_rejoins",
            "full_views",
            "suspect_events_heard",
        ],
    }
}

/// Small and quick: 16 nodes, short phases, reap shortened.
fn small(seed: u64) -> Options {
    let mut options = Options::new(16, seed);
    options.loss_duration = Duration::from_secs(60);
    options.churn_duration = Duration::from_secs(20);
    options.timing.reap_timeout = Duration::from_secs(10);
    options.partition_duration = Some(Duration::from_secs(30));
    options.stalls = 10;
    options
}

fn check<P: Protocol>() {
    for scenario in [
        Scenario::Join,
        Scenario::Detect,
        Scenario::Loss,
        Scenario::Update,
        Scenario::Partition,
        Scenario::Churn,
        Scenario::Stress,
        Scenario::Stall,
    ] {
        let mut options = small(5);
        if scenario == Scenario::Loss {
            options.loss = 0.05;
        }
        let outcome = scenario::run::<P>(scenario, &options);
        let json = serde_json::to_value(&outcome).expect("serialises");
        for key in ALWAYS.iter().chain(keys(scenario)) {
            // A goal never reached is null; only then may a key be null, except suspicions
            // heard, which an implementation that does not report them gives as null.
            let null_allowed = !outcome.converged
                || *key == "suspect_events_heard" && !P::REPORTS_HEARD_SUSPICIONS;
            assert!(
                json.get(*key).is_some_and(|v| !v.is_null() || null_allowed),
                "{} {}: missing {key} in {json}",
                P::NAME,
                scenario.name()
            );
        }
        if json.get("suspect_events_heard").is_some() {
            assert_eq!(
                json["suspect_events_heard"].is_null(),
                !P::REPORTS_HEARD_SUSPICIONS,
                "{} {}: {json}",
                P::NAME,
                scenario.name()
            );
        }
        assert_eq!(json["impl"], P::NAME);
        assert_eq!(json["scenario"], scenario.name());
        // Small clusters on a clean network reach every scenario's goal; under loss the goal
        // also needs zero false offline declarations, which foca does not always manage, and
        // foca does not heal a partition once both sides have removed each other (see
        // docs/BENCHMARKS.md). foca's own `new_lan` keeps down members for 24 hours, so
        // churn's "departed members forgotten" goal is out of its reach.
        let foca_may_miss = P::NAME.starts_with("foca")
            && matches!(scenario, Scenario::Loss | Scenario::Partition)
            || P::NAME == "foca-newlan" && scenario == Scenario::Churn;
        // Under loss and with stalls, the goal is zero false reports: measured, not assumed.
        let measured = matches!(scenario, Scenario::Loss | Scenario::Stall);
        if !measured && !foca_may_miss {
            assert!(outcome.converged, "{} {}: {json}", P::NAME, scenario.name());
        }
    }
}

#[test]
fn swim_outcomes_have_every_key() {
    check::<Swim>();
}

#[test]
fn foca_outcomes_have_every_key() {
    check::<Foca>();
}

#[test]
fn foca_lan_outcomes_have_every_key() {
    check::<FocaLan>();
}

#[test]
fn foca_newlan_outcomes_have_every_key() {
    check::<FocaNewLan>();
}

#[test]
fn the_binary_prints_one_json_object_last() {
    let output = Command::new(env!("CARGO_BIN_EXE_swim-sim"))
        .args(["update", "--nodes", "20", "--seed", "9", "--json"])
        .output()
        .expect("swim-sim runs");
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    let last = stdout.lines().last().expect("some output");
    let json: Value = serde_json::from_str(last).expect("the last line is JSON");
    assert_eq!(json["scenario"], "update");
    assert_eq!(json["nodes"], 20);
    assert_eq!(json["seed"], 9);
    assert_eq!(json["converged"], true);
    assert!(json["peak_rss_mib"].as_f64().is_some_and(|m| m > 0.0));
    assert!(json["update_all_s"].as_f64().is_some());
}
