//! The calling ruleset: a versioned TOML file (`rules/us.toml`) parsed and validated into
//! compiled rules. Validation follows compliance.md §4 and §5 T26: every rule has a source
//! and a status; unknown state codes, empty or overnight windows, gaps or overlaps in a
//! weekly schedule, unknown calendars and fixed Feb-29 holidays are rejected.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{Duration, NaiveDate, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::calendar::{self, Calendar, CalendarDef};
use super::window::DayCache;
use crate::task::Purpose;
use crate::us_state::UsState;

/// The ruleset shipped with outdial.
pub const BUNDLED_US: &str = include_str!("../../../../rules/us.toml");

/// A ruleset that cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum RulesetError {
    /// The file is not valid TOML or does not match the schema.
    #[error("ruleset does not parse: {0}")]
    Parse(#[from] toml::de::Error),
    /// The file parses but breaks a validation rule.
    #[error("ruleset is invalid: {0}")]
    Invalid(String),
}

/// How far a source has been checked (compliance.md status legend).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Operative text read.
    Verified,
    /// Read only in a secondary summary.
    Secondary,
    /// From memory or inference; a lead, not a fact.
    Unverified,
}

/// Options for loading a ruleset.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions {
    /// Leave out rules whose status is `unverified` (compliance.md §5 T26). Off by default:
    /// an unverified rule is stricter than no rule.
    pub exclude_unverified: bool,
}

