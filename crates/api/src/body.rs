//! JSON request bodies. [`JsonObject`] reads the body (the size limit applies), insists on a
//! JSON object and turns every failure into the envelope: malformed JSON is 400
//! `malformed_json`; [`typed`] turns a wrong JSON type into a 400 naming the field. The
//! `Content-Type` header is not checked: a body is JSON if it parses as JSON.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use outdial_domain::{ErrorCode, FieldError};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::ApiError;

/// A request body that parsed as a JSON object.
#[derive(Debug)]
pub(crate) struct JsonObject(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::too_large(crate::MAX_BODY_BYTES)
            } else {
                ApiError::malformed_json("the request body could not be read")
            }
        })?;
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => Ok(JsonObject(map)),
            Ok(_) => Err(ApiError::malformed_json(
                "the request body must be a JSON object",
            )),
            Err(e) => Err(ApiError::malformed_json(format!(
                "the request body is not valid JSON: {e}"
            ))),
        }
    }
}

/// Deserializes `object` into `T`, whose fields must all be optional. A wrong JSON type is
/// a 400 naming the field (found by trying each key on its own, since `T` may flatten and
/// serde then loses the path) and saying what was expected, never repeating the value.
pub(crate) fn typed<T: DeserializeOwned>(object: Map<String, Value>) -> Result<T, ApiError> {
    let error = match serde_json::from_value::<T>(Value::Object(object.clone())) {
        Ok(value) => return Ok(value),
        Err(e) => e,
    };
    for (key, value) in object {
        let single = Map::from_iter([(key.clone(), value)]);
        if let Err(e) = serde_json::from_value::<T>(Value::Object(single)) {
            return Err(ApiError::field(FieldError::new(
                key.as_str(),
                ErrorCode::InvalidType,
                format!("{key} must be {}", expected(&e)),
            )));
        }
    }
    Err(ApiError::malformed_json(format!(
        "the request body does not match the expected shape: {}",
        expected(&error)
    )))
}

/// The "expected …" part of a serde error, without the rejected value.
fn expected(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.split_once("expected ") {
        Some((_, rest)) => rest.to_owned(),
        None => "of another JSON type".to_owned(),
    }
}

/// 400 naming the first key of `body` that is not one of `known`.
pub(crate) fn reject_unknown(body: &Map<String, Value>, known: &[&str]) -> Result<(), ApiError> {
    match body.keys().find(|k| !known.contains(&k.as_str())) {
        Some(key) => Err(ApiError::field(FieldError::new(
            key.as_str(),
            ErrorCode::UnknownField,
            format!("unknown field {key}; expected one of {}", known.join(", ")),
        ))),
        None => Ok(()),
    }
}
