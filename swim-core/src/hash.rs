//! Stable hashes: the same on every node, platform and release, since nodes compare them
//! (anti-entropy digests, metadata hashes on the wire). A leaf: it imports nothing.

/// FNV-1a's offset basis: the hash of nothing.
pub(crate) const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a over `bytes`, continuing from `hash`.
pub(crate) const fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

/// MurmurHash3's 64-bit finalizer.
pub(crate) const fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// A stable 64-bit hash of a member name: FNV-1a, then a finalizer so the top bits (which
/// pick an anti-entropy bucket) are well mixed. It also identifies a sender to a receiver
/// that knows it (a short sender on the wire).
pub(crate) const fn name_hash(name: &str) -> u64 {
    mix(fnv1a(FNV_OFFSET, name.as_bytes()))
}
