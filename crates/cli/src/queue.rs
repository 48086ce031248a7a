//! `outdial queue stats | list | show | retry | cancel | purge dead`: the operator's view of
//! the queue, straight against Redis and Postgres (it works while the API is down). Tables
//! on a terminal (colour only there), `--json` for scripts. The operations themselves are
//! `outdial_api::admin::ops`, shared with the `/admin` routes.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use comfy_table::{Cell, Color, Table, presets::UTF8_FULL_CONDENSED};
use outdial_api::admin::ops::{CallView, ListPage, Ops, StatsReport};
use outdial_dialer::limits::Limits;
use outdial_queue::{Queue, QueueConfig};
use serde_json::{Value, json};

use crate::company::DbArgs;
use crate::emit;

/// Where Redis is.
#[derive(Debug, Args)]
pub struct RedisArgs {
    /// Redis URL (`ops/stack.sh` prints one)
    #[arg(
        long,
        env = "OUTDIAL_REDIS_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    redis_url: String,
    /// Key namespace of the queue and the rate limits in Redis
    #[arg(long, env = "OUTDIAL_NAMESPACE", default_value = "outdial")]
    namespace: String,
}

/// The only purge target today.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PurgeWhat {
    /// Dead calls (retries exhausted or dead-lettered).
    Dead,
}

/// `outdial queue …`.
#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// Calls by state per company and in total, lateness, dispatches, slots, pauses.
    Stats {
        /// Only this company
        #[arg(long)]
        company: Option<String>,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        redis: RedisArgs,
    },
    /// One page of calls in a state: scheduled, due, in_flight, reconcile, dead.
    List {
        state: String,
        #[arg(long)]
        company: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// The `nextCursor` of the previous page
        #[arg(long)]
        cursor: Option<String>,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        redis: RedisArgs,
    },
    /// A call's whole life: row, queue state, attempts, trail, webhooks, admin actions.
    Show {
        call_id: String,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        redis: RedisArgs,
    },
    /// Put a dead or lost pending call back on the queue.
    Retry {
        call_id: String,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        redis: RedisArgs,
    },
    /// Cancel a pending call (asks first unless --yes).
    Cancel {
        call_id: String,
        /// Do not ask
        #[arg(long)]
        yes: bool,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        redis: RedisArgs,
    },
    /// Cancel and remove dead calls (asks first unless --yes).
    Purge {
        #[arg(value_enum)]
        what: PurgeWhat,
        #[arg(long)]
        company: Option<String>,
        /// Only calls dead for at least this long (`30m`, `2h`, `7d`)
        #[arg(long, value_parser = parse_age)]
        older_than: Option<chrono::Duration>,
        #[arg(long)]
        yes: bool,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        redis: RedisArgs,
    },
}

fn parse_age(s: &str) -> Result<chrono::Duration, String> {
    outdial_api::admin::parse_age(s)
}

/// Who the CLI records as the actor of its writes.
pub fn actor() -> String {
    format!(
        "cli:{}",
        std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| "unknown".into())
    )
}

/// The operations against Postgres (`db`) and Redis (`redis`).
pub async fn ops(db: &DbArgs, redis: &RedisArgs) -> anyhow::Result<Ops> {
    let store = crate::company::store(db).await?;
    let queue = Queue::open(&redis.redis_url, &redis.namespace, QueueConfig::default())
        .context("cannot open the Redis queue")?;
    let conn = outdial_redis::Redis::open(&redis.redis_url, &outdial_redis::Options::default())
        .await
        .context("cannot connect to Redis")?;
    let clock = crate::service_clock()?;
    let limits = Limits::new(
        conn,
        &format!("{}:{{limits}}", redis.namespace),
        Arc::clone(&clock),
    )
    .context("bad Redis namespace")?;
    Ok(Ops {
        store,
        queue,
        limits: Some(limits),
        clock,
    })
}

/// Asks `question` on stderr and reads y/N from stdin; end of input is "no".
fn confirm(question: &str) -> anyhow::Result<bool> {
    eprint!("{question} [y/N] ");
    std::io::stderr().flush().ok();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}

fn tty() -> bool {
    std::io::stdout().is_terminal()
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    if !tty() {
        t.force_no_tty();
    }
    t.set_header(header.iter().map(Cell::new));
    t
}

fn print(t: &Table) -> anyhow::Result<()> {
    line(t)
}

