//! The operator's operations, shared by `outdial queue …` / `outdial company pause|resume`
//! (which talk to Redis and Postgres directly) and the `/admin` routes: queue stats,
//! listings, one call's whole life, retry, cancel, purge, pause and resume. Every write is
//! recorded in `admin_actions` (who, when, what).

mod call;
mod company;
mod listing;
mod stats;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use outdial_dialer::limits::Limits;
use outdial_domain::{CallId, Clock, CustomerRef};
use outdial_queue::{Partition, Queue, State};
use outdial_store::{AdminAction, Company, CompanyId, Store};
use serde_json::Value;

pub use call::CallView;
pub use listing::{ListPage, ListedCall};
pub use outdial_worker::pause::PARK;
pub use stats::{CompanyStats, StatsReport};

/// Why an operation failed.
#[derive(Debug)]
pub enum OpsError {
    /// No company has this name.
    UnknownCompany(String),
    /// No scheduled call has this id.
    UnknownCall(String),
    /// The company's catalog has no such task type.
    UnknownTaskType(String),
    /// Not a listable state.
    BadState(String),
    /// Not a cursor this listing gave out.
    BadCursor,
    /// The operation does not apply to the call or company as it is now (409).
    Conflict(String),
    Store(outdial_store::Error),
    Queue(outdial_queue::Error),
}

impl std::fmt::Display for OpsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpsError::UnknownCompany(n) => write!(f, "no company is named {n:?}"),
            OpsError::UnknownCall(c) => write!(f, "no scheduled call {c}"),
            OpsError::UnknownTaskType(t) => write!(f, "the company has no task type {t:?}"),
            OpsError::BadState(s) => write!(
                f,
                "{s:?} is not a queue state to list (scheduled, due, in_flight, reconcile, dead)"
            ),
            OpsError::BadCursor => write!(f, "the cursor is not one a listing gave out"),
            OpsError::Conflict(m) => f.write_str(m),
            OpsError::Store(e) => write!(f, "postgres: {e}"),
            OpsError::Queue(e) => write!(f, "redis: {e}"),
        }
    }
}

impl std::error::Error for OpsError {}

impl From<outdial_store::Error> for OpsError {
    fn from(e: outdial_store::Error) -> Self {
        OpsError::Store(e)
    }
}

impl From<outdial_queue::Error> for OpsError {
    fn from(e: outdial_queue::Error) -> Self {
        OpsError::Queue(e)
    }
}

type Result<T> = std::result::Result<T, OpsError>;

/// What the operations run against. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Ops {
    pub store: Store,
    pub queue: Queue,
    /// Live-call slots; `None`: not reported.
    pub limits: Option<Limits>,
    pub clock: Arc<dyn Clock>,
}

/// A listable state by its operator name.
pub fn parse_state(s: &str) -> Result<State> {
    match s {
        "in_flight" | "in-flight" | "claimed" => Ok(State::Leased),
        other => State::parse(other).ok_or_else(|| OpsError::BadState(other.to_owned())),
    }
}

fn state_name(state: State) -> &'static str {
    match state {
        State::Leased => "in_flight",
        s => s.as_str(),
    }
}

fn partition(company: CompanyId) -> Result<Partition> {
    Ok(Partition::new(&company.to_string())?)
}

impl Ops {
    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    async fn company_named(&self, name: &str) -> Result<Company> {
        match self.store.company_named(name).await {
            Err(outdial_store::Error::NotFound { .. }) => {
                Err(OpsError::UnknownCompany(name.to_owned()))
            }
            other => Ok(other?),
        }
    }

    async fn companies(&self, name: Option<&str>) -> Result<Vec<Company>> {
        match name {
            Some(n) => Ok(vec![self.company_named(n).await?]),
            None => Ok(self.store.list_companies().await?),
        }
    }

    async fn record(
        &self,
        actor: &str,
        action: &str,
        company: Option<CompanyId>,
        call: Option<CallId>,
        detail: Value,
    ) -> Result<()> {
        self.store
            .record_admin_action(&AdminAction {
                at: self.now(),
                actor: actor.to_owned(),
                action: action.to_owned(),
                company,
                call,
                detail,
            })
            .await?;
        Ok(())
    }

    async fn locate(&self, call: &str) -> Result<(CallId, Company)> {
        let id: CallId = call
            .parse()
            .map_err(|_| OpsError::UnknownCall(call.to_owned()))?;
        let company = match self.store.call_company(id).await {
            Err(outdial_store::Error::NotFound { .. }) => {
                return Err(OpsError::UnknownCall(call.to_owned()));
            }
            other => other?,
        };
        Ok((id, self.store.company(company).await?))
    }

    fn job(
        &self,
        company: &Company,
        call: CallId,
        customer: &str,
    ) -> Result<outdial_queue::JobRef> {
        let customer: CustomerRef = customer
            .parse()
            .map_err(|_| OpsError::Conflict("the call's customer id is not valid".into()))?;
        Ok(self.queue.job_ref(&partition(company.id)?, call, &customer))
    }
}
