//! Stream messages over TCP, what both drivers share: the settings, the frame (a 4-byte
//! big-endian length, checked against `max_stream_message` before a byte of the message is
//! read), the listener on the same address as the UDP socket, admission under a limit of
//! concurrent connections, and the counters.
//!
//! Outgoing messages take one connection each: connect, write one frame, close (the Python
//! swim-protocol package's one-shot connections). Messages are rare (a metadata fetch, a
//! push-pull every few minutes, a ping to a member that does not answer over UDP), so a
//! pool would keep sockets open for little; a receiver reads frames until the connection
//! closes, so a driver that pools later needs no change on the other side.
//!
//! A receiver bounds what a peer can cost it: at most `max_connections` connections at once
//! (more are closed at once and counted as refused), each frame read within `read_timeout`
//! of its first byte (a slow sender is cut off), and a length above `max_stream_message`
//! closes the connection before anything is allocated. What passes is handed to the node,
//! which authenticates it like a datagram.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Bytes of the length prefix before each stream message.
pub const FRAME_PREFIX_LEN: usize = 4;

/// How the drivers carry stream messages.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamSettings {
    /// Longest time from a frame's first byte to its last (default 5 s): a sender slower
    /// than that is cut off.
    pub read_timeout: Duration,
    /// Longest time to connect to a member, and to write one message (default 3 s).
    pub connect_timeout: Duration,
    /// Most incoming connections open at once (default 64); more are closed at once and
    /// counted as refused. Outgoing connections are bounded the same way.
    pub max_connections: usize,
}

impl Default for StreamSettings {
    fn default() -> Self {
        StreamSettings {
            read_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(3),
            max_connections: 64,
        }
    }
}

/// Why a frame was not read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The length prefix announced more than `max_stream_message`.
    #[error("frame of {len} bytes is larger than {max}")]
    TooLarge {
        /// The announced length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The frame did not arrive within the read timeout.
    #[error("frame not read within the read timeout")]
    TimedOut,
    /// The connection closed in the middle of a frame.
    #[error("connection closed in the middle of a frame")]
    Truncated,
    /// The connection failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// The length a prefix announces, if it is at most `max`.
pub fn frame_len(prefix: [u8; FRAME_PREFIX_LEN], max: usize) -> Result<usize, FrameError> {
    let len = u32::from_be_bytes(prefix) as usize;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    Ok(len)
}

/// The prefix of a message of `len` bytes (`None` beyond 4 GiB, which no node sends).
pub fn frame_prefix(len: usize) -> Option<[u8; FRAME_PREFIX_LEN]> {
    u32::try_from(len).ok().map(u32::to_be_bytes)
}

/// Reads one frame from a blocking stream within `timeout` of its first byte: `Ok(None)`
/// when the connection closed cleanly before one began.
pub fn read_frame(
    stream: &mut TcpStream,
    max: usize,
    timeout: Duration,
) -> Result<Option<Vec<u8>>, FrameError> {
    let mut prefix = [0; FRAME_PREFIX_LEN];
    stream.set_read_timeout(Some(timeout))?;
    // The first byte may be long in coming on an idle connection: it starts the clock.
    match stream.read(&mut prefix[..1]) {
        Ok(0) => return Ok(None),
        Ok(_) => {}
        Err(error) if is_timeout(&error) => return Err(FrameError::TimedOut),
        Err(error) => return Err(error.into()),
    }
    let deadline = Instant::now() + timeout;
    read_until(stream, &mut prefix[1..], deadline)?;
    let len = frame_len(prefix, max)?;
    let mut message = vec![0; len];
    read_until(stream, &mut message, deadline)?;
    Ok(Some(message))
}

/// Fills `buffer` by `deadline`.
fn read_until(
    stream: &mut TcpStream,
    buffer: &mut [u8],
    deadline: Instant,
) -> Result<(), FrameError> {
    let mut filled = 0;
    while filled < buffer.len() {
        let left = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero());
        let Some(left) = left else { return Err(FrameError::TimedOut) };
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut buffer[filled..]) {
            Ok(0) => return Err(FrameError::Truncated),
            Ok(n) => filled += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) if is_timeout(&error) => return Err(FrameError::TimedOut),
            Err(error) => return Err(error.into()),
        }
    }
    Ok(())
}

/// Connects to `to` and writes `message` as one frame, all within `timeout` each.
pub fn send_frame(to: SocketAddr, message: &[u8], timeout: Duration) -> io::Result<()> {
    let prefix = frame_prefix(message.len())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "message too large"))?;
    let mut stream = TcpStream::connect_timeout(&to, timeout)?;
    stream.set_write_timeout(Some(timeout))?;
    stream.set_nodelay(true)?;
    stream.write_all(&prefix)?;
    stream.write_all(message)?;
    stream.flush()
}

