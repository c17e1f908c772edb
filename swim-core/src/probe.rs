//! Failure detection: SWIM's probe cycle.
//!
//! Every `ping_interval` the node pings the next member of a shuffled round-robin order
//! (reshuffled each pass, newcomers inserted at random positions ahead), so every member is
//! probed at least once per pass and detection time is bounded, unlike uniform random
//! picks. No ack within `ping_timeout` sends ping-reqs through `ping_req_count` other
//! available members, which relay the target's ack. No ack at all within
//! `ping_timeout + ping_req_timeout` makes the target suspect.

use alloc::vec::Vec;
use core::net::SocketAddr;
use core::time::Duration;
use smol_str::SmolStr;

use rand_core::Rng;

use crate::member::{MemberId, Members, State};
use crate::node::{Fact, Node, random_below};
use crate::status::{Status, StatusFilter};
use crate::time::Instant;
use crate::wire::Body;

/// Ping-reqs this node relays at once for others; more are ignored, which bounds the work an
/// authenticated peer can make it do.
const MAX_RELAYS: usize = 64;

/// Most helpers asked to probe one target indirectly (`ping_req_count`).
pub(crate) const MAX_HELPERS: usize = 8;

/// A probe this node started.
#[derive(Clone, Debug)]
struct Probe {
    seq: u32,
    target: MemberId,
    /// Guards against the id being reused for another member while the probe runs.
    name: SmolStr,
    /// Where the ping went: an ack from the target proves it receives there, nowhere else.
    addr: SocketAddr,
    indirect_at: Instant,
    fail_at: Instant,
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
}

/// A ping-req this node is serving: ping the target, relay its ack to the requester.
#[derive(Clone, Debug)]
struct Relay {
    seq: u32,
    /// Who asked, and its name (the id could be reused if it were reaped meanwhile).
    requester: MemberId,
    requester_name: SmolStr,
    requester_seq: u32,
    /// The answer limit of the requester when it asked.
    limit: usize,
    /// The member probed for the requester: only its ack is relayed.
    target: MemberId,
    expires: Instant,
    /// Lifeguard: when to nack the requester if the target stays silent (`None` once sent,
    /// or with nacks off).
    nack_at: Option<Instant>,
}

/// The probe order and the probes and relays in flight.
#[derive(Debug, Default)]
pub(crate) struct Prober {
    order: Vec<MemberId>,
    next: usize,
    in_flight: Vec<Probe>,
    relays: Vec<Relay>,
}

