//! What scenarios measure, kept from the reports nodes make: who has seen something and
//! when the first, 99% and all of them had; which nodes hold a full view; what was falsely
//! reported about healthy members.

use std::time::Duration;

use swim_core::Instant;

use crate::protocol::{Change, Protocol};
use crate::sim::{Observation, Sim};

/// Seconds of a duration.
pub(super) fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Seconds from `earlier` to `later` (zero if `later` is earlier).
pub(super) fn since(later: Instant, earlier: Instant) -> f64 {
    secs(later.saturating_duration_since(earlier))
}

/// How many of `n` nodes make 99% of them.
pub(super) fn p99_count(n: usize) -> usize {
    (n * 99).div_ceil(100)
}

/// Whether `o` says `subject` is gone (offline or forgotten).
pub(super) fn says_gone(o: &Observation, subject: u32) -> bool {
    o.report.subject == Some(subject) && matches!(o.report.change, Change::Offline | Change::Reaped)
}

/// Something a scenario waits for.
pub(super) trait Goal {
    /// Whether it has been reached.
    fn reached(&self) -> bool;
}

/// The fraction of nodes informed over time, for the dissemination plot; records nothing
/// unless asked to.
pub(super) struct Curve {
    origin: Instant,
    total: f64,
    points: Option<Vec<(f64, f64)>>,
}

impl Curve {
    /// A curve of counts out of `total`, in seconds since `origin`; `on`: record it at all.
    pub(super) fn new(on: bool, origin: Instant, total: usize) -> Self {
        Curve { origin, total: total as f64, points: on.then(Vec::new) }
    }

    /// `count` of the total at `at`.
    pub(super) fn point(&mut self, at: Instant, count: usize) {
        if let Some(points) = &mut self.points {
            points.push((since(at, self.origin), count as f64 / self.total));
        }
    }

    /// The points recorded (none if off).
    pub(super) fn into_points(self) -> Vec<(f64, f64)> {
        self.points.unwrap_or_default()
    }
}

/// When a count of nodes first reached one, 99% and all of its total.
pub(super) struct Milestones {
    origin: Instant,
    total: usize,
    p99_needed: usize,
    first: Option<Instant>,
    p99: Option<Instant>,
    all: Option<Instant>,
    curve: Curve,
}

impl Milestones {
    /// Milestones of a count out of `total`, timed from `origin`; `curve`: record every
    /// count for the plot.
    pub(super) fn new(origin: Instant, total: usize, curve: bool) -> Self {
        Milestones {
            origin,
            total,
            p99_needed: p99_count(total),
            first: None,
            p99: None,
            all: None,
            curve: Curve::new(curve, origin, total),
        }
    }

    /// The count is `count` at `at`.
    pub(super) fn record(&mut self, count: usize, at: Instant) {
        self.reach(count, at);
        self.curve.point(at, count);
    }

    /// The count is `count` at `at`, without a point on the curve (a starting state).
    pub(super) fn reach(&mut self, count: usize, at: Instant) {
        if count >= 1 {
            self.first.get_or_insert(at);
        }
        if count >= self.p99_needed {
            self.p99.get_or_insert(at);
        }
        if count == self.total {
            self.all.get_or_insert(at);
        }
    }

    /// Seconds from the origin until the first node, if any.
    pub(super) fn first_s(&self) -> Option<f64> {
        self.first.map(|t| since(t, self.origin))
    }

    /// Seconds from the origin until 99% of the nodes, if reached.
    pub(super) fn p99_s(&self) -> Option<f64> {
        self.p99.map(|t| since(t, self.origin))
    }

    /// Seconds from the origin until every node, if reached.
    pub(super) fn all_s(&self) -> Option<f64> {
        self.all.map(|t| since(t, self.origin))
    }

    /// The curve's points.
    pub(super) fn into_curve(self) -> Vec<(f64, f64)> {
        self.curve.into_points()
    }
}

impl Goal for Milestones {
    fn reached(&self) -> bool {
        self.all.is_some()
    }
}

/// Which nodes have seen something (each counts once), among those whose view counts.
pub(super) struct Spread {
    /// Whether a node has seen it, or does not count (so it never will).
    done: Vec<bool>,
    count: usize,
    /// When the first, 99% and all of the counted nodes had seen it.
    pub(super) times: Milestones,
}

impl Spread {
    /// Each of the `n` nodes for which `counts(i)` holds has to see it, from `origin`;
    /// `curve`: record the fraction that has, for the plot.
    pub(super) fn among(
        n: u32,
        origin: Instant,
        curve: bool,
        counts: impl Fn(u32) -> bool,
    ) -> Self {
        let done: Vec<bool> = (0..n).map(|i| !counts(i)).collect();
        let total = done.iter().filter(|d| !**d).count();
        Spread { done, count: 0, times: Milestones::new(origin, total, curve) }
    }

    /// Node `i` knows it from the start (the source of an update), as a first curve point.
    pub(super) fn informed(&mut self, i: u32) {
        self.done[i as usize] = true;
        self.count += 1;
        let origin = self.times.origin;
        self.times.record(self.count, origin);
    }

