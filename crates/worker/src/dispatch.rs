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

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use outdial_dialer::limits::{CallLimits, Limits, Rate, Reservation, SlotGrant};
use outdial_dialer::{
    CompanyRef, DialContext, DialError, DialRequest, Dialer, IdempotencyKey, ProviderCall,
    lookup_then_place,
};
use outdial_domain::policy::Ruleset;
use outdial_domain::scheduled_call::Event;
use outdial_domain::{AttemptOutcome, CallId, Clock, PhoneNumber};
use outdial_queue::{DialIntent as QueueIntent, Job, JobRef, NewJob, Partition, Queue};
use outdial_store::{ClaimedCall, Company, CompanyId, DialIntent, LeaseToken, Store};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::coalesce::Coalesce;
use crate::finish::{Ended, finish_with};
use crate::fire::{Fire, check};
use crate::pause::{PARK, Pauses};
use crate::telemetry;
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

/// The jobs this process holds (leased in the queue, not yet finished), with the Postgres
/// lease token of those claimed there: what is handed back when the shutdown grace runs
/// out.
type Held = Arc<Mutex<HashMap<CallId, (Option<LeaseToken>, Job)>>>;

/// The farthest turn under its company's rate a claimed job books (and waits for in this
/// process); a job whose turn would be later is deferred in the queue and its company's
/// partition throttled. At most half a lease.
const MAX_RATE_WAIT: Duration = Duration::from_secs(2);

/// What the calls of one company need before they are claimed: its configuration and
/// the rate-limit names.
struct CompanyLimits {
    company: Company,
    name: CompanyRef,
    caller_id: PhoneNumber,
    limits: CallLimits,
}

/// The per-call Redis steps of one running dispatcher, each coalesced across its concurrent
/// calls ([`crate::coalesce`]): the dial mark, the live-call slot taken and given back, the
/// final ack and the follow-ups' enqueue.
pub(crate) struct Steps {
    mark: Coalesce<(JobRef, u64), QueueIntent>,
    acquire: Coalesce<SlotAsk, SlotGrant>,
    release: Coalesce<(CompanyRef, IdempotencyKey), bool>,
    ack: Coalesce<(JobRef, u64), bool>,
    pub(crate) enqueue: Coalesce<Vec<NewJob>, ()>,
}

/// The most steps of one kind sent at once.
const MAX_STEPS: usize = 256;

impl Steps {
    fn start(d: &Dispatcher) -> Steps {
        /// A coalesced step sending its groups with `send(state, group)`.
        fn step<S, I, O, F, G>(state: S, send: G) -> Coalesce<I, O>
        where
            S: Clone + Send + Sync + 'static,
            I: Send + 'static,
            O: Send + 'static,
            F: std::future::Future<Output = Result<Vec<O>>> + Send + 'static,
            G: Fn(S, Vec<I>) -> F + Send + Sync + 'static,
        {
            Coalesce::start(
                2,
                MAX_STEPS,
                Arc::new(move |group| Box::pin(send(state.clone(), group))),
            )
        }
        Steps {
            mark: step(
                (d.queue.clone(), Arc::clone(&d.clock)),
                |(queue, clock), jobs| async move {
                    Ok(queue.mark_dialing_many(&jobs, clock.now()).await?)
                },
            ),
            acquire: step(d.limits.clone(), |limits, asks| async move {
                acquire_slots(&limits, &asks).await
            }),
            release: step(d.limits.clone(), |limits, holders| async move {
                Ok(limits.release_slots(&holders).await?)
            }),
            ack: step(d.queue.clone(), |queue, jobs| async move {
                Ok(queue.ack_many(&jobs).await?)
            }),
            enqueue: step(
                d.queue.clone(),
                |queue, groups: Vec<Vec<NewJob>>| async move {
                    let n = groups.len();
                    let jobs: Vec<NewJob> = groups.into_iter().flatten().collect();
                    queue.enqueue_many(&jobs).await?;
                    Ok(vec![(); n])
                },
            ),
        }
    }

    async fn ack(&self, job: &Job) -> Result<bool> {
        self.ack.run((job.job.clone(), job.token)).await
    }
}

/// A live-call slot asked for: the company, its cap, the holder and the lease.
type SlotAsk = (CompanyRef, u32, IdempotencyKey, Duration);

