//! Evaluating frequency caps and quiet periods against the contact history.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;

use super::contact::Subject;
use super::history::History;
use super::local::{local_date, start_of_day};
use super::ruleset::{CapRule, CooldownRule, RuleMeta, Span};

type Bound = Option<(Option<Tz>, DateTime<Utc>)>;

/// How far back a span can see: the rolling duration, or n local days (today is day one,
/// so at most n*24 h plus a DST hour back; 2 h covers it).
fn reach(span: &Span) -> Duration {
    let days = span
        .local_days
        .map_or_else(Duration::zero, |n| Duration::hours(i64::from(n) * 24 + 2));
    span.rolling.unwrap_or_default().max(days)
}

/// Whether a cap or quiet period is in force at `t`: on the local date of `t` in any
/// candidate zone (conservative where zones straddle an effective date).
fn in_force(meta: &RuleMeta, t: DateTime<Utc>, zones: &[Tz]) -> bool {
    if meta.effective_from.is_none() && meta.effective_until.is_none() {
        return true;
    }
    zones.iter().any(|z| meta.in_force_on(local_date(*z, t)))
}

/// A block ends no later than the rule goes out of force in every zone.
fn lapse(meta: &RuleMeta, zones: &[Tz], bound: Bound) -> Bound {
    let (Some(until), Some((zone, free))) = (meta.effective_until, bound) else {
        return bound;
    };
    let lapses = zones.iter().map(|z| start_of_day(*z, until)).max();
    match lapses {
        Some(l) if l < free => Some((None, l)),
        _ => Some((zone, free)),
    }
}

/// If `cap` blocks a dial at `t`, the zone that decided (for local-day spans) and the
/// earliest instant at which the cap alone allows one. Only contacts at or before `known`
/// count (the instant the caller decides for: later contacts are not yet history).
pub fn check_cap(
    cap: &CapRule,
    t: DateTime<Utc>,
    known: DateTime<Utc>,
    subject: &Subject<'_>,
    history: &History<'_>,
) -> Bound {
    if !in_force(&cap.meta, t, history.zones()) {
        return None;
    }
    lapse(
        &cap.meta,
        history.zones(),
        count_cap(cap, t, known, subject, history),
    )
}

fn count_cap(
    cap: &CapRule,
    t: DateTime<Utc>,
    known: DateTime<Utc>,
    subject: &Subject<'_>,
    history: &History<'_>,
) -> Bound {
    let max = cap.max as usize;
    let all = history.contacts();
    let recent: Vec<usize> = history
        .range(t - reach(&cap.span), t.min(known))
        .filter(|&i| all[i].kind.counted_by(cap.count) && all[i].same_key(subject, &cap.key))
        .collect();
    if recent.len() < max {
        return None;
    }
    let mut worst = None;
    if let Some(w) = cap.span.rolling {
        let inside = &recent[recent.partition_point(|&i| all[i].at <= t - w)..];
        if inside.len() >= max {
            // The cap frees up when the oldest contact that keeps the count at `max` leaves.
            worst = later(worst, None, all[inside[inside.len() - max]].at + w);
        }
    }
    if let Some(n) = cap.span.local_days {
        for (z, &zone) in history.zones().iter().enumerate() {
            let first_day = local_date(zone, t) - Duration::days(i64::from(n) - 1);
            let inside = &recent[recent.partition_point(|&i| history.date(i, z) < first_day)..];
            if inside.len() >= max {
                let day = history.date(inside[inside.len() - max], z);
                worst = later(worst, Some(zone), day_after(zone, day, n));
            }
        }
    }
    worst
}

/// If `rule` blocks a dial at `t`, the deciding zone and the end of the quiet period: the
/// rolling end, and per zone the start of local day D + n where D (the event's date) is
/// day one. Only events at or before `known` count.
pub fn check_cooldown(
    rule: &CooldownRule,
    t: DateTime<Utc>,
    known: DateTime<Utc>,
    subject: &Subject<'_>,
    history: &History<'_>,
) -> Bound {
    if !in_force(&rule.meta, t, history.zones()) {
        return None;
    }
    let all = history.contacts();
    let mut worst = None;
    for i in history.range(t - reach(&rule.span), t.min(known)) {
        let event = &all[i];
        if !(event.kind.counted_by(rule.after) && event.same_key(subject, &rule.key)) {
            continue;
        }
        if let Some(w) = rule.span.rolling
            && t < event.at + w
        {
            worst = later(worst, None, event.at + w);
        }
        if let Some(n) = rule.span.local_days {
            for (z, &zone) in history.zones().iter().enumerate() {
                let end = day_after(zone, history.date(i, z), n);
                if t < end {
                    worst = later(worst, Some(zone), end);
                }
            }
        }
    }
    lapse(&rule.meta, history.zones(), worst)
}

fn day_after(zone: Tz, day: NaiveDate, n: u32) -> DateTime<Utc> {
    start_of_day(zone, day + Duration::days(i64::from(n)))
}

fn later(a: Bound, zone: Option<Tz>, at: DateTime<Utc>) -> Bound {
    match a {
        Some(a) if a.1 >= at => Some(a),
        _ => Some((zone, at)),
    }
}
