//! The operations both drivers' handles offer, written once: a driver supplies its I/O
//! ([`Io`]: send a datagram, wake its loop, tell waiters) and its handle dereferences to
//! [`Control`], so the two handles have the same methods by construction.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use swim_core::{
    Bytes, ClusterMetadata, Instant, Keyring, Member, Metadata, StatusDump, StatusFilter,
};
use tracing::Span;

use crate::driven::{Driven, DriverNode, commands, lock};
use crate::error::Error;
use crate::resolve::Resolved;
use crate::snapshot::Snapshot;
use crate::stream::StreamStats;

/// What a driver does for its node.
pub trait Io: Send + Sync + 'static {
    /// Sends one datagram, straight from the node's buffer, never blocking.
    fn send(&self, to: SocketAddr, datagram: &[u8]);
    /// Wakes the driver's loop: the node's next deadline may have changed.
    fn wake(&self);
    /// Tells whoever waits for a change (`wait_for`, `leave`) that the node stepped.
    fn stepped(&self);
}

/// A node under its driver's lock, with the driver's I/O: what the loop and every handle
/// share.
#[derive(Debug)]
pub struct Core<I> {
    driven: Mutex<Driven>,
    io: I,
    /// The node's span (its name), entered by every step, whichever thread runs it.
    span: Span,
}

impl<I: Io> Core<I> {
    /// Shares `driven` with `io`.
    pub fn new(driven: Driven, io: I, span: Span) -> Self {
        Core { driven: Mutex::new(driven), io, span }
    }

    /// The node, locked.
    pub fn lock(&self) -> MutexGuard<'_, Driven> {
        lock(&self.driven)
    }

    /// The driver's I/O.
    pub fn io(&self) -> &I {
        &self.io
    }

    /// The node's span.
    pub fn span(&self) -> &Span {
        &self.span
    }

    /// Runs `command` on the node and drives it, then wakes the loop and any waiter.
    pub fn command<T>(
        &self,
        command: impl FnOnce(&mut DriverNode, Instant) -> T,
    ) -> Result<T, Error> {
        let _span = self.span.enter();
        let out = self.lock().step(command, |to, b| self.io.send(to, b));
        self.io.stepped();
        self.io.wake();
        out
    }

    /// Hands the node a datagram; its expired timers wait for the driver's next
    /// [`Self::handle_timeout`] (see [`Driven::handle_datagram`]).
    pub fn handle_datagram(&self, from: SocketAddr, datagram: &[u8]) {
        self.lock().handle_datagram(from, datagram, |to, b| self.io.send(to, b));
        self.io.stepped();
    }

    /// Hands the node a stream message received from `from` and drives it.
    pub fn handle_stream(&self, from: SocketAddr, message: &[u8]) {
        self.lock().handle_stream(from, message, |to, b| self.io.send(to, b));
        self.io.stepped();
    }

    /// Drives the node's timers; `Err(Stopped)` once stopped.
    pub fn handle_timeout(&self) -> Result<(), Error> {
        let out = self.lock().step(|_, _| (), |to, b| self.io.send(to, b));
        self.io.stepped();
        out
    }

    /// Starts a graceful leave; the loop stops once it is announced or out of time.
    pub fn begin_leave(&self) -> Result<(), Error> {
        let _span = self.span.enter();
        let out = self.lock().begin_leave(|to, b| self.io.send(to, b));
        self.io.wake();
        out
    }

    /// Stops the node at once, without announcing anything; the loop ends.
    pub fn stop(&self) {
        self.lock().stop();
        self.io.stepped();
        self.io.wake();
    }

    /// Records a background resolution round; false once the node has stopped.
    pub fn resolved(&self, resolved: Resolved) -> bool {
        let _span = self.span.enter();
        let mut driven = self.lock();
        if driven.is_stopped() {
            return false;
        }
        driven.resolved(resolved, |to, b| self.io.send(to, b));
        drop(driven);
        self.io.wake();
        true
    }
}

