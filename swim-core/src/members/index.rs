//! The table's index from name hashes to member ids: open addressing with linear probing
//! over 4-byte slots, each holding an id and eight more bits of its name's hash. The table
//! grows by half (not doubling, which would leave it between 44% and 88% full: a node holds
//! one of these per member, two indexes per node), and a hash's home slot is its low 32
//! bits scaled to the table's length, which need not be a power of two.
//!
//! Every received record is looked up by name, and in a large cluster each lookup is a
//! cache miss: a general hash table reads its control bytes, then the slot (two misses)
//! before the member entry itself. Here a slot carries the id and a tag together, so a
//! lookup reads one line of slots, then the one entry the tag points to.

use alloc::collections::BTreeSet;
use alloc::vec;
use alloc::vec::Vec;

use super::member::MemberId;

/// Ids below this fit a slot (24 bits, as `id + 1`, with 0 meaning empty); larger ones,
/// which only tables of more than 16 million entries reach, go to `Index::large`.
const SLOT_IDS: u32 = (1 << 24) - 1;

/// Fewest slots a non-empty index holds.
const MIN_SLOTS: usize = 8;

/// Name hash to member id, many ids per hash allowed (the caller tells them apart).
#[derive(Debug, Default)]
pub(super) struct Index {
    /// `tag << 24 | (id + 1)`, or 0 for an empty slot; never full.
    slots: Vec<u32>,
    /// Ids in `slots`.
    len: usize,
    /// Ids of `SLOT_IDS` and above, by hash.
    large: BTreeSet<(u64, MemberId)>,
}

impl Index {
    /// Number of ids indexed.
    pub(super) fn len(&self) -> usize {
        self.len + self.large.len()
    }

    /// The first id under `hash` for which `eq` holds.
    pub(super) fn find(&self, hash: u64, eq: impl Fn(MemberId) -> bool) -> Option<MemberId> {
        if !self.slots.is_empty() {
            let tag = tag(hash);
            let mut at = self.home(hash);
            loop {
                let slot = self.slots[at];
                if slot == 0 {
                    break;
                }
                if slot >> 24 == tag && eq(id_of(slot)) {
                    return Some(id_of(slot));
                }
                at = self.after(at);
            }
        }
        if self.large.is_empty() {
            return None;
        }
        let range = (hash, MemberId(0))..=(hash, MemberId(u32::MAX));
        self.large.range(range).map(|&(_, id)| id).find(|id| eq(*id))
    }

    /// Every id under `hash` that its tag does not rule out (some may be under other hashes:
    /// the caller checks), in no particular but a deterministic order.
    pub(super) fn candidates(&self, hash: u64) -> impl Iterator<Item = MemberId> + '_ {
        let tag = tag(hash);
        let home = (!self.slots.is_empty()).then(|| self.home(hash));
        let run = core::iter::successors(home, |&at| Some(self.after(at)))
            .take(self.slots.len())
            .map(|at| self.slots[at])
            .take_while(|&slot| slot != 0)
            .filter(move |&slot| slot >> 24 == tag)
            .map(id_of);
        let large = (!self.large.is_empty()).then(|| {
            let range = (hash, MemberId(0))..=(hash, MemberId(u32::MAX));
            self.large.range(range).map(|&(_, id)| id)
        });
        run.chain(large.into_iter().flatten())
    }

    /// Adds `id` under `hash`; `rehash` gives the hash of any id already indexed (to grow).
    pub(super) fn insert(&mut self, hash: u64, id: MemberId, rehash: impl Fn(MemberId) -> u64) {
        if id.0 >= SLOT_IDS {
            self.large.insert((hash, id));
            return;
        }
        if (self.len + 1) * 8 > self.slots.len() * 7 {
            self.grow(&rehash);
        }
        self.place(hash, tag(hash) << 24 | (id.0 + 1));
        self.len += 1;
    }

    /// Removes `id`, indexed under `hash`; `rehash` gives the hash of the other ids.
    pub(super) fn remove(&mut self, hash: u64, id: MemberId, rehash: impl Fn(MemberId) -> u64) {
        if id.0 >= SLOT_IDS {
            self.large.remove(&(hash, id));
            return;
        }
        if self.slots.is_empty() {
            return;
        }
        let mut at = self.home(hash);
        loop {
            match self.slots[at] {
                0 => return,
                slot if id_of(slot) == id => break,
                _ => at = self.after(at),
            }
        }
        // Backward shift: later slots of the run move into the hole when their home is at
        // or before it, so that no lookup meets an empty slot before its id.
        let mut hole = at;
        let mut next = self.after(at);
        while self.slots[next] != 0 {
            let home = self.home(rehash(id_of(self.slots[next])));
            if self.distance(home, next) >= self.distance(hole, next) {
                self.slots[hole] = self.slots[next];
                hole = next;
            }
            next = self.after(next);
        }
        self.slots[hole] = 0;
        self.len -= 1;
    }

    /// Puts `slot` in the first empty slot from `hash`'s home on.
    fn place(&mut self, hash: u64, slot: u32) {
        let mut at = self.home(hash);
        while self.slots[at] != 0 {
            at = self.after(at);
        }
        self.slots[at] = slot;
    }

    /// The slot where the run of `hash` starts (the slots are not empty): the low 32 bits
    /// of the hash scaled to the length (the tag is the top eight).
    fn home(&self, hash: u64) -> usize {
        (((hash & 0xffff_ffff) * self.slots.len() as u64) >> 32) as usize
    }

    /// The slot after `at`, wrapping around.
    fn after(&self, at: usize) -> usize {
        if at + 1 == self.slots.len() { 0 } else { at + 1 }
    }

    /// How many slots `to` lies after `from`, wrapping around.
    fn distance(&self, from: usize, to: usize) -> usize {
        if to >= from { to - from } else { to + self.slots.len() - from }
    }

    /// Grows the slots by half (at least to `MIN_SLOTS`) and places every id again.
    fn grow(&mut self, rehash: &impl Fn(MemberId) -> u64) {
        let size = (self.slots.len() + self.slots.len() / 2).max(MIN_SLOTS);
        let old = core::mem::replace(&mut self.slots, vec![0; size]);
        for slot in old.into_iter().filter(|&slot| slot != 0) {
            self.place(rehash(id_of(slot)), slot);
        }
    }
}

