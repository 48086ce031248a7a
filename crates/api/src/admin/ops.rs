//! The operator's operations, shared by `outdial queue …` / `outdial company pause|resume`
//! (which talk to Redis and Postgres directly) and the `/admin` routes: queue stats,
//! listings, one call's whole life, retry, cancel, purge, pause and resume. Every write is
//! recorded in `admin_actions` (who, when, what).

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use outdial_dialer::CompanyRef;
use outdial_dialer::limits::Limits;
use outdial_domain::{CallId, CallStatus, Clock, CustomerRef};
use outdial_queue::{Cancel, Cursor, JobView, NewJob, Partition, Queue, State};
use outdial_store::{AdminAction, AttemptView, Company, CompanyId, DeliveryState, Store};
use serde::Serialize;
use serde_json::{Value, json};

pub use outdial_worker::pause::PARK;

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

/// One company's line of `queue stats`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CompanyStats {
    pub company: String,
    pub company_id: String,
    pub scheduled: u64,
    pub due: u64,
    /// Claimed by a worker (deciding, waiting for its turn, or live).
    pub in_flight: u64,
    /// Handed back at least once without an attempt (policy, rate, cap, pause); also
    /// counted in their current state.
    pub deferred: u64,
    /// At least one attempt used; also counted in their current state.
    pub retrying: u64,
    pub reconcile: u64,
    pub dead: u64,
    pub oldest_due_at: Option<DateTime<Utc>>,
    /// How late the earliest due call is now (0 when none is due yet).
    pub oldest_due_lateness_secs: f64,
    pub dispatches_last_minute: u64,
    pub live_calls: Option<u32>,
    pub live_call_cap: u32,
    /// Paused as a whole.
    pub paused: bool,
    /// Task types paused on their own.
    pub paused_task_types: Vec<String>,
}

/// `queue stats`: every company (or one) and the total.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatsReport {
    pub at: DateTime<Utc>,
    pub companies: Vec<CompanyStats>,
    pub total: CompanyStats,
}

/// One listed call.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListedCall {
    pub call_id: String,
    pub company: String,
    /// Due time (scheduled, due), lease expiry (in flight) or entry time (reconcile, dead).
    pub at: DateTime<Utc>,
}

/// A page of `queue list`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListPage {
    pub state: &'static str,
    pub items: Vec<ListedCall>,
    /// Pass as `--cursor` / `?cursor=` for the next page; `None` at the end.
    pub next_cursor: Option<String>,
}

/// `queue show`: a call's whole life.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallView {
    pub company: String,
    pub company_id: String,
    /// The Postgres row with its decision trail (rule ids in each entry's blocks).
    pub call: Value,
    /// Where the queue holds it; `None`: not in Redis.
    pub queue: Option<Value>,
    pub attempts: Vec<AttemptView>,
    pub webhook_deliveries: Vec<DeliveryState>,
    pub admin_actions: Vec<Value>,
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

fn action_json(a: &AdminAction) -> Value {
    json!({ "at": a.at, "actor": a.actor, "action": a.action, "detail": a.detail })
}

