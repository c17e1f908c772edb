//! An adversarial review of wire version 2. Each test is one attack, with and without the
//! key, and asserts what the defence promises; a test that fails is an attack that works.
//! The comment on each says what the attacker gains.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use support::{Cluster, addr, config, forge, name, nonce, record, seal};
use swim_core::wire::{
    Body, BucketSet, Flags, Header, Packet, PacketWriter, Record, Sender, Version,
};
use swim_core::{
    Config, DropReason, Event, Instant, Keyring, LegacyWire, Metadata, Node, Status, TAG_LEN,
};

/// How far one fact may move a counter (the core's bound, restated).
const STEP: u64 = 1 << 32;

/// An address outside the cluster that the attacker wants flooded.
fn victim() -> SocketAddr {
    "192.0.2.7:9".parse().unwrap()
}

/// The cookie of the bucket hashes in `datagram` (plain, so it decodes without the key).
fn cookie_of(datagram: &[u8]) -> u32 {
    let packet = Packet::decode(&datagram[..datagram.len() - swim_core::TAG_LEN]).unwrap();
    match packet.body {
        Body::SyncBuckets { cookie, .. } => cookie,
        other => panic!("not bucket hashes: {other:?}"),
    }
}

/// Everything a node wants sent, as (destination, bytes).
fn drain(node: &mut Node<ChaCha8Rng>) -> Vec<(SocketAddr, Vec<u8>)> {
    std::iter::from_fn(|| node.poll_transmit().map(|t| (t.destination, t.payload.to_vec())))
        .collect()
}

/// Bytes among `sent` that went to `to`.
fn bytes_to(sent: &[(SocketAddr, Vec<u8>)], to: SocketAddr) -> usize {
    sent.iter().filter(|(dest, _)| *dest == to).map(|(_, bytes)| bytes.len()).sum()
}

/// A lone node 0 taught `count` members (at distinct IPs) by a peer named "teacher": its
/// table is large and its gossip queue is full, as in a busy cluster.
fn busy_node(count: usize, now: Instant) -> Node<ChaCha8Rng> {
    let mut node = support::node(0);
    let teacher = Sender { name: "teacher", addr: addr(9), incarnation: 0 };
    let names: Vec<String> = (0..count).map(|i| format!("member-{i}")).collect();
    for (k, chunk) in names.chunks(25).enumerate() {
        let records: Vec<Record<'_>> = chunk
            .iter()
            .enumerate()
            .map(|(j, n)| {
                let ip = std::net::Ipv4Addr::new(10, 1, k as u8, j as u8 + 1);
                record(n, SocketAddr::new(ip.into(), 7000), 0, Status::Online)
            })
            .collect();
        let datagram = forge(&name(0), teacher, nonce(now, k as u64), &Body::Gossip, &records);
        node.handle_datagram(now, addr(9), &datagram);
    }
    assert!(node.members().count() > count);
    node
}

/// Introduces the key holder `name(1)` at `addr(1)` to `node` with an empty gossip.
fn introduce_key_holder(node: &mut Node<ChaCha8Rng>, now: Instant, count: u64) {
    let me = Sender { name: &name(1), addr: addr(1), incarnation: 0 };
    node.handle_datagram(now, addr(1), &forge(&name(0), me, nonce(now, count), &Body::Gossip, &[]));
    assert!(node.member(&name(1)).is_some());
}

// ------------------------------------------------------- counters: steps within one datagram

/// Two facts about a member, each one plausible step (2^32) beyond the last, in ONE datagram
/// to each receiver. The receivers then hold the member two steps beyond its own incarnation;
/// the member refuses every record about itself that is more than one step ahead as
/// implausible, so it never refutes, and its own datagrams (at its real incarnation) never
/// outrank what the receivers hold. Attacker (a key holder) gains: any member offline
/// everywhere, for good, with one datagram per receiver (repeatable after a restart: the
/// receivers' tombstones keep the forged incarnation).
#[test]
fn two_plausible_steps_in_one_datagram_leave_a_member_unable_to_refute() {
    let mut cluster = Cluster::joined(4, 201);
    let victim = name(2);
    let liar = name(1);
    let liar_incarnation = cluster.nodes[1].local_member().incarnation();
    let sender = Sender { name: &liar, addr: addr(1), incarnation: liar_incarnation };
    let now = cluster.now;
    for (k, receiver) in [0usize, 3].into_iter().enumerate() {
        let known = cluster.nodes[receiver].member(&victim).unwrap().incarnation();
        let facts = [
            record(&victim, addr(2), known + STEP, Status::Suspect),
            record(&victim, addr(2), known + 2 * STEP, Status::Offline),
        ];
        let datagram = forge(&name(receiver), sender, nonce(now, k as u64), &Body::Gossip, &facts);
        cluster.nodes[receiver].handle_datagram(now, addr(1), &datagram);
    }
    cluster.run_for(Duration::from_secs(150));
    for i in [0, 1, 3] {
        assert_eq!(
            cluster.status(i, 2),
            Some(Status::Online),
            "node {i} holds the victim as {:?} 150 s after one forged datagram",
            cluster.status(i, 2)
        );
    }
}

