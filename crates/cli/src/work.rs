//! `outdial work`: the dispatch worker, the webhook deliverer, the reconciler and the bulk
//! import runner against Postgres and Redis; `outdial run` runs them beside the API (see `serve.rs`).
//!
//! The provider is an HTTP provider when `OUTDIAL_PROVIDER_URL` is set (with
//! `OUTDIAL_PROVIDER_TOKEN`), otherwise the built-in simulator (realistic ring and talk
//! times, or `--simulator instant`). SIGTERM stops claiming and gives in-flight calls the
//! grace period; anything unfinished is recovered from its lease by any worker.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use outdial_dialer::limits::Limits;
use outdial_dialer::{Dialer, HttpDialer, HttpDialerConfig, SimConfig, Simulator};
use outdial_domain::policy::Ruleset;
use outdial_domain::{Clock, PhoneNumber};
use outdial_queue::{Queue, QueueConfig};
use outdial_store::Store;
use outdial_worker::webhooks::WebhookConfig;
use outdial_worker::{Dispatcher, WorkerConfig, reconciler, webhooks};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How often every worker recovers dead workers' calls (and, after a Redis flush, which
/// drops the reconcile turn, starts the reconcile pass).
const RECOVER_EVERY: Duration = Duration::from_secs(5);

/// The simulator's timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SimTiming {
    /// Ring 5-30 s, talk 15-180 s.
    Realistic,
    /// Every call ends at once (benchmarks).
    Instant,
}

/// What the worker connects to and how it runs.
#[derive(Debug, Args)]
pub struct WorkerArgs {
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
    /// Base URL of an HTTP telephony provider; without it the built-in simulator dials
    #[arg(long, env = "OUTDIAL_PROVIDER_URL")]
    provider_url: Option<String>,
    /// The provider's API token
    #[arg(
        long,
        env = "OUTDIAL_PROVIDER_TOKEN",
        hide_env_values = true,
        default_value = ""
    )]
    provider_token: String,
    /// Where the provider should post call events (outdial's `POST /provider/events`,
    /// served with `OUTDIAL_PROVIDER_SECRET`); sent with every call. With it, live calls
    /// are followed from the received events and looked up at the provider every 5th poll
    #[arg(long, env = "OUTDIAL_PROVIDER_CALLBACK_URL")]
    provider_callback_url: Option<String>,
    /// The simulator's timing
    #[arg(long, env = "OUTDIAL_SIMULATOR", value_enum, default_value_t = SimTiming::Realistic)]
    simulator: SimTiming,
    /// The simulator's seed (same seed, same outcomes)
    #[arg(long, env = "OUTDIAL_SIMULATOR_SEED", default_value_t = 1)]
    seed: u64,
    /// Calls in flight at once in this process
    #[arg(long, env = "OUTDIAL_MAX_IN_FLIGHT", default_value_t = 256)]
    max_in_flight: usize,
    /// Seconds between reconcile passes (Postgres -> Redis), run by one process of the
    /// fleet per period; dead workers' calls are recovered every 5 s (or this, if shorter)
    /// in every process
    #[arg(long, env = "OUTDIAL_RECONCILE_SECS", default_value_t = 30)]
    reconcile_secs: u64,
    /// Lease on a claimed call, in seconds: how soon a dead worker's calls are recovered
    #[arg(long, env = "OUTDIAL_LEASE_SECS", default_value_t = 30)]
    lease_secs: u64,
    /// How often a live call is looked up at the provider, in milliseconds
    #[arg(long, env = "OUTDIAL_POLL_MS", default_value_t = 1000)]
    poll_ms: u64,
    /// Seconds calls in flight get to finish after SIGTERM; what is left is handed back
    /// and recovered by any worker
    #[arg(long, env = "OUTDIAL_SHUTDOWN_GRACE_SECS", default_value_t = 20)]
    shutdown_grace_secs: u64,
    /// Lease on a bulk-import job, in seconds: how soon a dead worker's import is resumed
    /// by another
    #[arg(long, env = "OUTDIAL_IMPORT_LEASE_SECS", default_value_t = 30)]
    import_lease_secs: u64,
    /// Rows of a bulk import per transaction
    #[arg(long, env = "OUTDIAL_IMPORT_CHUNK", default_value_t = 1000)]
    import_chunk: usize,
}

