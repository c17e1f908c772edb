//! What applications read from a node: the cluster metadata view, watches over membership
//! events, readiness and a status dump.
//!
//! Nothing here changes protocol state: these are pure functions of what a node (or a copy
//! of its members) knows, so the drivers and the simulator offer exactly the same answers.
//!
//! - [`ClusterMetadata`] is pymap's `ClusterMetadata`: the local metadata map, and remote
//!   metadata by key (member to value) over the members that are *available* and whose
//!   metadata is *known*. A member that fails, leaves, or has not told us its metadata yet
//!   drops out of the view, so its keys vanish like etcd keys bound to an expired lease.
//! - [`Watch`] selects the events about members matching a [`WatchFilter`] (names, statuses,
//!   a metadata key), as the drivers' `watch(filter)` streams deliver them.
//! - [`StatusDump`] is PySyncObj's `getStatus`: members, statuses, incarnations, metadata
//!   sizes and counters, serialisable with the `serde` feature.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use smol_str::SmolStr;

use bytes::Bytes;
use rand_core::Rng;

use crate::counters::{Counters, DropReason};
use crate::event::Event;
use crate::members::Member;
use crate::metadata::Metadata;
use crate::node::Node;
use crate::status::{Status, StatusFilter};

/// The cluster's metadata as one map: this node's own metadata, and every other available
/// member's metadata, by member and by key.
///
/// Built from a consistent copy of the membership table, so it never changes under you:
/// take a new one (with [`ClusterMetadata::of`] or from a driver's snapshot) to see changes.
/// Taking one copies no metadata: each member's map is a shared buffer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterMetadata {
    local_name: String,
    local: Metadata,
    /// The remote members in the view (available, metadata known), even those with none.
    remote: BTreeMap<SmolStr, Metadata>,
}

impl ClusterMetadata {
    /// The view over `members` as seen by the member named `local_name` (whose own entry,
    /// if among `members`, provides the local map rather than a remote one).
    pub fn from_members<'a>(
        local_name: &str,
        members: impl IntoIterator<Item = &'a Member>,
    ) -> Self {
        let mut view = ClusterMetadata { local_name: local_name.to_string(), ..Default::default() };
        for member in members {
            if member.name() == local_name {
                view.local = member.metadata().cloned().unwrap_or_default();
                continue;
            }
            // Only members still taking part, with metadata we know: the lease rule.
            if let Some(metadata) = member.metadata().filter(|_| member.status().is_available()) {
                view.remote.insert(member.name().clone(), metadata.clone());
            }
        }
        view
    }

    /// This node's name.
    pub fn local_name(&self) -> &str {
        &self.local_name
    }

    /// This node's own metadata: what it spreads to the cluster. Change it with the node's
    /// (or driver handle's) `set_metadata` / `remove_metadata`.
    pub fn local(&self) -> &Metadata {
        &self.local
    }

    /// The remote members in the view with their metadata, in name order.
    pub fn remote(&self) -> &BTreeMap<SmolStr, Metadata> {
        &self.remote
    }

    /// The remote members holding `key`, with their values, in name order (pymap's
    /// `remote[key]`).
    pub fn remote_values<'a>(
        &'a self,
        key: &'a str,
    ) -> impl Iterator<Item = (&'a str, Bytes)> + 'a {
        self.remote.iter().filter_map(move |(name, metadata)| Some((&**name, metadata.get(key)?)))
    }

    /// Every known value of `key`, local and remote, each once.
    pub fn get_all(&self, key: &str) -> BTreeSet<Bytes> {
        let remote = self.remote_values(key).map(|(_, value)| value);
        self.local.get(key).into_iter().chain(remote).collect()
    }

    /// The value of `key` at the remote member `name`, if it is in the view.
    pub fn get(&self, name: &str, key: &str) -> Option<Bytes> {
        self.remote.get(name).and_then(|metadata| metadata.get(key))
    }

    /// The remote members in the view (available, metadata known), in name order.
    pub fn members(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.remote.keys().map(|name| &**name)
    }

    /// Whether the remote member `name` is in the view.
    pub fn contains(&self, name: &str) -> bool {
        self.remote.contains_key(name)
    }

    /// Every key known, local and remote, each once, in order.
    pub fn keys(&self) -> BTreeSet<&str> {
        let remote = self.remote.values().flat_map(|metadata| metadata.keys());
        self.local.keys().chain(remote).collect()
    }
}

