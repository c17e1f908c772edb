//! The wire format: a compact, versioned binary codec, described byte by byte in
//! `docs/PROTOCOL.md`.
//!
//! Shaped like smoltcp's `wire` module: [`Packet::decode`] validates the whole payload once
//! (every length, count, status and string) without allocating, and hands back borrowed views;
//! iterating those views afterwards cannot fail. Encoding cannot fail for a valid value; the
//! [`PacketWriter`] packs records only while they fit the size limit.
//!
//! Authentication is not done here: [`Keyring`](crate::Keyring) checks the tag over the whole
//! datagram before [`Packet::decode`] sees a byte.

use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::auth::{NONCE_LEN, TAG_LEN};
use crate::metadata::Metadata;
use crate::status::Status;

/// Major protocol version. Nodes only talk to nodes of the same major version; a future
/// major version must still accept the one before it, so clusters upgrade one node at a time.
pub const VERSION_MAJOR: u8 = 1;
/// Minor protocol version. Minor versions only add things older nodes can skip (trailing
/// record fields, new message types), so any minor version talks to any other.
pub const VERSION_MINOR: u8 = 1;

/// Bytes before the payload: major and minor version, then the nonce.
pub const HEADER_LEN: usize = 2 + NONCE_LEN;

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
    /// The major version is not ours.
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

/// The message types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum MessageType {
    Ping = 1,
    Ack = 2,
    PingReq = 3,
    Nack = 4,
    Gossip = 5,
    SyncDigest = 6,
    SyncBuckets = 7,
    SyncEntries = 8,
    SyncSummaries = 9,
    SyncWant = 10,
}

impl MessageType {
    fn from_wire(value: u8) -> Result<Self, DecodeError> {
        Ok(match value {
            1 => MessageType::Ping,
            2 => MessageType::Ack,
            3 => MessageType::PingReq,
            4 => MessageType::Nack,
            5 => MessageType::Gossip,
            6 => MessageType::SyncDigest,
            7 => MessageType::SyncBuckets,
            8 => MessageType::SyncEntries,
            9 => MessageType::SyncSummaries,
            10 => MessageType::SyncWant,
            other => return Err(DecodeError::UnknownMessageType(other)),
        })
    }
}

/// Who sent a packet, as it describes itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sender<'a> {
    /// The sender's member name.
    pub name: &'a str,
    /// The address the sender advertises.
    pub addr: SocketAddr,
    /// The sender's current incarnation.
    pub incarnation: u64,
}

/// A bitmap of anti-entropy buckets (up to 2^[`MAX_BUCKET_SHIFT`] of them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BucketSet(pub [u64; 4]);

impl BucketSet {
    /// Adds bucket `index` (taken modulo 256).
    pub fn insert(&mut self, index: usize) {
        let index = index & 0xff;
        self.0[index / 64] |= 1 << (index % 64);
    }

    /// Whether bucket `index` is in the set.
    pub fn contains(&self, index: usize) -> bool {
        let index = index & 0xff;
        self.0[index / 64] & (1 << (index % 64)) != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0 == [0; 4]
    }

    /// Number of buckets in the set.
    pub fn len(&self) -> usize {
        self.0.iter().map(|word| word.count_ones() as usize).sum()
    }

    /// Bytes of the bitmap on the wire for `2^shift` buckets.
    pub fn wire_len(shift: u8) -> usize {
        (1usize << shift).div_ceil(8)
    }
}

