//! Stream messages: metadata larger than a datagram, push-pull, the stream ping, a cluster
//! of members with and without streams, and hostile stream messages.

mod support;

use std::time::Duration;

use bytes::Bytes;
use support::*;
use swim_core::wire::{Body, NameList, Packet, Record, Sender};
use swim_core::{Config, DropReason, Event, Instant, Keyring, Metadata, Status, TAG_LEN};

fn streaming(i: usize) -> Config {
    let mut config = config(i);
    config.streams = true;
    config
}

/// A cluster of `n` members with streams, all joined through node 0.
fn streaming_cluster(n: usize, seed: u64) -> Cluster {
    let mut cluster = Cluster::with_configs((0..n).map(streaming).collect(), seed);
    for i in 1..n {
        cluster.nodes[i].join(Instant::ZERO, [addr(0)]);
    }
    assert!(cluster.run_until(Duration::from_secs(30), Cluster::all_see_all_online));
    cluster.clear_history();
    cluster
}

fn large(byte: u8, len: usize) -> Bytes {
    Bytes::from(vec![byte; len])
}

/// Whether `viewer` holds `value` as `subject`'s metadata under `key`.
fn holds(cluster: &Cluster, viewer: usize, subject: usize, key: &str, value: &Bytes) -> bool {
    let member = cluster.nodes[viewer].member(&name(subject));
    member.and_then(|m| m.metadata()).and_then(|m| m.get(key)).as_ref() == Some(value)
}

#[test]
fn metadata_of_64_kib_reaches_every_member_over_streams_and_no_datagram_grows() {
    let mut cluster = streaming_cluster(5, 1);
    let value = large(7, 64 * 1024 - 16);
    cluster.nodes[2].set_metadata(cluster.now, "blob", value.clone()).unwrap();
    let version = cluster.nodes[2].local_member().meta_version();
    let spread = cluster
        .run_until(Duration::from_secs(10), |c| (0..5).all(|v| holds(c, v, 2, "blob", &value)));
    assert!(spread, "every member fetched the metadata");
    for v in [0, 1, 3, 4] {
        let changed = cluster.events_of(v, |e| matches!(e, Event::MetadataChanged { .. }));
        let reached = changed.iter().any(|e| {
            matches!(e, Event::MetadataChanged { name: n, version: v, metadata, .. }
                if *n == name(2) && *v == version && metadata.get("blob").as_ref() == Some(&value))
        });
        assert!(reached, "{changed:?}");
        assert_eq!(cluster.nodes[v].member(&name(2)).unwrap().meta_version(), version);
        assert_eq!(cluster.nodes[v].pending_fetches(), 0);
    }
    assert!(cluster.log.iter().all(|sent| sent.bytes.len() <= 1452));
    // Fetched from the member itself, once by each other member (and no more: the version
    // reached them all).
    let requests: Vec<_> =
        cluster.stream_log.iter().filter(|s| s.kind() == "MetadataRequest").collect();
    assert!(requests.iter().all(|s| s.to == addr(2)), "asked of the member itself");
    assert_eq!(requests.len(), 4);
    let replies = cluster.stream_log.iter().filter(|s| s.kind() == "MetadataReply").count();
    assert_eq!(replies, 4);
    // A whole map replaces in one version, and the tables agree again.
    let small: Metadata = [("k", "v")].into_iter().collect();
    cluster.nodes[2].replace_metadata(cluster.now, small).unwrap();
    let replaced = cluster.run_until(Duration::from_secs(10), |c| {
        (0..5).all(|v| {
            let metadata = c.nodes[v].member(&name(2)).and_then(|m| m.metadata().cloned());
            metadata.is_some_and(|m| m.get("blob").is_none() && m.get("k").is_some())
        })
    });
    assert!(replaced);
}

#[test]
fn a_member_joining_later_fetches_large_metadata_it_learns_of_by_anti_entropy() {
    let mut cluster = streaming_cluster(4, 2);
    let values: Vec<Bytes> = (0..4).map(|i| large(i as u8, 20_000)).collect();
    for (i, value) in values.iter().enumerate() {
        cluster.nodes[i].set_metadata(cluster.now, "blob", value.clone()).unwrap();
    }
    cluster.run_for(Duration::from_secs(5));
    let late = cluster.add(streaming(4));
    cluster.nodes[late].join(cluster.now, [addr(0)]);
    let known = cluster.run_until(Duration::from_secs(10), |c| {
        (0..4).all(|s| holds(c, late, s, "blob", &values[s]))
    });
    assert!(known, "the newcomer holds every member's metadata");
}

