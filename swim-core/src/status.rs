//! Member statuses and the filters that select them.
//!
//! The numeric values follow the Python `swim-protocol` package (ONLINE = 1, OFFLINE = 2,
//! SUSPECT = 4), with LEFT = 8 added for a graceful departure, so that a filter is a bit set.

use core::fmt;
use core::ops::BitOr;

/// What a node believes about a member.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Status {
    /// The member is responding as expected.
    Online = 1,
    /// The member stopped responding for long enough to rule out false positives.
    Offline = 2,
    /// The member failed to respond, but is not yet declared offline; it may refute.
    Suspect = 4,
    /// The member announced that it departed gracefully. Never confused with a failure.
    Left = 8,
}

impl Status {
    /// Which status wins when two facts carry the same incarnation: a member cannot refute
    /// an accusation without raising its incarnation, and a departure is final for that
    /// incarnation.
    pub(crate) fn precedence(self) -> u8 {
        match self {
            Status::Online => 0,
            Status::Suspect => 1,
            Status::Offline => 2,
            Status::Left => 3,
        }
    }

    /// Online or suspect: the member is still taking part (see [`StatusFilter::AVAILABLE`]).
    pub fn is_available(self) -> bool {
        StatusFilter::AVAILABLE.matches(self)
    }

    /// The wire value of this status.
    pub(crate) fn to_wire(self) -> u8 {
        self as u8
    }

    /// Parses a wire value; `None` for anything that is not exactly one status.
    pub(crate) fn from_wire(value: u8) -> Option<Status> {
        match value {
            1 => Some(Status::Online),
            2 => Some(Status::Offline),
            4 => Some(Status::Suspect),
            8 => Some(Status::Left),
            _ => None,
        }
    }

    /// Lower-case name, as the demo prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Online => "online",
            Status::Offline => "offline",
            Status::Suspect => "suspect",
            Status::Left => "left",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of statuses used to select members. Aggregates can be used to filter, never assigned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StatusFilter(u8);

impl StatusFilter {
    /// Only online members.
    pub const ONLINE: StatusFilter = StatusFilter(Status::Online as u8);
    /// Only offline (failed) members.
    pub const OFFLINE: StatusFilter = StatusFilter(Status::Offline as u8);
    /// Only suspect members.
    pub const SUSPECT: StatusFilter = StatusFilter(Status::Suspect as u8);
    /// Only members that left gracefully.
    pub const LEFT: StatusFilter = StatusFilter(Status::Left as u8);
    /// Members still considered responding: online or suspect.
    pub const AVAILABLE: StatusFilter = StatusFilter(Status::Online as u8 | Status::Suspect as u8);
    /// Members not known to respond: offline, suspect or left.
    pub const UNAVAILABLE: StatusFilter =
        StatusFilter(Status::Offline as u8 | Status::Suspect as u8 | Status::Left as u8);
    /// Every member.
    pub const ALL: StatusFilter = StatusFilter(0x0f);

    /// Whether `status` is in this set.
    pub fn matches(self, status: Status) -> bool {
        self.0 & status as u8 != 0
    }
}

impl From<Status> for StatusFilter {
    fn from(status: Status) -> Self {
        StatusFilter(status as u8)
    }
}

impl BitOr for StatusFilter {
    type Output = StatusFilter;

    fn bitor(self, rhs: StatusFilter) -> StatusFilter {
        StatusFilter(self.0 | rhs.0)
    }
}

impl BitOr<Status> for StatusFilter {
    type Output = StatusFilter;

    fn bitor(self, rhs: Status) -> StatusFilter {
        StatusFilter(self.0 | rhs as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_STATUSES: [Status; 4] =
        [Status::Online, Status::Offline, Status::Suspect, Status::Left];

    #[test]
    fn aggregates_match_the_seed() {
        assert!(StatusFilter::AVAILABLE.matches(Status::Online));
        assert!(StatusFilter::AVAILABLE.matches(Status::Suspect));
        assert!(!StatusFilter::AVAILABLE.matches(Status::Offline));
        assert!(!StatusFilter::AVAILABLE.matches(Status::Left));
        assert!(StatusFilter::UNAVAILABLE.matches(Status::Offline));
        assert!(StatusFilter::UNAVAILABLE.matches(Status::Suspect));
        assert!(StatusFilter::UNAVAILABLE.matches(Status::Left));
        assert!(!StatusFilter::UNAVAILABLE.matches(Status::Online));
        assert!(ALL_STATUSES.iter().all(|s| StatusFilter::ALL.matches(*s)));
        assert_eq!(StatusFilter::ONLINE | Status::Suspect, StatusFilter::AVAILABLE);
    }

    #[test]
    fn wire_values_round_trip_and_reject_aggregates() {
        for status in ALL_STATUSES {
            assert_eq!(Status::from_wire(status.to_wire()), Some(status));
        }
        for aggregate in [0, 3, 5, 6, 7, 15, 16, 255] {
            assert_eq!(Status::from_wire(aggregate), None);
        }
    }

    #[test]
    fn precedence_orders_online_suspect_offline_left() {
        let order: [u8; 4] = ALL_STATUSES.map(Status::precedence);
        assert_eq!(order, [0, 2, 1, 3]);
    }
}
