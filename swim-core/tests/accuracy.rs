//! Detection accuracy, one story each: what a member that wakes from a stall does with the
//! probes it left in flight; what an offline report does to a member held online.

mod support;

use std::time::Duration;

use support::{Cluster, addr, forge, name, nonce, record};
use swim_core::wire::{Body, Sender};
use swim_core::{Event, Instant, Status};

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

/// `reporter` tells `to` that `subject` is offline at `incarnation`.
fn report_offline(cluster: &mut Cluster, reporter: usize, to: usize, subject: usize, k: u64) {
    let (reporter_name, subject_name) = (name(reporter), name(subject));
    let sender = Sender { name: &reporter_name, addr: addr(reporter), incarnation: 0 };
    let incarnation = cluster.nodes[to].member(&subject_name).unwrap().incarnation();
    let record = record(&subject_name, addr(subject), incarnation, Status::Offline);
    let datagram = forge(&name(to), sender, nonce(cluster.now, k), &Body::Gossip, &[record]);
    let now = cluster.now;
    cluster.nodes[to].handle_datagram(now, addr(reporter), &datagram);
}

fn offline_reports(cluster: &Cluster, viewer: usize) -> Vec<Event> {
    cluster.events_of(viewer, |e| matches!(e, Event::MemberOffline { .. }))
}

#[test]
fn an_online_member_reported_offline_is_suspect_first_and_refutes() {
    let mut cluster = Cluster::joined(4, 42);
    report_offline(&mut cluster, 2, 0, 1, 1);
    assert_eq!(cluster.status(0, 1), Some(Status::Suspect), "suspect first, not offline");
    // More reports of the same do not cut its time to refute short.
    cluster.run_for(Duration::from_millis(100));
    report_offline(&mut cluster, 3, 0, 1, 2);
    assert_eq!(cluster.status(0, 1), Some(Status::Suspect));
    assert_eq!(cluster.nodes[0].counters().offline_reports_doubted, 1);
    // It hears of it (the buddy system, gossip) and refutes; nobody ever saw it offline.
    assert!(cluster.run_until(Duration::from_secs(10), Cluster::all_see_all_online));
    assert!(cluster.nodes[1].local_member().incarnation() > 0);
    for viewer in 0..4 {
        assert_eq!(offline_reports(&cluster, viewer), [], "at node {viewer}");
    }
}

#[test]
fn an_offline_report_ends_a_suspicion_that_names_its_accuser_at_once() {
    let mut cluster = Cluster::joined(4, 43);
    cluster.down.insert(3);
    let suspects = |c: &Cluster| c.status(0, 3) == Some(Status::Suspect);
    assert!(cluster.run_until(Duration::from_secs(10), suspects));
    // Node 0 suspects node 3 on a failed probe (its own or another member's): a member's
    // offline report finishes the suspicion, as a crash must be declared everywhere fast.
    report_offline(&mut cluster, 1, 0, 3, 1);
    assert_eq!(cluster.status(0, 3), Some(Status::Offline));
    assert_eq!(cluster.nodes[0].counters().offline_reports_doubted, 0);
}

#[test]
fn after_a_partition_heals_nobody_reports_a_member_of_its_own_side_offline() {
    let mut cluster = Cluster::joined(6, 44);
    let side = |i: usize| i < 3;
    for a in 0..6 {
        for b in 0..6 {
            if side(a) != side(b) {
                cluster.cut.insert((a, b));
            }
        }
    }
    // Long enough for each side to declare the other offline, not to forget it.
    let far_offline = |c: &Cluster| {
        (0..6)
            .all(|v| (0..6).all(|s| side(v) == side(s) || c.status(v, s) == Some(Status::Offline)))
    };
    assert!(cluster.run_until(Duration::from_secs(40), far_offline));
    cluster.cut.clear();
    assert!(cluster.run_until(Duration::from_secs(60), Cluster::all_see_all_online));
    cluster.run_for(Duration::from_secs(10));
    for viewer in 0..6 {
        let same_side: Vec<Event> = offline_reports(&cluster, viewer)
            .into_iter()
            .filter(|e| {
                let Event::MemberOffline { name: subject, .. } = e else { return false };
                (0..6).any(|s| side(s) == side(viewer) && *subject == name(s))
            })
            .collect();
        assert_eq!(same_side, [], "node {viewer} saw its own side offline");
    }
}

#[test]
fn a_suspect_hears_first_and_its_refutation_returns_before_the_rumour_spreads() {
    let mut cluster = Cluster::joined(4, 45);
    // Node 0 hears nothing for a while: its next probe fails.
    for i in 1..4 {
        cluster.cut.insert((i, 0));
    }
    let suspected = |c: &Cluster| (1..4).find(|&s| c.status(0, s) == Some(Status::Suspect));
    assert!(cluster.run_until(Duration::from_secs(5), |c| suspected(c).is_some()));
    let target = suspected(&cluster).unwrap();
    let at = cluster.now;
    cluster.cut.clear();
    cluster.run_for(Duration::from_millis(20));
    // The suspect was told at once: a ping whose first record is its own suspicion.
    let told = cluster.log.iter().find(|s| s.at == at && s.from == 0 && s.to == addr(target));
    let told = told.expect("nothing sent to the suspect when it became suspect");
    assert_eq!(told.kind(), "Ping");
    let first = told.packet().records.iter().next().unwrap();
    assert_eq!((first.name, first.status), (name(target).as_str(), Status::Suspect));
    // It refuted at once, and node 0 learned so from the ack, 2 link delays later.
    assert_eq!(cluster.nodes[target].local_member().incarnation(), 1);
    let alive = cluster.events[0].iter().find(|(_, e)| matches!(e, Event::MemberAlive { .. }));
    assert_eq!(alive.map(|(t, _)| *t - at), Some(support::LATENCY * 2));
    // Nobody else ever heard the suspicion (node 0, cut off, may be suspected itself).
    for other in (1..4).filter(|&o| o != target) {
        let heard = cluster.events_of(
            other,
            |e| matches!(e, Event::MemberSuspect { name: n, .. } if *n == name(target)),
        );
        assert_eq!(heard, [], "node {other} heard of it");
    }
}
