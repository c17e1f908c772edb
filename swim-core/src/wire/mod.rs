//! The wire format: a compact, versioned binary codec, described byte by byte in
//! `docs/PROTOCOL.md`.
//!
//! Shaped like smoltcp's `wire` module: [`Packet::decode`] validates the whole payload once
//! (every length, count, status and string) without allocating, and hands back borrowed views;
//! iterating those views afterwards cannot fail. Encoding cannot fail for a valid value; the
//! [`PacketWriter`] packs records only while they fit the size limit.
//!
//! - `codec`: the primitives (checked reads, varints, names, addresses);
//! - `body`: the message types and their bodies;
//! - `record`: membership facts and the metadata they carry;
//! - `packet`: the header and whole packets;
//! - `stream`: what only stream messages carry (minor version 1).
//!
//! Authentication is not done here: the keyring checks the tag (or decrypts) with the
//! datagram's binding before [`Packet::decode`] sees a byte.

// Public only with `unstable-wire`; otherwise the node uses what it needs of it.
#![cfg_attr(not(feature = "unstable-wire"), allow(unreachable_pub, dead_code, unused_imports))]

mod body;
mod codec;
mod packet;
mod record;
mod stream;

pub use body::{Body, BucketSet, SUMMARY_LEN, WANT_LEN};
pub use packet::{Flags, Header, Packet, PacketWriter, Sender, Version, max_overhead};
pub use record::{MetadataEntries, Record, Records};
pub use stream::{DEFAULT_MAX_STREAM_MESSAGE, FRAME_PREFIX_LEN, NameList, listed_name_len};

/// Major protocol version of this release. A node of major version 2 speaks and accepts
/// version 1 only while told to during a rolling upgrade ([`LegacyWire`](crate::LegacyWire)).
pub const VERSION_MAJOR: u8 = 2;
/// Minor protocol version. Minor versions only add things older nodes can skip (trailing
/// record fields, new message types), so any minor version talks to any other.
pub const VERSION_MINOR: u8 = 1;
/// The minor version of the stream extension: a node sends it in its datagrams when it
/// accepts stream messages (`Config::streams`), and the previous minor version otherwise,
/// so that others learn first-hand whether it can be reached over a stream.
pub const STREAMS_MINOR: u8 = 1;
/// The minor version spoken in version 1 (the last minor version of version 1).
pub const LEGACY_MINOR: u8 = 1;

/// Smallest encoded record (one-byte name, IPv4, one-byte varints, its length prefix): once
/// less room remains a packet is full, and it bounds how many records a datagram can carry.
pub(crate) const MIN_RECORD_LEN: usize = 14;

/// Longest member name, in bytes (its length travels in one byte).
pub const MAX_NAME_LEN: usize = 255;

/// Bytes of IP and UDP headers subtracted from `mtu_size` (IPv6's 40-byte header plus UDP's
/// 8), so one limit holds for both address families.
pub const IP_UDP_OVERHEAD: usize = 48;

/// Most buckets an anti-entropy digest is split into (as a power of two, 2^8).
pub const MAX_BUCKET_SHIFT: u8 = 8;

