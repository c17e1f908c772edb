//! The application layer on both drivers: the cluster metadata view, watches, readiness,
//! the status dump, discovery and re-resolution, hostile datagrams.

#[macro_use]
mod common;

use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Driver, WAIT, config, online, status, wait};
use rand_chacha::ChaCha8Rng;
use swim_core::rand_core::SeedableRng;
use swim_std::{
    Config, DropReason, Error, Event, Keyring, Resolver, Status, StatusFilter, WatchFilter,
};

suite!(
    the_metadata_view_follows_the_cluster,
    watches_select_by_name_status_and_key,
    readiness_waits_for_the_cluster,
    the_status_dump_serialises,
    discovery_waits_for_our_own_address_then_joins_the_rest,
    hostile_datagrams_are_dropped_and_counted,
);

/// a (db), b (cache), c (db), all online everywhere.
fn three<D: Driver>(tag: &str) -> Vec<D> {
    let mut nodes: Vec<D> = Vec::new();
    for (name, role) in [("a", "db"), ("b", "cache"), ("c", "db")] {
        let seeds: Vec<SocketAddr> = nodes.first().map(D::local_addr).into_iter().collect();
        let mut config = config(name, tag, &seeds);
        config.protocol.local_metadata.insert("role", role);
        nodes.push(D::bind(config).unwrap());
    }
    // Online and with every role known: a member can be online before its metadata arrives.
    for node in &nodes {
        let mut everyone = online(&["a", "b", "c"]);
        wait(node, move |v| everyone(v) && v.cluster_metadata().members().len() == 2);
    }
    nodes
}

fn the_metadata_view_follows_the_cluster<D: Driver>() {
    let nodes = three::<D>("view");
    let view = nodes[1].cluster_metadata();
    assert_eq!(view.local().get("role").unwrap(), "cache");
    assert_eq!(view.remote_values("role").map(|(n, _)| n).collect::<Vec<_>>(), ["a", "c"]);
    nodes[2].set_metadata("role", "search").unwrap();
    wait(&nodes[0], |v| v.cluster_metadata().get("c", "role").is_some_and(|r| r == "search"));
    assert_eq!(nodes[0].cluster_metadata().get_all("role").len(), 3);
    // c fails: its keys leave the view, like keys bound to an expired lease.
    nodes[2].abort();
    let view = wait(&nodes[0], |v| !v.cluster_metadata().contains("c"));
    assert!(!view.members_with(StatusFilter::AVAILABLE).any(|m| m.name() == "c"));
    let metadata = view.cluster_metadata();
    let all: Vec<swim_core::Bytes> = metadata.get_all("role").into_iter().collect();
    assert_eq!(all, [&b"cache"[..], b"db"]);
}

fn watches_select_by_name_status_and_key<D: Driver>() {
    let nodes = three::<D>("watch");
    let mut zone = nodes[0].watch(WatchFilter::all().metadata_key("zone"));
    let mut offline = nodes[0].watch(WatchFilter::all().status(Status::Offline));
    let mut local = nodes[1].watch(WatchFilter::all().name("b").metadata_key("zone"));
    nodes[1].set_metadata("token", "ignored by the zone watches").unwrap();
    nodes[1].set_metadata("zone", "eu").unwrap();
    let got = zone.recv_timeout(WAIT).unwrap().unwrap();
    assert!(matches!(got.event, Event::MetadataChanged { .. }));
    assert_eq!(got.name(), Some("b"));
    assert_eq!(got.member.unwrap().metadata().unwrap().get("zone").unwrap(), "eu");
    // The local listener: b's own change, at once.
    assert_eq!(local.try_recv().unwrap().unwrap().name(), Some("b"));
    assert!(local.try_recv().is_none());
    nodes[2].abort();
    let got = offline.recv_timeout(WAIT).unwrap().unwrap();
    assert_eq!(got.name(), Some("c"));
    assert_eq!(got.member.map(|m| m.status()), Some(Status::Offline));
    // c never held `zone`: whatever else came was about b.
    assert!(zone.drain().into_iter().all(|w| w.unwrap().name() == Some("b")));
}

fn readiness_waits_for_the_cluster<D: Driver>() {
    let a = D::bind(config("a", "ready", &[])).unwrap();
    assert!(!a.is_ready());
    let early = a.wait_ready(Duration::from_millis(200));
    assert!(matches!(early, Err(Error::TimedOut(_))), "{early:?}");
    let mut events = a.subscribe();
    let b = D::bind(config("b", "ready", &[a.local_addr()])).unwrap();
    b.wait_ready(WAIT).unwrap();
    a.wait_ready(WAIT).unwrap();
    assert!(a.is_ready() && a.snapshot().is_ready());
    let joined = std::iter::from_fn(|| events.recv_timeout(WAIT)).find(|e| *e == Ok(Event::Joined));
    assert!(joined.is_some());
}