/// Which membership events a [`Watch`] lets through. Every condition set must hold; the
/// default lets everything through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchFilter {
    names: Option<BTreeSet<String>>,
    statuses: StatusFilter,
    key: Option<String>,
}

impl Default for WatchFilter {
    fn default() -> Self {
        WatchFilter::all()
    }
}

impl WatchFilter {
    /// Every event, about any member and about this node.
    pub fn all() -> Self {
        WatchFilter { names: None, statuses: StatusFilter::ALL, key: None }
    }

    /// Only events about the member `name` (repeat to allow several). This node's own
    /// events (joined, suspected, refuted) are about its own name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.names.get_or_insert_with(BTreeSet::new).insert(name.into());
        self
    }

    /// Only events after which the member's status is in `statuses` (a reaped member
    /// counts as offline).
    pub fn status(mut self, statuses: impl Into<StatusFilter>) -> Self {
        self.statuses = statuses.into();
        self
    }

    /// Only events about members holding metadata `key` (or that just stopped holding
    /// it); a metadata change passes only if it changed the value of `key`.
    pub fn metadata_key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Whether an event about the member `name`, whose status afterwards is `status`, is
    /// selected by name and status (the metadata key is a [`Watch`]'s business).
    pub fn selects(&self, name: &str, status: Status) -> bool {
        self.names.as_ref().is_none_or(|names| names.contains(name))
            && self.statuses.matches(status)
    }
}

/// One event a [`Watch`] let through, with the member as it was when the event was polled
/// (`None` once it was reaped).
#[derive(Clone, Debug)]
pub struct Watched {
    /// The event.
    pub event: Event,
    /// The member it is about (this node for its own events), as it was then.
    pub member: Option<Member>,
}

impl Watched {
    /// The name of the member the event is about (this node's for its own events).
    pub fn name(&self) -> Option<&str> {
        self.event.member().or(self.member.as_ref().map(|m| m.name().as_str()))
    }
}

/// A stateful filter over a node's events: it remembers each member's value of the
/// filter's metadata key, so it can tell which metadata changes touched that key.
///
/// Drivers offer it every event as it is polled, with the member as the node holds it at
/// that moment (after the whole input that produced the event). Status and metadata are
/// taken from the event itself where it carries them, so of two events of one input (say
/// suspect, then offline) each is judged by the status it reports.
#[derive(Clone, Debug)]
pub struct Watch {
    filter: WatchFilter,
    /// The last value of the filter's key seen per member, when the filter has a key.
    seen: BTreeMap<SmolStr, Bytes>,
}

impl Watch {
    /// A watch starting from what `members` hold now (the node's current members).
    pub fn new<'a>(filter: WatchFilter, members: impl IntoIterator<Item = &'a Member>) -> Self {
        let mut seen = BTreeMap::new();
        if let Some(key) = &filter.key {
            for member in members {
                if let Some(value) = member.metadata().and_then(|m| m.get(key)) {
                    seen.insert(member.name().clone(), value.clone());
                }
            }
        }
        Watch { filter, seen }
    }

    /// The filter.
    pub fn filter(&self) -> &WatchFilter {
        &self.filter
    }

    /// Whether `event` passes. `member` is the member the event is about, looked up when the
    /// event is polled (for this node's own events: the local member; see
    /// [`Watch::member_of`]); `None` if no longer known.
    pub fn offer(&mut self, event: &Event, member: Option<&Member>) -> bool {
        let Some(name) = event.member().or(member.map(|m| m.name().as_str())) else {
            return false;
        };
        // The status the event reports, not the member's now: of two events of one input
        // (suspect, then offline) each is selected by its own.
        let status = match (event, event.status(), member) {
            (Event::MemberReaped { .. }, _, _) | (_, None, None) => Status::Offline,
            (_, Some(status), _) => status,
            (_, None, Some(member)) => member.status(),
        };
        let selected = self.filter.selects(name, status);
        let Some(key) = &self.filter.key else {
            return selected;
        };
        let value = match event {
            // The map the change made, which later changes of the same input cannot hide.
            Event::MetadataChanged { metadata, .. } => metadata.get(key),
            _ => member.and_then(|m| m.metadata()).and_then(|m| m.get(key)),
        };
        let previous = match &value {
            Some(value) if !matches!(event, Event::MemberReaped { .. }) => {
                let name = member.map_or_else(|| SmolStr::new(name), |m| m.name().clone());
                self.seen.insert(name, value.clone())
            }
            _ => self.seen.remove(name),
        };
        let touched = match event {
            Event::MetadataChanged { .. } => previous != value,
            _ => previous.is_some() || value.is_some(),
        };
        selected && touched
    }
}

