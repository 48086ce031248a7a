//! The connection a company configures and the loans an LMS returns.

use std::time::Duration;

use chrono::NaiveDate;
use reqwest::Url;
use reqwest::header::{HeaderName, HeaderValue};
use serde::Serialize;
use serde_json::{Map, Value};

/// The whole fetch's budget when `timeoutMs` is not given.
pub const DEFAULT_TIMEOUT_MS: u64 = 2_000;
/// The largest budget accepted.
pub const MAX_TIMEOUT_MS: u64 = 30_000;
/// The most headers a connection may carry.
pub const MAX_HEADERS: usize = 20;

/// A bad `PUT /lms` field: which one and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ConnectionError {
    pub field: String,
    pub message: String,
}

fn bad(field: impl Into<String>, message: impl Into<String>) -> ConnectionError {
    ConnectionError {
        field: field.into(),
        message: message.into(),
    }
}

/// A company's LMS connection, checked. `Debug` names the headers, never their values.
#[derive(Clone, PartialEq, Eq)]
pub struct Connection {
    base_url: Url,
    headers: Vec<(String, String)>,
    timeout_ms: u64,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("base_url", &self.base_url.as_str())
            .field("headers", &self.header_names())
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}

impl Connection {
    /// Checks a connection: an absolute `http`/`https` URL without query, fragment or
    /// credentials; valid header names and values, each name once; a budget of 1 ms to
    /// [`MAX_TIMEOUT_MS`] (default [`DEFAULT_TIMEOUT_MS`]).
    pub fn new(
        base_url: &str,
        headers: Vec<(String, String)>,
        timeout_ms: Option<u64>,
    ) -> Result<Connection, ConnectionError> {
        let url = Url::parse(base_url.trim())
            .map_err(|e| bad("baseUrl", format!("must be an absolute http(s) URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(bad(
                "baseUrl",
                "must be an absolute http(s) URL with a host",
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad("baseUrl", "must not have a query or a fragment"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad(
                "baseUrl",
                "must not carry credentials: send them as a header",
            ));
        }
        if headers.len() > MAX_HEADERS {
            return Err(bad(
                "headers",
                format!("must have at most {MAX_HEADERS} entries"),
            ));
        }
        let mut seen: Vec<String> = Vec::with_capacity(headers.len());
        for (name, value) in &headers {
            let field = format!("headers.{name}");
            let parsed = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| bad(field.clone(), "is not a valid HTTP header name"))?;
            if matches!(
                parsed.as_str(),
                "host" | "content-length" | "transfer-encoding" | "connection"
            ) {
                return Err(bad(field, "is set by outdial itself"));
            }
            if HeaderValue::from_str(value).is_err() {
                return Err(bad(
                    field,
                    "must be visible ASCII text (no control characters)",
                ));
            }
            if seen.contains(&parsed.as_str().to_owned()) {
                return Err(bad(field, "is given twice (names are case-insensitive)"));
            }
            seen.push(parsed.as_str().to_owned());
        }
        let timeout_ms = timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
        if !(1..=MAX_TIMEOUT_MS).contains(&timeout_ms) {
            return Err(bad(
                "timeoutMs",
                format!("must be 1 to {MAX_TIMEOUT_MS} (milliseconds for the whole fetch)"),
            ));
        }
        let mut base_url = url;
        let path = base_url.path().trim_end_matches('/').to_owned();
        base_url.set_path(&path);
        Ok(Connection {
            base_url,
            headers,
            timeout_ms,
        })
    }

    /// The base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        self.base_url.as_str().trim_end_matches('/')
    }

    /// The host (and port when not the scheme's default): what errors and logs name.
    pub fn host(&self) -> String {
        let host = self.base_url.host_str().unwrap_or_default();
        match self.base_url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        }
    }

    /// The headers, as configured.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The header names (what `GET /lms` shows).
    pub fn header_names(&self) -> Vec<&str> {
        self.headers.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// The budget in milliseconds.
    pub fn timeout_ms(&self) -> u64 {
        self.timeout_ms
    }

    /// The budget of one whole fetch, retries included.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// `{baseUrl}/{segments…}`, each segment percent-encoded.
    pub(crate) fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base_url.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }
}

/// One loan as the LMS returned it. `id` is the LMS's integer id (what `loanIds` names);
/// `loanId` its reference text, if it has one. Fields the contract does not name are kept
/// in `metadata`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Loan {
    pub id: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loan_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub balance_cents: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due_date: Option<NaiveDate>,
    pub metadata: Map<String, Value>,
}

