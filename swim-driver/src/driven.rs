//! A node as both drivers hold it under their lock: the node, its clock, its subscribers,
//! its monitor, and the life cycle of the driver around it (running, leaving, stopped).
//! A driver only adds a socket, a way to sleep, and a way to be woken.

use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use std::sync::Arc;

use rand_chacha::ChaCha8Rng;
use swim_core::{
    Bytes, Event, Instant, Keyring, Member, Metadata, Node, StatusFilter, StreamMessage, Watched,
};

use crate::config::ClusterConfig;
use crate::error::Error;
use crate::fanout::{Fanout, Outlet};
use crate::monitor::Monitor;
use crate::resolve::Resolved;
use crate::snapshot::Snapshot;
use crate::stream::StreamCounters;
use swim_core::SystemClock;

/// Most datagrams a driver reads from its socket, once a deadline has passed, before the
/// node's expired timers act. A process that was paused (SIGSTOP, a suspended VM, a long
/// pause of the runtime) wakes with its deadlines past and its socket full: the acks and
/// refutations waiting there must count before a probe or a suspicion runs out. Bounded,
/// so a flood of datagrams cannot hold the timers off for long.
pub const CATCH_UP_DATAGRAMS: usize = 256;

/// The node type the drivers run.
pub type DriverNode = Node<ChaCha8Rng>;

/// Where events go: a driver's channel.
pub type EventOutlet = Box<dyn Outlet<Event>>;
/// Where watched events go: a driver's channel.
pub type WatchOutlet = Box<dyn Outlet<Watched>>;
/// Where stream messages go: a driver's queue of messages to send (it must not block: it
/// is called under the node's lock).
pub type StreamSink = Box<dyn Fn(StreamMessage) + Send>;

/// A node and what a driver keeps with it.
pub struct Driven {
    node: DriverNode,
    /// Random numbers for `find`, apart from the node's.
    finder: ChaCha8Rng,
    clock: SystemClock,
    fanout: Fanout<EventOutlet, WatchOutlet>,
    monitor: Monitor,
    leave_timeout: Duration,
    /// Set when a graceful leave starts: the driver stops then at the latest.
    leave_deadline: Option<Instant>,
    stopped: bool,
    unresolved: Vec<String>,
    resolve_failures: u64,
    /// Where the node's stream messages go; `None`: dropped (no streams).
    stream_sink: Option<StreamSink>,
    stream_counters: Arc<StreamCounters>,
    #[cfg(feature = "metrics")]
    exporter: crate::metrics::Exporter,
}

impl std::fmt::Debug for Driven {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = self.node.local_member().name();
        f.debug_struct("Driven").field("node", &name).field("stopped", &self.stopped).finish()
    }
}

impl Driven {
    /// Wraps a freshly bound node (created at [`Instant::ZERO`], i.e. `clock`'s origin).
    /// Up to `event_capacity` events are kept for the first subscriber.
    pub fn new(
        node: DriverNode,
        finder: ChaCha8Rng,
        clock: SystemClock,
        config: &ClusterConfig,
        resolved: Resolved,
    ) -> Self {
        Driven {
            node,
            finder,
            clock,
            fanout: Fanout::new(config.event_capacity.max(1)),
            monitor: Monitor::default(),
            leave_timeout: config.leave_timeout,
            leave_deadline: None,
            stopped: false,
            unresolved: resolved.unresolved,
            resolve_failures: resolved.failures,
            stream_sink: None,
            stream_counters: Arc::default(),
            #[cfg(feature = "metrics")]
            exporter: Default::default(),
        }
    }

    /// One drive step: `input` (a command, or nothing), expired timers, then every transmit
    /// handed to `send` (borrowed from the node: no copy) and every event published.
    /// `Err(Stopped)` without running `input` once the driver has stopped.
    pub fn step<T>(
        &mut self,
        input: impl FnOnce(&mut DriverNode, Instant) -> T,
        send: impl FnMut(SocketAddr, &[u8]),
    ) -> Result<T, Error> {
        if self.stopped {
            return Err(Error::Stopped);
        }
        let now = self.clock.now();
        self.node.set_wall_clock(now, SystemClock::wall_ms());
        let out = input(&mut self.node, now);
        self.drain(now, send);
        Ok(out)
    }

