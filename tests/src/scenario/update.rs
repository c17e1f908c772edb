//! `update`: in a joined cluster one member changes its metadata (two bytes, or
//! `update_bytes`); how long until 99% and until every node knows.

use std::time::Duration;

use super::measure::{Spread, secs};
use super::story::Story;
use crate::protocol::{Change, Protocol, initial_metadata};

/// Runs the story; true if every node learned the update (by report and in its state).
pub(super) fn run<P: Protocol>(story: &mut Story<'_, P>) -> bool {
    let n = story.n();
    story.run_for(Duration::from_secs(5), |_| {});
    let source = story.below(n);
    let mut informed = Spread::among(n, story.now(), story.opts.curve, |_| true);
    informed.informed(source);
    let value = match story.opts.update_bytes {
        0 => b"2".to_vec(),
        bytes => initial_metadata(u32::MAX - source, bytes),
    };
    if !story.sim.set_metadata(source, "version", &value) {
        return false;
    }
    story.wait_for_goal(&mut informed, |informed, o| {
        if o.report.change == Change::Metadata && o.report.subject == Some(source) {
            informed.mark(o.viewer, o.at);
        }
    });
    // Reports say when; the final state must agree.
    let sim = &story.sim;
    let known = (0..n)
        .filter(|&v| {
            v == source || sim.node(v).is_some_and(|p| p.has_metadata(source, "version", &value))
        })
        .count();
    let round = secs(story.opts.timing.gossip_interval);
    let (all, p99) = (informed.times.all_s(), informed.times.p99_s());
    story.out.update_all_s = Some(all);
    story.out.update_p99_s = Some(p99);
    story.out.update_rounds = Some(all.map(|s| s / round));
    story.out.update_p99_rounds = Some(p99.map(|s| s / round));
    story.out.curve = informed.times.into_curve();
    all.is_some() && known == n as usize
}
