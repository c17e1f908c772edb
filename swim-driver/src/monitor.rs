//! What an operator should hear about: the node's counters are compared after every step,
//! and what needs a human (datagrams failing authentication, a full member table, metadata
//! over the limit) becomes a warning, at most one per kind every [`WARN_EVERY`], while
//! membership changes are logged with the member's name and status as fields.
//!
//! A wrong shared secret is otherwise silent: every datagram of the other side fails
//! authentication and is dropped before it is read, so the node just never joins.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use swim_core::rand_core::Rng;
use swim_core::{Counters, DropReason, Event, Instant, Node, Status};
use tracing::{debug, info, warn};

/// Shortest time between two warnings of the same kind.
pub const WARN_EVERY: Duration = Duration::from_secs(10);
/// How long a node may stay unjoined while dropping unauthenticated datagrams before it
/// says that the secret is the likely cause.
pub const JOIN_HINT_AFTER: Duration = Duration::from_secs(5);

/// A condition an operator should look at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Warning {
    /// Datagrams failed authentication: a member with another keyring, or not a swim peer.
    Unauthenticated {
        /// How many since the last warning.
        count: u64,
        /// The source of the last one.
        last_from: Option<SocketAddr>,
    },
    /// Still not joined, while datagrams keep failing authentication.
    NotJoinedWhileUnauthenticated {
        /// Since the node started.
        after: Duration,
    },
    /// New members were refused because the table holds `max_members`.
    TableFull {
        /// How many since the last warning.
        count: u64,
    },
    /// Remote metadata over `max_metadata_size` was ignored.
    MetadataOverLimit {
        /// How many since the last warning.
        count: u64,
    },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::Unauthenticated { count, last_from: Some(from) } => write!(
                f,
                "dropped {count} datagrams that failed authentication (last from {from}): \
                 a member with another secret, or not a swim peer"
            ),
            Warning::Unauthenticated { count, last_from: None } => write!(
                f,
                "dropped {count} datagrams that failed authentication: a member with \
                 another secret, or not a swim peer"
            ),
            Warning::NotJoinedWhileUnauthenticated { after } => write!(
                f,
                "not joined after {}s while dropping datagrams that fail authentication: \
                 check that every member uses the same secret",
                after.as_secs()
            ),
            Warning::TableFull { count } => {
                write!(f, "member table full (max_members): {count} new members refused")
            }
            Warning::MetadataOverLimit { count } => {
                write!(f, "ignored {count} remote metadata updates over max_metadata_size")
            }
        }
    }
}

/// A count of something to warn about, and when it was last warned of.
#[derive(Debug, Default)]
struct Pending {
    count: u64,
    warned_at: Option<Instant>,
}

impl Pending {
    /// Adds `new`; true if a warning is due now.
    fn due(&mut self, new: u64, now: Instant) -> bool {
        self.count += new;
        let quiet = self.warned_at.is_none_or(|at| now.saturating_duration_since(at) >= WARN_EVERY);
        if self.count == 0 || !quiet {
            return false;
        }
        self.warned_at = Some(now);
        true
    }

    fn take(&mut self) -> u64 {
        std::mem::take(&mut self.count)
    }
}

/// Watches one node's counters and events.
#[derive(Debug, Default)]
pub struct Monitor {
    seen: Counters,
    unauthenticated: Pending,
    last_unauthenticated_from: Option<SocketAddr>,
    table_full: Pending,
    metadata_over: Pending,
    hinted: bool,
}

impl Monitor {
    /// Notes where a datagram that `node` just took came from, if it failed authentication.
    pub fn after_datagram<R: Rng>(&mut self, node: &Node<R>, from: SocketAddr) {
        let unauthenticated = DropReason::Unauthenticated;
        if node.counters().dropped(unauthenticated) > self.seen.dropped(unauthenticated) {
            self.last_unauthenticated_from = Some(from);
        }
    }

    /// Compares the counters with the last step's; returns the warnings due now.
    pub fn check<R: Rng>(&mut self, node: &Node<R>, now: Instant) -> Vec<Warning> {
        let counters = node.counters();
        let mut warnings = Vec::new();
        let unauthenticated = DropReason::Unauthenticated;
        let new = counters.dropped(unauthenticated) - self.seen.dropped(unauthenticated);
        if self.unauthenticated.due(new, now) {
            let count = self.unauthenticated.take();
            let last_from = self.last_unauthenticated_from;
            warnings.push(Warning::Unauthenticated { count, last_from });
        }
        let dropping = counters.dropped(unauthenticated) > 0;
        let after = now.since_origin();
        if !self.hinted && dropping && !node.is_ready() && after >= JOIN_HINT_AFTER {
            self.hinted = true;
            warnings.push(Warning::NotJoinedWhileUnauthenticated { after });
        }
        if self.table_full.due(counters.members_refused - self.seen.members_refused, now) {
            warnings.push(Warning::TableFull { count: self.table_full.take() });
        }
        let over = counters.metadata_refused - self.seen.metadata_refused;
        if self.metadata_over.due(over, now) {
            warnings.push(Warning::MetadataOverLimit { count: self.metadata_over.take() });
        }
        for reason in DropReason::ALL {
            let dropped = counters.dropped(reason) - self.seen.dropped(reason);
            if dropped > 0 && reason != unauthenticated {
                debug!(reason = reason.as_str(), dropped, "dropped datagrams");
            }
        }
        self.seen.clone_from(counters);
        warnings
    }

