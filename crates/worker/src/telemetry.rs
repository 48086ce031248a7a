//! The worker's Prometheus metrics (`metrics` crate macros: without an installed recorder,
//! as in `outdial work` without `OUTDIAL_METRICS_BIND`, each is a no-op). Names start with
//! `outdial_`; labels are bounded: company names, outcomes, flags, rule ids, results.

use chrono::{DateTime, Utc};
use outdial_domain::Flag;
use outdial_domain::policy::Block;

/// Jobs one claim handed out.
pub(crate) fn claim_batch(n: usize) {
    metrics::histogram!("outdial_claim_batch_size").record(n as f64);
}

/// A fire-time decision other than "dial": `deferred`, `blocked`, `cancelled`, `paused`,
/// counted once per blocking rule (`rule="none"` without one).
pub(crate) fn decision(decision: &'static str, blocks: &[Block]) {
    if blocks.is_empty() {
        metrics::counter!("outdial_decisions_total", "decision" => decision, "rule" => "none")
            .increment(1);
    }
    for b in blocks {
        metrics::counter!(
            "outdial_decisions_total",
            "decision" => decision,
            "rule" => b.rule.to_string()
        )
        .increment(1);
    }
}

/// A call placed at the provider, `due_at` late.
pub(crate) fn dialed(company: &str, due_at: DateTime<Utc>, now: DateTime<Utc>) {
    metrics::counter!("outdial_dials_total", "company" => company.to_owned()).increment(1);
    let late = (now - due_at).num_milliseconds().max(0) as f64 / 1000.0;
    metrics::histogram!("outdial_dial_lateness_seconds").record(late);
}

/// An attempt's result, with its post-processing flags (an unknown flag counts as `OTHER`:
/// its text is the provider's, unbounded).
pub(crate) fn result(outcome: &'static str, flags: &[Flag]) {
    metrics::counter!("outdial_call_results_total", "outcome" => outcome).increment(1);
    for f in flags {
        let name = match f {
            Flag::Other(_) => "OTHER".to_owned(),
            known => known.as_str().to_owned(),
        };
        metrics::counter!("outdial_call_flags_total", "flag" => name).increment(1);
    }
}

/// A call held back by a rate limit: `turn` (the company's calls per second) or
/// `provider` (the provider answered 429).
pub(crate) fn rate_wait(company: &str, kind: &'static str) {
    metrics::counter!(
        "outdial_rate_limit_waits_total",
        "company" => company.to_owned(),
        "kind" => kind
    )
    .increment(1);
}

/// A call handed back because every live-call slot of its company was taken.
pub(crate) fn slots_full(company: &str) {
    metrics::counter!("outdial_live_call_slots_full_total", "company" => company.to_owned())
        .increment(1);
}

/// A failed Postgres or Redis operation (`system` is `postgres` or `redis`).
pub(crate) fn store_error(system: &'static str) {
    metrics::counter!("outdial_store_errors_total", "system" => system).increment(1);
}

/// Counts `e` under its system.
pub(crate) fn error(e: &crate::Error) {
    store_error(match e {
        crate::Error::Store(_) => "postgres",
        _ => "redis",
    });
}

/// A reconcile pass and what it repaired (`restored` jobs Redis had lost, `dropped` jobs
/// whose call had ended).
pub(crate) fn reconciled(restored: u64, dropped: u64) {
    metrics::counter!("outdial_reconcile_passes_total").increment(1);
    metrics::counter!("outdial_reconcile_repaired_total", "what" => "restored").increment(restored);
    metrics::counter!("outdial_reconcile_repaired_total", "what" => "dropped").increment(dropped);
}

/// Calls recovered from dead workers (`recovered`: result found at the provider,
/// `requeued`: never received, due again).
pub(crate) fn recovered(what: &'static str) {
    metrics::counter!("outdial_reconcile_repaired_total", "what" => what).increment(1);
}

/// A webhook delivery try: `delivered`, `failed` (will retry) or `dead`.
pub(crate) fn webhook(result: &'static str) {
    metrics::counter!("outdial_webhook_deliveries_total", "result" => result).increment(1);
}

/// Planned calls a worker stored as rows and queued ahead of their time.
pub(crate) fn planned_stored(calls: usize) {
    metrics::counter!("outdial_planned_calls_stored_total")
        .increment(u64::try_from(calls).unwrap_or(u64::MAX));
}
