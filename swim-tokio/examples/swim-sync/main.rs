//! swim-sync: mirrors cluster membership into a directory, as the Python swim-protocol
//! package's `swim-protocol-sync` (see `mirror.rs` for the layout). It takes swim-tokio's
//! `ClusterArgs` (`--name`, `--peer`, `--secret`, `--metadata`, `SWIM_*` variables).
//!
//! ```console
//! cargo run -p swim-tokio --example swim-sync -- /tmp/swim-a --name 127.0.0.1:2001 --peer 127.0.0.1:2002
//! echo -n cache > /tmp/swim-a/127.0.0.1:2001/role && kill -HUP <pid>
//! ```
//!
//! Metadata values are the files' bytes: `echo` adds a newline, which `--strip-newline`
//! drops.

mod mirror;
#[path = "../common/options.rs"]
mod options;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use swim_tokio::{Cluster, ClusterArgs};
use tokio::sync::mpsc;

use crate::mirror::Mirror;

#[derive(Parser)]
#[command(name = "swim-sync", version, about = "Mirror SWIM cluster membership into a directory")]
struct Cli {
    /// The directory to mirror into: a folder per member, status folders of links, this
    /// node's folder holding its metadata (reloaded on SIGHUP), DIR/on-update run per change.
    dir: PathBuf,
    #[command(flatten)]
    cluster: ClusterArgs,
    /// Longest an on-update run may take before it is killed, in seconds.
    #[arg(long, value_name = "SECONDS", default_value = "30", value_parser = swim_tokio::parse_seconds)]
    hook_timeout: Duration,
    /// Drop one trailing newline (as `echo` writes) from every local metadata file's value.
    #[arg(long)]
    strip_newline: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    options::init_logging();
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("swim-sync: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    let config = options::config(&cli.cluster)?;
    let base = config.protocol.local_metadata.clone();
    // Bound first: a port-0 name becomes the bound port, and the folder is named after it.
    // Each --metadata value without a file is written there; the files are then the local
    // metadata.
    let node = Cluster::bind(config).await.map_err(|e| e.to_string())?;
    let name = node.local_member().name().to_owned();
    let mut mirror = Mirror::new(&cli.dir, &name, base, cli.strip_newline)
        .map_err(|e| format!("cannot prepare {}: {e}", cli.dir.display()))?;
    eprintln!(
        "{} bound to {}, mirroring into {}; SIGHUP reloads {}, Ctrl-C leaves",
        name,
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
    let result =
        mirror::run(&node, &mut mirror, reloads, cli.hook_timeout, options::shutdown_signal())
            .await;
    eprintln!("leaving");
    if let Err(error) = node.leave().await {
        eprintln!("swim-sync: {error}");
    }
    result
}
