//! The simulator's scenarios on real member processes, measured with the same rules and
//! keys (`crate::scenario`): join, detect, loss and update here, the fault scenarios in
//! [`super::faults`]. Times come from the members' own wall-clock stamps.

use std::cell::Cell;
use std::time::{Duration, Instant as WallClock};

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use serde::Serialize;

use crate::digest::mix64;
use crate::protocol::Change;
use crate::testbed::fleet::{Fleet, Seen};
use crate::testbed::line::{self, Line, Traffic, What, wall_micros};
use crate::testbed::net::{Network, Wire, member_addr};
use crate::testbed::simulated::{self, Outcome, Scenario};
use crate::testbed::{Error, Plan, faults};

/// What only a real run shows, and counts the simulator's scenarios do not keep.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Extra {
    /// CPU seconds per member per minute over the scenario's phase (from `/proc`).
    pub cpu_s_per_member_min: f64,
    /// Mean resident set size per member at the end, MiB.
    pub rss_mib_per_member: f64,
    /// Largest resident set size of a member at the end, MiB.
    pub rss_mib_max: f64,
    /// Bytes per member per second on the wire: Ethernet frames from the interface
    /// counters, UDP, IP and Ethernet headers (42 bytes a datagram) and ARP included.
    /// (`bytes_per_member_s` counts UDP payload, as the simulator does.)
    pub wire_bytes_per_member_s: f64,
    /// UDP payload bytes per member per second by the members' own counters, over the
    /// members that ran throughout the phase: a cross-check of `bytes_per_member_s`.
    pub program_bytes_per_member_s: f64,
    /// Datagrams the members dropped during the phase (any reason: unauthenticated,
    /// replayed, malformed...); 0 on a clean network.
    pub datagrams_dropped: u64,
    /// Longest delay from a member's planned start in the join to its socket being bound
    /// (process creation, entering the namespace, loading): the simulator's is 0.
    pub start_lag_max_s: f64,
    /// Events the members' event streams lost (they fell behind); 0 for a valid run.
    pub events_lost: u64,
    /// Member processes that died on their own; 0 for a valid run.
    pub unexpected_exits: u64,
    /// Times a member was told the cluster declared it offline and refuted in place.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accused_offline: Option<u64>,
    /// Offline reports about a member of the viewer's own side, from split to settled heal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub false_offline_same_side: Option<u64>,
    /// Stalls (SIGSTOP of a member) in `stress`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stalls: Option<u64>,
    /// Suspicions reported about the stalled members (`stress`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub false_suspect_stalled: Option<u64>,
    /// Offline reports about the stalled members (`stress`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub false_offline_stalled: Option<u64>,
}

/// A real run: the fleet, the plan, and the clock's origin.
pub struct Real {
    pub(crate) fleet: Fleet,
    pub(crate) plan: Plan,
    rng: ChaCha8Rng,
    /// Wall µs when the first member was bound: the origin, like the simulator's time 0.
    pub(crate) t0: u64,
    pub(crate) extra: Extra,
}

/// Counters of every member at one moment.
struct Sample {
    at: u64,
    lives: Vec<u32>,
    traffic: Vec<Option<Traffic>>,
    cpu: Vec<Option<f64>>,
    wire: Vec<Wire>,
    /// All members' datagrams so far, UDP payload bytes (the bridge's count).
    sent: Wire,
}

