//! `swim-member`: one swim member on the swim-std driver (or swim-tokio's, `--driver`), for
//! the real-network testbed.
//!
//! It binds `--name` (`IP:PORT`), joins through `--peer`, and prints every membership event
//! as a JSON line stamped with the wall clock (`swim_tests::testbed::line`). Commands on
//! stdin ask for counters, the view, a metadata change or a graceful leave; when stdin
//! closes (the testbed ended, however it ended) the member stops at once.

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use swim_core::{Event, Keyring, Lifeguard, Status};
use swim_std::{ClusterConfig, Error, Lagged, Snapshot};
use swim_tests::testbed::line::{Change, Command, Line, Traffic, What};
use swim_tokio::StreamExt;

/// Where the driver comes from when `--driver` is not given (the testbed passes its
/// environment on to every member).
const DRIVER_ENV: &str = "SWIM_MEMBER_DRIVER";

/// The driver a member runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Driver {
    /// swim-std: a thread blocking on the socket.
    Std,
    /// swim-tokio on a multi-threaded runtime (tokio's default, `#[tokio::main]`).
    Tokio,
    /// swim-tokio on a current-thread runtime.
    TokioCurrent,
}

/// One swim member printing its events as JSON lines.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// This member's name and address, `IP:PORT`.
    #[arg(long)]
    name: String,
    /// A member to join through, `IP:PORT` (none: the first member), contacted once the
    /// event stream is being printed.
    #[arg(long)]
    peer: Option<String>,
    /// Seeds the node's RNG.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The shared secret.
    #[arg(long, default_value = "testbed cluster secret")]
    secret: String,
    /// Time between probes, ms.
    #[arg(long)]
    ping_interval_ms: Option<u64>,
    /// Time to wait for a direct ack, ms.
    #[arg(long)]
    ping_timeout_ms: Option<u64>,
    /// Time to wait for an indirect ack, ms.
    #[arg(long)]
    ping_req_timeout_ms: Option<u64>,
    /// Members asked to probe indirectly.
    #[arg(long)]
    ping_req_count: Option<usize>,
    /// Time a member stays suspect, ms.
    #[arg(long)]
    suspect_timeout_ms: Option<u64>,
    /// Time between anti-entropy exchanges, ms.
    #[arg(long)]
    sync_interval_ms: Option<u64>,
    /// Time between gossip rounds, ms.
    #[arg(long)]
    gossip_interval_ms: Option<u64>,
    /// Members each gossip round sends to.
    #[arg(long)]
    gossip_fanout: Option<usize>,
    /// Retransmission multiplier.
    #[arg(long)]
    retransmit_mult: Option<u32>,
    /// Time an offline member is kept, ms.
    #[arg(long)]
    reap_timeout_ms: Option<u64>,
    /// Time between attempts to reach members outside the view, ms.
    #[arg(long)]
    rejoin_interval_ms: Option<u64>,
    /// Turn Lifeguard off (plain SWIM).
    #[arg(long)]
    no_lifeguard: bool,
    /// The driver (default: `SWIM_MEMBER_DRIVER` from the environment, else `std`).
    #[arg(long, value_enum)]
    driver: Option<Driver>,
}

fn main() {
    let args = Args::parse();
    let driver = args.driver.unwrap_or_else(|| {
        let named = std::env::var(DRIVER_ENV).unwrap_or_default();
        Driver::from_str(&named, true).unwrap_or(Driver::Std)
    });
    let peer = args.peer.as_ref().map(|peer| {
        peer.parse::<SocketAddr>().unwrap_or_else(|error| {
            exit(&args, &format!("--peer {peer}: {error}"));
        })
    });
    let runtime = match driver {
        Driver::Std => return run_std(&args, peer),
        Driver::Tokio => tokio::runtime::Builder::new_multi_thread().enable_all().build(),
        Driver::TokioCurrent => tokio::runtime::Builder::new_current_thread().enable_all().build(),
    };
    let runtime = runtime.unwrap_or_else(|error| exit(&args, &format!("runtime: {error}")));
    runtime.block_on(run_tokio(&args, peer));
}

