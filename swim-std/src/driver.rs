//! The threaded driver: one background thread sleeping in `recv_from` with a read timeout
//! set to the node's next deadline; handle methods drive the node under the same lock and
//! wake the thread with an empty datagram to its own socket.

use std::net::UdpSocket;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use swim_core::SystemClock;
use swim_driver::{Bound, CATCH_UP_DATAGRAMS, ClusterConfig, Core, Driven, Error, PeerResolution};
use tracing::{debug, info_span, warn};

use crate::io::{Shared, StdIo};

/// How late past a deadline the thread may wake from a wait that timed out and still take
/// the socket to have been empty at the deadline. The kernel rounds a socket's read timeout
/// up to its timer ticks (4 ms at 250 Hz); a later wake means the thread was held up
/// (paused, starved of CPU) and datagrams may have arrived meanwhile.
const ON_TIME: Duration = Duration::from_millis(20);

/// A started node: what handles share, and the threads to stop with the last of them.
pub(crate) struct Started {
    pub(crate) shared: Arc<Shared>,
    pub(crate) thread: JoinHandle<()>,
    /// Dropping it stops the resolver thread, if there is one.
    pub(crate) resolver: Option<Sender<()>>,
}

/// Starts the driver thread (and the resolver thread, if names need resolving again).
pub(crate) fn start(bound: Bound, config: &ClusterConfig) -> Result<Started, Error> {
    let name = bound.node.local_member().name().to_owned();
    let driven = Driven::new(bound.node, bound.finder, SystemClock::new(), config, bound.resolved);
    let io = StdIo::new(bound.socket, bound.local_addr);
    let shared = Arc::new(Core::new(driven, io, info_span!("swim", node = %name)));
    let listening = (bound.listener)
        .map(|listener| crate::stream::start(&shared, listener, &config.streams))
        .transpose()?;
    let driver = Arc::clone(&shared);
    let thread = std::thread::Builder::new()
        .name(format!("swim {name}"))
        .spawn(move || {
            run(&driver);
            if let Some(listening) = listening {
                listening.stop();
            }
        })
        .map_err(Error::Spawn)?;
    let resolver = bound.resolution.and_then(|resolution| {
        let (stop, stopped) = mpsc::channel();
        let shared = Arc::clone(&shared);
        let spawned = std::thread::Builder::new()
            .name(format!("swim resolve {name}"))
            .spawn(move || resolve(&shared, resolution, &stopped));
        // Without the thread the node runs with the names resolved at bind.
        spawned.map_err(|error| warn!(%error, "cannot start the resolver thread")).ok()?;
        Some(stop)
    });
    Ok(Started { shared, thread, resolver })
}

fn run(shared: &Shared) {
    let _span = shared.span().enter();
    let socket = &shared.io().socket;
    let mut buffer = vec![0; 65536];
    loop {
        let (wait, deadline) = {
            let driven = shared.lock();
            // `None`: stopped, or a leave is announced or out of time.
            let Some(deadline) = driven.next_wake() else { break };
            let clock = driven.clock();
            (deadline.saturating_duration_since(clock.now()), clock.to_std(deadline))
        };
        let mut emptied = false;
        if !wait.is_zero() {
            if let Err(error) = socket.set_read_timeout(Some(wait)) {
                warn!(%error, "cannot set the read timeout");
            }
            match socket.recv_from(&mut buffer) {
                // An empty datagram carries nothing: it is a wake-up from a handle.
                Ok((0, _)) => {}
                Ok((len, from)) => {
                    shared.handle_datagram(from, &buffer[..len]);
                    continue;
                }
                // Nothing arrived until the deadline.
                Err(error) if is_timeout(&error) => emptied = true,
                // A stop and resume (SIGSTOP, SIGCONT) ends a wait with a read timeout
                // as interrupted, whatever waits in the socket.
                Err(error) if is_interrupted(&error) => {}
                Err(error) => warn!(%error, "receive failed"),
            }
        }
        // A deadline passed, maybe long ago if this thread was paused: what already waits
        // in the socket (an ack, a refutation) counts before the timers act. A wait that
        // timed out on time found the socket empty at the deadline: no system call to
        // look again.
        let on_time = std::time::Instant::now() <= deadline + ON_TIME;
        if !(emptied && on_time) {
            catch_up(shared, socket, &mut buffer);
        }
        // Stopped in the meantime: the loop ends above.
        let _ = shared.handle_timeout();
    }
    shared.stop();
    debug!("driver thread stopped");
}

/// Handles the datagrams waiting in the socket, at most [`CATCH_UP_DATAGRAMS`], without
/// blocking.
fn catch_up(shared: &Shared, socket: &UdpSocket, buffer: &mut [u8]) {
    // Non-blocking only while it reads: std offers no per-call flag. A send from another
    // thread meanwhile could see `WouldBlock` if the send buffer were full (UDP: dropped,
    // as a congested link would).
    if let Err(error) = socket.set_nonblocking(true) {
        warn!(%error, "cannot read the socket without blocking");
        return;
    }
    for _ in 0..CATCH_UP_DATAGRAMS {
        match socket.recv_from(buffer) {
            Ok((0, _)) => {}
            Ok((len, from)) => shared.handle_datagram(from, &buffer[..len]),
            Err(error) if is_interrupted(&error) => {}
            Err(error) => {
                if !is_timeout(&error) {
                    warn!(%error, "receive failed");
                }
                break;
            }
        }
    }
    if let Err(error) = socket.set_nonblocking(false) {
        warn!(%error, "cannot make the socket blocking again");
    }
}

/// The resolver thread: resolves names again when due and joins through new addresses,
/// until told to stop or the node stops.
fn resolve(shared: &Shared, mut resolution: PeerResolution, stopped: &Receiver<()>) {
    while let Some(delay) = resolution.next_delay() {
        if !matches!(stopped.recv_timeout(delay), Err(RecvTimeoutError::Timeout)) {
            return;
        }
        if !shared.resolved(resolution.resolve()) {
            return;
        }
    }
}

/// Blocks until `done` holds for the node, at most `timeout`: whether it held.
pub(crate) fn wait(
    shared: &Shared,
    timeout: Duration,
    mut done: impl FnMut(&Driven) -> bool,
) -> bool {
    let end = std::time::Instant::now() + timeout;
    let mut driven = shared.lock();
    let _waiting = Waiting::register(&shared.io().waiters);
    while !done(&driven) {
        let Some(left) = end.checked_duration_since(std::time::Instant::now()) else {
            return false;
        };
        if driven.is_stopped() {
            return false;
        }
        let woken = shared.io().changed.wait_timeout(driven, left);
        driven = woken.unwrap_or_else(PoisonError::into_inner).0;
    }
    true
}

/// A thread counted in [`StdIo::waiters`] while it lives.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn register(waiters: &'a AtomicUsize) -> Self {
        waiters.fetch_add(1, Ordering::SeqCst);
        Waiting(waiters)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn is_interrupted(error: &std::io::Error) -> bool {
    error.kind() == std::io::ErrorKind::Interrupted
}

fn is_timeout(error: &std::io::Error) -> bool {
    matches!(error.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)
}
