//! Membership on both drivers: joining, failure, leaving (from any handle, or by dropping
//! the last), metadata, key rotation, queries and the lag convention.

#[macro_use]
mod common;

use std::time::Duration;

use common::{Driver, WAIT, cluster, config, online, status, wait};
use swim_std::{Error, Event, Keyring, Lagged, Metadata, Status, StatusFilter, WatchFilter};

suite!(
    three_nodes_converge,
    a_killed_node_is_detected,
    a_leave_from_a_shared_handle_stops_every_handle,
    dropping_the_last_handle_leaves_gracefully,
    a_metadata_change_propagates,
    replacing_the_metadata_map_spreads_one_version,
    keys_rotate_without_a_split,
    a_slow_subscriber_is_told_it_lagged,
    a_join_over_before_subscribing_reaches_the_first_subscriber,
    events_say_what_changed,
);

fn three_nodes_converge<D: Driver>() {
    let nodes = cluster::<D>("converge", &["a", "b", "c"]);
    for node in &nodes {
        let view = node.snapshot();
        assert_eq!(view.members().len(), 3);
        assert!(view.is_ready() && !view.has_left() && node.is_ready());
    }
    let a = &nodes[0];
    assert_eq!(a.local_member().name(), "a");
    let others: Vec<String> = a.non_local_members().iter().map(|m| m.name().to_string()).collect();
    assert_eq!(others, ["b", "c"]);
    assert_eq!(a.member("b").map(|m| m.status()), Some(Status::Online));
    let found = a.find(5, StatusFilter::ONLINE, &["c"]);
    assert_eq!(found.iter().map(|m| m.name()).collect::<Vec<_>>(), ["b"]);
}

fn a_killed_node_is_detected<D: Driver>() {
    let nodes = cluster::<D>("killed", &["a", "b", "c"]);
    let mut events = nodes[0].subscribe();
    nodes[2].abort();
    assert!(matches!(nodes[2].set_metadata("k", "v"), Err(Error::Stopped)));
    for node in &nodes[..2] {
        wait(node, |v| status(v, "c") == Some(Status::Offline));
    }
    let about_c: Vec<Event> = (events.drain().into_iter())
        .map(Result::unwrap)
        .filter(|e| e.member() == Some("c"))
        .collect();
    assert!(matches!(
        about_c.as_slice(),
        [.., Event::MemberSuspect { .. }, Event::MemberOffline { .. }]
    ));
}

fn a_leave_from_a_shared_handle_stops_every_handle<D: Driver>() {
    let nodes = cluster::<D>("leave", &["a", "b", "c"]);
    let c = nodes[2].clone();
    let mut events = nodes[2].subscribe();
    let leaving = std::thread::spawn(move || c.leave());
    leaving.join().unwrap().unwrap();
    for node in &nodes[..2] {
        wait(node, |v| status(v, "c") == Some(Status::Left));
    }
    // Every clone sees the node stopped, and its streams end.
    assert!(matches!(nodes[2].join(vec![nodes[0].local_addr()]), Err(Error::Stopped)));
    assert!(matches!(nodes[2].leave(), Err(Error::Stopped)));
    while let Some(item) = events.recv_timeout(WAIT) {
        item.unwrap();
    }
}

fn dropping_the_last_handle_leaves_gracefully<D: Driver>() {
    let mut nodes = cluster::<D>("drop", &["a", "b", "c"]);
    let c = nodes.pop().unwrap();
    let clone = c.clone();
    drop(c);
    // One handle is left: c still runs.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(status(&nodes[0].snapshot(), "c"), Some(Status::Online));
    drop(clone);
    // Left, not offline: the departure was announced, not detected.
    for node in &nodes {
        let view = wait(node, |v| status(v, "c") != Some(Status::Online));
        assert_eq!(status(&view, "c"), Some(Status::Left), "{view:?}");
    }
}

fn a_metadata_change_propagates<D: Driver>() {
    let nodes = cluster::<D>("metadata", &["a", "b", "c"]);
    nodes[1].set_metadata("token", "e4c1").unwrap();
    for node in &nodes {
        wait(node, |v| {
            let metadata = v.member("b").and_then(|m| m.metadata().cloned());
            metadata.is_some_and(|m| m.get("token").is_some_and(|t| t == "e4c1"))
        });
    }
    let removed = nodes[1].remove_metadata("token").unwrap();
    assert_eq!(removed.as_deref(), Some(&b"e4c1"[..]));
    assert_eq!(nodes[1].remove_metadata("token").unwrap(), None);
    let too_long = nodes[1].set_metadata("k".repeat(300), "v");
    assert!(matches!(too_long, Err(Error::Metadata(_))), "{too_long:?}");
}

