//! The checks behind the fuzz targets, shared with the stable corpus replay test
//! (`swim-core/tests/fuzz_corpus.rs` includes this file), so that every committed corpus
//! input is re-checked by `cargo test` on the stable toolchain.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use hmac::{Hmac, KeyInit, Mac};
use rand_chacha::ChaCha8Rng;
use swim_core::rand_core::SeedableRng;
use swim_core::wire::{Body, BucketSet, MetadataEntries, Packet, PacketWriter, Record, Sender};
use swim_core::{Bytes, Config, Instant, Keyring, Metadata, Node, Status, TAG_LEN};

/// The key every fuzzed node and every fuzzed peer uses.
const SECRET: &[u8] = b"fuzz secret";

/// Peers a fuzzed node hears from (index 4 is the node itself).
const PEERS: usize = 4;

fn addr(i: usize) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9000 + i as u16))
}

fn peer_name(i: usize) -> String {
    if i >= PEERS { "local".to_string() } else { format!("peer-{i}") }
}

/// Appends the tag a node with [`SECRET`] would.
fn sign(signed_part: &mut Vec<u8>) {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET).expect("HMAC takes any key");
    mac.update(signed_part);
    let tag = mac.finalize().into_bytes();
    signed_part.extend_from_slice(&tag[..TAG_LEN]);
}

fn node() -> Node<ChaCha8Rng> {
    let mut config = Config::new("local", addr(PEERS), Keyring::new(SECRET));
    config.max_members = 16;
    config.epoch_ms = 1;
    config.local_metadata.insert("role", Bytes::from_static(b"fuzz"));
    Node::new(config, ChaCha8Rng::seed_from_u64(7), Instant::ZERO).expect("valid config")
}

/// What a node believes, for before/after comparisons.
fn snapshot(node: &Node<ChaCha8Rng>) -> Vec<(String, Status, u64, u64)> {
    node.members()
        .map(|m| (m.name().to_string(), m.status(), m.incarnation(), m.meta_version()))
        .collect()
}

/// Drains a node's outputs and checks every datagram it wants to send decodes.
fn drain(node: &mut Node<ChaCha8Rng>) {
    let max = node.config().max_datagram();
    while let Some(transmit) = node.poll_transmit() {
        assert!(transmit.payload.len() <= max, "sent {} > {max} bytes", transmit.payload.len());
        let signed = &transmit.payload[..transmit.payload.len() - TAG_LEN];
        if let Err(error) = Packet::decode(signed) {
            panic!("the node sent a datagram it cannot decode: {error}");
        }
    }
    while node.poll_event().is_some() {}
}

/// `decode`: arbitrary bytes into the decoder; whatever decodes re-encodes to the same
/// meaning.
pub fn decode(data: &[u8]) {
    let Ok(packet) = Packet::decode(data) else { return };
    let mut out = Vec::new();
    let mut writer =
        PacketWriter::new(&mut out, usize::MAX, packet.nonce, &packet.sender, &packet.body)
            .expect("no size limit");
    for record in packet.records.iter() {
        assert!(writer.push(&record), "a decoded record re-encodes");
    }
    writer.finish();
    let again = Packet::decode(&out).expect("a re-encoded packet decodes");
    assert_eq!(again.nonce, packet.nonce);
    assert_eq!(again.sender, packet.sender);
    assert_eq!(again.body, packet.body);
    assert!(again.records.iter().eq(packet.records.iter()));
}

/// `datagram`: arbitrary bytes into a live node, as they are (almost always dropped, with no
/// state change) and correctly signed (decoded and acted on if valid); never a panic.
pub fn datagram(data: &[u8]) {
    let mut node = node();
    node.join(Instant::ZERO, [addr(0)]);
    drain(&mut node);
    let before = snapshot(&node);
    let dropped = node.counters().dropped_total();
    node.handle_datagram(Instant::from_millis(10), addr(1), data);
    if node.counters().dropped_total() > dropped {
        assert_eq!(snapshot(&node), before, "a dropped datagram changed state");
        assert!(node.poll_transmit().is_none(), "a dropped datagram was answered");
    }
    drain(&mut node);
    let mut signed = data.to_vec();
    sign(&mut signed);
    node.handle_datagram(Instant::from_millis(20), addr(1), &signed);
    drain(&mut node);
    node.handle_timeout(Instant::from_secs(30));
    drain(&mut node);
    assert!(matches!(node.local_member().status(), Status::Online));
}

