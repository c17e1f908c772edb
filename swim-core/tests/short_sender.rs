//! Short senders: a datagram to a member that has shown it holds us names its sender by the
//! 64-bit hash of its name (and its incarnation), not by name and address. The receiver
//! takes both from its table, so a short sender can only be a member the receiver already
//! knows, answered at the address it already holds; one it does not know is dropped.

mod support;

use std::time::Duration;

use support::{Cluster, addr, config, forge_with, name, nonce, record};
use swim_core::wire::{Body, Flags, Record, Sender};
use swim_core::{DropReason, Event, Status};

/// A datagram to `receiver` from a short sender named `from` (any name: the hash is all
/// that travels; the address here is a decoy, never written), as a holder of the key could
/// forge it.
fn short(
    receiver: &str,
    from: &str,
    nonce: u64,
    body: &Body<'_>,
    records: &[Record<'_>],
) -> Vec<u8> {
    let sender = Sender { name: from, addr: addr(99), incarnation: 0 };
    forge_with(receiver, Flags::SHORT_SENDER, 1452, sender, nonce, body, records)
}

#[test]
fn a_short_sender_the_receiver_does_not_hold_is_dropped_counted_and_changes_nothing() {
    let mut cluster = Cluster::joined(3, 71);
    let now = cluster.now;
    let ghost = "127.0.0.1:7999";
    let record = record(ghost, addr(999), 0, Status::Online);
    let datagram = short(&name(0), ghost, nonce(now, 1), &Body::Gossip, &[record]);
    let before = cluster.nodes[0].members().count();
    cluster.nodes[0].handle_datagram(now, addr(999), &datagram);
    assert_eq!(cluster.nodes[0].counters().dropped(DropReason::UnknownSender), 1);
    assert_eq!(cluster.nodes[0].members().count(), before);
    assert!(cluster.nodes[0].poll_transmit().is_none(), "nothing answered");
}

#[test]
fn a_short_sender_is_the_member_the_table_holds_and_is_answered_there() {
    let mut cluster = Cluster::joined(3, 72);
    let now = cluster.now;
    let ping = Body::Ping { seq: 7, root: 0, target: "" };
    // From member 1's name, sent from another address: answered at member 1's address.
    let datagram = short(&name(0), &name(1), nonce(now, 1), &ping, &[]);
    cluster.nodes[0].handle_datagram(now, addr(98), &datagram);
    let ack = cluster.nodes[0].poll_transmit().expect("answered");
    assert_eq!(ack.destination, addr(1));
    // Its own name hashes to the node itself: a reflection, dropped.
    let datagram = short(&name(0), &name(0), nonce(now, 2), &ping, &[]);
    cluster.nodes[0].handle_datagram(now, addr(98), &datagram);
    assert_eq!(cluster.nodes[0].counters().dropped(DropReason::FromSelf), 1);
}

#[test]
fn a_member_that_forgot_us_gets_our_full_name_and_nobody_is_suspected() {
    let mut cluster = Cluster::joined(4, 73);
    // Every member has heard from every other: datagrams among them name senders short.
    cluster.run_for(Duration::from_secs(20));
    // Member 1 restarts at once, with an empty table (same name and address), and joins
    // again through member 2.
    cluster.restart(1, config(1));
    let now = cluster.now;
    cluster.nodes[1].join(now, [addr(2)]);
    cluster.clear_history();
    cluster.run_for(Duration::from_secs(20));
    // Short datagrams reached it before it knew their senders, and were dropped...
    assert!(cluster.nodes[1].counters().dropped(DropReason::UnknownSender) > 0);
    // ... yet no probe of it failed: a probe that times out pings again with the full name.
    for viewer in [0, 2, 3] {
        let suspected = cluster.events_of(viewer, |e| matches!(e, Event::MemberSuspect { .. }));
        assert_eq!(suspected, [], "node {viewer}");
    }
    assert!(cluster.all_see_all_online());
    let last = cluster.log.iter().rev().find(|s| s.to == addr(1) && s.kind() == "Ping");
    assert!(last.is_some_and(|s| s.packet().sender_hash.is_some()), "short again later");
}