/// What a packet asks or tells, besides the records it carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body<'a> {
    /// A direct probe. `target` is the name the sender expects to reach; empty when the
    /// sender only knows an address (a join).
    Ping {
        /// Sequence number to echo in the ack.
        seq: u32,
        /// The sender's anti-entropy root: equal roots spare a separate digest.
        root: u64,
        /// The member the probe is for.
        target: &'a str,
    },
    /// The answer to a ping, sent to the prober directly or relayed by a ping-req helper.
    Ack {
        /// The sequence number of the ping (or ping-req) being answered.
        seq: u32,
        /// The sender's anti-entropy root.
        root: u64,
    },
    /// Asks the receiver to probe `target` and relay its ack.
    PingReq {
        /// Sequence number to put in the relayed ack.
        seq: u32,
        /// The member to probe.
        target: &'a str,
        /// Its address.
        target_addr: SocketAddr,
    },
    /// Lifeguard: a ping-req helper heard nothing from the target within its own timeout.
    /// Tells the requester that the helper, at least, is reachable.
    Nack {
        /// The requester's sequence number from the ping-req.
        seq: u32,
    },
    /// Records only: the periodic gossip round.
    Gossip,
    /// Anti-entropy, step 1: a summary of the sender's whole membership table.
    SyncDigest {
        /// Sum of all entry hashes.
        root: u64,
        /// Number of entries in the table.
        members: u32,
    },
    /// Anti-entropy, step 2: per-bucket hashes, since the roots differ.
    SyncBuckets {
        /// log2 of the number of buckets.
        shift: u8,
        /// The hashes, 4 bytes each, big-endian.
        hashes: &'a [u8],
    },
    /// Anti-entropy, step 3 (and 4): the sender's entries of differing buckets, and which
    /// buckets it wants back.
    SyncEntries {
        /// log2 of the number of buckets.
        shift: u8,
        /// Buckets whose entries the sender wants in return (empty for a final answer).
        want: BucketSet,
    },
    /// Anti-entropy, step 3 since minor version 1: one short summary of each of the sender's
    /// entries in `buckets`, so that only the entries that differ travel in full.
    SyncSummaries {
        /// log2 of the number of buckets.
        shift: u8,
        /// The buckets whose entries are all listed.
        buckets: BucketSet,
        /// [`SUMMARY_LEN`] bytes per entry: the top 32 bits of its name hash, then its entry
        /// hash folded to 32 bits, both big-endian. Read with [`Body::summaries`].
        summaries: &'a [u8],
    },
    /// Anti-entropy, step 4 since minor version 1: the entries the sender lacks or holds in
    /// another version, by the top 32 bits of their name hash; answered with SyncEntries.
    SyncWant {
        /// [`WANT_LEN`] bytes per entry, big-endian. Read with [`Body::wanted`].
        names: &'a [u8],
    },
}

/// Bytes per entry in [`Body::SyncSummaries`].
pub const SUMMARY_LEN: usize = 8;
/// Bytes per entry in [`Body::SyncWant`].
pub const WANT_LEN: usize = 4;

impl Body<'_> {
    fn message_type(&self) -> MessageType {
        match self {
            Body::Ping { .. } => MessageType::Ping,
            Body::Ack { .. } => MessageType::Ack,
            Body::PingReq { .. } => MessageType::PingReq,
            Body::Nack { .. } => MessageType::Nack,
            Body::Gossip => MessageType::Gossip,
            Body::SyncDigest { .. } => MessageType::SyncDigest,
            Body::SyncBuckets { .. } => MessageType::SyncBuckets,
            Body::SyncEntries { .. } => MessageType::SyncEntries,
            Body::SyncSummaries { .. } => MessageType::SyncSummaries,
            Body::SyncWant { .. } => MessageType::SyncWant,
        }
    }

    /// The `(name, entry)` hash pairs of a [`Body::SyncSummaries`].
    pub fn summaries(summaries: &[u8]) -> impl Iterator<Item = (u32, u32)> + '_ {
        summaries.chunks_exact(SUMMARY_LEN).map(|pair| {
            let (name, entry) = pair.split_at(4);
            (be_u32(name), be_u32(entry))
        })
    }

    /// The name hashes of a [`Body::SyncWant`].
    pub fn wanted(names: &[u8]) -> impl Iterator<Item = u32> + '_ {
        names.chunks_exact(WANT_LEN).map(be_u32)
    }

    /// The hash of bucket `index` in a [`Body::SyncBuckets`], or 0 if out of range.
    pub fn bucket_hash(hashes: &[u8], index: usize) -> u32 {
        hashes
            .get(index * 4..index * 4 + 4)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u32::from_be_bytes)
    }
}

