//! Replay protection: nonces that only grow and follow the wall clock, and the windows that
//! accept each of them once.
//!
//! A node with a wall clock (`Config::epoch_ms`) numbers its datagrams `2^63 | (t * 2^20 +
//! n)`: `t` is the wall-clock millisecond of sending, `n` counts within it (from a random
//! offset below 2^19, so that two members rarely pick the same nonce). A receiver with a
//! wall clock refuses a nonce whose `t` lies more than `max_clock_skew` ahead of its own
//! clock, or more than `max_datagram_age` behind it: a datagram captured before a receiver
//! restarted is soon stale for the new process, and a forged nonce far in the future cannot
//! move a sender's window out of its own reach. Within
//! that span, each sender's window (the highest nonce accepted and a bitmap of the 64 below
//! it, as IPsec's) accepts every nonce once.

use core::time::Duration;

use rand_core::Rng;

use crate::auth::SEQUENCED;
use crate::counters::DropReason;
use crate::time::Instant;

/// Bits of a nonce below its millisecond.
const COUNT_BITS: u32 = 20;

/// The wall clock of a node, from the millisecond it was created at and the time since.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WallClock {
    /// Wall-clock milliseconds since the Unix epoch at `origin`; 0 for a node without one.
    epoch_ms: u64,
    origin: Instant,
}

impl WallClock {
    pub(crate) fn new(epoch_ms: u64, origin: Instant) -> Self {
        WallClock { epoch_ms, origin }
    }

    /// Milliseconds since the Unix epoch at `now`, if this node has a wall clock.
    pub(crate) fn millis(&self, now: Instant) -> Option<u64> {
        let elapsed = u64::try_from((now - self.origin).as_millis()).unwrap_or(u64::MAX);
        (self.epoch_ms != 0).then(|| self.epoch_ms.saturating_add(elapsed))
    }
}

/// The nonces this node gives its datagrams.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Nonces {
    /// The last sequence number given (without the top bit).
    last: u64,
}

impl Nonces {
    /// The next nonce: sequenced from the wall clock when there is one, random salt (top bit
    /// clear) otherwise.
    pub(crate) fn next(&mut self, wall_ms: Option<u64>, rng: &mut impl Rng) -> u64 {
        let Some(ms) = wall_ms else {
            return rng.next_u64() & !SEQUENCED;
        };
        let floor = (ms << COUNT_BITS) & !SEQUENCED;
        self.last = if self.last < floor {
            floor + u64::from(rng.next_u32() >> (32 - (COUNT_BITS - 1)))
        } else {
            // Past the millisecond's room (2^19 datagrams in one millisecond): borrow from
            // the next, which receivers allow within the clock skew.
            (self.last + 1) & !SEQUENCED
        };
        SEQUENCED | self.last
    }
}

/// Whether a datagram's `nonce` may be accepted at all at wall time `wall_ms`: sequenced
/// (when this node protects against replays, it accepts nothing that cannot be checked),
/// at most `ahead` in the future of this node's clock, and at most `age` old.
pub(crate) fn check_time(
    nonce: u64,
    wall_ms: Option<u64>,
    ahead: Duration,
    age: Duration,
) -> Result<(), DropReason> {
    check_future(nonce, wall_ms, ahead)?;
    let Some(now) = wall_ms else { return Ok(()) };
    let sent = (nonce & !SEQUENCED) >> COUNT_BITS;
    if sent.saturating_add(millis(age)) < now {
        return Err(DropReason::ClockSkew);
    }
    Ok(())
}

