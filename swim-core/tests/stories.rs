//! Multi-node stories in virtual time: each test starts a few cores, acts, runs the clock
//! and asserts the datagrams and events that must (and must not) come out.

mod support;

use std::time::Duration;

use rand_core::SeedableRng;
use support::{Cluster, addr, config, name};
use swim_core::wire::Body;
use swim_core::{
    Bytes, DropReason, Event, Instant, Keyring, Metadata, MetadataError, Status, StatusFilter,
};

fn is_suspicion_or_failure(event: &Event) -> bool {
    matches!(
        event,
        Event::MemberSuspect { .. } | Event::MemberOffline { .. } | Event::Suspected { .. }
    )
}

#[test]
fn join_through_a_seed() {
    let mut cluster = Cluster::new(5, 1);
    for i in 1..5 {
        cluster.nodes[i].join(Instant::ZERO, [addr(0)]);
    }
    // The first thing a joiner sends is an anti-entropy digest to its seed.
    cluster.step();
    assert!(cluster.sent(1, "SyncDigest").iter().any(|s| s.to == addr(0)));
    assert!(cluster.run_until(Duration::from_secs(5), Cluster::all_see_all_online));
    for i in 0..5 {
        let joined = cluster.events_of(i, |e| matches!(e, Event::MemberJoined { .. }));
        assert_eq!(joined.len(), 4, "node {i} saw {joined:?}");
        assert!(cluster.nodes[i].is_ready() || i == 0);
        assert_eq!(cluster.nodes[i].members_with(StatusFilter::AVAILABLE).count(), 5);
    }
}

#[test]
fn joining_again_with_a_new_seed_keeps_readiness() {
    let mut cluster = Cluster::joined(3, 33);
    // A new address (nobody listens there) handed to a node that has joined already.
    let (now, new_seed) = (cluster.now, addr(9));
    cluster.nodes[0].join(now, [new_seed]);
    assert!(cluster.nodes[0].is_ready());
    cluster.step();
    let digests = cluster.sent(0, "SyncDigest");
    assert!(
        digests.iter().any(|s| s.to == new_seed && s.at == now),
        "the new seed is contacted at once"
    );
    assert!(digests.iter().all(|s| s.at > now || s.to == new_seed), "old seeds are not retried");
    assert!(cluster.events_of(0, |e| matches!(e, Event::Joined)).is_empty());
}

#[test]
fn ping_and_ack() {
    let mut cluster = Cluster::joined(2, 2);
    cluster.run_for(Duration::from_secs(3));
    let pings = cluster.sent(0, "Ping");
    assert!(pings.len() >= 2, "node 0 pinged {} times in 3 s", pings.len());
    for ping in &pings {
        assert_eq!(ping.to, addr(1));
        let Body::Ping { seq, .. } = ping.packet().body else { unreachable!() };
        // Sealed for node 1 by name: the same packet sealed for it has the same tag.
        let packet = ping.bytes[..ping.bytes.len() - swim_core::TAG_LEN].to_vec();
        assert_eq!(support::seal(&name(1), packet.clone()), ping.bytes);
        assert_ne!(support::seal(&name(2), packet), ping.bytes);
        // Node 1 answered this very ping with an ack carrying the same sequence number.
        let ack = cluster
            .sent(1, "Ack")
            .into_iter()
            .find(|a| matches!(a.packet().body, Body::Ack { seq: s, .. } if s == seq));
        assert!(ack.is_some_and(|a| a.to == addr(0) && a.at == ping.at + support::LATENCY));
    }
    assert!(cluster.sent(0, "PingReq").is_empty());
    assert!(cluster.events_of(0, is_suspicion_or_failure).is_empty());
    assert!(cluster.nodes[0].counters().probes >= 2);
    assert_eq!(cluster.nodes[0].counters().suspicions, 0);
}

