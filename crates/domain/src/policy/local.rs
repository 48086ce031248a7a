//! Local wall-clock time to instants, with the DST conventions the policy relies on.

use chrono::{
    DateTime, Duration, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone, Utc,
};
use chrono_tz::Tz;
use rustc_hash::FxHashMap;
use std::cell::Cell;
use std::sync::{LazyLock, RwLock};

use super::ruleset::Secs;

/// The earliest instant at which the wall clock in `tz` shows `date` + `secs` or later.
///
/// - A time that occurs once maps to that instant.
/// - A repeated time (fall back) maps to its *earlier* occurrence: a window end in the
///   overlap closes the window the first time the clock reaches it (compliance.md §4.4).
/// - A skipped time (spring forward) maps to the first instant after the gap.
/// - `secs` = 86,400 means midnight at the start of the next day.
pub fn earliest_at_or_after(tz: Tz, date: NaiveDate, secs: Secs) -> DateTime<Utc> {
    let (date, secs) = if secs >= 86_400 {
        (date.succ_opt().unwrap_or(date), 0)
    } else {
        (date, secs)
    };
    let mut local = date.and_time(NaiveTime::MIN) + Duration::seconds(i64::from(secs));
    // Rule times are whole minutes and gaps start and end on whole minutes (at most a few
    // hours long): step forward to the first valid minute.
    for _ in 0..=24 * 60 {
        if let Some(t) = tz.from_local_datetime(&local).earliest() {
            return t.with_timezone(&Utc);
        }
        local += Duration::minutes(1);
    }
    // Unreachable for real zones; read the wall time as UTC rather than panic.
    local.and_utc()
}

/// Start of local day `date` in `tz`.
///
/// Memoized per (zone, date) like [`local_date`] (deterministic, bounded).
pub fn start_of_day(tz: Tz, date: NaiveDate) -> DateTime<Utc> {
    let key = (tz, date);
    if let Some(at) = DAY_STARTS.read().ok().and_then(|m| m.get(&key).copied()) {
        return at;
    }
    let at = earliest_at_or_after(tz, date, 0);
    if let Ok(mut m) = DAY_STARTS.write() {
        if m.len() >= LOCAL_DATES_CAPACITY {
            m.clear();
        }
        m.insert(key, at);
    }
    at
}

/// A bounded memo keyed by zone and date.
type Memo<V> = LazyLock<RwLock<FxHashMap<(Tz, NaiveDate), V>>>;

static DAY_STARTS: Memo<DateTime<Utc>> = LazyLock::new(RwLock::default);

/// The local date of `t` in `tz`.
///
/// Memoized per (zone, UTC date): on a UTC day with one UTC offset throughout, the local
/// date takes at most two values, split at the start of the later local day, so one
/// comparison answers every instant of that day. Days on which the offset changes are
/// answered by chrono-tz directly. The memo is deterministic and bounded
/// ([`LOCAL_DATES_CAPACITY`] entries, then cleared).
pub fn local_date(tz: Tz, t: DateTime<Utc>) -> NaiveDate {
    match utc_day(tz, t) {
        UtcDay::Fixed {
            split: Some((at, later)),
            ..
        } if t >= at => later,
        UtcDay::Fixed { first, .. } => first,
        UtcDay::Transition => t.with_timezone(&tz).date_naive(),
    }
}

/// The local wall-clock time of `t` in `tz` (memoized like [`local_date`]).
pub fn local_datetime(tz: Tz, t: DateTime<Utc>) -> NaiveDateTime {
    match utc_day(tz, t) {
        UtcDay::Fixed { offset, .. } => t.with_timezone(&offset).naive_local(),
        UtcDay::Transition => t.with_timezone(&tz).naive_local(),
    }
}

fn utc_day(tz: Tz, t: DateTime<Utc>) -> UtcDay {
    thread_local! {
        // The last answer on this thread: consecutive lookups are mostly for the same day.
        static LAST: Cell<Option<((Tz, NaiveDate), UtcDay)>> = const { Cell::new(None) };
    }
    let key = (tz, t.date_naive());
    if let Some((k, day)) = LAST.get()
        && k == key
    {
        return day;
    }
    let day = shared_utc_day(key);
    LAST.set(Some((key, day)));
    day
}