impl Loan {
    /// Reads loan `index` of an answer; the error says what is wrong with it.
    pub(crate) fn from_json(index: usize, value: Value) -> Result<Loan, String> {
        let Value::Object(mut map) = value else {
            return Err(format!("loan {index} is not a JSON object"));
        };
        let id = match map.remove("id") {
            Some(Value::Number(n)) if n.as_i64().is_some_and(|i| i > 0) => {
                n.as_i64().unwrap_or_default()
            }
            _ => return Err(format!("loan {index} has no positive integer id")),
        };
        let text = |map: &mut Map<String, Value>, key: &str| -> Result<Option<String>, String> {
            match map.remove(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.chars().count() <= 128 => Ok(Some(s)),
                Some(Value::Number(n)) => Ok(Some(n.to_string())),
                Some(_) => Err(format!(
                    "loan {index}: {key} must be text of at most 128 characters"
                )),
            }
        };
        let loan_id = text(&mut map, "loanId")?;
        let status = text(&mut map, "status")?;
        let balance_cents = match map.remove("balanceCents") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) if n.as_i64().is_some() => n.as_i64(),
            Some(_) => return Err(format!("loan {index}: balanceCents must be an integer")),
        };
        let due_date = match map.remove("dueDate") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(
                NaiveDate::parse_from_str(&s, "%Y-%m-%d")
                    .map_err(|_| format!("loan {index}: dueDate must be YYYY-MM-DD"))?,
            ),
            Some(_) => return Err(format!("loan {index}: dueDate must be YYYY-MM-DD")),
        };
        Ok(Loan {
            id,
            loan_id,
            status,
            balance_cents,
            due_date,
            metadata: map,
        })
    }

    /// Whether `reference` (a customer's `loanId`) names this loan: its reference text or
    /// its integer id in decimal.
    pub fn is(&self, reference: &str) -> bool {
        self.loan_id.as_deref() == Some(reference) || self.id.to_string() == reference
    }

    /// The debt key calls about this loan count against: its reference, else its id.
    pub fn reference(&self) -> String {
        self.loan_id.clone().unwrap_or_else(|| self.id.to_string())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_connection_is_checked_field_by_field() {
        let ok = Connection::new(
            "https://lms.example.com/api/",
            vec![("Authorization".into(), "Bearer x".into())],
            None,
        )
        .unwrap();
        assert_eq!(ok.base_url(), "https://lms.example.com/api");
        assert_eq!(ok.host(), "lms.example.com");
        assert_eq!(ok.timeout_ms(), DEFAULT_TIMEOUT_MS);
        assert_eq!(
            ok.url(&["customers", "a/b c"]).as_str(),
            "https://lms.example.com/api/customers/a%2Fb%20c"
        );
        assert!(!format!("{ok:?}").contains("Bearer"), "{ok:?}");
        for (url, headers, timeout, field) in [
            ("ftp://x", vec![], None, "baseUrl"),
            ("lms.example.com", vec![], None, "baseUrl"),
            ("http://u:p@x", vec![], None, "baseUrl"),
            ("http://x?a=1", vec![], None, "baseUrl"),
            (
                "http://x",
                vec![("bad name".into(), "v".into())],
                None,
                "headers.bad name",
            ),
            (
                "http://x",
                vec![("Host".into(), "v".into())],
                None,
                "headers.Host",
            ),
            (
                "http://x",
                vec![("A".into(), "1".into()), ("a".into(), "2".into())],
                None,
                "headers.a",
            ),
            (
                "http://x",
                vec![("A".into(), "line\nbreak".into())],
                None,
                "headers.A",
            ),
            ("http://x", vec![], Some(0), "timeoutMs"),
            ("http://x", vec![], Some(MAX_TIMEOUT_MS + 1), "timeoutMs"),
        ] {
            let e = Connection::new(url, headers, timeout).unwrap_err();
            assert_eq!(e.field, field, "{url}: {e}");
        }
    }

    #[test]
    fn a_loan_keeps_unknown_fields_and_names_what_is_wrong() {
        let loan = Loan::from_json(
            0,
            json!({"id": 123, "loanId": "L-123", "status": "late", "balanceCents": 12_500,
                   "dueDate": "2026-06-01", "apr": 24.9}),
        )
        .unwrap();
        assert_eq!(loan.id, 123);
        assert_eq!(
            loan.metadata,
            json!({"apr": 24.9}).as_object().unwrap().clone()
        );
        assert!(loan.is("L-123") && loan.is("123") && !loan.is("124"));
        assert!(
            Loan::from_json(2, json!({"loanId": "x"}))
                .unwrap_err()
                .contains("loan 2")
        );
        assert!(
            Loan::from_json(0, json!({"id": 1, "dueDate": "06/01"}))
                .unwrap_err()
                .contains("dueDate")
        );
        assert!(Loan::from_json(0, json!([1])).is_err());
    }
}
