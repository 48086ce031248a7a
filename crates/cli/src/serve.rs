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
}

/// `outdial serve`, or with `worker` `outdial run` (the API, the dispatch worker, webhook
/// delivery and the reconciler in one process).
pub fn run(args: &ServeArgs, worker: Option<&WorkerArgs>) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(args, worker))
}

async fn serve(args: &ServeArgs, worker: Option<&WorkerArgs>) -> anyhow::Result<ExitCode> {
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
    let queue = running.as_ref().map(|r| r.queue.clone());
    emit_line(&json!({ "listening": addr.to_string(), "demoApiKey": key }))?;
    let rules = Arc::new(Ruleset::bundled().context("the bundled ruleset is invalid")?);
    let mut state = AppState::new(store, clock, rules, queue);
    if let Some(secret) = args.provider_secret.as_deref().filter(|s| !s.is_empty()) {
        state = state.with_provider_secret(secret.as_bytes());
    }
    let app = router(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown())
        .await
        .context("the HTTP server failed")?;
    if let Some(running) = running {
        running.stop().await;
    }
    Ok(ExitCode::SUCCESS)
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
