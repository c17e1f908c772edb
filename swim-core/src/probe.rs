//! Failure detection: SWIM's probe cycle, and Lifeguard's local health.
//!
//! Every `ping_interval` the node pings the next member of a shuffled round-robin order
//! (reshuffled each pass, newcomers inserted at random positions ahead), so every member is
//! probed at least once per pass and detection time is bounded, unlike uniform random
//! picks. No ack within `ping_timeout` sends ping-reqs through `ping_req_count` other
//! available members, which relay the target's ack. No ack at all within
//! `ping_timeout + ping_req_timeout` makes the target suspect.
//!
//! The [`Prober`] keeps the order, the probes and relays in flight and the health score; it
//! tells the node what is due, and the node sends.

use alloc::vec::Vec;
use core::net::SocketAddr;
use core::time::Duration;
use smol_str::SmolStr;

use rand_core::Rng;

use crate::members::{MemberId, Members, reserve_per_member};
use crate::random::random_below;
use crate::time::Instant;

/// Ping-reqs this node relays at once for others; more are ignored, which bounds the work an
/// authenticated peer can make it do.
const MAX_RELAYS: usize = 64;

pub(crate) use crate::config::MAX_HELPERS;

/// A probe this node started.
#[derive(Clone, Debug)]
pub(crate) struct Probe {
    pub(crate) seq: u32,
    pub(crate) target: MemberId,
    /// Guards against the id being reused for another member while the probe runs.
    pub(crate) name: SmolStr,
    /// Where the ping went: an ack from the target proves it receives there, nowhere else.
    addr: SocketAddr,
    indirect_at: Instant,
    fail_at: Instant,
    /// How long the indirect phase waits (stretched by the health score at the start).
    indirect_wait: Duration,
    indirect_sent: bool,
    /// The helpers asked to relay the target's ack: only they, besides the target itself,
    /// may complete the probe.
    helpers: [Option<MemberId>; MAX_HELPERS],
    /// Lifeguard: nacks expected from helpers, and nacks received.
    nacks_expected: u32,
    nacks_received: u32,
}

impl Probe {
    /// Whether an ack from `sender` answers this probe: from the target, or relayed by one
    /// of its helpers. Anyone else's ack with the same sequence number is not evidence that
    /// the target lives.
    fn answered_by(&self, sender: MemberId) -> bool {
        sender == self.target || self.helpers.contains(&Some(sender))
    }

    /// Lifeguard: the expected nacks that did not come.
    pub(crate) fn missing_nacks(&self) -> u32 {
        self.nacks_expected.saturating_sub(self.nacks_received)
    }

    /// Lifeguard: how much this failed probe says about this node's own health. Helpers that
    /// answered with a nack reached us and could not reach the target either: the target
    /// is the problem, not us, so only the nacks that did not come count. Without helpers
    /// to tell (none asked, or nacks off), the failure itself counts once. (Lifeguard's
    /// paper, and memberlist's `awarenessDelta`.)
    pub(crate) fn health_penalty(&self) -> u32 {
        if self.nacks_expected > 0 { self.missing_nacks() } else { 1 }
    }
}

/// A ping-req this node is serving: ping the target, relay its ack to the requester.
#[derive(Clone, Debug)]
pub(crate) struct Relay {
    seq: u32,
    /// Who asked, and its name (the id could be reused if it were reaped meanwhile).
    pub(crate) requester: MemberId,
    pub(crate) requester_name: SmolStr,
    pub(crate) requester_seq: u32,
    /// The answer limit of the requester when it asked.
    pub(crate) limit: usize,
    /// The member probed for the requester: only its ack is relayed.
    target: MemberId,
    expires: Instant,
    /// Lifeguard: when to nack the requester if the target stays silent (`None` once sent,
    /// or with nacks off).
    nack_at: Option<Instant>,
}

/// What an ack means.
#[derive(Debug)]
pub(crate) enum Ack {
    /// It completed one of our probes; the target proved it receives at its address if it
    /// answered itself, from where it was pinged.
    Probed { validates: bool },
    /// It answers a ping we sent for someone else: relay it.
    Relayed(Relay),
    /// Nothing we asked for.
    Unexpected,
}

/// What the probe cycle wants done now.
#[derive(Debug)]
pub(crate) enum Due {
    /// A relayed target stayed silent: nack the requester (Lifeguard).
    Nack(Relay),
    /// A direct ping went unanswered: ask helpers, and ping once more.
    Indirect { seq: u32, target: MemberId, name: SmolStr },
    /// No ack at all: the target failed its probe.
    Failed(Probe),
}

