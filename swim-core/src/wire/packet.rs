//! Packets: the header every datagram starts with, and a whole decoded or written packet.

use alloc::vec::Vec;
use core::net::SocketAddr;

use super::body::{Body, MessageType};
use super::codec::{Reader, put_addr, put_name, put_varint};
use super::record::{Record, Records};
use super::{DecodeError, LEGACY_MINOR, STREAMS_MINOR, VERSION_MINOR};
use crate::auth::TAG_LEN;
use crate::hash::name_hash;

/// A wire format version: the major version byte every datagram starts with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    /// Version 1 (minor 1): what earlier releases speak; no receiver binding, no label, no
    /// encryption. Spoken and accepted only during a rolling upgrade
    /// ([`LegacyWire`](crate::LegacyWire)).
    V1 = 1,
    /// Version 2: every datagram bound to its receiver and to the cluster label, sequence
    /// numbers derived from time, optional encryption.
    V2 = 2,
}

impl Version {
    /// Bytes of this version's header.
    pub const fn header_len(self) -> usize {
        match self {
            Version::V1 => 2 + 8,
            Version::V2 => 3 + 8,
        }
    }
}

/// The flags byte of a version-2 header. Bits beyond those defined must be clear.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flags(pub u8);

impl Flags {
    /// Sent to an address whose member name the sender does not know (a seed): bound to
    /// no receiver, and so accepted only as the first step of a join (a SyncDigest).
    pub const TO_ADDRESS: u8 = 1;
    /// The payload is encrypted (AES-256-GCM-SIV) instead of only authenticated.
    pub const ENCRYPTED: u8 = 2;
    /// A stream message, not a datagram (minor version 1). The tag covers the flag, so a
    /// message captured on a stream is refused as a datagram and the other way round, and
    /// each transport keeps its own replay windows.
    pub const STREAM: u8 = 4;
    /// The sender names itself by the 64-bit hash of its name and its incarnation alone,
    /// without name and address: sent only to a member that has shown it holds the sender
    /// in its table, which takes both from there (a datagram, never a stream message).
    pub const SHORT_SENDER: u8 = 8;
    const KNOWN: u8 = Self::TO_ADDRESS | Self::ENCRYPTED | Self::STREAM | Self::SHORT_SENDER;

    /// Whether `flag` is set.
    pub fn has(self, flag: u8) -> bool {
        self.0 & flag != 0
    }
}

/// What precedes the payload: version, flags and the nonce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The major version.
    pub version: Version,
    /// The sender's minor version.
    pub minor: u8,
    /// Version 2's flags (none in version 1).
    pub flags: Flags,
    /// A sequence number if [`SEQUENCED`](crate::SEQUENCED) is set, random salt otherwise.
    pub nonce: u64,
}

impl Header {
    /// A header of this release's minor version of `version`.
    pub fn new(version: Version, flags: Flags, nonce: u64) -> Self {
        let minor = match version {
            Version::V1 => LEGACY_MINOR,
            Version::V2 => VERSION_MINOR,
        };
        Header { version, minor, flags, nonce }
    }

    /// Reads the header at the start of `datagram`.
    pub fn parse(datagram: &[u8]) -> Result<Header, DecodeError> {
        let mut r = Reader::new(datagram);
        let (version, minor) = match r.u8()? {
            1 => (Version::V1, r.u8()?),
            2 => (Version::V2, r.u8()?),
            other => return Err(DecodeError::UnsupportedVersion(other)),
        };
        let flags = if version == Version::V2 { Flags(r.u8()?) } else { Flags::default() };
        if flags.0 & !Flags::KNOWN != 0 {
            return Err(DecodeError::InvalidField("flags"));
        }
        Ok(Header { version, minor, flags, nonce: r.u64()? })
    }

    /// Whether the sender accepts stream messages at its address: a version-2 datagram of
    /// minor version [`STREAMS_MINOR`] or later.
    pub fn speaks_streams(&self) -> bool {
        self.version == Version::V2 && self.minor >= STREAMS_MINOR
    }

    /// Bytes of this header.
    pub fn encoded_len(&self) -> usize {
        self.version.header_len()
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.push(self.version as u8);
        out.push(self.minor);
        if self.version == Version::V2 {
            out.push(self.flags.0);
        }
        out.extend_from_slice(&self.nonce.to_be_bytes());
    }
}

/// Who sent a packet, as it describes itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sender<'a> {
    /// The sender's member name.
    pub name: &'a str,
    /// The address the sender advertises: where answers go.
    pub addr: SocketAddr,
    /// The sender's current incarnation.
    pub incarnation: u64,
}

/// A decoded packet: borrowed views into a payload that has been fully validated.
#[derive(Clone, Copy, Debug)]
pub struct Packet<'a> {
    /// Version, flags and nonce.
    pub header: Header,
    /// The sender. Of a short sender ([`Flags::SHORT_SENDER`]) only the incarnation is on
    /// the wire: the name is empty and the address unspecified until the receiver resolves
    /// [`Packet::sender_hash`] in its table ([`Packet::with_sender`]).
    pub sender: Sender<'a>,
    /// A short sender's name hash.
    pub sender_hash: Option<u64>,
    /// The message.
    pub body: Body<'a>,
    /// Membership facts piggybacked on the message.
    pub records: Records<'a>,
}

