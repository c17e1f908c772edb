//! Process measurements for the runner and the testbed: peak RSS and CPU time, read from
//! `/proc` (Linux).

use std::fs;

/// Peak resident set size in MiB (`VmHWM` in `/proc/self/status`), or 0 if unavailable.
pub fn peak_rss_mib() -> f64 {
    let Ok(status) = fs::read_to_string("/proc/self/status") else {
        return 0.0;
    };
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

/// User plus system CPU seconds of this process (`/proc/self/stat`, fields 14 and 15, in
/// clock ticks of 1/100 s, the value on every mainstream Linux), or 0 if unavailable.
pub fn cpu_s() -> f64 {
    let Ok(stat) = fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // The command name (field 2) may hold spaces; fields after its closing parenthesis are
    // plain. utime and stime are fields 14 and 15, i.e. 12th and 13th after field 2.
    let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// CPU seconds the process `pid` used so far, all its threads, from the scheduler's
/// nanosecond counts (`/proc/PID/task/*/schedstat`: `/proc/PID/stat` counts in 10 ms ticks,
/// too coarse for a process that uses milliseconds a minute); `None` if it is not running.
pub fn process_cpu_s(pid: u32) -> Option<f64> {
    let tasks = fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut ns = 0u64;
    for task in tasks.flatten() {
        let stat = fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
        ns += stat.split_whitespace().next().and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    }
    Some(ns as f64 / 1e9)
}
