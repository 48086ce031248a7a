//! The company's webhook: where call results are sent, and their deliveries.
//!
//! - `PUT /webhook` with `{"url"}` sets the URL and answers with a **new signing secret**
//!   (shown only here; each PUT rotates it). `DELETE /webhook` stops deliveries.
//! - `GET /webhook/deliveries?status=pending|delivered|dead&limit=` lists events.
//! - `POST /webhook/deliveries/redrive` with `{"ids"?}` re-drives dead events (all when
//!   `ids` is absent).
//!
//! Each delivery is a POST of the event's JSON with `Outdial-Event-Id` (stable across
//! retries), `Outdial-Timestamp` and `Outdial-Signature: v1=<hex HMAC-SHA256 of
//! "{timestamp}.{body}" under the secret>`.

use axum::Extension;
use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use outdial_domain::{ErrorCode, FieldError};
use outdial_store::{Company, DeliveryState};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::body::{JsonObject, reject_unknown, typed};
use crate::{ApiError, AppState, query};

/// The longest webhook URL accepted.
const MAX_URL: usize = 2048;

#[derive(Debug, Deserialize)]
struct WebhookBody {
    url: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RedriveBody {
    ids: Option<Vec<Uuid>>,
}

/// The answer to `PUT /webhook`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Webhook {
    url: String,
    /// The signing secret: keep it, it is not shown again.
    secret: String,
}

/// How many events a re-drive re-queued.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Redriven {
    redriven: u64,
}

/// A page of deliveries.
#[derive(Debug, Serialize)]
pub(crate) struct Deliveries {
    data: Vec<DeliveryState>,
}

/// `PUT /webhook`.
#[utoipa::path(put, path = "/webhook", tag = "webhook",
    request_body(content = crate::openapi::WebhookRequestDoc, description = "The URL to send call results to"),
    responses((status = 200, description = "The URL and its new signing secret", body = Webhook)))]
#[tracing::instrument(skip_all, fields(company.id = %company.id))]
pub(crate) async fn put(
    State(state): State<AppState>,
    Extension(company): Extension<Company>,
    JsonObject(body): JsonObject,
) -> Result<Json<Webhook>, ApiError> {
    reject_unknown(&body, &["url"])?;
    let body: WebhookBody = typed(body)?;
    let url = body.url.ok_or_else(|| {
        ApiError::field(FieldError::new(
            "url",
            ErrorCode::Required,
            "url is required",
        ))
    })?;
    let valid = url.len() <= MAX_URL
        && (url.starts_with("https://") || url.starts_with("http://"))
        && url
            .parse::<axum::http::Uri>()
            .is_ok_and(|u| u.host().is_some());
    if !valid {
        return Err(ApiError::field(FieldError::new(
            "url",
            ErrorCode::InvalidFormat,
            format!("url must be an http or https URL of at most {MAX_URL} characters"),
        )));
    }
    let updated = state.store.set_webhook(company.id, Some(&url)).await?;
    tracing::info!("webhook set");
    Ok(Json(Webhook {
        url,
        secret: updated.webhook_secret.unwrap_or_default(),
    }))
}

/// `DELETE /webhook`.
#[utoipa::path(delete, path = "/webhook", tag = "webhook",
    responses((status = 204, description = "Deliveries stopped")))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    Extension(company): Extension<Company>,
) -> Result<StatusCode, ApiError> {
    state.store.set_webhook(company.id, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /webhook/deliveries`.
#[utoipa::path(get, path = "/webhook/deliveries", tag = "webhook",
    params(
        ("status" = Option<String>, Query, description = "pending, delivered or dead (default dead)"),
        ("limit" = Option<u32>, Query, description = "1-1000 (default 50)"),
    ),
    responses((status = 200, description = "Events, newest first", body = crate::openapi::DeliveryPage)))]
pub(crate) async fn deliveries(
    State(state): State<AppState>,
    Extension(company): Extension<Company>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Deliveries>, ApiError> {
    let mut status = "dead".to_owned();
    let mut limit = 50;
    for (name, value) in query::pairs(raw.as_deref())? {
        match name.as_str() {
            "status" => {
                if !["pending", "delivered", "dead"].contains(&value.as_str()) {
                    return Err(query::bad(
                        &name,
                        "status must be pending, delivered or dead",
                    ));
                }
                status = value;
            }
            "limit" => limit = query::limit(&value, 1000)?,
            _ => return Err(query::unknown(&name)),
        }
    }
    let data = state.store.deliveries(company.id, &status, limit).await?;
    Ok(Json(Deliveries { data }))
}

/// `POST /webhook/deliveries/redrive`.
#[utoipa::path(post, path = "/webhook/deliveries/redrive", tag = "webhook",
    request_body(content = crate::openapi::RedriveRequestDoc, description = "The dead events to re-drive (all when ids is absent)"),
    responses((status = 200, description = "How many were re-queued", body = Redriven)))]
#[tracing::instrument(skip_all, fields(company.id = %company.id))]
pub(crate) async fn redrive(
    State(state): State<AppState>,
    Extension(company): Extension<Company>,
    JsonObject(body): JsonObject,
) -> Result<Json<Redriven>, ApiError> {
    reject_unknown(&body, &["ids"])?;
    let body: RedriveBody = typed(body)?;
    if body.ids.as_ref().is_some_and(|ids| ids.len() > 1000) {
        return Err(ApiError::field(FieldError::new(
            "ids",
            ErrorCode::TooMany,
            "at most 1000 ids at once",
        )));
    }
    let now = state.clock.now();
    let redriven = state
        .store
        .redrive_deliveries(company.id, body.ids.as_deref(), now)
        .await?;
    tracing::info!(webhook.redriven = redriven, "webhook deliveries re-driven");
    Ok(Json(Redriven { redriven }))
}
