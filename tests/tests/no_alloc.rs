//! Steady-state ping/ack handling allocates nothing: two joined nodes probing each other
//! (ping, ack, gossip and anti-entropy rounds, with replay protection on) make no heap
//! allocation once warm.
//!
//! The counting allocator is `stats_alloc`: its `unsafe impl GlobalAlloc` lives in that crate,
//! so this crate stays `forbid(unsafe_code)` (the workspace forbids it, and `forbid` cannot be
//! relaxed per file). The file runs without the test harness (`harness = false`): its
//! `main` is the only thread, so nothing else allocates while it counts (with the harness,
//! its own threads were seen allocating during slow runs on a loaded machine).

use std::alloc::System;
use std::time::Duration;

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use swim_tests::pair::Pair;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn main() {
    steady_state_ping_ack_allocates_nothing();
    println!("no_alloc: steady-state ping/ack handling allocated nothing");
}

fn steady_state_ping_ack_allocates_nothing() {
    // 30 s of virtual time: every join fact has been gossiped its last time; 30 s more to
    // let every buffer reach its steady size.
    let mut pair = Pair::joined(Duration::from_secs(60));
    // The counter sees allocations at all (control).
    let control = Region::new(GLOBAL);
    std::hint::black_box(vec![0u8; 64]);
    assert!(control.change().allocations >= 1, "the counting allocator is not in use");

    let (pings, acks) = (pair.pings, pair.acks);
    let region = Region::new(GLOBAL);
    pair.run_for(Duration::from_secs(120));
    let stats = region.change();
    let (pings, acks) = (pair.pings - pings, pair.acks - acks);
    // One probe per second from each side; a sends about half of them to b... all of them,
    // as b is its only peer.
    assert!(pings >= 100, "a pinged b {pings} times in 120 s");
    assert!(acks >= 100, "b acked {acks} times in 120 s");
    assert_eq!(pair.a.counters().dropped_total() + pair.b.counters().dropped_total(), 0);
    assert_eq!(
        (stats.allocations, stats.reallocations),
        (0, 0),
        "heap activity over {pings} pings and {acks} acks: {stats:?}"
    );
}
