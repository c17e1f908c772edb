//! The one path that builds a datagram: header (version, flags, nonce), sender and body,
//! then the records that ride along (a correction, gossip), then the seal (tag or
//! encryption) for its receiver, into the outbox. Nothing else writes a datagram. Stream
//! messages take the same path (`Transport::Stream`) into the stream queue.

use alloc::vec::Vec;
use core::net::SocketAddr;
use smol_str::SmolStr;

use rand_core::Rng;

use super::Node;
use crate::auth::Binding;
use crate::config::LegacyWire;
use crate::gossip::retransmit_limit;
use crate::members::{MemberId, Members};
use crate::status::Status;
use crate::wire::{Body, Flags, Header, PacketWriter, STREAMS_MINOR, Sender, Version};

/// How much more an answer may weigh than its request while its receiver has not shown
/// that it receives at its address (QUIC's rule for unvalidated addresses): a request sent
/// with a victim's address gets the victim at most this much traffic.
pub(crate) const AMPLIFICATION_LIMIT: usize = 3;

/// The largest record with metadata a datagram carries to a member that fetches metadata
/// over streams. In a join of 1,000 members with 1 KiB of metadata each, every member held
/// every map after 9.9 s when datagrams carried them whole (one or two records a datagram),
/// after 3.1 s when they were announced and fetched (`swim-sim join --nodes 1000 --metadata
/// 1024 --streams on`; docs/BENCHMARKS.md, "Streams").
pub(crate) const INLINE_RECORD: usize = 256;

/// Where a datagram goes: an address, and the name of the member there, to which the
/// datagram is bound (`None` for a seed known only by its address).
#[derive(Clone, Debug)]
pub(crate) struct Destination {
    pub(crate) addr: SocketAddr,
    pub(crate) receiver: Option<SmolStr>,
    /// Whether the receiver holds us in its table, so a datagram may name us short.
    pub(crate) short_sender: bool,
}

impl Destination {
    /// An address whose member is unknown (a seed): bound to no name.
    pub(crate) fn seed(addr: SocketAddr) -> Self {
        Destination { addr, receiver: None, short_sender: false }
    }
}

/// Which transport a packet goes by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Transport {
    Datagram,
    /// A stream message: flagged so, sealed the same way, up to `max_stream_message`.
    Stream,
}

/// A packet being written: the packet so far, its header (for sealing), and its transport.
pub(super) struct Draft {
    pub(super) writer: PacketWriter,
    header: Header,
    transport: Transport,
}

impl<R: Rng> Node<R> {
    /// Where a member is reached, and the name its datagrams are bound to.
    pub(super) fn destination(&self, id: MemberId) -> Option<Destination> {
        let member = self.members.get(id)?;
        let receiver = Some(member.name().clone());
        Some(Destination {
            addr: member.addr(),
            receiver,
            short_sender: member.takes_short_sender(self.settled()),
        })
    }

    /// Whether the cluster looks settled: every digest root heard for a probe interval
    /// equalled ours, so every member holds every other, this node included.
    fn settled(&self) -> bool {
        self.sync.is_settled(self.clock.now(), self.config.ping_interval)
    }

    /// How large an answer to a request of `request_len` bytes from `id` may be: a whole
    /// datagram once the member showed that it receives at its address, a small multiple of
    /// the request until then.
    pub(super) fn answer_limit(&self, id: MemberId, request_len: usize) -> usize {
        let max = self.config.max_datagram();
        match self.members.get(id) {
            Some(member) if member.is_validated() => max,
            _ => request_len.saturating_mul(AMPLIFICATION_LIMIT).min(max),
        }
    }

    /// The member showed that it receives at its address.
    pub(super) fn validate(&mut self, id: MemberId) {
        if let Some(member) = self.members.get_mut(id) {
            member.validate();
        }
    }

    /// [`Node::send`] to a member.
    pub(super) fn send_to(
        &mut self,
        id: MemberId,
        body: &Body<'_>,
        about: Option<MemberId>,
        limit: usize,
    ) -> Option<u64> {
        let to = self.destination(id)?;
        self.send(&to, body, about, limit)
    }

