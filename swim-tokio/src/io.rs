//! What the driver task, the handles and the stream tasks share: the node behind its lock,
//! and the tokio driver's I/O (the socket, and how to wake the task).

use std::net::SocketAddr;
use std::sync::Mutex;

use swim_driver::{Core, Io, lock};
use tokio::net::UdpSocket;
use tokio::sync::{Notify, watch};
use tracing::debug;

/// The tokio driver's I/O: a non-blocking socket, a wake-up for the task, a change signal
/// for waiters.
#[derive(Debug)]
pub struct TokioIo {
    pub(crate) socket: UdpSocket,
    /// Datagrams the socket could not take at once (it would have blocked): the only ones
    /// copied, sent by the driver task when the socket is writable again.
    pub(crate) backlog: Mutex<Vec<(SocketAddr, Vec<u8>)>>,
    /// Wakes the driver task: the deadline changed, the backlog filled, or it should stop.
    pub(crate) wake: Notify,
    /// Bumped after every step, for `wait_for` and `leave`.
    pub(crate) changed: watch::Sender<()>,
    /// Tells the stream listener that the driver task has ended.
    pub(crate) stopped: Notify,
}

impl Io for TokioIo {
    /// Sends straight from the node's buffer; only a datagram the socket cannot take now
    /// is copied, for the driver task to send when it can.
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

    fn wake(&self) {
        self.wake.notify_one();
    }

    fn stepped(&self) {
        self.changed.send_replace(());
    }
}

impl TokioIo {
    /// The I/O of a node bound to `socket` (non-blocking, registered with the runtime).
    pub(crate) fn new(socket: UdpSocket) -> Self {
        TokioIo {
            socket,
            backlog: Mutex::new(Vec::new()),
            wake: Notify::new(),
            changed: watch::Sender::new(()),
            stopped: Notify::new(),
        }
    }
}

pub(crate) type Shared = Core<TokioIo>;
