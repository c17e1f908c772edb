//! What a settled cluster sends: its probes and their acks, nothing else. Pings and acks
//! carry the digest root; equal roots say both tables agree, so no anti-entropy digest
//! travels, the ack carries no gossip, and every queued fact counts as heard again (the
//! tail of a join's gossip dies within a few probe rounds instead of minutes). Datagrams to
//! a member that has shown it holds us name their sender by a hash.

mod support;

use std::time::Duration;

use support::Cluster;

#[test]
fn a_settled_cluster_sends_only_probes_and_bare_acks() {
    let n = 24;
    let mut cluster = Cluster::joined(n, 61);
    // Long enough for the join's gossip to be spent, far shorter than its retransmit
    // limit alone would take (16 sends a fact, a few facts a datagram, 24 facts).
    cluster.run_for(Duration::from_secs(15));
    assert!(cluster.all_see_all_online());
    assert!((0..n).all(|i| cluster.nodes[i].pending_gossip() == 0), "gossip still queued");
    let start = cluster.now;
    cluster.run_for(Duration::from_secs(30));
    let window: Vec<_> = cluster.log.iter().filter(|s| s.at >= start).collect();
    let kinds: Vec<String> = window.iter().map(|s| s.kind()).collect();
    assert!(kinds.iter().all(|k| matches!(k.as_str(), "Ping" | "Ack")), "{:?}", {
        let mut other: Vec<_> =
            kinds.iter().filter(|k| !matches!(k.as_str(), "Ping" | "Ack")).collect();
        other.dedup();
        other
    });
    // One probe a member a second, each answered.
    let pings = kinds.iter().filter(|k| *k == "Ping").count();
    let acks = kinds.iter().filter(|k| *k == "Ack").count();
    assert!((n * 29..=n * 31).contains(&pings), "{pings} pings");
    // Each answered (a ping sent as the window closes may still be on its way).
    assert!(acks <= pings && pings - acks <= n, "{pings} pings, {acks} acks");
    // An ack answers a member that just named us: it names its sender short, and is the
    // whole budget of a datagram: header 11, type 1, sender 9, seq 4, root 8, count 2, tag 16.
    for ack in window.iter().filter(|s| s.kind() == "Ack") {
        assert!(ack.packet().sender_hash.is_some());
        assert_eq!(ack.bytes.len(), 51);
    }
    // No datagram carries a record: everything is known everywhere.
    assert!(window.iter().all(|s| s.packet().records.iter().next().is_none()));
}
