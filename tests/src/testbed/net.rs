//! The private network: one network namespace per member, each with an `eth0` veth whose
//! peer is a port of a bridge living in a namespace of its own, all addresses in one private
//! subnet. Nothing is created in, or routed to, the host's namespace: a veth is created
//! inside the bridge namespace with its peer placed straight into the member's.
//!
//! Every namespace of a run is named `swtb<pid>-...` after the testbed's process id, so
//! [`clean_leftovers`] can tell the leftovers of a run that was killed (its process is gone)
//! from a run still going. Deleting a namespace deletes its interfaces and nftables tables;
//! processes are killed first, since a namespace lives on while a process is inside it.
//!
//! Packet filters live in the bridge namespace (nftables' bridge family, forward hook): each
//! datagram crosses the bridge exactly once, so a random drop there is independent loss per
//! datagram, the simulator's model, and one nftables transaction changes loss or a
//! partition for every member at the same instant.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};

use crate::testbed::Error;

/// The UDP port every member listens on (the simulator's).
pub const PORT: u16 = 7946;
const PREFIX: &str = "swtb";

/// The address of member `index`: `10.0.x.y`, the simulator's address for the same index,
/// so member names (and the bytes that carry them) are the same as in the simulator.
pub fn member_addr(index: u32) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::from(0x0a00_0000 | index), PORT))
}

/// The MAC address of member `index`'s interface: locally administered, with the index in
/// its last three bytes.
pub fn member_mac(index: u32) -> String {
    let [_, a, b, c] = index.to_be_bytes();
    format!("02:00:0a:{a:02x}:{b:02x}:{c:02x}")
}

/// The member index of an address made by [`member_addr`] (the name a member reports).
pub fn member_index(name: &str) -> Option<u32> {
    match name.parse::<SocketAddr>().ok()? {
        SocketAddr::V4(v4) if v4.port() == PORT && v4.ip().octets()[0] == 10 => {
            Some(u32::from(*v4.ip()) & 0x00ff_ffff)
        }
        _ => None,
    }
}

/// A private network of `members` namespaces on a bridge; deleted on drop.
#[derive(Debug)]
pub struct Network {
    run: String,
    members: u32,
}

impl Network {
    /// Creates the namespaces, the bridge, a veth per member and the filter table.
    pub fn create(members: u32) -> Result<Self, Error> {
        let run = format!("{PREFIX}{}", std::process::id());
        // From here on, whatever fails, drop removes what was made.
        let net = Network { run, members };
        let namespaces: String = (0..members)
            .map(|i| format!("netns add {}\n", net.member_ns(i)))
            .chain([format!("netns add {}\n", net.bridge_ns())])
            .collect();
        ip_batch(None, &namespaces)?;
        // No IPv6 anywhere (no link-local addresses, so no router or neighbour
        // solicitations on the wire): members speak IPv4 only.
        let mut bridge =
            String::from("link add br0 type bridge\nlink set br0 addrgenmode none up\n");
        for i in 0..members {
            let (ns, mac) = (net.member_ns(i), member_mac(i));
            bridge.push_str(&format!(
                "link add m{i} type veth peer name eth0 address {mac} netns {ns}\n\
                 link set m{i} addrgenmode none master br0 up\n"
            ));
        }
        ip_batch(Some(&net.bridge_ns()), &bridge)?;
        // Every member knows every other's MAC address from the start. In one kernel on
        // two cores, ARP among 100 hosts is a broadcast storm (each request copied to
        // every port) that overflows the receive backlog and leaves members unable to
        // resolve their seed; real hosts each have their own. The simulator has no ARP.
        let neighbours: Vec<String> = (0..members)
            .map(|j| {
                format!(
                    "neigh replace {} lladdr {} dev eth0 nud permanent\n",
                    member_addr(j).ip(),
                    member_mac(j)
                )
            })
            .collect();
        for i in 0..members {
            let ip = member_addr(i).ip().to_string();
            let mut setup = format!(
                "link set lo up\nlink set eth0 addrgenmode none\naddr add {ip}/16 dev eth0\n\
                 link set eth0 up\n"
            );
            for (j, neighbour) in neighbours.iter().enumerate() {
                if j != i as usize {
                    setup.push_str(neighbour);
                }
            }
            ip_batch(Some(&net.member_ns(i)), &setup)?;
        }
        net.nft(FILTER_TABLE)?;
        Ok(net)
    }

