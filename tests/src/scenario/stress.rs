//! `stress` (Lifeguard's benchmark): a joined cluster with a few overloaded members, each
//! handling every datagram seconds late, under light loss; false reports about the healthy
//! members, then a real crash of a healthy member and its detection.

use super::measure::{FalseReports, Spread, says_gone, secs};
use super::story::Story;
use crate::protocol::Protocol;

/// Runs the story; true if every healthy survivor saw the crash.
pub(super) fn run<P: Protocol>(story: &mut Story<'_, P>) -> bool {
    let n = story.n();
    let slow = slow_down(story);
    // Only swim has Lifeguard.
    story.out.lifeguard = Some(story.opts.timing.lifeguard && P::NAME == "swim");
    story.out.slow = Some(slow.iter().filter(|s| **s).count());
    let mut reports = FalseReports::default();
    story.run_for(story.opts.loss_duration, |o| reports.observe(o, |s| !slow[s as usize]));
    // A real crash of a healthy member: detection at every healthy survivor.
    let healthy: Vec<u32> = (1..n).filter(|&i| !slow[i as usize]).collect();
    let target = healthy[story.below(healthy.len() as u32) as usize];
    let crashed_at = story.now();
    story.sim.crash(target);
    let counts = |i: u32| i != target && !slow[i as usize];
    let mut offline = Spread::among(n, crashed_at, false, counts);
    story.wait_for_goal(&mut offline, |offline, o| {
        reports.observe(o, |s| s != target && !slow[s as usize]);
        if says_gone(o, target) {
            offline.mark(o.viewer, o.at);
        }
    });
    story.out.false_suspect_healthy = Some(reports.suspect);
    story.out.false_offline_healthy = Some(reports.offline);
    story.out.suspect_events_heard = Some(reports.heard_suspect::<P>());
    story.out.detect_first_s = Some(offline.times.first_s());
    story.out.detect_all_s = Some(offline.times.all_s());
    story.out.duration_s = Some(secs(story.opts.loss_duration));
    offline.times.all_s().is_some()
}

/// Makes `--slow` members overloaded: never node 0 (the seed), at most all but two others.
/// Returns which nodes are slow.
fn slow_down<P: Protocol>(story: &mut Story<'_, P>) -> Vec<bool> {
    let n = story.n();
    let k = story.opts.slow.min(n.saturating_sub(3) as usize);
    let mut slow = vec![false; n as usize];
    let mut chosen = 0;
    while chosen < k {
        let i = 1 + story.below(n - 1);
        if !slow[i as usize] {
            slow[i as usize] = true;
            chosen += 1;
            story.sim.slow(i, story.opts.slow_delay);
        }
    }
    slow
}
