//! What a node on an ordinary host needs from the operating system, for event loops of your
//! own: the clocks and the randomness. The protocol itself never reads them (it is handed
//! time and a random generator, so that the same inputs give the same bytes); this module
//! reads them for you, once per call, so that the safe choices are the easy ones.
//!
//! ```no_run
//! use swim_core::{Config, Keyring, Node, SystemClock};
//!
//! let addr = "127.0.0.1:7001".parse()?;
//! let config = Config::new("127.0.0.1:7001", addr, Keyring::new("shared secret"));
//! let clock = SystemClock::new();
//! // Seeded from the OS, with the wall clock set: replay protection on.
//! let mut node = Node::start(config, &clock)?;
//! node.join(clock.now(), ["127.0.0.1:7000".parse()?]);
//! // In the loop: `clock.now()` for every input, `clock.to_std(deadline)` to sleep until
//! // `node.poll_timeout()`, and now and then `node.set_wall_clock(clock.now(),
//! // SystemClock::wall_ms())`, which keeps replay protection right across a suspended host.
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

use crate::config::{Config, ConfigError};
use crate::node::Node;
use crate::time::Instant;

/// The furthest a deadline is taken to be on the std clock: 30 years ("never" in practice,
/// and no overflow of `std::time::Instant`).
const FAR_FUTURE: Duration = Duration::from_secs(30 * 365 * 24 * 3600);

/// The host's monotonic clock as the core's [`Instant`] (zero when the clock was made), and
/// the wall clock.
#[derive(Clone, Copy, Debug)]
pub struct SystemClock {
    origin: std::time::Instant,
}

impl SystemClock {
    /// A clock whose zero is now.
    pub fn new() -> Self {
        SystemClock { origin: std::time::Instant::now() }
    }

    /// The core's time now.
    pub fn now(&self) -> Instant {
        self.to_core(std::time::Instant::now())
    }

    /// `at` as the core's time (zero before the clock's origin).
    pub fn to_core(&self, at: std::time::Instant) -> Instant {
        let micros = at.saturating_duration_since(self.origin).as_micros();
        Instant::from_micros(u64::try_from(micros).unwrap_or(u64::MAX))
    }

    /// The core's `at` on the std clock, e.g. to sleep until `poll_timeout()`.
    pub fn to_std(&self, at: Instant) -> std::time::Instant {
        let since = at.since_origin().min(FAR_FUTURE);
        self.origin.checked_add(since).unwrap_or(self.origin)
    }

    /// The wall clock: milliseconds since the Unix epoch (0 before it), for
    /// [`Config::epoch_ms`] and [`Node::set_wall_clock`].
    pub fn wall_ms() -> u64 {
        let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock::new()
    }
}

impl Node<ChaCha8Rng> {
    /// A node starting now on `clock`: its random generator seeded by the operating system,
    /// its wall clock (`epoch_ms`) read from the system. The easy way to a node with replay
    /// protection for an event loop of your own; a driver does this for you.
    pub fn start(mut config: Config, clock: &SystemClock) -> Result<Self, ConfigError> {
        let mut seed = [0; 32];
        getrandom::fill(&mut seed).map_err(|_| ConfigError::NoRandomness)?;
        config.epoch_ms = SystemClock::wall_ms();
        Node::new(config, ChaCha8Rng::from_seed(seed), clock.now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Keyring;

    #[test]
    fn converts_both_ways_and_starts_nodes_with_a_wall_clock() {
        let clock = SystemClock::new();
        let at = Instant::from_millis(1500);
        assert_eq!(clock.to_core(clock.to_std(at)), at);
        assert!(clock.now() < Instant::from_secs(60));
        assert!(SystemClock::wall_ms() > 1_600_000_000_000);
        let addr = "127.0.0.1:7001".parse().unwrap();
        let config = Config::new("a", addr, Keyring::new("k"));
        let node = Node::start(config, &clock).unwrap();
        assert!(node.config().epoch_ms > 1_600_000_000_000);
    }
}
