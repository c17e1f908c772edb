//! What swim-demo and swim-sync share: the node's configuration from flags and environment
//! (swim-tokio's `ClusterArgs`), logging setup and shutdown signals.

use swim_tokio::{ClusterArgs, ClusterConfig};

/// The configuration `args` describe; without any secret, an insecure default with a
/// warning, so a first try on one machine needs no setup.
pub(crate) fn config(args: &ClusterArgs) -> Result<ClusterConfig, String> {
    let mut args = args.clone();
    if args.secrets.is_empty() && args.secret_files.is_empty() {
        eprintln!("no secret given (--secret, SWIM_SECRET): using an insecure default");
        args.secrets.push("swim-demo insecure default".into());
    }
    args.config().map_err(|e| e.to_string())
}

/// Resolves when the process is asked to stop: Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            },
            Err(_) => drop(tokio::signal::ctrl_c().await),
        }
    }
    #[cfg(not(unix))]
    drop(tokio::signal::ctrl_c().await);
}

/// Logs to stderr, `warn` and up unless `RUST_LOG` says otherwise.
pub(crate) fn init_logging() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
}
