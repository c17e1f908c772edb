//! Hostile input: floods of forgeries, and an authenticated peer that invents members.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use rand_core::{Rng, SeedableRng};
use support::{Cluster, addr, config, forge, name, nonce};
use swim_core::wire::{Body, Record, Sender};
use swim_core::{Counters, DropReason, Instant, Status};

#[test]
fn a_million_forged_datagrams_change_nothing() {
    let mut cluster = Cluster::joined(3, 31);
    let now = cluster.now;
    let node = &mut cluster.nodes[0];
    let before: Vec<_> =
        node.members().map(|m| (m.name().to_string(), m.status(), m.incarnation())).collect();
    let applied = node.counters().updates_applied;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(31);
    let mut datagram = vec![0u8; 1452];
    for i in 0..1_000_000u32 {
        // Random lengths and bytes, and now and then a well-formed header, all without a key.
        let len = 1 + (rng.next_u32() as usize % datagram.len());
        rng.fill_bytes(&mut datagram[..len]);
        if i % 4 == 0 && len > 3 {
            datagram[0] = 2;
            datagram[1] = 0;
            datagram[2] &= 3;
        }
        node.handle_datagram(now, addr(1), &datagram[..len]);
    }
    let counters: &Counters = node.counters();
    assert_eq!(counters.dropped(DropReason::Unauthenticated), 1_000_000);
    assert_eq!(counters.updates_applied, applied);
    let after: Vec<_> =
        node.members().map(|m| (m.name().to_string(), m.status(), m.incarnation())).collect();
    assert_eq!(before, after);
    assert!(node.poll_transmit().is_none());
    assert!(node.poll_event().is_none());
    // And the cluster carries on as if nothing happened.
    cluster.run_for(Duration::from_secs(10));
    assert!(cluster.all_see_all_online());
}

#[test]
fn a_peer_inventing_thousands_of_members_cannot_grow_the_table_past_max_members() {
    let mut c = config(0);
    c.max_members = 100;
    let mut cluster = Cluster::with_configs(vec![c, config(1)], 32);
    cluster.nodes[1].join(Instant::ZERO, [addr(0)]);
    assert!(cluster.run_until(Duration::from_secs(5), Cluster::all_see_all_online));
    // Node 1's key, in the hands of a misbehaving process: 5000 invented members.
    let liar: SocketAddr = addr(1);
    let sender = Sender { name: "127.0.0.1:7001", addr: liar, incarnation: 0 };
    let names: Vec<String> = (0..5000).map(|i| format!("invented-{i}")).collect();
    for (k, chunk) in names.chunks(40).enumerate() {
        let records: Vec<Record<'_>> = chunk
            .iter()
            .enumerate()
            .map(|(j, name)| Record {
                name,
                addr: SocketAddr::from(([10, 1, k as u8, j as u8 + 1], 1)),
                incarnation: 0,
                status: Status::Online,
                meta_version: 0,
                metadata: None,
                accuser: None,
                meta_hash: None,
                streams: false,
            })
            .collect();
        let now = cluster.now;
        let out = forge(&name(0), sender, nonce(now, k as u64), &Body::Gossip, &records);
        cluster.nodes[0].handle_datagram(now, liar, &out);
    }
    let node = &cluster.nodes[0];
    assert_eq!(node.members().count(), 100);
    assert!(node.counters().members_refused >= 4900);
    // The real members are still there and online.
    assert_eq!(cluster.status(0, 1), Some(Status::Online));
    assert_eq!(node.local_member().status(), Status::Online);
}