/// A decoded packet: borrowed views into a payload that has been fully validated.
#[derive(Clone, Copy, Debug)]
pub struct Packet<'a> {
    /// Minor version of the sender.
    pub minor_version: u8,
    /// The sender's nonce: a sequence number if [`SEQUENCED`](crate::SEQUENCED) is set.
    pub nonce: u64,
    /// The sender.
    pub sender: Sender<'a>,
    /// The message.
    pub body: Body<'a>,
    /// Membership facts piggybacked on the message.
    pub records: Records<'a>,
}

impl<'a> Packet<'a> {
    /// Decodes an authenticated datagram without its tag: version, nonce, then payload.
    pub fn decode(signed: &'a [u8]) -> Result<Packet<'a>, DecodeError> {
        let mut r = Reader::new(signed);
        let major = r.u8()?;
        if major != VERSION_MAJOR {
            return Err(DecodeError::UnsupportedVersion(major));
        }
        let minor_version = r.u8()?;
        let nonce = r.u64()?;
        let message_type = MessageType::from_wire(r.u8()?)?;
        let sender = Sender { name: r.name()?, addr: r.addr()?, incarnation: r.varint()? };
        if sender.name.is_empty() {
            // Every member has a name: an empty one would enter tables and gossip.
            return Err(DecodeError::InvalidField("sender name"));
        }
        let body = match message_type {
            MessageType::Ping => Body::Ping { seq: r.u32()?, root: r.u64()?, target: r.name()? },
            MessageType::Ack => Body::Ack { seq: r.u32()?, root: r.u64()? },
            MessageType::PingReq => {
                let (seq, target, target_addr) = (r.u32()?, r.name()?, r.addr()?);
                if target.is_empty() {
                    return Err(DecodeError::InvalidField("ping-req target"));
                }
                Body::PingReq { seq, target, target_addr }
            }
            MessageType::Nack => Body::Nack { seq: r.u32()? },
            MessageType::Gossip => Body::Gossip,
            MessageType::SyncDigest => {
                let root = r.u64()?;
                let members =
                    u32::try_from(r.varint()?).map_err(|_| DecodeError::InvalidField("members"))?;
                Body::SyncDigest { root, members }
            }
            MessageType::SyncBuckets => {
                let shift = r.shift()?;
                Body::SyncBuckets { shift, hashes: r.bytes(4 << shift)? }
            }
            MessageType::SyncEntries => {
                let shift = r.shift()?;
                Body::SyncEntries { shift, want: r.bucket_set(shift)? }
            }
            MessageType::SyncSummaries => {
                let shift = r.shift()?;
                let buckets = r.bucket_set(shift)?;
                let count = usize::from(r.u16()?);
                Body::SyncSummaries { shift, buckets, summaries: r.bytes(count * SUMMARY_LEN)? }
            }
            MessageType::SyncWant => {
                let count = usize::from(r.u16()?);
                Body::SyncWant { names: r.bytes(count * WANT_LEN)? }
            }
        };
        let records = Records::decode(&mut r)?;
        if !r.is_empty() {
            return Err(DecodeError::TrailingBytes(r.remaining()));
        }
        Ok(Packet { minor_version, nonce, sender, body, records })
    }
}

/// The records section of a decoded packet. Already validated: iteration cannot fail.
#[derive(Clone, Copy, Debug)]
pub struct Records<'a> {
    bytes: &'a [u8],
    count: usize,
}

impl<'a> Records<'a> {
    fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let count = usize::from(r.u16()?);
        let start = r.position();
        for _ in 0..count {
            let len = r.len_prefix()?;
            Record::decode(r.bytes(len)?)?;
        }
        Ok(Records { bytes: &r.buf[start..r.position()], count })
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The records in order.
    pub fn iter(&self) -> impl Iterator<Item = Record<'a>> + 'a {
        let mut r = Reader::new(self.bytes);
        // Validated in `decode`: a failure here is impossible, and would end iteration early
        // rather than panic.
        core::iter::from_fn(move || {
            let len = r.len_prefix().ok()?;
            Record::decode(r.bytes(len).ok()?).ok()
        })
        .take(self.count)
    }
}