#[test]
fn unknown_metadata_stays_unknown_until_fetched() {
    let mut cluster = streaming_cluster(3, 3);
    // Streams from node 2 to node 0 break: node 0 hears of the new version but cannot fetch
    // it from node 2, nor (its announcer being node 2 itself, by gossip) from anyone else
    // until anti-entropy announces it through another member.
    cluster.stream_cut.insert((2, 0));
    let before = cluster.nodes[0].member(&name(2)).unwrap().metadata().cloned();
    cluster.nodes[2].set_metadata(cluster.now, "blob", large(1, 10_000)).unwrap();
    cluster.run_for(Duration::from_millis(300));
    let seen = cluster.nodes[0].member(&name(2)).unwrap();
    assert_eq!(seen.metadata().cloned(), before, "the old map stays until the new one arrives");
    assert!(seen.meta_version() < cluster.nodes[2].local_member().meta_version());
    // Another member holds it: anti-entropy announces it from there, and it is fetched.
    let value = large(1, 10_000);
    assert!(cluster.run_until(Duration::from_secs(20), |c| holds(c, 0, 2, "blob", &value)));
}

#[test]
fn a_member_outranks_its_own_large_metadata_of_the_same_version_with_another_hash() {
    let mut cluster = streaming_cluster(2, 4);
    let now = cluster.now;
    cluster.nodes[1].set_metadata(now, "blob", large(3, 5_000)).unwrap();
    let ours = cluster.nodes[1].local_member().clone();
    let version = ours.meta_version();
    // A record about node 1 from a previous life: same version, other content, announced by
    // its hash only.
    let record = Record {
        name: ours.name(),
        addr: ours.addr(),
        incarnation: ours.incarnation(),
        status: Status::Online,
        meta_version: version,
        metadata: None,
        accuser: None,
        meta_hash: Some(ours.metadata().unwrap().hash() ^ 1),
        streams: true,
    };
    let from = cluster.nodes[0].local_member().clone();
    let sender = Sender { name: from.name(), addr: from.addr(), incarnation: from.incarnation() };
    let datagram = forge(&name(1), sender, nonce(now, 1), &Body::Gossip, &[record]);
    cluster.nodes[1].handle_datagram(now, addr(0), &datagram);
    assert!(cluster.nodes[1].local_member().meta_version() > version);
    // The same hash is its own: nothing to do.
    let version = cluster.nodes[1].local_member().meta_version();
    let hash = cluster.nodes[1].local_member().metadata().unwrap().hash();
    let record = Record { meta_version: version, meta_hash: Some(hash), ..record };
    let datagram = forge(&name(1), sender, nonce(now, 2), &Body::Gossip, &[record]);
    cluster.nodes[1].handle_datagram(now, addr(0), &datagram);
    assert_eq!(cluster.nodes[1].local_member().meta_version(), version);
}

#[test]
fn a_member_whose_udp_is_blocked_one_way_is_not_declared_offline_while_streams_work() {
    for streams in [true, false] {
        let config = |i| if streams { streaming(i) } else { config(i) };
        let mut cluster = Cluster::with_configs((0..5).map(config).collect(), 5);
        for i in 1..5 {
            cluster.nodes[i].join(Instant::ZERO, [addr(0)]);
        }
        assert!(cluster.run_until(Duration::from_secs(30), Cluster::all_see_all_online));
        // No datagram reaches node 4 any more; it can still send them, and streams work.
        for i in 0..4 {
            cluster.cut.insert((i, 4));
        }
        cluster.clear_history();
        cluster.run_for(Duration::from_secs(60));
        let offline =
            |e: &Event| matches!(e, Event::MemberOffline { name: n, .. } if n == &name(4));
        let declared = (0..4).any(|v| !cluster.events_of(v, offline).is_empty());
        if streams {
            assert!(!declared, "the stream ping kept node 4 online");
            assert!((0..4).all(|v| cluster.status(v, 4) == Some(Status::Online)));
            assert!(cluster.nodes[0].counters().stream_pings > 0);
        } else {
            assert!(declared, "without streams, node 4 looks dead (the test can fail)");
        }
    }
}

