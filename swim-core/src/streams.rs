//! Stream messages: what the node wants sent over a reliable transport, and the state of
//! its conversations there: replay windows of stream senders, metadata fetches and
//! push-pull exchanges in flight.
//!
//! A stream message is one sealed packet (the same header, seal, binding and nonces as a
//! datagram, with the stream flag), one-way: an answer is another message. The driver
//! frames, connects and times out; the node never sees a connection. See
//! `docs/PROTOCOL.md`, section "Streams".

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use core::net::SocketAddr;
use core::time::Duration;

use smol_str::SmolStr;

use crate::auth::SEQUENCED;
use crate::members::MemberId;
use crate::time::Instant;

/// A message to carry over a stream: open a connection to `destination` (or reuse one),
/// write the payload with its length prefix, and close (or keep) the connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamMessage {
    /// The member's address: the same port as its datagrams.
    pub destination: SocketAddr,
    /// The sealed message, at most `Config::max_stream_message` bytes.
    pub payload: Vec<u8>,
}

/// Stream messages of one sender accepted lately. Stream messages overtake each other
/// (each may travel on its own connection, and a large one takes longer), so a window of
/// 64 consecutive nonces, as datagrams have, would refuse honest ones: instead the last
/// [`StreamWindow::RECENT`] nonces are remembered, and anything at or below the oldest
/// forgotten one is refused. The clock check (`max_datagram_age`) bounds the rest.
#[derive(Clone, Debug, Default)]
pub(crate) struct StreamWindow {
    floor: u64,
    recent: [u64; StreamWindow::RECENT],
}

impl StreamWindow {
    const RECENT: usize = 16;

    /// Whether `nonce` was not accepted before. Unsequenced nonces (a sender without a
    /// wall clock, accepted only by a node without one either) carry no order.
    pub(crate) fn is_fresh(&self, nonce: u64) -> bool {
        nonce & SEQUENCED == 0 || (nonce > self.floor && !self.recent.contains(&nonce))
    }

    /// Records `nonce` (call only after [`StreamWindow::is_fresh`]).
    pub(crate) fn accept(&mut self, nonce: u64) {
        if nonce & SEQUENCED == 0 {
            return;
        }
        // The smallest slot (an empty one is 0) gives way, and raises the floor.
        let (at, oldest) =
            self.recent.iter().copied().enumerate().min_by_key(|(_, n)| *n).unwrap_or((0, 0));
        self.floor = self.floor.max(oldest);
        self.recent[at] = nonce;
    }

    /// The newest nonce accepted.
    fn newest(&self) -> u64 {
        self.recent.iter().copied().max().unwrap_or(0).max(self.floor)
    }
}

/// A metadata fetch in flight: the member whose metadata is wanted, at which version, and
/// whom to ask next.
#[derive(Clone, Debug)]
pub(crate) struct Fetch {
    pub(crate) name: SmolStr,
    pub(crate) version: u64,
    /// The member that announced the version: asked next if `asked` does not answer.
    pub(crate) announcer: Option<MemberId>,
    pub(crate) deadline: Instant,
    /// Whether the fact is news to spread once the metadata arrives (it came by gossip),
    /// or old news (anti-entropy, push-pull).
    pub(crate) spread: bool,
    /// Whether the member itself was asked.
    pub(crate) from_owner: bool,
}

/// A fetch waiting for room: the version wanted, whether it is news to spread, and the
/// member that announced it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Queued {
    pub(crate) version: u64,
    pub(crate) spread: bool,
    pub(crate) announcer: MemberId,
}

/// Most metadata fetches in flight at once: a member that learns of a thousand large maps
/// at once (a join) asks for them a few at a time, so that neither it nor the members it
/// asks hold them all in buffers at once.
pub(crate) const MAX_FETCHES_IN_FLIGHT: usize = 16;

/// A push-pull request in flight, to a member or a seed's address (which may not be the
/// address the seed advertises, so the reply is recognised by its echo alone).
#[derive(Clone, Copy, Debug)]
struct PushPull {
    cookie: u32,
    deadline: Instant,
}

/// Push-pulls answered for one member at most this often: a peer holding the key cannot
/// make this node send its whole table in a loop.
pub(crate) const PUSH_PULL_ANSWER_GAP: Duration = Duration::from_secs(1);

/// Most push-pull requests in flight (the seeds of a join, and the periodic one).
const MAX_PUSH_PULLS: usize = 16;

