//! The dial: the live-call slot, the dial intent, the place request and its refusals.

use std::time::Duration;

use chrono::{DateTime, Utc};
use outdial_dialer::limits::SlotGrant;
use outdial_dialer::{
    CompanyRef, DialContext, DialError, DialRequest, IdempotencyKey, lookup_then_place,
};
use outdial_domain::scheduled_call::Event;
use outdial_domain::{AttemptOutcome, PhoneNumber};
use outdial_queue::Job;
use outdial_store::{ClaimedCall, DialIntent};

use super::batch::CompanyLimits;
use super::{Dispatcher, Steps, chrono};
use crate::finish::Ended;
use crate::{Result, telemetry};

impl Dispatcher {
    pub(super) async fn dial(
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
}