    /// Queues a datagram of at most `limit` bytes: the message, then (if `about` is a member
    /// we do not believe online) that member's own record, so it can refute at once, then as
    /// much pending gossip as fits. Returns the datagram's nonce.
    pub(super) fn send(
        &mut self,
        to: &Destination,
        body: &Body<'_>,
        about: Option<MemberId>,
        limit: usize,
    ) -> Option<u64> {
        self.send_via(Transport::Datagram, to, body, about, limit)
    }

    /// [`Node::send`] by `transport`.
    pub(super) fn send_via(
        &mut self,
        transport: Transport,
        to: &Destination,
        body: &Body<'_>,
        about: Option<MemberId>,
        limit: usize,
    ) -> Option<u64> {
        let mut draft = self.draft_for(transport, to, body, limit)?;
        // Restarted members and the far side of a healed partition learn they were declared
        // offline; with Lifeguard's buddy system, a suspect learns it is suspected.
        // A node that left says so in everything it still sends: a receiver that already
        // forgot it must not take the datagram for the first contact of a live member.
        let buddy = self.config.lifeguard.buddy;
        let correction = if self.left {
            Some(Members::LOCAL)
        } else {
            about.filter(|id| {
                self.members.get(*id).is_some_and(|m| match m.status() {
                    Status::Online => false,
                    Status::Suspect => buddy,
                    Status::Offline | Status::Left => true,
                })
            })
        };
        // (With its metadata if that is queued too: the record then stands for the fact.)
        let with_metadata = self.left && self.gossip.queued_with_metadata(Members::LOCAL);
        let written = correction.filter(|id| {
            let record = self.members.record(*id, with_metadata);
            record.is_some_and(|record| draft.writer.push(&record))
        });
        // A left node's own record, in every datagram, is its announcement being spent; a
        // correction to a member about itself tells nobody else, so its fact stays queued.
        let already = written.map(|id| (id, self.left));
        let retransmits = self.retransmit_limit();
        self.gossip.fill(&mut draft.writer, &self.members, retransmits, already);
        Some(self.seal(draft, to))
    }

    /// Sends a member `body` alone, in at most `limit` bytes: no correction, no gossip.
    pub(super) fn send_bare(&mut self, id: MemberId, body: &Body<'_>, limit: usize) {
        let Some(to) = self.destination(id) else { return };
        if let Some(draft) = self.draft(&to, body, limit) {
            self.seal(draft, &to);
        }
    }

    /// Tells a member only what we hold about it, at `addr`, within the answer limit of an
    /// unvalidated address.
    pub(super) fn send_correction(&mut self, id: MemberId, addr: SocketAddr, request_len: usize) {
        let Some(Destination { receiver, .. }) = self.destination(id) else { return };
        // Not where the member's table entry says: it may not know us there.
        let to = Destination { addr, receiver, short_sender: false };
        let limit = request_len.saturating_mul(AMPLIFICATION_LIMIT);
        let Some(mut draft) = self.draft(&to, &Body::Gossip, limit) else { return };
        if let Some(record) = self.members.record(id, false) {
            draft.writer.push(&record);
        }
        self.seal(draft, &to);
    }

    /// Starts a datagram to `to`: header (the version this node speaks, the next nonce),
    /// sender and body. `None` if even that does not fit `limit`.
    fn draft(&mut self, to: &Destination, body: &Body<'_>, limit: usize) -> Option<Draft> {
        self.draft_for(Transport::Datagram, to, body, limit)
    }