impl Prober {
    /// Adds a new member at a random position among those not yet probed this pass: appended,
    /// then swapped with a random one of them (the inside-out shuffle), so that a join of N
    /// members costs O(N) here, not O(N²) of shifting.
    pub(crate) fn insert(&mut self, id: MemberId, rng: &mut impl Rng) {
        let at = self.next + random_below(rng, self.order.len() - self.next + 1);
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

    /// A sequence number for a new probe or relay: random, so that nobody can predict the
    /// one an ack must carry (a key holder who could would answer for a silent member).
    fn next_seq(rng: &mut impl Rng) -> u32 {
        rng.next_u32()
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

impl<R: Rng> Node<R> {
    /// Pings the next member of the probe order.
    pub(crate) fn start_probe(&mut self, now: Instant) {
        let Some(id) = self.prober.next_target(&self.members, &mut self.rng) else { return };
        let Some(member) = self.members.get(id) else { return };
        let (name, addr) = (member.name_shared().clone(), member.addr());
        let seq = Prober::next_seq(&mut self.rng);
        // Lifeguard: a node that keeps failing probes waits longer before blaming others.
        let ping_timeout = self.scaled(self.config.ping_timeout);
        let ping_req_timeout = self.scaled(self.config.ping_req_timeout);
        self.prober.in_flight.push(Probe {
            seq,
            target: id,
            name: name.clone(),
            addr,
            indirect_at: now + ping_timeout,
            fail_at: now + ping_timeout + ping_req_timeout,
            indirect_sent: false,
            helpers: [None; MAX_HELPERS],
            nacks_expected: 0,
            nacks_received: 0,
        });
        self.counters.probes += 1;
        let root = self.members.digest().root();
        self.send_to(id, &Body::Ping { seq, root, target: &name }, Some(id), usize::MAX);
    }

    /// An ack from `sender`: completes one of our probes, or is relayed to whoever asked us
    /// to probe.
    pub(crate) fn handle_ack(&mut self, seq: u32, sender: MemberId) {
        let ours = self.prober.in_flight.iter().position(|p| p.seq == seq && p.answered_by(sender));
        if let Some(at) = ours {
            let probe = self.prober.in_flight.swap_remove(at);
            let still_there = self.members.get(sender).is_some_and(|m| m.addr() == probe.addr);
            if probe.target == sender && still_there {
                // It answered a ping sent to its address: it receives there.
                self.validate(sender);
            }
            self.lower_health();
            return;
        }
        let relay = self.prober.relays.iter().position(|r| r.seq == seq && r.target == sender);
        if let Some(at) = relay {
            let relay = self.prober.relays.swap_remove(at);
            let root = self.members.digest().root();
            self.reply_to_requester(&relay, &Body::Ack { seq: relay.requester_seq, root });
        }
    }

    /// Answers the member that asked for a relay, if it is still the member it was.
    fn reply_to_requester(&mut self, relay: &Relay, body: &Body<'_>) {
        let requester = relay.requester;
        if self.members.get(requester).is_some_and(|m| *m.name_shared() == relay.requester_name) {
            self.send_to(requester, body, Some(requester), relay.limit);
        }
    }

    /// Lifeguard: a helper could not reach the target either, but it did answer us.
    pub(crate) fn handle_nack(&mut self, seq: u32, sender: MemberId) {
        let probe = self.prober.in_flight.iter_mut().find(|p| p.seq == seq);
        if let Some(probe) = probe.filter(|p| p.helpers.contains(&Some(sender))) {
            probe.nacks_received += 1;
            self.counters.nacks_received += 1;
        }
    }

    /// `requester` asks us to probe `target` on its behalf; answers to it are at most
    /// `limit` bytes.
    pub(crate) fn handle_ping_req(
        &mut self,
        now: Instant,
        requester: MemberId,
        requester_seq: u32,
        target: &str,
        limit: usize,
    ) {
        if target == self.members.local().name() {
            // We are the target: answer for ourselves.
            let root = self.members.digest().root();
            self.send_to(requester, &Body::Ack { seq: requester_seq, root }, None, limit);
            return;
        }
        // Only a member we know, at the address we know: a ping-req cannot aim our pings
        // at an address of the requester's choosing.
        let Some(target_id) = self.members.id(target) else {
            if self.config.lifeguard.nacks {
                self.counters.nacks_sent += 1;
                let nack = Body::Nack { seq: requester_seq };
                self.send_to(requester, &nack, Some(requester), limit);
            }
            return;
        };
        if self.prober.relays.len() >= MAX_RELAYS {
            return;
        }
        let seq = Prober::next_seq(&mut self.rng);
        // The nack must reach the requester within its ping_req_timeout, so it uses the
        // plain ping_timeout, not one stretched by our own health score.
        let nack_at = self.config.lifeguard.nacks.then(|| now + self.config.ping_timeout);
        self.prober.relays.push(Relay {
            seq,
            requester,
            requester_name: self.name_of(requester),
            requester_seq,
            limit,
            target: target_id,
            expires: now + self.config.ping_req_timeout,
            nack_at,
        });
        let root = self.members.digest().root();
        let ping = Body::Ping { seq, root, target };
        if self.members.get(target_id).is_some_and(|m| m.is_validated()) {
            self.send_to(target_id, &ping, Some(target_id), usize::MAX);
        } else {
            // The requester chose the target; until the target has shown that it receives
            // at its address, it gets the ping alone, not a datagram full of gossip.
            self.send_bare(target_id, &ping);
        }
    }

    /// Sends ping-reqs for probes whose direct ping timed out, suspects targets of probes
    /// that failed, nacks for relays whose target stayed silent, and forgets expired relays.
    pub(crate) fn probe_timeouts(&mut self, now: Instant) {
        self.prober.relays.retain(|r| r.expires > now);
        for i in 0..self.prober.relays.len() {
            let relay = &mut self.prober.relays[i];
            if relay.nack_at.is_some_and(|at| at <= now) {
                relay.nack_at = None;
                let relay = relay.clone();
                self.counters.nacks_sent += 1;
                self.reply_to_requester(&relay, &Body::Nack { seq: relay.requester_seq });
            }
        }
        let mut i = 0;
        while i < self.prober.in_flight.len() {
            let probe = &mut self.prober.in_flight[i];
            if probe.fail_at <= now {
                let probe = self.prober.in_flight.swap_remove(i);
                self.probe_failed(now, &probe);
                continue;
            }
            if !probe.indirect_sent && probe.indirect_at <= now {
                probe.indirect_sent = true;
                let (seq, target, name) = (probe.seq, probe.target, probe.name.clone());
                let helpers = self.send_ping_reqs(seq, target, &name);
                let asked = helpers.iter().flatten().count() as u32;
                let probe = &mut self.prober.in_flight[i];
                probe.helpers = helpers;
                if self.config.lifeguard.nacks {
                    probe.nacks_expected = asked;
                }
                // A second direct ping with the same sequence number goes out with the
                // ping-reqs (memberlist sends a TCP ping here): on a lossy path, one lost
                // datagram then no longer suffices to fail a probe.
                let root = self.members.digest().root();
                let ping = Body::Ping { seq, root, target: &name };
                self.send_to(target, &ping, Some(target), usize::MAX);
            }
            i += 1;
        }
    }

    /// Asks `ping_req_count` other available members to probe `target`; returns which.
    fn send_ping_reqs(
        &mut self,
        seq: u32,
        target: MemberId,
        name: &str,
    ) -> [Option<MemberId>; MAX_HELPERS] {
        let mut asked = [None; MAX_HELPERS];
        let Some(target_addr) = self.members.get(target).map(|m| m.addr()) else { return asked };
        let mut helpers = core::mem::take(&mut self.scratch);
        let count = self.config.ping_req_count.min(MAX_HELPERS);
        self.sample(StatusFilter::AVAILABLE, count, &[target], &mut helpers);
        for (slot, &helper) in asked.iter_mut().zip(&helpers) {
            let body = Body::PingReq { seq, target: name, target_addr: Some(target_addr) };
            if self.send_to(helper, &body, Some(helper), usize::MAX).is_some() {
                self.counters.ping_reqs += 1;
                *slot = Some(helper);
            }
        }
        self.scratch = helpers;
        asked
    }

    /// No ack at all: the target becomes suspect (or, if it already is, we confirm it).
    fn probe_failed(&mut self, now: Instant, probe: &Probe) {
        // Lifeguard: every helper that did not even nack suggests the problem is ours.
        self.raise_health(1 + probe.nacks_expected.saturating_sub(probe.nacks_received));
        let Some(member) = self.members.get(probe.target) else { return };
        if *member.name_shared() != probe.name {
            return;
        }
        let incarnation = member.incarnation();
        let local = self.members.local().name_shared().clone();
        match member.status() {
            Status::Online => {
                self.counters.suspicions += 1;
                let state = State { incarnation, status: Status::Suspect };
                let fact = Fact { addr: None, accuser: Some(&local) };
                self.change_state(now, probe.target, state, fact, true);
            }
            Status::Suspect => self.confirm_suspicion(now, probe.target, incarnation, &local, true),
            Status::Offline | Status::Left => {}
        }
    }
}

impl<R: Rng> Node<R> {
    /// Lifeguard local health awareness: evidence that this node itself is slow.
    pub(crate) fn raise_health(&mut self, by: u32) {
        self.health = (self.health + by).min(self.config.lifeguard.max_health);
    }

    /// Lifeguard local health awareness: a probe succeeded.
    pub(crate) fn lower_health(&mut self) {
        self.health = self.health.saturating_sub(1);
    }

    /// `duration` stretched by the health score (Lifeguard: a struggling node slows down).
    pub(crate) fn scaled(&self, duration: Duration) -> Duration {
        duration.saturating_mul(self.health.saturating_add(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::Metadata;
    use core::net::SocketAddr;
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
}
