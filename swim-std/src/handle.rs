//! The handle applications hold: cheap to clone, every operation of the node.

use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use swim_driver::{
    ClusterConfig, Control, Error, Event, Lagged, Snapshot, WatchFilter, Watched, lock,
};

use crate::driver::{self, Started};
use crate::io::{Shared, StdIo};

/// Starts nodes on `std::net` sockets.
#[derive(Debug)]
pub struct Cluster;

impl Cluster {
    /// Checks the configuration, resolves names, binds the socket, starts joining and
    /// spawns the driver thread (and a resolver thread when names need resolving again).
    /// The events from here on wait for the first [`Handle::subscribe`], so none is lost
    /// to a join that finishes first.
    pub fn bind(config: ClusterConfig) -> Result<Handle, Error> {
        let bound = config.bind()?;
        let local_addr = bound.local_addr;
        let Started { shared, thread, resolver } = driver::start(bound, &config)?;
        let owner = Owner {
            shared: Arc::clone(&shared),
            thread: Mutex::new(Some(thread)),
            _resolver: resolver,
        };
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
/// **Dropping the last clone leaves gracefully**: the drop announces the departure and
/// blocks until it is sent, at most `leave_timeout` (3 s by default; immediate when no
/// other member is available). [`Handle::leave`] does the same and says whether the
/// announcement finished; [`Control::abort`] stops at once without one, as a crash would.
/// After any of them every operation returns [`Error::Stopped`] and every stream ends.
#[derive(Clone, Debug)]
pub struct Handle {
    control: Control<StdIo>,
    _owner: Arc<Owner>,
    local_addr: SocketAddr,
    event_capacity: usize,
    leave_timeout: Duration,
}

/// Dropped with the last handle: leaves, then joins the driver thread.
#[derive(Debug)]
struct Owner {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Dropped with the owner, which stops the resolver thread.
    _resolver: Option<Sender<()>>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        // Already stopped (left or aborted): nothing to announce.
        let _ = self.shared.begin_leave();
        if let Some(thread) = lock(&self.thread).take() {
            // The thread stops by itself within `leave_timeout`; it only panics if the node
            // does, which would be a swim-core bug.
            let _ = thread.join();
        }
    }
}

impl Deref for Handle {
    type Target = Control<StdIo>;

    fn deref(&self) -> &Control<StdIo> {
        &self.control
    }
}

impl Handle {
    /// Leaves gracefully: announces the departure, waits until it has been sent as often
    /// as any fact (at most `leave_timeout`), then stops the node for every handle.
    /// [`Error::LeaveTimedOut`] if the time ran out first (the node stopped anyway).
    pub fn leave(&self) -> Result<(), Error> {
        let core = self.control.core();
        core.begin_leave()?;
        // The thread stops at the deadline; the margin covers its last step.
        driver::wait(core, self.leave_timeout + Duration::from_secs(1), |d| d.is_stopped());
        match core.lock().announced() {
            true => Ok(()),
            false => Err(Error::LeaveTimedOut(self.leave_timeout)),
        }
    }

    /// Blocks until the node has heard from the cluster ([`Control::is_ready`]);
    /// [`Error::TimedOut`] after `timeout`.
    pub fn wait_ready(&self, timeout: Duration) -> Result<(), Error> {
        self.wait_for(Snapshot::is_ready, timeout).map(drop)
    }

    /// Blocks until `predicate` holds for the node's view (checked after every change), and
    /// returns that view; [`Error::TimedOut`] after `timeout`, [`Error::Stopped`] if the
    /// node stops first.
    pub fn wait_for(
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
        });
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
        let (sender, receiver) = mpsc::sync_channel(self.event_capacity);
        // A stopped node has no events to give: the stream ends at once.
        self.control.core().lock().subscribe(Box::new(sender));
        Events { receiver }
    }

    /// The events about members matching `filter` (names, statuses, a metadata key) from
    /// now on, each with the member as it was when the event was published; the member
    /// table ([`Control::snapshot`]) says where they start from. Bounded like
    /// [`Self::subscribe`]. Watching this node's name and a key gives pymap's listeners on
    /// local metadata changes.
    pub fn watch(&self, filter: WatchFilter) -> Events<Watched> {
        let (sender, receiver) = mpsc::sync_channel(self.event_capacity);
        // Added under the node's lock, so it starts exactly where the published events do.
        self.control.core().lock().watch(filter, Box::new(sender));
        Events { receiver }
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

/// A stream of events (or watched events) from one node.
///
/// It holds at most `event_capacity` unread items and never slows the node: further events
/// are lost (the newest, so what is read stays in order) and the next item is
/// `Err(Lagged(n))`, `n` the number lost. It ends (`None`) once the node has stopped and
/// everything queued was read.
#[derive(Debug)]
pub struct Events<T> {
    receiver: Receiver<Result<T, Lagged>>,
}

impl<T> Events<T> {
    /// The next item, waiting for it; `None` once the node has stopped.
    pub fn recv(&self) -> Option<Result<T, Lagged>> {
        self.receiver.recv().ok()
    }

    /// The next item, waiting at most `timeout`; `None` if none came or the node stopped.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Result<T, Lagged>> {
        self.receiver.recv_timeout(timeout).ok()
    }

    /// The next item if one is queued now.
    pub fn try_recv(&self) -> Option<Result<T, Lagged>> {
        self.receiver.try_recv().ok()
    }

    /// Every item queued now.
    pub fn try_iter(&self) -> impl Iterator<Item = Result<T, Lagged>> + '_ {
        self.receiver.try_iter()
    }
}

/// Blocks for each item; ends once the node has stopped.
impl<T> Iterator for Events<T> {
    type Item = Result<T, Lagged>;

    fn next(&mut self) -> Option<Self::Item> {
        self.recv()
    }
}
