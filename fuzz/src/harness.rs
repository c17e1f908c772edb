//! The checks behind the fuzz targets, shared with the stable corpus replay test
//! (`swim-core/tests/fuzz_corpus.rs` includes this file), so that every committed corpus
//! input is re-checked by `cargo test` on the stable toolchain.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use rand_chacha::ChaCha8Rng;
use swim_core::rand_core::SeedableRng;
use swim_core::wire::{
    Body, BucketSet, Flags, Header, NameList, Packet, PacketWriter, Record, Sender, Version,
};
use swim_core::{Bytes, Config, Instant, Keyring, Metadata, Node, SEQUENCED, Status, TAG_LEN};

/// The key every fuzzed node and every fuzzed peer uses.
const SECRET: &[u8] = b"fuzz secret";

/// The fuzzed node's name, and the wall clock at its start (milliseconds since 1970).
const LOCAL: &str = "local";
const EPOCH_MS: u64 = 1_700_000_000_000;

/// Peers a fuzzed node hears from (index 4 is the node itself).
const PEERS: usize = 4;

fn addr(i: usize) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9000 + i as u16))
}

fn peer_name(i: usize) -> String {
    if i >= PEERS { LOCAL.to_string() } else { format!("peer-{i}") }
}

fn keyring() -> Keyring {
    Keyring::new(SECRET)
}

fn node() -> Node<ChaCha8Rng> {
    let mut config = Config::new(LOCAL, addr(PEERS), keyring());
    config.max_members = 16;
    config.epoch_ms = EPOCH_MS;
    config.streams = true;
    config.push_pull_interval = Some(Duration::from_secs(5));
    config.local_metadata.insert("role", Bytes::from_static(b"fuzz"));
    Node::new(config, ChaCha8Rng::seed_from_u64(7), Instant::ZERO).expect("valid config")
}

/// A nonce a peer could send at `now`, `count` into its millisecond.
fn nonce_at(now: Instant, count: u64) -> u64 {
    let wall_ms = EPOCH_MS + now.as_micros() / 1000;
    SEQUENCED | (wall_ms << 20) | (count & 0xf_ffff)
}

/// What a node believes, for before/after comparisons.
fn snapshot(node: &Node<ChaCha8Rng>) -> Vec<(String, Status, u64, u64)> {
    node.members()
        .map(|m| (m.name().to_string(), m.status(), m.incarnation(), m.meta_version()))
        .collect()
}

/// Drains a node's outputs, checks that every datagram it sends decodes, and notes the last
/// anti-entropy cookie sent to each peer (so that fuzzed answers can echo it).
fn drain(node: &mut Node<ChaCha8Rng>, last_sent: &mut [u32; PEERS]) {
    let max = node.config().max_datagram();
    while let Some(transmit) = node.poll_transmit() {
        assert!(transmit.payload.len() <= max, "sent {} > {max} bytes", transmit.payload.len());
        let header = Header::parse(transmit.payload).expect("a sent datagram has a header");
        if header.flags.has(Flags::ENCRYPTED) {
            continue;
        }
        let sealed = &transmit.payload[..transmit.payload.len() - TAG_LEN];
        let packet = match Packet::decode(sealed) {
            Ok(packet) => packet,
            Err(error) => panic!("the node sent a datagram it cannot decode: {error}"),
        };
        let cookie = match packet.body {
            Body::SyncBuckets { cookie, .. } | Body::SyncSummaries { cookie, .. } => cookie,
            _ => continue,
        };
        if let Some(peer) = (0..PEERS).find(|i| addr(*i) == transmit.destination) {
            last_sent[peer] = cookie;
        }
    }
    while let Some(message) = node.poll_stream() {
        let max = node.config().max_stream_message;
        assert!(message.payload.len() <= max, "streamed {} > {max} bytes", message.payload.len());
        let header = Header::parse(&message.payload).expect("a stream message has a header");
        assert!(header.flags.has(Flags::STREAM), "a stream message is flagged so");
        if header.flags.has(Flags::ENCRYPTED) {
            continue;
        }
        let sealed = &message.payload[..message.payload.len() - TAG_LEN];
        match Packet::decode(sealed) {
            Ok(packet) => assert!(packet.body.may_stream(), "{:?} sent over a stream", packet.body),
            Err(error) => panic!("the node streamed a message it cannot decode: {error}"),
        }
    }
    while node.poll_event().is_some() {}
}