/// The probe order, the probes and relays in flight, and the health score.
#[derive(Debug, Default)]
pub(crate) struct Prober {
    order: Vec<MemberId>,
    next: usize,
    in_flight: Vec<Probe>,
    relays: Vec<Relay>,
    /// Lifeguard local health score, 0 (healthy) to `lifeguard.max_health`.
    health: u32,
}

impl Prober {
    /// Adds a new member at a random position among those not yet probed this pass: appended,
    /// then swapped with a random one of them (the inside-out shuffle), so that a join of N
    /// members costs O(N) here, not O(N²) of shifting.
    pub(crate) fn insert(&mut self, id: MemberId, rng: &mut impl Rng) {
        let at = self.next + random_below(rng, self.order.len() - self.next + 1);
        reserve_per_member(&mut self.order, 1);
        self.order.push(id);
        let last = self.order.len() - 1;
        self.order.swap(at, last);
    }

    /// Forgets a member (reaped).
    pub(crate) fn remove(&mut self, id: MemberId) {
        if let Some(at) = self.order.iter().position(|x| *x == id) {
            self.order.remove(at);
            if at < self.next {
                self.next -= 1;
            }
        }
        self.in_flight.retain(|p| p.target != id);
    }

    /// Drops the probes and relays in flight (the node left).
    pub(crate) fn clear(&mut self) {
        self.in_flight.clear();
        self.relays.clear();
    }