/// A snapshot of one member for a [`StatusDump`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct MemberStatus {
    /// Its name.
    pub name: String,
    /// The address it advertises.
    pub addr: String,
    /// `online`, `suspect`, `offline` or `left`.
    pub status: &'static str,
    /// Its incarnation.
    pub incarnation: u64,
    /// Version of the metadata held (0: unknown).
    pub meta_version: u64,
    /// Number of metadata entries, `None` while the metadata is unknown.
    pub metadata_entries: Option<usize>,
    /// Bytes of the encoded metadata (what `max_metadata_size` limits), `None` while the
    /// metadata is unknown.
    pub metadata_bytes: Option<usize>,
    /// Microseconds since the node started when its status last changed (a whole number of
    /// seconds: see [`Member::status_changed_at`]).
    pub status_changed_at_us: u64,
}

impl MemberStatus {
    /// The dump of `member`.
    pub fn of(member: &Member) -> Self {
        let metadata = member.metadata();
        MemberStatus {
            name: member.name().to_string(),
            addr: member.addr().to_string(),
            status: member.status().as_str(),
            incarnation: member.incarnation(),
            meta_version: member.meta_version(),
            metadata_entries: metadata.map(Metadata::len),
            metadata_bytes: metadata.map(Metadata::encoded_len),
            status_changed_at_us: member.status_changed_at().as_micros(),
        }
    }
}

/// The [`Counters`] of a [`StatusDump`]: every total, plus drops by reason as a map of
/// snake_case names (which `Counters` keeps as an array).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct CounterStatus {
    /// The totals, serialised as fields of this object.
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub totals: Counters,
    /// Datagrams dropped, by [`DropReason::as_str`].
    pub dropped: BTreeMap<&'static str, u64>,
    /// Datagrams dropped for any reason.
    pub dropped_total: u64,
}

impl CounterStatus {
    /// The dump of `counters`.
    pub fn of(counters: &Counters) -> Self {
        CounterStatus {
            totals: counters.clone(),
            dropped: DropReason::ALL.iter().map(|r| (r.as_str(), counters.dropped(*r))).collect(),
            dropped_total: counters.dropped_total(),
        }
    }
}

/// Everything worth logging about a node at one moment (PySyncObj's `getStatus`).
///
/// With the `serde` feature it serialises (e.g. to JSON) with these field names.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct StatusDump {
    /// This node's name.
    pub name: String,
    /// Whether it has heard from the cluster ([`Node::is_ready`]).
    pub ready: bool,
    /// Whether it left.
    pub left: bool,
    /// Lifeguard local health score (0: healthy).
    pub health: u32,
    /// Members per status: `online`, `suspect`, `offline`, `left`.
    pub counts: BTreeMap<&'static str, usize>,
    /// Every member, this node included, in name order.
    pub members: Vec<MemberStatus>,
    /// The node's counters.
    pub counters: CounterStatus,
}

impl StatusDump {
    /// The dump of `members` as seen by `local_name`, with `counters`; `ready`, `left` and
    /// `health` start false / 0 for the caller to fill in.
    pub fn from_members<'a>(
        local_name: &str,
        members: impl IntoIterator<Item = &'a Member>,
        counters: &Counters,
    ) -> Self {
        let mut members: Vec<MemberStatus> = members.into_iter().map(MemberStatus::of).collect();
        members.sort_by(|a, b| a.name.cmp(&b.name));
        let mut counts: BTreeMap<&'static str, usize> =
            [Status::Online, Status::Suspect, Status::Offline, Status::Left]
                .into_iter()
                .map(|s| (s.as_str(), 0))
                .collect();
        for member in &members {
            *counts.entry(member.status).or_default() += 1;
        }
        StatusDump {
            name: local_name.to_string(),
            ready: false,
            left: false,
            health: 0,
            counts,
            members,
            counters: CounterStatus::of(counters),
        }
    }
}

impl ClusterMetadata {
    /// The view of `node`: its local metadata, and remote metadata by key over the
    /// available members whose metadata it knows.
    pub fn of<R: Rng>(node: &Node<R>) -> Self {
        ClusterMetadata::from_members(node.local_member().name(), node.members())
    }
}

