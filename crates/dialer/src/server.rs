//! The simulator as an HTTP provider on a socket: the API [`crate::HttpDialer`] speaks, plus
//! signed call-event callbacks.
//!
//! | route | auth | answer |
//! |-------|------|--------|
//! | `POST /calls` | `Authorization: Bearer <token>` | `201` new call, `200` + `Idempotent-Replayed: true` existing call under the key, `400` no or bad key, `409` key reused with another number, `422` bad body, `429` + `Retry-After` (seconds), `503` |
//! | `GET /calls/by-key/{key}` | bearer | `200` call, `404` unknown key |
//! | `GET /stats` | bearer | place requests per key ([`crate::SimStats`]) |
//!
//! The key comes from the `Idempotency-Key` header or the body's `idempotencyKey`. Events of
//! each call (`call.answered`, `call.ended`) are POSTed to the call's `callbackUrl` or the
//! server's default, signed as [`crate::signature`] describes.

use std::future::Future;
use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use outdial_domain::{Clock, PhoneNumber};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::sync::broadcast::error::RecvError;

use crate::callback::{Deliverer, DeliveryConfig};
use crate::wire::{ErrorBody, IDEMPOTENCY_KEY_HEADER, PlaceCallBody, REPLAYED_HEADER};
use crate::{CompanyRef, DialError, DialRequest, IdempotencyKey, Result, Simulator};

/// The server's settings.
#[derive(Clone)]
pub struct ServerConfig {
    /// The bearer token clients must send.
    pub api_token: String,
    /// Where events go when a call names no `callbackUrl`; `None`: nowhere.
    pub default_callback_url: Option<String>,
    /// How events are signed and retried; `None`: events are not delivered.
    pub delivery: Option<DeliveryConfig>,
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("api_token", &"<redacted>")
            .field("default_callback_url", &self.default_callback_url)
            .field("delivery", &self.delivery)
            .finish()
    }
}

#[derive(Debug, Clone)]
struct AppState {
    simulator: Simulator,
    token: Arc<str>,
}

/// The provider API over `simulator` (no event delivery: [`serve`] adds it).
pub fn router(simulator: Simulator, api_token: &str) -> Router {
    let state = AppState {
        simulator,
        token: Arc::from(api_token),
    };
    Router::new()
        .route("/calls", post(place_call))
        .route("/calls/by-key/{key}", get(call_by_key))
        .route("/stats", get(stats))
        .with_state(state)
}

/// Serves the provider API on `listener` until `shutdown` completes, delivering call events
/// while it runs.
pub async fn serve(
    listener: TcpListener,
    simulator: Simulator,
    config: ServerConfig,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let delivery = match config.delivery.clone() {
        Some(delivery) => Some(tokio::spawn(deliver_events(
            simulator.clone(),
            Deliverer::new(delivery, clock)?,
            config.default_callback_url.clone(),
        ))),
        None => None,
    };
    let app = router(simulator, &config.api_token);
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    if let Some(task) = delivery {
        task.abort();
    }
    Ok(served?)
}

async fn deliver_events(simulator: Simulator, deliverer: Deliverer, default_url: Option<String>) {
    let mut events = simulator.subscribe();
    loop {
        match events.recv().await {
            Ok(event) => {
                let url = simulator
                    .callback_url(&event.call.key)
                    .or_else(|| default_url.clone());
                if let Some(url) = url {
                    let deliverer = deliverer.clone();
                    tokio::spawn(async move { deliverer.deliver(&url, &event).await });
                }
            }
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(events.missed = missed, "simulator callbacks fell behind");
            }
            Err(RecvError::Closed) => return,
        }
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(ErrorBody::new(code, message))).into_response()
}

fn authorized(headers: &HeaderMap, token: &str) -> bool {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    bool::from(given.as_bytes().ct_eq(token.as_bytes()))
}

fn unauthorized() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "missing or wrong bearer token",
    )
}

/// A refusal before the simulator sees the request: status, code, message.
type Refusal = (StatusCode, &'static str, String);

fn idempotency_key(
    headers: &HeaderMap,
    body: &PlaceCallBody,
) -> std::result::Result<IdempotencyKey, Refusal> {
    let header = headers
        .get(IDEMPOTENCY_KEY_HEADER)
        .map(|v| v.to_str().unwrap_or("\u{0}").to_owned());
    let key = match (header, &body.idempotency_key) {
        (Some(h), Some(b)) if h != *b => {
            return Err((
                StatusCode::BAD_REQUEST,
                "idempotency_key_mismatch",
                "Idempotency-Key header and idempotencyKey differ".to_owned(),
            ));
        }
        (Some(h), _) => h,
        (None, Some(b)) => b.clone(),
        (None, None) => {
            return Err((
                StatusCode::BAD_REQUEST,
                "missing_idempotency_key",
                "an Idempotency-Key header or idempotencyKey field is required".to_owned(),
            ));
        }
    };
    IdempotencyKey::new(&key).map_err(|e| {
        (
            StatusCode::BAD_REQUEST,
            "invalid_idempotency_key",
            e.to_string(),
        )
    })
}

async fn place_call(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<PlaceCallBody>, JsonRejection>,
) -> Response {
    if !authorized(&headers, &state.token) {
        return unauthorized();
    }
    let Ok(Json(body)) = body else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "expected a JSON call body",
        );
    };
    let key = match idempotency_key(&headers, &body) {
        Ok(key) => key,
        Err((status, code, message)) => return error(status, code, &message),
    };
    let invalid = |field: &str| {
        error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            &format!("{field} is invalid"),
        )
    };
    let Ok(to) = PhoneNumber::parse(&body.to) else {
        return invalid("to");
    };
    let Ok(caller_id) = PhoneNumber::parse(&body.from) else {
        return invalid("from");
    };
    let Ok(company) = CompanyRef::new(&body.company) else {
        return invalid("company");
    };
    let request = DialRequest {
        key,
        to,
        caller_id,
        company,
        context: body.context,
    };
    match state
        .simulator
        .place_with_callback(request, body.callback_url)
        .await
    {
        Ok(placed) if placed.replayed => (
            StatusCode::OK,
            [(REPLAYED_HEADER, HeaderValue::from_static("true"))],
            Json(placed.call),
        )
            .into_response(),
        Ok(placed) => (StatusCode::CREATED, Json(placed.call)).into_response(),
        Err(DialError::RateLimited { retry_after }) => {
            let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            let mut response = error(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "slow down");
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
            response
        }
        Err(DialError::Rejected { status, code }) => error(
            StatusCode::from_u16(status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY),
            &code,
            "request rejected",
        ),
        Err(DialError::Unauthorized { .. }) => unauthorized(),
        Err(DialError::Unavailable(_)) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "try again later",
        ),
    }
}

async fn call_by_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> Response {
    if !authorized(&headers, &state.token) {
        return unauthorized();
    }
    let Ok(key) = IdempotencyKey::new(&key) else {
        return error(StatusCode::NOT_FOUND, "not_found", "no call under this key");
    };
    match crate::Dialer::lookup(&state.simulator, &key).await {
        Ok(Some(call)) => Json(call).into_response(),
        Ok(None) | Err(_) => error(StatusCode::NOT_FOUND, "not_found", "no call under this key"),
    }
}

async fn stats(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if !authorized(&headers, &state.token) {
        return unauthorized();
    }
    Json(state.simulator.stats()).into_response()
}
