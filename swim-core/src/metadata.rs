//! Member metadata: string keys to opaque bytes, as in the Python `swim-protocol` package.
//!
//! A member's metadata is either unknown (`None` where a member exposes it) or a
//! [`Metadata`] map, which may be empty: "we have not heard yet" differs from "there is none".
//! Each member versions its own metadata; the highest version wins everywhere.
//!
//! A map is kept in its wire encoding, one shared buffer: what a member's metadata costs in
//! memory is what `max_metadata_size` counts (plus a fixed few dozen bytes), however many
//! entries it has, and copying it (into a view, an event, a datagram) copies nothing.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::fmt;

use bytes::Bytes;

use crate::hash::{FNV_OFFSET, fnv1a, mix};
use crate::wire::MetadataEntries;

/// Longest metadata key, in bytes (its length travels in one byte).
pub const MAX_KEY_LEN: usize = 255;

/// A member's metadata: an ordered map from string keys to byte values.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Metadata {
    /// The entries in their wire encoding (count, then keys ascending with their values).
    encoded: Bytes,
    /// [`metadata_hash`] of the entries, computed once: digests and records of metadata
    /// too large for a datagram carry it, and maps may be 64 KiB.
    hash: u64,
}

impl Metadata {
    /// An empty map (known to be empty, unlike unknown metadata).
    pub const fn new() -> Self {
        Metadata { encoded: Bytes::from_static(EMPTY_ENCODING), hash: EMPTY_HASH }
    }

    /// The map encoded in a received record, copied out of the datagram in one piece.
    pub(crate) fn from_entries(entries: MetadataEntries<'_>) -> Self {
        if entries.encoded() == EMPTY_ENCODING {
            // The empty map every member starts with: shared, so that learning of a member
            // (and the event that says so) allocates nothing for it.
            return Metadata::new();
        }
        Metadata {
            encoded: Bytes::copy_from_slice(entries.encoded()),
            hash: metadata_hash(entries),
        }
    }

    /// A stable 64-bit hash of the map's content (the same on every node): FNV-1a over every
    /// key and value in key order, each preceded by its length as 8 little-endian bytes,
    /// through MurmurHash3's finalizer. Records that leave out metadata too large for a
    /// datagram carry it, so that a member can tell its own map from another of the same
    /// version.
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// The map in its wire encoding, as a record carries it.
    pub fn entries(&self) -> MetadataEntries<'_> {
        // Built only by this module's encoder or copied from validated wire bytes, so the
        // parse cannot fail; if it somehow did, the map would read as empty.
        MetadataEntries::parse(&self.encoded).unwrap_or(MetadataEntries::EMPTY)
    }

    /// The value of `key` (a cheap handle on the map's buffer, not a copy).
    pub fn get(&self, key: &str) -> Option<Bytes> {
        self.entries().iter().find(|(k, _)| *k == key).map(|(_, v)| self.encoded.slice_ref(v))
    }

    /// Sets `key` to `value`, returning the previous value. Keys longer than
    /// [`MAX_KEY_LEN`] are cut at a character boundary; the node's `set_metadata` refuses
    /// them instead.
    pub fn insert(&mut self, key: impl AsRef<str>, value: impl Into<Bytes>) -> Option<Bytes> {
        let (key, value) = (key.as_ref(), value.into());
        let previous = self.get(key);
        self.rebuild(key, Some(&value));
        previous
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<Bytes> {
        let previous = self.get(key)?;
        self.rebuild(key, None);
        Some(previous)
    }

    /// Re-encodes the map with `key` set to `value`, or removed.
    fn rebuild(&mut self, key: &str, value: Option<&Bytes>) {
        let mut map: BTreeMap<&str, &[u8]> = self.entries().iter().collect();
        match value {
            Some(value) => map.insert(key, value),
            None => map.remove(key),
        };
        let mut out = Vec::with_capacity(self.encoded.len() + key.len() + 8);
        MetadataEntries::encode(&mut out, map.len(), map.iter().map(|(k, v)| (*k, *v)));
        let encoded = Bytes::from(out);
        self.hash = MetadataEntries::parse(&encoded).map_or(EMPTY_HASH, metadata_hash);
        self.encoded = encoded;
    }

    /// Entries in key order; values are cheap handles on the map's buffer.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Bytes)> + '_ {
        self.entries().iter().map(|(k, v)| (k, self.encoded.slice_ref(v)))
    }

    /// Keys in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> + '_ {
        self.entries().iter().map(|(k, _)| k)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries().len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of the map's encoding: its keys and values plus a few bytes of framing per
    /// entry. This is what `max_metadata_size` limits, and what the map costs in memory.
    pub fn encoded_len(&self) -> usize {
        self.encoded.len()
    }
}

/// [`Metadata::hash`] of the empty map.
const EMPTY_HASH: u64 = mix(FNV_OFFSET);

/// The encoding of the empty map: a count of zero.
const EMPTY_ENCODING: &[u8] = &[0];

/// See [`Metadata::hash`].
fn metadata_hash(entries: MetadataEntries<'_>) -> u64 {
    let mut hash = FNV_OFFSET;
    for (key, value) in entries.iter() {
        hash = fnv1a(hash, &(key.len() as u64).to_le_bytes());
        hash = fnv1a(hash, key.as_bytes());
        hash = fnv1a(hash, &(value.len() as u64).to_le_bytes());
        hash = fnv1a(hash, value);
    }
    mix(hash)
}

impl Default for Metadata {
    fn default() -> Self {
        Metadata::new()
    }
}

impl fmt::Debug for Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.entries().iter()).finish()
    }
}

impl<K: AsRef<str>, V: Into<Bytes>> FromIterator<(K, V)> for Metadata {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut metadata = Metadata::new();
        for (key, value) in iter {
            metadata.insert(key, value);
        }
        metadata
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_is_not_unknown() {
        let known_empty: Option<Metadata> = Some(Metadata::new());
        let unknown: Option<Metadata> = None;
        assert_ne!(known_empty, unknown);
    }

    #[test]
    fn map_operations() {
        let mut m: Metadata = [("name", Bytes::from_static(b"one"))].into_iter().collect();
        assert_eq!(m.insert("token", Bytes::from_static(b"x")), None);
        assert_eq!(m.len(), 2);
        // Count, then per entry: key length, key, value length, value.
        assert_eq!(m.encoded_len(), 1 + (1 + 4 + 1 + 3) + (1 + 5 + 1 + 1));
        assert_eq!(m.insert("name", Bytes::from_static(b"two")).as_deref(), Some(&b"one"[..]));
        assert_eq!(m.get("name").as_deref(), Some(&b"two"[..]));
        assert_eq!(m.remove("name"), Some(Bytes::from_static(b"two")));
        assert_eq!(m.iter().map(|(k, _)| k).collect::<Vec<_>>(), ["token"]);
        assert_eq!(m.remove("absent"), None);
    }

    #[test]
    fn equal_maps_have_equal_encodings_whatever_the_order_of_inserts() {
        let a: Metadata = [("a", "1"), ("b", "2")].into_iter().collect();
        let b: Metadata = [("b", "2"), ("a", "1")].into_iter().collect();
        assert_eq!(a, b);
        assert_eq!(a.entries().encoded(), b.entries().encoded());
        assert_eq!(a.hash(), b.hash());
        assert_ne!(a.hash(), Metadata::new().hash());
        assert_eq!(Metadata::new().hash(), metadata_hash(MetadataEntries::EMPTY));
        let mut c = a.clone();
        c.remove("a");
        c.remove("b");
        assert_eq!(c.hash(), Metadata::new().hash());
    }
}
