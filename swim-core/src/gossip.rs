//! Dissemination: the queue of membership facts that ride on outgoing datagrams.
//!
//! The queue holds at most one entry per member: the entry names the member, and the record
//! is built from the member's *current* state when a packet is filled, so a newer fact
//! replaces an older one for free. Entries are taken fewest-sent first (newest first among
//! equals) and dropped after `retransmit_mult * ceil(log10(N + 1))` sends, as in memberlist.
//! Ordering lives in a B-tree keyed by `(sends, age, member)`: filling a packet costs
//! O(k log n) for k records, never a rebuild of the whole queue.

use alloc::collections::BTreeSet;
use alloc::vec::Vec;

use rand_core::Rng;

use crate::member::{Member, MemberId, Members};
use crate::node::Node;
use crate::status::StatusFilter;
use crate::wire::Body;
use crate::wire::PacketWriter;

/// Smallest record there is (one-byte name, IPv4): once less room remains, stop looking.
const MIN_RECORD_LEN: usize = 14;

/// Entries examined beyond the first that did not fit, before giving up on a packet.
const MAX_SKIPPED: usize = 16;

#[derive(Clone, Copy, Debug)]
struct Pending {
    // Eight bytes: the queue keeps one slot per member of the table.
    sends: u16,
    /// Decreasing with time, so that newer facts sort first among equal send counts (it
    /// wraps after 2^32 facts, which only perturbs that tie-break once).
    age: u32,
    with_metadata: bool,
}

impl Pending {
    fn key(&self, id: MemberId) -> (u16, u32, MemberId) {
        (self.sends, self.age, id)
    }
}

/// Facts waiting to be piggybacked.
#[derive(Debug, Default)]
pub(crate) struct GossipQueue {
    order: BTreeSet<(u16, u32, MemberId)>,
    /// Indexed by member id.
    pending: Vec<Option<Pending>>,
    next_age: u32,
    /// Reused between packets so filling one never allocates in steady state.
    sent: Vec<MemberId>,
}

impl GossipQueue {
    /// Queues the member's current state (and its metadata if `with_metadata`), replacing
    /// any older entry and resetting its send count.
    pub(crate) fn enqueue(&mut self, id: MemberId, with_metadata: bool) {
        let index = id.0 as usize;
        if self.pending.len() <= index {
            self.pending.resize(index + 1, None);
        }
        let mut with_metadata = with_metadata;
        if let Some(old) = self.pending[index].take() {
            self.order.remove(&old.key(id));
            // A status change must not cancel the spreading of a metadata change.
            with_metadata |= old.with_metadata;
        }
        self.next_age = self.next_age.wrapping_add(1);
        let entry = Pending { sends: 0, age: u32::MAX - self.next_age, with_metadata };
        self.order.insert(entry.key(id));
        self.pending[index] = Some(entry);
    }

    /// Forgets the member's entry (it was reaped).
    pub(crate) fn remove(&mut self, id: MemberId) {
        if let Some(old) = self.pending.get_mut(id.0 as usize).and_then(Option::take) {
            self.order.remove(&old.key(id));
        }
    }

