//! A stream message's walk, as a datagram's in `receive`: size, header, seal, decoding, the
//! checks before any change (transport, sender, clock, the sender's stream window, a reply
//! asked for), then its facts and its answer, which is a stream message too. Also the
//! stream ping, the fallback probe of a member that does not answer over UDP.

use alloc::vec::Vec;
use core::net::SocketAddr;

use rand_core::Rng;

use super::Node;
use super::send::{AMPLIFICATION_LIMIT, Destination, Transport};
use crate::counters::DropReason;
use crate::members::MemberId;
use crate::replay::{check_time, oldest_accepted};
use crate::time::Instant;
use crate::wire::{Body, DecodeError, Flags, Header, Packet};

impl<R: Rng> Node<R> {
    /// Takes a stream message through every check, then applies and answers it.
    pub(super) fn receive_stream(
        &mut self,
        now: Instant,
        from: SocketAddr,
        message: &[u8],
        scratch: &mut Vec<u8>,
    ) -> Result<(), DropReason> {
        if !self.config.streams {
            return Err(DropReason::Misdirected);
        }
        if self.left {
            return Err(DropReason::Left);
        }
        if message.len() > self.config.max_stream_message {
            return Err(DropReason::TooLarge);
        }
        let header = Header::parse(message).map_err(|_| DropReason::Unauthenticated)?;
        let opened = self.authenticate(&header, message, scratch)?;
        let packet = Packet::decode(opened).map_err(|error| match error {
            DecodeError::UnknownMessageType(_) => DropReason::UnknownMessage,
            _ => DropReason::Malformed,
        })?;
        self.admit_stream(now, &packet)?;
        // Authenticated, well-formed, new and expected: from here on, state may change.
        let sender = match packet.body {
            Body::MetadataReply => self.apply_metadata_reply(now, &packet)?,
            _ => self.apply_packet(now, &packet)?,
        };
        self.accept_stream_nonce(now, packet.sender.name, packet.header.nonce);
        // It sent over a stream: it speaks streams, whatever its datagrams said before.
        self.note_streams(sender, true);
        self.fetch_announced(now, sender);
        self.mark_joined(now);
        if self.members.get(sender).map(|m| m.addr()) != Some(packet.sender.addr) {
            // Held at another address, and the message did not outrank that: answers go
            // nowhere until the move is settled by datagrams (see `receive`).
            return Ok(());
        }
        let limit = self.stream_answer_limit(sender, from, message.len());
        self.dispatch_stream(now, sender, &packet, limit);
        Ok(())
    }

    /// The checks an authentic stream message must pass before it may change anything.
    fn admit_stream(&mut self, now: Instant, packet: &Packet<'_>) -> Result<(), DropReason> {
        let flags = packet.header.flags;
        // A datagram captured and sent over a stream, or a message streams do not carry.
        if !flags.has(Flags::STREAM) || !packet.body.may_stream() {
            return Err(DropReason::Misdirected);
        }
        // Stream messages always name their sender in full.
        if flags.has(Flags::SHORT_SENDER) {
            return Err(DropReason::Malformed);
        }
        if packet.sender.name == self.members.local().name() {
            return Err(DropReason::FromSelf);
        }
        // Only a join's push-pull goes to an address without the receiver's name.
        if flags.has(Flags::TO_ADDRESS) && !matches!(packet.body, Body::PushPull { .. }) {
            return Err(DropReason::Misdirected);
        }
        let nonce = packet.header.nonce;
        let wall = self.wall.millis(now);
        check_time(nonce, wall, self.config.max_clock_skew, self.config.max_datagram_age)?;
        let sender = packet.sender.name;
        let known = self.members.id(sender).is_some();
        // An unknown sender's tombstone still refuses what it sent before it was reaped.
        if !self.streams.is_fresh(sender, nonce) || (!known && !self.is_fresh(sender, nonce)) {
            return Err(DropReason::Replayed);
        }
        if let Body::PushPullReply { echo } = packet.body
            && !self.streams.push_pull_answered(echo, now)
        {
            return Err(DropReason::Unsolicited);
        }
        Ok(())
    }