/// Writes one line to stdout; a reader that stops early (`| head`, `| true`) is not an
/// error: the command's work is done and recorded either way.
fn line(text: impl std::fmt::Display) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write the output"),
    }
}

fn warn_cell(text: String, bad: bool) -> Cell {
    let c = Cell::new(text);
    if bad && tty() { c.fg(Color::Red) } else { c }
}

fn print_stats(r: &StatsReport) -> anyhow::Result<()> {
    let mut t = table(&[
        "company",
        "scheduled",
        "due",
        "in flight",
        "deferred",
        "retrying",
        "reconcile",
        "dead",
        "lateness",
        "dials/min",
        "live/cap",
        "paused",
    ]);
    for c in r.companies.iter().chain(std::iter::once(&r.total)) {
        let paused = if c.paused {
            "yes".to_owned()
        } else if !c.paused_task_types.is_empty() {
            c.paused_task_types.join(",")
        } else {
            "no".to_owned()
        };
        t.add_row(vec![
            Cell::new(&c.company),
            Cell::new(c.scheduled),
            Cell::new(c.due),
            Cell::new(c.in_flight),
            Cell::new(c.deferred),
            Cell::new(c.retrying),
            warn_cell(c.reconcile.to_string(), c.reconcile > 0),
            warn_cell(c.dead.to_string(), c.dead > 0),
            warn_cell(
                format!("{:.1}s", c.oldest_due_lateness_secs),
                c.oldest_due_lateness_secs > 60.0,
            ),
            Cell::new(c.dispatches_last_minute),
            Cell::new(format!(
                "{}/{}",
                c.live_calls.map_or("-".into(), |n| n.to_string()),
                c.live_call_cap
            )),
            warn_cell(paused, c.paused || !c.paused_task_types.is_empty()),
        ]);
    }
    print(&t)
}

fn print_list(p: &ListPage) -> anyhow::Result<()> {
    let mut t = table(&["call", "company", "at"]);
    for i in &p.items {
        t.add_row(vec![
            Cell::new(&i.call_id),
            Cell::new(&i.company),
            Cell::new(i.at.to_rfc3339()),
        ]);
    }
    print(&t)?;
    if let Some(c) = &p.next_cursor {
        line(format_args!("next page: --cursor {c}"))?;
    }
    Ok(())
}

fn print_show(v: &CallView) -> anyhow::Result<()> {
    let call = &v.call;
    let s = |k: &str| {
        call.get(k)
            .map(|x| x.to_string().trim_matches('"').to_owned())
    };
    let mut t = table(&["field", "value"]);
    for (k, val) in [
        ("call", s("id")),
        ("company", Some(v.company.clone())),
        ("customer", s("customerId")),
        ("status", s("status")),
        ("due at", s("scheduledAt")),
        ("local time", s("localTime")),
        ("attempts", s("attempts")),
        (
            "queue",
            Some(
                v.queue
                    .as_ref()
                    .map_or("not in Redis".into(), |q| q.to_string()),
            ),
        ),
    ] {
        t.add_row(vec![Cell::new(k), Cell::new(val.unwrap_or_default())]);
    }
    print(&t)?;
    let mut trail = table(&["at", "event", "status", "due", "rules"]);
    for e in call
        .get("decisionTrail")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let g = |k: &str| e.get(k).map(|x| x.to_string().trim_matches('"').to_owned());
        let rules: Vec<String> = e
            .get("blocks")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|b| {
                Some(format!(
                    "{} ({})",
                    b.get("rule")?.as_str()?,
                    b.get("reason")?.as_str()?
                ))
            })
            .collect();
        trail.add_row(vec![
            Cell::new(g("at").unwrap_or_default()),
            Cell::new(g("event").unwrap_or_default()),
            Cell::new(g("status").unwrap_or_default()),
            Cell::new(g("dueAt").unwrap_or_default()),
            Cell::new(rules.join(", ")),
        ]);
    }
    line("decision trail")?;
    print(&trail)?;
    let mut a = table(&["attempt", "status", "outcome", "flags", "started", "ended"]);
    for x in &v.attempts {
        a.add_row(vec![
            Cell::new(x.attempt),
            Cell::new(&x.status),
            Cell::new(x.outcome.clone().unwrap_or_default()),
            Cell::new(x.flags.join(",")),
            Cell::new(x.started_at.to_rfc3339()),
            Cell::new(x.ended_at.map(|t| t.to_rfc3339()).unwrap_or_default()),
        ]);
    }
    line("attempts")?;
    print(&a)?;
    let mut w = table(&["event", "status", "tries", "created", "last error"]);
    for d in &v.webhook_deliveries {
        w.add_row(vec![
            Cell::new(&d.event),
            warn_cell(d.status.clone(), d.status == "dead"),
            Cell::new(d.attempts),
            Cell::new(d.created_at.to_rfc3339()),
            Cell::new(d.last_error.clone().unwrap_or_default()),
        ]);
    }
    line("webhook deliveries")?;
    print(&w)?;
    let mut adm = table(&["at", "actor", "action", "detail"]);
    for x in &v.admin_actions {
        let g = |k: &str| x.get(k).map(|v| v.to_string().trim_matches('"').to_owned());
        adm.add_row(vec![
            Cell::new(g("at").unwrap_or_default()),
            Cell::new(g("actor").unwrap_or_default()),
            Cell::new(g("action").unwrap_or_default()),
            Cell::new(g("detail").unwrap_or_default()),
        ]);
    }
    line("admin actions")?;
    print(&adm)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Prints a write's result: JSON, or one line.
