//! Applying what a node hears: the sender of each datagram and every record it carries.
//!
//! The rules (`docs/PROTOCOL.md`, section 5): a higher incarnation wins, and at equal
//! incarnation online < suspect < offline < left; only a member raises its own incarnation,
//! so only it can refute; restarts are recognised; tombstones keep stale facts out; the
//! table's limits hold; counters beyond the wall clock are refused. Each change moves the
//! member's deadlines (suspicion, reaping), the probe order, the gossip queue and the events
//! along with it.

use core::net::SocketAddr;

use rand_core::Rng;
use smol_str::SmolStr;

use super::Node;
use crate::counters::DropReason;
use crate::event::Event;
use crate::members::{Member, MemberId, Members, State, is_member_addr};
use crate::metadata::Metadata;
use crate::replay::ReplayWindow;
use crate::status::{Status, StatusFilter};
use crate::suspicion::Suspicion;
use crate::time::Instant;
use crate::wire::{Body, Flags, Packet, Record, Sender};

/// Without a wall clock: how far one fact may move a member's incarnation or metadata
/// version beyond what this node holds (0 for what it does not know).
const MAX_COUNTER_STEP: u64 = 1 << 32;

/// Where a state change came from, beyond the state itself.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Fact<'a> {
    /// The address the fact gives (applied only with a higher incarnation).
    pub(super) addr: Option<SocketAddr>,
    /// For a suspicion, who suspects.
    pub(super) accuser: Option<&'a str>,
    /// For a suspicion, that it stands for another member's offline report.
    pub(super) reported_offline: bool,
}

impl<R: Rng> Node<R> {
    /// Applies an admitted packet's facts: first its sender (first-hand evidence that it
    /// lives), then its records. Returns the sender, or why the packet must be dropped after
    /// all (an implausible sender, one that left, one the full table cannot take).
    pub(super) fn apply_packet(
        &mut self,
        now: Instant,
        packet: &Packet<'_>,
    ) -> Result<MemberId, DropReason> {
        // Stream messages have replay windows of their own (`streams`).
        let nonce = (!packet.header.flags.has(Flags::STREAM)).then_some(packet.header.nonce);
        let sender = self.note_sender(now, &packet.sender, nonce)?;
        // Facts learned by anti-entropy (or push-pull) are old news to the cluster: applied,
        // not re-gossiped, except what the sender says about itself, which is first-hand.
        let spread = !matches!(
            packet.body,
            Body::SyncEntries | Body::PushPull { .. } | Body::PushPullReply { .. }
        );
        for record in packet.records.iter() {
            let first_hand = record.name == packet.sender.name;
            self.apply_record(now, &record, spread || first_hand);
        }
        Ok(sender)
    }

    /// The wall clock (milliseconds since the Unix epoch) as of the latest input, if this
    /// node has one.
    fn wall_ms(&self) -> Option<u64> {
        self.wall.millis(self.clock.now())
    }

    /// `max_clock_skew` in milliseconds.
    fn skew_ms(&self) -> u64 {
        u64::try_from(self.config.max_clock_skew.as_millis()).unwrap_or(u64::MAX)
    }

    /// The name of member `id` (empty if it is gone).
    pub(super) fn name_of(&self, id: MemberId) -> SmolStr {
        self.members.get(id).map_or_else(SmolStr::default, |m| m.name().clone())
    }

    /// Learns from the authenticated sender of a datagram: a member it did not know, or a
    /// higher incarnation of one it knew. Returns the sender's id, or why the datagram must
    /// be dropped: a sender whose claims are implausible, that left for good, or that the
    /// full table cannot take (answering a sender without remembering its nonces would
    /// answer every replay).
    pub(super) fn note_sender(
        &mut self,
        now: Instant,
        sender: &Sender<'_>,
        nonce: Option<u64>,
    ) -> Result<MemberId, DropReason> {
        if !is_member_addr(sender.addr) {
            return Err(DropReason::Implausible);
        }
        let id = self.learn_sender(now, sender)?;
        if let (Some(member), Some(nonce)) = (self.members.get_mut(id), nonce) {
            member.replay.accept(nonce);
        }
        Ok(id)
    }

    /// Whether a datagram with `nonce` from `sender` is not a replay: new to the sender's
    /// window, or to its tombstone's memory.
    pub(super) fn is_fresh(&self, sender: &str, nonce: u64) -> bool {
        match self.members.by_name(sender) {
            Some(member) => member.replay.is_fresh(nonce),
            None => self
                .members
                .tombstone(sender)
                .is_none_or(|t| ReplayWindow::after(t.last_nonce).is_fresh(nonce)),
        }
    }

