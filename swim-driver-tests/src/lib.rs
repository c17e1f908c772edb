//! Nothing here: the suite is in `tests/`, one body per behaviour run against swim-std and
//! swim-tokio (`tests/common/mod.rs` puts both drivers behind one blocking interface).

#![forbid(unsafe_code)]

/// The README's Rust snippets, compiled as doctests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeSnippets;
