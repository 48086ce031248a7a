//! Operations on a company as a whole: pause, resume, webhook redrive.

use outdial_store::Company;
use serde_json::{Value, json};

use super::{Ops, OpsError, PARK, Result, partition};

impl Ops {
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
