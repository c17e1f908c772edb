//! Anti-entropy exchanges in progress, so that a node answers only what follows from its
//! own messages.
//!
//! An exchange is a conversation: A sends a digest, B answers with bucket hashes, A lists
//! its entries of the differing buckets, B sends what A lacks and asks for what it lacks,
//! A sends that. Every answer after the first can be large (dozens of datagrams), so each
//! is given only to a peer that proved it receives at its address: its request echoes the
//! random cookie of the step this node last sent it, to that address. A request that
//! follows nothing this node sent, comes from another address, or echoes the wrong cookie
//! is not answered, so a holder of the key cannot aim the bulk of an exchange at a victim's
//! address; and each step's answers together are capped, however many requests echo it.
//! The first answer (bucket hashes, at most 1 KiB) is given at most once per peer per half
//! sync interval.

use alloc::vec::Vec;
use core::net::SocketAddr;
use core::time::Duration;

use crate::members::MemberId;
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

/// A step that the peer's next request must follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Sent a digest (step 1).
    Digest,
    /// Answered a digest with bucket hashes (step 2).
    Buckets,
    /// Listed its entries (step 3).
    Summaries,
}

#[derive(Clone, Copy, Debug)]
struct Exchange {
    peer: Peer,
    /// Where the step went: only a request from there follows it.
    addr: SocketAddr,
    step: Step,
    /// What the request must echo.
    cookie: u32,
    /// Datagrams still to be sent in answer to requests that follow this step.
    budget: usize,
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

    /// Step 1 taken: a digest went to `peer` at `addr`.
    pub(crate) fn digest_sent(&mut self, peer: Peer, addr: SocketAddr, now: Instant) {
        self.note(Exchange { peer, addr, step: Step::Digest, cookie: 0, budget: 0, at: now });
    }