/// `decode`: arbitrary bytes into the decoder; whatever decodes re-encodes to the same
/// meaning.
pub fn decode(data: &[u8]) {
    let Ok(packet) = Packet::decode(data) else { return };
    let mut writer =
        PacketWriter::new(Vec::new(), usize::MAX, &packet.header, &packet.sender, &packet.body)
            .expect("no size limit");
    for record in packet.records.iter() {
        assert!(writer.push(&record), "a decoded record re-encodes");
    }
    let out = writer.finish();
    let again = Packet::decode(&out).expect("a re-encoded packet decodes");
    assert_eq!(again.header, packet.header);
    assert_eq!(again.sender, packet.sender);
    assert_eq!(again.body, packet.body);
    assert!(again.records.iter().eq(packet.records.iter()));
}

/// `datagram`: arbitrary bytes into a live node, as they are (almost always dropped, with no
/// state change), then as the payload of a correctly sealed version-2 datagram (its first
/// byte picks the flags and whether it is bound to this node, to an address or to another
/// member); never a panic.
pub fn datagram(data: &[u8]) {
    let mut last_sent = [0; PEERS];
    let mut node = node();
    node.join(Instant::ZERO, [addr(0)]);
    drain(&mut node, &mut last_sent);
    let before = snapshot(&node);
    let dropped = node.counters().dropped_total();
    node.handle_datagram(Instant::from_millis(10), addr(1), data);
    if node.counters().dropped_total() > dropped {
        assert_eq!(snapshot(&node), before, "a dropped datagram changed state");
        assert!(node.poll_transmit().is_none(), "a dropped datagram was answered");
    }
    drain(&mut node, &mut last_sent);
    let Some((&choice, payload)) = data.split_first() else { return };
    let flags = Flags(choice & (Flags::TO_ADDRESS | Flags::ENCRYPTED));
    let now = Instant::from_millis(20);
    let header = Header::new(Version::V2, flags, nonce_at(now, u64::from(choice)));
    let mut packet = Vec::with_capacity(header.encoded_len() + payload.len());
    packet.extend_from_slice(&[2, 0, flags.0]);
    packet.extend_from_slice(&header.nonce.to_be_bytes());
    packet.extend_from_slice(payload);
    let receiver = match choice >> 6 {
        0 | 1 => LOCAL,
        2 => "",
        _ => "peer-3",
    };
    let sealed = keyring().seal_packet(packet, "", receiver);
    node.handle_datagram(now, addr(1), &sealed);
    drain(&mut node, &mut last_sent);
    node.handle_timeout(Instant::from_secs(30));
    drain(&mut node, &mut last_sent);
    assert!(matches!(node.local_member().status(), Status::Online));
}

/// A membership fact with fields from a small space, so that equal incarnations and names
/// collide often; `far` puts its counters at the top of their range.
#[derive(Arbitrary, Debug)]
struct FuzzRecord {
    who: u8,
    incarnation: u8,
    status: u8,
    meta_version: u8,
    far: bool,
    metadata: Option<Vec<(u8, Vec<u8>)>>,
    accuser: Option<u8>,
    /// Metadata announced by a hash instead (ignored with `metadata`).
    hash: Option<u64>,
    streams: bool,
}

/// An echo in an anti-entropy answer: the right one (the cookie last sent to that peer), or
/// any.
#[derive(Arbitrary, Debug)]
enum Echo {
    Last,
    Any(u32),
}

#[derive(Arbitrary, Debug)]
enum FuzzBody {
    Ping {
        root: u64,
    },
    Ack {
        root: u64,
    },
    PingReq {
        target: u8,
    },
    Nack,
    Gossip,
    SyncDigest {
        root: u64,
        members: u16,
    },
    SyncBuckets {
        cookie: u32,
        shift: u8,
        hashes: Vec<u8>,
    },
    SyncEntries,
    SyncSummaries {
        echo: Echo,
        cookie: u32,
        shift: u8,
        buckets: [u64; 4],
        summaries: Vec<(u32, u32)>,
    },
    SyncWant {
        echo: Echo,
        names: Vec<u32>,
    },
}

/// What a fuzzed stream message asks or tells.
#[derive(Arbitrary, Debug)]
enum FuzzStreamBody {
    Ping {
        root: u64,
    },
    Ack {
        root: u64,
    },
    PushPull {
        cookie: u32,
    },
    PushPullReply {
        echo: u32,
    },
    MetadataRequest {
        names: Vec<u8>,
    },
    MetadataReply,
    /// A datagram's message over a stream (refused).
    Gossip,
}

