//! swim-sync: mirrors cluster membership into a directory, as the seed's
//! `swim-protocol-sync` (see `mirror.rs` for the layout).
//!
//! ```console
//! cargo run -p swim-tokio --example swim-sync -- /tmp/swim-a --name 127.0.0.1:2001 --peer 127.0.0.1:2002
//! echo -n cache > /tmp/swim-a/127.0.0.1:2001/role && kill -HUP <pid>
//! ```

mod mirror;
#[path = "../common/options.rs"]
mod options;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser};
use swim_tokio::Cluster;
use tokio::sync::mpsc;

use crate::mirror::Mirror;
use crate::options::NodeOptions;

#[derive(Parser)]
#[command(name = "swim-sync", version, about = "Mirror SWIM cluster membership into a directory")]
struct Cli {
    /// The directory to mirror into: a folder per member, status folders of links, this
    /// node's folder holding its metadata (reloaded on SIGHUP), DIR/on-update run per change.
    dir: PathBuf,
    #[command(flatten)]
    node: NodeOptions,
    /// Longest an on-update run may take before it is killed, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
    hook_timeout: f64,
}

#[tokio::main]
async fn main() -> ExitCode {
    options::init_logging();
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    match run(cli, &matches).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("swim-sync: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli, matches: &clap::ArgMatches) -> Result<(), String> {
    let mut config = cli.node.config(matches)?;
    let mut mirror = Mirror::new(&cli.dir, &cli.node.name)
        .map_err(|e| format!("cannot prepare {}: {e}", cli.dir.display()))?;
    // The folder's files are the local metadata, over any --metadata given.
    let files = mirror.read_local().map_err(|e| e.to_string())?;
    for (key, value) in files {
        config.protocol.local_metadata.insert(key, value);
    }
    let node = Cluster::bind(config).await.map_err(|e| e.to_string())?;
    eprintln!(
        "{} bound to {}, mirroring into {}; SIGHUP reloads {}, Ctrl-C leaves",
        cli.node.name,
        node.local_addr(),
        cli.dir.display(),
        mirror.local_dir().display()
    );
    let (reload, reloads) = mpsc::channel(1);
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangup = signal(SignalKind::hangup()).map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            while hangup.recv().await.is_some() {
                // A reload already pending covers this one.
                let _ = reload.try_send(());
            }
        });
    }
    #[cfg(not(unix))]
    drop(reload);
    let hook_timeout = Duration::try_from_secs_f64(cli.hook_timeout).unwrap_or(Duration::MAX);
    let result =
        mirror::run(&node, &mut mirror, reloads, hook_timeout, options::shutdown_signal()).await;
    eprintln!("leaving");
    if let Err(error) = node.leave().await {
        eprintln!("swim-sync: {error}");
    }
    result
}
