//! A threaded driver for [`swim_core`] on `std::net::UdpSocket`.
//!
//! One background thread owns the loop: it sleeps in `recv_from` with a read timeout set to
//! the node's next deadline, feeds what arrives, then sends every transmit and publishes
//! every event. [`Handle`] methods drive the node under the same lock and wake the thread.
//! Stream messages (metadata larger than a datagram, push-pull, the fallback ping) travel
//! over TCP on the same port, one connection per message, with threads of their own
//! (`ClusterConfig::streams` sets their limits; `protocol.streams = false` turns them off).
//! No protocol decision is made here; what both drivers share (configuration, name
//! resolution, snapshots, fan-out, errors) is [`swim_driver`]'s, re-exported here with the
//! core types an application needs, so this crate is the only swim dependency.
//!
//! ```toml
//! [dependencies]
//! swim-std = "0.1"
//! ```
//!
//! ```no_run
//! use std::time::Duration;
//! use swim_std::{Cluster, ClusterConfig, Keyring, StatusFilter};
//!
//! let mut config = ClusterConfig::new("127.0.0.1:2001", Keyring::new("shared secret"));
//! config.peers.push("127.0.0.1:2002".into());
//! let node = Cluster::bind(config)?;
//! node.set_metadata("role", "cache")?;
//! let view = node.wait_for(
//!     |view| view.member("127.0.0.1:2002").is_some_and(|m| m.status().is_available()),
//!     Duration::from_secs(10),
//! )?;
//! println!("available: {}", view.members_with(StatusFilter::AVAILABLE).count());
//! println!("roles: {:?}", node.cluster_metadata().get_all("role"));
//! node.leave()?;
//! # Ok::<(), swim_std::Error>(())
//! ```
//!
//! # Features
//!
//! - `serde`: `serde::Serialize` for [`StatusDump`].
//! - `clap`: `ClusterArgs`, the node's command line and `SWIM_*` environment.
//! - `metrics`: counters and member counts through the `metrics` facade (names and units
//!   in `swim_driver::metrics`).

#![forbid(unsafe_code)]

mod driver;
mod handle;
mod io;
mod stream;

pub use handle::{Cluster, Events, Handle};
pub use io::StdIo;
pub use swim_driver::Control;
#[cfg(feature = "clap")]
pub use swim_driver::{ArgsError, ClusterArgs, parse_seconds};
pub use swim_driver::{
    Bytes, ClusterConfig, ClusterMetadata, Config, ConfigError, Counters, DropReason, Error, Event,
    HostPort, Keyring, Lagged, Lifeguard, Member, Metadata, MetadataError, Resolver, Snapshot,
    Status, StatusDump, StatusFilter, StreamSettings, StreamStats, TransientConfigError, Warning,
    WatchFilter, Watched,
};
