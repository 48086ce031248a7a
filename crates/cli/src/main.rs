//! The `outdial` binary: the operator's entry point.
//!
//! Owns argument parsing, reading files and stdin, exit codes and printing; every decision
//! is made by `outdial_domain`. This is the only crate that reads the wall clock (once, in
//! [`main`], through `SystemClock`) and, later, the environment. Output is one JSON document
//! on stdout; problems go to stderr. Exit codes: 0 done, 1 unusable input or file, 2 invalid
//! customer (a `{"error": …}` envelope on stdout) or bad command line.

mod company;
mod config;
mod customer;
mod decide;
mod import;
mod preview;
mod queue;
mod rules;
mod serve;
mod work;

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;

/// mimalloc instead of glibc's malloc: a worker allocates per call (futures, query
/// arguments, JSON payloads, HTTP bodies) on several threads, and glibc's allocator took
/// about a quarter of a worker's CPU in the dispatch benchmark (perf, 2026-12-02:
/// `_int_malloc`, `free`, `malloc_consolidate`, `unlink_chunk`).
///
/// `outdial import` turns transparent huge pages off for itself ([`no_huge_pages`]).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Turns transparent huge pages off for this process (`outdial import`). With the kernel's
/// THP set to `always` (this machine's setting), each page mimalloc hands back to the OS
/// and takes again came back as a 2 MiB page the kernel zeroed: 16 % of an import's CPU
/// (perf, 2026-12-08), about 20 % more CPU and 35 % more peak memory than without
/// (docs/benchmarks/import.md). The worker and the API keep the kernel's setting: their
/// benchmarks were measured with it. A failure changes nothing else and is ignored.
fn no_huge_pages() {
    #[cfg(target_os = "linux")]
    let _ = rustix::thread::disable_transparent_huge_pages(true);
}
use chrono::{DateTime, Utc};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use outdial_domain::{Clock, SystemClock};
use serde_json::Value;

/// Exit code for a customer that fails validation (the error envelope is on stdout).
const EXIT_INVALID_CUSTOMER: u8 = 2;

/// Schedules and dispatches compliant outbound calls for lenders.
#[derive(Debug, Parser)]
#[command(name = "outdial", version)]
struct Cli {
    /// The configuration file (outdial.toml); flags and the environment override it
    #[arg(long, global = true, env = "OUTDIAL_CONFIG", value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

/// `outdial config …`.
#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration (flags aside): each setting's value, secrets
    /// masked, and whether it came from the environment, the file or the default.
    Check,
}

/// Arguments of `outdial run`.
#[derive(Debug, clap::Args)]
struct RunArgs {
    #[command(flatten)]
    serve: serve::ServeArgs,
    #[command(flatten)]
    worker: work::WorkerArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Expand a customer's schedule into lawful call instants (nothing is dialed).
    Preview(preview::PreviewArgs),
    /// Decide whether a call at one instant is lawful and, if not, when it next is.
    Decide(decide::DecideArgs),
    /// Check calling rulesets.
    Rules {
        #[command(subcommand)]
        command: rules::RulesCommand,
    },
    /// Run outdial: the HTTP API with a demo company (prints its key), the dispatch worker
    /// with the built-in simulated provider, webhook delivery and the reconciler.
    Run(RunArgs),
    /// Run the dispatch worker, webhook delivery and the reconciler (no API).
    Work(work::WorkArgs),
    /// Serve the HTTP API against Postgres, with the demo company.
    Serve(serve::ServeCmd),
    /// Apply the Postgres migrations.
    Migrate(company::DbArgs),
    /// Manage companies (tenants) and their API keys; pause and resume their calls.
    Company {
        #[command(subcommand)]
        command: company::CompanyCommand,
    },
    /// Bulk-import customers from a CSV or NDJSON file (optionally with their schedules).
    Import(import::ImportArgs),
    /// Check the configuration file and print the effective settings.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Inspect and repair the call queue (Redis and Postgres directly).
    Queue {
        #[command(subcommand)]
        command: queue::QueueCommand,
    },
}

/// Installs the log subscriber: stderr, filtered by `OUTDIAL_LOG` (an `EnvFilter`
/// directive, default `info`), JSON lines when `OUTDIAL_LOG_FORMAT=json`.
fn init_logs() {
    let filter = config::var("OUTDIAL_LOG")
        .and_then(|f| tracing_subscriber::EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let json = config::var("OUTDIAL_LOG_FORMAT").is_some_and(|f| f == "json");
    // A subscriber may already be set (never in the binary); ignore that case.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(path) = config::path_from(&args) {
        match config::load(&path) {
            Ok(loaded) => config::install(loaded),
            Err(err) => {
                eprintln!("error: {err:#}");
                return ExitCode::FAILURE;
            }
        }
    }
    let matches = config::with_file_defaults(Cli::command()).get_matches_from(args);
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    init_logs();
    let now = SystemClock.now();
    let result = match &cli.command {
        Command::Preview(args) => preview::run(args, now),
        Command::Decide(args) => decide::run(args, now),
        Command::Rules { command } => rules::run(command),
        Command::Run(args) => serve::run(&args.serve, None, Some(&args.worker)),
        Command::Work(args) => work::run(args),
        Command::Serve(args) => serve::run(&args.serve, Some(&args.redis), None),
        Command::Migrate(db) => company::migrate(db),
        Command::Company { command } => company::run(command, now),
        Command::Queue { command } => queue::run(command),
        Command::Import(args) => {
            no_huge_pages();
            import::run(args)
        }
        Command::Config {
            command: ConfigCommand::Check,
        } => config::check(&Cli::command()),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// The clock of `serve`, `work` and `run`: the system clock, shifted by
/// `OUTDIAL_CLOCK_OFFSET_SECS` seconds when that is set (tests and drills that must run at a
/// lawful calling hour; every process of one deployment must use the same shift, since
/// leases, due times and rate limits compare instants across processes).
fn service_clock() -> anyhow::Result<std::sync::Arc<dyn Clock>> {
    let offset = match config::var("OUTDIAL_CLOCK_OFFSET_SECS") {
        Some(v) => v.trim().parse::<i64>().map_err(|_| {
            anyhow::anyhow!("OUTDIAL_CLOCK_OFFSET_SECS must be a whole number of seconds")
        })?,
        None => 0,
    };
    if offset == 0 {
        return Ok(std::sync::Arc::new(SystemClock));
    }
    tracing::warn!(
        offset.secs = offset,
        "the clock is shifted (OUTDIAL_CLOCK_OFFSET_SECS)"
    );
    Ok(std::sync::Arc::new(outdial_domain::ShiftedClock {
        offset: chrono::Duration::seconds(offset),
    }))
}

/// Prints one pretty JSON document and a newline to stdout. A reader that stops early
/// (`outdial run | head`) is not an error.
fn emit(doc: &Value) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let written = serde_json::to_writer_pretty(&mut out, doc)
        .map_err(std::io::Error::from)
        .and_then(|()| writeln!(out))
        .and_then(|()| out.flush());
    match written {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write the output"),
    }
}

/// Prints one compact JSON document on its own line and flushes (for line-reading tools).
fn emit_line(doc: &Value) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, doc)
        .map_err(std::io::Error::from)
        .and_then(|()| writeln!(out))
        .and_then(|()| out.flush())
        .context("cannot write the output")
}

/// Parses an RFC 3339 instant (`2026-11-23T05:00:00Z`, any offset) into UTC.
fn parse_instant(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{e} (expected RFC 3339, e.g. 2026-11-23T05:00:00Z)"))
}
