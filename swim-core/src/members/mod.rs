//! The membership table: every member a node knows, itself included.
//!
//! The table stores members in a slab addressed by [`MemberId`], which the probe order, the
//! gossip queue and the deadline index use instead of names, and finds them by name through a
//! hash table keyed by the name's stable hash (iteration follows the slab, so it is the same
//! for the same history). Every change to a member's
//! `(incarnation, status, metadata version)` goes through the table so the anti-entropy
//! digest stays exact. Reaped members leave a tombstone for a while, so stale gossip about
//! them cannot bring them back.
//!
//! - `member`: one entry;
//! - `deadlines`: when the status of members that are not online times out;
//! - `index`: ids by name hash;
//! - `digest`: the table's anti-entropy digest, and the stable hashes it is made of.

mod deadlines;
mod digest;
mod index;
mod member;

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;
use core::net::{IpAddr, SocketAddr};
use rand_core::Rng;
use smol_str::SmolStr;

#[cfg(test)]
pub(crate) use digest::short_name;
pub(crate) use digest::{Digest, buckets_from, fine_buckets, name_hash, shift_for};
pub use member::Member;
pub(crate) use member::{MemberId, State, Tombstone, is_member_addr};

use crate::metadata::Metadata;
use crate::random::{MAX_SAMPLE, Sample, random_below};
use crate::status::{Status, StatusFilter};
use crate::suspicion::Suspicion;
use crate::time::Instant;
use crate::wire::Record;
use deadlines::Deadlines;
use index::Index;
use member::Marks;

/// Makes room for `additional` more elements in a list that grows with the membership (one
/// element per member, in every node: N² of them in a cluster of N), by a quarter of its
/// length rather than by doubling, which would keep up to half of it unused.
pub(crate) fn reserve_per_member<T>(list: &mut Vec<T>, additional: usize) {
    if list.capacity() - list.len() < additional {
        list.reserve_exact(additional.max(list.len() / 4).max(4));
    }
}

/// Slots for members, in chunks of fixed capacity: a plain `Vec` would keep up to half its
/// capacity unused after growing, and a slot is a whole [`Member`] in every node for every
/// member of the cluster.
#[derive(Debug, Default)]
struct Slab {
    chunks: Vec<Vec<Option<Member>>>,
    len: usize,
}

impl Slab {
    const CHUNK: usize = 256;

    fn len(&self) -> usize {
        self.len
    }

    fn get(&self, index: usize) -> Option<&Member> {
        self.chunks.get(index / Self::CHUNK)?.get(index % Self::CHUNK)?.as_ref()
    }

    fn get_mut(&mut self, index: usize) -> Option<&mut Member> {
        self.chunks.get_mut(index / Self::CHUNK)?.get_mut(index % Self::CHUNK)?.as_mut()
    }

    /// Appends a member at index `len`.
    fn push(&mut self, member: Member) {
        if self.len.is_multiple_of(Self::CHUNK) {
            self.chunks.push(Vec::with_capacity(Self::CHUNK));
        }
        if let Some(chunk) = self.chunks.last_mut() {
            chunk.push(Some(member));
            self.len += 1;
        }
    }

    /// Fills a slot freed by [`Slab::take`].
    fn put(&mut self, index: usize, member: Member) {
        if let Some(slot) =
            self.chunks.get_mut(index / Self::CHUNK).and_then(|c| c.get_mut(index % Self::CHUNK))
        {
            *slot = Some(member);
        }
    }

    fn take(&mut self, index: usize) -> Option<Member> {
        self.chunks.get_mut(index / Self::CHUNK)?.get_mut(index % Self::CHUNK)?.take()
    }

    /// Occupied slots in index order.
    fn iter(&self) -> impl Iterator<Item = (usize, &Member)> + '_ {
        self.chunks
            .iter()
            .flatten()
            .enumerate()
            .filter_map(|(index, slot)| slot.as_ref().map(|member| (index, member)))
    }
}

