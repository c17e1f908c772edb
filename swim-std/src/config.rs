//! What drivers add to the core's [`Config`](swim_core::Config): names to resolve, where to
//! bind, what to advertise, the RNG seed. Shared by swim-std and swim-tokio, so name
//! resolution and node setup are written once.

use std::collections::BTreeSet;
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand_chacha::ChaCha8Rng;
use swim_core::rand_core::Rng;
use swim_core::rand_core::SeedableRng;
use swim_core::{
    ClusterMetadata, Counters, Instant, Keyring, Member, Node, StatusDump, StatusFilter,
};
use tracing::debug;

/// How to start a node: the protocol settings plus what only a driver can do.
///
/// The seed's rules: the socket binds to `bind_host:bind_port`, both defaulting from
/// `local_name` when it is `HOST:PORT`; other members are told the `advertise` address,
/// which defaults to `local_name` resolved (a port of 0 meaning the bound port), or to the
/// bound address when `local_name` is not `HOST:PORT`.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ClusterConfig {
    /// Protocol settings (name, secret, metadata, timing). Its `local_addr` is replaced by
    /// the advertised address; its `peers` are used along with the resolved [`Self::peers`].
    pub protocol: swim_core::Config,
    /// Members to join through, as `HOST:PORT`; every address a name resolves to (of the
    /// socket's family, this node's own excepted) is a seed, like the seed's discovery.
    pub peers: Vec<String>,
    /// Host or IP to bind (the seed's `udp-bind`); defaults to `local_name`'s host.
    pub bind_host: Option<String>,
    /// Port to bind (the seed's `udp-bind-port`); defaults to `local_name`'s port, else the
    /// [`Self::discovery`] service's, else 0.
    pub bind_port: Option<u16>,
    /// Address other members send to, when it differs from `local_name` (NAT, containers).
    pub advertise: Option<SocketAddr>,
    /// Seeds the node's RNG, for reproducible runs; by default the OS provides the seed.
    pub rng_seed: Option<u64>,
    /// Events buffered per subscriber; a subscriber further behind loses events and is told.
    pub event_capacity: usize,
    /// Longest a graceful leave waits for its announcement to be sent (default 3 s).
    pub leave_timeout: Duration,
    /// Suggested retry delay carried by a [`TransientConfigError`] (default 60 s, the seed's).
    pub resolve_wait_hint: Duration,
    /// The seed's `discovery=True`: a service name, `HOST:PORT`, resolving to every
    /// member's address. This node's own address must be among them (until it is, binding
    /// fails with a [`TransientConfigError`]); the others are peers. When `local_name` is
    /// not `HOST:PORT` and no `advertise` is set, the address found is advertised.
    pub discovery: Option<String>,
    /// How long resolved names are trusted (PySyncObj's `dnsCacheTime`): the driver
    /// resolves [`Self::peers`] and [`Self::discovery`] again this often and joins through
    /// any address that is new (`Node::join` contacts it at once; readiness is kept).
    /// `None` resolves once, at bind. Default 60 s.
    pub resolve_interval: Option<Duration>,
    /// Turns `HOST`, `PORT` into addresses: the system's resolver unless replaced (tests,
    /// service registries).
    pub resolver: Resolver,
}

impl ClusterConfig {
    /// A configuration with the core's defaults and nothing to resolve yet; replay
    /// protection is on, with `protocol.epoch_ms` taken from the system clock now.
    pub fn new(local_name: impl Into<String>, secret: Keyring) -> Self {
        let placeholder = SocketAddr::from(([0, 0, 0, 0], 0));
        let mut protocol = swim_core::Config::new(local_name, placeholder, secret);
        let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        protocol.epoch_ms = since_epoch.as_millis() as u64;
        ClusterConfig {
            protocol,
            peers: Vec::new(),
            bind_host: None,
            bind_port: None,
            advertise: None,
            rng_seed: None,
            event_capacity: 1024,
            leave_timeout: Duration::from_secs(3),
            resolve_wait_hint: Duration::from_secs(60),
            discovery: None,
            resolve_interval: Some(Duration::from_secs(60)),
            resolver: Resolver::default(),
        }
    }

