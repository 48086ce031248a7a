//! [`Pacer`]: an in-process `governor` smoothing layer in front of the Redis limits.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use outdial_domain::PhoneNumber;

use super::{Admission, CallLimits, Limits, Rate};
use crate::{CompanyRef, Result};

/// The local limiter of each company, with the rate it was built for.
type LocalLimiters = HashMap<CompanyRef, (Rate, Arc<DefaultDirectRateLimiter>)>;

/// Waits for a call's turn: first on a local `governor` limiter per company (set to the
/// company's full rate: it smooths this process's bursts and never binds tighter than the
/// global limit), then on [`Limits::admit`] (the authority across processes), sleeping on
/// `tokio::time` until the moment Redis names.
#[derive(Debug, Clone)]
pub struct Pacer {
    limits: Limits,
    local: Arc<Mutex<LocalLimiters>>,
}

impl Pacer {
    /// A pacer over `limits`.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            local: Arc::default(),
        }
    }

    /// The underlying shared limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    fn local(&self, company: &CompanyRef, rate: Rate) -> Arc<DefaultDirectRateLimiter> {
        let mut local = self.local.lock().unwrap_or_else(|e| e.into_inner());
        match local.get(company) {
            Some((r, limiter)) if *r == rate => limiter.clone(),
            _ => {
                let quota = Quota::with_period(rate.interval())
                    .unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX))
                    .allow_burst(rate.burst());
                let limiter = Arc::new(RateLimiter::direct(quota));
                local.insert(company.clone(), (rate, limiter.clone()));
                limiter
            }
        }
    }

    /// Waits until the call may be placed (`Admitted`, counted against every limit), or
    /// returns the `Wait` when its moment is more than `max_wait` away (the worker then
    /// defers the call rather than hold it).
    pub async fn until_admitted(
        &self,
        company: &CompanyRef,
        caller_id: &PhoneNumber,
        limits: &CallLimits,
        max_wait: Duration,
    ) -> Result<Admission> {
        let local = self.local(company, limits.company);
        loop {
            local.until_ready().await;
            match self.limits.admit(company, caller_id, limits).await? {
                Admission::Admitted => return Ok(Admission::Admitted),
                Admission::Wait { until, reason } => {
                    let wait = (until - self.limits.clock.now())
                        .to_std()
                        .unwrap_or(Duration::ZERO);
                    if wait > max_wait {
                        return Ok(Admission::Wait { until, reason });
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}