/// Every member this node knows, itself included (always [`Members::LOCAL`]).
#[derive(Debug)]
pub(crate) struct Members {
    slots: Slab,
    free: Vec<MemberId>,
    /// Ids by name hash: one lookup per received record, so a hash table (a few bytes per
    /// entry, one name comparison per lookup) rather than a tree of string comparisons.
    index: Index,
    /// Ids by the hash of their IP address, to count members per IP.
    by_ip: Index,
    /// Suspicion expiries and reap times, by member.
    deadlines: Deadlines,
    /// The suspicions in progress, by suspect (most members are not suspect: a side table
    /// rather than a field of every entry).
    suspicions: BTreeMap<MemberId, Suspicion>,
    tombstones: BTreeMap<SmolStr, Tombstone>,
    tombstone_expiry: BTreeSet<(Instant, SmolStr)>,
    digest: Digest,
    /// Members per status, in [`Status::precedence`] order.
    counts: [usize; 4],
}

impl Members {
    /// The local member's id.
    pub(crate) const LOCAL: MemberId = MemberId(0);

    pub(crate) fn new(name: SmolStr, addr: SocketAddr, metadata: Metadata, now: Instant) -> Self {
        let mut members = Members {
            slots: Slab::default(),
            free: Vec::new(),
            index: Index::default(),
            by_ip: Index::default(),
            deadlines: Deadlines::default(),
            suspicions: BTreeMap::new(),
            tombstones: BTreeMap::new(),
            tombstone_expiry: BTreeSet::new(),
            digest: Digest::new(),
            counts: [0; 4],
        };
        members.insert(name, addr, State { incarnation: 0, status: Status::Online }, now);
        members.set_metadata(Members::LOCAL, metadata, 1);
        members
    }

    pub(crate) fn local(&self) -> &Member {
        self.get(Members::LOCAL).expect("the local member is inserted first and never removed")
    }

    pub(crate) fn get(&self, id: MemberId) -> Option<&Member> {
        self.slots.get(id.index())
    }

    pub(crate) fn get_mut(&mut self, id: MemberId) -> Option<&mut Member> {
        self.slots.get_mut(id.index())
    }

    pub(crate) fn id(&self, name: &str) -> Option<MemberId> {
        let slots = &self.slots;
        let named = |id: MemberId| slots.get(id.index()).is_some_and(|m| *m.name == *name);
        self.index.find(name_hash(name), named)
    }

    /// The one member whose name hashes to `hash` (a short sender), if exactly one does.
    pub(crate) fn by_name_hash(&self, hash: u64) -> Option<MemberId> {
        let slots = &self.slots;
        let mut matching = self
            .index
            .candidates(hash)
            .filter(|id| slots.get(id.index()).is_some_and(|m| name_hash(&m.name) == hash));
        let first = matching.next();
        // Two names with one hash (never by chance among 2^64; a key holder could choose
        // one): the short sender is ambiguous, and the datagram is dropped.
        first.filter(|_| matching.next().is_none())
    }

    /// Members whose address has the IP `ip`, counted up to `limit`.
    pub(crate) fn count_at_ip(&self, ip: IpAddr, limit: usize) -> usize {
        let slots = &self.slots;
        self.by_ip
            .candidates(ip_hash(ip))
            .filter(|id| slots.get(id.index()).is_some_and(|m| m.addr().ip() == ip))
            .take(limit)
            .count()
    }

    /// Moves a member to another address.
    pub(crate) fn set_addr(&mut self, id: MemberId, addr: SocketAddr) {
        let Some(member) = self.slots.get_mut(id.index()) else { return };
        let old = member.addr().ip();
        member.set_addr(addr);
        // A new address has shown nothing yet.
        member.marks.set(Marks::VALIDATED, false);
        member.may_not_know_us();
        if old != addr.ip() {
            self.unindex_ip(id, old);
            self.index_ip(id, addr.ip());
        }
    }