#[test]
fn a_joiner_learns_the_whole_table_by_push_pull_when_datagrams_from_the_seed_are_lost() {
    let mut configs: Vec<Config> = (0..20).map(streaming).collect();
    for config in &mut configs {
        config.push_pull_interval = Some(Duration::from_secs(30));
    }
    let mut cluster = Cluster::with_configs(configs, 6);
    for i in 1..19 {
        cluster.nodes[i].join(Instant::ZERO, [addr(0)]);
    }
    let others: Vec<usize> = (0..19).collect();
    assert!(cluster.run_until(Duration::from_secs(30), |c| {
        others.iter().all(|&v| others.iter().all(|&s| c.status(v, s) == Some(Status::Online)))
    }));
    // Node 19 hears no datagram at all: only the seed's push-pull reply can tell it who is
    // in the cluster.
    for i in 0..19 {
        cluster.cut.insert((i, 19));
    }
    let now = cluster.now;
    cluster.nodes[19].join(now, [addr(0)]);
    assert!(cluster.run_until(Duration::from_millis(100), |c| c.nodes[19].members().count() == 20));
    assert!(cluster.nodes[19].is_ready());
    let pushed = cluster.stream_log.iter().filter(|s| s.kind() == "PushPull").count();
    assert!(pushed >= 1);
}

#[test]
fn members_with_and_without_streams_form_one_cluster() {
    // Nodes 0-2 speak streams (node 0 is the seed); nodes 3-5 are datagram-only.
    let configs = (0..6).map(|i| if i < 3 { streaming(i) } else { config(i) }).collect();
    let mut cluster = Cluster::with_configs(configs, 7);
    for i in 1..6 {
        cluster.nodes[i].join(Instant::ZERO, [addr(0)]);
    }
    assert!(cluster.run_until(Duration::from_secs(30), Cluster::all_see_all_online));
    // Whether a member speaks streams is learned from its own datagrams, so no one takes a
    // datagram-only member for one that does.
    cluster.run_for(Duration::from_secs(10));
    for v in 0..6 {
        for s in (0..6).filter(|s| *s != v) {
            let member = cluster.nodes[v].member(&name(s)).unwrap();
            assert!(!member.speaks_streams() || s < 3, "{v} about {s}");
        }
    }
    assert!(cluster.nodes[0].member(&name(1)).unwrap().speaks_streams());
    // Small metadata travels in datagrams to everyone; large metadata over streams to those
    // that speak them, and is only announced to the others.
    let now = cluster.now;
    cluster.nodes[4].set_metadata(now, "small", "x").unwrap();
    cluster.nodes[1].set_metadata(now, "blob", large(9, 30_000)).unwrap();
    let value = large(9, 30_000);
    let small = Bytes::from_static(b"x");
    assert!(cluster.run_until(Duration::from_secs(15), |c| {
        (0..6).all(|v| holds(c, v, 4, "small", &small))
            && (0..3).all(|v| holds(c, v, 1, "blob", &value))
    }));
    // A medium map (larger than the 256-byte records datagrams carry to members that fetch,
    // small enough for a datagram): carried whole to datagram-only members, fetched by the
    // others.
    cluster.clear_history();
    let medium = large(4, 600);
    cluster.nodes[2].set_metadata(cluster.now, "medium", medium.clone()).unwrap();
    assert!(cluster.run_until(Duration::from_secs(15), |c| {
        (0..6).all(|v| holds(c, v, 2, "medium", &medium))
    }));
    let carries = |sent: &Sent| {
        sent.packet()
            .records
            .iter()
            .any(|r| r.metadata.is_some_and(|m| m.iter().any(|(key, _)| key == "medium")))
    };
    let from_2 = |to: usize| cluster.log.iter().filter(move |s| s.from == 2 && s.to == addr(to));
    assert!(from_2(0).chain(from_2(1)).all(|s| !carries(s)), "announced to members that fetch");
    assert!(from_2(3).chain(from_2(4)).chain(from_2(5)).any(carries), "carried to the others");

    // A crash is detected by all, with and without streams.
    cluster.down.insert(5);
    assert!(cluster.run_until(Duration::from_secs(30), |c| {
        (0..5).all(|v| c.status(v, 5) == Some(Status::Offline))
    }));
    // No stream message ever went to a member without streams.
    assert!(cluster.stream_log.iter().all(|s| [addr(0), addr(1), addr(2)].contains(&s.to)));
    for v in 3..5 {
        assert_eq!(cluster.nodes[v].counters().streams_in, 0);
        assert!(
            cluster.nodes[v]
                .member(&name(1))
                .unwrap()
                .metadata()
                .is_none_or(|m| m.get("blob").is_none())
        );
    }
}

