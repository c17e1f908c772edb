//! Lifeguard's mechanisms, one story each: local health awareness, nacks, dynamic suspicion
//! with confirmations, and the buddy system.

mod support;

use std::time::Duration;

use support::{Cluster, addr, config, name};
use swim_core::wire::Body;
use swim_core::{Config, Event, Instant, Lifeguard, Status};

fn joined_with(configs: Vec<Config>, seed: u64) -> Cluster {
    let n = configs.len();
    let mut cluster = Cluster::with_configs(configs, seed);
    for i in 1..n {
        cluster.nodes[i].join(Instant::ZERO, [addr(0)]);
    }
    assert!(cluster.run_until(Duration::from_secs(30), Cluster::all_see_all_online));
    cluster.clear_history();
    cluster
}

fn configs(n: usize, lifeguard: Lifeguard) -> Vec<Config> {
    (0..n)
        .map(|i| {
            let mut c = config(i);
            c.lifeguard = lifeguard;
            c
        })
        .collect()
}

#[test]
fn a_node_that_hears_no_acks_slows_its_probing_and_recovers() {
    let mut cluster = joined_with(configs(4, Lifeguard::default()), 21);
    // Node 0 receives nothing: from its point of view every probe fails.
    for i in 1..4 {
        cluster.cut.insert((i, 0));
    }
    cluster.run_for(Duration::from_secs(20));
    let health = cluster.nodes[0].health();
    assert!(health >= 4, "health {health}");
    // Each probe sends two pings (the second with the ping-reqs): time probe starts only.
    let mut seqs = Vec::new();
    let mut starts = Vec::new();
    for ping in cluster.sent(0, "Ping") {
        let Body::Ping { seq, .. } = ping.packet().body else { unreachable!() };
        if !seqs.contains(&seq) {
            seqs.push(seq);
            starts.push(ping.at);
        }
    }
    let gaps: Vec<_> = starts.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.last().is_some_and(|g| *g >= Duration::from_secs(3)), "probe gaps {gaps:?}");
    cluster.cut.clear();
    assert!(cluster.run_until(Duration::from_secs(120), |c| c.nodes[0].health() == 0));
    assert!(cluster.all_see_all_online());
}

#[test]
fn health_stays_zero_with_lifeguard_off() {
    let mut cluster = joined_with(configs(4, Lifeguard::OFF), 22);
    for i in 1..4 {
        cluster.cut.insert((i, 0));
    }
    cluster.run_for(Duration::from_secs(4));
    assert_eq!(cluster.nodes[0].health(), 0);
    // Probing keeps its plain one-second rhythm (until the silent members go offline).
    let pings = cluster.sent(0, "Ping").len();
    assert!(pings >= 3, "{pings} pings in 4 s");
    cluster.run_for(Duration::from_secs(16));
    assert_eq!(cluster.nodes[0].health(), 0);
}

#[test]
fn a_helper_nacks_when_the_target_is_silent() {
    let mut cluster = joined_with(configs(3, Lifeguard::default()), 23);
    cluster.down.insert(1);
    // Until node 0's own probe of node 1 got its helper's nack (node 0 may hear node 2's
    // suspicion of 1 before), then until that probe fails.
    let nacked = |c: &support::Cluster| c.nodes[0].counters().nacks_received > 0;
    assert!(cluster.run_until(Duration::from_secs(10), nacked));
    cluster.run_for(Duration::from_secs(2));
    let nacks = cluster.sent(2, "Nack");
    assert!(!nacks.is_empty(), "node 2 never nacked");
    let requests = cluster.sent(0, "PingReq");
    for nack in nacks.iter().filter(|n| n.to == addr(0)) {
        let Body::Nack { seq } = nack.packet().body else { unreachable!() };
        assert!(
            requests
                .iter()
                .any(|r| matches!(r.packet().body, Body::PingReq { seq: s, .. } if s == seq))
        );
        // Sent one ping timeout after the ping-req arrived, well within the requester's wait.
        let request = requests.iter().rev().find(|r| r.at < nack.at).unwrap();
        assert_eq!(nack.at - request.at, Duration::from_millis(300) + support::LATENCY);
    }
    assert!(cluster.nodes[0].counters().nacks_received > 0);
    // The helper answered: the target is the problem, not node 0, whose health stays good
    // (Lifeguard: only nacks that did not come count against the prober).
    assert_eq!(cluster.nodes[0].health(), 0);
}

