//! The loan management system (LMS) a company connects with `PUT /lms`, as outdial reads it
//! for `sync: true`, schedule sync and bulk import.
//!
//! - [`Connection`]: a company's base URL, request headers (credentials: never logged,
//!   never returned by the API) and time budget, checked.
//! - [`Adapter`]: one LMS dialect. [`HttpAdapter`] speaks outdial's own contract:
//!   `GET {baseUrl}/customers/{id}` answers a JSON object with any of the seed's customer
//!   fields (404: unknown customer) and `GET {baseUrl}/customers/{id}/loans` a JSON array of
//!   loans, each with an integer `id` (404 there: no loans). Other dialects implement the
//!   trait.
//! - [`Lms`]: what the API and the workers hold: one HTTP client, retries of 5xx answers and
//!   timeouts with backoff inside the connection's budget (2 s by default, for the whole
//!   fetch), and a [`breaker::Breaker`] per company so a dead LMS is not hammered.
//!
//! Tracing records the host, the request kind, the status and the latency, never a body.

pub mod breaker;
#[cfg(feature = "fake")]
pub mod fake;
mod http;
mod model;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};
use tokio::time::Instant;
use uuid::Uuid;

pub use breaker::{Breaker, BreakerPolicy};
pub use http::HttpAdapter;
pub use model::{
    Connection, ConnectionError, DEFAULT_TIMEOUT_MS, Loan, MAX_HEADERS, MAX_TIMEOUT_MS,
};

/// Why a fetch failed. Each names the LMS host (never the path: it holds the customer id).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LmsError {
    /// No answer within the budget, or no connection at all: the API's 504 `lms_timeout`.
    #[error("the LMS at {host} did not answer within {budget_ms} ms ({detail})")]
    Timeout {
        host: String,
        budget_ms: u64,
        detail: String,
    },
    /// A 5xx, another unexpected status, or an answer that is not the contract's JSON: 502
    /// `lms_unavailable`.
    #[error("the LMS at {host} failed: {detail}")]
    Unavailable { host: String, detail: String },
    /// The breaker is open after repeated failures: 502 `lms_unavailable`, not asked.
    #[error(
        "the LMS at {host} failed {failures} times in a row; outdial stops asking it for {}s",
        retry_after.as_secs().max(1)
    )]
    CircuitOpen {
        host: String,
        failures: u32,
        retry_after: Duration,
    },
    /// The LMS does not know the customer: 404 `lms_customer_not_found`.
    #[error("the LMS at {host} has no customer with this id")]
    NotFound { host: String },
}

impl LmsError {
    /// Whether the failure counts against the breaker (the LMS, not the request, is at fault).
    fn is_outage(&self) -> bool {
        matches!(
            self,
            LmsError::Timeout { .. } | LmsError::Unavailable { .. }
        )
    }
}

/// A customer as an LMS holds it: the seed's customer fields (any of them) and the loans.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The customer object as the LMS answered (unknown keys included; the merge keeps only
    /// customer fields).
    pub customer: Map<String, Value>,
    /// Every loan of the customer, in the LMS's order.
    pub loans: Vec<Loan>,
}

/// One LMS dialect. `deadline` bounds the whole call, retries included.
#[async_trait]
pub trait Adapter: Send + Sync + std::fmt::Debug {
    /// The customer object; [`LmsError::NotFound`] when the LMS does not know `id`.
    async fn customer(&self, id: &str, deadline: Instant) -> Result<Map<String, Value>, LmsError>;
    /// The customer's loans (none when the LMS has none).
    async fn loans(&self, id: &str, deadline: Instant) -> Result<Vec<Loan>, LmsError>;
}

/// The LMS client the API and the workers share (cheap to share behind an `Arc`).
#[derive(Debug)]
pub struct Lms {
    client: reqwest::Client,
    policy: BreakerPolicy,
    breakers: Mutex<HashMap<Uuid, Breaker>>,
}

impl Default for Lms {
    fn default() -> Self {
        Lms::new(BreakerPolicy::default())
    }
}

impl Lms {
    /// A client whose per-company breakers follow `policy`.
    pub fn new(policy: BreakerPolicy) -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("outdial/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Lms {
            client,
            policy,
            breakers: Mutex::new(HashMap::new()),
        }
    }

    /// The adapter for `connection` (outdial's HTTP dialect).
    pub fn adapter(&self, connection: &Connection) -> HttpAdapter {
        HttpAdapter::new(self.client.clone(), connection.clone())
    }

    /// Reads customer `id` and its loans from `company`'s LMS, both at once, within the
    /// connection's budget, through the company's breaker.
    pub async fn fetch(
        &self,
        company: Uuid,
        connection: &Connection,
        id: &str,
    ) -> Result<Record, LmsError> {
        self.fetch_with(company, connection, &self.adapter(connection), id)
            .await
    }

    /// [`Lms::fetch`] through any adapter.
    pub async fn fetch_with(
        &self,
        company: Uuid,
        connection: &Connection,
        adapter: &dyn Adapter,
        id: &str,
    ) -> Result<Record, LmsError> {
        let host = connection.host();
        self.admit(company, &host)?;
        let deadline = Instant::now() + connection.timeout();
        let (customer, loans) =
            tokio::join!(adapter.customer(id, deadline), adapter.loans(id, deadline));
        let result = match (customer, loans) {
            (Ok(customer), Ok(loans)) => Ok(Record { customer, loans }),
            // The customer's own answer decides first: a 404 there is "unknown customer"
            // whatever the loans answered.
            (Err(e), _) | (Ok(_), Err(e)) => Err(e),
        };
        self.record(company, &result);
        result
    }

    /// Refuses at once while `company`'s breaker is open.
    fn admit(&self, company: Uuid, host: &str) -> Result<(), LmsError> {
        let mut breakers = self.breakers.lock().unwrap_or_else(|p| p.into_inner());
        let breaker = breakers
            .entry(company)
            .or_insert_with(|| Breaker::new(self.policy));
        breaker
            .admit(std::time::Instant::now())
            .map_err(|retry_after| LmsError::CircuitOpen {
                host: host.to_owned(),
                failures: breaker.failures(),
                retry_after,
            })
    }

    fn record(&self, company: Uuid, result: &Result<Record, LmsError>) {
        let mut breakers = self.breakers.lock().unwrap_or_else(|p| p.into_inner());
        let breaker = breakers
            .entry(company)
            .or_insert_with(|| Breaker::new(self.policy));
        let outage = result.as_ref().err().is_some_and(LmsError::is_outage);
        if outage {
            if breaker.failure(std::time::Instant::now()) {
                tracing::warn!(
                    company.id = %company,
                    lms.failures = breaker.failures(),
                    "LMS circuit opened"
                );
            }
        } else {
            breaker.success();
        }
    }

    /// Forgets `company`'s breaker (its connection changed).
    pub fn reset(&self, company: Uuid) {
        let mut breakers = self.breakers.lock().unwrap_or_else(|p| p.into_inner());
        breakers.remove(&company);
    }
}
