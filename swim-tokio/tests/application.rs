//! The application layer on the tokio driver, on real loopback sockets: the cluster
//! metadata view, watches, readiness, the status dump and discovery.

#[path = "../../swim-std/tests/support/mod.rs"]
mod support;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use swim_core::{Event, Status};
use swim_tokio::{Cluster, ClusterConfig, Error, Handle, Resolver, Snapshot, WatchFilter};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);

fn config(name: &str, peers: &[SocketAddr]) -> ClusterConfig {
    support::loopback_config(name, "tokio application test", peers)
}

fn online(names: &'static [&'static str]) -> impl FnMut(&Snapshot) -> bool {
    move |v| names.iter().all(|n| v.member(n).is_some_and(|m| m.status() == Status::Online))
}

async fn three() -> Vec<Handle> {
    let mut a = config("a", &[]);
    a.protocol.local_metadata.insert("role", "db");
    let a = Cluster::bind(a).await.unwrap();
    let mut nodes = vec![a];
    for (name, role) in [("b", "cache"), ("c", "db")] {
        let mut config = config(name, &[nodes[0].local_addr()]);
        config.protocol.local_metadata.insert("role", role);
        nodes.push(Cluster::bind(config).await.unwrap());
    }
    for node in &nodes {
        node.wait_for(online(&["a", "b", "c"]), WAIT).await.unwrap();
    }
    nodes
}

#[tokio::test]
async fn the_metadata_view_follows_the_cluster() {
    let mut nodes = three().await;
    let view = nodes[1].snapshot().cluster_metadata();
    assert_eq!(view.local().get("role").unwrap(), "cache");
    assert_eq!(view.remote_values("role").map(|(n, _)| n).collect::<Vec<_>>(), ["a", "c"]);
    assert_eq!(view.get_all("role").len(), 2);
    // A change spreads into every view; a failed member's keys vanish.
    nodes[2].set_metadata("role", "search").await.unwrap();
    let has = |v: &Snapshot| v.cluster_metadata().get("c", "role").is_some_and(|r| r == "search");
    nodes[0].wait_for(has, WAIT).await.unwrap();
    assert_eq!(nodes[0].cluster_metadata().get_all("role").len(), 3);
    drop(nodes.pop());
    let gone = |v: &Snapshot| !v.cluster_metadata().contains("c");
    let view = nodes[0].wait_for(gone, WAIT).await.unwrap().cluster_metadata();
    let all: Vec<swim_core::Bytes> = view.get_all("role").into_iter().collect();
    assert_eq!(all, [&b"cache"[..], b"db"]);
}

#[tokio::test]
async fn watches_select_by_name_status_and_key() {
    let mut nodes = three().await;
    let mut zone = nodes[0].watch(WatchFilter::all().metadata_key("zone"));
    let mut offline = nodes[0].watch(WatchFilter::all().status(Status::Offline));
    let mut local = nodes[1].watch(WatchFilter::all().name("b").metadata_key("zone"));
    nodes[1].set_metadata("token", "ignored by the zone watches").await.unwrap();
    nodes[1].set_metadata("zone", "eu").await.unwrap();
    let got = timeout(WAIT, zone.recv()).await.unwrap().unwrap().unwrap();
    assert!(matches!(got.event, Event::MetadataChanged { .. }));
    assert_eq!(got.member.unwrap().metadata().unwrap().get("zone").unwrap(), "eu");
    let mine = local.try_recv().unwrap().unwrap();
    assert_eq!(mine.name(), Some("b"));
    assert!(local.try_recv().is_err());
    drop(nodes.pop());
    let got = timeout(WAIT, offline.recv()).await.unwrap().unwrap().unwrap();
    assert_eq!(got.name(), Some("c"));
    assert_eq!(got.member.map(|m| m.status()), Some(Status::Offline));
    // c never held `zone`: whatever else came was about b.
    while let Ok(watched) = zone.try_recv() {
        assert_eq!(watched.unwrap().name(), Some("b"));
    }
}

#[tokio::test]
async fn readiness_waits_for_the_cluster() {
    let a = Cluster::bind(config("a", &[])).await.unwrap();
    assert!(!a.is_ready());
    let early = a.wait_ready(Duration::from_millis(200)).await;
    assert!(matches!(early, Err(Error::TimedOut(_))));
    let mut events = a.subscribe();
    let b = Cluster::bind(config("b", &[a.local_addr()])).await.unwrap();
    b.wait_ready(WAIT).await.unwrap();
    a.wait_ready(WAIT).await.unwrap();
    assert!(a.is_ready() && a.snapshot().is_ready());
    loop {
        if timeout(WAIT, events.recv()).await.unwrap().unwrap() == Event::Joined {
            break;
        }
    }
}

#[tokio::test]
async fn the_status_dump_serialises() {
    let nodes = three().await;
    let dump = serde_json::to_value(nodes[2].status_dump()).unwrap();
    assert_eq!(dump["name"], "c");
    assert_eq!(dump["ready"], true);
    assert_eq!(dump["members"].as_array().unwrap().len(), 3);
    assert_eq!(dump["members"][0]["metadata_entries"], 1);
    for key in ["datagrams_in", "bytes_out", "probes", "suspicions", "refutations", "dropped"] {
        assert!(!dump["counters"][key].is_null(), "{key}");
    }
}

#[tokio::test]
async fn discovery_through_localhost_and_re_resolution() {
    let a = Cluster::bind(config("a", &[])).await.unwrap();
    // The service names only a so far: not this node.
    let mut b = config("b", &[]);
    b.discovery = Some(format!("localhost:{}", a.local_addr().port()));
    // On one host the service's port is a's: b listens elsewhere.
    b.bind_port = Some(0);
    let Err(Error::Transient(error)) = Cluster::bind(b).await else { panic!("not transient") };
    assert_eq!(error.wait_hint(), Duration::from_secs(60));

    // Peer names are resolved again: `late.test` first fails (binding is transient), then
    // names a, then also c, which started alone and is found only by re-resolution.
    let answers = Arc::new(Mutex::new(Vec::<SocketAddr>::new()));
    let answer = Arc::clone(&answers);
    let mut b = config("b", &[]);
    b.peers = vec!["late.test:1".into()];
    b.resolver = Resolver::new(move |host, port| match host {
        "late.test" => Ok(answer.lock().unwrap().clone()),
        _ => Resolver::default().resolve(host, port),
    });
    b.resolve_interval = Some(Duration::from_millis(200));
    assert!(matches!(Cluster::bind(b.clone()).await, Err(Error::Transient(_))));
    answers.lock().unwrap().push(a.local_addr());
    let b = Cluster::bind(b).await.unwrap();
    b.wait_for(online(&["a", "b"]), WAIT).await.unwrap();
    let c = Cluster::bind(config("c", &[])).await.unwrap();
    answers.lock().unwrap().push(c.local_addr());
    b.wait_for(online(&["a", "b", "c"]), WAIT).await.unwrap();
    c.wait_for(online(&["a", "b", "c"]), WAIT).await.unwrap();
}