    /// Node `viewer` has seen it at `at` (again, or without counting, changes nothing).
    pub(super) fn mark(&mut self, viewer: u32, at: Instant) {
        let done = &mut self.done[viewer as usize];
        if !*done {
            *done = true;
            self.count += 1;
            self.times.record(self.count, at);
        }
    }
}

impl Goal for Spread {
    fn reached(&self) -> bool {
        self.times.reached()
    }
}

/// Which nodes see every other running node online, kept from reports.
pub(super) struct FullViews {
    full: Vec<bool>,
    /// Nodes with the full view.
    pub(super) count: usize,
    target: u32,
}

impl FullViews {
    /// `n` nodes, none of which sees anyone yet.
    pub(super) fn new(n: usize) -> Self {
        FullViews {
            full: vec![n <= 1; n],
            count: if n <= 1 { n } else { 0 },
            target: n.saturating_sub(1) as u32,
        }
    }

    /// The current full views of `sim`'s nodes (after crashes change who should be seen).
    pub(super) fn of<P: Protocol>(sim: &Sim<P>) -> Self {
        let mut views = FullViews::new(sim.len());
        views.resync(sim);
        views
    }

    /// Takes in a report.
    pub(super) fn observe(&mut self, o: &Observation) {
        let now_full = o.online_count == self.target;
        let slot = &mut self.full[o.viewer as usize];
        if *slot != now_full {
            *slot = now_full;
            if now_full {
                self.count += 1;
            } else {
                self.count -= 1;
            }
        }
    }

    /// Recomputes from the simulator.
    fn resync<P: Protocol>(&mut self, sim: &Sim<P>) {
        let up = (0..sim.len() as u32).filter(|&i| sim.is_up(i)).count();
        self.target = up.saturating_sub(1) as u32;
        self.count = 0;
        for i in 0..sim.len() as u32 {
            let full = sim.is_up(i) && sim.online_count(i) == self.target;
            self.full[i as usize] = full;
            self.count += usize::from(full);
        }
    }
}

/// Which nodes hold every other node's metadata (each node publishes one version, from its
/// start), kept from metadata reports.
pub(super) struct MetadataViews {
    /// Bit `viewer * n + subject`: the viewer reported the subject's metadata.
    seen: Vec<u64>,
    /// Subjects whose metadata each viewer reported.
    known: Vec<u32>,
    n: u32,
    /// Nodes holding every other node's metadata.
    pub(super) count: usize,
}

impl MetadataViews {
    /// `n` nodes, none of which holds anyone's metadata yet.
    pub(super) fn new(n: usize) -> Self {
        let bits = n * n;
        MetadataViews {
            seen: vec![0; bits.div_ceil(64)],
            known: vec![0; n],
            n: n as u32,
            count: usize::from(n == 1),
        }
    }

    /// Takes in a report.
    pub(super) fn observe(&mut self, o: &Observation) {
        let Some(subject) = o.report.subject.filter(|s| *s < self.n && *s != o.viewer) else {
            return;
        };
        if o.report.change != Change::Metadata {
            return;
        }
        let bit = u64::from(o.viewer) * u64::from(self.n) + u64::from(subject);
        let (word, mask) = ((bit / 64) as usize, 1u64 << (bit % 64));
        if self.seen[word] & mask == 0 {
            self.seen[word] |= mask;
            let known = &mut self.known[o.viewer as usize];
            *known += 1;
            if *known == self.n - 1 {
                self.count += 1;
            }
        }
    }
}

/// Counts of suspect and offline reports about healthy members, of refutations and forced
/// rejoins, and of suspicions heard second-hand.
#[derive(Default)]
pub(super) struct FalseReports {
    /// Suspect reports about healthy members.
    pub(super) suspect: u64,
    /// Offline reports about healthy members.
    pub(super) offline: u64,
    /// Refutations (swim).
    pub(super) refuted: u64,
    /// New identities taken (foca).
    pub(super) rejoined: u64,
    /// Suspect reports, about any member, at nodes that did not raise the suspicion.
    heard_suspect: u64,
}

impl FalseReports {
    /// Takes in a report; `healthy(s)`: whether member `s` is healthy at the time.
    pub(super) fn observe(&mut self, o: &Observation, healthy: impl Fn(u32) -> bool) {
        if o.report.change == Change::Suspect && !o.report.firsthand {
            self.heard_suspect += 1;
        }
        match (o.report.change, o.report.subject) {
            (Change::Suspect, Some(s)) if healthy(s) => self.suspect += 1,
            (Change::Offline, Some(s)) if healthy(s) => self.offline += 1,
            (Change::Refuted, _) => self.refuted += 1,
            (Change::Rejoined, _) => self.rejoined += 1,
            _ => {}
        }
    }

    /// Suspect reports heard second-hand, if implementation `P` reports them at all.
    pub(super) fn heard_suspect<P: Protocol>(&self) -> Option<u64> {
        P::REPORTS_HEARD_SUSPICIONS.then_some(self.heard_suspect)
    }
}
