//! `outdial serve`: the HTTP API on `OUTDIAL_BIND` against Postgres, with the demo company.
//!
//! Start-up: connect, migrate, make sure the `demo` company exists and print one JSON line
//! `{"listening": "<addr>", "demoApiKey": "<key>"}` (the key from `OUTDIAL_DEMO_API_KEY`, or
//! a freshly issued one: only key hashes are stored, so an old key cannot be shown). SIGTERM
//! or Ctrl-C stops taking connections and lets requests in flight finish.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use outdial_api::{AppState, router};
use outdial_domain::policy::Ruleset;
use serde_json::json;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use outdial_api::admin::ops::Ops;
use outdial_dialer::limits::Limits;
use outdial_queue::{Queue, QueueConfig};

use crate::company::{DbArgs, store};
use crate::emit_line;
use crate::work::{self, WorkerArgs};

/// Arguments of `outdial serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Address to listen on (port 0 picks a free one; the line printed says which)
    #[arg(long, env = "OUTDIAL_BIND", default_value = "127.0.0.1:8080")]
    bind: SocketAddr,
    /// A fixed API key for the demo company, for scripted use
    #[arg(long, env = "OUTDIAL_DEMO_API_KEY", hide_env_values = true)]
    demo_api_key: Option<String>,
    /// The key the telephony provider signs its call events with; enables `POST
    /// /provider/events` (without it that route answers 404)
    #[arg(long, env = "OUTDIAL_PROVIDER_SECRET", hide_env_values = true)]
    provider_secret: Option<String>,
    /// The admin token for `/admin` (sent as `Authorization: Bearer …`); without it `serve`
    /// mounts no admin routes, and `run` generates one and prints it
    #[arg(long, env = "OUTDIAL_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
}

/// Redis for `outdial serve` (optional there: with it new calls are enqueued at once and
/// the admin routes can run; `outdial run` takes the worker's).
#[derive(Debug, Args)]
pub struct ServeRedisArgs {
    /// Redis URL
    #[arg(
        long,
        env = "OUTDIAL_REDIS_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    redis_url: Option<String>,
    /// Key namespace of the queue and the rate limits in Redis
    #[arg(long, env = "OUTDIAL_NAMESPACE", default_value = "outdial")]
    namespace: String,
}

/// Arguments of `outdial serve`.
#[derive(Debug, Args)]
pub struct ServeCmd {
    #[command(flatten)]
    pub serve: ServeArgs,
    #[command(flatten)]
    pub redis: ServeRedisArgs,
}

/// Installs the process's Prometheus recorder (the `metrics` macros record nothing until
/// this runs) with histogram buckets for outdial's histograms, and its upkeep task (call it
/// inside the tokio runtime).
pub(crate) fn install_metrics() -> anyhow::Result<PrometheusHandle> {
    let lateness = [
        0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
    ];
    let batch = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];
    PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("outdial_dial_lateness_seconds".into()),
            &lateness,
        )
        .and_then(|b| {
            b.set_buckets_for_metric(Matcher::Full("outdial_claim_batch_size".into()), &batch)
        })
        .context("bad histogram buckets")?
        .install_recorder()
        .context("cannot install the metrics recorder")
        .inspect(|handle| {
            // Histogram samples pile up until drained: drain them every 5 s, scraped or not.
            let upkeep = handle.clone();
            tokio::spawn(async move {
                let mut every = tokio::time::interval(std::time::Duration::from_secs(5));
                loop {
                    every.tick().await;
                    upkeep.run_upkeep();
                }
            });
        })
}

/// `outdial serve`, or with `worker` `outdial run` (the API, the dispatch worker, webhook
/// delivery and the reconciler in one process).
pub fn run(
    args: &ServeArgs,
    redis: Option<&ServeRedisArgs>,
    worker: Option<&WorkerArgs>,
) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(args, redis, worker))
}

