//! The fault scenarios on real processes: a silent split into halves and its heal, churn
//! (crashes, restarts under the same name, graceful leaves), stress (members stalled by
//! SIGSTOP under light loss, then a real crash), and stall (one member at a time stopped by
//! SIGSTOP and resumed, as the simulator's `stall`).

use std::cell::Cell;
use std::time::{Duration, Instant as WallClock};

use crate::protocol::Change;
use crate::scenario::stall::{AFTER_RESUME, RECOVERY};
use crate::testbed::Error;
use crate::testbed::fleet::Seen;
use crate::testbed::line::{self, What, wall_micros};
use crate::testbed::net::member_addr;
use crate::testbed::scenarios::{Detection, FalseReports, FullViews, Real};
use crate::testbed::simulated::Outcome;

/// Splits the joined cluster in halves for the plan's partition time (silent drops in the
/// bridge), heals it, and waits until every member sees every other online again.
pub fn partition(real: &mut Real, out: &mut Outcome) -> Result<bool, Error> {
    let n = real.fleet.len();
    let half = n / 2;
    let duration = real.plan.partition_duration();
    real.fleet.run_for(Duration::from_secs(5), &mut |_| {});
    real.fleet.net().split(half)?;
    let split_at = wall_micros();
    let side = |i: u32| i >= half;
    let own_half = |v: u32| if v < half { half - 1 } else { n - half - 1 };
    let (mut split, mut split_count, mut split_all) = (vec![false; n as usize], 0, None);
    let mut same_side = 0u64;
    let mut count_same_side = |s: &Seen| {
        let about_own = s.report.subject.is_some_and(|subject| side(subject) == side(s.viewer));
        if s.report.change == Change::Offline && about_own {
            same_side += 1;
        }
    };
    let mut views = FullViews::new(n as usize);
    real.fleet.run_for(duration, &mut |s| {
        let v = s.viewer as usize;
        if s.online_count == own_half(s.viewer) && !split[v] {
            split[v] = true;
            split_count += 1;
            if split_count == n {
                split_all.get_or_insert(s.at);
            }
        }
        count_same_side(s);
        views.observe(s);
    });
    out.split_detect_s = Some(split_all.map(|t: u64| t.saturating_sub(split_at) as f64 / 1e6));
    real.fleet.net().heal()?;
    let healed_at = wall_micros();
    views.resync(&real.fleet);
    let mut all = (views.count == n as usize).then_some(healed_at);
    let limit = real.plan.limit;
    if all.is_none() {
        real.fleet.run_until_done(limit, |s| {
            views.observe(s);
            count_same_side(s);
            if views.count == n as usize {
                all = Some(s.at);
            }
            all.is_some()
        });
    }
    // A few seconds more: offline reports about one's own side may trail the heal.
    if all.is_some() {
        real.fleet.run_for(Duration::from_secs(5), &mut count_same_side);
    }
    out.heal_s = Some(all.map(|t| t.saturating_sub(healed_at) as f64 / 1e6));
    real.extra.false_offline_same_side = Some(same_side);
    Ok(all.is_some() && views_agree(real))
}

/// Whether every running member sees exactly the running members (others) online.
fn views_agree(real: &Real) -> bool {
    let fleet = &real.fleet;
    let up: Vec<u32> = (0..fleet.len()).filter(|&i| fleet.is_up(i)).collect();
    up.iter().all(|&v| {
        fleet.online_count(v) as usize == up.len() - 1
            && up.iter().all(|&s| s == v || fleet.sees_online(v, s))
    })
}

