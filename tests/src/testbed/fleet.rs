//! The member processes: spawned into their namespaces, read line by line on one thread
//! each, signalled (crash, stall, resume) and measured from `/proc`. The testbed's main
//! thread sees what they report as [`Seen`] observations, the real counterpart of the
//! simulator's `Observation`, in the order the lines arrive.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant as WallClock};

use crate::protocol::{Change, Report};
use crate::testbed::Error;
use crate::testbed::line::{self, Line, What};
use crate::testbed::net::{self, Network, member_addr, member_index};
use crate::testbed::views::Views;

/// A report from a member, with when (wall µs) and who.
#[derive(Clone, Debug)]
pub struct Seen {
    /// The member's wall clock when it reported, µs since the Unix epoch.
    pub at: u64,
    /// The reporting member.
    pub viewer: u32,
    /// What it reported (the simulator's report type).
    pub report: Report,
    /// How many other members the viewer sees online after this report.
    pub online_count: u32,
}

/// One line from one process of one member.
struct Incoming {
    index: u32,
    life: u32,
    /// `None`: the process closed its stdout (it exited).
    line: Option<Line>,
}

struct Process {
    child: Child,
    stdin: ChildStdin,
}

/// The member processes of a run, on their network; dropping it kills them, then removes
/// the network.
pub struct Fleet {
    exe: PathBuf,
    member_args: Vec<String>,
    seed: u64,
    processes: Vec<Option<Process>>,
    lives: Vec<u32>,
    /// When each member's current process said its socket was bound (wall µs).
    bound: Vec<Option<u64>>,
    sender: Sender<Incoming>,
    receiver: Receiver<Incoming>,
    backlog: VecDeque<Incoming>,
    views: Views,
    /// Events the members' streams lost (they fell behind); should stay 0.
    pub events_lost: u64,
    /// Member processes that exited without being told to.
    pub unexpected_exits: u64,
    /// Times a member heard that the cluster declared it offline (or left) and had to
    /// refute: what foca would count as a forced rejoin.
    pub accused_offline: u64,
    // Last: dropped after the processes are killed.
    net: Network,
}

impl Fleet {
    /// A fleet of `net.members()` members, none started; `member_args` go to every member.
    pub fn new(net: Network, exe: PathBuf, member_args: Vec<String>, seed: u64) -> Self {
        let n = net.members() as usize;
        let (sender, receiver) = mpsc::channel();
        Fleet {
            exe,
            member_args,
            seed,
            processes: (0..n).map(|_| None).collect(),
            lives: vec![0; n],
            bound: vec![None; n],
            sender,
            receiver,
            backlog: VecDeque::new(),
            views: Views::new(n),
            events_lost: 0,
            unexpected_exits: 0,
            accused_offline: 0,
            net,
        }
    }

    /// The network.
    pub fn net(&self) -> &Network {
        &self.net
    }

    /// Members (running or not).
    pub fn len(&self) -> u32 {
        self.processes.len() as u32
    }

    /// Whether there are no members.
    pub fn is_empty(&self) -> bool {
        self.processes.is_empty()
    }

    /// Whether member `i` has a running (possibly stopped) process.
    pub fn is_up(&self, i: u32) -> bool {
        self.processes[i as usize].is_some()
    }

    /// How many other members member `i` sees online.
    pub fn online_count(&self, i: u32) -> u32 {
        self.views.online_count(i)
    }

    /// Whether member `viewer` sees `subject` online, from its reports.
    pub fn sees_online(&self, viewer: u32, subject: u32) -> bool {
        self.views.sees_online(viewer, subject)
    }

    /// How many processes member `i` has had (0: never started).
    pub fn life(&self, i: u32) -> u32 {
        self.lives[i as usize]
    }

    /// When member `i`'s current process bound its socket (wall µs), once it said so.
    pub fn bound_at(&self, i: u32) -> Option<u64> {
        self.bound[i as usize]
    }