#[test]
fn ping_req_relays_the_ack_when_the_direct_path_fails() {
    let mut cluster = Cluster::joined(3, 3);
    // Node 0 cannot reach node 1 directly, but both reach node 2.
    cluster.cut.insert((0, 1));
    cluster.cut.insert((1, 0));
    cluster.run_for(Duration::from_secs(8));
    let ping_reqs = cluster.sent(0, "PingReq");
    assert!(!ping_reqs.is_empty(), "node 0 never asked for help");
    for req in &ping_reqs {
        assert_eq!(req.to, addr(2), "the target is never asked to probe itself");
        let Body::PingReq { seq, target, target_addr } = req.packet().body else { unreachable!() };
        // Version 2 leaves the address out: the helper probes the address it knows.
        assert_eq!((target, target_addr), (name(1).as_str(), None));
        // Node 2 pinged node 1 and relayed its ack to node 0 with node 0's sequence number.
        let relayed = cluster.sent(2, "Ack").into_iter().filter(|a| a.to == addr(0));
        assert!(
            relayed
                .into_iter()
                .any(|a| matches!(a.packet().body, Body::Ack { seq: s, .. } if s == seq))
        );
    }
    assert!(cluster.sent(2, "Ping").iter().any(|p| p.to == addr(1)));
    assert!(cluster.events_of(0, is_suspicion_or_failure).is_empty());
    assert_eq!(cluster.status(0, 1), Some(Status::Online));
}

#[test]
fn a_crashed_member_goes_suspect_then_offline_everywhere() {
    let mut cluster = Cluster::joined(4, 4);
    let crash_at = cluster.now;
    cluster.down.insert(3);
    let detected = cluster.run_until(Duration::from_secs(30), |c| {
        (0..3).all(|v| c.status(v, 3) == Some(Status::Offline))
    });
    assert!(detected, "not every survivor saw node 3 offline");
    for viewer in 0..3 {
        let events: Vec<_> =
            cluster.events[viewer].iter().filter(|(_, e)| e.member() == Some(&name(3))).collect();
        let suspect =
            events.iter().find(|(_, e)| matches!(e, Event::MemberSuspect { .. })).map(|(t, _)| *t);
        let offline =
            events.iter().find(|(_, e)| matches!(e, Event::MemberOffline { .. })).map(|(t, _)| *t);
        let (suspect, offline) = (suspect.expect("suspect first"), offline.expect("then offline"));
        assert!(suspect < offline);
        // Detection is bounded: a full probe pass, one probe period, the suspicion timeout.
        assert!(offline - crash_at <= Duration::from_millis(3 * 1000 + 1200 + 5000 + 500));
        // Nobody else was suspected.
        let others = cluster
            .events_of(viewer, |e| is_suspicion_or_failure(e) && e.member() != Some(&name(3)));
        assert!(others.is_empty(), "{others:?}");
    }
    assert!((0..3).any(|v| cluster.nodes[v].counters().suspicions > 0));
}

#[test]
fn a_suspected_member_refutes_and_stays_online() {
    let mut cluster = Cluster::joined(2, 5);
    // Node 1's answers do not reach node 0 until node 0 suspects it.
    cluster.cut.insert((1, 0));
    assert!(
        cluster.run_until(Duration::from_secs(10), |c| c.status(0, 1) == Some(Status::Suspect))
    );
    cluster.cut.clear();
    assert!(cluster.run_until(Duration::from_secs(3), |c| c.status(0, 1) == Some(Status::Online)));
    cluster.run_for(Duration::from_secs(10));
    assert_eq!(cluster.status(0, 1), Some(Status::Online));
    let refuted = cluster.events_of(1, |e| matches!(e, Event::Refuted { .. }));
    assert_eq!(refuted, [Event::Refuted { incarnation: 1 }]);
    assert!(matches!(
        cluster.events_of(1, |e| matches!(e, Event::Suspected { .. }))[..],
        [Event::Suspected { accusation: Status::Suspect, incarnation: 0 }]
    ));
    let alive = cluster.events_of(0, |e| matches!(e, Event::MemberAlive { .. }));
    assert!(matches!(
        &alive[..],
        [Event::MemberAlive { incarnation: 1, previous: Status::Suspect, .. }]
    ));
    assert!(cluster.events_of(0, |e| matches!(e, Event::MemberOffline { .. })).is_empty());
    assert_eq!(cluster.nodes[1].local_member().incarnation(), 1);
    assert_eq!(cluster.nodes[1].counters().refutations, 1);
}