/// Every second one running member (never member 0) crashes, leaves, or crashes and
/// restarts 5-20 s later under the same name; then quiescence long enough for every
/// departure to be declared, reaped and forgotten.
pub fn churn(real: &mut Real, out: &mut Outcome) -> Result<bool, Error> {
    let n = real.fleet.len();
    let timing = real.plan.timing.clone();
    let settle = timing.suspect_timeout + timing.ping_interval * 3 + Duration::from_secs(20);
    let now = wall_micros();
    let mut up_since: Vec<Option<u64>> = vec![Some(now.saturating_sub(60_000_000)); n as usize];
    let mut departed = vec![false; n as usize];
    let mut reports = FalseReports::default();
    let settle_us = settle.as_micros() as u64;
    let mut observe_into = |s: &Seen, up_since: &[Option<u64>]| {
        let healthy = |subject: u32| {
            up_since[subject as usize].is_some_and(|t| s.at.saturating_sub(t) >= settle_us)
        };
        reports.observe(s, healthy);
    };
    let mut restarts: Vec<(u64, u32)> = Vec::new();
    let end = WallClock::now() + real.plan.churn_duration;
    while WallClock::now() < end {
        let snapshot = up_since.clone();
        real.fleet.run_for(Duration::from_secs(1), &mut |s| observe_into(s, &snapshot));
        let now = wall_micros();
        restarts.sort_unstable();
        while restarts.first().is_some_and(|(at, _)| *at <= now) {
            let (_, i) = restarts.remove(0);
            real.fleet.start(i, Some(0))?;
            up_since[i as usize] = Some(now);
        }
        let candidate = 1 + real.below(n - 1);
        if up_since[candidate as usize].is_none() || departed[candidate as usize] {
            continue;
        }
        up_since[candidate as usize] = None;
        match real.below(4) {
            0 => {
                real.fleet.leave(candidate);
                departed[candidate as usize] = true;
            }
            1 => {
                real.fleet.kill(candidate);
                departed[candidate as usize] = true;
            }
            _ => {
                real.fleet.kill(candidate);
                let back = now + 5_000_000 + u64::from(real.below(16)) * 1_000_000;
                restarts.push((back, candidate));
            }
        }
    }
    for (_, i) in restarts {
        real.fleet.start(i, Some(0))?;
        up_since[i as usize] = Some(wall_micros());
    }
    let snapshot = up_since.clone();
    real.fleet.run_for(Duration::from_secs(5), &mut |s| observe_into(s, &snapshot));
    for i in 0..n {
        if departed[i as usize] {
            real.fleet.kill(i);
        }
    }
    let quiet = timing.suspect_timeout + timing.reap_timeout * 2 + Duration::from_secs(30);
    real.fleet.run_for(quiet, &mut |s| observe_into(s, &snapshot));
    let stale = stale_entries(real, &departed);
    let live: Vec<u32> = (0..n).filter(|&i| real.fleet.is_up(i)).collect();
    out.false_suspect = Some(reports.suspect);
    out.false_offline = Some(reports.offline);
    out.refutations = Some(reports.refuted);
    out.forced_rejoins = Some(reports.rejoined);
    out.stale_members = Some(stale);
    out.full_views = Some(
        live.iter()
            .filter(|&&v| live.iter().all(|&s| s == v || real.fleet.sees_online(v, s)))
            .count(),
    );
    Ok(views_agree(real) && stale == 0)
}

/// Entries about departed members held by the running members, whatever their status.
fn stale_entries(real: &mut Real, departed: &[bool]) -> usize {
    let names: Vec<String> = (0..departed.len() as u32)
        .filter(|&i| departed[i as usize])
        .map(|i| member_addr(i).to_string())
        .collect();
    let tables = real.views();
    tables
        .iter()
        .flatten()
        .map(|t| {
            let held = t.online.iter().chain(&t.suspect).chain(&t.gone);
            held.filter(|name| names.contains(name)).count()
        })
        .sum()
}

/// `slow` members (never member 0) each stalled by SIGSTOP for `stall` every
/// `stall_every`, for the plan's duration, under the plan's loss; then a healthy member
/// crashes and every healthy survivor must see it offline.
pub fn stress(real: &mut Real, out: &mut Outcome) -> Result<bool, Error> {
    let n = real.fleet.len();
    let k = real.plan.slow.min(n.saturating_sub(3) as usize);
    let mut slow = vec![false; n as usize];
    let mut stalled: Vec<u32> = Vec::new();
    while stalled.len() < k {
        let i = 1 + real.below(n - 1);
        if !slow[i as usize] {
            slow[i as usize] = true;
            stalled.push(i);
        }
    }
    out.lifeguard = Some(real.plan.timing.lifeguard);
    out.slow = Some(k);
    let (stall, every) = (real.plan.stall, real.plan.stall_every);
    // Each stalled member starts its cycle at a random point of the first period.
    let start = WallClock::now();
    let mut next: Vec<(WallClock, bool)> = stalled
        .iter()
        .map(|_| {
            let phase = u64::from(real.below(every.as_millis() as u32));
            (start + Duration::from_millis(phase), true)
        })
        .collect();
    let end = start + real.plan.duration;
    let mut healthy = FalseReports::default();
    let (mut suspect_stalled, mut offline_stalled, mut stalls) = (0u64, 0u64, 0u64);
    // Reports about the member crashed at the end are true ones.
    let crashed = Cell::new(u32::MAX);
    let mut observe = |s: &Seen| {
        healthy.observe(s, |subject| !slow[subject as usize] && subject != crashed.get());
        if s.report.subject.is_some_and(|subject| slow[subject as usize]) {
            match s.report.change {
                Change::Suspect => suspect_stalled += 1,
                Change::Offline => offline_stalled += 1,
                _ => {}
            }
        }
    };
    loop {
        let (k, &(at, stop)) = next
            .iter()
            .enumerate()
            .min_by_key(|(_, (at, _))| *at)
            .expect("at least one stalled member");
        if at >= end {
            break;
        }
        real.fleet.run_until(at, &mut observe);
        real.fleet.stall(stalled[k], stop)?;
        stalls += u64::from(stop);
        next[k] = if stop { (at + stall, false) } else { (at + every - stall, true) };
    }
    real.fleet.run_until(end, &mut observe);
    for &i in &stalled {
        real.fleet.stall(i, false)?;
    }
    let candidates: Vec<u32> = (1..n).filter(|&i| !slow[i as usize]).collect();
    let target = candidates[real.below(candidates.len() as u32) as usize];
    real.fleet.kill(target);
    crashed.set(target);
    let crashed_at = wall_micros();
    let mut detection = Detection::new(n, crashed_at, |i| i != target && !slow[i as usize]);
    let limit = real.plan.limit;
    real.fleet.run_until_done(limit, |s| {
        observe(s);
        detection.observe(s, target)
    });
    out.false_suspect_healthy = Some(healthy.suspect);
    out.false_offline_healthy = Some(healthy.offline);
    out.detect_first_s = Some(detection.first_s());
    out.detect_all_s = Some(detection.all_s());
    out.duration_s = Some(real.plan.duration.as_secs_f64());
    real.extra.stalls = Some(stalls);
    real.extra.false_suspect_stalled = Some(suspect_stalled);
    real.extra.false_offline_stalled = Some(offline_stalled);
    Ok(detection.all.is_some())
}

