//! The driver task: one task per node selects over the socket, a sleep until the node's
//! next deadline, and a wake-up from the handles, which drive the node under the same lock.

use std::sync::Arc;
use std::time::Duration;

use swim_core::SystemClock;
use swim_driver::{
    Bound, CATCH_UP_DATAGRAMS, ClusterConfig, Core, Driven, Error, Lagged, Offered, PeerResolution,
    lock,
};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{Instrument, debug, info_span, warn};

use crate::io::{Shared, TokioIo};

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

/// Spawns the driver task (and the resolver task, if names need resolving again) on the
/// current runtime.
pub(crate) fn start(
    bound: Bound,
    config: &ClusterConfig,
) -> Result<(Arc<Shared>, Option<JoinHandle<()>>), Error> {
    let addr = bound.local_addr;
    let socket = (bound.socket.set_nonblocking(true))
        .and_then(|()| UdpSocket::from_std(bound.socket))
        .map_err(|source| Error::Bind { addr, source })?;
    let span = info_span!("swim", node = %bound.node.local_member().name());
    let driven = Driven::new(bound.node, bound.finder, SystemClock::new(), config, bound.resolved);
    let io = TokioIo::new(socket);
    let shared = Arc::new(Core::new(driven, io, span.clone()));
    if let Some(listener) = bound.listener {
        crate::stream::start(&shared, listener, &config.streams)?;
    }
    tokio::spawn(run(Arc::clone(&shared)).instrument(span.clone()));
    let resolver = (bound.resolution)
        .map(|resolution| tokio::spawn(resolve(Arc::clone(&shared), resolution).instrument(span)));
    Ok((shared, resolver))
}

async fn run(shared: Arc<Shared>) {
    let io = shared.io();
    let mut buffer = vec![0; 65536];
    loop {
        flush_backlog(io).await;
        let wake_at = {
            let driven = shared.lock();
            // `None`: stopped, or a leave is announced or out of time.
            let Some(deadline) = driven.next_wake() else { break };
            driven.clock().to_std(deadline)
        };
        tokio::select! {
            received = io.socket.recv_from(&mut buffer) => match received {
                Ok((len, from)) => shared.handle_datagram(from, &buffer[..len]),
                Err(error) => warn!(%error, "receive failed"),
            },
            () = tokio::time::sleep_until(wake_at.into()) => {
                // What already waits in the socket (an ack, a refutation) counts before
                // the timers act: after a pause of the process or the runtime, the
                // deadline and the datagrams are all ready at once.
                catch_up(&shared, &mut buffer);
                // Stopped in the meantime: the loop ends above.
                let _ = shared.handle_timeout();
            }
            () = io.wake.notified() => {}
        }
    }
    shared.stop();
    io.stopped.notify_one();
    debug!("driver task stopped");
}

/// Handles the datagrams waiting in the socket, at most [`CATCH_UP_DATAGRAMS`], without
/// waiting for more.
fn catch_up(shared: &Shared, buffer: &mut [u8]) {
    for _ in 0..CATCH_UP_DATAGRAMS {
        match shared.io().socket.try_recv_from(buffer) {
            Ok((len, from)) => shared.handle_datagram(from, &buffer[..len]),
            Err(error) => {
                if error.kind() != std::io::ErrorKind::WouldBlock {
                    warn!(%error, "receive failed");
                }
                break;
            }
        }
    }
}

/// Resolves names again when due (on a blocking thread) and joins through new addresses,
/// until the node stops.
async fn resolve(shared: Arc<Shared>, mut resolution: PeerResolution) {
    while let Some(delay) = resolution.next_delay() {
        tokio::time::sleep(delay).await;
        let resolving = tokio::task::spawn_blocking(move || {
            let resolved = resolution.resolve();
            (resolution, resolved)
        });
        let Ok((returned, resolved)) = resolving.await else { return };
        resolution = returned;
        if !shared.resolved(resolved) {
            return;
        }
    }
}

/// Waits until `done` holds for the node, at most `timeout`: whether it held.
pub(crate) async fn wait(
    shared: &Shared,
    timeout: Duration,
    mut done: impl FnMut(&Driven) -> bool,
) -> bool {
    let mut changes = shared.io().changed.subscribe();
    let waited = async {
        loop {
            changes.borrow_and_update();
            {
                let driven = shared.lock();
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

async fn flush_backlog(io: &TokioIo) {
    let backlog = std::mem::take(&mut *lock(&io.backlog));
    for (to, datagram) in backlog {
        if let Err(error) = io.socket.send_to(&datagram, to).await {
            debug!(%error, %to, "send failed");
        }
    }
}