fn done(what: &str, doc: &Value, as_json: bool) -> anyhow::Result<()> {
    if as_json {
        emit(doc)
    } else {
        line(format_args!("{what}: {doc}"))
    }
}

/// `outdial queue …`.
pub fn run(command: &QueueCommand) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        match command {
            QueueCommand::Stats {
                company,
                json,
                db,
                redis,
            } => {
                let r = ops(db, redis).await?.stats(company.as_deref()).await?;
                if *json {
                    emit(&serde_json::to_value(&r)?)?;
                } else {
                    print_stats(&r)?;
                }
            }
            QueueCommand::List {
                state,
                company,
                limit,
                cursor,
                json,
                db,
                redis,
            } => {
                let p = ops(db, redis)
                    .await?
                    .list(state, company.as_deref(), *limit, cursor.as_deref())
                    .await?;
                if *json {
                    emit(&serde_json::to_value(&p)?)?;
                } else {
                    print_list(&p)?;
                }
            }
            QueueCommand::Show {
                call_id,
                json,
                db,
                redis,
            } => {
                let v = ops(db, redis).await?.show(call_id).await?;
                if *json {
                    emit(&serde_json::to_value(&v)?)?;
                } else {
                    print_show(&v)?;
                }
            }
            QueueCommand::Retry {
                call_id,
                json,
                db,
                redis,
            } => {
                let d = ops(db, redis).await?.retry(call_id, &actor()).await?;
                done("retried", &d, *json)?;
            }
            QueueCommand::Cancel {
                call_id,
                yes,
                json,
                db,
                redis,
            } => {
                if !*yes && !confirm(&format!("cancel call {call_id}?"))? {
                    eprintln!("not cancelled");
                    return Ok(ExitCode::FAILURE);
                }
                let d = ops(db, redis).await?.cancel(call_id, &actor()).await?;
                done("cancelled", &d, *json)?;
            }
            QueueCommand::Purge {
                what: PurgeWhat::Dead,
                company,
                older_than,
                yes,
                json,
                db,
                redis,
            } => {
                let scope = company.as_deref().unwrap_or("every company");
                if !*yes && !confirm(&format!("cancel and remove the dead calls of {scope}?"))? {
                    eprintln!("nothing purged");
                    return Ok(ExitCode::FAILURE);
                }
                let d = ops(db, redis)
                    .await?
                    .purge_dead(
                        company.as_deref(),
                        older_than.unwrap_or_else(chrono::Duration::zero),
                        &actor(),
                    )
                    .await?;
                done("purged", &d, *json)?;
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `outdial company pause|resume NAME [--task-type T]`: the document to print.
pub async fn pause(
    name: &str,
    task_type: Option<&str>,
    resume: bool,
    db: &DbArgs,
    redis: &RedisArgs,
) -> anyhow::Result<Value> {
    let ops = ops(db, redis).await?;
    let doc = if resume {
        ops.resume(name, task_type, &actor()).await?
    } else {
        ops.pause(name, task_type, &actor()).await?
    };
    Ok(json!({ "company": name, "result": doc }))
}