fn is_timeout(error: &io::Error) -> bool {
    matches!(error.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

/// Binds the TCP listener on the UDP socket's address (the same port), as the Python
/// swim-protocol package does.
pub fn bind_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(addr)
}

/// What a driver's streams did, as [`StreamCounters::stats`] reads it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamStats {
    /// Incoming connections accepted.
    pub accepted: u64,
    /// Incoming connections closed at once: `max_connections` were open.
    pub refused: u64,
    /// Outgoing connections that delivered their message.
    pub sent: u64,
    /// Outgoing messages that failed: no connection, a write that failed or timed out, or
    /// a full queue.
    pub failed: u64,
    /// Frames received whole and handed to the node.
    pub received: u64,
    /// Incoming connections cut off: a length above `max_stream_message`, a frame not read
    /// within the read timeout, or one that ended early.
    pub cut_off: u64,
    /// Bytes of messages received whole.
    pub bytes_in: u64,
    /// Bytes of messages sent.
    pub bytes_out: u64,
}

/// The counters, shared by a driver's listener and senders; and the count of connections
/// open, for admission.
#[derive(Debug, Default)]
pub struct StreamCounters {
    accepted: AtomicU64,
    refused: AtomicU64,
    sent: AtomicU64,
    failed: AtomicU64,
    received: AtomicU64,
    cut_off: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    open_in: AtomicUsize,
}

impl StreamCounters {
    /// The counts so far.
    pub fn stats(&self) -> StreamStats {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        StreamStats {
            accepted: get(&self.accepted),
            refused: get(&self.refused),
            sent: get(&self.sent),
            failed: get(&self.failed),
            received: get(&self.received),
            cut_off: get(&self.cut_off),
            bytes_in: get(&self.bytes_in),
            bytes_out: get(&self.bytes_out),
        }
    }

    /// Admits an incoming connection if fewer than `max` are open: the guard keeps it
    /// counted until dropped. Counts the refusal otherwise.
    pub fn admit(self: &Arc<Self>, max: usize) -> Option<Admitted> {
        let open = self.open_in.fetch_add(1, Ordering::AcqRel);
        if open >= max {
            self.open_in.fetch_sub(1, Ordering::AcqRel);
            self.refused.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        self.accepted.fetch_add(1, Ordering::Relaxed);
        Some(Admitted(Arc::clone(self)))
    }

    /// A frame of `len` bytes arrived whole.
    pub fn received(&self, len: usize) {
        self.received.fetch_add(1, Ordering::Relaxed);
        self.bytes_in.fetch_add(len as u64, Ordering::Relaxed);
    }

    /// An incoming connection was cut off.
    pub fn cut_off(&self) {
        self.cut_off.fetch_add(1, Ordering::Relaxed);
    }

    /// A message of `len` bytes was sent, or failed.
    pub fn sent(&self, len: usize, ok: bool) {
        if ok {
            self.sent.fetch_add(1, Ordering::Relaxed);
            self.bytes_out.fetch_add(len as u64, Ordering::Relaxed);
        } else {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// An admitted incoming connection; dropping it frees its place.
#[derive(Debug)]
pub struct Admitted(Arc<StreamCounters>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.open_in.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_is_checked_before_anything_is_read() {
        assert_eq!(frame_len(frame_prefix(10).unwrap(), 10).unwrap(), 10);
        assert!(matches!(
            frame_len([0xff; 4], 1 << 20),
            Err(FrameError::TooLarge { len: 0xffff_ffff, .. })
        ));
    }

    #[test]
    fn admission_stops_at_the_limit_and_frees_places() {
        let counters = Arc::new(StreamCounters::default());
        let first = counters.admit(2).unwrap();
        let _second = counters.admit(2).unwrap();
        assert!(counters.admit(2).is_none());
        drop(first);
        assert!(counters.admit(2).is_some());
        let stats = counters.stats();
        assert_eq!((stats.accepted, stats.refused), (3, 1));
    }

    #[test]
    fn frames_round_trip_over_loopback_and_slow_or_oversized_ones_are_cut_off() {
        let listener = bind_listener("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        send_frame(addr, b"hello", Duration::from_secs(1)).unwrap();
        let (mut stream, _) = listener.accept().unwrap();
        let frame = read_frame(&mut stream, 100, Duration::from_secs(1)).unwrap();
        assert_eq!(frame.as_deref(), Some(&b"hello"[..]));
        assert!(read_frame(&mut stream, 100, Duration::from_secs(1)).unwrap().is_none());
        // Oversized: refused from the prefix alone.
        send_frame(addr, &[0; 101], Duration::from_secs(1)).unwrap();
        let (mut stream, _) = listener.accept().unwrap();
        let error = read_frame(&mut stream, 100, Duration::from_secs(1)).unwrap_err();
        assert!(matches!(error, FrameError::TooLarge { len: 101, max: 100 }));
        // Slow: a prefix, then nothing.
        let mut slow = TcpStream::connect(addr).unwrap();
        slow.write_all(&[0, 0, 0, 50, 1]).unwrap();
        let (mut stream, _) = listener.accept().unwrap();
        let started = Instant::now();
        let error = read_frame(&mut stream, 100, Duration::from_millis(200)).unwrap_err();
        assert!(matches!(error, FrameError::TimedOut), "{error}");
        assert!(started.elapsed() < Duration::from_secs(2));
        // Ended early.
        drop(slow);
        let mut short = TcpStream::connect(addr).unwrap();
        short.write_all(&[0, 0, 0, 50, 1, 2]).unwrap();
        drop(short);
        let (mut stream, _) = listener.accept().unwrap();
        let error = read_frame(&mut stream, 100, Duration::from_secs(1)).unwrap_err();
        assert!(matches!(error, FrameError::Truncated), "{error}");
    }
}
