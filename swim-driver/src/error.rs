//! Why a node could not be started, or a command not carried out: one error type for both
//! drivers.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

/// Why a node could not be started, or a command not carried out. Each variant says
/// whether anything changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The protocol configuration is invalid (the error names the field). Nothing was
    /// started, or, from `set_keyring`, nothing changed.
    #[error(transparent)]
    Config(#[from] swim_core::ConfigError),
    /// An address or name that can never be used, whatever DNS says later: the setting
    /// `field` (`local_name`, `peer`, `advertise`, `bind_host`, `discovery`). Nothing was
    /// started.
    #[error("invalid {field} `{value}`: {reason}")]
    InvalidAddress {
        /// Which setting.
        field: &'static str,
        /// Its value.
        value: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A name this node cannot start without (its bind host, or the discovery service not
    /// yet listing this node) did not resolve; retrying later may succeed. Nothing was
    /// started. Peer names never cause it: they are retried in the background.
    #[error(transparent)]
    Transient(#[from] TransientConfigError),
    /// The socket could not be bound (e.g. the port is in use). Nothing was started.
    #[error("cannot bind UDP socket to {addr}: {source}")]
    Bind {
        /// The address tried.
        addr: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// The TCP listener for stream messages could not be bound on the UDP socket's address
    /// (e.g. the TCP port is in use). Nothing was started.
    #[error("cannot bind TCP listener to {addr}: {source}")]
    BindStream {
        /// The address tried.
        addr: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// The threaded driver could not start its thread. Nothing was started.
    #[error("cannot start the driver thread: {0}")]
    Spawn(io::Error),
    /// The OS gave no randomness for the RNG seed. Nothing was started.
    #[error("cannot seed the RNG from the OS: {0}")]
    Random(getrandom::Error),
    /// The metadata change was refused; the metadata is unchanged.
    #[error(transparent)]
    Metadata(#[from] swim_core::MetadataError),
    /// A graceful leave did not finish announcing within `leave_timeout`; the node stopped.
    #[error("the leave announcement did not finish within {0:?}")]
    LeaveTimedOut(Duration),
    /// The node is no longer running (it left, was aborted, or its runtime stopped).
    #[error("the node has stopped")]
    Stopped,
    /// What was waited for did not happen in time; nothing changed.
    #[error("timed out after {0:?}")]
    TimedOut(Duration),
}

/// A name failed to resolve, which may pass: retry after [`Self::wait_hint`].
#[derive(Debug, thiserror::Error)]
#[error("cannot resolve `{name}`: {source} (may be temporary; retry in {wait_hint:?})")]
pub struct TransientConfigError {
    pub(crate) name: String,
    pub(crate) wait_hint: Duration,
    pub(crate) source: io::Error,
}

impl TransientConfigError {
    /// The `HOST:PORT` that failed.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How long to wait before retrying.
    pub fn wait_hint(&self) -> Duration {
        self.wait_hint
    }
}
