//! The SWIM membership protocol as a pure, deterministic, sans-IO state machine.
//!
//! A [`Node`] is one member of a cluster. It detects failed members with SWIM's
//! ping / ping-req probes and suspicion, spreads membership facts and metadata by
//! piggybacked gossip, and repairs whatever gossip missed with periodic anti-entropy. It
//! performs no I/O: it never reads a clock, opens a socket, spawns a thread or asks the OS
//! for randomness. Time comes in as an [`Instant`], randomness from the RNG you give it, so
//! the same configuration, seed and inputs always produce the same datagrams and events.
//!
//! # Driving a node
//!
//! Like `quinn-proto`, a node has four kinds of methods:
//!
//! - inputs: [`Node::handle_datagram`], [`Node::handle_stream`] and [`Node::handle_timeout`];
//! - commands: [`Node::join`], [`Node::leave`], [`Node::set_metadata`],
//!   [`Node::remove_metadata`];
//! - outputs: [`Node::poll_transmit`], [`Node::poll_stream`], [`Node::poll_timeout`],
//!   [`Node::poll_event`];
//! - queries: [`Node::local_member`], [`Node::members`], [`Node::members_with`],
//!   [`Node::find`], [`Node::member`], [`Node::is_ready`], [`Node::counters`]; for
//!   applications, views built from a node: [`ClusterMetadata::of`], [`StatusDump::of`],
//!   [`Watch::of`].
//!
//! After *every* input or command, drain the outputs in this order: send every transmit
//! (and, with streams, every stream message), take every event, then sleep until
//! [`Node::poll_timeout`] (or the next datagram) and call [`Node::handle_timeout`] with the
//! time you woke. Calling it early is harmless.
//!
//! ```
//! use std::collections::VecDeque;
//! use std::net::SocketAddr;
//! use rand_chacha::ChaCha8Rng;
//! use rand_core::SeedableRng;
//! use swim_core::{Config, Event, Instant, Keyring, Node, Status};
//!
//! // Two nodes on a perfect virtual network: a queue of datagrams and a virtual clock.
//! let addrs: [SocketAddr; 2] = ["127.0.0.1:7001".parse()?, "127.0.0.1:7002".parse()?];
//! let mut nodes: Vec<Node<ChaCha8Rng>> = addrs
//!     .iter()
//!     .enumerate()
//!     .map(|(i, addr)| {
//!         let mut config = Config::new(addr.to_string(), *addr, Keyring::new("shared secret"));
//!         // The wall clock (ms since 1970) at `Instant::ZERO`: a real loop reads SystemTime.
//!         config.epoch_ms = 1_700_000_000_000;
//!         Node::new(config, ChaCha8Rng::seed_from_u64(i as u64), Instant::ZERO)
//!     })
//!     .collect::<Result<_, _>>()?;
//! let mut now = Instant::ZERO;
//! nodes[1].join(now, [addrs[0]]);
//!
//! let mut network: VecDeque<(SocketAddr, SocketAddr, Vec<u8>)> = VecDeque::new();
//! let mut joined = Vec::new();
//! while now < Instant::from_secs(5) {
//!     for (i, node) in nodes.iter_mut().enumerate() {
//!         // 1. Send every transmit.
//!         while let Some(transmit) = node.poll_transmit() {
//!             network.push_back((addrs[i], transmit.destination, transmit.payload.to_vec()));
//!         }
//!         // 2. Take every event.
//!         while let Some(event) = node.poll_event() {
//!             if let Event::MemberJoined { name, .. } = event {
//!                 joined.push((i, name));
//!             }
//!         }
//!     }
//!     // 3. Deliver what is in flight, else sleep until the earliest deadline.
//!     if let Some((from, to, bytes)) = network.pop_front() {
//!         let node = addrs.iter().position(|a| *a == to).unwrap();
//!         nodes[node].handle_datagram(now, from, &bytes);
//!     } else {
//!         now = nodes.iter().filter_map(|n| n.poll_timeout()).min().unwrap();
//!         for node in &mut nodes {
//!             node.handle_timeout(now);
//!         }
//!     }
//! }
//! assert_eq!(joined.len(), 2);
//! assert_eq!(nodes[0].member("127.0.0.1:7002").unwrap().status(), Status::Online);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Streams
//!
//! Besides datagrams, a node can use a reliable transport for what a datagram cannot carry:
//! metadata up to `max_metadata_size` (64 KiB by default) fetched from its member, full-state
//! push-pull exchanges, and a ping to a member that does not answer over UDP before it is
//! suspected. The node still does no I/O: [`Node::poll_stream`] hands out
//! [`StreamMessage`]s (a member's address and sealed bytes, each one-way) and
//! [`Node::handle_stream`] takes in what arrives; the driver frames, connects and times out
//! (the drivers: TCP on the UDP port, a 4-byte length, one connection per message).
//! Streams are off in [`Config::new`]: a loop that carries no stream messages leaves
//! [`Config::streams`] off, and the node then works with datagrams alone, as before (it
//! tells others so, and they neither send it stream messages nor expect it to fetch). The
//! drivers turn them on. `docs/PROTOCOL.md`, section 7, has the rules.
//!
//! # What is in a node
//!
//! A [`Node`] owns a few parts, each keeping its own state, and drives them: a part is told
//! what happened and says what should happen; only the node builds and sends datagrams.
//! `docs/ARCHITECTURE.md` draws the whole picture.
//!
//! | module | concept |
//! |---|---|
//! | `node` | the state machine: inputs, commands, outputs, queries; `node/*` its own work |
//! | `members` | the membership table ([`Member`]s, tombstones, deadlines) and its digest |
//! | `probe` | failure detection: the probe order, probes and relays in flight, health |
//! | `suspicion` | suspicion timeouts, with Lifeguard's confirmations |
//! | `gossip` | the dissemination queue, piggybacked on every datagram |
//! | `streams` | stream messages out, stream replay windows, metadata fetches and push-pulls in flight |
//! | `sync` | anti-entropy: what differs between two tables; `exchange`: steps in flight |
//! | `timers` | the node's named periodic timers |
//! | `auth`, `replay` | the [`Keyring`] (tags, encryption); nonces and replay windows |
//! | `wire` | the binary codec (see `docs/PROTOCOL.md`; public with `unstable-wire`) |
//! | `view` | what applications read: [`ClusterMetadata`], [`Watch`], [`StatusDump`] |
//!
//! # Features
//!
//! - `std` (default): `std::error::Error` for the error types. Without it the crate is
//!   `no_std` and needs only `alloc`.
//! - `serde` (off by default): `serde::Serialize` for the [`StatusDump`].
//! - `unstable-wire` (off by default): the wire codec as `swim_core::wire`, and
//!   `Keyring::seal_packet` / `Keyring::open_packet`, for tests, fuzzing, benchmarks and
//!   tools that read or forge datagrams. Not covered by semver.