    /// Resolves names (blocking DNS), binds the socket and builds a node that has started
    /// joining through its peers: the driver only has to drain it and feed it.
    pub fn bind(&self) -> Result<Bound, Error> {
        self.protocol.validate()?;
        let named = split_host_port(&self.protocol.local_name);
        let bind_host =
            (self.bind_host.as_deref()).or(named.map(|(host, _)| host)).unwrap_or("0.0.0.0");
        // With discovery every member listens on the service's port, as in the seed.
        let service_port = self.discovery.as_deref().and_then(split_host_port).map(|(_, p)| p);
        let bind_port =
            self.bind_port.or(named.map(|(_, port)| port)).or(service_port).unwrap_or(0);
        let bind_addr = self.resolve(bind_host, bind_port, None)?[0];
        let bind_error = |source| Error::Bind { addr: bind_addr, source };
        let socket = UdpSocket::bind(bind_addr).map_err(bind_error)?;
        let local_addr = socket.local_addr().map_err(bind_error)?;
        let mut advertise = match (self.advertise, named) {
            (Some(addr), _) => Some(addr),
            (None, Some((host, port))) => Some(self.resolve(host, port, Some(local_addr))?[0]),
            (None, None) => None,
        };
        if let Some(advertise) = advertise.as_mut().filter(|a| a.port() == 0) {
            advertise.set_port(local_addr.port());
        }
        let discovered = match &self.discovery {
            Some(service) => Some(self.discover(service, local_addr, advertise)?),
            None => None,
        };
        let advertise = advertise.or(discovered.as_ref().map(|d| d.0)).unwrap_or(local_addr);
        if advertise.ip().is_unspecified() {
            return Err(Error::InvalidAddress {
                field: "advertise",
                value: advertise.to_string(),
                reason: "other members cannot send to an unspecified address",
            });
        }
        let mut protocol = self.protocol.clone();
        protocol.local_addr = advertise;
        protocol.peers.retain(|peer| *peer != advertise);
        let own = [advertise, local_addr];
        let mut seeds = discovered.map(|d| d.1).unwrap_or_default();
        for peer in &self.peers {
            let (host, port) = self.peer_host_port(peer)?;
            seeds.extend(self.resolve(host, port, Some(local_addr))?);
        }
        for addr in seeds {
            if !own.contains(&addr) && !protocol.peers.contains(&addr) {
                protocol.peers.push(addr);
            }
        }
        let refresh = (self.resolve_interval)
            .filter(|_| self.discovery.is_some() || !self.peers.is_empty())
            .map(|interval| Refresh {
                config: self.clone(),
                own,
                known: protocol.peers.iter().copied().collect(),
                interval,
            });
        let rng = match self.rng_seed {
            Some(seed) => ChaCha8Rng::seed_from_u64(seed),
            None => {
                let mut seed = [0; 32];
                getrandom::fill(&mut seed).map_err(Error::Random)?;
                ChaCha8Rng::from_seed(seed)
            }
        };
        let mut node = Node::new(protocol, rng, Instant::ZERO)?;
        node.join(Instant::ZERO, []);
        Ok(Bound { socket, node, local_addr, refresh })
    }

