//! Keeping Redis honest against Postgres, and recovering calls whose worker died.
//!
//! Every period: [`Queue::reconcile`] with the store as the [`Truth`] (pending rows missing
//! from Redis are enqueued, jobs whose rows are settled are dropped), then the calls whose
//! Postgres lease ran out: without a dial intent they are handed back (no attempt consumed);
//! with one, the provider is asked about the idempotency key — an ended call's result is
//! recorded, a live one is left for the next pass, and a key the provider never saw means
//! nothing was placed, so the intent is withdrawn and the call is due again. Never a blind
//! re-dial.

use std::sync::Arc;
use std::time::Duration;

use outdial_dialer::IdempotencyKey;
use outdial_domain::CallId;
use outdial_domain::scheduled_call::Event;
use outdial_queue::{NewJob, ScheduledRow, Truth};
use outdial_store::Store;
use tokio::sync::watch;

use crate::Result;
use crate::dispatch::{Dispatcher, partition};
use crate::finish::{Ended, finish};

/// The store as the queue's system of record.
#[derive(Debug, Clone)]
pub struct StoreTruth(pub Store);

impl Truth for StoreTruth {
    type Error = outdial_store::Error;

    async fn scheduled_page(
        &self,
        after: Option<CallId>,
        limit: usize,
    ) -> Result<Vec<ScheduledRow>, Self::Error> {
        let limit = u32::try_from(limit).unwrap_or(u32::MAX);
        let rows = self.0.pending_page(after, limit).await?;
        rows.into_iter()
            .map(|p| {
                Ok(ScheduledRow {
                    call: p.call,
                    partition: outdial_queue::Partition::new(&p.company.to_string()).map_err(
                        |_| outdial_store::Error::Corrupt {
                            what: "scheduled call",
                            column: "company_id",
                        },
                    )?,
                    customer: p.customer,
                    due: p.due_at,
                })
            })
            .collect()
    }

    async fn terminal(&self, calls: &[CallId]) -> Result<Vec<CallId>, Self::Error> {
        self.0.settled_among(calls).await
    }
}