fn the_status_dump_serialises<D: Driver>() {
    let nodes = three::<D>("dump");
    let dump = serde_json::to_value(nodes[0].status_dump()).unwrap();
    assert_eq!((&dump["name"], &dump["ready"]), (&"a".into(), &true.into()));
    assert_eq!(dump["counts"]["online"], 3);
    let b = &dump["members"][1];
    assert_eq!((&b["name"], &b["status"]), (&"b".into(), &"online".into()));
    // The encoding of {"role": "cache"}: a count, the key and the value after their lengths.
    assert_eq!(b["metadata_bytes"], 12);
    for key in ["datagrams_in", "bytes_out", "probes", "suspicions", "refutations"] {
        assert!(dump["counters"][key].is_u64(), "{key} in {dump}");
    }
    assert_eq!(dump["counters"]["dropped"]["replayed"], 0);
}

/// A resolver answering `svc` with a list the test controls, and anything else as usual.
fn service(list: &Arc<Mutex<Vec<SocketAddr>>>) -> Resolver {
    let list = Arc::clone(list);
    Resolver::new(move |host, port| match host {
        "svc" => Ok(list.lock().unwrap().clone()),
        _ => Resolver::default().resolve(host, port),
    })
}

fn discovery_waits_for_our_own_address_then_joins_the_rest<D: Driver>() {
    let a = D::bind(config("a", "discovery", &[])).unwrap();
    // The service names only a so far: not this node.
    let mut b = config("b", "discovery", &[]);
    b.discovery = Some(format!("localhost:{}", a.local_addr().port()));
    b.bind_port = Some(0);
    b.resolve_wait_hint = Duration::from_secs(2);
    let Err(Error::Transient(error)) = D::bind(b) else { panic!("not transient") };
    assert_eq!(error.wait_hint(), Duration::from_secs(2));
    // Once the service lists it, the others are its peers.
    let port = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let list = Arc::new(Mutex::new(vec![a.local_addr(), SocketAddr::from(([127, 0, 0, 1], port))]));
    let mut b = config("b", "discovery", &[]);
    b.bind_port = Some(port);
    b.discovery = Some(format!("svc:{port}"));
    b.resolver = service(&list);
    b.resolve_interval = Some(Duration::from_millis(200));
    let b = D::bind(b).unwrap();
    wait(&b, online(&["a", "b"]));
    // A member started later, with no peers, is found when the name is resolved again.
    let c = D::bind(config("c", "discovery", &[])).unwrap();
    list.lock().unwrap().push(c.local_addr());
    wait(&c, online(&["a", "b", "c"]));
    wait(&a, online(&["a", "b", "c"]));
}

/// Garbage, truncated, forged, oversized and replayed datagrams at a node are dropped and
/// counted, and none of them changes membership.
fn hostile_datagrams_are_dropped_and_counted<D: Driver>() {
    let attacker = UdpSocket::bind("127.0.0.1:0").unwrap();
    attacker.set_read_timeout(Some(WAIT)).unwrap();
    let a = D::bind(config("a", "hostile", &[])).unwrap();
    // The attacker poses as a seed of b, so it captures b's first (signed) datagram.
    let seeds = [a.local_addr(), attacker.local_addr().unwrap()];
    let b = D::bind(config("b", "hostile", &seeds)).unwrap();
    let mut buffer = [0; 2048];
    let (len, from) = attacker.recv_from(&mut buffer).unwrap();
    assert_eq!(from, b.local_addr());
    let captured = buffer[..len].to_vec();
    wait(&a, online(&["a", "b"]));
    let forged = {
        let mut wrong =
            Config::new("mallory", attacker.local_addr().unwrap(), Keyring::new("guess"));
        wrong.replay_protection = false;
        let mut mallory =
            swim_core::Node::new(wrong, ChaCha8Rng::seed_from_u64(7), swim_core::Instant::ZERO)
                .unwrap();
        mallory.join(swim_core::Instant::ZERO, [a.local_addr()]);
        mallory.poll_transmit().unwrap().payload.to_vec()
    };
    let garbage: Vec<u8> = (0..200u32).map(|i| (i * 7919 % 251) as u8).collect();
    let before = a.snapshot().counters().clone();
    for datagram in [&garbage[..], &captured[..len / 2], &captured[..3], &forged, &[0x5a; 1600]] {
        attacker.send_to(datagram, a.local_addr()).unwrap();
    }
    wait(&a, |v| {
        let c = v.counters();
        c.dropped(DropReason::Unauthenticated) == before.dropped(DropReason::Unauthenticated) + 4
            && c.dropped(DropReason::TooLarge) == before.dropped(DropReason::TooLarge) + 1
    });
    // b's first datagram went to the attacker only: a may take it once, never again.
    let replays = before.dropped(DropReason::Replayed);
    for _ in 0..20 {
        attacker.send_to(&captured, a.local_addr()).unwrap();
    }
    wait(&a, |v| v.counters().dropped(DropReason::Replayed) >= replays + 19);
    std::thread::sleep(Duration::from_millis(600));
    let view = a.snapshot();
    let names: Vec<&str> = view.members().iter().map(|m| m.name().as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(view.members().iter().map(|m| m.status()).collect::<Vec<_>>(), [Status::Online; 2]);
    // Once b is dead, its old datagram does not bring it back.
    b.abort();
    wait(&a, |v| status(v, "b") == Some(Status::Offline));
    for _ in 0..5 {
        attacker.send_to(&captured, a.local_addr()).unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(status(&a.snapshot(), "b"), Some(Status::Offline));
}
