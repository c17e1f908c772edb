//! Anti-entropy: periodic state exchange that repairs whatever gossip missed.
//!
//! Every `sync_interval` a node sends one random member a [`Body::SyncDigest`]: the root of
//! its table's digest (a wrapping sum of one 64-bit hash per entry) and its size. Equal
//! roots end the exchange: that is the steady state, one small datagram per interval.
//! Otherwise the receiver answers with per-bucket hashes (entries are bucketed by the top
//! bits of their name hash), the initiator sends its entries of the differing buckets and
//! asks for the receiver's, and both apply the usual precedence rules. Sums make the digest
//! incremental: a change costs two additions, never a pass over the table. A join is the
//! same exchange with a seed's address.

use alloc::vec::Vec;
use core::net::SocketAddr;

use rand_core::Rng;

use crate::member::{Member, MemberId};
use crate::node::{Node, random_below};
use crate::status::StatusFilter;
use crate::time::Instant;
use crate::wire::{Body, BucketSet, MAX_BUCKET_SHIFT, PacketWriter, Sender};

/// Datagrams of entries sent in answer to one request at most (about a thousand entries);
/// the rest follows in later rounds. Bounds the burst one request can trigger, which matters
/// when a whole cluster joins through one seed at once.
const MAX_ENTRY_DATAGRAMS: usize = 32;

/// Fine-grained buckets kept, folded to fewer on the wire.
const FINE_BUCKETS: usize = 1 << MAX_BUCKET_SHIFT;

/// Incrementally maintained hashes of a membership table.
#[derive(Clone, Debug)]
pub(crate) struct Digest {
    buckets: [u64; FINE_BUCKETS],
    root: u64,
}

impl Digest {
    pub(crate) fn new() -> Self {
        Digest { buckets: [0; FINE_BUCKETS], root: 0 }
    }

    pub(crate) fn root(&self) -> u64 {
        self.root
    }

    pub(crate) fn add(&mut self, member: &Member) {
        let hash = entry_hash(member);
        let bucket = &mut self.buckets[usize::from(member.bucket)];
        *bucket = bucket.wrapping_add(hash);
        self.root = self.root.wrapping_add(hash);
    }

    pub(crate) fn remove(&mut self, member: &Member) {
        let hash = entry_hash(member);
        let bucket = &mut self.buckets[usize::from(member.bucket)];
        *bucket = bucket.wrapping_sub(hash);
        self.root = self.root.wrapping_sub(hash);
    }

    /// The hash of coarse bucket `index` out of `2^shift`.
    fn bucket(&self, shift: u8, index: usize) -> u32 {
        let width = FINE_BUCKETS >> shift;
        let sum = self.buckets[index * width..(index + 1) * width]
            .iter()
            .fold(0u64, |acc, h| acc.wrapping_add(*h));
        (sum ^ (sum >> 32)) as u32
    }

    /// Writes all `2^shift` bucket hashes, 4 bytes each, big-endian.
    fn write_buckets(&self, shift: u8, out: &mut Vec<u8>) {
        out.clear();
        for index in 0..1usize << shift {
            out.extend_from_slice(&self.bucket(shift, index).to_be_bytes());
        }
    }
}

/// A stable 64-bit hash of a member name: FNV-1a, then a finalizer so the top bits (which
/// pick the bucket) are well mixed. The same on every node and every platform.
pub(crate) fn name_hash(name: &str) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for byte in name.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix(hash)
}

/// The hash of what anti-entropy compares: name, incarnation, status, metadata version.
fn entry_hash(member: &Member) -> u64 {
    // The name is hashed again rather than stored: entries are many, changes are few.
    let mut hash =
        mix(name_hash(member.name()) ^ member.incarnation().wrapping_mul(0x9e37_79b9_7f4a_7c15));
    hash = mix(hash ^ member.meta_version().wrapping_mul(0xc2b2_ae3d_27d4_eb4f));
    mix(hash ^ u64::from(member.status().to_wire()))
}

/// MurmurHash3's 64-bit finalizer.
fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// The fine bucket of a name hash: its top byte.
pub(crate) fn fine_bucket(name_hash: u64) -> u8 {
    (name_hash >> (64 - MAX_BUCKET_SHIFT)) as u8
}

/// The coarse bucket, out of `2^shift`, of a fine bucket.
fn coarse_bucket(fine: u8, shift: u8) -> usize {
    usize::from(fine) >> (MAX_BUCKET_SHIFT - shift)
}

/// Buckets for a table of `members` entries: about eight entries each, at most 256.
fn shift_for(members: usize) -> u8 {
    let mut shift = 0;
    while shift < MAX_BUCKET_SHIFT && (members >> shift) > 8 {
        shift += 1;
    }
    shift
}