    /// `peer` split into host and port, or why it cannot be used.
    fn peer_host_port<'a>(&self, peer: &'a str) -> Result<(&'a str, u16), Error> {
        split_host_port(peer).ok_or_else(|| Error::InvalidAddress {
            field: "peer",
            value: peer.to_owned(),
            reason: "expected HOST:PORT",
        })
    }

    /// Resolves the discovery `service` and finds this node among its addresses: the one
    /// equal to `advertise` or the bound address, else the one on the bound port whose IP
    /// is an address of this host. Returns it and every other address.
    fn discover(
        &self,
        service: &str,
        local_addr: SocketAddr,
        advertise: Option<SocketAddr>,
    ) -> Result<(SocketAddr, Vec<SocketAddr>), Error> {
        let (host, port) = split_host_port(service).ok_or_else(|| Error::InvalidAddress {
            field: "discovery",
            value: service.to_owned(),
            reason: "expected HOST:PORT",
        })?;
        let addrs = self.resolve(host, port, Some(local_addr))?;
        let exact = addrs.iter().find(|a| Some(**a) == advertise || **a == local_addr);
        let own = exact.or_else(|| {
            addrs.iter().find(|a| {
                a.port() == local_addr.port()
                    && (local_addr.ip().is_unspecified() || a.ip() == local_addr.ip())
                    && advertise.is_none()
                    && is_local_ip(a.ip())
            })
        });
        let Some(own) = own.copied() else {
            let us = advertise.unwrap_or(local_addr);
            let missing = io::Error::new(
                io::ErrorKind::NotFound,
                format!("this node ({us}) is not yet among its {} addresses", addrs.len()),
            );
            return Err(self.transient(service.to_owned(), missing).into());
        };
        Ok((own, addrs.into_iter().filter(|a| *a != own).collect()))
    }

    /// Every address [`Self::peers`] and [`Self::discovery`] name now, except `own`.
    /// Names that fail to resolve are skipped (and logged): the others still count.
    pub fn resolve_seeds(&self, own: &[SocketAddr]) -> Vec<SocketAddr> {
        let family = own.first().copied();
        let names = self.discovery.iter().chain(&self.peers);
        let mut seeds = Vec::new();
        for name in names {
            let Some((host, port)) = split_host_port(name) else { continue };
            match self.resolve(host, port, family) {
                Ok(addrs) => seeds.extend(addrs.into_iter().filter(|a| !own.contains(a))),
                Err(error) => debug!(%error, "re-resolving a peer failed"),
            }
        }
        seeds
    }

    fn transient(&self, name: String, source: io::Error) -> TransientConfigError {
        TransientConfigError { name, wait_hint: self.resolve_wait_hint, source }
    }

    /// Every address `host:port` resolves to, of `family_of`'s family if given. Any failure
    /// may pass (DNS not ready, a service not yet started), as the seed's discovery assumes.
    fn resolve(
        &self,
        host: &str,
        port: u16,
        family_of: Option<SocketAddr>,
    ) -> Result<Vec<SocketAddr>, TransientConfigError> {
        let transient = |source| self.transient(format!("{host}:{port}"), source);
        let addrs: Vec<SocketAddr> = (self.resolver.resolve(host, port))
            .map_err(transient)?
            .into_iter()
            .filter(|addr| family_of.is_none_or(|f| f.is_ipv4() == addr.is_ipv4()))
            .collect();
        if addrs.is_empty() {
            let none = io::Error::new(io::ErrorKind::NotFound, "no address of a usable family");
            return Err(transient(none));
        }
        Ok(addrs)
    }
}

/// Whether `ip` is an address of this host: a socket can be bound to it.
fn is_local_ip(ip: IpAddr) -> bool {
    UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

type ResolveFn = dyn Fn(&str, u16) -> io::Result<Vec<SocketAddr>> + Send + Sync;

/// Turns a host and port into addresses. [`Resolver::default`] asks the system (DNS,
/// `/etc/hosts`); [`Resolver::new`] plugs in anything else.
#[derive(Clone)]
pub struct Resolver(Arc<ResolveFn>);

impl Resolver {
    /// A resolver calling `resolve(host, port)`. It runs on a blocking thread.
    pub fn new(
        resolve: impl Fn(&str, u16) -> io::Result<Vec<SocketAddr>> + Send + Sync + 'static,
    ) -> Self {
        Resolver(Arc::new(resolve))
    }

    /// Every address `host:port` resolves to.
    pub fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        (self.0)(host, port)
    }
}

impl Default for Resolver {
    fn default() -> Self {
        Resolver::new(|host, port| Ok((host, port).to_socket_addrs()?.collect()))
    }
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Resolver")
    }
}

/// What a driver needs to re-resolve names every `interval` and feed new addresses to its
/// node as seeds (see [`ClusterConfig::resolve_interval`]).
#[derive(Clone, Debug)]
pub struct Refresh {
    config: ClusterConfig,
    own: [SocketAddr; 2],
    known: BTreeSet<SocketAddr>,
    /// How often to resolve again.
    pub interval: Duration,
}

impl Refresh {
    /// Resolves the names again (blocking) and returns the addresses not seen before.
    pub fn resolve(&mut self) -> Vec<SocketAddr> {
        let seeds = self.config.resolve_seeds(&self.own);
        seeds.into_iter().filter(|addr| self.known.insert(*addr)).collect()
    }

