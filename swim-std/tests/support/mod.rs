//! Shared by the loopback tests of both drivers (swim-tokio's tests include this file by path).

use std::net::SocketAddr;
use std::time::Duration;

use swim_core::Keyring;
use swim_driver::ClusterConfig;

/// A member named `name` on an ephemeral 127.0.0.1 port, with timers about 4x the defaults'
/// speed so failures are detected in about a second.
pub(crate) fn loopback_config(name: &str, secret: &str, peers: &[SocketAddr]) -> ClusterConfig {
    let mut config = ClusterConfig::new(name, Keyring::new(secret));
    config.bind_host = Some("127.0.0.1".into());
    config.protocol.peers = peers.to_vec();
    let p = &mut config.protocol;
    p.ping_interval = Duration::from_millis(250);
    p.ping_timeout = Duration::from_millis(100);
    p.ping_req_timeout = Duration::from_millis(150);
    p.suspect_timeout = Duration::from_millis(750);
    p.sync_interval = Duration::from_millis(100);
    p.gossip_interval = Duration::from_millis(50);
    p.rejoin_interval = Duration::from_millis(500);
    config
}
