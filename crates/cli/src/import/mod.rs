//! `outdial import FILE`: bulk-imports customers from a CSV file (header row = the seed's
//! field names) or NDJSON (one customer object per line), straight into Postgres.
//!
//! The file is streamed: rows are read into jobs of `--batch-size` (at most 10,000) and
//! each job is stored and imported as `POST /customers/batch` would have it, by this
//! process (`--jobs` at once) and by any `outdial work` process that is running. At most
//! `--jobs + 1` jobs wait at a time, so memory stays flat whatever the file's size. Rows
//! are validated exactly as `POST /customers` validates; rejected rows are listed with
//! their row, line, customer id and reason (all of them with `--errors-out FILE`, one JSON
//! object per line). `--dry-run` checks every row and stores nothing. The exit status is 0
//! when every row was imported, 2 when some were rejected, 1 when the import failed.

use std::collections::VecDeque;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use outdial_api::AppState;
use outdial_api::import::{RunnerConfig, check_row, run_job};
use outdial_domain::Clock;
use outdial_domain::policy::Ruleset;
use outdial_domain::task::ScheduleType;
use outdial_store::{Company, DEMO_COMPANY, ImportStatus, MAX_IMPORT_ROWS};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinSet;

mod rows;

use rows::{Rows, count_rows};

/// Rejected rows printed on stderr (all of them go to `--errors-out`).
const ERRORS_SHOWN: usize = 20;

/// The file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Csv,
    Ndjson,
}

/// The schedule types an import can create.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScheduleArg {
    Verification,
    Collections,
    Custom,
}

impl From<ScheduleArg> for ScheduleType {
    fn from(s: ScheduleArg) -> ScheduleType {
        match s {
            ScheduleArg::Verification => ScheduleType::Verification,
            ScheduleArg::Collections => ScheduleType::Collections,
            ScheduleArg::Custom => ScheduleType::Custom,
        }
    }
}

/// Arguments of `outdial import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    db: crate::company::DbArgs,
    /// The CSV (header row of field names) or NDJSON file; `-` reads stdin
    file: PathBuf,
    /// The company the customers belong to
    #[arg(long, default_value = DEMO_COMPANY)]
    company: String,
    /// Create each imported customer's schedule of this type (one that has an active
    /// schedule keeps it)
    #[arg(long, value_enum)]
    schedule: Option<ScheduleArg>,
    /// Check every row and store nothing
    #[arg(long)]
    dry_run: bool,
    /// Write every rejected row here, one JSON object per line
    #[arg(long, value_name = "FILE")]
    errors_out: Option<PathBuf>,
    /// The file's format; by default from its extension (.csv, else NDJSON)
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Rows per job (at most 10,000)
    #[arg(long, default_value_t = MAX_IMPORT_ROWS)]
    batch_size: usize,
    /// Jobs this process imports at once (4 keeps 2 cores busy while each waits on
    /// Postgres; docs/benchmarks/import.md)
    #[arg(long, default_value_t = 4)]
    jobs: usize,
    /// Rows per transaction
    #[arg(long, default_value_t = 1000)]
    chunk: usize,
    /// Redis, to enqueue the new calls at once (without it the workers' reconciler
    /// enqueues them within one period)
    #[arg(
        long,
        env = "OUTDIAL_REDIS_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    redis_url: Option<String>,
    /// Key namespace of the queue in Redis
    #[arg(long, env = "OUTDIAL_NAMESPACE", default_value = "outdial")]
    namespace: String,
}

/// The totals of an import.
#[derive(Debug, Default)]
struct Totals {
    rows: u64,
    created: i64,
    updated: i64,
    unchanged: i64,
    rejected: i64,
    scheduled: i64,
    not_checked: u64,
}

/// A job this process created: its first row's index and the rows' lines.
struct Pending {
    id: uuid::Uuid,
    first_row: u64,
    lines: Vec<u64>,
}

