//! `swim-sim`: runs one scenario of the deterministic simulator and prints what it measured;
//! with `--json` the last line is one JSON object (keys in `docs/BENCHMARKS.md`).

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::time::Instant as WallClock;

use clap::Parser;
use swim_tests::Resume;
use swim_tests::foca_impl::{Foca, FocaLan, FocaNewLan};
use swim_tests::scenario::{self, Options, Outcome, Scenario};
use swim_tests::swim_impl::Swim;
use swim_tests::sys;

/// About the most metadata a member's record carries in a datagram of the default MTU.
const DATAGRAM_METADATA: usize = 1300;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Impl {
    /// swim-core.
    Swim,
    /// foca 2 with swim's timing, anti-entropy period mapped onto foca's announce.
    Foca,
    /// foca 2 with swim's timing but `new_lan`'s own announce periods (30 s, 65 s).
    FocaLan,
    /// foca 2 as its users run it: `Config::new_lan(N)` untouched.
    FocaNewlan,
}

/// What a member resuming from a stall handles first (its driver's order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum ResumeOrder {
    /// Its overdue timer, then the datagrams waiting in its socket.
    TimersFirst,
    /// Timer and datagrams in the order they came due.
    AsQueued,
    /// Every waiting datagram, then its timer.
    SocketFirst,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum OnOff {
    /// On.
    On,
    /// Off.
    Off,
}

/// Deterministic SWIM cluster simulator.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// The scenario to run.
    #[arg(value_enum)]
    scenario: Scenario,
    /// Cluster size.
    #[arg(long, default_value_t = 100)]
    nodes: usize,
    /// Master seed: the same seed gives the same trace.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Datagram loss probability (0..1); default 0.05 for `loss`, 0.01 for `stress`, 0
    /// otherwise.
    #[arg(long)]
    loss: Option<f64>,
    /// Print one JSON object as the last line.
    #[arg(long)]
    json: bool,
    /// Implementation to drive.
    #[arg(long = "impl", value_enum, default_value_t = Impl::Swim)]
    implementation: Impl,
    /// Draw the dissemination curve (fraction informed over time) to this SVG file.
    #[arg(long)]
    svg: Option<PathBuf>,
    /// Length of the lossy phase of `loss` and of the slow phase of `stress`, virtual seconds.
    #[arg(long, default_value_t = 600)]
    duration: u64,
    /// Lifeguard on or off (swim only).
    #[arg(long, value_enum, default_value_t = OnOff::On)]
    lifeguard: OnOff,
    /// Members asked to probe indirectly when a direct ping times out (default: swim-core's
    /// `ping_req_count`).
    #[arg(long)]
    ping_req_count: Option<usize>,
    /// Slow members in `stress`.
    #[arg(long, default_value_t = 4)]
    slow: usize,
    /// How late a slow member handles each datagram, seconds (beyond the probe timeout).
    #[arg(long, default_value_t = 6.0)]
    slow_delay: f64,
    /// Stalls in `stall`, one every `--stall-every` seconds.
    #[arg(long, default_value_t = 100)]
    stalls: usize,
    /// How long a member stays paused in `stall`, seconds.
    #[arg(long, default_value_t = 3.0)]
    stall_duration: f64,
    /// Seconds from one stall's start to the next's in `stall` (at least the stall's
    /// length, so that no two overlap).
    #[arg(long, default_value_t = 6.0)]
    stall_every: f64,
    /// What a member resuming from a stall handles first (the drivers read their socket
    /// first).
    #[arg(long, value_enum, default_value_t = ResumeOrder::SocketFirst)]
    resume: ResumeOrder,
    /// Longest virtual time to wait for the join and for the goal, seconds.
    #[arg(long, default_value_t = 300)]
    limit: u64,
    /// Engine threads (default: one per core); the trace is the same for any value.
    #[arg(long)]
    threads: Option<usize>,
    /// Stream messages on or off (swim only): metadata past a datagram, the stream ping,
    /// push-pull.
    #[arg(long, value_enum, default_value_t = OnOff::Off)]
    streams: OnOff,
    /// With `--streams on`: seconds between push-pull exchanges (scaled with the cluster
    /// size as memberlist does), 0 for none.
    #[arg(long, default_value_t = 0.0)]
    push_pull: f64,
    /// Bytes of metadata every member starts with; `join` then also waits until every
    /// member holds every other's (`metadata_all_s`). Past about 1,300 bytes it needs
    /// `--streams on`.
    #[arg(long, default_value_t = 0)]
    metadata: usize,
    /// Bytes of the value `update` publishes (default: two bytes).
    #[arg(long, default_value_t = 0)]
    update_bytes: usize,
    /// Bytes per second of a member's uplink for stream messages.
    #[arg(long, default_value_t = 125_000_000)]
    stream_bandwidth: u64,
}

