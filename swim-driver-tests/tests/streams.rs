//! Stream messages over real loopback TCP on both drivers: 64 KiB of metadata per member,
//! and what a hostile peer can do to the listener (a slow sender, an oversized frame,
//! garbage, a forged frame, a replayed frame, too many connections).

#[macro_use]
mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant as WallInstant};

use common::{Driver, WAIT, config, wait};
use swim_core::wire::{Body, Flags, Header, PacketWriter, Sender, Version};
use swim_core::{DropReason, SEQUENCED, SystemClock};
use swim_std::{Keyring, Metadata, Snapshot};

suite!(three_members_with_64_kib_of_metadata_each_hold_every_map, hostile_streams_change_nothing,);

/// 64 KiB of metadata in all: the map's encoding is exactly `max_metadata_size`.
fn large_metadata(name: &str) -> Metadata {
    let value: Vec<u8> =
        (0..65_536 - 1 - 1 - 4 - 3).map(|i| (i % 251) as u8 ^ name.as_bytes()[0]).collect();
    let metadata: Metadata = [("blob", value)].into_iter().collect();
    assert_eq!(metadata.encoded_len(), 65_536);
    metadata
}

fn three_members_with_64_kib_of_metadata_each_hold_every_map<D: Driver>() {
    let names = ["a", "b", "c"];
    let first = D::bind(with_metadata(config("a", "large", &[]), "a")).unwrap();
    let seed = [first.local_addr()];
    let mut nodes = vec![first];
    for name in &names[1..] {
        nodes.push(D::bind(with_metadata(config(name, "large", &seed), name)).unwrap());
    }
    let holds_all = |view: &Snapshot| {
        names.iter().all(|n| {
            let metadata = view.member(n).and_then(|m| m.metadata().cloned());
            metadata == Some(large_metadata(n))
        })
    };
    for node in &nodes {
        wait(node, holds_all);
    }
    for node in &nodes {
        let stats = node.stream_stats();
        assert!(stats.sent >= 2 && stats.received >= 2, "{stats:?}");
        assert!(stats.bytes_out >= 2 * 65_536, "each map sent to two members: {stats:?}");
        assert_eq!(stats.cut_off + stats.refused + stats.failed, 0, "{stats:?}");
        assert_eq!(node.snapshot().counters().streams_dropped, 0);
    }
}

fn with_metadata(mut config: swim_std::ClusterConfig, name: &str) -> swim_std::ClusterConfig {
    config.protocol.local_metadata = large_metadata(name);
    config
}

/// A stream message as a holder of `secret` seals it for the member named `to`, from a
/// member named `from` at `addr`, with a fresh sequence number.
fn stream_message(secret: &str, to: &str, from: &str, addr: SocketAddr, count: u64) -> Vec<u8> {
    let nonce = SEQUENCED | ((SystemClock::wall_ms() << 20) + (1 << 19) + count);
    let header = Header::new(Version::V2, Flags(Flags::STREAM), nonce);
    let sender = Sender { name: from, addr, incarnation: 1 };
    let ping = Body::Ping { seq: 7, root: 0, target: "" };
    let writer = PacketWriter::new(Vec::new(), 1 << 20, &header, &sender, &ping).unwrap();
    Keyring::new(secret).seal_packet(writer.finish(), "", to)
}

fn frame(message: &[u8]) -> Vec<u8> {
    let mut framed = (message.len() as u32).to_be_bytes().to_vec();
    framed.extend_from_slice(message);
    framed
}

/// Sends raw bytes on a new connection and waits until the node closes it (or `within`).
fn send_raw(to: SocketAddr, bytes: &[u8], within: Duration) -> bool {
    let mut stream = TcpStream::connect(to).unwrap();
    stream.write_all(bytes).unwrap();
    stream.set_read_timeout(Some(within)).unwrap();
    let mut buffer = [0; 16];
    matches!(stream.read(&mut buffer), Ok(0) | Err(_))
}