    /// Whether a counter (an incarnation or a metadata version) claimed by a fact is one an
    /// honest member could have reached, where this node holds `known`.
    ///
    /// Honest members count up by one per refutation or metadata change, so their counters
    /// stay far below the wall clock in milliseconds. A forged counter above this node's
    /// clock plus the skew is refused; below it, the member can always outrank it (by one,
    /// accepted at the latest a millisecond later), and time runs out for no one: a key
    /// holder cannot exhaust a member's counters, however many facts it sends. A node
    /// without a wall clock can only bound each step.
    pub(super) fn plausible_counter(&self, known: u64, claimed: u64) -> bool {
        match self.wall_ms() {
            Some(now) => claimed <= now.saturating_add(self.skew_ms()),
            None => claimed <= known.saturating_add(MAX_COUNTER_STEP),
        }
    }

    fn learn_sender(&mut self, now: Instant, sender: &Sender<'_>) -> Result<MemberId, DropReason> {
        if let Some(id) = self.members.id(sender.name) {
            let known = self.members.get(id).map_or(0, Member::incarnation);
            if !self.plausible_counter(known, sender.incarnation) {
                return Err(DropReason::Implausible);
            }
            if sender.incarnation > known {
                let state = State { incarnation: sender.incarnation, status: Status::Online };
                let fact = Fact { addr: Some(sender.addr), ..Fact::default() };
                self.change_state(now, id, state, fact, true);
            }
            return Ok(id);
        }
        let tombstone = self.members.tombstone(sender.name);
        let known = tombstone.map_or(0, |t| t.incarnation);
        if !self.plausible_counter(known, sender.incarnation) {
            return Err(DropReason::Implausible);
        }
        if let Some(tombstone) = tombstone
            && sender.incarnation <= tombstone.incarnation
        {
            if tombstone.status == Status::Left {
                // It left for good at that incarnation; coming back takes a higher one.
                return Err(DropReason::SenderLeft);
            }
            // A member we reaped, talking with an old incarnation: it restarted, or its
            // side of a partition never heard it was declared offline. Bring the entry
            // back as offline so replies carry that record and it refutes.
            if !self.has_room(sender.addr) {
                return Err(DropReason::TableFull);
            }
            let state = State { incarnation: tombstone.incarnation, status: Status::Offline };
            let id = self.members.insert(SmolStr::new(sender.name), sender.addr, state, now);
            let (name, incarnation, status) = (self.name_of(id), state.incarnation, state.status);
            self.events.push_back(Event::MemberJoined { name, incarnation, status });
            if let Some(member) = self.members.get_mut(id) {
                member.replay = ReplayWindow::after(tombstone.last_nonce);
            }
            self.members.set_deadline(id, Some(now + self.config.reap_timeout));
            self.prober.insert(id, &mut self.rng);
            return Ok(id);
        }
        if !self.has_room(sender.addr) {
            return Err(DropReason::TableFull);
        }
        let state = State { incarnation: sender.incarnation, status: Status::Online };
        Ok(self.insert_member(now, sender.name, sender.addr, state, None, true))
    }

    /// Whether the table can take one more member at `addr`: below `max_members`, and below
    /// `max_members_per_ip` at that IP (so that members invented at one host's address
    /// cannot aim every node's probes at it). Counts a refusal if not.
    pub(super) fn has_room(&mut self, addr: SocketAddr) -> bool {
        let limit = self.config.max_members_per_ip;
        let room = self.members.len() < self.config.max_members
            && self.members.count_at_ip(addr.ip(), limit) < limit;
        if !room {
            self.counters.members_refused += 1;
        }
        room
    }

    /// Applies one membership fact, if it is news.
    pub(super) fn apply_record(&mut self, now: Instant, record: &Record<'_>, spread: bool) {
        if record.name == self.members.local().name() {
            return self.apply_self_record(now, record);
        }
        if !is_member_addr(record.addr) {
            self.counters.facts_refused += 1;
            return;
        }
        let applied = match self.members.id(record.name) {
            Some(id) => self.apply_known_record(now, id, record, spread),
            None => self.apply_unknown_record(now, record, spread),
        };
        let Some(id) = applied else { return };
        if record.streams {
            self.note_streams(id, true);
        }
        self.apply_record_metadata(id, record, spread);
    }