#[test]
fn a_graceful_leave_is_seen_as_left_at_once() {
    let mut cluster = Cluster::joined(4, 6);
    let left_at = cluster.now;
    cluster.nodes[3].leave(cluster.now);
    assert!(cluster.nodes[3].has_left());
    let seen = cluster.run_until(Duration::from_secs(2), |c| {
        (0..3).all(|v| c.status(v, 3) == Some(Status::Left))
    });
    assert!(seen, "the leave did not reach everyone within 2 s");
    assert!(cluster.now - left_at < Duration::from_secs(1));
    // Once the leave has been gossiped enough, the node has nothing more to do.
    assert!(
        cluster.run_until(Duration::from_secs(10), |c| { c.nodes[3].poll_timeout().is_none() })
    );
    cluster.down.insert(3);
    cluster.run_for(Duration::from_secs(20));
    for viewer in 0..3 {
        assert_eq!(cluster.status(viewer, 3), Some(Status::Left));
        assert!(cluster.events_of(viewer, is_suspicion_or_failure).is_empty());
        assert_eq!(cluster.events_of(viewer, |e| matches!(e, Event::MemberLeft { .. })).len(), 1);
    }
}

#[test]
fn leaving_alone_finishes_at_once() {
    let mut cluster = Cluster::new(1, 20);
    cluster.nodes[0].leave(Instant::ZERO);
    assert_eq!(cluster.nodes[0].poll_timeout(), None);
    // The last member of a cluster that is going away has no one to tell either.
    let mut cluster = Cluster::joined(2, 20);
    cluster.down.insert(1);
    assert!(
        cluster.run_until(Duration::from_secs(30), |c| c.status(0, 1) == Some(Status::Offline))
    );
    cluster.nodes[0].leave(cluster.now);
    assert_eq!(cluster.nodes[0].poll_timeout(), None);
}

#[test]
fn a_restarted_member_is_recognised_as_newer() {
    let mut cluster = Cluster::joined(3, 7);
    cluster.down.insert(2);
    assert!(cluster.run_until(Duration::from_secs(20), |c| {
        (0..2).all(|v| c.status(v, 2) == Some(Status::Offline))
    }));
    let offline_incarnation = cluster.nodes[0].member(&name(2)).unwrap().incarnation();
    // Same name, new process: it starts again at incarnation 0.
    let mut restarted = config(2);
    restarted.peers = vec![addr(0)];
    cluster.restart(2, restarted);
    cluster.nodes[2].join(cluster.now, []);
    assert!(cluster.run_until(Duration::from_secs(10), Cluster::all_see_all_online));
    for viewer in 0..2 {
        let member = cluster.nodes[viewer].member(&name(2)).unwrap();
        assert!(member.incarnation() > offline_incarnation);
        let alive = cluster.events_of(viewer, |e| {
            matches!(e, Event::MemberAlive { previous: Status::Offline, .. })
        });
        assert_eq!(alive.len(), 1, "viewer {viewer}");
    }
}

#[test]
fn a_restart_after_reaping_is_not_blocked_by_the_tombstone() {
    let mut configs: Vec<_> = (0..3).map(config).collect();
    for c in &mut configs {
        c.reap_timeout = Duration::from_secs(10);
    }
    let mut cluster = Cluster::with_configs(configs.clone(), 8);
    for i in 1..3 {
        cluster.nodes[i].join(Instant::ZERO, [addr(0)]);
    }
    assert!(cluster.run_until(Duration::from_secs(10), Cluster::all_see_all_online));
    cluster.down.insert(2);
    assert!(
        cluster
            .run_until(Duration::from_secs(40), |c| { (0..2).all(|v| c.status(v, 2).is_none()) })
    );
    assert!(cluster.events_of(0, |e| matches!(e, Event::MemberReaped { .. })).len() == 1);
    assert_eq!(cluster.nodes[0].tombstones(), 1);
    let mut restarted = support::config_at(2, cluster.now);
    restarted.reap_timeout = Duration::from_secs(10);
    restarted.peers = vec![addr(1)];
    cluster.restart(2, restarted);
    cluster.nodes[2].join(cluster.now, []);
    assert!(cluster.run_until(Duration::from_secs(10), Cluster::all_see_all_online));
}