/// The node's stream state.
#[derive(Debug, Default)]
pub(crate) struct Streams {
    outgoing: VecDeque<StreamMessage>,
    windows: BTreeMap<SmolStr, StreamWindow>,
    /// Announced metadata versions found while applying one message, fetched after it.
    wanted: Vec<(MemberId, u64, bool)>,
    /// Fetches waiting for room among those in flight, in the order they were wanted.
    queued: BTreeMap<MemberId, Queued>,
    queue: VecDeque<MemberId>,
    /// Fetches asked, waiting for their answer.
    fetches: BTreeMap<MemberId, Fetch>,
    push_pulls: Vec<PushPull>,
    /// When each member was last sent our table in answer to its push-pull.
    answered: BTreeMap<MemberId, Instant>,
    /// Members that did not answer a fetch of their own metadata at this version: the next
    /// fetch of it asks whoever announces it, so that a member whose streams toward us are
    /// broken does not keep its metadata from us while others hold it.
    owner_silent: BTreeMap<MemberId, u64>,
}

impl Streams {
    /// Queues a sealed message.
    pub(crate) fn push(&mut self, destination: SocketAddr, payload: Vec<u8>) {
        self.outgoing.push_back(StreamMessage { destination, payload });
    }

    /// The next message to send.
    pub(crate) fn poll(&mut self) -> Option<StreamMessage> {
        self.outgoing.pop_front()
    }

    /// Whether a stream message from `sender` with `nonce` is new.
    pub(crate) fn is_fresh(&self, sender: &str, nonce: u64) -> bool {
        self.windows.get(sender).is_none_or(|w| w.is_fresh(nonce))
    }

    /// Records an accepted stream message. Windows whose newest nonce is older than
    /// `oldest` (the oldest nonce the clock check still accepts) are forgotten first when
    /// there are more than `max` of them: the clock check refuses what they would.
    pub(crate) fn accept(&mut self, sender: &str, nonce: u64, oldest: u64, max: usize) {
        if self.windows.len() >= max && !self.windows.contains_key(sender) {
            self.windows.retain(|_, w| w.newest() >= oldest);
            if self.windows.len() >= max {
                return; // Not remembered: refused below by the table's own limit anyway.
            }
        }
        self.windows.entry(SmolStr::new(sender)).or_default().accept(nonce);
    }

    /// A record announced a version of `id`'s metadata that this node lacks.
    pub(crate) fn want(&mut self, id: MemberId, version: u64, spread: bool) {
        self.wanted.push((id, version, spread));
    }

    /// The versions wanted since the last call.
    pub(crate) fn take_wanted(&mut self) -> Vec<(MemberId, u64, bool)> {
        core::mem::take(&mut self.wanted)
    }

    /// Whether a fetch of at least `version` of `id` is in flight or waiting.
    pub(crate) fn is_fetching(&self, id: MemberId, version: u64) -> bool {
        self.fetches.get(&id).is_some_and(|f| f.version >= version)
            || self.queued.get(&id).is_some_and(|q| q.version >= version)
    }

    /// `announcer` holds the version of `id` being fetched: asked next if the fetch in
    /// flight from the member itself goes unanswered and nobody else is lined up.
    pub(crate) fn offer_announcer(&mut self, id: MemberId, announcer: MemberId) {
        if let Some(fetch) = self.fetches.get_mut(&id).filter(|f| f.from_owner) {
            fetch.announcer.get_or_insert(announcer);
        }
    }

    /// Queues a fetch (replacing one of an older version).
    pub(crate) fn enqueue(&mut self, id: MemberId, queued: Queued) {
        if self.queued.insert(id, queued).is_none() {
            self.queue.push_back(id);
        }
    }

    /// The next queued fetch, if there is room in flight for it.
    pub(crate) fn next_queued(&mut self) -> Option<(MemberId, Queued)> {
        while self.fetches.len() < MAX_FETCHES_IN_FLIGHT {
            let id = self.queue.pop_front()?;
            if let Some(queued) = self.queued.remove(&id) {
                return Some((id, queued));
            }
        }
        None
    }

    /// A fetch was asked.
    pub(crate) fn fetching(&mut self, id: MemberId, fetch: Fetch) {
        self.fetches.insert(id, fetch);
    }

    /// Metadata of `id` at `version` arrived: the fetch it satisfies, if any.
    pub(crate) fn fetched(&mut self, id: MemberId, name: &str, version: u64) -> Option<Fetch> {
        let fetch = self.fetches.get(&id).filter(|f| f.name == name && f.version <= version)?;
        let fetch = fetch.clone();
        self.fetches.remove(&id);
        self.owner_silent.remove(&id);
        Some(fetch)
    }

    /// The member did not answer a fetch of its own metadata at `version`.
    pub(crate) fn owner_was_silent(&mut self, id: MemberId, version: u64) {
        self.owner_silent.insert(id, version);
    }

