//! Evaluating one time-window rule in one zone.

use std::cell::Cell;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use rustc_hash::FxHashMap;

use super::decision::Reason;
use super::local::{earliest_at_or_after, start_of_day};
use super::ruleset::{Ruleset, WindowRule};

/// What a window rule allows on one local date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Day {
    /// The rule is not in force that date: no constraint.
    Unbound,
    /// No lawful instant that date.
    Closed(Reason),
    /// Dials may start in `[start, end)` (end already shrunk by the guard band).
    Open(DateTime<Utc>, DateTime<Utc>),
}

/// Memo of [`day`] per (window rule, zone, local date). The answer does not depend on the
/// customer, so one cache serves every decision made with a ruleset; it is cleared when it
/// reaches [`DayCache::CAPACITY`] entries.
#[derive(Debug)]
pub struct DayCache {
    /// Distinguishes caches (rulesets) in the per-thread last-answer slot.
    id: u64,
    map: RwLock<FxHashMap<(usize, Tz, NaiveDate), Day>>,
}

impl Clone for DayCache {
    /// A fresh, empty cache: the clone's rules may be changed independently.
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl Default for DayCache {
    fn default() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        DayCache {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            map: RwLock::default(),
        }
    }
}

/// A cache id, a window rule's index, a zone and a local date.
type DayKey = (u64, usize, Tz, NaiveDate);

impl DayCache {
    /// Most entries kept (about 40 bytes each).
    pub const CAPACITY: usize = 250_000;

    fn get(&self, rule: &WindowRule, set: &Ruleset, zone: Tz, date: NaiveDate) -> Day {
        thread_local! {
            // The last answer on this thread: consecutive checks are mostly for one day.
            static LAST: Cell<Option<(DayKey, Day)>> = const { Cell::new(None) };
        }
        let key = (self.id, rule.index, zone, date);
        if let Some((k, day)) = LAST.get()
            && k == key
        {
            return day;
        }
        let day = self.shared(key, rule, set);
        LAST.set(Some((key, day)));
        day
    }

    fn shared(&self, key: DayKey, rule: &WindowRule, set: &Ruleset) -> Day {
        let (_, _, zone, date) = key;
        let key = (rule.index, zone, date);
        if let Some(day) = self.map.read().ok().and_then(|m| m.get(&key).copied()) {
            return day;
        }
        let day = compute(rule, set, zone, date);
        if let Ok(mut m) = self.map.write() {
            if m.len() >= Self::CAPACITY {
                m.clear();
            }
            m.insert(key, day);
        }
        day
    }
}

/// The rule's allowance on local `date` in `zone`.
pub fn day(rule: &WindowRule, set: &Ruleset, zone: Tz, date: NaiveDate) -> Day {
    set.day_cache.get(rule, set, zone, date)
}

fn compute(rule: &WindowRule, set: &Ruleset, zone: Tz, date: NaiveDate) -> Day {
    if !rule.meta.in_force_on(date) {
        return Day::Unbound;
    }
    if rule
        .holidays
        .is_some_and(|c| set.calendars[c].contains(date))
    {
        return Day::Closed(Reason::Holiday);
    }
    let Some((s, e)) = rule.hours[date.weekday().num_days_from_monday() as usize] else {
        return Day::Closed(Reason::ClosedDay);
    };
    let start = earliest_at_or_after(zone, date, s);
    let end = earliest_at_or_after(zone, date, e) - set.end_margin();
    if start < end {
        Day::Open(start, end)
    } else {
        Day::Closed(Reason::AfterWindow)
    }
}

/// `None` if the rule allows `t` in `zone`; otherwise the reason and the earliest instant
/// at which this rule alone allows a dial (`None` past `limit`). `date` is the local date
/// of `t` in `zone`.
pub fn check(
    rule: &WindowRule,
    set: &Ruleset,
    zone: Tz,
    t: DateTime<Utc>,
    date: NaiveDate,
    limit: DateTime<Utc>,
) -> Option<(Reason, Option<DateTime<Utc>>)> {
    match day(rule, set, zone, date) {
        Day::Unbound => None,
        Day::Open(start, end) if t >= start && t < end => None,
        Day::Open(start, _) if t < start => Some((Reason::BeforeWindow, Some(start))),
        Day::Open(..) => Some((Reason::AfterWindow, next_open(rule, set, zone, date, limit))),
        Day::Closed(reason) => Some((reason, next_open(rule, set, zone, date, limit))),
    }
}

/// The first lawful instant on a local date after `after`, up to `limit`.
fn next_open(
    rule: &WindowRule,
    set: &Ruleset,
    zone: Tz,
    after: NaiveDate,
    limit: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let mut date = after;
    loop {
        date = date.checked_add_signed(Duration::days(1))?;
        let at = match day(rule, set, zone, date) {
            Day::Unbound => start_of_day(zone, date),
            Day::Open(start, _) => start,
            Day::Closed(_) => {
                if start_of_day(zone, date) > limit {
                    return None;
                }
                continue;
            }
        };
        return (at <= limit).then_some(at);
    }
}
