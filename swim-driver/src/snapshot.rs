//! A copy of a node's view at one moment, for applications to read without holding the
//! driver's lock.

use swim_core::rand_core::Rng;
use swim_core::{ClusterMetadata, Counters, Member, Node, StatusDump, StatusFilter};

/// A copy of a node's view at one moment: members in name order, counters, state.
#[derive(Clone, Debug)]
pub struct Snapshot {
    members: Vec<Member>,
    local: usize,
    counters: Counters,
    ready: bool,
    left: bool,
    health: u32,
    unresolved: Vec<String>,
    resolve_failures: u64,
}

impl Snapshot {
    /// Copies what `node` knows; `unresolved` are the peer names failing to resolve, after
    /// `resolve_failures` failed lookups in all.
    pub fn of<R: Rng>(node: &Node<R>, unresolved: &[String], resolve_failures: u64) -> Self {
        // The core iterates in no particular order; lookups below rely on name order.
        let mut members: Vec<Member> = node.members().cloned().collect();
        members.sort_unstable_by(|a, b| a.name().cmp(b.name()));
        let local_name = node.local_member().name();
        Snapshot {
            local: members.iter().position(|m| m.name() == local_name).unwrap_or(0),
            members,
            counters: node.counters().clone(),
            ready: node.is_ready(),
            left: node.has_left(),
            health: node.health(),
            unresolved: unresolved.to_vec(),
            resolve_failures,
        }
    }

    /// Every member, this node included, in name order.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// Members whose status matches `filter`, this node included if it matches.
    pub fn members_with(&self, filter: StatusFilter) -> impl Iterator<Item = &Member> + '_ {
        self.members.iter().filter(move |m| filter.matches(m.status()))
    }

    /// Every member but this node (the Python package's `members.non_local`).
    pub fn non_local(&self) -> impl Iterator<Item = &Member> + '_ {
        let local = self.local;
        self.members.iter().enumerate().filter(move |(i, _)| *i != local).map(|(_, m)| m)
    }

    /// A member by name.
    pub fn member(&self, name: &str) -> Option<&Member> {
        let found = self.members.binary_search_by(|m| m.name().as_str().cmp(name));
        found.ok().map(|i| &self.members[i])
    }

    /// This node as a member (the Python package's `members.local`).
    pub fn local_member(&self) -> &Member {
        &self.members[self.local]
    }

    /// The node's counters, dropped datagrams included.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Whether the node has heard from the cluster since it joined (PySyncObj's `isReady`);
    /// the event stream announces it with `Event::Joined`.
    pub fn is_ready(&self) -> bool {
        self.ready
    }

    /// Whether the node left the cluster.
    pub fn has_left(&self) -> bool {
        self.left
    }

    /// The Lifeguard health score: 0 when healthy.
    pub fn health(&self) -> u32 {
        self.health
    }

    /// Peer names whose last resolution failed (retried in the background), as `HOST:PORT`.
    pub fn unresolved_peers(&self) -> &[String] {
        &self.unresolved
    }

    /// Peer name lookups that failed since the node started (each is retried; also the
    /// `swim_peer_resolve_failures_total` metric).
    pub fn resolve_failures(&self) -> u64 {
        self.resolve_failures
    }

    /// The cluster metadata view: local metadata, remote metadata by key over the
    /// available members whose metadata is known, `get_all`.
    pub fn cluster_metadata(&self) -> ClusterMetadata {
        ClusterMetadata::from_members(self.local_member().name(), &self.members)
    }

    /// A status dump (serialisable with the `serde` feature): members, statuses,
    /// incarnations, metadata sizes, counters.
    pub fn status_dump(&self) -> StatusDump {
        let local = self.local_member().name();
        let mut dump = StatusDump::from_members(local, &self.members, &self.counters);
        dump.ready = self.ready;
        dump.left = self.left;
        dump.health = self.health;
        dump
    }
}