impl StatusDump {
    /// The dump of `node`: members, statuses, incarnations, metadata sizes and counters.
    pub fn of<R: Rng>(node: &Node<R>) -> Self {
        let mut dump =
            StatusDump::from_members(node.local_member().name(), node.members(), node.counters());
        dump.ready = node.is_ready();
        dump.left = node.has_left();
        dump.health = node.health();
        dump
    }
}

impl Watch {
    /// A watch with `filter`, starting from `node`'s current members.
    pub fn of<R: Rng>(node: &Node<R>, filter: WatchFilter) -> Self {
        Watch::new(filter, node.members())
    }

    /// The member `event` is about, as [`Watch::offer`] wants it: `node` itself for its own
    /// events, `None` for a member `node` no longer knows.
    pub fn member_of<'a, R: Rng>(node: &'a Node<R>, event: &Event) -> Option<&'a Member> {
        match event.member() {
            Some(name) => node.member(name),
            None => Some(node.local_member()),
        }
    }
}

#[cfg(test)]
mod tests {
    use core::net::SocketAddr;
    use core::time::Duration;

    use rand_chacha::ChaCha8Rng;
    use rand_core::SeedableRng;

    use super::*;
    use crate::auth::Keyring;
    use crate::config::Config;
    use crate::time::Instant;

    type TestNode = Node<ChaCha8Rng>;

    fn node(name: &str, port: u16, meta: &[(&str, &str)]) -> TestNode {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut config = Config::new(name, addr, Keyring::new("view"));
        config.epoch_ms = 1_700_000_000_000;
        for (k, v) in meta {
            config.local_metadata.insert(*k, Bytes::copy_from_slice(v.as_bytes()));
        }
        Node::new(config, ChaCha8Rng::seed_from_u64(u64::from(port)), Instant::ZERO).unwrap()
    }

    /// Delivers every datagram between `nodes` and advances time until `until`.
    fn run(nodes: &mut [TestNode], from: Instant, until: Instant) -> Vec<(usize, Event)> {
        let mut events = Vec::new();
        let mut now = from;
        while now < until {
            let mut flight = Vec::new();
            for node in nodes.iter_mut() {
                let src = node.config().local_addr;
                while let Some(t) = node.poll_transmit() {
                    flight.push((src, t.destination, t.payload.to_vec()));
                }
            }
            for (i, node) in nodes.iter_mut().enumerate() {
                while let Some(e) = node.poll_event() {
                    events.push((i, e));
                }
            }
            if flight.is_empty() {
                let next = nodes.iter().filter_map(|n| n.poll_timeout()).min();
                now = next.unwrap_or(until).max(now + Duration::from_millis(1)).min(until);
                nodes.iter_mut().for_each(|n| n.handle_timeout(now));
            }
            for (src, dst, bytes) in flight {
                if let Some(n) = nodes.iter_mut().find(|n| n.config().local_addr == dst) {
                    n.handle_datagram(now, src, &bytes);
                }
            }
        }
        events
    }

    fn cluster() -> Vec<TestNode> {
        let mut nodes = Vec::from([
            node("a", 1, &[("role", "db"), ("zone", "x")]),
            node("b", 2, &[("role", "cache")]),
            node("c", 3, &[("role", "db")]),
        ]);
        let seed = nodes[0].config().local_addr;
        nodes[1].join(Instant::ZERO, [seed]);
        nodes[2].join(Instant::ZERO, [seed]);
        run(&mut nodes, Instant::ZERO, Instant::from_secs(5));
        nodes
    }

    #[test]
    fn the_view_holds_available_members_by_key() {
        let nodes = cluster();
        assert!(nodes.iter().all(|n| n.is_ready()));
        let view = ClusterMetadata::of(&nodes[1]);
        assert_eq!(view.local_name(), "b");
        assert_eq!(view.local().get("role").unwrap(), "cache");
        assert_eq!(view.members().collect::<Vec<_>>(), ["a", "c"]);
        let roles: Vec<(&str, Bytes)> = view.remote_values("role").collect();
        assert_eq!(roles, [("a", Bytes::from("db")), ("c", Bytes::from("db"))]);
        assert_eq!(view.get("a", "zone").unwrap(), "x");
        let all: Vec<Bytes> = view.get_all("role").into_iter().collect();
        assert_eq!(all, [&b"cache"[..], b"db"]);
        assert_eq!(view.keys().into_iter().collect::<Vec<_>>(), ["role", "zone"]);
        assert!(view.get_all("missing").is_empty());
    }

