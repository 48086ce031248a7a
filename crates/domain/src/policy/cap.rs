//! Evaluating frequency caps and quiet periods against the contact history.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;

use super::contact::Subject;
use super::history::History;
use super::local::{local_date, start_of_day};
use super::ruleset::{CapRule, CooldownRule, Span};

type Bound = Option<(Option<Tz>, DateTime<Utc>)>;

/// How far back a span can see: the rolling duration, or n local days (today is day one,
/// so at most n*24 h plus a DST hour back; 2 h covers it).
fn reach(span: &Span) -> Duration {
    let days = span
        .local_days
        .map_or_else(Duration::zero, |n| Duration::hours(i64::from(n) * 24 + 2));
    span.rolling.unwrap_or_default().max(days)
}

/// If `cap` blocks a dial at `t`, the zone that decided (for local-day spans) and the
/// earliest instant at which the cap alone allows one. Contacts after `t` are ignored.
pub fn check_cap(
    cap: &CapRule,
    t: DateTime<Utc>,
    subject: &Subject<'_>,
    history: &History<'_>,
) -> Bound {
    let max = cap.max as usize;
    let all = history.contacts();
    let recent: Vec<usize> = history
        .range(t - reach(&cap.span), t)
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
/// day one.
pub fn check_cooldown(
    rule: &CooldownRule,
    t: DateTime<Utc>,
    subject: &Subject<'_>,
    history: &History<'_>,
) -> Bound {
    let all = history.contacts();
    let mut worst = None;
    for i in history.range(t - reach(&rule.span), t) {
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
    worst
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
