//! `cargo +nightly fuzz run datagram`: see `swim_fuzz::datagram`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| swim_fuzz::datagram(data));
