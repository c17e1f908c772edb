//! `detect`: in a joined cluster one member crashes; how long until the first and until
//! every survivor sees it offline.

use std::time::Duration;

use super::measure::{FalseReports, Spread, says_gone};
use super::story::Story;
use crate::protocol::Protocol;

/// Runs the story; true if every survivor saw the crash.
pub(super) fn run<P: Protocol>(story: &mut Story<'_, P>) -> bool {
    let mut reports = FalseReports::default();
    story.run_for(Duration::from_secs(5), |o| reports.observe(o, |_| true));
    let target = story.any_but_the_seed();
    let crashed_at = story.now();
    story.sim.crash(target);
    let mut offline = Spread::among(story.n(), crashed_at, story.opts.curve, |i| i != target);
    story.wait_for_goal(&mut offline, |offline, o| {
        reports.observe(o, |s| s != target);
        if says_gone(o, target) {
            offline.mark(o.viewer, o.at);
        }
    });
    story.out.detect_first_s = Some(offline.times.first_s());
    story.out.detect_all_s = Some(offline.times.all_s());
    story.out.false_suspect = Some(reports.suspect);
    story.out.false_offline = Some(reports.offline);
    story.out.suspect_events_heard = Some(reports.heard_suspect::<P>());
    let detected = offline.times.all_s().is_some();
    story.out.curve = offline.times.into_curve();
    detected
}