/// `outdial import`.
pub fn run(args: &ImportArgs) -> anyhow::Result<ExitCode> {
    let format =
        args.format
            .unwrap_or_else(|| match args.file.extension().and_then(|e| e.to_str()) {
                Some(e) if e.eq_ignore_ascii_case("csv") => Format::Csv,
                _ => Format::Ndjson,
            });
    if !(1..=MAX_IMPORT_ROWS).contains(&args.batch_size) {
        anyhow::bail!("--batch-size must be 1 to {MAX_IMPORT_ROWS}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let store = crate::company::store(&args.db).await?;
        let company = store
            .company_named(&args.company)
            .await
            .with_context(|| format!("no company named {:?}", args.company))?;
        // The ZIP code tables take about half a second to build; build them while the
        // file's rows are counted instead of when the first rows are planned.
        std::thread::spawn(|| {
            outdial_domain::geo::Geo::us();
        });
        let total = count_rows(&args.file, format)?;
        let bar = progress(total);
        let mut errors_out = match &args.errors_out {
            Some(path) => Some(std::io::BufWriter::new(
                std::fs::File::create(path)
                    .with_context(|| format!("cannot create {}", path.display()))?,
            )),
            None => None,
        };
        let mut shown = 0;
        let mut report =
            |row: u64, line: u64, id: Option<&str>, error: &Value| -> anyhow::Result<()> {
                if shown < ERRORS_SHOWN {
                    bar.suspend(|| eprintln!("{}", describe(row, line, id, error)));
                } else if shown == ERRORS_SHOWN {
                    bar.suspend(|| {
                        eprintln!("… more rejected rows (all of them: --errors-out FILE)")
                    });
                }
                shown += 1;
                if let Some(out) = errors_out.as_mut() {
                    serde_json::to_writer(
                        &mut *out,
                        &json!({"row": row, "line": line, "customerId": id, "error": error}),
                    )?;
                    writeln!(out)?;
                }
                Ok(())
            };
        let started = Instant::now();
        let schedule = args.schedule.map(ScheduleType::from);
        let mut rows = Rows::open(&args.file, format)?;
        let totals = if args.dry_run {
            dry_run(&company, schedule, &mut rows, &bar, &mut report)?
        } else {
            let queue = match &args.redis_url {
                Some(url) => Some(
                    outdial_queue::Queue::open(url, &args.namespace, Default::default())
                        .context("cannot open the Redis queue")?,
                ),
                None => None,
            };
            let clock: Arc<dyn Clock> = crate::service_clock()?;
            let state = AppState::new(
                store.clone(),
                clock,
                Arc::new(Ruleset::bundled().context("the bundled ruleset")?),
                queue,
            );
            import(
                args,
                &state,
                &company,
                schedule,
                &mut rows,
                &bar,
                &mut report,
            )
            .await?
        };
        bar.finish_and_clear();
        if let Some(out) = errors_out.as_mut() {
            out.flush().context("cannot write --errors-out")?;
        }
        let seconds = started.elapsed().as_secs_f64();
        let mut summary = json!({
            "company": company.name,
            "dryRun": args.dry_run,
            "rows": totals.rows,
            "rejected": totals.rejected,
            "seconds": (seconds * 100.0).round() / 100.0,
            "rowsPerSecond": (totals.rows as f64 / seconds.max(1e-9)).round(),
        });
        if args.dry_run {
            summary["valid"] =
                json!(totals.rows as i64 - totals.rejected - totals.not_checked as i64);
            summary["syncRowsNotChecked"] = json!(totals.not_checked);
        } else {
            summary["created"] = json!(totals.created);
            summary["updated"] = json!(totals.updated);
            summary["unchanged"] = json!(totals.unchanged);
            summary["scheduled"] = json!(totals.scheduled);
        }
        crate::emit(&summary)?;
        Ok(if totals.rejected > 0 {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        })
    })
}