    /// The earliest probe or relay deadline.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let probes =
            self.in_flight.iter().map(|p| if p.indirect_sent { p.fail_at } else { p.indirect_at });
        let relays = self.relays.iter().map(|r| r.nack_at.unwrap_or(r.expires).min(r.expires));
        probes.chain(relays).min()
    }

    /// The Lifeguard health score: 0 when healthy.
    pub(crate) fn health(&self) -> u32 {
        self.health
    }

    /// Lifeguard: evidence that this node itself is slow (up to `max`).
    pub(crate) fn raise_health(&mut self, by: u32, max: u32) {
        self.health = self.health.saturating_add(by).min(max);
    }

    /// `duration` stretched by the health score (Lifeguard: a struggling node slows down).
    pub(crate) fn scaled(&self, duration: Duration) -> Duration {
        duration.saturating_mul(self.health.saturating_add(1))
    }

    /// Starts probing the next available member of the order (its ping times out after
    /// `ping_timeout`, the whole probe after `ping_req_timeout` more, both stretched by the
    /// health score); returns it with the probe's sequence number.
    pub(crate) fn start(
        &mut self,
        now: Instant,
        members: &Members,
        rng: &mut impl Rng,
        (ping_timeout, ping_req_timeout): (Duration, Duration),
    ) -> Option<(MemberId, SmolStr, u32)> {
        let id = self.next_target(members, rng)?;
        let member = members.get(id)?;
        let (name, addr) = (member.name().clone(), member.addr());
        let seq = next_seq(rng);
        // Lifeguard: a node that keeps failing probes waits longer before blaming others.
        let ping_timeout = self.scaled(ping_timeout);
        let ping_req_timeout = self.scaled(ping_req_timeout);
        self.in_flight.push(Probe {
            seq,
            target: id,
            name: name.clone(),
            addr,
            indirect_at: now + ping_timeout,
            fail_at: now + ping_timeout + ping_req_timeout,
            indirect_wait: ping_req_timeout,
            indirect_sent: false,
            helpers: [None; MAX_HELPERS],
            nacks_expected: 0,
            nacks_received: 0,
        });
        Some((id, name, seq))
    }

    /// An ack from `sender` with `seq`.
    pub(crate) fn ack(&mut self, seq: u32, sender: MemberId, members: &Members) -> Ack {
        let ours = self.in_flight.iter().position(|p| p.seq == seq && p.answered_by(sender));
        if let Some(at) = ours {
            let probe = self.in_flight.swap_remove(at);
            let still_there = members.get(sender).is_some_and(|m| m.addr() == probe.addr);
            // Lifeguard: a probe succeeded.
            self.health = self.health.saturating_sub(1);
            return Ack::Probed { validates: probe.target == sender && still_there };
        }
        match self.relays.iter().position(|r| r.seq == seq && r.target == sender) {
            Some(at) => Ack::Relayed(self.relays.swap_remove(at)),
            None => Ack::Unexpected,
        }
    }

    /// Lifeguard: a helper could not reach the target either, but it did answer us.
    /// Returns whether the nack was one we expected.
    pub(crate) fn nack(&mut self, seq: u32, sender: MemberId) -> bool {
        let probe = self.in_flight.iter_mut().find(|p| p.seq == seq);
        match probe.filter(|p| p.helpers.contains(&Some(sender))) {
            Some(probe) => {
                probe.nacks_received += 1;
                true
            }
            None => false,
        }
    }

    /// Serves a ping-req of `requester` (whose answers may weigh `limit`) about `target`:
    /// the sequence number of the ping to send the target, or `None` if too many relays are
    /// in flight. The nack, if `nack_after` is given, is due that long after now.
    pub(crate) fn relay(
        &mut self,
        now: Instant,
        (requester, requester_name, requester_seq, limit): (MemberId, SmolStr, u32, usize),
        target: MemberId,
        (expires_after, nack_after): (Duration, Option<Duration>),
        rng: &mut impl Rng,
    ) -> Option<u32> {
        if self.relays.len() >= MAX_RELAYS {
            return None;
        }
        let seq = next_seq(rng);
        self.relays.push(Relay {
            seq,
            requester,
            requester_name,
            requester_seq,
            limit,
            target,
            expires: now + expires_after,
            nack_at: nack_after.map(|after| now + after),
        });
        Some(seq)
    }

    /// Forgets relays that expired by `now`; call before taking what is due.
    pub(crate) fn expire_relays(&mut self, now: Instant) {
        self.relays.retain(|r| r.expires > now);
    }

    /// The next thing due at `now`, if any: nacks first, then probes in order.
    pub(crate) fn next_due(&mut self, now: Instant) -> Option<Due> {
        if let Some(relay) = self.relays.iter_mut().find(|r| r.nack_at.is_some_and(|at| at <= now))
        {
            relay.nack_at = None;
            return Some(Due::Nack(relay.clone()));
        }
        for i in 0..self.in_flight.len() {
            let probe = &mut self.in_flight[i];
            if !probe.indirect_sent && probe.indirect_at <= now {
                probe.indirect_sent = true;
                // Woken past the whole probe: the indirect phase never ran, so it gets its
                // full wait from now.
                probe.fail_at = probe.fail_at.max(now + probe.indirect_wait);
                let (seq, target, name) = (probe.seq, probe.target, probe.name.clone());
                return Some(Due::Indirect { seq, target, name });
            }
            if probe.fail_at <= now {
                return Some(Due::Failed(self.in_flight.swap_remove(i)));
            }
        }
        None
    }

    /// The helpers asked to relay the ack of probe `seq`; with nacks on, one nack is
    /// expected from each.
    pub(crate) fn asked(
        &mut self,
        seq: u32,
        helpers: [Option<MemberId>; MAX_HELPERS],
        nacks: bool,
    ) {
        if let Some(probe) = self.in_flight.iter_mut().find(|p| p.seq == seq) {
            probe.helpers = helpers;
            if nacks {
                probe.nacks_expected = helpers.iter().flatten().count() as u32;
            }
        }
    }

    /// The next available member in the order, reshuffling after each full pass.
    fn next_target(&mut self, members: &Members, rng: &mut impl Rng) -> Option<MemberId> {
        for _ in 0..=self.order.len() {
            if self.next >= self.order.len() {
                for i in (1..self.order.len()).rev() {
                    let j = random_below(rng, i + 1);
                    self.order.swap(i, j);
                }
                self.next = 0;
            }
            let id = *self.order.get(self.next)?;
            self.next += 1;
            let available = members.get(id).is_some_and(|m| m.status().is_available());
            if available && !self.in_flight.iter().any(|p| p.target == id) {
                return Some(id);
            }
        }
        None
    }
}

