//! What a new user runs into first, on both drivers: port-0 names, a wrong secret, peers
//! that do not resolve, a name that is not an address; and both drivers in one cluster.

#[macro_use]
mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Driver, Tokio, WAIT, captured_logs, config, online, runtime, wait};
use swim_std::{ClusterConfig, Error, Keyring, Resolver, Status};

suite!(
    port_0_names_become_the_bound_port_and_join,
    a_wrong_secret_is_logged,
    an_unresolvable_peer_beside_a_good_one_is_retried,
    a_name_that_is_not_an_address_blames_the_name,
);

fn port_0_names_become_the_bound_port_and_join<D: Driver>() {
    let a = D::bind(ClusterConfig::new("127.0.0.1:0", Keyring::new("port 0"))).unwrap();
    let mut b = ClusterConfig::new("127.0.0.1:0", Keyring::new("port 0"));
    b.peers.push(a.local_addr().to_string());
    let b = D::bind(b).unwrap();
    let names = [a.local_addr().to_string(), b.local_addr().to_string()];
    assert_eq!(a.local_member().name().as_str(), names[0]);
    assert_eq!(b.local_member().name().as_str(), names[1]);
    assert_ne!(names[0], names[1]);
    for node in [&a, &b] {
        wait(node, online(&[&names[0], &names[1]]));
    }
}

fn a_wrong_secret_is_logged<D: Driver>() {
    let logs = captured_logs();
    // Port-0 names: unique in this process, whichever driver's test logs beside it.
    let a = D::bind(config("127.0.0.1:0", "right", &[])).unwrap();
    let b = D::bind(config("127.0.0.1:0", "wrong", &[a.local_addr()])).unwrap();
    let ours = format!("node={}", a.local_addr());
    let line = |logs: &[u8]| {
        (String::from_utf8_lossy(logs).lines())
            .find(|l| {
                l.contains("WARN") && l.contains("failed authentication") && l.contains(&ours)
            })
            .map(str::to_owned)
    };
    let deadline = std::time::Instant::now() + WAIT;
    let found = loop {
        if let Some(found) = line(&logs.lock().unwrap()) {
            break found;
        }
        assert!(std::time::Instant::now() < deadline, "no warning about the secret");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(found.contains(&format!("from={}", b.local_addr())), "{found}");
    assert!(!a.is_ready() && !b.is_ready());
}

fn an_unresolvable_peer_beside_a_good_one_is_retried<D: Driver>() {
    let logs = captured_logs();
    // A name of this driver's own, so the other driver's run cannot pass for this one.
    let driver: String =
        std::any::type_name::<D>().chars().filter(char::is_ascii_alphabetic).collect();
    let host = format!("nosuchhost-{driver}.invalid");
    let peer = format!("{host}:2000");
    let a = D::bind(config("a", "resolve", &[])).unwrap();
    let late = Arc::new(Mutex::new(None::<SocketAddr>));
    let answer = Arc::clone(&late);
    let mut b = config("b", "resolve", &[]);
    b.peers = vec![peer.clone(), a.local_addr().to_string()];
    b.resolve_interval = None;
    let bad = host.clone();
    b.resolver = Resolver::new(move |host, _| match (host == bad, *answer.lock().unwrap()) {
        (true, Some(addr)) => Ok(vec![addr]),
        _ => Err(std::io::Error::other("no such host")),
    });
    let b = D::bind(b).unwrap();
    wait(&b, online(&["a", "b"]));
    assert_eq!(b.snapshot().unresolved_peers(), [peer.as_str()]);
    // Logged as a warning naming the peer, and counted.
    let logged = String::from_utf8_lossy(&logs.lock().unwrap()).lines().any(|l| {
        l.contains("WARN") && l.contains("cannot resolve") && l.contains(&format!("name={peer}"))
    });
    assert!(logged, "no warning about {peer}");
    assert!(b.snapshot().resolve_failures() >= 1);
    // The name resolves later (DNS caught up): the member behind it is joined.
    let c = D::bind(config("c", "resolve", &[])).unwrap();
    *late.lock().unwrap() = Some(c.local_addr());
    wait(&c, online(&["a", "b", "c"]));
    wait(&b, |v| v.unresolved_peers().is_empty());
    // Values that can never work are refused at once, naming the field.
    let mut bad = config("d", "resolve", &[]);
    bad.peers = vec!["999.1.1.1:2000".into()];
    let error = D::bind(bad).err().expect("refused");
    assert!(matches!(error, Error::InvalidAddress { field: "peer", .. }), "{error}");
}

fn a_name_that_is_not_an_address_blames_the_name<D: Driver>() {
    let error = D::bind(ClusterConfig::new("foo", Keyring::new("s"))).err().expect("refused");
    assert!(matches!(error, Error::InvalidAddress { field: "local_name", .. }), "{error}");
    assert!(error.to_string().contains("invalid local_name `foo`"), "{error}");
}

#[test]
fn tokio_and_std_nodes_form_one_cluster() {
    let a = Tokio::bind(config("tokio", "mixed", &[])).unwrap();
    let mut b = config("std", "mixed", &[a.local_addr()]);
    b.protocol.local_metadata.insert("driver", "std");
    let b = swim_std::Cluster::bind(b).unwrap();
    wait(&a, online(&["tokio", "std"]));
    wait(&b, online(&["tokio", "std"]));
    let driver = a.member("std").and_then(|m| m.metadata().cloned());
    assert_eq!(driver.unwrap().get("driver").unwrap(), "std");
    b.leave().unwrap();
    wait(&a, |v| v.member("std").is_some_and(|m| m.status() == Status::Left));
    // The tokio handle's events are a Stream (the first subscriber's begins with what
    // happened since bind: the std node joining and leaving).
    runtime().block_on(async {
        use swim_tokio::StreamExt;
        let events = a.0.subscribe();
        a.0.set_metadata("k", "v").unwrap();
        let mut own = events.filter(|e| matches!(e, Ok(e) if e.member() == Some("tokio")));
        let event = tokio::time::timeout(WAIT, own.next()).await.unwrap();
        let Some(Ok(event)) = event else { panic!("{event:?}") };
        assert_eq!(event.changed_keys(), ["k"]);
        let mut stream = a.0.subscribe();
        a.0.set_metadata("k", "w").unwrap();
        let next = tokio::time::timeout(WAIT, stream.next()).await.unwrap();
        assert!(matches!(next, Some(Ok(swim_std::Event::MetadataChanged { .. }))), "{next:?}");
    });
}