    /// Starts a new process for member `i`, joining through member `peer`.
    pub fn start(&mut self, i: u32, peer: Option<u32>) -> Result<(), Error> {
        self.kill(i);
        let life = self.lives[i as usize] + 1;
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.net.member_ns(i)]).arg(&self.exe);
        command.args(["--name", &member_addr(i).to_string()]);
        if let Some(peer) = peer {
            command.args(["--peer", &member_addr(peer).to_string()]);
        }
        let seed = crate::digest::mix64(self.seed ^ (u64::from(i) << 32 | u64::from(life)));
        command.args(["--seed", &seed.to_string()]).args(&self.member_args);
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child =
            command.spawn().map_err(|e| Error::Tool(format!("{}: {e}", self.exe.display())))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(Error::Tool("member pipes missing".into()));
        };
        let sender = self.sender.clone();
        std::thread::spawn(move || {
            for text in BufReader::new(stdout).lines() {
                let Ok(text) = text else { break };
                match serde_json::from_str::<Line>(&text) {
                    Ok(line) => {
                        if sender.send(Incoming { index: i, life, line: Some(line) }).is_err() {
                            return;
                        }
                    }
                    Err(error) => eprintln!("member {i}: unreadable line {text:?}: {error}"),
                }
            }
            let _ = sender.send(Incoming { index: i, life, line: None });
        });
        self.lives[i as usize] = life;
        self.bound[i as usize] = None;
        self.views.reset(i);
        self.processes[i as usize] = Some(Process { child, stdin });
        Ok(())
    }

    /// Crashes member `i` (SIGKILL, no goodbye) and reaps its process.
    pub fn kill(&mut self, i: u32) {
        if let Some(mut process) = self.processes[i as usize].take() {
            let _ = process.child.kill();
            let _ = process.child.wait();
        }
        self.views.reset(i);
    }

    /// Stops (SIGSTOP) or resumes (SIGCONT) member `i`'s process.
    pub fn stall(&mut self, i: u32, stop: bool) -> Result<(), Error> {
        let Some(process) = &self.processes[i as usize] else { return Ok(()) };
        let signal = if stop { "-STOP" } else { "-CONT" };
        let pid = process.child.id().to_string();
        net::run(Command::new("kill").args([signal, &pid]), None).map(drop)
    }

    /// Sends `command` to member `i`; false if it is not running or did not take it.
    pub fn send(&mut self, i: u32, command: &line::Command) -> bool {
        let Some(process) = &mut self.processes[i as usize] else { return false };
        writeln!(process.stdin, "{}", command.to_line())
            .and_then(|()| process.stdin.flush())
            .is_ok()
    }

    /// Member `i` leaves gracefully; its process exits by itself once it announced it.
    pub fn leave(&mut self, i: u32) {
        self.send(i, &line::Command::Leave);
    }

    /// Sends `command` to every running member in `members` and waits (up to `timeout`)
    /// for their answers, queueing whatever else they report meanwhile.
    pub fn ask(
        &mut self,
        members: &[u32],
        command: &line::Command,
        timeout: Duration,
    ) -> Vec<Option<Line>> {
        let mut answers: Vec<Option<Line>> = vec![None; members.len()];
        let mut waiting = 0;
        for &i in members {
            waiting += usize::from(self.send(i, command));
        }
        let end = WallClock::now() + timeout;
        while waiting > 0 {
            let Some(incoming) = self.receive(end) else { break };
            let is_answer = matches!(
                incoming.line.as_ref().map(|l| &l.what),
                Some(What::Counters(_) | What::View { .. } | What::Set { .. })
            );
            let slot = members.iter().position(|&i| i == incoming.index);
            match (is_answer, slot) {
                (true, Some(k)) if answers[k].is_none() => {
                    answers[k] = incoming.line;
                    waiting -= 1;
                }
                _ => self.backlog.push_back(incoming),
            }
        }
        answers
    }

    /// The next observation reported before `deadline`, in arrival order.
    pub fn next(&mut self, deadline: WallClock) -> Option<Seen> {
        loop {
            let incoming = match self.backlog.pop_front() {
                Some(queued) => queued,
                None => self.receive(deadline)?,
            };
            if let Some(seen) = self.observe(incoming) {
                return Some(seen);
            }
        }
    }

    /// Waits until `deadline`, handing every observation to `observe`.
    pub fn run_until(&mut self, deadline: WallClock, observe: &mut impl FnMut(&Seen)) {
        while let Some(seen) = self.next(deadline) {
            observe(&seen);
        }
    }

    /// Waits for `duration`, handing every observation to `observe`.
    pub fn run_for(&mut self, duration: Duration, observe: &mut impl FnMut(&Seen)) {
        self.run_until(WallClock::now() + duration, observe);
    }

    /// Hands observations to `observe` until it returns true (the goal was reached) or
    /// `limit` passes; whether the goal was reached.
    pub fn run_until_done(
        &mut self,
        limit: Duration,
        mut observe: impl FnMut(&Seen) -> bool,
    ) -> bool {
        let end = WallClock::now() + limit;
        while let Some(seen) = self.next(end) {
            if observe(&seen) {
                return true;
            }
        }
        false
    }

    /// Waits (up to `timeout`) until member `i`'s process says its socket is bound; when.
    /// Other lines wait in the backlog.
    pub fn wait_bound(&mut self, i: u32, timeout: Duration) -> Option<u64> {
        let end = WallClock::now() + timeout;
        while self.bound[i as usize].is_none() {
            let incoming = self.receive(end)?;
            match &incoming.line {
                Some(Line { t, what: What::Bound }) if incoming.index == i => {
                    self.bound[i as usize] = Some(*t);
                }
                _ => self.backlog.push_back(incoming),
            }
        }
        self.bound[i as usize]
    }

    /// CPU seconds member `i`'s process used so far (all its threads; see
    /// [`process_cpu_s`](crate::sys::process_cpu_s)); `None` if not running.
    pub fn cpu_s(&self, i: u32) -> Option<f64> {
        let process = self.processes[i as usize].as_ref()?;
        crate::sys::process_cpu_s(process.child.id())
    }

    /// Resident set size of member `i`'s process, MiB; `None` if not running.
    pub fn rss_mib(&self, i: u32) -> Option<f64> {
        let process = self.processes[i as usize].as_ref()?;
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", process.child.id())).ok()?;
        let kib = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
        kib.trim().trim_end_matches("kB").trim().parse::<f64>().ok().map(|k| k / 1024.0)
    }

    fn receive(&mut self, deadline: WallClock) -> Option<Incoming> {
        let wait = deadline.saturating_duration_since(WallClock::now());
        // A timeout, or every reader gone (impossible while the fleet holds a sender).
        self.receiver.recv_timeout(wait).ok()
    }

    /// Turns a line into an observation, keeping the views up to date; lines of an earlier
    /// life of the member (read after it restarted) are dropped.
    fn observe(&mut self, incoming: Incoming) -> Option<Seen> {
        let Incoming { index, life, line } = incoming;
        if life != self.lives[index as usize] {
            return None;
        }
        let Some(line) = line else {
            // The process is gone: it left (and exited), or died on its own.
            if let Some(mut process) = self.processes[index as usize].take() {
                let status = process.child.wait();
                if !status.as_ref().is_ok_and(|s| s.success()) {
                    self.unexpected_exits += 1;
                    eprintln!("member {index} exited on its own: {status:?}");
                }
            }
            return None;
        };
        let subject = |name: &str| member_index(name).filter(|&s| s != index);
        let report = match line.what {
            What::Member { change, member, .. } => {
                let change = match change {
                    line::Change::Joined => Change::Joined,
                    line::Change::Suspect => Change::Suspect,
                    line::Change::Offline => Change::Offline,
                    line::Change::Left => Change::Left,
                    line::Change::Alive => Change::Alive,
                    line::Change::Reaped => Change::Reaped,
                };
                Report::new(change, subject(&member), None)
            }
            What::Metadata { member, .. } => Report::new(Change::Metadata, subject(&member), None),
            What::Ready => Report::new(Change::JoinedCluster, None, None),
            What::Refuted { .. } => Report::new(Change::Refuted, None, None),
            What::Accused { accusation, .. } => {
                if accusation != "suspect" {
                    self.accused_offline += 1;
                }
                return None;
            }
            What::Bound => {
                self.bound[index as usize] = Some(line.t);
                return None;
            }
            What::Lagged { missed } => {
                self.events_lost += missed;
                eprintln!("member {index} lost {missed} events");
                return None;
            }
            _ => return None,
        };
        let report = self.views.apply(index, report);
        Some(Seen {
            at: line.t,
            viewer: index,
            report,
            online_count: self.views.online_count(index),
        })
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for i in 0..self.len() {
            // A stopped process dies of SIGKILL too.
            self.kill(i);
        }
    }
}
