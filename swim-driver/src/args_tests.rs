use std::process::Command;

use clap::Parser;

use super::*;

#[derive(Parser, Debug)]
struct Cli {
    #[command(flatten)]
    cluster: ClusterArgs,
}

fn parse(args: &[&str]) -> Result<ClusterArgs, clap::Error> {
    let argv = std::iter::once("prog").chain(args.iter().copied());
    Cli::try_parse_from(argv).map(|cli| cli.cluster)
}

/// A file under the temporary directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(tag: &str, contents: &str) -> Self {
        let path = std::env::temp_dir().join(format!("swim-args-{tag}-{}", std::process::id()));
        std::fs::write(&path, contents).unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn flags_make_a_configuration() {
    let args = parse(&[
        "--name",
        "127.0.0.1:2001",
        "--peer",
        "127.0.0.1:2002",
        "--peer",
        "db.local:2003",
        "--secret",
        "new",
        "--secret",
        "old",
        "--metadata",
        "role",
        "cache",
        "--metadata",
        "zone",
        "eu",
        "--advertise",
        "10.0.0.1:2001",
        "--ping-interval",
        "0.5",
        "--suspect-timeout",
        "2",
        "--resolve-interval",
        "0",
    ])
    .unwrap();
    let config = args.config().unwrap();
    assert_eq!(config.protocol.local_name, "127.0.0.1:2001");
    assert_eq!(config.peers, ["127.0.0.1:2002", "db.local:2003"]);
    assert_eq!(config.protocol.keyring.len(), 2);
    assert_eq!(config.protocol.local_metadata.get("zone").unwrap(), "eu");
    assert_eq!(config.advertise, Some("10.0.0.1:2001".parse().unwrap()));
    assert_eq!(config.protocol.ping_interval, Duration::from_millis(500));
    assert_eq!(config.protocol.suspect_timeout, Duration::from_secs(2));
    assert_eq!(config.protocol.ping_timeout, Duration::from_millis(300), "the default");
    assert_eq!(config.resolve_interval, None, "0: only at start");
}

#[test]
fn negative_and_nan_durations_are_refused() {
    for bad in ["--ping-interval=-1", "--suspect-timeout=NaN", "--sync-interval=inf"] {
        let error = parse(&["--name", "n:1", bad]).unwrap_err();
        assert_eq!(error.kind(), clap::error::ErrorKind::ValueValidation, "{bad}");
        assert!(error.to_string().contains(bad.split('=').nth(1).unwrap()), "{error}");
    }
    assert_eq!(parse_seconds("0.25"), Ok(Duration::from_millis(250)));
    assert!(parse_seconds("-0.5").unwrap_err().contains("0 or more"));
    assert!(parse_seconds("soon").unwrap_err().contains("not a number"));
}

#[test]
fn files_hold_the_name_peers_and_secrets() {
    let name = TempFile::new("name", "127.0.0.1:2001\n");
    let peers = TempFile::new("peers", "127.0.0.1:2002\n127.0.0.1:2003, 127.0.0.1:2004\n");
    let secret = TempFile::new("secret", "from file\n");
    let args = parse(&[
        "--name-file",
        name.0.to_str().unwrap(),
        "--peers-file",
        peers.0.to_str().unwrap(),
        "--secret-file",
        secret.0.to_str().unwrap(),
        "--secret",
        "second",
    ])
    .unwrap();
    let config = args.config().unwrap();
    assert_eq!(config.protocol.local_name, "127.0.0.1:2001");
    assert_eq!(config.peers, ["127.0.0.1:2002", "127.0.0.1:2003", "127.0.0.1:2004"]);
    // The file's secret signs: a keyring of it alone verifies what this one signs.
    assert_eq!(config.protocol.keyring.len(), 2);
    assert!(matches!(parse(&["--name", "n:1"]).unwrap().config(), Err(ArgsError::NoSecret)));
    assert!(matches!(parse(&["--secret", "s"]).unwrap().config(), Err(ArgsError::NoName)));
    let missing = parse(&["--name", "n:1", "--secret-file", "/nonexistent/swim"]).unwrap();
    let error = missing.config().unwrap_err();
    assert!(error.to_string().contains("--secret-file"), "{error}");
}

/// Set by [`the_environment_configures_a_node`] for the child process it runs.
const CHILD: &str = "SWIM_ARGS_TEST_CHILD";

/// The environment half of the test below, run in a child process with `SWIM_*` set
/// (the variables cannot be set safely in this multi-threaded test process).
#[test]
fn environment_child() {
    let Ok(expected_peers) = std::env::var(CHILD) else { return };
    let config = parse(&["--secret", "from the flag"]).unwrap().config().unwrap();
    assert_eq!(config.protocol.local_name, "127.0.0.1:2001");
    assert_eq!(config.peers.join(","), expected_peers);
    // The variable's secret (a file), then the flag's.
    assert_eq!(config.protocol.keyring.len(), 2);
    // A flag wins over its variable.
    let flagged = parse(&["--name", "127.0.0.1:9", "--peer", "127.0.0.1:8"]).unwrap();
    assert_eq!(flagged.name.as_deref(), Some("127.0.0.1:9"));
    assert_eq!(flagged.peers, ["127.0.0.1:8"]);
}

#[test]
fn the_environment_configures_a_node() {
    let name = TempFile::new("env-name", "127.0.0.1:2001\n");
    let secret = TempFile::new("env-secret", "s\n");
    let peers = TempFile::new("env-peers", "127.0.0.1:2004\n");
    let status = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "args::tests::environment_child", "--nocapture"])
        .env(CHILD, "127.0.0.1:2002,127.0.0.1:2003,127.0.0.1:2004")
        .env("SWIM_NAME", "ignored:1")
        .env("SWIM_NAME_FILE", &name.0)
        .env("SWIM_PEERS", "127.0.0.1:2002,127.0.0.1:2003")
        .env("SWIM_PEERS_FILE", &peers.0)
        .env("SWIM_SECRET_FILE", &secret.0)
        .status()
        .unwrap();
    assert!(status.success());
}
