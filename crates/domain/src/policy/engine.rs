//! The policy entry point: at instant `t`, for this customer (candidates), debt, purpose
//! and contact history, may we dial — and if not, which rules block and when next.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

use super::candidates::Candidates;
use super::cap::{check_cap, check_cooldown};
use super::contact::{Contact, Subject};
use super::decision::{Block, Decision, Reason};
use super::designation::{DESIGNATED_RULE, EmptySpan, Inconvenient};
use super::history::History;
use super::local::local_date;
use super::ruleset::{CapRule, CooldownRule, Ruleset, WindowRule};
use super::window;
use crate::task::Purpose;

/// A zone a window is checked in, with its index among the candidate zones (`None` for a
/// rule's extra zone).
type ZoneSlot = (Tz, Option<usize>);

/// Rule id reported when the candidate set is empty.
pub const NO_LOCATION_RULE: &str = "policy.candidates.nonempty";

/// The rules that bind one customer for one purpose, with the zones each is checked in.
/// Build once per customer and purpose ([`Ruleset::prepare`]), then decide many instants.
#[derive(Debug, Clone)]
pub struct Prepared<'r> {
    set: &'r Ruleset,
    zones: Vec<Tz>,
    /// Each binding window with the zones it is checked in: `(zone, index among the
    /// candidate zones)`, `None` for a rule's extra zone.
    windows: Vec<(&'r WindowRule, Vec<ZoneSlot>)>,
    caps: Vec<&'r CapRule>,
    cooldowns: Vec<&'r CooldownRule>,
    designations: Vec<Inconvenient>,
}

impl Ruleset {
    /// Select the rules binding a call of `purpose` to someone with these candidates.
    pub fn prepare(&self, candidates: &Candidates, purpose: Purpose) -> Prepared<'_> {
        let states = &candidates.states;
        let windows = self
            .windows
            .iter()
            .filter(|w| w.meta.binds(purpose, states))
            .map(|w| {
                let mut zones: Vec<ZoneSlot> = candidates
                    .zones
                    .iter()
                    .enumerate()
                    .map(|(i, z)| (*z, Some(i)))
                    .collect();
                if !zones.is_empty() {
                    let extra = w
                        .extra_zones
                        .iter()
                        .filter(|z| !candidates.zones.contains(z));
                    zones.extend(extra.map(|z| (*z, None)));
                }
                (w, zones)
            })
            .collect();
        Prepared {
            set: self,
            zones: candidates.zones.clone(),
            windows,
            caps: self
                .caps
                .iter()
                .filter(|c| c.meta.binds(purpose, states))
                .collect(),
            cooldowns: self
                .cooldowns
                .iter()
                .filter(|c| c.meta.binds(purpose, states))
                .collect(),
            designations: Vec::new(),
        }
    }

    /// One-shot decision (prepares, then decides). Prefer [`Prepared::decide`] in loops.
    pub fn decide(
        &self,
        candidates: &Candidates,
        purpose: Purpose,
        t: DateTime<Utc>,
        subject: &Subject<'_>,
        history: &[Contact],
    ) -> Decision {
        self.prepare(candidates, purpose)
            .decide(t, subject, history)
    }
}

impl<'r> Prepared<'r> {
    /// Add the consumer's designated inconvenient times (honoured in every candidate zone).
    pub fn with_designations(mut self, spans: Vec<Inconvenient>) -> Result<Self, EmptySpan> {
        for span in &spans {
            span.validate()?;
        }
        self.designations = spans;
        Ok(self)
    }