fn replacing_the_metadata_map_spreads_one_version<D: Driver>() {
    let mut a = config("a", "replace", &[]);
    a.protocol.local_metadata.insert("role", "db");
    a.protocol.local_metadata.insert("zone", "eu");
    let a = D::bind(a).unwrap();
    let b = D::bind(config("b", "replace", &[a.local_addr()])).unwrap();
    wait(&b, |v| v.member("a").and_then(|m| m.metadata()).is_some_and(|m| m.len() == 2));
    let mut changes = b.watch(WatchFilter::all().name("a"));
    let mut next = Metadata::new();
    next.insert("role", "cache");
    next.insert("rack", "r7");
    a.replace_metadata(next.clone()).unwrap();
    let view = wait(&b, |v| v.member("a").and_then(|m| m.metadata()) == Some(&next));
    assert_eq!(view.member("a").unwrap().metadata(), Some(&next));
    // b saw a's metadata change once, straight to the new map: no state in between.
    std::thread::sleep(Duration::from_millis(300));
    let seen: Vec<_> = changes.drain().into_iter().map(Result::unwrap).collect();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].member.as_ref().and_then(|m| m.metadata()), Some(&next));
    // All or nothing: a map over the limit (64 KiB) is refused and the old one stays.
    let mut huge = Metadata::new();
    huge.insert("role", "x".repeat(70_000));
    assert!(matches!(a.replace_metadata(huge), Err(Error::Metadata(_))));
    assert_eq!(a.local_member().metadata(), Some(&next));
}

fn keys_rotate_without_a_split<D: Driver>() {
    let nodes = cluster::<D>("old key", &["a", "b"]);
    // Add the new key everywhere (verifying only), then sign with it, then drop the old.
    for keyring in [
        Keyring::from_secrets(["old key", "new key"]),
        Keyring::from_secrets(["new key", "old key"]),
        Keyring::new("new key"),
    ] {
        for node in &nodes {
            node.set_keyring(keyring.clone()).unwrap();
        }
    }
    nodes[0].set_metadata("rotated", "yes").unwrap();
    wait(&nodes[1], |v| {
        v.member("a").and_then(|m| m.metadata()).is_some_and(|m| m.get("rotated").is_some())
    });
    let empty = nodes[0].set_keyring(Keyring::from_secrets(Vec::<&str>::new()));
    assert!(matches!(empty, Err(Error::Config(_))), "{empty:?}");
    assert!(nodes[1].wait_for(online(&["a", "b"]), WAIT).is_ok());
}

fn a_slow_subscriber_is_told_it_lagged<D: Driver>() {
    let mut config = config("solo", "lag", &[]);
    config.event_capacity = 2;
    let node = D::bind(config).unwrap();
    let mut events = node.subscribe();
    for i in 0..4 {
        node.set_metadata("i", i.to_string()).unwrap();
    }
    // Two fit; the two that found the stream full are lost (the newest, not the oldest).
    let versions: Vec<u64> = (events.drain().into_iter())
        .map(|e| match e {
            Ok(Event::MetadataChanged { version, .. }) => version,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[1], versions[0] + 1);
    node.set_metadata("i", "last").unwrap();
    // The loss is reported before the next event.
    assert_eq!(events.try_recv(), Some(Err(Lagged(2))));
    let Some(Ok(Event::MetadataChanged { version, .. })) = events.try_recv() else {
        panic!("the event after the notice")
    };
    assert_eq!(version, versions[1] + 3);
}

fn a_join_over_before_subscribing_reaches_the_first_subscriber<D: Driver>() {
    let a = D::bind(config("a", "early", &[])).unwrap();
    let b = D::bind(config("b", "early", &[a.local_addr()])).unwrap();
    // The join is over before anyone subscribes to b, as on any fast network.
    b.wait_ready(WAIT).unwrap();
    let mut first = b.subscribe();
    let mut second = b.subscribe();
    let early: Vec<Event> = first.drain().into_iter().map(Result::unwrap).collect();
    assert!(early.contains(&Event::Joined), "{early:?}");
    let joined = |e: &Event| matches!(e, Event::MemberJoined { name, .. } if name == "a");
    assert!(early.iter().any(joined), "{early:?}");
    // Only the first subscriber is handed what came before it.
    b.set_metadata("k", "v").unwrap();
    let later: Vec<Event> = second.drain().into_iter().map(Result::unwrap).collect();
    assert!(matches!(later.as_slice(), [Event::MetadataChanged { .. }]), "{later:?}");
}

fn events_say_what_changed<D: Driver>() {
    let nodes = cluster::<D>("what changed", &["a", "b", "c"]);
    let mut events = nodes[0].subscribe();
    // A metadata change carries the map it made, the one before and the keys.
    nodes[1].set_metadata("role", "cache").unwrap();
    let change = std::iter::from_fn(|| events.recv_timeout(WAIT))
        .map(Result::unwrap)
        .find(|e| e.member() == Some("b") && e.changed_keys().contains(&"role"))
        .expect("b's metadata change");
    let Event::MetadataChanged { metadata, previous, .. } = &change else { unreachable!() };
    assert_eq!(metadata.get("role").unwrap(), "cache");
    // Before: none, or not yet heard (it never had any).
    assert!(previous.as_ref().is_none_or(Metadata::is_empty), "{previous:?}");
    assert_eq!(change.changed_keys(), ["role"]);
    // A status event says what the member is now and what it was before.
    nodes[2].abort();
    wait(&nodes[0], |v| status(v, "c") == Some(Status::Offline));
    let about_c: Vec<(Option<Status>, Option<Status>)> = (events.drain().into_iter())
        .map(Result::unwrap)
        .filter(|e| e.member() == Some("c") && e.status().is_some())
        .map(|e| (e.previous_status(), e.status()))
        .collect();
    // From online to offline (through suspect, unless the verdict came first), each event
    // naming the status the one before reported.
    let mut status = Status::Online;
    for (previous, now) in &about_c {
        assert_eq!(*previous, Some(status), "{about_c:?}");
        status = now.unwrap();
    }
    assert_eq!(status, Status::Offline, "{about_c:?}");
}
