//! A datagram's walk, from the socket to the answer it gets: size, header, seal, decoding,
//! the checks that come before any change (sender, binding, clock, replay window, exchange),
//! then its facts (`facts`), then its message, answered through `send`.

use alloc::vec::Vec;
use core::net::SocketAddr;

use rand_core::Rng;

use super::Node;
use crate::auth::Binding;
use crate::config::LegacyWire;
use crate::counters::DropReason;
use crate::event::Event;
use crate::exchange::Step;
use crate::members::{Member, MemberId};
use crate::replay::{check_future, check_time};
use crate::time::Instant;
use crate::timers::Timer;
use crate::wire::{Body, DecodeError, Flags, Header, Packet, Version};

impl<R: Rng> Node<R> {
    /// Takes a datagram through every check, then applies it.
    pub(super) fn receive(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &[u8],
        scratch: &mut Vec<u8>,
    ) -> Result<(), DropReason> {
        if self.left {
            // Answering would make others learn of us again after they reaped us.
            return Err(DropReason::Left);
        }
        if datagram.len() > self.config.max_datagram() {
            return Err(DropReason::TooLarge);
        }
        // A header that cannot be read cannot be authenticated either.
        let header = Header::parse(datagram).map_err(|_| DropReason::Unauthenticated)?;
        let opened = self.authenticate(&header, datagram, scratch)?;
        let packet = Packet::decode(opened).map_err(|error| match error {
            DecodeError::UnknownMessageType(_) => DropReason::UnknownMessage,
            _ => DropReason::Malformed,
        })?;
        let short_name;
        let packet = match packet.sender_hash {
            Some(hash) => {
                let id = self.members.by_name_hash(hash).ok_or(DropReason::UnknownSender)?;
                let member = self.members.get(id).ok_or(DropReason::UnknownSender)?;
                short_name = member.name().clone();
                packet.with_sender(&short_name, member.addr())
            }
            None => packet,
        };
        self.admit(now, from, &packet)?;
        // Authenticated, well-formed, new and expected: from here on, state may change.
        let sender = self.apply_packet(now, &packet)?;
        self.note_streams(sender, packet.header.speaks_streams());
        self.fetch_announced(now, sender);
        self.mark_joined(now);
        if self.members.get(sender).map(Member::addr) != Some(packet.sender.addr) {
            // We hold the sender at another address, and it did not outrank that: it
            // restarted on a new address, or someone aims our answers elsewhere. It is only
            // told what we hold, so that a restarted member moves past its previous life.
            self.send_correction(sender, packet.sender.addr, datagram.len());
            return Ok(());
        }
        if !packet.header.flags.has(Flags::TO_ADDRESS) && packet.header.version == Version::V2 {
            // Bound to our name: it holds us, and may be sent short senders.
            if let Some(member) = self.members.get_mut(sender) {
                member.knows_us();
            }
        }
        let limit = self.answer_limit(sender, datagram.len());
        self.dispatch_body(now, sender, &packet, limit);
        Ok(())
    }

    /// Heard from another member: part of the cluster (again).
    pub(super) fn mark_joined(&mut self, now: Instant) {
        if !self.joined {
            self.joined = true;
            self.join_backoff = self.config.ping_interval;
            self.timers.set(Timer::Rejoin, now + self.config.rejoin_interval);
            self.events.push_back(Event::Joined);
        }
    }

