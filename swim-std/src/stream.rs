//! Stream messages on threads: a listener thread accepts connections on the UDP socket's
//! address and reads each on a thread of its own (at most `max_connections` at once), and
//! a few sender threads connect, write one frame and close, for each message the node
//! queues. Every thread blocks until it has work (no polling: an idle member must cost no
//! CPU). Everything ends once the node stops: the driver thread wakes the listener with a
//! connection of its own ([`Listening::stop`]), the readers are bounded by the read
//! timeout, and the senders' queue closes.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{self, Receiver, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use swim_core::StreamMessage;
use swim_driver::{Error, StreamCounters, StreamSettings, lock, read_frame, send_frame};
use tracing::{debug, warn};

use crate::io::{Shared, wake_addr};

/// Threads that send queued messages: few, since messages are rare and each is quick, but
/// more than one, so that a member that does not answer delays no one else.
const SENDERS: usize = 4;

/// Messages waiting for a sender; more are dropped (and counted as failed).
const QUEUE: usize = 256;

/// How long the listener waits after a failed accept (out of file descriptors, say)
/// before it tries again, rather than spinning.
const RETRY: Duration = Duration::from_millis(20);

/// How long stopping waits to connect to its own listener.
const STOP_CONNECT: Duration = Duration::from_secs(1);

/// The listener thread, for the driver thread to stop once the node has stopped.
#[derive(Debug)]
pub(crate) struct Listening {
    /// Where a connection wakes the listener from `accept`.
    wake_addr: SocketAddr,
    thread: JoinHandle<()>,
}

impl Listening {
    /// Wakes the listener (blocked in `accept`) with a connection, so that it sees the node
    /// stopped and closes its socket, and waits for it to end. If the connection fails the
    /// thread is left blocked (it ends with the process) rather than waited for forever.
    pub(crate) fn stop(self) {
        match TcpStream::connect_timeout(&self.wake_addr, STOP_CONNECT) {
            Ok(_) => {
                let _ = self.thread.join();
            }
            Err(error) => debug!(%error, "cannot wake the stream listener"),
        }
    }
}

/// Starts the listener and the senders for `shared`'s node; the listener runs until
/// [`Listening::stop`].
pub(crate) fn start(
    shared: &Arc<Shared>,
    listener: TcpListener,
    settings: &StreamSettings,
) -> Result<Listening, Error> {
    let addr = listener.local_addr().map_err(Error::Spawn)?;
    listener.set_nonblocking(false).map_err(|source| Error::BindStream { addr, source })?;
    let counters = Arc::clone(shared.lock().stream_counters());
    let (queue, queued) = mpsc::sync_channel::<StreamMessage>(QUEUE);
    let queued = Arc::new(Mutex::new(queued));
    for i in 0..SENDERS {
        let (queued, counters, timeout) =
            (Arc::clone(&queued), Arc::clone(&counters), settings.connect_timeout);
        std::thread::Builder::new()
            .name(format!("swim stream send {i}"))
            .spawn(move || send_queued(&queued, &counters, timeout))
            .map_err(Error::Spawn)?;
    }
    let sink_counters = Arc::clone(&counters);
    shared.lock().set_stream_sink(Box::new(move |message| {
        let len = message.payload.len();
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = queue.try_send(message)
        {
            sink_counters.sent(len, false);
        }
    }));
    let (shared, settings) = (Arc::clone(shared), settings.clone());
    let thread = std::thread::Builder::new()
        .name(format!("swim stream listen {addr}"))
        .spawn(move || listen(&shared, &listener, &settings, &counters))
        .map_err(Error::Spawn)?;
    Ok(Listening { wake_addr: wake_addr(addr), thread })
}

/// Sends queued messages until the queue closes (the node stopped).
fn send_queued(
    queued: &Mutex<Receiver<StreamMessage>>,
    counters: &StreamCounters,
    timeout: Duration,
) {
    // One sender waits in `recv` holding the lock, the others wait for the lock; when the
    // node stops the queue closes and each in turn sees it closed.
    loop {
        let next = lock(queued).recv();
        let Ok(message) = next else { return };
        let sent = send_frame(message.destination, &message.payload, timeout);
        if let Err(error) = &sent {
            debug!(%error, to = %message.destination, "stream message not sent");
        }
        counters.sent(message.payload.len(), sent.is_ok());
    }
}

/// Accepts connections until the node stops.
fn listen(
    shared: &Arc<Shared>,
    listener: &TcpListener,
    settings: &StreamSettings,
    counters: &Arc<StreamCounters>,
) {
    let _span = shared.span().enter();
    loop {
        let accepted = listener.accept();
        // The connection that wakes the listener on stop, or one that came too late.
        if shared.lock().is_stopped() {
            break;
        }
        match accepted {
            Ok((stream, from)) => {
                let Some(admitted) = counters.admit(settings.max_connections) else {
                    continue; // Dropped: closed at once.
                };
                let (shared, counters) = (Arc::clone(shared), Arc::clone(counters));
                let settings = settings.clone();
                let spawned = std::thread::Builder::new()
                    .name(format!("swim stream read {from}"))
                    .spawn(move || {
                        let _admitted = admitted;
                        read_connection(&shared, stream, from, &settings, &counters);
                    });
                if let Err(error) = spawned {
                    warn!(%error, "cannot start a stream reader");
                }
            }
            Err(error) => {
                debug!(%error, "accept failed");
                std::thread::sleep(RETRY);
            }
        }
    }
    debug!("stream listener stopped");
}

/// Reads frames from one connection until it closes, hands each to the node, and cuts the
/// connection off at the first bad one.
fn read_connection(
    shared: &Shared,
    mut stream: TcpStream,
    from: SocketAddr,
    settings: &StreamSettings,
    counters: &StreamCounters,
) {
    if stream.set_nonblocking(false).is_err() {
        return;
    }
    let max = shared.lock().node().config().max_stream_message;
    loop {
        match read_frame(&mut stream, max, settings.read_timeout) {
            Ok(Some(message)) => {
                counters.received(message.len());
                shared.handle_stream(from, &message);
            }
            Ok(None) => return,
            Err(error) => {
                counters.cut_off();
                debug!(%error, %from, "stream connection cut off");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::time::{Duration, Instant};

    use swim_driver::{ClusterConfig, Keyring};

    use crate::Cluster;

    #[test]
    fn a_stopped_node_closes_its_stream_listener_before_the_handle_is_gone() {
        let mut config = ClusterConfig::new("a", Keyring::new("k"));
        config.bind_host = Some("127.0.0.1".into());
        assert!(config.protocol.streams, "the drivers' default");
        let node = Cluster::bind(config).unwrap();
        let addr = node.local_addr();
        assert!(TcpListener::bind(addr).is_err(), "the listener holds the port");
        let started = Instant::now();
        node.abort();
        // Joins the driver thread, which wakes the listener blocked in `accept` and joins it.
        drop(node);
        assert!(started.elapsed() < Duration::from_secs(1), "the listener was not woken");
        TcpListener::bind(addr).expect("the port is free once the node is dropped");
    }
}