/// Node 0 of a streaming cluster of 3, the stream message it got from node 1 (a metadata
/// request), and the cluster.
fn captured_stream_message() -> (Cluster, Vec<u8>) {
    let mut cluster = streaming_cluster(3, 8);
    cluster.nodes[0].set_metadata(cluster.now, "blob", large(2, 4_000)).unwrap();
    let captured = cluster.run_until(Duration::from_secs(5), |c| {
        c.stream_log.iter().any(|s| s.from == 1 && s.to == addr(0))
    });
    assert!(captured);
    let bytes = cluster.stream_log.iter().find(|s| s.from == 1 && s.to == addr(0)).unwrap();
    let bytes = bytes.bytes.clone();
    cluster.run_for(Duration::from_millis(50));
    cluster.clear_history();
    (cluster, bytes)
}

/// Hands node 0 `message` as a stream message (or a datagram) and checks that it was
/// dropped for `reason` and changed nothing.
fn refused(cluster: &mut Cluster, message: &[u8], as_datagram: bool, reason: DropReason) {
    let node = &mut cluster.nodes[0];
    let before = (node.counters().dropped(reason), node.pending_gossip(), node.members().count());
    let root = node.members().map(|m| (m.name().clone(), m.incarnation(), m.meta_version()));
    let root: Vec<_> = root.collect();
    if as_datagram {
        node.handle_datagram(cluster.now, addr(1), message);
    } else {
        node.handle_stream(cluster.now, addr(1), message);
    }
    assert_eq!(node.counters().dropped(reason), before.0 + 1, "{reason:?}");
    assert_eq!((node.pending_gossip(), node.members().count()), (before.1, before.2));
    let after: Vec<_> =
        node.members().map(|m| (m.name().clone(), m.incarnation(), m.meta_version())).collect();
    assert_eq!(after, root);
    assert!(node.poll_transmit().is_none() && node.poll_stream().is_none(), "no answer");
    assert!(node.poll_event().is_none());
}

#[test]
fn hostile_stream_messages_are_dropped_counted_and_change_nothing() {
    let (mut cluster, captured) = captured_stream_message();
    // Replayed: the same message again.
    refused(&mut cluster, &captured, false, DropReason::Replayed);
    // Replayed as a datagram: the stream flag is sealed in.
    refused(&mut cluster, &captured[..captured.len().min(1452)], true, DropReason::Misdirected);
    // Garbage, and a frame shorter than a tag.
    refused(&mut cluster, &[0x5a; 300], false, DropReason::Unauthenticated);
    refused(&mut cluster, &[2, 1], false, DropReason::Unauthenticated);
    // Forged: the same message with one bit flipped, and one sealed with another key.
    let mut flipped = captured.clone();
    flipped[20] ^= 1;
    refused(&mut cluster, &flipped, false, DropReason::Unauthenticated);
    let header_and_payload = captured[..captured.len() - TAG_LEN].to_vec();
    let other = Keyring::new("another secret").seal_packet(header_and_payload, "", &name(0));
    refused(&mut cluster, &other, false, DropReason::Unauthenticated);
    // Oversized: past max_stream_message, refused before anything is read.
    refused(&mut cluster, &vec![0; (1 << 20) + 1], false, DropReason::TooLarge);
    // A datagram sent over a stream.
    let now = cluster.now;
    let peer = cluster.nodes[1].local_member().clone();
    let sender = Sender { name: peer.name(), addr: peer.addr(), incarnation: peer.incarnation() };
    let datagram = forge(&name(0), sender, nonce(now, 1), &Body::Gossip, &[]);
    refused(&mut cluster, &datagram, false, DropReason::Misdirected);
    // A stream-only message as a datagram (minor version 1's types).
    let request = NameList::parse(&[0, 0]).unwrap();
    let body = Body::MetadataRequest { names: request };
    let datagram = forge(&name(0), sender, nonce(now, 2), &body, &[]);
    refused(&mut cluster, &datagram, true, DropReason::Misdirected);
    // A push-pull reply nobody asked for.
    let reply =
        forge_stream(&name(0), sender, nonce(now, 3), &Body::PushPullReply { echo: 1 }, &[]);
    refused(&mut cluster, &reply, false, DropReason::Unsolicited);
    // A nonce from the future.
    let future = nonce(now + Duration::from_secs(60), 4);
    let ping = Body::Ping { seq: 1, root: 0, target: "" };
    let early = forge_stream(&name(0), sender, future, &ping, &[]);
    refused(&mut cluster, &early, false, DropReason::ClockSkew);
    assert_eq!(cluster.nodes[0].counters().streams_dropped, 9);
}