#[test]
fn metadata_reaches_every_member() {
    let mut cluster = Cluster::joined(5, 9);
    cluster.nodes[2].set_metadata(cluster.now, "token", Bytes::from_static(b"abc")).unwrap();
    let version = cluster.nodes[2].local_member().meta_version();
    let reached = cluster.run_until(Duration::from_secs(3), |c| {
        (0..5).all(|v| {
            c.nodes[v].member(&name(2)).and_then(|m| m.metadata()).and_then(|m| m.get("token"))
                == Some(Bytes::from_static(b"abc"))
        })
    });
    assert!(reached);
    // Each viewer is told the change itself: the new map, the old one, the key.
    let token: Metadata = [("token", "abc")].into_iter().collect();
    for viewer in [0, 1, 3, 4] {
        let changed = cluster.events_of(viewer, |e| matches!(e, Event::MetadataChanged { .. }));
        let expected = Event::MetadataChanged {
            name: name(2).into(),
            version,
            metadata: token.clone(),
            previous: Some(Metadata::new()),
        };
        assert_eq!(changed, [expected]);
        assert_eq!(changed[0].changed_keys(), ["token"]);
    }
    assert_eq!(
        cluster.nodes[2].remove_metadata(cluster.now, "token"),
        Ok(Some(Bytes::from_static(b"abc")))
    );
    assert_eq!(cluster.nodes[2].remove_metadata(cluster.now, "token"), Ok(None));
    let removed = cluster.run_until(Duration::from_secs(3), |c| {
        (0..5).all(|v| {
            c.nodes[v].member(&name(2)).and_then(|m| m.metadata()).is_some_and(|m| m.is_empty())
        })
    });
    assert!(removed);
    for viewer in 0..5 {
        let changed = cluster.events_of(viewer, |e| matches!(e, Event::MetadataChanged { .. }));
        let Some(Event::MetadataChanged { metadata, previous, .. }) = changed.last() else {
            panic!("viewer {viewer} saw no removal: {changed:?}")
        };
        assert_eq!((metadata, previous.as_ref()), (&Metadata::new(), Some(&token)));
        assert_eq!(changed.last().unwrap().changed_keys(), ["token"]);
    }
}

#[test]
fn oversized_metadata_is_refused_and_changes_nothing() {
    let mut cluster = Cluster::joined(2, 10);
    let before = cluster.nodes[0].local_member().meta_version();
    let now = cluster.now;
    let error = cluster.nodes[0].set_metadata(now, "blob", vec![0u8; 70_000]).unwrap_err();
    // The encoding: a count, the key after its length, the value after its length.
    let size = 1 + 1 + "blob".len() + 3 + 70_000;
    assert!(matches!(error, MetadataError::ExceedsLimit { size: s, limit: 65_536 } if s == size));
    assert!(cluster.nodes[0].set_metadata(now, "k".repeat(256), Bytes::new()).is_err());
    assert_eq!(cluster.nodes[0].local_member().meta_version(), before);
    assert!(cluster.nodes[0].set_metadata(now, "blob", vec![0u8; 1000]).is_ok());

    // Below the configured limit, a node without streams still needs its record to fit a
    // datagram.
    let error = cluster.nodes[0].set_metadata(now, "blob", vec![0u8; 2000]).unwrap_err();
    assert!(matches!(error, MetadataError::TooLarge { limit: 1452, .. }), "{error}");
    let mut roomy = config(2);
    roomy.local_metadata = [("blob", vec![0u8; 2000])].into_iter().collect();
    let error = swim_core::Node::new(roomy, rand_chacha::ChaCha8Rng::from_seed([0; 32]), now);
    assert_eq!(error.unwrap_err().field(), "local_metadata");
}

