//! Both drivers behind one blocking interface, so each behaviour is written once and run
//! against each (`suite!`). swim-tokio runs on one shared multi-thread runtime; its async
//! calls are waited for with `block_on` from the test thread.

#![allow(dead_code, unreachable_pub)]

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use swim_std::{
    Bytes, ClusterConfig, ClusterMetadata, Error, Event, Keyring, Lagged, Member, Metadata,
    Snapshot, Status, StatusDump, StatusFilter, WatchFilter, Watched,
};

/// The longest any test waits for the cluster.
pub const WAIT: Duration = Duration::from_secs(10);

/// A stream of events from either driver, read with a timeout (zero: only what is queued).
pub struct Stream<T>(Box<dyn FnMut(Duration) -> Option<Result<T, Lagged>> + Send>);

impl<T> Stream<T> {
    pub fn recv_timeout(&mut self, timeout: Duration) -> Option<Result<T, Lagged>> {
        (self.0)(timeout)
    }

    pub fn try_recv(&mut self) -> Option<Result<T, Lagged>> {
        (self.0)(Duration::ZERO)
    }

    /// Every item queued now.
    pub fn drain(&mut self) -> Vec<Result<T, Lagged>> {
        std::iter::from_fn(|| self.try_recv()).collect()
    }
}

/// What both drivers' handles offer, with the same names and types.
pub trait Driver: Clone + Send + 'static {
    fn bind(config: ClusterConfig) -> Result<Self, Error>;
    fn local_addr(&self) -> SocketAddr;
    fn join(&self, seeds: Vec<SocketAddr>) -> Result<(), Error>;
    fn leave(&self) -> Result<(), Error>;
    fn abort(&self);
    fn set_metadata(&self, key: &str, value: &str) -> Result<(), Error>;
    fn remove_metadata(&self, key: &str) -> Result<Option<Bytes>, Error>;
    fn replace_metadata(&self, metadata: Metadata) -> Result<(), Error>;
    fn set_keyring(&self, keyring: Keyring) -> Result<(), Error>;
    fn find(&self, count: usize, filter: StatusFilter, exclude: &[&str]) -> Vec<Member>;
    fn local_member(&self) -> Member;
    fn non_local_members(&self) -> Vec<Member>;
    fn member(&self, name: &str) -> Option<Member>;
    fn snapshot(&self) -> Snapshot;
    fn cluster_metadata(&self) -> ClusterMetadata;
    fn status_dump(&self) -> StatusDump;
    fn is_ready(&self) -> bool;
    fn wait_ready(&self, timeout: Duration) -> Result<(), Error>;
    fn wait_for(
        &self,
        predicate: impl FnMut(&Snapshot) -> bool + Send,
        timeout: Duration,
    ) -> Result<Snapshot, Error>;
    fn subscribe(&self) -> Stream<Event>;
    fn watch(&self, filter: WatchFilter) -> Stream<Watched>;
}

impl Driver for swim_std::Handle {
    fn bind(config: ClusterConfig) -> Result<Self, Error> {
        swim_std::Cluster::bind(config)
    }
    fn local_addr(&self) -> SocketAddr {
        self.local_addr()
    }
    fn join(&self, seeds: Vec<SocketAddr>) -> Result<(), Error> {
        self.join(seeds)
    }
    fn leave(&self) -> Result<(), Error> {
        self.leave()
    }
    fn abort(&self) {
        self.abort()
    }
    fn set_metadata(&self, key: &str, value: &str) -> Result<(), Error> {
        self.set_metadata(key, value.to_owned())
    }
    fn remove_metadata(&self, key: &str) -> Result<Option<Bytes>, Error> {
        self.remove_metadata(key)
    }
    fn replace_metadata(&self, metadata: Metadata) -> Result<(), Error> {
        self.replace_metadata(metadata)
    }
    fn set_keyring(&self, keyring: Keyring) -> Result<(), Error> {
        self.set_keyring(keyring)
    }
    fn find(&self, count: usize, filter: StatusFilter, exclude: &[&str]) -> Vec<Member> {
        self.find(count, filter, exclude)
    }
    fn local_member(&self) -> Member {
        self.local_member()
    }
    fn non_local_members(&self) -> Vec<Member> {
        self.non_local_members()
    }
    fn member(&self, name: &str) -> Option<Member> {
        self.member(name)
    }
    fn snapshot(&self) -> Snapshot {
        self.snapshot()
    }
    fn cluster_metadata(&self) -> ClusterMetadata {
        self.cluster_metadata()
    }
    fn status_dump(&self) -> StatusDump {
        self.status_dump()
    }
    fn is_ready(&self) -> bool {
        self.is_ready()
    }
    fn wait_ready(&self, timeout: Duration) -> Result<(), Error> {
        self.wait_ready(timeout)
    }
    fn wait_for(
        &self,
        predicate: impl FnMut(&Snapshot) -> bool + Send,
        timeout: Duration,
    ) -> Result<Snapshot, Error> {
        self.wait_for(predicate, timeout)
    }
    fn subscribe(&self) -> Stream<Event> {
        let events = self.subscribe();
        Stream(Box::new(move |timeout| events.recv_timeout(timeout)))
    }
    fn watch(&self, filter: WatchFilter) -> Stream<Watched> {
        let events = self.watch(filter);
        Stream(Box::new(move |timeout| events.recv_timeout(timeout)))
    }
}

/// The runtime every swim-tokio node of the suite runs on.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
    })
}