/// One membership fact: a member's state as the sender knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// The member's name.
    pub name: &'a str,
    /// The member's advertised address.
    pub addr: SocketAddr,
    /// The incarnation the status belongs to.
    pub incarnation: u64,
    /// The status.
    pub status: Status,
    /// Version of the member's metadata the sender holds (0: none known).
    pub meta_version: u64,
    /// The metadata itself, when the sender chose to include it.
    pub metadata: Option<MetadataEntries<'a>>,
    /// For a suspicion: the member that suspects (Lifeguard counts distinct accusers).
    pub accuser: Option<&'a str>,
}

impl<'a> Record<'a> {
    const FLAG_METADATA: u8 = 1;
    const FLAG_ACCUSER: u8 = 2;

    fn decode(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let name = r.name()?;
        if name.is_empty() {
            return Err(DecodeError::InvalidField("record name"));
        }
        let addr = r.addr()?;
        let incarnation = r.varint()?;
        let status = r.u8()?;
        let status = Status::from_wire(status).ok_or(DecodeError::InvalidStatus(status))?;
        let meta_version = r.varint()?;
        let flags = r.u8()?;
        let metadata = if flags & Self::FLAG_METADATA != 0 {
            Some(MetadataEntries::decode(&mut r)?)
        } else {
            None
        };
        let accuser = if flags & Self::FLAG_ACCUSER != 0 { Some(r.name()?) } else { None };
        // Anything after the known fields belongs to a newer minor version: skipped.
        Ok(Record { name, addr, incarnation, status, meta_version, metadata, accuser })
    }

    /// Bytes this record takes on the wire, including its length prefix.
    pub fn encoded_len(&self) -> usize {
        let body = self.body_len();
        varint_len(body as u64) + body
    }

    fn body_len(&self) -> usize {
        1 + self.name.len()
            + addr_len(&self.addr)
            + varint_len(self.incarnation)
            + 1
            + varint_len(self.meta_version)
            + 1
            + self.metadata.as_ref().map_or(0, MetadataEntries::encoded_len)
            + self.accuser.map_or(0, |a| 1 + a.len().min(MAX_NAME_LEN))
    }

    fn encode(&self, out: &mut Vec<u8>) {
        put_varint(out, self.body_len() as u64);
        put_name(out, self.name);
        put_addr(out, &self.addr);
        put_varint(out, self.incarnation);
        out.push(self.status.to_wire());
        put_varint(out, self.meta_version);
        let mut flags = 0;
        if self.metadata.is_some() {
            flags |= Self::FLAG_METADATA;
        }
        if self.accuser.is_some() {
            flags |= Self::FLAG_ACCUSER;
        }
        out.push(flags);
        if let Some(entries) = &self.metadata {
            entries.encode(out);
        }
        if let Some(accuser) = self.accuser {
            put_name(out, accuser);
        }
    }
}

/// Metadata entries in a record: a view into a datagram, or a local map being encoded.
#[derive(Clone, Copy, Debug)]
pub enum MetadataEntries<'a> {
    /// Validated entries inside a received datagram.
    Wire {
        /// The encoded entries.
        bytes: &'a [u8],
        /// Their number.
        count: usize,
    },
    /// A local map.
    Map(&'a Metadata),
}

impl PartialEq for MetadataEntries<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for MetadataEntries<'_> {}

