//! One simulated node: its implementation, its process state (up, paused, crashed), its one
//! live timer entry, and the set of nodes it sees online, kept from its reports.
//!
//! A node has at most one live timer entry in the queue, re-armed only when its
//! `poll_timeout` changes; an entry whose generation is no longer the node's is stale and
//! skipped. Everything the node does goes to an [`Outbox`], never to shared state.

use swim_core::Instant;

use super::effects::{Outbox, Window};
use super::queue::{Entry, Kind};
use crate::protocol::{Protocol, Report, addr};

/// A node's process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    Up,
    /// Handles nothing before `until` (microseconds): datagrams wait in its socket buffer,
    /// its timer fires late, in the order `resume` says.
    Paused {
        until: u64,
        resume: Resume,
    },
    Down,
}

/// What a paused node does first when it resumes, with its timer overdue and datagrams
/// waiting in its socket: the choice of its driver.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Resume {
    /// Timer and datagrams in the order they came due: a datagram that arrived before the
    /// first missed deadline is handled before the timer, later ones after it.
    #[default]
    AsQueued,
    /// The overdue timer first, then the datagrams (a driver that runs expired timers
    /// before it reads the socket).
    TimersFirst,
    /// Every waiting datagram first, then the timer (a driver that drains the socket
    /// before it runs expired timers).
    SocketFirst,
}

/// The nodes one node sees online: a bitset and its count, updated from its reports rather
/// than recomputed.
pub(crate) struct OnlineSet {
    /// Bit s set: node s is seen online.
    words: Vec<u64>,
    count: u32,
}

impl OnlineSet {
    /// Nobody online, room for `nodes` nodes.
    pub(crate) fn new(nodes: usize) -> Self {
        OnlineSet { words: vec![0; nodes.div_ceil(64)], count: 0 }
    }

    /// Whether node `s` is seen online.
    pub(crate) fn contains(&self, s: u32) -> bool {
        self.words.get((s / 64) as usize).is_some_and(|w| w & (1 << (s % 64)) != 0)
    }

    /// How many nodes are seen online.
    pub(crate) fn count(&self) -> u32 {
        self.count
    }

    /// Takes in what `report` says about its subject (a report with no online status, or
    /// about an unknown node, changes nothing).
    fn apply(&mut self, report: &Report, nodes: usize) {
        let (Some(s), Some(online)) = (report.subject, report.online) else { return };
        if s as usize >= nodes {
            return;
        }
        let (word, bit) = ((s / 64) as usize, 1u64 << (s % 64));
        let Some(w) = self.words.get_mut(word) else { return };
        if (*w & bit != 0) != online {
            *w ^= bit;
            if online {
                self.count += 1;
            } else {
                self.count -= 1;
            }
        }
    }

    /// Nobody online (a crash or a fresh process).
    pub(crate) fn clear(&mut self) {
        self.words.fill(0);
        self.count = 0;
    }
}

/// One node of the simulation.
pub(crate) struct Slot<P> {
    /// The implementation; `None` while crashed.
    pub(crate) proto: Option<P>,
    pub(crate) state: State,
    /// When its live timer entry is due.
    timer_at: Option<u64>,
    /// The generation of its live timer entry.
    timer_gen: u32,
    /// Restarts so far (0 for the first process).
    pub(crate) life: u32,
    pub(crate) online: OnlineSet,
}

impl<P: Protocol> Slot<P> {
    /// A running node with `proto`, seeing nobody online, in a simulation of `nodes` nodes.
    pub(crate) fn new(proto: P, nodes: usize) -> Self {
        Slot {
            proto: Some(proto),
            state: State::Up,
            timer_at: None,
            timer_gen: 0,
            life: 0,
            online: OnlineSet::new(nodes),
        }
    }

    /// The process stops: state dropped, timer entry stale, nothing seen online.
    pub(crate) fn crash(&mut self) {
        self.proto = None;
        self.state = State::Down;
        self.timer_at = None;
        self.timer_gen = self.timer_gen.wrapping_add(1);
        self.online.clear();
    }