    /// Opens the datagram with this node's binding: for this node by name, or (flagged so)
    /// for its address, always with the cluster's label.
    pub(super) fn authenticate<'a>(
        &self,
        header: &Header,
        datagram: &'a [u8],
        scratch: &'a mut Vec<u8>,
    ) -> Result<&'a [u8], DropReason> {
        let to_address = header.flags.has(Flags::TO_ADDRESS);
        let receiver = if to_address { "" } else { self.members.local().name() };
        let binding = Binding { label: &self.config.label, receiver };
        let opened = self.config.keyring.open(datagram, header, &binding, scratch);
        let opened = opened.ok_or(DropReason::Unauthenticated)?;
        match header.version {
            Version::V1 if self.config.legacy_wire == LegacyWire::Refuse => {
                Err(DropReason::UnsupportedVersion)
            }
            Version::V2
                if self.config.require_encryption && !header.flags.has(Flags::ENCRYPTED) =>
            {
                Err(DropReason::Unencrypted)
            }
            _ => Ok(opened),
        }
    }

    /// The checks an authentic packet must pass before it may change anything.
    fn admit(
        &mut self,
        now: Instant,
        from: SocketAddr,
        packet: &Packet<'_>,
    ) -> Result<(), DropReason> {
        let local = self.members.local().name();
        if packet.sender.name == local {
            return Err(DropReason::FromSelf);
        }
        let misdirected = match packet.body {
            // A stream message captured and sent as a datagram, or a stream-only message.
            _ if packet.header.flags.has(Flags::STREAM) || packet.body.is_stream_only() => true,
            // Only a join may be sent to an address without the receiver's name.
            _ if packet.header.flags.has(Flags::TO_ADDRESS) => {
                !matches!(packet.body, Body::SyncDigest { .. })
            }
            // Version 1 names the receiver of a ping only.
            Body::Ping { target, .. } => !target.is_empty() && target != local,
            _ => false,
        };
        if misdirected {
            return Err(DropReason::Misdirected);
        }
        let nonce = packet.header.nonce;
        let wall = self.wall.millis(now);
        if packet.header.version == Version::V2 {
            check_time(nonce, wall, self.config.max_clock_skew, self.config.max_datagram_age)?;
        } else {
            // Version 1 numbered datagrams from its sender's start, so only a nonce from the
            // future is certainly forged.
            check_future(nonce, wall, self.config.max_clock_skew)?;
        }
        if !self.is_fresh(packet.sender.name, nonce) {
            return Err(DropReason::Replayed);
        }
        if !self.solicited(now, from, packet) {
            return Err(DropReason::Unsolicited);
        }
        Ok(())
    }

    /// Whether an anti-entropy step follows one of ours (other messages always may come): to
    /// the address it claims, echoing our cookie. Version 1 echoes nothing, so its steps
    /// are taken only from members that have shown they receive at their address.
    fn solicited(&mut self, now: Instant, from: SocketAddr, packet: &Packet<'_>) -> bool {
        let member = self.members.id(packet.sender.name);
        let addr = packet.sender.addr;
        let trusted = |node: &Self, echo: Option<u32>| {
            echo.is_some()
                || member.and_then(|id| node.members.get(id)).is_some_and(|m| m.is_validated())
        };
        match packet.body {
            Body::SyncBuckets { .. } => self.sync.exchanges.take_digest(member, addr, from, now),
            Body::SyncSummaries { echo, .. } => {
                trusted(self, echo)
                    && member.is_some_and(|id| {
                        self.sync.exchanges.follows(id, addr, Step::Buckets, echo, now)
                    })
            }
            Body::SyncWant { echo, .. } => {
                trusted(self, echo)
                    && member.is_some_and(|id| {
                        self.sync.exchanges.follows(id, addr, Step::Summaries, echo, now)
                    })
            }
            _ => true,
        }
    }

    /// A probe carried its sender's digest root: equal roots start no anti-entropy, and
    /// count as one more send of every queued fact (the peer holds them all).
    fn note_root(&mut self, now: Instant, root: u64, ours: u64) {
        self.sync.note_root(now, root, ours);
        if root == ours {
            let limit = self.retransmit_limit();
            self.gossip.all_heard_again(limit);
        }
    }

    /// Acts on the message itself; answers go to `sender`, at most `limit` bytes each.
    fn dispatch_body(&mut self, now: Instant, sender: MemberId, packet: &Packet<'_>, limit: usize) {
        match packet.body {
            Body::Ping { seq, root, .. } => {
                let ours = self.members.digest().root();
                self.note_root(now, root, ours);
                let ack = Body::Ack { seq, root: ours };
                if root == ours {
                    // The prober holds every fact we hold: nothing to tell it.
                    self.send_bare(sender, &ack, limit);
                } else {
                    self.send_to(sender, &ack, Some(sender), limit);
                }
            }
            Body::Ack { seq, root } => {
                let ours = self.members.digest().root();
                self.note_root(now, root, ours);
                self.handle_ack(seq, sender);
            }
            Body::Nack { seq } => self.handle_nack(seq, sender),
            Body::PingReq { seq, target, .. } => {
                self.handle_ping_req(now, sender, seq, target, limit);
            }
            Body::Gossip | Body::SyncEntries => {}
            Body::SyncDigest { root, members } => {
                self.handle_sync_digest(now, sender, root, members as usize, limit);
            }
            Body::SyncBuckets { cookie, shift, hashes } => {
                let summaries = packet.header.version == Version::V2 || packet.header.minor >= 1;
                if summaries {
                    self.handle_sync_buckets(now, sender, cookie, shift, hashes);
                }
            }
            Body::SyncSummaries { echo, cookie, shift, buckets, summaries } => {
                self.validate(sender);
                let request = (echo, cookie);
                self.handle_sync_summaries(now, sender, request, shift, buckets, summaries);
            }
            Body::SyncWant { echo, names } => {
                self.validate(sender);
                self.handle_sync_want(now, sender, echo, names);
            }
            // Refused as misdirected before this point: streams only.
            Body::PushPull { .. }
            | Body::PushPullReply { .. }
            | Body::MetadataRequest { .. }
            | Body::MetadataReply => {}
        }
    }
}
