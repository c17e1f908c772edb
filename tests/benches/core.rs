//! Micro-benchmarks of the core's hot path: encode+sign and verify+decode of a ping carrying
//! piggybacked updates, and a node answering a ping with its ack.
//!
//! The core's signing is crate-private, so encode+sign here uses the public wire writer and
//! the same construction (HMAC-SHA256 over the datagram, truncated to `TAG_LEN`); the setup
//! checks a real node accepts the result, which proves the construction is the core's.

// criterion's macros generate undocumented public functions.
#![allow(missing_docs)]

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use swim_core::wire::{Body, Packet, PacketWriter, Record, Sender};
use swim_core::{SEQUENCED, Status, TAG_LEN};
use swim_tests::pair::{EPOCH_MS, Pair, renonce};
use swim_tests::protocol::addr;

const SECRET: &[u8] = b"simulated cluster secret";
const UPDATES: u32 = 8;

fn names() -> Vec<(String, SocketAddr)> {
    (100..100 + UPDATES).map(|i| (addr(i).to_string(), addr(i))).collect()
}

fn encode_sign(out: &mut Vec<u8>, mac: &Hmac<Sha256>, names: &[(String, SocketAddr)], seq: u32) {
    let local = addr(0).to_string();
    let sender = Sender { name: &local, addr: addr(0), incarnation: 3 };
    let target = addr(1).to_string();
    let body = Body::Ping { seq, root: 0x0123_4567_89ab_cdef, target: &target };
    let nonce = SEQUENCED | ((EPOCH_MS << 20) + (1 << 18) + u64::from(seq));
    let mut writer =
        PacketWriter::new(out, 1452, nonce, &sender, &body).expect("a ping fits in a datagram");
    for (i, (name, a)) in names.iter().enumerate() {
        writer.push(&Record {
            name,
            addr: *a,
            incarnation: i as u64,
            status: if i % 4 == 3 { Status::Suspect } else { Status::Online },
            meta_version: 1,
            metadata: None,
            accuser: None,
        });
    }
    writer.finish();
    let mut m = mac.clone();
    m.update(out);
    let tag = m.finalize().into_bytes();
    out.extend_from_slice(&tag[..TAG_LEN]);
}

fn verify_decode(datagram: &[u8], mac: &Hmac<Sha256>) -> usize {
    let (signed, tag) = datagram.split_at(datagram.len() - TAG_LEN);
    let mut m = mac.clone();
    m.update(signed);
    m.verify_truncated_left(tag).expect("valid tag");
    let packet = Packet::decode(signed).expect("valid packet");
    packet.records.iter().map(|r| r.name.len()).sum()
}

fn wire(c: &mut Criterion) {
    let mac = Hmac::<Sha256>::new_from_slice(SECRET).expect("any key length");
    let names = names();
    let mut buf = Vec::with_capacity(1452);
    encode_sign(&mut buf, &mac, &names, 1);
    // The construction is the core's: a node with the same secret accepts the datagram.
    let mut p = Pair::joined(Duration::from_secs(5));
    p.b.handle_datagram(p.now, addr(0), &buf);
    assert_eq!(p.b.counters().dropped_total(), 0, "the core rejected the bench datagram");
    let len = buf.len();
    let mut group = c.benchmark_group("wire");
    group.throughput(Throughput::Bytes(len as u64));
    group.bench_function(format!("encode_sign_ping_{UPDATES}_updates_{len}B"), |bench| {
        let mut seq = 0;
        bench.iter(|| {
            seq += 1;
            encode_sign(&mut buf, &mac, &names, seq);
            black_box(buf.len())
        });
    });
    let datagram = buf.clone();
    group.bench_function(format!("verify_decode_ping_{UPDATES}_updates_{len}B"), |bench| {
        bench.iter(|| black_box(verify_decode(black_box(&datagram), &mac)));
    });
    group.finish();
}

fn node(c: &mut Criterion) {
    let mac = Hmac::<Sha256>::new_from_slice(SECRET).expect("any key length");
    let mut p = Pair::joined(Duration::from_secs(30));
    p.keep_ping = true;
    while p.last_ping.is_empty() {
        p.step();
    }
    let template = p.last_ping.clone();
    // Fresh nonces above anything a really sent, so replay protection accepts every copy.
    let mut nonce = SEQUENCED | ((EPOCH_MS << 20) + (1 << 19));
    let answered = p.b.counters().datagrams_out;
    let mut runs = 0u64;
    let name = format!("node_ping_in_ack_out_{}B", template.len());
    c.bench_function(&name, |bench| {
        bench.iter_batched_ref(
            || {
                nonce += 1;
                let mut ping = template.clone();
                renonce(&mut ping, nonce, |signed| {
                    let mut m = mac.clone();
                    m.update(signed);
                    let mut tag = [0u8; TAG_LEN];
                    tag.copy_from_slice(&m.finalize().into_bytes()[..TAG_LEN]);
                    tag
                });
                ping
            },
            |ping| {
                p.now += Duration::from_micros(10);
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
