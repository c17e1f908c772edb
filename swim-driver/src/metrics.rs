//! The node's counters and member counts through the [`metrics`] facade (feature `metrics`),
//! so any exporter (e.g. `metrics-exporter-prometheus`) shows them. Every series carries a
//! `node` label, the local member's name.
//!
//! | name | kind | unit | what |
//! |---|---|---|---|
//! | `swim_datagrams_received_total` | counter | datagrams | handed to the node |
//! | `swim_received_bytes_total` | counter | bytes | their size |
//! | `swim_datagrams_sent_total` | counter | datagrams | produced by the node |
//! | `swim_sent_bytes_total` | counter | bytes | their size |
//! | `swim_datagrams_dropped_total` | counter | datagrams | dropped, by `reason` (`unauthenticated`, `replayed`, `malformed`, ...) |
//! | `swim_probes_total` | counter | probes | direct probes started |
//! | `swim_ping_reqs_total` | counter | requests | indirect probes asked for |
//! | `swim_suspicions_total` | counter | suspicions | probes that failed |
//! | `swim_refutations_total` | counter | refutations | accusations this node refuted |
//! | `swim_syncs_total` | counter | digests | anti-entropy digests sent |
//! | `swim_updates_applied_total` | counter | facts | membership facts that were news |
//! | `swim_members_refused_total` | counter | members | refused with a full table |
//! | `swim_metadata_refused_total` | counter | updates | remote metadata over the limit |
//! | `swim_lifeguard_confirmations_total` | counter | confirmations | suspicion confirmations |
//! | `swim_lifeguard_nacks_sent_total` | counter | nacks | sent as a ping-req helper |
//! | `swim_lifeguard_nacks_received_total` | counter | nacks | received |
//! | `swim_peer_resolve_failures_total` | counter | lookups | peer names that failed to resolve |
//! | `swim_members` | gauge | members | members by `status` (`online`, `suspect`, `offline`, `left`), this node included |
//! | `swim_health` | gauge | score | Lifeguard local health (0 healthy) |
//! | `swim_pending_gossip` | gauge | facts | facts waiting to be gossiped |
//!
//! Values are exported at most every [`EXPORT_EVERY`] and when the node stops.

use std::time::Duration;

use metrics::{Unit, counter, describe_counter, describe_gauge, gauge};
use swim_core::rand_core::Rng;
use swim_core::{Counters, DropReason, Instant, Node, Status};

/// Shortest time between two exports.
pub const EXPORT_EVERY: Duration = Duration::from_millis(500);

/// What was exported so far, to turn running totals into increments.
#[derive(Debug, Default)]
pub(crate) struct Exporter {
    exported: Counters,
    resolve_failures: u64,
    next: Option<Instant>,
}

/// `(name, unit, description, value)` of every plain counter.
fn counters(c: &Counters) -> [(&'static str, Unit, &'static str, u64); 15] {
    [
        (
            "swim_datagrams_received_total",
            Unit::Count,
            "datagrams handed to the node",
            c.datagrams_in,
        ),
        ("swim_received_bytes_total", Unit::Bytes, "bytes of those datagrams", c.bytes_in),
        (
            "swim_datagrams_sent_total",
            Unit::Count,
            "datagrams produced by the node",
            c.datagrams_out,
        ),
        ("swim_sent_bytes_total", Unit::Bytes, "bytes of those datagrams", c.bytes_out),
        ("swim_probes_total", Unit::Count, "direct probes started", c.probes),
        ("swim_ping_reqs_total", Unit::Count, "indirect probes asked for", c.ping_reqs),
        ("swim_suspicions_total", Unit::Count, "probes that failed", c.suspicions),
        ("swim_refutations_total", Unit::Count, "accusations refuted", c.refutations),
        ("swim_syncs_total", Unit::Count, "anti-entropy digests sent", c.syncs),
        (
            "swim_updates_applied_total",
            Unit::Count,
            "membership facts that were news",
            c.updates_applied,
        ),
        (
            "swim_members_refused_total",
            Unit::Count,
            "new members refused: table full",
            c.members_refused,
        ),
        (
            "swim_metadata_refused_total",
            Unit::Count,
            "remote metadata over the limit",
            c.metadata_refused,
        ),
        (
            "swim_lifeguard_confirmations_total",
            Unit::Count,
            "suspicion confirmations",
            c.confirmations,
        ),
        ("swim_lifeguard_nacks_sent_total", Unit::Count, "nacks sent as a helper", c.nacks_sent),
        ("swim_lifeguard_nacks_received_total", Unit::Count, "nacks received", c.nacks_received),
    ]
}

/// Registers the descriptions and units with the installed recorder.
fn describe() {
    for (name, unit, description, _) in counters(&Counters::default()) {
        describe_counter!(name, unit, description);
    }
    describe_counter!("swim_datagrams_dropped_total", Unit::Count, "datagrams dropped, by reason");
    describe_counter!("swim_peer_resolve_failures_total", Unit::Count, "failed peer lookups");
    describe_gauge!("swim_members", Unit::Count, "members by status, this node included");
    describe_gauge!("swim_health", Unit::Count, "Lifeguard local health score (0 healthy)");
    describe_gauge!("swim_pending_gossip", Unit::Count, "facts waiting to be gossiped");
}

impl Exporter {
    /// Exports what changed, if the last export is [`EXPORT_EVERY`] old (or `force`).
    pub(crate) fn export<R: Rng>(
        &mut self,
        node: &Node<R>,
        resolve_failures: u64,
        now: Instant,
        force: bool,
    ) {
        match self.next {
            None => describe(),
            Some(next) if next > now && !force => return,
            Some(_) => {}
        }
        self.next = Some(now + EXPORT_EVERY);
        let name = node.local_member().name().to_string();
        let c = node.counters();
        let before = counters(&self.exported);
        for ((key, _, _, value), (_, _, _, old)) in counters(c).into_iter().zip(before) {
            counter!(key, "node" => name.clone()).increment(value - old);
        }
        for reason in DropReason::ALL {
            let new = c.dropped(reason) - self.exported.dropped(reason);
            let labels = [("node", name.clone()), ("reason", reason.as_str().to_owned())];
            counter!("swim_datagrams_dropped_total", &labels).increment(new);
        }
        let failures = resolve_failures - self.resolve_failures;
        counter!("swim_peer_resolve_failures_total", "node" => name.clone()).increment(failures);
        self.resolve_failures = resolve_failures;
        self.exported.clone_from(c);
        let mut by_status = [0u32; 4];
        for member in node.members() {
            by_status[status_index(member.status())] += 1;
        }
        for status in [Status::Online, Status::Suspect, Status::Offline, Status::Left] {
            let labels = [("node", name.clone()), ("status", status.as_str().to_owned())];
            gauge!("swim_members", &labels).set(by_status[status_index(status)]);
        }
        gauge!("swim_health", "node" => name.clone()).set(node.health());
        gauge!("swim_pending_gossip", "node" => name).set(node.pending_gossip() as f64);
    }
}

fn status_index(status: Status) -> usize {
    match status {
        Status::Online => 0,
        Status::Suspect => 1,
        Status::Offline => 2,
        Status::Left => 3,
    }
}