fn shared_utc_day(key: (Tz, NaiveDate)) -> UtcDay {
    if let Some(day) = LOCAL_DATES.read().ok().and_then(|m| m.get(&key).copied()) {
        return day;
    }
    let day = UtcDay::compute(key.0, key.1);
    if let Ok(mut m) = LOCAL_DATES.write() {
        if m.len() >= LOCAL_DATES_CAPACITY {
            m.clear();
        }
        m.insert(key, day);
    }
    day
}

/// Most entries kept by each of the [`local_date`] and [`start_of_day`] memos.
pub const LOCAL_DATES_CAPACITY: usize = 100_000;

static LOCAL_DATES: Memo<UtcDay> = LazyLock::new(RwLock::default);

/// The local dates of one UTC day in one zone.
#[derive(Debug, Clone, Copy)]
enum UtcDay {
    /// One offset all day.
    Fixed {
        /// The offset all day.
        offset: FixedOffset,
        /// Local date at the UTC day's first instant.
        first: NaiveDate,
        /// Where the local date changes within the UTC day, and to what.
        split: Option<(DateTime<Utc>, NaiveDate)>,
    },
    /// The offset changes during the day: no shortcut.
    Transition,
}

impl UtcDay {
    fn compute(tz: Tz, utc: NaiveDate) -> Self {
        let start = utc.and_time(NaiveTime::MIN).and_utc().with_timezone(&tz);
        let end = (start + Duration::days(1) - Duration::nanoseconds(1)).with_timezone(&tz);
        let offset = start.offset().fix();
        if offset != end.offset().fix() {
            return UtcDay::Transition;
        }
        let (first, last) = (start.date_naive(), end.date_naive());
        let split = (last != first).then(|| (earliest_at_or_after(tz, last, 0), last));
        UtcDay::Fixed {
            offset,
            first,
            split,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::America::New_York;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn spring_forward_gap_maps_to_first_instant_after_it() {
        let d = NaiveDate::from_ymd_opt(2026, 3, 8).unwrap();
        // 02:30 does not exist; 03:00 EDT = 07:00Z.
        assert_eq!(
            earliest_at_or_after(New_York, d, 2 * 3600 + 1800),
            utc("2026-03-08T07:00:00Z")
        );
        assert_eq!(
            earliest_at_or_after(New_York, d, 8 * 3600),
            utc("2026-03-08T12:00:00Z")
        );
    }

    #[test]
    fn fall_back_overlap_maps_to_earlier_occurrence() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        // 01:30 happens at 05:30Z (EDT) and 06:30Z (EST).
        assert_eq!(
            earliest_at_or_after(New_York, d, 3600 + 1800),
            utc("2026-11-01T05:30:00Z")
        );
    }

    #[test]
    fn memoized_local_date_equals_chrono_tz_everywhere() {
        use chrono_tz::{America, Asia, Australia, Pacific};
        let zones = [
            New_York,
            America::Havana,
            America::St_Johns,
            Asia::Beirut,
            Asia::Kathmandu,
            Australia::Lord_Howe,
            Pacific::Apia, // skipped 2011-12-30 entirely
            Pacific::Guam,
        ];
        let starts = [
            "2011-12-28T00:00:00Z",
            "2026-03-06T00:00:00Z",
            "2026-10-23T00:00:00Z",
            "2026-10-30T00:00:00Z",
        ];
        for zone in zones {
            for start in starts {
                let mut t = utc(start);
                let end = t + Duration::days(5);
                while t < end {
                    assert_eq!(
                        local_datetime(zone, t),
                        t.with_timezone(&zone).naive_local(),
                        "{zone} {t}"
                    );
                    assert_eq!(
                        local_date(zone, t),
                        t.with_timezone(&zone).date_naive(),
                        "{zone} {t}"
                    );
                    t += Duration::seconds(397); // coprime with hours: visits every minute offset
                }
            }
        }
    }

    #[test]
    fn end_of_day_is_next_midnight() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        assert_eq!(
            earliest_at_or_after(New_York, d, 86_400),
            utc("2026-11-02T05:00:00Z")
        );
    }
}
