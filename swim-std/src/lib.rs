//! A threaded driver for [`swim_core`] on `std::net::UdpSocket`, and the driver-side
//! configuration (name resolution, bind and advertised addresses) that swim-tokio shares.
//!
//! One background thread owns the loop: it sleeps in `recv_from` with a read timeout set to
//! the node's next deadline, feeds what arrives, then sends every transmit and publishes
//! every event. Handle methods drive the node under the same lock and wake the thread with
//! an empty datagram to its own socket. No protocol decision is made here.
//!
//! ```no_run
//! use std::time::Duration;
//! use swim_std::{Cluster, ClusterConfig};
//! use swim_core::{Keyring, StatusFilter};
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

#![forbid(unsafe_code)]

mod config;
mod driver;

pub use config::{
    Bound, ClusterConfig, Error, Refresh, Resolver, Snapshot, TransientConfigError, split_host_port,
};
pub use driver::{Cluster, Handle, Lagged};
pub use swim_core::{ClusterMetadata, StatusDump, WatchFilter, Watched};
