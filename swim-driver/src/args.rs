//! The node's command line and environment, as the Python swim-protocol package's programs
//! take them, for any `clap` parser: `#[command(flatten)] cluster: ClusterArgs`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use swim_core::Keyring;

use crate::config::ClusterConfig;

/// Options to configure a node from flags and `SWIM_*` environment variables (a flag wins
/// over its variable). Build the configuration with [`ClusterArgs::config`].
///
/// - the name: `--name` (`SWIM_NAME`) or a file holding it, `--name-file`
///   (`SWIM_NAME_FILE`, which wins over `SWIM_NAME`, as in the Python package);
/// - peers: `--peer` (repeatable; `SWIM_PEERS` is comma separated) and `--peers-file`
///   (`SWIM_PEERS_FILE`: names separated by commas, spaces or lines);
/// - secrets: `--secret-file` (`SWIM_SECRET_FILE`) and `--secret` (`SWIM_SECRET`), each
///   repeatable; the keyring holds the files' secrets, then the values, and the first
///   signs, so key rotation is giving two;
/// - `--metadata KEY VALUE` (repeatable), `--advertise`, `--udp-bind`, `--udp-bind-port`,
///   `--discovery`, `--resolve-interval`, and the protocol's timing in seconds.
///
/// Durations are seconds, fractions allowed; a negative, infinite or NaN value is refused
/// with a message rather than read as zero.
#[derive(clap::Args, Clone, Debug, Default)]
#[non_exhaustive]
pub struct ClusterArgs {
    /// This member's unique name, HOST:PORT: by default also the address others send to
    /// and the bind address (port 0: any free port, the name then holds the port).
    #[arg(long, env = "SWIM_NAME", value_name = "HOST:PORT")]
    pub name: Option<String>,
    /// A file holding this member's name (trailing newline stripped).
    #[arg(long = "name-file", env = "SWIM_NAME_FILE", value_name = "PATH")]
    pub name_file: Option<PathBuf>,
    /// A member to join through, HOST:PORT (repeatable; SWIM_PEERS is comma separated).
    #[arg(long = "peer", env = "SWIM_PEERS", value_delimiter = ',', value_name = "HOST:PORT")]
    pub peers: Vec<String>,
    /// A file of peers, HOST:PORT separated by commas, spaces or lines.
    #[arg(long = "peers-file", env = "SWIM_PEERS_FILE", value_name = "PATH")]
    pub peers_file: Option<PathBuf>,
    /// A shared secret signing every datagram (repeatable: the first signs, all verify).
    #[arg(long = "secret", env = "SWIM_SECRET", hide_env_values = true, value_name = "SECRET")]
    pub secrets: Vec<String>,
    /// A file holding a shared secret (repeatable; trailing newline stripped); before any
    /// `--secret` in the keyring.
    #[arg(long = "secret-file", env = "SWIM_SECRET_FILE", value_name = "PATH")]
    pub secret_files: Vec<PathBuf>,
    /// A local metadata value (repeatable).
    #[arg(long, num_args = 2, value_names = ["KEY", "VALUE"])]
    pub metadata: Vec<String>,
    /// The address other members send to, when it is not --name's (NAT, containers).
    #[arg(long, env = "SWIM_ADVERTISE", value_name = "IP:PORT")]
    pub advertise: Option<SocketAddr>,
    /// Host or IP to bind, when it differs from --name's.
    #[arg(long = "udp-bind", env = "SWIM_UDP_BIND", value_name = "HOST")]
    pub bind_host: Option<String>,
    /// Port to bind, when it differs from --name's.
    #[arg(long = "udp-bind-port", env = "SWIM_UDP_BIND_PORT", value_name = "PORT")]
    pub bind_port: Option<u16>,
    /// Discover members through a service name, HOST:PORT, resolving to every member's
    /// address (the Python package's discovery=True); --name may then be any unique name.
    #[arg(long, env = "SWIM_DISCOVERY", value_name = "HOST:PORT")]
    pub discovery: Option<String>,
    /// Resolve peer and discovery names again every SECONDS (0: only at start) [default: 60].
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub resolve_interval: Option<Duration>,
    /// Time between probes [default: 1].
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub ping_interval: Option<Duration>,
    /// Time to wait for a direct ack [default: 0.3].
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub ping_timeout: Option<Duration>,
    /// Members asked to probe indirectly [default: 1].
    #[arg(long, value_name = "COUNT")]
    pub ping_req_count: Option<usize>,
    /// Time to wait for an indirect ack [default: 0.9].
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub ping_req_timeout: Option<Duration>,
    /// Time a member stays suspect before it is offline (Lifeguard may stretch it)
    /// [default: 5].
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub suspect_timeout: Option<Duration>,
    /// Time between anti-entropy exchanges [default: 0.5].
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub sync_interval: Option<Duration>,
    /// Time between gossip rounds [default: 0.2].
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub gossip_interval: Option<Duration>,
    /// Largest IP packet, headers included [default: 1500].
    #[arg(long, value_name = "BYTES")]
    pub mtu_size: Option<usize>,
}