#[test]
fn remote_metadata_past_the_limit_is_ignored_and_counted() {
    let mut configs: Vec<_> = (0..2).map(config).collect();
    configs[0].max_metadata_size = 1024;
    configs[1].max_metadata_size = 1400;
    let mut cluster = Cluster::with_configs(configs, 17);
    cluster.nodes[1].join(Instant::ZERO, [addr(0)]);
    assert!(cluster.run_until(Duration::from_secs(5), Cluster::all_see_all_online));
    cluster.nodes[1].set_metadata(cluster.now, "big", vec![1u8; 1200]).unwrap();
    cluster.run_for(Duration::from_secs(5));
    assert!(cluster.nodes[0].counters().metadata_refused > 0);
    let seen = cluster.nodes[0].member(&name(1)).unwrap();
    assert!(seen.metadata().is_some_and(|m| m.get("big").is_none()));
    assert_eq!(cluster.status(0, 1), Some(Status::Online));
}

#[test]
fn invented_members_cannot_grow_the_table_past_max_members() {
    let mut configs: Vec<_> = (0..6).map(config).collect();
    configs[0].max_members = 3;
    let mut cluster = Cluster::with_configs(configs, 18);
    for i in 1..6 {
        cluster.nodes[i].join(Instant::ZERO, [addr(1)]);
    }
    cluster.nodes[0].join(Instant::ZERO, [addr(1)]);
    cluster.run_for(Duration::from_secs(20));
    assert_eq!(cluster.nodes[0].members().count(), 3);
    assert!(cluster.nodes[0].counters().members_refused > 0);
    assert!(cluster.nodes[0].members().all(|m| m.status() == Status::Online));
    assert_eq!(cluster.nodes[1].members().count(), 6);
}

#[test]
fn replayed_datagrams_are_dropped_and_change_nothing() {
    let mut cluster = Cluster::new(3, 19);
    for i in 1..3 {
        cluster.nodes[i].join(Instant::ZERO, [addr(0)]);
    }
    assert!(cluster.run_until(Duration::from_secs(5), Cluster::all_see_all_online));
    // Node 2 is suspected for a moment and refutes; record what node 1 told node 0 then.
    cluster.cut.insert((2, 0));
    cluster.cut.insert((2, 1));
    assert!(
        cluster.run_until(Duration::from_secs(10), |c| c.status(0, 2) == Some(Status::Suspect))
    );
    let suspicion: Vec<_> =
        cluster.log.iter().filter(|s| s.from == 1 && s.to == addr(0)).cloned().collect();
    assert!(suspicion.len() >= 5, "only {} datagrams recorded", suspicion.len());
    cluster.cut.clear();
    assert!(cluster.run_until(Duration::from_secs(10), Cluster::all_see_all_online));
    cluster.run_for(Duration::from_secs(5));
    // And the latest datagram node 1 sent node 0, already delivered: a replay within the
    // clock skew, which only the sender's window can catch.
    let delivered = |s: &&support::Sent| s.at + support::LATENCY <= cluster.now;
    let latest =
        cluster.log.iter().rev().filter(delivered).find(|s| s.from == 1 && s.to == addr(0));
    let latest = latest.unwrap();
    let mut suspicion = suspicion;
    suspicion.push(latest.clone());
    let events_before: Vec<_> = cluster.events.iter().map(Vec::len).collect();
    let node = &mut cluster.nodes[0];
    let state = |n: &swim_core::Node<_>| {
        n.members().map(|m| (m.name().to_string(), m.status(), m.incarnation())).collect::<Vec<_>>()
    };
    let before = state(node);
    for sent in &suspicion {
        node.handle_datagram(cluster.now, addr(1), &sent.bytes);
    }
    // Replays within the clock skew are caught by the sender's window, older ones by the
    // clock.
    let counters = node.counters();
    let caught = counters.dropped(DropReason::Replayed) + counters.dropped(DropReason::ClockSkew);
    assert_eq!(caught, suspicion.len() as u64);
    assert!(counters.dropped(DropReason::Replayed) > 0);
    assert_eq!(state(node), before);
    assert!(node.poll_transmit().is_none(), "a replay is never answered");
    assert!(node.poll_event().is_none());
    assert_eq!(cluster.events.iter().map(Vec::len).collect::<Vec<_>>(), events_before);

    // A restart (with the wall clock of its start) is a new sender, not a replay.
    let refused = |c: &Cluster| {
        let counters = c.nodes[0].counters();
        counters.dropped(DropReason::Replayed) + counters.dropped(DropReason::ClockSkew)
    };
    let before = refused(&cluster);
    cluster.down.insert(2);
    assert!(
        cluster.run_until(Duration::from_secs(30), |c| c.status(0, 2) == Some(Status::Offline))
    );
    let mut restarted = support::config_at(2, cluster.now);
    restarted.peers = vec![addr(0)];
    cluster.restart(2, restarted);
    cluster.nodes[2].join(cluster.now, []);
    assert!(cluster.run_until(Duration::from_secs(10), Cluster::all_see_all_online));
    assert_eq!(refused(&cluster), before);
}