    /// Member `index`'s namespace.
    pub fn member_ns(&self, index: u32) -> String {
        format!("{}-m{index}", self.run)
    }

    /// The bridge's namespace.
    pub fn bridge_ns(&self) -> String {
        format!("{}-br", self.run)
    }

    /// Members on the network.
    pub fn members(&self) -> u32 {
        self.members
    }

    /// Drops `loss` (0..1) of the members' datagrams, independently; 0 drops none.
    pub fn set_loss(&self, loss: f64) -> Result<(), Error> {
        let mut script = String::from("flush chain bridge swimtb loss\n");
        let per_10k = (loss.clamp(0.0, 1.0) * 10_000.0).round() as u32;
        if per_10k > 0 {
            script.push_str(&format!(
                "add rule bridge swimtb loss numgen random mod 10000 < {per_10k} counter drop\n"
            ));
        }
        self.nft(&script)
    }

    /// Silently drops every datagram between members `0..half` and `half..members`.
    pub fn split(&self, half: u32) -> Result<(), Error> {
        let a = self.range(0, half);
        let b = self.range(half, self.members);
        self.nft(&format!("add element bridge swimtb cut {{ {a} . {b}, {b} . {a} }}\n"))
    }

    /// Ends any partition.
    pub fn heal(&self) -> Result<(), Error> {
        self.nft("flush set bridge swimtb cut\n")
    }

    /// Bytes and packets member `index` put on the wire (its veth's traffic as the bridge
    /// received it, Ethernet headers included), for every member.
    pub fn wire_counters(&self) -> Result<Vec<Wire>, Error> {
        let out = run(
            Command::new("ip").args(["-n", &self.bridge_ns(), "-s", "-j", "link", "show"]),
            None,
        )?;
        let links: serde_json::Value =
            serde_json::from_str(&out).map_err(|e| Error::Tool(format!("ip -j: {e}")))?;
        let mut wire = vec![Wire::default(); self.members as usize];
        for link in links.as_array().into_iter().flatten() {
            let index = link["ifname"].as_str().and_then(|n| n.strip_prefix('m'));
            let Some(i) = index.and_then(|i| i.parse::<usize>().ok()).filter(|&i| i < wire.len())
            else {
                continue;
            };
            let rx = &link["stats64"]["rx"];
            wire[i] = Wire {
                bytes: rx["bytes"].as_u64().unwrap_or(0),
                packets: rx["packets"].as_u64().unwrap_or(0),
            };
        }
        Ok(wire)
    }

    /// Datagrams the members sent so far, all together, and their UDP payload bytes.
    pub fn datagrams_sent(&self) -> Result<Wire, Error> {
        let out = run(
            Command::new("ip")
                .args(["netns", "exec", &self.bridge_ns()])
                .args(["nft", "-j", "list", "counter", "bridge", "swimtb", "sent"]),
            None,
        )?;
        let json: serde_json::Value =
            serde_json::from_str(&out).map_err(|e| Error::Tool(format!("nft -j: {e}")))?;
        let counter = json["nftables"]
            .as_array()
            .and_then(|items| items.iter().find_map(|item| item.get("counter")))
            .ok_or_else(|| Error::Tool("nft: no counter `sent`".into()))?;
        let packets = counter["packets"].as_u64().unwrap_or(0);
        // The bridge counts from the IP header on: 20 bytes of IP and 8 of UDP.
        let bytes = counter["bytes"].as_u64().unwrap_or(0).saturating_sub(packets * 28);
        Ok(Wire { bytes, packets })
    }

    fn range(&self, from: u32, to: u32) -> String {
        let first = member_addr(from).ip();
        let last = member_addr(to.saturating_sub(1).max(from)).ip();
        format!("{first}-{last}")
    }

    fn nft(&self, script: &str) -> Result<(), Error> {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.bridge_ns(), "nft", "-f", "-"]);
        run(&mut command, Some(script)).map(drop)
    }

    /// Kills what runs in the run's namespaces and deletes them.
    fn teardown(&self) {
        teardown_run(&self.run);
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        self.teardown();
    }
}

/// Traffic counters: of one member's interface, or of all members' datagrams.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Wire {
    /// Bytes (of Ethernet frames, or of UDP payload).
    pub bytes: u64,
    /// Frames or datagrams.
    pub packets: u64,
}

