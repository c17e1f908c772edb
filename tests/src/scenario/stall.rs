//! `stall`: in a joined cluster, one member at a time stops for a few seconds (a process
//! or machine paused: its timers fire late and its datagrams wait in the socket), then
//! resumes. A member that wakes after its probe deadlines have passed must not accuse the
//! healthy members it was probing: count the suspicions resumed members raise themselves.

use std::time::Duration;

use swim_core::Instant;

use super::Stall;
use super::measure::{FalseReports, secs};
use super::story::Story;
use crate::protocol::{Change, Protocol};
use crate::sim::Observation;

/// A suspicion a member raises within this long after resuming is its stall's doing.
pub const AFTER_RESUME: Duration = Duration::from_secs(2);

/// A member that stalled counts as healthy again this long after it resumed (time to
/// refute suspicions of it and for the refutation to spread).
pub const RECOVERY: Duration = Duration::from_secs(10);

/// The stalls so far, and what was reported meanwhile.
struct Stalls {
    /// Each member's latest stall, if any.
    latest: Vec<Option<Stall>>,
    log: Vec<Stall>,
    reports: FalseReports,
    /// Offline reports about any member (no stall is long enough to justify one).
    offline: u64,
    by_resumed: u64,
}

impl Stalls {
    fn new(n: u32) -> Self {
        Stalls {
            latest: vec![None; n as usize],
            log: Vec::new(),
            reports: FalseReports::default(),
            offline: 0,
            by_resumed: 0,
        }
    }

    fn begin(&mut self, stall: Stall) {
        self.latest[stall.member as usize] = Some(stall);
        self.log.push(stall);
    }

    /// Whether `o` is a suspicion its viewer raised itself just after resuming, about a
    /// member that has not stalled since the viewer's own stall began.
    fn raised_by_resumed(&self, o: &Observation) -> bool {
        let (Some(subject), Some(own)) = (o.report.subject, self.latest[o.viewer as usize]) else {
            return false;
        };
        let just_resumed = o.at >= own.until && o.at <= own.until + AFTER_RESUME;
        let subject_ran = self.latest[subject as usize].is_none_or(|s| s.until <= own.from);
        o.report.change == Change::Suspect && o.report.firsthand && just_resumed && subject_ran
    }

    fn hear(&mut self, o: &Observation) {
        let latest = &self.latest;
        self.reports.observe(o, |s| recovered(latest[s as usize], o.at));
        self.offline += u64::from(o.report.change == Change::Offline);
        self.by_resumed += u64::from(self.raised_by_resumed(o));
    }
}

/// Whether a member whose latest stall is `latest` counts as healthy at `at`: it never
/// stalled, or resumed at least `RECOVERY` ago.
fn recovered(latest: Option<Stall>, at: Instant) -> bool {
    latest.is_none_or(|stall| at >= stall.until + RECOVERY)
}

/// Runs the story; true if no resumed member accused a healthy one, nobody was declared
/// offline, and every view is full at the end.
pub(super) fn run<P: Protocol>(story: &mut Story<'_, P>) -> bool {
    let n = story.n();
    let opts = story.opts;
    let mut stalls = Stalls::new(n);
    let start = story.now();
    for k in 0..opts.stalls as u32 {
        let at = start + opts.stall_every * k;
        story.run_until(at, |o| stalls.hear(o));
        let member = story.below(n);
        story.sim.pause_then(member, opts.stall_duration, opts.stall_resume);
        stalls.begin(Stall { member, from: at, until: at + opts.stall_duration });
    }
    story.run_for(opts.stall_duration + RECOVERY, |o| stalls.hear(o));
    let duration = story.now().saturating_duration_since(start);
    let sim = &story.sim;
    let full = (0..n).filter(|&v| sim.node(v).is_some_and(|p| p.sees_all_available(v, n))).count();
    let out = &mut story.out;
    out.stalls = Some(stalls.log.len());
    out.false_suspect_by_resumed = Some(stalls.by_resumed);
    out.false_suspect = Some(stalls.reports.suspect);
    out.false_offline = Some(stalls.offline);
    out.refutations = Some(stalls.reports.refuted);
    out.forced_rejoins = Some(stalls.reports.rejoined);
    out.suspect_events_heard = Some(stalls.reports.heard_suspect::<P>());
    out.full_views = Some(full);
    out.duration_s = Some(secs(duration));
    out.stall_log = stalls.log;
    stalls.by_resumed == 0 && stalls.offline == 0 && full == n as usize
}
