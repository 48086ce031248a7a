//! Holiday calendars: recurring holiday rules with per-calendar observed-date shifts,
//! expanded once at load into a sorted list of dates for fast lookups.

use chrono::{Datelike, Days, NaiveDate, Weekday};
use serde::Deserialize;

use super::ruleset::RulesetError;

/// First and last year for which holiday dates are expanded.
pub const YEARS: std::ops::RangeInclusive<i32> = 1990..=2100;

/// How a fixed-date holiday that falls on a weekend is observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ObservedShift {
    /// Observed on the date itself only.
    #[default]
    None,
    /// A Sunday holiday is also observed the following Monday.
    SunToMon,
    /// A Saturday holiday is also observed the Friday before, a Sunday one the Monday after
    /// (5 U.S.C. 6103(b); Ala. Code 1-3-8(a)).
    SatToFriSunToMon,
}

/// One recurring (or one-off) holiday as written in the rules file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HolidayDef {
    /// Human name, e.g. "Independence Day".
    pub name: String,
    /// `fixed:MM-DD`, `nth:N:DAY:MM` (N = 1..=4), `last:DAY:MM`, `easter:±N` or
    /// `date:YYYY-MM-DD` (a one-off proclamation). DAY is `mon` … `sun`.
    pub on: String,
    /// First date on which the holiday exists (e.g. Juneteenth from 2021).
    #[serde(default)]
    pub from: Option<NaiveDate>,
    /// First date on which it no longer exists.
    #[serde(default)]
    pub until: Option<NaiveDate>,
}

/// A calendar as written in the rules file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarDef {
    /// Identifier rules refer to, e.g. `US-RI`.
    pub id: String,
    /// Weekend shift for fixed-date holidays.
    #[serde(default)]
    pub observed: ObservedShift,
    /// Other calendars whose holidays are holidays here too.
    #[serde(default)]
    pub include: Vec<String>,
    /// The holidays.
    #[serde(default)]
    pub holidays: Vec<HolidayDef>,
    /// Where the list comes from.
    pub sources: Vec<String>,
    /// How far the list has been checked against the state's holiday statute.
    pub status: super::ruleset::Status,
    /// Free-text caveats.
    #[serde(default)]
    pub note: Option<String>,
}

/// A parsed holiday rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum When {
    Fixed { month: u32, day: u32 },
    Nth { n: u8, weekday: Weekday, month: u32 },
    Last { weekday: Weekday, month: u32 },
    Easter { offset: i64 },
    Once(NaiveDate),
}

/// A calendar expanded to concrete dates.
#[derive(Debug, Clone)]
pub struct Calendar {
    id: String,
    dates: Vec<NaiveDate>,
}

impl Calendar {
    /// Its identifier.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether `date` is a holiday (actual or observed) in this calendar.
    pub fn contains(&self, date: NaiveDate) -> bool {
        self.dates.binary_search(&date).is_ok()
    }

    /// All holiday dates in `[from, to)`, for previews and tests.
    pub fn between(&self, from: NaiveDate, to: NaiveDate) -> impl Iterator<Item = NaiveDate> + '_ {
        let start = self.dates.partition_point(|d| *d < from);
        self.dates[start..]
            .iter()
            .copied()
            .take_while(move |d| *d < to)
    }
}

/// Expand calendar definitions (resolving `include`) into calendars.
pub fn build(defs: &[CalendarDef]) -> Result<Vec<Calendar>, RulesetError> {
    let mut out = Vec::with_capacity(defs.len());
    for def in defs {
        if defs.iter().filter(|d| d.id == def.id).count() > 1 {
            return Err(RulesetError::Invalid(format!(
                "calendar {:?} is defined twice",
                def.id
            )));
        }
        if def.sources.is_empty() || def.sources.iter().any(|s| s.trim().is_empty()) {
            return Err(RulesetError::Invalid(format!(
                "calendar {:?} needs a source",
                def.id
            )));
        }
        let mut dates = Vec::new();
        let mut seen = Vec::new();
        collect(def, defs, &mut dates, &mut seen)?;
        dates.sort_unstable();
        dates.dedup();
        out.push(Calendar {
            id: def.id.clone(),
            dates,
        });
    }
    Ok(out)
}

