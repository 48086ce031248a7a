//! `outdial migrate` and `outdial company create | list | rotate-key | set-task-types |
//! set-lms | clear-lms | pause | resume`:
//! operator commands on the Postgres system of record.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use outdial_store::{Company, Store};
use serde_json::{Value, json};

use crate::emit;

/// Where Postgres is.
#[derive(Debug, Args)]
pub struct DbArgs {
    /// Postgres URL (`ops/stack.sh` prints one)
    #[arg(
        long,
        env = "OUTDIAL_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    database_url: String,
    /// Postgres connections in this process's pool
    #[arg(long, env = "OUTDIAL_DB_POOL", default_value_t = 32)]
    pool: u32,
    /// A new schedule stores as rows only its calls due within this many hours; workers
    /// store the rest ahead of their time (0: every call at once). docs/schedules.md
    #[arg(long, env = "OUTDIAL_STORE_AHEAD_HOURS", default_value_t = 24)]
    store_ahead_hours: u32,
}

/// `outdial company …`.
#[derive(Debug, Subcommand)]
pub enum CompanyCommand {
    /// Create a company; prints its id and its first API key (shown once, stored hashed).
    Create {
        /// The company's unique name
        name: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// List companies (never their keys or webhook secrets).
    List {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Issue a new API key for a company and revoke its old ones; prints the new key once.
    RotateKey {
        /// The company's name
        name: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Replace a company's task types and cadences with a TOML file (see
    /// outdial_domain::schedule::catalog for the format).
    SetTaskTypes {
        /// The company's name
        name: String,
        /// The task-type file
        file: PathBuf,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Connect a company's loan management system (what `PUT /lms` sets): outdial GETs
    /// {base-url}/customers/{id} and …/loans for `sync: true`, schedule sync and imports.
    /// Prints the connection with header names only.
    SetLms {
        /// The company's name
        name: String,
        /// The LMS's base URL (http or https)
        #[arg(long)]
        base_url: String,
        /// A header sent with every request, `Name: value` (repeat for several)
        #[arg(long = "header", value_name = "NAME: VALUE")]
        headers: Vec<String>,
        /// Budget of one whole fetch, retries included, in milliseconds
        #[arg(long, default_value_t = outdial_lms::DEFAULT_TIMEOUT_MS)]
        timeout_ms: u64,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Remove a company's LMS connection.
    ClearLms {
        /// The company's name
        name: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Pause a company's calls (all, or one task type) across the whole worker fleet;
    /// nothing is cancelled.
    Pause {
        /// The company's name
        name: String,
        /// Only the calls of customers with this task type
        #[arg(long)]
        task_type: Option<String>,
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        redis: crate::queue::RedisArgs,
    },
    /// End a pause: the held calls go out in due order, under the calling policy.
    Resume {
        /// The company's name
        name: String,
        /// The task type paused on its own
        #[arg(long)]
        task_type: Option<String>,
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        redis: crate::queue::RedisArgs,
    },
}

/// Connect and bring the schema up to date.
pub(crate) async fn store(db: &DbArgs) -> anyhow::Result<Store> {
    let store = Store::connect_with(&db.database_url, db.pool)
        .await
        .context("cannot connect to Postgres")?
        .storing_ahead(
            (db.store_ahead_hours > 0)
                .then(|| chrono::Duration::hours(i64::from(db.store_ahead_hours))),
        );
    store
        .migrate()
        .await
        .context("cannot apply the migrations")?;
    if let Ok(false) = store.autovacuum().await {
        tracing::warn!(
            "Postgres runs with autovacuum = off: planner statistics and plans go stale as \
             tables grow (a foreign-key check can end up walking every customer); turn it on \
             or run ANALYZE regularly"
        );
    }
    Ok(store)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// `outdial migrate`.
pub fn migrate(db: &DbArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        store(db).await?;
        emit(&json!({ "migrated": true }))?;
        Ok(ExitCode::SUCCESS)
    })
}

/// `outdial company …`.
pub fn run(command: &CompanyCommand, now: DateTime<Utc>) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let doc = match command {
            CompanyCommand::Create { name, db } => {
                let (company, key) = store(db)
                    .await?
                    .create_company(name, now)
                    .await
                    .with_context(|| format!("cannot create company {name:?}"))?;
                json!({ "company": describe(&company), "apiKey": key.expose() })
            }
            CompanyCommand::List { db } => {
                let companies = store(db)
                    .await?
                    .list_companies()
                    .await
                    .context("cannot list companies")?;
                Value::Array(companies.iter().map(describe).collect())
            }
            CompanyCommand::RotateKey { name, db } => {
                let store = store(db).await?;
                let company = store
                    .company_named(name)
                    .await
                    .with_context(|| format!("no company {name:?}"))?;
                let key = store
                    .rotate_key(company.id, now)
                    .await
                    .context("cannot rotate the key")?;
                json!({ "company": describe(&company), "apiKey": key.expose() })
            }
            CompanyCommand::SetTaskTypes { name, file, db } => {
                let text = std::fs::read_to_string(file)
                    .with_context(|| format!("cannot read task-type file {}", file.display()))?;
                let store = store(db).await?;
                let company = store
                    .company_named(name)
                    .await
                    .with_context(|| format!("no company {name:?}"))?;
                let company = store
                    .set_task_types(company.id, &text)
                    .await
                    .with_context(|| format!("task-type file {} is rejected", file.display()))?;
                json!({ "company": describe(&company) })
            }
            CompanyCommand::SetLms {
                name,
                base_url,
                headers,
                timeout_ms,
                db,
            } => {
                let mut pairs = Vec::with_capacity(headers.len());
                for h in headers {
                    let (n, v) = h.split_once(':').with_context(
                        || "a --header is `Name: value` (the value after the first colon)",
                    )?;
                    pairs.push((n.trim().to_owned(), v.trim().to_owned()));
                }
                let connection =
                    outdial_lms::Connection::new(base_url, pairs, Some(*timeout_ms))
                        .map_err(|e| anyhow::anyhow!("the LMS connection is rejected: {e}"))?;
                let store = store(db).await?;
                let company = store
                    .company_named(name)
                    .await
                    .with_context(|| format!("no company {name:?}"))?;
                let stored = store
                    .put_lms(
                        company.id,
                        connection.base_url(),
                        connection.headers(),
                        connection.timeout_ms(),
                        now,
                    )
                    .await
                    .context("cannot store the LMS connection")?;
                json!({
                    "company": describe(&company),
                    "lms": {
                        "baseUrl": stored.base_url,
                        "headerNames": connection.header_names(),
                        "timeoutMs": stored.timeout_ms,
                    },
                })
            }
            CompanyCommand::ClearLms { name, db } => {
                let store = store(db).await?;
                let company = store
                    .company_named(name)
                    .await
                    .with_context(|| format!("no company {name:?}"))?;
                let removed = store
                    .delete_lms(company.id)
                    .await
                    .context("cannot remove the LMS connection")?;
                json!({ "company": describe(&company), "lmsRemoved": removed })
            }
            CompanyCommand::Pause {
                name,
                task_type,
                db,
                redis,
            } => crate::queue::pause(name, task_type.as_deref(), false, db, redis).await?,
            CompanyCommand::Resume {
                name,
                task_type,
                db,
                redis,
            } => crate::queue::pause(name, task_type.as_deref(), true, db, redis).await?,
        };
        emit(&doc)?;
        Ok(ExitCode::SUCCESS)
    })
}

/// A company for operators: configuration, never the webhook secret.
fn describe(c: &Company) -> Value {
    let task_types: Vec<String> = c
        .catalog()
        .map(|cat| {
            cat.task_types()
                .iter()
                .map(|t| t.as_str().to_owned())
                .collect()
        })
        .unwrap_or_default();
    json!({
        "id": c.id.to_string(),
        "name": c.name,
        "taskTypes": task_types,
        "webhookUrl": c.webhook_url,
        "callsPerSecond": c.calls_per_second,
        "maxLiveCalls": c.max_live_calls,
        "callerIds": c.caller_ids,
        "createdAt": c.created_at,
    })
}
