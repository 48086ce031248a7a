//! What must hold after a run: every seeded call dialed once and ended, none before its
//! due time, each company's calls in due order (up to the concurrency inside a batch), and
//! every company served from the start in proportion to its calls.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::Res;
use crate::seed::SeededCall;

/// A seeded call after the run.
#[derive(Debug, Clone)]
pub struct Dialed {
    pub company: Uuid,
    pub due: DateTime<Utc>,
    pub started: DateTime<Utc>,
}

/// The statuses a dialed call ends in.
const ENDED: [&str; 5] = ["completed", "no_answer", "busy", "voicemail", "failed"];

/// Reads the seeded calls back; returns them and the problems found (empty: all good).
pub async fn dialed(
    store: &outdial_store::Store,
    seeded: &[SeededCall],
) -> Res<(Vec<Dialed>, Vec<String>)> {
    let ids: Vec<Uuid> = seeded.iter().map(|c| c.id).collect();
    type Row = (
        Uuid,
        Uuid,
        DateTime<Utc>,
        String,
        i32,
        i64,
        Option<DateTime<Utc>>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT sc.id, sc.company_id, sc.due_at, sc.status, sc.attempts, count(a.id),
                min(a.started_at)
         FROM scheduled_calls sc LEFT JOIN call_attempts a ON a.scheduled_call_id = sc.id
         WHERE sc.id = ANY($1) GROUP BY sc.id",
    )
    .bind(&ids)
    .fetch_all(store.pool())
    .await?;
    // Order is judged against the seeded due time: a call handed back (the rate limiter
    // said wait) gets a later due time of its own, which is not the order asked for.
    let seeded_due: HashMap<Uuid, DateTime<Utc>> = seeded.iter().map(|c| (c.id, c.due)).collect();
    let mut problems = Vec::new();
    let mut out = Vec::with_capacity(rows.len());
    let (mut not_ended, mut not_once, mut early) = (0, 0, 0);
    for (id, company, _, status, attempts, n, started) in rows {
        let due = seeded_due[&id];
        if !ENDED.contains(&status.as_str()) {
            not_ended += 1;
        }
        if attempts != 1 || n != 1 {
            not_once += 1;
        }
        let Some(started) = started else { continue };
        if started < due {
            early += 1;
        }
        out.push(Dialed {
            company,
            due,
            started,
        });
    }
    if out.len() != seeded.len() {
        problems.push(format!("{} of {} calls dialed", out.len(), seeded.len()));
    }
    if not_ended > 0 {
        problems.push(format!("{not_ended} calls not ended"));
    }
    if not_once > 0 {
        problems.push(format!("{not_once} calls without exactly one attempt"));
    }
    if early > 0 {
        problems.push(format!("{early} calls dialed before their due time"));
    }
    Ok((out, problems))
}

/// Due order within each company: for due instants `a < b`, how many calls due at `a` were
/// dialed more than `tolerance_ms` after the first call due at `b`, and the largest such
/// gap (ms). One due instant per company gives nothing to order (0, 0).
pub fn order(dialed: &[Dialed], tolerance_ms: i64) -> (usize, i64) {
    // (company, due) -> dial times
    let mut groups: BTreeMap<(Uuid, DateTime<Utc>), Vec<DateTime<Utc>>> = BTreeMap::new();
    for d in dialed {
        groups
            .entry((d.company, d.due))
            .or_default()
            .push(d.started);
    }
    let mut late = 0;
    let mut worst = 0;
    let keys: Vec<_> = groups.keys().copied().collect();
    for (i, a) in keys.iter().enumerate() {
        for b in keys[i + 1..].iter().filter(|b| b.0 == a.0) {
            let first_b = groups[b].iter().min().copied().expect("a group has calls");
            for t in &groups[a] {
                let gap = (*t - first_b).num_milliseconds();
                worst = worst.max(gap);
                if gap > tolerance_ms {
                    late += 1;
                }
            }
        }
    }
    (late, worst)
}

/// Each company's share of the first `fraction` of the calls dialed, over its share of all
/// calls: (smallest, largest) across companies. 1.0 is exactly proportional; 0 is starved.
pub fn fairness(dialed: &[Dialed], fraction: f64) -> (f64, f64) {
    let mut by_time: Vec<&Dialed> = dialed.iter().collect();
    by_time.sort_by_key(|d| d.started);
    let mut total: HashMap<Uuid, usize> = HashMap::new();
    for d in dialed {
        *total.entry(d.company).or_default() += 1;
    }
    let n = ((dialed.len() as f64 * fraction).ceil() as usize).max(1);
    let mut early: HashMap<Uuid, usize> = HashMap::new();
    for d in by_time.iter().take(n) {
        *early.entry(d.company).or_default() += 1;
    }
    let ratios = total.iter().map(|(company, all)| {
        let share = early.get(company).copied().unwrap_or(0) as f64 / n as f64;
        share / (*all as f64 / dialed.len() as f64)
    });
    ratios.fold((f64::MAX, 0.0_f64), |(lo, hi), r| (lo.min(r), hi.max(r)))
}
