//! `X-API-Key` authentication: every route runs behind [`require_api_key`], which puts the
//! key's [`Company`](outdial_store::Company) into the request extensions for handlers to
//! scope their queries by.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::{ApiError, AppState};

/// The header carrying the key.
pub const API_KEY_HEADER: &str = "x-api-key";

/// Rejects a request without a valid key (401); otherwise records its company.
pub(crate) async fn require_api_key(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let key = request
        .headers()
        .get(API_KEY_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(ApiError::unauthorized)?;
    let company = state
        .store
        .authenticate(key)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    request.extensions_mut().insert(company);
    Ok(next.run(request).await)
}
