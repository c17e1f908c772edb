//! A tokio driver for [`swim_core`]: one task per node selects over the socket, a sleep
//! until the node's next deadline, and a command channel, and after every input sends every
//! transmit and broadcasts every event. No protocol decision is made here; configuration,
//! name resolution and discovery are swim-std's ([`ClusterConfig`]), the application views
//! ([`ClusterMetadata`], [`WatchFilter`], [`StatusDump`]) swim-core's, re-exported here.
//!
//! ```no_run
//! use std::time::Duration;
//! use swim_core::{Keyring, Status};
//! use swim_tokio::{Cluster, ClusterConfig};
//!
//! # async fn run() -> Result<(), swim_tokio::Error> {
//! let mut config = ClusterConfig::new("127.0.0.1:2001", Keyring::new("shared secret"));
//! config.peers.push("127.0.0.1:2002".into());
//! let node = Cluster::bind(config).await?;
//! node.set_metadata("role", "cache").await?;
//! let mut events = node.subscribe();
//! let online = |view: &swim_tokio::Snapshot| {
//!     view.member("127.0.0.1:2002").is_some_and(|m| m.status() == Status::Online)
//! };
//! node.wait_for(online, Duration::from_secs(10)).await?;
//! while let Ok(event) = events.try_recv() {
//!     println!("{event:?}");
//! }
//! node.leave().await
//! # }
//! ```
//!
//! The cluster metadata view and a watch (the README's example):
//!
//! ```no_run
//! use std::time::Duration;
//! use swim_core::Keyring;
//! use swim_tokio::{Cluster, ClusterConfig, WatchFilter};
//!
//! # async fn run() -> Result<(), swim_tokio::Error> {
//! let mut config = ClusterConfig::new("127.0.0.1:2001", Keyring::new("shared secret"));
//! config.peers.push("127.0.0.1:2002".into());
//! let node = Cluster::bind(config).await?;
//! node.set_metadata("role", "cache").await?;
//! node.wait_ready(Duration::from_secs(10)).await?; // heard from the cluster
//!
//! let view = node.cluster_metadata();
//! println!("mine: {:?}", view.local().get("role"));
//! for (member, role) in view.remote_values("role") {
//!     println!("{member} is a {role:?}");
//! }
//! println!("every role: {:?}", view.get_all("role"));
//!
//! let mut roles = node.watch(WatchFilter::all().metadata_key("role"));
//! while let Some(Ok(watched)) = roles.recv().await {
//!     println!("{:?}: {:?}", watched.name(), watched.event);
//! }
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use swim_core::{Bytes, Event, Instant, Member, Node, Watch};
pub use swim_core::{ClusterMetadata, StatusDump, WatchFilter, Watched};
use swim_std::Refresh;
pub use swim_std::{ClusterConfig, Error, Lagged, Resolver, Snapshot, TransientConfigError};
use tokio::net::UdpSocket;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

type SharedNode = Arc<Mutex<Node<ChaCha8Rng>>>;
type Watchers = Arc<Mutex<Vec<Watcher>>>;
type Command = Box<dyn FnOnce(&mut Node<ChaCha8Rng>, Instant) + Send>;

/// Starts nodes on tokio sockets.
#[derive(Debug)]
pub struct Cluster;

impl Cluster {
    /// Resolves names (on a blocking thread), binds the socket, starts joining and spawns
    /// the driver task on the current runtime.
    pub async fn bind(config: ClusterConfig) -> Result<Handle, Error> {
        let (capacity, leave_timeout) = (config.event_capacity.max(1), config.leave_timeout);
        let bound = tokio::task::spawn_blocking(move || config.bind())
            .await
            .map_err(|_| Error::Stopped)??;
        let addr = bound.local_addr;
        let socket = (bound.socket.set_nonblocking(true))
            .and_then(|()| UdpSocket::from_std(bound.socket))
            .map_err(|source| Error::Bind { addr, source })?;
        let node = Arc::new(Mutex::new(bound.node));
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (events, _) = broadcast::channel(capacity);
        let (changed, changes) = watch::channel(());
        let watchers = Watchers::default();
        let driver = Driver {
            node: Arc::clone(&node),
            socket,
            origin: tokio::time::Instant::now(),
            events: events.clone(),
            watchers: Arc::clone(&watchers),
            changed,
        };
        let resolver =
            bound.refresh.map(|refresh| tokio::spawn(resolve(refresh, commands.clone())));
        Ok(Handle {
            task: tokio::spawn(driver.run(command_rx)),
            resolver,
            node,
            commands,
            events,
            watchers,
            changes,
            local_addr: addr,
            leave_timeout,
            capacity,
        })
    }
}

