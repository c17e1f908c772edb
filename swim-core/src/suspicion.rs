//! Suspicion: how long a suspect member has to refute before it is declared offline.
//!
//! With Lifeguard's dynamic suspicion on, the timeout starts long and shrinks as independent
//! confirmations arrive (distinct members suspecting the same incarnation): a member that
//! only one overloaded prober could not reach gets plenty of time to refute, while a member
//! that many probers find dead is declared offline as fast as with a fixed timeout.

use alloc::vec::Vec;
use core::time::Duration;
use smol_str::SmolStr;

use crate::config::Config;
use crate::time::Instant;

/// A suspicion in progress, attached to a suspect member.
#[derive(Clone, Debug)]
pub(crate) struct Suspicion {
    /// When this node started suspecting.
    pub(crate) started: Instant,
    /// Distinct accusers heard of, first first; at most `confirmations + 1` are kept.
    accusers: Vec<SmolStr>,
    /// Begun from another member's report that the member is offline, while this node held
    /// it online: the member gets the shortest suspicion to refute in, which further
    /// offline reports do not cut short.
    reported_offline: bool,
}

impl Suspicion {
    pub(crate) fn new(started: Instant, accuser: Option<&str>) -> Self {
        let accusers = accuser.map(SmolStr::new).into_iter().collect();
        Suspicion { started, accusers, reported_offline: false }
    }

    /// A suspicion standing for another member's offline report (see `reported_offline`).
    pub(crate) fn on_offline_report(started: Instant) -> Self {
        Suspicion { started, accusers: Vec::new(), reported_offline: true }
    }

    /// Whether it stands for an offline report.
    pub(crate) fn is_reported_offline(&self) -> bool {
        self.reported_offline
    }

    /// An offline report came while nobody named accuses: from now on it stands for it.
    pub(crate) fn take_offline_report(&mut self) {
        self.reported_offline = true;
    }

    /// Records `accuser`; returns whether it was a new confirmation worth counting and
    /// spreading.
    pub(crate) fn confirm(&mut self, accuser: &str, expected: u32) -> bool {
        if self.accusers.iter().any(|a| **a == *accuser) || self.confirmations() >= expected {
            return false;
        }
        self.accusers.push(SmolStr::new(accuser));
        true
    }

    /// Independent confirmations beyond the first accuser.
    pub(crate) fn confirmations(&self) -> u32 {
        self.accusers.len().saturating_sub(1) as u32
    }

    /// The accuser to name when gossiping this suspicion: the latest, so that each new
    /// confirmation spreads.
    pub(crate) fn latest_accuser(&self) -> Option<&str> {
        self.accusers.last().map(|a| &**a)
    }

    /// When the suspicion runs out, in a cluster of `members` available members.
    pub(crate) fn deadline(&self, config: &Config, members: usize) -> Instant {
        // An offline report ends a whole suspicion elsewhere: as confirmed as can be.
        let confirmations = if self.reported_offline { u32::MAX } else { self.confirmations() };
        self.started + timeout(config, members, confirmations)
    }
}

/// The suspicion timeout after `confirmations` independent confirmations (see
/// [`Lifeguard::confirmations`](crate::Lifeguard::confirmations) for the formula).
pub(crate) fn timeout(config: &Config, members: usize, confirmations: u32) -> Duration {
    // Nobody can confirm beyond the members other than the suspect and the first accuser:
    // a small cluster expects fewer confirmations (none at all with three members or less).
    let expected = config.lifeguard.confirmations.min(members.saturating_sub(2) as u32);
    if expected == 0 {
        return config.suspect_timeout;
    }
    let scale = (libm::log10(members.max(1) as f64) / 3.0).max(1.0);
    let min = config.suspect_timeout.mul_f64(scale).as_secs_f64();
    let max = min * f64::from(config.lifeguard.suspicion_max_mult);
    let confirmed = f64::from(confirmations.min(expected));
    let fraction = libm::log(confirmed + 1.0) / libm::log(f64::from(expected) + 1.0);
    Duration::from_secs_f64((max - (max - min) * fraction).max(min))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Keyring;
    use crate::config::Lifeguard;
    use core::net::SocketAddr;

    fn config() -> Config {
        Config::new("a", SocketAddr::from(([127, 0, 0, 1], 1)), Keyring::new("k"))
    }

    fn secs(d: Duration) -> f64 {
        (d.as_secs_f64() * 1000.0).round() / 1000.0
    }

    #[test]
    fn shrinks_from_max_to_min_with_confirmations() {
        let config = config();
        assert_eq!(secs(timeout(&config, 100, 0)), 20.0);
        assert_eq!(secs(timeout(&config, 100, 1)), 12.5);
        assert_eq!(secs(timeout(&config, 100, 2)), 8.113);
        assert_eq!(secs(timeout(&config, 100, 3)), 5.0);
        assert_eq!(secs(timeout(&config, 100, 9)), 5.0);
    }

    #[test]
    fn scales_with_log_of_cluster_size_past_a_thousand() {
        let config = config();
        assert_eq!(secs(timeout(&config, 2, 0)), 5.0);
        assert_eq!(secs(timeout(&config, 3, 0)), 20.0);
        assert_eq!(secs(timeout(&config, 3, 1)), 5.0);
        assert_eq!(secs(timeout(&config, 4, 1)), 10.536);
        assert_eq!(secs(timeout(&config, 4, 2)), 5.0);
        assert_eq!(secs(timeout(&config, 1000, 3)), 5.0);
        assert_eq!(secs(timeout(&config, 10_000, 3)), 6.667);
        assert_eq!(secs(timeout(&config, 10_000, 0)), 26.667);
    }

    #[test]
    fn lifeguard_off_is_the_fixed_seed_timeout() {
        let mut config = config();
        config.lifeguard = Lifeguard::OFF;
        for confirmations in 0..5 {
            assert_eq!(timeout(&config, 10_000, confirmations), config.suspect_timeout);
        }
    }

    #[test]
    fn counts_distinct_accusers_up_to_the_expected_number() {
        let mut suspicion = Suspicion::new(Instant::ZERO, Some("a"));
        assert!(!suspicion.confirm("a", 3));
        assert!(suspicion.confirm("b", 3));
        assert!(suspicion.confirm("c", 3));
        assert!(!suspicion.confirm("c", 3));
        assert!(suspicion.confirm("d", 3));
        assert!(!suspicion.confirm("e", 3));
        assert_eq!(suspicion.confirmations(), 3);
        assert_eq!(suspicion.latest_accuser(), Some("d"));
        let anonymous = Suspicion::new(Instant::ZERO, None);
        assert_eq!((anonymous.confirmations(), anonymous.latest_accuser()), (0, None));
    }
}
