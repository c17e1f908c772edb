//! The periodic rounds that are not probes or anti-entropy exchanges: gossip, and keeping
//! in touch with what lies outside the view (peers to join through, offline members).

use alloc::vec::Vec;
use core::net::SocketAddr;

use rand_core::Rng;

use super::Node;
use crate::exchange::Peer;
use crate::random::random_below;
use crate::status::StatusFilter;
use crate::time::Instant;
use crate::timers::Timer;
use crate::wire::Body;

/// Offline members contacted in each round while joining or isolated.
const OFFLINE_CONTACTS: usize = 3;

impl<R: Rng> Node<R> {
    /// Sends pending gossip to `gossip_fanout` random available members, on datagrams of
    /// its own (gossip otherwise rides on every probe and exchange).
    pub(super) fn gossip_round(&mut self) {
        if self.gossip.is_empty() {
            return;
        }
        let fanout = self.config.gossip_fanout;
        let targets = self.members.sample(
            &mut self.rng,
            StatusFilter::AVAILABLE,
            fanout,
            &[],
            &mut self.sampling,
        );
        for id in targets.iter() {
            self.send_to(id, &Body::Gossip, Some(id), usize::MAX);
        }
    }

    /// Joining or isolated: every peer and a few offline members, with backoff. Otherwise:
    /// one contact outside the view (a peer not seen available, or an offline member), so
    /// that the two sides of a healed partition find each other again.
    pub(super) fn rejoin_round(&mut self, now: Instant) {
        let others_available = self.members.count(StatusFilter::AVAILABLE) > 1;
        if !self.joined || !others_available {
            for i in 0..self.peers.len() {
                self.send_digest(Peer::Seed(self.peers[i]));
                self.push_pull_seed(now, self.peers[i]);
            }
            let offline = self.members.sample(
                &mut self.rng,
                StatusFilter::OFFLINE,
                OFFLINE_CONTACTS,
                &[],
                &mut self.sampling,
            );
            for id in offline.iter() {
                self.send_digest(Peer::Member(id));
            }
            self.timers.set(Timer::Rejoin, now + self.join_backoff);
            self.join_backoff =
                self.join_backoff.saturating_mul(2).min(self.config.rejoin_interval);
            return;
        }
        self.join_backoff = self.config.ping_interval;
        self.timers.set(Timer::Rejoin, now + self.config.rejoin_interval);
        let available = |addr: &SocketAddr| {
            self.members_with(StatusFilter::AVAILABLE).any(|m| m.addr() == *addr)
        };
        let outside: Vec<SocketAddr> =
            self.peers.iter().copied().filter(|peer| !available(peer)).collect();
        let offline = self.members.count(StatusFilter::OFFLINE);
        let pick = random_below(&mut self.rng, outside.len() + offline.min(1));
        if let Some(peer) = outside.get(pick) {
            self.send_digest(Peer::Seed(*peer));
        } else {
            let chosen = self.members.sample(
                &mut self.rng,
                StatusFilter::OFFLINE,
                1,
                &[],
                &mut self.sampling,
            );
            if let Some(id) = chosen.first() {
                self.send_digest(Peer::Member(id));
            }
        }
    }
}
