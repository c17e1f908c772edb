//! swim-demo: run one member (`node`), or a whole cluster in one process (`local`) that
//! converges, detects a killed member, spreads a metadata change and reports how long each
//! took.
//!
//! ```console
//! cargo run --release -p swim-tokio --example swim-demo -- local --nodes 5
//! cargo run --release -p swim-tokio --example swim-demo -- node --name 127.0.0.1:2001 --peer 127.0.0.1:2002
//! cargo run --release -p swim-tokio --example swim-demo -- node --name 127.0.0.1:2001 --status-interval 5
//! ```
//!
//! `node` prints its status dump as one JSON line every `--status-interval` seconds and on
//! SIGUSR1.

#[path = "common/options.rs"]
mod options;

use std::collections::{BTreeSet, HashMap};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use options::{NodeOptions, shutdown_signal};
use serde_json::json;
use swim_core::{Bytes, Event, Keyring, Status};
use swim_tokio::{Cluster, ClusterConfig, Handle};
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

#[derive(Parser)]
#[command(name = "swim-demo", version, about = "SWIM cluster membership demo")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one member and print the membership changes it sees.
    Node(Box<NodeArgs>),
    /// Start a cluster on 127.0.0.1 in this process: converge, kill a member, change
    /// metadata, then print how long each took.
    Local(LocalArgs),
}

#[derive(Args)]
struct NodeArgs {
    #[command(flatten)]
    node: NodeOptions,
    /// Randomise the `token` metadata field every SECONDS (0: never).
    #[arg(short = 'i', long, value_name = "SECONDS", default_value_t = 10.0)]
    token_interval: f64,
    /// Print the status dump (JSON: members, statuses, incarnations, metadata sizes,
    /// counters) every SECONDS (0: never); SIGUSR1 prints it at once.
    #[arg(long, value_name = "SECONDS", default_value_t = 0.0)]
    status_interval: f64,
    /// Print one JSON object per line.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct LocalArgs {
    /// How many members to start.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(2..=64))]
    nodes: u16,
    /// Print one JSON object per line.
    #[arg(long)]
    json: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    options::init_logging();
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    let result = match cli.command {
        Command::Node(args) => {
            let node_matches = matches.subcommand_matches("node").expect("node was parsed");
            run_node(*args, node_matches).await
        }
        Command::Local(args) => run_local(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("swim-demo: {message}");
            ExitCode::FAILURE
        }
    }
}

// ------------------------------------------------------------------------------- node

async fn run_node(args: NodeArgs, matches: &ArgMatches) -> Result<(), String> {
    let config = args.node.config(matches)?;
    let node = Cluster::bind(config).await.map_err(|e| e.to_string())?;
    eprintln!("{} bound to {}; Ctrl-C leaves", args.node.name, node.local_addr());
    let mut report = Report::new(args.json);
    let mut events = node.subscribe();
    let every = |seconds: f64| Duration::try_from_secs_f64(seconds).ok().filter(|p| !p.is_zero());
    let period = every(args.token_interval);
    let mut token = tokio::time::interval(period.unwrap_or(Duration::from_secs(3600)));
    token.tick().await;
    let status_period = every(args.status_interval);
    let mut status = tokio::time::interval(status_period.unwrap_or(Duration::from_secs(3600)));
    status.tick().await;
    let mut status_signal = StatusSignal::new();
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Ok(event) => report.event(&node, &event),
                Err(broadcast::error::RecvError::Lagged(n)) => eprintln!("(missed {n} events)"),
                Err(broadcast::error::RecvError::Closed) => return Err("the node stopped".into()),
            },
            _ = token.tick(), if period.is_some() => {
                node.set_metadata("token", random_token()).await.map_err(|e| e.to_string())?;
            }
            _ = status.tick(), if status_period.is_some() => print_status(&node),
            () = status_signal.recv() => print_status(&node),
            () = &mut shutdown => break,
        }
    }
    eprintln!("leaving");
    if let Err(error) = node.leave().await {
        eprintln!("swim-demo: {error}");
    }
    Ok(())
}

/// One line of JSON: the node's status dump (PySyncObj's `getStatus`).
fn print_status(node: &Handle) {
    let line = json!({ "t": unix_time(), "status": node.status_dump() });
    println!("{line}");
}

