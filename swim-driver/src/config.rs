//! What drivers add to the core's [`Config`](swim_core::Config): names to resolve, where to
//! bind, what to advertise, the RNG seed, and binding a socket and a node from all that.

use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand_chacha::ChaCha8Rng;
use swim_core::rand_core::SeedableRng;
use swim_core::{Instant, Keyring, Node};

use crate::address::{HostPort, Resolver};
use crate::error::{Error, TransientConfigError};
use crate::resolve::{PeerResolution, Resolved};
use crate::stream::{StreamSettings, bind_listener};

/// How to start a node: the protocol settings plus what only a driver can do.
///
/// The socket binds to `bind_host:bind_port`, both defaulting from `local_name` when it is
/// `HOST:PORT` (the Python swim-protocol package's rule); other members are told the
/// `advertise` address, which defaults to `local_name` resolved, or to the bound address
/// when `local_name` is not `HOST:PORT`. A `local_name` with port 0 (`127.0.0.1:0`, the
/// usual way to let the OS pick a port in tests) binds an ephemeral port and the node is
/// named after it (`127.0.0.1:40123`), so two such nodes never share a name.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ClusterConfig {
    /// Protocol settings (name, keyring, metadata, timing); see [`swim_core::Config`] for
    /// each field's default. Its `local_addr` is replaced by the advertised address; its
    /// `peers` are used along with the resolved [`Self::peers`].
    pub protocol: swim_core::Config,
    /// Members to join through, as `HOST:PORT` (default none); the node joins through
    /// every address a name resolves to (of the socket's family, its own excepted). A name
    /// that does not resolve is retried in the background, logged and counted, while the
    /// others are used; a value that can never work (`999.1.1.1:1`, a port above 65535) is
    /// refused at bind.
    pub peers: Vec<String>,
    /// Host or IP to bind (the Python package's `udp-bind`); defaults to `local_name`'s
    /// host, else `0.0.0.0`.
    pub bind_host: Option<String>,
    /// Port to bind (`udp-bind-port`); defaults to `local_name`'s port, else the
    /// [`Self::discovery`] service's, else 0 (any free port).
    pub bind_port: Option<u16>,
    /// Address other members send to, when it differs from `local_name` (NAT, containers).
    /// Default: none.
    pub advertise: Option<SocketAddr>,
    /// Seeds the node's RNG, for reproducible runs; by default (`None`) the OS provides
    /// the seed.
    pub rng_seed: Option<u64>,
    /// Events buffered per subscriber or watch (default 1024); a subscriber further behind
    /// loses newer events and is told how many with `Err(Lagged(n))`. As many events are
    /// kept from the node's start for the first subscriber.
    pub event_capacity: usize,
    /// Longest a graceful leave waits for its announcement to be sent (default 3 s), be it
    /// asked for with `leave` or started by dropping the last handle.
    pub leave_timeout: Duration,
    /// Suggested retry delay carried by a [`TransientConfigError`] (default 60 s, the Python
    /// package's).
    pub resolve_wait_hint: Duration,
    /// The Python package's `discovery=True`: a service name, `HOST:PORT`, resolving to
    /// every member's address. This node's own address must be among them (until it is,
    /// binding fails with a [`TransientConfigError`]); the others are peers. When
    /// `local_name` is not `HOST:PORT` and no `advertise` is set, the address found is
    /// advertised. Default: none.
    pub discovery: Option<String>,
    /// How long resolved names are trusted (PySyncObj's `dnsCacheTime`): the driver
    /// resolves [`Self::peers`] and [`Self::discovery`] again this often and joins through
    /// any address that is new. `None` resolves once (names that fail are still retried
    /// until they resolve). Default 60 s.
    pub resolve_interval: Option<Duration>,
    /// Turns `HOST`, `PORT` into addresses: the system's resolver unless replaced (tests,
    /// service registries).
    pub resolver: Resolver,
    /// How stream messages travel (timeouts, connection limit). Streams themselves are on
    /// when `protocol.streams` is (the drivers' default): a TCP listener is then bound on
    /// the UDP socket's address.
    pub streams: StreamSettings,
}

/// A bound socket and a node ready to be driven with it.
#[derive(Debug)]
#[non_exhaustive]
pub struct Bound {
    /// The socket, blocking, without timeouts.
    pub socket: UdpSocket,
    /// The node, created at [`Instant::ZERO`] (the driver's origin) and already joining.
    pub node: Node<ChaCha8Rng>,
    /// Random numbers for `find`, a stream apart from the node's: asking a question must
    /// not change the protocol's choices.
    pub finder: ChaCha8Rng,
    /// The address the socket is bound to.
    pub local_addr: SocketAddr,
    /// Names to resolve again or retry in the background, if any.
    pub resolution: Option<PeerResolution>,
    /// What resolving the names at bind found.
    pub resolved: Resolved,
    /// The TCP listener for stream messages, on the socket's address (with streams on).
    pub listener: Option<TcpListener>,
}