    /// A record about a member in the table: a newer state, a confirmation of a suspicion,
    /// or the very fact we spread. `None` if the record is implausible.
    fn apply_known_record(
        &mut self,
        now: Instant,
        id: MemberId,
        record: &Record<'_>,
        spread: bool,
    ) -> Option<MemberId> {
        let member = self.members.get(id)?;
        if !self.plausible_counter(member.incarnation(), record.incarnation)
            || !self.plausible_counter(member.meta_version(), record.meta_version)
        {
            self.counters.facts_refused += 1;
            return None;
        }
        let newer = record.incarnation > member.incarnation()
            || (record.incarnation == member.incarnation()
                && record.status.precedence() > member.status().precedence());
        let fact = Fact { addr: Some(record.addr), accuser: record.accuser, ..Fact::default() };
        let state = State { incarnation: record.incarnation, status: record.status };
        if newer && record.status == Status::Offline {
            self.apply_offline_report(now, id, state, fact, spread);
        } else if newer {
            self.change_state(now, id, state, fact, spread);
        } else if let (Status::Suspect, Some(accuser)) = (record.status, record.accuser) {
            self.confirm_suspicion(now, id, record.incarnation, accuser, spread);
        } else if record.status != Status::Suspect
            && record.incarnation == member.incarnation()
            && record.status == member.status()
            && record.meta_version == member.meta_version()
        {
            // The sender holds exactly what we are spreading: the fact no longer needs us
            // as much (rumour mongering with feedback).
            let limit = self.retransmit_limit();
            self.gossip.heard_again(id, limit);
        }
        Some(id)
    }

    /// A record about a member not in the table: stored if it is available, plausible,
    /// newer than its tombstone and there is room.
    fn apply_unknown_record(
        &mut self,
        now: Instant,
        record: &Record<'_>,
        spread: bool,
    ) -> Option<MemberId> {
        let known = self.members.tombstone(record.name).map(|t| t.incarnation);
        if !self.plausible_counter(known.unwrap_or(0), record.incarnation)
            || !self.plausible_counter(0, record.meta_version)
        {
            self.counters.facts_refused += 1;
            return None;
        }
        let stale = known.is_some_and(|incarnation| record.incarnation <= incarnation);
        // Facts about failed members we never knew teach nothing worth storing.
        if stale || !record.status.is_available() || !self.has_room(record.addr) {
            return None;
        }
        let state = State { incarnation: record.incarnation, status: record.status };
        Some(self.insert_member(now, record.name, record.addr, state, record.accuser, spread))
    }

    /// The metadata a record carries (or announces), if newer than what we hold.
    fn apply_record_metadata(&mut self, id: MemberId, record: &Record<'_>, spread: bool) {
        let Some(metadata) = &record.metadata else {
            // Too large for a datagram, the metadata may be announced: fetched by `streams`.
            return self.note_announced(id, record, spread);
        };
        let known = self.members.get(id).map_or(u64::MAX, Member::meta_version);
        if record.meta_version <= known {
            return;
        }
        if metadata.encoded_len() > self.config.max_metadata_size {
            self.counters.metadata_refused += 1;
            return;
        }
        let previous = self.members.get(id).and_then(|m| m.metadata().cloned());
        let metadata = Metadata::from_entries(*metadata);
        self.members.set_metadata(id, metadata.clone(), record.meta_version);
        self.counters.updates_applied += 1;
        if spread {
            self.gossip.enqueue(id, true);
        }
        let (name, version) = (self.name_of(id), record.meta_version);
        self.events.push_back(Event::MetadataChanged { name, version, metadata, previous });
    }

    /// Another member reports `id` offline at `state`'s incarnation, a newer fact than ours.
    ///
    /// The Python package's rule against flapping: a member this node holds online becomes
    /// suspect first, with the shortest suspicion, and may refute meanwhile; more offline
    /// reports do not cut that short. Only a suspicion that names its accuser (a member
    /// whose probe failed) ends at once, so a crash is declared everywhere as soon as
    /// anywhere. Without the rule, the "offline" facts each side of a healed partition
    /// holds about the other reach the members of that other side, and win there over
    /// "online" at the same incarnation, about members their own side never lost contact
    /// with. Suspicions that stand for an offline report name no accuser, so they spread
    /// as what they are.
    fn apply_offline_report(
        &mut self,
        now: Instant,
        id: MemberId,
        state: State,
        fact: Fact<'_>,
        spread: bool,
    ) {
        let Some(member) = self.members.get(id) else { return };
        let status = member.status();
        let suspicion = self.members.suspicion(id).filter(|_| status == Status::Suspect);
        let accused = suspicion.is_some_and(|s| s.latest_accuser().is_some());
        if !matches!(status, Status::Online | Status::Suspect) || accused {
            return self.change_state(now, id, state, fact, spread);
        }
        if status == Status::Suspect && member.incarnation() == state.incarnation {
            // Suspect already, on nobody's named accusation: its time to refute runs, and
            // starts now if it did not stand for a report yet.
            if suspicion.is_some_and(|s| !s.is_reported_offline()) {
                self.counters.offline_reports_doubted += 1;
                self.doubt_offline_report(now, id);
            }
            return;
        }
        self.counters.offline_reports_doubted += 1;
        let suspect = State { incarnation: state.incarnation, status: Status::Suspect };
        let fact = Fact { reported_offline: true, accuser: None, ..fact };
        self.change_state(now, id, suspect, fact, spread);
    }

