//! Member metadata: string keys to opaque bytes, as in the Python `swim-protocol` package.
//!
//! A member's metadata is either unknown (`None` where a member exposes it) or a
//! [`Metadata`] map, which may be empty: "we have not heard yet" differs from "there is none".
//! Each member versions its own metadata; the highest version wins everywhere.

use alloc::collections::BTreeMap;
use alloc::string::String;

use bytes::Bytes;

/// Longest metadata key, in bytes (its length travels in one byte).
pub const MAX_KEY_LEN: usize = 255;

/// A member's metadata: an ordered map from string keys to byte values.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Metadata {
    entries: BTreeMap<String, Bytes>,
}

impl Metadata {
    /// An empty map (known to be empty, unlike unknown metadata).
    pub const fn new() -> Self {
        Metadata { entries: BTreeMap::new() }
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Bytes> {
        self.entries.get(key)
    }

    /// Sets `key` to `value`, returning the previous value.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<Bytes>) -> Option<Bytes> {
        self.entries.insert(key.into(), value.into())
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<Bytes> {
        self.entries.remove(key)
    }

    /// Entries in key order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &Bytes)> + Clone {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Sum of key and value lengths: the payload a user chose to spread.
    pub fn payload_len(&self) -> usize {
        self.entries.iter().map(|(k, v)| k.len() + v.len()).sum()
    }
}

impl<K: Into<String>, V: Into<Bytes>> FromIterator<(K, V)> for Metadata {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Metadata { entries: iter.into_iter().map(|(k, v)| (k.into(), v.into())).collect() }
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
        let mut m: Metadata =
            [("name", &b"one"[..])].into_iter().map(|(k, v)| (k, Bytes::from_static(v))).collect();
        assert_eq!(m.insert("token", Bytes::from_static(b"x")), None);
        assert_eq!(m.len(), 2);
        assert_eq!(m.payload_len(), 4 + 3 + 5 + 1);
        assert_eq!(m.remove("name"), Some(Bytes::from_static(b"one")));
        assert_eq!(m.iter().map(|(k, _)| k).collect::<alloc::vec::Vec<_>>(), ["token"]);
    }
}
