//! The closed-loop load generator: a fixed number of callers, each with one request in
//! flight at a time (for HTTP, one keep-alive connection each), a warm-up, then a measured
//! phase. Both phases are bounded in time; each request has its own timeout, and a caller
//! that keeps failing gives up, so a run always stops by itself.

use std::future::Future;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// A request timeout: a request slower than this counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// A caller stops after this many errors (a dead server must not spin the loop).
const MAX_ERRORS_PER_CALLER: u64 = 100;
/// How many error descriptions a run keeps to print.
const ERROR_SAMPLES: usize = 5;

/// One kind of request, made over and over by one caller.
pub trait Caller: Send + 'static {
    /// Makes one request; `Err` describes any failure (transport, timeout, wrong status).
    fn call(&mut self) -> impl Future<Output = Result<(), String>> + Send;
}

/// How long to warm up and how long to measure.
#[derive(Debug, Clone, Copy)]
pub struct Phases {
    pub warmup: Duration,
    pub measure: Duration,
}

/// What one run measured.
#[derive(Debug)]
pub struct Outcome {
    /// Requests that started and finished inside the measured phase, per second.
    pub rate: f64,
    /// Their latency in microseconds.
    pub latency: Histogram<u64>,
    /// Failed requests over the whole run, warm-up included.
    pub errors: u64,
    /// The first few failures.
    pub error_samples: Vec<String>,
}

/// The clock instants that bound the phases of a run starting now.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub measure_from: Instant,
    pub until: Instant,
}

impl Phases {
    /// The phase boundaries of a run that starts now.
    pub fn window(self) -> Window {
        let measure_from = Instant::now() + self.warmup;
        Window {
            measure_from,
            until: measure_from + self.measure,
        }
    }
}

/// Runs every caller until the end of `window` and merges what they measured.
pub async fn run<C: Caller>(callers: Vec<C>, window: Window) -> Outcome {
    let tasks: Vec<_> = callers
        .into_iter()
        .map(|caller| tokio::spawn(drive(caller, window)))
        .collect();
    let mut latency = histogram();
    let mut completed = 0;
    let mut errors = 0;
    let mut error_samples = Vec::new();
    for task in tasks {
        match task.await {
            Ok(stats) => {
                latency.add(&stats.latency).unwrap_or_else(|e| {
                    error_samples.push(format!("histogram merge: {e}"));
                });
                completed += stats.completed;
                errors += stats.errors;
                error_samples.extend(stats.error_samples);
            }
            Err(e) => {
                errors += 1;
                error_samples.push(format!("caller task failed: {e}"));
            }
        }
    }
    error_samples.truncate(ERROR_SAMPLES);
    let measured = window.until.duration_since(window.measure_from);
    Outcome {
        rate: completed as f64 / measured.as_secs_f64(),
        latency,
        errors,
        error_samples,
    }
}

/// One caller's share of a run.
struct Stats {
    completed: u64,
    latency: Histogram<u64>,
    errors: u64,
    error_samples: Vec<String>,
}

fn histogram() -> Histogram<u64> {
    // 1 µs to 60 s at 3 significant digits; the bounds are constants, so this cannot fail.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

async fn drive<C: Caller>(mut caller: C, window: Window) -> Stats {
    let mut stats = Stats {
        completed: 0,
        latency: histogram(),
        errors: 0,
        error_samples: Vec::new(),
    };
    loop {
        let started = Instant::now();
        if started >= window.until || stats.errors >= MAX_ERRORS_PER_CALLER {
            break;
        }
        let result = match tokio::time::timeout(REQUEST_TIMEOUT, caller.call()).await {
            Ok(result) => result,
            Err(_) => Err(format!("no answer within {REQUEST_TIMEOUT:?}")),
        };
        let finished = Instant::now();
        match result {
            Ok(()) => {
                if started >= window.measure_from && finished <= window.until {
                    let micros = u64::try_from(finished.duration_since(started).as_micros())
                        .unwrap_or(u64::MAX);
                    stats.latency.saturating_record(micros.max(1));
                    stats.completed += 1;
                }
            }
            Err(e) => {
                stats.errors += 1;
                if stats.error_samples.len() < ERROR_SAMPLES {
                    stats.error_samples.push(e);
                }
            }
        }
    }
    stats
}
