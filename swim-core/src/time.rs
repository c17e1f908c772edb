//! Time as a value: the core never reads a clock.
//!
//! Drivers pick an origin (process start, say) and pass microseconds since then. An instant
//! is at most [`Instant::MAX`] (292,000 years), far enough below the end of `u64` that a
//! deadline after any instant is still representable: a node's next deadline is always
//! later than the time it was handed, so a driver never spins. Arithmetic saturates rather
//! than wraps or panics.

use core::fmt;
use core::ops::{Add, AddAssign, Sub};
use core::time::Duration;

/// A point in time, in microseconds since an origin chosen by the driver.
///
/// Only differences between instants given to the same [`Node`](crate::Node) mean anything.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(u64);

impl Instant {
    /// The origin.
    pub const ZERO: Instant = Instant(0);

    /// The latest instant: 2^63 microseconds after the origin. Later times given to the
    /// constructors are taken as this one.
    pub const MAX: Instant = Instant(1 << 63);

    /// The instant `micros` microseconds after the origin (at most [`Instant::MAX`]).
    pub const fn from_micros(micros: u64) -> Self {
        if micros > Self::MAX.0 { Self::MAX } else { Instant(micros) }
    }

    /// The instant `millis` milliseconds after the origin (at most [`Instant::MAX`]).
    pub const fn from_millis(millis: u64) -> Self {
        Self::from_micros(millis.saturating_mul(1000))
    }

    /// The instant `secs` seconds after the origin (at most [`Instant::MAX`]).
    pub const fn from_secs(secs: u64) -> Self {
        Self::from_micros(secs.saturating_mul(1_000_000))
    }

    /// Microseconds since the origin.
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// Time since the origin as a [`Duration`].
    pub const fn since_origin(self) -> Duration {
        Duration::from_micros(self.0)
    }

    /// Time from `earlier` to `self`, or zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }
}

/// Whole microseconds of a duration, saturating at `u64::MAX`.
pub(crate) fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// The time a node goes by: the driver's clock, except that it never runs backwards.
///
/// A clock set back (by hand, or by a wall clock used where a monotonic one belongs) would
/// otherwise leave every deadline in the future for as long as the clock was set back, and
/// the node would stop probing while it still answered. Instead, time stands still at the
/// latest instant seen until the driver's clock moves again, and from then on advances with
/// it: deadlines keep their distance.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Clock {
    /// Added to the driver's time (microseconds it was set back, in total).
    offset: u64,
    latest: Instant,
}

impl Clock {
    /// A clock whose time starts at `now`.
    pub(crate) fn new(now: Instant) -> Self {
        Clock { offset: 0, latest: now }
    }

    /// The node's time for the driver's `now`.
    pub(crate) fn observe(&mut self, now: Instant) -> Instant {
        let mut time = now + Duration::from_micros(self.offset);
        if time < self.latest {
            self.offset = self.offset.saturating_add(self.latest.0 - time.0);
            time = self.latest;
        }
        self.latest = time;
        time
    }

    /// The node's time as last observed.
    pub(crate) fn now(self) -> Instant {
        self.latest
    }

    /// The driver's time for the node's `time` (to report deadlines in the driver's clock).
    pub(crate) fn to_driver(self, time: Instant) -> Instant {
        Instant(time.0.saturating_sub(self.offset))
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;

    fn add(self, rhs: Duration) -> Instant {
        Instant(self.0.saturating_add(micros(rhs)))
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, rhs: Duration) {
        *self = *self + rhs;
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;

    fn sub(self, rhs: Duration) -> Instant {
        Instant(self.0.saturating_sub(micros(rhs)))
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;

    /// Saturates at zero when `rhs` is later than `self`.
    fn sub(self, rhs: Instant) -> Duration {
        self.saturating_duration_since(rhs)
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:06}s", self.0 / 1_000_000, self.0 % 1_000_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn arithmetic_saturates() {
        let t = Instant::from_secs(2);
        assert_eq!(t + Duration::from_millis(500), Instant::from_millis(2500));
        assert_eq!(t - Duration::from_secs(5), Instant::ZERO);
        assert_eq!(Instant::ZERO - t, Duration::ZERO);
        assert_eq!(t - Instant::from_secs(1), Duration::from_secs(1));
        let end = Instant::MAX + Duration::MAX;
        assert_eq!(end + Duration::from_secs(1), end);
    }

    #[test]
    fn the_clock_never_runs_backwards_and_keeps_deadlines_at_their_distance() {
        let mut clock = Clock::new(Instant::from_secs(100));
        assert_eq!(clock.observe(Instant::from_secs(101)), Instant::from_secs(101));
        // Set back by a minute: time stands still, then moves on with the driver's clock.
        assert_eq!(clock.observe(Instant::from_secs(41)), Instant::from_secs(101));
        assert_eq!(clock.observe(Instant::from_secs(42)), Instant::from_secs(102));
        assert_eq!(clock.to_driver(Instant::from_secs(103)), Instant::from_secs(43));
        assert_eq!(Instant::from_micros(u64::MAX), Instant::MAX);
        assert!(Instant::MAX + Duration::from_secs(86_400) > Instant::MAX);
    }

    #[test]
    fn displays_seconds() {
        assert_eq!(Instant::from_micros(1_500_042).to_string(), "1.500042s");
    }
}