/// Live-call slots for holders of any companies: one script call per company (and cap and
/// lease), the holders of each served in the order given.
async fn acquire_slots(limits: &Limits, items: &[SlotAsk]) -> Result<Vec<SlotGrant>> {
    type Slots<'a> = (&'a CompanyRef, u32, Duration);
    let mut groups: Vec<(Slots<'_>, Vec<usize>)> = Vec::new();
    for (i, (company, cap, _, lease)) in items.iter().enumerate() {
        let key = (company, *cap, *lease);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, idx)) => idx.push(i),
            None => groups.push((key, vec![i])),
        }
    }
    let calls = groups.iter().map(|((company, cap, lease), idx)| {
        let holders: Vec<IdempotencyKey> = idx.iter().map(|&i| items[i].2.clone()).collect();
        async move { limits.acquire_slots(company, *cap, &holders, *lease).await }
    });
    let mut out: Vec<Option<SlotGrant>> = vec![None; items.len()];
    for ((_, idx), grants) in groups
        .iter()
        .zip(futures_util::future::join_all(calls).await)
    {
        for (&i, grant) in idx.iter().zip(grants?) {
            out[i] = Some(grant);
        }
    }
    out.into_iter().map(|g| g.ok_or(Error::Stopped)).collect()
}

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

    /// Claims one batch from the queue and starts a task per job; returns how many jobs
    /// the queue handed out. The companies of the batch are read here, so that a Postgres
    /// outage fails the batch (and the loop backs off) instead of every job.
    async fn batch(
        self: &Arc<Self>,
        n: usize,
        permits: &Arc<Semaphore>,
        held: &Held,
        steps: &Arc<Steps>,
        tasks: &mut JoinSet<()>,
    ) -> Result<usize> {
        let now = self.clock.now();
        let jobs = self.queue.claim(now, n, self.config.lease).await?;
        if jobs.is_empty() {
            return Ok(0);
        }
        telemetry::claim_batch(jobs.len());
        let mut companies: HashMap<String, Arc<CompanyLimits>> = HashMap::new();
        for job in &jobs {
            let part = job.job.partition.as_str();
            if companies.contains_key(part) {
                continue;
            }
            match self.company_limits(part).await {
                Ok(c) => {
                    companies.insert(part.to_owned(), Arc::new(c));
                }
                Err(e) => {
                    self.give_back(&jobs, now).await;
                    return Err(e);
                }
            }
        }
        let count = jobs.len();
        let mut turns = match self.reserve_turns(&jobs, &companies).await {
            Ok(turns) => turns.into_iter(),
            Err(e) => {
                self.give_back(&jobs, now).await;
                return Err(e);
            }
        };
        for job in jobs {
            let turn = turns.next().flatten();
            let (Some(company), Some(turn)) =
                (companies.get(job.job.partition.as_str()).cloned(), turn)
            else {
                continue;
            };
            let permit = Arc::clone(permits)
                .acquire_owned()
                .await
                .map_err(|_| outdial_queue::Error::Config("semaphore closed"))?;
            let me = Arc::clone(self);
            let held = Arc::clone(held);
            let steps = Arc::clone(steps);
            let id = job.job.call;
            held.lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id, (None, job.clone()));
            tasks.spawn(async move {
                if let Err(e) = me.take(job, &company, turn, &held, &steps).await {
                    telemetry::error(&e);
                    tracing::warn!(call.id = %id, error = %e, "call left to recovery");
                }
                held.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
                drop(permit);
            });
        }
        Ok(count)
    }

    /// Gives a batch back to the queue (due in a second) rather than leave it leased until
    /// the leases run out; best effort (Redis may be what failed).
    async fn give_back(&self, jobs: &[Job], now: DateTime<Utc>) {
        let until = now + chrono::Duration::seconds(1);
        for job in jobs {
            let _ = self.queue.defer(&job.job, job.token, until).await;
        }
    }

    /// The turns of a batch's jobs under their companies' rates: one booking per company
    /// (jobs of a company booked in the batch's order); one answer per job, in order (`None`
    /// for a job whose company is not in `companies`).
    async fn reserve_turns(
        &self,
        jobs: &[Job],
        companies: &HashMap<String, Arc<CompanyLimits>>,
    ) -> Result<Vec<Option<Reservation>>> {
        let max_wait = MAX_RATE_WAIT.min(self.config.lease / 2);
        let mut by_company: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, job) in jobs.iter().enumerate() {
            by_company
                .entry(job.job.partition.as_str())
                .or_default()
                .push(i);
        }
        let calls = by_company.iter().filter_map(|(part, idx)| {
            let c = companies.get(*part)?;
            Some(async move {
                let r = self
                    .limits
                    .reserve_many(&c.name, &c.caller_id, &c.limits, max_wait, idx.len())
                    .await;
                (idx, r)
            })
        });
        let mut out: Vec<Option<Reservation>> = vec![None; jobs.len()];
        for (idx, r) in futures_util::future::join_all(calls).await {
            for (&i, turn) in idx.iter().zip(r?) {
                out[i] = Some(turn);
            }
        }
        Ok(out)
    }

    /// A company's configuration and limits, from its queue partition (its id).
    async fn company_limits(&self, partition: &str) -> Result<CompanyLimits> {
        let id = partition
            .parse::<uuid::Uuid>()
            .map_err(|_| outdial_queue::Error::Config("a partition that is no company id"))?;
        let company = self.store.company(CompanyId::from_uuid(id)).await?;
        let name = CompanyRef::new(partition)?;
        let caller_id = company
            .caller_ids
            .first()
            .and_then(|c| PhoneNumber::parse(c).ok())
            .unwrap_or_else(|| self.config.default_caller_id.clone());
        let limits = CallLimits {
            company: company_rate(company.calls_per_second),
            caller_id: None,
        };
        Ok(CompanyLimits {
            company,
            name,
            caller_id,
            limits,
        })
    }

    /// One job: its company's rate first, then the claim in Postgres, then the call.
    ///
    /// The turn is booked before the claim: a job with no turn soon costs Redis only (it
    /// is deferred in the queue and the company's partition throttled, so claimers leave
    /// the company alone until turns are free), never a Postgres claim and release. A job
    /// that booked a turn but is then not claimed, or is deferred at fire time, leaves its
    /// turn unused: the limit errs on the safe side.
    async fn take(
        &self,
        job: Job,
        company: &CompanyLimits,
        turn: Reservation,
        held: &Held,
        steps: &Steps,
    ) -> Result<()> {
        let turn = match turn {
            Reservation::Wait { until, .. } => {
                // The company's turns are booked beyond the wait allowed: its jobs stay in
                // the queue until then, in every process.
                telemetry::rate_wait(&company.company.name, "turn");
                self.queue.throttle(&job.job.partition, until).await?;
                self.queue.defer(&job.job, job.token, until).await?;
                return Ok(());
            }
            // The Postgres work happens while the turn comes; the call waits for its turn
            // just before the place request.
            Reservation::Booked { at } => at,
        };
        let now = self.clock.now();
        let lease_until = now + chrono(self.config.lease);
        let claimed = self
            .store
            .claim_calls(&[job.job.call], &self.config.owner, now, lease_until)
            .await?;
        let Some(call) = claimed.into_iter().next() else {
            // Settled, held by another worker, or not due yet: the reconciler restores any
            // row still pending with its real due time.
            steps.ack(&job).await?;
            return Ok(());
        };
        held.lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(call.id, (Some(call.token), job.clone()));
        self.handle(call, job, company, turn, steps).await
    }

    /// One claimed call, from the fire-time check to its result.
    #[tracing::instrument(skip_all, fields(call.id = %call.id, company.id = %call.company))]
    async fn handle(
        &self,
        call: ClaimedCall,
        job: Job,
        company: &CompanyLimits,
        turn: DateTime<Utc>,
        steps: &Steps,
    ) -> Result<()> {
        let now = self.clock.now();
        if self.park_if_paused(&call, &job, None).await? {
            return Ok(());
        }
        match check(&self.rules, &call, &call.context.history, now) {
            Fire::Cancel { reason } => {
                telemetry::decision("cancelled", &[]);
                self.store
                    .stop_claimed(
                        call.id,
                        call.token,
                        Event::Cancelled { reason },
                        vec![],
                        now,
                    )
                    .await?;
                steps.ack(&job).await?;
                tracing::info!(reason = ?reason, "call cancelled at fire time");
                Ok(())
            }
            Fire::Block { blocks } => {
                telemetry::decision("blocked", &blocks);
                self.store
                    .stop_claimed(call.id, call.token, Event::Blocked, blocks, now)
                    .await?;
                steps.ack(&job).await?;
                tracing::info!("call blocked: no lawful instant within the horizon");
                Ok(())
            }
            Fire::Defer { until, mut blocks } => {
                // Due while its company was paused: the trail says so.
                let held = self
                    .pauses
                    .set
                    .read()
                    .await
                    .held_at(call.company, call.customer.task_type.as_str(), call.due_at)
                    .map(crate::pause::block);
                blocks.extend(held);
                telemetry::decision("deferred", &blocks);
                self.store
                    .release(call.id, call.token, until, Event::Deferred, blocks, now)
                    .await?;
                self.queue.defer(&job.job, job.token, until).await?;
                tracing::debug!(until = %until, "call deferred at fire time");
                Ok(())
            }
            Fire::Dial => self.dial(call, job, company, turn, steps).await,
        }
    }

    /// Parks `call` if a pause holds it (see [`crate::pause`]): released at its own due
    /// time with a `paused` trail entry (after withdrawing the dial intent of `attempt`
    /// when one was recorded), deferred in the queue by [`PARK`]. The read lock on the
    /// pauses is held until the queue's defer is done. Returns whether it was parked.
    async fn park_if_paused(
        &self,
        call: &ClaimedCall,
        job: &Job,
        intent: Option<outdial_domain::AttemptNo>,
    ) -> Result<bool> {
        let set = self.pauses.set.read().await;
        let Some(pause) = set.holding(call.company, call.customer.task_type.as_str()) else {
            return Ok(false);
        };
        let blocks = vec![crate::pause::block(pause)];
        telemetry::decision("paused", &blocks);
        let now = self.clock.now();
        match intent {
            None => {
                self.store
                    .release(call.id, call.token, call.due_at, Event::Paused, blocks, now)
                    .await?
            }
            Some(attempt) => {
                self.store
                    .withdraw_intent(
                        call.id,
                        call.token,
                        attempt,
                        call.due_at,
                        (Event::Paused, blocks),
                        now,
                    )
                    .await?
            }
        }
        self.queue.defer(&job.job, job.token, now + PARK).await?;
        drop(set);
        tracing::info!("call held: its company is paused");
        Ok(true)
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

    async fn dial(
        &self,
        call: ClaimedCall,
        job: Job,
        company: &CompanyLimits,
        turn: DateTime<Utc>,
        steps: &Steps,
    ) -> Result<()> {
        let key = IdempotencyKey::for_attempt(call.id, call.attempt);
        let slot_lease = self.config.max_call + self.config.lease;
        if let SlotGrant::Full { next_expiry } = steps
            .acquire
            .run((
                company.name.clone(),
                company.company.max_live_calls,
                key.clone(),
                slot_lease,
            ))
            .await?
        {
            telemetry::slots_full(&company.company.name);
            let soon = self.clock.now() + chrono::Duration::milliseconds(500);
            return self.hand_back(&call, &job, next_expiry.min(soon)).await;
        }
        let result = self
            .place(
                &call,
                &job,
                &key,
                (company.name.clone(), company.caller_id.clone()),
                (&company.company.name, turn),
                steps,
            )
            .await;
        steps.release.run((company.name.clone(), key)).await?;
        result
    }

    async fn place(
        &self,
        call: &ClaimedCall,
        job: &Job,
        key: &IdempotencyKey,
        (company, caller_id): (CompanyRef, PhoneNumber),
        (company_name, turn): (&str, DateTime<Utc>),
        steps: &Steps,
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
        // lease goes to reconcile, never back to due. (A job the queue reports cancelled or
        // lost was fenced in Postgres first: a cancel of a `dialing` call is refused there,
        // and a taken-over lease fails the intent above.)
        steps.mark.run((job.job.clone(), job.token)).await?;
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
        // The call's turn under its company's rate (booked before the claim): placing it no
        // earlier is what holds the rate across processes.
        let wait = (turn - self.clock.now()).to_std().unwrap_or(Duration::ZERO);
        tokio::time::sleep(wait).await;
        // A pause that began during the wait holds the call still (the dial is a moment
        // away: this is the last point before it).
        if self.park_if_paused(call, job, Some(call.attempt)).await? {
            return Ok(());
        }
        telemetry::dialed(company_name, call.due_at, self.clock.now());
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
            Ok(p) => self.follow(call, job, key, p.call, steps).await,
            Err(DialError::RateLimited { retry_after }) => {
                telemetry::rate_wait(company_name, "provider");
                let until = now + chrono(retry_after);
                self.limits.slow_down(&company, until).await?;
                self.queue.throttle(&job.job.partition, until).await?;
                self.store
                    .withdraw_intent(
                        call.id,
                        call.token,
                        call.attempt,
                        until,
                        (Event::HandedBack, vec![]),
                        now,
                    )
                    .await?;
                self.queue.defer(&job.job, job.token, until).await?;
                Ok(())
            }
            Err(DialError::Unauthorized { status }) => {
                tracing::error!(status, "provider refused our credentials; call handed back");
                let until = now + chrono::Duration::seconds(60);
                self.store
                    .withdraw_intent(
                        call.id,
                        call.token,
                        call.attempt,
                        until,
                        (Event::HandedBack, vec![]),
                        now,
                    )
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
                self.end(call, job, &ended, steps).await
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
        steps: &Steps,
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
        self.end(call, job, &ended, steps).await
    }

    /// Records how the claimed `call` ended (with its follow-ups) and acks its job.
    async fn end(&self, call: &ClaimedCall, job: &Job, ended: &Ended, steps: &Steps) -> Result<()> {
        telemetry::result(ended.outcome.as_str(), &ended.flags);
        finish_with(
            self,
            Some(steps),
            call,
            Some(call.token),
            call.attempt,
            ended,
        )
        .await?;
        steps.ack(job).await?;
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
