//! `swim-cpu-floor`: what a member process costs in steady state against the floor of any
//! program that sends and receives the same datagrams at the same rate.
//!
//! It starts `--nodes` swim members (`swim-member`, std driver by default, default timing)
//! and as many bare UDP processes on loopback at the same time, waits `--warmup` seconds
//! for the members to settle, then reads every process's CPU time (all threads, from the
//! scheduler's nanosecond counts) over `--duration` seconds. A bare process does what a
//! settled member's socket does and nothing else: every second, at a random phase, it
//! sends a 51-byte datagram (a swim ping's size) to the next process in turn and answers
//! every such datagram with one of the same size, sleeping in `recv_from` with a read
//! timeout until its next send, as the std driver does. Its CPU is the kernel's price of
//! those wake-ups and system calls on this machine, which no protocol work can go below.

use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use serde::Serialize;
use swim_tests::sys;

/// A settled member sends a ping and an ack a second, of this many bytes each.
const DATAGRAM: usize = 51;

/// Steady-state CPU per member process against the bare UDP floor.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    #[command(subcommand)]
    bare: Option<Bare>,
    /// Member processes (and as many bare ones).
    #[arg(long, default_value_t = 8)]
    nodes: u16,
    /// Seconds before the measurement starts (the join, first gossip).
    #[arg(long, default_value_t = 20)]
    warmup: u64,
    /// Seconds measured.
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// First loopback port; members take `port..port+N`, bare processes the next N.
    #[arg(long, default_value_t = 21000)]
    port: u16,
    /// The member's driver (`swim-member --driver`).
    #[arg(long, default_value = "std")]
    driver: String,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand, Debug)]
enum Bare {
    /// One bare UDP process (started by this program).
    Bare {
        /// Its port on 127.0.0.1.
        #[arg(long)]
        port: u16,
        /// The first port of the ring it sends to.
        #[arg(long)]
        first: u16,
        /// Processes in the ring.
        #[arg(long)]
        nodes: u16,
        /// Seconds to run.
        #[arg(long)]
        seconds: u64,
    },
}

#[derive(Serialize, Debug)]
struct Measured {
    nodes: u16,
    duration_s: u64,
    driver: String,
    /// Mean CPU seconds per minute of a swim member process.
    swim_cpu_s_per_member_min: f64,
    /// Mean CPU seconds per minute of a bare process.
    bare_cpu_s_per_member_min: f64,
    /// Swim over bare.
    ratio: f64,
}

fn main() {
    let args = Args::parse();
    if let Some(Bare::Bare { port, first, nodes, seconds }) = args.bare {
        bare(port, first, nodes, Duration::from_secs(seconds));
        return;
    }
    let n = args.nodes.max(2);
    if u32::from(args.port) + 2 * u32::from(n) > 65_536 {
        eprintln!("--port {} leaves no room for {} processes", args.port, 2 * n);
        std::process::exit(2);
    }
    let total = args.warmup + args.duration + 5;
    let me = std::env::current_exe().expect("the program's own path");
    let member = me.with_file_name("swim-member");
    let first_member = format!("127.0.0.1:{}", args.port);
    let mut members: Vec<Child> = (0..n)
        .map(|i| {
            let mut command = Command::new(&member);
            command.args(["--name", &format!("127.0.0.1:{}", args.port + i)]);
            command.args(["--seed", &(u64::from(i) + 1).to_string(), "--driver", &args.driver]);
            if i > 0 {
                command.args(["--peer", &first_member]);
            }
            // Its standard input stays open until the member is stopped.
            command.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::null());
            command.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", member.display()))
        })
        .collect();
    let first = args.port + n;
    let bares: Vec<Child> = (0..n)
        .map(|i| {
            Command::new(&me)
                .args(["bare", "--port", &(first + i).to_string(), "--first", &first.to_string()])
                .args(["--nodes", &n.to_string(), "--seconds", &total.to_string()])
                .stdout(Stdio::null())
                .spawn()
                .expect("cannot start a bare process")
        })
        .collect();
    std::thread::sleep(Duration::from_secs(args.warmup));
    let before = (cpu_s(&members), cpu_s(&bares));
    std::thread::sleep(Duration::from_secs(args.duration));
    let after = (cpu_s(&members), cpu_s(&bares));
    for child in members.iter_mut() {
        let _ = child.kill();
        let _ = child.wait();
    }
    for mut child in bares {
        let _ = child.kill();
        let _ = child.wait();
    }
    let per_minute = |a: f64, b: f64| (b - a) / f64::from(n) / (args.duration as f64 / 60.0);
    let swim = per_minute(before.0, after.0);
    let floor = per_minute(before.1, after.1);
    let measured = Measured {
        nodes: n,
        duration_s: args.duration,
        driver: args.driver,
        swim_cpu_s_per_member_min: swim,
        bare_cpu_s_per_member_min: floor,
        ratio: swim / floor.max(1e-12),
    };
    if args.json {
        println!("{}", serde_json::to_string(&measured).expect("serialises"));
    } else {
        println!("swim member ({}): {swim:.5} CPU-s per minute", measured.driver);
        println!("bare UDP floor:     {floor:.5} CPU-s per minute");
        println!("ratio:              {:.2}", measured.ratio);
    }
}

/// CPU seconds of all threads of all `children` so far.
fn cpu_s(children: &[Child]) -> f64 {
    children.iter().filter_map(|child| sys::process_cpu_s(child.id())).sum()
}

/// The bare process: a send a second to the next process in the ring, at a phase of its
/// own, and an answer to every datagram that is not itself an answer.
fn bare(port: u16, first: u16, nodes: u16, run: Duration) {
    let last = first.checked_add(nodes.saturating_sub(1));
    let me = port.checked_sub(first).filter(|&me| me < nodes && last.is_some());
    let Some(me) = me else {
        eprintln!("bare: port {port} is not in the ring of {nodes} from {first}");
        std::process::exit(2);
    };
    let socket = UdpSocket::bind(("127.0.0.1", port)).expect("cannot bind a bare process");
    let start = Instant::now();
    let period = Duration::from_secs(1);
    let mut next = start + period.mul_f64(f64::from(me) / f64::from(nodes));
    let mut to = me;
    let (ping, ack) = ([1u8; DATAGRAM], [2u8; DATAGRAM]);
    let mut buffer = vec![0u8; 65536];
    while start.elapsed() < run {
        let now = Instant::now();
        if now >= next {
            to = (to + 1) % nodes;
            if to == me {
                to = (to + 1) % nodes;
            }
            let _ = socket.send_to(&ping, ("127.0.0.1", first + to));
            next += period;
            continue;
        }
        let _ = socket.set_read_timeout(Some(next - now));
        if let Ok((_, from)) = socket.recv_from(&mut buffer)
            && buffer[0] == ping[0]
        {
            let _ = socket.send_to(&ack, from);
        }
    }
}
