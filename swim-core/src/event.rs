//! What a node reports to its application, drained with [`Node::poll_event`](crate::Node::poll_event).

use smol_str::SmolStr;

use crate::status::Status;

/// A change in membership, about another member or about this node itself.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A member was seen for the first time (online or suspect).
    MemberJoined {
        /// Its name.
        name: SmolStr,
        /// Its incarnation.
        incarnation: u64,
    },
    /// A member failed a probe (or another member said so) and may be down.
    MemberSuspect {
        /// Its name.
        name: SmolStr,
        /// The incarnation the suspicion is about.
        incarnation: u64,
    },
    /// A member stayed suspect for the whole suspicion timeout: it is considered failed.
    MemberOffline {
        /// Its name.
        name: SmolStr,
        /// The incarnation declared offline.
        incarnation: u64,
    },
    /// A member departed gracefully.
    MemberLeft {
        /// Its name.
        name: SmolStr,
        /// Its final incarnation.
        incarnation: u64,
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
    /// A member's metadata changed (this node's own included).
    MetadataChanged {
        /// Whose.
        name: SmolStr,
        /// The new metadata version.
        version: u64,
    },
    /// An offline or left member was forgotten after the reap timeout.
    MemberReaped {
        /// Its name.
        name: SmolStr,
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
            | Event::MemberReaped { name } => Some(name),
            Event::Joined | Event::Suspected { .. } | Event::Refuted { .. } => None,
        }
    }
}