    /// The ruleset.
    pub fn ruleset(&self) -> &'r Ruleset {
        self.set
    }

    /// The candidate zones.
    pub fn zones(&self) -> &[Tz] {
        &self.zones
    }

    /// Ids of the rules in force for this customer and purpose.
    pub fn rule_ids(&self) -> impl Iterator<Item = &str> {
        self.windows
            .iter()
            .map(|(w, _)| &*w.meta.id)
            .chain(self.caps.iter().map(|c| &*c.meta.id))
            .chain(self.cooldowns.iter().map(|c| &*c.meta.id))
    }

    /// Prepare a contact history for repeated decisions about `subject`
    /// ([`Prepared::decide_with`]).
    pub fn history<'a>(&'a self, subject: Subject<'a>, contacts: &[Contact]) -> History<'a> {
        History::new(&self.zones, &self.caps, &self.cooldowns, subject, contacts)
    }

    /// May we dial at `t`? If not: every rule that blocks, and the earliest lawful instant
    /// within the ruleset's search horizon. `contacts` are the person's past contacts in
    /// any order; those after `t` are not yet history and are ignored throughout, also
    /// while searching for the next lawful instant.
    pub fn decide(
        &self,
        t: DateTime<Utc>,
        subject: &Subject<'_>,
        contacts: &[Contact],
    ) -> Decision {
        self.decide_with(t, &self.history(*subject, contacts))
    }

    /// [`Prepared::decide`] about the history's subject, with a history built by this
    /// policy's [`Prepared::history`].
    pub fn decide_with(&self, t: DateTime<Utc>, history: &History<'_>) -> Decision {
        let searched_until = t + self.set.search_horizon;
        let blocks = self.blocks_at(t, t, history, searched_until);
        if blocks.is_empty() {
            return Decision::Allow { at: t };
        }
        // Each block's `until` is exactly the first instant its rule alone allows, so no
        // lawful instant lies before the latest of them: jump there and check again.
        let mut cur = blocks.iter().map(|b| b.until).max().flatten();
        while let Some(c) = cur {
            if blocks.iter().any(|b| b.until.is_none()) || c > searched_until {
                break;
            }
            let again = self.blocks_at(c, t, history, searched_until);
            if again.is_empty() {
                return Decision::Deny {
                    at: t,
                    blocks,
                    next_allowed: Some(c),
                    searched_until,
                };
            }
            if again.iter().any(|b| b.until.is_none()) {
                break;
            }
            cur = again.iter().filter_map(|b| b.until).max();
        }
        Decision::Deny {
            at: t,
            blocks,
            next_allowed: None,
            searched_until,
        }
    }

    /// Whether a dial at `t` is lawful (no search for the next instant).
    pub fn allows(&self, t: DateTime<Utc>, subject: &Subject<'_>, contacts: &[Contact]) -> bool {
        self.blocks_at(t, t, &self.history(*subject, contacts), t)
            .is_empty()
    }

    /// Every rule blocking a dial at `t`, counting contacts at or before `known` only.
    fn blocks_at(
        &self,
        t: DateTime<Utc>,
        known: DateTime<Utc>,
        history: &History<'_>,
        limit: DateTime<Utc>,
    ) -> Vec<Block> {
        let mut blocks = Vec::new();
        if self.zones.is_empty() {
            blocks.push(Block {
                rule: Arc::from(NO_LOCATION_RULE),
                reason: Reason::NoCandidateLocation,
                zone: None,
                until: None,
            });
            return blocks;
        }
        // The local date of `t` in each candidate zone, shared by windows and caps.
        let mut buf = [NaiveDate::MIN; 8];
        let many: Vec<NaiveDate>;
        let dates: &[NaiveDate] = if self.zones.len() <= buf.len() {
            for (slot, zone) in buf.iter_mut().zip(&self.zones) {
                *slot = local_date(*zone, t);
            }
            &buf[..self.zones.len()]
        } else {
            many = self.zones.iter().map(|z| local_date(*z, t)).collect();
            &many
        };
        for (rule, zones) in &self.windows {
            for &(zone, candidate) in zones {
                let date = candidate.map_or_else(|| local_date(zone, t), |i| dates[i]);
                if let Some((reason, until)) = window::check(rule, self.set, zone, t, date, limit) {
                    blocks.push(Block {
                        rule: rule.meta.id.clone(),
                        reason,
                        zone: Some(zone),
                        until,
                    });
                }
            }
        }
        for (i, cap) in self.caps.iter().enumerate() {
            if let Some((zone, until)) = check_cap((i, cap), t, dates, known, history) {
                blocks.push(Block {
                    rule: cap.meta.id.clone(),
                    reason: Reason::FrequencyCap,
                    zone,
                    until: Some(until),
                });
            }
        }
        for span in &self.designations {
            for &zone in &self.zones {
                if let Some(until) = span.blocks(zone, t) {
                    blocks.push(Block {
                        rule: Arc::from(DESIGNATED_RULE),
                        reason: Reason::ConsumerDesignated,
                        zone: Some(zone),
                        until: Some(until),
                    });
                }
            }
        }
        for (i, rule) in self.cooldowns.iter().enumerate() {
            let index = self.caps.len() + i;
            if let Some((zone, until)) = check_cooldown((index, rule), t, dates, known, history) {
                blocks.push(Block {
                    rule: rule.meta.id.clone(),
                    reason: Reason::Cooldown,
                    zone,
                    until: Some(until),
                });
            }
        }
        blocks
    }
}