    #[test]
    fn a_failed_member_drops_out_like_a_lease() {
        let mut nodes = cluster();
        let c = nodes.pop().unwrap();
        drop(c);
        let t = Instant::from_secs(5);
        let mut watch = Watch::of(&nodes[0], WatchFilter::all().metadata_key("role"));
        let events = run(&mut nodes, t, Instant::from_secs(30));
        let view = ClusterMetadata::of(&nodes[0]);
        assert!(!view.contains("c"));
        assert_eq!(view.remote_values("role").map(|(n, _)| n).collect::<Vec<_>>(), ["b"]);
        // The watch on `role` saw c go: suspect, then offline.
        let mut passed = Vec::new();
        for (i, event) in &events {
            if *i == 0 {
                let member = Watch::member_of(&nodes[0], event);
                if watch.offer(event, member) {
                    passed.push(event.clone());
                }
            }
        }
        assert!(
            passed.iter().any(|e| matches!(e, Event::MemberOffline { name, .. } if &**name == "c"))
        );
    }

    #[test]
    fn watches_filter_by_name_status_and_key() {
        let mut nodes = cluster();
        let t = Instant::from_secs(5);
        let mut by_key = Watch::of(&nodes[0], WatchFilter::all().metadata_key("zone"));
        let mut by_name = Watch::of(&nodes[0], WatchFilter::all().name("b"));
        let mut offline = Watch::of(&nodes[0], WatchFilter::all().status(Status::Offline));
        nodes[1].set_metadata(t, "token", "1").unwrap();
        let mut events = run(&mut nodes, t, Instant::from_secs(7));
        nodes[2].set_metadata(Instant::from_secs(7), "zone", "y").unwrap();
        events.extend(run(&mut nodes, Instant::from_secs(7), Instant::from_secs(9)));
        let mut counts = [0; 3];
        for (_, event) in events.iter().filter(|(i, _)| *i == 0) {
            let member = Watch::member_of(&nodes[0], event);
            for (n, watch) in [&mut by_key, &mut by_name, &mut offline].into_iter().enumerate() {
                counts[n] += usize::from(watch.offer(event, member));
            }
        }
        // zone: only c's change; name b: only b's token change; nothing went offline.
        assert_eq!(counts, [1, 1, 0]);
    }

    #[test]
    fn watches_judge_each_event_by_what_it_carries_not_by_the_table_later() {
        let mut nodes = cluster();
        let t = Instant::from_secs(5);
        let mut suspect = Watch::of(&nodes[0], WatchFilter::all().status(Status::Suspect));
        let mut zone = Watch::of(&nodes[0], WatchFilter::all().metadata_key("zone"));
        // a's zone goes from x to y and back; c crashes and goes suspect, then offline.
        nodes[0].set_metadata(t, "zone", "y").unwrap();
        nodes[0].set_metadata(t, "zone", "x").unwrap();
        nodes.pop();
        let events = run(&mut nodes, t, Instant::from_secs(30));
        assert_eq!(nodes[0].member("c").map(|m| m.status()), Some(Status::Offline));
        // Every event is read only now, when the table has moved on: each still passes
        // by its own status and metadata.
        let mut passed = (Vec::new(), 0);
        for (_, event) in events.iter().filter(|(i, _)| *i == 0) {
            let member = Watch::member_of(&nodes[0], event);
            if suspect.offer(event, member) {
                passed.0.push(event.clone());
            }
            passed.1 += usize::from(zone.offer(event, member));
        }
        let previous = Status::Online;
        let name = SmolStr::new("c");
        assert!(
            matches!(&passed.0[..], [Event::MemberSuspect { name: n, previous: p, .. }] if *n == name && *p == previous),
            "{passed:?}"
        );
        assert_eq!(passed.1, 2, "x to y, then y to x");
    }

    #[test]
    fn the_status_dump_counts_members_and_drops() {
        let nodes = cluster();
        let dump = StatusDump::of(&nodes[0]);
        assert_eq!(dump.name, "a");
        assert!(dump.ready && !dump.left);
        assert_eq!(dump.counts["online"], 3);
        assert_eq!(dump.members.len(), 3);
        let b = &dump.members[1];
        assert_eq!((b.name.as_str(), b.status, b.metadata_entries), ("b", "online", Some(1)));
        // The count, then the key and the value, each after its length.
        assert_eq!(b.metadata_bytes, Some(1 + 1 + "role".len() + 1 + "cache".len()));
        assert!(dump.counters.totals.datagrams_in > 0 && dump.counters.totals.bytes_out > 0);
        assert_eq!(dump.counters.dropped.len(), DropReason::ALL.len());
    }
}