/// Why a payload could not be decoded. Decoding stops at the first problem.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The payload ended in the middle of a field.
    #[error("payload ended in the middle of a field")]
    Truncated,
    /// Bytes were left over after the last record.
    #[error("{0} bytes left over after the last record")]
    TrailingBytes(usize),
    /// The major version is not one this node speaks.
    #[error("unsupported protocol version {0}")]
    UnsupportedVersion(u8),
    /// The message type is unknown (perhaps from a newer minor version).
    #[error("unknown message type {0}")]
    UnknownMessageType(u8),
    /// A status byte was not exactly one status.
    #[error("invalid status {0}")]
    InvalidStatus(u8),
    /// An address family other than 4 or 6.
    #[error("invalid address family {0}")]
    InvalidAddressFamily(u8),
    /// A name or metadata key was not UTF-8.
    #[error("a name or key is not UTF-8")]
    InvalidUtf8,
    /// A variable-length integer was longer than 64 bits.
    #[error("variable-length integer overflows 64 bits")]
    VarintOverflow,
    /// A field had a value no valid encoder produces.
    #[error("invalid value in field `{0}`")]
    InvalidField(&'static str),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::TAG_LEN;
    use crate::metadata::Metadata;
    use crate::status::Status;
    use alloc::vec;
    use alloc::vec::Vec;
    use bytes::Bytes;
    use core::net::SocketAddr;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn sender() -> Sender<'static> {
        Sender { name: "127.0.0.1:7001", addr: addr(7001), incarnation: 3 }
    }

    fn header(version: Version) -> Header {
        Header::new(version, Flags::default(), 7)
    }

    fn encode_as(version: Version, body: &Body<'_>, records: &[Record<'_>]) -> Vec<u8> {
        let mut writer =
            PacketWriter::new(Vec::new(), 1452, &header(version), &sender(), body).unwrap();
        for record in records {
            assert!(writer.push(record));
        }
        writer.finish()
    }

    fn encode(body: &Body<'_>, records: &[Record<'_>]) -> Vec<u8> {
        encode_as(Version::V2, body, records)
    }

    #[test]
    fn every_body_round_trips_in_both_versions() {
        let hashes = [0xab; 16];
        let mut buckets = BucketSet::default();
        buckets.insert(0);
        buckets.insert(3);
        let summaries = [1u8; 16];
        let names = [2u8; 8];
        let bodies = |v1: bool| {
            let echo = if v1 { None } else { Some(0x0102_0304) };
            let cookie = if v1 { 0 } else { 0x0506_0708 };
            let target_addr = if v1 { Some("[::1]:9".parse().unwrap()) } else { None };
            [
                Body::Ping { seq: 9, root: 5, target: if v1 { "b" } else { "" } },
                Body::Ack { seq: u32::MAX, root: 1 },
                Body::Nack { seq: 77 },
                Body::PingReq { seq: 1, target: "c", target_addr },
                Body::Gossip,
                Body::SyncDigest { root: 0x0123_4567_89ab_cdef, members: 1000 },
                Body::SyncBuckets { cookie, shift: 2, hashes: &hashes },
                Body::SyncEntries,
                Body::SyncSummaries { echo, cookie, shift: 2, buckets, summaries: &summaries },
                Body::SyncWant { echo, names: &names },
            ]
        };
        for (version, v1) in [(Version::V2, false), (Version::V1, true)] {
            for body in bodies(v1) {
                let bytes = encode_as(version, &body, &[]);
                let packet = Packet::decode(&bytes).unwrap();
                assert_eq!(packet.body, body);
                assert_eq!(packet.header, header(version));
                assert_eq!(packet.sender, sender());
                assert!(packet.records.is_empty());
            }
        }
    }

    #[test]
    fn records_round_trip_with_and_without_metadata() {
        let metadata: Metadata =
            [("name", Bytes::from_static(b"one")), ("z", Bytes::new())].into_iter().collect();
        let records = [
            Record {
                name: "a",
                addr: addr(1),
                incarnation: 300,
                status: Status::Suspect,
                meta_version: 0,
                metadata: None,
                accuser: Some("c"),
                meta_hash: None,
                streams: false,
            },
            Record {
                name: "b",
                addr: "[2001:db8::1]:65535".parse().unwrap(),
                incarnation: u64::MAX,
                status: Status::Left,
                meta_version: 7,
                metadata: Some(metadata.entries()),
                accuser: None,
                meta_hash: None,
                streams: false,
            },
        ];
        let bytes = encode(&Body::Gossip, &records);
        let packet = Packet::decode(&bytes).unwrap();
        let decoded: Vec<_> = packet.records.iter().collect();
        assert_eq!(decoded, records);
        assert_eq!(Metadata::from_entries(decoded[1].metadata.unwrap()), metadata);
        // Header 11, type 1, sender name 15, address 7, incarnation 1, record count 2.
        let records_len: usize = records.iter().map(Record::encoded_len).sum();
        assert_eq!(records_len + 37, bytes.len());
    }

    #[test]
    fn stream_bodies_round_trip_in_version_2_only() {
        let mut list = Vec::new();
        NameList::write(&mut list, ["a", "member-b"]);
        let names = NameList::parse(&list).unwrap();
        assert_eq!(names.iter().collect::<Vec<_>>(), ["a", "member-b"]);
        for body in [
            Body::PushPull { cookie: 7 },
            Body::PushPullReply { echo: 9 },
            Body::MetadataRequest { names },
            Body::MetadataReply,
        ] {
            assert!(body.is_stream_only());
            let bytes = encode(&body, &[]);
            assert_eq!(Packet::decode(&bytes).unwrap().body, body);
            let mut v1 = encode_as(Version::V1, &Body::Gossip, &[]);
            v1[Version::V1.header_len()] = bytes[Version::V2.header_len()];
            assert!(matches!(Packet::decode(&v1), Err(DecodeError::UnknownMessageType(_))));
        }
        assert!(Body::Ping { seq: 1, root: 2, target: "" }.may_stream());
        assert!(!Body::Gossip.may_stream());
        assert!(NameList::parse(&[0, 1, 0]).is_err(), "an empty name");
        assert!(NameList::parse(&[0, 2, 1, b'a']).is_err(), "truncated");
    }

    #[test]
    fn metadata_too_large_for_a_datagram_is_announced_by_its_hash() {
        let metadata: Metadata = [("blob", Bytes::from(vec![1u8; 3000]))].into_iter().collect();
        let record = Record {
            name: "m",
            addr: addr(4),
            incarnation: 2,
            status: Status::Online,
            meta_version: 5,
            metadata: Some(metadata.entries()),
            accuser: Some("a"),
            meta_hash: Some(metadata.hash()),
            streams: true,
        };
        let bytes = encode(&Body::Gossip, &[record]);
        assert!(bytes.len() < 200);
        let decoded = Packet::decode(&bytes).unwrap().records.iter().next().unwrap();
        assert_eq!(decoded, Record { metadata: None, ..record });
        // Small enough, it travels whole (and the hash stays off the wire).
        let small: Metadata = [("k", "v")].into_iter().collect();
        let record =
            Record { metadata: Some(small.entries()), meta_hash: Some(small.hash()), ..record };
        let bytes = encode(&Body::Gossip, &[record]);
        let decoded = Packet::decode(&bytes).unwrap().records.iter().next().unwrap();
        assert_eq!(decoded, Record { meta_hash: None, ..record });
        // A stream message carries it whole, unless told to announce what a datagram could
        // not carry.
        let big = Record {
            metadata: Some(metadata.entries()),
            meta_hash: Some(metadata.hash()),
            ..record
        };
        let header = header(Version::V2);
        let mut writer =
            PacketWriter::new(Vec::new(), 1 << 20, &header, &sender(), &Body::MetadataReply)
                .unwrap();
        assert!(writer.push(&big));
        let out = writer.finish();
        let decoded = Packet::decode(&out).unwrap().records.iter().next().unwrap();
        assert_eq!(decoded.metadata.map(|m| m.encoded_len()), Some(metadata.encoded_len()));
        let writer = PacketWriter::new(
            Vec::new(),
            1 << 20,
            &header,
            &sender(),
            &Body::PushPull { cookie: 1 },
        )
        .unwrap();
        let mut writer = writer.with_inline_limit(1400);
        assert!(writer.push(&big));
        let out = writer.finish();
        let decoded = Packet::decode(&out).unwrap().records.iter().next().unwrap();
        assert_eq!((decoded.metadata, decoded.meta_hash), (None, Some(metadata.hash())));
        // Content and hash together are not one encoding: malformed.
        let mut both = Vec::new();
        Record { metadata: Some(small.entries()), meta_hash: None, ..record }.encode(&mut both);
        let flags_at = both.len() - small.encoded_len() - 3;
        both[flags_at] |= 4;
        both.extend_from_slice(&[0; 8]);
        both[0] += 8;
        let mut bytes = encode(&Body::Gossip, &[]);
        let count_at = bytes.len() - 2;
        bytes[count_at..].copy_from_slice(&1u16.to_be_bytes());
        bytes.extend_from_slice(&both);
        assert_eq!(Packet::decode(&bytes).unwrap_err(), DecodeError::InvalidField("record flags"));
    }

    #[test]
    fn a_short_sender_travels_as_its_name_hash_and_incarnation() {
        let body = Body::Ping { seq: 9, root: 4, target: "" };
        let full = encode(&body, &[]);
        let header = Header::new(Version::V2, Flags(Flags::SHORT_SENDER), 7);
        let writer = PacketWriter::new(Vec::new(), 1452, &header, &sender(), &body).unwrap();
        let short = writer.finish();
        // "127.0.0.1:7001" (1 + 14) and an IPv4 address (7) become 8 bytes of hash.
        assert_eq!(full.len() - short.len(), 14);
        let packet = Packet::decode(&short).unwrap();
        assert_eq!(packet.sender_hash, Some(crate::hash::name_hash("127.0.0.1:7001")));
        assert_eq!((packet.sender.name, packet.sender.incarnation), ("", 3));
        let resolved = packet.with_sender("127.0.0.1:7001", addr(7001));
        assert_eq!(resolved.sender, sender());
        assert_eq!(resolved.body, body);
        for len in 0..short.len() {
            assert!(Packet::decode(&short[..len]).is_err(), "{len} bytes");
        }
        assert_eq!(Packet::decode(&full).unwrap().sender_hash, None);
    }

    #[test]
    fn every_truncation_is_an_error() {
        let metadata: Metadata = [("k", Bytes::from_static(b"v"))].into_iter().collect();
        let record = Record {
            name: "member",
            addr: addr(2),
            incarnation: 1,
            status: Status::Online,
            meta_version: 1,
            metadata: Some(metadata.entries()),
            accuser: Some("accuser"),
            meta_hash: None,
            streams: false,
        };
        let body = Body::SyncSummaries {
            echo: Some(5),
            cookie: 6,
            shift: 1,
            buckets: BucketSet::default(),
            summaries: &[3; 8],
        };
        let bytes = encode(&body, &[record]);
        for len in 0..bytes.len() {
            assert!(Packet::decode(&bytes[..len]).is_err(), "prefix of {len} bytes decoded");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(Packet::decode(&longer).unwrap_err(), DecodeError::TrailingBytes(1));
    }

    #[test]
    fn rejects_bad_fields() {
        let good = encode(&Body::Ack { seq: 1, root: 2 }, &[]);
        let at = Version::V2.header_len();
        let mut bad_version = good.clone();
        bad_version[0] = 3;
        assert_eq!(Packet::decode(&bad_version).unwrap_err(), DecodeError::UnsupportedVersion(3));
        let mut newer_minor = good.clone();
        newer_minor[1] = 9;
        assert_eq!(Packet::decode(&newer_minor).unwrap().header.minor, 9);
        let mut unknown_flag = good.clone();
        unknown_flag[2] = 0x80;
        assert_eq!(Packet::decode(&unknown_flag).unwrap_err(), DecodeError::InvalidField("flags"));
        let mut bad_type = good.clone();
        bad_type[at] = 99;
        assert_eq!(Packet::decode(&bad_type).unwrap_err(), DecodeError::UnknownMessageType(99));
        let mut bad_family = good.clone();
        bad_family[at + 2 + sender().name.len()] = 5;
        assert_eq!(Packet::decode(&bad_family).unwrap_err(), DecodeError::InvalidAddressFamily(5));
        let mut bad_utf8 = good;
        bad_utf8[at + 2] = 0xff;
        assert_eq!(Packet::decode(&bad_utf8).unwrap_err(), DecodeError::InvalidUtf8);
    }

    #[test]
    fn empty_sender_names_and_ping_req_targets_are_malformed() {
        let anonymous = Sender { name: "", ..sender() };
        let writer =
            PacketWriter::new(Vec::new(), 1452, &header(Version::V2), &anonymous, &Body::Gossip)
                .unwrap();
        let out = writer.finish();
        assert_eq!(Packet::decode(&out).unwrap_err(), DecodeError::InvalidField("sender name"));
        let body = Body::PingReq { seq: 1, target: "", target_addr: None };
        let bytes = encode(&body, &[]);
        assert_eq!(
            Packet::decode(&bytes).unwrap_err(),
            DecodeError::InvalidField("ping-req target")
        );
    }

    #[test]
    fn record_extensions_from_newer_minor_versions_are_skipped() {
        let record = Record {
            name: "m",
            addr: addr(4),
            incarnation: 2,
            status: Status::Online,
            meta_version: 0,
            metadata: None,
            accuser: None,
            meta_hash: None,
            streams: false,
        };
        let mut body = Vec::new();
        record.encode(&mut body);
        // Rewrite the record with two extra bytes inside its length.
        let inner = &body[1..];
        let mut extended = vec![(inner.len() + 2) as u8];
        extended.extend_from_slice(inner);
        extended.extend_from_slice(&[0xee, 0xee]);
        let mut bytes = encode(&Body::Gossip, &[]);
        let count_at = bytes.len() - 2;
        bytes[count_at..].copy_from_slice(&1u16.to_be_bytes());
        bytes.extend_from_slice(&extended);
        let packet = Packet::decode(&bytes).unwrap();
        assert_eq!(packet.records.iter().collect::<Vec<_>>(), [record]);
    }

    #[test]
    fn huge_counts_fail_fast() {
        let mut bytes = encode(&Body::Gossip, &[]);
        let count_at = bytes.len() - 2;
        bytes[count_at..].copy_from_slice(&u16::MAX.to_be_bytes());
        assert_eq!(Packet::decode(&bytes).unwrap_err(), DecodeError::Truncated);
    }

    #[test]
    fn writer_stops_at_the_limit() {
        let record = Record {
            name: "member-with-a-long-name",
            addr: addr(5),
            incarnation: 1,
            status: Status::Online,
            meta_version: 0,
            metadata: None,
            accuser: None,
            meta_hash: None,
            streams: false,
        };
        let header = header(Version::V2);
        let mut writer =
            PacketWriter::new(Vec::new(), 200, &header, &sender(), &Body::Gossip).unwrap();
        while writer.push(&record) {}
        let pushed = writer.records();
        let out = writer.finish();
        assert!(pushed > 0);
        assert!(out.len() + TAG_LEN <= 200);
        assert!(out.len() + TAG_LEN + record.encoded_len() > 200);
        assert_eq!(Packet::decode(&out).unwrap().records.len(), pushed);
        assert!(PacketWriter::new(out, 20, &header, &sender(), &Body::Gossip).is_err());
    }
}
