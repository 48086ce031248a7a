//! Crash probe for apalis-postgres 1.0.0: does a bulk-import job survive a SIGKILL of the
//! process that runs it?  See README.md next to this file for the runs and the verdict.
//!
//! Subcommands (DATABASE_URL must point at a scratch database):
//!   push N_ROWS          create the probe tables + apalis schema, push "import job 1 of N_ROWS rows"
//!   work NAME            run an apalis worker called NAME that executes the import
//!   wait N_ROWS SECS     poll until the job is Done and all rows are imported (bounded), printing
//!                        every change of the apalis job row (status/attempts/lock_by) with a timestamp
//!   check N_ROWS         print rows, runs, overlaps, apalis columns and a PASS/FAIL line per check
//!
//! Knobs (env): HEARTBEAT_MS (default 1000), MISSED_HEARTBEATS (default 2), CHUNK (100),
//! CHUNK_SLEEP_MS (100; 5,000 rows then take ~5 s), BLOCK_AT_CHUNK + BLOCK_MS (block the thread
//! with std::thread::sleep after that chunk of each handler run in that process; default off).

use std::{env, time::Duration};

use apalis::prelude::*;
use apalis_postgres::{Config, PostgresStorage};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgPool, Row, postgres::PgPoolOptions};

const QUEUE: &str = "outdial-import-probe";
const JOB: i64 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ImportJob {
    job: i64,
    n_rows: i64,
}

fn now() -> String {
    Utc::now().format("%H:%M:%S%.3f").to_string()
}