impl<'a> MetadataEntries<'a> {
    fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let count = r.len_prefix()?;
        let start = r.position();
        let mut previous: Option<&str> = None;
        for _ in 0..count {
            let key = r.name()?;
            // Keys strictly ascending: one encoding per map, so equal maps hash equal.
            if previous.is_some_and(|p| p >= key) {
                return Err(DecodeError::InvalidField("metadata key order"));
            }
            previous = Some(key);
            let len = r.len_prefix()?;
            r.bytes(len)?;
        }
        Ok(MetadataEntries::Wire { bytes: &r.buf[start..r.position()], count })
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        match self {
            MetadataEntries::Wire { count, .. } => *count,
            MetadataEntries::Map(map) => map.len(),
        }
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a [u8])> + 'a {
        let (wire, map) = match *self {
            MetadataEntries::Wire { bytes, count } => (Some((Reader::new(bytes), count)), None),
            MetadataEntries::Map(map) => (None, Some(map.iter())),
        };
        let wire = wire.into_iter().flat_map(|(mut r, count)| {
            // Validated in `decode`: cannot fail, and would end iteration rather than panic.
            core::iter::from_fn(move || {
                let key = r.name().ok()?;
                let len = r.len_prefix().ok()?;
                Some((key, r.bytes(len).ok()?))
            })
            .take(count)
        });
        let map = map.into_iter().flatten().map(|(k, v)| (k, v.as_ref()));
        wire.chain(map)
    }

    /// Copies the entries into a map.
    pub fn to_metadata(&self) -> Metadata {
        self.iter().map(|(k, v)| (k, bytes::Bytes::copy_from_slice(v))).collect()
    }

    fn encoded_len(&self) -> usize {
        let entries: usize =
            self.iter().map(|(k, v)| 1 + k.len() + varint_len(v.len() as u64) + v.len()).sum();
        varint_len(self.len() as u64) + entries
    }

    fn encode(&self, out: &mut Vec<u8>) {
        put_varint(out, self.len() as u64);
        for (key, value) in self.iter() {
            put_name(out, key);
            put_varint(out, value.len() as u64);
            out.extend_from_slice(value);
        }
    }
}

/// Builds one datagram: header and body first, then as many records as fit, then the tag.
#[derive(Debug)]
pub struct PacketWriter<'b> {
    out: &'b mut Vec<u8>,
    limit: usize,
    count_at: usize,
    count: u16,
}

impl<'b> PacketWriter<'b> {
    /// Starts a packet in `out` (cleared first) that will not exceed `max_datagram` bytes
    /// once signed. Returns `None` if even the bare message does not fit.
    pub fn new(
        out: &'b mut Vec<u8>,
        max_datagram: usize,
        nonce: u64,
        sender: &Sender<'_>,
        body: &Body<'_>,
    ) -> Option<Self> {
        out.clear();
        out.push(VERSION_MAJOR);
        out.push(VERSION_MINOR);
        out.extend_from_slice(&nonce.to_be_bytes());
        out.push(body.message_type() as u8);
        put_name(out, sender.name);
        put_addr(out, &sender.addr);
        put_varint(out, sender.incarnation);
        match *body {
            Body::Ping { seq, root, target } => {
                out.extend_from_slice(&seq.to_be_bytes());
                out.extend_from_slice(&root.to_be_bytes());
                put_name(out, target);
            }
            Body::Ack { seq, root } => {
                out.extend_from_slice(&seq.to_be_bytes());
                out.extend_from_slice(&root.to_be_bytes());
            }
            Body::PingReq { seq, target, target_addr } => {
                out.extend_from_slice(&seq.to_be_bytes());
                put_name(out, target);
                put_addr(out, &target_addr);
            }
            Body::Nack { seq } => out.extend_from_slice(&seq.to_be_bytes()),
            Body::Gossip => {}
            Body::SyncDigest { root, members } => {
                out.extend_from_slice(&root.to_be_bytes());
                put_varint(out, u64::from(members));
            }
            Body::SyncBuckets { shift, hashes } => {
                out.push(shift);
                out.extend_from_slice(hashes);
            }
            Body::SyncEntries { shift, want } => {
                out.push(shift);
                put_bucket_set(out, shift, &want);
            }
            Body::SyncSummaries { shift, buckets, summaries } => {
                out.push(shift);
                put_bucket_set(out, shift, &buckets);
                put_counted(out, summaries, SUMMARY_LEN)?;
            }
            Body::SyncWant { names } => put_counted(out, names, WANT_LEN)?,
        }
        let count_at = out.len();
        out.extend_from_slice(&0u16.to_be_bytes());
        let limit = max_datagram.checked_sub(TAG_LEN)?;
        (out.len() <= limit).then_some(PacketWriter { out, limit, count_at, count: 0 })
    }