impl<'a> Packet<'a> {
    /// Decodes an authenticated (and, if it was, decrypted) datagram without its tag:
    /// header, then payload.
    pub fn decode(opened: &'a [u8]) -> Result<Packet<'a>, DecodeError> {
        let header = Header::parse(opened)?;
        let mut r = Reader::new(opened);
        r.bytes(header.encoded_len())?;
        let kind = MessageType::from_wire(r.u8()?)?;
        let (sender, sender_hash) = if header.flags.has(Flags::SHORT_SENDER) {
            let hash = r.u64()?;
            let unresolved = SocketAddr::from(([0, 0, 0, 0], 0));
            (Sender { name: "", addr: unresolved, incarnation: r.varint()? }, Some(hash))
        } else {
            let sender = Sender { name: r.name()?, addr: r.addr()?, incarnation: r.varint()? };
            if sender.name.is_empty() {
                // Every member has a name: an empty one would enter tables and gossip.
                return Err(DecodeError::InvalidField("sender name"));
            }
            (sender, None)
        };
        let body = Body::decode(kind, &mut r, header.version)?;
        let records = Records::decode(&mut r)?;
        if !r.is_empty() {
            return Err(DecodeError::TrailingBytes(r.remaining()));
        }
        Ok(Packet { header, sender, sender_hash, body, records })
    }

    /// The packet with a short sender resolved: `name` and `addr` as the receiver's table
    /// holds the member whose name hash the packet carries.
    pub fn with_sender<'b>(self, name: &'b str, addr: SocketAddr) -> Packet<'b>
    where
        'a: 'b,
    {
        let sender = Sender { name, addr, incarnation: self.sender.incarnation };
        Packet { sender, ..self }
    }
}

/// Builds one packet: header and body first, then as many records as fit. Sealing (the
/// tag, and encryption) is the keyring's.
///
/// A record whose metadata would make it larger than the writer's inline limit (by default,
/// what an otherwise empty packet of this size can carry) is written without its metadata,
/// with the metadata's hash instead, if the record has one: it then announces the version
/// for receivers to fetch over a stream.
#[derive(Debug)]
pub struct PacketWriter {
    out: Vec<u8>,
    limit: usize,
    count_at: usize,
    count: u16,
    inline_limit: usize,
}

impl PacketWriter {
    /// Starts a packet in `out` (cleared first) that will not exceed `max_datagram` bytes
    /// once sealed. Gives the buffer back if even the bare message does not fit.
    pub fn new(
        mut out: Vec<u8>,
        max_datagram: usize,
        header: &Header,
        sender: &Sender<'_>,
        body: &Body<'_>,
    ) -> Result<Self, Vec<u8>> {
        out.clear();
        header.write(&mut out);
        out.push(body.message_type() as u8);
        if header.flags.has(Flags::SHORT_SENDER) {
            out.extend_from_slice(&name_hash(sender.name).to_be_bytes());
        } else {
            put_name(&mut out, sender.name);
            put_addr(&mut out, &sender.addr);
        }
        put_varint(&mut out, sender.incarnation);
        if body.encode(&mut out, header.version).is_none() {
            return Err(out);
        }
        let count_at = out.len();
        out.extend_from_slice(&0u16.to_be_bytes());
        match max_datagram.checked_sub(TAG_LEN) {
            Some(limit) if out.len() <= limit => {
                let inline_limit = limit - out.len();
                Ok(PacketWriter { out, limit, count_at, count: 0, inline_limit })
            }
            _ => Err(out),
        }
    }

    /// Records larger than `bytes` with their metadata go without it (announced by hash),
    /// even if they would fit: a stream message carrying a whole table leaves metadata that
    /// a datagram could not carry to be fetched from its member.
    #[must_use]
    pub fn with_inline_limit(mut self, bytes: usize) -> Self {
        self.inline_limit = self.inline_limit.min(bytes);
        self
    }

    /// Bytes still free for records.
    pub fn remaining(&self) -> usize {
        self.limit - self.out.len()
    }

    /// Number of records added.
    pub fn records(&self) -> usize {
        usize::from(self.count)
    }

    /// Appends `record` if it fits; returns whether it did. Its metadata is left out (and
    /// announced by its hash) if it makes the record larger than the inline limit.
    pub fn push(&mut self, record: &Record<'_>) -> bool {
        let announced;
        let mut record = record;
        if record.metadata.is_some()
            && record.meta_hash.is_some()
            && record.encoded_len() > self.inline_limit
        {
            announced = Record { metadata: None, ..*record };
            record = &announced;
        }
        if record.encoded_len() > self.remaining() || self.count == u16::MAX {
            return false;
        }
        record.encode(&mut self.out);
        self.count += 1;
        true
    }

    /// Writes the record count and hands back the packet, ready to be sealed.
    pub fn finish(mut self) -> Vec<u8> {
        self.out[self.count_at..self.count_at + 2].copy_from_slice(&self.count.to_be_bytes());
        self.out
    }
}

/// Bytes a sealed packet with an empty body and no records takes at most.
pub fn max_overhead(sender_name_len: usize) -> usize {
    Version::V2.header_len() + 1 + 1 + sender_name_len + 19 + 10 + 2 + TAG_LEN
}
