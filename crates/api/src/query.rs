//! Query strings: decoded into pairs with axum's form decoder, then checked parameter by
//! parameter so that every bad or unknown parameter is a 400 naming it.

use axum::http::StatusCode;
use outdial_domain::{ErrorCode, FieldError};

use crate::ApiError;

/// `a=1&b=2` as pairs, in order.
pub(crate) fn pairs(query: Option<&str>) -> Result<Vec<(String, String)>, ApiError> {
    let malformed = || {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "the query string is malformed",
        )
    };
    let uri: axum::http::Uri = format!("/?{}", query.unwrap_or(""))
        .parse()
        .map_err(|_| malformed())?;
    axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&uri)
        .map(|q| q.0)
        .map_err(|_| malformed())
}

/// 400 naming a parameter with a bad value.
pub(crate) fn bad(name: &str, message: impl Into<String>) -> ApiError {
    ApiError::field(FieldError::new(name, ErrorCode::InvalidValue, message))
}

/// 400 naming a parameter the route does not take.
pub(crate) fn unknown(name: &str) -> ApiError {
    ApiError::field(FieldError::new(
        name,
        ErrorCode::UnknownField,
        format!("unknown query parameter {name}"),
    ))
}

/// `true` or `false`.
pub(crate) fn boolean(name: &str, value: &str) -> Result<bool, ApiError> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(bad(name, format!("{name} must be true or false"))),
    }
}

/// A page size from 1 to `max`.
pub(crate) fn limit(value: &str, max: u32) -> Result<u32, ApiError> {
    value
        .parse::<u32>()
        .ok()
        .filter(|l| (1..=max).contains(l))
        .ok_or_else(|| bad("limit", format!("limit must be an integer from 1 to {max}")))
}

/// A `nextCursor` from a previous page of a `seq`-ordered list.
pub(crate) fn seq_cursor(value: &str) -> Result<i64, ApiError> {
    value
        .parse::<i64>()
        .ok()
        .filter(|c| *c >= 0)
        .ok_or_else(|| bad("after", "after must be a nextCursor from a previous page"))
}
