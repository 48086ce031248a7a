//! The API's one error envelope: `{"error": {"code", "message", "fields"}}`.
//!
//! Handlers return [`ApiError`]; store errors map to 404/409, anything unexpected to a 500
//! with a generic message, logged once here with `tracing::error!` (the store's errors
//! carry no personal data). Responses produced outside the handlers (tower-http's 413, axum's
//! 405) are rewritten into the same envelope by [`envelope_plain_errors`].

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use outdial_domain::{FieldError, Violations};
use serde::Serialize;

/// A failed request: the status, a stable machine-readable code, a human message and the
/// offending fields (empty when the problem is not about one field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub fields: Vec<FieldError>,
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: Body<'a>,
}

#[derive(Serialize)]
struct Body<'a> {
    code: &'a str,
    message: &'a str,
    fields: &'a [FieldError],
}

impl ApiError {
    /// An error without field details.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            fields: Vec::new(),
        }
    }

    /// 400 for a request whose fields failed validation; the message repeats each field's.
    pub fn invalid(violations: Violations) -> Self {
        let messages: Vec<&str> = violations.iter().map(|e| e.message.as_str()).collect();
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_request",
            message: format!("invalid request: {}", messages.join("; ")),
            fields: violations.as_slice().to_vec(),
        }
    }

    /// 400 for one bad field.
    pub fn field(error: FieldError) -> Self {
        let mut v = Violations::new();
        v.push(error);
        Self::invalid(v)
    }

    /// 400 for a body that is not JSON at all.
    pub fn malformed_json(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed_json", message)
    }

    /// 401 for a missing or unknown key.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid X-API-Key header is required",
        )
    }

    /// 413 for a body over `limit` bytes.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request body must be at most {limit} bytes"),
        )
    }

    /// 500 with a generic message; `what` (no personal data) is logged once.
    pub fn internal(what: &dyn std::error::Error) -> Self {
        tracing::error!(error = %what, source = ?what.source().map(ToString::to_string), "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the failure was logged",
        )
    }
}

impl From<outdial_store::Error> for ApiError {
    fn from(e: outdial_store::Error) -> Self {
        use outdial_store::Error as E;
        match &e {
            E::NotFound { what } => Self::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("{what} not found"),
            ),
            E::Conflict { what } => Self::new(
                StatusCode::CONFLICT,
                "conflict",
                format!("{what} already exists"),
            ),
            _ => Self::internal(&e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let envelope = Envelope {
            error: Body {
                code: self.code,
                message: &self.message,
                fields: &self.fields,
            },
        };
        (self.status, Json(envelope)).into_response()
    }
}

/// The fallback for paths the API does not define.
pub(crate) async fn no_route() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

/// Rewrites an error response that is neither JSON nor HTML (tower-http's 413, axum's 405) into
/// the envelope.
pub(crate) async fn envelope_plain_errors(response: Response) -> Response {
    let status = response.status();
    // JSON errors are ours already; HTML ones are the admin page's (its login form is a 401).
    let is_ours = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| {
            v.as_bytes().starts_with(b"application/json") || v.as_bytes().starts_with(b"text/html")
        });
    if !(status.is_client_error() || status.is_server_error()) || is_ours {
        return response;
    }
    let error = match status {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::too_large(crate::MAX_BODY_BYTES),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::new(
            status,
            "method_not_allowed",
            "method not allowed on this route",
        ),
        _ => ApiError::new(
            status,
            "error",
            status.canonical_reason().unwrap_or("error").to_lowercase(),
        ),
    };
    let mut rewritten = error.into_response();
    if let Some(allow) = response.headers().get(header::ALLOW) {
        rewritten.headers_mut().insert(header::ALLOW, allow.clone());
    }
    rewritten
}