    /// Remembers a stream message's nonce in its sender's stream window.
    fn accept_stream_nonce(&mut self, now: Instant, sender: &str, nonce: u64) {
        // Nonces older than the clock check accepts need no window to be refused.
        let oldest = oldest_accepted(self.wall.millis(now), self.config.max_datagram_age);
        let max = self.config.max_members;
        self.streams.accept(sender, nonce, oldest, max);
    }

    /// Acts on the message; answers go to `sender` over a stream, at most `limit` bytes.
    fn dispatch_stream(
        &mut self,
        now: Instant,
        sender: MemberId,
        packet: &Packet<'_>,
        limit: usize,
    ) {
        match packet.body {
            Body::Ping { seq, .. } => {
                let root = self.members.digest().root();
                self.send_stream(sender, &Body::Ack { seq, root }, limit);
            }
            Body::Ack { seq, .. } => self.handle_ack(seq, sender),
            Body::PushPull { cookie } => self.answer_push_pull(now, sender, cookie, limit),
            Body::MetadataRequest { names } => self.answer_metadata_request(sender, names, limit),
            // Replies: applied already.
            _ => {}
        }
    }

    /// How large a stream answer to a request of `request_len` bytes from `id`, received
    /// from `from`, may be: up to `max_stream_message` once the member showed that it
    /// receives at its address, or when the connection came from its address's IP (a TCP
    /// handshake proves that IP); a small multiple of the request otherwise, so that a key
    /// holder cannot aim large answers at an address of its choosing.
    fn stream_answer_limit(&self, id: MemberId, from: SocketAddr, request_len: usize) -> usize {
        let max = self.config.max_stream_message;
        match self.members.get(id) {
            Some(m) if m.is_validated() || m.addr().ip() == from.ip() => max,
            _ => request_len.saturating_mul(AMPLIFICATION_LIMIT).min(max),
        }
    }

    /// Sends `body` alone to a member over a stream.
    pub(super) fn send_stream(&mut self, id: MemberId, body: &Body<'_>, limit: usize) {
        let Some(to) = self.destination(id) else { return };
        if let Some(draft) = self.draft_for(Transport::Stream, &to, body, limit) {
            self.seal(draft, &to);
        }
    }

    /// Sends `body` to `to` over a stream with as many of `ids`' records (with their
    /// metadata unless it is larger than `inline`) as fit in `limit`; returns how many.
    /// Nothing is sent if not even the first fits.
    pub(super) fn send_stream_records(
        &mut self,
        to: &Destination,
        body: &Body<'_>,
        ids: &[MemberId],
        limit: usize,
        inline: usize,
    ) -> usize {
        let Some(mut draft) = self.draft_for(Transport::Stream, to, body, limit) else {
            return 0;
        };
        draft.writer = draft.writer.with_inline_limit(inline);
        let mut written = 0;
        for id in ids {
            let Some(record) = self.members.record(*id, true) else { continue };
            if !draft.writer.push(&record) {
                break;
            }
            written += 1;
        }
        if written > 0 || ids.is_empty() {
            self.seal(draft, to);
        }
        written
    }

    /// Whether member `id` accepts stream messages, as it just showed.
    pub(super) fn note_streams(&mut self, id: MemberId, speaks: bool) {
        if let Some(member) = self.members.get_mut(id) {
            member.set_speaks_streams(speaks);
        }
    }

    /// The fallback probe: a ping over a stream to a target that did not answer its direct
    /// ping, sent with the ping-reqs, with the probe's sequence number. Its ack, over a
    /// stream too, completes the probe like any other. Like a ping, it carries the target's
    /// own record if it is suspected (so it can refute) and gossip, within a datagram's
    /// size: a member whose UDP is blocked still hears of the cluster this way.
    pub(super) fn stream_ping(&mut self, target: MemberId, seq: u32) {
        let speaks = self.members.get(target).is_some_and(|m| m.speaks_streams());
        let Some(to) = self.destination(target).filter(|_| self.config.streams && speaks) else {
            return;
        };
        self.counters.stream_pings += 1;
        let root = self.members.digest().root();
        let ping = Body::Ping { seq, root, target: "" };
        let limit = self.config.max_datagram();
        self.send_via(Transport::Stream, &to, &ping, Some(target), limit);
    }
}