    fn index_ip(&mut self, id: MemberId, ip: IpAddr) {
        let slots = &self.slots;
        let rehash = |id: MemberId| slots.get(id.index()).map_or(0, |m| ip_hash(m.addr().ip()));
        self.by_ip.insert(ip_hash(ip), id, rehash);
    }

    fn unindex_ip(&mut self, id: MemberId, ip: IpAddr) {
        let slots = &self.slots;
        let rehash = |id: MemberId| slots.get(id.index()).map_or(0, |m| ip_hash(m.addr().ip()));
        self.by_ip.remove(ip_hash(ip), id, rehash);
    }

    pub(crate) fn by_name(&self, name: &str) -> Option<&Member> {
        self.id(name).and_then(|id| self.get(id))
    }

    /// Number of entries in the table (every status, the local member included).
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    /// Number of members with a status in `filter`, the local member included.
    pub(crate) fn count(&self, filter: StatusFilter) -> usize {
        [Status::Online, Status::Suspect, Status::Offline, Status::Left]
            .into_iter()
            .filter(|s| filter.matches(*s))
            .map(|s| self.counts[usize::from(s.precedence())])
            .sum()
    }

    /// Number of members other than the local one with a status in `filter`.
    fn count_others(&self, filter: StatusFilter) -> usize {
        let local = self.get(Members::LOCAL).is_some_and(|m| filter.matches(m.status()));
        self.count(filter) - usize::from(local)
    }

    /// Up to `count` (at most [`MAX_SAMPLE`]) distinct members other than the local one,
    /// matching `filter` and not in `exclude`, chosen at random. Random probes of the slab
    /// first (O(1) each when most members match, which is the common case), then a full
    /// scan into `scratch` if those were unlucky.
    pub(crate) fn sample(
        &self,
        rng: &mut impl Rng,
        filter: StatusFilter,
        count: usize,
        exclude: &[MemberId],
        scratch: &mut Vec<MemberId>,
    ) -> Sample<MemberId> {
        let count = count.min(MAX_SAMPLE);
        let out = scratch;
        out.clear();
        let bound = self.id_bound() as usize;
        if count > 0 && bound > 1 && self.count_others(filter) == 0 {
            // Nothing can match (a rejoin round looking for offline members in a healthy
            // cluster): the probes and the scan below would touch every entry for nothing.
            // The probes' draws are still made, so the random stream stays where it would be.
            for _ in 0..count * 4 + 4 {
                random_below(rng, bound);
            }
            return Sample::of(out);
        }
        let matches = |id: MemberId, out: &Vec<MemberId>| {
            id != Members::LOCAL
                && !exclude.contains(&id)
                && !out.contains(&id)
                && self.get(id).is_some_and(|m| filter.matches(m.status()))
        };
        for _ in 0..count * 4 + 4 {
            if out.len() == count || bound <= 1 {
                return Sample::of(out);
            }
            let id = MemberId(random_below(rng, bound) as u32);
            if matches(id, out) {
                out.push(id);
            }
        }
        if out.len() == count {
            return Sample::of(out);
        }
        // Unlucky or sparse: take the rest uniformly from a scan.
        let start = out.len();
        for i in 0..bound {
            let id = MemberId(i as u32);
            if matches(id, out) {
                out.push(id);
            }
        }
        let total = out.len();
        for i in start..count.min(total) {
            let j = i + random_below(rng, total - i);
            out.swap(i, j);
        }
        out.truncate(count.min(total));
        Sample::of(out)
    }

    /// Upper bound of ids in use, for sampling.
    pub(crate) fn id_bound(&self) -> u32 {
        self.slots.len() as u32
    }

