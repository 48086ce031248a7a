//! outdial's own LMS dialect over HTTP (see the crate documentation for the contract).
//!
//! Each GET is retried on a 5xx answer, a timeout or a refused connection, with backoff
//! (50 ms, doubling), for as long as the deadline allows; any other status is final. Each
//! try's timeout is what is left of the deadline.

use async_trait::async_trait;
use serde_json::{Map, Value};
use tokio::time::{Duration, Instant};

use crate::model::{Connection, Loan};
use crate::{Adapter, LmsError};

/// The first retry's backoff.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);

/// What one GET came back with.
enum Answer {
    Json(Value),
    NotFound,
}

/// [`Adapter`] for outdial's HTTP contract.
#[derive(Debug, Clone)]
pub struct HttpAdapter {
    client: reqwest::Client,
    connection: Connection,
}

impl HttpAdapter {
    /// The adapter for `connection`, sending through `client`.
    pub fn new(client: reqwest::Client, connection: Connection) -> Self {
        HttpAdapter { client, connection }
    }

    fn timeout(&self, detail: impl Into<String>) -> LmsError {
        LmsError::Timeout {
            host: self.connection.host(),
            budget_ms: self.connection.timeout_ms(),
            detail: detail.into(),
        }
    }

    fn unavailable(&self, detail: impl Into<String>) -> LmsError {
        LmsError::Unavailable {
            host: self.connection.host(),
            detail: detail.into(),
        }
    }

    /// GETs `segments` under the base URL until an answer or the deadline.
    async fn get(
        &self,
        kind: &'static str,
        segments: &[&str],
        deadline: Instant,
    ) -> Result<Answer, LmsError> {
        let url = self.connection.url(segments);
        let host = self.connection.host();
        let mut backoff = FIRST_BACKOFF;
        let mut tries = 0u32;
        loop {
            tries += 1;
            let started = Instant::now();
            let Some(left) = deadline
                .checked_duration_since(started)
                .filter(|d| !d.is_zero())
            else {
                return Err(self.timeout(format!("{tries} tries")));
            };
            let mut request = self.client.get(url.clone()).timeout(left);
            for (name, value) in self.connection.headers() {
                request = request.header(name.as_str(), value.as_str());
            }
            let sent = request.send().await;
            let latency_ms = started.elapsed().as_millis() as u64;
            // What went wrong on this try, when it may be retried.
            let retryable = match sent {
                Ok(response) => {
                    let status = response.status();
                    tracing::debug!(lms.host = %host, lms.request = kind, http.status = status.as_u16(), latency_ms, tries, "LMS answered");
                    if status.is_success() {
                        let bytes = response.bytes().await.map_err(|e| {
                            if e.is_timeout() {
                                self.timeout("the answer's body was cut off by the deadline")
                            } else {
                                self.unavailable(format!("the {kind} answer could not be read"))
                            }
                        })?;
                        let value = serde_json::from_slice::<Value>(&bytes).map_err(|_| {
                            self.unavailable(format!("the {kind} answer is not valid JSON"))
                        })?;
                        return Ok(Answer::Json(value));
                    }
                    if status == reqwest::StatusCode::NOT_FOUND {
                        return Ok(Answer::NotFound);
                    }
                    if !status.is_server_error() {
                        return Err(self.unavailable(format!(
                            "the {kind} request was answered {status} (check the headers set with PUT /lms)"
                        )));
                    }
                    self.unavailable(format!("the {kind} request was answered {status}"))
                }
                Err(e) if e.is_timeout() => self.timeout(format!("{tries} tries")),
                Err(e) if e.is_connect() => {
                    self.timeout(format!("unreachable after {tries} tries"))
                }
                Err(_) => self.unavailable(format!("the {kind} request failed")),
            };
            tracing::debug!(lms.host = %host, lms.request = kind, latency_ms, tries, error = %retryable, "LMS try failed");
            let now = Instant::now();
            if now + backoff >= deadline {
                return Err(retryable);
            }
            tokio::time::sleep(backoff).await;
            backoff = backoff.saturating_mul(2);
        }
    }
}

#[async_trait]
impl Adapter for HttpAdapter {
    async fn customer(&self, id: &str, deadline: Instant) -> Result<Map<String, Value>, LmsError> {
        match self.get("customer", &["customers", id], deadline).await? {
            Answer::Json(Value::Object(map)) => Ok(map),
            Answer::Json(_) => Err(self.unavailable("the customer answer is not a JSON object")),
            Answer::NotFound => Err(LmsError::NotFound {
                host: self.connection.host(),
            }),
        }
    }

    async fn loans(&self, id: &str, deadline: Instant) -> Result<Vec<Loan>, LmsError> {
        match self
            .get("loans", &["customers", id, "loans"], deadline)
            .await?
        {
            Answer::NotFound => Ok(Vec::new()),
            Answer::Json(Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| Loan::from_json(i, v))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|detail| {
                    self.unavailable(format!("the loans answer is malformed: {detail}"))
                }),
            Answer::Json(_) => Err(self.unavailable("the loans answer is not a JSON array")),
        }
    }
}
