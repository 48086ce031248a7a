//! Cadence slots: the instants a cadence proposes in `[start, end)` for one customer, before
//! the policy moves or drops them.
//!
//! Cron matches are memoized. `cron::Schedule::after` costs about 430 ns per match, and
//! expanding one cadence for many customers would iterate it again for every one. The
//! matches of a cron expression on a local calendar date do not depend on the zone, so they
//! are computed once per date by running the schedule over that date in UTC (a calendar
//! without DST), and mapped to instants once per (zone, date) the way the `cron` crate maps
//! them: a local time inside a spring-forward gap is skipped, a repeated (fall-back) local
//! time yields both instants.
//!
//! The result is the set of instants whose wall time in the zone matches an expression. It
//! differs from iterating `after(start)` per customer only where that iteration itself is
//! inconsistent, all inside a fall-back overlap: started within the overlap's first pass,
//! `after` skips the second-pass instants of earlier local times; started within the second
//! pass, it returns first-pass instants from before `start`; and its output is not monotonic
//! there, so `take_while(< end)` could stop early. `tests/schedule_props.rs` checks the
//! memo against `after` iterated from outside any transition.

use rustc_hash::FxHashMap;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use chrono::{DateTime, Duration, LocalResult, NaiveDate, NaiveTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

use super::cadence::Cadence;
use crate::policy::local::earliest_at_or_after;

/// Most slots considered in one expansion (bounds work for dense cron expressions).
pub const MAX_SLOTS: usize = 2_000;

impl Cadence {
    /// Cadence slots in `[start, end)` in `zone`, sorted and distinct, at most
    /// [`MAX_SLOTS`]: `start` itself if `first_asap`, every cron match (a match at `start`'s
    /// whole second counts as `start`), and the explicit local times (a skipped local time
    /// moves to the first instant after the gap, a repeated one is its earlier instant).
    pub fn slots(&self, zone: Tz, start: DateTime<Utc>, end: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let mut out = Vec::with_capacity(64);
        if self.first_asap {
            out.push(start);
        }
        self.crons
            .extend_between(zone, start, end, MAX_SLOTS, &mut out);
        for local in &self.local_times {
            let at =
                earliest_at_or_after(zone, local.date(), local.time().num_seconds_from_midnight());
            if at >= start && at < end {
                out.push(at);
            }
        }
        out.sort_unstable();
        out.dedup();
        out.truncate(MAX_SLOTS);
        out
    }
}

/// A cadence's cron expressions with a shared memo of their matches.
///
/// `Send + Sync`; clones share the memo (the expressions cannot change after
/// construction, so the memo stays valid).
#[derive(Clone)]
pub struct CronSlots {
    schedules: Arc<[cron::Schedule]>,
    memo: Arc<RwLock<Memo>>,
}

impl CronSlots {
    /// (zone, date) entries kept before the memo is cleared.
    pub const CAPACITY_DAYS: usize = 50_000;
    /// Stored times and instants (8–12 bytes each) kept before the memo is cleared.
    pub const CAPACITY_ITEMS: usize = 1_000_000;

    /// Wrap parsed expressions.
    pub fn new(schedules: Vec<cron::Schedule>) -> Self {
        CronSlots {
            schedules: schedules.into(),
            memo: Arc::default(),
        }
    }

    /// The expressions.
    pub fn schedules(&self) -> &[cron::Schedule] {
        &self.schedules
    }

    /// Whether there are no expressions.
    pub fn is_empty(&self) -> bool {
        self.schedules.is_empty()
    }

    /// The first `limit` instants in `[start, end)` whose wall time in `zone` matches an
    /// expression, sorted; a match at `start`'s whole second is returned as `start`.
    pub fn between(
        &self,
        zone: Tz,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        limit: usize,
    ) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        self.extend_between(zone, start, end, limit, &mut out);
        out.sort_unstable();
        out.dedup();
        out.truncate(limit);
        out
    }

    /// Append at least the first `limit` matches in `[start, end)` (unsorted across local
    /// dates, possibly more than `limit`, no duplicates among them).
    fn extend_between(
        &self,
        zone: Tz,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        limit: usize,
        out: &mut Vec<DateTime<Utc>>,
    ) {
        if self.schedules.is_empty() || start >= end {
            return;
        }
        let walk = Walk::new(zone, start, end, limit);
        let base = out.len();
        {
            let memo = self.memo.read().unwrap_or_else(PoisonError::into_inner);
            if walk.run(&mut Lookup(&memo), out).is_some() {
                return;
            }
        }
        out.truncate(base);
        let mut memo = self.memo.write().unwrap_or_else(PoisonError::into_inner);
        let mut fill = Fill {
            memo: &mut memo,
            schedules: &self.schedules,
        };
        // `Fill` has every date, so this stops only at the walk's end (or at the last
        // representable date).
        let _ = walk.run(&mut fill, out);
    }
}

impl fmt::Debug for CronSlots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.memo.read().map_or(0, |m| m.instants.len());
        f.debug_struct("CronSlots")
            .field(
                "schedules",
                &self
                    .schedules
                    .iter()
                    .map(cron::Schedule::source)
                    .collect::<Vec<_>>(),
            )
            .field("memo_days", &days)
            .finish()
    }
}

type Keyed<K, V> = FxHashMap<K, V>;

/// Matches per local date (zone-independent) and their instants per (zone, local date),
/// each sorted.
#[derive(Default)]
struct Memo {
    times: Keyed<NaiveDate, Box<[NaiveTime]>>,
    instants: Keyed<(Tz, NaiveDate), Box<[DateTime<Utc>]>>,
    items: usize,
}