fn main() {
    with_huge_pages();
    let args = Args::parse();
    let mut opts = Options::new(args.nodes, args.seed);
    opts.loss = match (args.loss, args.scenario) {
        (Some(loss), _) => loss,
        (None, Scenario::Loss) => 0.05,
        (None, Scenario::Stress) => 0.01,
        (None, _) => 0.0,
    };
    opts.loss_duration = std::time::Duration::from_secs(args.duration);
    opts.timing.lifeguard = args.lifeguard == OnOff::On;
    if let Some(count) = args.ping_req_count {
        opts.timing.ping_req_count = count;
    }
    opts.slow = args.slow;
    opts.slow_delay = std::time::Duration::from_secs_f64(args.slow_delay.max(0.0));
    opts.stalls = args.stalls;
    opts.stall_duration = std::time::Duration::from_secs_f64(args.stall_duration.max(0.0));
    let every = args.stall_every.max(args.stall_duration).max(0.0);
    opts.stall_every = std::time::Duration::from_secs_f64(every);
    opts.stall_resume = match args.resume {
        ResumeOrder::TimersFirst => Resume::TimersFirst,
        ResumeOrder::AsQueued => Resume::AsQueued,
        ResumeOrder::SocketFirst => Resume::SocketFirst,
    };
    opts.join_limit = std::time::Duration::from_secs(args.limit);
    opts.goal_limit = std::time::Duration::from_secs(args.limit);
    opts.curve = args.svg.is_some();
    opts.threads = args.threads;
    opts.timing.streams = args.streams == OnOff::On;
    opts.timing.push_pull_interval =
        (args.push_pull > 0.0).then(|| std::time::Duration::from_secs_f64(args.push_pull));
    opts.timing.metadata_bytes = args.metadata;
    opts.update_bytes = args.update_bytes;
    opts.net.stream_bandwidth = args.stream_bandwidth;
    let largest = args.metadata.max(args.update_bytes);
    if largest > DATAGRAM_METADATA && !opts.timing.streams {
        eprintln!("metadata of {largest} bytes does not fit a datagram: add --streams on");
        std::process::exit(2);
    }
    let wall = WallClock::now();
    let mut outcome = match args.implementation {
        Impl::Swim => scenario::run::<Swim>(args.scenario, &opts),
        Impl::Foca => scenario::run::<Foca>(args.scenario, &opts),
        Impl::FocaLan => scenario::run::<FocaLan>(args.scenario, &opts),
        Impl::FocaNewlan => scenario::run::<FocaNewLan>(args.scenario, &opts),
    };
    outcome.wall_s = wall.elapsed().as_secs_f64();
    outcome.cpu_s = sys::cpu_s();
    outcome.peak_rss_mib = sys::peak_rss_mib();
    if let Some(path) = &args.svg
        && let Err(e) = swim_tests::plot::dissemination(path, &outcome)
    {
        eprintln!("could not draw {}: {e}", path.display());
    }
    if !args.json {
        print_summary(&outcome);
    }
    if args.json {
        println!("{}", serde_json::to_string(&outcome).expect("an outcome always serialises"));
    }
}

/// Runs this program again with glibc's malloc asking for transparent huge pages, unless
/// `GLIBC_TUNABLES` is already set (set it, even empty, to opt out).
///
/// Every event wakes a different node, whose tables (about 200 KiB each at N = 1000) are
/// cold: with 4 KiB pages nearly every first touch also misses the TLB. Huge pages took the
/// steady state at N = 1000 from 4.9 to 4.3 CPU seconds. The machine's default
/// (`/sys/kernel/mm/transparent_hugepage/enabled`: `madvise`) gives them only to memory
/// advised so, which glibc does with this tunable; there is no safe way to advise from
/// here. Memory layout never changes a trace.
fn with_huge_pages() {
    if !cfg!(all(target_os = "linux", target_env = "gnu"))
        || std::env::var_os("GLIBC_TUNABLES").is_some()
    {
        return;
    }
    let Ok(exe) = std::env::current_exe() else { return };
    let mut args = std::env::args_os();
    let mut command = std::process::Command::new(exe);
    if let Some(arg0) = args.next() {
        command.arg0(arg0);
    }
    // `exec` returns only if it failed: then run as we are.
    let _ = command.args(args).env("GLIBC_TUNABLES", "glibc.malloc.hugetlb=1").exec();
}

fn print_summary(o: &Outcome) {
    let value = serde_json::to_value(o).expect("an outcome always serialises");
    println!(
        "{} with {} nodes ({}), seed {}, loss {}: {}",
        o.scenario,
        o.nodes,
        o.implementation,
        o.seed,
        o.loss,
        if o.converged { "converged" } else { "NOT converged" }
    );
    if let Some(map) = value.as_object() {
        for (key, v) in map {
            if !matches!(
                key.as_str(),
                "scenario" | "impl" | "nodes" | "seed" | "loss" | "converged"
            ) {
                println!("  {key:<20} {v}");
            }
        }
    }
    let events_per_s = o.sim_events as f64 / o.wall_s.max(1e-9);
    println!("  {:<20} {:.0}", "sim_events_per_s", events_per_s);
    let phase_per_s = o.phase_sim_events as f64 / o.phase_wall_s.max(1e-9);
    println!("  {:<20} {:.0}", "phase_events_per_s", phase_per_s);
}