fn hostile_streams_change_nothing<D: Driver>() {
    let mut configs: Vec<_> = ["a", "b"].iter().map(|n| config(n, "hostile", &[])).collect();
    for config in &mut configs {
        config.streams.read_timeout = Duration::from_millis(300);
        config.streams.max_connections = 4;
    }
    let nodes = cluster_with::<D>(configs);
    let a = &nodes[0];
    let addr = a.local_addr();
    let members = a.snapshot().members().len();
    let before = a.snapshot().counters().clone();
    let stats = a.stream_stats();
    // A slow sender: a prefix, then nothing. Cut off after the read timeout.
    let started = WallInstant::now();
    assert!(send_raw(addr, &[0, 0, 1], Duration::from_secs(3)), "the node closed it");
    assert!(started.elapsed() < Duration::from_secs(3));
    // An oversized frame: closed before anything is read.
    assert!(send_raw(addr, &[0xff, 0xff, 0xff, 0xff, 1, 2, 3], Duration::from_secs(3)));
    // Garbage, whole frames: the node drops them.
    send_raw(addr, &frame(&[0x5a; 200]), Duration::from_secs(1));
    send_raw(addr, &frame(&[2, 1, 4]), Duration::from_secs(1));
    // Forged: sealed with another secret.
    let me = TcpListener::bind("127.0.0.1:0").unwrap();
    let me_addr = me.local_addr().unwrap();
    let forged = stream_message("not the secret", "a", "intruder", me_addr, 1);
    send_raw(addr, &frame(&forged), Duration::from_secs(1));
    // Replayed: a valid message, then the same bytes again. The first is answered (an ack
    // over a stream, to the address the message names), the second is not.
    let valid = stream_message("hostile", "a", "visitor", me_addr, 2);
    send_raw(addr, &frame(&valid), Duration::from_secs(1));
    me.set_nonblocking(false).unwrap();
    let (mut answer, _) = me.accept().unwrap();
    let mut bytes = Vec::new();
    answer.set_read_timeout(Some(WAIT)).unwrap();
    answer.read_to_end(&mut bytes).unwrap();
    assert!(bytes.len() > 4, "the valid ping was answered");
    send_raw(addr, &frame(&valid), Duration::from_secs(1));
    // Too many connections at once: the fifth is refused.
    let idle: Vec<TcpStream> = (0..6).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let deadline = WallInstant::now() + WAIT;
    while a.stream_stats().refused == stats.refused && WallInstant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(idle);
    let after = a.snapshot().counters().clone();
    let stats = a.stream_stats();
    assert!(stats.refused >= 1, "{stats:?}");
    assert!(stats.cut_off >= 2, "slow and oversized: {stats:?}");
    // Five frames reached the node: garbage twice, the forgery and the replay, dropped; and
    // the valid ping, accepted.
    assert_eq!(after.streams_in - before.streams_in, 5);
    assert_eq!(after.streams_dropped - before.streams_dropped, 4);
    let unauthenticated =
        after.dropped(DropReason::Unauthenticated) - before.dropped(DropReason::Unauthenticated);
    assert_eq!(unauthenticated, 3);
    assert_eq!(after.dropped(DropReason::Replayed) - before.dropped(DropReason::Replayed), 1);
    // Nothing changed but the visitor the valid ping introduced.
    let view = a.snapshot();
    assert_eq!(view.members().len(), members + 1);
    assert!(view.member("intruder").is_none());
    assert!(wait(&nodes[1], |v| v.member("a").is_some()).member("a").is_some());
}

/// Members bound from `configs`, joined through the first.
fn cluster_with<D: Driver>(mut configs: Vec<swim_std::ClusterConfig>) -> Vec<D> {
    let rest = configs.split_off(1);
    let first = D::bind(configs.remove(0)).unwrap();
    let seed = first.local_addr();
    let mut nodes = vec![first];
    for mut config in rest {
        config.protocol.peers = vec![seed];
        nodes.push(D::bind(config).unwrap());
    }
    let names: Vec<String> = nodes.iter().map(|n| n.local_member().name().to_string()).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    for node in &nodes {
        wait(node, common::online(&names));
    }
    nodes
}