    /// Whether the member left a fetch of its metadata at `version` (or later) unanswered.
    pub(crate) fn is_owner_silent(&self, id: MemberId, version: u64) -> bool {
        self.owner_silent.get(&id).is_some_and(|silent| *silent >= version)
    }

    /// Fetches whose answer did not come by `now`, removed.
    pub(crate) fn expired_fetches(&mut self, now: Instant) -> Vec<(MemberId, Fetch)> {
        if !self.fetches.values().any(|f| f.deadline <= now) {
            return Vec::new();
        }
        let expired: Vec<(MemberId, Fetch)> = self
            .fetches
            .iter()
            .filter(|(_, f)| f.deadline <= now)
            .map(|(id, f)| (*id, f.clone()))
            .collect();
        for (id, _) in &expired {
            self.fetches.remove(id);
        }
        expired
    }

    /// Forgets a reaped member's fetch and push-pull answer time.
    pub(crate) fn forget(&mut self, id: MemberId) {
        self.fetches.remove(&id);
        self.queued.remove(&id);
        self.answered.remove(&id);
        self.owner_silent.remove(&id);
    }

    /// A push-pull request with `cookie` went out.
    pub(crate) fn push_pull_sent(&mut self, cookie: u32, deadline: Instant) {
        if self.push_pulls.len() >= MAX_PUSH_PULLS {
            self.push_pulls.remove(0);
        }
        self.push_pulls.push(PushPull { cookie, deadline });
    }

    /// Whether a reply echoing `echo` answers one of our push-pulls (which it then
    /// closes). A reply that does not was not asked for.
    pub(crate) fn push_pull_answered(&mut self, echo: u32, now: Instant) -> bool {
        self.push_pulls.retain(|p| p.deadline > now);
        match self.push_pulls.iter().position(|p| p.cookie == echo) {
            Some(at) => {
                self.push_pulls.swap_remove(at);
                true
            }
            None => false,
        }
    }

    /// Whether `id`'s push-pull may be answered at `now` (at most once per
    /// [`PUSH_PULL_ANSWER_GAP`]); if so, counts it as answered.
    pub(crate) fn may_answer_push_pull(&mut self, id: MemberId, now: Instant) -> bool {
        if self.answered.get(&id).is_some_and(|at| now < *at + PUSH_PULL_ANSWER_GAP) {
            return false;
        }
        self.answered.insert(id, now);
        true
    }

    /// The earliest fetch deadline.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.fetches.values().map(|f| f.deadline).min()
    }

    /// Number of fetches in flight or waiting.
    pub(crate) fn fetches(&self) -> usize {
        self.fetches.len() + self.queued.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_window_takes_each_nonce_once_in_any_order() {
        let mut window = StreamWindow::default();
        let base = SEQUENCED | 1 << 40;
        // Out of order by far more than a datagram window allows.
        for nonce in [base + 5_000_000, base, base + 3, base + 1_000_000] {
            assert!(window.is_fresh(nonce));
            window.accept(nonce);
            assert!(!window.is_fresh(nonce));
        }
        assert!(window.is_fresh(base + 1));
        for k in 0..20 {
            window.accept(base + 10_000_000 + k);
        }
        // The oldest were pushed out, and everything at or below them is refused now.
        assert!(!window.is_fresh(base + 1));
        assert!(!window.is_fresh(base + 3));
        assert!(window.is_fresh(base + 10_000_100));
        assert!(window.is_fresh(7), "unsequenced");
    }

    #[test]
    fn stale_windows_give_way_when_full() {
        let mut streams = Streams::default();
        let old = SEQUENCED | 1_000;
        let new = SEQUENCED | 1 << 50;
        streams.accept("a", old, new - 10, 2);
        streams.accept("b", new, new - 10, 2);
        assert!(!streams.is_fresh("a", old));
        streams.accept("c", new + 1, new - 10, 2);
        // "a" was forgotten (the clock check refuses its old nonces anyway).
        assert!(streams.is_fresh("a", old));
        assert!(!streams.is_fresh("b", new));
        assert!(!streams.is_fresh("c", new + 1));
    }

    #[test]
    fn push_pull_replies_must_echo_a_request_in_flight() {
        let mut streams = Streams::default();
        let t = Instant::from_secs(1);
        streams.push_pull_sent(42, t + Duration::from_secs(5));
        assert!(!streams.push_pull_answered(41, t));
        assert!(streams.push_pull_answered(42, t));
        assert!(!streams.push_pull_answered(42, t), "answered once");
        streams.push_pull_sent(43, t + Duration::from_secs(5));
        assert!(!streams.push_pull_answered(43, t + Duration::from_secs(6)), "expired");
    }
}