/// A membership fact with fields from a small space, so that equal incarnations and names
/// collide often.
#[derive(Arbitrary, Debug)]
struct FuzzRecord {
    who: u8,
    incarnation: u8,
    status: u8,
    meta_version: u8,
    metadata: Option<Vec<(u8, Vec<u8>)>>,
    accuser: Option<u8>,
}

#[derive(Arbitrary, Debug)]
enum FuzzBody {
    Ping { root: u64, target: Option<u8> },
    Ack { root: u64 },
    PingReq { target: u8 },
    Nack,
    Gossip,
    SyncDigest { root: u64, members: u16 },
    SyncBuckets { shift: u8, hashes: Vec<u8> },
    SyncEntries { shift: u8, want: [u64; 4] },
    SyncSummaries { shift: u8, buckets: [u64; 4], summaries: Vec<(u32, u32)> },
    SyncWant { names: Vec<u32> },
}

#[derive(Arbitrary, Debug)]
enum Op {
    /// Time passes (milliseconds).
    Advance(u16),
    /// A long pause: suspicions and reaping run out.
    Sleep(u8),
    Timeout,
    Datagram {
        from: u8,
        incarnation: u8,
        nonce: u16,
        seq: u8,
        body: FuzzBody,
        records: Vec<FuzzRecord>,
    },
    /// Arbitrary bytes, signed.
    Raw(Vec<u8>),
    Join,
    Leave,
    SetMetadata(u8, Vec<u8>),
    RemoveMetadata(u8),
}

fn status(value: u8) -> Status {
    [Status::Online, Status::Suspect, Status::Offline, Status::Left][usize::from(value % 4)]
}

/// `state_machine`: an arbitrary sequence of time steps, datagrams from a few peers (valid
/// messages built from arbitrary fields, signed with the right key), commands and timeouts,
/// with invariants checked after every step.
pub fn state_machine(data: &[u8]) {
    let mut input = Unstructured::new(data);
    let Ok(ops) = Vec::<Op>::arbitrary(&mut input) else { return };
    let mut node = node();
    let mut now = Instant::ZERO;
    let mut local_incarnation = 0;
    let mut incarnations: BTreeMap<String, u64> = BTreeMap::new();
    let mut left = false;
    for op in ops.into_iter().take(256) {
        match op {
            Op::Advance(ms) => now += Duration::from_millis(u64::from(ms)),
            Op::Sleep(secs) => now += Duration::from_secs(u64::from(secs)),
            Op::Timeout => node.handle_timeout(now),
            Op::Datagram { from, incarnation, nonce, seq, body, records } => {
                let from = usize::from(from) % PEERS;
                let bytes = build(from, incarnation, nonce, seq, &body, &records);
                node.handle_datagram(now, addr(from), &bytes);
            }
            Op::Raw(mut bytes) => {
                sign(&mut bytes);
                node.handle_datagram(now, addr(0), &bytes);
            }
            Op::Join => {
                node.join(now, [addr(0)]);
                left = false;
            }
            Op::Leave => {
                node.leave(now);
                left = true;
            }
            Op::SetMetadata(key, value) => {
                let _ = node.set_metadata(now, format!("k{}", key % 4), value);
            }
            Op::RemoveMetadata(key) => {
                let _ = node.remove_metadata(now, &format!("k{}", key % 4));
            }
        }
        drain(&mut node);
        // Invariants.
        let local = node.local_member();
        let expected = if left { Status::Left } else { Status::Online };
        assert_eq!(local.status(), expected, "a node never marks itself suspect or offline");
        assert!(local.incarnation() >= local_incarnation, "local incarnation went down");
        local_incarnation = local.incarnation();
        assert!(node.members().count() <= node.config().max_members);
        let now_known: BTreeMap<String, u64> =
            node.members().map(|m| (m.name().to_string(), m.incarnation())).collect();
        for (name, incarnation) in &now_known {
            if let Some(before) = incarnations.get(name) {
                assert!(incarnation >= before, "{name}'s incarnation went down");
            }
        }
        incarnations = now_known;
        if let Some(deadline) = node.poll_timeout() {
            // A deadline in the past is fine (handled at the next call), but never absurd.
            assert!(deadline.as_micros() < u64::MAX / 2);
        }
    }
}

