//! Helpers shared by the policy integration tests: instants written in local wall-clock
//! time, contacts, and an oracle that re-derives lawfulness independently of the engine.
//!
//! The oracle works the naive way: it converts the instant to local wall-clock time in each
//! zone and compares local dates, weekdays and seconds-of-day with the rule's fields, and it
//! counts contacts by brute force. The engine works the other way round (it converts local
//! window bounds and day starts to UTC instants), so agreement between the two is evidence,
//! not tautology.
//!
//! Where the naive reading can differ from the engine's: a window bound that falls in a DST
//! gap or overlap, or a DST change within the guard band before a window end. Every bundled
//! rule time is between 07:30 and 21:00 and every zone the tests use changes its clocks
//! between 00:00 and 02:00 local (or never), so for the bundled ruleset the oracle is exact.
#![allow(dead_code)] // each test crate uses a different subset

use std::sync::LazyLock;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use outdial_domain::UsState;
use outdial_domain::policy::ruleset::{Counted, KeyPart, RuleMeta, WindowRule};
use outdial_domain::policy::{Contact, ContactKind, Ruleset, Subject};
use outdial_domain::task::Purpose;

/// The bundled ruleset, parsed once per test binary.
pub static BUNDLED: LazyLock<Ruleset> =
    LazyLock::new(|| Ruleset::bundled().expect("the bundled ruleset loads"));

/// Parse an RFC 3339 instant.
pub fn utc(s: &str) -> DateTime<Utc> {
    s.parse()
        .unwrap_or_else(|e| panic!("bad test instant {s:?}: {e}"))
}

/// The one instant at which the wall clock in `tz` shows `local` (`YYYY-MM-DD HH:MM` or
/// `YYYY-MM-DD HH:MM:SS`). Panics on a skipped or repeated local time: write those cases
/// in UTC.
pub fn at(tz: Tz, local: &str) -> DateTime<Utc> {
    let naive = NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M"))
        .unwrap_or_else(|e| panic!("bad local time {local:?}: {e}"));
    tz.from_local_datetime(&naive)
        .single()
        .unwrap_or_else(|| panic!("{local} is skipped or repeated in {tz}"))
        .with_timezone(&Utc)
}

/// A calendar date.
pub fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_else(|e| panic!("bad date {s:?}: {e}"))
}

/// A contact about `debt` on an unknown number.
pub fn contact(at: DateTime<Utc>, debt: Option<&str>, kind: ContactKind) -> Contact {
    Contact {
        at,
        debt: debt.map(str::to_owned),
        number: None,
        kind,
    }
}

/// A contact about `debt` on `number`.
pub fn contact_on(
    at: DateTime<Utc>,
    debt: Option<&str>,
    number: Option<&str>,
    kind: ContactKind,
) -> Contact {
    Contact {
        at,
        debt: debt.map(str::to_owned),
        number: number.map(str::to_owned),
        kind,
    }
}

/// Whether `tz` changes its UTC offset during local `date` (a DST transition day).
pub fn is_transition_day(tz: Tz, date: NaiveDate) -> bool {
    let midnight = tz.from_local_datetime(&date.and_hms_opt(0, 0, 0).expect("midnight"));
    let late = tz.from_local_datetime(&date.and_hms_opt(23, 59, 0).expect("23:59"));
    match (midnight.single(), late.single()) {
        (Some(a), Some(b)) => a.offset() != b.offset(),
        _ => true,
    }
}

// ---------------------------------------------------------------------------------------
// The oracle
// ---------------------------------------------------------------------------------------

/// A customer as the oracle sees it.
#[derive(Debug, Clone, Copy)]
pub struct Oracle<'a> {
    /// The ruleset whose data (not code) is interpreted.
    pub set: &'a Ruleset,
    /// Candidate zones.
    pub zones: &'a [Tz],
    /// Candidate states.
    pub states: &'a [UsState],
    /// The call's purpose.
    pub purpose: Purpose,
}

fn binds(meta: &RuleMeta, purpose: Purpose, states: &[UsState]) -> bool {
    let purpose_ok = meta.purposes.contains(&purpose);
    let state_ok = meta.states.is_empty() || states.iter().any(|s| meta.states.contains(s));
    purpose_ok && state_ok
}

fn in_force(meta: &RuleMeta, d: NaiveDate) -> bool {
    let after_from = match meta.effective_from {
        Some(f) => d >= f,
        None => true,
    };
    let before_until = match meta.effective_until {
        Some(u) => d < u,
        None => true,
    };
    after_from && before_until
}

fn counts(what: Counted, kind: ContactKind) -> bool {
    match what {
        Counted::Attempts => true,
        Counted::ConnectedAttempts => !matches!(kind, ContactKind::NotConnected),
        Counted::Conversations => matches!(kind, ContactKind::Conversation),
    }
}

/// Unknown on either side may be the same one: it matches (conservative).
fn same(a: Option<&str>, b: Option<&str>) -> bool {
    !matches!((a, b), (Some(x), Some(y)) if x != y)
}

fn key_matches(key: &[KeyPart], c: &Contact, subject: &Subject<'_>) -> bool {
    key.iter().all(|part| match part {
        KeyPart::Person => true,
        KeyPart::Debt => same(c.debt.as_deref(), subject.debt),
        KeyPart::Number => same(c.number.as_deref(), subject.number),
    })
}

