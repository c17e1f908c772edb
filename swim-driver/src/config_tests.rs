use std::time::Duration;

use super::*;

fn free() -> SocketAddr {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

#[test]
fn binds_from_the_name_and_advertises_the_bound_port() {
    let config = ClusterConfig::new("127.0.0.1:0", Keyring::new("s"));
    let bound = config.bind().unwrap();
    assert_eq!(bound.node.config().local_addr, bound.local_addr);
    assert_ne!(bound.local_addr.port(), 0);
}

#[test]
fn a_port_0_name_becomes_the_bound_port() {
    let config = ClusterConfig::new("127.0.0.1:0", Keyring::new("s"));
    let (one, two) = (config.bind().unwrap(), config.bind().unwrap());
    let name = |b: &Bound| b.node.local_member().name().to_owned();
    assert_eq!(name(&one), one.local_addr.to_string());
    assert_eq!(name(&two), two.local_addr.to_string());
    assert_ne!(name(&one), name(&two));
}

#[test]
fn the_bind_address_can_differ_from_the_advertised_one() {
    let mut config = ClusterConfig::new("127.0.0.1:0", Keyring::new("s"));
    config.bind_host = Some("0.0.0.0".into());
    let bound = config.bind().unwrap();
    assert!(bound.local_addr.ip().is_unspecified());
    let advertised = bound.node.config().local_addr;
    assert_eq!(advertised, SocketAddr::from(([127, 0, 0, 1], bound.local_addr.port())));
    // A port in use is refused with the address tried.
    let mut taken = ClusterConfig::new("127.0.0.1:0", Keyring::new("s"));
    taken.bind_port = Some(bound.local_addr.port());
    let error = taken.bind().unwrap_err();
    assert!(matches!(error, Error::Bind { .. }), "{error}");
}

#[test]
fn discovery_finds_this_node_by_port_and_advertises_it() {
    let (ours, theirs) = (free(), free());
    let mut config = ClusterConfig::new("node", Keyring::new("s"));
    config.bind_host = Some("127.0.0.1".into());
    config.discovery = Some(format!("svc:{}", ours.port()));
    config.resolver = Resolver::new(move |host, port| match host {
        "svc" => Ok(vec![theirs, ours]),
        _ => Resolver::default().resolve(host, port),
    });
    let bound = config.bind().unwrap();
    assert_eq!(bound.local_addr, ours);
    assert_eq!(bound.node.config().local_addr, ours);
    assert_eq!(bound.node.config().peers, [theirs]);
    let mut refresh = bound.resolution.unwrap();
    assert!(refresh.resolve().new_seeds.is_empty(), "nothing new");
    // Not among the addresses (another port): transient, with the wait hint.
    config.discovery = Some(format!("svc:{}", theirs.port() ^ 1));
    config.bind_port = Some(0);
    let Err(Error::Transient(error)) = config.bind() else { panic!("not transient") };
    assert_eq!(error.wait_hint(), config.resolve_wait_hint);
    config.discovery = Some("svc".into());
    assert!(matches!(config.bind(), Err(Error::InvalidAddress { field: "discovery", .. })));
}

#[test]
fn a_plain_name_without_a_bind_host_blames_the_name() {
    let error = ClusterConfig::new("foo", Keyring::new("s")).bind().unwrap_err();
    let Error::InvalidAddress { field, value, reason } = &error else { panic!("{error}") };
    assert_eq!((*field, value.as_str()), ("local_name", "foo"));
    assert!(reason.contains("bind_host or advertise"), "{reason}");
    assert!(!error.to_string().contains("advertise `"), "{error}");
}

#[test]
fn values_that_can_never_work_are_permanent_errors_naming_the_field() {
    for (peer, reason) in [
        ("999.1.1.1:2000", "not a valid IPv4 address"),
        (":99999", "the port is above 65535"),
        ("127.0.0.1:99999", "the port is above 65535"),
        ("nowhere", "expected HOST:PORT"),
    ] {
        let mut config = ClusterConfig::new("127.0.0.1:0", Keyring::new("s"));
        config.peers = vec!["127.0.0.1:1".into(), peer.into()];
        let error = config.bind().unwrap_err();
        let Error::InvalidAddress { field: "peer", reason: got, .. } = error else {
            panic!("{peer}: {error}")
        };
        assert_eq!(got, reason, "{peer}");
    }
    let error = ClusterConfig::new("999.1.1.1:2000", Keyring::new("s")).bind().unwrap_err();
    assert!(matches!(error, Error::InvalidAddress { field: "local_name", .. }), "{error}");
}

#[test]
fn an_unresolvable_peer_beside_a_good_one_starts_and_is_retried() {
    let good = free();
    let mut config = ClusterConfig::new("127.0.0.1:0", Keyring::new("s"));
    config.peers = vec!["nosuchhost.invalid:2000".into(), good.to_string()];
    config.resolver = Resolver::new(|_, _| Err(io::Error::other("no such host")));
    config.resolve_interval = None;
    let bound = config.bind().unwrap();
    assert_eq!(bound.node.config().peers, [good]);
    assert_eq!(bound.resolved.unresolved, ["nosuchhost.invalid:2000"]);
    assert_eq!(bound.resolved.failures, 1);
    let resolution = bound.resolution.expect("the bad name is retried");
    assert_eq!(resolution.next_delay(), Some(Duration::from_secs(2)));
}
