//! Local wall-clock time to instants, with the DST conventions the policy relies on.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

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
pub fn start_of_day(tz: Tz, date: NaiveDate) -> DateTime<Utc> {
    earliest_at_or_after(tz, date, 0)
}

/// The local date of `t` in `tz`.
pub fn local_date(tz: Tz, t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&tz).date_naive()
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
    fn end_of_day_is_next_midnight() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        assert_eq!(
            earliest_at_or_after(New_York, d, 86_400),
            utc("2026-11-02T05:00:00Z")
        );
    }
}