    /// Joins `node` through those of `seeds` that are not already a member's address:
    /// [`Node::join`] restarts joining, so it is called only for news.
    pub fn feed<R: Rng>(node: &mut Node<R>, now: Instant, seeds: Vec<SocketAddr>) {
        let known: BTreeSet<SocketAddr> = node.members().map(Member::addr).collect();
        let new: Vec<SocketAddr> = seeds.into_iter().filter(|a| !known.contains(a)).collect();
        if !new.is_empty() {
            debug!(seeds = ?new, "joining through newly resolved addresses");
            node.join(now, new);
        }
    }
}

/// Splits `HOST:PORT` (IPv6 hosts in brackets) into the host, brackets removed, and port.
pub fn split_host_port(name: &str) -> Option<(&str, u16)> {
    let (host, port) = name.rsplit_once(':')?;
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.strip_suffix(']')?,
        None if host.contains(':') => return None,
        None => host,
    };
    let port = port.parse().ok()?;
    (!host.is_empty()).then_some((host, port))
}

/// A bound socket and a node ready to be driven with it.
#[derive(Debug)]
#[non_exhaustive]
pub struct Bound {
    /// The socket, blocking, without timeouts.
    pub socket: UdpSocket,
    /// The node, created at [`Instant::ZERO`] (the driver's origin) and already joining.
    pub node: Node<ChaCha8Rng>,
    /// The address the socket is bound to.
    pub local_addr: SocketAddr,
    /// Names to resolve again periodically, if any and if asked to.
    pub refresh: Option<Refresh>,
}