/// Local calendar days from `a`'s date to `b`'s date in `tz` (same date = 0).
fn day_gap(tz: Tz, a: DateTime<Utc>, b: DateTime<Utc>) -> i64 {
    (b.with_timezone(&tz).date_naive() - a.with_timezone(&tz).date_naive()).num_days()
}

impl Oracle<'_> {
    /// Why window rule `w` forbids a dial at `t` in `zone`, if it does.
    pub fn window_violation(&self, w: &WindowRule, zone: Tz, t: DateTime<Utc>) -> Option<String> {
        let local = t.with_timezone(&zone);
        let d = local.date_naive();
        if !in_force(&w.meta, d) {
            return None;
        }
        let id = &w.meta.id;
        if w.holidays
            .is_some_and(|c| self.set.calendars[c].contains(d))
        {
            return Some(format!("{id}: {d} is a holiday in {zone}"));
        }
        let Some((start, end)) = w.hours[d.weekday().num_days_from_monday() as usize] else {
            return Some(format!("{id}: closed on {} in {zone}", d.weekday()));
        };
        let secs = i64::from(local.num_seconds_from_midnight());
        let last = i64::from(end) - self.set.end_margin().num_seconds();
        if secs < i64::from(start) || secs >= last {
            return Some(format!(
                "{id}: {} is outside the window in {zone}",
                local.time()
            ));
        }
        None
    }

    /// Zones a window rule is checked in: the candidates plus the rule's extra zones.
    pub fn window_zones(&self, w: &WindowRule) -> Vec<Tz> {
        let mut zones = self.zones.to_vec();
        for z in &w.extra_zones {
            if !zones.contains(z) {
                zones.push(*z);
            }
        }
        zones
    }

    /// Every reason a dial at `t` is unlawful, from the window rules only.
    pub fn window_violations(&self, t: DateTime<Utc>) -> Vec<String> {
        if self.zones.is_empty() {
            return vec!["no candidate zone".to_owned()];
        }
        let mut out = Vec::new();
        for w in self
            .set
            .windows
            .iter()
            .filter(|w| binds(&w.meta, self.purpose, self.states))
        {
            for zone in self.window_zones(w) {
                out.extend(self.window_violation(w, zone, t));
            }
        }
        out
    }

    /// Every reason a dial at `t` is unlawful (empty = lawful). Contacts after `t` are ignored.
    pub fn violations(
        &self,
        t: DateTime<Utc>,
        subject: &Subject<'_>,
        history: &[Contact],
    ) -> Vec<String> {
        let mut out = self.window_violations(t);
        if self.zones.is_empty() {
            return out;
        }
        // A cap or cooldown binds if it is in force on t's local date in any candidate zone.
        let in_force_somewhere = |m: &RuleMeta| {
            self.zones
                .iter()
                .any(|z| in_force(m, t.with_timezone(z).date_naive()))
        };
        for cap in
            self.set.caps.iter().filter(|c| {
                binds(&c.meta, self.purpose, self.states) && in_force_somewhere(&c.meta)
            })
        {
            let counted: Vec<&Contact> = history
                .iter()
                .filter(|c| c.at <= t && counts(cap.count, c.kind))
                .filter(|c| key_matches(&cap.key, c, subject))
                .collect();
            let max = cap.max as usize;
            if let Some(w) = cap.span.rolling {
                let n = counted.iter().filter(|c| t - c.at < w).count();
                if n >= max {
                    out.push(format!("{}: {n} contacts within {w}", cap.meta.id));
                }
            }
            if let Some(days) = cap.span.local_days {
                for &zone in self.zones {
                    let n = counted
                        .iter()
                        .filter(|c| day_gap(zone, c.at, t) < i64::from(days))
                        .count();
                    if n >= max {
                        out.push(format!(
                            "{}: {n} contacts within {days} local days in {zone}",
                            cap.meta.id
                        ));
                    }
                }
            }
        }
        for cd in
            self.set.cooldowns.iter().filter(|c| {
                binds(&c.meta, self.purpose, self.states) && in_force_somewhere(&c.meta)
            })
        {
            for e in history
                .iter()
                .filter(|c| c.at <= t && counts(cd.after, c.kind))
                .filter(|c| key_matches(&cd.key, c, subject))
            {
                if cd.span.rolling.is_some_and(|w| t - e.at < w) {
                    out.push(format!(
                        "{}: within {:?} of {}",
                        cd.meta.id, cd.span.rolling, e.at
                    ));
                }
                if let Some(days) = cd.span.local_days {
                    for &zone in self.zones {
                        if day_gap(zone, e.at, t) < i64::from(days) {
                            out.push(format!(
                                "{}: local day {} of {days} after {} in {zone}",
                                cd.meta.id,
                                day_gap(zone, e.at, t) + 1,
                                e.at
                            ));
                        }
                    }
                }
            }
        }
        out
    }

    /// Whether a dial at `t` is lawful.
    pub fn lawful(&self, t: DateTime<Utc>, subject: &Subject<'_>, history: &[Contact]) -> bool {
        self.violations(t, subject, history).is_empty()
    }
}
