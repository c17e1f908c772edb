//! `cargo +nightly fuzz run decode`: see `swim_fuzz::decode`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| swim_fuzz::decode(data));