/// The running worker tasks and the switch that stops them.
#[derive(Debug)]
pub struct Running {
    /// The queue the worker claims from (the API enqueues into it).
    pub queue: Queue,
    /// The rate limits and live-call slots.
    pub limits: Limits,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Stops claiming and waits for the tasks (each bounded by its own grace period).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Starts the dispatcher, the webhook deliverer and the reconciler.
pub async fn start(
    args: &WorkerArgs,
    store: Store,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Running> {
    let queue_config = QueueConfig::default();
    // The limits wait for Redis as long as the queue does (the redis crate's default is
    // 500 ms, which a busy Redis exceeds: every call that asked then failed).
    let redis_options = outdial_redis::Options {
        response_timeout: queue_config.response_timeout,
        ..outdial_redis::Options::default()
    };
    let queue = Queue::open(&args.redis_url, &args.namespace, queue_config)
        .context("cannot open the Redis queue")?;
    let conn = outdial_redis::Redis::open(&args.redis_url, &redis_options)
        .await
        .context("cannot connect to Redis")?;
    let limits = Limits::new(
        conn,
        &format!("{}:{{limits}}", args.namespace),
        Arc::clone(&clock),
    )
    .context("bad Redis namespace")?;
    let dialer: Arc<dyn Dialer> = match &args.provider_url {
        Some(url) => {
            let mut config = HttpDialerConfig::new(url.clone(), args.provider_token.clone());
            config.callback_url = args.provider_callback_url.clone();
            Arc::new(HttpDialer::new(config).context("cannot build the HTTP provider")?)
        }
        None => {
            let config = SimConfig::new(args.seed);
            let config = match args.simulator {
                SimTiming::Realistic => config,
                SimTiming::Instant => config.instant(),
            };
            tracing::info!(timing = ?args.simulator, "dialing through the built-in simulator");
            Arc::new(Simulator::new(config, Arc::clone(&clock)))
        }
    };
    let owner = format!(
        "{}:{}",
        std::env::var("HOSTNAME").unwrap_or_else(|_| "host".into()),
        std::process::id()
    );
    // Each result's webhook is sent right after it is written; the outbox poll below
    // delivers what this misses (a process that died, an endpoint that failed).
    let deliverer =
        webhooks::Deliverer::new(store.clone(), Arc::clone(&clock), WebhookConfig::default())
            .context("cannot build the webhook HTTP client")?;
    let rules = Arc::new(Ruleset::bundled().context("the bundled ruleset is invalid")?);
    // Bulk imports run on the fleet with what the API would use for one customer.
    let importer = outdial_api::AppState::new(
        store.clone(),
        Arc::clone(&clock),
        Arc::clone(&rules),
        Some(queue.clone()),
    );
    let mut import_config = outdial_api::import::RunnerConfig::new(owner.clone());
    import_config.lease = Duration::from_secs(args.import_lease_secs.max(1));
    import_config.chunk = args.import_chunk.max(1);
    let dispatcher = Arc::new(Dispatcher {
        store: store.delivering_webhooks(deliverer.hold()),
        queue: queue.clone(),
        dialer,
        limits: limits.clone(),
        rules,
        clock: Arc::clone(&clock),
        config: WorkerConfig {
            owner,
            batch: 128,
            max_in_flight: args.max_in_flight.max(1),
            lease: Duration::from_secs(args.lease_secs.max(1)),
            poll: Duration::from_millis(args.poll_ms.max(10)),
            max_call: Duration::from_secs(30 * 60),
            idle: Duration::from_millis(100),
            default_caller_id: PhoneNumber::parse("+12025550100")
                .context("the default caller ID")?,
            shutdown_grace: Duration::from_secs(args.shutdown_grace_secs),
            callbacks: args.provider_url.is_some() && args.provider_callback_url.is_some(),
        },
        webhooks: Some(deliverer),
        pauses: Arc::default(),
    });
    let (stop, shutdown) = watch::channel(false);
    let period = Duration::from_secs(args.reconcile_secs.max(1));
    let recover_every = period.min(RECOVER_EVERY);
    let tasks = vec![
        tokio::spawn(Arc::clone(&dispatcher).run(shutdown.clone())),
        tokio::spawn(webhooks::run(
            store,
            clock,
            WebhookConfig::default(),
            shutdown.clone(),
        )),
        tokio::spawn(outdial_api::import::run(
            importer,
            import_config,
            shutdown.clone(),
        )),
        tokio::spawn(reconciler::run(dispatcher, period, recover_every, shutdown)),
    ];
    Ok(Running {
        queue,
        limits,
        stop,
        tasks,
    })
}

/// Arguments of `outdial work`.
#[derive(Debug, Args)]
pub struct WorkArgs {
    #[command(flatten)]
    db: crate::company::DbArgs,
    #[command(flatten)]
    worker: WorkerArgs,
    /// Where to serve `/metrics`, `/healthz` and `/readyz` (`outdial work` has no other
    /// HTTP); without it no metrics are recorded
    #[arg(long, env = "OUTDIAL_METRICS_BIND")]
    metrics_bind: Option<std::net::SocketAddr>,
}

/// `outdial work`: the worker alone, until SIGTERM.
pub fn run(args: &WorkArgs) -> anyhow::Result<std::process::ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let metrics = match args.metrics_bind {
            Some(_) => Some(crate::serve::install_metrics()?),
            None => None,
        };
        let clock = crate::service_clock()?;
        let store = crate::company::store(&args.db).await?;
        let running = start(&args.worker, store.clone(), Arc::clone(&clock)).await?;
        if let Some(bind) = args.metrics_bind {
            let listener = tokio::net::TcpListener::bind(bind)
                .await
                .with_context(|| format!("cannot listen on {bind}"))?;
            let addr = listener.local_addr().context("the metrics address")?;
            let app = outdial_api::health::router(outdial_api::health::Health {
                store,
                queue: Some(running.queue.clone()),
                limits: Some(running.limits.clone()),
                clock,
                metrics,
            });
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, app).await {
                    tracing::error!(error = %e, "the metrics server failed");
                }
            });
            crate::emit_line(&serde_json::json!({ "metrics": addr.to_string() }))?;
        }
        tracing::info!("worker started");
        crate::serve::shutdown().await;
        tracing::info!("stopping: no new claims, finishing calls in flight");
        running.stop().await;
        Ok(std::process::ExitCode::SUCCESS)
    })
}
