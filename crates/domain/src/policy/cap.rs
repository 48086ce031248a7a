//! Evaluating frequency caps and quiet periods against the contact history.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;

use super::contact::{Contact, Subject};
use super::local::{local_date, start_of_day};
use super::ruleset::{CapRule, CooldownRule, Span};

/// If `cap` blocks a dial at `t`, the zone that decided (for local-day spans) and the
/// earliest instant at which the cap alone allows one. Contacts after `t` are ignored.
pub fn check_cap(
    cap: &CapRule,
    zones: &[Tz],
    t: DateTime<Utc>,
    subject: &Subject<'_>,
    history: &[Contact],
) -> Option<(Option<Tz>, DateTime<Utc>)> {
    let max = cap.max as usize;
    // Every contact either span can see lies after `t - reach`: the rolling duration, or n
    // local days (today is day one, so at most n*24 h plus a DST hour back; +2 h is safe).
    let reach = cap.span.rolling.unwrap_or_default().max(
        cap.span
            .local_days
            .map_or_else(Duration::zero, |n| Duration::hours(i64::from(n) * 24 + 2)),
    );
    let mut recent: Vec<DateTime<Utc>> = history
        .iter()
        .filter(|c| c.at <= t && c.at > t - reach)
        .filter(|c| c.kind.counted_by(cap.count) && c.same_key(subject, &cap.key))
        .map(|c| c.at)
        .collect();
    if recent.len() < max {
        return None;
    }
    recent.sort_unstable();
    let mut worst: Option<(Option<Tz>, DateTime<Utc>)> = None;
    if let Some(w) = cap.span.rolling {
        let inside = &recent[recent.partition_point(|at| *at <= t - w)..];
        if inside.len() >= max {
            // The cap frees up when the oldest contact that keeps the count at `max` leaves.
            worst = later(worst, (None, inside[inside.len() - max] + w));
        }
    }
    if let Some(n) = cap.span.local_days {
        for &zone in zones {
            let first_day = local_date(zone, t) - Duration::days(i64::from(n) - 1);
            let inside = &recent[recent.partition_point(|at| local_date(zone, *at) < first_day)..];
            if inside.len() >= max {
                let day = local_date(zone, inside[inside.len() - max]);
                let free = start_of_day(zone, day + Duration::days(i64::from(n)));
                worst = later(worst, (Some(zone), free));
            }
        }
    }
    worst
}

/// If `rule` blocks a dial at `t`, the deciding zone and the end of the quiet period.
pub fn check_cooldown(
    rule: &CooldownRule,
    zones: &[Tz],
    t: DateTime<Utc>,
    subject: &Subject<'_>,
    history: &[Contact],
) -> Option<(Option<Tz>, DateTime<Utc>)> {
    let mut worst = None;
    for event in history
        .iter()
        .filter(|c| c.at <= t && c.kind.counted_by(rule.after) && c.same_key(subject, &rule.key))
    {
        for (zone, end) in quiet_until(rule.span, zones, event.at) {
            if t < end {
                worst = later(worst, (zone, end));
            }
        }
    }
    worst
}

/// Ends of the quiet period after an event at `at`: the rolling end, and per zone the start
/// of local day D + n where D (the event's date) is day one.
fn quiet_until(
    span: Span,
    zones: &[Tz],
    at: DateTime<Utc>,
) -> impl Iterator<Item = (Option<Tz>, DateTime<Utc>)> + '_ {
    let rolling = span.rolling.map(|w| (None, at + w));
    let days = span.local_days.into_iter().flat_map(move |n| {
        zones.iter().map(move |&z| {
            (
                Some(z),
                start_of_day(z, local_date(z, at) + Duration::days(i64::from(n))),
            )
        })
    });
    rolling.into_iter().chain(days)
}

fn later(
    a: Option<(Option<Tz>, DateTime<Utc>)>,
    b: (Option<Tz>, DateTime<Utc>),
) -> Option<(Option<Tz>, DateTime<Utc>)> {
    match a {
        Some(a) if a.1 >= b.1 => Some(a),
        _ => Some(b),
    }
}
