//! Both drivers behind one blocking interface, so each behaviour is written once and run
//! against each (`suite!`). swim-tokio runs on one shared multi-thread runtime; its async
//! calls are waited for with `block_on` from the test thread.

#![allow(dead_code, unreachable_pub)]

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use std::ops::Deref;

use swim_driver::{Control, Io};
use swim_std::{
    ClusterConfig, Error, Event, Keyring, Lagged, Member, Snapshot, Status, WatchFilter, Watched,
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

/// What both drivers' handles offer. The shared operations come from [`Control`] (a handle
/// dereferences to it), so only what is blocking in one driver and async in the other is
/// listed here.
pub trait Driver: Clone + Send + Deref<Target = Control<<Self as Driver>::Io>> + 'static {
    type Io: Io;
    fn bind(config: ClusterConfig) -> Result<Self, Error>;
    fn local_addr(&self) -> SocketAddr;
    fn leave(&self) -> Result<(), Error>;
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
    type Io = swim_std::StdIo;
    fn bind(config: ClusterConfig) -> Result<Self, Error> {
        swim_std::Cluster::bind(config)
    }
    fn local_addr(&self) -> SocketAddr {
        swim_std::Handle::local_addr(self)
    }
    fn leave(&self) -> Result<(), Error> {
        swim_std::Handle::leave(self)
    }
    fn wait_ready(&self, timeout: Duration) -> Result<(), Error> {
        swim_std::Handle::wait_ready(self, timeout)
    }
    fn wait_for(
        &self,
        predicate: impl FnMut(&Snapshot) -> bool + Send,
        timeout: Duration,
    ) -> Result<Snapshot, Error> {
        swim_std::Handle::wait_for(self, predicate, timeout)
    }
    fn subscribe(&self) -> Stream<Event> {
        let events = swim_std::Handle::subscribe(self);
        Stream(Box::new(move |timeout| events.recv_timeout(timeout)))
    }
    fn watch(&self, filter: WatchFilter) -> Stream<Watched> {
        let events = swim_std::Handle::watch(self, filter);
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

impl Deref for Tokio {
    type Target = Control<swim_tokio::TokioIo>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Driver for Tokio {
    type Io = swim_tokio::TokioIo;
    fn bind(config: ClusterConfig) -> Result<Self, Error> {
        runtime().block_on(swim_tokio::Cluster::bind(config)).map(Tokio)
    }
    fn local_addr(&self) -> SocketAddr {
        self.0.local_addr()
    }
    fn leave(&self) -> Result<(), Error> {
        runtime().block_on(self.0.leave())
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
