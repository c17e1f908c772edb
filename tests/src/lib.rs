//! A deterministic cluster simulator for swim (and, through the same trait, foca).
//!
//! - [`sim`]: the discrete-event engine and virtual network (latency, loss, duplication,
//!   reordering, partitions, crash, restart, pause).
//! - [`protocol`]: the [`Protocol`] trait an implementation provides.
//! - [`swim_impl`] and [`foca_impl`]: the two implementations.
//! - [`scenario`]: the scenarios `swim-sim` runs and the tests assert on.
//! - [`testbed`]: the same scenarios on member processes in network namespaces
//!   (`swim-testbed`, `swim-member`).
//!
//! One master seed fixes everything: the same seed gives the same trace digest.
#![forbid(unsafe_code)]

pub mod digest;
pub mod foca_impl;
pub mod pair;
pub mod plot;
pub mod protocol;
pub mod scenario;
pub mod sim;
pub mod swim_impl;
pub mod sys;
pub mod testbed;

pub use protocol::{Change, Protocol, Report, Timing};
pub use sim::{NetConfig, Observation, Resume, Sim, Stats};