/// The same with metadata versions: two steps in one datagram put the forged metadata beyond
/// the member's reach. Attacker (a key holder) gains: forged metadata (a role, an endpoint)
/// that the member can never replace, on every receiver it sent one datagram.
#[test]
fn two_plausible_metadata_steps_in_one_datagram_pin_forged_metadata() {
    let mut cluster = Cluster::joined(3, 202);
    let victim = name(2);
    let forged: Metadata = [("role", &b"forged"[..])].into_iter().collect();
    let liar = name(1);
    let sender = Sender { name: &liar, addr: addr(1), incarnation: 0 };
    let now = cluster.now;
    let member = cluster.nodes[0].member(&victim).unwrap();
    let (incarnation, version) = (member.incarnation(), member.meta_version());
    let fact = |meta_version| Record {
        meta_version,
        metadata: Some(forged.entries()),
        ..record(&victim, addr(2), incarnation, Status::Online)
    };
    let facts = [fact(version + STEP), fact(version + 2 * STEP)];
    let datagram = forge(&name(0), sender, nonce(now, 1), &Body::Gossip, &facts);
    cluster.nodes[0].handle_datagram(now, addr(1), &datagram);
    cluster.run_for(Duration::from_secs(5));
    let now = cluster.now;
    cluster.nodes[2].set_metadata(now, "role", "real").expect("the victim can publish");
    cluster.run_for(Duration::from_secs(30));
    for i in 0..3 {
        let seen = cluster.nodes[i].member(&victim).unwrap().metadata().unwrap().get("role");
        assert_eq!(seen.as_deref(), Some(&b"real"[..]), "node {i} still serves the forgery");
    }
}

/// A bound on each step of a counter is not a bound on the counter: a datagram of
/// accusations about the receiver, each one step above the previous, once raised its
/// incarnation by one step per record (about 40 per datagram), and about 10^8 such
/// datagrams (minutes on a LAN) left it at `u64::MAX`, unable to refute ever again.
/// Counters are now bounded by the wall clock instead: however many accusations arrive, the
/// incarnation stays within the clock plus the skew, and time runs out for no one.
/// Attacker (a key holder) gains: nothing lasting.
#[test]
fn accusations_cannot_exhaust_an_incarnation() {
    let mut node = support::node(0);
    let mut now = Instant::from_secs(1);
    introduce_key_holder(&mut node, now, 0);
    let me = name(0);
    let liar = name(1);
    let sender = Sender { name: &liar, addr: addr(1), incarnation: 0 };
    let ceiling = |now: Instant| support::EPOCH_MS + now.as_micros() / 1000 + 5_000;
    for k in 0..1000u64 {
        now += Duration::from_millis(1);
        let header = Header::new(Version::V2, Flags::default(), nonce(now, k));
        let mut writer =
            PacketWriter::new(Vec::new(), 1452, &header, &sender, &Body::Gossip).unwrap();
        // Ever higher accusations, up to the end of the range.
        let base = node.local_member().incarnation();
        for step in 0.. {
            let incarnation = base.saturating_add(1u64.checked_shl(20 + step).unwrap_or(u64::MAX));
            if !writer.push(&record(&me, addr(0), incarnation, Status::Suspect)) {
                break;
            }
            if incarnation == u64::MAX {
                break;
            }
        }
        node.handle_datagram(now, addr(1), &seal(&me, writer.finish()));
        let incarnation = node.local_member().incarnation();
        assert!(incarnation <= ceiling(now) + 1, "{incarnation} beyond the clock");
    }
    // Still refuting: an accusation at its incarnation is answered with a higher one.
    let before = node.local_member().incarnation();
    now += Duration::from_millis(1);
    let accusation = record(&me, addr(0), before, Status::Suspect);
    node.handle_datagram(
        now,
        addr(1),
        &forge(&me, sender, nonce(now, 5000), &Body::Gossip, &[accusation]),
    );
    assert_eq!(node.local_member().incarnation(), before + 1);
    assert_eq!(node.local_member().status(), Status::Online);
}

