//! `Idempotency-Key` on every POST.
//!
//! A POST carrying the header is run at most once per company and key: the first request
//! claims the key and its response (status, `Outdial-*` and `Location` headers and body, 4xx
//! included) is stored; a repeat of the same request (method, path, query and body, compared
//! by SHA-256) gets the stored response again with `Idempotent-Replayed: true`; the same key with a different request is
//! 409 `idempotency_key_reused`, and a repeat while the first is still running is 409
//! `idempotency_key_in_progress` (retry shortly). A 5xx releases the key so a retry runs
//! again. Keys are kept 24 hours ([`outdial_store::KEY_RETENTION_HOURS`]). Keys are 1–255
//! visible ASCII characters; anything else is 400 naming the header.

use axum::Extension;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use outdial_domain::{ErrorCode, FieldError};
use outdial_store::{Company, Idempotent};
use sha2::{Digest, Sha256};

use crate::{ApiError, AppState};

/// The request header.
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";

/// The response header marking a replayed response.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

/// The longest key accepted.
const MAX_KEY_LEN: usize = 255;

fn key_error(message: &str) -> ApiError {
    ApiError::field(FieldError::new(
        "Idempotency-Key",
        ErrorCode::InvalidValue,
        message,
    ))
}

fn conflict(code: &'static str, message: &str) -> ApiError {
    let mut e = key_error(message);
    e.status = StatusCode::CONFLICT;
    e.code = code;
    e.message = message.to_owned();
    e
}

/// Runs a keyed POST at most once (see the module documentation); other requests pass.
pub(crate) async fn idempotent(
    State(state): State<AppState>,
    Extension(company): Extension<Company>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if request.method() != Method::POST {
        return Ok(next.run(request).await);
    }
    let Some(key) = request.headers().get(IDEMPOTENCY_KEY_HEADER) else {
        return Ok(next.run(request).await);
    };
    let key = key
        .to_str()
        .ok()
        .filter(|k| (1..=MAX_KEY_LEN).contains(&k.len()))
        .filter(|k| k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            key_error("Idempotency-Key must be 1-255 visible ASCII characters (a UUID is ideal)")
        })?
        .to_owned();

    let (parts, body) = request.into_parts();
    let limit = crate::body_limit_of(&parts.method, parts.uri.path());
    let bytes = to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::too_large(limit))?;
    let mut hasher = Sha256::new();
    hasher.update(parts.method.as_str().as_bytes());
    hasher.update([0]);
    hasher.update(
        parts
            .uri
            .path_and_query()
            .map_or("", |p| p.as_str())
            .as_bytes(),
    );
    hasher.update([0]);
    hasher.update(&bytes);
    let digest: [u8; 32] = hasher.finalize().into();

    let now = state.clock.now();
    match state
        .store
        .begin_idempotent(company.id, &key, &digest, now)
        .await?
    {
        Idempotent::Proceed => {}
        Idempotent::Replay {
            status,
            headers: stored,
            body,
        } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let mut response = (status, body).into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            for (name, value) in stored {
                if let (Ok(name), Ok(value)) = (
                    header::HeaderName::from_bytes(name.as_bytes()),
                    HeaderValue::from_str(&value),
                ) {
                    headers.insert(name, value);
                }
            }
            headers.insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
            return Ok(response);
        }
        Idempotent::Mismatch => {
            return Err(conflict(
                "idempotency_key_reused",
                "this Idempotency-Key was already used for a different request",
            ));
        }
        Idempotent::InProgress => {
            return Err(conflict(
                "idempotency_key_in_progress",
                "a request with this Idempotency-Key is still being processed; retry shortly",
            ));
        }
    }

    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let status = response.status();
    if status.is_server_error() {
        state.store.abandon_idempotent(company.id, &key).await?;
        return Ok(response);
    }
    let (parts, body) = response.into_parts();
    let bytes = match to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(e) => {
            state.store.abandon_idempotent(company.id, &key).await?;
            return Err(ApiError::internal(&e));
        }
    };
    let replayed: Vec<(String, String)> = parts
        .headers
        .iter()
        .filter(|(name, _)| replays(name))
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect();
    state
        .store
        .finish_idempotent(company.id, &key, status.as_u16(), &replayed, &bytes)
        .await?;
    Ok(Response::from_parts(parts, Body::from(bytes)))
}

/// Whether a replay repeats response header `name`: outdial's own (`Outdial-*`) and
/// `Location`; not hop-by-hop or per-response ones (`Date`, `Content-Length`).
fn replays(name: &header::HeaderName) -> bool {
    name == header::LOCATION || name.as_str().starts_with("outdial-")
}
