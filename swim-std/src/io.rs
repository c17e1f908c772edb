//! What the driver thread, the handles and the stream threads share: the node behind its
//! lock, and the threaded driver's I/O (the socket, and how to wake the thread).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::Condvar;
use std::sync::atomic::{AtomicUsize, Ordering};

use swim_driver::{Core, Io};
use tracing::debug;

/// The threaded driver's I/O: a blocking socket, and a condition variable for waiters.
#[derive(Debug)]
pub struct StdIo {
    pub(crate) socket: UdpSocket,
    /// Where an empty datagram wakes the thread: the socket's own address.
    wake_addr: SocketAddr,
    /// Notified after a step while anyone waits, for `wait_for` and `leave`.
    pub(crate) changed: Condvar,
    /// Threads waiting for a change: without any, a step notifies no one (a notification
    /// is a system call, paid on every datagram).
    pub(crate) waiters: AtomicUsize,
}

impl Io for StdIo {
    fn send(&self, to: SocketAddr, datagram: &[u8]) {
        if let Err(error) = self.socket.send_to(datagram, to) {
            debug!(%error, %to, "send failed");
        }
    }

    fn wake(&self) {
        if let Err(error) = self.socket.send_to(&[], self.wake_addr) {
            debug!(%error, "cannot wake the driver thread");
        }
    }

    fn stepped(&self) {
        // A waiter registers under the node's lock before it checks the node, and a step
        // calls this after releasing that lock: a waiter either saw the step or is counted.
        if self.waiters.load(Ordering::SeqCst) > 0 {
            self.changed.notify_all();
        }
    }
}

pub(crate) type Shared = Core<StdIo>;

impl StdIo {
    /// The I/O of a node bound to `socket` at `local`.
    pub(crate) fn new(socket: UdpSocket, local: SocketAddr) -> Self {
        StdIo {
            socket,
            wake_addr: wake_addr(local),
            changed: Condvar::new(),
            waiters: AtomicUsize::new(0),
        }
    }
}

/// The bound address, as something a datagram can be sent to.
pub(crate) fn wake_addr(mut local: SocketAddr) -> SocketAddr {
    if local.ip().is_unspecified() {
        local.set_ip(match local.ip() {
            IpAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
            IpAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
        });
    }
    local
}
