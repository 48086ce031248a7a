//! One job: its rate turn, its claim in Postgres, the fire-time check, a pause's hold.

use chrono::{DateTime, Utc};
use outdial_dialer::limits::Reservation;
use outdial_domain::scheduled_call::Event;
use outdial_queue::Job;
use outdial_store::ClaimedCall;

use super::batch::CompanyLimits;
use super::{Dispatcher, Held, Steps, chrono};
use crate::fire::{Fire, check};
use crate::pause::PARK;
use crate::{Result, telemetry};

impl Dispatcher {
    /// One job: its company's rate first, then the claim in Postgres, then the call.
    ///
    /// The turn is booked before the claim: a job with no turn soon costs Redis only (it
    /// is deferred in the queue and the company's partition throttled, so claimers leave
    /// the company alone until turns are free), never a Postgres claim and release. A job
    /// that booked a turn but is then not claimed, or is deferred at fire time, leaves its
    /// turn unused: the limit errs on the safe side.
    pub(super) async fn take(
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
    pub(super) async fn park_if_paused(
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
    pub(super) async fn hand_back(
        &self,
        call: &ClaimedCall,
        job: &Job,
        until: DateTime<Utc>,
    ) -> Result<()> {
        let now = self.clock.now();
        self.store
            .release(call.id, call.token, until, Event::HandedBack, vec![], now)
            .await?;
        self.queue.defer(&job.job, job.token, until).await?;
        Ok(())
    }
}