/// The queue and limits of `serve`'s own Redis.
async fn serve_redis(
    redis: &ServeRedisArgs,
    clock: &Arc<dyn outdial_domain::Clock>,
) -> anyhow::Result<Option<(Queue, Limits)>> {
    let Some(url) = redis.redis_url.as_deref() else {
        return Ok(None);
    };
    let queue = Queue::open(url, &redis.namespace, QueueConfig::default())
        .context("cannot open the Redis queue")?;
    let conn = outdial_redis::Redis::open(url, &outdial_redis::Options::default())
        .await
        .context("cannot connect to Redis")?;
    let limits = Limits::new(
        conn,
        &format!("{}:{{limits}}", redis.namespace),
        Arc::clone(clock),
    )
    .context("bad Redis namespace")?;
    Ok(Some((queue, limits)))
}

async fn serve(
    args: &ServeArgs,
    redis: Option<&ServeRedisArgs>,
    worker: Option<&WorkerArgs>,
) -> anyhow::Result<ExitCode> {
    let metrics = install_metrics()?;
    let clock = crate::service_clock()?;
    let store = store(&args.db).await?;
    let now = clock.now();
    let (demo, issued) = store
        .ensure_demo_company(args.demo_api_key.as_deref(), now)
        .await
        .context("cannot set up the demo company")?;
    let key = match (issued, &args.demo_api_key) {
        (Some(key), _) => key.expose().to_owned(),
        (None, Some(given)) => given.clone(),
        (None, None) => store
            .rotate_key(demo.id, now)
            .await
            .context("cannot issue a demo API key")?
            .expose()
            .to_owned(),
    };
    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .with_context(|| format!("cannot listen on {}", args.bind))?;
    let addr = listener
        .local_addr()
        .context("cannot read the bound address")?;
    let running = match worker {
        Some(w) => Some(work::start(w, store.clone(), Arc::clone(&clock)).await?),
        None => None,
    };
    // `run` enqueues new calls at once; `serve` given Redis only observes it (metrics,
    // admin) and leaves enqueueing to the workers' reconciler, as without Redis.
    let (redis, enqueue) = match (&running, redis) {
        (Some(r), _) => (Some((r.queue.clone(), r.limits.clone())), true),
        (None, Some(redis)) => (serve_redis(redis, &clock).await?, false),
        (None, None) => (None, false),
    };
    // `run` makes up an admin token when none is given, as it does the demo key.
    let admin_token = match (&args.admin_token, worker) {
        (Some(t), _) if !t.is_empty() => Some(t.clone()),
        (_, Some(_)) => Some(format!("oda_{}", hex(&rand::random::<[u8; 32]>()))),
        _ => None,
    };
    let mut line = json!({ "listening": addr.to_string(), "demoApiKey": key });
    if let (Some(t), Some(_)) = (&admin_token, worker) {
        line["adminToken"] = json!(t);
    }
    let rules = Arc::new(Ruleset::bundled().context("the bundled ruleset is invalid")?);
    let mut state = AppState::new(
        store.clone(),
        Arc::clone(&clock),
        rules,
        redis.as_ref().filter(|_| enqueue).map(|(q, _)| q.clone()),
    )
    .with_metrics(metrics);
    if let Some((queue, limits)) = &redis {
        state = state
            .with_limits(limits.clone())
            .with_observed_queue(queue.clone());
        if let Some(token) = &admin_token {
            let ops = Ops {
                store,
                queue: queue.clone(),
                limits: Some(limits.clone()),
                clock,
            };
            state = state.with_admin(token, ops);
        }
    } else if admin_token.is_some() {
        anyhow::bail!("the admin routes need Redis: set OUTDIAL_REDIS_URL");
    }
    emit_line(&line)?;
    if let Some(secret) = args.provider_secret.as_deref().filter(|s| !s.is_empty()) {
        state = state.with_provider_secret(secret.as_bytes());
    }
    // The admin page's charts: a sample of every queue twice a minute.
    let sampler = state.spawn_admin_sampler(std::time::Duration::from_secs(30));
    let app = router(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown())
        .await
        .context("the HTTP server failed")?;
    if let Some(sampler) = sampler {
        sampler.abort();
    }
    if let Some(running) = running {
        running.stop().await;
    }
    Ok(ExitCode::SUCCESS)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Resolves on SIGTERM or Ctrl-C.
pub(crate) async fn shutdown() {
    let ctrl_c = async {
        // If the handler cannot be installed, wait for SIGTERM alone.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