/// Why a node could not be started, or a command not carried out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The protocol configuration is invalid. Nothing was started.
    #[error(transparent)]
    Config(#[from] swim_core::ConfigError),
    /// An address or name that cannot be used. Nothing was started.
    #[error("invalid {field} `{value}`: {reason}")]
    InvalidAddress {
        /// Which setting.
        field: &'static str,
        /// Its value.
        value: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A name did not resolve; retrying later may succeed. Nothing was started.
    #[error(transparent)]
    Transient(#[from] TransientConfigError),
    /// The socket could not be bound (e.g. the port is in use). Nothing was started.
    #[error("cannot bind UDP socket to {addr}: {source}")]
    Bind {
        /// The address tried.
        addr: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// The driver thread could not be started. Nothing was started.
    #[error("cannot start the driver thread: {0}")]
    Start(io::Error),
    /// The OS gave no randomness for the RNG seed. Nothing was started.
    #[error("cannot seed the RNG from the OS: {0}")]
    Random(getrandom::Error),
    /// The metadata change was refused; the metadata is unchanged.
    #[error(transparent)]
    Metadata(#[from] swim_core::MetadataError),
    /// A graceful leave did not finish announcing within `leave_timeout`; the node stopped.
    #[error("the leave announcement did not finish within {0:?}")]
    LeaveTimedOut(Duration),
    /// The node is no longer running.
    #[error("the node has stopped")]
    Stopped,
    /// What was waited for did not happen in time; nothing changed.
    #[error("timed out after {0:?}")]
    TimedOut(Duration),
}

/// A name failed to resolve, which may pass: retry after [`Self::wait_hint`].
#[derive(Debug, thiserror::Error)]
#[error("cannot resolve `{name}`: {source} (may be temporary; retry in {wait_hint:?})")]
pub struct TransientConfigError {
    name: String,
    wait_hint: Duration,
    source: io::Error,
}

impl TransientConfigError {
    /// The `HOST:PORT` that failed.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How long to wait before retrying.
    pub fn wait_hint(&self) -> Duration {
        self.wait_hint
    }
}

/// A copy of a node's view at one moment: members in name order, counters, state.
#[derive(Clone, Debug)]
pub struct Snapshot {
    members: Vec<Member>,
    local: usize,
    counters: Counters,
    joined: bool,
    left: bool,
    health: u32,
}

impl Snapshot {
    /// Copies what `node` knows.
    pub fn of<R: Rng>(node: &Node<R>) -> Self {
        // The core iterates in no particular order; lookups below rely on name order.
        let mut members: Vec<Member> = node.members().cloned().collect();
        members.sort_unstable_by(|a, b| a.name().cmp(b.name()));
        let local_name = node.local_member().name();
        Snapshot {
            local: members.iter().position(|m| m.name() == local_name).unwrap_or(0),
            members,
            counters: node.counters().clone(),
            joined: node.is_joined(),
            left: node.has_left(),
            health: node.health(),
        }
    }

    /// Every member, this node included, in name order.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// Members whose status matches `filter`, this node included if it matches.
    pub fn members_with(&self, filter: StatusFilter) -> impl Iterator<Item = &Member> + '_ {
        self.members.iter().filter(move |m| filter.matches(m.status()))
    }

    /// A member by name.
    pub fn member(&self, name: &str) -> Option<&Member> {
        let found = self.members.binary_search_by(|m| m.name().cmp(name));
        found.ok().map(|i| &self.members[i])
    }

    /// This node as a member.
    pub fn local_member(&self) -> &Member {
        &self.members[self.local]
    }

    /// The node's counters, dropped datagrams included.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Whether the node has heard from another member since it joined.
    pub fn is_joined(&self) -> bool {
        self.joined
    }

    /// Whether the node left the cluster.
    pub fn has_left(&self) -> bool {
        self.left
    }

    /// Whether the node has heard from the cluster (PySyncObj's `isReady`): the same as
    /// [`Self::is_joined`]; the event stream announces it with `Event::Joined`.
    pub fn is_ready(&self) -> bool {
        self.joined
    }

    /// The cluster metadata view: local metadata, remote metadata by key over the
    /// available members whose metadata is known, `get_all`.
    pub fn cluster_metadata(&self) -> ClusterMetadata {
        ClusterMetadata::from_members(self.local_member().name(), &self.members)
    }

    /// A status dump (serialisable): members, statuses, incarnations, metadata sizes,
    /// counters.
    pub fn status_dump(&self) -> StatusDump {
        let local = self.local_member().name();
        let mut dump = StatusDump::from_members(local, &self.members, &self.counters);
        dump.ready = self.joined;
        dump.left = self.left;
        dump.health = self.health;
        dump
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_names_split() {
        assert_eq!(split_host_port("127.0.0.1:2001"), Some(("127.0.0.1", 2001)));
        assert_eq!(split_host_port("[::1]:7"), Some(("::1", 7)));
        assert_eq!(split_host_port("db.local:0"), Some(("db.local", 0)));
        for bad in ["node-1", ":2001", "::1", "host:port", "h:70000", "[::1:1"] {
            assert_eq!(split_host_port(bad), None, "{bad}");
        }
    }

    #[test]
    fn binds_from_the_name_and_advertises_the_bound_port() {
        let config = ClusterConfig::new("127.0.0.1:0", Keyring::new("s"));
        let bound = config.bind().unwrap();
        assert_eq!(bound.node.config().local_addr, bound.local_addr);
        assert_ne!(bound.local_addr.port(), 0);
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
        let free = || UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
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
        let mut refresh = bound.refresh.unwrap();
        assert!(refresh.resolve().is_empty(), "nothing new");
        // Not among the addresses (another port): transient, with the wait hint.
        config.discovery = Some(format!("svc:{}", theirs.port() ^ 1));
        config.bind_port = Some(0);
        let Err(Error::Transient(error)) = config.bind() else { panic!("not transient") };
        assert_eq!(error.wait_hint(), config.resolve_wait_hint);
        config.discovery = Some("svc".into());
        assert!(matches!(config.bind(), Err(Error::InvalidAddress { field: "discovery", .. })));
    }

    #[test]
    fn unusable_addresses_are_refused() {
        let mut config = ClusterConfig::new("node", Keyring::new("s"));
        config.resolve_interval = None;
        let error = config.bind().unwrap_err();
        assert!(matches!(error, Error::InvalidAddress { field: "advertise", .. }));
        config.bind_host = Some("127.0.0.1".into());
        config.peers = vec!["nowhere".into()];
        let error = config.bind().unwrap_err();
        assert!(matches!(error, Error::InvalidAddress { field: "peer", .. }), "{error}");
        config.peers = vec!["no-such-host.invalid:1".into()];
        let Err(Error::Transient(error)) = config.bind() else {
            panic!("an unresolvable peer is transient")
        };
        assert_eq!(error.wait_hint(), Duration::from_secs(60));
        assert_eq!(error.name(), "no-such-host.invalid:1");
    }
}
