//! Cadences: how a task type's calls are spread over time, in the customer's local time.

use std::str::FromStr;

use chrono::{Duration, NaiveDateTime};
use serde::{Deserialize, Serialize};

use super::slots::CronSlots;
use crate::task::ScheduleType;

/// A cadence that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CadenceError {
    /// A cron expression does not parse.
    #[error("cron expression {expr:?} is invalid: {reason}")]
    Cron {
        /// The expression.
        expr: String,
        /// The parser's message.
        reason: String,
    },
    /// A duration field does not parse or is out of range.
    #[error("{field}: {reason}")]
    Field {
        /// The field's JSON name.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// Retry spacing after an unsuccessful attempt, applied by the worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryDef {
    /// After no answer, e.g. `"4h"`.
    pub no_answer: String,
    /// After a busy signal, e.g. `"30m"`.
    pub busy: String,
    /// After voicemail, e.g. `"1d"`.
    pub voicemail: String,
}

/// A cadence as written in company configuration or a `custom` schedule request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CadenceDef {
    /// Cron expressions (`sec min hour day-of-month month day-of-week [year]`, the `cron`
    /// crate's syntax) evaluated in the customer's own time zone.
    #[serde(default)]
    pub cron: Vec<String>,
    /// Explicit local date-times (`2026-11-23T10:30:00`) in the customer's time zone.
    #[serde(default)]
    pub local_times: Vec<NaiveDateTime>,
    /// Place the first attempt at the next lawful instant.
    #[serde(default)]
    pub first_asap: bool,
    /// How far ahead calls are planned, e.g. `"21d"`.
    pub horizon: String,
    /// At most this many planned attempts.
    pub max_attempts: u32,
    /// Minimum spacing between two planned attempts, e.g. `"2h"`.
    #[serde(default = "default_min_gap")]
    pub min_gap: String,
    /// Retry spacing used by the worker after no answer, busy or voicemail.
    pub retry: RetryDef,
}

fn default_min_gap() -> String {
    "1h".into()
}

/// Retry spacing, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetrySpacing {
    /// After no answer.
    pub no_answer: Duration,
    /// After busy.
    pub busy: Duration,
    /// After voicemail.
    pub voicemail: Duration,
}

impl RetrySpacing {
    /// The retry spacing of a definition, parsed without the rest of it (the worker needs
    /// only this and `max_attempts` when a call ends; [`Cadence::parse`] checks it too).
    pub fn of(def: &CadenceDef) -> Result<Self, CadenceError> {
        Ok(RetrySpacing {
            no_answer: duration("retry.noAnswer", &def.retry.no_answer)?,
            busy: duration("retry.busy", &def.retry.busy)?,
            voicemail: duration("retry.voicemail", &def.retry.voicemail)?,
        })
    }
}

/// A validated cadence.
#[derive(Debug, Clone)]
pub struct Cadence {
    /// Cron schedules in customer-local time, with the memo of their matches.
    pub crons: CronSlots,
    /// Explicit customer-local times.
    pub local_times: Vec<NaiveDateTime>,
    /// First attempt as soon as lawful.
    pub first_asap: bool,
    /// Planning horizon.
    pub horizon: Duration,
    /// Maximum planned attempts.
    pub max_attempts: u32,
    /// Minimum spacing between planned attempts.
    pub min_gap: Duration,
    /// Retry spacing for the worker.
    pub retry: RetrySpacing,
}

/// The most attempts one schedule may plan.
pub const MAX_ATTEMPTS: u32 = 200;
/// The longest planning horizon.
pub const MAX_HORIZON_DAYS: i64 = 120;