    /// All members with their ids, in slot order: no particular order, but the same for the
    /// same history, which is what determinism needs.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (MemberId, &Member)> + '_ {
        self.slots.iter().map(|(index, member)| (MemberId(index as u32), member))
    }

    pub(crate) fn digest(&self) -> &Digest {
        &self.digest
    }

    pub(crate) fn tombstone(&self, name: &str) -> Option<Tombstone> {
        self.tombstones.get(name).copied()
    }

    /// Adds a member not in the table (the caller checked), clearing any tombstone.
    pub(crate) fn insert(
        &mut self,
        name: SmolStr,
        addr: SocketAddr,
        state: State,
        now: Instant,
    ) -> MemberId {
        self.tombstones.remove(&*name);
        // Hashed once: the digest and the index both key on it.
        let hash = name_hash(&name);
        let member = Member::new(name.clone(), addr, state, now);
        self.counts[usize::from(state.status.precedence())] += 1;
        let id = self.free.pop().unwrap_or(MemberId(self.slots.len() as u32));
        self.digest.insert(id, hash, &member);
        if id.index() < self.slots.len() {
            self.slots.put(id.index(), member);
        } else {
            self.slots.push(member);
        }
        let slots = &self.slots;
        let rehash = |id: MemberId| slots.get(id.index()).map_or(0, |m| name_hash(&m.name));
        self.index.insert(hash, id, rehash);
        self.index_ip(id, addr.ip());
        id
    }

    /// Changes a member's incarnation and status; returns the previous state.
    pub(crate) fn set_state(&mut self, id: MemberId, state: State, now: Instant) -> Option<State> {
        let member = self.slots.get_mut(id.index())?;
        let previous = State { incarnation: member.incarnation(), status: member.status };
        let before = digest::entry_hash(member);
        self.counts[usize::from(member.status.precedence())] -= 1;
        if member.status != state.status {
            member.set_changed_at(now);
        }
        member.set_incarnation(state.incarnation);
        member.status = state.status;
        if !state.status.is_available() {
            // Back from offline it may have forgotten us: it shows again that it has not.
            member.forget_knows_us();
        }
        self.counts[usize::from(member.status.precedence())] += 1;
        self.digest.update(id, before, member);
        Some(previous)
    }

    /// Replaces a member's metadata with a newer version.
    pub(crate) fn set_metadata(&mut self, id: MemberId, metadata: Metadata, version: u64) {
        if let Some(member) = self.slots.get_mut(id.index()) {
            let before = digest::entry_hash(member);
            member.set_metadata(metadata, version);
            self.digest.update(id, before, member);
        }
    }

    /// Forgets a member, leaving a tombstone until `tombstone_until`.
    pub(crate) fn remove(&mut self, id: MemberId, tombstone_until: Instant) -> Option<Member> {
        if id == Members::LOCAL {
            return None;
        }
        let member = self.slots.take(id.index())?;
        self.deadlines.set(id, None);
        self.suspicions.remove(&id);
        self.digest.remove(id, &member);
        self.counts[usize::from(member.status.precedence())] -= 1;
        let slots = &self.slots;
        let rehash = |id: MemberId| slots.get(id.index()).map_or(0, |m| name_hash(&m.name));
        self.index.remove(name_hash(&member.name), id, rehash);
        self.unindex_ip(id, member.addr().ip());
        self.free.push(id);
        self.tombstones.insert(
            member.name.clone(),
            Tombstone {
                incarnation: member.incarnation(),
                status: member.status,
                expires: tombstone_until,
                last_nonce: member.replay.highest(),
            },
        );
        self.tombstone_expiry.insert((tombstone_until, member.name.clone()));
        Some(member)
    }

    /// Sets (or clears) when `id`'s current status times out.
    pub(crate) fn set_deadline(&mut self, id: MemberId, deadline: Option<Instant>) {
        if self.slots.get(id.index()).is_some() {
            self.deadlines.set(id, deadline);
        }
    }

    /// The earliest deadline of a member's status.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.next()
    }

    /// A member whose status timed out by `now`, its deadline cleared.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<MemberId> {
        self.deadlines.pop_due(now)
    }

    /// The suspicion in progress against `id`, if any.
    pub(crate) fn suspicion(&self, id: MemberId) -> Option<&Suspicion> {
        self.suspicions.get(&id)
    }

    pub(crate) fn suspicion_mut(&mut self, id: MemberId) -> Option<&mut Suspicion> {
        self.suspicions.get_mut(&id)
    }

    /// Starts (or, with `None`, ends) the suspicion against `id`.
    pub(crate) fn set_suspicion(&mut self, id: MemberId, suspicion: Option<Suspicion>) {
        match suspicion {
            Some(suspicion) if self.slots.get(id.index()).is_some() => {
                self.suspicions.insert(id, suspicion);
            }
            _ => drop(self.suspicions.remove(&id)),
        }
    }

    /// `id`'s state as a wire record (see [`Member::record`]), naming the latest accuser of
    /// its suspicion, if any.
    pub(crate) fn record(&self, id: MemberId, with_metadata: bool) -> Option<Record<'_>> {
        let accuser = self.suspicion(id).and_then(Suspicion::latest_accuser);
        Some(self.get(id)?.record(with_metadata, accuser))
    }

    /// The earliest tombstone expiry.
    pub(crate) fn next_tombstone_expiry(&self) -> Option<Instant> {
        self.tombstone_expiry.first().map(|(at, _)| *at)
    }

    /// Drops tombstones that expired by `now`.
    pub(crate) fn expire_tombstones(&mut self, now: Instant) {
        while let Some((at, name)) = self.tombstone_expiry.first().cloned() {
            if at > now {
                break;
            }
            self.tombstone_expiry.pop_first();
            if self.tombstones.get(&name).is_some_and(|t| t.expires == at) {
                self.tombstones.remove(&name);
            }
        }
    }

    /// Number of tombstones held.
    pub(crate) fn tombstones(&self) -> usize {
        self.tombstones.len()
    }
}

