//! Candidate locations: every zone and state the customer's data suggests (compliance.md
//! §0.2, §4.1). A dial must be lawful in every candidate zone and under every candidate
//! state's rules; an empty zone set denies.

use chrono_tz::Tz;
use serde::Serialize;

use crate::geo::Geo;
use crate::us_state::UsState;

/// Where a candidate came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The customer's IANA `timezone` field.
    Timezone,
    /// The address `state` field.
    AddressState,
    /// The address ZIP code.
    Zip,
    /// The phone number's area code.
    AreaCode,
}

/// One location signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Candidate {
    /// The signal.
    pub source: Source,
    /// The zone it suggests, if any.
    #[serde(serialize_with = "ser_zone")]
    pub zone: Option<Tz>,
    /// The state it suggests, if any.
    pub state: Option<UsState>,
}

fn ser_zone<S: serde::Serializer>(z: &Option<Tz>, s: S) -> Result<S::Ok, S::Error> {
    match z {
        Some(z) => s.serialize_some(z.name()),
        None => s.serialize_none(),
    }
}

/// The facts the candidates are drawn from.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocationFacts<'a> {
    /// IANA zone given for the customer.
    pub timezone: Option<Tz>,
    /// Address state.
    pub state: Option<UsState>,
    /// Address ZIP (`12345` or `12345-6789`).
    pub zip: Option<&'a str>,
    /// NANP area code of the number to be dialed.
    pub area_code: Option<u16>,
}

/// The resolved candidate set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Candidates {
    /// Every signal, for the decision trail.
    pub signals: Vec<Candidate>,
    /// Distinct zones, in signal order.
    #[serde(serialize_with = "ser_zones")]
    pub zones: Vec<Tz>,
    /// Distinct states, in signal order.
    pub states: Vec<UsState>,
}

fn ser_zones<S: serde::Serializer>(zs: &[Tz], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(zs.iter().map(|z| z.name()))
}

impl Candidates {
    /// Gather candidates from the facts using `geo`.
    pub fn resolve(facts: &LocationFacts<'_>, geo: &Geo) -> Self {
        let mut c = Candidates::default();
        if let Some(zone) = facts.timezone {
            c.add(Candidate {
                source: Source::Timezone,
                zone: Some(zone),
                state: None,
            });
        }
        if let Some(state) = facts.state {
            c.add(Candidate {
                source: Source::AddressState,
                zone: None,
                state: Some(state),
            });
        }
        if let Some(zip) = facts.zip {
            // A ZIP the dataset does not pin to one zone suggests every zone of its sectional
            // centre (see `Geo::zip_zones`).
            let state = geo.zip(zip).map(|z| z.state);
            let zones = geo.zip_zones(zip);
            for zone in &zones {
                c.add(Candidate {
                    source: Source::Zip,
                    zone: Some(*zone),
                    state,
                });
            }
            if zones.is_empty() && state.is_some() {
                c.add(Candidate {
                    source: Source::Zip,
                    zone: None,
                    state,
                });
            }
        }
        if let Some(ac) = facts.area_code.and_then(|npa| geo.area_code(npa)) {
            for zone in &ac.zones {
                c.add(Candidate {
                    source: Source::AreaCode,
                    zone: Some(*zone),
                    state: Some(ac.state),
                });
            }
            if ac.zones.is_empty() {
                c.add(Candidate {
                    source: Source::AreaCode,
                    zone: None,
                    state: Some(ac.state),
                });
            }
        }
        c
    }

    /// Candidates from explicit zones and states (tests, previews).
    pub fn explicit(zones: &[Tz], states: &[UsState]) -> Self {
        let mut c = Candidates::default();
        for z in zones {
            c.add(Candidate {
                source: Source::Timezone,
                zone: Some(*z),
                state: None,
            });
        }
        for s in states {
            c.add(Candidate {
                source: Source::AddressState,
                zone: None,
                state: Some(*s),
            });
        }
        c
    }

    fn add(&mut self, cand: Candidate) {
        if let Some(z) = cand.zone
            && !self.zones.contains(&z)
        {
            self.zones.push(z);
        }
        if let Some(s) = cand.state
            && !self.states.contains(&s)
        {
            self.states.push(s);
        }
        self.signals.push(cand);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::America;

    #[test]
    fn zone_state_zip_and_area_code_all_contribute() {
        // Georgia address, Florida panhandle mobile (compliance.md T15).
        let facts = LocationFacts {
            timezone: Some(America::New_York),
            state: Some(UsState::GA),
            zip: Some("30301"),
            area_code: Some(850),
        };
        let c = Candidates::resolve(&facts, Geo::us());
        assert!(c.zones.contains(&America::New_York) && c.zones.contains(&America::Chicago));
        assert!(c.states.contains(&UsState::GA) && c.states.contains(&UsState::FL));
    }

    #[test]
    fn no_facts_means_no_candidates() {
        let c = Candidates::resolve(&LocationFacts::default(), Geo::us());
        assert!(c.zones.is_empty() && c.states.is_empty());
    }

    #[test]
    fn unknown_zip_and_toll_free_number_add_nothing() {
        let facts = LocationFacts {
            zip: Some("00000"),
            area_code: Some(800),
            ..Default::default()
        };
        assert!(Candidates::resolve(&facts, Geo::us()).signals.is_empty());
    }
}
