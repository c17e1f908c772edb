//! What swim-demo and swim-sync share: the node options (secret, name, peers, metadata, bind
//! address, discovery, as the seed's programs take them), logging setup and shutdown signals.

use std::path::PathBuf;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args};
use swim_core::Keyring;
use swim_tokio::ClusterConfig;

#[derive(Args)]
pub(crate) struct NodeOptions {
    /// Shared secret signing every datagram. SWIM_SECRET_FILE, a file holding it, is tried
    /// before SWIM_SECRET.
    #[arg(long, env = "SWIM_SECRET", hide_env_values = true)]
    pub(crate) secret: Option<String>,
    /// File holding the shared secret (trailing newline stripped).
    #[arg(long = "secret-file", env = "SWIM_SECRET_FILE", hide = true)]
    pub(crate) secret_file: Option<PathBuf>,
    /// This member's name, HOST:PORT: the address others send to, and by default the bind address.
    #[arg(long, env = "SWIM_NAME")]
    pub(crate) name: String,
    /// A member to join through, HOST:PORT (repeatable; SWIM_PEERS is comma separated).
    #[arg(long = "peer", value_name = "HOST:PORT", env = "SWIM_PEERS", value_delimiter = ',')]
    pub(crate) peers: Vec<String>,
    /// A local metadata value (repeatable).
    #[arg(long, num_args = 2, value_names = ["KEY", "VALUE"])]
    pub(crate) metadata: Vec<String>,
    /// Host or IP to bind, when it differs from --name's.
    #[arg(long = "udp-bind", value_name = "HOST")]
    pub(crate) udp_bind: Option<String>,
    /// Port to bind, when it differs from --name's.
    #[arg(long = "udp-bind-port", value_name = "PORT")]
    pub(crate) udp_bind_port: Option<u16>,
    /// Discover members through a service name, HOST:PORT, resolving to every member's
    /// address (the seed's discovery=True); --name may then be any unique name.
    #[arg(long, value_name = "HOST:PORT")]
    pub(crate) discovery: Option<String>,
    /// Resolve peer and discovery names again every SECONDS (0: only at start).
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0)]
    pub(crate) resolve_interval: f64,
}

impl NodeOptions {
    /// The cluster configuration these options describe; `matches` tells flags from the
    /// environment for the secret.
    pub(crate) fn config(&self, matches: &ArgMatches) -> Result<ClusterConfig, String> {
        if self.discovery.is_none() && swim_std::split_host_port(&self.name).is_none() {
            return Err(format!(
                "invalid --name `{}`: expected HOST:PORT, e.g. 127.0.0.1:2001",
                self.name
            ));
        }
        let mut config = ClusterConfig::new(self.name.clone(), Keyring::new(self.secret(matches)?));
        config.peers.clone_from(&self.peers);
        config.bind_host.clone_from(&self.udp_bind);
        config.bind_port = self.udp_bind_port;
        config.discovery.clone_from(&self.discovery);
        config.resolve_interval =
            Duration::try_from_secs_f64(self.resolve_interval).ok().filter(|d| !d.is_zero());
        for pair in self.metadata.chunks_exact(2) {
            config.protocol.local_metadata.insert(pair[0].clone(), pair[1].clone());
        }
        Ok(config)
    }

    /// `--secret`, then `--secret-file`, then SWIM_SECRET_FILE, then SWIM_SECRET: flags win
    /// over the environment, and a file wins over a value, as in the seed.
    fn secret(&self, matches: &ArgMatches) -> Result<String, String> {
        let from_flag = |id| matches.value_source(id) == Some(ValueSource::CommandLine);
        let read = |path: &PathBuf| {
            std::fs::read_to_string(path)
                .map(|text| text.trim_end_matches(['\r', '\n']).to_owned())
                .map_err(|e| format!("cannot read secret file {}: {e}", path.display()))
        };
        match (&self.secret, &self.secret_file) {
            (Some(secret), _) if from_flag("secret") => Ok(secret.clone()),
            (_, Some(path)) => read(path),
            (Some(secret), None) => Ok(secret.clone()),
            (None, None) => {
                eprintln!("no secret given (--secret, SWIM_SECRET): using an insecure default");
                Ok("swim-demo insecure default".into())
            }
        }
    }
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
