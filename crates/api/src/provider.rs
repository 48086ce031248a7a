//! `POST /provider/events`: the telephony provider's signed call events (issue 5).
//!
//! Not behind `X-API-Key` and not in the OpenAPI document: the caller is the provider, who
//! signs each delivery with the secret outdial was configured with
//! (`X-Outdial-Timestamp`, `X-Outdial-Signature: v1=<hex HMAC-SHA256 of "{ts}.{body}">`,
//! see `outdial_dialer::signature`). A verified event is stored once by its id; a retried
//! delivery of a stored event is acknowledged again (200) and changes nothing. The worker
//! following the call reads the stored state before it asks the provider.

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use outdial_dialer::callback::CallEvent;
use outdial_dialer::signature::{SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature};
use outdial_domain::{ErrorCode, FieldError};
use outdial_store::ProviderEvent;
use serde_json::{Value, json};

use crate::{ApiError, AppState};

/// How far a delivery's signing time may be from this server's clock (replays).
pub const SIGNATURE_TOLERANCE: Duration = Duration::from_secs(300);

pub(crate) async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Some(secret) = state.provider_secret.as_deref() else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "provider callbacks are not configured on this server (OUTDIAL_PROVIDER_SECRET)",
        ));
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(timestamp), Some(signature)) = (header(TIMESTAMP_HEADER), header(SIGNATURE_HEADER))
    else {
        return Err(refused(
            "the X-Outdial-Timestamp and X-Outdial-Signature headers are required",
        ));
    };
    let now = state.clock.now();
    if let Err(e) = verify_signature(
        secret,
        timestamp,
        &body,
        signature,
        now,
        SIGNATURE_TOLERANCE,
    ) {
        tracing::warn!(error = %e, "provider callback refused");
        return Err(refused(&e.to_string()));
    }
    let event: CallEvent = serde_json::from_slice(&body).map_err(shape)?;
    let call = serde_json::to_value(&event.call).map_err(|e| ApiError::internal(&e))?;
    let kind = serde_json::to_value(event.kind).map_err(|e| ApiError::internal(&e))?;
    let new = state
        .store
        .record_provider_event(
            &ProviderEvent {
                id: &event.id,
                call_key: event.call.key.as_str(),
                kind: kind.as_str().unwrap_or_default(),
                occurred_at: event.occurred_at,
                call: &call,
            },
            now,
        )
        .await?;
    tracing::debug!(event.id = %event.id, event.new = new, "provider event received");
    Ok((
        StatusCode::OK,
        Json(json!({"received": true, "duplicate": !new})),
    ))
}

fn refused(message: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_signature",
        format!("provider callback refused: {message}"),
    )
}

/// A 400 for a signed body that is not a call event; names the field when serde does and
/// never repeats a value from the body (it may hold a transcript).
fn shape(e: serde_json::Error) -> ApiError {
    let text = e.to_string();
    if let Some(rest) = text.strip_prefix("missing field `") {
        let field = rest.split('`').next().unwrap_or_default().to_owned();
        return ApiError::field(FieldError::new(
            field.as_str(),
            ErrorCode::Required,
            format!("{field} is required"),
        ));
    }
    let expected = text
        .split_once("expected ")
        .map_or("a provider call event", |(_, rest)| rest);
    ApiError::malformed_json(format!(
        "the body is not a provider call event: expected {expected}"
    ))
}
