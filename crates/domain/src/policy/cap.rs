//! Evaluating frequency caps and quiet periods against the contact history.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;

use super::history::{History, Nanos};
use super::local::start_of_day;
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

/// Whether a cap or quiet period is in force on any of `dates` (the local dates of the
/// instant in each candidate zone: conservative where zones straddle an effective date).
fn in_force(meta: &RuleMeta, dates: &[NaiveDate]) -> bool {
    dates.iter().any(|d| meta.in_force_on(*d))
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
    (index, cap): (usize, &CapRule),
    t: DateTime<Utc>,
    dates: &[NaiveDate],
    known: DateTime<Utc>,
    history: &History<'_>,
) -> Bound {
    if history.counted(index).len() < cap.max as usize || !in_force(&cap.meta, dates) {
        return None;
    }
    lapse(
        &cap.meta,
        history.zones(),
        count_cap((index, cap), t, dates, known, history),
    )
}

fn count_cap(
    (index, cap): (usize, &CapRule),
    t: DateTime<Utc>,
    dates: &[NaiveDate],
    known: DateTime<Utc>,
    history: &History<'_>,
) -> Bound {
    let max = cap.max as usize;
    let now = Nanos::of(t);
    let all = history.contacts();
    // The `max`-th newest counted contact known at `t`: every span that still holds it holds
    // `max` contacts (all newer ones are inside too), and its leaving frees the span.
    let counted = history.counted(index);
    let upto = history.upto(now.min(Nanos::of(known)));
    let m = counted.partition_point(|i| *i < upto);
    let k = counted[m.checked_sub(max)?];
    if history.nanos(k) <= now.minus(reach(&cap.span)) {
        return None;
    }
    let mut worst = None;
    if let Some(w) = cap.span.rolling
        && history.nanos(k) > now.minus(w)
    {
        worst = later(worst, None, all[k].at + w);
    }
    if let Some(n) = cap.span.local_days {
        for (z, &zone) in history.zones().iter().enumerate() {
            let first_day = dates[z] - Duration::days(i64::from(n) - 1);
            if history.date(k, z) >= first_day {
                worst = later(worst, Some(zone), day_after(zone, history.date(k, z), n));
            }
        }
    }
    worst
}

/// If `rule` blocks a dial at `t`, the deciding zone and the end of the quiet period: the
/// rolling end, and per zone the start of local day D + n where D (the event's date) is
/// day one. Only events at or before `known` count.
pub fn check_cooldown(
    (index, rule): (usize, &CooldownRule),
    t: DateTime<Utc>,
    dates: &[NaiveDate],
    known: DateTime<Utc>,
    history: &History<'_>,
) -> Bound {
    let events = history.counted(index);
    if events.is_empty() || !in_force(&rule.meta, dates) {
        return None;
    }
    let all = history.contacts();
    let now = Nanos::of(t);
    let (from, upto) = (
        now.minus(reach(&rule.span)),
        history.upto(now.min(Nanos::of(known))),
    );
    let mut worst = None;
    for &i in events[..events.partition_point(|i| *i < upto)].iter().rev() {
        if history.nanos(i) <= from {
            break;
        }
        let event = &all[i];
        if let Some(w) = rule.span.rolling
            && now < history.nanos(i).plus(w)
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
