//! Records: one membership fact each (a member's state as the sender knows it), and the
//! metadata entries a record may carry.

use alloc::vec::Vec;
use core::net::SocketAddr;

use super::DecodeError;
use super::codec::{Reader, addr_len, name_len, put_addr, put_name, put_varint, varint_len};
use crate::status::Status;

/// The records section of a decoded packet. Already validated: iteration cannot fail.
#[derive(Clone, Copy, Debug)]
pub struct Records<'a> {
    bytes: &'a [u8],
    count: usize,
}

impl<'a> Records<'a> {
    pub(crate) fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
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
    /// [`Metadata::hash`](crate::Metadata::hash) of the member's metadata at
    /// `meta_version`. On the wire only when the metadata itself is left out for being too
    /// large for a datagram: the record then announces a version to fetch over a stream.
    /// Ignored when `metadata` is given.
    pub meta_hash: Option<u64>,
    /// Whether the member accepts stream messages, as the sender knows (minor version 1; a
    /// flag bit, so it costs nothing on the wire). Receivers only ever learn "yes" from it:
    /// nodes of minor version 0 relay records without it.
    pub streams: bool,
}

impl<'a> Record<'a> {
    const FLAG_METADATA: u8 = 1;
    const FLAG_ACCUSER: u8 = 2;
    /// Minor version 1: the metadata's hash follows the accuser (metadata left out).
    const FLAG_META_HASH: u8 = 4;
    /// Minor version 1: the member accepts stream messages.
    const FLAG_STREAMS: u8 = 8;

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
        let meta_hash = if flags & Self::FLAG_META_HASH == 0 {
            None
        } else if metadata.is_some() {
            // One encoding per record: the hash stands in for metadata, never beside it.
            return Err(DecodeError::InvalidField("record flags"));
        } else {
            Some(r.u64()?)
        };
        let streams = flags & Self::FLAG_STREAMS != 0;
        // Anything after the known fields belongs to a newer minor version: skipped.
        let record = Record {
            name,
            addr,
            incarnation,
            status,
            meta_version,
            metadata,
            accuser,
            meta_hash,
            streams,
        };
        Ok(record)
    }

    /// The hash written on the wire: only in place of metadata.
    fn wire_hash(&self) -> Option<u64> {
        self.meta_hash.filter(|_| self.metadata.is_none())
    }

    /// Bytes this record takes on the wire, including its length prefix.
    pub fn encoded_len(&self) -> usize {
        let body = self.body_len();
        varint_len(body as u64) + body
    }

    fn body_len(&self) -> usize {
        name_len(self.name)
            + addr_len(&self.addr)
            + varint_len(self.incarnation)
            + 1
            + varint_len(self.meta_version)
            + 1
            + self.metadata.map_or(0, |m| m.encoded_len())
            + self.accuser.map_or(0, name_len)
            + self.wire_hash().map_or(0, |_| 8)
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
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
        if self.wire_hash().is_some() {
            flags |= Self::FLAG_META_HASH;
        }
        if self.streams {
            flags |= Self::FLAG_STREAMS;
        }
        out.push(flags);
        if let Some(entries) = &self.metadata {
            out.extend_from_slice(entries.encoded());
        }
        if let Some(accuser) = self.accuser {
            put_name(out, accuser);
        }
        if let Some(hash) = self.wire_hash() {
            out.extend_from_slice(&hash.to_be_bytes());
        }
    }
}

/// Metadata entries in their one encoding: a count (varint), then per entry the key (a
/// name), the value's length (varint) and the value; keys strictly ascending, so that equal
/// maps have equal bytes. A view into a received datagram or into a member's
/// [`Metadata`](crate::Metadata), always valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetadataEntries<'a> {
    bytes: &'a [u8],
    count: usize,
}

impl<'a> MetadataEntries<'a> {
    /// No entries.
    pub const EMPTY: MetadataEntries<'static> = MetadataEntries { bytes: &[0], count: 0 };

    /// The entries encoded in `bytes`, which must be exactly one valid encoding.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let entries = Self::decode(&mut r)?;
        if !r.is_empty() {
            return Err(DecodeError::TrailingBytes(r.remaining()));
        }
        Ok(entries)
    }

    fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let start = r.position();
        let count = r.len_prefix()?;
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
        Ok(MetadataEntries { bytes: &r.buf[start..r.position()], count })
    }

    /// The whole encoding, count included.
    pub fn encoded(&self) -> &'a [u8] {
        self.bytes
    }

    /// Bytes of the whole encoding.
    pub fn encoded_len(&self) -> usize {
        self.bytes.len()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Entries in key order.
    pub fn iter(self) -> impl Iterator<Item = (&'a str, &'a [u8])> + 'a {
        let mut r = Reader::new(self.bytes);
        let count = r.len_prefix().unwrap_or(0);
        // Validated when the view was made: cannot fail, and would end iteration rather
        // than panic.
        core::iter::from_fn(move || {
            let key = r.name().ok()?;
            let len = r.len_prefix().ok()?;
            Some((key, r.bytes(len).ok()?))
        })
        .take(count)
    }

    /// Encodes `entries` (keys strictly ascending, each at most 255 bytes) into `out`.
    pub(crate) fn encode<'e>(
        out: &mut Vec<u8>,
        count: usize,
        entries: impl IntoIterator<Item = (&'e str, &'e [u8])>,
    ) {
        put_varint(out, count as u64);
        for (key, value) in entries {
            put_name(out, key);
            put_varint(out, value.len() as u64);
            out.extend_from_slice(value);
        }
    }
}