fn exit(args: &Args, error: &str) -> ! {
    eprintln!("swim-member {}: {error}", args.name);
    std::process::exit(2);
}

fn run_std(args: &Args, peer: Option<SocketAddr>) {
    let handle = swim_std::Cluster::bind(config(args))
        .unwrap_or_else(|error| exit(args, &error.to_string()));
    // Subscribed before joining: `bind` with peers would start joining at once, and the
    // events of a fast join would be published before anyone listened.
    let events = handle.subscribe();
    print(What::Bound);
    std::thread::spawn(move || events.for_each(print_event));
    if let Some(peer) = peer
        && let Err(error) = handle.join([peer])
    {
        eprintln!("swim-member {}: join: {error}", args.name);
    }
    serve(&StdMember(handle));
}

async fn run_tokio(args: &Args, peer: Option<SocketAddr>) {
    let bound = swim_tokio::Cluster::bind(config(args)).await;
    let handle = bound.unwrap_or_else(|error| exit(args, &error.to_string()));
    let mut events = handle.subscribe();
    print(What::Bound);
    tokio::spawn(async move {
        while let Some(event) = events.next().await {
            print_event(event);
        }
    });
    if let Some(peer) = peer
        && let Err(error) = handle.join([peer])
    {
        eprintln!("swim-member {}: join: {error}", args.name);
    }
    // Stdin blocks: read on a blocking thread, while the runtime drives the node.
    let member = TokioMember { handle, runtime: tokio::runtime::Handle::current() };
    let _ = tokio::task::spawn_blocking(move || serve(&member)).await;
}

/// What [`serve`] needs of a running member, whichever its driver.
trait Member {
    fn snapshot(&self) -> Snapshot;
    fn set_metadata(&self, key: String, value: Vec<u8>) -> bool;
    fn leave(&self) -> Result<(), Error>;
}

struct StdMember(swim_std::Handle);

impl Member for StdMember {
    fn snapshot(&self) -> Snapshot {
        self.0.snapshot()
    }
    fn set_metadata(&self, key: String, value: Vec<u8>) -> bool {
        self.0.set_metadata(key, value).is_ok()
    }
    fn leave(&self) -> Result<(), Error> {
        self.0.leave()
    }
}

struct TokioMember {
    handle: swim_tokio::Handle,
    runtime: tokio::runtime::Handle,
}

impl Member for TokioMember {
    fn snapshot(&self) -> Snapshot {
        self.handle.snapshot()
    }
    fn set_metadata(&self, key: String, value: Vec<u8>) -> bool {
        self.handle.set_metadata(key, value).is_ok()
    }
    fn leave(&self) -> Result<(), Error> {
        self.runtime.block_on(self.handle.leave())
    }
}

fn config(args: &Args) -> ClusterConfig {
    let mut config = ClusterConfig::new(args.name.clone(), Keyring::new(args.secret.as_str()));
    config.rng_seed = Some(args.seed);
    // Addresses are literal: nothing to resolve again.
    config.resolve_interval = None;
    // The testbed reads every event; a join of 100 members makes thousands at once.
    config.event_capacity = 1 << 16;
    let p = &mut config.protocol;
    let ms = Duration::from_millis;
    let set = |field: &mut Duration, value: Option<u64>| {
        if let Some(value) = value {
            *field = ms(value);
        }
    };
    set(&mut p.ping_interval, args.ping_interval_ms);
    set(&mut p.ping_timeout, args.ping_timeout_ms);
    set(&mut p.ping_req_timeout, args.ping_req_timeout_ms);
    set(&mut p.suspect_timeout, args.suspect_timeout_ms);
    set(&mut p.sync_interval, args.sync_interval_ms);
    set(&mut p.gossip_interval, args.gossip_interval_ms);
    set(&mut p.reap_timeout, args.reap_timeout_ms);
    set(&mut p.rejoin_interval, args.rejoin_interval_ms);
    p.ping_req_count = args.ping_req_count.unwrap_or(p.ping_req_count);
    p.gossip_fanout = args.gossip_fanout.unwrap_or(p.gossip_fanout);
    p.retransmit_mult = args.retransmit_mult.unwrap_or(p.retransmit_mult);
    if args.no_lifeguard {
        p.lifeguard = Lifeguard::OFF;
    }
    config
}

