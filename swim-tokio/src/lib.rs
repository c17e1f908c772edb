//! A tokio driver for [`swim_core`]: one task per node selects over the socket, a sleep
//! until the node's next deadline, and a wake-up from the handles; after every input it
//! sends every transmit straight from the node's buffers and publishes every event. No
//! protocol decision is made here. What both drivers share (configuration, name
//! resolution, snapshots, fan-out, errors) is [`swim_driver`]'s, re-exported here with the
//! core types an application needs, so this crate is the only swim dependency:
//!
//! ```toml
//! [dependencies]
//! swim-tokio = "0.1"
//! tokio = { version = "1", features = ["macros", "rt-multi-thread"] }
//! ```
//!
//! ```no_run
//! use std::time::Duration;
//! use swim_tokio::{Cluster, ClusterConfig, Keyring, Status, StreamExt};
//!
//! # async fn run() -> Result<(), swim_tokio::Error> {
//! let mut config = ClusterConfig::new("127.0.0.1:2001", Keyring::new("shared secret"));
//! config.peers.push("127.0.0.1:2002".into());
//! let node = Cluster::bind(config).await?;
//! node.set_metadata("role", "cache")?;
//! let mut events = node.subscribe();
//! let online = |view: &swim_tokio::Snapshot| {
//!     view.member("127.0.0.1:2002").is_some_and(|m| m.status() == Status::Online)
//! };
//! node.wait_for(online, Duration::from_secs(10)).await?;
//! while let Some(Ok(event)) = events.next().await {
//!     println!("{event:?}");
//! #   break;
//! }
//! node.leave().await
//! # }
//! ```
//!
//! The cluster metadata view and a watch (the README's example):
//!
//! ```no_run
//! use std::time::Duration;
//! use swim_tokio::{Cluster, ClusterConfig, Keyring, WatchFilter};
//!
//! # async fn run() -> Result<(), swim_tokio::Error> {
//! let mut config = ClusterConfig::new("127.0.0.1:2001", Keyring::new("shared secret"));
//! config.peers.push("127.0.0.1:2002".into());
//! let node = Cluster::bind(config).await?;
//! node.set_metadata("role", "cache")?;
//! node.wait_ready(Duration::from_secs(10)).await?; // heard from the cluster
//!
//! let view = node.cluster_metadata();
//! println!("mine: {:?}", view.local().get("role"));
//! for (member, role) in view.remote_values("role") {
//!     println!("{member} is a {role:?}");
//! }
//! println!("every role: {:?}", view.get_all("role"));
//!
//! let mut roles = node.watch(WatchFilter::all().metadata_key("role"));
//! while let Some(Ok(watched)) = roles.recv().await {
//!     println!("{:?}: {:?}", watched.name(), watched.event);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Stream messages (metadata larger than a datagram, push-pull, the fallback ping) travel
//! over TCP on the same port, one connection per message, on tasks of their own
//! (`ClusterConfig::streams` sets their limits; `protocol.streams = false` turns them off).
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
pub use io::TokioIo;
pub use swim_driver::Control;
#[cfg(feature = "clap")]
pub use swim_driver::{ArgsError, ClusterArgs, parse_seconds};
pub use swim_driver::{
    Bytes, ClusterConfig, ClusterMetadata, Config, ConfigError, Counters, DropReason, Error, Event,
    HostPort, Keyring, Lagged, Lifeguard, Member, Metadata, MetadataError, Resolver, Snapshot,
    Status, StatusDump, StatusFilter, StreamSettings, StreamStats, TransientConfigError, Warning,
    WatchFilter, Watched,
};
/// The stream trait [`Events`] implements, and its combinators (`next`, `filter`, ...).
pub use tokio_stream::{Stream, StreamExt};
