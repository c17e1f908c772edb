//! swim-sync's directory logic on a temporary directory, with a real 3-member cluster on
//! loopback plus a member and a key whose names would escape the directory.

#[allow(dead_code, unreachable_pub)]
#[path = "../examples/swim-sync/mirror.rs"]
mod mirror;

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mirror::{Mirror, check};
use swim_tokio::{Cluster, ClusterConfig, Handle, Keyring, Metadata, Snapshot, Status};
use tokio::sync::{mpsc, oneshot};

const WAIT: Duration = Duration::from_secs(10);

/// A member on an ephemeral 127.0.0.1 port with timers about 4x the defaults' speed.
fn config(name: &str, peers: &[SocketAddr]) -> ClusterConfig {
    let mut config = ClusterConfig::new(name, Keyring::new("sync test"));
    config.bind_host = Some("127.0.0.1".into());
    config.protocol.peers = peers.to_vec();
    let p = &mut config.protocol;
    p.ping_interval = Duration::from_millis(250);
    p.ping_timeout = Duration::from_millis(100);
    p.ping_req_timeout = Duration::from_millis(150);
    p.suspect_timeout = Duration::from_millis(750);
    p.sync_interval = Duration::from_millis(100);
    p.gossip_interval = Duration::from_millis(50);
    p.rejoin_interval = Duration::from_millis(500);
    config
}

/// A fresh directory under the system's temporary one, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let path = std::env::temp_dir().join(format!("swim-sync-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Polls `condition` every 20 ms for at most `WAIT`.
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !condition() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn read(path: impl AsRef<Path>) -> Option<String> {
    fs::read_to_string(path).ok()
}

fn link(path: impl AsRef<Path>) -> Option<PathBuf> {
    fs::read_link(path).ok()
}

#[test]
fn names_that_would_escape_are_refused() {
    for bad in ["", ".", "..", "../x", "a/b", "a\\b", "x\0y", ".hidden", ".online", "on-update"] {
        assert!(check("member name", bad).is_err(), "{bad:?}");
    }
    assert!(check("metadata key", "on-update").is_ok());
    assert!(check("metadata key", &"k".repeat(256)).is_err());
    for good in ["127.0.0.1:2001", "node-1", "role", "a..b", "with space"] {
        assert!(check("member name", good).is_ok(), "{good:?}");
    }
}

/// `DIR/on-update`, appending `NAME STATUS PATH` to `log` for every change.
fn install_hook(dir: &Path, log: &Path) {
    let hook = dir.join("on-update");
    fs::write(&hook, format!("#!/bin/sh\necho \"$1 $2 $3\" >> '{}'\n", log.display())).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// The key `../up`, `.hidden` and the member `../evil` were refused: only the expected
/// files exist under `root` and `dir`.
fn assert_nothing_escaped(root: &Path, dir: &Path) {
    let names = |path: &Path| {
        let mut names: Vec<String> = (fs::read_dir(path).unwrap())
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    };
    assert_eq!(names(root), ["hook.log", "mirror"]);
    let expected = [
        ".available",
        ".left",
        ".local",
        ".offline",
        ".online",
        ".suspect",
        ".unavailable",
        "a",
        "b",
        "c",
        "on-update",
    ];
    assert_eq!(names(dir), expected);
    assert_eq!(names(&dir.join("b")), ["role"]);
    assert!(!dir.join(".online/..").join("evil").exists());
}

/// a's metadata is its folder's files (`role` written by hand, `rack` from `--metadata`),
/// as b sees; after a change of files and a reload (SIGHUP in the program), the new files.
async fn reload_local_metadata(dir: &Path, b: &Handle, reload: &mpsc::Sender<()>) {
    let a_holds = |expected: &'static [(&'static str, &'static str)]| {
        move |v: &Snapshot| {
            let meta = v.member("a").and_then(|m| m.metadata().cloned()).unwrap_or_default();
            meta.len() == expected.len()
                && expected.iter().all(|(k, value)| meta.get(k).is_some_and(|v| v == *value))
        }
    };
    b.wait_for(a_holds(&[("role", "db"), ("rack", "r1")]), WAIT).await.unwrap();
    fs::write(dir.join("a/zone"), "eu").unwrap();
    fs::remove_file(dir.join("a/role")).unwrap();
    fs::remove_file(dir.join("a/rack")).unwrap();
    reload.send(()).await.unwrap();
    b.wait_for(a_holds(&[("zone", "eu")]), WAIT).await.unwrap();
}