    /// Hands the node a datagram from `from`, then hands every transmit to `send` and
    /// publishes every event. Expired timers do not act here: after a stall the next
    /// datagram waiting in the socket may be the ack that saves a probe, so drivers read
    /// what is waiting first (at most [`CATCH_UP_DATAGRAMS`]) and then call
    /// [`Self::step`].
    pub fn handle_datagram(
        &mut self,
        from: SocketAddr,
        datagram: &[u8],
        send: impl FnMut(SocketAddr, &[u8]),
    ) {
        if self.stopped {
            return;
        }
        let now = self.clock.now();
        self.node.set_wall_clock(now, SystemClock::wall_ms());
        self.node.handle_datagram(now, from, datagram);
        self.monitor.after_datagram(&self.node, from);
        self.flush(now, send);
    }

    /// Hands the node a stream message from `from` (the connection's peer), then drains it
    /// like [`Self::step`].
    pub fn handle_stream(
        &mut self,
        from: SocketAddr,
        message: &[u8],
        send: impl FnMut(SocketAddr, &[u8]),
    ) {
        if self.stopped {
            return;
        }
        let now = self.clock.now();
        self.node.set_wall_clock(now, SystemClock::wall_ms());
        self.node.handle_stream(now, from, message);
        self.drain(now, send);
    }

    /// Sends the node's stream messages to `sink` from now on.
    pub fn set_stream_sink(&mut self, sink: StreamSink) {
        self.stream_sink = Some(sink);
    }

    /// The counters of the driver's streams.
    pub fn stream_counters(&self) -> &Arc<StreamCounters> {
        &self.stream_counters
    }

    /// Runs expired timers, then flushes like [`Self::handle_datagram`].
    fn drain(&mut self, now: Instant, send: impl FnMut(SocketAddr, &[u8])) {
        self.node.handle_timeout(now);
        self.flush(now, send);
    }

    fn flush(&mut self, now: Instant, mut send: impl FnMut(SocketAddr, &[u8])) {
        while let Some(transmit) = self.node.poll_transmit() {
            send(transmit.destination, transmit.payload);
        }
        while let Some(message) = self.node.poll_stream() {
            if let Some(sink) = &self.stream_sink {
                sink(message);
            }
        }
        while let Some(event) = self.node.poll_event() {
            Monitor::log_event(&event);
            self.fanout.publish(&self.node, &event);
        }
        Monitor::log(&self.monitor.check(&self.node, now));
        #[cfg(feature = "metrics")]
        self.exporter.export(&self.node, self.resolve_failures, now, false);
    }

    /// Starts a graceful leave: the node announces it, and the driver stops once it is
    /// announced or after `leave_timeout`.
    pub fn begin_leave(&mut self, send: impl FnMut(SocketAddr, &[u8])) -> Result<(), Error> {
        let timeout = self.leave_timeout;
        let deadline = &mut self.leave_deadline;
        let now = self.clock.now();
        deadline.get_or_insert(now + timeout);
        self.step(|node, now| node.leave(now), send)
    }

    /// Stops at once, without announcing anything (others will find this node failed).
    /// Every stream ends once drained.
    pub fn stop(&mut self) {
        if !self.stopped {
            #[cfg(feature = "metrics")]
            self.exporter.export(&self.node, self.resolve_failures, self.clock.now(), true);
            self.stopped = true;
            self.fanout.close();
            // The driver's stream senders end once their queue is empty.
            self.stream_sink = None;
        }
    }

    /// When the driver should next call [`Self::step`] with no input; `None` once it should
    /// stop (stopped, or a leave announced or out of time).
    pub fn next_wake(&self) -> Option<Instant> {
        if self.stopped {
            return None;
        }
        let protocol = self.node.poll_timeout();
        match self.leave_deadline {
            None => protocol,
            Some(deadline) if self.clock.now() >= deadline => None,
            Some(deadline) => protocol.map(|at| at.min(deadline)),
        }
    }

    /// Whether a leave was announced in full (swim-core's `poll_timeout` says so, including
    /// when no one is left to tell).
    pub fn announced(&self) -> bool {
        self.node.has_left() && self.node.poll_timeout().is_none()
    }