// ------------------------------------------- proofs of reception credited to another address

/// A key holder answers a probe of its own (proving it receives at its address), but sends
/// the ack with its incarnation raised and a victim's address in the header. The node moves
/// it to the victim's address first, then counts the ack as proof that it receives there.
/// Attacker (a key holder) gains: a "validated" victim address, so every later request is
/// answered in full there (pings with a queue of gossip: about 20x its bytes).
#[test]
fn an_ack_proves_reception_only_at_the_address_the_ping_went_to() {
    let start = Instant::from_secs(1);
    let mut node = support::node(0);
    introduce_key_holder(&mut node, start, 0);
    drain(&mut node);
    // Wait for the node to probe the key holder, which sees the ping (it is the target).
    let mut now = start;
    let seq = loop {
        now += Duration::from_millis(10);
        node.handle_timeout(now);
        let ping = drain(&mut node).into_iter().find(|(to, _)| *to == addr(1));
        if let Some((_, bytes)) = ping {
            let packet = swim_core::wire::Packet::decode(&bytes[..bytes.len() - TAG_LEN]).unwrap();
            if let Body::Ping { seq, .. } = packet.body {
                break seq;
            }
        }
        assert!(now < start + Duration::from_secs(10), "no probe of the key holder");
    };
    // Meanwhile the node learned of many members: its gossip queue is full.
    let teacher = Sender { name: "teacher", addr: addr(9), incarnation: 0 };
    let names: Vec<String> = (0..200).map(|i| format!("member-{i}")).collect();
    for (k, chunk) in names.chunks(25).enumerate() {
        let records: Vec<Record<'_>> = chunk
            .iter()
            .enumerate()
            .map(|(j, n)| {
                let ip = std::net::Ipv4Addr::new(10, 2, k as u8, j as u8 + 1);
                record(n, SocketAddr::new(ip.into(), 7000), 0, Status::Online)
            })
            .collect();
        let datagram = forge(&name(0), teacher, nonce(now, 10 + k as u64), &Body::Gossip, &records);
        node.handle_datagram(now, addr(9), &datagram);
    }
    drain(&mut node);
    let moved = Sender { name: &name(1), addr: victim(), incarnation: 1 };
    let ack = forge(&name(0), moved, nonce(now, 100), &Body::Ack { seq, root: 0 }, &[]);
    node.handle_datagram(now, addr(1), &ack);
    let mut sent_by_attacker = ack.len();
    let mut received_by_victim = bytes_to(&drain(&mut node), victim());
    for k in 0..10 {
        let ping = Body::Ping { seq: k, root: 0, target: "" };
        let request = forge(&name(0), moved, nonce(now, 200 + u64::from(k)), &ping, &[]);
        node.handle_datagram(now, victim(), &request);
        sent_by_attacker += request.len();
        received_by_victim += bytes_to(&drain(&mut node), victim());
    }
    let ratio = received_by_victim as f64 / sent_by_attacker as f64;
    eprintln!("victim got {received_by_victim} B for {sent_by_attacker} B: {ratio:.1}x");
    assert!(ratio <= 3.0, "the victim got {ratio:.1}x the attacker's bytes");
}

/// A key holder takes the first steps of an anti-entropy exchange at its own address (so it
/// sees the bucket hashes and their nonce), then echoes that nonce in summaries whose header
/// raises its incarnation and names a victim's address. The echo check passes (it is keyed by
/// member, not by address), the member moves to the victim's address, and the whole answer
/// (up to 32 full datagrams) goes there. The echoed step is not used up either: every further
/// summary echoing the same nonce within five seconds is answered in full again.
/// Attacker (a key holder) gains: the bulk of anti-entropy aimed at any address, a few
/// hundred times its bytes, which the echo rule exists to prevent.
#[test]
fn an_echo_earned_at_one_address_does_not_open_the_bulk_of_an_exchange_to_another() {
    let now = Instant::from_secs(1);
    let mut node = busy_node(1000, now);
    introduce_key_holder(&mut node, now, 100);
    drain(&mut node);
    let me = Sender { name: &name(1), addr: addr(1), incarnation: 0 };
    let digest =
        forge(&name(0), me, nonce(now, 101), &Body::SyncDigest { root: 1, members: 1000 }, &[]);
    node.handle_datagram(now, addr(1), &digest);
    let answers = drain(&mut node);
    let (_, buckets) = answers.iter().find(|(to, _)| *to == addr(1)).expect("bucket hashes");
    let echo = cookie_of(buckets);
    let moved = Sender { name: &name(1), addr: victim(), incarnation: 1 };
    let all = BucketSet([u64::MAX; 4]);
    let summaries =
        Body::SyncSummaries { echo: Some(echo), cookie: 1, shift: 8, buckets: all, summaries: &[] };
    let mut sent_by_attacker = digest.len();
    let mut received_by_victim = 0;
    for k in 0..10 {
        let request = forge(&name(0), moved, nonce(now, 102 + k), &summaries, &[]);
        node.handle_datagram(now, victim(), &request);
        sent_by_attacker += request.len();
        received_by_victim += bytes_to(&drain(&mut node), victim());
    }
    let ratio = received_by_victim as f64 / sent_by_attacker as f64;
    eprintln!("victim got {received_by_victim} B for {sent_by_attacker} B: {ratio:.1}x");
    assert!(ratio <= 3.0, "the victim got {ratio:.1}x the attacker's bytes");
}

