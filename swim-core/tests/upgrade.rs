//! A rolling upgrade from wire version 1, following the procedure of `LegacyWire`: replace
//! every member with this release speaking version 1, then switch every member to version 2
//! while still accepting version 1, then stop accepting it.
//!
//! `fixtures/v1-join.txt` holds every datagram of a join between two nodes of the last
//! release that spoke only version 1 (commit d0ee17c: `from to micros hex` per line). The
//! other direction was checked against that release the same way: it accepted all 23
//! datagrams a node of this release sent it in `LegacyWire::Speak` (none dropped), and
//! learned the node and its metadata (docs/SECURITY.md, "Rolling upgrade").

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use support::{Cluster, addr, config, config_at, name};
use swim_core::{DropReason, Event, Instant, LegacyWire, Node, Status};

/// The datagrams of the fixture sent to `to`, with when they were sent.
fn previous_release_datagrams(to: SocketAddr) -> Vec<(Instant, Vec<u8>)> {
    include_str!("fixtures/v1-join.txt")
        .lines()
        .filter_map(|line| {
            let parts: Vec<&str> = line.split(' ').collect();
            (parts[1] == to.to_string()).then(|| {
                let at = Instant::from_micros(parts[2].parse().unwrap());
                let hex = parts[3];
                let bytes = (0..hex.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                    .collect();
                (at, bytes)
            })
        })
        .collect()
}

fn node_with(legacy_wire: LegacyWire) -> Node<ChaCha8Rng> {
    let mut c = config(1);
    c.legacy_wire = legacy_wire;
    Node::new(c, ChaCha8Rng::seed_from_u64(1), Instant::ZERO).unwrap()
}

#[test]
fn the_previous_release_is_understood_while_version_1_is_accepted() {
    let datagrams = previous_release_datagrams(addr(1));
    assert!(datagrams.len() > 10);
    for legacy_wire in [LegacyWire::Speak, LegacyWire::Accept] {
        // The new node joins through the old one, whose side of the conversation follows.
        let mut node = node_with(legacy_wire);
        node.join(Instant::ZERO, [addr(0)]);
        for (at, bytes) in &datagrams {
            node.handle_datagram(*at, addr(0), bytes);
            while node.poll_transmit().is_some() {}
        }
        assert_eq!(node.counters().dropped_total(), 0, "{legacy_wire:?}");
        let seed = node.member(&name(0)).expect("the old node is known");
        assert_eq!(seed.status(), Status::Online);
        let role = seed.metadata().and_then(|m| m.get("role"));
        assert_eq!(role.as_deref(), Some(&b"old"[..]));
    }
    // Once the upgrade is over, version 1 is refused (authentic, but unsupported).
    let mut node = node_with(LegacyWire::Refuse);
    for (at, bytes) in &datagrams {
        node.handle_datagram(*at, addr(0), bytes);
    }
    let refused = node.counters().dropped(DropReason::UnsupportedVersion);
    assert_eq!(refused, datagrams.len() as u64);
    assert_eq!(node.members().count(), 1);
}

/// Restarts member `i` with the configuration of an upgrade step, as an operator would.
fn restart_with(cluster: &mut Cluster, i: usize, legacy_wire: LegacyWire) {
    let mut c = config_at(i, cluster.now);
    c.legacy_wire = legacy_wire;
    c.peers = vec![addr((i + 1) % cluster.nodes.len())];
    cluster.restart(i, c);
    let now = cluster.now;
    cluster.nodes[i].join(now, []);
}

#[test]
fn a_rolling_upgrade_never_splits_the_cluster_and_detects_failures_throughout() {
    // Step 1 is done: every member runs this release and speaks version 1, which members of
    // the previous release (if any were left) understand, as the fixture test shows.
    let n = 6;
    let configs = (0..n)
        .map(|i| {
            let mut c = config(i);
            c.legacy_wire = LegacyWire::Speak;
            c
        })
        .collect();
    let mut cluster = Cluster::with_configs(configs, 71);
    for i in 1..n {
        cluster.nodes[i].join(Instant::ZERO, [addr(0)]);
    }
    assert!(cluster.run_until(Duration::from_secs(30), Cluster::all_see_all_online));
    // Steps 2 and 3, one member at a time, each restart with the new configuration.
    for step in [LegacyWire::Accept, LegacyWire::Refuse] {
        for i in 0..n {
            restart_with(&mut cluster, i, step);
            let converged = cluster.run_until(Duration::from_secs(20), Cluster::all_see_all_online);
            assert!(converged, "split after restarting member {i} into {step:?}");
        }
    }
    // Half-way through step 2 a member crashes: it is detected, and comes back.
    let mut cluster = mid_upgrade(n);
    cluster.clear_history();
    cluster.down.insert(5);
    let detected = cluster.run_until(Duration::from_secs(40), |c| {
        (0..5).all(|v| c.status(v, 5) == Some(Status::Offline))
    });
    assert!(detected, "a crash half-way through the upgrade went unnoticed");
    restart_with(&mut cluster, 5, LegacyWire::Accept);
    assert!(cluster.run_until(Duration::from_secs(20), Cluster::all_see_all_online));
    let crashed = name(5);
    let offline = |e: &Event| matches!(e, Event::MemberOffline { name, .. } if *name != crashed);
    assert!((0..5).all(|v| cluster.events_of(v, offline).is_empty()), "a healthy member failed");
}

/// Six members, three of them already switched to version 2 (step 2) and three still
/// speaking version 1.
fn mid_upgrade(n: usize) -> Cluster {
    let configs = (0..n)
        .map(|i| {
            let mut c = config(i);
            c.legacy_wire = if i < n / 2 { LegacyWire::Accept } else { LegacyWire::Speak };
            c
        })
        .collect();
    let mut cluster = Cluster::with_configs(configs, 72);
    for i in 1..n {
        cluster.nodes[i].join(Instant::ZERO, [addr(0)]);
    }
    assert!(cluster.run_until(Duration::from_secs(30), Cluster::all_see_all_online));
    cluster
}
