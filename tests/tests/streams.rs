//! Streams in the simulator: large metadata, push-pull, the stream ping, a mixed cluster,
//! and the stream model's partitions and crashes. Bounds are in virtual time.

use std::time::Duration;

use swim_core::{Instant, Status};
use swim_tests::protocol::{METADATA_KEY, Protocol, addr, initial_metadata};
use swim_tests::scenario::{self, Options, Scenario};
use swim_tests::swim_impl::Swim;
use swim_tests::{Change, NetConfig, Sim, Timing};

fn status(sim: &Sim<Swim>, viewer: u32, subject: u32) -> Option<Status> {
    sim.node(viewer)?.node().member(&addr(subject).to_string()).map(|m| m.status())
}

fn streaming(metadata_bytes: usize) -> Timing {
    Timing { streams: true, metadata_bytes, ..Timing::default() }
}

/// `n` nodes started 100 µs apart, all through node 0, run until their views agree.
fn joined(n: usize, seed: u64, timing: Timing) -> Sim<Swim> {
    let mut sim = Sim::<Swim>::new(n, seed, timing, NetConfig::default());
    for i in 1..n as u32 {
        sim.run_until(Instant::from_micros(u64::from(i) * 100), &mut |_| {});
        sim.start(i, 0);
    }
    assert!(sim.run_until_views_agree(Duration::from_secs(30), &mut |_| {}));
    sim
}

fn holds_all_metadata(sim: &Sim<Swim>, n: u32, bytes: usize) -> bool {
    (0..n).all(|v| {
        let node = sim.node(v).unwrap();
        (0..n)
            .filter(|s| *s != v)
            .all(|s| node.has_metadata(s, METADATA_KEY, &initial_metadata(s, bytes)))
    })
}

#[test]
fn fifty_members_with_64_kib_of_metadata_each_all_hold_every_map() {
    let bytes = 64 * 1024 - 64;
    let mut opts = Options::new(50, 1);
    opts.timing = streaming(bytes);
    let outcome = scenario::run::<Swim>(Scenario::Join, &opts);
    assert!(outcome.converged, "{outcome:?}");
    let all = outcome.metadata_all_s.flatten().expect("every map everywhere");
    assert!(all < 10.0, "{all}");
    // Every member fetched every other's map once: 49 maps of 64 KiB each, no more than
    // twice over.
    let per_member = outcome.stream_bytes_per_member_s.unwrap() * outcome.virtual_s;
    assert!(per_member > 49.0 * bytes as f64, "{per_member}");
    assert!(per_member < 2.0 * 49.0 * bytes as f64, "{per_member}");
}

#[test]
fn a_large_update_reaches_every_member() {
    let mut opts = Options::new(100, 2);
    opts.timing = streaming(0);
    opts.update_bytes = 16 * 1024;
    let outcome = scenario::run::<Swim>(Scenario::Update, &opts);
    assert!(outcome.converged, "{outcome:?}");
    let all = outcome.update_all_s.flatten().expect("known to all");
    assert!(all < 5.0, "{all}");
}

#[test]
fn push_pull_joins_and_repeats_at_its_interval() {
    let mut timing = streaming(0);
    timing.push_pull_interval = Some(Duration::from_secs(2));
    let mut sim = joined(20, 3, timing);
    let before = sim.stats().streams_sent;
    assert!(before >= 19, "every joiner pushed and pulled with the seed: {before}");
    sim.run_for(Duration::from_secs(20), &mut |_| {});
    // 20 members, one exchange (request and reply) each per 2 s.
    let exchanges = (sim.stats().streams_sent - before) / 2;
    assert!((150..=250).contains(&exchanges), "{exchanges}");
    assert_eq!(sim.stats().streams_broken, 0);
}

#[test]
fn a_member_behind_a_udp_firewall_stays_online_while_streams_work() {
    for streams in [true, false] {
        let timing = Timing { streams, ..Timing::default() };
        let mut sim = joined(30, 4, timing);
        // Nothing reaches node 7 over UDP any more; it still sends, and streams work.
        for i in (0..30).filter(|i| *i != 7) {
            sim.block_datagrams(i, 7);
        }
        let mut offline = 0;
        sim.run_for(Duration::from_secs(60), &mut |o| {
            if o.report.change == Change::Offline && o.report.subject == Some(7) {
                offline += 1;
            }
        });
        if streams {
            assert_eq!(offline, 0);
            assert!(
                (0..30).filter(|v| *v != 7).all(|v| status(&sim, v, 7) == Some(Status::Online))
            );
        } else {
            assert!(offline > 0, "without streams it is declared offline (the test can fail)");
        }
    }
}

#[test]
fn a_partition_breaks_streams_and_a_crash_loses_what_is_in_flight() {
    let bytes = 20_000;
    let mut sim = joined(10, 5, streaming(bytes));
    assert!(sim.run_until_views_agree(Duration::from_secs(5), &mut |_| {}));
    sim.run_for(Duration::from_secs(5), &mut |_| {});
    assert!(holds_all_metadata(&sim, 10, bytes));
    let broken = sim.stats().streams_broken;
    sim.partition(|i| u8::from(i >= 5));
    sim.set_metadata(2, "after", &initial_metadata(99, bytes));
    sim.run_for(Duration::from_secs(3), &mut |_| {});
    assert!(sim.stats().streams_broken > broken, "fetches across the split broke");
    let value = initial_metadata(99, bytes);
    let across = (5..10).filter(|v| sim.node(*v).unwrap().has_metadata(2, "after", &value)).count();
    assert_eq!(across, 0, "nothing crossed the split");
    sim.heal();
    let healed = (0..60).any(|_| {
        sim.run_for(Duration::from_millis(500), &mut |_| {});
        (0..10).all(|v| v == 2 || sim.node(v).unwrap().has_metadata(2, "after", &value))
    });
    assert!(healed, "after the heal every member fetched it");
}