fn progress(total: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(
        (total > 0).then_some(total),
        indicatif::ProgressDrawTarget::stderr(),
    );
    let style =
        ProgressStyle::with_template("{bar:40} {pos}/{len} rows  {per_sec}  ETA {eta}  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

/// `row 12 (line 14, customer c12): phoneNumber: …`
fn describe(row: u64, line: u64, id: Option<&str>, error: &Value) -> String {
    let fields: Vec<String> = error["fields"]
        .as_array()
        .map(|fields| {
            fields
                .iter()
                .map(|f| {
                    format!(
                        "{}: {}",
                        f["field"].as_str().unwrap_or("?"),
                        f["message"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let reason = if fields.is_empty() {
        error["message"].as_str().unwrap_or("rejected").to_owned()
    } else {
        fields.join("; ")
    };
    match id {
        Some(id) => format!("row {row} (line {line}, customer {id}): {reason}"),
        None => format!("row {row} (line {line}): {reason}"),
    }
}

type Report<'a> = dyn FnMut(u64, u64, Option<&str>, &Value) -> anyhow::Result<()> + 'a;

fn dry_run(
    company: &Company,
    schedule: Option<ScheduleType>,
    rows: &mut Rows,
    bar: &ProgressBar,
    report: &mut Report<'_>,
) -> anyhow::Result<Totals> {
    let today = outdial_domain::SystemClock.now().date_naive();
    let mut totals = Totals::default();
    while let Some(read) = rows.next()? {
        let id = read
            .body
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_owned);
        match check_row(company, schedule, read.body, today) {
            Ok(true) => {}
            Ok(false) => totals.not_checked += 1,
            Err(e) => {
                totals.rejected += 1;
                let error = json!({"code": e.code, "message": e.message, "fields": e.fields});
                report(totals.rows, read.line, id.as_deref(), &error)?;
            }
        }
        totals.rows += 1;
        bar.inc(1);
    }
    Ok(totals)
}

async fn import(
    args: &ImportArgs,
    state: &AppState,
    company: &Company,
    schedule: Option<ScheduleType>,
    rows: &mut Rows,
    bar: &ProgressBar,
    report: &mut Report<'_>,
) -> anyhow::Result<Totals> {
    let source = format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    );
    let owner = format!(
        "import:{}:{}",
        std::env::var("HOSTNAME").unwrap_or_else(|_| "host".into()),
        std::process::id()
    );
    let mut config = RunnerConfig::new(owner);
    config.chunk = args.chunk.max(1);
    let (_stop, shutdown) = watch::channel(false);
    let mut totals = Totals::default();
    let mut waiting: VecDeque<Pending> = VecDeque::new();
    let mut runners: JoinSet<anyhow::Result<()>> = JoinSet::new();
    let mut unstarted: VecDeque<uuid::Uuid> = VecDeque::new();
    let mut done_rows = 0u64;
    let mut eof = false;
    while !eof || !waiting.is_empty() {
        // Read and store jobs while fewer than `jobs + 1` wait.
        while !eof && waiting.len() <= args.jobs.max(1) {
            let mut batch = Vec::with_capacity(args.batch_size);
            let mut lines = Vec::with_capacity(args.batch_size);
            while batch.len() < args.batch_size {
                match rows.next()? {
                    Some(read) => {
                        lines.push(read.line);
                        batch.push(read.body);
                    }
                    None => {
                        eof = true;
                        break;
                    }
                }
            }
            if batch.is_empty() {
                break;
            }
            let id = state
                .store
                .create_import(company.id, &source, schedule, &batch, state.clock.now())
                .await
                .context("cannot store the import job")?;
            let first_row = totals.rows;
            totals.rows += batch.len() as u64;
            waiting.push_back(Pending {
                id,
                first_row,
                lines,
            });
            unstarted.push_back(id);
        }
        // At most `--jobs` imported here at once (the others wait for a runner, or are
        // taken by a worker).
        while runners.len() < args.jobs.max(1)
            && let Some(id) = unstarted.pop_front()
        {
            let (state, config, shutdown) = (state.clone(), config.clone(), shutdown.clone());
            let owner = company.id;
            runners.spawn(async move { work_job(&state, &config, &shutdown, owner, id).await });
        }
        // Report the oldest job once it is done; show progress meanwhile (one progress read
        // per waiting job and turn, its counts only when it is done).
        let mut progress = Vec::with_capacity(waiting.len());
        for p in &waiting {
            progress.push(state.store.import_progress(company.id, p.id).await?);
        }
        let in_progress: i64 = progress.iter().map(|(_, processed)| processed).sum();
        bar.set_position(done_rows + in_progress as u64);
        match progress.first() {
            Some((true, _)) => {
                let oldest = waiting.pop_front().expect("the front job");
                let status = state.store.import_status(company.id, oldest.id).await?;
                finish(state, company, &oldest, &status, &mut totals, report).await?;
                done_rows += status.total as u64;
            }
            Some(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            None => {}
        }
        while let Some(result) = runners.try_join_next() {
            result.context("an import task panicked")??;
        }
    }
    while let Some(result) = runners.join_next().await {
        result.context("an import task panicked")??;
    }
    Ok(totals)
}

/// Runs job `id` here until it is done; when another process holds it, waits for that one.
async fn work_job(
    state: &AppState,
    config: &RunnerConfig,
    shutdown: &watch::Receiver<bool>,
    company: outdial_store::CompanyId,
    id: uuid::Uuid,
) -> anyhow::Result<()> {
    let mut failures = 0;
    loop {
        match run_job(state, config, shutdown, id).await {
            Ok(true) => {}
            Ok(false) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) if e.is_transient() && failures < 10 => {
                failures += 1;
                tracing::warn!(error = %e, "import failed; trying again");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e).context("the import failed"),
        }
        if state.store.import_progress(company, id).await?.0 {
            return Ok(());
        }
    }
}

async fn finish(
    state: &AppState,
    company: &Company,
    job: &Pending,
    status: &ImportStatus,
    totals: &mut Totals,
    report: &mut Report<'_>,
) -> anyhow::Result<()> {
    let c = &status.counts;
    totals.created += c.created;
    totals.updated += c.updated;
    totals.unchanged += c.unchanged;
    totals.rejected += c.rejected;
    totals.scheduled += c.scheduled;
    let mut after = None;
    loop {
        let (page, next) = state
            .store
            .import_errors(company.id, job.id, after, outdial_store::MAX_ERROR_PAGE)
            .await?;
        for e in &page {
            let row = u64::try_from(e.row).unwrap_or(0);
            let line = job.lines.get(row as usize).copied().unwrap_or(0);
            report(
                job.first_row + row,
                line,
                e.customer_id.as_deref(),
                &e.error,
            )?;
        }
        match next {
            Some(n) => after = Some(n),
            None => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rejected_row_is_described_by_row_line_customer_and_field() {
        let error = json!({"code": "invalid_request", "message": "invalid request",
                           "fields": [{"field": "phoneNumber", "code": "invalid_format",
                                       "message": "phoneNumber must be E.164"}]});
        assert_eq!(
            describe(3, 5, Some("c3"), &error),
            "row 3 (line 5, customer c3): phoneNumber: phoneNumber must be E.164"
        );
    }
}