/// How a fuzzed datagram is sealed.
#[derive(Arbitrary, Debug)]
struct Seal {
    /// Bound to an address instead of this node's name.
    to_address: bool,
    encrypted: bool,
    /// Bound to another member, or to another cluster's label.
    misbound: bool,
    /// Version 1 instead of 2.
    legacy: bool,
    /// The sender named by its name hash only (version 2).
    short_sender: bool,
    /// The nonce's distance from the clock, in seconds (0: now).
    skew: i8,
}

#[derive(Arbitrary, Debug)]
enum Op {
    /// Time passes (milliseconds).
    Advance(u16),
    /// A long pause: suspicions and reaping run out.
    Sleep(u8),
    /// The driver's clock jumps back (seconds).
    ClockBack(u8),
    Timeout,
    Datagram {
        from: u8,
        incarnation: u8,
        nonce: u16,
        seq: u8,
        seal: Seal,
        body: FuzzBody,
        records: Vec<FuzzRecord>,
    },
    /// Arbitrary bytes after a valid header, sealed for this node.
    Raw(Vec<u8>),
    /// A stream message from a peer, as a datagram's fields are fuzzed (the stream flag set
    /// unless `unflagged`).
    Stream {
        from: u8,
        incarnation: u8,
        nonce: u16,
        seq: u8,
        seal: Seal,
        unflagged: bool,
        body: FuzzStreamBody,
        records: Vec<FuzzRecord>,
    },
    /// Arbitrary bytes as a stream message, and after a valid stream header sealed for
    /// this node.
    RawStream(Vec<u8>),
    Join,
    Leave,
    SetMetadata(u8, Vec<u8>),
    RemoveMetadata(u8),
}

fn status(value: u8) -> Status {
    [Status::Online, Status::Suspect, Status::Offline, Status::Left][usize::from(value % 4)]
}

