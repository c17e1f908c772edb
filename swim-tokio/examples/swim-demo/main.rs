//! swim-demo: run one member (`node`), or a whole cluster in one process (`local`) that
//! converges, spreads a metadata change, detects a killed member, sees a graceful leave and
//! reports how long each took.
//!
//! ```console
//! cargo run --release -p swim-tokio --example swim-demo -- local --nodes 5
//! cargo run --release -p swim-tokio --example swim-demo -- node --name 127.0.0.1:2001 --peer 127.0.0.1:2002
//! cargo run --release -p swim-tokio --example swim-demo -- node --name 127.0.0.1:2001 --status-interval 5 --metrics-addr 127.0.0.1:9100
//! ```
//!
//! `node` takes swim-tokio's `ClusterArgs` (`--name`, `--peer`, `--secret`, `--metadata`,
//! timing, `SWIM_*` variables), prints every membership change, its status dump as one JSON
//! line every `--status-interval` seconds and on SIGUSR1, and with `--metrics-addr` serves
//! its metrics for Prometheus at `http://ADDR/metrics`.

mod local;
#[path = "../common/options.rs"]
mod options;
mod report;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use options::shutdown_signal;
use report::{Report, random_token, unix_time};
use serde_json::json;
use swim_tokio::{Cluster, ClusterArgs, Handle, parse_seconds};

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
    /// Start a cluster on 127.0.0.1 in this process: converge, change metadata, kill a
    /// member, let one leave, then print how long each took.
    Local(local::LocalArgs),
}

#[derive(Args)]
struct NodeArgs {
    #[command(flatten)]
    cluster: ClusterArgs,
    /// Randomise the `token` metadata field every SECONDS (0: never).
    #[arg(short = 'i', long, value_name = "SECONDS", default_value = "10", value_parser = parse_seconds)]
    token_interval: Duration,
    /// Print the status dump (JSON: members, statuses, incarnations, metadata sizes,
    /// counters) every SECONDS (0: never); SIGUSR1 prints it at once.
    #[arg(long, value_name = "SECONDS", default_value = "0", value_parser = parse_seconds)]
    status_interval: Duration,
    /// Serve metrics for Prometheus at http://ADDR/metrics (e.g. 127.0.0.1:9100).
    #[arg(long, value_name = "IP:PORT")]
    metrics_addr: Option<SocketAddr>,
    /// Print one JSON object per line.
    #[arg(long)]
    json: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    options::init_logging();
    let result = match Cli::parse().command {
        Command::Node(args) => run_node(*args).await,
        Command::Local(args) => local::run(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("swim-demo: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run_node(args: NodeArgs) -> Result<(), String> {
    let config = options::config(&args.cluster)?;
    if let Some(addr) = args.metrics_addr {
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .with_http_listener(addr)
            .install()
            .map_err(|e| format!("cannot serve metrics at {addr}: {e}"))?;
    }
    let node = Cluster::bind(config).await.map_err(|e| e.to_string())?;
    eprintln!("{} bound to {}; Ctrl-C leaves", node.local_member().name(), node.local_addr());
    let mut report = Report::new(args.json);
    let mut events = node.subscribe();
    let mut token = every(args.token_interval);
    let mut status = every(args.status_interval);
    let mut status_signal = StatusSignal::new();
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(Ok(event)) => report.event(&node, &event),
                Some(Err(lagged)) => eprintln!("({lagged})"),
                None => return Err("the node stopped".into()),
            },
            _ = tick(&mut token) => {
                node.set_metadata("token", random_token()).map_err(|e| e.to_string())?;
            }
            _ = tick(&mut status) => print_status(&node),
            () = status_signal.recv() => print_status(&node),
            () = &mut shutdown => break,
        }
    }
    eprintln!("leaving");
    node.leave().await.map_err(|e| e.to_string())
}

/// A timer ticking every `period`; `None` (never) for zero.
fn every(period: Duration) -> Option<tokio::time::Interval> {
    (!period.is_zero()).then(|| {
        let start = tokio::time::Instant::now() + period;
        tokio::time::interval_at(start, period)
    })
}

/// The next tick of `interval`; never if there is none.
async fn tick(interval: &mut Option<tokio::time::Interval>) {
    match interval {
        Some(interval) => drop(interval.tick().await),
        None => std::future::pending().await,
    }
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
