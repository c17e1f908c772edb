//! What travels over streams (minor version 1): the same sealed packets as datagrams, with
//! the [`Flags::STREAM`](super::Flags::STREAM) flag, four message types that only streams
//! carry, and a size bound of their own. Framing (a length prefix) is the driver's: the core
//! sees whole messages.
//!
//! | type | name | body | answer |
//! |---|---|---|---|
//! | 11 | PushPull | `cookie` (4) | PushPullReply with the receiver's table |
//! | 12 | PushPullReply | `echo` (4): the PushPull's cookie | none |
//! | 13 | MetadataRequest | count (2), then member names | MetadataReply |
//! | 14 | MetadataReply | empty (the records carry the metadata) | none |
//!
//! Pings and acks travel over streams too: a ping over a stream (the fallback probe) is
//! answered by an ack over a stream.

use alloc::vec::Vec;

use super::DecodeError;
use super::codec::{Reader, name_len, put_name};

/// Default largest stream message, in bytes (`Config::max_stream_message`).
pub const DEFAULT_MAX_STREAM_MESSAGE: usize = 1 << 20;

/// Bytes of the length prefix drivers put before each stream message (big-endian u32).
pub const FRAME_PREFIX_LEN: usize = 4;

/// The member names of a [`Body::MetadataRequest`](super::Body::MetadataRequest): a count
/// (2 bytes), then that many names. Already validated: iteration cannot fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NameList<'a> {
    bytes: &'a [u8],
    count: usize,
}

impl<'a> NameList<'a> {
    /// No names.
    pub const EMPTY: NameList<'static> = NameList { bytes: &[], count: 0 };

    pub(crate) fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let count = usize::from(r.u16()?);
        let start = r.position();
        for _ in 0..count {
            if r.name()?.is_empty() {
                return Err(DecodeError::InvalidField("requested name"));
            }
        }
        Ok(NameList { bytes: &r.buf[start..r.position()], count })
    }

    /// Encodes `names` (each non-empty, at most 255 bytes) as a list into `out`: as many as
    /// a count can say.
    pub fn write<'n>(out: &mut Vec<u8>, names: impl IntoIterator<Item = &'n str>) {
        let count_at = out.len();
        out.extend_from_slice(&[0, 0]);
        let mut count: u16 = 0;
        for name in names.into_iter().take(usize::from(u16::MAX)) {
            put_name(out, name);
            count += 1;
        }
        out[count_at..count_at + 2].copy_from_slice(&count.to_be_bytes());
    }

    /// A list parsed from exactly `bytes` (as [`NameList::write`] wrote them).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let list = Self::decode(&mut r)?;
        if !r.is_empty() {
            return Err(DecodeError::TrailingBytes(r.remaining()));
        }
        Ok(list)
    }

    /// Bytes of the names (without the count).
    pub(crate) fn names_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Bytes on the wire, count included.
    pub fn encoded_len(&self) -> usize {
        2 + self.bytes.len()
    }

    /// Number of names.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The names in order.
    pub fn iter(&self) -> impl Iterator<Item = &'a str> + 'a {
        let mut r = Reader::new(self.bytes);
        core::iter::from_fn(move || r.name().ok()).take(self.count)
    }
}

/// Bytes a name takes in a [`NameList`].
pub fn listed_name_len(name: &str) -> usize {
    name_len(name)
}