/// A swim-tokio handle, driven from blocking test code.
#[derive(Clone)]
pub struct Tokio(pub swim_tokio::Handle);

impl Driver for Tokio {
    fn bind(config: ClusterConfig) -> Result<Self, Error> {
        runtime().block_on(swim_tokio::Cluster::bind(config)).map(Tokio)
    }
    fn local_addr(&self) -> SocketAddr {
        self.0.local_addr()
    }
    fn join(&self, seeds: Vec<SocketAddr>) -> Result<(), Error> {
        self.0.join(seeds)
    }
    fn leave(&self) -> Result<(), Error> {
        runtime().block_on(self.0.leave())
    }
    fn abort(&self) {
        self.0.abort()
    }
    fn set_metadata(&self, key: &str, value: &str) -> Result<(), Error> {
        self.0.set_metadata(key, value.to_owned())
    }
    fn remove_metadata(&self, key: &str) -> Result<Option<Bytes>, Error> {
        self.0.remove_metadata(key)
    }
    fn replace_metadata(&self, metadata: Metadata) -> Result<(), Error> {
        self.0.replace_metadata(metadata)
    }
    fn set_keyring(&self, keyring: Keyring) -> Result<(), Error> {
        self.0.set_keyring(keyring)
    }
    fn find(&self, count: usize, filter: StatusFilter, exclude: &[&str]) -> Vec<Member> {
        self.0.find(count, filter, exclude)
    }
    fn local_member(&self) -> Member {
        self.0.local_member()
    }
    fn non_local_members(&self) -> Vec<Member> {
        self.0.non_local_members()
    }
    fn member(&self, name: &str) -> Option<Member> {
        self.0.member(name)
    }
    fn snapshot(&self) -> Snapshot {
        self.0.snapshot()
    }
    fn cluster_metadata(&self) -> ClusterMetadata {
        self.0.cluster_metadata()
    }
    fn status_dump(&self) -> StatusDump {
        self.0.status_dump()
    }
    fn is_ready(&self) -> bool {
        self.0.is_ready()
    }
    fn wait_ready(&self, timeout: Duration) -> Result<(), Error> {
        runtime().block_on(self.0.wait_ready(timeout))
    }
    fn wait_for(
        &self,
        predicate: impl FnMut(&Snapshot) -> bool + Send,
        timeout: Duration,
    ) -> Result<Snapshot, Error> {
        runtime().block_on(self.0.wait_for(predicate, timeout))
    }
    fn subscribe(&self) -> Stream<Event> {
        tokio_stream(self.0.subscribe())
    }
    fn watch(&self, filter: WatchFilter) -> Stream<Watched> {
        tokio_stream(self.0.watch(filter))
    }
}

fn tokio_stream<T: Send + 'static>(mut events: swim_tokio::Events<T>) -> Stream<T> {
    Stream(Box::new(move |timeout| {
        if timeout.is_zero() {
            return events.try_recv();
        }
        runtime().block_on(async { tokio::time::timeout(timeout, events.recv()).await.ok()? })
    }))
}

/// Runs each named behaviour, a function generic over [`Driver`], against both drivers.
macro_rules! suite {
    ($($behaviour:ident),* $(,)?) => {
        mod std_driver {
            $(#[test] fn $behaviour() { super::$behaviour::<swim_std::Handle>() })*
        }
        mod tokio_driver {
            $(#[test] fn $behaviour() { super::$behaviour::<crate::common::Tokio>() })*
        }
    };
}

/// A member named `name` on an ephemeral 127.0.0.1 port, with timers about 4x the defaults'
/// speed so failures are detected in about a second.
pub fn config(name: &str, secret: &str, peers: &[SocketAddr]) -> ClusterConfig {
    let mut config = ClusterConfig::new(name, Keyring::new(secret));
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

/// Whether every one of `names` is online in `view`.
pub fn online(names: &[&str]) -> impl FnMut(&Snapshot) -> bool + Send + use<> {
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    move |v| names.iter().all(|n| v.member(n).is_some_and(|m| m.status() == Status::Online))
}

/// The status of `name` in `view`, `None` if unknown.
pub fn status(view: &Snapshot, name: &str) -> Option<Status> {
    view.member(name).map(Member::status)
}

/// Waits until `predicate` holds at `node`, failing the test with its view if it does not.
pub fn wait<D: Driver>(node: &D, predicate: impl FnMut(&Snapshot) -> bool + Send) -> Snapshot {
    match node.wait_for(predicate, WAIT) {
        Ok(view) => view,
        Err(error) => panic!("{error}: {:?}", node.snapshot()),
    }
}

/// Members named `names`, joined through the first, each seeing all online; `tag` keeps
/// the secret apart from other tests'.
pub fn cluster<D: Driver>(tag: &str, names: &[&str]) -> Vec<D> {
    let first = D::bind(config(names[0], tag, &[])).unwrap();
    let seed = [first.local_addr()];
    let mut nodes = vec![first];
    for name in &names[1..] {
        nodes.push(D::bind(config(name, tag, &seed)).unwrap());
    }
    for node in &nodes {
        wait(node, online(names));
    }
    nodes
}

/// Log lines of every test in this process (a global subscriber, installed once).
pub fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let writer = Arc::clone(&logs);
        tracing_subscriber::fmt()
            .with_env_filter("info")
            .with_ansi(false)
            .with_writer(move || Capture(Arc::clone(&writer)))
            .init();
        logs
    })
    .clone()
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