/// The eight bits of a hash a slot keeps: its top ones, apart from the low 32 that place it.
fn tag(hash: u64) -> u32 {
    (hash >> 56) as u32
}

fn id_of(slot: u32) -> MemberId {
    MemberId((slot & 0x00ff_ffff) - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::mix;

    /// Well-spread hashes.
    fn spread(id: MemberId) -> u64 {
        mix(u64::from(id.0))
    }

    /// Hashes that collide often: few homes and few tags.
    fn crowded(id: MemberId) -> u64 {
        u64::from(id.0 % 5) << 56 | u64::from(id.0 % 3)
    }

    #[test]
    fn finds_what_it_holds_after_inserts_and_removals() {
        let mut index = Index::default();
        for i in 0..1000 {
            index.insert(spread(MemberId(i)), MemberId(i), spread);
        }
        for i in (0..1000).step_by(3) {
            index.remove(spread(MemberId(i)), MemberId(i), spread);
        }
        assert_eq!(index.len(), 666);
        for i in 0..1000 {
            let id = MemberId(i);
            let found = index.find(spread(id), |x| x == id);
            assert_eq!(found, (i % 3 != 0).then_some(id), "{i}");
        }
    }

    #[test]
    fn grows_by_half_so_ten_thousand_ids_take_under_five_bytes_each() {
        let mut index = Index::default();
        for i in 0..10_000 {
            index.insert(spread(MemberId(i)), MemberId(i), spread);
        }
        // 8, 12, 18, ... 7749, 11623 slots: 86% full (doubling would give 16384, 61%).
        assert_eq!(index.slots.len(), 11_623);
        for i in (0..10_000).rev() {
            let id = MemberId(i);
            assert_eq!(index.find(spread(id), |x| x == id), Some(id));
            index.remove(spread(id), id, spread);
            assert_eq!(index.find(spread(id), |x| x == id), None);
        }
        assert_eq!(index.len(), 0);
        assert!(index.slots.iter().all(|&slot| slot == 0));
    }

    #[test]
    fn colliding_hashes_and_tags_stay_apart() {
        let mut index = Index::default();
        for i in 0..200 {
            index.insert(crowded(MemberId(i)), MemberId(i), crowded);
        }
        for i in (0..200).filter(|i| i % 2 == 0) {
            index.remove(crowded(MemberId(i)), MemberId(i), crowded);
        }
        for i in 0..200 {
            let id = MemberId(i);
            assert_eq!(index.find(crowded(id), |x| x == id), (i % 2 == 1).then_some(id));
        }
        // A hash nobody has is not found, whatever `eq` says.
        assert_eq!(index.find(u64::MAX, |_| true), None);
    }

    #[test]
    fn candidates_include_every_id_under_a_hash() {
        let mut index = Index::default();
        for i in 0..60 {
            index.insert(crowded(MemberId(i)), MemberId(i), crowded);
        }
        let hash = crowded(MemberId(4));
        let mut under: Vec<MemberId> =
            index.candidates(hash).filter(|&id| crowded(id) == hash).collect();
        under.sort();
        let expected: Vec<MemberId> =
            (0..60).map(MemberId).filter(|&id| crowded(id) == hash).collect();
        assert_eq!(under, expected);
        assert_eq!(Index::default().candidates(hash).count(), 0);
    }

    #[test]
    fn ids_beyond_a_slot_are_indexed_too() {
        let mut index = Index::default();
        let big = MemberId(SLOT_IDS + 7);
        index.insert(spread(big), big, spread);
        index.insert(spread(MemberId(3)), MemberId(3), spread);
        assert_eq!(index.len(), 2);
        assert_eq!(index.find(spread(big), |x| x == big), Some(big));
        index.remove(spread(big), big, spread);
        assert_eq!(index.find(spread(big), |x| x == big), None);
        assert_eq!(index.find(spread(MemberId(3)), |x| x == MemberId(3)), Some(MemberId(3)));
    }
}
