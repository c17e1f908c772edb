//! Fuzz targets for swim-core. The checks live in `harness.rs`, which the stable test
//! `swim-core/tests/fuzz_corpus.rs` also compiles, to replay the committed corpora in
//! `cargo test`.
#![forbid(unsafe_code)]

mod harness;

pub use harness::{datagram, decode, state_machine};
