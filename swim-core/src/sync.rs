//! Anti-entropy: periodic state exchange that repairs whatever gossip missed.
//!
//! Every `sync_interval` a node sends one random member a digest: the root of its table's
//! digest (a wrapping sum of one 64-bit hash per entry) and its size. Equal roots end the
//! exchange. While pings and acks (which carry the roots) show the tables agree, no digest
//! is sent at all: only when the last root heard differed from ours, or none was heard for
//! a while. Otherwise the
//! receiver answers with per-bucket hashes, the initiator lists short summaries of its
//! entries in the differing buckets, and only entries that differ travel in full, both
//! ways. A join is the same exchange with a peer's address. `docs/PROTOCOL.md` has the steps.
//!
//! [`AntiEntropy`] keeps the exchanges in progress and works out what to send; the node
//! sends it.

use alloc::vec::Vec;

use rand_core::Rng;

use crate::exchange::Exchanges;
use crate::members::{Digest, MemberId, buckets_from, fine_buckets, shift_for};
use crate::time::Instant;
use crate::wire::{Body, BucketSet, WANT_LEN};

/// Datagrams of entries sent in answer to one exchange step at most (about a thousand
/// entries); the rest follows in later rounds. Bounds the burst one request can trigger,
/// which matters when a whole cluster joins through one seed at once.
pub(crate) const MAX_ENTRY_DATAGRAMS: usize = 32;

/// Datagrams of summaries sent in one exchange at most (about 2,000 entries at the default
/// MTU): a peer that differs in more gets the rest in later rounds.
pub(crate) const MAX_SUMMARY_DATAGRAMS: usize = 12;

/// The anti-entropy state of a node.
#[derive(Debug)]
pub(crate) struct AntiEntropy {
    /// Exchanges in progress.
    pub(crate) exchanges: Exchanges,
    /// When a ping or ack last showed a member's table equal to ours.
    last_agreement: Option<Instant>,
    /// Since when every root pings and acks carried was equal to ours (`None`: the last
    /// one differed, or none came yet).
    agreed_since: Option<Instant>,
    /// A peer's summaries while they are compared with ours, sorted by name, each with
    /// whether we hold the same version (reused).
    theirs: Vec<(u32, u32, bool)>,
}

impl AntiEntropy {
    pub(crate) fn new() -> Self {
        AntiEntropy {
            exchanges: Exchanges::new(),
            last_agreement: None,
            agreed_since: None,
            theirs: Vec::new(),
        }
    }

    /// A root carried by a ping or ack: equal to `ours`, the two tables agree.
    pub(crate) fn note_root(&mut self, now: Instant, root: u64, ours: u64) {
        if root == ours {
            self.last_agreement = Some(now);
            self.agreed_since.get_or_insert(now);
        } else {
            self.agreed_since = None;
        }
    }

    /// Whether every root pings and acks carried for at least `hold` was equal to ours: the
    /// tables agree, and have for a while (during a join, two members may agree for a
    /// moment while others still learn of them).
    pub(crate) fn is_settled(&self, now: Instant, hold: core::time::Duration) -> bool {
        self.agreed_since.is_some_and(|since| now - since >= hold)
    }

    /// Whether the periodic exchange is needed: not while the last root a ping or ack
    /// carried was equal to ours, heard within `quiet`. A node hears about two roots a
    /// second (the ack of its probe, the ping of its prober): in a cluster whose tables
    /// agree no digest travels, where one every `sync_interval` whenever no equal root was
    /// heard in that interval cost a third of the steady-state datagrams at N = 1000.
    pub(crate) fn is_due(&self, now: Instant, quiet: core::time::Duration) -> bool {
        self.agreed_since.is_none() || self.last_agreement.is_none_or(|at| now - at >= quiet)
    }

    /// Before when the periodic exchange is not needed (see [`Self::is_due`]), as far as is
    /// known now: `None` if it may be needed at once. Only a root that differs from ours
    /// moves it earlier, and that comes with a datagram, after which the driver asks again.
    pub(crate) fn quiet_until(&self, quiet: core::time::Duration) -> Option<Instant> {
        self.last_agreement.filter(|_| self.agreed_since.is_some()).map(|at| at + quiet)
    }

    /// The buckets to answer a digest with: about eight entries each for the larger of the
    /// two tables (`ours` and `theirs` entries), as many as `room` bytes carry.
    pub(crate) fn bucket_shift(ours: usize, theirs: usize, room: usize) -> u8 {
        let mut shift = shift_for(theirs.max(ours));
        while shift > 0 && 4 << shift > room {
            shift -= 1;
        }
        shift
    }

    /// The buckets whose hashes in a peer's SyncBuckets differ from ours.
    pub(crate) fn differing(digest: &Digest, shift: u8, hashes: &[u8]) -> BucketSet {
        let mut differing = BucketSet::default();
        for index in 0..1usize << shift {
            if digest.bucket(shift, index) != Body::bucket_hash(hashes, index) {
                differing.insert(index);
            }
        }
        differing
    }

    /// Compares a peer's summaries of `buckets` with ours (from a random bucket on): our
    /// entries it lacks or holds in another version go into `ours` (at most `cap`); the
    /// short names of its entries we lack or hold in another version go into `wanted` (at
    /// most `capacity`, in increasing order, each once).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn compare(
        &mut self,
        digest: &Digest,
        rng: &mut impl Rng,
        (shift, buckets, summaries): (u8, BucketSet, &[u8]),
        cap: usize,
        ours: &mut Vec<MemberId>,
        wanted: &mut Vec<u8>,
        capacity: usize,
    ) {
        let theirs = &mut self.theirs;
        theirs.clear();
        theirs.extend(Body::summaries(summaries).map(|(name, hash)| (name, hash, false)));
        theirs.sort_unstable();
        ours.clear();
        for bucket in buckets_from(rng, shift, buckets) {
            for entry in fine_buckets(bucket, shift).flat_map(|f| digest.summaries(f)) {
                let first = theirs.partition_point(|t| t.0 < entry.name);
                let mut same = false;
                for t in theirs[first..].iter_mut().take_while(|t| t.0 == entry.name) {
                    if t.1 == entry.hash {
                        t.2 = true;
                        same = true;
                    }
                }
                if !same && ours.len() < cap {
                    ours.push(entry.id);
                }
            }
        }
        wanted.clear();
        let mut last = None;
        for &(name, _, same) in theirs.iter() {
            if !same && last != Some(name) && wanted.len() / WANT_LEN < capacity {
                wanted.extend_from_slice(&name.to_be_bytes());
                last = Some(name);
            }
        }
    }

    /// Our entries a peer's SyncWant names, into `ids`. Names come in increasing order (the
    /// peer walks its sorted summaries); any other order is ignored, so repeating a name
    /// cannot multiply the answer.
    pub(crate) fn wanted(digest: &Digest, names: &[u8], ids: &mut Vec<MemberId>) {
        ids.clear();
        let mut last = None;
        for name in Body::wanted(names) {
            if last.is_some_and(|l| name <= l) {
                continue;
            }
            last = Some(name);
            let bucket = digest.summaries((name >> 24) as usize);
            ids.extend(bucket.iter().filter(|s| s.name == name).map(|s| s.id));
        }
    }
}
