//! Consumer-designated inconvenient times (Reg F comment 6(b)(1)-1; compliance.md T21): a
//! consumer who says "don't call me before 18:00" or "not on Saturdays" has named times the
//! collector knows to be inconvenient. They are honoured like statutory windows: in every
//! candidate zone, with the blocking span and its end in the decision.

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, Timelike, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::local::{earliest_at_or_after, local_datetime};

/// Rule id reported for a consumer-designated inconvenient time.
pub const DESIGNATED_RULE: &str = "consumer.designated.inconvenient";

/// A span of local time the consumer said is inconvenient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Inconvenient {
    /// Days it applies to (`"Mon"` … `"Sun"`); empty means every day.
    #[serde(default)]
    pub days: Vec<Weekday>,
    /// Start of the span, local time.
    pub from: NaiveTime,
    /// End of the span (exclusive), local time; after `from` (write two spans for
    /// "before 9:00 or after 20:00").
    pub until: NaiveTime,
}

/// A designation that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an inconvenient span must end after it starts ({from} - {until})")]
pub struct EmptySpan {
    /// The start given.
    pub from: NaiveTime,
    /// The end given.
    pub until: NaiveTime,
}

impl Inconvenient {
    /// Check the span is non-empty.
    pub fn validate(&self) -> Result<(), EmptySpan> {
        if self.until > self.from {
            Ok(())
        } else {
            Err(EmptySpan {
                from: self.from,
                until: self.until,
            })
        }
    }

    /// If `t` falls in this span in `zone`, the instant the span ends.
    pub fn blocks(&self, zone: Tz, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = local_datetime(zone, t);
        let date: NaiveDate = local.date();
        let applies = self.days.is_empty() || self.days.contains(&date.weekday());
        let time = local.time();
        (applies && time >= self.from && time < self.until)
            .then(|| earliest_at_or_after(zone, date, self.until.num_seconds_from_midnight()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::UsState;
    use crate::policy::{Candidates, Decision, Reason, Ruleset, Subject};
    use crate::task::Purpose;
    use chrono_tz::America;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn not_before_six() -> Inconvenient {
        Inconvenient {
            days: vec![],
            from: NaiveTime::MIN,
            until: NaiveTime::from_hms_opt(18, 0, 0).unwrap(),
        }
    }

    #[test]
    fn dont_call_before_six_pm_is_honoured_with_the_next_lawful_instant() {
        let set = Ruleset::bundled().unwrap();
        let c = Candidates::explicit(&[America::New_York], &[UsState::NY]);
        let p = set
            .prepare(&c, Purpose::Collection)
            .with_designations(vec![not_before_six()])
            .unwrap();
        let s = Subject::default();
        // Monday 2026-11-23 10:00 EST: inside the designated span.
        let d = p.decide(utc("2026-11-23T15:00:00Z"), &s, &[]);
        let Decision::Deny {
            blocks,
            next_allowed,
            ..
        } = &d
        else {
            panic!("{d:?}")
        };
        assert_eq!(*next_allowed, Some(utc("2026-11-23T23:00:00Z"))); // 18:00 EST
        assert!(
            blocks
                .iter()
                .any(|b| b.reason == Reason::ConsumerDesignated && &*b.rule == DESIGNATED_RULE)
        );
        assert!(p.allows(utc("2026-11-23T23:30:00Z"), &s, &[]));
    }

    #[test]
    fn designations_hold_in_every_candidate_zone_and_only_on_their_days() {
        let set = Ruleset::bundled().unwrap();
        let c = Candidates::explicit(&[America::New_York, America::Chicago], &[]);
        let span = Inconvenient {
            days: vec![Weekday::Mon],
            ..not_before_six()
        };
        let p = set
            .prepare(&c, Purpose::Collection)
            .with_designations(vec![span])
            .unwrap();
        let s = Subject::default();
        // Monday 18:30 EST is 17:30 CST: still inside the span in Chicago.
        assert!(!p.allows(utc("2026-11-23T23:30:00Z"), &s, &[]));
        assert!(p.allows(utc("2026-11-24T00:30:00Z"), &s, &[])); // 19:30 EST / 18:30 CST
        // Tuesday morning is not designated.
        assert!(p.allows(utc("2026-11-24T15:00:00Z"), &s, &[]));
    }

    #[test]
    fn an_empty_span_is_rejected() {
        let set = Ruleset::bundled().unwrap();
        let c = Candidates::explicit(&[America::New_York], &[]);
        let bad = Inconvenient {
            days: vec![],
            from: NaiveTime::from_hms_opt(20, 0, 0).unwrap(),
            until: NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
        };
        assert!(
            set.prepare(&c, Purpose::Collection)
                .with_designations(vec![bad])
                .is_err()
        );
    }
}
