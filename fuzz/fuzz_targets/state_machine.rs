//! `cargo +nightly fuzz run state_machine`: see `swim_fuzz::state_machine`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| swim_fuzz::state_machine(data));
