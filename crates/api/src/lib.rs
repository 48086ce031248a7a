//! outdial's HTTP API (axum): the customer routes of issue 3, each authenticated by
//! `X-API-Key` and scoped to the key's company.
//!
//! [`router`] takes an [`AppState`] (the [`Store`] and a [`Clock`]) and returns the whole
//! service; tests drive it with `tower::ServiceExt::oneshot`, the binary serves it. Every
//! failure, including those raised by middleware (an oversize body, an unknown route), leaves
//! as one JSON envelope, `{"error": {"code", "message", "fields"}}` ([`ApiError`]). This
//! crate depends on `outdial-domain`, `outdial-store`, `outdial-queue` (new calls are
//! enqueued) and `outdial-dialer` (the provider callback's signature scheme); it must not
//! read the environment, install a tracing subscriber or depend on the CLI.

pub mod admin;
mod auth;
mod body;
mod calls;
mod customers;
mod error;
pub mod health;
mod idempotency;
pub mod import;
mod lms;
mod mirror;
mod openapi;
mod patch;
mod provider;
mod query;
mod scheduled_calls;
mod sync;
mod webhook;

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::routing::{get, post};
use outdial_domain::Clock;
use outdial_domain::policy::Ruleset;
use outdial_store::Store;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use auth::{AUTH_TTL, AuthCache};
pub use error::ApiError;
pub use idempotency::{IDEMPOTENCY_KEY_HEADER, REPLAYED_HEADER};
pub use provider::SIGNATURE_TOLERANCE;

/// The largest request body accepted, in bytes (1 MiB); larger bodies get 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What every handler shares: the system of record, the clock ("now" for validation,
/// planning and timestamps), the calling ruleset and, when a worker fleet runs, the Redis
/// queue (new calls are enqueued at once and cancellations mirrored; without it, or when
/// Redis fails, the reconciler enqueues pending calls within one period). Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub rules: Arc<Ruleset>,
    pub queue: Option<outdial_queue::Queue>,
    /// Recently authenticated keys (see [`AuthCache`]).
    pub auth: Arc<AuthCache>,
    /// The key the telephony provider signs its call events with; `None`: `POST
    /// /provider/events` answers 404.
    pub provider_secret: Option<Arc<[u8]>>,
    /// The `/admin` routes' token and operations; `None`: not mounted (404).
    pub admin: Option<Arc<admin::Admin>>,
    /// The installed metrics recorder; `None`: `/metrics` answers 404.
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// Live-call slots, for `/metrics`.
    pub limits: Option<outdial_dialer::limits::Limits>,
    /// The queue `/metrics` reads depths from when `queue` is `None` (`outdial serve`
    /// given Redis: observed, not enqueued into).
    pub observed_queue: Option<outdial_queue::Queue>,
    /// The LMS client (`sync: true`, schedule sync): one HTTP client and a breaker per
    /// company.
    pub lms: Arc<outdial_lms::Lms>,
}

impl AppState {
    /// The state for `store`, `clock` and `rules`, with `queue` when a worker fleet runs.
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        rules: Arc<Ruleset>,
        queue: Option<outdial_queue::Queue>,
    ) -> Self {
        AppState {
            store,
            clock,
            rules,
            queue,
            auth: Arc::default(),
            provider_secret: None,
            admin: None,
            metrics: None,
            limits: None,
            observed_queue: None,
            lms: Arc::default(),
        }
    }

    /// Reads queue depths for `/metrics` from `queue` without enqueueing into it.
    pub fn with_observed_queue(mut self, queue: outdial_queue::Queue) -> Self {
        self.observed_queue = Some(queue);
        self
    }

    /// Mounts the `/admin` routes behind `token`, running `ops`.
    pub fn with_admin(mut self, token: &str, ops: admin::ops::Ops) -> Self {
        self.admin = Some(Arc::new(admin::Admin {
            token: admin::AdminToken::new(token),
            ops,
            history: Default::default(),
        }));
        self
    }

    /// Samples the queues every `every` for the admin page's charts (when `/admin` is
    /// mounted), on the current runtime.
    pub fn spawn_admin_sampler(
        &self,
        every: std::time::Duration,
    ) -> Option<tokio::task::JoinHandle<()>> {
        self.admin.clone().map(|a| admin::spawn_sampler(a, every))
    }

    /// Serves `/metrics` from `handle` (the installed recorder's).
    pub fn with_metrics(mut self, handle: metrics_exporter_prometheus::PrometheusHandle) -> Self {
        self.metrics = Some(handle);
        self
    }

    /// Exports live-call slots from `limits` on `/metrics`.
    pub fn with_limits(mut self, limits: outdial_dialer::limits::Limits) -> Self {
        self.limits = Some(limits);
        self
    }

    /// Accepts provider call events signed with `secret` on `POST /provider/events`.
    pub fn with_provider_secret(mut self, secret: impl Into<Vec<u8>>) -> Self {
        self.provider_secret = Some(Arc::from(secret.into()));
        self
    }
}