/// Runs `plan` on a fresh private network: the outcome with `swim-sim`'s keys, and the
/// extras.
pub fn run(plan: &Plan) -> Result<(Outcome, Extra), Error> {
    plan.validate()?;
    let net = Network::create(plan.nodes)?;
    if plan.scenario != Scenario::Loss {
        net.set_loss(plan.loss)?;
    }
    let fleet = Fleet::new(net, plan.member.clone(), plan.member_args(), plan.seed);
    let mut real = Real {
        fleet,
        plan: plan.clone(),
        rng: ChaCha8Rng::seed_from_u64(mix64(plan.seed ^ 0x0074_6573_7462_6564)),
        t0: 0,
        extra: Extra::default(),
    };
    let mut out = simulated::outcome(plan);
    let started = WallClock::now();
    let joined = real.join(&mut out)?;
    let phase = if plan.scenario == Scenario::Join { None } else { Some(real.sample()) };
    out.converged = match plan.scenario {
        Scenario::Join => joined,
        _ if !joined => false,
        Scenario::Detect => real.detect(&mut out),
        Scenario::Loss => real.loss(&mut out)?,
        Scenario::Update => real.update(&mut out),
        Scenario::Partition => faults::partition(&mut real, &mut out)?,
        Scenario::Churn => faults::churn(&mut real, &mut out)?,
        Scenario::Stress => faults::stress(&mut real, &mut out)?,
        Scenario::Stall => faults::stall(&mut real, &mut out)?,
    };
    real.measure(phase, &mut out);
    out.wall_s = started.elapsed().as_secs_f64();
    out.virtual_s = real.since_t0(wall_micros());
    real.extra.events_lost = real.fleet.events_lost;
    real.extra.unexpected_exits = real.fleet.unexpected_exits;
    Ok((out, real.extra))
}

impl Real {
    pub(crate) fn below(&mut self, n: u32) -> u32 {
        ((u64::from(self.rng.next_u32()) * u64::from(n)) >> 32) as u32
    }

    /// Seconds from the origin to `at` (wall µs).
    pub(crate) fn since_t0(&self, at: u64) -> f64 {
        at.saturating_sub(self.t0) as f64 / 1e6
    }

    /// Starts member 0, then every other member within the next second knowing only
    /// member 0, and waits until every member sees every other online.
    fn join(&mut self, out: &mut Outcome) -> Result<bool, Error> {
        let n = self.fleet.len();
        self.fleet.start(0, None)?;
        let Some(bound) = self.fleet.wait_bound(0, Duration::from_secs(10)) else {
            return Err(Error::Tool("member 0 did not start".into()));
        };
        self.t0 = bound;
        let mut starts: Vec<(u64, u32)> =
            (1..n).map(|i| (self.rng.next_u64() % 1_000_000, i)).collect();
        starts.sort_unstable();
        let mut views = FullViews::new(n as usize);
        let mut p99_at = None;
        let all_at = Cell::new(None);
        let needed = p99_count(n as usize);
        let mut observe = |s: &Seen| {
            views.observe(s);
            if p99_at.is_none() && views.count >= needed {
                p99_at = Some(s.at);
            }
            if all_at.get().is_none() && views.count == n as usize {
                all_at.set(Some(s.at));
            }
            all_at.get().is_some()
        };
        let origin =
            WallClock::now() - Duration::from_micros(wall_micros().saturating_sub(self.t0));
        let planned = starts.clone();
        for (offset, i) in starts {
            self.fleet.run_until(origin + Duration::from_micros(offset), &mut |s| {
                observe(s);
            });
            self.fleet.start(i, Some(0))?;
        }
        let limit = self.plan.limit;
        if all_at.get().is_none() {
            self.fleet.run_until_done(limit, &mut observe);
        }
        let all_at = all_at.get();
        let lag = planned.iter().filter_map(|&(offset, i)| {
            let bound = self.fleet.bound_at(i)?;
            Some(bound.saturating_sub(self.t0 + offset) as f64 / 1e6)
        });
        self.extra.start_lag_max_s = lag.fold(0.0, f64::max);
        if all_at.is_none() {
            self.explain_incomplete_views();
        }
        out.converge_s = Some(all_at.map(|t| self.since_t0(t)));
        out.converge_p99_s = Some(p99_at.map(|t| self.since_t0(t)));
        let round = self.plan.timing.gossip_interval.as_secs_f64();
        out.converge_rounds = out.converge_s.map(|s| s.map(|s| s / round));
        out.converged_nodes = Some(views.count);
        Ok(all_at.is_some())
    }

