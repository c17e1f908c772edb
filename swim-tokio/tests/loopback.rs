//! The tokio driver on real sockets: 127.0.0.1, ephemeral ports, short protocol timers,
//! every wait bounded. Also a mixed tokio + std cluster, and hostile datagrams.

#[path = "../../swim-std/tests/support/mod.rs"]
mod support;
use std::net::SocketAddr;
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use swim_core::{Config, DropReason, Event, Instant, Keyring, Node, Status};
use swim_tokio::{Cluster, ClusterConfig, Handle, Snapshot};
use tokio::net::UdpSocket;
use tokio::sync::broadcast::error::TryRecvError;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);
const SECRET: &str = "loopback test";

fn config(name: &str, peers: &[SocketAddr]) -> ClusterConfig {
    support::loopback_config(name, SECRET, peers)
}

fn status_of<const N: usize>(view: &Snapshot, names: [&str; N]) -> [Status; N] {
    names.map(|name| view.member(name).map_or(Status::Offline, |m| m.status()))
}

async fn wait_for(node: &Handle, predicate: impl FnMut(&Snapshot) -> bool) {
    let waited = node.wait_for(predicate, WAIT).await;
    assert!(waited.is_ok(), "{:?}", node.snapshot());
}

async fn all_online(node: &Handle, names: &[&str]) {
    let names = names.to_vec();
    wait_for(node, move |v| {
        names.iter().all(|n| v.member(n).is_some_and(|m| m.status() == Status::Online))
    })
    .await;
}

/// Three members joined through the first, each seeing all three online.
async fn three() -> Vec<Handle> {
    let a = Cluster::bind(config("a", &[])).await.unwrap();
    let seed = [a.local_addr()];
    let b = Cluster::bind(config("b", &seed)).await.unwrap();
    let c = Cluster::bind(config("c", &seed)).await.unwrap();
    let nodes = vec![a, b, c];
    for node in &nodes {
        all_online(node, &["a", "b", "c"]).await;
    }
    nodes
}

#[tokio::test]
async fn three_nodes_converge() {
    for node in three().await {
        let view = node.snapshot();
        assert_eq!(view.members().len(), 3);
        assert!(view.is_joined() && !view.has_left());
    }
}

#[tokio::test]
async fn a_killed_node_is_detected() {
    let mut nodes = three().await;
    let mut events = nodes[0].subscribe();
    drop(nodes.pop());
    for node in &nodes {
        wait_for(node, |v| status_of(v, ["c"]) == [Status::Offline]).await;
    }
    let mut about_c = Vec::new();
    while let Ok(event) = events.try_recv() {
        if event.member() == Some("c") {
            about_c.push(event);
        }
    }
    assert!(matches!(
        about_c.as_slice(),
        [.., Event::MemberSuspect { .. }, Event::MemberOffline { .. }]
    ));
}

#[tokio::test]
async fn a_graceful_leave_is_seen_as_left() {
    let mut nodes = three().await;
    nodes.pop().unwrap().leave().await.unwrap();
    for node in &nodes {
        wait_for(node, |v| status_of(v, ["c"]) == [Status::Left]).await;
    }
}

#[tokio::test]
async fn a_metadata_change_propagates() {
    let nodes = three().await;
    nodes[1].set_metadata("token", "e4c1").await.unwrap();
    for node in &nodes {
        wait_for(node, |v| {
            let metadata = v.member("b").and_then(|m| m.metadata().cloned());
            metadata.is_some_and(|m| m.get("token").is_some_and(|t| t == "e4c1"))
        })
        .await;
    }
    let removed = nodes[1].remove_metadata("token").await.unwrap();
    assert_eq!(removed.as_deref(), Some(&b"e4c1"[..]));
    assert!(nodes[1].set_metadata("k".repeat(300), "v").await.is_err());
}

#[tokio::test]
async fn a_slow_subscriber_is_told_it_lagged() {
    let mut config = config("solo", &[]);
    config.event_capacity = 1;
    let node = Cluster::bind(config).await.unwrap();
    let mut events = node.subscribe();
    for i in 0..3 {
        node.set_metadata("i", i.to_string()).await.unwrap();
    }
    assert_eq!(events.try_recv(), Err(TryRecvError::Lagged(2)));
}