#[tokio::test]
async fn a_three_member_cluster_is_mirrored() {
    let root = TempDir::new("cluster");
    let dir = root.0.join("mirror");
    let log = root.0.join("hook.log");
    fs::create_dir_all(dir.join("a")).unwrap();
    fs::write(dir.join("a/role"), "db").unwrap();
    install_hook(&dir, &log);

    // a mirrors; b has a key that would escape; `../evil` is a member name that would.
    // a's own folder holds its metadata: the file it has, and `--metadata` values it has
    // no file for (a file wins).
    let a = Cluster::bind(config("a", &[])).await.unwrap();
    let given: Metadata = [("role", "ignored: a has a file"), ("rack", "r1")].into_iter().collect();
    let mut mirror = Mirror::new(&dir, "a", given, false).unwrap();
    assert_eq!(read(dir.join("a/rack")).as_deref(), Some("r1"));
    assert_eq!(read(dir.join("a/role")).as_deref(), Some("db"));
    let seed = [a.local_addr()];
    let mut b = config("b", &seed);
    b.protocol.local_metadata.insert("role", "cache");
    b.protocol.local_metadata.insert("../up", "escaped");
    b.protocol.local_metadata.insert(".hidden", "hidden");
    let b = Cluster::bind(b).await.unwrap();
    let c = Cluster::bind(config("c", &seed)).await.unwrap();
    let evil = Cluster::bind(config("../evil", &seed)).await.unwrap();

    let (reload, reloads) = mpsc::channel(1);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let stop = async move {
            let _ = stopped.await;
        };
        let result = mirror::run(&a, &mut mirror, reloads, WAIT, stop).await;
        (a, result)
    });

    eventually("b, c mirrored", || {
        read(dir.join("b/role")).as_deref() == Some("cache")
            && link(dir.join(".online/c")).is_some()
            && link(dir.join(".available/b")).is_some()
    })
    .await;
    assert_eq!(link(dir.join(".local")), Some(PathBuf::from("a")));
    assert_eq!(link(dir.join(".online/b")), Some(PathBuf::from("../b")));
    assert_eq!(read(dir.join(".online/b/role")).as_deref(), Some("cache"));
    assert_eq!(read(dir.join(".local/role")).as_deref(), Some("db"));
    // Nothing escaped: the key `../up`, `.hidden` and the member `../evil` were refused.
    eventually("evil is a member", || {
        b.snapshot().member("../evil").is_some_and(|m| m.status() == Status::Online)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_nothing_escaped(&root.0, &dir);

    reload_local_metadata(&dir, &b, &reload).await;

    change_fail_and_leave(&dir, &log, b, c).await;

    stop.send(()).unwrap();
    let (a, result) = tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
    result.unwrap();
    drop((a, evil));
}

/// A change of b's metadata rewrites its file, c's failure moves its links (and runs the
/// hook), then b leaves: filed as left, its metadata files gone, its folder kept.
async fn change_fail_and_leave(dir: &Path, log: &Path, b: Handle, c: Handle) {
    b.set_metadata("role", "search").unwrap();
    c.abort();
    eventually("c offline, b's role", || {
        link(dir.join(".offline/c")).is_some()
            && link(dir.join(".unavailable/c")).is_some()
            && link(dir.join(".online/c")).is_none()
            && link(dir.join(".available/c")).is_none()
            && read(dir.join("b/role")).as_deref() == Some("search")
    })
    .await;
    let hooked = read(log).unwrap_or_default();
    for line in [
        format!("b online {}", dir.join("b").display()),
        format!("c offline {}", dir.join("c").display()),
    ] {
        assert!(hooked.lines().any(|l| l == line), "{line:?} not in {hooked}");
    }
    assert!(!hooked.contains("evil"));

    b.leave().await.unwrap();
    eventually("b left", || {
        link(dir.join(".left/b")).is_some()
            && link(dir.join(".unavailable/b")).is_some()
            && link(dir.join(".online/b")).is_none()
            && !dir.join("b/role").exists()
    })
    .await;
    assert!(dir.join("b").is_dir());
}

#[test]
fn a_trailing_newline_is_kept_or_stripped() {
    let root = TempDir::new("newline");
    fs::create_dir_all(root.0.join("kept/n")).unwrap();
    fs::create_dir_all(root.0.join("stripped/n")).unwrap();
    for folder in ["kept/n", "stripped/n"] {
        fs::write(root.0.join(folder).join("role"), "cache\n").unwrap();
        fs::write(root.0.join(folder).join("raw"), "a\nb").unwrap();
    }
    let mut kept = Mirror::new(&root.0.join("kept"), "n", Metadata::new(), false).unwrap();
    let mut stripped = Mirror::new(&root.0.join("stripped"), "n", Metadata::new(), true).unwrap();
    let kept = kept.read_local().unwrap();
    let stripped = stripped.read_local().unwrap();
    assert_eq!(kept["role"], "cache\n");
    assert_eq!(stripped["role"], "cache");
    assert_eq!(stripped["raw"], "a\nb", "only a trailing newline goes");
}