/// The filter table: `sent` counts every member datagram the bridge sees, before any
/// drop (the simulator counts a datagram as sent whether or not it arrives); `cut` holds (source, destination) address ranges to drop; `loss`
/// holds the random drop rule, if any. Only members' UDP is touched (ARP passes).
const FILTER_TABLE: &str = "
table bridge swimtb {
  counter sent { }
  set cut { type ipv4_addr . ipv4_addr; flags interval; }
  chain loss { }
  chain forward {
    type filter hook forward priority 0; policy accept;
    ether type ip udp dport 7946 counter name sent
    ether type ip ip saddr . ip daddr @cut counter drop
    ether type ip udp dport 7946 jump loss
  }
}
";

/// Kills and removes everything of this process's run (for a signal handler: the owning
/// [`Network`] may be in use on another thread).
pub fn teardown_current() {
    teardown_run(&format!("{PREFIX}{}", std::process::id()));
}

/// Namespaces of this process's runs that still exist (0 once every run cleaned up).
pub fn own_namespaces() -> usize {
    let run = format!("{PREFIX}{}", std::process::id());
    namespaces().unwrap_or_default().iter().filter(|ns| ns.split('-').next() == Some(&run)).count()
}

/// Removes the namespaces of runs whose testbed process is gone; returns how many.
pub fn clean_leftovers() -> Result<usize, Error> {
    let mut runs: Vec<String> = namespaces()?
        .into_iter()
        .filter_map(|ns| ns.split('-').next().map(str::to_owned))
        .filter(|run| run.starts_with(PREFIX))
        .collect();
    runs.sort_unstable();
    runs.dedup();
    let mut cleaned = 0;
    for run in runs {
        let pid = run.trim_start_matches(PREFIX);
        let alive = std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .is_ok_and(|comm| comm.trim() == "swim-testbed");
        if !alive {
            cleaned += teardown_run(&run);
        }
    }
    Ok(cleaned)
}

/// Kills every process inside the run's namespaces, then deletes them; returns how many
/// namespaces it deleted.
fn teardown_run(prefix: &str) -> usize {
    let mine: Vec<String> = namespaces()
        .unwrap_or_default()
        .into_iter()
        .filter(|ns| ns.split('-').next() == Some(prefix))
        .collect();
    for ns in &mine {
        let pids = run(Command::new("ip").args(["netns", "pids", ns]), None).unwrap_or_default();
        for pid in pids.split_whitespace() {
            // A stopped process dies of SIGKILL as well.
            let _ = run(Command::new("kill").args(["-KILL", pid]), None);
        }
    }
    let script: String = mine.iter().map(|ns| format!("netns del {ns}\n")).collect();
    if !script.is_empty() {
        // `-force`: one namespace failing to go must not keep the others.
        let _ = run(Command::new("ip").args(["-force", "-batch", "-"]), Some(&script));
    }
    mine.len()
}

fn namespaces() -> Result<Vec<String>, Error> {
    let out = run(Command::new("ip").args(["netns", "list"]), None)?;
    // Lines look like `name` or `name (id: 3)`.
    Ok(out.lines().filter_map(|l| l.split_whitespace().next()).map(str::to_owned).collect())
}

fn ip_batch(ns: Option<&str>, script: &str) -> Result<(), Error> {
    let mut command = Command::new("ip");
    if let Some(ns) = ns {
        command.args(["-n", ns]);
    }
    command.args(["-batch", "-"]);
    run(&mut command, Some(script)).map(drop)
}

/// Runs a tool to completion, feeding `input`; its stdout, or its stderr as the error.
pub(crate) fn run(command: &mut Command, input: Option<&str>) -> Result<String, Error> {
    let name = format!("{command:?}");
    let spawn_error = |e: std::io::Error| Error::Tool(format!("{name}: {e}"));
    let mut child = command
        .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_error)?;
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(input.as_bytes()).map_err(spawn_error)?;
    }
    let out = child.wait_with_output().map_err(spawn_error)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        Err(Error::Tool(format!("{name}: {}", stderr.trim())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_addresses_are_the_simulators() {
        for i in [0, 1, 99, 255, 256, 1000] {
            assert_eq!(member_addr(i), crate::protocol::addr(i));
            assert_eq!(member_index(&member_addr(i).to_string()), Some(i));
        }
        assert_eq!(member_index("127.0.0.1:7946"), None);
        assert_eq!(member_index("10.0.0.1:80"), None);
    }
}
