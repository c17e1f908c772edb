//! The anti-entropy digest of a membership table, kept exact as the table changes, and the
//! stable hashes it is made of (the same on every node and every platform, so that two
//! nodes can compare their tables).

use alloc::vec::Vec;
use core::ops::Range;

use rand_core::Rng;

use super::member::{Member, MemberId};
use super::reserve_per_member;
use crate::hash::{FNV_OFFSET, fnv1a, mix};
use crate::random::random_below;
use crate::wire::{BucketSet, MAX_BUCKET_SHIFT};

/// Fine-grained buckets kept, folded to fewer on the wire.
pub(crate) const FINE_BUCKETS: usize = 1 << MAX_BUCKET_SHIFT;

/// Incrementally maintained hashes of a membership table: a sum per fine bucket and their
/// total (the root), plus each entry's summary, kept by bucket so that an exchange reads
/// summaries from a few dense lists instead of visiting every member entry it is about.
#[derive(Clone, Debug)]
pub(crate) struct Digest {
    sums: [u64; FINE_BUCKETS],
    root: u64,
    entries: Vec<Vec<Summary>>,
}

/// One entry as a summary says it: [`SUMMARY_LEN`](crate::wire::SUMMARY_LEN) bytes on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Summary {
    pub(crate) id: MemberId,
    /// The top 32 bits of the name hash: the fine bucket is its top byte.
    pub(crate) name: u32,
    /// The entry hash folded to 32 bits.
    pub(crate) hash: u32,
}

impl Digest {
    pub(crate) fn new() -> Self {
        let entries = (0..FINE_BUCKETS).map(|_| Vec::new()).collect();
        Digest { sums: [0; FINE_BUCKETS], root: 0, entries }
    }

    pub(crate) fn root(&self) -> u64 {
        self.root
    }

    /// Counts a new entry, whose name hashes to `name`.
    pub(crate) fn insert(&mut self, id: MemberId, name: u64, member: &Member) {
        let hash = entry_hash_with(name, member);
        let fine = fine_bucket(name);
        self.add(fine, hash);
        let bucket = &mut self.entries[usize::from(fine)];
        reserve_per_member(bucket, 1);
        bucket.push(Summary { id, name: short_name(name), hash: fold(hash) });
    }

    /// Forgets an entry.
    pub(crate) fn remove(&mut self, id: MemberId, member: &Member) {
        // The name is hashed again rather than its bucket stored: entries are many, changes
        // are few.
        let name = name_hash(member.name());
        let fine = fine_bucket(name);
        self.add(fine, entry_hash_with(name, member).wrapping_neg());
        let bucket = &mut self.entries[usize::from(fine)];
        if let Some(at) = bucket.iter().position(|s| s.id == id) {
            bucket.swap_remove(at);
        }
    }

    /// An entry changed: `before` is [`entry_hash`] of what it was.
    pub(crate) fn update(&mut self, id: MemberId, before: u64, member: &Member) {
        let name = name_hash(member.name());
        let after = entry_hash_with(name, member);
        let fine = fine_bucket(name);
        self.add(fine, after.wrapping_sub(before));
        let bucket = &mut self.entries[usize::from(fine)];
        // From the newest: a member just learned gets its metadata next (a bucket holds
        // about N/256 entries, 40 at N = 10000).
        if let Some(entry) = bucket.iter_mut().rev().find(|s| s.id == id) {
            entry.hash = fold(after);
        }
    }

    fn add(&mut self, bucket: u8, delta: u64) {
        let sum = &mut self.sums[usize::from(bucket)];
        *sum = sum.wrapping_add(delta);
        self.root = self.root.wrapping_add(delta);
    }

    /// The summaries of fine bucket `bucket`, in no particular (but deterministic) order.
    pub(crate) fn summaries(&self, bucket: usize) -> &[Summary] {
        self.entries.get(bucket).map_or(&[], Vec::as_slice)
    }

    /// The hash of coarse bucket `index` out of `2^shift`.
    pub(crate) fn bucket(&self, shift: u8, index: usize) -> u32 {
        let sum =
            self.sums[fine_buckets(index, shift)].iter().fold(0u64, |acc, h| acc.wrapping_add(*h));
        (sum ^ (sum >> 32)) as u32
    }

