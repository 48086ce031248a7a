//! The dispatch loop: due jobs from the queue, claimed in Postgres, re-checked, rate
//! limited, dialed once.
//!
//! Per batch: [`Queue::claim`] hands out due jobs with leases; [`Store::claim_calls`] moves
//! the rows still due and pending to `dialing` under a Postgres lease with a fencing token
//! (a duplicate delivery or a second worker gets nothing; jobs not claimed there are acked
//! away, and the reconciler restores any row still pending). Each claimed call then runs as
//! its own task: the fire-time check ([`crate::fire`]), the cross-process rate limit and
//! live-call slot, the dial intent in Postgres (then in the queue), the place request under
//! the idempotency key `"{call}:{attempt}"`, and the result ([`crate::finish`]).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use outdial_dialer::limits::{Admission, CallLimits, Limits, Rate, SlotGrant};
use outdial_dialer::{
    CompanyRef, DialContext, DialError, DialRequest, Dialer, IdempotencyKey, ProviderCall,
    lookup_then_place,
};
use outdial_domain::policy::Ruleset;
use outdial_domain::scheduled_call::Event;
use outdial_domain::{AttemptOutcome, Clock, PhoneNumber};
use outdial_queue::{Job, Partition, Queue};
use outdial_store::{ClaimedCall, DialIntent, Store};
use tokio::sync::{Semaphore, watch};

use crate::finish::{Ended, finish};
use crate::fire::{Fire, check};
use crate::{Error, Result};

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// This process's name in leases (host and pid, say).
    pub owner: String,
    /// Jobs claimed per batch.
    pub batch: usize,
    /// Calls in flight at once in this process.
    pub max_in_flight: usize,
    /// Lease on a claimed call (renewed while the call lasts).
    pub lease: Duration,
    /// How often a live call is looked up at the provider.
    pub poll: Duration,
    /// The longest a call may last before it is left to recovery.
    pub max_call: Duration,
    /// Sleep when nothing is due.
    pub idle: Duration,
    /// Caller ID when the company has none configured.
    pub default_caller_id: PhoneNumber,
    /// How long to finish or hand back in-flight calls after SIGTERM.
    pub shutdown_grace: Duration,
    /// The provider posts call events to outdial's callback route: a live call is followed
    /// from the stored events each poll and looked up at the provider only every
    /// [`LOOKUP_EVERY_WITH_CALLBACKS`] polls (a lost callback costs at most that delay).
    pub callbacks: bool,
}

/// With callbacks, one provider lookup per this many polls.
pub const LOOKUP_EVERY_WITH_CALLBACKS: u32 = 5;

/// What the dispatch loop needs.
#[derive(Debug, Clone)]
pub struct Dispatcher {
    pub store: Store,
    pub queue: Queue,
    pub dialer: Arc<dyn Dialer>,
    pub limits: Limits,
    pub rules: Arc<Ruleset>,
    pub clock: Arc<dyn Clock>,
    pub config: WorkerConfig,
}

/// The queue partition of a company.
pub fn partition(company: outdial_store::CompanyId) -> Result<Partition> {
    Ok(Partition::new(&company.to_string())?)
}

/// A company's call rate as the limiter enforces it. The limiter's clock counts
/// milliseconds, so every call admitted within one millisecond arrives at the same instant:
/// with a burst of 1, a second call in that millisecond is refused whatever the rate, which
/// caps a company at 1,000 calls/s and sends concurrent calls back to the queue. The burst
/// is therefore one millisecond's worth of calls (1 up to 1,000/s).
pub(crate) fn company_rate(calls_per_second: u32) -> Rate {
    let rate = Rate::per_second(calls_per_second.max(1)).expect("at least 1/s is a rate");
    let per_ms = std::num::NonZeroU32::new(calls_per_second.div_ceil(1000))
        .unwrap_or(std::num::NonZeroU32::MIN);
    rate.with_burst(per_ms)
}