fn collect(
    def: &CalendarDef,
    all: &[CalendarDef],
    dates: &mut Vec<NaiveDate>,
    seen: &mut Vec<String>,
) -> Result<(), RulesetError> {
    if seen.contains(&def.id) {
        return Err(RulesetError::Invalid(format!(
            "calendar {:?} includes itself",
            def.id
        )));
    }
    seen.push(def.id.clone());
    for h in &def.holidays {
        let when = parse_when(&h.on).map_err(|e| {
            RulesetError::Invalid(format!("calendar {:?} holiday {:?}: {e}", def.id, h.name))
        })?;
        for year in YEARS {
            let Some(date) = occurrence(when, year) else {
                continue;
            };
            let in_force = h.from.is_none_or(|f| date >= f) && h.until.is_none_or(|u| date < u);
            if !in_force {
                continue;
            }
            dates.push(date);
            if let When::Fixed { .. } = when {
                dates.extend(observed(date, def.observed));
            }
        }
    }
    for inc in &def.include {
        let Some(other) = all.iter().find(|d| &d.id == inc) else {
            return Err(RulesetError::Invalid(format!(
                "calendar {:?} includes unknown calendar {inc:?}",
                def.id
            )));
        };
        collect(other, all, dates, seen)?;
    }
    seen.pop();
    Ok(())
}

fn observed(date: NaiveDate, shift: ObservedShift) -> Option<NaiveDate> {
    match (shift, date.weekday()) {
        (ObservedShift::SunToMon | ObservedShift::SatToFriSunToMon, Weekday::Sun) => {
            date.checked_add_days(Days::new(1))
        }
        (ObservedShift::SatToFriSunToMon, Weekday::Sat) => date.checked_sub_days(Days::new(1)),
        _ => None,
    }
}

fn parse_weekday(s: &str) -> Result<Weekday, String> {
    s.parse::<Weekday>()
        .map_err(|_| format!("unknown weekday {s:?}"))
}

fn parse_month(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(m @ 1..=12) => Ok(m),
        _ => Err(format!("month {s:?} is not 01-12")),
    }
}

fn parse_when(spec: &str) -> Result<When, String> {
    let parts: Vec<&str> = spec.split(':').collect();
    match parts.as_slice() {
        ["fixed", md] => {
            let (m, d) = md
                .split_once('-')
                .ok_or_else(|| format!("{spec:?}: want MM-DD"))?;
            let month = parse_month(m)?;
            let day: u32 = d.parse().map_err(|_| format!("{spec:?}: bad day"))?;
            if month == 2 && day == 29 {
                // compliance.md §5 T20: a fixed Feb-29 holiday would silently vanish in
                // three years of four.
                return Err(format!("{spec:?}: a fixed holiday on 02-29 is rejected"));
            }
            // 2024 is a leap year, so this checks the day against the month's length.
            NaiveDate::from_ymd_opt(2024, month, day)
                .ok_or_else(|| format!("{spec:?}: no such day"))?;
            Ok(When::Fixed { month, day })
        }
        ["nth", n, wd, m] => {
            let n: u8 = match n.parse() {
                Ok(n @ 1..=4) => n,
                _ => return Err(format!("{spec:?}: N must be 1-4 (use last: for the last)")),
            };
            Ok(When::Nth {
                n,
                weekday: parse_weekday(wd)?,
                month: parse_month(m)?,
            })
        }
        ["last", wd, m] => Ok(When::Last {
            weekday: parse_weekday(wd)?,
            month: parse_month(m)?,
        }),
        ["easter", off] => {
            let offset: i64 = off
                .parse()
                .map_err(|_| format!("{spec:?}: bad day offset"))?;
            if offset.abs() > 70 {
                return Err(format!("{spec:?}: offset beyond ±70 days"));
            }
            Ok(When::Easter { offset })
        }
        ["date", d] => {
            let date = NaiveDate::parse_from_str(d, "%Y-%m-%d")
                .map_err(|_| format!("{spec:?}: want date:YYYY-MM-DD"))?;
            Ok(When::Once(date))
        }
        _ => Err(format!(
            "{spec:?}: want fixed:, nth:, last:, easter: or date:"
        )),
    }
}

fn occurrence(when: When, year: i32) -> Option<NaiveDate> {
    match when {
        When::Fixed { month, day } => NaiveDate::from_ymd_opt(year, month, day),
        When::Nth { n, weekday, month } => {
            NaiveDate::from_weekday_of_month_opt(year, month, weekday, n)
        }
        When::Last { weekday, month } => {
            let first_next = if month == 12 {
                NaiveDate::from_ymd_opt(year + 1, 1, 1)?
            } else {
                NaiveDate::from_ymd_opt(year, month + 1, 1)?
            };
            let last = first_next.pred_opt()?;
            let back =
                (7 + last.weekday().num_days_from_monday() - weekday.num_days_from_monday()) % 7;
            last.checked_sub_days(Days::new(u64::from(back)))
        }
        When::Easter { offset } => {
            let easter = easter_sunday(year)?;
            if offset >= 0 {
                easter.checked_add_days(Days::new(offset.unsigned_abs()))
            } else {
                easter.checked_sub_days(Days::new(offset.unsigned_abs()))
            }
        }
        When::Once(date) => (date.year() == year).then_some(date),
    }
}

