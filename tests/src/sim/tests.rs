//! The engine's own tests: a trivial ring protocol for timing and network behaviour, swim
//! clusters for determinism across thread counts.

use std::net::SocketAddr;
use std::time::Duration;

use swim_core::Instant;

use super::queue::Kind;
use super::{NetConfig, Resume, Sim};
use crate::protocol::{Change, Protocol, Report, Timing, addr, index_of};
use crate::swim_impl::Swim;

/// Every `period` µs sends its index to node `(index + 1) % n`; records what it receives.
struct Ring {
    index: u32,
    n: u32,
    next: u64,
    period: u64,
    sent: u64,
    received: Vec<(u64, u32)>,
    /// Every input in order: (time, whether it was the timer).
    inputs: Vec<(u64, bool)>,
    outbox: Vec<SocketAddr>,
    reports: Vec<Report>,
}

impl Protocol for Ring {
    const NAME: &'static str = "ring";

    fn new(index: u32, _l: u32, n: usize, _t: &Timing, _s: u64, now: Instant) -> Self {
        Ring {
            index,
            n: n as u32,
            next: now.as_micros() + 10_000,
            period: 10_000,
            sent: 0,
            received: Vec::new(),
            inputs: Vec::new(),
            outbox: Vec::new(),
            reports: Vec::new(),
        }
    }
    fn join(&mut self, _now: Instant, _seed: SocketAddr) {}
    fn leave(&mut self, _now: Instant) {}
    fn set_metadata(&mut self, _now: Instant, _k: &str, _v: &[u8]) -> bool {
        false
    }
    fn handle_datagram(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        assert_eq!(index_of(from), Some(u32::from(bytes[0])));
        self.received.push((now.as_micros(), u32::from(bytes[0])));
        self.inputs.push((now.as_micros(), false));
        self.reports.push(Report::new(Change::Alive, Some(u32::from(bytes[0])), Some(true)));
    }
    fn handle_timeout(&mut self, now: Instant) {
        assert!(now.as_micros() >= self.next, "woken early");
        self.next += self.period;
        self.inputs.push((now.as_micros(), true));
        self.sent += 1;
        self.outbox.push(addr((self.index + 1) % self.n));
    }
    fn poll_timeout(&self) -> Option<Instant> {
        Some(Instant::from_micros(self.next))
    }
    fn drain_transmits(&mut self, mut send: impl FnMut(SocketAddr, &[u8])) {
        for to in self.outbox.drain(..) {
            send(to, &[self.index as u8]);
        }
    }
    fn poll_report(&mut self) -> Option<Report> {
        self.reports.pop()
    }
    fn sees_online(&self, _s: u32) -> bool {
        false
    }
    fn sees_available(&self, _s: u32) -> bool {
        false
    }
    fn knows(&self, _s: u32) -> bool {
        false
    }
    fn entries(&self) -> usize {
        1
    }
    fn has_metadata(&self, _s: u32, _k: &str, _v: &[u8]) -> bool {
        false
    }
}

fn ring(n: usize, net: NetConfig) -> Sim<Ring> {
    Sim::new(n, 7, Timing::default(), net)
}

#[test]
fn delivers_within_the_link_latency_and_wakes_on_time() {
    let mut sim = ring(4, NetConfig::default());
    sim.run_for(Duration::from_secs(1), &mut |_| {});
    for i in 0..4 {
        let node = sim.node(i).unwrap();
        assert_eq!(node.sent, 100, "one send per 10 ms");
        assert!(node.received.len() >= 99);
        for &(at, from) in &node.received {
            assert_eq!(from, (i + 3) % 4);
            // Sent at a multiple of 10 ms, delivered 1–5.5 ms later.
            let delay = at % 10_000;
            assert!((1_000..=5_500).contains(&delay), "delay {delay} µs");
        }
    }
    assert_eq!(sim.stats().timer_spins, 0);
    assert_eq!(sim.online_count(1), 1, "reports feed the online bitset");
    assert!(sim.sees_online(1, 0) && !sim.sees_online(1, 2));
}

