//! Reconciliation with the system of record (Postgres): losing Redis loses no call.
//!
//! The worker implements [`Truth`] over its `scheduled_calls` table. One
//! [`Queue::reconcile`] pass:
//! 1. pages through every scheduled row (keyset paging by call id) and enqueues the rows
//!    Redis does not hold (`enqueue_missing`: an existing job is left alone, because Redis
//!    may hold a deferral Postgres has not seen yet). This also re-registers and wakes each
//!    partition, repairing the partition index;
//! 2. pages through every job Redis holds that is not leased (scheduled, due, reconcile,
//!    dead) and drops those whose row is terminal (or gone);
//! 3. rewrites each partition's wake time in the index from the partition's own keys.
//!
//! Every Redis command in a pass is bounded (pages); the pass as a whole is O(rows), which
//! is why it runs in the background every reconcile period, not on the dispatch path.

use std::future::Future;

use chrono::{DateTime, Utc};
use outdial_domain::{CallId, CustomerRef};

use crate::job::{Cancel, JobRef, NewJob, State};
use crate::keys::Partition;
use crate::queue::{Queue, ms};
use crate::{Error, Result};

impl Queue {
    /// Takes the fleet's turn at `task` for `period` if no process holds it (`SET NX PX`
    /// on one key): `true` means run it now. A periodic task that is O(rows) — the
    /// reconcile pass — thus runs once per period across any number of workers instead of
    /// once per worker; a holder that dies releases the turn when its period ends.
    pub async fn take_turn(&self, task: &str, period: std::time::Duration) -> Result<bool> {
        let key = self.keys.turn(task);
        let ms = u64::try_from(period.as_millis()).unwrap_or(u64::MAX).max(1);
        self.conn
            .run("take_turn", |mut c| {
                let key = key.clone();
                async move {
                    redis::cmd("SET")
                        .arg(&key)
                        .arg(1)
                        .arg("NX")
                        .arg("PX")
                        .arg(ms)
                        .query_async::<Option<String>>(&mut c)
                        .await
                }
            })
            .await
            .map(|set| set.is_some())
    }
}

/// A scheduled call as the system of record has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledRow {
    /// The call.
    pub call: CallId,
    /// Its partition (company or rate group).
    pub partition: Partition,
    /// Its customer.
    pub customer: CustomerRef,
    /// When it is due.
    pub due: DateTime<Utc>,
}

/// The system of record, as reconciliation needs it.
pub trait Truth: Sync {
    /// Why a read failed.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Up to `limit` scheduled rows with call id greater than `after`, ordered by call id.
    fn scheduled_page(
        &self,
        after: Option<CallId>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<ScheduledRow>, Self::Error>> + Send;

    /// Which of `calls` are terminal (completed, cancelled, blocked, expired...) or unknown:
    /// their jobs must go.
    fn terminal(
        &self,
        calls: &[CallId],
    ) -> impl Future<Output = Result<Vec<CallId>, Self::Error>> + Send;
}

/// What one reconcile pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Scheduled rows read.
    pub rows: u64,
    /// Rows missing from Redis, enqueued.
    pub restored: u64,
    /// Jobs whose row is terminal, dropped.
    pub dropped: u64,
    /// Jobs whose row is terminal but that are leased (left to their worker).
    pub dropped_in_flight: u64,
}

impl Queue {
    /// One reconcile pass against `truth`, reading pages of `page` rows.
    pub async fn reconcile<T: Truth>(
        &self,
        truth: &T,
        now: DateTime<Utc>,
        page: usize,
    ) -> Result<Reconciled> {
        let page = page.clamp(1, crate::inspect::MAX_PAGE);
        let mut report = Reconciled::default();
        self.registered_clear();
        // 1. restore missing rows
        let mut after = None;
        loop {
            let rows = truth
                .scheduled_page(after, page)
                .await
                .map_err(|e| Error::Truth(Box::new(e)))?;
            let Some(last) = rows.last() else { break };
            after = Some(last.call);
            report.rows += rows.len() as u64;
            let jobs: Vec<NewJob> = rows
                .iter()
                .map(|r| NewJob {
                    call: r.call,
                    partition: r.partition.clone(),
                    customer: r.customer.clone(),
                    due: r.due,
                })
                .collect();
            let done = self.enqueue_missing(&jobs).await?;
            report.restored += done.iter().filter(|d| d.is_some()).count() as u64;
            if rows.len() < page {
                break;
            }
        }
        // 2. drop jobs whose rows are terminal: the slabs unordered (a pass needs no order),
        // the sorted sets in pages
        let partitions = self.partitions().await?;
        for p in &partitions {
            // (dropped after the scan: a job taken out of a slab mid-scan would shift the
            // offsets the scan resumes at)
            let mut gone = Vec::new();
            let mut at = None;
            loop {
                let (jobs, next) = self.scheduled_members(p, at.as_ref(), page).await?;
                gone.extend(terminal_among(truth, jobs).await?);
                match next {
                    Some(c) => at = Some(c),
                    None => break,
                }
            }
            self.drop_jobs(&gone, &mut report).await?;
            for state in [State::Due, State::Reconcile, State::Dead] {
                let mut cursor = None;
                loop {
                    let pg = self.list(p, state, cursor.as_ref(), page).await?;
                    let jobs = pg.items.into_iter().map(|l| l.job).collect();
                    let gone = terminal_among(truth, jobs).await?;
                    self.drop_jobs(&gone, &mut report).await?;
                    match pg.next {
                        Some(c) => cursor = Some(c),
                        None => break,
                    }
                }
            }
        }
        // 3. repair the index from each partition's own keys
        self.repair_index(&partitions, now).await?;
        Ok(report)
    }

    /// Drops `jobs` from the queue (those leased are left to their worker).
    async fn drop_jobs(&self, jobs: &[JobRef], report: &mut Reconciled) -> Result<()> {
        for job in jobs {
            match self.cancel(job).await? {
                Cancel::Removed => report.dropped += 1,
                Cancel::InFlight => report.dropped_in_flight += 1,
                Cancel::Unknown => {}
            }
        }
        Ok(())
    }

    /// Rewrites each partition's wake time in the index from its own keys (earliest due
    /// job; `now` when it holds leases, so expired ones get recovered).
    pub async fn repair_index(&self, partitions: &[Partition], now: DateTime<Utc>) -> Result<()> {
        let mut wake = Vec::with_capacity(partitions.len());
        for p in partitions {
            let s = self.stats(p, now).await?;
            let w = match (s.oldest_due, s.leased > 0) {
                (_, true) => Some(ms(now)),
                (Some(d), false) => Some(ms(d)),
                (None, false) => None,
            };
            if let Some(w) = w {
                wake.push((p.to_string(), w));
            }
        }
        self.wake_partitions(&wake).await
    }
}

/// Those of `jobs` whose rows `truth` says are terminal.
async fn terminal_among<T: Truth>(truth: &T, jobs: Vec<JobRef>) -> Result<Vec<JobRef>> {
    if jobs.is_empty() {
        return Ok(jobs);
    }
    let ids: Vec<CallId> = jobs.iter().map(|j| j.call).collect();
    let gone = truth
        .terminal(&ids)
        .await
        .map_err(|e| Error::Truth(Box::new(e)))?;
    Ok(jobs
        .into_iter()
        .filter(|j| gone.contains(&j.call))
        .collect())
}
