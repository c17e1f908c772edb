//! Metadata too large for a datagram: records announce its version and hash, and a node
//! that lacks that version fetches it over a stream, from the member itself (which always
//! holds its newest metadata) or, if that member is not available or does not answer, from
//! the member that announced it (which held that version when it said so). A member that
//! left a fetch of its own metadata unanswered is not asked again for that version while
//! others announce it.

use alloc::vec::Vec;

use rand_core::Rng;

use super::Node;
use crate::counters::DropReason;
use crate::members::{Member, MemberId, Members};
use crate::streams::{Fetch, Queued};
use crate::time::Instant;
use crate::wire::{Body, NameList, Packet, Record};

/// Most stream messages one metadata request is answered with (when the requester has shown
/// it receives at its address; one otherwise).
const MAX_REPLY_MESSAGES: usize = 8;

/// Most members asked for in one request.
const MAX_REQUESTED: usize = 4096;

impl<R: Rng> Node<R> {
    /// A record without metadata: if it announces (by its hash) a version of `id`'s
    /// metadata newer than the one held, that version is fetched once the message is
    /// applied. `spread`: whether the metadata, once here, is news to gossip.
    pub(super) fn note_announced(&mut self, id: MemberId, record: &Record<'_>, spread: bool) {
        if !self.config.streams || record.meta_hash.is_none() {
            return;
        }
        let held = self.members.get(id).map_or(u64::MAX, Member::meta_version);
        if record.meta_version > held {
            self.streams.want(id, record.meta_version, spread);
        }
    }

    /// Queues what the message from `announcer` announced, and starts the fetches there is
    /// room for. A version already being fetched gains `announcer` as the member to ask if
    /// the one asked stays silent.
    pub(super) fn fetch_announced(&mut self, now: Instant, announcer: MemberId) {
        for (id, version, spread) in self.streams.take_wanted() {
            if self.streams.is_fetching(id, version) {
                if announcer != id {
                    self.streams.offer_announcer(id, announcer);
                }
            } else {
                self.streams.enqueue(id, Queued { version, spread, announcer });
            }
        }
        self.start_fetches(now);
    }

    /// Asks for queued metadata while fewer than `MAX_FETCHES_IN_FLIGHT` fetches are in
    /// flight: each member's from the member itself if it is available, from its announcer
    /// otherwise (several to one announcer in one request).
    fn start_fetches(&mut self, now: Instant) {
        let mut from_announcers: Vec<(MemberId, MemberId)> = Vec::new();
        while let Some((id, queued)) = self.streams.next_queued() {
            let Some(member) = self.members.get(id) else { continue };
            if member.meta_version() >= queued.version {
                continue; // Arrived meanwhile.
            }
            let silent = self.streams.is_owner_silent(id, queued.version);
            let owner = id != Members::LOCAL && member.status().is_available();
            let asked =
                if owner && !(silent && queued.announcer != id) { id } else { queued.announcer };
            let fetch = Fetch {
                name: member.name().clone(),
                version: queued.version,
                announcer: Some(queued.announcer).filter(|a| *a != asked),
                deadline: now + self.config.stream_timeout,
                spread: queued.spread,
                from_owner: asked == id,
            };
            self.streams.fetching(id, fetch);
            if asked == id {
                self.request_metadata(id, &[id]);
            } else {
                from_announcers.push((asked, id));
            }
        }
        from_announcers.sort_unstable();
        for group in from_announcers.chunk_by(|a, b| a.0 == b.0) {
            let ids: Vec<MemberId> = group.iter().map(|(_, id)| *id).collect();
            self.request_metadata(group[0].0, &ids);
        }
    }

    /// Asks the announcers of fetches that went unanswered; gives up on the others
    /// (anti-entropy announces the version again, and the fetch starts over).
    pub(super) fn retry_fetches(&mut self, now: Instant) {
        for (id, fetch) in self.streams.expired_fetches(now) {
            if fetch.from_owner {
                self.streams.owner_was_silent(id, fetch.version);
            }
            let Some(next) = fetch.announcer else { continue };
            let same = self.members.get(id).is_some_and(|m| *m.name() == fetch.name);
            let reachable = self.members.get(next).is_some_and(|m| m.status().is_available());
            if !same || !reachable {
                continue;
            }
            let deadline = now + self.config.stream_timeout;
            let retry = Fetch { announcer: None, deadline, from_owner: false, ..fetch };
            self.streams.fetching(id, retry);
            self.request_metadata(next, &[id]);
        }
        self.start_fetches(now);
    }

    /// Sends `from` a request for the metadata of `ids`.
    fn request_metadata(&mut self, from: MemberId, ids: &[MemberId]) {
        let ids = &ids[..ids.len().min(MAX_REQUESTED)];
        let mut list = Vec::new();
        let names = ids.iter().filter_map(|id| self.members.get(*id)).map(|m| m.name().as_str());
        NameList::write(&mut list, names);
        let Ok(names) = NameList::parse(&list) else { return };
        self.counters.metadata_fetches += names.len() as u64;
        self.send_stream(from, &Body::MetadataRequest { names }, usize::MAX);
    }

    /// Answers a metadata request with the metadata held of each member named, in as many
    /// messages as it takes (at most [`MAX_REPLY_MESSAGES`]), each at most `limit` bytes.
    pub(super) fn answer_metadata_request(
        &mut self,
        requester: MemberId,
        names: NameList<'_>,
        limit: usize,
    ) {
        let Some(to) = self.destination(requester) else { return };
        let mut ids: Vec<MemberId> = names
            .iter()
            .filter_map(|name| self.members.id(name))
            .filter(|id| self.members.get(*id).is_some_and(|m| m.meta_version() > 0))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        // Bulk answers only to a member that showed it receives at its address.
        let messages = if limit >= self.config.max_stream_message { MAX_REPLY_MESSAGES } else { 1 };
        let mut next = 0;
        for _ in 0..messages {
            if next >= ids.len() {
                break;
            }
            let body = Body::MetadataReply;
            let written = self.send_stream_records(&to, &body, &ids[next..], limit, usize::MAX);
            // A record too large for even an empty message is skipped.
            next += written.max(1);
        }
    }

    /// Applies a metadata reply: its sender first, then each record, as news to spread if
    /// the fetch it answers came from gossip. Unrequested records are applied as old news.
    pub(super) fn apply_metadata_reply(
        &mut self,
        now: Instant,
        packet: &Packet<'_>,
    ) -> Result<MemberId, DropReason> {
        let sender = self.note_sender(now, &packet.sender, None)?;
        for record in packet.records.iter() {
            let fetch = self
                .members
                .id(record.name)
                .and_then(|id| self.streams.fetched(id, record.name, record.meta_version));
            let spread = fetch.is_some_and(|f| f.spread);
            self.apply_record(now, &record, spread);
        }
        Ok(sender)
    }
}
