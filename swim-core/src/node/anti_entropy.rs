//! The anti-entropy exchange as the node drives it: the steps it sends and answers, while
//! [`AntiEntropy`](crate::sync::AntiEntropy) keeps the exchanges and works out what differs.

use rand_core::Rng;

use super::Node;
use super::send::Destination;
use crate::exchange::{Peer, Step};
use crate::members::buckets_from;
use crate::members::{Member, MemberId, fine_buckets};
use crate::status::StatusFilter;
use crate::sync::{AntiEntropy, MAX_ENTRY_DATAGRAMS, MAX_SUMMARY_DATAGRAMS};
use crate::time::Instant;
use crate::wire::{Body, BucketSet, MIN_RECORD_LEN, SUMMARY_LEN, WANT_LEN, max_overhead};

impl<R: Rng> Node<R> {
    /// The periodic exchange with one random available member, unless the last ping or ack
    /// showed an equal table, within three probe intervals: in a quiet cluster, probes
    /// carry the roots and no separate digest is needed.
    pub(super) fn sync_round(&mut self, now: Instant) {
        if !self.sync.is_due(now, self.sync_quiet()) {
            return;
        }
        let peer =
            self.members.sample(&mut self.rng, StatusFilter::AVAILABLE, 1, &[], &mut self.sampling);
        if let Some(id) = peer.first() {
            self.send_digest(Peer::Member(id));
        }
    }

    /// Step 1: our root and size, to a member or to a peer's address.
    pub(super) fn send_digest(&mut self, peer: Peer) {
        let (to, about) = match peer {
            Peer::Member(id) => match self.destination(id) {
                Some(to) => (to, Some(id)),
                None => return,
            },
            Peer::Seed(addr) => (Destination::seed(addr), None),
        };
        self.counters.syncs += 1;
        let root = self.members.digest().root();
        let members = u32::try_from(self.members.len()).unwrap_or(u32::MAX);
        if self.send(&to, &Body::SyncDigest { root, members }, about, usize::MAX).is_some() {
            self.sync.exchanges.digest_sent(peer, to.addr, self.clock.now());
        }
    }

    /// Step 2: roots differ, so answer with bucket hashes, within `limit` bytes, at most
    /// once per half sync interval to one member.
    pub(super) fn handle_sync_digest(
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
        if !self.sync.exchanges.may_answer_digest(sender, now, self.config.sync_interval / 2) {
            return;
        }
        // As many buckets as the tables need, and as the answer may carry (a small MTU or
        // a peer not yet validated takes fewer, larger buckets).
        let overhead = max_overhead(self.members.local().name().len()) + 1;
        let room = limit.min(self.config.max_datagram()).saturating_sub(overhead);
        let shift = AntiEntropy::bucket_shift(self.members.len(), members, room);
        let mut hashes = self.take_buffer();
        self.members.digest().write_buckets(shift, &mut hashes);
        let cookie = self.rng.next_u32();
        let body = Body::SyncBuckets { cookie, shift, hashes: &hashes };
        let sent = self.send_to(sender, &body, Some(sender), limit);
        self.recycle(hashes);
        if let (Some(_), Some(addr)) = (sent, self.members.get(sender).map(Member::addr)) {
            let budget = MAX_ENTRY_DATAGRAMS;
            self.sync.exchanges.sent(sender, addr, Step::Buckets, cookie, budget, now);
        }
    }

    /// Step 3: the bucket hashes of `sender` (with its cookie `echo`) arrived; summarise our
    /// entries of the differing buckets, so that it can tell which entries differ.
    pub(super) fn handle_sync_buckets(
        &mut self,
        now: Instant,
        sender: MemberId,
        echo: u32,
        shift: u8,
        hashes: &[u8],
    ) {
        let differing = AntiEntropy::differing(self.members.digest(), shift, hashes);
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
            self.sync.exchanges.sent(to, addr, Step::Summaries, cookie, budget, now);
        }
    }

    /// Step 4: compare the summaries of `sender` (echoing our cookie, with its own in
    /// `request`) with ours of the same buckets. Our entries that it lacks or holds in
    /// another version go back in full, within what is left of the exchange's budget; its
    /// entries that we lack or hold in another version are asked for.
    pub(super) fn handle_sync_summaries(
        &mut self,
        now: Instant,
        sender: MemberId,
        (echo, cookie): (Option<u32>, u32),
        shift: u8,
        buckets: BucketSet,
        summaries: &[u8],
    ) {
        let mut ours = core::mem::take(&mut self.entries);
        let mut names = self.take_buffer();
        let overhead = max_overhead(self.members.local().name().len()) + 8 + 2; // echo, count
        let capacity = self.config.max_datagram().saturating_sub(overhead) / WANT_LEN;
        let cap = self.max_answer_entries();
        self.sync.compare(
            self.members.digest(),
            &mut self.rng,
            (shift, buckets, summaries),
            cap,
            &mut ours,
            &mut names,
            capacity,
        );
        self.answer_with_entries(now, sender, Step::Buckets, echo, &ours);
        self.entries = ours;
        if !names.is_empty() {
            let want = Body::SyncWant { echo: Some(cookie), names: &names };
            self.send_to(sender, &want, None, usize::MAX);
        }
        self.recycle(names);
    }

    /// Step 5: the entries `sender` asked for (echoing the cookie of our summaries), in
    /// full, within what is left of the exchange's budget.
    pub(super) fn handle_sync_want(
        &mut self,
        now: Instant,
        sender: MemberId,
        echo: Option<u32>,
        names: &[u8],
    ) {
        let mut ids = core::mem::take(&mut self.entries);
        AntiEntropy::wanted(self.members.digest(), names, &mut ids);
        self.answer_with_entries(now, sender, Step::Summaries, echo, &ids);
        self.entries = ids;
    }

    /// Entries gathered for one answer at most: more than [`MAX_ENTRY_DATAGRAMS`] datagrams
    /// can carry at this MTU, so the cap in datagrams is what binds, while the list stays
    /// bounded.
    fn max_answer_entries(&self) -> usize {
        MAX_ENTRY_DATAGRAMS * self.config.max_datagram().div_ceil(MIN_RECORD_LEN)
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
        let budget = self.sync.exchanges.budget(to, addr, step, echo, now);
        let sent = self.send_entries(&destination, ids, budget);
        self.sync.exchanges.spend(to, addr, step, echo, sent, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::members::{name_hash, short_name};
    use crate::node::Node;
    use crate::status::Status;
    use crate::testing::forge;
    use crate::wire::MAX_BUCKET_SHIFT;
    use crate::wire::{Packet, Record, Sender};
    use crate::{Keyring, TAG_LEN};
    use alloc::format;
    use alloc::string::String;
    use alloc::vec::Vec;
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
                meta_hash: None,
                streams: false,
            })
            .collect();
        let receiver = String::from(node.local_member().name().as_str());
        let datagram =
            forge(&node.config.keyring, &receiver, &sender, &Body::SyncEntries, &records);
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
        a.sync.exchanges.sent(teacher, to, Step::Summaries, 7, MAX_ENTRY_DATAGRAMS, now);
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
        let datagram = forge(&a.config.keyring, "node-1", &sender, &body, &[]);
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
        let datagram = forge(&a.config.keyring, "node-1", &sender, &body, &[]);
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
}