/// Western (Gregorian) Easter Sunday, by the anonymous Gregorian computus.
fn easter_sunday(year: i32) -> Option<NaiveDate> {
    let a = year % 19;
    let b = year / 100;
    let c = year % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(year, u32::try_from(month).ok()?, u32::try_from(day).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::ruleset::Status;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn cal(observed: ObservedShift, on: &[&str]) -> Calendar {
        let def = CalendarDef {
            id: "T".into(),
            observed,
            include: vec![],
            holidays: on
                .iter()
                .map(|s| HolidayDef {
                    name: (*s).into(),
                    on: (*s).into(),
                    from: None,
                    until: None,
                })
                .collect(),
            sources: vec!["test".into()],
            status: Status::Verified,
            note: None,
        };
        build(&[def]).unwrap().remove(0)
    }

    #[test]
    fn easter_matches_known_dates() {
        assert_eq!(easter_sunday(2024), Some(d(2024, 3, 31)));
        assert_eq!(easter_sunday(2025), Some(d(2025, 4, 20)));
        assert_eq!(easter_sunday(2026), Some(d(2026, 4, 5)));
        assert_eq!(easter_sunday(2027), Some(d(2027, 3, 28)));
    }

    #[test]
    fn nth_and_last_weekday_rules() {
        let c = cal(
            ObservedShift::None,
            &["nth:4:thu:11", "last:mon:05", "nth:3:mon:01"],
        );
        assert!(c.contains(d(2026, 11, 26))); // Thanksgiving 2026
        assert!(c.contains(d(2026, 5, 25))); // Memorial Day 2026
        assert!(c.contains(d(2026, 1, 19))); // MLK Day 2026
        assert!(!c.contains(d(2026, 11, 19)));
    }

    #[test]
    fn weekend_fixed_holidays_shift_per_calendar_rule() {
        // 2026-07-04 is a Saturday; 2027-07-04 a Sunday.
        let both = cal(ObservedShift::SatToFriSunToMon, &["fixed:07-04"]);
        assert!(both.contains(d(2026, 7, 3)) && both.contains(d(2026, 7, 4)));
        assert!(both.contains(d(2027, 7, 5)) && both.contains(d(2027, 7, 4)));
        let sun_only = cal(ObservedShift::SunToMon, &["fixed:07-04"]);
        assert!(!sun_only.contains(d(2026, 7, 3)));
        assert!(sun_only.contains(d(2027, 7, 5)));
        let none = cal(ObservedShift::None, &["fixed:07-04"]);
        assert!(!none.contains(d(2027, 7, 5)));
    }

    #[test]
    fn fixed_feb_29_and_bad_specs_are_rejected() {
        for bad in [
            "fixed:02-29",
            "fixed:02-30",
            "fixed:13-01",
            "nth:5:mon:01",
            "weekly:mon",
            "easter:x",
        ] {
            assert!(parse_when(bad).is_err(), "{bad} accepted");
        }
        assert!(parse_when("date:2028-02-29").is_ok()); // a one-off leap-day proclamation is fine
    }

    #[test]
    fn includes_are_resolved_and_cycles_rejected() {
        let a = CalendarDef {
            id: "A".into(),
            observed: ObservedShift::None,
            include: vec!["B".into()],
            holidays: vec![],
            sources: vec!["test".into()],
            status: Status::Verified,
            note: None,
        };
        let mut b = a.clone();
        b.id = "B".into();
        b.include = vec![];
        b.holidays = vec![HolidayDef {
            name: "x".into(),
            on: "fixed:08-10".into(),
            from: None,
            until: None,
        }];
        let cals = build(&[a.clone(), b.clone()]).unwrap();
        assert!(cals[0].contains(d(2026, 8, 10)));
        b.include = vec!["A".into()];
        assert!(build(&[a, b]).is_err());
    }

    #[test]
    fn holidays_respect_their_effective_dates() {
        let def = CalendarDef {
            id: "F".into(),
            observed: ObservedShift::None,
            include: vec![],
            holidays: vec![HolidayDef {
                name: "Juneteenth".into(),
                on: "fixed:06-19".into(),
                from: Some(d(2021, 6, 17)),
                until: None,
            }],
            sources: vec!["test".into()],
            status: Status::Verified,
            note: None,
        };
        let c = build(&[def]).unwrap().remove(0);
        assert!(!c.contains(d(2020, 6, 19)));
        assert!(c.contains(d(2021, 6, 19)));
    }
}