/// Every `recover_every` until `shutdown` turns true: recovers calls whose worker died,
/// and — in one process of the fleet per `period` ([`outdial_queue::Queue::take_turn`]) —
/// reconciles the queue with Postgres. The reconcile pass reads every pending row and
/// every queued job, so each worker running it every period would multiply that cost by
/// the size of the fleet. A flushed Redis loses the turn with everything else, so the
/// pass that restores the queue starts at the next tick of any worker.
pub async fn run(
    d: Arc<Dispatcher>,
    period: Duration,
    recover_every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    while !*shutdown.borrow() {
        let turn = match d.queue.take_turn("reconcile", period).await {
            Ok(turn) => turn,
            Err(e) => {
                tracing::warn!(error = ?e, "cannot take the reconcile turn");
                false
            }
        };
        // Independent of the passes below: a failure here must not hold recovery up.
        if let Err(e) = store_planned(&d).await {
            tracing::warn!(error = ?e, "cannot store the planned calls coming due");
        }
        let done = if turn {
            // The pass reads every pending row and queued job (minutes with millions): a
            // shutdown stops it between steps, each of which is idempotent, and the next
            // pass (any worker's) does it whole.
            tokio::select! {
                done = pass(&d) => done,
                _ = shutdown.changed() => {
                    tracing::info!("reconcile pass stopped for shutdown");
                    return;
                }
            }
        } else {
            recover(&d).await
        };
        if let Err(e) = done {
            tracing::warn!(error = ?e, "reconcile pass failed");
        }
        tokio::select! {
            () = tokio::time::sleep(recover_every) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// How far ahead a worker stores planned calls when its store has no horizon of its own
/// (`Store::storing_ahead`): schedules made by an API process with one still get stored.
pub const STORE_AHEAD_DEFAULT: chrono::Duration = chrono::Duration::hours(24);

/// Stores the planned calls due within the store's horizon that are not rows yet (any
/// worker of the fleet; schedules another one holds are skipped) and puts them on the
/// queue. A job lost between the two is restored by the reconcile pass.
pub async fn store_planned(d: &Dispatcher) -> Result<()> {
    const BATCH: u32 = 1000;
    let ahead = d.store.store_ahead().unwrap_or(STORE_AHEAD_DEFAULT);
    loop {
        let now = d.clock.now();
        let stored = d.store.store_planned(now + ahead, BATCH, now).await?;
        if stored.is_empty() {
            return Ok(());
        }
        let jobs = stored
            .iter()
            .map(|p| {
                Ok(NewJob {
                    call: p.call,
                    partition: partition(p.company)?,
                    customer: p.customer.clone(),
                    due: p.due_at,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        d.queue.enqueue_many(&jobs).await?;
        crate::telemetry::planned_stored(jobs.len());
        tracing::debug!(calls = jobs.len(), "planned calls stored and queued");
        if stored.len() < usize::try_from(BATCH).unwrap_or(usize::MAX) {
            return Ok(());
        }
    }
}

/// One reconcile and recovery pass.
pub async fn pass(d: &Dispatcher) -> Result<()> {
    let now = d.clock.now();
    let done = d
        .queue
        .reconcile(&StoreTruth(d.store.clone()), now, 1000)
        .await?;
    crate::telemetry::reconciled(done.restored, done.dropped);
    if done.restored > 0 || done.dropped > 0 {
        tracing::info!(
            restored = done.restored,
            dropped = done.dropped,
            "queue reconciled"
        );
    }
    recover(d).await
}

/// The recovery half of [`pass`]: calls whose Postgres lease ran out, and jobs the queue
/// parked for reconcile (both bounded by what is stale, not by the backlog).
pub async fn recover(d: &Dispatcher) -> Result<()> {
    let now = d.clock.now();
    recover_stale(d, now).await?;
    settle_reconcile_jobs(d, now).await
}

/// Jobs the queue parked in `reconcile` (their lease expired after the dial intent): once
/// Postgres has settled the call (recovered below, or finished), the job is done; if the
/// call is pending again (the provider never received it), it is due again at its time.
async fn settle_reconcile_jobs(d: &Dispatcher, now: chrono::DateTime<chrono::Utc>) -> Result<()> {
    for part in d.queue.partitions().await? {
        let page = d
            .queue
            .list(&part, outdial_queue::State::Reconcile, None, 500)
            .await?;
        if page.items.is_empty() {
            continue;
        }
        let calls: Vec<CallId> = page.items.iter().map(|l| l.job.call).collect();
        let settled = d.store.settled_among(&calls).await?;
        for listed in page.items {
            let outcome = if settled.contains(&listed.job.call) {
                outdial_queue::Resolution::Done
            } else if let Some(row) = d.store.pending_call(listed.job.call).await? {
                outdial_queue::Resolution::Requeue(row.due_at)
            } else {
                // Still dialing or in progress: the stale-call recovery settles it first.
                continue;
            };
            d.queue.resolve_reconcile(&listed.job, outcome, now).await?;
        }
    }
    Ok(())
}

/// Calls whose Postgres lease ran out (see the module documentation). One call's failure
/// (another worker recovered it first: fenced) does not stop the others.
async fn recover_stale(d: &Dispatcher, now: chrono::DateTime<chrono::Utc>) -> Result<()> {
    for (call, token, attempt, intent) in d.store.stale_calls(now, 200).await? {
        if let Err(e) = recover_one(d, call, token, attempt, intent, now).await {
            tracing::debug!(call.id = %call, error = %e, "recovery skipped");
        }
    }
    Ok(())
}

async fn recover_one(
    d: &Dispatcher,
    call: CallId,
    token: outdial_store::LeaseToken,
    attempt: outdial_domain::AttemptNo,
    intent: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<()> {
    {
        if !intent {
            d.store
                .release(call, token, now, Event::HandedBack, vec![], now)
                .await?;
            return requeue(d, call, now).await;
        }
        let key = IdempotencyKey::for_attempt(call, attempt);
        match d.dialer.lookup(&key).await {
            Ok(Some(found)) if found.is_ended() => {
                let Some(claimed) = d.store.claimed_view(call, token, attempt).await? else {
                    return Ok(());
                };
                let ended = Ended::from_provider(&found, now);
                finish(d, &claimed, None, attempt, &ended).await?;
                crate::telemetry::recovered("recovered");
                tracing::info!(call.id = %call, "recovered the result of a call whose worker died");
            }
            Ok(Some(_)) => {
                // Still live at the provider: look again once a lease has passed (with a
                // short lease, a handed-back call is settled soon after it ends).
                let until = now + chrono::Duration::from_std(d.config.lease).unwrap_or_default();
                d.store.renew_leases(&[(call, token)], until).await?;
            }
            Ok(None) => {
                d.store
                    .withdraw_intent(call, token, attempt, now, (Event::HandedBack, vec![]), now)
                    .await?;
                requeue(d, call, now).await?;
                crate::telemetry::recovered("requeued");
                tracing::info!(call.id = %call, "the provider never received the call; due again");
            }
            Err(e) => tracing::warn!(call.id = %call, error = %e, "lookup failed; next pass"),
        }
    }
    Ok(())
}

async fn requeue(d: &Dispatcher, call: CallId, due: chrono::DateTime<chrono::Utc>) -> Result<()> {
    if let Some(row) = d.store.pending_call(call).await? {
        d.queue
            .enqueue_many(&[NewJob {
                call,
                partition: partition(row.company)?,
                customer: row.customer,
                due,
            }])
            .await?;
    }
    Ok(())
}