    /// The process stops at `now` until `until`, then resumes as `resume` says. Returns a
    /// timer entry to queue now, `(at, generation)`, when the node's timer must move.
    pub(crate) fn pause(&mut self, now: u64, until: u64, resume: Resume) -> Option<(u64, u32)> {
        if self.state == State::Down {
            return None;
        }
        self.state = State::Paused { until, resume };
        // Timers first: a wake-up queued at `until` before anything else can be sorts
        // before every datagram that comes due during the pause.
        let overdue = self.timer_at.is_some_and(|at| at >= now && at < until);
        if resume != Resume::TimersFirst || !overdue {
            return None;
        }
        self.timer_gen = self.timer_gen.wrapping_add(1);
        self.timer_at = Some(until);
        Some((until, self.timer_gen))
    }

    /// Handles `entry`, a delivery or a timer wake-up for this node (number `entry.node`).
    pub(crate) fn handle(&mut self, entry: Entry, out: &mut Outbox, window: &Window<'_>) {
        match entry.kind {
            Kind::Deliver | Kind::Stream => self.deliver(entry, out, window),
            Kind::Timer => self.wake(entry, out, window),
        }
    }

    fn deliver(&mut self, entry: Entry, out: &mut Outbox, window: &Window<'_>) {
        let now = entry.at;
        match self.state {
            State::Down => {
                if entry.kind == Kind::Stream {
                    out.stats.streams_broken += 1;
                } else {
                    out.stats.undeliverable += 1;
                }
                out.free(entry.data);
                return;
            }
            State::Paused { until, .. } if until > now => {
                // Still in the socket buffer: same order, handled when the pause ends.
                let backlog = (until, entry.kind, entry.from, entry.data);
                out.schedule(window, now, entry.node, backlog);
                return;
            }
            _ => self.state = State::Up,
        }
        let Some(proto) = self.proto.as_mut() else {
            out.free(entry.data);
            return;
        };
        out.delivered(now, entry.node, entry.from, entry.data);
        out.stats.events += 1;
        let payload = &window.payloads[entry.data as usize];
        if entry.kind == Kind::Stream {
            out.stats.streams_delivered += 1;
            proto.handle_stream(Instant::from_micros(now), addr(entry.from), payload);
        } else {
            out.stats.delivered += 1;
            proto.handle_datagram(Instant::from_micros(now), addr(entry.from), payload);
        }
        out.free(entry.data);
        self.settle(entry.node, now, false, out, window);
    }

    fn wake(&mut self, entry: Entry, out: &mut Outbox, window: &Window<'_>) {
        let now = entry.at;
        if self.timer_gen != entry.data || self.state == State::Down {
            out.stats.stale_timers += 1;
            return;
        }
        if let State::Paused { until, resume } = self.state {
            if until > now {
                // Socket first: one microsecond after the backlog, all due at `until`.
                let at = if resume == Resume::SocketFirst { until + 1 } else { until };
                self.timer_at = Some(at);
                out.schedule(window, now, entry.node, (at, Kind::Timer, 0, entry.data));
                return;
            }
            self.state = State::Up;
        }
        self.timer_at = None;
        let Some(proto) = self.proto.as_mut() else {
            return;
        };
        out.stats.events += 1;
        proto.handle_timeout(Instant::from_micros(now));
        self.settle(entry.node, now, true, out, window);
    }

    /// After any input or command: records what node `i` wants sent and its reports, and
    /// re-arms its timer if its deadline moved. `woke`: the input was its timer.
    pub(crate) fn settle(
        &mut self,
        i: u32,
        now: u64,
        woke: bool,
        out: &mut Outbox,
        window: &Window<'_>,
    ) {
        let Some(proto) = self.proto.as_mut() else {
            return;
        };
        proto.drain_transmits(|to, datagram| out.sent(now, i, to, datagram));
        proto.drain_streams(|to, message| out.streamed(now, i, to, &message));
        while let Some(report) = proto.poll_report() {
            self.online.apply(&report, window.nodes);
            out.reported(now, i, report, self.online.count());
        }
        let deadline = proto.poll_timeout().map(|t| {
            let t = t.as_micros();
            if woke && t <= now {
                out.stats.timer_spins += 1;
                now + 1
            } else if t <= now {
                // Due now (e.g. gossip brought forward by a command): wake at once, but
                // never at a time already handled.
                now
            } else {
                t
            }
        });
        if deadline != self.timer_at {
            self.timer_gen = self.timer_gen.wrapping_add(1);
            self.timer_at = deadline;
            if let Some(at) = deadline {
                out.schedule(window, now, i, (at, Kind::Timer, 0, self.timer_gen));
            }
        }
    }
}