/// Why the arguments do not make a configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArgsError {
    /// Neither `--name` nor `--name-file` (nor their variables) was given.
    #[error("no name: give --name HOST:PORT or --name-file (SWIM_NAME, SWIM_NAME_FILE)")]
    NoName,
    /// No secret was given.
    #[error("no secret: give --secret or --secret-file (SWIM_SECRET, SWIM_SECRET_FILE)")]
    NoSecret,
    /// A file named by an option could not be read.
    #[error("cannot read {option} file {path}: {source}")]
    ReadFile {
        /// The option, e.g. `--secret-file`.
        option: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Parses seconds (`2`, `0.25`) as a duration, refusing negative, infinite and NaN values:
/// a `value_parser` for a user's own duration flags.
pub fn parse_seconds(value: &str) -> Result<Duration, String> {
    let seconds: f64 = value.trim().parse().map_err(|_| format!("`{value}` is not a number"))?;
    if seconds.is_nan() || seconds < 0.0 {
        return Err(format!("`{value}` is not a number of seconds of 0 or more"));
    }
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("`{value}` seconds is too long"))
}

impl ClusterArgs {
    /// The configuration these options describe: files read, defaults for what is not
    /// given. Whether the values are valid is checked when the node binds.
    pub fn config(&self) -> Result<ClusterConfig, ArgsError> {
        let name = match (&self.name_file, &self.name) {
            (Some(path), _) => read_trimmed("--name-file", path)?,
            (None, Some(name)) => name.clone(),
            (None, None) => return Err(ArgsError::NoName),
        };
        let mut secrets = Vec::new();
        for path in &self.secret_files {
            secrets.push(read_trimmed("--secret-file", path)?);
        }
        secrets.extend(self.secrets.iter().cloned());
        if secrets.is_empty() {
            return Err(ArgsError::NoSecret);
        }
        let mut config = ClusterConfig::new(name, Keyring::from_secrets(&secrets));
        config.peers.clone_from(&self.peers);
        if let Some(path) = &self.peers_file {
            let text = read_trimmed("--peers-file", path)?;
            let names = text.split(|c: char| c == ',' || c.is_whitespace());
            config.peers.extend(names.filter(|n| !n.is_empty()).map(str::to_owned));
        }
        for pair in self.metadata.chunks_exact(2) {
            config.protocol.local_metadata.insert(pair[0].clone(), pair[1].clone());
        }
        config.advertise = self.advertise;
        config.bind_host.clone_from(&self.bind_host);
        config.bind_port = self.bind_port;
        config.discovery.clone_from(&self.discovery);
        if let Some(interval) = self.resolve_interval {
            config.resolve_interval = Some(interval).filter(|i| !i.is_zero());
        }
        self.override_timing(&mut config.protocol);
        Ok(config)
    }

    fn override_timing(&self, protocol: &mut swim_core::Config) {
        let timers = [
            (self.ping_interval, &mut protocol.ping_interval),
            (self.ping_timeout, &mut protocol.ping_timeout),
            (self.ping_req_timeout, &mut protocol.ping_req_timeout),
            (self.suspect_timeout, &mut protocol.suspect_timeout),
            (self.sync_interval, &mut protocol.sync_interval),
            (self.gossip_interval, &mut protocol.gossip_interval),
        ];
        for (given, field) in timers {
            if let Some(given) = given {
                *field = given;
            }
        }
        if let Some(count) = self.ping_req_count {
            protocol.ping_req_count = count;
        }
        if let Some(mtu) = self.mtu_size {
            protocol.mtu_size = mtu;
        }
    }
}

/// The file's contents without a trailing newline (`echo` adds one).
fn read_trimmed(option: &'static str, path: &Path) -> Result<String, ArgsError> {
    let text = std::fs::read_to_string(path).map_err(|source| ArgsError::ReadFile {
        option,
        path: path.to_owned(),
        source,
    })?;
    Ok(text.trim_end_matches(['\r', '\n']).to_owned())
}

#[cfg(test)]
#[path = "args_tests.rs"]
mod tests;