/// The operations of a running node that both drivers' handles offer, with the same names
/// and types (a handle dereferences to it). Commands return [`Error::Stopped`] once the node
/// has stopped; queries keep answering with its last state.
#[derive(Debug)]
pub struct Control<I> {
    core: Arc<Core<I>>,
}

impl<I> Clone for Control<I> {
    fn clone(&self) -> Self {
        Control { core: Arc::clone(&self.core) }
    }
}

impl<I: Io> Control<I> {
    /// Controls the node in `core`.
    pub fn new(core: Arc<Core<I>>) -> Self {
        Control { core }
    }

    /// The node and its I/O, for the driver.
    #[doc(hidden)]
    pub fn core(&self) -> &Arc<Core<I>> {
        &self.core
    }

    /// Joins through more seeds, e.g. members added at run time.
    pub fn join(&self, seeds: impl IntoIterator<Item = SocketAddr>) -> Result<(), Error> {
        self.core.command(|node, now| node.join(now, seeds))
    }

    /// Stops the node at once, without a leave announcement: the others will find it
    /// failed, as after a crash. Every stream ends.
    pub fn abort(&self) {
        self.core.stop();
    }

    /// Sets a local metadata value; it spreads from now on.
    pub fn set_metadata(
        &self,
        key: impl Into<String>,
        value: impl Into<Bytes>,
    ) -> Result<(), Error> {
        let (key, value) = (key.into(), value.into());
        self.core.command(|node, now| commands::set_metadata(node, now, key, value))?
    }

    /// Removes a local metadata value, returning it if it was set.
    pub fn remove_metadata(&self, key: &str) -> Result<Option<Bytes>, Error> {
        Ok(self.core.command(|node, now| node.remove_metadata(now, key))??)
    }

    /// Replaces the whole local metadata map at once (the Python package's
    /// `update(new_metadata=…)`): other members see the old map or the new one, nothing in
    /// between. If the new map is refused, the old one stays.
    pub fn replace_metadata(&self, metadata: Metadata) -> Result<(), Error> {
        self.core.command(|node, now| commands::replace_metadata(node, now, metadata))?
    }

    /// Replaces the keyring, to rotate keys: add the new key everywhere, then make it
    /// first everywhere, then remove the old one.
    pub fn set_keyring(&self, keyring: Keyring) -> Result<(), Error> {
        self.core.command(|node, _| commands::set_keyring(node, keyring))?
    }

    /// Up to `count` other members matching `filter`, chosen at random, none named in
    /// `exclude` (the Python package's `find`).
    pub fn find(&self, count: usize, filter: StatusFilter, exclude: &[&str]) -> Vec<Member> {
        self.core.lock().find(count, filter, exclude)
    }

    /// This node as a member (the Python package's `members.local`).
    pub fn local_member(&self) -> Member {
        self.core.lock().node().local_member().clone()
    }

    /// Every member but this node, in name order (`members.non_local`).
    pub fn non_local_members(&self) -> Vec<Member> {
        self.snapshot().non_local().cloned().collect()
    }

    /// A member by name.
    pub fn member(&self, name: &str) -> Option<Member> {
        self.core.lock().node().member(name).cloned()
    }

    /// A copy of the node's view: members (with status filters), counters, state.
    pub fn snapshot(&self) -> Snapshot {
        self.core.lock().snapshot()
    }

    /// The cluster metadata view now (see [`Snapshot::cluster_metadata`]).
    pub fn cluster_metadata(&self) -> ClusterMetadata {
        ClusterMetadata::of(self.core.lock().node())
    }

    /// A status dump now (see [`Snapshot::status_dump`]).
    pub fn status_dump(&self) -> StatusDump {
        self.snapshot().status_dump()
    }

    /// What the driver's streams did: connections accepted and refused, messages sent,
    /// failed, received and cut off, bytes each way. (The node's own counts, including
    /// messages dropped by the protocol, are in [`swim_core::Counters`].)
    pub fn stream_stats(&self) -> StreamStats {
        self.core.lock().stream_counters().stats()
    }

    /// Whether the node has heard from the cluster since it joined (PySyncObj's `isReady`).
    pub fn is_ready(&self) -> bool {
        self.core.lock().node().is_ready()
    }
}
