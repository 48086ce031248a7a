//! JSON bodies of the provider API, shared by the simulator server and [`crate::HttpDialer`].

use serde::{Deserialize, Serialize};

use crate::{DialContext, DialRequest};

/// Header carrying the idempotency key of `POST /calls`.
pub(crate) const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";
/// Header set to `true` when `POST /calls` returned an existing call.
pub(crate) const REPLAYED_HEADER: &str = "idempotent-replayed";

/// Body of `POST /calls`. Numbers travel as E.164 text and are validated by the server.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PlaceCallBody {
    /// Alternative to the `Idempotency-Key` header; both must agree when both are given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    pub to: String,
    pub from: String,
    pub company: String,
    #[serde(default)]
    pub context: DialContext,
    /// Where this call's events go (instead of the server's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
}

impl PlaceCallBody {
    pub(crate) fn from_request(request: &DialRequest, callback_url: Option<String>) -> Self {
        Self {
            idempotency_key: Some(request.key.as_str().to_owned()),
            to: request.to.as_e164().to_owned(),
            from: request.caller_id.as_e164().to_owned(),
            company: request.company.as_str().to_owned(),
            context: request.context.clone(),
            callback_url,
        }
    }
}

/// Error body of every non-2xx answer: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ErrorDetail {
    pub code: String,
    #[serde(default)]
    pub message: String,
}

impl ErrorBody {
    pub(crate) fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            error: ErrorDetail {
                code: code.to_owned(),
                message: message.into(),
            },
        }
    }
}
