//! Push-pull: a full-state exchange over a stream, with the seeds when joining and with one
//! random member that speaks streams every `push_pull_interval` (scaled with the cluster's
//! size, as memberlist does). Each side sends its whole table (metadata that a datagram
//! could not carry announced by its hash, to be fetched) and applies the other's as old
//! news, as anti-entropy does.

use core::net::SocketAddr;
use core::time::Duration;

use rand_core::Rng;

use super::Node;
use super::send::Destination;
use crate::members::{MemberId, Members};
use crate::random::random_below;
use crate::time::Instant;
use crate::timers::Timer;
use crate::wire::{Body, max_overhead};

/// Clusters up to this size push-pull every `push_pull_interval`; larger ones less often.
const PUSH_PULL_SCALE_THRESHOLD: usize = 32;

/// The push-pull period in a cluster of `members`: `interval * (ceil(log2(n / 32)) + 1)`
/// above 32 members (memberlist's scaling), so each member's share of the traffic grows
/// only with the logarithm of the cluster's size.
pub(crate) fn push_pull_period(interval: Duration, members: usize) -> Duration {
    if members <= PUSH_PULL_SCALE_THRESHOLD {
        return interval;
    }
    let log2 = libm::log2(members as f64) - libm::log2(PUSH_PULL_SCALE_THRESHOLD as f64);
    interval.saturating_mul(libm::ceil(log2) as u32 + 1)
}

impl<R: Rng> Node<R> {
    /// The periodic exchange with one random available member that speaks streams.
    pub(super) fn push_pull_round(&mut self, now: Instant) {
        let Some(interval) = self.config.push_pull_interval.filter(|_| self.config.streams) else {
            return;
        };
        let period = push_pull_period(interval, self.members.len());
        self.timers.reschedule(Timer::PushPull, now, period);
        let mut candidates = core::mem::take(&mut self.entries);
        candidates.clear();
        candidates.extend(self.members.iter().filter_map(|(id, m)| {
            (id != Members::LOCAL && m.status().is_available() && m.speaks_streams()).then_some(id)
        }));
        let chosen = (!candidates.is_empty())
            .then(|| candidates[random_below(&mut self.rng, candidates.len())]);
        self.entries = candidates;
        if let Some(to) = chosen.and_then(|id| self.destination(id)) {
            self.send_push_pull(now, &to);
        }
    }

    /// Joining: a push-pull with a seed, known only by its address.
    pub(super) fn push_pull_seed(&mut self, now: Instant, seed: SocketAddr) {
        if self.config.streams && self.config.push_pull_interval.is_some() {
            self.send_push_pull(now, &Destination::seed(seed));
        }
    }

    fn send_push_pull(&mut self, now: Instant, to: &Destination) {
        let cookie = self.rng.next_u32();
        self.counters.push_pulls += 1;
        if self.send_table(to, &Body::PushPull { cookie }, usize::MAX) > 0 {
            self.streams.push_pull_sent(cookie, now + self.config.stream_timeout);
        }
    }

    /// Answers a push-pull with our table, at most once per member and second.
    pub(super) fn answer_push_pull(
        &mut self,
        now: Instant,
        requester: MemberId,
        cookie: u32,
        limit: usize,
    ) {
        if !self.streams.may_answer_push_pull(requester, now) {
            return;
        }
        let Some(to) = self.destination(requester) else { return };
        self.send_table(&to, &Body::PushPullReply { echo: cookie }, limit);
    }

    /// Sends `body` with the whole table (from a random member on, so that a table larger
    /// than a message is covered over several exchanges); returns the records sent.
    fn send_table(&mut self, to: &Destination, body: &Body<'_>, limit: usize) -> usize {
        let mut ids = core::mem::take(&mut self.entries);
        ids.clear();
        ids.extend(self.members.iter().map(|(id, _)| id));
        if !ids.is_empty() {
            let start = random_below(&mut self.rng, ids.len());
            ids.rotate_left(start);
        }
        // Metadata travels as a datagram would carry it: what is larger is fetched.
        let inline = self.config.max_datagram().saturating_sub(max_overhead(255));
        let sent = self.send_stream_records(to, body, &ids, limit, inline);
        self.entries = ids;
        sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_period_scales_with_the_log_of_the_cluster_above_32() {
        let base = Duration::from_secs(30);
        assert_eq!(push_pull_period(base, 1), base);
        assert_eq!(push_pull_period(base, 32), base);
        assert_eq!(push_pull_period(base, 33), base * 2);
        assert_eq!(push_pull_period(base, 1000), base * 6);
        assert_eq!(push_pull_period(base, 10_000), base * 10);
    }
}
