//! Operator pauses (issue 14), as every worker of the fleet applies them.
//!
//! Postgres holds the pauses (`company_pauses`); each dispatcher reloads them every
//! [`REFRESH`] into a [`PauseSet`] behind a `tokio` read-write lock. A claimed call of a
//! paused company (or task type) is parked: released in Postgres at its own due time with
//! a `paused` trail entry, and deferred in the queue by [`PARK`]. The park holds the read
//! lock from its decision to the queue's defer, and the refresher swaps the set under the
//! write lock; so once a refresh has swapped in a resume, no park decided under the pause
//! is still running, and the refresher's [`requeue_parked`] puts every parked call back
//! at its own due time. A whole-company pause also throttles the company's queue
//! partition (re-applied each refresh, so a Redis flush does not lift it).

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use outdial_domain::policy::{Block, PAUSE_RULE, Reason};
use outdial_queue::{Enqueued, NewJob, Queue};
use outdial_store::{CompanyId, Pause, Store};

use crate::Result;
use crate::dispatch::partition;

/// How often a worker reloads the pauses: a pause stops dials within this (plus at most
/// the turn wait already under way, which is checked again before the place request).
pub const REFRESH: Duration = Duration::from_millis(500);

/// How far a parked call is pushed in the queue (it comes back at its own due time on
/// resume, or after this if every resume signal were lost: the pause check parks it again).
pub const PARK: chrono::Duration = chrono::Duration::hours(24);

/// How long after a resume the calls it held are still told apart (their trail names the
/// pause when the window closed meanwhile).
const RECENT: chrono::Duration = chrono::Duration::hours(24);

/// The pauses a worker knows.
#[derive(Debug, Default)]
pub struct PauseSet {
    by_company: HashMap<CompanyId, Vec<Pause>>,
}

impl PauseSet {
    /// From the pauses Postgres lists.
    pub fn new(pauses: Vec<Pause>) -> PauseSet {
        let mut by_company: HashMap<CompanyId, Vec<Pause>> = HashMap::new();
        for p in pauses {
            by_company.entry(p.company).or_default().push(p);
        }
        PauseSet { by_company }
    }

    /// The pause that holds a call of `company` and `task_type` now.
    pub fn holding(&self, company: CompanyId, task_type: &str) -> Option<&Pause> {
        self.by_company.get(&company)?.iter().find(|p| {
            p.resumed_at.is_none() && p.task_type.as_deref().is_none_or(|t| t == task_type)
        })
    }

    /// The ended pause that held a call due at `due` (it was due while paused).
    pub fn held_at(
        &self,
        company: CompanyId,
        task_type: &str,
        due: DateTime<Utc>,
    ) -> Option<&Pause> {
        self.by_company
            .get(&company)?
            .iter()
            .find(|p| p.resumed_at.is_some() && p.covers(task_type, due))
    }

    fn active(&self) -> impl Iterator<Item = &Pause> {
        self.by_company
            .values()
            .flatten()
            .filter(|p| p.resumed_at.is_none())
    }
}

/// The block a pause puts in a call's trail.
pub fn block(pause: &Pause) -> Block {
    Block {
        rule: PAUSE_RULE.into(),
        reason: Reason::Paused,
        zone: None,
        until: pause.resumed_at,
    }
}

/// The pauses of one dispatcher.
#[derive(Debug, Default)]
pub struct Pauses {
    pub(crate) set: tokio::sync::RwLock<PauseSet>,
}

impl Pauses {
    /// Reloads the pauses from `store`; for pauses that ended since the last load (or, on
    /// the first load, within [`RECENT`]) puts their parked calls back on the queue, and
    /// re-applies whole-company throttles. Returns how many calls were put back.
    pub async fn refresh(
        &self,
        store: &Store,
        queue: &Queue,
        now: DateTime<Utc>,
        first: bool,
    ) -> Result<u64> {
        let loaded = store.pauses_since(now - RECENT).await?;
        let next = PauseSet::new(loaded);
        let ended: Vec<Pause> = {
            let mut set = self.set.write().await;
            let ended = next
                .by_company
                .values()
                .flatten()
                .filter(|p| {
                    p.resumed_at.is_some()
                        && (first
                            || set.active().any(|old| {
                                old.company == p.company
                                    && old.task_type == p.task_type
                                    && old.paused_at == p.paused_at
                            }))
                })
                .cloned()
                .collect();
            *set = next;
            ended
        };
        // No park decided under an ended pause is running any more (they hold the read
        // lock to their queue defer): the parked calls can go back.
        let mut moved = 0;
        for p in &ended {
            moved += requeue_parked(store, queue, p.company, p.task_type.as_deref(), now).await?;
        }
        let set = self.set.read().await;
        for p in set.active().filter(|p| p.task_type.is_none()) {
            queue.throttle(&partition(p.company)?, now + PARK).await?;
        }
        Ok(moved)
    }
}

/// Puts `company`'s pending calls (of customers of `task_type`, or all) that a pause may
/// have parked back on the queue at their Postgres due times; leased jobs are left alone.
/// Returns how many jobs moved (or were added).
pub async fn requeue_parked(
    store: &Store,
    queue: &Queue,
    company: CompanyId,
    task_type: Option<&str>,
    now: DateTime<Utc>,
) -> Result<u64> {
    let p = partition(company)?;
    let pending = store.pending_due_by(company, task_type, now + PARK).await?;
    let mut moved = 0;
    for chunk in pending.chunks(1000) {
        let jobs: Vec<NewJob> = chunk
            .iter()
            .map(|c| NewJob {
                call: c.call,
                partition: p.clone(),
                customer: c.customer.clone(),
                due: c.due_at,
            })
            .collect();
        moved += queue
            .enqueue_many(&jobs)
            .await?
            .iter()
            .filter(|c| matches!(c, Enqueued::Scheduled | Enqueued::Moved))
            .count() as u64;
    }
    Ok(moved)
}
