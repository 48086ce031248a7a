//! Health, readiness and Prometheus metrics: `GET /healthz`, `/readyz` and `/metrics`, on
//! the API and on each worker (`OUTDIAL_METRICS_BIND`), none behind a key.
//!
//! `/metrics` renders what the process recorded (the `metrics` crate's global recorder,
//! installed by the binary; dispatch counters and histograms come from `outdial-worker`)
//! after refreshing the fleet-wide gauges from Redis and Postgres: queue depth by company
//! and state, oldest due lateness, dispatches in the last minute, live-call slots, pauses
//! and the webhook backlog. Labels are bounded: company names, states, outcomes, rule ids;
//! never a customer or a call.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use outdial_dialer::CompanyRef;
use outdial_dialer::limits::Limits;
use outdial_domain::Clock;
use outdial_queue::{Partition, Queue};
use outdial_store::Store;
use serde_json::json;

/// What the health routes look at. Cheap to clone.
#[derive(Clone)]
pub struct Health {
    pub store: Store,
    pub queue: Option<Queue>,
    /// Live-call slots (the gauges); `None`: not exported.
    pub limits: Option<Limits>,
    pub clock: Arc<dyn Clock>,
    /// The installed recorder's handle; `None`: `/metrics` answers 404.
    pub metrics: Option<PrometheusHandle>,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health")
            .field("queue", &self.queue.is_some())
            .field("metrics", &self.metrics.is_some())
            .finish_non_exhaustive()
    }
}

/// `/healthz`, `/readyz` and `/metrics`.
pub fn router(health: Health) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(health)
}

/// The process is up and serving.
async fn healthz() -> Response {
    axum::Json(json!({ "status": "ok" })).into_response()
}

/// Redis and Postgres answer and the migrations are current; otherwise 503 naming what is
/// not ready.
async fn readyz(State(h): State<Health>) -> Response {
    let mut checks = serde_json::Map::new();
    let mut ready = true;
    let postgres = match h.store.readiness().await {
        Ok(r) if r.pending_migrations.is_empty() => json!("ok"),
        Ok(r) => {
            ready = false;
            checks.insert(
                "migrations".into(),
                json!(format!("not applied: {:?}", r.pending_migrations)),
            );
            json!("ok")
        }
        Err(e) => {
            ready = false;
            json!(format!("unavailable: {e}"))
        }
    };
    checks.insert("postgres".into(), postgres);
    if !checks.contains_key("migrations") && ready {
        checks.insert("migrations".into(), json!("ok"));
    }
    if let Some(queue) = &h.queue {
        let redis = match queue.ping().await {
            Ok(()) => json!("ok"),
            Err(e) => {
                ready = false;
                json!(format!("unavailable: {e}"))
            }
        };
        checks.insert("redis".into(), redis);
    }
    let not_ready: Vec<&String> = checks
        .iter()
        .filter(|(_, v)| v.as_str() != Some("ok"))
        .map(|(k, _)| k)
        .collect();
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "notReady": not_ready,
        "checks": checks,
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

/// Prometheus text format.
async fn metrics(State(h): State<Health>) -> Response {
    let Some(handle) = &h.metrics else {
        return StatusCode::NOT_FOUND.into_response();
    };
    refresh_gauges(&h).await;
    handle.run_upkeep();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
        .into_response()
}

/// Sets the fleet-wide gauges from Redis and Postgres. A failed read counts in
/// `outdial_store_errors_total` and leaves the gauges as they were.
async fn refresh_gauges(h: &Health) {
    let now = h.clock.now();
    match h.store.webhook_backlog().await {
        Ok(b) => {
            metrics::gauge!("outdial_webhook_pending").set(b.pending as f64);
            let age = b
                .oldest
                .map_or(0.0, |t| (now - t).num_milliseconds().max(0) as f64 / 1000.0);
            metrics::gauge!("outdial_webhook_oldest_pending_seconds").set(age);
        }
        Err(_) => {
            metrics::counter!("outdial_store_errors_total", "system" => "postgres").increment(1)
        }
    }
    let Some(queue) = &h.queue else { return };
    let companies = match h.store.list_companies().await {
        Ok(c) => c,
        Err(_) => {
            metrics::counter!("outdial_store_errors_total", "system" => "postgres").increment(1);
            return;
        }
    };
    let paused = h.store.pauses_since(now).await.unwrap_or_default();
    let reads = companies.iter().map(|c| async move {
        let partition = Partition::new(&c.id.to_string()).ok()?;
        let stats = queue.stats(&partition, now).await.ok();
        let live = match &h.limits {
            Some(l) => l
                .live_calls(&CompanyRef::new(&c.id.to_string()).ok()?)
                .await
                .ok(),
            None => None,
        };
        Some((c, stats, live))
    });
    for (company, stats, live) in futures_util::future::join_all(reads)
        .await
        .into_iter()
        .flatten()
    {
        let name = company.name.clone();
        let Some(s) = stats else {
            metrics::counter!("outdial_store_errors_total", "system" => "redis").increment(1);
            continue;
        };
        for (state, n) in [
            ("scheduled", s.scheduled),
            ("due", s.due),
            ("in_flight", s.leased),
            ("deferred", s.deferred),
            ("retrying", s.retrying),
            ("reconcile", s.reconcile),
            ("dead", s.dead),
        ] {
            metrics::gauge!("outdial_queue_depth", "company" => name.clone(), "state" => state)
                .set(n as f64);
        }
        metrics::gauge!("outdial_queue_oldest_due_lateness_seconds", "company" => name.clone())
            .set(s.lateness.num_milliseconds().max(0) as f64 / 1000.0);
        metrics::gauge!("outdial_dispatches_last_minute", "company" => name.clone())
            .set(s.dials_last_minute as f64);
        if let Some(live) = live {
            metrics::gauge!("outdial_live_call_slots_in_use", "company" => name.clone())
                .set(f64::from(live));
        }
        metrics::gauge!("outdial_live_call_slots_cap", "company" => name.clone())
            .set(f64::from(company.max_live_calls));
        let is_paused = paused
            .iter()
            .any(|p| p.company == company.id && p.resumed_at.is_none());
        metrics::gauge!("outdial_company_paused", "company" => name).set(if is_paused {
            1.0
        } else {
            0.0
        });
    }
}