/// A running node. Dropping it stops the node at once (without a leave announcement).
#[derive(Debug)]
pub struct Handle {
    node: SharedNode,
    commands: mpsc::UnboundedSender<Command>,
    events: broadcast::Sender<Event>,
    watchers: Watchers,
    changes: watch::Receiver<()>,
    task: JoinHandle<()>,
    resolver: Option<JoinHandle<()>>,
    local_addr: SocketAddr,
    leave_timeout: Duration,
    capacity: usize,
}

impl Handle {
    /// Sets a local metadata value; it spreads from now on.
    pub async fn set_metadata(
        &self,
        key: impl Into<String>,
        value: impl Into<Bytes>,
    ) -> Result<(), Error> {
        let (key, value) = (key.into(), value.into());
        Ok(self.call(|node, now| node.set_metadata(now, key, value)).await??)
    }

    /// Removes a local metadata value, returning it if it was set.
    pub async fn remove_metadata(&self, key: &str) -> Result<Option<Bytes>, Error> {
        let key = key.to_owned();
        Ok(self.call(move |node, now| node.remove_metadata(now, &key)).await??)
    }

    /// Joins through more seeds, e.g. members added at run time.
    pub async fn join(&self, seeds: Vec<SocketAddr>) -> Result<(), Error> {
        self.call(|node, now| node.join(now, seeds)).await
    }

    /// Leaves gracefully: announces the departure, waits until it has been sent as often as
    /// any fact (at most `leave_timeout`), then stops.
    pub async fn leave(self) -> Result<(), Error> {
        self.call(|node, now| node.leave(now)).await?;
        let announced = self.wait_until(announced);
        match tokio::time::timeout(self.leave_timeout, announced).await {
            Ok(_) => Ok(()),
            Err(_) => Err(Error::LeaveTimedOut(self.leave_timeout)),
        }
    }

    /// A new event stream. It never slows the node: a receiver more than `event_capacity`
    /// events behind loses the oldest and is told so (`RecvError::Lagged`).
    /// `Event::Joined` is the readiness notification (PySyncObj's `onReady`).
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// A stream of the events about members matching `filter` (names, statuses, a metadata
    /// key), each with the member as it was when the event was published. It never slows
    /// the node: once `event_capacity` are unread, newer ones are lost and the receiver gets
    /// `Err(Lagged(n))` before the next one. Watching this node's name and a key gives
    /// pymap's listeners on local metadata changes.
    pub fn watch(&self, filter: WatchFilter) -> mpsc::Receiver<Result<Watched, Lagged>> {
        let (sender, receiver) = mpsc::channel(self.capacity);
        // Created under the node's lock, so it starts exactly where the published events do.
        let node = self.lock();
        let watch = node.watch(filter);
        lock(&self.watchers).push(Watcher { watch, sender, missed: 0 });
        receiver
    }

    /// Waits until `predicate` holds for the node's view (checked after every change) and
    /// returns that view, e.g. until a member is online; [`Error::TimedOut`] after `timeout`.
    pub async fn wait_for(
        &self,
        mut predicate: impl FnMut(&Snapshot) -> bool,
        timeout: Duration,
    ) -> Result<Snapshot, Error> {
        let mut found = None;
        let waited = self.wait_until(|node| {
            let snapshot = Snapshot::of(node);
            let done = predicate(&snapshot);
            found = Some(snapshot);
            done
        });
        tokio::time::timeout(timeout, waited).await.map_err(|_| Error::TimedOut(timeout))??;
        found.ok_or(Error::Stopped)
    }

    /// Waits until the node has heard from the cluster ([`Self::is_ready`]);
    /// [`Error::TimedOut`] after `timeout`.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), Error> {
        let ready = self.wait_until(|node| node.is_ready());
        tokio::time::timeout(timeout, ready).await.map_err(|_| Error::TimedOut(timeout))?
    }

    /// Whether the node has heard from the cluster since it joined (PySyncObj's `isReady`).
    pub fn is_ready(&self) -> bool {
        self.lock().is_ready()
    }

    /// A copy of the node's view: members (with status filters), counters, state.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot::of(&self.lock())
    }

    /// The cluster metadata view now (see [`Snapshot::cluster_metadata`]).
    pub fn cluster_metadata(&self) -> ClusterMetadata {
        self.lock().cluster_metadata()
    }

    /// A status dump now (see [`Snapshot::status_dump`]).
    pub fn status_dump(&self) -> StatusDump {
        self.lock().status_dump()
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Runs `command` in the driver task, which then drives the node.
    async fn call<T: Send + 'static>(
        &self,
        command: impl FnOnce(&mut Node<ChaCha8Rng>, Instant) -> T + Send + 'static,
    ) -> Result<T, Error> {
        let (reply, result) = oneshot::channel();
        let command: Command = Box::new(move |node, now| {
            let _ = reply.send(command(node, now));
        });
        self.commands.send(command).map_err(|_| Error::Stopped)?;
        result.await.map_err(|_| Error::Stopped)
    }

    async fn wait_until(
        &self,
        mut done: impl FnMut(&Node<ChaCha8Rng>) -> bool,
    ) -> Result<(), Error> {
        let mut changes = self.changes.clone();
        loop {
            changes.borrow_and_update();
            if done(&self.lock()) {
                return Ok(());
            }
            changes.changed().await.map_err(|_| Error::Stopped)?;
        }
    }

    fn lock(&self) -> MutexGuard<'_, Node<ChaCha8Rng>> {
        lock(&self.node)
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(resolver) = &self.resolver {
            resolver.abort();
        }
    }
}