#[test]
fn loss_is_close_to_its_probability() {
    let mut sim = ring(10, NetConfig { loss: 0.2, ..NetConfig::default() });
    sim.run_for(Duration::from_secs(10), &mut |_| {});
    let stats = sim.stats();
    let rate = stats.lost as f64 / stats.datagrams_sent as f64;
    assert!((0.18..0.22).contains(&rate), "lost {rate}");
    assert_eq!(stats.delivered + stats.lost + in_flight(&sim), stats.datagrams_sent);
}

#[test]
fn a_one_way_partition_blocks_one_direction_only() {
    let mut sim = ring(2, NetConfig::default());
    // Group 1 (node 1) cannot reach group 0 (node 0).
    sim.partition_one_way(|i| i as u8, 1, 0);
    sim.run_for(Duration::from_secs(1), &mut |_| {});
    assert!(sim.node(0).unwrap().received.is_empty());
    assert!(sim.node(1).unwrap().received.len() >= 99);
    sim.heal();
    sim.run_for(Duration::from_secs(1), &mut |_| {});
    assert!(sim.node(0).unwrap().received.len() >= 99);
}

#[test]
fn a_paused_node_handles_its_backlog_when_it_resumes() {
    let mut sim = ring(2, NetConfig::default());
    sim.run_for(Duration::from_millis(100), &mut |_| {});
    let before = sim.node(1).unwrap().received.len();
    sim.pause(1, Duration::from_millis(500));
    sim.run_for(Duration::from_millis(499), &mut |_| {});
    assert_eq!(sim.node(1).unwrap().received.len(), before, "nothing while paused");
    sim.run_for(Duration::from_millis(2), &mut |_| {});
    let node = sim.node(1).unwrap();
    let resumed_at = 600_000;
    let backlog = node.received.iter().filter(|(at, _)| *at == resumed_at).count();
    assert!(backlog >= 49, "the 50 datagrams of the pause arrive at its end: {backlog}");
}

/// Node 1's inputs from the end of a pause of 500 ms begun at 100 ms, resumed as `resume`.
fn inputs_on_resume(resume: Resume) -> Vec<bool> {
    let mut sim = ring(2, NetConfig::default());
    sim.run_for(Duration::from_millis(100), &mut |_| {});
    sim.pause_then(1, Duration::from_millis(500), resume);
    sim.run_for(Duration::from_millis(501), &mut |_| {});
    let node = sim.node(1).unwrap();
    let resumed = node.inputs.iter().filter(|(at, _)| (600_000..=600_001).contains(at));
    resumed.map(|&(_, timer)| timer).collect()
}

#[test]
fn a_resumed_node_handles_its_timer_and_backlog_in_the_chosen_order() {
    // Node 0 sends every 10 ms; node 1 stays stopped through 49 of those and of its own
    // timer's deadlines.
    let timers_first = inputs_on_resume(Resume::TimersFirst);
    assert_eq!(timers_first.iter().filter(|t| !**t).count(), 50, "the whole backlog");
    assert_eq!(timers_first.first(), Some(&true), "the overdue timer first");
    let socket_first = inputs_on_resume(Resume::SocketFirst);
    assert!(socket_first[..50].iter().all(|t| !t), "the backlog first: {socket_first:?}");
    assert_eq!(socket_first.get(50), Some(&true), "then the timer");
    // As queued: the datagram that arrived before the first missed deadline comes first.
    let as_queued = inputs_on_resume(Resume::AsQueued);
    assert_eq!(&as_queued[..2], &[false, true], "{as_queued:?}");
}

#[test]
fn a_crashed_node_receives_nothing_and_a_restart_starts_fresh() {
    let mut sim = ring(3, NetConfig::default());
    sim.run_for(Duration::from_millis(100), &mut |_| {});
    sim.crash(1);
    assert!(sim.node(1).is_none() && !sim.is_up(1));
    sim.run_for(Duration::from_millis(100), &mut |_| {});
    assert!(sim.stats().undeliverable >= 9);
    assert!(sim.node(2).unwrap().received.len() <= 11, "node 1 sent nothing while down");
    sim.restart(1, 0);
    sim.run_for(Duration::from_millis(100), &mut |_| {});
    let node = sim.node(1).unwrap();
    assert!(node.received.iter().all(|(at, _)| *at >= 200_000));
    assert!(node.received.len() >= 9);
}

