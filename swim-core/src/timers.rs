//! The node's periodic timers, one deadline each (quinn-proto's timer table).

use core::time::Duration;

use crate::time::Instant;

/// A periodic timer of the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Timer {
    /// The next probe of the round-robin order.
    Probe,
    /// The next gossip round.
    Gossip,
    /// The next anti-entropy round.
    Sync,
    /// The next attempt to reach seeds or members outside the view.
    Rejoin,
    /// The next full-state push-pull over a stream.
    PushPull,
}

impl Timer {
    const ALL: [Timer; 5] =
        [Timer::Probe, Timer::Gossip, Timer::Sync, Timer::Rejoin, Timer::PushPull];

    fn index(self) -> usize {
        match self {
            Timer::Probe => 0,
            Timer::Gossip => 1,
            Timer::Sync => 2,
            Timer::Rejoin => 3,
            Timer::PushPull => 4,
        }
    }
}

/// When each timer fires next, if it is armed.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Timers {
    at: [Option<Instant>; Timer::ALL.len()],
}

impl Timers {
    /// When `timer` fires, if armed.
    pub(crate) fn get(&self, timer: Timer) -> Option<Instant> {
        self.at[timer.index()]
    }

    /// Arms `timer` for `at`.
    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        self.at[timer.index()] = Some(at);
    }

    /// Arms `timer` for `at`, or earlier if it is armed earlier already.
    pub(crate) fn set_by(&mut self, timer: Timer, at: Instant) {
        let slot = &mut self.at[timer.index()];
        *slot = Some(slot.map_or(at, |old| old.min(at)));
    }

    /// Disarms every timer.
    pub(crate) fn stop_all(&mut self) {
        self.at = [None; Timer::ALL.len()];
    }

    /// Whether `timer` is armed for `now` or earlier.
    pub(crate) fn due(&self, timer: Timer, now: Instant) -> bool {
        self.get(timer).is_some_and(|at| at <= now)
    }

    /// When `timer` fires if it skips every deadline before `until`: moved on by whole
    /// `interval`s, so it keeps its phase. A periodic round that knows it has nothing to do
    /// before `until` then costs no wake-up before it.
    pub(crate) fn skipping_until(
        &self,
        timer: Timer,
        until: Option<Instant>,
        interval: Duration,
    ) -> Option<Instant> {
        let at = self.get(timer)?;
        let (Some(until), Ok(step)) = (until, u64::try_from(interval.as_micros())) else {
            return Some(at);
        };
        if until <= at || step == 0 {
            return Some(at);
        }
        let steps = (until - at).as_micros().div_ceil(u128::from(step));
        let ahead = u64::try_from(steps.saturating_mul(u128::from(step))).unwrap_or(u64::MAX);
        Some(at + Duration::from_micros(ahead))
    }

    /// Arms `timer` one `interval` after its last deadline; after a stall, one interval from
    /// now rather than a burst of catch-up rounds.
    pub(crate) fn reschedule(&mut self, timer: Timer, now: Instant, interval: Duration) {
        let next = self.get(timer).map_or(now, |at| at + interval);
        self.set(timer, if next <= now { now + interval } else { next });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reschedules_one_interval_on_without_catching_up() {
        let mut timers = Timers::default();
        let second = Duration::from_secs(1);
        timers.set(Timer::Probe, Instant::from_secs(1));
        assert!(timers.due(Timer::Probe, Instant::from_secs(1)));
        timers.reschedule(Timer::Probe, Instant::from_secs(1), second);
        assert_eq!(timers.get(Timer::Probe), Some(Instant::from_secs(2)));
        // Ten seconds late: the next is one interval from now, not nine rounds at once.
        timers.reschedule(Timer::Probe, Instant::from_secs(12), second);
        assert_eq!(timers.get(Timer::Probe), Some(Instant::from_secs(13)));
        timers.set_by(Timer::Gossip, Instant::from_secs(5));
        timers.set_by(Timer::Gossip, Instant::from_secs(3));
        timers.set_by(Timer::Gossip, Instant::from_secs(4));
        assert_eq!(timers.get(Timer::Gossip), Some(Instant::from_secs(3)));
        timers.stop_all();
        assert!(!timers.due(Timer::Probe, Instant::MAX));
    }

    #[test]
    fn skipping_keeps_the_phase() {
        let mut timers = Timers::default();
        let half = Duration::from_millis(500);
        assert_eq!(timers.skipping_until(Timer::Sync, Some(Instant::from_secs(9)), half), None);
        timers.set(Timer::Sync, Instant::from_millis(1_100));
        let skip = |until| timers.skipping_until(Timer::Sync, until, half);
        assert_eq!(skip(None), Some(Instant::from_millis(1_100)));
        assert_eq!(skip(Some(Instant::from_millis(900))), Some(Instant::from_millis(1_100)));
        assert_eq!(skip(Some(Instant::from_millis(1_100))), Some(Instant::from_millis(1_100)));
        assert_eq!(skip(Some(Instant::from_millis(1_101))), Some(Instant::from_millis(1_600)));
        assert_eq!(skip(Some(Instant::from_millis(2_600))), Some(Instant::from_millis(2_600)));
        assert!(skip(Some(Instant::MAX)).is_some_and(|at| at >= Instant::MAX));
    }
}