/// A hash of an IP address for the per-IP index (FNV-1a over its octets).
fn ip_hash(ip: IpAddr) -> u64 {
    let octets = match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    };
    digest::name_hash_bytes(&octets)
}

#[cfg(test)]
mod tests {
    use super::member::{NO_METADATA, PackedAddr};
    use super::*;
    use core::time::Duration;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn table() -> Members {
        Members::new(SmolStr::new("local"), addr(1), Metadata::new(), Instant::ZERO)
    }

    #[test]
    fn the_digest_keeps_one_exact_summary_per_entry() {
        let mut members = table();
        let online = State { incarnation: 0, status: Status::Online };
        let ids: Vec<MemberId> = (0..300)
            .map(|i| {
                members.insert(SmolStr::new(alloc::format!("m{i}")), addr(2), online, Instant::ZERO)
            })
            .collect();
        for (i, id) in ids.iter().enumerate() {
            match i % 4 {
                0 => drop(members.set_state(
                    *id,
                    State { incarnation: 2, status: Status::Suspect },
                    Instant::ZERO,
                )),
                1 => members.set_metadata(*id, Metadata::new(), 3),
                2 => drop(members.remove(*id, Instant::from_secs(60))),
                _ => {}
            }
        }
        // Slots freed by removals are reused.
        for i in 300..350 {
            members.insert(SmolStr::new(alloc::format!("m{i}")), addr(2), online, Instant::ZERO);
        }
        let mut expected = Digest::new();
        for (id, member) in members.iter() {
            expected.insert(id, name_hash(member.name()), member);
        }
        assert_eq!(members.digest().root(), expected.root());
        for bucket in 0..digest::FINE_BUCKETS {
            let mut ours = members.digest().summaries(bucket).to_vec();
            let mut theirs = expected.summaries(bucket).to_vec();
            ours.sort_by_key(|s| s.id);
            theirs.sort_by_key(|s| s.id);
            assert_eq!(ours, theirs, "bucket {bucket}");
        }
    }