    /// Bytes still free for records.
    pub fn remaining(&self) -> usize {
        self.limit - self.out.len()
    }

    /// Number of records added.
    pub fn records(&self) -> usize {
        usize::from(self.count)
    }

    /// Appends `record` if it fits; returns whether it did.
    pub fn push(&mut self, record: &Record<'_>) -> bool {
        if record.encoded_len() > self.remaining() || self.count == u16::MAX {
            return false;
        }
        record.encode(self.out);
        self.count += 1;
        true
    }

    /// Writes the record count; the caller signs next.
    pub fn finish(self) {
        self.out[self.count_at..self.count_at + 2].copy_from_slice(&self.count.to_be_bytes());
    }
}

/// Bytes a packet with an empty body and no records takes at most, signed.
pub fn max_overhead(sender_name_len: usize) -> usize {
    HEADER_LEN + 1 + 1 + sender_name_len + 19 + 10 + 2 + TAG_LEN
}

fn varint_len(mut value: u64) -> usize {
    let mut len = 1;
    while value >= 0x80 {
        value >>= 7;
        len += 1;
    }
    len
}

/// A bucket bitmap of `2^shift` bits: bucket `i` at bit `i % 8` of byte `i / 8`.
fn put_bucket_set(out: &mut Vec<u8>, shift: u8, set: &BucketSet) {
    for i in 0..BucketSet::wire_len(shift) {
        out.push((set.0[i / 8] >> ((i % 8) * 8)) as u8);
    }
}

/// A 2-byte count of `unit`-byte items, then the items; `None` if there are too many.
fn put_counted(out: &mut Vec<u8>, items: &[u8], unit: usize) -> Option<()> {
    let count = u16::try_from(items.len() / unit).ok()?;
    out.extend_from_slice(&count.to_be_bytes());
    out.extend_from_slice(&items[..usize::from(count) * unit]);
    Some(())
}

