//! Micro-benchmarks of the core's hot path: encode+seal and open+decode of a ping carrying
//! piggybacked updates (authenticated, and encrypted), and a node answering a ping with its
//! ack.
//!
//! Encode+seal uses the public wire writer and the keyring's sealing, as a node does; the
//! setup checks a real node accepts the result.

// criterion's macros generate undocumented public functions.
#![allow(missing_docs)]

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use swim_core::wire::{Body, Flags, Header, Packet, PacketWriter, Record, Sender, Version};
use swim_core::{Keyring, Status};
use swim_tests::pair::{Pair, nonce_at, renonce};
use swim_tests::protocol::addr;

const SECRET: &[u8] = b"simulated cluster secret";
const UPDATES: u32 = 8;

fn names() -> Vec<(String, SocketAddr)> {
    (100..100 + UPDATES).map(|i| (addr(i).to_string(), addr(i))).collect()
}

fn encode_seal(keyring: &Keyring, flags: u8, names: &[(String, SocketAddr)], seq: u32) -> Vec<u8> {
    let local = addr(0).to_string();
    let sender = Sender { name: &local, addr: addr(0), incarnation: 3 };
    let target = addr(1).to_string();
    let body = Body::Ping { seq, root: 0x0123_4567_89ab_cdef, target: &target };
    let nonce = nonce_at(swim_core::Instant::from_secs(1), u64::from(seq));
    let header = Header::new(Version::V2, Flags(flags), nonce);
    let mut writer = PacketWriter::new(Vec::with_capacity(1452), 1452, &header, &sender, &body)
        .expect("a ping fits in a datagram");
    for (i, (name, a)) in names.iter().enumerate() {
        writer.push(&Record {
            name,
            addr: *a,
            incarnation: i as u64,
            status: if i % 4 == 3 { Status::Suspect } else { Status::Online },
            meta_version: 1,
            metadata: None,
            accuser: None,
            meta_hash: None,
            streams: false,
        });
    }
    keyring.seal_packet(writer.finish(), "", &target)
}

fn open_decode(datagram: &[u8], keyring: &Keyring, receiver: &str, scratch: &mut Vec<u8>) -> usize {
    let opened = keyring.open_packet(datagram, "", receiver, scratch).expect("valid tag");
    let packet = Packet::decode(opened).expect("valid packet");
    packet.records.iter().map(|r| r.name.len()).sum()
}

fn wire(c: &mut Criterion) {
    let keyring = Keyring::new(SECRET);
    let names = names();
    let receiver = addr(1).to_string();
    for (flags, mode) in [(0, "signed"), (Flags::ENCRYPTED, "encrypted")] {
        let datagram = encode_seal(&keyring, flags, &names, 1);
        // The construction is the core's: a node with the same secret accepts the datagram.
        let mut p = Pair::joined(Duration::from_secs(5));
        let mut fresh = datagram.clone();
        renonce(&mut fresh, nonce_at(p.now, 0), &keyring, &receiver);
        p.b.handle_datagram(p.now, addr(0), &fresh);
        assert_eq!(p.b.counters().dropped_total(), 0, "the core rejected the bench datagram");
        let len = datagram.len();
        let mut group = c.benchmark_group("wire");
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_function(format!("encode_{mode}_ping_{UPDATES}_updates_{len}B"), |bench| {
            let mut seq = 0;
            bench.iter(|| {
                seq += 1;
                black_box(encode_seal(&keyring, flags, &names, seq).len())
            });
        });
        let mut scratch = Vec::with_capacity(1500);
        group.bench_function(format!("open_{mode}_ping_{UPDATES}_updates_{len}B"), |bench| {
            bench.iter(|| {
                black_box(open_decode(black_box(&datagram), &keyring, &receiver, &mut scratch))
            });
        });
        group.finish();
    }
}

fn node(c: &mut Criterion) {
    for (encrypt, mode) in [(false, "signed"), (true, "encrypted")] {
        node_ping_in_ack_out(c, encrypt, mode);
    }
}

/// A joined node handling a ping and producing its sealed ack, as the other node sent it.
fn node_ping_in_ack_out(c: &mut Criterion, encrypt: bool, mode: &str) {
    let keyring = Keyring::new(SECRET);
    let mut p = Pair::joined_with(Duration::from_secs(30), encrypt);
    p.keep_ping = true;
    while p.last_ping.is_empty() {
        p.step();
    }
    let template = p.last_ping.clone();
    let receiver = addr(1).to_string();
    // Fresh nonces above anything a really sent, so replay protection accepts every copy.
    let mut count = 0;
    let clock = std::cell::Cell::new(p.now);
    let answered = p.b.counters().datagrams_out;
    let mut runs = 0u64;
    let name = format!("node_ping_in_ack_out_{mode}_{}B", template.len());
    c.bench_function(&name, |bench| {
        bench.iter_batched_ref(
            || {
                count += 1;
                let mut ping = template.clone();
                renonce(&mut ping, nonce_at(clock.get(), count), &keyring, &receiver);
                ping
            },
            |ping| {
                p.now += Duration::from_micros(10);
                clock.set(p.now);
                p.b.handle_datagram(p.now, addr(0), ping);
                let mut sent = 0;
                while let Some(t) = p.b.poll_transmit() {
                    sent += t.payload.len();
                }
                runs += 1;
                black_box(sent)
            },
            BatchSize::SmallInput,
        );
    });
    assert_eq!(p.b.counters().dropped_total(), 0, "every ping was accepted");
    assert!(p.b.counters().datagrams_out - answered >= runs, "every ping was answered");
}

criterion_group!(benches, wire, node);
criterion_main!(benches);
