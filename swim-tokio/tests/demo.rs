//! swim-demo as a user runs it: refused flags, and its metrics served for Prometheus on
//! 127.0.0.1. Runs the example binary `cargo test` builds beside this test.

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `target/<profile>/examples/swim-demo`, next to this test's `deps/` folder.
fn demo() -> Command {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let path: PathBuf = profile_dir.join("examples").join("swim-demo");
    let mut command = Command::new(path);
    command.env_remove("SWIM_SECRET").env_remove("SWIM_NAME").env_remove("SWIM_PEERS");
    command
}

/// Runs swim-demo to its end; a run still going after 10 s fails the test (a refused flag
/// must end the program at once, not start a node).
fn run(args: &[&str]) -> Output {
    run_within(args, Duration::from_secs(10))
}

/// Runs swim-demo to its end, failing the test if it takes longer than `limit`.
fn run_within(args: &[&str], limit: Duration) -> Output {
    let child = demo().args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut running = Running(Some(child));
    let deadline = Instant::now() + limit;
    while running.child().try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "swim-demo {args:?} is still running");
        std::thread::sleep(Duration::from_millis(20));
    }
    running.0.take().unwrap().wait_with_output().unwrap()
}

#[test]
fn negative_and_nan_intervals_are_refused() {
    for (flag, value) in [("--token-interval", "-1"), ("--status-interval", "NaN")] {
        let arg = format!("{flag}={value}");
        let output = run(&["node", "--name", "127.0.0.1:0", "--secret", "s", &arg]);
        assert!(!output.status.success(), "{arg} accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(flag) && stderr.contains(value), "{stderr}");
    }
}

/// `local` tells its stories as a reader needs them: a labelled table, the metadata change
/// as a change (with its key), a graceful leave, and times in readable units.
#[test]
fn local_tells_its_stories_readably() {
    // Default timers: a crash takes 5 to 20 s of suspicion to be declared.
    let output = run_within(&["local", "--nodes", "3"], Duration::from_secs(90));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let has = |text: &str| stdout.lines().any(|l| l.contains(text));
    assert!(has("each row is what one member (the observer) sees"), "{stdout}");
    assert!(stdout.lines().any(|l| l.trim() == "observer  n1  n2  n3"), "{stdout}");
    assert!(has("node-2 sees node-1's metadata change (token) after"), "{stdout}");
    assert!(has("node-3 left gracefully"), "{stdout}");
    assert!(has("leave:         seen as left (not failed) everywhere after"), "{stdout}");
    // Every time in the summary reads as a number and a unit: `850 ms`, `2.34 s`.
    let summary: Vec<&str> = stdout.lines().skip_while(|l| !l.starts_with("summary")).collect();
    assert_eq!(summary.len(), 5, "{stdout}");
    for line in &summary[1..] {
        let (_, time) = line.rsplit_once(" after ").expect("a time");
        let (number, unit) = time.split_once(' ').expect("a unit");
        assert!(number.parse::<f64>().is_ok() && ["ms", "s"].contains(&unit), "{line}");
    }
}

/// Kills the child when dropped, so a failed assertion leaves nothing running.
struct Running(Option<Child>);

impl Running {
    fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("still owned")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `GET /metrics` from `addr`, retried until it answers (at most 10 s).
fn scrape(addr: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = TcpStream::connect(addr).and_then(|mut stream| {
            stream.set_read_timeout(Some(Duration::from_secs(2)))?;
            stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
            let mut body = String::new();
            stream.read_to_string(&mut body)?;
            Ok(body)
        });
        match answer {
            Ok(body) if body.contains("swim_members") => return body,
            _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            other => panic!("no metrics at {addr}: {other:?}"),
        }
    }
}

#[test]
fn metrics_are_served_for_prometheus() {
    let free = || UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let (node, metrics) = (free(), std::net::TcpListener::bind("127.0.0.1:0").unwrap());
    let metrics_addr = metrics.local_addr().unwrap().to_string();
    drop(metrics);
    let name = node.to_string();
    let child = demo()
        .args(["node", "--name", &name, "--secret", "s", "--token-interval", "0.2"])
        .args(["--metrics-addr", &metrics_addr])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _running = Running(Some(child));
    let body = scrape(&metrics_addr);
    let node_label = format!("node=\"{name}\"");
    let line = |prefix: &str| {
        body.lines().find(|l| l.starts_with(prefix) && l.contains(&node_label)).map(str::to_owned)
    };
    let online = format!("swim_members{{{node_label},status=\"online\"}} 1");
    assert!(body.lines().any(|l| l == online), "{online} not in\n{body}");
    for name in [
        "swim_datagrams_sent_total",
        "swim_datagrams_dropped_total",
        "swim_probes_total",
        "swim_health",
        "swim_pending_gossip",
    ] {
        assert!(line(name).is_some(), "{name} missing from\n{body}");
    }
    assert!(body.contains("# TYPE swim_members gauge"), "{body}");
    assert!(body.contains("# TYPE swim_sent_bytes_total counter"), "{body}");
}
