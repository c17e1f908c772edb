//! The handle applications hold: cheap to clone, every operation of the node.

use std::net::SocketAddr;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use swim_driver::{
    Bytes, ClusterConfig, ClusterMetadata, Error, Event, Keyring, Lagged, Member, Metadata,
    Snapshot, StatusDump, StatusFilter, WatchFilter, Watched, commands, lock,
};

use crate::driver::{Shared, Started};

/// Starts nodes on `std::net` sockets.
#[derive(Debug)]
pub struct Cluster;

impl Cluster {
    /// Checks the configuration, resolves names, binds the socket, starts joining and
    /// spawns the driver thread (and a resolver thread when names need resolving again).
    pub fn bind(config: ClusterConfig) -> Result<Handle, Error> {
        let bound = config.bind()?;
        let local_addr = bound.local_addr;
        let Started { shared, thread, resolver } = Shared::start(bound, &config)?;
        let owner = Owner {
            shared: Arc::clone(&shared),
            thread: Mutex::new(Some(thread)),
            _resolver: resolver,
        };
        Ok(Handle {
            shared,
            _owner: Arc::new(owner),
            local_addr,
            event_capacity: config.event_capacity.max(1),
            leave_timeout: config.leave_timeout,
        })
    }
}

/// A running node: cheap to clone, every clone the same node.
///
/// **Dropping the last clone leaves gracefully**: the drop announces the departure and
/// blocks until it is sent, at most `leave_timeout` (3 s by default; immediate when no
/// other member is available). [`Handle::leave`] does the same and says whether the
/// announcement finished; [`Handle::abort`] stops at once without one, as a crash would.
/// After any of them every operation returns [`Error::Stopped`] and every stream ends.
#[derive(Clone, Debug)]
pub struct Handle {
    shared: Arc<Shared>,
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

impl Handle {
    /// Joins through more seeds, e.g. members added at run time.
    pub fn join(&self, seeds: impl IntoIterator<Item = SocketAddr>) -> Result<(), Error> {
        self.shared.command(|node, now| node.join(now, seeds))
    }

    /// Leaves gracefully: announces the departure, waits until it has been sent as often
    /// as any fact (at most `leave_timeout`), then stops the node for every handle.
    /// [`Error::LeaveTimedOut`] if the time ran out first (the node stopped anyway).
    pub fn leave(&self) -> Result<(), Error> {
        self.shared.begin_leave()?;
        // The thread stops at the deadline; the margin covers its last step.
        self.shared.wait(self.leave_timeout + Duration::from_secs(1), |d| d.is_stopped());
        match self.shared.lock().announced() {
            true => Ok(()),
            false => Err(Error::LeaveTimedOut(self.leave_timeout)),
        }
    }

    /// Stops the node at once, without a leave announcement: the others will find it
    /// failed, as after a crash.
    pub fn abort(&self) {
        self.shared.abort();
    }

    /// Sets a local metadata value; it spreads from now on.
    pub fn set_metadata(
        &self,
        key: impl Into<String>,
        value: impl Into<Bytes>,
    ) -> Result<(), Error> {
        let (key, value) = (key.into(), value.into());
        self.shared.command(|node, now| commands::set_metadata(node, now, key, value))?
    }

    /// Removes a local metadata value, returning it if it was set.
    pub fn remove_metadata(&self, key: &str) -> Result<Option<Bytes>, Error> {
        self.shared.command(|node, now| node.remove_metadata(now, key))
    }

    /// Replaces the whole local metadata map at once (the Python package's
    /// `update(new_metadata=…)`): other members see the old map or the new one, nothing in
    /// between. If the new map is refused, the old one stays.
    pub fn replace_metadata(&self, metadata: Metadata) -> Result<(), Error> {
        self.shared.command(|node, now| commands::replace_metadata(node, now, metadata))?
    }

    /// Replaces the keyring, to rotate keys: add the new key everywhere, then make it
    /// first everywhere, then remove the old one.
    pub fn set_keyring(&self, keyring: Keyring) -> Result<(), Error> {
        self.shared.command(|node, _| commands::set_keyring(node, keyring))?
    }

    /// Up to `count` other members matching `filter`, chosen at random, none named in
    /// `exclude` (the Python package's `find`).
    pub fn find(&self, count: usize, filter: StatusFilter, exclude: &[&str]) -> Vec<Member> {
        self.shared.lock().find(count, filter, exclude)
    }

    /// This node as a member (the Python package's `members.local`).
    pub fn local_member(&self) -> Member {
        self.shared.lock().node().local_member().clone()
    }

    /// Every member but this node, in name order (`members.non_local`).
    pub fn non_local_members(&self) -> Vec<Member> {
        self.snapshot().non_local().cloned().collect()
    }

    /// A member by name.
    pub fn member(&self, name: &str) -> Option<Member> {
        self.shared.lock().node().member(name).cloned()
    }

    /// A copy of the node's view: members (with status filters), counters, state.
    pub fn snapshot(&self) -> Snapshot {
        self.shared.lock().snapshot()
    }

    /// The cluster metadata view now (see [`Snapshot::cluster_metadata`]).
    pub fn cluster_metadata(&self) -> ClusterMetadata {
        self.shared.lock().node().cluster_metadata()
    }

    /// A status dump now (see [`Snapshot::status_dump`]).
    pub fn status_dump(&self) -> StatusDump {
        self.snapshot().status_dump()
    }

    /// Whether the node has heard from the cluster since it joined (PySyncObj's `isReady`).
    pub fn is_ready(&self) -> bool {
        self.shared.lock().node().is_ready()
    }

    /// Blocks until the node has heard from the cluster ([`Self::is_ready`]);
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
        let held = self.shared.wait(timeout, |driven| {
            let snapshot = driven.snapshot();
            let done = predicate(&snapshot);
            found = done.then_some(snapshot);
            done
        });
        match (held, found) {
            (true, Some(snapshot)) => Ok(snapshot),
            _ if self.shared.lock().is_stopped() => Err(Error::Stopped),
            _ => Err(Error::TimedOut(timeout)),
        }
    }

    /// Every event from now on. Never slows the node: see [`Events`] for what a slow reader
    /// gets. `Event::Joined` is the readiness notification (PySyncObj's `onReady`).
    pub fn subscribe(&self) -> Events<Event> {
        let (sender, receiver) = mpsc::sync_channel(self.event_capacity);
        // A stopped node has no events to give: the stream ends at once.
        self.shared.lock().subscribe(sender);
        Events { receiver }
    }

    /// The events about members matching `filter` (names, statuses, a metadata key), each
    /// with the member as it was when the event was published. Bounded like
    /// [`Self::subscribe`]. Watching this node's name and a key gives pymap's listeners on
    /// local metadata changes.
    pub fn watch(&self, filter: WatchFilter) -> Events<Watched> {
        let (sender, receiver) = mpsc::sync_channel(self.event_capacity);
        // Added under the node's lock, so it starts exactly where the published events do.
        self.shared.lock().watch(filter, sender);
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
