//! `X-API-Key` authentication: every route runs behind [`require_api_key`], which puts the
//! key's [`Company`](outdial_store::Company) into the request extensions for handlers to
//! scope their queries by.
//!
//! A key that authenticated is remembered in process for [`AUTH_TTL`] under the SHA-256 of
//! the key (never the key itself), so most requests skip the lookup query. The price: a
//! rotated (revoked) key, or a change of the company's configuration, takes effect in each
//! API process within that time. Unknown keys are never remembered.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use outdial_domain::schedule::Catalog;
use outdial_store::Company;
use sha2::{Digest, Sha256};

use crate::{ApiError, AppState};

/// The header carrying the key.
pub const API_KEY_HEADER: &str = "x-api-key";

/// How long an authenticated key is remembered.
pub const AUTH_TTL: Duration = Duration::from_secs(5);

/// The most keys remembered at once (the cache empties when full).
const MAX_ENTRIES: usize = 10_000;

/// Keys that authenticated recently, by their SHA-256.
#[derive(Debug, Default)]
pub struct AuthCache {
    entries: Mutex<HashMap<[u8; 32], (Company, Instant)>>,
}

impl AuthCache {
    fn get(&self, digest: &[u8; 32]) -> Option<Company> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(digest)
            .filter(|(_, at)| at.elapsed() < AUTH_TTL)
            .map(|(c, _)| c.clone())
    }

    fn put(&self, digest: [u8; 32], company: Company) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(digest, (company, Instant::now()));
    }
}

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
    let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
    let company = match state.auth.get(&digest) {
        Some(company) => company,
        None => {
            let company = state
                .store
                .authenticate(key)
                .await?
                .ok_or_else(ApiError::unauthorized)?;
            state.auth.put(digest, company.clone());
            company
        }
    };
    request.extensions_mut().insert(company);
    Ok(next.run(request).await)
}

/// Parsed task-type catalogs by their TOML text: parsing (TOML and cron expressions) once
/// per distinct catalog instead of once per request.
static CATALOGS: Mutex<Option<HashMap<String, Arc<Catalog>>>> = Mutex::new(None);

/// The company's parsed catalog.
pub(crate) fn catalog(company: &Company) -> Result<Arc<Catalog>, ApiError> {
    {
        let cache = CATALOGS.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = cache.as_ref().and_then(|m| m.get(&company.task_types)) {
            return Ok(Arc::clone(c));
        }
    }
    let parsed = Arc::new(company.catalog()?);
    let mut cache = CATALOGS.lock().unwrap_or_else(|e| e.into_inner());
    let map = cache.get_or_insert_with(HashMap::new);
    if map.len() >= 1024 {
        map.clear();
    }
    map.insert(company.task_types.clone(), Arc::clone(&parsed));
    Ok(parsed)
}
