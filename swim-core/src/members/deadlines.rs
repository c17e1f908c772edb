//! When each member's current status times out (suspicion to offline, offline or left to
//! reaped), in a side table of the membership: only members that are not online have one,
//! and a cluster in steady state has few, so an entry of the table carries none.

use alloc::collections::{BTreeMap, BTreeSet};

use super::member::MemberId;
use crate::time::Instant;

/// Deadlines by time (to find the next one due) and by member (to replace one).
#[derive(Debug, Default)]
pub(super) struct Deadlines {
    by_time: BTreeSet<(Instant, MemberId)>,
    by_member: BTreeMap<MemberId, Instant>,
}

impl Deadlines {
    /// Sets (or clears) `id`'s deadline.
    pub(super) fn set(&mut self, id: MemberId, deadline: Option<Instant>) {
        let old = match deadline {
            Some(at) => self.by_member.insert(id, at),
            None => self.by_member.remove(&id),
        };
        if let Some(old) = old {
            self.by_time.remove(&(old, id));
        }
        if let Some(at) = deadline {
            self.by_time.insert((at, id));
        }
    }

    /// The earliest deadline.
    pub(super) fn next(&self) -> Option<Instant> {
        self.by_time.first().map(|(at, _)| *at)
    }

    /// A member whose deadline passed by `now`, its deadline cleared.
    pub(super) fn pop_due(&mut self, now: Instant) -> Option<MemberId> {
        let &(_, id) = self.by_time.first().filter(|(at, _)| *at <= now)?;
        self.by_time.pop_first();
        self.by_member.remove(&id);
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_has_one_deadline_and_they_come_due_in_order() {
        let mut deadlines = Deadlines::default();
        let (a, b) = (MemberId(1), MemberId(2));
        deadlines.set(a, Some(Instant::from_secs(5)));
        deadlines.set(b, Some(Instant::from_secs(3)));
        deadlines.set(a, Some(Instant::from_secs(2)));
        assert_eq!(deadlines.next(), Some(Instant::from_secs(2)));
        assert_eq!(deadlines.pop_due(Instant::from_secs(1)), None);
        assert_eq!(deadlines.pop_due(Instant::from_secs(10)), Some(a));
        deadlines.set(b, None);
        assert_eq!((deadlines.next(), deadlines.pop_due(Instant::MAX)), (None, None));
        assert!(deadlines.by_member.is_empty());
    }
}