    /// The unaccused suspicion of `id` now stands for an offline report: it ends the
    /// shortest suspicion after it began, at the earliest now.
    fn doubt_offline_report(&mut self, now: Instant, id: MemberId) {
        let members = self.members.count(StatusFilter::AVAILABLE);
        let Some(suspicion) = self.members.suspicion_mut(id) else {
            return;
        };
        suspicion.take_offline_report();
        let deadline = suspicion.deadline(&self.config, members);
        self.members.set_deadline(id, Some(deadline.max(now)));
    }

    /// A fact about this node: refute accusations, and outrank facts from a previous life
    /// (a restart under the same name) so our current state and metadata win.
    pub(super) fn apply_self_record(&mut self, now: Instant, record: &Record<'_>) {
        if self.left {
            return;
        }
        let local = self.members.local();
        if !self.plausible_counter(local.incarnation(), record.incarnation)
            || !self.plausible_counter(local.meta_version(), record.meta_version)
        {
            self.counters.facts_refused += 1;
            return;
        }
        let accused = record.status != Status::Online && record.incarnation >= local.incarnation();
        // The cluster holds this name at another address: a previous life, before a restart
        // on a new address. Outrank it, or probes would go on to the old address.
        let moved = record.addr != local.addr() && record.incarnation >= local.incarnation();
        if accused || moved || record.incarnation > local.incarnation() {
            let incarnation = record.incarnation.saturating_add(1);
            self.members.set_state(
                Members::LOCAL,
                State { incarnation, status: Status::Online },
                now,
            );
            self.gossip.enqueue(Members::LOCAL, false);
            if accused {
                self.counters.refutations += 1;
                // Lifeguard: having to refute hints that we are the slow one.
                self.prober.raise_health(1, self.config.lifeguard.max_health);
                self.events.push_back(Event::Suspected {
                    accusation: record.status,
                    incarnation: record.incarnation,
                });
                self.events.push_back(Event::Refuted { incarnation });
            }
        }
        let local = self.members.local();
        let foreign_metadata = record.meta_version == local.meta_version()
            && (record
                .metadata
                .is_some_and(|m| local.metadata().is_none_or(|ours| ours.entries() != m))
                || record
                    .meta_hash
                    .is_some_and(|h| local.metadata().is_none_or(|ours| ours.hash() != h)));
        if record.meta_version > local.meta_version() || foreign_metadata {
            let metadata = self.local_metadata().clone();
            self.replace_local_metadata(now, metadata, record.meta_version.saturating_add(1));
        }
    }

    pub(super) fn insert_member(
        &mut self,
        now: Instant,
        name: &str,
        addr: SocketAddr,
        state: State,
        accuser: Option<&str>,
        spread: bool,
    ) -> MemberId {
        let id = self.members.insert(SmolStr::new(name), addr, state, now);
        self.counters.updates_applied += 1;
        self.prober.insert(id, &mut self.rng);
        if spread {
            self.gossip.enqueue(id, false);
        }
        let (name, incarnation, status) = (self.name_of(id), state.incarnation, state.status);
        self.events.push_back(Event::MemberJoined { name, incarnation, status });
        if state.status == Status::Suspect {
            self.start_suspicion(now, id, Fact { accuser, ..Fact::default() });
        }
        id
    }