/// The smallest sequenced nonce [`check_time`] accepts at wall time `wall_ms` with `age`
/// (0 for a node without a wall clock).
pub(crate) fn oldest_accepted(wall_ms: Option<u64>, age: Duration) -> u64 {
    wall_ms.map_or(0, |now| SEQUENCED | (now.saturating_sub(millis(age)) << COUNT_BITS))
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Whether `nonce` is not from the future (beyond `skew` of this node's clock at `wall_ms`):
/// the check that applies to version-1 nonces, which count from their sender's start.
pub(crate) fn check_future(
    nonce: u64,
    wall_ms: Option<u64>,
    skew: Duration,
) -> Result<(), DropReason> {
    let Some(now) = wall_ms else { return Ok(()) };
    if nonce & SEQUENCED == 0 {
        return Err(DropReason::Unsequenced);
    }
    if (nonce & !SEQUENCED) >> COUNT_BITS > now.saturating_add(millis(skew)) {
        return Err(DropReason::ClockSkew);
    }
    Ok(())
}

/// Which sequenced nonces of one sender were already accepted: the highest, and a bitmap of
/// the 64 below it (as in IPsec's anti-replay window), so reordered datagrams still pass but
/// no datagram is accepted twice.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ReplayWindow {
    highest: u64,
    seen: u64,
}

impl ReplayWindow {
    /// A window that rejects everything up to `highest` (a tombstone's memory).
    pub(crate) fn after(highest: u64) -> Self {
        ReplayWindow { highest, seen: u64::MAX }
    }

    /// The highest nonce accepted.
    pub(crate) fn highest(&self) -> u64 {
        self.highest
    }

    /// Whether `nonce` is new: unsequenced nonces always are (the sender has no clock).
    pub(crate) fn is_fresh(&self, nonce: u64) -> bool {
        if nonce & SEQUENCED == 0 || nonce > self.highest {
            return true;
        }
        let behind = self.highest - nonce;
        behind < 64 && self.seen & (1 << behind) == 0
    }

    /// Records `nonce` as accepted (call only after [`ReplayWindow::is_fresh`]).
    pub(crate) fn accept(&mut self, nonce: u64) {
        if nonce & SEQUENCED == 0 {
            return;
        }
        if nonce > self.highest {
            let ahead = nonce - self.highest;
            self.seen = if ahead >= 64 { 0 } else { self.seen << ahead };
            self.seen |= 1;
            self.highest = nonce;
        } else if self.highest - nonce < 64 {
            self.seen |= 1 << (self.highest - nonce);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha8Rng;
    use rand_core::SeedableRng;

    #[test]
    fn replay_window_accepts_each_nonce_once() {
        let mut window = ReplayWindow::default();
        let base = SEQUENCED | 1_000;
        for nonce in [base, base + 2, base + 1, base + 70] {
            assert!(window.is_fresh(nonce), "{nonce}");
            window.accept(nonce);
            assert!(!window.is_fresh(nonce));
        }
        // Within the window but seen, or too old: replays.
        assert!(!window.is_fresh(base + 2));
        assert!(!window.is_fresh(base + 6));
        assert!(window.is_fresh(base + 69));
        assert!(window.is_fresh(base + 71));
        // Unsequenced nonces carry no order.
        assert!(window.is_fresh(5));
        let tomb = ReplayWindow::after(window.highest());
        assert!(!tomb.is_fresh(base + 69));
        assert!(tomb.is_fresh(base + 71));
    }

    #[test]
    fn nonces_follow_the_wall_clock_and_only_grow() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut nonces = Nonces::default();
        let first = nonces.next(Some(1_000), &mut rng);
        let second = nonces.next(Some(1_000), &mut rng);
        assert_eq!(second, first + 1);
        assert_eq!((first & !SEQUENCED) >> COUNT_BITS, 1_000);
        let later = nonces.next(Some(1_001), &mut rng);
        assert!(later > second);
        assert_eq!((later & !SEQUENCED) >> COUNT_BITS, 1_001);
        // A clock that stands still or goes back does not make nonces repeat.
        assert!(nonces.next(Some(900), &mut rng) > later);
        assert_eq!(nonces.next(None, &mut rng) & SEQUENCED, 0);
    }

    #[test]
    fn nonces_far_from_the_clock_are_refused() {
        let (ahead, age) = (Duration::from_secs(5), Duration::from_secs(30));
        let at = |ms: u64| SEQUENCED | (ms << COUNT_BITS);
        let check = |nonce, now| check_time(nonce, now, ahead, age);
        assert_eq!(check(at(100_000), Some(100_000)), Ok(()));
        assert_eq!(check(at(104_000), Some(100_000)), Ok(()));
        assert_eq!(check(at(106_000), Some(100_000)), Err(DropReason::ClockSkew));
        assert_eq!(check(at(71_000), Some(100_000)), Ok(()));
        assert_eq!(check(at(69_000), Some(100_000)), Err(DropReason::ClockSkew));
        assert_eq!(check(u64::MAX, Some(100_000)), Err(DropReason::ClockSkew));
        assert_eq!(check(5, Some(100_000)), Err(DropReason::Unsequenced));
        assert_eq!(check(5, None), Ok(()));
        assert_eq!(check_future(at(104_000), Some(100_000), ahead), Ok(()));
        assert_eq!(check_future(at(1_000), Some(100_000), ahead), Ok(()));
        assert_eq!(check_future(at(106_000), Some(100_000), ahead), Err(DropReason::ClockSkew));
    }
}