#[tokio::test]
async fn tokio_and_std_nodes_form_one_cluster() {
    let a = Cluster::bind(config("tokio", &[])).await.unwrap();
    let mut std_config = config("std", &[a.local_addr()]);
    std_config.protocol.local_metadata.insert("driver", "std");
    let b =
        tokio::task::spawn_blocking(|| swim_std::Cluster::bind(std_config)).await.unwrap().unwrap();
    all_online(&a, &["tokio", "std"]).await;
    let b = tokio::task::spawn_blocking(move || {
        let view = b.wait_for(|v| status_of(v, ["tokio", "std"]) == [Status::Online; 2], WAIT);
        assert!(view.is_ok(), "{:?}", b.snapshot());
        b
    })
    .await
    .unwrap();
    let driver = a.snapshot().member("std").and_then(|m| m.metadata().cloned());
    assert_eq!(driver.unwrap().get("driver").unwrap(), "std");
    tokio::task::spawn_blocking(move || b.leave().unwrap()).await.unwrap();
    wait_for(&a, |v| status_of(v, ["std"]) == [Status::Left]).await;
}

/// Garbage, truncated, forged, oversized and replayed datagrams at a node are dropped and
/// counted, and none of them changes membership.
#[tokio::test]
async fn hostile_datagrams_are_dropped_and_counted() {
    let attacker = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let a = Cluster::bind(config("a", &[])).await.unwrap();
    // The attacker poses as a seed of b, so it captures b's first (signed) datagram.
    let b = Cluster::bind(config("b", &[a.local_addr(), attacker.local_addr().unwrap()]))
        .await
        .unwrap();
    let mut buffer = [0; 2048];
    let received = timeout(WAIT, attacker.recv_from(&mut buffer)).await;
    let (len, from) = received.unwrap().unwrap();
    assert_eq!(from, b.local_addr());
    let captured = buffer[..len].to_vec();
    all_online(&a, &["a", "b"]).await;

    let forged = {
        let wrong = Config::new("mallory", attacker.local_addr().unwrap(), Keyring::new("guess"));
        let mut mallory = Node::new(wrong, ChaCha8Rng::seed_from_u64(7), Instant::ZERO).unwrap();
        mallory.join(Instant::ZERO, [a.local_addr()]);
        mallory.poll_transmit().unwrap().payload.to_vec()
    };
    let garbage: Vec<u8> = (0..200u32).map(|i| (i * 7919 % 251) as u8).collect();
    let unauthenticated = [&garbage[..], &captured[..len / 2], &captured[..3], &forged];
    let oversized = vec![0x5a; 1600];
    let before = a.snapshot().counters().clone();
    for datagram in unauthenticated.iter().chain([&&oversized[..]]) {
        attacker.send_to(datagram, a.local_addr()).await.unwrap();
    }
    wait_for(&a, |v| {
        let c = v.counters();
        c.dropped(DropReason::Unauthenticated) == before.dropped(DropReason::Unauthenticated) + 4
            && c.dropped(DropReason::TooLarge) == before.dropped(DropReason::TooLarge) + 1
    })
    .await;

    // b's first datagram went to the attacker only: a may take it once (it is within a's
    // window for b), never again.
    let replays = before.dropped(DropReason::Replayed);
    for _ in 0..20 {
        attacker.send_to(&captured, a.local_addr()).await.unwrap();
    }
    wait_for(&a, |v| v.counters().dropped(DropReason::Replayed) >= replays + 19).await;
    // Let a few probe rounds pass: membership is exactly what it was.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let view = a.snapshot();
    let names: Vec<&str> = view.members().iter().map(|m| m.name()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(status_of(&view, ["a", "b"]), [Status::Online; 2]);
    assert_eq!(b.snapshot().members().len(), 2);

    // Once b is dead, its old datagram does not bring it back.
    drop(b);
    wait_for(&a, |v| status_of(v, ["b"]) == [Status::Offline]).await;
    for _ in 0..5 {
        attacker.send_to(&captured, a.local_addr()).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(status_of(&a.snapshot(), ["b"]), [Status::Offline]);
}
