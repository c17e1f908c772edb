//! The application layer on the std driver, on real loopback sockets: the cluster metadata
//! view, watches, readiness, the status dump, discovery and re-resolution.

mod support;
use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use swim_core::{Event, Status, StatusFilter};
use swim_std::{Cluster, ClusterConfig, Error, Handle, Resolver, Snapshot, WatchFilter};

const WAIT: Duration = Duration::from_secs(10);

fn config(name: &str, peers: &[SocketAddr]) -> ClusterConfig {
    support::loopback_config(name, "application test", peers)
}

fn online(names: &'static [&'static str]) -> impl FnMut(&Snapshot) -> bool {
    move |v| names.iter().all(|n| v.member(n).is_some_and(|m| m.status() == Status::Online))
}

fn three() -> Vec<Handle> {
    let mut a = config("a", &[]);
    a.protocol.local_metadata.insert("role", "db");
    let a = Cluster::bind(a).unwrap();
    let mut nodes = vec![a];
    for (name, role) in [("b", "cache"), ("c", "db")] {
        let mut config = config(name, &[nodes[0].local_addr()]);
        config.protocol.local_metadata.insert("role", role);
        nodes.push(Cluster::bind(config).unwrap());
    }
    for node in &nodes {
        node.wait_for(online(&["a", "b", "c"]), WAIT).unwrap();
    }
    nodes
}

#[test]
fn the_metadata_view_follows_the_cluster() {
    let mut nodes = three();
    let view = nodes[0].cluster_metadata();
    assert_eq!(view.local().get("role").unwrap(), "db");
    assert_eq!(view.remote_values("role").map(|(n, _)| n).collect::<Vec<_>>(), ["b", "c"]);
    let all: Vec<swim_core::Bytes> = view.get_all("role").into_iter().collect();
    assert_eq!(all, [&b"cache"[..], b"db"]);
    // c fails: its keys leave the view, like keys bound to an expired lease.
    drop(nodes.pop());
    let view = nodes[0].wait_for(|v| !v.cluster_metadata().contains("c"), WAIT).unwrap();
    assert!(!view.members_with(StatusFilter::AVAILABLE).any(|m| m.name() == "c"));
    assert_eq!(view.cluster_metadata().get_all("role").len(), 2);
}

#[test]
fn watches_select_by_name_status_and_key() {
    let mut nodes = three();
    let zone = nodes[0].watch(WatchFilter::all().metadata_key("zone"));
    let offline = nodes[0].watch(WatchFilter::all().status(Status::Offline));
    let local = nodes[1].watch(WatchFilter::all().name("b").metadata_key("zone"));
    nodes[1].set_metadata("token", "ignored by the zone watches").unwrap();
    nodes[1].set_metadata("zone", "eu").unwrap();
    let got = zone.recv_timeout(WAIT).unwrap().unwrap();
    assert!(matches!(got.event, Event::MetadataChanged { .. }));
    assert_eq!(got.name(), Some("b"));
    assert_eq!(got.member.unwrap().metadata().unwrap().get("zone").unwrap(), "eu");
    // The local listener: b's own change, at once.
    let mine = local.try_recv().unwrap().unwrap();
    assert_eq!(mine.name(), Some("b"));
    assert!(local.try_recv().is_err());
    drop(nodes.pop());
    let got = offline.recv_timeout(WAIT).unwrap().unwrap();
    assert_eq!(
        (got.name(), got.member.as_ref().map(|m| m.status())),
        (Some("c"), Some(Status::Offline))
    );
    // c never held `zone`: whatever else came was about b.
    assert!(zone.try_iter().all(|w| w.unwrap().name() == Some("b")));
}

#[test]
fn readiness_waits_for_the_cluster() {
    let a = Cluster::bind(config("a", &[])).unwrap();
    assert!(!a.is_ready());
    assert!(matches!(a.wait_ready(Duration::from_millis(200)), Err(Error::TimedOut(_))));
    let events = a.subscribe();
    let b = Cluster::bind(config("b", &[a.local_addr()])).unwrap();
    b.wait_ready(WAIT).unwrap();
    a.wait_ready(WAIT).unwrap();
    assert!(a.is_ready() && a.snapshot().is_ready());
    let ready = events.iter().map(Result::unwrap).find(|e| *e == Event::Joined);
    assert_eq!(ready, Some(Event::Joined));
}

#[test]
fn the_status_dump_serialises() {
    let nodes = three();
    let dump = serde_json::to_value(nodes[0].snapshot().status_dump()).unwrap();
    for key in ["name", "ready", "left", "health", "counts", "members", "counters"] {
        assert!(dump.get(key).is_some(), "{key} in {dump}");
    }
    assert_eq!(dump["name"], "a");
    assert_eq!(dump["ready"], true);
    assert_eq!(dump["counts"]["online"], 3);
    let b = &dump["members"][1];
    assert_eq!(
        (&b["name"], &b["status"], &b["metadata_bytes"]),
        // The encoding of {"role": "cache"}: count, key and value after their lengths.
        (&"b".into(), &"online".into(), &12.into())
    );
    assert!(b["incarnation"].is_u64());
    let counters = &dump["counters"];
    for key in [
        "datagrams_in",
        "bytes_in",
        "datagrams_out",
        "bytes_out",
        "probes",
        "suspicions",
        "refutations",
    ] {
        assert!(counters[key].is_u64(), "{key} in {counters}");
    }
    assert!(counters["datagrams_in"].as_u64().unwrap() > 0);
    assert_eq!(counters["dropped"]["replayed"], 0);
}

/// A port free on 127.0.0.1 a moment ago, for a node whose address must be known before
/// it binds.
fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A resolver answering `svc` with a list the test controls, and anything else as usual.
fn service(list: &Arc<Mutex<Vec<SocketAddr>>>) -> Resolver {
    let list = Arc::clone(list);
    let system = Resolver::default();
    Resolver::new(move |host, port| match host {
        "svc" => Ok(list.lock().unwrap().clone()),
        _ => system.resolve(host, port),
    })
}

#[test]
fn discovery_waits_for_our_own_address_then_joins_the_rest() {
    let a = Cluster::bind(config("a", &[])).unwrap();
    // `localhost` names a only: this node is not among its addresses yet.
    let mut b = config("b", &[]);
    b.discovery = Some(format!("localhost:{}", a.local_addr().port()));
    // On one host the service's port is a's: b listens elsewhere.
    b.bind_port = Some(0);
    b.resolve_wait_hint = Duration::from_secs(2);
    let Err(Error::Transient(error)) = Cluster::bind(b) else { panic!("not transient") };
    assert_eq!(error.wait_hint(), Duration::from_secs(2));

    // Once the service lists it, the others are its peers.
    let port = free_port();
    let list = Arc::new(Mutex::new(vec![a.local_addr(), SocketAddr::from(([127, 0, 0, 1], port))]));
    let mut b = config("b", &[]);
    b.bind_port = Some(port);
    b.discovery = Some(format!("svc:{port}"));
    b.resolver = service(&list);
    b.resolve_interval = Some(Duration::from_millis(200));
    let b = Cluster::bind(b).unwrap();
    b.wait_for(online(&["a", "b"]), WAIT).unwrap();

    // A member started later, with no peers, is found when the name is resolved again.
    let c = Cluster::bind(config("c", &[])).unwrap();
    list.lock().unwrap().push(c.local_addr());
    c.wait_for(online(&["a", "b", "c"]), WAIT).unwrap();
    a.wait_for(online(&["a", "b", "c"]), WAIT).unwrap();
}
