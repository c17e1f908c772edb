//! The threaded driver: one background thread sleeping in `recv_from` with a read timeout
//! set to the node's next deadline.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use swim_core::{
    Bytes, ClusterMetadata, Event, Instant, Node, StatusDump, Watch, WatchFilter, Watched,
};
use tracing::{debug, warn};

use crate::config::{ClusterConfig, Error, Refresh, Snapshot};

/// Starts nodes on `std::net` sockets.
#[derive(Debug)]
pub struct Cluster;

impl Cluster {
    /// Resolves names, binds the socket, starts joining and spawns the driver thread.
    pub fn bind(config: ClusterConfig) -> Result<Handle, Error> {
        let bound = config.bind()?;
        let mut wake_addr = bound.local_addr;
        if wake_addr.ip().is_unspecified() {
            wake_addr.set_ip(match wake_addr.ip() {
                IpAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
                IpAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
            });
        }
        let shared = Arc::new(Shared {
            node: Mutex::new(bound.node),
            changed: Condvar::new(),
            socket: bound.socket,
            origin: std::time::Instant::now(),
            stop: AtomicBool::new(false),
            subscribers: Mutex::new(Vec::new()),
            watchers: Mutex::new(Vec::new()),
            wake_addr,
        });
        let driver = Arc::clone(&shared);
        let name = &config.protocol.local_name;
        let thread = std::thread::Builder::new()
            .name(format!("swim {name}"))
            .spawn(move || driver.run())
            .map_err(Error::Start)?;
        let mut resolver = None;
        if let Some(refresh) = bound.refresh {
            let (stop, stopped) = mpsc::channel();
            let shared = Arc::clone(&shared);
            let spawned = std::thread::Builder::new()
                .name(format!("swim resolve {name}"))
                .spawn(move || shared.refresh(refresh, &stopped));
            match spawned {
                Ok(_) => resolver = Some(stop),
                // The node runs without re-resolution, as with `resolve_interval: None`.
                Err(error) => warn!(%error, "cannot start the resolver thread"),
            }
        }
        Ok(Handle {
            shared,
            _resolver: resolver,
            thread: Some(thread),
            local_addr: bound.local_addr,
            event_capacity: config.event_capacity.max(1),
            leave_timeout: config.leave_timeout,
        })
    }
}

/// A subscriber missed this many events because it did not keep up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("lagged behind and missed {0} events")]
pub struct Lagged(pub u64);

/// A running node. Dropping it stops the node at once (without a leave announcement).
#[derive(Debug)]
pub struct Handle {
    shared: Arc<Shared>,
    /// Dropped with the handle, which stops the resolver thread.
    _resolver: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
    local_addr: SocketAddr,
    event_capacity: usize,
    leave_timeout: Duration,
}

impl Handle {
    /// Sets a local metadata value; it spreads from now on.
    pub fn set_metadata(
        &self,
        key: impl Into<String>,
        value: impl Into<Bytes>,
    ) -> Result<(), Error> {
        self.command(|node, now| node.set_metadata(now, key, value))?;
        Ok(())
    }

    /// Removes a local metadata value, returning it if it was set.
    pub fn remove_metadata(&self, key: &str) -> Result<Option<Bytes>, Error> {
        Ok(self.command(|node, now| node.remove_metadata(now, key))?)
    }

    /// Joins through more seeds, e.g. members added at run time.
    pub fn join(&self, seeds: impl IntoIterator<Item = SocketAddr>) {
        self.command(|node, now| node.join(now, seeds));
    }

    /// Leaves gracefully: announces the departure, waits until it has been sent as often as
    /// any fact (at most `leave_timeout`), then stops.
    pub fn leave(self) -> Result<(), Error> {
        self.command(|node, now| node.leave(now));
        let done = self.wait(self.leave_timeout, announced);
        done.map(drop).ok_or(Error::LeaveTimedOut(self.leave_timeout))
    }

    /// A new event stream. Events are never waited for: once `event_capacity` are unread,
    /// newer ones are lost and the receiver gets `Err(Lagged(n))` before the next one.
    /// `Event::Joined` is the readiness notification (PySyncObj's `onReady`).
    pub fn subscribe(&self) -> Receiver<Result<Event, Lagged>> {
        let (sender, receiver) = mpsc::sync_channel(self.event_capacity);
        let subscriber = Subscriber { sender, missed: 0 };
        lock(&self.shared.subscribers).push(subscriber);
        receiver
    }

