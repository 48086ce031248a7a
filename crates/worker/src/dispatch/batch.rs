//! One claimed batch: its companies read, their rate turns booked, a task started per job.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use outdial_dialer::CompanyRef;
use outdial_dialer::limits::{CallLimits, Rate, Reservation};
use outdial_domain::PhoneNumber;
use outdial_queue::Job;
use outdial_store::{Company, CompanyId};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::{Dispatcher, Held, Steps};
use crate::{Result, telemetry};

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

/// The farthest turn under its company's rate a claimed job books (and waits for in this
/// process); a job whose turn would be later is deferred in the queue and its company's
/// partition throttled. At most half a lease.
const MAX_RATE_WAIT: Duration = Duration::from_secs(2);

/// What the calls of one company need before they are claimed: its configuration and
/// the rate-limit names.
pub(super) struct CompanyLimits {
    pub(super) company: Company,
    pub(super) name: CompanyRef,
    pub(super) caller_id: PhoneNumber,
    pub(super) limits: CallLimits,
}

impl Dispatcher {
    /// Claims one batch from the queue and starts a task per job; returns how many jobs
    /// the queue handed out. The companies of the batch are read here, so that a Postgres
    /// outage fails the batch (and the loop backs off) instead of every job.
    pub(super) async fn batch(
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