/// The API's routes with authentication, Idempotency-Key, the body limit, tracing and the
/// error envelope; `/openapi.json` (public) serves the document generated from the same
/// registrations.
pub fn router(state: AppState) -> Router {
    let health = health::router(health::Health {
        store: state.store.clone(),
        queue: state.queue.clone().or_else(|| state.observed_queue.clone()),
        limits: state.limits.clone(),
        clock: Arc::clone(&state.clock),
        metrics: state.metrics.clone(),
    });
    let admin = state.admin.clone().map(admin::router);
    let (api, doc) = routes().split_for_parts();
    let doc = Arc::new(openapi::finish(doc));
    let api = api
        .fallback(error::no_route)
        // Layers run outside in: authentication, then Idempotency-Key (it needs the company).
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            idempotency::idempotent,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_api_key,
        ))
        // The provider authenticates by signature, not X-API-Key (see `provider.rs`).
        .route("/provider/events", post(provider::receive))
        .route(
            "/openapi.json",
            get(move || {
                let doc = Arc::clone(&doc);
                async move { Json(doc.as_ref().clone()) }
            }),
        )
        .with_state(state)
        .merge(health);
    let api = match admin {
        Some(admin) => api.merge(admin),
        None => api,
    };
    // The envelope rewrite sits outside the body limit so that its 413 is rewritten too.
    api.layer(axum::middleware::from_fn(body_limit))
        .layer(axum::middleware::map_response(error::envelope_plain_errors))
        .layer(TraceLayer::new_for_http())
}

/// The body limit of a request: [`import::MAX_BATCH_BODY_BYTES`] for `POST
/// /customers/batch`, [`MAX_BODY_BYTES`] for every other.
pub(crate) fn body_limit_of(method: &axum::http::Method, path: &str) -> usize {
    if method == axum::http::Method::POST && path.trim_end_matches('/') == "/customers/batch" {
        import::MAX_BATCH_BODY_BYTES
    } else {
        MAX_BODY_BYTES
    }
}

/// Refuses a body over its limit: 413 at once when `Content-Length` says so, otherwise when
/// reading passes the limit (the body extractors answer 413 then).
async fn body_limit(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let limit = body_limit_of(request.method(), request.uri().path());
    let declared = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return ApiError::too_large(limit).into_response();
    }
    let request =
        request.map(|body| axum::body::Body::new(http_body_util::Limited::new(body, limit)));
    next.run(request).await
}

/// Every documented route, registered once for both the router and the document.
fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(customers::list, customers::create))
        .routes(routes!(customers::show, customers::update))
        .routes(routes!(customers::cancel_communications))
        .routes(routes!(import::create))
        .routes(routes!(import::show))
        .routes(routes!(import::errors))
        .routes(routes!(sync::schedule_sync))
        .routes(routes!(lms::put, lms::show, lms::delete))
        .routes(routes!(scheduled_calls::list))
        .routes(routes!(scheduled_calls::show, scheduled_calls::create))
        .routes(routes!(scheduled_calls::cancel))
        .routes(routes!(scheduled_calls::reschedule))
        .routes(routes!(calls::list))
        .routes(routes!(calls::show))
        .routes(routes!(webhook::put, webhook::delete))
        .routes(routes!(webhook::deliveries))
        .routes(routes!(webhook::redrive))
}

/// The OpenAPI document, as `/openapi.json` serves it.
pub fn openapi() -> utoipa::openapi::OpenApi {
    openapi::finish(routes().into_openapi())
}