fn be_u32(bytes: &[u8]) -> u32 {
    bytes.try_into().map_or(0, u32::from_be_bytes)
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Writes a name or key: one length byte, then the bytes. Callers keep names within
/// [`MAX_NAME_LEN`] (configuration and metadata validation); longer input is cut at a
/// character boundary rather than produce an undecodable datagram.
fn put_name(out: &mut Vec<u8>, name: &str) {
    let mut len = name.len().min(MAX_NAME_LEN);
    while !name.is_char_boundary(len) {
        len -= 1;
    }
    out.push(len as u8);
    out.extend_from_slice(&name.as_bytes()[..len]);
}

fn addr_len(addr: &SocketAddr) -> usize {
    match addr {
        SocketAddr::V4(_) => 1 + 4 + 2,
        SocketAddr::V6(_) => 1 + 16 + 2,
    }
}

fn put_addr(out: &mut Vec<u8>, addr: &SocketAddr) {
    match addr.ip() {
        IpAddr::V4(ip) => {
            out.push(4);
            out.extend_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            out.push(6);
            out.extend_from_slice(&ip.octets());
        }
    }
    out.extend_from_slice(&addr.port().to_be_bytes());
}

/// A cursor over a byte slice whose every read is checked.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn position(&self) -> usize {
        self.pos
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    fn bytes(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(len).ok_or(DecodeError::Truncated)?;
        let bytes = self.buf.get(self.pos..end).ok_or(DecodeError::Truncated)?;
        self.pos = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let bytes = self.bytes(N)?;
        bytes.try_into().map_err(|_| DecodeError::Truncated)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut value = 0u64;
        for i in 0..10 {
            let byte = self.u8()?;
            let bits = u64::from(byte & 0x7f);
            if i == 9 && bits > 1 {
                return Err(DecodeError::VarintOverflow);
            }
            value |= bits << (7 * i);
            if byte & 0x80 == 0 {
                // One encoding per value: a zero final byte after the first is overlong.
                if i > 0 && byte == 0 {
                    return Err(DecodeError::InvalidField("overlong varint"));
                }
                return Ok(value);
            }
        }
        Err(DecodeError::VarintOverflow)
    }

    /// A varint used as a length or count: bounded by what is left, so a forged huge count
    /// fails here instead of driving a long loop.
    fn len_prefix(&mut self) -> Result<usize, DecodeError> {
        let value = self.varint()?;
        usize::try_from(value)
            .ok()
            .filter(|len| *len <= self.remaining())
            .ok_or(DecodeError::Truncated)
    }

    fn name(&mut self) -> Result<&'a str, DecodeError> {
        let len = usize::from(self.u8()?);
        core::str::from_utf8(self.bytes(len)?).map_err(|_| DecodeError::InvalidUtf8)
    }

    fn addr(&mut self) -> Result<SocketAddr, DecodeError> {
        let ip = match self.u8()? {
            4 => IpAddr::V4(Ipv4Addr::from(self.array::<4>()?)),
            6 => IpAddr::V6(Ipv6Addr::from(self.array::<16>()?)),
            other => return Err(DecodeError::InvalidAddressFamily(other)),
        };
        Ok(SocketAddr::new(ip, self.u16()?))
    }

    /// A bucket bitmap of `2^shift` bits; bits beyond the last bucket must be clear.
    fn bucket_set(&mut self, shift: u8) -> Result<BucketSet, DecodeError> {
        let mut set = BucketSet::default();
        for (i, byte) in self.bytes(BucketSet::wire_len(shift))?.iter().enumerate() {
            for bit in 0..8 {
                if byte & (1 << bit) != 0 {
                    let index = i * 8 + bit;
                    if index >= 1 << shift {
                        return Err(DecodeError::InvalidField("bucket set"));
                    }
                    set.insert(index);
                }
            }
        }
        Ok(set)
    }

    fn shift(&mut self) -> Result<u8, DecodeError> {
        let shift = self.u8()?;
        if shift > MAX_BUCKET_SHIFT {
            return Err(DecodeError::InvalidField("bucket shift"));
        }
        Ok(shift)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use bytes::Bytes;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn sender() -> Sender<'static> {
        Sender { name: "127.0.0.1:7001", addr: addr(7001), incarnation: 3 }
    }

    fn encode(body: &Body<'_>, records: &[Record<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut writer = PacketWriter::new(&mut out, 1452, 7, &sender(), body).unwrap();
        for record in records {
            assert!(writer.push(record));
        }
        writer.finish();
        out
    }

    #[test]
    fn every_body_round_trips() {
        let hashes = [0xab; 16];
        let mut want = BucketSet::default();
        want.insert(0);
        want.insert(3);
        let bodies = [
            Body::Ping { seq: 9, root: 5, target: "b" },
            Body::Ping { seq: 0, root: u64::MAX, target: "" },
            Body::Ack { seq: u32::MAX, root: 1 },
            Body::Nack { seq: 77 },
            Body::PingReq { seq: 1, target: "c", target_addr: "[::1]:9".parse().unwrap() },
            Body::Gossip,
            Body::SyncDigest { root: 0x0123_4567_89ab_cdef, members: 1000 },
            Body::SyncBuckets { shift: 2, hashes: &hashes },
            Body::SyncEntries { shift: 2, want },
            Body::SyncEntries { shift: 8, want },
        ];
        for body in bodies {
            let bytes = encode(&body, &[]);
            let packet = Packet::decode(&bytes).unwrap();
            assert_eq!(packet.body, body);
            assert_eq!(packet.sender, sender());
            assert!(packet.records.is_empty());
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
            },
            Record {
                name: "b",
                addr: "[2001:db8::1]:65535".parse().unwrap(),
                incarnation: u64::MAX,
                status: Status::Left,
                meta_version: 7,
                metadata: Some(MetadataEntries::Map(&metadata)),
                accuser: None,
            },
        ];
        let bytes = encode(&Body::Gossip, &records);
        let packet = Packet::decode(&bytes).unwrap();
        let decoded: Vec<_> = packet.records.iter().collect();
        assert_eq!(decoded, records);
        assert_eq!(decoded[1].metadata.unwrap().to_metadata(), metadata);
        // Header 10, type 1, sender name 15, address 7, incarnation 1, record count 2.
        let records_len: usize = records.iter().map(Record::encoded_len).sum();
        assert_eq!(records_len + 36, bytes.len());
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
            metadata: Some(MetadataEntries::Map(&metadata)),
            accuser: Some("accuser"),
        };
        let bytes = encode(&Body::PingReq { seq: 5, target: "x", target_addr: addr(3) }, &[record]);
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
        let mut bad_version = good.clone();
        bad_version[0] = 2;
        assert_eq!(Packet::decode(&bad_version).unwrap_err(), DecodeError::UnsupportedVersion(2));
        let mut newer_minor = good.clone();
        newer_minor[1] = 9;
        assert_eq!(Packet::decode(&newer_minor).unwrap().minor_version, 9);
        let mut bad_type = good.clone();
        bad_type[HEADER_LEN] = 99;
        assert_eq!(Packet::decode(&bad_type).unwrap_err(), DecodeError::UnknownMessageType(99));
        let mut bad_family = good.clone();
        bad_family[HEADER_LEN + 2 + sender().name.len()] = 5;
        assert_eq!(Packet::decode(&bad_family).unwrap_err(), DecodeError::InvalidAddressFamily(5));
        let mut bad_utf8 = good;
        bad_utf8[HEADER_LEN + 2] = 0xff;
        assert_eq!(Packet::decode(&bad_utf8).unwrap_err(), DecodeError::InvalidUtf8);
    }

    #[test]
    fn empty_sender_names_and_ping_req_targets_are_malformed() {
        let mut out = Vec::new();
        let anonymous = Sender { name: "", ..sender() };
        let writer = PacketWriter::new(&mut out, 1452, 0, &anonymous, &Body::Gossip).unwrap();
        writer.finish();
        assert_eq!(Packet::decode(&out).unwrap_err(), DecodeError::InvalidField("sender name"));
        let body = Body::PingReq { seq: 1, target: "", target_addr: addr(3) };
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
    fn varints_reject_overflow_and_overlong() {
        for value in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            assert_eq!(out.len(), varint_len(value));
            assert_eq!(Reader::new(&out).varint(), Ok(value));
        }
        assert!(Reader::new(&[0xff; 11]).varint().is_err());
        assert!(
            Reader::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02])
                .varint()
                .is_err()
        );
        assert!(Reader::new(&[0x80, 0x00]).varint().is_err());
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
        let mut out = Vec::new();
        let record = Record {
            name: "member-with-a-long-name",
            addr: addr(5),
            incarnation: 1,
            status: Status::Online,
            meta_version: 0,
            metadata: None,
            accuser: None,
        };
        let mut writer = PacketWriter::new(&mut out, 200, 0, &sender(), &Body::Gossip).unwrap();
        while writer.push(&record) {}
        let pushed = writer.records();
        writer.finish();
        assert!(pushed > 0);
        assert!(out.len() + TAG_LEN <= 200);
        assert!(out.len() + TAG_LEN + record.encoded_len() > 200);
        assert_eq!(Packet::decode(&out).unwrap().records.len(), pushed);
        assert!(PacketWriter::new(&mut out, 20, 0, &sender(), &Body::Gossip).is_none());
    }
}
