//! A member's metadata costs the memory `max_metadata_size` says, however many entries it
//! has: the map is kept in its wire encoding, one buffer. 204 empty entries under
//! three-byte keys (1,021 bytes of encoding) cost the receiver 1,054 bytes; kept as a tree
//! of strings and byte strings (commit d0ee17c), the same map cost it 14,196 bytes, about 70
//! bytes of nodes and allocations per entry.
//!
//! One test in this file, so no other test thread allocates while the allocator counts (see
//! `no_alloc.rs` for the counting allocator).

use std::alloc::System;
use std::time::Duration;

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use swim_core::Metadata;
use swim_tests::pair::Pair;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[test]
fn many_small_metadata_entries_cost_what_the_limit_says() {
    let mut pair = Pair::joined(Duration::from_secs(60));
    // 1024 bytes: what a datagram carries (the pair has no streams); the default limit,
    // 64 KiB, is for metadata fetched over streams.
    let limit = 1024;
    let mut metadata = Metadata::new();
    for i in 0.. {
        let mut bigger = metadata.clone();
        bigger.insert(format!("{i:03}"), Vec::new());
        if bigger.encoded_len() > limit {
            break;
        }
        metadata = bigger;
    }
    assert!(metadata.len() > 200, "{} entries", metadata.len());
    let now = pair.now;
    pair.a.replace_metadata(now, metadata.clone()).unwrap();
    let region = Region::new(GLOBAL);
    pair.run_for(Duration::from_secs(5));
    let stats = region.change();
    let seen = pair.b.member(pair.a.local_member().name()).and_then(|m| m.metadata());
    assert_eq!(seen, Some(&metadata), "the metadata arrived");
    // What b keeps: the encoding, plus a fixed few dozen bytes. Some of the run's other
    // allocations may be held too, so allow twice the limit in all.
    let held = stats.bytes_allocated as i64 - stats.bytes_deallocated as i64;
    assert!(held <= 2 * limit as i64, "{held} bytes held for {} bytes of metadata", limit);
}
