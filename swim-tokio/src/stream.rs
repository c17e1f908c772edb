//! Stream messages on tasks: a listener task accepts connections on the UDP socket's
//! address and reads each on a task of its own (at most `max_connections` at once), and a
//! sender task connects, writes one frame and closes for each message the node queues (at
//! most `max_connections` at once). Everything ends by itself once the node stops: the
//! driver task tells the listener (no polling: an idle member must cost no CPU), readers
//! are bounded by the read timeout, and the senders' queue closes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use swim_core::StreamMessage;
use swim_driver::{
    Error, FRAME_PREFIX_LEN, FrameError, StreamCounters, StreamSettings, frame_len, frame_prefix,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::time::timeout;
use tracing::{Instrument, debug};

use crate::io::Shared;

/// Messages waiting to be sent; more are dropped (and counted as failed).
const QUEUE: usize = 256;

/// How long the listener waits after a failed accept before it tries again.
const RETRY: Duration = Duration::from_millis(20);

/// Starts the listener and the sender for `shared`'s node, on the current runtime.
pub(crate) fn start(
    shared: &Arc<Shared>,
    listener: std::net::TcpListener,
    settings: &StreamSettings,
) -> Result<(), Error> {
    let addr = listener.local_addr().map_err(|source| Error::BindStream {
        addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        source,
    })?;
    let listener = (listener.set_nonblocking(true))
        .and_then(|()| TcpListener::from_std(listener))
        .map_err(|source| Error::BindStream { addr, source })?;
    let counters = Arc::clone(shared.lock().stream_counters());
    let (queue, queued) = mpsc::channel::<StreamMessage>(QUEUE);
    let sink_counters = Arc::clone(&counters);
    shared.lock().set_stream_sink(Box::new(move |message| {
        let len = message.payload.len();
        if queue.try_send(message).is_err() {
            sink_counters.sent(len, false);
        }
    }));
    let span = shared.span().clone();
    let sender = send_queued(queued, Arc::clone(&counters), settings.clone());
    tokio::spawn(sender.instrument(span.clone()));
    let listening = listen(Arc::clone(shared), listener, settings.clone(), counters);
    tokio::spawn(listening.instrument(span));
    Ok(())
}

/// Sends queued messages, each on its own connection, until the queue closes.
async fn send_queued(
    mut queued: mpsc::Receiver<StreamMessage>,
    counters: Arc<StreamCounters>,
    settings: StreamSettings,
) {
    let slots = Arc::new(Semaphore::new(settings.max_connections.max(1)));
    while let Some(message) = queued.recv().await {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else { return };
        let counters = Arc::clone(&counters);
        let limit = settings.connect_timeout;
        tokio::spawn(
            async move {
                let _slot = slot;
                let sent = send_one(&message, limit).await;
                if let Err(error) = &sent {
                    debug!(%error, to = %message.destination, "stream message not sent");
                }
                counters.sent(message.payload.len(), sent.is_ok());
            }
            .in_current_span(),
        );
    }
}

/// Connects and writes one frame, each within `limit`.
async fn send_one(message: &StreamMessage, limit: Duration) -> std::io::Result<()> {
    let timed_out = || std::io::Error::from(std::io::ErrorKind::TimedOut);
    let prefix = frame_prefix(message.payload.len())
        .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    let connecting = timeout(limit, TcpStream::connect(message.destination)).await;
    let mut stream = connecting.map_err(|_| timed_out())??;
    stream.set_nodelay(true)?;
    let writing = async {
        stream.write_all(&prefix).await?;
        stream.write_all(&message.payload).await?;
        stream.shutdown().await
    };
    timeout(limit, writing).await.map_err(|_| timed_out())?
}

/// Accepts connections until the node stops.
async fn listen(
    shared: Arc<Shared>,
    listener: TcpListener,
    settings: StreamSettings,
    counters: Arc<StreamCounters>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, from) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors, say: wait rather than spin.
                        debug!(%error, "accept failed");
                        tokio::time::sleep(RETRY).await;
                        continue;
                    }
                };
                let Some(admitted) = counters.admit(settings.max_connections) else {
                    continue; // Dropped: closed at once.
                };
                let (shared, counters) = (Arc::clone(&shared), Arc::clone(&counters));
                let read_timeout = settings.read_timeout;
                tokio::spawn(
                    async move {
                        let _admitted = admitted;
                        read_connection(&shared, stream, from, read_timeout, &counters).await;
                    }
                    .in_current_span(),
                );
            }
            // A permit: the driver task may end before the listener first waits.
            () = shared.io().stopped.notified() => break,
        }
    }
    debug!("stream listener stopped");
}

/// Reads frames from one connection until it closes, hands each to the node, and cuts the
/// connection off at the first bad one.
async fn read_connection(
    shared: &Shared,
    mut stream: TcpStream,
    from: SocketAddr,
    read_timeout: Duration,
    counters: &StreamCounters,
) {
    let max = shared.lock().node().config().max_stream_message;
    loop {
        match read_frame(&mut stream, max, read_timeout).await {
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

/// Reads one frame within `limit` of its first byte: `Ok(None)` when the connection
/// closed cleanly before one began. The length is checked before the message is read.
async fn read_frame(
    stream: &mut TcpStream,
    max: usize,
    limit: Duration,
) -> Result<Option<Vec<u8>>, FrameError> {
    let mut prefix = [0; FRAME_PREFIX_LEN];
    match timeout(limit, stream.read(&mut prefix[..1])).await {
        Err(_) => return Err(FrameError::TimedOut),
        Ok(Ok(0)) => return Ok(None),
        Ok(Ok(_)) => {}
        Ok(Err(error)) => return Err(error.into()),
    }
    let reading = async {
        read_exact(stream, &mut prefix[1..]).await?;
        let mut message = vec![0; frame_len(prefix, max)?];
        read_exact(stream, &mut message).await?;
        Ok(message)
    };
    timeout(limit, reading).await.map_err(|_| FrameError::TimedOut)?.map(Some)
}

async fn read_exact(stream: &mut TcpStream, buffer: &mut [u8]) -> Result<(), FrameError> {
    match stream.read_exact(buffer).await {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => {
            Err(FrameError::Truncated)
        }
        Err(error) => Err(error.into()),
    }
}
