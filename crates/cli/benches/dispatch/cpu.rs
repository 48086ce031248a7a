//! Where the CPU went during a run, from `/proc` (Linux): the whole machine, the worker
//! processes, every `postgres` process and every `redis-server` process. In cores
//! (CPU-seconds per second), so on this 2-core machine 2.0 is everything.

use std::time::Instant;

/// Cumulative CPU ticks at one instant.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot {
    at: Instant,
    machine_busy: u64,
    workers: u64,
    postgres: u64,
    redis: u64,
}

/// CPU use between two snapshots: cores, and CPU-seconds in all.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    pub secs: f64,
    pub machine: f64,
    pub workers: f64,
    pub postgres: f64,
    pub redis: f64,
}

impl Usage {
    /// CPU microseconds per item of `cores` over the usage's span.
    pub fn micros_per(&self, cores: f64, items: usize) -> f64 {
        cores * self.secs * 1e6 / items.max(1) as f64
    }
}

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

/// Ticks of every process named `postgres` and of every one named `redis-server`.
fn service_ticks() -> (u64, u64) {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return (0, 0);
    };
    let mut pg = 0;
    let mut redis = 0;
    for e in dir.flatten() {
        if !e
            .file_name()
            .to_string_lossy()
            .bytes()
            .all(|b| b.is_ascii_digit())
        {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        match process_ticks(&stat) {
            Some(("postgres", t)) => pg += t,
            Some(("redis-server", t)) => redis += t,
            _ => {}
        }
    }
    (pg, redis)
}

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
    let total: u64 = values.iter().take(8).sum();
    let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
    total - idle
}

/// A snapshot; `workers` are the worker processes' pids. A worker must still be running
/// when the closing snapshot is taken (a reaped process has no `/proc` entry).
pub fn snapshot(workers: &[u32]) -> Snapshot {
    let (postgres, redis) = service_ticks();
    Snapshot {
        at: Instant::now(),
        machine_busy: machine_busy(),
        workers: workers.iter().map(|p| pid_ticks(*p)).sum(),
        postgres,
        redis,
    }
}

/// CPU use from `before` to `after`.
pub fn usage(before: Snapshot, after: Snapshot) -> Usage {
    let secs = after.at.duration_since(before.at).as_secs_f64();
    let ticks = secs * ticks_per_sec();
    let cores = |a: u64, b: u64| b.saturating_sub(a) as f64 / ticks;
    Usage {
        secs,
        machine: cores(before.machine_busy, after.machine_busy),
        workers: cores(before.workers, after.workers),
        postgres: cores(before.postgres, after.postgres),
        redis: cores(before.redis, after.redis),
    }
}

/// `/proc/loadavg`'s first three fields.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
