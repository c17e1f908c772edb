//! The probe cycle as the node drives it: the [`Prober`](crate::probe::Prober) says whom to
//! ping and what is due; the node sends the pings, ping-reqs, relays and nacks, and turns a
//! failed probe into a suspicion.

use rand_core::Rng;

use super::Node;
use super::facts::Fact;
use crate::members::{MemberId, State};
use crate::probe::{Ack, Due, MAX_HELPERS, Probe, Relay};
use crate::status::{Status, StatusFilter};
use crate::time::Instant;
use crate::wire::Body;

impl<R: Rng> Node<R> {
    /// Pings the next member of the probe order.
    pub(super) fn start_probe(&mut self, now: Instant) {
        let timeouts = (self.config.ping_timeout, self.config.ping_req_timeout);
        let started = self.prober.start(now, &self.members, &mut self.rng, timeouts);
        let Some((id, name, seq)) = started else { return };
        self.counters.probes += 1;
        let root = self.members.digest().root();
        self.send_to(id, &Body::Ping { seq, root, target: &name }, Some(id), usize::MAX);
    }

    /// An ack from `sender`: completes one of our probes, or is relayed to whoever asked us
    /// to probe.
    pub(super) fn handle_ack(&mut self, seq: u32, sender: MemberId) {
        match self.prober.ack(seq, sender, &self.members) {
            // It answered a ping sent to its address: it receives there.
            Ack::Probed { validates: true } => self.validate(sender),
            Ack::Probed { validates: false } | Ack::Unexpected => {}
            Ack::Relayed(relay) => {
                let root = self.members.digest().root();
                self.reply_to_requester(&relay, &Body::Ack { seq: relay.requester_seq, root });
            }
        }
    }

    /// Lifeguard: a helper could not reach the target either, but it did answer us.
    pub(super) fn handle_nack(&mut self, seq: u32, sender: MemberId) {
        if self.prober.nack(seq, sender) {
            self.counters.nacks_received += 1;
        }
    }

    /// `requester` asks us to probe `target` on its behalf; answers to it are at most
    /// `limit` bytes.
    pub(super) fn handle_ping_req(
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
        let asked_by = (requester, self.name_of(requester), requester_seq, limit);
        // The nack must reach the requester within its ping_req_timeout, so it uses the
        // plain ping_timeout, not one stretched by our own health score.
        let nack_after = self.config.lifeguard.nacks.then_some(self.config.ping_timeout);
        let timeouts = (self.config.ping_req_timeout, nack_after);
        let Some(seq) = self.prober.relay(now, asked_by, target_id, timeouts, &mut self.rng) else {
            return;
        };
        let root = self.members.digest().root();
        let ping = Body::Ping { seq, root, target };
        if self.members.get(target_id).is_some_and(|m| m.is_validated()) {
            self.send_to(target_id, &ping, Some(target_id), usize::MAX);
        } else {
            // The requester chose the target; until the target has shown that it receives
            // at its address, it gets the ping alone, not a datagram full of gossip.
            self.send_bare(target_id, &ping, usize::MAX);
        }
    }

    /// Sends nacks for relays whose target stayed silent, ping-reqs for probes whose direct
    /// ping timed out, and suspects targets of probes that failed.
    pub(super) fn probe_timeouts(&mut self, now: Instant) {
        self.prober.expire_relays(now);
        while let Some(due) = self.prober.next_due(now) {
            match due {
                Due::Nack(relay) => {
                    self.counters.nacks_sent += 1;
                    self.reply_to_requester(&relay, &Body::Nack { seq: relay.requester_seq });
                }
                Due::Indirect { seq, target, name } => {
                    // It may have forgotten us (restarted, or reaped us): from now on it is
                    // sent our full name until it shows again that it holds us.
                    if let Some(member) = self.members.get_mut(target) {
                        member.may_not_know_us();
                    }
                    let helpers = self.send_ping_reqs(seq, target, &name);
                    self.prober.asked(seq, helpers, self.config.lifeguard.nacks);
                    // A second direct ping with the same sequence number goes out with the
                    // ping-reqs (memberlist sends a TCP ping here): on a lossy path, one
                    // lost datagram then no longer suffices to fail a probe.
                    let root = self.members.digest().root();
                    let ping = Body::Ping { seq, root, target: &name };
                    self.send_to(target, &ping, Some(target), usize::MAX);
                    // And over a stream, if the target speaks streams: a member whose UDP
                    // is blocked is not suspected while its streams get through.
                    self.stream_ping(target, seq);
                }
                Due::Failed(probe) => self.probe_failed(now, &probe),
            }
        }
    }

    /// Answers the member that asked for a relay, if it is still the member it was.
    fn reply_to_requester(&mut self, relay: &Relay, body: &Body<'_>) {
        let requester = relay.requester;
        if self.members.get(requester).is_some_and(|m| *m.name() == relay.requester_name) {
            self.send_to(requester, body, Some(requester), relay.limit);
        }
    }

    /// Asks `ping_req_count` other online members to probe `target`; returns which.
    fn send_ping_reqs(
        &mut self,
        seq: u32,
        target: MemberId,
        name: &str,
    ) -> [Option<MemberId>; MAX_HELPERS] {
        let mut asked = [None; MAX_HELPERS];
        let Some(target_addr) = self.members.get(target).map(|m| m.addr()) else { return asked };
        let count = self.config.ping_req_count.min(MAX_HELPERS);
        // Helpers among the members believed online (as memberlist): a suspect helper is
        // likely unreachable itself, and its missing nack would count against our health.
        let helpers = self.members.sample(
            &mut self.rng,
            StatusFilter::ONLINE,
            count,
            &[target],
            &mut self.sampling,
        );
        for (slot, helper) in asked.iter_mut().zip(helpers.iter()) {
            let body = Body::PingReq { seq, target: name, target_addr: Some(target_addr) };
            if self.send_to(helper, &body, Some(helper), usize::MAX).is_some() {
                self.counters.ping_reqs += 1;
                *slot = Some(helper);
            }
        }
        asked
    }

    /// No ack at all: the target becomes suspect (or, if it already is, we confirm it).
    fn probe_failed(&mut self, now: Instant, probe: &Probe) {
        // Lifeguard: every helper that did not even nack suggests the problem is ours.
        let max_health = self.config.lifeguard.max_health;
        self.prober.raise_health(probe.health_penalty(), max_health);
        let Some(member) = self.members.get(probe.target) else { return };
        if *member.name() != probe.name {
            return;
        }
        let incarnation = member.incarnation();
        let local = self.members.local().name().clone();
        match member.status() {
            Status::Online => {
                self.counters.suspicions += 1;
                let state = State { incarnation, status: Status::Suspect };
                let fact = Fact { accuser: Some(&local), ..Fact::default() };
                self.change_state(now, probe.target, state, fact, true);
                if self.config.lifeguard.buddy {
                    // Buddy system: the suspect hears first (its record leads the ping), so
                    // a member alive after all refutes at once, and its ack brings the
                    // refutation back before this node has spread the suspicion far.
                    let root = self.members.digest().root();
                    let ping = Body::Ping { seq: probe.seq, root, target: &probe.name };
                    self.send_to(probe.target, &ping, Some(probe.target), usize::MAX);
                }
            }
            Status::Suspect => self.confirm_suspicion(now, probe.target, incarnation, &local, true),
            Status::Offline | Status::Left => {}
        }
    }
}