/// The echo is the header nonce of the bucket hashes, and nonces count up by one within a
/// millisecond. A key holder claiming a victim's address sends a digest (the bucket hashes
/// go to the victim), and in the same millisecond a ping under its own name: the ack it gets
/// carries the next nonce, so the echo is that minus one.
/// Attacker (a key holder) gains: the bulk of an exchange aimed at any address, without ever
/// receiving there.
#[test]
fn the_echo_an_exchange_asks_for_cannot_be_predicted() {
    let now = Instant::from_secs(1);
    let mut node = busy_node(1000, now);
    introduce_key_holder(&mut node, now, 100);
    drain(&mut node);
    let mallory = Sender { name: "mallory", addr: victim(), incarnation: 0 };
    let me = Sender { name: &name(1), addr: addr(1), incarnation: 0 };
    let digest = Body::SyncDigest { root: 1, members: 1000 };
    let digest = forge(&name(0), mallory, nonce(now, 101), &digest, &[]);
    node.handle_datagram(now, victim(), &digest);
    let ping =
        forge(&name(0), me, nonce(now, 102), &Body::Ping { seq: 1, root: 0, target: "" }, &[]);
    node.handle_datagram(now, addr(1), &ping);
    let answers = drain(&mut node);
    let (_, ack) = answers.iter().find(|(to, _)| *to == addr(1)).expect("an ack");
    // The attacker's best guess: what the node sent last (the echo was once a nonce).
    let guess = (Header::parse(ack).unwrap().nonce - 1) as u32;
    let mut received_by_victim = bytes_to(&answers, victim());
    let mut sent_by_attacker = digest.len() + ping.len();
    let all = BucketSet([u64::MAX; 4]);
    let summaries = Body::SyncSummaries {
        echo: Some(guess),
        cookie: 1,
        shift: 8,
        buckets: all,
        summaries: &[],
    };
    let request = forge(&name(0), mallory, nonce(now, 103), &summaries, &[]);
    node.handle_datagram(now, victim(), &request);
    sent_by_attacker += request.len();
    received_by_victim += bytes_to(&drain(&mut node), victim());
    let ratio = received_by_victim as f64 / sent_by_attacker as f64;
    eprintln!("victim got {received_by_victim} B for {sent_by_attacker} B: {ratio:.1}x");
    assert!(ratio <= 3.0, "the victim got {ratio:.1}x the attacker's bytes");
}

// --------------------------------------------------------------- limits that can be bypassed

/// The limit of members per IP is checked when a member is added, not when it moves: members
/// invented at many IPs, then each given a higher incarnation at one host's address, all end
/// up there. Attacker (a key holder) gains: what the limit prevents, every node's probes (and
/// relayed pings) multiplied onto one host.
#[test]
fn members_moved_to_one_ip_count_against_its_limit() {
    let mut node = support::node(0);
    let now = Instant::from_secs(1);
    let liar = name(1);
    let sender = Sender { name: &liar, addr: addr(1), incarnation: 0 };
    let names: Vec<String> = (0..400).map(|i| format!("invented-{i}")).collect();
    let target = victim().ip();
    for (k, chunk) in names.chunks(40).enumerate() {
        let spread: Vec<Record<'_>> = chunk
            .iter()
            .enumerate()
            .map(|(j, n)| {
                let ip = std::net::Ipv4Addr::new(10, 3, k as u8, j as u8 + 1);
                record(n, SocketAddr::new(ip.into(), 7000), 0, Status::Online)
            })
            .collect();
        let moved: Vec<Record<'_>> = chunk
            .iter()
            .enumerate()
            .map(|(j, n)| {
                let at = SocketAddr::new(target, 20_000 + (k * 40 + j) as u16);
                record(n, at, 1, Status::Online)
            })
            .collect();
        for (step, records) in [spread, moved].iter().enumerate() {
            let nonce = nonce(now, (k * 2 + step) as u64);
            let datagram = forge(&name(0), sender, nonce, &Body::Gossip, records);
            node.handle_datagram(now, addr(1), &datagram);
        }
    }
    let at_ip = node.members().filter(|m| m.addr().ip() == target).count();
    assert!(at_ip <= 64, "{at_ip} members at one IP");
}