/// The simulator's `stall` on real processes: one member at a time, chosen at random, is
/// stopped by SIGSTOP for the plan's stall (its datagrams wait in its socket), then resumed
/// with SIGCONT; one stall every `stall_every`, `stalls` in all. Counts the suspicions each
/// resumed member raised itself within 2 s of resuming (by its own count of accusations,
/// asked before the stop and after: exactly the simulator's first-hand suspicions, since no
/// other member stalled meanwhile), offline reports (no stall is long enough to justify
/// one), and suspicions about members healthy at the time.
pub fn stall(real: &mut Real, out: &mut Outcome) -> Result<bool, Error> {
    let n = real.fleet.len();
    let (stall, every) = (real.plan.stall, real.plan.stall_every);
    let mut log = StallLog::new(n);
    let start = WallClock::now();
    let mut by_resumed = 0u64;
    let mut last = start;
    for k in 0..real.plan.stalls as u32 {
        last = start + every * k;
        real.fleet.run_until(last, &mut |s| log.hear(s));
        let member = real.below(n);
        let before = accusations(real, member);
        real.fleet.stall(member, true)?;
        let from = wall_micros();
        log.begin(member, from, from + stall.as_micros() as u64);
        real.fleet.run_for(stall, &mut |s| log.hear(s));
        real.fleet.stall(member, false)?;
        log.begin(member, from, wall_micros());
        real.fleet.run_for(AFTER_RESUME, &mut |s| log.hear(s));
        if let (Some(before), Some(after)) = (before, accusations(real, member)) {
            by_resumed += after.saturating_sub(before);
        }
    }
    // As long after the last stall began as the simulator runs.
    real.fleet.run_until(last + stall + RECOVERY, &mut |s| log.hear(s));
    let full = real.views().iter().flatten().filter(|v| v.available() == n as usize - 1).count();
    out.stalls = Some(log.stalls);
    out.false_suspect_by_resumed = Some(by_resumed);
    out.false_suspect = Some(log.reports.suspect);
    out.false_offline = Some(log.offline);
    out.refutations = Some(log.reports.refuted);
    out.forced_rejoins = Some(log.reports.rejoined);
    out.full_views = Some(full);
    out.duration_s = Some(start.elapsed().as_secs_f64());
    Ok(by_resumed == 0 && log.offline == 0 && full == n as usize)
}

/// Suspicions member `i` raised itself so far (`None` if it did not answer).
fn accusations(real: &mut Real, i: u32) -> Option<u64> {
    let answer = real.fleet.ask(&[i], &line::Command::Counters, Duration::from_secs(5));
    match answer.into_iter().next().flatten().map(|l| l.what) {
        Some(What::Counters(traffic)) => Some(traffic.suspicions),
        _ => None,
    }
}

/// The stalls so far, and what was reported meanwhile.
struct StallLog {
    /// Each member's latest stall, `(from, until)` in wall µs.
    latest: Vec<Option<(u64, u64)>>,
    stalls: usize,
    reports: FalseReports,
    offline: u64,
}

impl StallLog {
    fn new(n: u32) -> Self {
        StallLog {
            latest: vec![None; n as usize],
            stalls: 0,
            reports: FalseReports::default(),
            offline: 0,
        }
    }

    /// Member `i` stalls from `from` until `until` (called again with the real end).
    fn begin(&mut self, i: u32, from: u64, until: u64) {
        if self.latest[i as usize].is_none_or(|(f, _)| f != from) {
            self.stalls += 1;
        }
        self.latest[i as usize] = Some((from, until));
    }

    fn hear(&mut self, s: &Seen) {
        let recovery = RECOVERY.as_micros() as u64;
        let latest = &self.latest;
        // Healthy: never stalled, or resumed long enough ago to have refuted.
        let healthy = |subject: u32| {
            latest[subject as usize].is_none_or(|(_, until)| s.at >= until + recovery)
        };
        self.reports.observe(s, healthy);
        self.offline += u64::from(s.report.change == Change::Offline);
    }
}