#[test]
fn a_missing_nack_counts_against_the_prober() {
    let mut cluster = joined_with(configs(3, Lifeguard::default()), 24);
    cluster.down.insert(1);
    // Node 2's nacks (and everything else it sends) never reach node 0.
    cluster.cut.insert((2, 0));
    assert!(
        cluster.run_until(Duration::from_secs(10), |c| c.status(0, 1) == Some(Status::Suspect))
    );
    assert_eq!(cluster.nodes[0].counters().nacks_received, 0);
    assert!(cluster.nodes[0].health() >= 2, "health {}", cluster.nodes[0].health());
}

#[test]
fn confirmations_shorten_suspicion_of_a_crashed_member() {
    let mut cluster = joined_with(configs(6, Lifeguard::default()), 25);
    let crash_at = cluster.now;
    cluster.down.insert(5);
    let offline = |c: &Cluster| (0..5).all(|v| c.status(v, 5) == Some(Status::Offline));
    assert!(cluster.run_until(Duration::from_secs(40), offline));
    let confirmations: u64 = (0..5).map(|v| cluster.nodes[v].counters().confirmations).sum();
    assert!(confirmations > 0);
    // Suspicion alone would last 20 s without confirmations; with them it ends near 5 s.
    let first_offline = (0..5)
        .filter_map(|v| {
            cluster.events[v]
                .iter()
                .find(|(_, e)| matches!(e, Event::MemberOffline { .. }))
                .map(|(t, _)| *t)
        })
        .min()
        .unwrap();
    assert!(first_offline - crash_at < Duration::from_secs(14), "{:?}", first_offline - crash_at);
}

#[test]
fn suspect_records_name_their_accuser() {
    let mut cluster = joined_with(configs(4, Lifeguard::default()), 26);
    cluster.down.insert(3);
    assert!(cluster.run_until(Duration::from_secs(10), |c| {
        (0..3).any(|v| c.status(v, 3) == Some(Status::Suspect))
    }));
    cluster.run_for(Duration::from_secs(1));
    let accusers: Vec<String> = cluster
        .log
        .iter()
        .flat_map(|s| {
            s.packet()
                .records
                .iter()
                .filter(|r| r.name == name(3) && r.status == Status::Suspect)
                .filter_map(|r| r.accuser.map(String::from))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(!accusers.is_empty());
    assert!(accusers.iter().all(|a| (0..3).any(|v| *a == name(v))), "{accusers:?}");
}

#[test]
fn the_buddy_system_tells_a_suspect_first() {
    for (lifeguard, expect_buddy) in [(Lifeguard::default(), true), (Lifeguard::OFF, false)] {
        let mut cluster = joined_with(configs(2, lifeguard), 27);
        // Node 0 cannot hear node 1, so it suspects it; node 1 still hears node 0.
        cluster.cut.insert((1, 0));
        assert!(
            cluster.run_until(Duration::from_secs(10), |c| c.status(0, 1) == Some(Status::Suspect))
        );
        let suspected_at = cluster.now;
        cluster.run_for(Duration::from_secs(3));
        let pings_to_suspect: Vec<_> = cluster
            .sent(0, "Ping")
            .into_iter()
            .filter(|p| p.to == addr(1) && p.at >= suspected_at)
            .collect();
        let carries = pings_to_suspect.iter().any(|p| {
            p.packet()
                .records
                .iter()
                .next()
                .is_some_and(|r| r.name == name(1) && r.status == Status::Suspect)
        });
        assert!(!pings_to_suspect.is_empty(), "no ping to the suspect at all");
        assert_eq!(carries, expect_buddy, "lifeguard {lifeguard:?}");
    }
}