#[test]
fn bad_datagrams_are_dropped_counted_and_change_nothing() {
    let mut cluster = Cluster::joined(3, 11);
    // A ping to node 0 just sent, still in flight.
    let in_flight = |c: &Cluster| {
        c.log
            .iter()
            .rev()
            .take_while(|s| s.at == c.now)
            .any(|s| s.to == addr(0) && s.kind() == "Ping")
    };
    assert!(cluster.run_until(Duration::from_secs(10), in_flight));
    let valid = cluster
        .log
        .iter()
        .rev()
        .find(|s| s.to == addr(0) && s.kind() == "Ping")
        .unwrap()
        .bytes
        .clone();
    let node = &mut cluster.nodes[0];
    let before: Vec<_> =
        node.members().map(|m| (m.name().to_string(), m.status(), m.incarnation())).collect();
    let counters_before = node.counters().clone();
    let from = addr(1);
    let now = cluster.now;

    node.handle_datagram(now, from, b"");
    node.handle_datagram(now, from, b"garbage that is long enough to hold a tag");
    node.handle_datagram(now, from, &valid[..valid.len() - 1]);
    let mut flipped = valid.clone();
    flipped[12] ^= 1;
    node.handle_datagram(now, from, &flipped);
    node.handle_datagram(now, from, &vec![0u8; 1453]);
    assert_eq!(node.counters().dropped(DropReason::Unauthenticated), 4);
    assert_eq!(node.counters().dropped(DropReason::TooLarge), 1);

    // Correctly sealed but malformed, or of another major version.
    let to = name(0);
    let packet = &valid[..valid.len() - swim_core::TAG_LEN];
    let header_len = swim_core::wire::Version::V2.header_len();
    node.handle_datagram(now, from, &support::seal(&to, packet[..packet.len() - 3].to_vec()));
    // Version 1, as a member not yet upgraded sends it (no flags byte, another tag).
    let mut legacy = vec![1, 1];
    legacy.extend_from_slice(&packet[3..]);
    node.handle_datagram(now, from, &support::seal(&to, legacy));
    let mut unknown_type = packet.to_vec();
    unknown_type[header_len] = 200;
    node.handle_datagram(now, from, &support::seal(&to, unknown_type));
    assert_eq!(node.counters().dropped(DropReason::Malformed), 1);
    assert_eq!(node.counters().dropped(DropReason::UnsupportedVersion), 1);
    assert_eq!(node.counters().dropped(DropReason::UnknownMessage), 1);
    assert_eq!(node.counters().dropped_total(), 8);

    let after: Vec<_> =
        node.members().map(|m| (m.name().to_string(), m.status(), m.incarnation())).collect();
    assert_eq!(before, after);
    assert!(node.poll_transmit().is_none(), "a dropped datagram is never answered");
    assert!(node.poll_event().is_none());
    assert_eq!(node.counters().updates_applied, counters_before.updates_applied);

    // The untouched original is still accepted and answered.
    node.handle_datagram(now, from, &valid);
    assert_eq!(node.counters().dropped_total(), 8);
    assert!(node.poll_transmit().is_some());
}

