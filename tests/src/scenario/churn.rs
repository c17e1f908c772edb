//! `churn`: in a joined cluster, every second one member crashes, leaves, or crashes and
//! comes back under the same name; false declarations about members that have been up a
//! while, and, after quiescence, entries about departed members that were never forgotten.

use std::time::Duration;

use swim_core::Instant;

use super::measure::FalseReports;
use super::story::Story;
use crate::protocol::Protocol;
use crate::sim::Observation;

/// The members' lives, as the story made them.
struct Lives {
    /// When each member's current process started; `None` while it is down.
    up_since: Vec<Option<Instant>>,
    /// Members that left or crashed for good.
    departed: Vec<bool>,
    /// Crashed members and when they come back.
    restarts: Vec<(Instant, u32)>,
    /// A member counts as healthy once it has run this long: any offline report about it
    /// after that is about its current life.
    settle: Duration,
}

impl Lives {
    /// Whether `o`'s subject `s` had been up long enough to count as healthy.
    fn healthy(&self, s: u32, o: &Observation) -> bool {
        self.up_since[s as usize].is_some_and(|t| o.at.saturating_duration_since(t) >= self.settle)
    }
}

/// Runs the story; true if views agree and no departed member is remembered.
pub(super) fn run<P: Protocol>(story: &mut Story<'_, P>) -> bool {
    let n = story.n();
    let timing = &story.opts.timing;
    let mut lives = Lives {
        up_since: vec![Some(Instant::ZERO); n as usize],
        departed: vec![false; n as usize],
        restarts: Vec::new(),
        settle: timing.suspect_timeout + timing.ping_interval * 3 + Duration::from_secs(20),
    };
    // Quiescence: long enough for every departure to be declared, reaped and forgotten.
    let quiet = timing.suspect_timeout + timing.reap_timeout * 2 + Duration::from_secs(30);
    let mut reports = FalseReports::default();
    let end = story.now() + story.opts.churn_duration;
    while story.now() < end && n > 2 {
        let next = story.now() + Duration::from_secs(1);
        story.run_until(next, |o| reports.observe(o, |s| lives.healthy(s, o)));
        churn_once(story, &mut lives);
    }
    for (_, i) in std::mem::take(&mut lives.restarts) {
        story.sim.restart(i, 0);
        lives.up_since[i as usize] = Some(story.now());
    }
    // Left nodes have said goodbye: give the news a few seconds to spread, then stop them
    // so only the departure remains to be reaped.
    story.run_for(Duration::from_secs(5), |o| reports.observe(o, |s| lives.healthy(s, o)));
    for i in 0..n {
        if lives.departed[i as usize] && story.sim.is_up(i) {
            story.sim.crash(i);
        }
    }
    story.run_for(quiet, |o| reports.observe(o, |s| lives.healthy(s, o)));
    let sim = &story.sim;
    let live: Vec<u32> = (0..n).filter(|&i| sim.is_up(i)).collect();
    let stale = live
        .iter()
        .filter_map(|&v| sim.node(v))
        .map(|p| (0..n).filter(|&s| lives.departed[s as usize] && p.knows(s)).count())
        .sum();
    let agree = sim.views_agree();
    let full = live.iter().filter(|&&v| live.iter().all(|&s| s == v || sim.sees_online(v, s)));
    story.out.full_views = Some(full.count());
    story.out.false_suspect = Some(reports.suspect);
    story.out.false_offline = Some(reports.offline);
    story.out.suspect_events_heard = Some(reports.heard_suspect::<P>());
    story.out.refutations = Some(reports.refuted);
    story.out.forced_rejoins = Some(reports.rejoined);
    story.out.stale_members = Some(stale);
    agree && stale == 0
}

/// One second's step: members due back restart, then one running member (never node 0,
/// the seed) leaves, crashes for good, or crashes to come back 5-20 s later.
fn churn_once<P: Protocol>(story: &mut Story<'_, P>, lives: &mut Lives) {
    let n = story.n();
    let now = story.now();
    lives.restarts.sort_unstable();
    while lives.restarts.first().is_some_and(|(at, _)| *at <= now) {
        let (_, i) = lives.restarts.remove(0);
        story.sim.restart(i, 0);
        lives.up_since[i as usize] = Some(now);
    }
    let candidate = 1 + story.below(n - 1);
    let c = candidate as usize;
    if lives.up_since[c].is_none() || lives.departed[c] {
        return;
    }
    lives.up_since[c] = None;
    match story.below(4) {
        0 => {
            story.sim.leave(candidate);
            lives.departed[c] = true;
        }
        1 => {
            story.sim.crash(candidate);
            lives.departed[c] = true;
        }
        _ => {
            story.sim.crash(candidate);
            let back = now + Duration::from_secs(5 + u64::from(story.below(16)));
            lives.restarts.push((back, candidate));
        }
    }
}