    #[test]
    fn an_entry_stays_small() {
        // N² of these live in a cluster of N: keep an eye on the size. The name is inline
        // (24 bytes, no allocation of its own for names up to 23 bytes): 8 more bytes here
        // than a shared pointer, against a 32-48 byte allocation per entry saved.
        assert!(core::mem::size_of::<Member>() <= 80, "{}", core::mem::size_of::<Member>());
        // A slab slot is an `Option<Member>`: the empty slot must cost nothing extra.
        assert_eq!(core::mem::size_of::<Option<Member>>(), core::mem::size_of::<Member>());
    }

    #[test]
    fn packed_addresses_round_trip() {
        let mut members = table();
        let online = State { incarnation: 0, status: Status::Online };
        let id = members.insert(SmolStr::new("a"), addr(2), online, Instant::ZERO);
        let all =
            ["127.0.0.1:7000", "[2001:db8::1]:65535", "0.0.0.0:0", "[::]:1", "[::ffff:1.2.3.4]:5"];
        for addr in all {
            let addr: SocketAddr = addr.parse().unwrap();
            assert_eq!(PackedAddr::from(addr).get(addr.is_ipv6()), addr);
            // The family bit lives in the marks, which the move must leave otherwise alone.
            members.set_addr(id, addr);
            assert_eq!(members.get(id).unwrap().addr(), addr);
            let local = usize::from(addr.ip() == members.local().addr().ip());
            assert_eq!(members.count_at_ip(addr.ip(), 9), 1 + local);
        }
    }

    #[test]
    fn local_member_is_first_and_known_empty() {
        let members = table();
        assert_eq!(members.local().name(), "local");
        assert_eq!(members.local().metadata(), Some(&Metadata::new()));
        assert_eq!(members.local().meta_version(), 1);
        assert_eq!(members.count(StatusFilter::ONLINE), 1);
    }

    #[test]
    fn counts_follow_state_changes() {
        let mut members = table();
        let online = State { incarnation: 0, status: Status::Online };
        let a = members.insert(SmolStr::new("a"), addr(2), online, Instant::ZERO);
        assert_eq!(members.by_name("a").unwrap().metadata(), None);
        let t = Instant::from_secs(1);
        let previous = members.set_state(a, State { incarnation: 0, status: Status::Suspect }, t);
        assert_eq!(previous, Some(online));
        assert_eq!(members.get(a).unwrap().status_changed_at(), t);
        assert_eq!(members.count(StatusFilter::AVAILABLE), 2);
        assert_eq!(members.count(StatusFilter::UNAVAILABLE), 1);
        assert_eq!(members.count(StatusFilter::ALL), 2);
        // Kept to the second; only a change of status moves it.
        let later = Instant::from_millis(2_999);
        members.set_state(a, State { incarnation: 1, status: Status::Offline }, later);
        assert_eq!(members.get(a).unwrap().status_changed_at(), Instant::from_secs(2));
        members.set_state(a, State { incarnation: 2, status: Status::Offline }, Instant::MAX);
        assert_eq!(members.get(a).unwrap().status_changed_at(), Instant::from_secs(2));
    }

