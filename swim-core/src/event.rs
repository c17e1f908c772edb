//! What a node reports to its application, drained with [`Node::poll_event`](crate::Node::poll_event).
//!
//! Each event says what changed, so an application can keep its own copy of the cluster
//! from the events alone, without reading the member table (which may have moved on by the
//! time the event is read): a status event names the status before it, and a metadata
//! event carries the map after and before the change.

use alloc::vec::Vec;
use core::cmp::Ordering;

use smol_str::SmolStr;

use crate::metadata::Metadata;
use crate::status::Status;

/// A change in membership, about another member or about this node itself.
///
/// For each member the events form a chain an application can follow without reading the
/// member table: [`MemberJoined`](Event::MemberJoined) with the status it entered with,
/// then status events whose `previous` is the status the event before reported, until
/// [`MemberReaped`](Event::MemberReaped); and metadata events whose `previous` is the map
/// the one before carried.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A member entered this node's table: seen for the first time, or again after it
    /// was forgotten.
    MemberJoined {
        /// Its name.
        name: SmolStr,
        /// Its incarnation.
        incarnation: u64,
        /// The status it entered with: online; suspect if first heard of as suspect;
        /// offline for a forgotten member heard from again with its old incarnation (it is
        /// taken back as offline until it refutes, which is then a
        /// [`MemberAlive`](Event::MemberAlive)).
        status: Status,
    },
    /// A member failed a probe (or another member said so) and may be down.
    MemberSuspect {
        /// Its name.
        name: SmolStr,
        /// The incarnation the suspicion is about.
        incarnation: u64,
        /// Its status before: online, or (at a newer incarnation) offline or left.
        previous: Status,
    },
    /// A member stayed suspect for the whole suspicion timeout, or another member said it
    /// did: it is considered failed.
    MemberOffline {
        /// Its name.
        name: SmolStr,
        /// The incarnation declared offline.
        incarnation: u64,
        /// Its status before (suspect, unless this node heard the verdict from others
        /// before it suspected the member itself).
        previous: Status,
    },
    /// A member departed gracefully.
    MemberLeft {
        /// Its name.
        name: SmolStr,
        /// Its final incarnation.
        incarnation: u64,
        /// Its status before.
        previous: Status,
    },
    /// A member that was suspect, offline or left is online again: it refuted a suspicion,
    /// restarted, or rejoined.
    MemberAlive {
        /// Its name.
        name: SmolStr,
        /// Its new incarnation.
        incarnation: u64,
        /// What it was before.
        previous: Status,
    },
    /// A member's metadata changed (this node's own included): the map after the change
    /// and the one before, both cheap handles on shared buffers.
    /// [`Event::changed_keys`] lists the keys whose values differ.
    MetadataChanged {
        /// Whose.
        name: SmolStr,
        /// The new metadata version.
        version: u64,
        /// The whole map after the change.
        metadata: Metadata,
        /// The map before, `None` if this node did not know it (the first metadata heard
        /// from a member).
        previous: Option<Metadata>,
    },
    /// An offline or left member was forgotten after the reap timeout.
    MemberReaped {
        /// Its name.
        name: SmolStr,
        /// Its status until then: offline or left.
        previous: Status,
    },
    /// This node heard from the cluster for the first time after [`join`](crate::Node::join).
    Joined,
    /// Another member suspects this node, or declared it offline or left.
    Suspected {
        /// What this node was accused of.
        accusation: Status,
        /// The incarnation the accusation was about.
        incarnation: u64,
    },
    /// This node refuted an accusation by raising its incarnation.
    Refuted {
        /// The new incarnation.
        incarnation: u64,
    },
}

impl Event {
    /// The member the event is about, or `None` for events about this node.
    pub fn member(&self) -> Option<&str> {
        match self {
            Event::MemberJoined { name, .. }
            | Event::MemberSuspect { name, .. }
            | Event::MemberOffline { name, .. }
            | Event::MemberLeft { name, .. }
            | Event::MemberAlive { name, .. }
            | Event::MetadataChanged { name, .. }
            | Event::MemberReaped { name, .. } => Some(name),
            Event::Joined | Event::Suspected { .. } | Event::Refuted { .. } => None,
        }
    }

