//! Schedule plans (migration 0023): each distinct plan of a batch of new schedules stored
//! once in `schedule_plans`, shared by every schedule of the batch made with an equal plan.
//!
//! A plan row holds the whole plan in due order (due times, slots, each entry's reasons,
//! the dropped slots) and is never changed or deleted; what changes as its calls are stored
//! stays on the schedule (`plan_stored`, `plan_next_at`, see `plan.rs`). Customers of one
//! zone and state made in one batch (a bulk import's chunk) get equal plans, so the batch
//! writes a few plan rows instead of one large row per schedule.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use outdial_domain::schedule::Plan;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{Error, Result};

/// What equal plans share and most others do not: first due time, calls, dropped slots.
type Key = (Option<DateTime<Utc>>, usize, usize);

/// The distinct plans of a batch of schedules, ready to insert.
#[derive(Debug, Default)]
pub(crate) struct Distinct {
    /// Each distinct plan's id.
    ids: Vec<Uuid>,
    /// Each schedule's distinct plan (index into `ids`).
    schedule_plan: Vec<usize>,
    /// Each distinct plan's entries' reasons, one JSON array text per entry.
    entry_reasons: Vec<Vec<String>>,
    /// Every distinct plan's due times and slots, one after the other; plan `j` is
    /// `offsets[j]..offsets[j] + lengths[j]`.
    due: Vec<DateTime<Utc>>,
    slot: Vec<DateTime<Utc>>,
    offsets: Vec<i32>,
    lengths: Vec<i32>,
    /// Each distinct plan's reasons (a JSON array of the entries' arrays) and dropped slots.
    reasons: Vec<String>,
    dropped: Vec<String>,
}

impl Distinct {
    /// Groups `plans` (one per schedule, in order) by equality.
    pub(crate) fn of<'a>(plans: impl Iterator<Item = &'a Plan>) -> Result<Distinct> {
        let corrupt = |column| Error::Corrupt {
            what: "schedule plan",
            column,
        };
        let mut out = Distinct::default();
        let mut seen: Vec<&Plan> = Vec::new();
        // Candidates by a cheap key; equal plans share it.
        let mut by_key: HashMap<Key, Vec<usize>> = HashMap::new();
        for plan in plans {
            let key = (
                plan.calls.first().map(|c| c.at),
                plan.calls.len(),
                plan.dropped.len(),
            );
            let candidates = by_key.entry(key).or_default();
            // Plans shared by reference (an import's memo) are equal without a look inside.
            if let Some(&j) = candidates
                .iter()
                .find(|&&j| std::ptr::eq(seen[j], plan) || *seen[j] == *plan)
            {
                out.schedule_plan.push(j);
                continue;
            }
            let j = seen.len();
            candidates.push(j);
            seen.push(plan);
            out.schedule_plan.push(j);
            out.ids.push(Uuid::new_v4());
            let mut entries = Vec::with_capacity(plan.calls.len());
            for call in &plan.calls {
                entries
                    .push(serde_json::to_string(&call.moved_by).map_err(|_| corrupt("reasons"))?);
            }
            out.reasons.push(format!("[{}]", entries.join(",")));
            out.entry_reasons.push(entries);
            out.dropped
                .push(serde_json::to_string(&plan.dropped).map_err(|_| corrupt("dropped"))?);
            out.offsets
                .push(i32::try_from(out.due.len()).map_err(|_| corrupt("due"))?);
            out.lengths
                .push(i32::try_from(plan.calls.len()).map_err(|_| corrupt("due"))?);
            out.due.extend(plan.calls.iter().map(|c| c.at));
            out.slot.extend(plan.calls.iter().map(|c| c.slot));
        }
        Ok(out)
    }

    /// Schedule `i`'s plan id and its entries' reasons (JSON text each).
    pub(crate) fn of_schedule(&self, i: usize) -> (Uuid, &[String]) {
        let j = self.schedule_plan[i];
        (self.ids[j], &self.entry_reasons[j])
    }

    /// Inserts the plan rows, in one statement.
    pub(crate) async fn insert(&self, conn: &mut PgConnection) -> Result<()> {
        if self.ids.is_empty() {
            return Ok(());
        }
        // Postgres arrays of arrays must be rectangular: one flat array, sliced per plan.
        sqlx::query(
            "INSERT INTO schedule_plans (id, due, slot, reasons, dropped)
             SELECT p.id, ($1::timestamptz[])[p.off + 1 : p.off + p.len],
                 ($2::timestamptz[])[p.off + 1 : p.off + p.len], p.reasons::jsonb,
                 p.dropped::jsonb
             FROM unnest($3::uuid[], $4::int4[], $5::int4[], $6::text[], $7::text[])
                 AS p(id, off, len, reasons, dropped)",
        )
        .bind(&self.due)
        .bind(&self.slot)
        .bind(&self.ids)
        .bind(&self.offsets)
        .bind(&self.lengths)
        .bind(&self.reasons)
        .bind(&self.dropped)
        .execute(conn)
        .await?;
        Ok(())
    }
}
