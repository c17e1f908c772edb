//! Message bodies: what a packet asks or tells, besides the records it carries.

use alloc::vec::Vec;
use core::net::{Ipv4Addr, SocketAddr};

use super::codec::{Reader, be_u32, put_addr, put_bucket_set, put_counted, put_name, put_varint};
use super::stream::NameList;
use super::{DecodeError, Version};

/// Bytes per entry in [`Body::SyncSummaries`].
pub const SUMMARY_LEN: usize = 8;
/// Bytes per entry in [`Body::SyncWant`].
pub const WANT_LEN: usize = 4;

/// The message types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum MessageType {
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
    PushPull = 11,
    PushPullReply = 12,
    MetadataRequest = 13,
    MetadataReply = 14,
}

impl MessageType {
    pub(crate) fn from_wire(value: u8) -> Result<Self, DecodeError> {
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
            11 => MessageType::PushPull,
            12 => MessageType::PushPullReply,
            13 => MessageType::MetadataRequest,
            14 => MessageType::MetadataReply,
            other => return Err(DecodeError::UnknownMessageType(other)),
        })
    }
}

/// A bitmap of anti-entropy buckets (up to 2^[`MAX_BUCKET_SHIFT`](super::MAX_BUCKET_SHIFT)
/// of them).
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
    /// A direct probe.
    Ping {
        /// Sequence number to echo in the ack.
        seq: u32,
        /// The sender's anti-entropy root: equal roots spare a separate digest.
        root: u64,
        /// Version 1 only: the member the probe is for (empty when only its address is
        /// known). Version 2 binds every datagram to its receiver instead, so this is
        /// empty in a decoded version-2 ping.
        target: &'a str,
    },
    /// The answer to a ping, sent to the prober directly or relayed by a ping-req helper.
    Ack {
        /// The sequence number of the ping (or ping-req) being answered.
        seq: u32,
        /// The sender's anti-entropy root.
        root: u64,
    },
    /// Asks the receiver to probe `target` (a member it knows) and relay its ack.
    PingReq {
        /// Sequence number to put in the relayed ack.
        seq: u32,
        /// The member to probe.
        target: &'a str,
        /// Version 1 only: the target's address. A version-2 helper probes the address it
        /// knows itself, so a ping-req cannot aim its pings elsewhere.
        target_addr: Option<SocketAddr>,
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
        /// A random number the summaries that follow must echo (version 2; 0 in version 1):
        /// proof that the peer receives what is sent to its address, before it is sent
        /// entries in bulk.
        cookie: u32,
        /// log2 of the number of buckets.
        shift: u8,
        /// The hashes, 4 bytes each, big-endian.
        hashes: &'a [u8],
    },
    /// Anti-entropy: entries (the records) that the receiver lacks or holds in another
    /// version. Answers steps 3 and 4; asks for nothing.
    SyncEntries,
    /// Anti-entropy, step 3: one short summary of each of the sender's entries in
    /// `buckets`, so that only the entries that differ travel in full.
    SyncSummaries {
        /// The cookie of the SyncBuckets answered (version 2; none in version 1).
        echo: Option<u32>,
        /// A random number the want that follows must echo (version 2; 0 in version 1).
        cookie: u32,
        /// log2 of the number of buckets.
        shift: u8,
        /// The buckets whose entries are all listed.
        buckets: BucketSet,
        /// [`SUMMARY_LEN`] bytes per entry: the top 32 bits of its name hash, then its entry
        /// hash folded to 32 bits, both big-endian. Read with [`Body::summaries`].
        summaries: &'a [u8],
    },
    /// Anti-entropy, step 4: the entries the sender lacks or holds in another version, by
    /// the top 32 bits of their name hash; answered with SyncEntries.
    SyncWant {
        /// The cookie of the SyncSummaries answered (version 2; none in version 1).
        echo: Option<u32>,
        /// [`WANT_LEN`] bytes per entry, big-endian. Read with [`Body::wanted`].
        names: &'a [u8],
    },
    /// Streams only: a full-state exchange. The records are the sender's whole table
    /// (metadata too large for a datagram announced by its hash); the receiver applies them
    /// and answers with its own table.
    PushPull {
        /// A random number the reply echoes.
        cookie: u32,
    },
    /// Streams only: the answer to a PushPull, with the answering node's whole table.
    PushPullReply {
        /// The cookie of the PushPull answered.
        echo: u32,
    },
    /// Streams only: asks for the metadata of the members named (what this node holds
    /// announced by a version it lacks), answered with a MetadataReply.
    MetadataRequest {
        /// The members whose metadata is wanted.
        names: NameList<'a>,
    },
    /// Streams only: records with their metadata, whatever its size, answering a
    /// MetadataRequest.
    MetadataReply,
}

impl<'a> Body<'a> {
    pub(crate) fn message_type(&self) -> MessageType {
        match self {
            Body::Ping { .. } => MessageType::Ping,
            Body::Ack { .. } => MessageType::Ack,
            Body::PingReq { .. } => MessageType::PingReq,
            Body::Nack { .. } => MessageType::Nack,
            Body::Gossip => MessageType::Gossip,
            Body::SyncDigest { .. } => MessageType::SyncDigest,
            Body::SyncBuckets { .. } => MessageType::SyncBuckets,
            Body::SyncEntries => MessageType::SyncEntries,
            Body::SyncSummaries { .. } => MessageType::SyncSummaries,
            Body::SyncWant { .. } => MessageType::SyncWant,
            Body::PushPull { .. } => MessageType::PushPull,
            Body::PushPullReply { .. } => MessageType::PushPullReply,
            Body::MetadataRequest { .. } => MessageType::MetadataRequest,
            Body::MetadataReply => MessageType::MetadataReply,
        }
    }

