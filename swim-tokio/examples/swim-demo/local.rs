//! `swim-demo local`: a whole cluster on 127.0.0.1 in one process, through four stories:
//! join, a metadata change, a killed member, a graceful leave; each timed.

use std::collections::BTreeSet;
use std::time::Duration;

use clap::Args;
use serde_json::json;
use swim_tokio::{Cluster, ClusterConfig, Event, Handle, Keyring, Member, Status};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::report::{Report, random_token, readable, unix_time};

/// Bounds on each phase, far above what the default timers need.
const PHASE_LIMIT: Duration = Duration::from_secs(30);

#[derive(Args)]
pub(crate) struct LocalArgs {
    /// How many members to start (a graceful leave is shown from 3).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(2..=64))]
    nodes: u16,
    /// Print one JSON object per line.
    #[arg(long)]
    json: bool,
}

struct Local {
    names: Vec<String>,
    nodes: Vec<Option<Handle>>,
    events: mpsc::UnboundedReceiver<(usize, Event)>,
    report: Report,
}

/// How long each story took.
#[derive(Default)]
struct Times {
    join: Duration,
    first_suspect: Option<Duration>,
    detection: Duration,
    leave: Option<Duration>,
    dissemination: Duration,
}

pub(crate) async fn run(args: LocalArgs) -> Result<(), String> {
    let n = usize::from(args.nodes);
    let mut local = Local::start(n, args.json).await?;
    let config = ClusterConfig::new("", Keyring::new("")).protocol;
    local.report.say(&format!(
        "started {n} members on 127.0.0.1 (ping {}, suspect {})",
        readable(config.ping_interval),
        readable(config.suspect_timeout)
    ));
    let mut times = Times::default();
    let everyone = local.names.clone();
    let joined = local.phase(true, |local, _| local.all_see(&everyone, Status::Online)).await;
    times.join = joined.ok_or("the cluster did not converge within 30 s")? - local.report.start;
    local
        .report
        .say(&format!("converged: all {n} see all {n} online after {}", readable(times.join)));
    // The metadata change first, while every member runs to receive it.
    local.change_metadata(&mut times).await?;
    local.kill(n / 2, &mut times).await?;
    if n >= 3 {
        local.leave(n - 1, &mut times).await?;
    }
    local.summary(n, &times, args.json);
    Ok(())
}

