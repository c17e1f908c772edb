//! Anti-entropy exchanges in progress, so that a node answers only what follows from its
//! own messages.
//!
//! An exchange is a conversation: A sends a digest, B answers with bucket hashes, A lists
//! its entries of the differing buckets, B sends what A lacks and asks for what it lacks,
//! A sends that. Every answer after the first can be large (up to dozens of datagrams), so
//! each is given only to a peer that proved it receives at its address: its request echoes
//! the nonce of the datagram this node last sent it in the exchange. A request that follows
//! nothing this node sent, or echoes the wrong nonce, is not answered, so a holder of the
//! key cannot aim the bulk of an exchange at a victim's address. The first answer (bucket
//! hashes, at most 1 KiB) is given at most once per peer per half sync interval.

use alloc::vec::Vec;
use core::net::SocketAddr;
use core::time::Duration;

use crate::member::MemberId;
use crate::time::Instant;

/// Exchanges remembered at once; the oldest is forgotten first.
const MAX_EXCHANGES: usize = 64;

/// How long an exchange waits for its next step: many round trips, and far less than the
/// time before a member's id can be reused (reaping takes `reap_timeout`).
const LIFETIME: Duration = Duration::from_secs(5);

/// Whom an exchange is with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Peer {
    /// A member of the table.
    Member(MemberId),
    /// A seed, known by its address only (a join).
    Seed(SocketAddr),
}

/// The last step this node took in an exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// Sent a digest (step 1).
    Digest,
    /// Answered a digest with bucket hashes (step 2), in the datagram with this nonce.
    Buckets { nonce: u64 },
    /// Listed its entries (step 3) in the datagrams with these nonces.
    Summaries { first: u64, last: u64 },
}

#[derive(Clone, Copy, Debug)]
struct Exchange {
    peer: Peer,
    step: Step,
    at: Instant,
}

/// The exchanges this node takes part in.
#[derive(Debug)]
pub(crate) struct Exchanges {
    list: Vec<Exchange>,
}

impl Exchanges {
    pub(crate) fn new() -> Self {
        Exchanges { list: Vec::with_capacity(MAX_EXCHANGES) }
    }

    /// Step 1 taken: a digest went to `peer`.
    pub(crate) fn digest_sent(&mut self, peer: Peer, now: Instant) {
        self.note(peer, Step::Digest, now);
    }

    /// Whether bucket hashes from `member` (at `addr`, arriving from `from`) answer a digest
    /// of ours: sent to the member, or to a seed at either address. Ends that step.
    pub(crate) fn take_digest(
        &mut self,
        member: Option<MemberId>,
        addr: SocketAddr,
        from: SocketAddr,
        now: Instant,
    ) -> bool {
        self.expire(now);
        let position = self.list.iter().position(|e| {
            e.step == Step::Digest
                && match e.peer {
                    Peer::Member(id) => Some(id) == member,
                    Peer::Seed(seed) => seed == addr || seed == from,
                }
        });
        position.map(|at| self.list.swap_remove(at)).is_some()
    }

    /// Whether a digest from `member` may be answered now: not if it was answered within
    /// `gap` already.
    pub(crate) fn may_answer_digest(&self, member: MemberId, now: Instant, gap: Duration) -> bool {
        !self.list.iter().any(|e| {
            e.peer == Peer::Member(member)
                && matches!(e.step, Step::Buckets { .. })
                && now - e.at < gap
        })
    }

    /// Step 2 taken: bucket hashes went to `member` in the datagram with `nonce`.
    pub(crate) fn buckets_sent(&mut self, member: MemberId, nonce: u64, now: Instant) {
        self.note(Peer::Member(member), Step::Buckets { nonce }, now);
    }

    /// Whether summaries from `member` follow our bucket hashes: they echo their nonce
    /// (`None`, from a version-1 peer, echoes nothing and is taken on trust).
    pub(crate) fn follows_buckets(
        &self,
        member: MemberId,
        echo: Option<u64>,
        now: Instant,
    ) -> bool {
        self.list.iter().any(|e| {
            e.peer == Peer::Member(member)
                && now - e.at < LIFETIME
                && matches!(e.step, Step::Buckets { nonce } if echo.is_none_or(|echo| echo == nonce))
        })
    }