    /// Whether this message may travel over a stream: the stream-only types, and pings and
    /// acks (the fallback probe).
    pub fn may_stream(&self) -> bool {
        matches!(
            self,
            Body::Ping { .. }
                | Body::Ack { .. }
                | Body::PushPull { .. }
                | Body::PushPullReply { .. }
                | Body::MetadataRequest { .. }
                | Body::MetadataReply
        )
    }

    /// Whether this message may travel only over a stream.
    pub fn is_stream_only(&self) -> bool {
        self.may_stream() && !matches!(self, Body::Ping { .. } | Body::Ack { .. })
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
        hashes.get(index * 4..index * 4 + 4).map_or(0, be_u32)
    }

    pub(crate) fn decode(
        kind: MessageType,
        r: &mut Reader<'a>,
        version: Version,
    ) -> Result<Self, DecodeError> {
        let v1 = version == Version::V1;
        Ok(match kind {
            MessageType::Ping => {
                let (seq, root) = (r.u32()?, r.u64()?);
                Body::Ping { seq, root, target: if v1 { r.name()? } else { "" } }
            }
            MessageType::Ack => Body::Ack { seq: r.u32()?, root: r.u64()? },
            MessageType::PingReq => {
                let (seq, target) = (r.u32()?, r.name()?);
                let target_addr = if v1 { Some(r.addr()?) } else { None };
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
                let cookie = if v1 { 0 } else { r.u32()? };
                let shift = r.shift()?;
                Body::SyncBuckets { cookie, shift, hashes: r.bytes(4 << shift)? }
            }
            MessageType::SyncEntries => {
                if v1 {
                    // Version 1.0's request for buckets in return: no longer answered.
                    let shift = r.shift()?;
                    r.bucket_set(shift)?;
                }
                Body::SyncEntries
            }
            MessageType::SyncSummaries => {
                let (echo, cookie) = if v1 { (None, 0) } else { (Some(r.u32()?), r.u32()?) };
                let shift = r.shift()?;
                let buckets = r.bucket_set(shift)?;
                let count = usize::from(r.u16()?);
                let summaries = r.bytes(count * SUMMARY_LEN)?;
                Body::SyncSummaries { echo, cookie, shift, buckets, summaries }
            }
            MessageType::SyncWant => {
                let echo = if v1 { None } else { Some(r.u32()?) };
                let count = usize::from(r.u16()?);
                Body::SyncWant { echo, names: r.bytes(count * WANT_LEN)? }
            }
            // Version 1 has no streams.
            MessageType::PushPull
            | MessageType::PushPullReply
            | MessageType::MetadataRequest
            | MessageType::MetadataReply
                if v1 =>
            {
                return Err(DecodeError::UnknownMessageType(kind as u8));
            }
            MessageType::PushPull => Body::PushPull { cookie: r.u32()? },
            MessageType::PushPullReply => Body::PushPullReply { echo: r.u32()? },
            MessageType::MetadataRequest => Body::MetadataRequest { names: NameList::decode(r)? },
            MessageType::MetadataReply => Body::MetadataReply,
        })
    }

    /// Appends the body; `None` if a list is longer than its count can say.
    pub(crate) fn encode(&self, out: &mut Vec<u8>, version: Version) -> Option<()> {
        let v1 = version == Version::V1;
        match *self {
            Body::Ping { seq, root, target } => {
                out.extend_from_slice(&seq.to_be_bytes());
                out.extend_from_slice(&root.to_be_bytes());
                if v1 {
                    put_name(out, target);
                }
            }
            Body::Ack { seq, root } => {
                out.extend_from_slice(&seq.to_be_bytes());
                out.extend_from_slice(&root.to_be_bytes());
            }
            Body::PingReq { seq, target, target_addr } => {
                out.extend_from_slice(&seq.to_be_bytes());
                put_name(out, target);
                if v1 {
                    let unknown = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
                    put_addr(out, &target_addr.unwrap_or(unknown));
                }
            }
            Body::Nack { seq } => out.extend_from_slice(&seq.to_be_bytes()),
            Body::Gossip => {}
            Body::SyncDigest { root, members } => {
                out.extend_from_slice(&root.to_be_bytes());
                put_varint(out, u64::from(members));
            }
            Body::SyncBuckets { cookie, shift, hashes } => {
                if !v1 {
                    out.extend_from_slice(&cookie.to_be_bytes());
                }
                out.push(shift);
                out.extend_from_slice(hashes);
            }
            Body::SyncEntries => {
                if v1 {
                    out.push(0);
                    put_bucket_set(out, 0, &BucketSet::default());
                }
            }
            Body::SyncSummaries { echo, cookie, shift, buckets, summaries } => {
                if !v1 {
                    out.extend_from_slice(&echo.unwrap_or(0).to_be_bytes());
                    out.extend_from_slice(&cookie.to_be_bytes());
                }
                out.push(shift);
                put_bucket_set(out, shift, &buckets);
                put_counted(out, summaries, SUMMARY_LEN)?;
            }
            Body::SyncWant { echo, names } => {
                if !v1 {
                    out.extend_from_slice(&echo.unwrap_or(0).to_be_bytes());
                }
                put_counted(out, names, WANT_LEN)?;
            }
            Body::PushPull { cookie: word } | Body::PushPullReply { echo: word } => {
                out.extend_from_slice(&word.to_be_bytes());
            }
            Body::MetadataRequest { names } => {
                out.extend_from_slice(&u16::try_from(names.len()).ok()?.to_be_bytes());
                out.extend_from_slice(names.names_bytes());
            }
            Body::MetadataReply => {}
        }
        Some(())
    }
}