/// Answers commands until stdin closes or the member leaves.
fn serve(handle: &impl Member) {
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        match Command::parse(&line) {
            Some(Command::Counters) => {
                let c = handle.snapshot().counters().clone();
                print(What::Counters(Traffic {
                    datagrams_out: c.datagrams_out,
                    bytes_out: c.bytes_out,
                    datagrams_in: c.datagrams_in,
                    bytes_in: c.bytes_in,
                    refutations: c.refutations,
                    suspicions: c.suspicions,
                    dropped: c.dropped_total(),
                }));
            }
            Some(Command::View) => print(view(handle)),
            Some(Command::Set(key, value)) => {
                let ok = handle.set_metadata(key, value.into_bytes());
                print(What::Set { ok });
            }
            Some(Command::Leave) => {
                if let Err(error) = handle.leave() {
                    eprintln!("swim-member: {error}");
                }
                print(What::Left);
                return;
            }
            None => eprintln!("swim-member: unknown command {line:?}"),
        }
    }
}

fn view(handle: &impl Member) -> What {
    let snapshot = handle.snapshot();
    let own = snapshot.local_member().name().clone();
    let (mut online, mut suspect, mut gone) = (Vec::new(), Vec::new(), Vec::new());
    for member in snapshot.members().iter().filter(|m| *m.name() != own) {
        let list = match member.status() {
            Status::Online => &mut online,
            Status::Suspect => &mut suspect,
            _ => &mut gone,
        };
        list.push(member.name().to_string());
    }
    What::View { online, suspect, gone }
}

fn print_event(event: Result<Event, Lagged>) {
    let whats = match event {
        Ok(event) => describe(event),
        Err(Lagged(missed)) => vec![What::Lagged { missed }],
    };
    whats.into_iter().for_each(print);
}

/// The lines an event makes: one, except for a member that joins as suspect (joined, then
/// suspect, as the testbed counts them) and one taken back as offline after it was
/// forgotten (none: no one's view of who is online changes until it refutes).
fn describe(event: Event) -> Vec<What> {
    let member = |change, name: &str, inc| What::Member { change, member: name.into(), inc };
    let what = match event {
        Event::MemberJoined { name, incarnation, status } => match status {
            Status::Online => member(Change::Joined, &name, incarnation),
            Status::Suspect => {
                return vec![
                    member(Change::Joined, &name, incarnation),
                    member(Change::Suspect, &name, incarnation),
                ];
            }
            Status::Offline | Status::Left => return Vec::new(),
        },
        Event::MemberSuspect { name, incarnation, .. } => {
            member(Change::Suspect, &name, incarnation)
        }
        Event::MemberOffline { name, incarnation, .. } => {
            member(Change::Offline, &name, incarnation)
        }
        Event::MemberLeft { name, incarnation, .. } => member(Change::Left, &name, incarnation),
        Event::MemberAlive { name, incarnation, .. } => member(Change::Alive, &name, incarnation),
        Event::MemberReaped { name, .. } => member(Change::Reaped, &name, 0),
        Event::MetadataChanged { name, version, .. } => {
            What::Metadata { member: name.into(), version }
        }
        Event::Joined => What::Ready,
        Event::Suspected { accusation, incarnation } => {
            What::Accused { accusation: accusation.as_str().into(), inc: incarnation }
        }
        Event::Refuted { incarnation } => What::Refuted { inc: incarnation },
        _ => return Vec::new(),
    };
    vec![what]
}

/// One JSON line; a closed stdout means the testbed is gone, and so should we be.
fn print(what: What) {
    let text = serde_json::to_string(&Line::now(what)).expect("a line always serialises");
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{text}").and_then(|()| out.flush()).is_err() {
        std::process::exit(0);
    }
}