/// A ping-req must name a known member, but a key holder can make any address a member's:
/// it invents one at the victim's address and asks for it to be probed. The relayed ping is
/// not limited like an answer (the target never showed it receives there) and carries a full
/// datagram of queued gossip. Attacker (a key holder) gains: about 15x its bytes at any
/// address, from every member it asks, up to 64 relays each per ping-req timeout.
#[test]
fn a_ping_req_cannot_aim_full_datagrams_at_an_address_that_never_answered() {
    let now = Instant::from_secs(1);
    let mut node = busy_node(1000, now);
    let liar = name(1);
    let sender = Sender { name: &liar, addr: addr(1), incarnation: 0 };
    let decoy = record("decoy", victim(), 0, Status::Online);
    let invent = forge(&name(0), sender, nonce(now, 100), &Body::Gossip, &[decoy]);
    node.handle_datagram(now, addr(1), &invent);
    drain(&mut node);
    let mut sent_by_attacker = invent.len();
    let mut received_by_victim = 0;
    for k in 0..20u32 {
        let body = Body::PingReq { seq: k, target: "decoy", target_addr: None };
        let request = forge(&name(0), sender, nonce(now, 101 + u64::from(k)), &body, &[]);
        node.handle_datagram(now, addr(1), &request);
        sent_by_attacker += request.len();
        received_by_victim += bytes_to(&drain(&mut node), victim());
    }
    let ratio = received_by_victim as f64 / sent_by_attacker as f64;
    eprintln!("victim got {received_by_victim} B for {sent_by_attacker} B: {ratio:.1}x");
    assert!(ratio <= 3.0, "the victim got {ratio:.1}x the attacker's bytes");
}

// ---------------------------------------------------------------------------------- time

/// A member's host is suspended for a minute (a laptop lid, a paused VM). Its driver's
/// monotonic clock (std's `Instant`: CLOCK_MONOTONIC on Linux, which stops during suspend)
/// does not count the minute, so a wall clock derived from it alone stayed a minute behind
/// for the rest of the process: every datagram it sent was "from the past" for the others,
/// and theirs "from the future" for it, and the member was cut off until it restarted. The
/// driver tells the node the wall clock whenever it reads its clocks
/// (`Node::set_wall_clock`), as here.
#[test]
fn a_member_suspended_for_a_minute_rejoins_after_it_resumes() {
    let mut nodes = [support::node(0), support::node(1)];
    let mut world = Instant::ZERO;
    nodes[1].join(world, [addr(0)]);
    let suspended = Duration::from_secs(60);
    let (sleep_at, wake_at) = (Instant::from_secs(20), Instant::from_secs(80));
    while world < Instant::from_secs(240) {
        world += Duration::from_millis(1);
        let asleep = world >= sleep_at && world < wake_at;
        // Node 0's driver clock: stops while suspended, then lags the world by a minute.
        let own = if world >= wake_at { world - suspended } else { world };
        let clocks = [if asleep { sleep_at } else { own }, world];
        for i in 0..2 {
            if i == 0 && asleep {
                continue;
            }
            // The driver reads the system clock too (the world's, which counts the suspend).
            let wall_ms = support::EPOCH_MS + world.as_micros() / 1000;
            nodes[i].set_wall_clock(clocks[i], wall_ms);
            if nodes[i].poll_timeout().is_some_and(|t| t <= clocks[i]) {
                nodes[i].handle_timeout(clocks[i]);
            }
            let out: Vec<Vec<u8>> =
                std::iter::from_fn(|| nodes[i].poll_transmit().map(|t| t.payload.to_vec()))
                    .collect();
            if i == 1 && asleep {
                continue; // Node 0 receives nothing while suspended.
            }
            for bytes in out {
                nodes[1 - i].handle_datagram(clocks[1 - i], addr(i), &bytes);
            }
        }
    }
    let skewed = nodes[1].counters().dropped(DropReason::ClockSkew);
    assert_eq!(
        nodes[1].member(&name(0)).map(|m| m.status()),
        Some(Status::Online),
        "node 1 no longer hears node 0 ({skewed} datagrams dropped for clock skew)"
    );
    assert_eq!(nodes[0].member(&name(1)).map(|m| m.status()), Some(Status::Online));
}