#[test]
fn a_node_without_streams_drops_every_stream_message() {
    let mut cluster = Cluster::joined(2, 9);
    let now = cluster.now;
    let peer = cluster.nodes[1].local_member().clone();
    let sender = Sender { name: peer.name(), addr: peer.addr(), incarnation: peer.incarnation() };
    let ping = forge_stream(
        &name(0),
        sender,
        nonce(now, 1),
        &Body::Ping { seq: 1, root: 0, target: "" },
        &[],
    );
    refused(&mut cluster, &ping, false, DropReason::Misdirected);
}

#[test]
fn a_stream_request_from_an_unproven_address_gets_at_most_three_times_its_size() {
    let mut cluster = streaming_cluster(3, 10);
    for i in 0..3 {
        cluster.nodes[i].set_metadata(cluster.now, "blob", large(i as u8, 50_000)).unwrap();
    }
    cluster.run_for(Duration::from_secs(5));
    let now = cluster.now;
    // A key holder at 10.0.0.66 speaks as a new member at a victim's address and asks for
    // the whole table and for every member's metadata.
    let victim: std::net::SocketAddr = "192.0.2.9:9000".parse().unwrap();
    let attacker: std::net::SocketAddr = "10.0.0.66:40000".parse().unwrap();
    let sender = Sender { name: "victim", addr: victim, incarnation: 1 };
    let mut names = Vec::new();
    NameList::write(&mut names, (0..3).map(name).collect::<Vec<_>>().iter().map(String::as_str));
    let requests = [
        forge_stream(&name(0), sender, nonce(now, 1), &Body::PushPull { cookie: 5 }, &[]),
        forge_stream(
            &name(0),
            sender,
            nonce(now, 2),
            &Body::MetadataRequest { names: NameList::parse(&names).unwrap() },
            &[],
        ),
    ];
    for request in &requests {
        cluster.nodes[0].handle_stream(now, attacker, request);
        let mut answered = 0;
        while let Some(message) = cluster.nodes[0].poll_stream() {
            assert_eq!(message.destination, victim);
            answered += message.payload.len();
        }
        while cluster.nodes[0].poll_transmit().is_some() {}
        assert!(answered <= 3 * request.len(), "{answered} for {}", request.len());
    }
    // The same requests from the victim's own IP are answered in full.
    let honest: std::net::SocketAddr = "192.0.2.9:51000".parse().unwrap();
    let request = forge_stream(
        &name(0),
        sender,
        nonce(now, 3),
        &Body::MetadataRequest { names: NameList::parse(&names).unwrap() },
        &[],
    );
    cluster.nodes[0].handle_stream(now, honest, &request);
    let answered: usize =
        std::iter::from_fn(|| cluster.nodes[0].poll_stream()).map(|m| m.payload.len()).sum();
    assert!(answered > 150_000, "{answered}");
}

#[test]
fn stream_messages_decode_like_datagrams() {
    // A stream message is a packet with the stream flag: the codec reads it as one.
    let (cluster, captured) = captured_stream_message();
    let _ = cluster;
    let packet = Packet::decode(&captured[..captured.len() - TAG_LEN]).unwrap();
    assert!(packet.header.flags.has(swim_core::wire::Flags::STREAM));
    assert!(matches!(packet.body, Body::MetadataRequest { .. }));
}

#[test]
fn the_stream_seeds_of_the_decode_fuzz_corpus_are_stream_messages() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/decode");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if !path.file_name().unwrap().to_string_lossy().starts_with("stream-") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let packet = Packet::decode(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(packet.header.flags.has(swim_core::wire::Flags::STREAM));
        assert!(packet.body.may_stream());
        seen += 1;
    }
    assert_eq!(seen, 5);
}
