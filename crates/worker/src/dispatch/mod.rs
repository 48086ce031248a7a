//! The dispatch loop: due jobs from the queue, rate limited, claimed in Postgres,
//! re-checked, dialed once.
//!
//! Per batch: [`Queue::claim`] hands out due jobs with leases; each company's jobs of the
//! batch book their turns under the company's calls-per-second limit, shared by every
//! process, in one [`Limits::reserve_many`] (a turn within two seconds, waited for in
//! process; else the job is deferred in the queue and the company's partition throttled,
//! Redis only). Then each job runs as its own task: [`Store::claim_calls`] moves the row,
//! if still due and pending, to `dialing` under a Postgres lease with a fencing token (a
//! duplicate delivery or a second worker gets nothing; a job not claimed there is acked
//! away, and the reconciler restores any row still pending); then the fire-time check
//! ([`crate::fire`]), the live-call slot, the dial intent in Postgres (then in the queue),
//! the place request under the idempotency key `"{call}:{attempt}"`, and the result
//! ([`crate::finish`]). The per-call Redis steps (dial mark, slot taken and released, ack,
//! follow-ups enqueued) are coalesced across the process's concurrent calls ([`Steps`],
//! [`crate::coalesce`]); Postgres writes are grouped the same way inside the store.
//!
//! Failures are transient: a failed batch (Redis, or Postgres when the batch's companies
//! are read) makes the loop back off exponentially (100 ms doubling to 5 s, logged at
//! `warn`) and give the batch back; a call whose task fails is left to recovery (its
//! lease runs out and the reconciler settles it), so a Postgres or Redis outage delays
//! calls but neither stops the worker nor loses or re-dials a call.

mod batch;
mod claim;
mod follow;
mod place;
mod steps;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use outdial_dialer::Dialer;
use outdial_dialer::limits::Limits;
use outdial_domain::policy::Ruleset;
use outdial_domain::{CallId, Clock, PhoneNumber};
use outdial_queue::{Job, Partition, Queue};
use outdial_store::{LeaseToken, Store};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::pause::Pauses;
use crate::telemetry;
use crate::{Error, Result};

pub(crate) use steps::Steps;

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
    /// Delivers a result's webhook event at once (with `store` made by
    /// [`Store::delivering_webhooks`] for [`crate::webhooks::Deliverer::hold`]); `None`
    /// leaves every event to the outbox poll.
    pub webhooks: Option<crate::webhooks::Deliverer>,
    /// The operators' pauses as this dispatcher last read them ([`crate::pause`]).
    pub pauses: Arc<Pauses>,
}

/// The queue partition of a company.
pub fn partition(company: outdial_store::CompanyId) -> Result<Partition> {
    Ok(Partition::new(&company.to_string())?)
}

fn chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// The jobs this process holds (leased in the queue, not yet finished), with the Postgres
/// lease token of those claimed there: what is handed back when the shutdown grace runs
/// out.
type Held = Arc<Mutex<HashMap<CallId, (Option<LeaseToken>, Job)>>>;

impl Dispatcher {
    /// Runs until `shutdown` turns true: stops claiming, then waits up to the grace period
    /// for calls in flight. Those still unfinished are then stopped (their tasks aborted,
    /// so nothing renews their leases any more) and their leases handed back, expired at
    /// once in Postgres and in the queue: any worker's next reconcile pass recovers them by
    /// asking the provider instead of waiting for the lease to run out.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let permits = Arc::new(Semaphore::new(self.config.max_in_flight));
        let held: Held = Arc::default();
        let steps = Arc::new(Steps::start(&self));
        let mut tasks = JoinSet::new();
        let mut backoff = Duration::from_millis(100);
        // Nothing is claimed before the pauses are known.
        while !*shutdown.borrow() {
            match self.refresh_pauses(true).await {
                Ok(()) => break,
                Err(e) => {
                    telemetry::error(&e);
                    tracing::warn!(error = %e, "cannot read the pauses; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        _ = shutdown.changed() => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        let refresher = tokio::spawn(Arc::clone(&self).refresh_loop(shutdown.clone()));
        while !*shutdown.borrow() {
            while tasks.try_join_next().is_some() {}
            let free = permits.available_permits();
            if free == 0 {
                tokio::select! {
                    _ = permits.acquire() => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            match self
                .batch(
                    free.min(self.config.batch),
                    &permits,
                    &held,
                    &steps,
                    &mut tasks,
                )
                .await
            {
                Ok(0) => {
                    tokio::select! {
                        () = tokio::time::sleep(self.config.idle) => {}
                        _ = shutdown.changed() => {}
                    }
                }
                Ok(_) => backoff = Duration::from_millis(100),
                Err(e) => {
                    telemetry::error(&e);
                    tracing::warn!(error = %e, backoff.ms = backoff.as_millis() as u64, "dispatch batch failed; backing off");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        _ = shutdown.changed() => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        let drained = tokio::time::timeout(self.config.shutdown_grace, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        refresher.abort();
        let left: Vec<_> = held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(id, (token, job))| (*id, *token, job.clone()))
            .collect();
        let handed_back = self.hand_back_leases(&left).await;
        tracing::info!(drained = drained.is_ok(), handed_back, "dispatch stopped");
    }

    /// Reloads the pauses (see [`Pauses::refresh`]).
    async fn refresh_pauses(&self, first: bool) -> Result<()> {
        let now = self.clock.now();
        let moved = self
            .pauses
            .refresh(&self.store, &self.queue, now, first)
            .await?;
        if moved > 0 {
            tracing::info!(
                requeued = moved,
                "pause ended: held calls back on the queue"
            );
        }
        Ok(())
    }

    /// Reloads the pauses every [`crate::pause::REFRESH`] until `shutdown`.
    async fn refresh_loop(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        while !*shutdown.borrow() {
            tokio::select! {
                () = tokio::time::sleep(crate::pause::REFRESH) => {}
                _ = shutdown.changed() => {}
            }
            if let Err(e) = self.refresh_pauses(false).await {
                telemetry::error(&e);
                tracing::warn!(error = %e, "cannot reload the pauses; keeping the last ones");
            }
        }
    }

    /// Expires the leases of `calls` now, in Postgres (those claimed there) and in the
    /// queue; returns how many were handed back. A call placed at the provider stays
    /// `in_progress`: recovery asks the provider about it, never re-dials.
    async fn hand_back_leases(&self, calls: &[(CallId, Option<LeaseToken>, Job)]) -> usize {
        let now = self.clock.now();
        let leases: Vec<_> = calls
            .iter()
            .filter_map(|(id, token, _)| Some((*id, (*token)?)))
            .collect();
        if !leases.is_empty()
            && let Err(e) = self.store.renew_leases(&leases, now).await
        {
            tracing::warn!(error = %e, calls = leases.len(), "cannot hand back leases; they run out on their own");
        }
        let mut handed_back = 0;
        for (_, _, job) in calls {
            match self.queue.renew(&job.job, job.token, now).await {
                Ok(_) => handed_back += 1,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot hand back a queue lease; it runs out on its own");
                }
            }
        }
        handed_back
    }
}

impl From<outdial_dialer::InvalidName> for Error {
    fn from(_: outdial_dialer::InvalidName) -> Self {
        Error::Queue(outdial_queue::Error::Config("invalid name"))
    }
}
