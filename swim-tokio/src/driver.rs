//! The driver task: one task per node selects over the socket, a sleep until the node's
//! next deadline, and a wake-up from the handles, which drive the node under the same lock.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use swim_driver::{
    Bound, Clock, ClusterConfig, Driven, DriverNode, Error, Event, Lagged, Offered, PeerResolution,
    Watched, lock,
};
use tokio::net::UdpSocket;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{Instrument, Span, debug, info_span, warn};

/// Where the driver publishes events: one bounded channel per stream.
#[derive(Debug)]
pub(crate) struct Outlet<T>(pub(crate) mpsc::Sender<Result<T, Lagged>>);

impl<T: Send> swim_driver::Outlet<T> for Outlet<T> {
    fn offer(&self, item: Result<T, Lagged>) -> Offered {
        match self.0.try_send(item) {
            Ok(()) => Offered::Sent,
            Err(mpsc::error::TrySendError::Full(_)) => Offered::Full,
            Err(mpsc::error::TrySendError::Closed(_)) => Offered::Closed,
        }
    }
}

type Node = Driven<Outlet<Event>, Outlet<Watched>>;

/// What the driver task and every handle share.
#[derive(Debug)]
pub(crate) struct Shared {
    driven: Mutex<Node>,
    socket: UdpSocket,
    /// Datagrams the socket could not take at once (it would have blocked): the only ones
    /// copied, sent by the driver task when the socket is writable again.
    backlog: Mutex<Vec<(SocketAddr, Vec<u8>)>>,
    /// Wakes the driver task: the deadline changed, the backlog filled, or it should stop.
    wake: Notify,
    /// Bumped after every step, for `wait_for` and `leave`.
    changed: watch::Sender<()>,
    span: Span,
}

impl Shared {
    /// Spawns the driver task (and the resolver task, if names need resolving again) on
    /// the current runtime.
    pub(crate) fn start(
        bound: Bound,
        config: &ClusterConfig,
    ) -> Result<(Arc<Shared>, Option<JoinHandle<()>>), Error> {
        let addr = bound.local_addr;
        let socket = (bound.socket.set_nonblocking(true))
            .and_then(|()| UdpSocket::from_std(bound.socket))
            .map_err(|source| Error::Bind { addr, source })?;
        let span = info_span!("swim", node = %bound.node.local_member().name());
        let clock = Clock::start();
        let driven = Driven::new(bound.node, clock, config.leave_timeout, bound.resolved);
        let shared = Arc::new(Shared {
            driven: Mutex::new(driven),
            socket,
            backlog: Mutex::new(Vec::new()),
            wake: Notify::new(),
            changed: watch::Sender::new(()),
            span: span.clone(),
        });
        tokio::spawn(Arc::clone(&shared).run().instrument(span.clone()));
        let resolver = bound.resolution.map(|resolution| {
            tokio::spawn(Arc::clone(&shared).resolve(resolution).instrument(span))
        });
        Ok((shared, resolver))
    }

    async fn run(self: Arc<Self>) {
        let mut buffer = vec![0; 65536];
        loop {
            self.flush_backlog().await;
            let Some(deadline) = self.lock().next_wake() else { break };
            let wake_at = self.lock().clock().to_std(deadline);
            tokio::select! {
                received = self.socket.recv_from(&mut buffer) => match received {
                    Ok((len, from)) => {
                        self.lock().handle_datagram(from, &buffer[..len], |to, b| self.send(to, b));
                    }
                    Err(error) => warn!(%error, "receive failed"),
                },
                () = tokio::time::sleep_until(wake_at.into()) => {
                    // Stopped in the meantime: the loop ends above.
                    let _ = self.lock().step(|_, _| (), |to, b| self.send(to, b));
                }
                () = self.wake.notified() => {}
            }
            self.changed.send_replace(());
        }
        self.lock().stop();
        self.changed.send_replace(());
        debug!("driver task stopped");
    }

    /// Resolves names again when due (on a blocking thread) and joins through new
    /// addresses, until the node stops.
    async fn resolve(self: Arc<Self>, mut resolution: PeerResolution) {
        while let Some(delay) = resolution.next_delay() {
            tokio::time::sleep(delay).await;
            let resolving = tokio::task::spawn_blocking(move || {
                let resolved = resolution.resolve();
                (resolution, resolved)
            });
            let Ok((returned, resolved)) = resolving.await else { return };
            resolution = returned;
            let mut driven = self.lock();
            if driven.is_stopped() {
                return;
            }
            driven.resolved(resolved, |to, b| self.send(to, b));
            drop(driven);
            self.wake.notify_one();
        }
    }

    /// Runs `command` on the node and drives it; the driver task then sleeps until the new
    /// deadline.
    pub(crate) fn command<T>(
        &self,
        command: impl FnOnce(&mut DriverNode, swim_core::Instant) -> T,
    ) -> Result<T, Error> {
        let _span = self.span.enter();
        let out = self.lock().step(command, |to, b| self.send(to, b));
        self.wake.notify_one();
        self.changed.send_replace(());
        out
    }

    /// Starts a graceful leave; the task stops once it is announced or out of time.
    pub(crate) fn begin_leave(&self) -> Result<(), Error> {
        let _span = self.span.enter();
        let out = self.lock().begin_leave(|to, b| self.send(to, b));
        self.wake.notify_one();
        out
    }

    /// Stops the node at once, without announcing anything.
    pub(crate) fn abort(&self) {
        self.lock().stop();
        self.wake.notify_one();
        self.changed.send_replace(());
    }

    /// Waits until `done` holds for the node, at most `timeout`: whether it held.
    pub(crate) async fn wait(
        &self,
        timeout: Duration,
        mut done: impl FnMut(&Node) -> bool,
    ) -> bool {
        let mut changes = self.changed.subscribe();
        let waited = async {
            loop {
                changes.borrow_and_update();
                {
                    let driven = self.lock();
                    if done(&driven) {
                        return true;
                    }
                    if driven.is_stopped() {
                        return false;
                    }
                }
                if changes.changed().await.is_err() {
                    return false;
                }
            }
        };
        tokio::time::timeout(timeout, waited).await.unwrap_or(false)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Node> {
        lock(&self.driven)
    }

    /// Sends straight from the node's buffer; only a datagram the socket cannot take now is
    /// copied, for the driver task to send when it can.
    fn send(&self, to: SocketAddr, datagram: &[u8]) {
        match self.socket.try_send_to(datagram, to) {
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                lock(&self.backlog).push((to, datagram.to_vec()));
                self.wake.notify_one();
            }
            Err(error) => debug!(%error, %to, "send failed"),
        }
    }

    async fn flush_backlog(&self) {
        let backlog = std::mem::take(&mut *lock(&self.backlog));
        for (to, datagram) in backlog {
            if let Err(error) = self.socket.send_to(&datagram, to).await {
                debug!(%error, %to, "send failed");
            }
        }
    }
}
