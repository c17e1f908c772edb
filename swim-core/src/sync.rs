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
use core::ops::Range;

use rand_core::Rng;

use crate::exchange::{Peer, Step};
use crate::member::{Member, MemberId};
use crate::metadata::Metadata;
use crate::node::{Destination, Node, random_below};
use crate::status::StatusFilter;
use crate::time::Instant;
use crate::wire::{
    Body, BucketSet, MAX_BUCKET_SHIFT, MIN_RECORD_LEN, SUMMARY_LEN, WANT_LEN, max_overhead,
};

/// Datagrams of entries sent in answer to one request at most (about a thousand entries);
/// the rest follows in later rounds. Bounds the burst one request can trigger, which matters
/// when a whole cluster joins through one seed at once.
const MAX_ENTRY_DATAGRAMS: usize = 32;

/// Datagrams of summaries sent in one exchange at most (about 2,000 entries at the default
/// MTU): a peer that differs in more gets the rest in later rounds.
const MAX_SUMMARY_DATAGRAMS: usize = 12;

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

/// One entry as a summary says it: [`SUMMARY_LEN`] bytes on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Summary {
    pub(crate) id: MemberId,
    /// The top 32 bits of the name hash: the fine bucket is its top byte.
    name: u32,
    /// The entry hash folded to 32 bits.
    hash: u32,
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
        self.add(member.bucket, hash);
        let bucket = &mut self.entries[usize::from(member.bucket)];
        if bucket.len() == bucket.capacity() {
            // Grow by a quarter, not double: N² of these live in a cluster of N.
            bucket.reserve_exact((bucket.len() / 4).max(4));
        }
        bucket.push(Summary { id, name: short_name(name), hash: fold(hash) });
    }

    /// Forgets an entry.
    pub(crate) fn remove(&mut self, id: MemberId, member: &Member) {
        self.add(member.bucket, entry_hash(member).wrapping_neg());
        let bucket = &mut self.entries[usize::from(member.bucket)];
        if let Some(at) = bucket.iter().position(|s| s.id == id) {
            bucket.swap_remove(at);
        }
    }

    /// An entry changed: `before` is [`entry_hash`] of what it was.
    pub(crate) fn update(&mut self, id: MemberId, before: u64, member: &Member) {
        let after = entry_hash(member);
        self.add(member.bucket, after.wrapping_sub(before));
        let bucket = &mut self.entries[usize::from(member.bucket)];
        if let Some(entry) = bucket.iter_mut().find(|s| s.id == id) {
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
    fn bucket(&self, shift: u8, index: usize) -> u32 {
        let sum =
            self.sums[fine_buckets(index, shift)].iter().fold(0u64, |acc, h| acc.wrapping_add(*h));
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

/// FNV-1a's offset basis: the hash of nothing.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a over `bytes`, continuing from `hash`.
fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// A stable 64-bit hash of a member name: FNV-1a, then a finalizer so the top bits (which
/// pick the bucket) are well mixed. The same on every node and every platform.
pub(crate) fn name_hash(name: &str) -> u64 {
    name_hash_bytes(name.as_bytes())
}

/// [`name_hash`] of any bytes.
pub(crate) fn name_hash_bytes(bytes: &[u8]) -> u64 {
    mix(fnv1a(FNV_OFFSET, bytes))
}

/// The hash of what anti-entropy compares: name, incarnation, status, metadata version and,
/// when there is any, the metadata itself.
pub(crate) fn entry_hash(member: &Member) -> u64 {
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
        Some(metadata) if !metadata.is_empty() => mix(hash ^ metadata_hash(metadata)),
        _ => hash,
    }
}

/// FNV-1a over every key and value, each preceded by its length, in key order.
fn metadata_hash(metadata: &Metadata) -> u64 {
    let mut hash = FNV_OFFSET;
    for (key, value) in metadata.entries().iter() {
        hash = fnv1a(hash, &(key.len() as u64).to_le_bytes());
        hash = fnv1a(hash, key.as_bytes());
        hash = fnv1a(hash, &(value.len() as u64).to_le_bytes());
        hash = fnv1a(hash, value);
    }
    mix(hash)
}

/// The 32 bits of a name hash that a summary carries: the fine bucket and 24 more.
fn short_name(name_hash: u64) -> u32 {
    (name_hash >> 32) as u32
}

/// An entry hash folded to the 32 bits a summary carries.
fn fold(hash: u64) -> u32 {
    (hash ^ (hash >> 32)) as u32
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

/// The fine buckets that make up coarse bucket `bucket` out of `2^shift`.
fn fine_buckets(bucket: usize, shift: u8) -> Range<usize> {
    let width = FINE_BUCKETS >> shift;
    bucket * width..(bucket + 1) * width
}

/// The coarse buckets (out of `2^shift`) in `set`, from a random one on, wrapping around:
/// capped answers then cover different buckets in different rounds.
fn buckets_from<R: Rng>(
    rng: &mut R,
    shift: u8,
    set: BucketSet,
) -> impl Iterator<Item = usize> + use<R> {
    let count = 1usize << shift;
    let start = random_below(rng, count);
    (0..count).map(move |k| (start + k) % count).filter(move |b| set.contains(*b))
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
        if let Some(&id) = peer.first() {
            self.send_digest(Peer::Member(id));
        }
        self.scratch = peer;
    }

    /// A root carried by a ping or ack: equal to ours means the two tables agree.
    pub(crate) fn note_root(&mut self, now: Instant, root: u64) {
        if root == self.members.digest().root() {
            self.last_agreement = Some(now);
        }
    }

    /// Step 1: our root and size, to a member or to a seed's address.
    pub(crate) fn send_digest(&mut self, peer: Peer) {
        let (to, about) = match peer {
            Peer::Member(id) => match self.destination(id) {
                Some(to) => (to, Some(id)),
                None => return,
            },
            Peer::Seed(addr) => (Destination { addr, receiver: None }, None),
        };
        self.counters.syncs += 1;
        let root = self.members.digest().root();
        let members = u32::try_from(self.members.len()).unwrap_or(u32::MAX);
        if self.send(&to, &Body::SyncDigest { root, members }, about, usize::MAX).is_some() {
            self.exchanges.digest_sent(peer, to.addr, self.clock_now());
        }
    }

    /// Step 2: roots differ, so answer with bucket hashes, within `limit` bytes, at most
    /// once per half sync interval to one member.
    pub(crate) fn handle_sync_digest(
        &mut self,
        now: Instant,
        sender: MemberId,
        root: u64,
        members: usize,
        limit: usize,
    ) {
        if root == self.members.digest().root() {
            return;
        }
        if !self.exchanges.may_answer_digest(sender, now, self.config.sync_interval / 2) {
            return;
        }
        // As many buckets as the tables need, and as the answer may carry (a small MTU or
        // a peer not yet validated takes fewer, larger buckets).
        let overhead = max_overhead(self.members.local().name().len()) + 1;
        let room = limit.min(self.config.max_datagram()).saturating_sub(overhead);
        let mut shift = shift_for(members.max(self.members.len()));
        while shift > 0 && 4 << shift > room {
            shift -= 1;
        }
        let mut hashes = self.take_buffer();
        self.members.digest().write_buckets(shift, &mut hashes);
        let cookie = self.rng.next_u32();
        let body = Body::SyncBuckets { cookie, shift, hashes: &hashes };
        let sent = self.send_to(sender, &body, Some(sender), limit);
        self.recycle(hashes);
        if let (Some(_), Some(addr)) = (sent, self.members.get(sender).map(Member::addr)) {
            let budget = MAX_ENTRY_DATAGRAMS;
            self.exchanges.sent(sender, addr, Step::Buckets, cookie, budget, now);
        }
    }

    /// Entries gathered for one answer at most: more than [`MAX_ENTRY_DATAGRAMS`] datagrams
    /// can carry at this MTU, so the cap in datagrams is what binds, while the list stays
    /// bounded.
    fn max_answer_entries(&self) -> usize {
        MAX_ENTRY_DATAGRAMS * self.config.max_datagram().div_ceil(MIN_RECORD_LEN)
    }

    /// Step 3: the bucket hashes of `sender` (with its cookie `echo`) arrived; summarise our
    /// entries of the differing buckets, so that it can tell which entries differ.
    pub(crate) fn handle_sync_buckets(
        &mut self,
        now: Instant,
        sender: MemberId,
        echo: u32,
        shift: u8,
        hashes: &[u8],
    ) {
        let mut differing = BucketSet::default();
        for index in 0..1usize << shift {
            if self.members.digest().bucket(shift, index) != Body::bucket_hash(hashes, index) {
                differing.insert(index);
            }
        }
        if !differing.is_empty() {
            self.send_summaries(now, sender, echo, shift, &differing);
        }
    }

    /// Summaries of our entries in `differing`, whole buckets per datagram, starting at a
    /// random bucket so that capped rounds cover different ones.
    fn send_summaries(
        &mut self,
        now: Instant,
        to: MemberId,
        echo: u32,
        shift: u8,
        differing: &BucketSet,
    ) {
        // Besides the packet's own overhead: echo and cookie, the shift byte, the bitmap, the
        // count.
        let body = 8 + 1 + BucketSet::wire_len(shift) + 2;
        let overhead = max_overhead(self.members.local().name().len()) + body;
        let room = self.config.max_datagram().saturating_sub(overhead);
        let capacity = room / SUMMARY_LEN;
        if capacity == 0 {
            return;
        }
        let mut summaries = self.take_buffer();
        let mut covered = BucketSet::default();
        let cookie = self.rng.next_u32();
        let mut any_sent = false;
        let mut send = |node: &mut Self, buckets: BucketSet, summaries: &[u8]| {
            let echo = Some(echo);
            let body = Body::SyncSummaries { echo, cookie, shift, buckets, summaries };
            any_sent |= node.send_to(to, &body, None, usize::MAX).is_some();
        };
        let mut sent = 0;
        for bucket in buckets_from(&mut self.rng, shift, *differing) {
            let digest = self.members.digest();
            let entries: usize =
                fine_buckets(bucket, shift).map(|f| digest.summaries(f).len()).sum();
            if !covered.is_empty() && summaries.len() / SUMMARY_LEN + entries > capacity {
                send(self, covered, &summaries);
                (covered, sent) = (BucketSet::default(), sent + 1);
                summaries.clear();
                if sent == MAX_SUMMARY_DATAGRAMS {
                    break;
                }
            }
            covered.insert(bucket);
            // A bucket too large for one datagram is listed in part: the peer then sends
            // the rest back, which costs bytes but loses nothing.
            let room = capacity - summaries.len() / SUMMARY_LEN;
            let digest = self.members.digest();
            for entry in fine_buckets(bucket, shift).flat_map(|f| digest.summaries(f)).take(room) {
                summaries.extend_from_slice(&entry.name.to_be_bytes());
                summaries.extend_from_slice(&entry.hash.to_be_bytes());
            }
        }
        if !covered.is_empty() && sent < MAX_SUMMARY_DATAGRAMS {
            send(self, covered, &summaries);
        }
        self.recycle(summaries);
        if let (true, Some(addr)) = (any_sent, self.members.get(to).map(Member::addr)) {
            let budget = MAX_ENTRY_DATAGRAMS;
            self.exchanges.sent(to, addr, Step::Summaries, cookie, budget, now);
        }
    }

    /// Step 4: compare the summaries of `sender` (echoing our cookie, with its own in
    /// `request`) with ours of the same buckets. Our entries that it lacks or holds in
    /// another version go back in full, within what is left of the exchange's budget; its
    /// entries that we lack or hold in another version are asked for.
    pub(crate) fn handle_sync_summaries(
        &mut self,
        now: Instant,
        sender: MemberId,
        request: (Option<u32>, u32),
        shift: u8,
        buckets: BucketSet,
        summaries: &[u8],
    ) {
        let (echo, cookie) = request;
        // Theirs, sorted by name, each with whether we hold the same version.
        let mut theirs = core::mem::take(&mut self.summaries);
        theirs.clear();
        theirs.extend(Body::summaries(summaries).map(|(name, hash)| (name, hash, false)));
        theirs.sort_unstable();
        let mut ours = core::mem::take(&mut self.scratch);
        ours.clear();
        let cap = self.max_answer_entries();
        let digest = self.members.digest();
        for bucket in buckets_from(&mut self.rng, shift, buckets) {
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
        self.answer_with_entries(now, sender, Step::Buckets, echo, &ours);
        self.scratch = ours;
        let mut names = self.take_buffer();
        let overhead = max_overhead(self.members.local().name().len()) + 8 + 2; // echo, count
        let capacity = self.config.max_datagram().saturating_sub(overhead) / WANT_LEN;
        let mut last = None;
        for &(name, _, same) in &theirs {
            if !same && last != Some(name) && names.len() / WANT_LEN < capacity {
                names.extend_from_slice(&name.to_be_bytes());
                last = Some(name);
            }
        }
        if !names.is_empty() {
            let want = Body::SyncWant { echo: Some(cookie), names: &names };
            self.send_to(sender, &want, None, usize::MAX);
        }
        self.recycle(names);
        self.summaries = theirs;
    }

    /// Step 5: the entries `sender` asked for (echoing the cookie of our summaries), in
    /// full, within what is left of the exchange's budget.
    pub(crate) fn handle_sync_want(
        &mut self,
        now: Instant,
        sender: MemberId,
        echo: Option<u32>,
        names: &[u8],
    ) {
        let mut ids = core::mem::take(&mut self.scratch);
        ids.clear();
        let digest = self.members.digest();
        // Names come in increasing order (the sender walks its sorted summaries); any other
        // order is ignored, so repeating a name cannot multiply the answer.
        let mut last = None;
        for name in Body::wanted(names) {
            if last.is_some_and(|l| name <= l) {
                continue;
            }
            last = Some(name);
            let bucket = digest.summaries((name >> 24) as usize);
            ids.extend(bucket.iter().filter(|s| s.name == name).map(|s| s.id));
        }
        self.answer_with_entries(now, sender, Step::Summaries, echo, &ids);
        self.scratch = ids;
    }

    /// Sends `ids` to `to` as entries, in as many datagrams as the exchange step the
    /// request followed has left.
    fn answer_with_entries(
        &mut self,
        now: Instant,
        to: MemberId,
        step: Step,
        echo: Option<u32>,
        ids: &[MemberId],
    ) {
        let Some(destination) = self.destination(to) else { return };
        let addr = destination.addr;
        let budget = self.exchanges.budget(to, addr, step, echo, now);
        let sent = self.send_entries(&destination, ids, budget);
        self.exchanges.spend(to, addr, step, echo, sent, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::status::Status;
    use crate::testing::forge;
    use crate::wire::{Packet, Record, Sender};
    use crate::{Keyring, TAG_LEN};
    use alloc::format;
    use alloc::string::String;
    use core::net::SocketAddr;
    use rand_chacha::ChaCha8Rng;
    use rand_core::SeedableRng;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn node(port: u16) -> Node<ChaCha8Rng> {
        let mut config = Config::new(format!("node-{port}"), addr(port), Keyring::new("k"));
        config.replay_protection = false;
        Node::new(config, ChaCha8Rng::seed_from_u64(u64::from(port)), Instant::ZERO).unwrap()
    }

    /// Hands `node` the records `(name, incarnation)` as anti-entropy entries from a peer.
    fn teach(node: &mut Node<ChaCha8Rng>, now: Instant, facts: &[(String, u64)]) {
        let sender = Sender { name: "teacher", addr: addr(9), incarnation: 0 };
        let records: Vec<Record<'_>> = facts
            .iter()
            .enumerate()
            .map(|(i, (name, incarnation))| Record {
                name,
                addr: addr(10_000 + i as u16),
                incarnation: *incarnation,
                status: Status::Online,
                meta_version: 0,
                metadata: None,
                accuser: None,
            })
            .collect();
        let receiver = String::from(node.local_member().name());
        let datagram = forge(&node.config.secret, &receiver, &sender, &Body::SyncEntries, &records);
        node.handle_datagram(now, addr(9), &datagram);
    }

    fn drain(node: &mut Node<ChaCha8Rng>) -> Vec<Vec<u8>> {
        core::iter::from_fn(|| node.poll_transmit().map(|t| t.payload.to_vec())).collect()
    }

    #[test]
    fn an_exchange_sends_only_the_entries_that_differ() {
        let (mut a, mut b) = (node(1), node(2));
        let facts: Vec<(String, u64)> = (0..40).map(|i| (format!("member-{i}"), 0)).collect();
        let now = Instant::from_secs(1);
        teach(&mut a, now, &facts);
        let mut newer = facts.clone();
        newer[7].1 = 3; // b heard of a refutation that a missed.
        newer.truncate(39); // and a knows one member b does not.
        teach(&mut b, now, &newer);
        drain(&mut a);
        drain(&mut b);

        a.send_digest(Peer::Seed(addr(2)));
        let (mut kinds, mut entries) = (Vec::new(), Vec::new());
        let mut note = |bytes: &[u8]| {
            let packet = Packet::decode(&bytes[..bytes.len() - TAG_LEN]).unwrap();
            let kind = format!("{:?}", packet.body);
            kinds.push(kind.split([' ', '{']).next().map(String::from).unwrap());
            if matches!(packet.body, Body::SyncEntries { .. }) {
                entries.extend(packet.records.iter().map(|r| String::from(r.name)));
            }
        };
        for _ in 0..10 {
            let (to_b, to_a) = (drain(&mut a), drain(&mut b));
            for bytes in to_b {
                note(&bytes);
                b.handle_datagram(now, addr(1), &bytes);
            }
            for bytes in to_a {
                note(&bytes);
                a.handle_datagram(now, addr(2), &bytes);
            }
        }
        for fact in ["member-7", "member-39"] {
            assert!(entries.iter().any(|e| e == fact), "{fact} not sent in {entries:?}");
        }
        // Besides those two, only the two nodes' own entries differ (each learned the other
        // from its datagrams, without metadata); 40 unchanged entries are never sent.
        assert!(entries.len() <= 6, "sent {entries:?}");
        assert!(
            kinds.iter().any(|k| k == "SyncSummaries") && kinds.iter().any(|k| k == "SyncWant")
        );
        assert_eq!(a.members.digest().root(), b.members.digest().root(), "tables agree");
        assert_eq!(b.member("member-7").unwrap().incarnation(), 3);
        assert_eq!(a.member("member-7").unwrap().incarnation(), 3);
        assert!(b.member("member-39").is_some());
    }

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
    fn a_want_repeating_a_name_gets_one_record() {
        let mut a = node(1);
        let now = Instant::from_secs(1);
        teach(&mut a, now, &[(String::from("member-1"), 0), (String::from("member-2"), 0)]);
        drain(&mut a);
        let name = short_name(name_hash("member-1")).to_be_bytes();
        let names: Vec<u8> = (0..100).flat_map(|_| name).collect();
        let teacher = a.members.id("teacher").unwrap();
        // As if it followed summaries of ours (the exchange check is the caller's).
        let to = a.destination(teacher).unwrap().addr;
        a.exchanges.sent(teacher, to, Step::Summaries, 7, MAX_ENTRY_DATAGRAMS, now);
        a.handle_sync_want(now, teacher, Some(7), &names);
        let records: Vec<String> = drain(&mut a)
            .iter()
            .map(|bytes| Packet::decode(&bytes[..bytes.len() - TAG_LEN]).unwrap())
            .filter(|packet| matches!(packet.body, Body::SyncEntries))
            .flat_map(|packet| {
                packet.records.iter().map(|r| String::from(r.name)).collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(records, ["member-1"]);
    }

    #[test]
    fn an_unsolicited_want_is_not_answered() {
        let mut a = node(1);
        let now = Instant::from_secs(1);
        teach(&mut a, now, &[(String::from("member-1"), 0)]);
        drain(&mut a);
        let sender = Sender { name: "teacher", addr: addr(9), incarnation: 0 };
        let names = short_name(name_hash("member-1")).to_be_bytes();
        let body = Body::SyncWant { echo: Some(1), names: &names };
        let datagram = forge(&a.config.secret, "node-1", &sender, &body, &[]);
        a.handle_datagram(now, addr(9), &datagram);
        assert!(drain(&mut a).is_empty());
        assert_eq!(a.counters().dropped(crate::DropReason::Unsolicited), 1);
    }

    #[test]
    fn buckets_fit_the_smallest_datagram() {
        let mut config = Config::new("node-1", addr(1), Keyring::new("k"));
        config.replay_protection = false;
        config.mtu_size = crate::MIN_MTU_SIZE;
        let mut a = Node::new(config, ChaCha8Rng::seed_from_u64(1), Instant::ZERO).unwrap();
        let now = Instant::from_secs(1);
        // A peer claiming a large table asks for the finest buckets: they must still fit.
        let sender = Sender { name: "teacher", addr: addr(9), incarnation: 0 };
        let body = Body::SyncDigest { root: 1, members: 5000 };
        let datagram = forge(&a.config.secret, "node-1", &sender, &body, &[]);
        a.handle_datagram(now, addr(9), &datagram);
        let sent = drain(&mut a);
        let buckets = sent
            .iter()
            .map(|bytes| Packet::decode(&bytes[..bytes.len() - TAG_LEN]).unwrap())
            .find_map(|packet| match packet.body {
                Body::SyncBuckets { shift, .. } => Some(shift),
                _ => None,
            });
        let shift = buckets.expect("SyncBuckets was sent");
        assert!(shift < MAX_BUCKET_SHIFT, "shift {shift}");
        assert!(sent.iter().all(|d| d.len() <= a.config.max_datagram()));
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
