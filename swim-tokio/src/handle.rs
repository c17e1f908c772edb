//! The handle applications hold: cheap to clone, every operation of the node.

use std::net::SocketAddr;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use swim_driver::{ClusterConfig, Control, Error, Event, Lagged, Snapshot, WatchFilter, Watched};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::driver::{self, Outlet};
use crate::io::{Shared, TokioIo};

/// Starts nodes on tokio sockets.
#[derive(Debug)]
pub struct Cluster;

impl Cluster {
    /// Checks the configuration, resolves names (on a blocking thread), binds the socket,
    /// starts joining and spawns the driver task on the current runtime (and a resolver
    /// task when names need resolving again). The events from here on wait for the first
    /// [`Handle::subscribe`], so none is lost to a join that finishes first.
    pub async fn bind(config: ClusterConfig) -> Result<Handle, Error> {
        let binding = config.clone();
        let bound = tokio::task::spawn_blocking(move || binding.bind())
            .await
            .map_err(|_| Error::Stopped)??;
        let local_addr = bound.local_addr;
        let (shared, resolver) = driver::start(bound, &config)?;
        let owner = Owner { shared: Arc::clone(&shared), resolver };
        Ok(Handle {
            control: Control::new(shared),
            _owner: Arc::new(owner),
            local_addr,
            event_capacity: config.event_capacity.max(1),
            leave_timeout: config.leave_timeout,
        })
    }
}

/// A running node: cheap to clone, every clone the same node. The operations both drivers
/// share (metadata, key rotation, queries, `abort`) are [`Control`]'s, through `Deref`.
///
/// **Dropping the last clone leaves gracefully**: the drop starts the leave announcement
/// and returns; the driver task sends it and stops within `leave_timeout` (3 s by default;
/// at once when no other member is available), as long as the runtime keeps running.
/// [`Handle::leave`] does the same, waits for it and says whether it finished;
/// [`Control::abort`] stops at once without an announcement, as a crash would.
/// After any of them every operation returns [`Error::Stopped`] and every stream ends.
#[derive(Clone, Debug)]
pub struct Handle {
    control: Control<TokioIo>,
    _owner: Arc<Owner>,
    local_addr: SocketAddr,
    event_capacity: usize,
    leave_timeout: Duration,
}

/// Dropped with the last handle: starts the leave and stops re-resolving names.
#[derive(Debug)]
struct Owner {
    shared: Arc<Shared>,
    resolver: Option<JoinHandle<()>>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        if let Some(resolver) = &self.resolver {
            resolver.abort();
        }
        // Already stopped (left or aborted): nothing to announce.
        let _ = self.shared.begin_leave();
    }
}

impl Deref for Handle {
    type Target = Control<TokioIo>;

    fn deref(&self) -> &Control<TokioIo> {
        &self.control
    }
}

impl Handle {
    /// Leaves gracefully: announces the departure, waits until it has been sent as often
    /// as any fact (at most `leave_timeout`), then stops the node for every handle.
    /// [`Error::LeaveTimedOut`] if the time ran out first (the node stopped anyway).
    pub async fn leave(&self) -> Result<(), Error> {
        let core = self.control.core();
        core.begin_leave()?;
        // The task stops at the deadline; the margin covers its last step.
        let bound = self.leave_timeout + Duration::from_secs(1);
        driver::wait(core, bound, |d| d.is_stopped()).await;
        match core.lock().announced() {
            true => Ok(()),
            false => Err(Error::LeaveTimedOut(self.leave_timeout)),
        }
    }

    /// Waits until the node has heard from the cluster ([`Control::is_ready`]);
    /// [`Error::TimedOut`] after `timeout`.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), Error> {
        self.wait_for(Snapshot::is_ready, timeout).await.map(drop)
    }

    /// Waits until `predicate` holds for the node's view (checked after every change), and
    /// returns that view; [`Error::TimedOut`] after `timeout`, [`Error::Stopped`] if the
    /// node stops first.
    pub async fn wait_for(
        &self,
        mut predicate: impl FnMut(&Snapshot) -> bool,
        timeout: Duration,
    ) -> Result<Snapshot, Error> {
        let mut found = None;
        let held = driver::wait(self.control.core(), timeout, |driven| {
            let snapshot = driven.snapshot();
            let done = predicate(&snapshot);
            found = done.then_some(snapshot);
            done
        })
        .await;
        match (held, found) {
            (true, Some(snapshot)) => Ok(snapshot),
            _ if self.control.core().lock().is_stopped() => Err(Error::Stopped),
            _ => Err(Error::TimedOut(timeout)),
        }
    }

    /// Every event from now on. The first subscriber also gets every event since
    /// [`Cluster::bind`] (up to `event_capacity`): the node starts joining when it is bound,
    /// and a join on a fast network is over before this can be called, so those events wait
    /// for it, as connections wait for a listener's `accept`. Later subscribers (and a
    /// subscriber after the first [`Self::watch`], which starts from the member table as it
    /// is) get events from their call on. Never slows the node: see [`Events`] for what a
    /// slow reader gets. `Event::Joined` is the readiness notification (PySyncObj's
    /// `onReady`).
    pub fn subscribe(&self) -> Events<Event> {
        let (sender, receiver) = mpsc::channel(self.event_capacity);
        // A stopped node has no events to give: the stream ends at once.
        self.control.core().lock().subscribe(Box::new(Outlet(sender)));
        Events { receiver }
    }

    /// The events about members matching `filter` (names, statuses, a metadata key) from
    /// now on, each with the member as it was when the event was published; the member
    /// table ([`Control::snapshot`]) says where they start from. Bounded like
    /// [`Self::subscribe`]. Watching this node's name and a key gives pymap's listeners on
    /// local metadata changes.
    pub fn watch(&self, filter: WatchFilter) -> Events<Watched> {
        let (sender, receiver) = mpsc::channel(self.event_capacity);
        // Added under the node's lock, so it starts exactly where the published events do.
        self.control.core().lock().watch(filter, Box::new(Outlet(sender)));
        Events { receiver }
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

/// A stream of events (or watched events) from one node; also a [`Stream`](crate::Stream),
/// so `while let Some(item) = events.next().await` works with [`StreamExt`](crate::StreamExt).
///
/// It holds at most `event_capacity` unread items and never slows the node: further events
/// are lost (the newest, so what is read stays in order) and the next item is
/// `Err(Lagged(n))`, `n` the number lost. It ends (`None`) once the node has stopped and
/// everything queued was read.
#[derive(Debug)]
pub struct Events<T> {
    receiver: mpsc::Receiver<Result<T, Lagged>>,
}

impl<T> Events<T> {
    /// The next item, waiting for it; `None` once the node has stopped.
    pub async fn recv(&mut self) -> Option<Result<T, Lagged>> {
        self.receiver.recv().await
    }

    /// The next item if one is queued now.
    pub fn try_recv(&mut self) -> Option<Result<T, Lagged>> {
        self.receiver.try_recv().ok()
    }
}

impl<T> tokio_stream::Stream for Events<T> {
    type Item = Result<T, Lagged>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.receiver.poll_recv(cx)
    }
}
