//! `queue stats`: per-company counts from the queue, live calls and pauses, and the total.

use chrono::{DateTime, Utc};
use outdial_dialer::CompanyRef;
use serde::Serialize;

use super::{Ops, OpsError, Result, partition};

/// One company's line of `queue stats`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CompanyStats {
    pub company: String,
    pub company_id: String,
    pub scheduled: u64,
    pub due: u64,
    /// Claimed by a worker (deciding, waiting for its turn, or live).
    pub in_flight: u64,
    /// Handed back at least once without an attempt (policy, rate, cap, pause); also
    /// counted in their current state.
    pub deferred: u64,
    /// At least one attempt used; also counted in their current state.
    pub retrying: u64,
    pub reconcile: u64,
    pub dead: u64,
    pub oldest_due_at: Option<DateTime<Utc>>,
    /// How late the earliest due call is now (0 when none is due yet).
    pub oldest_due_lateness_secs: f64,
    pub dispatches_last_minute: u64,
    pub live_calls: Option<u32>,
    pub live_call_cap: u32,
    /// Paused as a whole.
    pub paused: bool,
    /// Task types paused on their own.
    pub paused_task_types: Vec<String>,
}

/// `queue stats`: every company (or one) and the total.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatsReport {
    pub at: DateTime<Utc>,
    pub companies: Vec<CompanyStats>,
    pub total: CompanyStats,
}

impl Ops {
    /// Counts per company (or of `company` alone) and in total.
    pub async fn stats(&self, company: Option<&str>) -> Result<StatsReport> {
        let now = self.now();
        let companies = self.companies(company).await?;
        let pauses = &self.store.pauses_since(now).await?;
        let reads = companies.iter().map(|c| async move {
            let p = partition(c.id)?;
            let s = self.queue.stats(&p, now).await?;
            let live = match &self.limits {
                Some(l) => match CompanyRef::new(p.as_str()) {
                    Ok(r) => l.live_calls(&r).await.ok(),
                    Err(_) => None,
                },
                None => None,
            };
            let active = pauses
                .iter()
                .filter(|x| x.company == c.id && x.resumed_at.is_none());
            Ok::<_, OpsError>(CompanyStats {
                company: c.name.clone(),
                company_id: c.id.to_string(),
                scheduled: s.scheduled,
                due: s.due,
                in_flight: s.leased,
                deferred: s.deferred,
                retrying: s.retrying,
                reconcile: s.reconcile,
                dead: s.dead,
                oldest_due_at: s.oldest_due,
                oldest_due_lateness_secs: s.lateness.num_milliseconds().max(0) as f64 / 1000.0,
                dispatches_last_minute: s.dials_last_minute,
                live_calls: live,
                live_call_cap: c.max_live_calls,
                paused: active.clone().any(|x| x.task_type.is_none()),
                paused_task_types: active.filter_map(|x| x.task_type.clone()).collect(),
            })
        });
        let lines = futures_util::future::try_join_all(reads).await?;
        let mut total = CompanyStats {
            company: "total".into(),
            ..CompanyStats::default()
        };
        for l in &lines {
            total.scheduled += l.scheduled;
            total.due += l.due;
            total.in_flight += l.in_flight;
            total.deferred += l.deferred;
            total.retrying += l.retrying;
            total.reconcile += l.reconcile;
            total.dead += l.dead;
            total.dispatches_last_minute += l.dispatches_last_minute;
            total.live_call_cap += l.live_call_cap;
            if let Some(n) = l.live_calls {
                total.live_calls = Some(total.live_calls.unwrap_or(0) + n);
            }
            if l.oldest_due_at
                .is_some_and(|t| total.oldest_due_at.is_none_or(|o| t < o))
            {
                total.oldest_due_at = l.oldest_due_at;
            }
            total.oldest_due_lateness_secs = total
                .oldest_due_lateness_secs
                .max(l.oldest_due_lateness_secs);
        }
        Ok(StatsReport {
            at: now,
            companies: lines,
            total,
        })
    }
}