/// SIGUSR1, where there is such a thing.
struct StatusSignal {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl StatusSignal {
    fn new() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            StatusSignal { signal: signal(SignalKind::user_defined1()).ok() }
        }
        #[cfg(not(unix))]
        StatusSignal {}
    }

    /// Resolves on every SIGUSR1; never where there is none.
    async fn recv(&mut self) {
        #[cfg(unix)]
        if let Some(signal) = &mut self.signal
            && signal.recv().await.is_some()
        {
            return;
        }
        std::future::pending::<()>().await
    }
}

// ------------------------------------------------------------------------------ local

/// Bounds on each phase of `local`, far above what the default timers need.
const PHASE_LIMIT: Duration = Duration::from_secs(30);

struct Local {
    names: Vec<String>,
    nodes: Vec<Option<Handle>>,
    events: mpsc::UnboundedReceiver<(usize, Event)>,
    report: Report,
}

async fn run_local(args: LocalArgs) -> Result<(), String> {
    let start = Instant::now();
    let n = usize::from(args.nodes);
    let secret = format!("{:016x}", getrandom::u64().map_err(|e| e.to_string())?);
    let (forward, events) = mpsc::unbounded_channel();
    let mut local = Local {
        names: (1..=n).map(|i| format!("node-{i}")).collect(),
        nodes: Vec::new(),
        events,
        report: Report::new(args.json),
    };
    let mut seed = Vec::new();
    for (i, name) in local.names.iter().enumerate() {
        let mut config = ClusterConfig::new(name.clone(), Keyring::new(&secret));
        config.bind_host = Some("127.0.0.1".into());
        config.protocol.peers.clone_from(&seed);
        config.protocol.local_metadata.insert("token", random_token());
        let node = Cluster::bind(config).await.map_err(|e| e.to_string())?;
        seed = vec![node.local_addr()];
        let mut receiver = node.subscribe();
        let forward = forward.clone();
        tokio::spawn(async move {
            loop {
                match receiver.recv().await {
                    Ok(event) => drop(forward.send((i, event))),
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        local.nodes.push(Some(node));
    }
    let config = ClusterConfig::new("", Keyring::new("")).protocol;
    local.say(&format!(
        "started {n} members on 127.0.0.1 (ping {:?}, suspect {:?}); table: O online, \
         S suspect, X offline, L left, . unknown",
        config.ping_interval, config.suspect_timeout
    ));

    // 1. Join: every member sees every member online.
    let everyone = local.names.clone();
    let joined = local
        .phase(true, |local, _| local.all_see(&everyone))
        .await
        .ok_or("the cluster did not converge within 30 s")?;
    let join_time = joined - start;
    local.say(&format!("converged: all {n} see all {n} online after {join_time:.2?}"));

    // 2. Kill the middle member without a leave; every survivor must see suspect, offline.
    let victim = n / 2;
    let victim_name = local.names[victim].clone();
    local.nodes[victim] = None;
    let killed = Instant::now();
    local.say(&format!("killed {victim_name} (no leave announcement)"));
    let (mut first_suspect, mut offline_at) = (None, BTreeSet::new());
    let offline = local
        .phase(false, |local, (observer, event)| {
            let status = match event {
                Event::MemberSuspect { name, .. } if **name == *victim_name => Status::Suspect,
                Event::MemberOffline { name, .. } if **name == *victim_name => Status::Offline,
                _ => return false,
            };
            if status == Status::Suspect {
                first_suspect.get_or_insert(killed.elapsed());
            } else {
                offline_at.insert(*observer);
            }
            let observer = &local.names[*observer];
            local.say(&format!(
                "{observer} sees {victim_name} {status} after {:.2?}",
                killed.elapsed()
            ));
            offline_at.len() == n - 1
        })
        .await
        .ok_or_else(|| format!("{victim_name} was not offline everywhere within 30 s"))?;
    let detection = offline - killed;

    // 3. Change one metadata value and watch it arrive at every survivor.
    let token_value = random_token();
    let changed = Instant::now();
    let source = local.names[0].clone();
    let first = local.nodes[0].as_ref().expect("node-1 is never the victim");
    first.set_metadata("token", token_value.clone()).await.map_err(|e| e.to_string())?;
    local.say(&format!("{source} set token={token_value}"));
    let mut arrived_at = BTreeSet::new();
    let arrived = local
        .phase(false, |local, (observer, event)| {
            let Event::MetadataChanged { name, .. } = event else {
                return false;
            };
            let view = local.nodes[*observer].as_ref().map(Handle::snapshot);
            let view = view.as_ref().and_then(|v| v.member(name));
            let token = view.and_then(|m| m.metadata().and_then(|md| md.get("token")));
            if **name == *source && token.is_some_and(|t| t == token_value.as_bytes()) {
                arrived_at.insert(*observer);
                let observer = &local.names[*observer];
                if *observer == *source {
                    return arrived_at.len() == n - 1;
                }
                local.say(&format!(
                    "{observer} has {source}'s token={token_value} after {:.2?}",
                    changed.elapsed()
                ));
            }
            arrived_at.len() == n - 1
        })
        .await
        .ok_or("the metadata change did not reach every member within 30 s")?;
    let dissemination = arrived - changed;

    let seconds = |d: Duration| (d.as_secs_f64() * 1e6).round() / 1e6;
    if args.json {
        let summary = json!({
            "t": unix_time(),
            "summary": {
                "nodes": n,
                "join_seconds": seconds(join_time),
                "first_suspect_seconds": first_suspect.map(seconds),
                "offline_everywhere_seconds": seconds(detection),
                "dissemination_seconds": seconds(dissemination),
            }
        });
        println!("{summary}");
    } else {
        println!(
            "\nsummary ({n} members, ping {:?}, suspect {:?})",
            config.ping_interval, config.suspect_timeout
        );
        println!("  join:          all {n} saw all {n} online after {join_time:.2?}");
        match first_suspect {
            Some(suspect) => println!(
                "  detection:     {victim_name} first suspected after {suspect:.2?}, offline at every survivor after {detection:.2?}"
            ),
            None => println!(
                "  detection:     {victim_name} offline at every survivor after {detection:.2?}"
            ),
        }
        println!(
            "  dissemination: token from {source} known to every survivor ({}) after {dissemination:.2?}",
            n - 1
        );
    }
    Ok(())
}

impl Local {
    /// Handles events until `done` (checked after each event) holds, or `PHASE_LIMIT`
    /// passes; with `table`, prints every member's view whenever it changed, 10 times a
    /// second at most.
    async fn phase(
        &mut self,
        table: bool,
        mut done: impl FnMut(&Local, &(usize, Event)) -> bool,
    ) -> Option<Instant> {
        let limit = tokio::time::sleep(PHASE_LIMIT);
        tokio::pin!(limit);
        let mut ticks = tokio::time::interval(Duration::from_millis(100));
        let mut shown = String::new();
        loop {
            tokio::select! {
                event = self.events.recv() => {
                    let event = event?;
                    if let Some(node) = &self.nodes[event.0]
                        && self.report.json
                    {
                        self.report.event(node, &event.1);
                    }
                    if done(self, &event) {
                        break;
                    }
                }
                _ = ticks.tick(), if table => self.table(&mut shown),
                () = &mut limit => return None,
            }
        }
        let at = Instant::now();
        if table {
            self.table(&mut shown);
        }
        Some(at)
    }

    /// Whether every running member sees every one of `names` online.
    fn all_see(&self, names: &[String]) -> bool {
        self.nodes.iter().flatten().all(|node| {
            let view = node.snapshot();
            (names.iter())
                .all(|name| view.member(name).is_some_and(|m| m.status() == Status::Online))
        })
    }

    /// Prints what each member sees, unless it is what was `shown` last.
    fn table(&self, shown: &mut String) {
        // Columns are members, in the order of the rows; wide clusters get narrow columns
        // headed by the last digit of the member's number.
        let width = if self.names.len() > 16 { 2 } else { 4 };
        let header = |i: usize| match width {
            2 => format!("{:>2}", (i + 1) % 10),
            _ => format!("{:>4}", format!("n{}", i + 1)),
        };
        let mut table: String = (0..self.names.len()).map(header).collect();
        table.insert_str(0, "        ");
        for (name, node) in self.names.iter().zip(&self.nodes) {
            let row: String = match node {
                None => "  (killed)".into(),
                Some(node) => {
                    let view = node.snapshot();
                    let cell = |n: &String| {
                        let symbol = match view.member(n).map(|m| m.status()) {
                            Some(Status::Online) => 'O',
                            Some(Status::Suspect) => 'S',
                            Some(Status::Offline) => 'X',
                            Some(Status::Left) => 'L',
                            None => '.',
                        };
                        format!("{symbol:>width$}")
                    };
                    self.names.iter().map(cell).collect()
                }
            };
            table.push_str(&format!("\n{name:>8}{row}"));
        }
        if *shown != table && !self.report.json {
            self.say("membership as each member sees it:");
            println!("{table}");
            *shown = table;
        }
    }

    fn say(&self, line: &str) {
        if !self.report.json {
            println!("[{:>7.2?}] {line}", self.report.start.elapsed());
        }
    }
}

// ----------------------------------------------------------------------------- output

struct Report {
    json: bool,
    start: Instant,
    /// The last change printed per (observer, member): a member seen for the first time
    /// reports both joined and metadata, which would print the same line twice.
    last: HashMap<(String, String), String>,
}

impl Report {
    fn new(json: bool) -> Self {
        Report { json, start: Instant::now(), last: HashMap::new() }
    }

    /// One line per membership change `observer` reports.
    fn event(&mut self, observer: &Handle, event: &Event) {
        let view = observer.snapshot();
        let me = view.local_member();
        let (member, status, incarnation) = match event {
            Event::MemberSuspect { name, incarnation } => (name, Status::Suspect, *incarnation),
            Event::MemberOffline { name, incarnation } => (name, Status::Offline, *incarnation),
            Event::MemberLeft { name, incarnation } => (name, Status::Left, *incarnation),
            Event::MemberAlive { name, incarnation, .. } => (name, Status::Online, *incarnation),
            Event::MemberJoined { name, .. } | Event::MetadataChanged { name, .. } => {
                let Some(m) = view.member(name) else { return };
                (name, m.status(), m.incarnation())
            }
            Event::Refuted { incarnation } => (me.name_shared(), Status::Online, *incarnation),
            other => {
                let what = match other {
                    Event::Joined => "joined the cluster".to_owned(),
                    Event::MemberReaped { name } => format!("forgot {name}"),
                    Event::Suspected { accusation, .. } => format!("is said to be {accusation}"),
                    other => format!("{other:?}"),
                };
                if !self.json {
                    println!("[{:>7.2?}] {} {what}", self.start.elapsed(), me.name());
                }
                return;
            }
        };
        let metadata: Vec<(String, String)> = view
            .member(member)
            .and_then(|m| m.metadata().cloned())
            .map(|md| md.iter().map(|(k, v)| (k.to_owned(), text(&v))).collect())
            .unwrap_or_default();
        let key = (me.name().to_owned(), member.to_string());
        let line = format!("{status} {incarnation} {metadata:?}");
        if self.last.get(&key) == Some(&line) {
            return;
        }
        self.last.insert(key, line);
        if self.json {
            let metadata: serde_json::Map<_, _> =
                metadata.into_iter().map(|(k, v)| (k, v.into())).collect();
            let line = json!({
                "t": unix_time(),
                "self": me.name(),
                "member": &**member,
                "status": status.as_str(),
                "incarnation": incarnation,
                "metadata": metadata,
            });
            println!("{line}");
        } else {
            let metadata: Vec<String> = metadata.iter().map(|(k, v)| format!("{k}={v}")).collect();
            println!(
                "[{:>7.2?}] {} sees {member} {status} (incarnation {incarnation}) {}",
                self.start.elapsed(),
                me.name(),
                metadata.join(" ")
            );
        }
    }
}

/// UTF-8 as text, anything else as hex.
fn text(value: &Bytes) -> String {
    match std::str::from_utf8(value) {
        Ok(text) => text.to_owned(),
        Err(_) => value.iter().map(|b| format!("{b:02x}")).collect(),
    }
}

fn unix_time() -> f64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    (now.as_secs_f64() * 1000.0).round() / 1000.0
}

fn random_token() -> String {
    format!("{:08x}", getrandom::u32().unwrap_or_default())
}