    /// Whether the driver has stopped.
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// Records a background resolution round and joins through what is new. Which of them
    /// to contact is the node's decision ([`Node::join`] skips what it already knows).
    pub fn resolved(&mut self, resolved: Resolved, send: impl FnMut(SocketAddr, &[u8])) {
        self.unresolved = resolved.unresolved;
        self.resolve_failures = resolved.failures;
        if !resolved.new_seeds.is_empty() {
            // A stopped node ignores new seeds.
            let _ = self.step(|node, now| node.join(now, resolved.new_seeds), send);
        }
    }

    /// The clock the node runs on.
    pub fn clock(&self) -> SystemClock {
        self.clock
    }

    /// The node, for queries.
    pub fn node(&self) -> &DriverNode {
        &self.node
    }

    /// Adds a subscriber to every event from now on; the first subscriber also gets the
    /// events since the node started (up to `event_capacity`). Once the node has stopped, a
    /// new subscriber gets those, if no one took them, then its stream ends.
    pub fn subscribe(&mut self, outlet: EventOutlet) {
        self.fanout.subscribe(outlet);
    }

    /// Adds a watch on the events `filter` selects, from the members as they are now.
    pub fn watch(&mut self, filter: swim_core::WatchFilter, outlet: WatchOutlet) {
        self.fanout.watch(&self.node, filter, outlet);
    }

    /// A copy of the node's view.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot::of(&self.node, &self.unresolved, self.resolve_failures)
    }

    /// Up to `count` other members matching `filter`, at random, none named in `exclude`.
    pub fn find(&mut self, count: usize, filter: StatusFilter, exclude: &[&str]) -> Vec<Member> {
        let found = self.node.find(&mut self.finder, count, filter, exclude);
        found.into_iter().cloned().collect()
    }

    /// Failed peer lookups since the node started.
    pub fn resolve_failures(&self) -> u64 {
        self.resolve_failures
    }
}

/// The commands both drivers' handles offer, on the node under the driver's lock.
pub mod commands {
    use super::*;

    /// Sets a local metadata value.
    pub fn set_metadata(
        node: &mut DriverNode,
        now: Instant,
        key: String,
        value: Bytes,
    ) -> Result<(), Error> {
        Ok(node.set_metadata(now, key, value)?)
    }

    /// Replaces the whole local metadata map in one version; if the new map is refused,
    /// the old one stays.
    pub fn replace_metadata(
        node: &mut DriverNode,
        now: Instant,
        metadata: Metadata,
    ) -> Result<(), Error> {
        Ok(node.replace_metadata(now, metadata)?)
    }

    /// Replaces the keyring (key rotation).
    pub fn set_keyring(node: &mut DriverNode, keyring: Keyring) -> Result<(), Error> {
        Ok(node.set_keyring(keyring)?)
    }
}

/// A poisoned lock only means another thread panicked while holding it; the node's state
/// is consistent between calls, so keep going.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;
    use swim_core::Config;

    #[test]
    fn a_datagram_leaves_expired_timers_to_the_driver() {
        let addr = SocketAddr::from(([127, 0, 0, 1], 7946));
        let mut config = Config::new("a", addr, Keyring::new("k"));
        config.replay_protection = false;
        let node = Node::seeded(config, 1, Instant::ZERO).unwrap();
        let finder = ChaCha8Rng::seed_from_u64(2);
        let resolved = Resolved::default();
        let cluster = ClusterConfig::new("a", Keyring::new("k"));
        let mut driven = Driven::new(node, finder, SystemClock::new(), &cluster, resolved);
        let due = driven.next_wake().unwrap();
        while driven.clock().now() <= due {
            std::thread::sleep(Duration::from_millis(5));
        }
        let from = SocketAddr::from(([127, 0, 0, 1], 7947));
        driven.handle_datagram(from, b"whatever waited in the socket", |_, _| {});
        assert_eq!(driven.next_wake(), Some(due), "an expired timer acted on a datagram");
        driven.step(|_, _| (), |_, _| {}).unwrap();
        assert!(driven.next_wake().is_some_and(|next| next > due), "the step ran the timers");
    }
}