#[test]
fn duplication_delivers_extra_copies() {
    let mut sim = ring(4, NetConfig { duplicate: 0.5, ..NetConfig::default() });
    sim.run_for(Duration::from_secs(1), &mut |_| {});
    let stats = sim.stats();
    assert!(stats.duplicated > 100);
    assert_eq!(stats.delivered + in_flight(&sim), stats.datagrams_sent + stats.duplicated);
}

/// Datagrams still in the queue.
fn in_flight(sim: &Sim<Ring>) -> u64 {
    sim.commons.queue.count(Kind::Deliver) as u64
}

#[test]
fn the_same_seed_gives_the_same_digest() {
    let net = NetConfig { loss: 0.1, duplicate: 0.1, reorder: 0.1, ..NetConfig::default() };
    let run = |seed| {
        let mut sim: Sim<Ring> = Sim::new(20, seed, Timing::default(), net.clone());
        sim.run_for(Duration::from_secs(2), &mut |_| {});
        sim.digest()
    };
    assert_eq!(run(1), run(1));
    assert_ne!(run(1), run(2));
}

/// Everything a run shows: digest, counters, every observation, final views.
fn trace<P: Protocol>(sim: &mut Sim<P>, story: impl Fn(&mut Sim<P>, u32)) -> String {
    let mut observed = Vec::new();
    for step in 0..40 {
        story(sim, step);
        sim.run_for(Duration::from_millis(250), &mut |o| {
            observed.push((o.at, o.viewer, o.report, o.online_count));
        });
    }
    let views: Vec<u32> = (0..sim.len() as u32).map(|i| sim.online_count(i)).collect();
    format!("{:x} {:?} {observed:?} {views:?}", sim.digest(), sim.stats())
}

/// A swim cluster through joins, a pause, a slow member, a partition and a crash, under
/// loss, duplication and reordering.
fn eventful(sim: &mut Sim<Swim>, step: u32) {
    let n = sim.len() as u32;
    match step {
        0 => (1..n).for_each(|i| sim.start(i, 0)),
        8 => sim.pause(3, Duration::from_millis(1500)),
        10 => sim.slow(5, Duration::from_millis(400)),
        14 => sim.partition(|i| u8::from(i % 4 == 1)),
        20 => sim.heal(),
        24 => sim.crash(7),
        30 => sim.restart(7, 0),
        _ => {}
    }
}

#[test]
fn threads_change_nothing_but_speed() {
    let net = NetConfig { loss: 0.05, duplicate: 0.05, reorder: 0.05, ..NetConfig::default() };
    let run = |threads: usize| {
        let mut sim: Sim<Swim> = Sim::new(48, 3, Timing::default(), net.clone());
        sim.set_threads(threads);
        // Split every window, however small, to exercise the hand-off.
        sim.executor.parallel_min_ns = 0.0;
        trace(&mut sim, eventful)
    };
    let one = run(1);
    assert_eq!(one, run(2));
    assert_eq!(one, run(3));
}

#[test]
fn instantaneous_links_are_handled_in_later_windows_at_the_same_time() {
    let net = NetConfig {
        latency_min: Duration::ZERO,
        latency_max: Duration::ZERO,
        jitter: Duration::ZERO,
        ..NetConfig::default()
    };
    let mut sim = ring(4, net.clone());
    sim.run_for(Duration::from_millis(100), &mut |_| {});
    for i in 0..4 {
        let node = sim.node(i).unwrap();
        assert_eq!(node.received.len(), 10, "sent every 10 ms, received at once");
        assert!(node.received.iter().all(|(at, _)| at % 10_000 == 0));
    }
    let run = |threads: usize| {
        let mut sim: Sim<Swim> = Sim::new(16, 5, Timing::default(), net.clone());
        sim.set_threads(threads);
        sim.executor.parallel_min_ns = 0.0;
        trace(&mut sim, eventful)
    };
    assert_eq!(run(1), run(2));
}