impl Cadence {
    /// Validate a definition.
    pub fn parse(def: &CadenceDef) -> Result<Self, CadenceError> {
        let crons = def
            .cron
            .iter()
            .map(|expr| {
                cron::Schedule::from_str(expr).map_err(|e| CadenceError::Cron {
                    expr: expr.clone(),
                    reason: e.to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if crons.is_empty() && def.local_times.is_empty() && !def.first_asap {
            return Err(field(
                "cron",
                "give cron expressions, localTimes or firstAsap",
            ));
        }
        if def.cron.len() > 20
            || def.local_times.len() > usize::try_from(MAX_ATTEMPTS).unwrap_or(200)
        {
            return Err(field(
                "cron",
                "at most 20 cron expressions and 200 local times",
            ));
        }
        let horizon = duration("horizon", &def.horizon)?;
        if horizon > Duration::days(MAX_HORIZON_DAYS) || horizon < Duration::hours(1) {
            return Err(field(
                "horizon",
                &format!("must be between 1h and {MAX_HORIZON_DAYS}d"),
            ));
        }
        if def.max_attempts == 0 || def.max_attempts > MAX_ATTEMPTS {
            return Err(field("maxAttempts", &format!("must be 1-{MAX_ATTEMPTS}")));
        }
        let min_gap = duration("minGap", &def.min_gap)?;
        if min_gap < Duration::minutes(1) {
            return Err(field("minGap", "must be at least 1m"));
        }
        let retry = RetrySpacing::of(def)?;
        Ok(Cadence {
            crons: CronSlots::new(crons),
            local_times: def.local_times.clone(),
            first_asap: def.first_asap,
            horizon,
            max_attempts: def.max_attempts,
            min_gap,
            retry,
        })
    }

    /// The built-in cadence for a schedule type (`custom` has none: the company or the
    /// request supplies it).
    pub fn default_def(kind: ScheduleType) -> Option<CadenceDef> {
        let retry = |no_answer: &str, busy: &str, voicemail: &str| RetryDef {
            no_answer: no_answer.into(),
            busy: busy.into(),
            voicemail: voicemail.into(),
        };
        match kind {
            // First attempt at the next lawful instant, then late morning and early
            // evening on the following days (Mon-Sat).
            ScheduleType::Verification => Some(CadenceDef {
                cron: vec!["0 0 11,17 * * Mon-Sat".into()],
                local_times: vec![],
                first_asap: true,
                horizon: "4d".into(),
                max_attempts: 6,
                min_gap: "2h".into(),
                retry: retry("2h", "20m", "4h"),
            }),
            // Two attempts per weekday (09:00 and 16:00 local) for three weeks; Reg F's
            // 7-in-7 cap and state caps thin it out during expansion.
            ScheduleType::Collections => Some(CadenceDef {
                cron: vec!["0 0 9,16 * * Mon-Fri".into()],
                local_times: vec![],
                first_asap: false,
                horizon: "21d".into(),
                max_attempts: 21,
                min_gap: "3h".into(),
                retry: retry("4h", "30m", "1d"),
            }),
            ScheduleType::Custom => None,
        }
    }
}

fn field(name: &'static str, reason: &str) -> CadenceError {
    CadenceError::Field {
        field: name,
        reason: reason.into(),
    }
}

fn duration(name: &'static str, s: &str) -> Result<Duration, CadenceError> {
    let std = humantime::parse_duration(s).map_err(|e| field(name, &format!("{s:?}: {e}")))?;
    Duration::from_std(std).map_err(|_| field(name, &format!("{s:?} is too long")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_cadences_parse() {
        for kind in [ScheduleType::Verification, ScheduleType::Collections] {
            let def = Cadence::default_def(kind).unwrap();
            Cadence::parse(&def).unwrap();
        }
        assert!(Cadence::default_def(ScheduleType::Custom).is_none());
    }

    #[test]
    fn bad_cadences_name_the_field() {
        let mut def = Cadence::default_def(ScheduleType::Collections).unwrap();
        def.cron = vec!["every day at nine".into()];
        assert!(matches!(
            Cadence::parse(&def),
            Err(CadenceError::Cron { .. })
        ));
        let mut def = Cadence::default_def(ScheduleType::Collections).unwrap();
        def.horizon = "365d".into();
        assert!(matches!(
            Cadence::parse(&def),
            Err(CadenceError::Field {
                field: "horizon",
                ..
            })
        ));
        let mut def = Cadence::default_def(ScheduleType::Collections).unwrap();
        def.max_attempts = 0;
        assert!(matches!(
            Cadence::parse(&def),
            Err(CadenceError::Field {
                field: "maxAttempts",
                ..
            })
        ));
        let mut def = Cadence::default_def(ScheduleType::Collections).unwrap();
        def.cron.clear();
        assert!(matches!(
            Cadence::parse(&def),
            Err(CadenceError::Field { field: "cron", .. })
        ));
    }

    #[test]
    fn custom_cadence_deserializes_from_json() {
        let def: CadenceDef = serde_json::from_str(
            r#"{"localTimes":["2026-11-23T10:30:00"],"horizon":"7d","maxAttempts":3,
                "retry":{"noAnswer":"4h","busy":"30m","voicemail":"1d"}}"#,
        )
        .unwrap();
        let c = Cadence::parse(&def).unwrap();
        assert_eq!(c.local_times.len(), 1);
        assert_eq!(c.min_gap, Duration::hours(1));
    }
}