    /// The status a member event reports: what the member is from this event on. `None`
    /// for events that do not change a member's status (metadata, reaping, this node's own).
    pub fn status(&self) -> Option<Status> {
        match self {
            Event::MemberJoined { status, .. } => Some(*status),
            Event::MemberAlive { .. } => Some(Status::Online),
            Event::MemberSuspect { .. } => Some(Status::Suspect),
            Event::MemberOffline { .. } => Some(Status::Offline),
            Event::MemberLeft { .. } => Some(Status::Left),
            _ => None,
        }
    }

    /// The member's status before the event: `None` for a member just joined and for
    /// events that are not about a member's status.
    pub fn previous_status(&self) -> Option<Status> {
        match self {
            Event::MemberSuspect { previous, .. }
            | Event::MemberOffline { previous, .. }
            | Event::MemberLeft { previous, .. }
            | Event::MemberAlive { previous, .. }
            | Event::MemberReaped { previous, .. } => Some(*previous),
            _ => None,
        }
    }

    /// For a metadata change, the keys whose values differ between the map before and
    /// after (added, changed or removed), in order; every key of the new map when the old
    /// one was unknown. Empty for other events.
    pub fn changed_keys(&self) -> Vec<&str> {
        let Event::MetadataChanged { metadata, previous, .. } = self else {
            return Vec::new();
        };
        let Some(previous) = previous else {
            return metadata.keys().collect();
        };
        // Both maps iterate in key order: one merge walk finds every difference.
        let (mut new, mut old) = (metadata.iter().peekable(), previous.iter().peekable());
        let mut changed = Vec::new();
        loop {
            let order = match (new.peek(), old.peek()) {
                (None, None) => return changed,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some((a, _)), Some((b, _))) => a.cmp(b),
            };
            match order {
                Ordering::Less => changed.extend(new.next().map(|(key, _)| key)),
                Ordering::Greater => changed.extend(old.next().map(|(key, _)| key)),
                Ordering::Equal => {
                    let (Some((key, after)), Some((_, before))) = (new.next(), old.next()) else {
                        return changed;
                    };
                    if after != before {
                        changed.push(key);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use alloc::string::String;

    use super::*;

    fn map(entries: &[(&str, &str)]) -> Metadata {
        entries.iter().map(|(k, v)| (k, bytes::Bytes::copy_from_slice(v.as_bytes()))).collect()
    }

    fn changed(metadata: &[(&str, &str)], previous: Option<&[(&str, &str)]>) -> Vec<String> {
        let event = Event::MetadataChanged {
            name: "a".into(),
            version: 2,
            metadata: map(metadata),
            previous: previous.map(map),
        };
        event.changed_keys().into_iter().map(Into::into).collect()
    }

    #[test]
    fn changed_keys_are_those_added_changed_or_removed() {
        let before: &[(&str, &str)] = &[("gone", "1"), ("role", "db"), ("same", "x")];
        let after = [("new", "2"), ("role", "cache"), ("same", "x")];
        assert_eq!(changed(&after, Some(before)), ["gone", "new", "role"]);
        assert_eq!(changed(&after, None), ["new", "role", "same"]);
        assert!(changed(&after, Some(&after)).is_empty());
        assert_eq!(changed(&[], Some(before)), ["gone", "role", "same"]);
    }

    #[test]
    fn status_events_say_what_they_report_and_what_was_before() {
        let suspect =
            Event::MemberSuspect { name: "b".into(), incarnation: 3, previous: Status::Online };
        assert_eq!(
            (suspect.status(), suspect.previous_status()),
            (Some(Status::Suspect), Some(Status::Online))
        );
        let joined =
            Event::MemberJoined { name: "b".into(), incarnation: 1, status: Status::Suspect };
        assert_eq!((joined.status(), joined.previous_status()), (Some(Status::Suspect), None));
        assert_eq!(Event::Joined.status(), None);
    }
}