/// The buckets of `bits` that exist at `shift`.
fn bucket_set(shift: u8, bits: &[u64; 4]) -> BucketSet {
    let mut set = BucketSet::default();
    for i in 0..1usize << shift {
        if bits[i / 64] & (1 << (i % 64)) != 0 {
            set.insert(i);
        }
    }
    set
}

/// A signed datagram from peer `from` built from fuzzed fields.
fn build(
    from: usize,
    incarnation: u8,
    nonce: u16,
    seq: u8,
    body: &FuzzBody,
    records: &[FuzzRecord],
) -> Vec<u8> {
    let name = peer_name(from);
    let sender = Sender { name: &name, addr: addr(from), incarnation: u64::from(incarnation) };
    let seq = u32::from(seq);
    let target_name;
    let hashes;
    let pairs: Vec<u8>;
    let body = match body {
        FuzzBody::Ping { root, target } => {
            target_name =
                target.map(|t| peer_name(usize::from(t) % (PEERS + 1))).unwrap_or_default();
            Body::Ping { seq, root: *root, target: &target_name }
        }
        FuzzBody::Ack { root } => Body::Ack { seq, root: *root },
        FuzzBody::PingReq { target } => {
            let t = usize::from(*target) % (PEERS + 1);
            target_name = peer_name(t);
            Body::PingReq { seq, target: &target_name, target_addr: addr(t) }
        }
        FuzzBody::Nack => Body::Nack { seq },
        FuzzBody::Gossip => Body::Gossip,
        FuzzBody::SyncDigest { root, members } => {
            Body::SyncDigest { root: *root, members: u32::from(*members) }
        }
        FuzzBody::SyncBuckets { shift, hashes: h } => {
            let shift = shift % 9;
            let mut h = h.clone();
            h.resize(4 << shift, 0);
            hashes = h;
            Body::SyncBuckets { shift, hashes: &hashes }
        }
        FuzzBody::SyncEntries { shift, want } => {
            let shift = shift % 9;
            Body::SyncEntries { shift, want: bucket_set(shift, want) }
        }
        FuzzBody::SyncSummaries { shift, buckets, summaries } => {
            let shift = shift % 9;
            pairs = summaries
                .iter()
                .flat_map(|(name, entry)| {
                    [name.to_be_bytes().as_slice(), &entry.to_be_bytes()].concat()
                })
                .collect();
            Body::SyncSummaries { shift, buckets: bucket_set(shift, buckets), summaries: &pairs }
        }
        FuzzBody::SyncWant { names } => {
            pairs = names.iter().flat_map(|name| name.to_be_bytes()).collect();
            Body::SyncWant { names: &pairs }
        }
    };
    let names: Vec<String> =
        records.iter().map(|r| peer_name(usize::from(r.who) % (PEERS + 1))).collect();
    let accusers: Vec<Option<String>> = records
        .iter()
        .map(|r| r.accuser.map(|a| peer_name(usize::from(a) % (PEERS + 1))))
        .collect();
    let metadata: Vec<Option<Metadata>> = records
        .iter()
        .map(|r| {
            r.metadata.as_ref().map(|entries| {
                entries
                    .iter()
                    .map(|(k, v)| (format!("k{}", k % 4), Bytes::copy_from_slice(v)))
                    .collect()
            })
        })
        .collect();
    let mut out = Vec::new();
    let nonce = swim_core::SEQUENCED | (1 << 21) | u64::from(nonce);
    let mut writer = PacketWriter::new(&mut out, 1452, nonce, &sender, &body).expect("small body");
    for (i, r) in records.iter().enumerate().take(64) {
        let who = usize::from(r.who) % (PEERS + 1);
        let record = Record {
            name: &names[i],
            addr: addr(who),
            incarnation: u64::from(r.incarnation),
            status: status(r.status),
            meta_version: u64::from(r.meta_version),
            metadata: metadata[i].as_ref().map(MetadataEntries::Map),
            accuser: accusers[i].as_deref(),
        };
        writer.push(&record);
    }
    writer.finish();
    sign(&mut out);
    out
}