impl Local {
    async fn start(n: usize, json: bool) -> Result<Local, String> {
        let secret = format!("{:016x}", getrandom::u64().map_err(|e| e.to_string())?);
        let (forward, events) = mpsc::unbounded_channel();
        let names: Vec<String> = (1..=n).map(|i| format!("node-{i}")).collect();
        let mut nodes = Vec::new();
        let mut seed = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let mut config = ClusterConfig::new(name.clone(), Keyring::new(&secret));
            config.bind_host = Some("127.0.0.1".into());
            config.protocol.peers.clone_from(&seed);
            config.protocol.local_metadata.insert("token", random_token());
            let node = Cluster::bind(config).await.map_err(|e| e.to_string())?;
            seed = vec![node.local_addr()];
            let mut receiver = node.subscribe();
            let forward = forward.clone();
            tokio::spawn(async move {
                while let Some(event) = receiver.recv().await {
                    // A lag only shortens what is printed; the phases check the views.
                    if let Ok(event) = event {
                        drop(forward.send((i, event)));
                    }
                }
            });
            nodes.push(Some(node));
        }
        Ok(Local { names, nodes, events, report: Report::new(json) })
    }

    /// Kills `victim` without a leave; every survivor must see it suspect, then offline.
    async fn kill(&mut self, victim: usize, times: &mut Times) -> Result<(), String> {
        let name = self.names[victim].clone();
        if let Some(node) = self.nodes[victim].take() {
            node.abort();
        }
        let killed = Instant::now();
        self.report.say(&format!("killed {name} (no leave announcement)"));
        let mut offline_at = BTreeSet::new();
        let mut first_suspect = None;
        let observers = self.nodes.iter().flatten().count();
        let offline = self.phase(false, |local, event| {
            let Some((observer, event)) = event else { return false };
            let status = match event {
                Event::MemberSuspect { name: about, .. } if **about == *name => Status::Suspect,
                Event::MemberOffline { name: about, .. } if **about == *name => Status::Offline,
                _ => return false,
            };
            match status {
                Status::Suspect => drop(first_suspect.get_or_insert(killed.elapsed())),
                _ => drop(offline_at.insert(*observer)),
            }
            let observer = &local.names[*observer];
            let after = readable(killed.elapsed());
            local.report.say(&format!("{observer} sees {name} {status} after {after}"));
            offline_at.len() == observers
        });
        let offline =
            offline.await.ok_or_else(|| format!("{name} not offline everywhere in 30 s"))?;
        times.first_suspect = first_suspect;
        times.detection = offline - killed;
        Ok(())
    }

    /// `leaver` leaves gracefully; every other member sees it left, without suspecting it.
    async fn leave(&mut self, leaver: usize, times: &mut Times) -> Result<(), String> {
        let name = self.names[leaver].clone();
        let node = self.nodes[leaver].take().ok_or("the leaver is not running")?;
        let started = Instant::now();
        node.leave().await.map_err(|e| e.to_string())?;
        self.report
            .say(&format!("{name} left gracefully (announced in {})", readable(started.elapsed())));
        let left =
            self.phase(false, |local, _| local.all_see(std::slice::from_ref(&name), Status::Left));
        let left = left.await.ok_or_else(|| format!("{name} not seen as left in 30 s"))?;
        times.leave = Some(left - started);
        self.report
            .say(&format!("every member sees {name} left after {}", readable(left - started)));
        Ok(())
    }

    /// node-1 changes its token; every running member must see the new value.
    async fn change_metadata(&mut self, times: &mut Times) -> Result<(), String> {
        let token = random_token();
        let source = self.names[0].clone();
        let first = self.nodes[0].as_ref().ok_or("node-1 is never stopped")?;
        let changed = Instant::now();
        first.set_metadata("token", token.clone()).map_err(|e| e.to_string())?;
        self.report.say(&format!("{source} set token={token}"));
        let mut arrived = BTreeSet::new();
        let done = self.phase(false, |local, event| {
            let Some((observer, event)) = event else { return false };
            // The event carries the map it made: no need to look at the table.
            let new_token = match event {
                Event::MetadataChanged { name, metadata, .. } if **name == *source => {
                    metadata.get("token").is_some_and(|v| v == token.as_bytes())
                }
                _ => false,
            };
            if new_token && arrived.insert(*observer) && *observer != 0 {
                let after = readable(changed.elapsed());
                let who = &local.names[*observer];
                let keys = event.changed_keys().join(", ");
                local
                    .report
                    .say(&format!("{who} sees {source}'s metadata change ({keys}) after {after}"));
            }
            arrived.len() == local.nodes.iter().flatten().count()
        });
        let done = done.await.ok_or("the metadata change did not reach every member in 30 s")?;
        times.dissemination = done - changed;
        Ok(())
    }

    /// Handles events until `done` (checked after each event, and without one ten times a
    /// second, for conditions on the views) holds, or `PHASE_LIMIT`
    /// passes; with `table`, prints every member's view whenever it changed, 10 times a
    /// second at most.
    async fn phase(
        &mut self,
        table: bool,
        mut done: impl FnMut(&mut Local, Option<&(usize, Event)>) -> bool,
    ) -> Option<Instant> {
        let limit = tokio::time::sleep(PHASE_LIMIT);
        tokio::pin!(limit);
        let mut ticks = tokio::time::interval(Duration::from_millis(100));
        let mut shown = String::new();
        loop {
            tokio::select! {
                event = self.events.recv() => {
                    let event = event?;
                    if let Some(node) = self.nodes[event.0].clone()
                        && self.report.json
                    {
                        self.report.event(&node, &event.1);
                    }
                    if done(self, Some(&event)) {
                        break;
                    }
                }
                _ = ticks.tick() => {
                    if table {
                        self.table(&mut shown);
                    }
                    if done(self, None) {
                        break;
                    }
                }
                () = &mut limit => return None,
            }
        }
        let at = Instant::now();
        if table {
            self.table(&mut shown);
        }
        Some(at)
    }

    /// Whether every running member sees each of `names` in `status`.
    fn all_see(&self, names: &[String], status: Status) -> bool {
        self.nodes.iter().flatten().all(|node| {
            let view = node.snapshot();
            names.iter().all(|name| view.member(name).is_some_and(|m| m.status() == status))
        })
    }

    /// Prints what each member sees, unless it is what was `shown` last: one row per
    /// observer, one column per member.
    fn table(&self, shown: &mut String) {
        let width = if self.names.len() > 16 { 2 } else { 4 };
        let header = |i: usize| match width {
            2 => format!("{:>2}", (i + 1) % 10),
            _ => format!("{:>4}", format!("n{}", i + 1)),
        };
        let mut table = format!("{:>10}", "observer");
        table.extend((0..self.names.len()).map(header));
        for (name, node) in self.names.iter().zip(&self.nodes) {
            let row: String = match node {
                None => "  (stopped)".into(),
                Some(node) => {
                    let view = node.snapshot();
                    let cell = |n: &String| {
                        let symbol = match view.member(n).map(Member::status) {
                            Some(Status::Online) => 'O',
                            Some(Status::Suspect) => 'S',
                            Some(Status::Offline) => 'X',
                            Some(Status::Left) => 'L',
                            _ => '.',
                        };
                        format!("{symbol:>width$}")
                    };
                    self.names.iter().map(cell).collect()
                }
            };
            table.push_str(&format!("\n{name:>10}{row}"));
        }
        if *shown != table && !self.report.json {
            self.report.say(match shown.is_empty() {
                true => {
                    "membership: each row is what one member (the observer) sees of every \
                     column; O online, S suspect, X offline, L left, . unknown"
                }
                false => "membership:",
            });
            println!("{table}");
            *shown = table;
        }
    }

    fn summary(&self, n: usize, times: &Times, json: bool) {
        let seconds = |d: Duration| (d.as_secs_f64() * 1e6).round() / 1e6;
        if json {
            let summary = json!({
                "t": unix_time(),
                "summary": {
                    "nodes": n,
                    "join_seconds": seconds(times.join),
                    "first_suspect_seconds": times.first_suspect.map(seconds),
                    "offline_everywhere_seconds": seconds(times.detection),
                    "left_everywhere_seconds": times.leave.map(seconds),
                    "dissemination_seconds": seconds(times.dissemination),
                }
            });
            println!("{summary}");
            return;
        }
        println!("\nsummary ({n} members)");
        println!("  join:          all {n} saw all {n} online after {}", readable(times.join));
        println!(
            "  dissemination: a token change reached all {n} members after {}",
            readable(times.dissemination)
        );
        let suspect =
            times.first_suspect.map(|s| format!("first suspected after {}, ", readable(s)));
        println!(
            "  detection:     killed member {}offline at every survivor after {}",
            suspect.unwrap_or_default(),
            readable(times.detection)
        );
        if let Some(leave) = times.leave {
            println!(
                "  leave:         seen as left (not failed) everywhere after {}",
                readable(leave)
            );
        }
    }
}