    fn detect(&mut self, out: &mut Outcome) -> bool {
        let n = self.fleet.len();
        let mut reports = FalseReports::default();
        self.fleet.run_for(Duration::from_secs(5), &mut |s| reports.observe(s, |_| true));
        let target = 1 + self.below(n - 1);
        self.fleet.kill(target);
        let crashed_at = wall_micros();
        let mut detection = Detection::new(n, crashed_at, |i| i != target);
        let limit = self.plan.limit;
        self.fleet.run_until_done(limit, |s| {
            reports.observe(s, |subject| subject != target);
            detection.observe(s, target)
        });
        out.detect_first_s = Some(detection.first_s());
        out.detect_all_s = Some(detection.all_s());
        out.false_suspect = Some(reports.suspect);
        out.false_offline = Some(reports.offline);
        detection.all.is_some()
    }

    fn loss(&mut self, out: &mut Outcome) -> Result<bool, Error> {
        let n = self.fleet.len();
        self.fleet.net().set_loss(self.plan.loss)?;
        let accused = self.fleet.accused_offline;
        let mut reports = FalseReports::default();
        let duration = self.plan.duration;
        self.fleet.run_for(duration, &mut |s| reports.observe(s, |_| true));
        self.fleet.net().set_loss(0.0)?;
        out.false_suspect = Some(reports.suspect);
        out.false_offline = Some(reports.offline);
        out.forced_rejoins = Some(reports.rejoined);
        out.refutations = Some(reports.refuted);
        out.duration_s = Some(duration.as_secs_f64());
        self.extra.accused_offline = Some(self.fleet.accused_offline - accused);
        // A complete live view holds every other member, online or suspect.
        let full =
            self.views().iter().flatten().filter(|v| v.available() == n as usize - 1).count();
        out.full_views = Some(full);
        Ok(full == n as usize && reports.offline == 0)
    }

    fn update(&mut self, out: &mut Outcome) -> bool {
        let n = self.fleet.len();
        self.fleet.run_for(Duration::from_secs(5), &mut |_| {});
        let source = self.below(n);
        let set = line::Command::Set("version".into(), "2".into());
        let answer = self.fleet.ask(&[source], &set, Duration::from_secs(5)).pop().flatten();
        let Some(Line { t: started, what: What::Set { ok: true } }) = answer else {
            return false;
        };
        let mut informed = vec![false; n as usize];
        informed[source as usize] = true;
        let (mut count, needed) = (1, p99_count(n as usize));
        let (mut p99, mut all) = (None, None);
        let limit = self.plan.limit;
        let mut observe = |s: &Seen| {
            let about_source = s.report.subject == Some(source);
            if s.report.change == Change::Metadata && about_source && !informed[s.viewer as usize] {
                informed[s.viewer as usize] = true;
                count += 1;
                if count >= needed {
                    p99.get_or_insert(s.at);
                }
                if count == n as usize {
                    all = Some(s.at);
                }
            }
            all.is_some()
        };
        if n > 1 {
            self.fleet.run_until_done(limit, &mut observe);
        }
        let secs = |at: Option<u64>| at.map(|t: u64| t.saturating_sub(started) as f64 / 1e6);
        let round = self.plan.timing.gossip_interval.as_secs_f64();
        out.update_all_s = Some(secs(all));
        out.update_p99_s = Some(secs(p99));
        out.update_rounds = out.update_all_s.map(|s| s.map(|s| s / round));
        out.update_p99_rounds = out.update_p99_s.map(|s| s.map(|s| s / round));
        all.is_some()
    }

    /// Says, on stderr, which members lack a full view by their events and by their
    /// tables, so a join that did not converge shows where it stopped.
    fn explain_incomplete_views(&mut self) {
        let n = self.fleet.len();
        let tables = self.views();
        for (i, table) in (0..n).zip(tables) {
            let by_events = self.fleet.online_count(i);
            let Some(t) = table else {
                eprintln!("member {i}: no answer; its events show {by_events} online");
                continue;
            };
            if by_events + 1 < n || t.online.len() + 1 < n as usize {
                let missing: Vec<u32> = (0..n)
                    .filter(|&s| s != i && !t.online.contains(&member_addr(s).to_string()))
                    .collect();
                eprintln!(
                    "member {i}: events show {by_events} online; its table {} online, {} \
                     suspect, {} gone; not online: {missing:?}",
                    t.online.len(),
                    t.suspect.len(),
                    t.gone.len()
                );
            }
        }
    }

