//! Stream messages on threads: a listener thread accepts connections on the UDP socket's
//! address and reads each on a thread of its own (at most `max_connections` at once), and
//! a few sender threads connect, write one frame and close, for each message the node
//! queues. Everything ends by itself once the node stops: the listener polls for it, the
//! readers are bounded by the read timeout, and the senders' queue closes.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use swim_core::StreamMessage;
use swim_driver::{Error, StreamCounters, StreamSettings, lock, read_frame, send_frame};
use tracing::{debug, warn};

use crate::driver::Shared;

/// Threads that send queued messages: few, since messages are rare and each is quick, but
/// more than one, so that a member that does not answer delays no one else.
const SENDERS: usize = 4;

/// Messages waiting for a sender; more are dropped (and counted as failed).
const QUEUE: usize = 256;

/// How often the listener looks whether the node stopped.
const POLL: Duration = Duration::from_millis(20);

/// Starts the listener and the senders for `shared`'s node.
pub(crate) fn start(
    shared: &Arc<Shared>,
    listener: TcpListener,
    settings: &StreamSettings,
) -> Result<(), Error> {
    let addr = listener.local_addr().map_err(Error::Spawn)?;
    listener.set_nonblocking(true).map_err(|source| Error::BindStream { addr, source })?;
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
    std::thread::Builder::new()
        .name(format!("swim stream listen {addr}"))
        .spawn(move || listen(&shared, &listener, &settings, &counters))
        .map_err(Error::Spawn)?;
    Ok(())
}

/// Sends queued messages until the queue closes (the node stopped).
fn send_queued(
    queued: &Mutex<Receiver<StreamMessage>>,
    counters: &StreamCounters,
    timeout: Duration,
) {
    loop {
        let next = lock(queued).recv_timeout(POLL * 10);
        let message = match next {
            Ok(message) => message,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        };
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
    while !shared.lock().is_stopped() {
        match listener.accept() {
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
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(POLL);
            }
            Err(error) => {
                debug!(%error, "accept failed");
                std::thread::sleep(POLL);
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
