//! `loss`: a joined cluster under random loss for a while; false suspicions and
//! declarations, and whether every node still holds every other as a member at the end.

use super::measure::{Curve, FalseReports, FullViews, secs};
use super::story::Story;
use crate::protocol::Protocol;

/// Runs the story; true if no healthy member was declared offline and every view is full.
pub(super) fn run<P: Protocol>(story: &mut Story<'_, P>) -> bool {
    let n = story.n();
    story.sim.set_loss(story.opts.loss);
    let mut reports = FalseReports::default();
    let mut views = FullViews::of(&story.sim);
    let mut curve = Curve::new(story.opts.curve, story.now(), n as usize);
    story.run_for(story.opts.loss_duration, |o| {
        reports.observe(o, |_| true);
        views.observe(o);
        curve.point(o.at, views.count);
    });
    // A complete live view holds every other node as a member (online, or suspect while
    // it refutes: at 5% loss some suspicion is always in flight somewhere).
    let sim = &story.sim;
    let full = (0..n).filter(|&v| sim.node(v).is_some_and(|p| p.sees_all_available(v, n))).count();
    story.out.false_suspect = Some(reports.suspect);
    story.out.false_offline = Some(reports.offline);
    story.out.suspect_events_heard = Some(reports.heard_suspect::<P>());
    story.out.forced_rejoins = Some(reports.rejoined);
    story.out.refutations = Some(reports.refuted);
    story.out.full_views = Some(full);
    story.out.duration_s = Some(secs(story.opts.loss_duration));
    story.out.curve = curve.into_points();
    full == n as usize && reports.offline == 0
}