// ---------------------------------------------------------------------------------------
// File schema
// ---------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    meta: MetaDef,
    operational: OperationalDef,
    #[serde(default, rename = "calendar")]
    calendars: Vec<CalendarDef>,
    #[serde(default, rename = "rule")]
    rules: Vec<RuleDef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetaDef {
    version: String,
    #[serde(default)]
    description: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OperationalDef {
    guard_before_end: String,
    max_ring: String,
    search_horizon: String,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum HoursDef {
    Span([String; 2]),
    Closed(String),
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum KindDef {
    Window,
    Cap,
    Cooldown,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleDef {
    id: String,
    kind: KindDef,
    title: String,
    purposes: Vec<Purpose>,
    #[serde(default)]
    states: Vec<String>,
    sources: Vec<String>,
    status: Status,
    #[serde(default)]
    note: Option<String>,
    #[serde(default)]
    effective_from: Option<NaiveDate>,
    #[serde(default)]
    effective_until: Option<NaiveDate>,
    // window
    #[serde(default)]
    hours: Option<BTreeMap<String, HoursDef>>,
    #[serde(default)]
    holidays: Option<String>,
    #[serde(default)]
    extra_zones: Vec<String>,
    // cap / cooldown
    #[serde(default)]
    key: Vec<KeyPart>,
    #[serde(default)]
    count: Option<Counted>,
    #[serde(default)]
    max: Option<u32>,
    #[serde(default)]
    rolling: Option<String>,
    #[serde(default)]
    local_days: Option<u32>,
}

// ---------------------------------------------------------------------------------------
// Compiled rules
// ---------------------------------------------------------------------------------------

/// A rule's identifier, e.g. `fed.regf.1006.6.b.1.i`.
pub type RuleId = Arc<str>;

/// What every rule carries.
#[derive(Debug, Clone)]
pub struct RuleMeta {
    /// Identifier used in decisions.
    pub id: RuleId,
    /// One-line description.
    pub title: String,
    /// Purposes it governs.
    pub purposes: Vec<Purpose>,
    /// States whose candidates bring it into force; empty = federal (always in force).
    pub states: Vec<UsState>,
    /// Citations.
    pub sources: Vec<String>,
    /// How far the sources were checked.
    pub status: Status,
    /// First local date the rule is in force.
    pub effective_from: Option<NaiveDate>,
    /// First local date it is no longer in force.
    pub effective_until: Option<NaiveDate>,
}

impl RuleMeta {
    /// Whether the rule is in force on `date` (a local date of the consumer).
    pub fn in_force_on(&self, date: NaiveDate) -> bool {
        self.effective_from.is_none_or(|f| date >= f)
            && self.effective_until.is_none_or(|u| date < u)
    }

    /// Whether the rule binds a call of `purpose` to someone whose candidate states are `states`.
    pub fn binds(&self, purpose: Purpose, states: &[UsState]) -> bool {
        self.purposes.contains(&purpose)
            && (self.states.is_empty() || self.states.iter().any(|s| states.contains(s)))
    }
}

/// Seconds since local midnight.
pub type Secs = u32;

/// A local calling window by weekday with optional holiday closure.
#[derive(Debug, Clone)]
pub struct WindowRule {
    /// Position in [`Ruleset::windows`].
    pub index: usize,
    /// Common fields.
    pub meta: RuleMeta,
    /// Allowed `[start, end)` local seconds-of-day per weekday (index = days from Monday);
    /// `None` = closed all day.
    pub hours: [Option<(Secs, Secs)>; 7],
    /// Index into [`Ruleset::calendars`]: closed all day on its holidays.
    pub holidays: Option<usize>,
    /// Zones the window must also hold in besides the candidates (e.g. a statute that names
    /// "Central Standard Time" regardless of where the consumer is).
    pub extra_zones: Vec<Tz>,
}

/// Which attempts a cap counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Counted {
    /// Every placed attempt, including busy and not-connected ones (conservative reading of
    /// Reg F 1006.14(b)(3), whose "not connected" exclusion is unverified).
    Attempts,
    /// Placed attempts that reached the line (rang, voicemail, answered); busy and network
    /// failures excluded.
    ConnectedAttempts,
    /// Telephone conversations with the person.
    Conversations,
}

/// A part of a cap's key besides the person (history is always per person).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyPart {
    /// The person: implicit, allowed for readability.
    Person,
    /// The debt (loan) the call is about.
    Debt,
    /// The phone number called.
    Number,
}

/// The window of a cap or cooldown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// A rolling duration of real time.
    pub rolling: Option<Duration>,
    /// A number of local calendar days (today counts as day one), checked in every
    /// candidate zone.
    pub local_days: Option<u32>,
}

/// At most `max` counted contacts per key within a span.
#[derive(Debug, Clone)]
pub struct CapRule {
    /// Common fields.
    pub meta: RuleMeta,
    /// Key parts (person is implicit).
    pub key: Vec<KeyPart>,
    /// What is counted.
    pub count: Counted,
    /// The limit.
    pub max: u32,
    /// The window.
    pub span: Span,
}

/// No call for a span after a counted event (e.g. a conversation about the debt).
#[derive(Debug, Clone)]
pub struct CooldownRule {
    /// Common fields.
    pub meta: RuleMeta,
    /// Key parts (person is implicit).
    pub key: Vec<KeyPart>,
    /// The event that starts the quiet period.
    pub after: Counted,
    /// Its length; for `local_days` the event's date is day one.
    pub span: Span,
}

/// A loaded, validated ruleset.
#[derive(Debug, Clone)]
pub struct Ruleset {
    /// The file's `meta.version`.
    pub version: String,
    /// The file's description.
    pub description: String,
    /// FNV-1a 64 of the file text, recorded in decisions.
    pub fingerprint: u64,
    /// Time between the last dial start and window end besides the ring time.
    pub guard_before_end: Duration,
    /// Maximum ring time of one attempt.
    pub max_ring: Duration,
    /// How far ahead the next lawful instant is searched for.
    pub search_horizon: Duration,
    /// Holiday calendars.
    pub calendars: Vec<Calendar>,
    /// Time-window rules.
    pub windows: Vec<WindowRule>,
    /// Frequency caps.
    pub caps: Vec<CapRule>,
    /// Quiet periods.
    pub cooldowns: Vec<CooldownRule>,
    /// Memo of window days, shared by clones (rules are not changed after loading).
    pub(crate) day_cache: Arc<DayCache>,
}

impl Ruleset {
    /// The ruleset bundled with this build.
    pub fn bundled() -> Result<Self, RulesetError> {
        Self::parse(BUNDLED_US, LoadOptions::default())
    }

    /// Parse and validate a ruleset file's text.
    pub fn parse(text: &str, opts: LoadOptions) -> Result<Self, RulesetError> {
        let file: File = toml::from_str(text)?;
        let calendars = calendar::build(&file.calendars)?;
        let op = &file.operational;
        let guard_before_end = duration("operational.guard_before_end", &op.guard_before_end)?;
        let max_ring = duration("operational.max_ring", &op.max_ring)?;
        let search_horizon = duration("operational.search_horizon", &op.search_horizon)?;
        if search_horizon < Duration::days(1) || search_horizon > Duration::days(400) {
            return Err(invalid(
                "operational.search_horizon must be between 1 and 400 days",
            ));
        }
        let mut set = Ruleset {
            version: file.meta.version,
            description: file.meta.description,
            fingerprint: fnv1a(text.as_bytes()),
            guard_before_end,
            max_ring,
            search_horizon,
            calendars,
            windows: Vec::new(),
            caps: Vec::new(),
            cooldowns: Vec::new(),
            day_cache: Arc::default(),
        };
        let mut ids: Vec<&str> = Vec::new();
        for def in &file.rules {
            if ids.contains(&def.id.as_str()) {
                return Err(invalid(format!("rule {:?} is defined twice", def.id)));
            }
            ids.push(&def.id);
            let meta = meta(def)?;
            if opts.exclude_unverified && meta.status == Status::Unverified {
                continue;
            }
            match def.kind {
                KindDef::Window => set.windows.push(window(
                    set.windows.len(),
                    def,
                    meta,
                    &set.calendars,
                    guard_before_end + max_ring,
                )?),
                KindDef::Cap => set.caps.push(cap(def, meta)?),
                KindDef::Cooldown => set.cooldowns.push(cooldown(def, meta)?),
            }
        }
        if !set.windows.iter().any(|w| w.meta.states.is_empty()) {
            return Err(invalid("the ruleset has no federal time window"));
        }
        Ok(set)
    }

    /// Guard band subtracted from every window end: `guard_before_end + max_ring`.
    pub fn end_margin(&self) -> Duration {
        self.guard_before_end + self.max_ring
    }

    /// Look a rule's metadata up by id.
    pub fn rule(&self, id: &str) -> Option<&RuleMeta> {
        self.windows
            .iter()
            .map(|w| &w.meta)
            .chain(self.caps.iter().map(|c| &c.meta))
            .chain(self.cooldowns.iter().map(|c| &c.meta))
            .find(|m| &*m.id == id)
    }

    /// Look a calendar up by id.
    pub fn calendar(&self, id: &str) -> Option<&Calendar> {
        self.calendars.iter().find(|c| c.id() == id)
    }
}

fn invalid(msg: impl Into<String>) -> RulesetError {
    RulesetError::Invalid(msg.into())
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn duration(field: &str, s: &str) -> Result<Duration, RulesetError> {
    let std = humantime::parse_duration(s).map_err(|e| invalid(format!("{field}: {s:?}: {e}")))?;
    Duration::from_std(std).map_err(|_| invalid(format!("{field}: {s:?} is too long")))
}

fn meta(def: &RuleDef) -> Result<RuleMeta, RulesetError> {
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
    let _ = &def.note;
    Ok(RuleMeta {
        id: Arc::from(id),
        title: def.title.clone(),
        purposes: def.purposes.clone(),
        states,
        sources: def.sources.clone(),
        status: def.status,
        effective_from: def.effective_from,
        effective_until: def.effective_until,
    })
}

fn only_window_fields(def: &RuleDef) -> bool {
    def.key.is_empty()
        && def.count.is_none()
        && def.max.is_none()
        && def.rolling.is_none()
        && def.local_days.is_none()
}

fn window(
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

fn span(def: &RuleDef, id: &str) -> Result<Span, RulesetError> {
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

fn no_window_fields(def: &RuleDef) -> bool {
    def.hours.is_none() && def.holidays.is_none() && def.extra_zones.is_empty()
}

fn cap(def: &RuleDef, meta: RuleMeta) -> Result<CapRule, RulesetError> {
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

fn cooldown(def: &RuleDef, meta: RuleMeta) -> Result<CooldownRule, RulesetError> {
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

fn day_set(name: &str) -> Option<Vec<Weekday>> {
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
fn clock_time(s: &str) -> Result<Secs, String> {
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

#[cfg(test)]
mod tests;
