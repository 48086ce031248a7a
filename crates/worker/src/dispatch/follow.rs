//! A placed call followed to its end (provider lookups, callbacks, lease renewals) and
//! its result recorded.

use outdial_dialer::{IdempotencyKey, ProviderCall};
use outdial_queue::Job;
use outdial_store::ClaimedCall;

use super::{Dispatcher, LOOKUP_EVERY_WITH_CALLBACKS, Steps, chrono};
use crate::finish::{Ended, finish_with};
use crate::{Result, telemetry};

impl Dispatcher {
    /// Follows a placed call to its end, renewing the leases, then records the result.
    pub(super) async fn follow(
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
    pub(super) async fn end(
        &self,
        call: &ClaimedCall,
        job: &Job,
        ended: &Ended,
        steps: &Steps,
    ) -> Result<()> {
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