#[test]
fn keys_rotate_without_downtime() {
    let mut cluster = Cluster::joined(3, 12);
    // Step 1: everyone accepts the new key. Step 2: everyone signs with it. Step 3: drop the old.
    let steps = [
        Keyring::new("test secret").with_key("new secret"),
        Keyring::new("new secret").with_key("test secret"),
        Keyring::new("new secret"),
    ];
    for keyring in steps {
        for i in 0..3 {
            cluster.nodes[i].set_keyring(keyring.clone()).unwrap();
            cluster.run_for(Duration::from_millis(700));
        }
        cluster.run_for(Duration::from_secs(5));
    }
    for i in 0..3 {
        assert!(
            cluster.events_of(i, is_suspicion_or_failure).is_empty(),
            "node {i}: {:?}",
            cluster.events[i]
        );
        assert_eq!(cluster.nodes[i].counters().dropped(DropReason::Unauthenticated), 0);
    }
    // A node still on the old key alone is locked out.
    cluster.nodes[2].set_keyring(Keyring::new("test secret")).unwrap();
    cluster.run_for(Duration::from_secs(15));
    assert_eq!(cluster.status(0, 2), Some(Status::Offline));
    assert!(cluster.nodes[0].counters().dropped(DropReason::Unauthenticated) > 0);
    assert!(cluster.nodes[0].set_keyring(Keyring::from_secrets(Vec::<&str>::new())).is_err());
}

#[test]
fn same_seed_same_bytes() {
    let run = |seed| {
        let mut cluster = Cluster::new(4, seed);
        for i in 1..4 {
            cluster.nodes[i].join(Instant::ZERO, [addr(0)]);
        }
        cluster.run_for(Duration::from_secs(5));
        cluster.down.insert(3);
        cluster.nodes[1].set_metadata(cluster.now, "k", Bytes::from_static(b"v")).unwrap();
        cluster.run_for(Duration::from_secs(15));
        let bytes: Vec<_> =
            cluster.log.iter().map(|s| (s.at, s.from, s.to, s.bytes.clone())).collect();
        let events: Vec<_> = cluster.events.clone();
        (bytes, events)
    };
    let (a, b) = (run(13), run(13));
    assert!(a.0.len() > 50);
    assert_eq!(a, b);
    assert_ne!(run(14).0, a.0);
}

#[test]
fn a_node_never_marks_itself_suspect_or_offline() {
    let mut cluster = Cluster::joined(3, 15);
    cluster.cut.insert((2, 0));
    cluster.cut.insert((2, 1));
    cluster.run_for(Duration::from_secs(20));
    cluster.cut.clear();
    cluster.run_for(Duration::from_secs(20));
    for i in 0..3 {
        assert_eq!(cluster.nodes[i].local_member().status(), Status::Online);
    }
    assert!(cluster.all_see_all_online());
}

#[test]
fn find_picks_random_members_and_honours_exclude() {
    let cluster = Cluster::joined(6, 16);
    let excluded = name(1);
    let node = &cluster.nodes[0];
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..50 {
        let found = node.find(&mut rng, 2, StatusFilter::AVAILABLE, &[&excluded]);
        assert_eq!(found.len(), 2);
        assert_ne!(found[0].name(), found[1].name());
        for m in found {
            assert_ne!(m.name().as_str(), excluded);
            assert_ne!(m.name().as_str(), name(0));
            seen.insert(m.name().to_string());
        }
    }
    assert_eq!(seen.len(), 4);
    assert_eq!(node.find(&mut rng, 10, StatusFilter::OFFLINE, &[]).len(), 0);
}