    /// Whether bucket hashes from `member`, whose datagram says it is at `addr` and came
    /// from `from`, answer a digest of ours: sent to the member at that address, or to a
    /// seed at either address. Ends that step.
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
                    Peer::Member(id) => Some(id) == member && e.addr == addr,
                    Peer::Seed(seed) => seed == addr || seed == from,
                }
        });
        position.map(|at| self.list.swap_remove(at)).is_some()
    }

    /// Whether a digest from `member` may be answered now: not if it was answered within
    /// `gap` already.
    pub(crate) fn may_answer_digest(&self, member: MemberId, now: Instant, gap: Duration) -> bool {
        !self
            .list
            .iter()
            .any(|e| e.peer == Peer::Member(member) && e.step == Step::Buckets && now - e.at < gap)
    }

    /// Step 2 or 3 taken towards `member` at `addr`: what follows must echo `cookie`, and is
    /// answered with at most `budget` datagrams in all.
    pub(crate) fn sent(
        &mut self,
        member: MemberId,
        addr: SocketAddr,
        step: Step,
        cookie: u32,
        budget: usize,
        now: Instant,
    ) {
        self.note(Exchange { peer: Peer::Member(member), addr, step, cookie, budget, at: now });
    }

    /// Whether a request from `member` at `addr` follows our `step`: it echoes the step's
    /// cookie (`None`, from a version-1 peer, echoes nothing: the caller decides whether to
    /// trust it).
    pub(crate) fn follows(
        &self,
        member: MemberId,
        addr: SocketAddr,
        step: Step,
        echo: Option<u32>,
        now: Instant,
    ) -> bool {
        self.find(member, addr, step, echo, now).is_some()
    }

    /// Datagrams left to answer requests that follow the step (0 if they follow nothing).
    pub(crate) fn budget(
        &self,
        member: MemberId,
        addr: SocketAddr,
        step: Step,
        echo: Option<u32>,
        now: Instant,
    ) -> usize {
        self.find(member, addr, step, echo, now).map_or(0, |at| self.list[at].budget)
    }

    /// Takes `sent` datagrams from the budget of the step the request followed.
    pub(crate) fn spend(
        &mut self,
        member: MemberId,
        addr: SocketAddr,
        step: Step,
        echo: Option<u32>,
        sent: usize,
        now: Instant,
    ) {
        if let Some(at) = self.find(member, addr, step, echo, now) {
            let exchange = &mut self.list[at];
            exchange.budget = exchange.budget.saturating_sub(sent);
        }
    }

    /// Forgets the exchanges with a member (it was reaped, or moved: its id may be reused,
    /// or its new address has proved nothing).
    pub(crate) fn forget(&mut self, member: MemberId) {
        self.list.retain(|e| e.peer != Peer::Member(member));
    }

    fn find(
        &self,
        member: MemberId,
        addr: SocketAddr,
        step: Step,
        echo: Option<u32>,
        now: Instant,
    ) -> Option<usize> {
        self.list.iter().position(|e| {
            e.peer == Peer::Member(member)
                && e.addr == addr
                && e.step == step
                && now - e.at < LIFETIME
                && echo.is_none_or(|echo| echo == e.cookie)
        })
    }

    /// Records a step, replacing the peer's previous step of the same kind.
    fn note(&mut self, exchange: Exchange) {
        self.expire(exchange.at);
        if let Some(at) =
            self.list.iter().position(|e| e.peer == exchange.peer && e.step == exchange.step)
        {
            self.list.swap_remove(at);
        }
        if self.list.len() == MAX_EXCHANGES {
            let oldest = self.list.iter().enumerate().min_by_key(|(_, e)| e.at).map(|(i, _)| i);
            if let Some(at) = oldest {
                self.list.swap_remove(at);
            }
        }
        self.list.push(exchange);
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

    fn at(port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], port))
    }

    #[test]
    fn answers_follow_requests_from_the_same_address_and_echo_their_cookies() {
        let mut exchanges = Exchanges::new();
        let t = Instant::from_secs(1);
        let (seed, other) = (at(7000), at(7001));
        // Buckets answer a digest only once, and only from its receiver.
        assert!(!exchanges.take_digest(Some(A), seed, seed, t));
        exchanges.digest_sent(Peer::Seed(seed), seed, t);
        assert!(!exchanges.take_digest(Some(A), other, other, t));
        assert!(exchanges.take_digest(Some(A), other, seed, t));
        assert!(!exchanges.take_digest(Some(A), other, seed, t));
        exchanges.digest_sent(Peer::Member(B), other, t);
        assert!(!exchanges.take_digest(Some(B), seed, other, t), "from another address");
        // Summaries must echo our buckets' cookie, from the address they went to.
        exchanges.sent(B, other, Step::Buckets, 77, 32, t);
        assert!(exchanges.follows(B, other, Step::Buckets, Some(77), t));
        assert!(!exchanges.follows(B, other, Step::Buckets, Some(78), t));
        assert!(!exchanges.follows(B, seed, Step::Buckets, Some(77), t));
        assert!(!exchanges.follows(A, other, Step::Buckets, Some(77), t));
        assert!(exchanges.follows(B, other, Step::Buckets, None, t));
        assert!(!exchanges.follows(B, other, Step::Buckets, Some(77), t + LIFETIME));
        assert!(!exchanges.follows(B, other, Step::Summaries, Some(77), t));
    }

    #[test]
    fn a_step_answers_at_most_its_budget_however_often_it_is_echoed() {
        let mut exchanges = Exchanges::new();
        let t = Instant::from_secs(1);
        exchanges.sent(A, at(1), Step::Buckets, 5, 32, t);
        exchanges.spend(A, at(1), Step::Buckets, Some(5), 20, t);
        assert_eq!(exchanges.budget(A, at(1), Step::Buckets, Some(5), t), 12);
        exchanges.spend(A, at(1), Step::Buckets, Some(5), 20, t);
        assert_eq!(exchanges.budget(A, at(1), Step::Buckets, Some(5), t), 0);
        assert_eq!(exchanges.budget(A, at(1), Step::Buckets, Some(6), t), 0);
    }

    #[test]
    fn digests_are_answered_once_per_gap_and_the_table_stays_bounded() {
        let mut exchanges = Exchanges::new();
        let t = Instant::from_secs(1);
        let gap = Duration::from_millis(250);
        assert!(exchanges.may_answer_digest(A, t, gap));
        exchanges.sent(A, at(1), Step::Buckets, 1, 32, t);
        assert!(!exchanges.may_answer_digest(A, t + Duration::from_millis(100), gap));
        assert!(exchanges.may_answer_digest(A, t + gap, gap));
        for i in 0..1000 {
            exchanges.sent(MemberId(i), at(1), Step::Buckets, i, 32, t);
        }
        assert_eq!(exchanges.list.len(), MAX_EXCHANGES);
        exchanges.forget(MemberId(999));
        assert!(!exchanges.follows(MemberId(999), at(1), Step::Buckets, None, t));
    }
}