    /// Every running member's table, by asking (`None` for members not running or silent).
    pub(crate) fn views(&mut self) -> Vec<Option<Table>> {
        let members: Vec<u32> = (0..self.fleet.len()).collect();
        let answers = self.fleet.ask(&members, &line::Command::View, Duration::from_secs(10));
        answers
            .into_iter()
            .map(|a| match a.map(|l| l.what) {
                Some(What::View { online, suspect, gone }) => Some(Table { online, suspect, gone }),
                _ => None,
            })
            .collect()
    }

    fn sample(&mut self) -> Sample {
        let members: Vec<u32> = (0..self.fleet.len()).collect();
        let answers = self.fleet.ask(&members, &line::Command::Counters, Duration::from_secs(10));
        let traffic = answers
            .into_iter()
            .map(|a| match a.map(|l| l.what) {
                Some(What::Counters(traffic)) => Some(traffic),
                _ => None,
            })
            .collect();
        Sample {
            at: wall_micros(),
            lives: members.iter().map(|&i| self.fleet.life(i)).collect(),
            traffic,
            cpu: members.iter().map(|&i| self.fleet.cpu_s(i)).collect(),
            wire: self.fleet.net().wire_counters().unwrap_or_default(),
            sent: self.fleet.net().datagrams_sent().unwrap_or_default(),
        }
    }

    /// Traffic, CPU and memory per member over the phase that began with `start` (`None`:
    /// with the processes, as for `join`). Traffic as the simulator counts it: every
    /// member datagram the bridge saw during the phase (lost or not; its counter outlives
    /// crashes and restarts) over all N members; the program's own counters, CPU and
    /// memory over the members whose process ran throughout.
    fn measure(&mut self, start: Option<Sample>, out: &mut Outcome) {
        let end = self.sample();
        let n = end.lives.len();
        let start = start.unwrap_or_else(|| Sample {
            at: self.t0,
            lives: end.lives.clone(),
            traffic: vec![Some(Traffic::default()); n],
            cpu: vec![Some(0.0); n],
            wire: vec![Wire::default(); n],
            sent: Wire::default(),
        });
        let secs = (end.at.saturating_sub(start.at) as f64 / 1e6).max(1e-9);
        let wire_bytes: u64 = start
            .wire
            .iter()
            .zip(&end.wire)
            .map(|(w0, w1)| w1.bytes.saturating_sub(w0.bytes))
            .sum();
        let per = n.max(1) as f64 * secs;
        out.msgs_per_member_s = end.sent.packets.saturating_sub(start.sent.packets) as f64 / per;
        out.bytes_per_member_s = end.sent.bytes.saturating_sub(start.sent.bytes) as f64 / per;
        self.extra.wire_bytes_per_member_s = wire_bytes as f64 / per;
        let (mut members, mut bytes, mut cpu, mut dropped) = (0u64, 0u64, 0.0, 0u64);
        for i in 0..n {
            let (Some(a), Some(b)) = (start.traffic[i], end.traffic[i]) else { continue };
            let (Some(c0), Some(c1)) = (start.cpu[i], end.cpu[i]) else { continue };
            if start.lives[i] == end.lives[i] {
                members += 1;
                bytes += b.bytes_out.saturating_sub(a.bytes_out);
                dropped += b.dropped.saturating_sub(a.dropped);
                cpu += c1 - c0;
            }
        }
        let members = members.max(1) as f64;
        self.extra.datagrams_dropped = dropped;
        self.extra.program_bytes_per_member_s = bytes as f64 / members / secs;
        self.extra.cpu_s_per_member_min = cpu / members / (secs / 60.0);
        out.cpu_s = cpu;
        let rss: Vec<f64> = (0..n as u32).filter_map(|i| self.fleet.rss_mib(i)).collect();
        self.extra.rss_mib_per_member = rss.iter().sum::<f64>() / rss.len().max(1) as f64;
        self.extra.rss_mib_max = rss.iter().copied().fold(0.0, f64::max);
        out.peak_rss_mib = self.extra.rss_mib_max;
    }
}