    /// Step 3 taken: summaries went to `member` in the datagrams with nonces `first` to
    /// `last`.
    pub(crate) fn summaries_sent(&mut self, member: MemberId, first: u64, last: u64, now: Instant) {
        self.note(Peer::Member(member), Step::Summaries { first, last }, now);
    }

    /// Whether a want from `member` follows our summaries: it echoes one of their nonces.
    pub(crate) fn follows_summaries(
        &self,
        member: MemberId,
        echo: Option<u64>,
        now: Instant,
    ) -> bool {
        self.list.iter().any(|e| {
            e.peer == Peer::Member(member)
                && now - e.at < LIFETIME
                && matches!(e.step, Step::Summaries { first, last }
                    if echo.is_none_or(|echo| (first..=last).contains(&echo)))
        })
    }

    /// Forgets the exchanges with a member (it was reaped, and its id may be reused).
    pub(crate) fn forget(&mut self, member: MemberId) {
        self.list.retain(|e| e.peer != Peer::Member(member));
    }

    /// Records a step, replacing the peer's previous step of the same kind.
    fn note(&mut self, peer: Peer, step: Step, now: Instant) {
        self.expire(now);
        let same = |e: &Exchange| {
            e.peer == peer && core::mem::discriminant(&e.step) == core::mem::discriminant(&step)
        };
        if let Some(at) = self.list.iter().position(same) {
            self.list.swap_remove(at);
        }
        if self.list.len() == MAX_EXCHANGES {
            let oldest = self.list.iter().enumerate().min_by_key(|(_, e)| e.at).map(|(i, _)| i);
            if let Some(at) = oldest {
                self.list.swap_remove(at);
            }
        }
        self.list.push(Exchange { peer, step, at: now });
    }

    fn expire(&mut self, now: Instant) {
        self.list.retain(|e| now - e.at < LIFETIME);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: MemberId = MemberId(1);
    const B: MemberId = MemberId(2);

    #[test]
    fn answers_follow_requests_and_echo_their_nonces() {
        let mut exchanges = Exchanges::new();
        let t = Instant::from_secs(1);
        let seed: SocketAddr = "10.0.0.1:7000".parse().unwrap();
        let other: SocketAddr = "10.0.0.2:7000".parse().unwrap();
        // Buckets answer a digest only once, and only from its receiver.
        assert!(!exchanges.take_digest(Some(A), seed, seed, t));
        exchanges.digest_sent(Peer::Seed(seed), t);
        assert!(!exchanges.take_digest(Some(A), other, other, t));
        assert!(exchanges.take_digest(Some(A), other, seed, t));
        assert!(!exchanges.take_digest(Some(A), other, seed, t));
        // Summaries must echo our buckets' nonce.
        exchanges.buckets_sent(B, 77, t);
        assert!(exchanges.follows_buckets(B, Some(77), t));
        assert!(!exchanges.follows_buckets(B, Some(78), t));
        assert!(!exchanges.follows_buckets(A, Some(77), t));
        assert!(exchanges.follows_buckets(B, None, t));
        assert!(!exchanges.follows_buckets(B, Some(77), t + LIFETIME));
        // A want must echo one of our summaries.
        exchanges.summaries_sent(A, 10, 12, t);
        assert!(exchanges.follows_summaries(A, Some(11), t));
        assert!(!exchanges.follows_summaries(A, Some(13), t));
    }

    #[test]
    fn digests_are_answered_once_per_gap_and_the_table_stays_bounded() {
        let mut exchanges = Exchanges::new();
        let t = Instant::from_secs(1);
        let gap = Duration::from_millis(250);
        assert!(exchanges.may_answer_digest(A, t, gap));
        exchanges.buckets_sent(A, 1, t);
        assert!(!exchanges.may_answer_digest(A, t + Duration::from_millis(100), gap));
        assert!(exchanges.may_answer_digest(A, t + gap, gap));
        for i in 0..1000 {
            exchanges.buckets_sent(MemberId(i), u64::from(i), t);
        }
        assert_eq!(exchanges.list.len(), MAX_EXCHANGES);
        exchanges.forget(MemberId(999));
        assert!(!exchanges.follows_buckets(MemberId(999), None, t));
    }
}