fn chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl Dispatcher {
    /// Runs until `shutdown` turns true: stops claiming, then waits up to the grace period
    /// for calls in flight (an unfinished one is recovered from its lease).
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let permits = Arc::new(Semaphore::new(self.config.max_in_flight));
        let mut backoff = Duration::from_millis(100);
        while !*shutdown.borrow() {
            let free = permits.available_permits();
            if free == 0 {
                tokio::select! {
                    _ = permits.acquire() => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            match self.batch(free.min(self.config.batch), &permits).await {
                Ok(0) => {
                    tokio::select! {
                        () = tokio::time::sleep(self.config.idle) => {}
                        _ = shutdown.changed() => {}
                    }
                }
                Ok(_) => backoff = Duration::from_millis(100),
                Err(e) => {
                    tracing::warn!(error = %e, "dispatch batch failed; backing off");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        _ = shutdown.changed() => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        let all = u32::try_from(self.config.max_in_flight).unwrap_or(u32::MAX);
        let drained =
            tokio::time::timeout(self.config.shutdown_grace, permits.acquire_many(all)).await;
        tracing::info!(drained = drained.is_ok(), "dispatch stopped");
    }

    /// Claims and starts one batch; returns how many jobs the queue handed out.
    async fn batch(self: &Arc<Self>, n: usize, permits: &Arc<Semaphore>) -> Result<usize> {
        let now = self.clock.now();
        let jobs = self.queue.claim(now, n, self.config.lease).await?;
        if jobs.is_empty() {
            return Ok(0);
        }
        let ids: Vec<_> = jobs.iter().map(|j| j.job.call).collect();
        let lease_until = now + chrono(self.config.lease);
        let claimed = self
            .store
            .claim_calls(&ids, &self.config.owner, now, lease_until)
            .await?;
        let mut unclaimed = Vec::new();
        let mut work = Vec::new();
        for job in &jobs {
            match claimed.iter().find(|c| c.id == job.job.call) {
                Some(call) => work.push((call.clone(), job.clone())),
                None => unclaimed.push((job.job.clone(), job.token)),
            }
        }
        if !unclaimed.is_empty() {
            // Settled, held by another worker, or not due yet: the reconciler restores any
            // row still pending with its real due time.
            self.queue.ack_many(&unclaimed).await?;
        }
        for (call, job) in work {
            let permit = Arc::clone(permits)
                .acquire_owned()
                .await
                .map_err(|_| outdial_queue::Error::Config("semaphore closed"))?;
            let me = Arc::clone(self);
            tokio::spawn(async move {
                let id = call.id;
                if let Err(e) = me.handle(call, job).await {
                    tracing::warn!(call.id = %id, error = %e, "call left to recovery");
                }
                drop(permit);
            });
        }
        Ok(jobs.len())
    }

    /// One claimed call, from the fire-time check to its result.
    #[tracing::instrument(skip_all, fields(call.id = %call.id, company.id = %call.company))]
    async fn handle(&self, call: ClaimedCall, job: Job) -> Result<()> {
        let now = self.clock.now();
        let history = self
            .store
            .contacts(call.company, call.customer.id.as_str())
            .await?;
        match check(&self.rules, &call, &history, now) {
            Fire::Cancel { reason } => {
                self.store
                    .stop_claimed(
                        call.id,
                        call.token,
                        Event::Cancelled { reason },
                        vec![],
                        now,
                    )
                    .await?;
                self.queue.ack(&job.job, job.token).await?;
                tracing::info!(reason = ?reason, "call cancelled at fire time");
                Ok(())
            }
            Fire::Block { blocks } => {
                self.store
                    .stop_claimed(call.id, call.token, Event::Blocked, blocks, now)
                    .await?;
                self.queue.ack(&job.job, job.token).await?;
                tracing::info!("call blocked: no lawful instant within the horizon");
                Ok(())
            }
            Fire::Defer { until, blocks } => {
                self.store
                    .release(call.id, call.token, until, Event::Deferred, blocks, now)
                    .await?;
                self.queue.defer(&job.job, job.token, until).await?;
                tracing::debug!(until = %until, "call deferred at fire time");
                Ok(())
            }
            Fire::Dial => self.dial(call, job).await,
        }
    }

    /// Gives the call back (no attempt consumed) until `until`.
    async fn hand_back(&self, call: &ClaimedCall, job: &Job, until: DateTime<Utc>) -> Result<()> {
        let now = self.clock.now();
        self.store
            .release(call.id, call.token, until, Event::HandedBack, vec![], now)
            .await?;
        self.queue.defer(&job.job, job.token, until).await?;
        Ok(())
    }

    async fn dial(&self, call: ClaimedCall, job: Job) -> Result<()> {
        let company = self.store.company(call.company).await?;
        let company_ref = CompanyRef::new(&call.company.to_string())
            .map_err(|_| outdial_queue::Error::Config("company id"))?;
        let caller_id = company
            .caller_ids
            .first()
            .and_then(|c| PhoneNumber::parse(c).ok())
            .unwrap_or_else(|| self.config.default_caller_id.clone());
        let limits = CallLimits {
            company: company_rate(company.calls_per_second),
            caller_id: None,
        };
        if let Admission::Wait { until, .. } =
            self.limits.admit(&company_ref, &caller_id, &limits).await?
        {
            // The whole company waits: its jobs stay in the queue until then.
            self.queue.throttle(&job.job.partition, until).await?;
            return self.hand_back(&call, &job, until).await;
        }
        let key = IdempotencyKey::for_attempt(call.id, call.attempt);
        let slot_lease = self.config.max_call + self.config.lease;
        if let SlotGrant::Full { next_expiry } = self
            .limits
            .acquire_slot(&company_ref, company.max_live_calls, &key, slot_lease)
            .await?
        {
            let soon = self.clock.now() + chrono::Duration::milliseconds(500);
            return self.hand_back(&call, &job, next_expiry.min(soon)).await;
        }
        let result = self
            .place(&call, &job, &key, company_ref.clone(), caller_id)
            .await;
        self.limits.release_slot(&company_ref, &key).await?;
        result
    }

    async fn place(
        &self,
        call: &ClaimedCall,
        job: &Job,
        key: &IdempotencyKey,
        company: CompanyRef,
        caller_id: PhoneNumber,
    ) -> Result<()> {
        let now = self.clock.now();
        let intent = DialIntent {
            call: call.id,
            token: call.token,
            attempt: call.attempt,
            number: call.customer.phone.as_e164(),
            loan_id: call.loan_id.as_deref(),
        };
        let recorded = self
            .store
            .record_dial_intents(call.company, &[intent], now)
            .await?;
        if recorded.is_empty() {
            return Err(outdial_store::Error::Fenced.into());
        }
        // Postgres holds the intent (the truth); the queue learns it so that an expired
        // lease goes to reconcile, never back to due.
        self.queue.mark_dialing(&job.job, job.token, now).await?;
        let request = DialRequest {
            key: key.clone(),
            to: call.customer.phone.clone(),
            caller_id,
            company: company.clone(),
            context: DialContext {
                customer_id: call.customer.id.as_str().to_owned(),
                task_type: call.customer.task_type.as_str().to_owned(),
            },
        };
        let mut placed = self.dialer.place(request.clone()).await;
        let mut wait = Duration::from_millis(200);
        for _ in 0..3 {
            match &placed {
                Err(e) if e.may_have_placed() => {
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                    placed = lookup_then_place(self.dialer.as_ref(), request.clone()).await;
                }
                _ => break,
            }
        }
        let now = self.clock.now();
        match placed {
            Ok(p) => self.follow(call, job, key, p.call).await,
            Err(DialError::RateLimited { retry_after }) => {
                let until = now + chrono(retry_after);
                self.limits.slow_down(&company, until).await?;
                self.queue.throttle(&job.job.partition, until).await?;
                self.store
                    .withdraw_intent(call.id, call.token, call.attempt, until, now)
                    .await?;
                self.queue.defer(&job.job, job.token, until).await?;
                Ok(())
            }
            Err(DialError::Unauthorized { status }) => {
                tracing::error!(status, "provider refused our credentials; call handed back");
                let until = now + chrono::Duration::seconds(60);
                self.store
                    .withdraw_intent(call.id, call.token, call.attempt, until, now)
                    .await?;
                self.queue.defer(&job.job, job.token, until).await?;
                Ok(())
            }
            Err(DialError::Rejected { status, code }) => {
                tracing::warn!(status, code = %code, "provider rejected the call");
                let ended = Ended {
                    outcome: AttemptOutcome::Failed,
                    provider_ref: None,
                    transcript: None,
                    recording_url: None,
                    flags: vec![],
                    ended_at: now,
                };
                finish(self, call, Some(call.token), call.attempt, &ended).await?;
                self.queue.ack(&job.job, job.token).await?;
                Ok(())
            }
            Err(e) => {
                // Still unknown: the lease runs out and recovery asks the provider.
                tracing::warn!(error = %e, "provider unavailable; left to recovery");
                Ok(())
            }
        }
    }

    /// Follows a placed call to its end, renewing the leases, then records the result.
    async fn follow(
        &self,
        call: &ClaimedCall,
        job: &Job,
        key: &IdempotencyKey,
        mut provider: ProviderCall,
    ) -> Result<()> {
        let started = self.clock.now();
        if !provider.is_ended() {
            self.store
                .mark_dialed(call.id, call.token, Some(&provider.id), started)
                .await?;
        }
        let mut polls: u32 = 0;
        while !provider.is_ended() {
            let now = self.clock.now();
            if now - started > chrono(self.config.max_call) {
                tracing::warn!("call outlasted max_call; left to recovery");
                return Ok(());
            }
            tokio::time::sleep(self.config.poll).await;
            let until = self.clock.now() + chrono(self.config.lease);
            self.store
                .renew_leases(&[(call.id, call.token)], until)
                .await?;
            self.queue.renew(&job.job, job.token, until).await?;
            polls = polls.wrapping_add(1);
            if self.config.callbacks {
                if let Some(reported) = self.reported(key).await {
                    provider = reported;
                }
                if provider.is_ended() || !polls.is_multiple_of(LOOKUP_EVERY_WITH_CALLBACKS) {
                    continue;
                }
            }
            match self.dialer.lookup(key).await {
                Ok(Some(found)) => provider = found,
                Ok(None) => {}
                Err(e) => tracing::debug!(error = %e, "lookup failed; polling again"),
            }
        }
        let ended = Ended::from_provider(&provider, self.clock.now());
        finish(self, call, Some(call.token), call.attempt, &ended).await?;
        self.queue.ack(&job.job, job.token).await?;
        Ok(())
    }
}

impl Dispatcher {
    /// The newest state the provider reported for `key` on the callback route, if any.
    async fn reported(&self, key: &IdempotencyKey) -> Option<ProviderCall> {
        match self.store.provider_call_state(key.as_str()).await {
            Ok(Some(state)) => match serde_json::from_value(state) {
                Ok(call) => Some(call),
                Err(e) => {
                    tracing::warn!(error = %e, "a stored provider event is not a provider call");
                    None
                }
            },
            Ok(None) => None,
            Err(e) => {
                tracing::debug!(error = %e, "stored provider events unreadable; asking the provider");
                None
            }
        }
    }
}

impl From<outdial_dialer::InvalidName> for Error {
    fn from(_: outdial_dialer::InvalidName) -> Self {
        Error::Queue(outdial_queue::Error::Config("invalid name"))
    }
}

#[cfg(test)]
mod tests {
    use super::company_rate;

    #[test]
    fn a_company_rate_admits_one_millisecond_of_calls_at_once() {
        for (cps, burst) in [
            (0, 1),
            (1, 1),
            (5, 1),
            (1000, 1),
            (1001, 2),
            (1_000_000, 1000),
        ] {
            let rate = company_rate(cps);
            assert_eq!(rate.burst().get(), burst, "{cps}/s");
            assert_eq!(
                rate.interval(),
                std::time::Duration::from_secs(1) / cps.max(1),
                "{cps}/s"
            );
        }
    }
}