/// A member's table as it answered `view`.
#[derive(Clone, Debug)]
pub struct Table {
    /// Online members.
    pub online: Vec<String>,
    /// Suspect members.
    pub suspect: Vec<String>,
    /// Offline or left members still held.
    pub gone: Vec<String>,
}

impl Table {
    /// Online or suspect members.
    pub fn available(&self) -> usize {
        self.online.len() + self.suspect.len()
    }
}

pub(crate) fn p99_count(n: usize) -> usize {
    (n * 99).div_ceil(100)
}

/// Which members see every other running member online, from reports.
pub(crate) struct FullViews {
    full: Vec<bool>,
    pub(crate) count: usize,
    target: u32,
}

impl FullViews {
    pub(crate) fn new(n: usize) -> Self {
        FullViews { full: vec![false; n], count: 0, target: n.saturating_sub(1) as u32 }
    }

    pub(crate) fn observe(&mut self, s: &Seen) {
        let now_full = s.online_count == self.target;
        let slot = &mut self.full[s.viewer as usize];
        if *slot != now_full {
            *slot = now_full;
            if now_full {
                self.count += 1;
            } else {
                self.count -= 1;
            }
        }
    }

    /// Recomputes from the fleet's views.
    pub(crate) fn resync(&mut self, fleet: &Fleet) {
        let up = (0..fleet.len()).filter(|&i| fleet.is_up(i)).count();
        self.target = up.saturating_sub(1) as u32;
        self.count = 0;
        for i in 0..fleet.len() {
            let full = fleet.is_up(i) && fleet.online_count(i) == self.target;
            self.full[i as usize] = full;
            self.count += usize::from(full);
        }
    }
}

/// Suspect and offline reports about members the scenario calls healthy.
#[derive(Default)]
pub(crate) struct FalseReports {
    pub(crate) suspect: u64,
    pub(crate) offline: u64,
    pub(crate) refuted: u64,
    pub(crate) rejoined: u64,
}

impl FalseReports {
    pub(crate) fn observe(&mut self, s: &Seen, healthy: impl Fn(u32) -> bool) {
        match (s.report.change, s.report.subject) {
            (Change::Suspect, Some(subject)) if healthy(subject) => self.suspect += 1,
            (Change::Offline, Some(subject)) if healthy(subject) => self.offline += 1,
            (Change::Refuted, _) => self.refuted += 1,
            (Change::Rejoined, _) => self.rejoined += 1,
            _ => {}
        }
    }
}

/// When the members that should notice a crash saw the crashed member offline.
pub(crate) struct Detection<F> {
    seen: Vec<bool>,
    left: usize,
    crashed_at: u64,
    first: Option<u64>,
    pub(crate) all: Option<u64>,
    watching: F,
}

impl<F: Fn(u32) -> bool> Detection<F> {
    /// `watching`: the members whose detection counts (not the crashed one).
    pub(crate) fn new(n: u32, crashed_at: u64, watching: F) -> Self {
        let left = (0..n).filter(|&i| watching(i)).count();
        Detection {
            seen: vec![false; n as usize],
            left,
            crashed_at,
            first: None,
            all: None,
            watching,
        }
    }

    /// Notes a report; whether every watching member has now seen the crash.
    pub(crate) fn observe(&mut self, s: &Seen, target: u32) -> bool {
        let gone = matches!(s.report.change, Change::Offline | Change::Reaped);
        let v = s.viewer as usize;
        if s.report.subject == Some(target) && gone && (self.watching)(s.viewer) && !self.seen[v] {
            self.seen[v] = true;
            self.first.get_or_insert(s.at);
            self.left -= 1;
            if self.left == 0 {
                self.all = Some(s.at);
            }
        }
        self.all.is_some()
    }

    pub(crate) fn first_s(&self) -> Option<f64> {
        self.first.map(|t| t.saturating_sub(self.crashed_at) as f64 / 1e6)
    }

    pub(crate) fn all_s(&self) -> Option<f64> {
        self.all.map(|t| t.saturating_sub(self.crashed_at) as f64 / 1e6)
    }
}
