//! The rules file's schema and its compilation into validated rules.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{Duration, NaiveDate, Weekday};
use chrono_tz::Tz;
use serde::Deserialize;

use super::{
    Calendar, CalendarDef, CapRule, CooldownRule, Counted, KeyPart, RuleMeta, RulesetError, Secs,
    Span, Status, WindowRule,
};
use crate::task::Purpose;
use crate::us_state::UsState;

// ---------------------------------------------------------------------------------------
// File schema
// ---------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct File {
    pub(super) meta: MetaDef,
    pub(super) operational: OperationalDef,
    #[serde(default, rename = "calendar")]
    pub(super) calendars: Vec<CalendarDef>,
    #[serde(default, rename = "rule")]
    pub(super) rules: Vec<RuleDef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MetaDef {
    pub(super) version: String,
    #[serde(default)]
    pub(super) description: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OperationalDef {
    pub(super) guard_before_end: String,
    pub(super) max_ring: String,
    pub(super) search_horizon: String,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum HoursDef {
    Span([String; 2]),
    Closed(String),
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(super) enum KindDef {
    Window,
    Cap,
    Cooldown,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RuleDef {
    pub(super) id: String,
    pub(super) kind: KindDef,
    pub(super) title: String,
    pub(super) purposes: Vec<Purpose>,
    #[serde(default)]
    pub(super) states: Vec<String>,
    pub(super) sources: Vec<String>,
    pub(super) status: Status,
    #[serde(default)]
    pub(super) note: Option<String>,
    #[serde(default)]
    pub(super) effective_from: Option<NaiveDate>,
    #[serde(default)]
    pub(super) effective_until: Option<NaiveDate>,
    // window
    #[serde(default)]
    pub(super) hours: Option<BTreeMap<String, HoursDef>>,
    #[serde(default)]
    pub(super) holidays: Option<String>,
    #[serde(default)]
    pub(super) extra_zones: Vec<String>,
    // cap / cooldown
    #[serde(default)]
    pub(super) key: Vec<KeyPart>,
    #[serde(default)]
    pub(super) count: Option<Counted>,
    #[serde(default)]
    pub(super) max: Option<u32>,
    #[serde(default)]
    pub(super) rolling: Option<String>,
    #[serde(default)]
    pub(super) local_days: Option<u32>,
}

pub(super) fn invalid(msg: impl Into<String>) -> RulesetError {
    RulesetError::Invalid(msg.into())
}

pub(super) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

pub(super) fn duration(field: &str, s: &str) -> Result<Duration, RulesetError> {
    let std = humantime::parse_duration(s).map_err(|e| invalid(format!("{field}: {s:?}: {e}")))?;
    Duration::from_std(std).map_err(|_| invalid(format!("{field}: {s:?} is too long")))
}

pub(super) fn meta(def: &RuleDef) -> Result<RuleMeta, RulesetError> {
    let id = def.id.trim();
    if id.is_empty() || id.len() > 80 || id.contains(char::is_whitespace) {
        return Err(invalid(format!(
            "rule id {:?} must be 1-80 characters without spaces",
            def.id
        )));
    }
    let err = |msg: &str| invalid(format!("rule {id}: {msg}"));
    if def.title.trim().is_empty() {
        return Err(err("has no title"));
    }
    if def.sources.is_empty() || def.sources.iter().any(|s| s.trim().is_empty()) {
        return Err(err("every rule needs at least one non-empty source"));
    }
    if def.purposes.is_empty() {
        return Err(err("names no purpose"));
    }
    let mut states = Vec::with_capacity(def.states.len());
    for s in &def.states {
        // Strict: the file must use canonical upper-case codes.
        let state = UsState::from_str(s)
            .ok()
            .filter(|st| st.code() == s)
            .ok_or_else(|| err(&format!("unknown state code {s:?}")))?;
        states.push(state);
    }
    if let (Some(f), Some(u)) = (def.effective_from, def.effective_until)
        && f >= u
    {
        return Err(err("effective_from must be before effective_until"));
    }
    Ok(RuleMeta {
        id: Arc::from(id),
        title: def.title.clone(),
        purposes: def.purposes.clone(),
        states,
        sources: def.sources.clone(),
        status: def.status,
        effective_from: def.effective_from,
        effective_until: def.effective_until,
        note: def.note.clone(),
    })
}

pub(super) fn only_window_fields(def: &RuleDef) -> bool {
    def.key.is_empty()
        && def.count.is_none()
        && def.max.is_none()
        && def.rolling.is_none()
        && def.local_days.is_none()
}

pub(super) fn window(
    index: usize,
    def: &RuleDef,
    meta: RuleMeta,
    calendars: &[Calendar],
    margin: Duration,
) -> Result<WindowRule, RulesetError> {
    let id = meta.id.clone();
    let err = |msg: String| invalid(format!("rule {id}: {msg}"));
    if !only_window_fields(def) {
        return Err(err(
            "a window rule takes hours, holidays and extra_zones only".into(),
        ));
    }
    let Some(hours_def) = &def.hours else {
        return Err(err("a window rule needs hours".into()));
    };
    let mut hours: [Option<Option<(Secs, Secs)>>; 7] = [None; 7];
    for (days, spec) in hours_def {
        let set = day_set(days).ok_or_else(|| err(format!("unknown day set {days:?}")))?;
        let span = match spec {
            HoursDef::Closed(s) if s == "closed" => None,
            HoursDef::Closed(s) => {
                return Err(err(format!(
                    "{days}: {s:?} is neither [start, end] nor \"closed\""
                )));
            }
            HoursDef::Span([a, b]) => {
                let (start, end) = (clock_time(a).map_err(&err)?, clock_time(b).map_err(&err)?);
                if end <= start {
                    return Err(err(format!(
                        "{days}: window {a}-{b} is empty or overnight (outbound windows must end after they start)"
                    )));
                }
                if i64::from(end - start) <= margin.num_seconds() {
                    return Err(err(format!(
                        "{days}: window {a}-{b} is shorter than the guard band"
                    )));
                }
                Some((start, end))
            }
        };
        for wd in set {
            let slot = &mut hours[wd.num_days_from_monday() as usize];
            if slot.is_some() {
                return Err(err(format!("{wd} is given hours twice")));
            }
            *slot = Some(span);
        }
    }
    let mut out = [None; 7];
    for (i, slot) in hours.iter().enumerate() {
        match slot {
            Some(span) => out[i] = *span,
            None => {
                return Err(err(format!(
                    "weekday {} has no hours (write \"closed\")",
                    i + 1
                )));
            }
        }
    }
    let holidays = match &def.holidays {
        None => None,
        Some(cid) => Some(
            calendars
                .iter()
                .position(|c| c.id() == cid)
                .ok_or_else(|| err(format!("unknown holiday calendar {cid:?}")))?,
        ),
    };
    let mut extra_zones = Vec::new();
    for z in &def.extra_zones {
        extra_zones.push(
            z.parse::<Tz>()
                .map_err(|_| err(format!("unknown time zone {z:?}")))?,
        );
    }
    Ok(WindowRule {
        index,
        meta,
        hours: out,
        holidays,
        extra_zones,
    })
}

pub(super) fn span(def: &RuleDef, id: &str) -> Result<Span, RulesetError> {
    let rolling = def
        .rolling
        .as_deref()
        .map(|s| duration(&format!("rule {id}: rolling"), s))
        .transpose()?;
    if rolling.is_some_and(|r| r <= Duration::zero()) {
        return Err(invalid(format!("rule {id}: rolling must be positive")));
    }
    if def.local_days == Some(0) {
        return Err(invalid(format!("rule {id}: local_days must be at least 1")));
    }
    if rolling.is_none() && def.local_days.is_none() {
        return Err(invalid(format!(
            "rule {id}: needs rolling, local_days or both"
        )));
    }
    Ok(Span {
        rolling,
        local_days: def.local_days,
    })
}

pub(super) fn no_window_fields(def: &RuleDef) -> bool {
    def.hours.is_none() && def.holidays.is_none() && def.extra_zones.is_empty()
}

pub(super) fn cap(def: &RuleDef, meta: RuleMeta) -> Result<CapRule, RulesetError> {
    let id = meta.id.clone();
    if !no_window_fields(def) {
        return Err(invalid(format!(
            "rule {id}: a cap takes key, count, max, rolling, local_days"
        )));
    }
    let count = def
        .count
        .ok_or_else(|| invalid(format!("rule {id}: a cap needs count")))?;
    let max = def
        .max
        .filter(|m| *m >= 1)
        .ok_or_else(|| invalid(format!("rule {id}: a cap needs max >= 1")))?;
    Ok(CapRule {
        span: span(def, &id)?,
        key: def.key.clone(),
        count,
        max,
        meta,
    })
}

pub(super) fn cooldown(def: &RuleDef, meta: RuleMeta) -> Result<CooldownRule, RulesetError> {
    let id = meta.id.clone();
    if !no_window_fields(def) || def.max.is_some() {
        return Err(invalid(format!(
            "rule {id}: a cooldown takes key, count, rolling, local_days"
        )));
    }
    let after = def
        .count
        .ok_or_else(|| invalid(format!("rule {id}: a cooldown needs count (the event)")))?;
    Ok(CooldownRule {
        span: span(def, &id)?,
        key: def.key.clone(),
        after,
        meta,
    })
}

pub(super) fn day_set(name: &str) -> Option<Vec<Weekday>> {
    use Weekday::*;
    Some(match name {
        "all" => vec![Mon, Tue, Wed, Thu, Fri, Sat, Sun],
        "mon_fri" => vec![Mon, Tue, Wed, Thu, Fri],
        "mon_sat" => vec![Mon, Tue, Wed, Thu, Fri, Sat],
        "sat_sun" => vec![Sat, Sun],
        one => vec![one.parse::<Weekday>().ok().filter(|_| one.len() == 3)?],
    })
}

/// `HH:MM` to seconds of day; `24:00` is allowed as an end.
pub(super) fn clock_time(s: &str) -> Result<Secs, String> {
    let bad = || format!("time {s:?} is not HH:MM");
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if m >= 60 || h > 24 || (h == 24 && m != 0) {
        return Err(bad());
    }
    Ok(h * 3600 + m * 60)
}