/// A node without a wall clock accepts every unsequenced nonce as new, so one captured
/// datagram replayed without the key was answered every time, and `Config::new` gave such a
/// node. A configuration without a wall clock is now refused unless replay protection is
/// turned off explicitly (which the documentation of `replay_protection` warns about).
/// Attacker (no key) gained: every copy of a captured datagram answered.
#[test]
fn a_node_without_a_wall_clock_is_refused_unless_unprotected_on_purpose() {
    let mut c = config(0);
    c.epoch_ms = 0;
    let refused = Node::new(c.clone(), ChaCha8Rng::seed_from_u64(0), Instant::ZERO);
    assert_eq!(refused.unwrap_err().field(), "epoch_ms");
    c.replay_protection = false;
    assert!(Node::new(c, ChaCha8Rng::seed_from_u64(0), Instant::ZERO).is_ok());
}

// -------------------------------------------------------------------- the rolling upgrade

/// A version-1 datagram (as a key holder can still seal during a rolling upgrade), claiming
/// to be from `sender` with `nonce`, for any receiver.
fn forge_v1(sender: Sender<'_>, nonce: u64, body: &Body<'_>, records: &[Record<'_>]) -> Vec<u8> {
    let header = Header::new(Version::V1, Flags::default(), nonce);
    let mut writer = PacketWriter::new(Vec::new(), 1452, &header, &sender, body).unwrap();
    for record in records {
        assert!(writer.push(record));
    }
    seal("", writer.finish())
}

/// While version 1 is accepted (`LegacyWire::Accept` or `Speak`, the steps of the
/// documented upgrade), its nonces are not checked against the clock, yet they move the same
/// per-sender window as version 2's. One version-1 datagram in a member's name with the
/// highest nonce makes every later datagram of that member a "replay".
/// Attacker (a key holder) gains: the lock-out that clock-checked nonces closed (any member
/// offline everywhere, permanently, from one datagram per receiver), for the whole upgrade.
#[test]
fn during_an_upgrade_a_version_1_nonce_cannot_lock_a_member_out() {
    let configs: Vec<Config> = (0..4)
        .map(|i| {
            let mut c = config(i);
            c.legacy_wire = LegacyWire::Accept;
            c
        })
        .collect();
    let mut cluster = Cluster::with_configs(configs, 204);
    for i in 1..4 {
        cluster.nodes[i].join(Instant::ZERO, [addr(0)]);
    }
    assert!(cluster.run_until(Duration::from_secs(30), Cluster::all_see_all_online));
    let victim_name = name(2);
    let victim = Sender { name: &victim_name, addr: addr(2), incarnation: 0 };
    let forged = forge_v1(victim, u64::MAX, &Body::Gossip, &[]);
    let now = cluster.now;
    for i in [0, 1, 3] {
        cluster.nodes[i].handle_datagram(now, addr(2), &forged);
    }
    cluster.clear_history();
    cluster.run_for(Duration::from_secs(60));
    for i in [0, 1, 3] {
        let offline = cluster.events_of(
            i,
            |e| matches!(e, Event::MemberOffline { name, .. } if *name == victim_name),
        );
        assert!(offline.is_empty(), "node {i}: {offline:?}");
    }
    assert!(cluster.all_see_all_online());
}

/// While version 1 is accepted, summaries without an echo (version 1 has none) are taken
/// on trust as soon as bucket hashes went to the sender. A key holder claiming a victim's
/// address sends a digest (small answer, to the victim) and then version-1 summaries: the
/// bulk of the exchange goes to the victim. Documented for the upgrade ("answers are not
/// checked for an echo"); this measures what it costs.
/// Attacker (a key holder) gains: hundreds of times its bytes at any address, for the whole
/// upgrade (nodes could answer version-1 steps only to validated members).
#[test]
fn during_an_upgrade_version_1_summaries_do_not_open_the_bulk_of_an_exchange() {
    let now = Instant::from_secs(1);
    let mut config = config(0);
    config.legacy_wire = LegacyWire::Accept;
    let mut node = Node::new(config, ChaCha8Rng::seed_from_u64(0), Instant::ZERO).unwrap();
    let teacher = Sender { name: "teacher", addr: addr(9), incarnation: 0 };
    let names: Vec<String> = (0..1000).map(|i| format!("member-{i}")).collect();
    for (k, chunk) in names.chunks(25).enumerate() {
        let records: Vec<Record<'_>> = chunk
            .iter()
            .enumerate()
            .map(|(j, n)| {
                let ip = std::net::Ipv4Addr::new(10, 4, k as u8, j as u8 + 1);
                record(n, SocketAddr::new(ip.into(), 7000), 0, Status::Online)
            })
            .collect();
        let datagram = forge(&name(0), teacher, nonce(now, k as u64), &Body::Gossip, &records);
        node.handle_datagram(now, addr(9), &datagram);
    }
    drain(&mut node);
    let mallory = Sender { name: "mallory", addr: victim(), incarnation: 0 };
    let digest = Body::SyncDigest { root: 1, members: 1000 };
    let digest = forge(&name(0), mallory, nonce(now, 100), &digest, &[]);
    node.handle_datagram(now, victim(), &digest);
    let mut received_by_victim = bytes_to(&drain(&mut node), victim());
    let all = BucketSet([u64::MAX; 4]);
    let summaries =
        Body::SyncSummaries { echo: None, cookie: 0, shift: 8, buckets: all, summaries: &[] };
    let request = forge_v1(mallory, nonce(now, 101), &summaries, &[]);
    node.handle_datagram(now, victim(), &request);
    received_by_victim += bytes_to(&drain(&mut node), victim());
    let ratio = received_by_victim as f64 / (digest.len() + request.len()) as f64;
    eprintln!("victim got {received_by_victim} B: {ratio:.1}x");
    assert!(ratio <= 3.0, "the victim got {ratio:.1}x the attacker's bytes");
}

// ------------------------------------------------- attacks that fail (regression coverage)

/// A joiner's first datagram is sealed for an address, not a name, so it opens at every
/// member. Replayed without the key to every member of the cluster, it is answered at most
/// once by each, within the limit for an unvalidated address, and only to the joiner.
#[test]
fn a_join_replayed_to_every_member_costs_the_joiner_little() {
    let mut cluster = Cluster::joined(6, 205);
    let joiner = cluster.add(config(6));
    let now = cluster.now;
    cluster.nodes[joiner].join(now, [addr(0)]);
    cluster.run_for(Duration::from_millis(1));
    let request = cluster.log.iter().find(|s| s.from == joiner).unwrap().bytes.clone();
    let spoofed: SocketAddr = victim();
    let mut to_joiner = 0;
    let mut answers_elsewhere = 0;
    for target in 1..6 {
        let node = &mut cluster.nodes[target];
        for _ in 0..50 {
            node.handle_datagram(now, spoofed, &request);
            for (to, bytes) in drain(node) {
                if to == addr(joiner) {
                    to_joiner += bytes.len();
                } else {
                    answers_elsewhere += 1;
                }
            }
        }
        assert!(node.counters().dropped(DropReason::Replayed) >= 49);
    }
    assert_eq!(answers_elsewhere, 0);
    assert!(to_joiner <= 5 * 3 * request.len(), "{to_joiner} B to the joiner");
}

/// A key holder's datagram sealed for an address (no receiver name) is accepted only as a
/// join: anything else would make every datagram of that kind valid at every member.
#[test]
fn only_a_join_may_be_sealed_for_an_address() {
    let mut node = support::node(0);
    let now = Instant::from_secs(1);
    let sender = Sender { name: &name(1), addr: addr(1), incarnation: 0 };
    let all = BucketSet([u64::MAX; 4]);
    let bodies = [
        Body::Ping { seq: 1, root: 0, target: "" },
        Body::Gossip,
        Body::SyncEntries,
        Body::SyncSummaries { echo: Some(1), cookie: 1, shift: 8, buckets: all, summaries: &[] },
        Body::PingReq { seq: 1, target: "x", target_addr: None },
    ];
    for (k, body) in bodies.iter().enumerate() {
        let header = Header::new(Version::V2, Flags(Flags::TO_ADDRESS), nonce(now, k as u64));
        let writer = PacketWriter::new(Vec::new(), 1452, &header, &sender, body).unwrap();
        node.handle_datagram(now, addr(1), &seal("", writer.finish()));
    }
    assert_eq!(node.counters().dropped(DropReason::Misdirected), bodies.len() as u64);
    assert!(node.member(&name(1)).is_none());
    assert!(drain(&mut node).is_empty());
}

/// With `require_encryption`, a plain version-2 datagram is refused even from a key holder
/// (a downgrade is impossible), and an encrypted one sealed for another member or label
/// does not open.
#[test]
fn required_encryption_refuses_plain_and_misbound_datagrams() {
    let mut config = config(0);
    config.encrypt = true;
    config.require_encryption = true;
    config.label = String::from("prod");
    let mut node = Node::new(config, ChaCha8Rng::seed_from_u64(0), Instant::ZERO).unwrap();
    let now = Instant::from_secs(1);
    let sender = Sender { name: &name(1), addr: addr(1), incarnation: 0 };
    let seal_as = |flags: u8, label: &str, receiver: &str, count: u64| {
        let header = Header::new(Version::V2, Flags(flags), nonce(now, count));
        let writer = PacketWriter::new(Vec::new(), 1452, &header, &sender, &Body::Gossip).unwrap();
        Keyring::new(support::SECRET).seal_packet(writer.finish(), label, receiver)
    };
    node.handle_datagram(now, addr(1), &seal_as(0, "prod", &name(0), 1));
    node.handle_datagram(now, addr(1), &seal_as(Flags::ENCRYPTED, "", &name(0), 2));
    node.handle_datagram(now, addr(1), &seal_as(Flags::ENCRYPTED, "prod", &name(2), 3));
    assert_eq!(node.counters().dropped(DropReason::Unencrypted), 1);
    assert_eq!(node.counters().dropped(DropReason::Unauthenticated), 2);
    assert!(node.member(&name(1)).is_none());
    node.handle_datagram(now, addr(1), &seal_as(Flags::ENCRYPTED, "prod", &name(0), 4));
    assert!(node.member(&name(1)).is_some(), "a proper encrypted datagram is accepted");
}

/// Summaries must echo the nonce of bucket hashes sent to that very member; those sent to
/// another member (whose nonce a key holder may learn) do not count.
#[test]
fn an_echo_of_bucket_hashes_sent_to_another_member_is_not_accepted() {
    let now = Instant::from_secs(1);
    let mut node = busy_node(200, now);
    introduce_key_holder(&mut node, now, 100);
    drain(&mut node);
    let me = Sender { name: &name(1), addr: addr(1), incarnation: 0 };
    let digest = Body::SyncDigest { root: 1, members: 200 };
    node.handle_datagram(now, addr(1), &forge(&name(0), me, nonce(now, 101), &digest, &[]));
    let answers = drain(&mut node);
    let (_, buckets) = answers.iter().find(|(to, _)| *to == addr(1)).expect("bucket hashes");
    let echo = cookie_of(buckets);
    let mallory = Sender { name: "mallory", addr: victim(), incarnation: 0 };
    let all = BucketSet([u64::MAX; 4]);
    let summaries =
        Body::SyncSummaries { echo: Some(echo), cookie: 1, shift: 8, buckets: all, summaries: &[] };
    node.handle_datagram(
        now,
        victim(),
        &forge(&name(0), mallory, nonce(now, 102), &summaries, &[]),
    );
    assert_eq!(bytes_to(&drain(&mut node), victim()), 0);
    assert_eq!(node.counters().dropped(DropReason::Unsolicited), 1);
}

/// The restart of a receiver within `max_clock_skew`: datagrams captured just before are
/// still within the clock window, and the new process has no replay window yet. What a
/// replay can still teach it: only what the cluster says anyway (no answer goes anywhere but
/// to the authenticated senders).
#[test]
fn a_quick_restart_answers_replays_only_to_their_senders() {
    let mut cluster = Cluster::joined(3, 206);
    cluster.clear_history();
    cluster.run_for(Duration::from_secs(3));
    let captured: Vec<Vec<u8>> =
        cluster.log.iter().filter(|s| s.to == addr(2)).map(|s| s.bytes.clone()).collect();
    let restarted = support::config_at(2, cluster.now);
    cluster.restart(2, restarted);
    let now = cluster.now;
    let node = &mut cluster.nodes[2];
    let spoofed = victim();
    for bytes in &captured {
        node.handle_datagram(now, spoofed, bytes);
    }
    let sent = drain(node);
    assert!(sent.iter().all(|(to, _)| *to == addr(0) || *to == addr(1)), "{sent:?}");
}
