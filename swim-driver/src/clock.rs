//! The driver's clock: the core counts microseconds from an origin of the driver's choosing;
//! this is that origin, on the monotonic std clock.

use std::time::Duration;

use swim_core::Instant;

/// The furthest a deadline is taken to be: 30 years.
const FAR_FUTURE: Duration = Duration::from_secs(30 * 365 * 24 * 3600);

/// Converts between `std::time::Instant` and the core's [`Instant`], whose zero is the
/// moment the clock was made (when the node was created).
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    origin: std::time::Instant,
}

impl Clock {
    /// A clock whose zero is now.
    pub fn start() -> Self {
        Clock { origin: std::time::Instant::now() }
    }

    /// The core's time now.
    pub fn now(&self) -> Instant {
        self.to_core(std::time::Instant::now())
    }

    /// `at` as the core's time (saturating at zero before the origin).
    pub fn to_core(&self, at: std::time::Instant) -> Instant {
        let micros = at.saturating_duration_since(self.origin).as_micros();
        Instant::from_micros(u64::try_from(micros).unwrap_or(u64::MAX))
    }

    /// The core's `at` on the std clock.
    pub fn to_std(&self, at: Instant) -> std::time::Instant {
        // "Never" in practice: a deadline decades away is as good as none, and cannot
        // overflow the std clock.
        let since = at.since_origin().min(FAR_FUTURE);
        self.origin.checked_add(since).unwrap_or(self.origin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_both_ways() {
        let clock = Clock::start();
        let at = Instant::from_millis(1500);
        assert_eq!(clock.to_core(clock.to_std(at)), at);
        assert!(clock.now() < Instant::from_secs(60));
    }
}
