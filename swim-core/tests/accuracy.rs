//! Detection accuracy, one story each: what a member that wakes from a stall does with the
//! probes it left in flight.

mod support;

use std::time::Duration;

use support::{Cluster, addr};
use swim_core::{Event, Instant};

/// Runs `cluster` until node `from` sends a ping, and returns when.
fn until_ping(cluster: &mut Cluster, from: usize) -> Instant {
    let sent = cluster.log.len();
    let pinged = |c: &Cluster| c.log[sent..].iter().any(|s| s.from == from && s.kind() == "Ping");
    assert!(cluster.run_until(Duration::from_secs(5), pinged), "node {from} never pinged");
    cluster.now
}

/// Node `i` stops for `pause` (a SIGSTOP, a long GC, a suspended VM): it neither runs its
/// timers nor reads its socket, and whatever is sent to it meanwhile waits there. Then it
/// resumes as the worst driver would: its expired timers first, its socket after.
fn stall_then_resume_timers_first(cluster: &mut Cluster, i: usize, pause: Duration) {
    // Let the datagrams of this instant reach their receivers first.
    cluster.run_for(support::LATENCY);
    let from = cluster.log.len();
    cluster.down.insert(i);
    cluster.run_for(pause);
    cluster.down.remove(&i);
    let now = cluster.now;
    cluster.nodes[i].handle_timeout(now);
    let waiting: Vec<_> = cluster.log[from..]
        .iter()
        .filter(|s| s.to == addr(i) && s.from != i)
        .map(|s| (s.from, s.bytes.clone()))
        .collect();
    assert!(!waiting.is_empty(), "nothing waited in the socket");
    for (sender, bytes) in waiting {
        cluster.nodes[i].handle_datagram(now, addr(sender), &bytes);
    }
}

#[test]
fn a_member_resuming_from_a_stall_does_not_accuse_the_member_it_was_probing() {
    let mut cluster = Cluster::joined(3, 41);
    // Node 0 pings someone, and stops right after: the ack arrives while it is stopped.
    let pinged_at = until_ping(&mut cluster, 0);
    stall_then_resume_timers_first(&mut cluster, 0, Duration::from_secs(3));
    cluster.run_for(Duration::from_secs(3));
    let accusations = cluster.events_of(0, |e| matches!(e, Event::MemberSuspect { .. }));
    assert_eq!(accusations, [], "node 0 accused a member it gave no chance");
    assert_eq!(cluster.nodes[0].counters().suspicions, 0);
    // It ran the probe's indirect phase on waking instead (the second ping, the ping-req).
    let woke = pinged_at + Duration::from_secs(3);
    let late = cluster.sent(0, "PingReq").into_iter().filter(|s| s.at >= woke).count();
    assert!(late > 0, "no ping-req after waking");
    assert!(cluster.all_see_all_online());
}
