//! The threaded driver: one background thread sleeping in `recv_from` with a read timeout
//! set to the node's next deadline; handle methods drive the node under the same lock and
//! wake the thread with an empty datagram to its own socket.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use swim_driver::{
    Bound, Clock, ClusterConfig, Driven, DriverNode, Error, Event, Lagged, PeerResolution, Watched,
    lock,
};
use tracing::{Span, debug, info_span, warn};

/// Where the driver thread publishes events: one bounded channel per stream.
type Outlet<T> = SyncSender<Result<T, Lagged>>;
type Node = Driven<Outlet<Event>, Outlet<Watched>>;

/// A started node: what handles share, and the threads to stop with the last of them.
pub(crate) struct Started {
    pub(crate) shared: Arc<Shared>,
    pub(crate) thread: JoinHandle<()>,
    /// Dropping it stops the resolver thread, if there is one.
    pub(crate) resolver: Option<Sender<()>>,
}

/// What the driver thread and every handle share.
#[derive(Debug)]
pub(crate) struct Shared {
    driven: Mutex<Node>,
    /// Notified after every step, for `wait_for` and `leave`.
    changed: Condvar,
    socket: UdpSocket,
    /// Where an empty datagram wakes the thread: the socket's own address.
    wake_addr: SocketAddr,
    /// The node's span: its name, on every log line of the thread and of handle calls.
    span: Span,
}

impl Shared {
    /// Starts the driver thread (and the resolver thread, if names need resolving again).
    pub(crate) fn start(
        bound: Bound,
        config: &ClusterConfig,
    ) -> Result<Started, Error> {
        let name = bound.node.local_member().name().to_owned();
        let span = info_span!("swim", node = %name);
        let shared = Arc::new(Shared {
            driven: Mutex::new(Driven::new(
                bound.node,
                Clock::start(),
                config.leave_timeout,
                bound.resolved,
            )),
            changed: Condvar::new(),
            socket: bound.socket,
            wake_addr: wake_addr(bound.local_addr),
            span,
        });
        let driver = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("swim {name}"))
            .spawn(move || driver.run())
            .map_err(Error::Spawn)?;
        let resolver = bound.resolution.and_then(|resolution| {
            let (stop, stopped) = mpsc::channel();
            let shared = Arc::clone(&shared);
            let spawned = std::thread::Builder::new()
                .name(format!("swim resolve {name}"))
                .spawn(move || shared.resolve(resolution, &stopped));
            // Without the thread the node runs with the names resolved at bind.
            spawned.map_err(|error| warn!(%error, "cannot start the resolver thread")).ok()?;
            Some(stop)
        });
        Ok(Started { shared, thread, resolver })
    }

    fn run(&self) {
        let _span = self.span.enter();
        let mut buffer = vec![0; 65536];
        loop {
            let wait = {
                let driven = self.lock();
                // `None`: stopped, or a leave is announced or out of time.
                let Some(deadline) = driven.next_wake() else { break };
                deadline.saturating_duration_since(driven.clock().now())
            };
            if !wait.is_zero() {
                if let Err(error) = self.socket.set_read_timeout(Some(wait)) {
                    warn!(%error, "cannot set the read timeout");
                }
                match self.socket.recv_from(&mut buffer) {
                    // An empty datagram carries nothing: it is a wake-up from a handle.
                    Ok((0, _)) => {}
                    Ok((len, from)) => {
                        self.lock().handle_datagram(from, &buffer[..len], |to, b| self.send(to, b));
                        self.changed.notify_all();
                        continue;
                    }
                    Err(error) if is_timeout(&error) => {}
                    Err(error) => warn!(%error, "receive failed"),
                }
            }
            // Stopped in the meantime: the loop ends above.
            let _ = self.lock().step(|_, _| (), |to, b| self.send(to, b));
            self.changed.notify_all();
        }
        self.lock().stop();
        self.changed.notify_all();
        debug!("driver thread stopped");
    }

    /// The resolver thread: resolves names again when due and joins through new addresses,
    /// until told to stop.
    fn resolve(&self, mut resolution: PeerResolution, stopped: &Receiver<()>) {
        let _span = self.span.enter();
        while let Some(delay) = resolution.next_delay() {
            if !matches!(stopped.recv_timeout(delay), Err(RecvTimeoutError::Timeout)) {
                return;
            }
            let resolved = resolution.resolve();
            self.lock().resolved(resolved, |to, b| self.send(to, b));
            self.wake();
        }
    }

    /// Runs `command` on the node and drives it, then wakes the thread so it sleeps until
    /// the new deadline rather than the old one.
    pub(crate) fn command<T>(
        &self,
        command: impl FnOnce(&mut DriverNode, swim_core::Instant) -> T,
    ) -> Result<T, Error> {
        let _span = self.span.enter();
        let out = self.lock().step(command, |to, b| self.send(to, b));
        self.changed.notify_all();
        self.wake();
        out
    }

    /// Starts a graceful leave; the thread stops once it is announced or out of time.
    pub(crate) fn begin_leave(&self) -> Result<(), Error> {
        let _span = self.span.enter();
        let out = self.lock().begin_leave(|to, b| self.send(to, b));
        self.wake();
        out
    }

    /// Stops the node at once, without announcing anything.
    pub(crate) fn abort(&self) {
        self.lock().stop();
        self.changed.notify_all();
        self.wake();
    }

    /// Blocks until `done` holds for the node, at most `timeout`: whether it held.
    pub(crate) fn wait(&self, timeout: Duration, mut done: impl FnMut(&Node) -> bool) -> bool {
        let end = std::time::Instant::now() + timeout;
        let mut driven = self.lock();
        while !done(&driven) {
            let Some(left) = end.checked_duration_since(std::time::Instant::now()) else {
                return false;
            };
            if driven.is_stopped() {
                return false;
            }
            let woken = self.changed.wait_timeout(driven, left);
            driven = woken.unwrap_or_else(PoisonError::into_inner).0;
        }
        true
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Node> {
        lock(&self.driven)
    }

    fn send(&self, to: SocketAddr, datagram: &[u8]) {
        if let Err(error) = self.socket.send_to(datagram, to) {
            debug!(%error, %to, "send failed");
        }
    }

    fn wake(&self) {
        if let Err(error) = self.socket.send_to(&[], self.wake_addr) {
            debug!(%error, "cannot wake the driver thread");
        }
    }
}

/// The bound address, as something a datagram can be sent to.
fn wake_addr(mut local: SocketAddr) -> SocketAddr {
    if local.ip().is_unspecified() {
        local.set_ip(match local.ip() {
            IpAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
            IpAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
        });
    }
    local
}

fn is_timeout(error: &std::io::Error) -> bool {
    matches!(error.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)
}
