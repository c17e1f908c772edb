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
//! # On a real socket
//!
//! The same loop over a std `UdpSocket`, as a program of your own runs it (the drivers,
//! `swim-tokio` and `swim-std`, do this for you, with name resolution, commands from other
//! threads and a graceful leave). `swim-core/examples/udp_loop.rs` is a complete program.
//!
//! ```no_run
//! use std::io::ErrorKind;
//! use std::net::UdpSocket;
//! use std::time::Duration;
//! use swim_core::{Config, Keyring, Node, SystemClock};
//!
//! let socket = UdpSocket::bind("127.0.0.1:7001")?;
//! let config = Config::new("127.0.0.1:7001", socket.local_addr()?, Keyring::new("secret"));
//! // Every datagram the node sends or takes fits in `max_datagram()` bytes (the MTU less
//! // the IP and UDP headers); one byte more shows an oversized one as such, not cut short.
//! let mut buffer = vec![0; config.max_datagram() + 1];
//! // The host's clocks as the core's `Instant`s. `Node::start` seeds the node from the OS
//! // and sets `epoch_ms` to the wall clock: that is what replay protection needs.
//! let clock = SystemClock::new();
//! let mut node = Node::start(config, &clock)?;
//! node.join(clock.now(), ["127.0.0.1:7000".parse()?]);
//! loop {
//!     while let Some(transmit) = node.poll_transmit() {
//!         socket.send_to(transmit.payload, transmit.destination)?;
//!     }
//!     while let Some(event) = node.poll_event() {
//!         println!("{event:?}");
//!     }
//!     // Sleep until the next deadline or datagram (a zero timeout would mean "forever").
//!     let deadline = node.poll_timeout().unwrap_or(clock.now() + Duration::from_secs(1));
//!     let wait = deadline.saturating_duration_since(clock.now());
//!     socket.set_read_timeout(Some(wait.max(Duration::from_millis(1))))?;
//!     let received = socket.recv_from(&mut buffer);
//!     // The wall clock again: right across a suspended host or a corrected clock.
//!     node.set_wall_clock(clock.now(), SystemClock::wall_ms());
//!     match received {
//!         Ok((len, from)) => node.handle_datagram(clock.now(), from, &buffer[..len]),
//!         Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
//!         Err(e) => return Err(e.into()),
//!     }
//!     node.handle_timeout(clock.now());
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! How `epoch_ms` protects against replay: every datagram carries a sequence number made
//! from its sender's wall clock (milliseconds since 1970, from `epoch_ms` on). A receiver
//! accepts each sender's numbers once, and refuses numbers further behind its own clock
//! than [`Config::max_datagram_age`] (30 s) or further ahead than
//! [`Config::max_clock_skew`] (5 s). So a datagram captured on the wire is refused if sent
//! again to the same member, and worthless to anyone after 30 s, even to a member that has
//! restarted since and remembers nothing. A node with `epoch_ms` left at 0 is refused by
//! [`Config::validate`] while [`Config::replay_protection`] is on (the default);
//! `Node::start` (or a driver) fills it in. `docs/SECURITY.md` has the whole threat model.
//!
//! The RNG: `Node::start` (feature `std`) seeds one from the OS, [`Node::seeded`] from a
//! `u64` (repeatable runs; never a constant in production, since probe order and cookies
//! must not be guessable), and [`Node::new`] takes any generator implementing
//! [`rand_core::Rng`] of `rand_core` 0.10, re-exported as [`rand_core`] (an RNG built on
//! another `rand_core` version, e.g. `rand_chacha` 0.9, does not implement it). The core's
//! [`Instant`] is its own time (microseconds since a node's origin), not
//! `std::time::Instant`: `SystemClock` converts both ways (`now`, `to_core`, `to_std`).
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
