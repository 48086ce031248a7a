//! The calling ruleset: a versioned TOML file (`rules/us.toml`) parsed and validated into
//! compiled rules. Validation follows compliance.md §4 and §5 T26: every rule has a source
//! and a status; unknown state codes, empty or overnight windows, gaps or overlaps in a
//! weekly schedule, unknown calendars and fixed Feb-29 holidays are rejected.

use std::sync::Arc;

use chrono::{Duration, NaiveDate};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::calendar::{self, Calendar, CalendarDef};
use super::window::DayCache;
use crate::task::Purpose;
use crate::us_state::UsState;
use file::{File, KindDef, cap, cooldown, duration, fnv1a, invalid, meta, window};

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
    /// Caveats from the rules file.
    pub note: Option<String>,
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
    /// Memo of window days (a clone starts with an empty one of its own).
    pub(crate) day_cache: DayCache,
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
            day_cache: DayCache::default(),
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

mod file;

#[cfg(test)]
mod tests;