/// A sequence number for a new probe or relay: random, so that nobody can predict the one
/// an ack must carry (a key holder who could would answer for a silent member).
fn next_seq(rng: &mut impl Rng) -> u32 {
    rng.next_u32()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::members::State;
    use crate::metadata::Metadata;
    use crate::status::Status;
    use rand_chacha::ChaCha8Rng;
    use rand_core::SeedableRng;

    fn table(n: usize) -> (Members, Vec<MemberId>) {
        let addr = SocketAddr::from(([127, 0, 0, 1], 1));
        let mut members = Members::new(SmolStr::new("local"), addr, Metadata::new(), Instant::ZERO);
        let ids = (0..n)
            .map(|i| {
                let name = alloc::format!("m{i}");
                let state = State { incarnation: 0, status: Status::Online };
                members.insert(SmolStr::new(name.as_str()), addr, state, Instant::ZERO)
            })
            .collect();
        (members, ids)
    }

    #[test]
    fn every_member_is_probed_once_per_pass() {
        let (members, ids) = table(10);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut prober = Prober::default();
        for id in &ids {
            prober.insert(*id, &mut rng);
        }
        for _pass in 0..3 {
            let mut seen: Vec<MemberId> =
                (0..10).map(|_| prober.next_target(&members, &mut rng).unwrap()).collect();
            seen.sort();
            assert_eq!(seen, ids);
        }
    }

    #[test]
    fn skips_unavailable_and_removed_members() {
        let (mut members, ids) = table(3);
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let mut prober = Prober::default();
        for id in &ids {
            prober.insert(*id, &mut rng);
        }
        members.set_state(ids[0], State { incarnation: 0, status: Status::Offline }, Instant::ZERO);
        prober.remove(ids[1]);
        for _ in 0..5 {
            assert_eq!(prober.next_target(&members, &mut rng), Some(ids[2]));
        }
        prober.remove(ids[2]);
        assert_eq!(prober.next_target(&members, &mut rng), None);
    }

    #[test]
    fn a_probe_goes_indirect_then_fails_and_only_the_target_or_its_helpers_answer_it() {
        let (members, ids) = table(3);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut prober = Prober::default();
        prober.insert(ids[0], &mut rng);
        let timeouts = (Duration::from_millis(300), Duration::from_millis(900));
        let t = Instant::from_secs(1);
        let (target, _, seq) = prober.start(t, &members, &mut rng, timeouts).unwrap();
        assert!(prober.next_due(t).is_none());
        let Some(Due::Indirect { seq: s, .. }) = prober.next_due(t + timeouts.0) else {
            panic!("the direct ping timed out")
        };
        assert_eq!(s, seq);
        prober.asked(seq, [Some(ids[1]), None, None, None, None, None, None, None], true);
        assert!(matches!(prober.ack(seq, ids[2], &members), Ack::Unexpected));
        assert!(prober.nack(seq, ids[1]));
        assert!(!prober.nack(seq, ids[2]));
        let Some(Due::Failed(probe)) = prober.next_due(t + timeouts.0 + timeouts.1) else {
            panic!("the probe failed")
        };
        assert_eq!((probe.target, probe.missing_nacks(), probe.health_penalty()), (target, 0, 0));
        assert!(prober.next_deadline().is_none());
    }

    #[test]
    fn a_probe_woken_past_its_deadline_runs_its_indirect_phase_first() {
        let (members, ids) = table(3);
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let mut prober = Prober::default();
        prober.insert(ids[0], &mut rng);
        let timeouts = (Duration::from_millis(300), Duration::from_millis(900));
        let t = Instant::from_secs(1);
        let (_, _, seq) = prober.start(t, &members, &mut rng, timeouts).unwrap();
        // Paused for 3 s: both deadlines passed unseen.
        let woke = t + Duration::from_secs(3);
        let Some(Due::Indirect { seq: s, .. }) = prober.next_due(woke) else {
            panic!("the indirect phase is owed first")
        };
        assert_eq!(s, seq);
        assert!(prober.next_due(woke).is_none(), "not failed at once");
        assert_eq!(prober.next_deadline(), Some(woke + timeouts.1));
        // Its ack, waiting in the socket, still completes it.
        assert!(matches!(prober.ack(seq, ids[0], &members), Ack::Probed { validates: true }));
        assert!(prober.next_deadline().is_none());
    }

    #[test]
    fn a_failed_probe_costs_health_only_for_nacks_that_did_not_come() {
        let (members, ids) = table(4);
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let timeouts = (Duration::from_millis(300), Duration::from_millis(900));
        let helpers = [Some(ids[1]), Some(ids[2]), None, None, None, None, None, None];
        let t = Instant::from_secs(1);
        let fail = t + timeouts.0 + timeouts.1;
        // (nacks on, nacks received) -> penalty
        for (nacks, received, penalty) in [(true, 2, 0), (true, 1, 1), (true, 0, 2), (false, 0, 1)]
        {
            let mut prober = Prober::default();
            prober.insert(ids[0], &mut rng);
            let (_, _, seq) = prober.start(t, &members, &mut rng, timeouts).unwrap();
            assert!(matches!(prober.next_due(t + timeouts.0), Some(Due::Indirect { .. })));
            prober.asked(seq, helpers, nacks);
            for helper in &ids[1..1 + received] {
                assert!(prober.nack(seq, *helper));
            }
            let Some(Due::Failed(probe)) = prober.next_due(fail) else { panic!("failed") };
            assert_eq!(probe.health_penalty(), penalty, "nacks {nacks}, received {received}");
        }
    }
}