impl Memo {
    fn instants(
        &mut self,
        schedules: &[cron::Schedule],
        zone: Tz,
        date: NaiveDate,
    ) -> &[DateTime<Utc>] {
        if !self.instants.contains_key(&(zone, date)) {
            if self.instants.len() >= CronSlots::CAPACITY_DAYS
                || self.items >= CronSlots::CAPACITY_ITEMS
            {
                self.times.clear();
                self.instants.clear();
                self.items = 0;
            }
            let times = match self.times.get(&date) {
                Some(times) => times,
                None => {
                    let times = times_on(schedules, date);
                    self.items += times.len();
                    self.times.entry(date).or_insert(times)
                }
            };
            let instants = instants_on(zone, date, times);
            self.items += instants.len();
            self.instants.insert((zone, date), instants);
        }
        self.instants.get(&(zone, date)).map_or(&[], |i| &**i)
    }
}

/// Local times on `date` matching any of `schedules`, sorted and distinct: each schedule
/// run over `[date 00:00, date + 1 00:00)` in UTC, whose naive calendar has no gaps or
/// repeats.
fn times_on(schedules: &[cron::Schedule], date: NaiveDate) -> Box<[NaiveTime]> {
    let from = date.and_time(NaiveTime::MIN).and_utc();
    let until = from + Duration::days(1);
    // `after` is exclusive: start one second before midnight.
    let before = from - Duration::seconds(1);
    let mut times: Vec<NaiveTime> = schedules
        .iter()
        .flat_map(|s| {
            s.after(&before)
                .take_while(|t| *t < until)
                .map(|t| t.time())
        })
        .collect();
    times.sort_unstable();
    times.dedup();
    times.into_boxed_slice()
}

/// The instants at which the wall clock in `zone` shows `date` at one of `times`, sorted:
/// the `cron` crate's mapping (nothing for a skipped time, both instants of a repeated one).
fn instants_on(zone: Tz, date: NaiveDate, times: &[NaiveTime]) -> Box<[DateTime<Utc>]> {
    let mut out = Vec::with_capacity(times.len());
    for t in times {
        match zone.from_local_datetime(&date.and_time(*t)) {
            LocalResult::Single(at) => out.push(at.with_timezone(&Utc)),
            LocalResult::Ambiguous(a, b) => {
                out.push(a.with_timezone(&Utc));
                out.push(b.with_timezone(&Utc));
            }
            LocalResult::None => {}
        }
    }
    out.sort_unstable();
    out.into_boxed_slice()
}

/// Where a walk gets a date's instants from.
trait Days {
    /// The instants of local `date` in `zone`, or `None` if not at hand.
    fn day(&mut self, zone: Tz, date: NaiveDate) -> Option<&[DateTime<Utc>]>;
}

/// Read-only: answers from the memo.
struct Lookup<'a>(&'a Memo);

impl Days for Lookup<'_> {
    fn day(&mut self, zone: Tz, date: NaiveDate) -> Option<&[DateTime<Utc>]> {
        self.0.instants.get(&(zone, date)).map(|i| &**i)
    }
}

/// Computes what is missing.
struct Fill<'a> {
    memo: &'a mut Memo,
    schedules: &'a [cron::Schedule],
}

impl Days for Fill<'_> {
    fn day(&mut self, zone: Tz, date: NaiveDate) -> Option<&[DateTime<Utc>]> {
        Some(self.memo.instants(self.schedules, zone, date))
    }
}

/// One customer's pass over the local dates of `[start, end)`.
struct Walk {
    zone: Tz,
    start: DateTime<Utc>,
    /// `start` truncated to the whole second: a match there counts as `start`.
    floor: DateTime<Utc>,
    end: DateTime<Utc>,
    limit: usize,
    first: NaiveDate,
    last: NaiveDate,
}

impl Walk {
    fn new(zone: Tz, start: DateTime<Utc>, end: DateTime<Utc>, limit: usize) -> Self {
        let floor = start - Duration::nanoseconds(i64::from(start.nanosecond()));
        let date = |t: DateTime<Utc>| t.with_timezone(&zone).date_naive();
        // One spare date on each side: local dates of consecutive instants are ordered
        // except around a backward clock change, which moves them back by less than a day.
        Walk {
            zone,
            start,
            floor,
            end,
            limit,
            first: date(start).pred_opt().unwrap_or(NaiveDate::MIN),
            last: date(end).succ_opt().unwrap_or(NaiveDate::MAX),
        }
    }

    /// Append the matches in `[start, end)` of each date until `limit` are found plus one
    /// more date (later dates hold only later instants); `None` if `days` lacks a date.
    fn run(&self, days: &mut impl Days, out: &mut Vec<DateTime<Utc>>) -> Option<()> {
        let mut found = 0;
        let mut stop: Option<NaiveDate> = None;
        let mut date = self.first;
        loop {
            let day = days.day(self.zone, date)?;
            for &at in day {
                if at >= self.floor && at < self.end {
                    out.push(if at == self.floor { self.start } else { at });
                    found += 1;
                }
            }
            if stop.is_none() && found >= self.limit {
                stop = date.succ_opt();
            }
            if date >= self.last || Some(date) == stop {
                return Some(());
            }
            date = date.succ_opt()?;
        }
    }
}

#[cfg(test)]
mod tests;
