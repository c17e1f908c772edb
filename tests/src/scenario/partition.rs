//! `partition`: a joined cluster split in halves for longer than the reap time, then
//! healed; how long until each side sees only itself, and until views agree again, and how
//! often members were declared offline by members on their own side meanwhile (they never
//! lost contact with each other).

use std::time::Duration;

use super::measure::{FalseReports, FullViews, Milestones, Spread};
use super::story::Story;
use crate::protocol::Protocol;
use crate::sim::Observation;

/// Runs the story; true if every view is whole again after the heal.
pub(super) fn run<P: Protocol>(story: &mut Story<'_, P>) -> bool {
    let n = story.n();
    let half = n / 2;
    let timing = &story.opts.timing;
    let duration = story
        .opts
        .partition_duration
        .unwrap_or(timing.reap_timeout + timing.suspect_timeout + Duration::from_secs(30));
    story.run_for(Duration::from_secs(5), |_| {});
    // Each node should come to see exactly its own half online.
    let own_half = |v: u32| if v < half { half - 1 } else { n - half - 1 };
    let same_side =
        |o: &Observation| o.report.subject.is_some_and(|s| (s >= half) == (o.viewer >= half));
    let mut reports = FalseReports::default();
    let mut split = Spread::among(n, story.now(), false, |_| true);
    story.sim.partition(|i| u8::from(i >= half));
    story.run_for(duration, |o| {
        reports.observe(o, |_| same_side(o));
        if o.online_count == own_half(o.viewer) {
            split.mark(o.viewer, o.at);
        }
    });
    story.out.split_detect_s = Some(split.times.all_s());
    let healed_at = story.now();
    story.sim.heal();
    let mut views = FullViews::of(&story.sim);
    let mut whole = Milestones::new(healed_at, n as usize, story.opts.curve);
    whole.reach(views.count, healed_at);
    story.wait_for_goal(&mut whole, |whole, o| {
        reports.observe(o, |_| same_side(o));
        views.observe(o);
        whole.record(views.count, o.at);
    });
    story.out.heal_s = Some(whole.all_s());
    story.out.false_offline_same_side = Some(reports.offline);
    story.out.suspect_events_heard = Some(reports.heard_suspect::<P>());
    let healed = whole.all_s().is_some();
    story.out.curve = whole.into_curve();
    healed && story.sim.views_agree()
}
