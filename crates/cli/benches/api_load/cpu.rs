//! Where the CPU went during a measured phase, from `/proc` (Linux): the whole machine, the
//! bench process (load generator, and the baseline server when it runs), the server under
//! load, and the `postgres` processes working for it: the backends connected to the
//! bench's scratch databases (named with [`count_databases`]) and the cluster's shared
//! helpers (WAL writer, checkpointer, …), not backends of other databases (tests running
//! beside the bench). Shown in cores (CPU-seconds per second), so on this 2-core machine
//! 2.0 is everything.

use std::sync::OnceLock;
use std::time::Instant;

/// The databases whose backends count (all backends until set).
static DATABASES: OnceLock<Vec<String>> = OnceLock::new();

/// Counts only the backends of `names` (and the cluster's shared processes) as Postgres CPU.
pub fn count_databases(names: Vec<String>) {
    let _ = DATABASES.set(names);
}

/// Whether a `postgres` process with this command line works for the bench: a backend's
/// title is `postgres: [cluster: ]user database host(port) state`, a shared process's names
/// its role (`checkpointer`, `walwriter`, …) and no client address.
fn counted(cmdline: &str) -> bool {
    let Some(names) = DATABASES.get() else {
        return true;
    };
    let backend = cmdline.contains('(') || cmdline.contains("[local]");
    !backend
        || cmdline
            .split_whitespace()
            .any(|w| names.iter().any(|n| n == w))
}

/// Cumulative CPU ticks at one instant.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot {
    at: Instant,
    machine_busy: u64,
    bench: u64,
    server: u64,
    postgres: u64,
}

/// CPU use between two snapshots, in cores.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    pub machine: f64,
    pub bench: f64,
    pub server: f64,
    pub postgres: f64,
}

/// Clock ticks per second for `/proc` times (`getconf CLK_TCK`; 100 on Linux).
fn ticks_per_sec() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// utime + stime of one process, from `/proc/<pid>/stat`, with its command name.
fn process_ticks(stat: &str) -> Option<(&str, u64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = &stat[open + 1..close];
    // After ") ": state is field 3; utime and stime are fields 14 and 15.
    let mut fields = stat[close + 2..].split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((name, utime + stime))
}

fn pid_ticks(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| process_ticks(&s).map(|(_, t)| t))
        .unwrap_or(0)
}

fn postgres_ticks() -> u64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    dir.flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| {
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let (name, ticks) = process_ticks(&stat)?;
            if name != "postgres" {
                return None;
            }
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            counted(&String::from_utf8_lossy(&cmdline).replace('\0', " ")).then_some(ticks)
        })
        .sum()
}

/// Busy ticks of all cores together (everything but idle and iowait), from `/proc/stat`.
fn machine_busy() -> u64 {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return 0;
    };
    let Some(line) = stat.lines().next() else {
        return 0;
    };
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...
    let total: u64 = values.iter().take(8).sum();
    let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
    total - idle
}

/// Takes a snapshot; `server` is the server's pid (0 when it is in the bench process).
pub fn snapshot(server: u32) -> Snapshot {
    Snapshot {
        at: Instant::now(),
        machine_busy: machine_busy(),
        bench: pid_ticks(std::process::id()),
        server: if server == 0 { 0 } else { pid_ticks(server) },
        postgres: postgres_ticks(),
    }
}

/// CPU use from `before` to `after`.
pub fn usage(before: Snapshot, after: Snapshot) -> Usage {
    let secs = after.at.duration_since(before.at).as_secs_f64() * ticks_per_sec();
    let cores = |a: u64, b: u64| b.saturating_sub(a) as f64 / secs;
    Usage {
        machine: cores(before.machine_busy, after.machine_busy),
        bench: cores(before.bench, after.bench),
        server: cores(before.server, after.server),
        postgres: cores(before.postgres, after.postgres),
    }
}