    /// Number of queued facts.
    pub(crate) fn len(&self) -> usize {
        self.order.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Whether a fact about `id` is queued.
    #[cfg(test)]
    pub(crate) fn contains(&self, id: MemberId) -> bool {
        self.pending.get(id.0 as usize).is_some_and(Option::is_some)
    }

    /// Packs queued facts into `writer`, skipping `skip` (already written), and counts a send
    /// for each; facts sent `limit` times leave the queue.
    pub(crate) fn fill(
        &mut self,
        writer: &mut PacketWriter<'_>,
        members: &Members,
        limit: u32,
        skip: Option<MemberId>,
    ) {
        self.sent.clear();
        let mut skipped = 0;
        for &(_, _, id) in &self.order {
            if writer.remaining() < MIN_RECORD_LEN || skipped > MAX_SKIPPED {
                break;
            }
            if Some(id) == skip {
                continue;
            }
            let (Some(member), Some(pending)) =
                (members.get(id), self.pending.get(id.0 as usize).copied().flatten())
            else {
                continue;
            };
            if writer.push(&member.record(pending.with_metadata)) {
                self.sent.push(id);
            } else {
                skipped += 1;
            }
        }
        for &id in &self.sent {
            let Some(slot) = self.pending.get_mut(id.0 as usize) else {
                continue;
            };
            let Some(mut entry) = slot.take() else {
                continue;
            };
            self.order.remove(&entry.key(id));
            entry.sends = entry.sends.saturating_add(1);
            if u32::from(entry.sends) < limit {
                self.order.insert(entry.key(id));
                *slot = Some(entry);
            }
        }
    }
}

impl<R: Rng> Node<R> {
    /// The periodic gossip round: pending facts to `gossip_fanout` random available members.
    pub(crate) fn gossip_round(&mut self) {
        if self.gossip.is_empty() {
            return;
        }
        let mut targets = core::mem::take(&mut self.scratch);
        self.sample(StatusFilter::AVAILABLE, self.config.gossip_fanout, &[], &mut targets);
        for &id in &targets {
            if let Some(addr) = self.members.get(id).map(Member::addr) {
                self.send(addr, &Body::Gossip, Some(id));
            }
        }
        self.scratch = targets;
    }
}

/// How many times each fact is sent in a cluster of `members`: `mult * ceil(log10(n + 1))`.
pub(crate) fn retransmit_limit(mult: u32, members: usize) -> u32 {
    // ceil(log10(n + 1)): how many times 1 must be multiplied by ten to reach n + 1.
    let target = members as u64 + 1;
    let (mut digits, mut power) = (0u32, 1u64);
    while power < target {
        power = power.saturating_mul(10);
        digits += 1;
    }
    mult.saturating_mul(digits.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::member::State;
    use crate::metadata::Metadata;
    use crate::status::Status;
    use crate::time::Instant;
    use crate::wire::{Body, Packet, Sender};
    use core::net::SocketAddr;
    use smol_str::SmolStr;

    fn members(n: usize) -> (Members, Vec<MemberId>) {
        let addr = SocketAddr::from(([127, 0, 0, 1], 1));
        let mut members = Members::new(SmolStr::new("local"), addr, Metadata::new(), Instant::ZERO);
        let ids = (0..n)
            .map(|i| {
                let name: SmolStr = SmolStr::new(alloc::format!("member-{i}").as_str());
                members.insert(
                    name,
                    addr,
                    State { incarnation: 0, status: Status::Online },
                    Instant::ZERO,
                )
            })
            .collect();
        (members, ids)
    }

    fn fill(
        queue: &mut GossipQueue,
        members: &Members,
        max: usize,
        limit: u32,
    ) -> Vec<alloc::string::String> {
        let mut out = Vec::new();
        let sender =
            Sender { name: "local", addr: SocketAddr::from(([127, 0, 0, 1], 1)), incarnation: 0 };
        let mut writer = PacketWriter::new(&mut out, max, 0, &sender, &Body::Gossip).unwrap();
        queue.fill(&mut writer, members, limit, None);
        writer.finish();
        let packet = Packet::decode(&out).unwrap();
        packet.records.iter().map(|r| r.name.into()).collect()
    }

    #[test]
    fn limit_grows_with_log_of_size() {
        assert_eq!(retransmit_limit(4, 0), 4);
        assert_eq!(retransmit_limit(4, 9), 4);
        assert_eq!(retransmit_limit(4, 10), 8);
        assert_eq!(retransmit_limit(4, 99), 8);
        assert_eq!(retransmit_limit(4, 1000), 16);
        assert_eq!(retransmit_limit(3, 10_000), 15);
    }

    #[test]
    fn sends_each_fact_limit_times_newest_first() {
        let (members, ids) = members(3);
        let mut queue = GossipQueue::default();
        for id in &ids {
            queue.enqueue(*id, false);
        }
        assert_eq!(fill(&mut queue, &members, 1452, 2), ["member-2", "member-1", "member-0"]);
        assert_eq!(queue.len(), 3);
        fill(&mut queue, &members, 1452, 2);
        assert!(queue.is_empty());
    }

    #[test]
    fn fewest_sent_first_and_requeue_resets() {
        let (members, ids) = members(2);
        let mut queue = GossipQueue::default();
        queue.enqueue(ids[0], false);
        fill(&mut queue, &members, 1452, 10);
        queue.enqueue(ids[1], false);
        // Room for one record only.
        let one = fill(&mut queue, &members, 70, 10);
        assert_eq!(one, ["member-1"]);
        queue.enqueue(ids[0], false);
        assert_eq!(fill(&mut queue, &members, 70, 10), ["member-0"]);
        queue.remove(ids[0]);
        assert!(!queue.contains(ids[0]));
        assert_eq!(queue.len(), 1);
    }

    #[test]
    fn fills_up_to_the_size_limit() {
        let (members, ids) = members(200);
        let mut queue = GossipQueue::default();
        for id in &ids {
            queue.enqueue(*id, false);
        }
        let names = fill(&mut queue, &members, 1452, 10);
        assert!(names.len() > 30, "only {} records", names.len());
        assert!(names.len() < 200);
    }
}