/// Every `refresh.interval`, resolves names again (on a blocking thread) and has the driver
/// join through new addresses.
async fn resolve(mut refresh: Refresh, commands: mpsc::UnboundedSender<Command>) {
    loop {
        tokio::time::sleep(refresh.interval).await;
        let resolved = tokio::task::spawn_blocking(move || {
            let seeds = refresh.resolve();
            (refresh, seeds)
        });
        let Ok((returned, seeds)) = resolved.await else { return };
        refresh = returned;
        if !seeds.is_empty() {
            let feed: Command = Box::new(move |node, now| Refresh::feed(node, now, seeds));
            if commands.send(feed).is_err() {
                return;
            }
        }
    }
}

/// A watch and where its events go.
#[derive(Debug)]
struct Watcher {
    watch: Watch,
    sender: mpsc::Sender<Result<Watched, Lagged>>,
    missed: u64,
}

impl Watcher {
    /// Delivers `event` if the watch selects it, without blocking; `false` once the
    /// receiver is gone.
    fn offer(&mut self, event: &Event, member: Option<&Member>) -> bool {
        if !self.watch.offer(event, member) {
            return !self.sender.is_closed();
        }
        if self.missed > 0 {
            match self.sender.try_send(Err(Lagged(self.missed))) {
                Ok(()) => self.missed = 0,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    self.missed += 1;
                    return true;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => return false,
            }
        }
        let watched = Watched { event: event.clone(), member: member.cloned() };
        match self.sender.try_send(Ok(watched)) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.missed += 1;
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

struct Driver {
    node: SharedNode,
    socket: UdpSocket,
    origin: tokio::time::Instant,
    events: broadcast::Sender<Event>,
    watchers: Watchers,
    /// Bumped after every step, for `wait_for` and `leave`.
    changed: watch::Sender<()>,
}

impl Driver {
    async fn run(self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let mut buffer = vec![0; 65536];
        let mut outbox = Vec::new();
        loop {
            // `None`: the node left and has announced it; nothing more to do.
            let Some(deadline) = lock(&self.node).poll_timeout() else {
                break;
            };
            let wake_at = self.origin + deadline.since_origin();
            let (mut datagram, mut command) = (None, None);
            tokio::select! {
                received = self.socket.recv_from(&mut buffer) => match received {
                    Ok(received) => datagram = Some(received),
                    Err(error) => warn!(%error, "receive failed"),
                },
                () = tokio::time::sleep_until(wake_at) => {}
                received = commands.recv() => match received {
                    Some(received) => command = Some(received),
                    None => break,
                },
            }
            self.step(&mut outbox, |node, now| {
                if let Some((len, from)) = datagram {
                    node.handle_datagram(now, from, &buffer[..len]);
                }
                if let Some(command) = command {
                    command(node, now);
                }
            });
            for (to, payload) in outbox.drain(..) {
                if let Err(error) = self.socket.send_to(&payload, to).await {
                    debug!(%error, %to, "send failed");
                }
            }
        }
        debug!("driver task stopped");
    }

    /// One drive step: an input or command, expired timers, then every event; transmits are
    /// copied out so the lock is not held while sending.
    fn step(
        &self,
        outbox: &mut Vec<(SocketAddr, Vec<u8>)>,
        input: impl FnOnce(&mut Node<ChaCha8Rng>, Instant),
    ) {
        let mut node = lock(&self.node);
        let now = Instant::from_micros(self.origin.elapsed().as_micros() as u64);
        input(&mut node, now);
        node.handle_timeout(now);
        while let Some(transmit) = node.poll_transmit() {
            outbox.push((transmit.destination, transmit.payload.to_vec()));
        }
        let mut watchers = lock(&self.watchers);
        while let Some(event) = node.poll_event() {
            let member = node.member_of(&event);
            watchers.retain_mut(|watcher| watcher.offer(&event, member));
            // An error only means nobody is subscribed.
            let _ = self.events.send(event);
        }
        drop((watchers, node));
        self.changed.send_replace(());
    }
}

/// A poisoned lock only means a thread panicked while holding it; the node's state is still
/// consistent between calls, so keep going.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether a node that left is done announcing it (swim-core's `poll_timeout` says so,
/// including when no one is left to tell).
fn announced(node: &Node<ChaCha8Rng>) -> bool {
    node.poll_timeout().is_none()
}
