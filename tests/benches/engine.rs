//! The simulator engine alone: N nodes of a trivial protocol (every 200 ms send 100 bytes to a
//! pseudo-random peer, answer each datagram once) so the queue, network model and per-node
//! bookkeeping are all that is measured. Criterion reports events (deliveries plus timer
//! wake-ups) per second as its throughput.

// criterion's macros generate undocumented public functions.
#![allow(missing_docs)]

use std::net::SocketAddr;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use swim_core::Instant;
use swim_tests::protocol::{Protocol, Report, Timing, addr};
use swim_tests::{NetConfig, Sim};

const PERIOD: u64 = 200_000;

struct Chatter {
    index: u32,
    n: u32,
    state: u64,
    next: u64,
    outbox: Vec<(SocketAddr, [u8; 100])>,
}

impl Chatter {
    fn random(&mut self) -> u32 {
        // xorshift64: deterministic and cheap.
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        (self.state % u64::from(self.n)) as u32
    }
}

impl Protocol for Chatter {
    const NAME: &'static str = "chatter";

    fn new(index: u32, _life: u32, n: usize, _t: &Timing, seed: u64, now: Instant) -> Self {
        Chatter {
            index,
            n: n as u32,
            state: seed | 1,
            next: now.as_micros() + seed % PERIOD,
            outbox: Vec::with_capacity(4),
        }
    }
    fn join(&mut self, _now: Instant, _seed: SocketAddr) {}
    fn leave(&mut self, _now: Instant) {}
    fn set_metadata(&mut self, _now: Instant, _k: &str, _v: &[u8]) -> bool {
        false
    }
    fn handle_datagram(&mut self, _now: Instant, from: SocketAddr, bytes: &[u8]) {
        if bytes[0] == 0 {
            let mut reply = [1u8; 100];
            reply[1] = self.index as u8;
            self.outbox.push((from, reply));
        }
    }
    fn handle_timeout(&mut self, now: Instant) {
        if now.as_micros() >= self.next {
            self.next += PERIOD;
            let to = self.random();
            if to != self.index {
                self.outbox.push((addr(to), [0u8; 100]));
            }
        }
    }
    fn poll_timeout(&self) -> Option<Instant> {
        Some(Instant::from_micros(self.next))
    }
    fn drain_transmits(&mut self, mut send: impl FnMut(SocketAddr, &[u8])) {
        for (to, bytes) in self.outbox.drain(..) {
            send(to, &bytes);
        }
    }
    fn poll_report(&mut self) -> Option<Report> {
        None
    }
    fn sees_online(&self, _s: u32) -> bool {
        true
    }
    fn sees_available(&self, _s: u32) -> bool {
        true
    }
    fn knows(&self, _s: u32) -> bool {
        true
    }
    fn entries(&self) -> usize {
        1
    }
    fn has_metadata(&self, _s: u32, _k: &str, _v: &[u8]) -> bool {
        false
    }
}

fn engine(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine");
    group.sample_size(10);
    for n in [1_000usize, 10_000] {
        // Events in one virtual second, measured once to set the throughput.
        let mut probe = Sim::<Chatter>::new(n, 1, Timing::default(), NetConfig::default());
        probe.run_for(Duration::from_secs(1), &mut |_| {});
        let before = probe.stats().events;
        probe.run_for(Duration::from_secs(1), &mut |_| {});
        let per_second = probe.stats().events - before;
        group.throughput(Throughput::Elements(per_second));
        group.bench_function(format!("chatter_{n}_nodes_1_virtual_s"), |b| {
            b.iter_batched_ref(
                || {
                    let mut sim =
                        Sim::<Chatter>::new(n, 1, Timing::default(), NetConfig::default());
                    sim.run_for(Duration::from_secs(1), &mut |_| {});
                    sim
                },
                |sim| sim.run_for(Duration::from_secs(1), &mut |_| {}),
                BatchSize::LargeInput,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, engine);
criterion_main!(benches);