impl<R: Rng> Node<R> {
    /// The periodic exchange with one random available member, unless a ping or ack showed
    /// an equal table within the last interval: in a quiet cluster, probes carry the roots
    /// and no separate digest is needed.
    pub(crate) fn sync_round(&mut self, now: Instant) {
        if self.last_agreement.is_some_and(|at| now - at < self.config.sync_interval) {
            return;
        }
        let mut peer = core::mem::take(&mut self.scratch);
        self.sample(StatusFilter::AVAILABLE, 1, &[], &mut peer);
        if let Some(&id) = peer.first()
            && let Some(addr) = self.members.get(id).map(Member::addr)
        {
            self.send_digest(addr, Some(id));
        }
        self.scratch = peer;
    }

    /// A root carried by a ping or ack: equal to ours means the two tables agree.
    pub(crate) fn note_root(&mut self, now: Instant, root: u64) {
        if root == self.members.digest().root() {
            self.last_agreement = Some(now);
        }
    }

    /// Step 1: our root and size.
    pub(crate) fn send_digest(&mut self, to: SocketAddr, about: Option<MemberId>) {
        self.counters.syncs += 1;
        let root = self.members.digest().root();
        let members = u32::try_from(self.members.len()).unwrap_or(u32::MAX);
        self.send(to, &Body::SyncDigest { root, members }, about);
    }

    /// Step 2: roots differ, so answer with bucket hashes.
    pub(crate) fn handle_sync_digest(
        &mut self,
        from: SocketAddr,
        sender: Option<MemberId>,
        root: u64,
        members: usize,
    ) {
        if root == self.members.digest().root() {
            return;
        }
        let shift = shift_for(members.max(self.members.len()));
        let mut hashes = self.take_buffer();
        self.members.digest().write_buckets(shift, &mut hashes);
        self.send(from, &Body::SyncBuckets { shift, hashes: &hashes }, sender);
        self.recycle(hashes);
    }

    /// Step 3: send our entries of the differing buckets and ask for theirs.
    pub(crate) fn handle_sync_buckets(&mut self, from: SocketAddr, shift: u8, hashes: &[u8]) {
        let mut differing = BucketSet::default();
        for index in 0..1usize << shift {
            if self.members.digest().bucket(shift, index) != Body::bucket_hash(hashes, index) {
                differing.insert(index);
            }
        }
        if !differing.is_empty() {
            self.send_entries(from, shift, &differing, differing);
        }
    }

    /// Step 4: apply (done by the caller) and, if asked, answer with our entries.
    pub(crate) fn handle_sync_entries(&mut self, from: SocketAddr, shift: u8, want: BucketSet) {
        if !want.is_empty() {
            self.send_entries(from, shift, &want, BucketSet::default());
        }
    }

    /// Our entries (with metadata) in `buckets`, as many datagrams as they need; the first
    /// carries `want`.
    fn send_entries(&mut self, to: SocketAddr, shift: u8, buckets: &BucketSet, want: BucketSet) {
        // Walk the table from a random slot, wrapping around, and stop once the answer is
        // full: when the cap cuts an answer short, each round repairs different entries, and a
        // large table is never scanned (or copied) whole for an answer of a thousand entries.
        let slots = self.members.id_bound();
        let start = random_below(&mut self.rng, slots as usize) as u32;
        let wanted = |m: &Member| buckets.contains(coarse_bucket(m.bucket, shift));
        let mut walked = 0;
        let mut carried: Option<MemberId> = None; // did not fit the previous datagram
        let max = self.config.max_datagram();
        for datagram in 0..MAX_ENTRY_DATAGRAMS {
            let want = if datagram == 0 { want } else { BucketSet::default() };
            let nonce = self.next_nonce();
            let mut buffer = self.take_buffer();
            let local = self.members.local();
            let sender =
                Sender { name: local.name(), addr: local.addr(), incarnation: local.incarnation() };
            let body = Body::SyncEntries { shift, want };
            let Some(mut writer) = PacketWriter::new(&mut buffer, max, nonce, &sender, &body)
            else {
                self.recycle(buffer);
                return;
            };
            loop {
                let next = carried.take().or_else(|| {
                    while walked < slots {
                        let id = MemberId((start + walked) % slots);
                        walked += 1;
                        if self.members.get(id).is_some_and(wanted) {
                            return Some(id);
                        }
                    }
                    None
                });
                let Some(member) = next.and_then(|id| self.members.get(id)) else {
                    break;
                };
                if !writer.push(&member.record(true)) && writer.records() > 0 {
                    carried = next; // First in the next datagram.
                    break;
                }
                // Pushed, or cannot fit even alone (metadata from a larger MTU): skipped.
            }
            let done = carried.is_none();
            writer.finish();
            self.queue(to, buffer);
            if done {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_hash_is_stable() {
        // Pinned: nodes of every version and platform must agree on buckets.
        assert_eq!(name_hash(""), mix(0xcbf2_9ce4_8422_2325));
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
            let fine = fine_bucket(hash);
            assert_eq!(coarse_bucket(fine, 8), usize::from(fine));
            assert_eq!(coarse_bucket(fine, 0), 0);
            assert_eq!(coarse_bucket(fine, 1), (hash >> 63) as usize);
        }
    }
}