fn env_u64(name: &str, default: u64) -> u64 {
    env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn config() -> Config {
    Config::default()
        .queue(QUEUE)
        .batch_size(1)
        .heartbeat_interval(Duration::from_millis(env_u64("HEARTBEAT_MS", 1000)))
        .missed_heartbeats(env_u64("MISSED_HEARTBEATS", 2) as usize)
}

async fn pool() -> PgPool {
    let url = env::var("DATABASE_URL").expect("DATABASE_URL");
    PgPoolOptions::new()
        .max_connections(5)
        .connect(&url)
        .await
        .expect("connect")
}

const DDL: &str = r#"
CREATE TABLE IF NOT EXISTS import_progress (
    job            bigint PRIMARY KEY,
    n_rows         bigint NOT NULL,
    next_row       bigint NOT NULL DEFAULT 0,   -- checkpoint: first row not yet imported
    rows_imported  bigint NOT NULL DEFAULT 0,   -- counter advanced in the chunk transaction
    chunks         bigint NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS import_rows (
    job         bigint NOT NULL,
    row         bigint NOT NULL,
    run_id      bigint NOT NULL,
    worker      text   NOT NULL,
    imported_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (job, row)
);
-- append-only: one row per handler invocation (start), written outside the chunk transactions
CREATE TABLE IF NOT EXISTS import_runs (
    run_id       bigserial PRIMARY KEY,
    job          bigint NOT NULL,
    worker       text   NOT NULL,
    pid          int    NOT NULL,
    task_id      text   NOT NULL,
    attempt      bigint NOT NULL,
    resumed_from bigint NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);
-- append-only: one row per committed chunk (same transaction as the rows and the checkpoint)
CREATE TABLE IF NOT EXISTS import_chunks (
    run_id       bigint NOT NULL,
    job          bigint NOT NULL,
    worker       text   NOT NULL,
    first_row    bigint NOT NULL,
    n            bigint NOT NULL,
    committed_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
"#;

async fn push(n_rows: i64) {
    let pool = pool().await;
    PostgresStorage::setup(&pool).await.expect("apalis setup");
    sqlx::raw_sql(DDL).execute(&pool).await.expect("ddl");
    sqlx::query("INSERT INTO import_progress (job, n_rows) VALUES ($1, $2)")
        .bind(JOB)
        .bind(n_rows)
        .execute(&pool)
        .await
        .expect("progress row");
    let mut storage = PostgresStorage::<ImportJob>::new(&pool).with_config(config());
    storage
        .push(ImportJob { job: JOB, n_rows })
        .await
        .expect("push");
    let row = sqlx::query("SELECT id, status, attempts, max_attempts FROM apalis.jobs WHERE job_type = $1")
        .bind(QUEUE)
        .fetch_one(&pool)
        .await
        .unwrap();
    println!(
        "[{}] push: job {JOB} of {n_rows} rows -> apalis task {} status={} attempts={} max_attempts={}",
        now(),
        row.get::<String, _>("id"),
        row.get::<String, _>("status"),
        row.get::<i32, _>("attempts"),
        row.get::<i32, _>("max_attempts"),
    );
}

#[derive(Clone)]
struct Ctx {
    pool: PgPool,
    name: String,
    chunk: i64,
    chunk_sleep: Duration,
    block_at_chunk: u64,
    block: Duration,
}

async fn import(
    job: ImportJob,
    attempt: Attempt,
    task_id: TaskId,
    ctx: Data<Ctx>,
) -> Result<(), BoxDynError> {
    let pool = &ctx.pool;
    let next: i64 = sqlx::query_scalar("SELECT next_row FROM import_progress WHERE job = $1")
        .bind(job.job)
        .fetch_one(pool)
        .await?;
    let run_id: i64 = sqlx::query_scalar(
        "INSERT INTO import_runs (job, worker, pid, task_id, attempt, resumed_from)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING run_id",
    )
    .bind(job.job)
    .bind(&ctx.name)
    .bind(std::process::id() as i32)
    .bind(task_id.to_string())
    .bind(attempt.current() as i64)
    .bind(next)
    .fetch_one(pool)
    .await?;
    println!(
        "[{}] {}: handler START run_id={run_id} task={task_id} attempt={} resume_from_row={next}/{}",
        now(),
        ctx.name,
        attempt.current(),
        job.n_rows
    );
    let mut chunks = 0u64;
    loop {
        let mut tx = pool.begin().await?;
        // Lock the checkpoint row: the chunk's rows, the counter and the checkpoint commit together.
        let (next_row, n_rows): (i64, i64) =
            sqlx::query_as("SELECT next_row, n_rows FROM import_progress WHERE job = $1 FOR UPDATE")
                .bind(job.job)
                .fetch_one(&mut *tx)
                .await?;
        if next_row >= n_rows {
            tx.commit().await?;
            break;
        }
        let end = (next_row + ctx.chunk).min(n_rows);
        sqlx::query(
            "INSERT INTO import_rows (job, row, run_id, worker)
             SELECT $1, g, $2, $3 FROM generate_series($4::bigint, $5::bigint - 1) g",
        )
        .bind(job.job)
        .bind(run_id)
        .bind(&ctx.name)
        .bind(next_row)
        .bind(end)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE import_progress SET next_row = $2, rows_imported = rows_imported + ($2 - $3),
                    chunks = chunks + 1 WHERE job = $1",
        )
        .bind(job.job)
        .bind(end)
        .bind(next_row)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO import_chunks (run_id, job, worker, first_row, n) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(run_id)
        .bind(job.job)
        .bind(&ctx.name)
        .bind(next_row)
        .bind(end - next_row)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        chunks += 1;
        if chunks == ctx.block_at_chunk {
            // Simulates synchronous work in the handler (e.g. parsing a CSV) that blocks the thread.
            println!("[{}] {}: run_id={run_id} blocking the thread for {:?}", now(), ctx.name, ctx.block);
            std::thread::sleep(ctx.block);
            println!("[{}] {}: run_id={run_id} unblocked", now(), ctx.name);
        }
        if chunks % 10 == 0 {
            println!("[{}] {}: run_id={run_id} committed through row {end}", now(), ctx.name);
        }
        tokio::time::sleep(ctx.chunk_sleep).await;
    }
    println!(
        "[{}] {}: handler DONE run_id={run_id} chunks_this_run={chunks}",
        now(),
        ctx.name
    );
    Ok(())
}

async fn work(name: String) {
    let pool = pool().await;
    let cfg = config();
    println!(
        "[{}] {name}: pid={} starting worker; heartbeat_interval={:?} missed_heartbeats={} orphaned_duration={:?} (apalis passes {}s to SQL)",
        now(),
        std::process::id(),
        cfg.heartbeat_interval,
        cfg.missed_heartbeats,
        cfg.orphaned_duration(),
        cfg.orphaned_duration().as_secs()
    );
    let storage = PostgresStorage::<ImportJob>::new(&pool).with_config(cfg);
    let ctx = Ctx {
        pool: pool.clone(),
        name: name.clone(),
        chunk: env_u64("CHUNK", 100) as i64,
        chunk_sleep: Duration::from_millis(env_u64("CHUNK_SLEEP_MS", 100)),
        block_at_chunk: env_u64("BLOCK_AT_CHUNK", 0),
        block: Duration::from_millis(env_u64("BLOCK_MS", 0)),
    };
    let quiet_hb = env::var("LOG_HEARTBEATS").is_err();
    let wname = name.clone();
    let worker = WorkerBuilder::new(name.as_str())
        .backend(storage)
        .data(ctx)
        .on_event(move |_w, ev| match ev {
            Event::HeartBeat if quiet_hb => {}
            Event::Success(_) => println!("[{}] {wname}: event Success", now()),
            other => println!("[{}] {wname}: event {other:?}", now()),
        })
        .build(import);
    match worker.run().await {
        Ok(()) => println!("[{}] {name}: worker.run() returned Ok", now()),
        Err(e) => println!("[{}] {name}: worker.run() returned Err: {e:?}", now()),
    }
}

async fn job_row(pool: &PgPool) -> (String, i32, Option<String>, Option<DateTime<Utc>>) {
    let r = sqlx::query("SELECT status, attempts, lock_by, lock_at FROM apalis.jobs WHERE job_type = $1")
        .bind(QUEUE)
        .fetch_one(pool)
        .await
        .unwrap();
    (r.get(0), r.get(1), r.get(2), r.get(3))
}

async fn wait(n_rows: i64, secs: u64) -> bool {
    let pool = pool().await;
    let start = std::time::Instant::now();
    let mut last = None;
    loop {
        let (status, attempts, lock_by, _) = job_row(&pool).await;
        let next: i64 = sqlx::query_scalar("SELECT next_row FROM import_progress WHERE job = $1")
            .bind(JOB)
            .fetch_one(&pool)
            .await
            .unwrap();
        let key = (status.clone(), attempts, lock_by.clone());
        if last.as_ref() != Some(&key) {
            println!(
                "[{}] wait +{:>5.1}s: apalis status={status} attempts={attempts} lock_by={} | next_row={next}/{n_rows}",
                now(),
                start.elapsed().as_secs_f64(),
                lock_by.as_deref().unwrap_or("NULL")
            );
            last = Some(key);
        }
        if status == "Done" && next >= n_rows {
            println!("[{}] wait: finished after {:.1}s", now(), start.elapsed().as_secs_f64());
            return true;
        }
        if start.elapsed() > Duration::from_secs(secs) {
            println!(
                "[{}] wait: TIMEOUT after {secs}s: status={status} next_row={next}/{n_rows}",
                now()
            );
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn check(n_rows: i64) -> bool {
    let pool = pool().await;
    let q = |sql: &'static str| sqlx::query_scalar::<_, i64>(sql);
    let present = q("SELECT count(*) FROM import_rows WHERE job = 1").fetch_one(&pool).await.unwrap();
    let distinct = q("SELECT count(DISTINCT row) FROM import_rows WHERE job = 1").fetch_one(&pool).await.unwrap();
    let in_range = q("SELECT count(*) FROM import_rows WHERE job = 1 AND row >= 0 AND row < (SELECT n_rows FROM import_progress WHERE job = 1)")
        .fetch_one(&pool).await.unwrap();
    let chunk_rows = q("SELECT coalesce(sum(n),0)::bigint FROM import_chunks WHERE job = 1").fetch_one(&pool).await.unwrap();
    let (next_row, imported, chunks): (i64, i64, i64) =
        sqlx::query_as("SELECT next_row, rows_imported, chunks FROM import_progress WHERE job = 1")
            .fetch_one(&pool).await.unwrap();
    println!("check: rows present={present} distinct={distinct} in_range={in_range} expected={n_rows}");
    println!("check: duplicates={} (PK (job,row) makes this 0 by construction)", present - distinct);
    println!("check: import_progress next_row={next_row} rows_imported={imported} chunks={chunks}; sum(import_chunks.n)={chunk_rows}");

    println!("check: handler runs (import_runs, append-only):");
    let runs = sqlx::query(
        "SELECT r.run_id, r.worker, r.pid, r.attempt, r.resumed_from,
                to_char(r.started_at AT TIME ZONE 'UTC', 'HH24:MI:SS.MS') AS started,
                to_char(min(c.committed_at) AT TIME ZONE 'UTC', 'HH24:MI:SS.MS') AS first_chunk,
                to_char(max(c.committed_at) AT TIME ZONE 'UTC', 'HH24:MI:SS.MS') AS last_chunk,
                count(c.*) AS n_chunks, coalesce(sum(c.n),0)::bigint AS n_rows
           FROM import_runs r LEFT JOIN import_chunks c USING (run_id)
          GROUP BY r.run_id ORDER BY r.run_id",
    )
    .fetch_all(&pool).await.unwrap();
    for r in &runs {
        println!(
            "  run_id={} worker={} pid={} attempt={} resumed_from={} started={} first_chunk={} last_chunk={} chunks={} rows={}",
            r.get::<i64, _>("run_id"), r.get::<String, _>("worker"), r.get::<i32, _>("pid"),
            r.get::<i64, _>("attempt"), r.get::<i64, _>("resumed_from"), r.get::<String, _>("started"),
            r.get::<Option<String>, _>("first_chunk").unwrap_or("-".into()),
            r.get::<Option<String>, _>("last_chunk").unwrap_or("-".into()),
            r.get::<i64, _>("n_chunks"), r.get::<i64, _>("n_rows"),
        );
    }
    // Concurrent double-run: two runs whose [start, last chunk] windows overlap and that both
    // committed chunks inside the overlap.
    let overlaps = sqlx::query(
        "WITH w AS (SELECT r.run_id, r.worker, r.started_at AS s, max(c.committed_at) AS e
                      FROM import_runs r JOIN import_chunks c USING (run_id) GROUP BY r.run_id)
         SELECT a.run_id AS a, b.run_id AS b, a.worker AS aw, b.worker AS bw,
                extract(epoch FROM least(a.e, b.e) - greatest(a.s, b.s))::float8 AS secs
           FROM w a JOIN w b ON a.run_id < b.run_id
          WHERE a.s < b.e AND b.s < a.e",
    )
    .fetch_all(&pool).await.unwrap();
    let cross = overlaps
        .iter()
        .filter(|o| o.get::<String, _>("aw") != o.get::<String, _>("bw"))
        .count();
    let max_conc: i64 = sqlx::query_scalar(
        "WITH w AS (SELECT r.run_id, r.started_at AS s, max(c.committed_at) AS e
                      FROM import_runs r JOIN import_chunks c USING (run_id) GROUP BY r.run_id)
         SELECT coalesce(max(cnt), 0) FROM (SELECT a.run_id, count(*) AS cnt FROM w a
                 JOIN w b ON b.s <= a.s AND a.s <= b.e GROUP BY a.run_id) x",
    )
    .fetch_one(&pool).await.unwrap();
    println!(
        "check: overlapping run pairs={} (between different workers: {cross}); max runs of this one job at once={max_conc}",
        overlaps.len()
    );
    for o in overlaps.iter().take(6) {
        println!(
            "  OVERLAP: run {} ({}) and run {} ({}) were both committing chunks for {:.2}s",
            o.get::<i64, _>("a"), o.get::<String, _>("aw"), o.get::<i64, _>("b"), o.get::<String, _>("bw"),
            o.get::<f64, _>("secs")
        );
    }
    let j = sqlx::query(
        "SELECT id, status, attempts, max_attempts, lock_by,
                to_char(lock_at AT TIME ZONE 'UTC', 'HH24:MI:SS.MS') AS lock_at,
                to_char(done_at AT TIME ZONE 'UTC', 'HH24:MI:SS.MS') AS done_at,
                last_result::text AS last_result
           FROM apalis.jobs WHERE job_type = $1",
    )
    .bind(QUEUE)
    .fetch_all(&pool).await.unwrap();
    for r in &j {
        println!(
            "check: apalis.jobs id={} status={} attempts={} max_attempts={} lock_by={} lock_at={} done_at={} last_result={}",
            r.get::<String, _>("id"), r.get::<String, _>("status"), r.get::<i32, _>("attempts"),
            r.get::<i32, _>("max_attempts"), r.get::<Option<String>, _>("lock_by").unwrap_or("NULL".into()),
            r.get::<Option<String>, _>("lock_at").unwrap_or("NULL".into()),
            r.get::<Option<String>, _>("done_at").unwrap_or("NULL".into()),
            r.get::<Option<String>, _>("last_result").unwrap_or("NULL".into()),
        );
    }
    let workers = sqlx::query(
        "SELECT id, to_char(last_seen AT TIME ZONE 'UTC', 'HH24:MI:SS.MS') AS ls FROM apalis.workers ORDER BY id",
    )
    .fetch_all(&pool).await.unwrap();
    for w in &workers {
        println!("check: apalis.workers id={} last_seen={}", w.get::<String, _>("id"), w.get::<String, _>("ls"));
    }
    let status = j.first().map(|r| r.get::<String, _>("status")).unwrap_or_default();
    let exactly_once = present == n_rows && distinct == n_rows && in_range == n_rows;
    let counts = imported == n_rows && next_row == n_rows && chunk_rows == n_rows;
    let no_overlap = overlaps.is_empty();
    let done = status == "Done";
    let pf = |b: bool| if b { "PASS" } else { "FAIL" };
    println!("RESULT every row exactly once: {}", pf(exactly_once));
    println!("RESULT counters match rows:    {}", pf(counts));
    println!("RESULT no concurrent runs:     {}", pf(no_overlap));
    println!("RESULT apalis status Done:     {} ({status})", pf(done));
    println!("RESULT handler runs: {}", runs.len());
    exactly_once && counts && no_overlap && done
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,apalis_postgres=info".into()),
        )
        .with_target(true)
        .with_ansi(false)
        .init();
    let args: Vec<String> = env::args().collect();
    let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
    let ok = match arg(1).as_str() {
        "push" => {
            push(arg(2).parse().expect("N_ROWS")).await;
            true
        }
        "work" => {
            work(arg(2)).await;
            true
        }
        "wait" => wait(arg(2).parse().expect("N_ROWS"), arg(3).parse().unwrap_or(120)).await,
        "check" => check(arg(2).parse().expect("N_ROWS")).await,
        _ => {
            eprintln!("usage: push N | work NAME | wait N SECS | check N");
            false
        }
    };
    std::process::exit(if ok { 0 } else { 1 });
}