    /// Logs `warnings`, each with the fields an operator filters on.
    pub fn log(warnings: &[Warning]) {
        for warning in warnings {
            match warning {
                Warning::Unauthenticated { count, last_from } => {
                    let from = last_from.map_or_else(|| "unknown".to_owned(), |a| a.to_string());
                    warn!(reason = "unauthenticated", count, %from, "{warning}");
                }
                Warning::NotJoinedWhileUnauthenticated { .. } => {
                    warn!(reason = "unauthenticated", "{warning}")
                }
                Warning::TableFull { count } => warn!(reason = "table_full", count, "{warning}"),
                Warning::MetadataOverLimit { count } => {
                    warn!(reason = "metadata_over_limit", count, "{warning}")
                }
            }
        }
    }

    /// Logs a membership event: status changes at info level (with the member's name, its
    /// status and the one before as fields), the rest at debug.
    pub fn log_event(event: &Event) {
        let previous = event.previous_status().map_or("none", Status::as_str);
        match (event, event.member(), event.status()) {
            (_, Some(member), Some(status)) => {
                let status = status.as_str();
                info!(member, status, previous, "member {status}");
            }
            (Event::MemberReaped { .. }, Some(member), None) => {
                info!(member, previous, "member forgotten");
            }
            (Event::MetadataChanged { version, .. }, Some(member), None) => {
                let keys = event.changed_keys().join(",");
                debug!(member, version, keys, "metadata changed");
            }
            (Event::Joined, ..) => info!("joined the cluster"),
            (Event::Suspected { accusation, incarnation }, ..) => info!(
                accusation = accusation.as_str(),
                incarnation, "this node was accused; refuting"
            ),
            (other, ..) => debug!(event = ?other, "membership event"),
        }
    }
}

#[cfg(test)]
mod tests {
    use rand_chacha::ChaCha8Rng;
    use swim_core::rand_core::SeedableRng;
    use swim_core::{Config, Keyring};

    use super::*;

    fn node(name: &str, port: u16, secret: &str) -> Node<ChaCha8Rng> {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut config = Config::new(name, addr, Keyring::new(secret));
        config.epoch_ms = 1_700_000_000_000;
        Node::new(config, ChaCha8Rng::seed_from_u64(u64::from(port)), Instant::ZERO).unwrap()
    }

    #[test]
    fn a_wrong_secret_is_warned_of_at_a_bounded_rate_then_hinted() {
        let mut ours = node("a", 1, "right");
        let mut theirs = node("b", 2, "wrong");
        let mut monitor = Monitor::default();
        let from = SocketAddr::from(([127, 0, 0, 1], 2));
        let mut warnings = Vec::new();
        // Ten seconds of b knocking every 100 ms with datagrams a cannot authenticate.
        for tick in 0..100u64 {
            let now = Instant::from_millis(tick * 100);
            theirs.join(now, [ours.config().local_addr]);
            while let Some(transmit) = theirs.poll_transmit() {
                let datagram = transmit.payload.to_vec();
                ours.handle_datagram(now, from, &datagram);
                monitor.after_datagram(&ours, from);
            }
            warnings.extend(monitor.check(&ours, now).into_iter().map(|w| (tick, w)));
        }
        let unauthenticated: Vec<_> =
            warnings.iter().filter(|(_, w)| matches!(w, Warning::Unauthenticated { .. })).collect();
        // One at once, one ten seconds later at most: rate-limited, not one per datagram.
        assert_eq!(unauthenticated.len(), 1, "{warnings:?}");
        let Warning::Unauthenticated { last_from, count } = &unauthenticated[0].1 else {
            unreachable!()
        };
        assert_eq!((*last_from, *count > 0), (Some(from), true));
        assert!(unauthenticated[0].1.to_string().contains("another secret"));
        let hint = warnings
            .iter()
            .find(|(_, w)| matches!(w, Warning::NotJoinedWhileUnauthenticated { .. }));
        let (tick, hint) = hint.expect("a hint about the secret");
        assert_eq!(*tick, 50, "after JOIN_HINT_AFTER");
        assert!(hint.to_string().contains("same secret"), "{hint}");
    }
}
