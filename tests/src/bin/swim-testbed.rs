//! `swim-testbed`: runs one of `swim-sim`'s scenarios on real member processes in private
//! network namespaces (root only), prints what it measured with `swim-sim`'s keys plus CPU,
//! memory and bytes on the wire per member, and with `--compare` the simulator's prediction
//! for the same scenario next to it. With `--json` the last line is
//! `{"real": {...}, "sim": {...}}`.
//!
//! Everything it creates (namespaces, interfaces, filter tables, member processes) is removed
//! when it ends, also on Ctrl-C, SIGTERM, a failure or a panic; `--clean` removes what a
//! killed run (SIGKILL) left behind.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use serde_json::{Map, Value, json};
use swim_tests::protocol::Timing;
use swim_tests::testbed::{self, Plan, Scenario, net, scenarios, simulated, table};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum OnOff {
    /// On.
    On,
    /// Off.
    Off,
}

/// SWIM on a real (namespaced) network, compared with the simulator.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// The scenario to run (the simulator's).
    #[arg(value_enum, required_unless_present = "clean")]
    scenario: Option<Scenario>,
    /// Member processes (8 to 100 fit this kind of machine; up to 1000 accepted).
    #[arg(long, default_value_t = 32)]
    nodes: u32,
    /// Seeds the testbed's choices and the members' RNGs (and the first simulator run).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Datagram loss probability (0..1); default 0.05 for `loss`, 0.01 for `stress`, 0
    /// otherwise.
    #[arg(long)]
    loss: Option<f64>,
    /// Print one JSON object as the last line.
    #[arg(long)]
    json: bool,
    /// Also run the simulator for the same scenario, N, timing and loss, and compare.
    #[arg(long)]
    compare: bool,
    /// Real runs (seeds `seed`, `seed + 1`, ...), each on a fresh network, averaged.
    #[arg(long, default_value_t = 1)]
    runs: u64,
    /// Simulator runs (seeds `seed`, `seed + 1`, ...) averaged for the comparison.
    #[arg(long, default_value_t = 5)]
    sim_seeds: u64,
    /// The simulator's link latency and jitter in a comparison, µs (a bridge between
    /// namespaces: tens of µs).
    #[arg(long, default_value_t = 50)]
    sim_latency_us: u64,
    /// Length of the lossy phase of `loss` and of the stalling phase of `stress`, seconds.
    #[arg(long, default_value_t = 600)]
    duration: u64,
    /// Length of the split of `partition`, seconds (default: reap + suspect timeouts + 30).
    #[arg(long)]
    partition: Option<u64>,
    /// Length of the churn phase of `churn`, seconds (default: the simulator's).
    #[arg(long)]
    churn: Option<u64>,
    /// Lifeguard on or off.
    #[arg(long, value_enum, default_value_t = OnOff::On)]
    lifeguard: OnOff,
    /// Members asked to probe indirectly when a direct ping times out (default:
    /// swim-core's `ping_req_count`).
    #[arg(long)]
    ping_req_count: Option<usize>,
    /// Members stalled by SIGSTOP in `stress`.
    #[arg(long, default_value_t = 2)]
    slow: usize,
    /// Length of a stall in `stress` and `stall`, seconds (in comparisons of `stress`, the
    /// simulator's `--slow-delay`).
    #[arg(long, default_value_t = 3.0)]
    stall: f64,
    /// `stress`: time between the starts of a member's stalls, seconds (default 20);
    /// `stall`: time between the starts of two stalls (default: the simulator's, 6).
    #[arg(long)]
    stall_every: Option<f64>,
    /// Stalls in `stall`, one member at a time (default: the simulator's, 100).
    #[arg(long)]
    stalls: Option<usize>,
    /// Longest wait for the join and for the goal, seconds.
    #[arg(long, default_value_t = 300)]
    limit: u64,
    /// The member program (default: `swim-member` next to this program).
    #[arg(long)]
    member: Option<PathBuf>,
    /// Exit with failure unless every real run reached its goal with no event lost, no
    /// member died on its own, and nothing left behind (for CI).
    #[arg(long)]
    check: bool,
    /// Remove what killed runs left (namespaces, their interfaces and processes), then exit.
    #[arg(long)]
    clean: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Err(error) = testbed::check_host() {
        eprintln!("swim-testbed: {error}");
        return ExitCode::from(2);
    }
    match net::clean_leftovers() {
        Ok(0) => {}
        Ok(runs) => eprintln!("swim-testbed: removed {runs} namespaces left by killed runs"),
        Err(error) => eprintln!("swim-testbed: cannot look for leftovers: {error}"),
    }
    let Some(scenario) = args.scenario else { return ExitCode::SUCCESS };
    let interrupted = ctrlc::set_handler(|| {
        eprintln!("swim-testbed: interrupted, cleaning up");
        net::teardown_current();
        std::process::exit(130);
    });
    if let Err(error) = interrupted {
        eprintln!("swim-testbed: cannot catch Ctrl-C ({error}); `--clean` removes leftovers");
    }
    let plan = plan(&args, scenario);
    let mut real_runs = Vec::new();
    for k in 0..args.runs.max(1) {
        let plan = Plan { seed: args.seed + k, ..plan.clone() };
        match run_real(&plan) {
            Ok(real) => real_runs.push(real),
            Err(error) => {
                eprintln!("swim-testbed: {error}");
                return ExitCode::FAILURE;
            }
        }
    }
    let real = table::mean(&real_runs);
    let sim_runs: Vec<Value> = if args.compare {
        (0..args.sim_seeds.max(1)).map(|k| simulated::run(&plan, args.seed + k)).collect()
    } else {
        Vec::new()
    };
    let sim = (!sim_runs.is_empty()).then(|| table::mean(&sim_runs));
    print_summary(&plan, &real, real_runs.len(), sim.as_ref(), sim_runs.len());
    if args.json {
        let mut last = Map::new();
        last.insert("real".into(), real);
        if real_runs.len() > 1 {
            last.insert("real_runs".into(), json!(real_runs));
        }
        if let Some(sim) = sim {
            last.insert("sim".into(), sim);
            last.insert("sim_runs".into(), json!(sim_runs));
        }
        println!("{}", Value::Object(last));
    }
    if args.check {
        let problems = check(&real_runs);
        for problem in &problems {
            eprintln!("swim-testbed: check failed: {problem}");
        }
        if !problems.is_empty() {
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

/// What `--check` holds a run to.
fn check(real_runs: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    for (k, run) in real_runs.iter().enumerate() {
        if run["converged"] != json!(true) {
            problems.push(format!("run {k} did not reach its goal"));
        }
        for key in ["events_lost", "unexpected_exits"] {
            if run[key].as_u64() != Some(0) {
                problems.push(format!("run {k}: {key} = {}", run[key]));
            }
        }
    }
    let left = net::own_namespaces();
    if left > 0 {
        problems.push(format!("{left} namespaces left behind"));
    }
    problems
}

/// One real run: `swim-sim`'s keys for the scenario plus the extras, in one object.
fn run_real(plan: &Plan) -> Result<Value, testbed::Error> {
    let (outcome, extra) = scenarios::run(plan)?;
    let mut real = serde_json::to_value(&outcome).unwrap_or_default();
    if let (Value::Object(real), Ok(Value::Object(extra))) =
        (&mut real, serde_json::to_value(&extra))
    {
        real.extend(extra);
    }
    Ok(real)
}

fn plan(args: &Args, scenario: Scenario) -> Plan {
    let mut timing = Timing { lifeguard: args.lifeguard == OnOff::On, ..Timing::default() };
    if let Some(count) = args.ping_req_count {
        timing.ping_req_count = count;
    }
    let loss = args.loss.unwrap_or(match scenario {
        Scenario::Loss => 0.05,
        Scenario::Stress => 0.01,
        _ => 0.0,
    });
    let (stalls, stall_every) = simulated::default_stalls();
    let member = args.member.clone().unwrap_or_else(|| {
        let exe = std::env::current_exe().unwrap_or_default();
        exe.with_file_name("swim-member")
    });
    Plan {
        scenario,
        nodes: args.nodes,
        seed: args.seed,
        loss,
        timing,
        duration: Duration::from_secs(args.duration),
        churn_duration: args
            .churn
            .map_or_else(simulated::default_churn_duration, Duration::from_secs),
        partition: args.partition.map(Duration::from_secs),
        slow: args.slow,
        stall: Duration::from_secs_f64(args.stall.max(0.0)),
        stall_every: args.stall_every.map_or(
            if scenario == Scenario::Stall { stall_every } else { Duration::from_secs(20) },
            |s| Duration::from_secs_f64(s.max(0.0)),
        ),
        stalls: args.stalls.unwrap_or(stalls),
        limit: Duration::from_secs(args.limit),
        sim_latency: Duration::from_micros(args.sim_latency_us),
        member,
    }
}

fn print_summary(
    plan: &Plan,
    real: &Value,
    real_runs: usize,
    sim: Option<&Value>,
    sim_runs: usize,
) {
    let converged =
        |v: &Value| if v["converged"] == json!(true) { "converged" } else { "NOT converged" };
    println!(
        "{} with {} member processes, loss {}, mean of {real_runs} runs from seed {}: {}",
        simulated::name(plan.scenario),
        plan.nodes,
        plan.loss,
        plan.seed,
        converged(real)
    );
    if let Some(sim) = sim {
        println!(
            "simulator: mean of {sim_runs} seeds, links {} µs + up to {} µs jitter: {}",
            plan.sim_latency.as_micros(),
            plan.sim_latency.as_micros(),
            converged(sim)
        );
    }
    for line in table::side_by_side(real, sim) {
        println!("{line}");
    }
}