    #[test]
    fn counters_beyond_32_bits_and_metadata_are_kept_whole() {
        let mut members = table();
        let mut tags = Metadata::new();
        tags.insert("zone", "a");
        let online = |incarnation| State { incarnation, status: Status::Online };
        let id = members.insert(SmolStr::new("a"), addr(2), online(0), Instant::ZERO);
        // The entry boxes what it cannot hold (`boxed`), and gives back what it was given.
        let check = |members: &Members, incarnation, version, metadata, boxed| {
            let member = members.get(id).unwrap();
            assert_eq!((member.incarnation(), member.meta_version()), (incarnation, version));
            assert_eq!((member.metadata(), member.is_boxed()), (metadata, boxed));
        };
        let wide = u64::from(u32::MAX);
        members.set_state(id, online(wide - 1), Instant::ZERO);
        check(&members, wide - 1, 0, None, false);
        members.set_state(id, online(wide), Instant::ZERO);
        check(&members, wide, 0, None, true);
        members.set_metadata(id, tags.clone(), 7);
        check(&members, wide, 7, Some(&tags), true);
        members.set_state(id, online(3), Instant::ZERO);
        check(&members, 3, 7, Some(&tags), true);
        members.set_metadata(id, Metadata::new(), u64::MAX);
        check(&members, 3, u64::MAX, Some(&NO_METADATA), true);
        members.set_metadata(id, Metadata::new(), 8);
        check(&members, 3, 8, Some(&NO_METADATA), false);
        // The digest saw every change: it equals one made from the entries as they are.
        let mut expected = Digest::new();
        for (id, member) in members.iter() {
            expected.insert(id, name_hash(member.name()), member);
        }
        assert_eq!(members.digest().root(), expected.root());
    }

    #[test]
    fn suspicions_and_deadlines_go_with_their_member() {
        let mut members = table();
        let suspect = State { incarnation: 0, status: Status::Suspect };
        let a = members.insert(SmolStr::new("a"), addr(2), suspect, Instant::ZERO);
        members.set_suspicion(a, Some(Suspicion::new(Instant::ZERO, Some("local"))));
        members.set_deadline(a, Some(Instant::from_secs(5)));
        assert_eq!(members.record(a, false).unwrap().accuser, Some("local"));
        assert_eq!(members.next_deadline(), Some(Instant::from_secs(5)));
        members.remove(a, Instant::from_secs(60));
        // The slot is reused by a member that inherits neither.
        let online = State { incarnation: 0, status: Status::Online };
        let b = members.insert(SmolStr::new("b"), addr(3), online, Instant::ZERO);
        assert_eq!(b, a);
        assert!(members.suspicion(b).is_none());
        assert_eq!(members.record(b, false).unwrap().accuser, None);
        assert_eq!((members.next_deadline(), members.pop_due(Instant::MAX)), (None, None));
        // Nor does a member that is not there get any.
        members.set_suspicion(MemberId(99), Some(Suspicion::new(Instant::ZERO, None)));
        members.set_deadline(MemberId(99), Some(Instant::from_secs(1)));
        assert!(members.suspicion(MemberId(99)).is_none());
        assert_eq!(members.next_deadline(), None);
    }

    #[test]
    fn removal_tombstones_and_reuses_ids() {
        let mut members = table();
        let online = State { incarnation: 4, status: Status::Online };
        let a = members.insert(SmolStr::new("a"), addr(2), online, Instant::ZERO);
        let root_with_a = members.digest().root();
        let until = Instant::ZERO + Duration::from_secs(30);
        assert!(members.remove(a, until).is_some());
        assert!(members.remove(Members::LOCAL, until).is_none());
        assert_eq!(members.id("a"), None);
        assert_eq!(members.tombstone("a").unwrap().incarnation, 4);
        assert_ne!(members.digest().root(), root_with_a);
        let b = members.insert(SmolStr::new("b"), addr(3), online, Instant::ZERO);
        assert_eq!(b, a);
        members.expire_tombstones(until);
        assert!(members.tombstone("a").is_none());
        assert_eq!(members.tombstones(), 0);
    }

    #[test]
    fn digest_is_independent_of_insertion_order() {
        let online = State { incarnation: 1, status: Status::Online };
        let mut one = table();
        let mut two = table();
        for name in ["x", "y", "z"] {
            one.insert(SmolStr::new(name), addr(9), online, Instant::ZERO);
        }
        for name in ["z", "x", "y"] {
            two.insert(SmolStr::new(name), addr(9), online, Instant::from_secs(5));
        }
        assert_eq!(one.digest().root(), two.digest().root());
    }
}
