//! Cluster labels and encryption: two clusters that share a secret and a network stay
//! apart, and a cluster turns encryption on (and rotates keys) without downtime.

mod support;

use std::time::Duration;

use support::{Cluster, addr, config};
use swim_core::{Config, DropReason, Instant, Keyring, Status};

fn joined(configs: Vec<Config>, seed: u64) -> Cluster {
    let n = configs.len();
    let mut cluster = Cluster::with_configs(configs, seed);
    for i in 1..n {
        cluster.nodes[i].join(Instant::ZERO, [addr(0)]);
    }
    cluster
}

#[test]
fn clusters_with_other_labels_stay_apart_on_one_network_with_one_secret() {
    // Nodes 0-2 are "blue", 3-5 "green"; every node also knows a seed of the other colour.
    let configs = (0..6)
        .map(|i| {
            let mut c = config(i);
            c.label = if i < 3 { "blue".into() } else { "green".into() };
            c.peers = vec![addr((i + 3) % 6)];
            c
        })
        .collect();
    let mut cluster = Cluster::with_configs(configs, 81);
    for i in [1, 2] {
        cluster.nodes[i].join(Instant::ZERO, [addr(0)]);
    }
    for i in [4, 5] {
        cluster.nodes[i].join(Instant::ZERO, [addr(3)]);
    }
    cluster.run_for(Duration::from_secs(30));
    for viewer in 0..6 {
        for subject in 0..6 {
            let same = (viewer < 3) == (subject < 3);
            let seen = cluster.status(viewer, subject);
            if same {
                assert_eq!(seen, Some(Status::Online), "{viewer} sees {subject} as {seen:?}");
            } else {
                assert_eq!(seen, None, "{viewer} knows {subject} of the other cluster");
            }
        }
        // The other cluster's datagrams were dropped as unauthenticated, and counted.
        assert!(cluster.nodes[viewer].counters().dropped(DropReason::Unauthenticated) > 0);
    }
}

#[test]
fn an_encrypted_cluster_works_and_hides_its_payload() {
    let configs = (0..4)
        .map(|i| {
            let mut c = config(i);
            c.encrypt = true;
            c.require_encryption = true;
            c.local_metadata.insert("secret-role", "vault");
            c
        })
        .collect();
    let mut cluster = joined(configs, 82);
    assert!(cluster.run_until(Duration::from_secs(10), Cluster::all_see_all_online));
    let seen = cluster.nodes[0].member(&support::name(3)).and_then(|m| m.metadata()).cloned();
    assert_eq!(seen.and_then(|m| m.get("secret-role")).as_deref(), Some(&b"vault"[..]));
    // Nothing readable on the wire: neither names nor metadata.
    for sent in &cluster.log {
        let wire = &sent.bytes;
        assert!(!wire.windows(5).any(|w| w == b"vault"), "metadata in clear");
        assert!(!wire.windows(9).any(|w| w == b"127.0.0.1"), "a member name in clear");
    }
    // A crash is still detected.
    cluster.down.insert(3);
    assert!(cluster.run_until(Duration::from_secs(40), |c| {
        (0..3).all(|v| c.status(v, 3) == Some(Status::Offline))
    }));
}

#[test]
fn encryption_is_turned_on_in_two_steps_without_downtime_and_keys_rotate() {
    let mut cluster = joined((0..4).map(config).collect(), 83);
    assert!(cluster.run_until(Duration::from_secs(10), Cluster::all_see_all_online));
    // Step 1: one member at a time starts encrypting; the others already open both kinds.
    for i in 0..4 {
        let mut c = support::config_at(i, cluster.now);
        c.encrypt = true;
        c.peers = vec![addr((i + 1) % 4)];
        cluster.restart(i, c);
        let now = cluster.now;
        cluster.nodes[i].join(now, []);
        assert!(cluster.run_until(Duration::from_secs(20), Cluster::all_see_all_online), "{i}");
    }
    // Step 2: plain datagrams are refused from now on.
    for i in 0..4 {
        let mut c = support::config_at(i, cluster.now);
        c.encrypt = true;
        c.require_encryption = true;
        c.peers = vec![addr((i + 1) % 4)];
        cluster.restart(i, c);
        let now = cluster.now;
        cluster.nodes[i].join(now, []);
        assert!(cluster.run_until(Duration::from_secs(20), Cluster::all_see_all_online), "{i}");
    }
    // Keys rotate as with plain datagrams: add, make first, drop the old.
    let steps = [
        Keyring::new(support::SECRET).with_key("new secret"),
        Keyring::new("new secret").with_key(support::SECRET),
        Keyring::new("new secret"),
    ];
    for keyring in steps {
        for i in 0..4 {
            cluster.nodes[i].set_keyring(keyring.clone()).unwrap();
            cluster.run_for(Duration::from_secs(2));
            assert!(cluster.all_see_all_online(), "after a rotation step on node {i}");
        }
    }
    let refused: u64 =
        (0..4).map(|i| cluster.nodes[i].counters().dropped(DropReason::Unauthenticated)).sum();
    assert_eq!(refused, 0, "a datagram was refused during the rotation");
    // A member still sending plain datagrams is refused, and counted.
    let mut plain = support::config_at(4, cluster.now);
    plain.keyring = Keyring::new("new secret");
    plain.peers = vec![addr(0)];
    let late = cluster.add(plain);
    let now = cluster.now;
    cluster.nodes[late].join(now, []);
    cluster.run_for(Duration::from_secs(10));
    assert!(cluster.nodes[0].counters().dropped(DropReason::Unencrypted) > 0);
    assert_eq!(cluster.status(0, late), None);
}