    /// A stream of the events about members matching `filter` (names, statuses, a metadata
    /// key), each with the member as it was when the event was published. Bounded like
    /// [`Self::subscribe`]. Watching this node's name and a key gives pymap's listeners on
    /// local metadata changes.
    pub fn watch(&self, filter: WatchFilter) -> Receiver<Result<Watched, Lagged>> {
        let (sender, receiver) = mpsc::sync_channel(self.event_capacity);
        // Created under the node's lock, so it starts exactly where the published events do.
        let node = self.shared.lock();
        let watch = node.watch(filter);
        lock(&self.shared.watchers).push(Watcher { watch, out: Subscriber { sender, missed: 0 } });
        receiver
    }

    /// Blocks until `predicate` holds for the node's view (checked after every change), and
    /// returns that view; [`Error::TimedOut`] after `timeout`.
    pub fn wait_for(
        &self,
        mut predicate: impl FnMut(&Snapshot) -> bool,
        timeout: Duration,
    ) -> Result<Snapshot, Error> {
        let mut found = None;
        self.wait(timeout, |node| {
            let snapshot = Snapshot::of(node);
            let done = predicate(&snapshot);
            found = Some(snapshot);
            done
        })
        .ok_or(Error::TimedOut(timeout))?;
        found.ok_or(Error::Stopped)
    }

    /// Blocks until the node has heard from the cluster ([`Self::is_ready`]);
    /// [`Error::TimedOut`] after `timeout`.
    pub fn wait_ready(&self, timeout: Duration) -> Result<(), Error> {
        self.wait(timeout, |node| node.is_ready()).ok_or(Error::TimedOut(timeout))
    }

    /// Whether the node has heard from the cluster since it joined (PySyncObj's `isReady`).
    pub fn is_ready(&self) -> bool {
        self.shared.lock().is_ready()
    }

    /// A copy of the node's view: members (with status filters), counters, state.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot::of(&self.shared.lock())
    }

    /// The cluster metadata view now (see [`Snapshot::cluster_metadata`]).
    pub fn cluster_metadata(&self) -> ClusterMetadata {
        self.shared.lock().cluster_metadata()
    }

    /// A status dump now (see [`Snapshot::status_dump`]).
    pub fn status_dump(&self) -> StatusDump {
        self.shared.lock().status_dump()
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Runs a command, drives the node, and wakes the thread so it sleeps until the new
    /// deadline rather than the old one.
    fn command<T>(&self, command: impl FnOnce(&mut Node<ChaCha8Rng>, Instant) -> T) -> T {
        let out = self.shared.step(command);
        self.shared.wake();
        out
    }

    fn wait(
        &self,
        timeout: Duration,
        mut done: impl FnMut(&Node<ChaCha8Rng>) -> bool,
    ) -> Option<()> {
        let end = std::time::Instant::now() + timeout;
        let mut node = self.shared.lock();
        while !done(&node) {
            let left = end.checked_duration_since(std::time::Instant::now())?;
            let woken = self.shared.changed.wait_timeout(node, left);
            node = woken.unwrap_or_else(PoisonError::into_inner).0;
        }
        Some(())
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.wake();
        if let Some(thread) = self.thread.take() {
            // The thread only panics if the node does, which would be a swim-core bug.
            let _ = thread.join();
        }
    }
}

#[derive(Debug)]
struct Shared {
    node: Mutex<Node<ChaCha8Rng>>,
    /// Notified after every step, for `wait_for` and `leave`.
    changed: Condvar,
    socket: UdpSocket,
    origin: std::time::Instant,
    stop: AtomicBool,
    subscribers: Mutex<Vec<Subscriber<Event>>>,
    watchers: Mutex<Vec<Watcher>>,
    /// Where an empty datagram wakes the thread: the socket's own address.
    wake_addr: SocketAddr,
}

