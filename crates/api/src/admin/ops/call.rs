//! Operations on scheduled calls: show one's whole life, retry, cancel, purge the dead.

use chrono::Duration;
use outdial_domain::{CallStatus, CustomerRef};
use outdial_queue::{Cancel, JobView, NewJob, State};
use outdial_store::{AdminAction, AttemptView, DeliveryState};
use serde::Serialize;
use serde_json::{Value, json};

use super::{Ops, OpsError, Result, partition, state_name};

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
}