    /// Starts a packet to `to` by `transport`; see [`Node::draft`].
    pub(super) fn draft_for(
        &mut self,
        transport: Transport,
        to: &Destination,
        body: &Body<'_>,
        limit: usize,
    ) -> Option<Draft> {
        let version = match self.config.legacy_wire {
            LegacyWire::Speak if transport == Transport::Datagram => Version::V1,
            _ => Version::V2,
        };
        let mut flags = 0;
        if to.receiver.is_none() {
            flags |= Flags::TO_ADDRESS;
        }
        if self.config.encrypt && version == Version::V2 {
            flags |= Flags::ENCRYPTED;
        }
        if transport == Transport::Stream {
            flags |= Flags::STREAM;
        } else if to.short_sender && version == Version::V2 {
            // About 15 bytes less a datagram (a name and an address become 8 bytes).
            flags |= Flags::SHORT_SENDER;
        }
        let wall = self.wall.millis(self.clock.now());
        let mut header = Header::new(version, Flags(flags), self.nonces.next(wall, &mut self.rng));
        if version == Version::V2 && !self.config.streams {
            // The minor version says whether this node accepts stream messages.
            header.minor = STREAMS_MINOR - 1;
        }
        let local = self.members.local();
        let sender =
            Sender { name: local.name(), addr: local.addr(), incarnation: local.incarnation() };
        let (buffer, max) = match transport {
            Transport::Datagram => (self.outbox.buffer(), self.config.max_datagram()),
            Transport::Stream => (Vec::new(), self.config.max_stream_message),
        };
        match PacketWriter::new(buffer, limit.min(max), &header, &sender, body) {
            Ok(writer) if transport == Transport::Datagram && self.fetches_from(to) => {
                // A receiver that fetches metadata over streams gets larger maps announced:
                // gossip then carries dozens of records a datagram instead of one or two.
                let writer = writer.with_inline_limit(INLINE_RECORD);
                Some(Draft { writer, header, transport })
            }
            Ok(writer) => Some(Draft { writer, header, transport }),
            Err(buffer) => {
                if transport == Transport::Datagram {
                    self.outbox.recycle(buffer);
                }
                None
            }
        }
    }

    /// Whether the receiver of a datagram to `to` fetches metadata over streams (as this
    /// node does): then metadata that makes a record larger than [`INLINE_RECORD`] is
    /// announced by its hash rather than carried.
    fn fetches_from(&self, to: &Destination) -> bool {
        let receiver = || to.receiver.as_deref().and_then(|name| self.members.by_name(name));
        self.config.streams && receiver().is_some_and(|m| m.speaks_streams())
    }

    /// Seals a finished packet for its receiver and queues it on its transport; returns its
    /// nonce.
    pub(super) fn seal(&mut self, draft: Draft, to: &Destination) -> u64 {
        let mut bytes = draft.writer.finish();
        let receiver = to.receiver.as_deref().unwrap_or("");
        let binding = Binding { label: &self.config.label, receiver };
        self.config.keyring.seal(&mut bytes, &draft.header, &binding);
        match draft.transport {
            Transport::Datagram => self.outbox.push(to.addr, bytes),
            Transport::Stream => self.streams.push(to.addr, bytes),
        }
        draft.header.nonce
    }

    /// Sends `records` (with metadata) to `to` as SyncEntries: at most `datagrams` of them,
    /// as many records each as fit. Records that cannot fit even alone are skipped. Returns
    /// how many datagrams went.
    pub(super) fn send_entries(
        &mut self,
        to: &Destination,
        ids: &[MemberId],
        datagrams: usize,
    ) -> usize {
        let mut next = 0;
        for sent in 0..datagrams {
            if next >= ids.len() {
                return sent;
            }
            let Some(mut draft) = self.draft(to, &Body::SyncEntries, usize::MAX) else {
                return sent;
            };
            while let Some(id) = ids.get(next) {
                let Some(record) = self.members.record(*id, true) else {
                    next += 1; // Gone (the lists are exact, so this does not happen).
                    continue;
                };
                if !draft.writer.push(&record) && draft.writer.records() > 0 {
                    break;
                }
                // Pushed, or cannot fit even alone (metadata from a larger MTU): skipped.
                next += 1;
            }
            self.seal(draft, to);
        }
        datagrams
    }

    /// Takes a buffer for scratch work; give it back with [`Node::recycle`].
    pub(super) fn take_buffer(&mut self) -> Vec<u8> {
        self.outbox.buffer()
    }

    pub(super) fn recycle(&mut self, buffer: Vec<u8>) {
        self.outbox.recycle(buffer);
    }

    /// How many times each queued fact is sent at the table's current size.
    pub(super) fn retransmit_limit(&self) -> u32 {
        retransmit_limit(self.config.retransmit_mult, self.members.len())
    }
}