impl Shared {
    fn run(&self) {
        let mut buffer = vec![0; 65536];
        while !self.stop.load(Ordering::Acquire) {
            // `None`: the node left and has announced it; nothing more to do.
            let Some(deadline) = self.lock().poll_timeout() else {
                break;
            };
            let wait = deadline.saturating_duration_since(self.now());
            if !wait.is_zero() {
                if let Err(error) = self.socket.set_read_timeout(Some(wait)) {
                    warn!(%error, "cannot set the read timeout");
                }
                match self.socket.recv_from(&mut buffer) {
                    // An empty datagram carries nothing: it is a wake-up from a handle.
                    Ok((0, _)) => {}
                    Ok((len, from)) => {
                        self.step(|node, now| node.handle_datagram(now, from, &buffer[..len]));
                        continue;
                    }
                    Err(error) if is_timeout(&error) => {}
                    Err(error) => warn!(%error, "receive failed"),
                }
            }
            self.step(|_, _| ());
        }
        debug!("driver thread stopped");
        self.changed.notify_all();
    }

    /// One drive step: an input or command, expired timers, then every transmit and event.
    fn step<T>(&self, input: impl FnOnce(&mut Node<ChaCha8Rng>, Instant) -> T) -> T {
        let mut node = self.lock();
        let now = self.now();
        let out = input(&mut node, now);
        node.handle_timeout(now);
        while let Some(transmit) = node.poll_transmit() {
            let to = transmit.destination;
            if let Err(error) = self.socket.send_to(transmit.payload, to) {
                debug!(%error, %to, "send failed");
            }
        }
        // Published under the node's lock, so every subscriber sees events in order.
        let mut subscribers = lock(&self.subscribers);
        let mut watchers = lock(&self.watchers);
        while let Some(event) = node.poll_event() {
            subscribers.retain_mut(|subscriber| subscriber.offer(&event));
            let member = node.member_of(&event);
            watchers.retain_mut(|watcher| {
                let watched = || Watched { event: event.clone(), member: member.cloned() };
                !watcher.watch.offer(&event, member) || watcher.out.offer(&watched())
            });
        }
        drop((subscribers, watchers));
        self.changed.notify_all();
        out
    }

    /// The resolver thread: every `refresh.interval`, resolve names again and join through
    /// new addresses, until the handle is dropped.
    fn refresh(&self, mut refresh: Refresh, stopped: &Receiver<()>) {
        while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(refresh.interval) {
            let seeds = refresh.resolve();
            if !seeds.is_empty() {
                self.step(|node, now| Refresh::feed(node, now, seeds));
                self.wake();
            }
        }
    }

    fn wake(&self) {
        if let Err(error) = self.socket.send_to(&[], self.wake_addr) {
            debug!(%error, "cannot wake the driver thread");
        }
    }

    fn now(&self) -> Instant {
        Instant::from_micros(self.origin.elapsed().as_micros() as u64)
    }

    fn lock(&self) -> MutexGuard<'_, Node<ChaCha8Rng>> {
        lock(&self.node)
    }
}

#[derive(Debug)]
struct Subscriber<T> {
    sender: SyncSender<Result<T, Lagged>>,
    missed: u64,
}

#[derive(Debug)]
struct Watcher {
    watch: Watch,
    out: Subscriber<Watched>,
}

impl<T: Clone> Subscriber<T> {
    /// Delivers without blocking; `false` once the receiver is gone.
    fn offer(&mut self, event: &T) -> bool {
        if self.missed > 0 {
            match self.sender.try_send(Err(Lagged(self.missed))) {
                Ok(()) => self.missed = 0,
                Err(TrySendError::Full(_)) => {
                    self.missed += 1;
                    return true;
                }
                Err(TrySendError::Disconnected(_)) => return false,
            }
        }
        match self.sender.try_send(Ok(event.clone())) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                self.missed += 1;
                true
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }
}

/// A poisoned lock only means another thread panicked while holding it; the node's state is
/// still consistent between calls, so keep going.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn is_timeout(error: &std::io::Error) -> bool {
    matches!(error.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)
}

/// Whether a node that left is done announcing it (swim-core's `poll_timeout` says so,
/// including when no one is left to tell).
fn announced(node: &Node<ChaCha8Rng>) -> bool {
    node.poll_timeout().is_none()
}
