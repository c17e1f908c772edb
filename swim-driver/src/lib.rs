//! What the swim drivers (`swim-tokio`, `swim-std`) share: the cluster configuration
//! ([`ClusterConfig`]), address parsing and resolution ([`HostPort`], [`Resolver`], peer
//! names retried in the background), binding a socket and a node, snapshots of a node's
//! view ([`Snapshot`]), event fan-out with one lag convention ([`Lagged`]), the warnings an
//! operator needs ([`Warning`]), one error type ([`Error`]), stream messages over TCP
//! (frames, the listener, admission and [`StreamStats`]), and, behind features,
//! `ClusterArgs` (`clap`) and metrics (`metrics`).
//!
//! Applications depend on a driver, which re-exports all of this; they never need to name
//! this crate.
//!
//! # Why a crate and not a module of swim-core
//!
//! Most of this does I/O: it resolves names through DNS, binds sockets, reads the system
//! clock for replay protection and asks the OS for a random seed. swim-core is the protocol
//! alone (`no_std`, deterministic, no I/O), so none of it belongs there. As a crate of its
//! own it is compiled by each driver's users once, without the other driver: a tokio user
//! builds no thread driver, a threaded user no tokio, and neither gets serde unless they
//! turn on the `serde` feature.
//!
//! # Features
//!
//! - `serde`: `serde::Serialize` for the status dump.
//! - `clap`: `ClusterArgs`, the node's command line and `SWIM_*` environment.
//! - `metrics`: the node's counters and member counts through the `metrics` facade (names
//!   and units in the `metrics` module).

#![forbid(unsafe_code)]

mod address;
#[cfg(feature = "clap")]
mod args;
mod config;
mod control;
mod driven;
mod error;
mod fanout;
#[cfg(feature = "metrics")]
pub mod metrics;
mod monitor;
mod resolve;
mod snapshot;
mod stream;

use std::sync::mpsc::{SyncSender, TrySendError};

pub use address::{HostPort, Resolver, split_host_port};
#[cfg(feature = "clap")]
pub use args::{ArgsError, ClusterArgs, parse_seconds};
pub use config::{Bound, ClusterConfig};
pub use control::{Control, Core, Io};
pub use driven::{
    CATCH_UP_DATAGRAMS, Driven, DriverNode, EventOutlet, StreamSink, WatchOutlet, commands, lock,
};
pub use error::{Error, TransientConfigError};
pub use fanout::{Fanout, Lagged, Offered, Outlet};
pub use monitor::{JOIN_HINT_AFTER, Monitor, WARN_EVERY, Warning};
pub use resolve::{PeerResolution, Resolved};
pub use snapshot::Snapshot;
pub use stream::{
    Admitted, FRAME_PREFIX_LEN, FrameError, StreamCounters, StreamSettings, StreamStats,
    bind_listener, frame_len, frame_prefix, read_frame, send_frame,
};

/// The core types a driver's users need, re-exported so one dependency line works.
pub use swim_core::{
    Bytes, ClusterMetadata, Config, ConfigError, Counters, DropReason, Event, Keyring, Lifeguard,
    Member, Metadata, MetadataError, Status, StatusDump, StatusFilter, StreamMessage, WatchFilter,
    Watched,
};

/// The threaded driver's channel, and anyone else's `std::sync::mpsc` bounded channel.
impl<T: Send> Outlet<T> for SyncSender<Result<T, Lagged>> {
    fn offer(&self, item: Result<T, Lagged>) -> Offered {
        match self.try_send(item) {
            Ok(()) => Offered::Sent,
            Err(TrySendError::Full(_)) => Offered::Full,
            Err(TrySendError::Disconnected(_)) => Offered::Closed,
        }
    }
}