fn job_json(v: &JobView) -> Value {
    json!({
        "state": state_name(v.state),
        "dueAt": v.due,
        "attemptsUsed": v.attempts_used,
        "lease": v.lease.as_ref().map(|l| json!({
            "token": l.token, "attempt": l.attempt, "until": l.until,
            "dialing": l.dialing, "cancelled": l.cancelled,
        })),
        "reason": v.reason.as_ref().map(|(why, since)| json!({"why": why, "since": since})),
    })
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

    /// Counts per company (or of `company` alone) and in total.
    pub async fn stats(&self, company: Option<&str>) -> Result<StatsReport> {
        let now = self.now();
        let companies = self.companies(company).await?;
        let pauses = &self.store.pauses_since(now).await?;
        let reads = companies.iter().map(|c| async move {
            let p = partition(c.id)?;
            let s = self.queue.stats(&p, now).await?;
            let live = match &self.limits {
                Some(l) => match CompanyRef::new(p.as_str()) {
                    Ok(r) => l.live_calls(&r).await.ok(),
                    Err(_) => None,
                },
                None => None,
            };
            let active = pauses
                .iter()
                .filter(|x| x.company == c.id && x.resumed_at.is_none());
            Ok::<_, OpsError>(CompanyStats {
                company: c.name.clone(),
                company_id: c.id.to_string(),
                scheduled: s.scheduled,
                due: s.due,
                in_flight: s.leased,
                deferred: s.deferred,
                retrying: s.retrying,
                reconcile: s.reconcile,
                dead: s.dead,
                oldest_due_at: s.oldest_due,
                oldest_due_lateness_secs: s.lateness.num_milliseconds().max(0) as f64 / 1000.0,
                dispatches_last_minute: s.dials_last_minute,
                live_calls: live,
                live_call_cap: c.max_live_calls,
                paused: active.clone().any(|x| x.task_type.is_none()),
                paused_task_types: active.filter_map(|x| x.task_type.clone()).collect(),
            })
        });
        let lines = futures_util::future::try_join_all(reads).await?;
        let mut total = CompanyStats {
            company: "total".into(),
            ..CompanyStats::default()
        };
        for l in &lines {
            total.scheduled += l.scheduled;
            total.due += l.due;
            total.in_flight += l.in_flight;
            total.deferred += l.deferred;
            total.retrying += l.retrying;
            total.reconcile += l.reconcile;
            total.dead += l.dead;
            total.dispatches_last_minute += l.dispatches_last_minute;
            total.live_call_cap += l.live_call_cap;
            if let Some(n) = l.live_calls {
                total.live_calls = Some(total.live_calls.unwrap_or(0) + n);
            }
            if l.oldest_due_at
                .is_some_and(|t| total.oldest_due_at.is_none_or(|o| t < o))
            {
                total.oldest_due_at = l.oldest_due_at;
            }
            total.oldest_due_lateness_secs = total
                .oldest_due_lateness_secs
                .max(l.oldest_due_lateness_secs);
        }
        Ok(StatsReport {
            at: now,
            companies: lines,
            total,
        })
    }

    /// One page of calls in `state` of one company (or, without one, of the first company
    /// in name order that has any: a cursor names its company).
    pub async fn list(
        &self,
        state: &str,
        company: Option<&str>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<ListPage> {
        let state = parse_state(state)?;
        let limit = limit.clamp(1, outdial_queue::MAX_PAGE);
        // The cursor text is `<company index>~<queue cursor>`: pages walk the companies.
        let mut companies = self.companies(company).await?;
        companies.sort_by(|a, b| a.name.cmp(&b.name));
        let (mut from, mut inner) = match cursor {
            None => (0, None),
            Some(c) => {
                let (i, rest) = c.split_once('~').ok_or(OpsError::BadCursor)?;
                let i: usize = i.parse().map_err(|_| OpsError::BadCursor)?;
                let inner = if rest.is_empty() {
                    None
                } else {
                    Some(Cursor::decode(rest).ok_or(OpsError::BadCursor)?)
                };
                (i, inner)
            }
        };
        let mut items = Vec::new();
        while from < companies.len() && items.len() < limit {
            let c = &companies[from];
            let page = self
                .queue
                .list(
                    &partition(c.id)?,
                    state,
                    inner.as_ref(),
                    limit - items.len(),
                )
                .await?;
            items.extend(page.items.iter().map(|l| ListedCall {
                call_id: l.job.call.as_uuid().to_string(),
                company: c.name.clone(),
                at: l.at,
            }));
            match page.next {
                Some(next) => inner = Some(next),
                None => {
                    from += 1;
                    inner = None;
                }
            }
        }
        let next_cursor = (from < companies.len())
            .then(|| format!("{from}~{}", inner.map(|c| c.encode()).unwrap_or_default()));
        Ok(ListPage {
            state: state_name(state),
            items,
            next_cursor,
        })
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

    /// A call's whole life: the Postgres row and trail, the queue's view, attempts,
    /// webhook deliveries and admin actions.
    pub async fn show(&self, call: &str) -> Result<CallView> {
        let (id, company) = self.locate(call).await?;
        let record = self.store.scheduled_call(company.id, id).await?;
        let job = self.job(&company, id, &record.customer_id)?;
        let queue = self.queue.show(&job).await?;
        let call_json = serde_json::to_value(&record).unwrap_or(Value::Null);
        Ok(CallView {
            company: company.name.clone(),
            company_id: company.id.to_string(),
            call: call_json,
            queue: queue.as_ref().map(job_json),
            attempts: self.store.attempts_of(id).await?,
            webhook_deliveries: self.store.deliveries_of(company.id, id).await?,
            admin_actions: self
                .store
                .admin_actions_of(id)
                .await?
                .iter()
                .map(action_json)
                .collect(),
        })
    }

    /// Puts a pending call back on the queue: a dead job is re-driven, a missing one is
    /// enqueued, at its due time or now if that has passed. A call that is not `scheduled`
    /// in Postgres, or that the queue holds in any other state, is a conflict: nothing is
    /// ever dialed twice by a retry.
    pub async fn retry(&self, call: &str, actor: &str) -> Result<Value> {
        let (id, company) = self.locate(call).await?;
        let record = self.store.scheduled_call(company.id, id).await?;
        if record.status != CallStatus::Scheduled {
            return Err(OpsError::Conflict(format!(
                "the call is {}; only a scheduled call can be retried",
                record.status.as_str()
            )));
        }
        let job = self.job(&company, id, &record.customer_id)?;
        let now = self.now();
        let due = record.scheduled_at.max(now);
        let done = match self.queue.show(&job).await? {
            Some(v) if v.state == State::Dead => {
                self.queue.redrive(&job, due).await?;
                "redriven"
            }
            None => {
                let customer: CustomerRef = record
                    .customer_id
                    .parse()
                    .map_err(|_| OpsError::Conflict("invalid customer id".into()))?;
                self.queue
                    .enqueue_many(&[NewJob {
                        call: id,
                        partition: job.partition.clone(),
                        customer,
                        due,
                    }])
                    .await?;
                "enqueued"
            }
            Some(v) => {
                return Err(OpsError::Conflict(format!(
                    "the call is already queued ({}); retry applies to dead or missing calls",
                    state_name(v.state)
                )));
            }
        };
        let detail = json!({ "result": done, "dueAt": due });
        self.record(actor, "retry", Some(company.id), Some(id), detail.clone())
            .await?;
        Ok(detail)
    }

    /// Cancels a pending call in Postgres and removes it from the queue.
    pub async fn cancel(&self, call: &str, actor: &str) -> Result<Value> {
        let (id, company) = self.locate(call).await?;
        let now = self.now();
        let record = match self.store.cancel_scheduled_call(company.id, id, now).await {
            Err(outdial_store::Error::NotPending { status }) => {
                return Err(OpsError::Conflict(format!(
                    "the call is {}; only a scheduled call can be cancelled",
                    status.as_str()
                )));
            }
            other => other?,
        };
        let job = self.job(&company, id, &record.customer_id)?;
        let removed = match self.queue.cancel(&job).await? {
            Cancel::Removed => "removed",
            Cancel::InFlight => "in_flight",
            Cancel::Unknown => "absent",
        };
        let detail = json!({ "queue": removed });
        self.record(actor, "cancel", Some(company.id), Some(id), detail.clone())
            .await?;
        Ok(detail)
    }

    /// Removes dead calls (of one company, or all) dead for at least `older_than`: each is
    /// cancelled in Postgres (so reconciliation does not put it back) and dropped from the
    /// queue. Returns how many.
    pub async fn purge_dead(
        &self,
        company: Option<&str>,
        older_than: Duration,
        actor: &str,
    ) -> Result<Value> {
        let now = self.now();
        let cutoff = now - older_than;
        let mut purged = 0u64;
        for c in self.companies(company).await? {
            let p = partition(c.id)?;
            let mut cursor = None;
            'pages: loop {
                let page = self
                    .queue
                    .list(&p, State::Dead, cursor.as_ref(), outdial_queue::MAX_PAGE)
                    .await?;
                for item in &page.items {
                    if item.at > cutoff {
                        break 'pages;
                    }
                    match self
                        .store
                        .cancel_scheduled_call(c.id, item.job.call, now)
                        .await
                    {
                        Ok(_) | Err(outdial_store::Error::NotPending { .. }) => {}
                        Err(outdial_store::Error::NotFound { .. }) => {}
                        Err(e) => return Err(e.into()),
                    }
                    self.queue.cancel(&item.job).await?;
                    purged += 1;
                    self.record(
                        actor,
                        "purge_dead",
                        Some(c.id),
                        Some(item.job.call),
                        json!({ "deadSince": item.at }),
                    )
                    .await?;
                }
                match page.next {
                    Some(n) => cursor = Some(n),
                    None => break,
                }
            }
        }
        Ok(json!({ "purged": purged }))
    }

    fn check_task_type(company: &Company, task_type: Option<&str>) -> Result<()> {
        let Some(t) = task_type else { return Ok(()) };
        let catalog = company.catalog()?;
        catalog
            .get(t)
            .map(|_| ())
            .map_err(|_| OpsError::UnknownTaskType(t.to_owned()))
    }

    /// Pauses a company's calls (of one task type, or all). Every worker stops dialing
    /// them within its pause refresh (500 ms); a whole-company pause also stops claims
    /// at once.
    pub async fn pause(&self, name: &str, task_type: Option<&str>, actor: &str) -> Result<Value> {
        let company = self.company_named(name).await?;
        Self::check_task_type(&company, task_type)?;
        let now = self.now();
        let new = self.store.pause(company.id, task_type, actor, now).await?;
        if task_type.is_none() {
            self.queue
                .throttle(&partition(company.id)?, now + PARK)
                .await?;
        }
        let detail = json!({ "taskType": task_type, "paused": true, "alreadyPaused": !new });
        if new {
            self.record(actor, "pause", Some(company.id), None, detail.clone())
                .await?;
        }
        Ok(detail)
    }

    /// Puts a company's webhook dead letters back in the outbox, due now. Returns how many.
    pub async fn redrive_webhooks(&self, name: &str, actor: &str) -> Result<Value> {
        let company = self.company_named(name).await?;
        let n = self
            .store
            .redrive_deliveries(company.id, None, self.now())
            .await?;
        let detail = json!({ "redriven": n });
        self.record(
            actor,
            "webhook_redrive",
            Some(company.id),
            None,
            detail.clone(),
        )
        .await?;
        Ok(detail)
    }

    /// Ends a pause and puts the company's parked calls back at their own due times.
    pub async fn resume(&self, name: &str, task_type: Option<&str>, actor: &str) -> Result<Value> {
        let company = self.company_named(name).await?;
        Self::check_task_type(&company, task_type)?;
        let now = self.now();
        let Some(_ended) = self.store.resume(company.id, task_type, actor, now).await? else {
            return Err(OpsError::Conflict(match task_type {
                Some(t) => format!("{name}'s task type {t:?} is not paused"),
                None => format!("{name} is not paused"),
            }));
        };
        let p = partition(company.id)?;
        if task_type.is_none() {
            self.queue.unthrottle(&p, now).await?;
        }
        let requeued = outdial_worker::pause::requeue_parked(
            &self.store,
            &self.queue,
            company.id,
            task_type,
            now,
        )
        .await
        .map_err(|e| match e {
            outdial_worker::Error::Store(s) => OpsError::Store(s),
            outdial_worker::Error::Queue(q) => OpsError::Queue(q),
            other => OpsError::Conflict(other.to_string()),
        })?;
        let detail = json!({ "taskType": task_type, "paused": false, "requeued": requeued });
        self.record(actor, "resume", Some(company.id), None, detail.clone())
            .await?;
        Ok(detail)
    }
}