    /// Writes all `2^shift` bucket hashes, 4 bytes each, big-endian.
    pub(crate) fn write_buckets(&self, shift: u8, out: &mut Vec<u8>) {
        out.clear();
        for index in 0..1usize << shift {
            out.extend_from_slice(&self.bucket(shift, index).to_be_bytes());
        }
    }
}

pub(crate) use crate::hash::name_hash;

/// [`name_hash`] of any bytes.
pub(super) fn name_hash_bytes(bytes: &[u8]) -> u64 {
    mix(fnv1a(FNV_OFFSET, bytes))
}

/// The hash of what anti-entropy compares: name, incarnation, status, metadata version and,
/// when there is any, the metadata itself.
pub(super) fn entry_hash(member: &Member) -> u64 {
    // The name is hashed again rather than stored: entries are many, changes are few.
    entry_hash_with(name_hash(member.name()), member)
}

fn entry_hash_with(name_hash: u64, member: &Member) -> u64 {
    let mut hash = mix(name_hash ^ member.incarnation().wrapping_mul(0x9e37_79b9_7f4a_7c15));
    hash = mix(hash ^ member.meta_version().wrapping_mul(0xc2b2_ae3d_27d4_eb4f));
    hash = mix(hash ^ u64::from(member.status().to_wire()));
    // The content counts too: a member that restarted can publish other metadata under a
    // version number it used before, and only a difference in the digest shows the holders
    // of the old content to the member, which resolves it by moving to a higher version.
    match member.metadata() {
        Some(metadata) if !metadata.is_empty() => mix(hash ^ metadata.hash()),
        _ => hash,
    }
}

/// The 32 bits of a name hash that a summary carries: the fine bucket and 24 more.
pub(crate) fn short_name(name_hash: u64) -> u32 {
    (name_hash >> 32) as u32
}

/// An entry hash folded to the 32 bits a summary carries.
fn fold(hash: u64) -> u32 {
    (hash ^ (hash >> 32)) as u32
}

/// The fine bucket of a name hash: its top byte.
pub(super) fn fine_bucket(name_hash: u64) -> u8 {
    (name_hash >> (64 - MAX_BUCKET_SHIFT)) as u8
}

/// The fine buckets that make up coarse bucket `bucket` out of `2^shift`.
pub(crate) fn fine_buckets(bucket: usize, shift: u8) -> Range<usize> {
    let width = FINE_BUCKETS >> shift;
    bucket * width..(bucket + 1) * width
}

/// The coarse buckets (out of `2^shift`) in `set`, from a random one on, wrapping around:
/// capped answers then cover different buckets in different rounds.
pub(crate) fn buckets_from<R: Rng>(
    rng: &mut R,
    shift: u8,
    set: BucketSet,
) -> impl Iterator<Item = usize> + use<R> {
    let count = 1usize << shift;
    let start = random_below(rng, count);
    (0..count).map(move |k| (start + k) % count).filter(move |b| set.contains(*b))
}

/// Buckets for a table of `members` entries: about eight entries each, at most 256.
pub(crate) fn shift_for(members: usize) -> u8 {
    let mut shift = 0;
    while shift < MAX_BUCKET_SHIFT && (members >> shift) > 8 {
        shift += 1;
    }
    shift
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_hash_is_stable() {
        // Pinned: nodes of every version and platform must agree on buckets.
        assert_eq!(name_hash(""), mix(FNV_OFFSET));
        assert_eq!(name_hash("127.0.0.1:7001"), name_hash("127.0.0.1:7001"));
        assert_ne!(name_hash("a"), name_hash("b"));
    }

    #[test]
    fn shift_gives_about_eight_per_bucket() {
        assert_eq!(shift_for(1), 0);
        assert_eq!(shift_for(8), 0);
        assert_eq!(shift_for(9), 1);
        assert_eq!(shift_for(1000), 7);
        assert_eq!(shift_for(100_000), 8);
    }

    #[test]
    fn coarse_buckets_fold_fine_ones() {
        for hash in [0u64, u64::MAX, 0x8000_0000_0000_0000, 0x1234_5678_9abc_def0] {
            let fine = usize::from(fine_bucket(hash));
            assert_eq!(fine_buckets(fine, 8), fine..fine + 1);
            assert!(fine_buckets(0, 0).contains(&fine));
            assert!(fine_buckets((hash >> 63) as usize, 1).contains(&fine));
        }
    }
}
