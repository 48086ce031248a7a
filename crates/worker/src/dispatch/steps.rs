//! The per-call Redis steps, coalesced across a dispatcher's concurrent calls.

use std::sync::Arc;
use std::time::Duration;

use outdial_dialer::limits::{Limits, SlotGrant};
use outdial_dialer::{CompanyRef, IdempotencyKey};
use outdial_queue::{DialIntent as QueueIntent, Job, JobRef, NewJob};

use super::Dispatcher;
use crate::coalesce::Coalesce;
use crate::{Error, Result};

/// The per-call Redis steps of one running dispatcher, each coalesced across its concurrent
/// calls ([`crate::coalesce`]): the dial mark, the live-call slot taken and given back, the
/// final ack and the follow-ups' enqueue.
pub(crate) struct Steps {
    pub(super) mark: Coalesce<(JobRef, u64), QueueIntent>,
    pub(super) acquire: Coalesce<SlotAsk, SlotGrant>,
    pub(super) release: Coalesce<(CompanyRef, IdempotencyKey), bool>,
    ack: Coalesce<(JobRef, u64), bool>,
    pub(crate) enqueue: Coalesce<Vec<NewJob>, ()>,
}

/// The most steps of one kind sent at once.
const MAX_STEPS: usize = 256;

impl Steps {
    pub(super) fn start(d: &Dispatcher) -> Steps {
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

    pub(super) async fn ack(&self, job: &Job) -> Result<bool> {
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