impl ClusterConfig {
    /// A configuration with the core's defaults and the driver defaults above; replay
    /// protection is on, with `protocol.epoch_ms` taken from the system clock now.
    pub fn new(local_name: impl Into<String>, keyring: Keyring) -> Self {
        let placeholder = SocketAddr::from(([0, 0, 0, 0], 0));
        let mut protocol = swim_core::Config::new(local_name, placeholder, keyring);
        // The drivers carry stream messages over TCP.
        protocol.streams = true;
        let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        protocol.epoch_ms = u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX);
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
            streams: StreamSettings::default(),
        }
    }

    /// Checks every setting, resolves names (blocking DNS), binds the socket and builds a
    /// node that has started joining through its peers: the driver only has to drain it
    /// and feed it.
    pub fn bind(&self) -> Result<Bound, Error> {
        self.protocol.validate()?;
        let named = self.named_address()?;
        let peers: Vec<HostPort> =
            self.peers.iter().map(|p| HostPort::parse("peer", p)).collect::<Result<_, _>>()?;
        let service = self.discovery.as_deref().map(|d| HostPort::parse("discovery", d));
        let service = service.transpose()?;
        let (socket, local_addr, listener) = self.bind_sockets(named.as_ref(), service.as_ref())?;
        let mut advertise = match (self.advertise, &named) {
            (Some(addr), _) => Some(addr),
            (None, Some(name)) => Some(self.resolve(name, Some(local_addr))?[0]),
            (None, None) => None,
        };
        if let Some(advertise) = advertise.as_mut().filter(|a| a.port() == 0) {
            advertise.set_port(local_addr.port());
        }
        let discovered = match &service {
            Some(service) => Some(self.discover(service, local_addr, advertise)?),
            None => None,
        };
        let advertise = advertise.or(discovered.as_ref().map(|d| d.0)).unwrap_or(local_addr);
        self.check_advertised(advertise, named.is_some())?;
        let mut protocol = self.protocol.clone();
        protocol.local_addr = advertise;
        if let Some(name) = named.filter(|n| n.port == 0) {
            // Port 0 means "any": the node is named after the port it got.
            protocol.local_name = HostPort { port: advertise.port(), ..name }.to_string();
        }
        protocol.peers.retain(|peer| *peer != advertise);
        let mut resolution = PeerResolution::new(
            self.resolver.clone(),
            [advertise, local_addr],
            self.resolve_interval,
        );
        resolution.know(protocol.peers.iter().copied());
        if let Some((_, others)) = discovered {
            resolution.know(others.iter().copied());
            protocol.peers.extend(others);
        }
        service.into_iter().for_each(|s| resolution.add("discovery", s));
        peers.into_iter().for_each(|p| resolution.add("peer", p));
        let resolved = resolution.resolve();
        protocol.peers.extend(&resolved.new_seeds);
        // The wall clock at the node's start, read now: binding may have waited (DNS).
        protocol.epoch_ms = swim_core::SystemClock::wall_ms();
        let rng = self.rng()?;
        let mut finder = rng.clone();
        finder.set_stream(1);
        let mut node = Node::new(protocol, rng, Instant::ZERO)?;
        node.join(Instant::ZERO, []);
        let resolution = resolution.next_delay().is_some().then_some(resolution);
        Ok(Bound { socket, node, finder, local_addr, resolution, resolved, listener })
    }

    /// `local_name` as an address, if it is `HOST:PORT`; an error if it looks like one but
    /// can never work.
    fn named_address(&self) -> Result<Option<HostPort>, Error> {
        let name = &self.protocol.local_name;
        match name.contains(':') {
            true => HostPort::parse("local_name", name).map(Some),
            false => Ok(None),
        }
    }

    /// Binds the UDP socket and, with streams, the TCP listener on the same address. An
    /// ephemeral port is tried again (up to 8 times) if its TCP twin is taken.
    fn bind_sockets(
        &self,
        named: Option<&HostPort>,
        service: Option<&HostPort>,
    ) -> Result<(UdpSocket, SocketAddr, Option<TcpListener>), Error> {
        let mut attempts = 0;
        loop {
            let (socket, local_addr) = self.bind_socket(named, service)?;
            if !self.protocol.streams {
                return Ok((socket, local_addr, None));
            }
            match bind_listener(local_addr) {
                Ok(listener) => return Ok((socket, local_addr, Some(listener))),
                Err(_) if attempts < 8 && self.bind_port(named, service) == 0 => attempts += 1,
                Err(source) => return Err(Error::BindStream { addr: local_addr, source }),
            }
        }
    }

    /// The port to bind: `bind_port`, else `local_name`'s, else the discovery service's
    /// (every member listens on the service's port, as in the Python package), else 0.
    fn bind_port(&self, named: Option<&HostPort>, service: Option<&HostPort>) -> u16 {
        let port = (self.bind_port).or(named.map(|n| n.port)).or(service.map(|s| s.port));
        port.unwrap_or(0)
    }

    /// Binds `bind_host:bind_port` (see the fields for their defaults).
    fn bind_socket(
        &self,
        named: Option<&HostPort>,
        service: Option<&HostPort>,
    ) -> Result<(UdpSocket, SocketAddr), Error> {
        let host = (self.bind_host.as_deref()).or(named.map(|n| n.host.as_str()));
        let host = host.unwrap_or("0.0.0.0").to_owned();
        let bind = HostPort { host, port: self.bind_port(named, service) };
        let bind_addr = self.resolve(&bind, None)?[0];
        let bind_error = |source| Error::Bind { addr: bind_addr, source };
        let socket = UdpSocket::bind(bind_addr).map_err(bind_error)?;
        let local_addr = socket.local_addr().map_err(bind_error)?;
        Ok((socket, local_addr))
    }

    /// Refuses an advertised address no one can send to, blaming the setting it came from.
    fn check_advertised(&self, advertise: SocketAddr, named: bool) -> Result<(), Error> {
        if !advertise.ip().is_unspecified() {
            return Ok(());
        }
        let (field, value, reason) = match (self.advertise, named) {
            (Some(addr), _) => ("advertise", addr.to_string(), "other members cannot send to it"),
            (None, true) => (
                "local_name",
                self.protocol.local_name.clone(),
                "other members cannot send to an unspecified address: set advertise",
            ),
            (None, false) => (
                "local_name",
                self.protocol.local_name.clone(),
                "is not HOST:PORT and the socket listens on every address, so which one \
                 other members should use is unknown: name the node HOST:PORT, or set \
                 bind_host or advertise",
            ),
        };
        Err(Error::InvalidAddress { field, value, reason })
    }

    /// Resolves the discovery `service` and finds this node among its addresses: the one
    /// equal to `advertise` or the bound address, else the one on the bound port whose IP
    /// is an address of this host. Returns it and every other address.
    fn discover(
        &self,
        service: &HostPort,
        local_addr: SocketAddr,
        advertise: Option<SocketAddr>,
    ) -> Result<(SocketAddr, Vec<SocketAddr>), Error> {
        let addrs = self.resolve(service, Some(local_addr))?;
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
            return Err(self.transient(service, missing).into());
        };
        Ok((own, addrs.into_iter().filter(|a| *a != own).collect()))
    }

    /// Every address `name` resolves to, of `family_of`'s family if given.
    fn resolve(
        &self,
        name: &HostPort,
        family_of: Option<SocketAddr>,
    ) -> Result<Vec<SocketAddr>, TransientConfigError> {
        let resolved = match name.ip_addr() {
            Some(addr) => Ok(vec![addr]),
            None => self.resolver.resolve(&name.host, name.port),
        };
        let addrs: Vec<SocketAddr> = (resolved.map_err(|e| self.transient(name, e))?)
            .into_iter()
            .filter(|addr| family_of.is_none_or(|f| f.is_ipv4() == addr.is_ipv4()))
            .collect();
        if addrs.is_empty() {
            let none = io::Error::new(io::ErrorKind::NotFound, "no address of a usable family");
            return Err(self.transient(name, none));
        }
        Ok(addrs)
    }

    fn transient(&self, name: &HostPort, source: io::Error) -> TransientConfigError {
        TransientConfigError { name: name.to_string(), wait_hint: self.resolve_wait_hint, source }
    }

    fn rng(&self) -> Result<ChaCha8Rng, Error> {
        Ok(match self.rng_seed {
            Some(seed) => ChaCha8Rng::seed_from_u64(seed),
            None => {
                let mut seed = [0; 32];
                getrandom::fill(&mut seed).map_err(Error::Random)?;
                ChaCha8Rng::from_seed(seed)
            }
        })
    }
}

/// Whether `ip` is an address of this host: a socket can be bound to it.
fn is_local_ip(ip: IpAddr) -> bool {
    UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