#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs, unreachable_pub)]

extern crate alloc;
#[cfg(any(feature = "std", test))]
extern crate std;

mod auth;
mod config;
mod counters;
mod event;
mod exchange;
mod gossip;
mod hash;
mod members;
mod metadata;
mod node;
mod outbox;
mod probe;
mod random;
mod replay;
mod status;
mod streams;
mod suspicion;
mod sync;
#[cfg(feature = "std")]
mod system;
#[cfg(test)]
mod testing;
mod time;
mod timers;
mod view;
#[cfg(feature = "unstable-wire")]
pub mod wire;
#[cfg(not(feature = "unstable-wire"))]
mod wire;

pub use auth::{Keyring, MAX_KEYS, NONCE_LEN, SEQUENCED, TAG_LEN};
pub use config::{
    Config, ConfigError, LegacyWire, Lifeguard, MAX_DURATION, MAX_MTU_SIZE, MAX_STREAM_MESSAGE,
    MIN_MTU_SIZE,
};
pub use counters::{Counters, DropReason};
pub use event::Event;
pub use members::Member;
pub use metadata::{MAX_KEY_LEN, Metadata};
pub use node::{MetadataError, Node};
pub use outbox::Transmit;
pub use status::{Status, StatusFilter};
pub use streams::StreamMessage;
pub use time::Instant;
pub use view::{
    ClusterMetadata, CounterStatus, MemberStatus, StatusDump, Watch, WatchFilter, Watched,
};

/// Re-exported so users can name metadata values without depending on `bytes` themselves.
pub use bytes::Bytes;
/// The random generator of [`Node::seeded`] (and of `Node::start`, with `std`).
pub use rand_chacha::ChaCha8Rng;
/// Re-exported so users can name the RNG bound without depending on `rand_core` (0.10)
/// themselves; an RNG of another `rand_core` version does not implement it.
pub use rand_core;
/// Member names as events and views carry them: up to 23 bytes inline, longer ones shared,
/// so a name costs no allocation of its own in every node's table and clones for free.
pub use smol_str::SmolStr;
#[cfg(feature = "std")]
pub use system::SystemClock;