    /// Moves a member to a newer state: events, deadlines and (if `spread`) gossip.
    pub(super) fn change_state(
        &mut self,
        now: Instant,
        id: MemberId,
        state: State,
        fact: Fact<'_>,
        spread: bool,
    ) {
        let Some(previous) = self.members.set_state(id, state, now) else {
            return;
        };
        // Only a newer incarnation may move a member (a restart on a new address), and not
        // to an IP that holds `max_members_per_ip` already.
        let from = self.members.get(id).map(Member::addr);
        let moved = fact.addr.filter(|addr| {
            state.incarnation > previous.incarnation && from.is_some_and(|from| from != *addr)
        });
        if let Some(addr) = moved {
            let limit = self.config.max_members_per_ip;
            let same_ip = from.is_some_and(|from| from.ip() == addr.ip());
            if same_ip || self.members.count_at_ip(addr.ip(), limit) < limit {
                self.members.set_addr(id, addr);
                // What it proved at its old address proves nothing at the new one.
                self.sync.exchanges.forget(id);
            } else {
                self.counters.members_refused += 1;
            }
        }
        self.counters.updates_applied += 1;
        if spread {
            self.gossip.enqueue(id, false);
        }
        let restarted_timer =
            state.status != previous.status || state.incarnation != previous.incarnation;
        if restarted_timer {
            self.members.set_suspicion(id, None);
            match state.status {
                Status::Online => self.members.set_deadline(id, None),
                Status::Suspect => self.start_suspicion(now, id, fact),
                Status::Offline | Status::Left => {
                    self.members.set_deadline(id, Some(now + self.config.reap_timeout));
                }
            }
        }
        if state.status == previous.status {
            return;
        }
        let name = self.name_of(id);
        let (incarnation, previous) = (state.incarnation, previous.status);
        self.events.push_back(match state.status {
            Status::Online => Event::MemberAlive { name, incarnation, previous },
            Status::Suspect => Event::MemberSuspect { name, incarnation, previous },
            Status::Offline => Event::MemberOffline { name, incarnation, previous },
            Status::Left => Event::MemberLeft { name, incarnation, previous },
        });
    }

    /// Suspects whose suspicion ran out become offline; offline and left members whose reap
    /// time came are forgotten.
    pub(super) fn expire_deadlines(&mut self, now: Instant) {
        while let Some(id) = self.members.pop_due(now) {
            let Some(member) = self.members.get(id) else { continue };
            let (status, incarnation) = (member.status(), member.incarnation());
            match status {
                Status::Suspect => {
                    let state = State { incarnation, status: Status::Offline };
                    self.change_state(now, id, state, Fact::default(), true);
                }
                Status::Offline | Status::Left => self.reap(now, id),
                Status::Online => {}
            }
        }
    }

    pub(super) fn reap(&mut self, now: Instant, id: MemberId) {
        self.gossip.remove(id);
        self.streams.forget(id);
        self.prober.remove(id);
        self.sync.exchanges.forget(id);
        if let Some(member) = self.members.remove(id, now + self.config.reap_timeout) {
            let (name, previous) = (member.name().clone(), member.status());
            self.events.push_back(Event::MemberReaped { name, previous });
        }
    }
    /// A member just became suspect: its suspicion starts now, with the fact's accuser as
    /// the first accuser, and runs for the longest timeout until confirmations shorten it
    /// (the shortest, if it stands for an offline report).
    pub(super) fn start_suspicion(&mut self, now: Instant, id: MemberId, fact: Fact<'_>) {
        let accuser = fact.accuser.filter(|a| self.is_accuser(id, a));
        let members = self.members.count(StatusFilter::AVAILABLE);
        let suspicion = if fact.reported_offline {
            Suspicion::on_offline_report(now)
        } else {
            Suspicion::new(now, accuser)
        };
        let deadline = suspicion.deadline(&self.config, members);
        self.members.set_suspicion(id, Some(suspicion));
        self.members.set_deadline(id, Some(deadline));
    }

    /// Lifeguard: another member independently suspects the same incarnation. A new
    /// confirmation shortens the suspicion and is passed on, so others count it too.
    pub(super) fn confirm_suspicion(
        &mut self,
        now: Instant,
        id: MemberId,
        incarnation: u64,
        accuser: &str,
        spread: bool,
    ) {
        if !self.is_accuser(id, accuser) {
            return;
        }
        let members = self.members.count(StatusFilter::AVAILABLE);
        let expected = self.config.lifeguard.confirmations;
        let Some(member) = self.members.get(id) else { return };
        if member.status() != Status::Suspect || member.incarnation() != incarnation {
            return;
        }
        let Some(suspicion) = self.members.suspicion_mut(id) else { return };
        if !suspicion.confirm(accuser, expected) {
            return;
        }
        let deadline = suspicion.deadline(&self.config, members);
        self.counters.confirmations += 1;
        self.members.set_deadline(id, Some(deadline.max(now)));
        if spread {
            self.gossip.enqueue(id, false);
        }
    }
    /// Whether `accuser` can confirm a suspicion of `suspect`: this node, or another member
    /// it knows as available. A name nobody answers to (empty, invented) confirms nothing,
    /// so a peer cannot shorten a suspicion by making up accusers.
    fn is_accuser(&self, suspect: MemberId, accuser: &str) -> bool {
        match self.members.id(accuser) {
            Some(id) => {
                id != suspect && self.members.get(id).is_some_and(|m| m.status().is_available())
            }
            None => false,
        }
    }
}