/// `state_machine`: an arbitrary sequence of time steps (the clock may also go back),
/// datagrams from a few peers (valid messages built from arbitrary fields, sealed with the
/// right key, bound rightly or not, fresh or not), commands and timeouts, with invariants
/// checked after every step.
pub fn state_machine(data: &[u8]) {
    let mut input = Unstructured::new(data);
    let Ok(ops) = Vec::<Op>::arbitrary(&mut input) else { return };
    let mut node = node();
    let mut last_sent = [0; PEERS];
    let mut now = Instant::ZERO;
    let mut local_incarnation = 0;
    let mut incarnations: BTreeMap<String, u64> = BTreeMap::new();
    let mut left = false;
    for op in ops.into_iter().take(256) {
        match op {
            Op::Advance(ms) => now += Duration::from_millis(u64::from(ms)),
            Op::Sleep(secs) => now += Duration::from_secs(u64::from(secs)),
            Op::ClockBack(secs) => now = now - Duration::from_secs(u64::from(secs)),
            Op::Timeout => {
                node.handle_timeout(now);
                if let Some(next) = node.poll_timeout() {
                    assert!(next > now, "after handle_timeout({now}), the next deadline {next}");
                }
            }
            Op::Datagram { from, incarnation, nonce, seq, seal, body, records } => {
                let from = usize::from(from) % PEERS;
                let fields = Fields { from, incarnation, nonce, seq, now, echo: last_sent[from] };
                let bytes = build(&fields, &seal, &body, &records);
                node.handle_datagram(now, addr(from), &bytes);
            }
            Op::Raw(bytes) => {
                let mut packet = vec![2, 0, 0];
                packet.extend_from_slice(&nonce_at(now, 0xf_0000).to_be_bytes());
                packet.extend_from_slice(&bytes);
                node.handle_datagram(now, addr(0), &keyring().seal_packet(packet, "", LOCAL));
            }
            Op::Stream { from, incarnation, nonce, seq, seal, unflagged, body, records } => {
                let from = usize::from(from) % PEERS;
                let fields = Fields { from, incarnation, nonce, seq, now, echo: last_sent[from] };
                let bytes = build_stream(&fields, &seal, unflagged, &body, &records);
                node.handle_stream(now, addr(from), &bytes);
            }
            Op::RawStream(bytes) => {
                node.handle_stream(now, addr(1), &bytes);
                let mut packet = vec![2, 1, Flags::STREAM];
                packet.extend_from_slice(&nonce_at(now, 0xf_0001).to_be_bytes());
                packet.extend_from_slice(&bytes);
                node.handle_stream(now, addr(1), &keyring().seal_packet(packet, "", LOCAL));
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
        drain(&mut node, &mut last_sent);
        check_invariants(&node, left, &mut local_incarnation, &mut incarnations);
    }
}

fn check_invariants(
    node: &Node<ChaCha8Rng>,
    left: bool,
    local_incarnation: &mut u64,
    incarnations: &mut BTreeMap<String, u64>,
) {
    let local = node.local_member();
    let expected = if left { Status::Left } else { Status::Online };
    assert_eq!(local.status(), expected, "a node never marks itself suspect or offline");
    assert!(local.incarnation() >= *local_incarnation, "local incarnation went down");
    *local_incarnation = local.incarnation();
    assert!(local.incarnation() < u64::MAX / 2, "local incarnation {}", local.incarnation());
    assert!(node.members().count() <= node.config().max_members);
    assert!(node.pending_fetches() <= node.config().max_members, "fetches beyond the table");
    let now_known: BTreeMap<String, u64> =
        node.members().map(|m| (m.name().to_string(), m.incarnation())).collect();
    for (name, incarnation) in &now_known {
        if let Some(before) = incarnations.get(name) {
            assert!(incarnation >= before, "{name}'s incarnation went down");
        }
    }
    *incarnations = now_known;
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

/// The header fields of a fuzzed datagram.
struct Fields {
    from: usize,
    incarnation: u8,
    nonce: u16,
    seq: u8,
    now: Instant,
    /// The cookie last sent to the peer, for a right echo.
    echo: u32,
}

/// A sealed datagram from peer `fields.from` built from fuzzed fields.
fn build(fields: &Fields, seal: &Seal, body: &FuzzBody, records: &[FuzzRecord]) -> Vec<u8> {
    let seq = u32::from(fields.seq);
    let echo = |echo: &Echo| match echo {
        Echo::Last => Some(fields.echo),
        Echo::Any(value) => Some(*value),
    };
    let target_name;
    let hashes;
    let pairs: Vec<u8>;
    let body = match body {
        FuzzBody::Ping { root } => Body::Ping { seq, root: *root, target: LOCAL },
        FuzzBody::Ack { root } => Body::Ack { seq, root: *root },
        FuzzBody::PingReq { target } => {
            let t = usize::from(*target) % (PEERS + 1);
            target_name = peer_name(t);
            Body::PingReq { seq, target: &target_name, target_addr: Some(addr(t)) }
        }
        FuzzBody::Nack => Body::Nack { seq },
        FuzzBody::Gossip => Body::Gossip,
        FuzzBody::SyncDigest { root, members } => {
            Body::SyncDigest { root: *root, members: u32::from(*members) }
        }
        FuzzBody::SyncBuckets { cookie, shift, hashes: h } => {
            let shift = shift % 9;
            let mut h = h.clone();
            h.resize(4 << shift, 0);
            hashes = h;
            Body::SyncBuckets { cookie: *cookie, shift, hashes: &hashes }
        }
        FuzzBody::SyncEntries => Body::SyncEntries,
        FuzzBody::SyncSummaries { echo: e, cookie, shift, buckets, summaries } => {
            let shift = shift % 9;
            pairs = summaries
                .iter()
                .flat_map(|(name, entry)| {
                    [name.to_be_bytes().as_slice(), &entry.to_be_bytes()].concat()
                })
                .collect();
            let buckets = bucket_set(shift, buckets);
            Body::SyncSummaries {
                echo: echo(e),
                cookie: *cookie,
                shift,
                buckets,
                summaries: &pairs,
            }
        }
        FuzzBody::SyncWant { echo: e, names } => {
            pairs = names.iter().flat_map(|name| name.to_be_bytes()).collect();
            Body::SyncWant { echo: echo(e), names: &pairs }
        }
    };
    sealed(fields, seal, 0, &body, records)
}

/// A sealed stream message from peer `fields.from` built from fuzzed fields.
fn build_stream(
    fields: &Fields,
    seal: &Seal,
    unflagged: bool,
    body: &FuzzStreamBody,
    records: &[FuzzRecord],
) -> Vec<u8> {
    let seq = u32::from(fields.seq);
    let mut list = Vec::new();
    let body = match body {
        FuzzStreamBody::Ping { root } => Body::Ping { seq, root: *root, target: "" },
        FuzzStreamBody::Ack { root } => Body::Ack { seq, root: *root },
        FuzzStreamBody::PushPull { cookie } => Body::PushPull { cookie: *cookie },
        FuzzStreamBody::PushPullReply { echo } => Body::PushPullReply { echo: *echo },
        FuzzStreamBody::MetadataRequest { names } => {
            let names: Vec<String> =
                names.iter().map(|n| peer_name(usize::from(*n) % (PEERS + 1))).collect();
            NameList::write(&mut list, names.iter().map(String::as_str));
            Body::MetadataRequest { names: NameList::parse(&list).unwrap_or(NameList::EMPTY) }
        }
        FuzzStreamBody::MetadataReply => Body::MetadataReply,
        FuzzStreamBody::Gossip => Body::Gossip,
    };
    let flags = if unflagged { 0 } else { Flags::STREAM };
    sealed(fields, seal, flags, &body, records)
}

/// `body` with `records`, from peer `fields.from`, sealed as `seal` says, with
/// `extra_flags` in the header.
fn sealed(
    fields: &Fields,
    seal: &Seal,
    extra_flags: u8,
    body: &Body<'_>,
    records: &[FuzzRecord],
) -> Vec<u8> {
    let name = peer_name(fields.from);
    let incarnation = u64::from(fields.incarnation);
    let sender = Sender { name: &name, addr: addr(fields.from), incarnation };
    let header = header(fields, seal, extra_flags);
    let limit = if extra_flags & Flags::STREAM != 0 { 1 << 20 } else { 1452 };
    // A fuzzed body can outgrow the limit (thousands of summaries): nothing to send then.
    let Ok(mut writer) = PacketWriter::new(Vec::new(), limit, &header, &sender, body) else {
        return Vec::new();
    };
    push_records(&mut writer, records);
    let (label, receiver) = match (seal.misbound, seal.to_address) {
        (true, true) => ("other cluster", ""),
        (true, false) => ("", "peer-3"),
        (false, true) => ("", ""),
        (false, false) => ("", LOCAL),
    };
    keyring().seal_packet(writer.finish(), label, receiver)
}

/// The header of a fuzzed message: its version, flags (`extra_flags` and the seal's), and a
/// nonce at a skewed time.
fn header(fields: &Fields, seal: &Seal, extra_flags: u8) -> Header {
    let version = if seal.legacy { Version::V1 } else { Version::V2 };
    let mut flags = extra_flags;
    if seal.to_address {
        flags |= Flags::TO_ADDRESS;
    }
    if seal.encrypted {
        flags |= Flags::ENCRYPTED;
    }
    if seal.short_sender && !seal.legacy {
        flags |= Flags::SHORT_SENDER;
    }
    let skewed = if seal.skew >= 0 {
        fields.now + Duration::from_secs(seal.skew.unsigned_abs().into())
    } else {
        fields.now - Duration::from_secs(seal.skew.unsigned_abs().into())
    };
    Header::new(version, Flags(flags), nonce_at(skewed, u64::from(fields.nonce)))
}

/// Writes up to 64 fuzzed records, about the peers and the local node.
fn push_records(writer: &mut PacketWriter, records: &[FuzzRecord]) {
    for r in records.iter().take(64) {
        let who = usize::from(r.who) % (PEERS + 1);
        let name = peer_name(who);
        let accuser = r.accuser.map(|a| peer_name(usize::from(a) % (PEERS + 1)));
        let metadata: Option<Metadata> = r.metadata.as_ref().map(|entries| {
            entries
                .iter()
                .map(|(k, v)| (format!("k{}", k % 4), Bytes::copy_from_slice(v)))
                .collect()
        });
        let far = |value: u8| if r.far { u64::MAX - u64::from(value) } else { u64::from(value) };
        let record = Record {
            name: &name,
            addr: addr(who),
            incarnation: far(r.incarnation),
            status: status(r.status),
            meta_version: far(r.meta_version),
            metadata: metadata.as_ref().map(Metadata::entries),
            accuser: accuser.as_deref(),
            meta_hash: r.hash,
            streams: r.streams,
        };
        writer.push(&record);
    }
}
