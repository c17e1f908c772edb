//! The std driver on real sockets: 127.0.0.1, ephemeral ports, short protocol timers, every
//! wait bounded.

mod support;
use std::net::SocketAddr;
use std::time::Duration;

use swim_core::{Event, Status};
use swim_std::{Cluster, ClusterConfig, Handle, Snapshot};

const WAIT: Duration = Duration::from_secs(10);

fn config(name: &str, peers: &[SocketAddr]) -> ClusterConfig {
    support::loopback_config(name, "loopback test", peers)
}

/// Three members joined through the first, each seeing all three online.
fn three() -> Vec<Handle> {
    let a = Cluster::bind(config("a", &[])).unwrap();
    let seed = [a.local_addr()];
    let b = Cluster::bind(config("b", &seed)).unwrap();
    let c = Cluster::bind(config("c", &seed)).unwrap();
    let nodes = vec![a, b, c];
    for node in &nodes {
        let view = node.wait_for(|v| status_of(v, ["a", "b", "c"]) == [Status::Online; 3], WAIT);
        assert!(view.is_ok(), "{:?}", node.snapshot());
    }
    nodes
}

fn status_of<const N: usize>(view: &Snapshot, names: [&str; N]) -> [Status; N] {
    names.map(|name| view.member(name).map_or(Status::Offline, |m| m.status()))
}

#[test]
fn three_nodes_converge() {
    let nodes = three();
    for node in &nodes {
        let view = node.snapshot();
        assert_eq!(view.members().len(), 3);
        assert!(view.is_joined());
        assert!(!view.has_left());
    }
}

#[test]
fn a_killed_node_is_detected() {
    let mut nodes = three();
    let events = nodes[0].subscribe();
    drop(nodes.pop());
    for node in &nodes {
        let offline = node.wait_for(|v| status_of(v, ["c"]) == [Status::Offline], WAIT);
        assert!(offline.is_ok(), "{:?}", node.snapshot());
    }
    let about_c: Vec<Event> =
        events.try_iter().map(Result::unwrap).filter(|e| e.member() == Some("c")).collect();
    assert!(matches!(
        about_c.as_slice(),
        [.., Event::MemberSuspect { .. }, Event::MemberOffline { .. }]
    ));
}

#[test]
fn a_graceful_leave_is_seen_as_left() {
    let mut nodes = three();
    let c = nodes.pop().unwrap();
    c.leave().unwrap();
    for node in &nodes {
        let left = node.wait_for(|v| status_of(v, ["c"]) == [Status::Left], WAIT);
        assert!(left.is_ok(), "{:?}", node.snapshot());
    }
}

#[test]
fn a_metadata_change_propagates() {
    let nodes = three();
    nodes[1].set_metadata("token", "e4c1").unwrap();
    for node in &nodes {
        let seen = node.wait_for(
            |v| {
                let metadata = v.member("b").and_then(|m| m.metadata().cloned());
                metadata.is_some_and(|m| m.get("token").is_some_and(|t| t == "e4c1"))
            },
            WAIT,
        );
        assert!(seen.is_ok(), "{:?}", node.snapshot());
    }
    assert_eq!(nodes[1].remove_metadata("token").unwrap().as_deref(), Some(&b"e4c1"[..]));
    assert!(nodes[1].set_metadata("k".repeat(300), "v").is_err());
}

#[test]
fn a_slow_subscriber_is_told_it_lagged() {
    let mut config = config("solo", &[]);
    config.event_capacity = 1;
    let node = Cluster::bind(config).unwrap();
    let events = node.subscribe();
    for i in 0..3 {
        node.set_metadata("i", i.to_string()).unwrap();
    }
    let received: Vec<_> = events.try_iter().collect();
    assert!(matches!(received[0], Ok(Event::MetadataChanged { .. })));
    node.set_metadata("i", "last").unwrap();
    assert_eq!(events.try_recv().unwrap(), Err(swim_std::Lagged(2)));
}
