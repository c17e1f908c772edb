//! Peer names resolved in the background: a name that fails is retried with backoff (logged
//! and counted) while the others are used, and every name is resolved again each
//! `resolve_interval` so a member that moved or appeared is found.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use tracing::{debug, info, warn};

use crate::address::{HostPort, Resolver};

/// First retry of a name that failed; doubled after each failure up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_secs(1);
/// Longest wait between two tries of a failing name.
const MAX_RETRY: Duration = Duration::from_secs(30);

/// One name to resolve.
#[derive(Clone, Debug)]
struct Name {
    /// `peer` or `discovery`, for logs.
    field: &'static str,
    host_port: HostPort,
    /// Whether the last try failed.
    failing: bool,
}

/// What a resolution round found, for the node and for whoever watches the driver.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resolved {
    /// Addresses never returned before (this node's own excepted): seeds to join through.
    pub new_seeds: Vec<SocketAddr>,
    /// Names whose last try failed, as `HOST:PORT`.
    pub unresolved: Vec<String>,
    /// Failed tries since the node started.
    pub failures: u64,
}

/// The peer and discovery names of a node and what they resolved to so far.
#[derive(Clone, Debug)]
pub struct PeerResolution {
    resolver: Resolver,
    names: Vec<Name>,
    /// This node's advertised and bound addresses, never seeds.
    own: [SocketAddr; 2],
    known: BTreeSet<SocketAddr>,
    failures: u64,
    interval: Option<Duration>,
    retry: Duration,
}

impl PeerResolution {
    pub(crate) fn new(
        resolver: Resolver,
        own: [SocketAddr; 2],
        interval: Option<Duration>,
    ) -> Self {
        PeerResolution {
            resolver,
            names: Vec::new(),
            own,
            known: BTreeSet::new(),
            failures: 0,
            interval,
            retry: FIRST_RETRY,
        }
    }

    /// Adds a name to resolve from now on (IP addresses need no resolver and never fail).
    pub(crate) fn add(&mut self, field: &'static str, host_port: HostPort) {
        self.names.push(Name { field, host_port, failing: false });
    }

    /// Marks addresses as already known (the configured ones), so they are not news.
    pub(crate) fn know(&mut self, addrs: impl IntoIterator<Item = SocketAddr>) {
        self.known.extend(addrs);
    }

    /// Resolves every name now (blocking) and returns what is new. A name that fails is
    /// logged (a warning the first time, then at debug level) and counted; the others count.
    pub fn resolve(&mut self) -> Resolved {
        let mut new_seeds = Vec::new();
        let family = self.own[1];
        for name in &mut self.names {
            let resolved = match name.host_port.ip_addr() {
                Some(addr) => Ok(vec![addr]),
                None => (self.resolver.resolve(&name.host_port.host, name.host_port.port))
                    .map(|addrs| addrs.into_iter().filter(|a| a.is_ipv4() == family.is_ipv4()))
                    .map(Iterator::collect::<Vec<_>>),
            };
            let resolved = resolved.and_then(|addrs| match addrs.is_empty() {
                true => Err(std::io::Error::other("no address of the socket's family")),
                false => Ok(addrs),
            });
            match resolved {
                Ok(addrs) => {
                    if name.failing {
                        info!(field = name.field, name = %name.host_port, "name resolves again");
                    }
                    name.failing = false;
                    for addr in addrs {
                        if !self.own.contains(&addr) && self.known.insert(addr) {
                            new_seeds.push(addr);
                        }
                    }
                }
                Err(error) => {
                    self.failures += 1;
                    if name.failing {
                        debug!(field = name.field, name = %name.host_port, %error, "still unresolvable");
                    } else {
                        warn!(
                            field = name.field, name = %name.host_port, %error,
                            "cannot resolve; retrying in the background, other peers are used"
                        );
                    }
                    name.failing = true;
                }
            }
        }
        let failing = self.names.iter().any(|n| n.failing);
        self.retry = if failing { (self.retry * 2).min(MAX_RETRY) } else { FIRST_RETRY };
        Resolved { new_seeds, unresolved: self.unresolved(), failures: self.failures }
    }

    /// How long to wait before the next round: soon (with backoff) while a name fails, else
    /// `resolve_interval`; `None` when there is nothing left to do.
    pub fn next_delay(&self) -> Option<Duration> {
        if self.names.iter().any(|n| n.failing) {
            // A failing name is retried at its backoff, but not later than a refresh would.
            return Some(self.interval.map_or(self.retry, |i| i.min(self.retry)));
        }
        let resolvable = self.names.iter().any(|n| n.host_port.ip_addr().is_none());
        self.interval.filter(|_| resolvable)
    }

    /// Names whose last try failed, as `HOST:PORT`.
    pub fn unresolved(&self) -> Vec<String> {
        self.names.iter().filter(|n| n.failing).map(|n| n.host_port.to_string()).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[test]
    fn a_failing_name_is_retried_with_backoff_and_counted() {
        let answer = Arc::new(Mutex::new(None::<SocketAddr>));
        let given = Arc::clone(&answer);
        let resolver = Resolver::new(move |_, _| {
            given.lock().unwrap().map(|a| vec![a]).ok_or_else(|| std::io::Error::other("nxdomain"))
        });
        let own = ["127.0.0.1:1".parse().unwrap(); 2];
        let mut peers = PeerResolution::new(resolver, own, None);
        peers.add("peer", HostPort::parse("peer", "late.test:9").unwrap());
        peers.add("peer", HostPort::parse("peer", "127.0.0.1:2").unwrap());
        let first = peers.resolve();
        assert_eq!(first.new_seeds, ["127.0.0.1:2".parse().unwrap()]);
        assert_eq!((first.unresolved, first.failures), (vec!["late.test:9".to_owned()], 1));
        assert_eq!(peers.next_delay(), Some(FIRST_RETRY * 2));
        peers.resolve();
        assert_eq!(peers.next_delay(), Some(FIRST_RETRY * 4));
        *answer.lock().unwrap() = Some("127.0.0.1:3".parse().unwrap());
        let later = peers.resolve();
        assert_eq!(later.new_seeds, ["127.0.0.1:3".parse().unwrap()]);
        assert!(later.unresolved.is_empty());
        assert_eq!(later.failures, 2);
        // Nothing to refresh (no resolve_interval): the driver stops resolving.
        assert_eq!(peers.next_delay(), None);
    }
}
