//! Property tests for the calling policy: random customers (1–3 candidate zones among US,
//! territory and Newfoundland zones; 0–3 states; any purpose), random instants in
//! 2025–2028 and random contact histories, checked against an independent oracle
//! (`support::Oracle`: naive local wall-clock arithmetic per zone and brute-force counting).
//!
//! Why the oracle is exact for the bundled ruleset although it ignores DST edge cases: it
//! reads a window as "local seconds-of-day in [start, end − margin)" on the local date,
//! whereas the engine converts the local bounds to instants (skipped times move forward,
//! repeated times take the earlier instant) and subtracts the margin in real time. The two
//! differ only when a bound falls in a DST gap or overlap, or when a clock change lies within
//! the 5m45s margin before an end. Every bundled rule time lies between 07:30 and 21:00, and
//! every zone used here (and every `extra_zones` entry) changes its clocks at 02:00 local or
//! not at all, so neither can happen. Local-day spans (caps and quiet periods) are compared
//! as local dates, which has no DST edge at all.

mod support;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::{America, Pacific, Tz};
use outdial_domain::UsState;
use outdial_domain::policy::{Candidates, Contact, ContactKind, Decision, Prepared, Subject};
use outdial_domain::task::Purpose;
use proptest::prelude::*;
use proptest::sample::{select, subsequence};
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

use support::{BUNDLED, Oracle};

/// Candidate zones: the contiguous US, Alaska (Adak included), Hawaii, the territories and
/// Newfoundland's half-hour zone.
const ZONES: &[Tz] = &[
    America::New_York,
    America::Detroit,
    America::Indiana::Indianapolis,
    America::Chicago,
    America::North_Dakota::Center,
    America::Denver,
    America::Boise,
    America::Phoenix,
    America::Los_Angeles,
    America::Anchorage,
    America::Juneau,
    America::Nome,
    America::Adak,
    Pacific::Honolulu,
    America::Puerto_Rico,
    America::St_Thomas,
    Pacific::Guam,
    Pacific::Saipan,
    Pacific::Pago_Pago,
    America::St_Johns,
];

/// Zones far apart, whose windows often fail to overlap.
const FAR_ZONES: &[Tz] = &[
    Pacific::Guam,
    Pacific::Saipan,
    Pacific::Pago_Pago,
    Pacific::Honolulu,
    America::Adak,
    America::St_Johns,
    America::Puerto_Rico,
    America::New_York,
];

/// States with narrow telemarketing windows, Sunday bans or holiday calendars.
const STRICT_STATES: &[UsState] = &[
    UsState::ME,
    UsState::RI,
    UsState::KY,
    UsState::IN,
    UsState::NV,
    UsState::CT,
    UsState::UT,
    UsState::TX,
    UsState::SD,
    UsState::AL,
    UsState::LA,
    UsState::MS,
];

const KINDS: &[ContactKind] = &[
    ContactKind::NotConnected,
    ContactKind::Placed,
    ContactKind::Connected,
    ContactKind::Conversation,
];
const DEBTS: &[Option<&str>] = &[Some("L1"), Some("L2"), None];
const NUMBERS: &[Option<&str>] = &[Some("+16175550101"), Some("+16175550102"), None];

/// 2025-01-01T00:00:00Z and 2029-01-01T00:00:00Z.
const T_MIN: i64 = 1_735_689_600;
const T_MAX: i64 = 1_861_920_000;

/// A customer, a call and an instant.
#[derive(Debug, Clone)]
struct World {
    zones: Vec<Tz>,
    states: Vec<UsState>,
    purpose: Purpose,
    t: DateTime<Utc>,
    debt: Option<&'static str>,
    number: Option<&'static str>,
    history: Vec<Contact>,
}

impl World {
    fn candidates(&self) -> Candidates {
        Candidates::explicit(&self.zones, &self.states)
    }

    fn subject(&self) -> Subject<'static> {
        Subject {
            debt: self.debt,
            number: self.number,
        }
    }

    fn oracle(&self) -> Oracle<'_> {
        Oracle {
            set: &BUNDLED,
            zones: &self.zones,
            states: &self.states,
            purpose: self.purpose,
        }
    }

    fn lawful(&self, at: DateTime<Utc>) -> bool {
        self.oracle().lawful(at, &self.subject(), &self.history)
    }

    fn allows(&self, p: &Prepared<'_>, at: DateTime<Utc>) -> bool {
        p.allows(at, &self.subject(), &self.history)
    }
}

/// Random worlds: 1–3 zones from `zones`, `state_count` states from `states`, a purpose from
/// `purposes`, an instant in 2025–2028, and 0–12 contacts within the 10 days before it.
fn worlds(
    zones: &'static [Tz],
    states: &'static [UsState],
    state_count: std::ops::RangeInclusive<usize>,
    purposes: &'static [Purpose],
) -> impl Strategy<Value = World> {
    let contact = (
        0..10 * 86_400i64,
        select(KINDS),
        select(DEBTS),
        select(NUMBERS),
    );
    (
        subsequence(zones, 1..=3),
        subsequence(states, state_count),
        select(purposes),
        T_MIN..T_MAX,
        proptest::collection::vec(contact, 0..=12),
        select(DEBTS),
        select(NUMBERS),
    )
        .prop_map(|(zones, states, purpose, secs, contacts, debt, number)| {
            let t = DateTime::from_timestamp(secs, 0).expect("instant in range");
            let history = contacts
                .into_iter()
                .map(|(ago, kind, debt, number)| Contact {
                    at: t - Duration::seconds(ago),
                    debt: debt.map(str::to_owned),
                    number: number.map(str::to_owned),
                    kind,
                })
                .collect();
            World {
                zones,
                states,
                purpose,
                t,
                debt,
                number,
                history,
            }
        })
}

fn any_world() -> impl Strategy<Value = World> {
    worlds(ZONES, UsState::ALL, 0..=3, &Purpose::ALL)
}

fn far_world() -> impl Strategy<Value = World> {
    worlds(FAR_ZONES, STRICT_STATES, 1..=3, &[Purpose::Marketing])
}

/// Instants to scan in `[from, to)`: every minute. Cost cap: when the span exceeds 10 days,
/// every minute of the first and the last 2 days and every 15 minutes in between (the
/// search horizon is 21 days; a full minute scan of it would take most of the time budget).
fn scan(from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let minute = Duration::minutes(1);
    let mut out = Vec::new();
    let mut s = from;
    if to - from <= Duration::days(10) {
        while s < to {
            out.push(s);
            s += minute;
        }
        return out;
    }
    let (head_end, tail_start) = (from + Duration::days(2), to - Duration::days(2));
    while s < head_end {
        out.push(s);
        s += minute;
    }
    while s < tail_start {
        out.push(s);
        s += Duration::minutes(15);
    }
    while s < to {
        out.push(s);
        s += minute;
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// (a) An allowed instant is lawful in every candidate zone per the oracle — and, the
    /// converse, a denied one is unlawful per the oracle.
    #[test]
    fn the_engine_allows_exactly_the_instants_the_oracle_finds_lawful(w in any_world()) {
        let p = BUNDLED.prepare(&w.candidates(), w.purpose);
        let d = p.decide(w.t, &w.subject(), &w.history);
        let why = w.oracle().violations(w.t, &w.subject(), &w.history);
        prop_assert_eq!(
            d.is_allow(),
            why.is_empty(),
            "at {}: engine {:?}, oracle {:?}",
            w.t,
            d,
            why
        );
        prop_assert_eq!(w.allows(&p, w.t), d.is_allow(), "allows() disagrees with decide()");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// (b) A denied dial's `next_allowed` is lawful per the oracle, allowed by the engine, and
    /// the first such instant: no scanned minute before it is allowed (and a sample of them
    /// is unlawful per the oracle too), nor is the second just before it.
    #[test]
    fn next_allowed_is_lawful_and_nothing_earlier_is(w in any_world()) {
        let p = BUNDLED.prepare(&w.candidates(), w.purpose);
        let d = p.decide(w.t, &w.subject(), &w.history);
        if let Decision::Deny { next_allowed: Some(next), searched_until, .. } = d {
            prop_assert!(next > w.t && next <= searched_until, "next {} outside ({}, {}]", next, w.t, searched_until);
            prop_assert!(w.lawful(next), "oracle rejects next {}: {:?}", next, w.oracle().violations(next, &w.subject(), &w.history));
            prop_assert!(p.decide(next, &w.subject(), &w.history).is_allow(), "decide(next {}) denies", next);
            let just_before = next - Duration::seconds(1);
            prop_assert!(just_before <= w.t || !w.allows(&p, just_before), "{} is allowed, before next {}", just_before, next);
            for (i, s) in scan(w.t, next).into_iter().enumerate() {
                prop_assert!(!w.allows(&p, s), "{} is allowed, before next {}", s, next);
                if i % 37 == 0 {
                    prop_assert!(!w.lawful(s), "oracle finds {} lawful, before next {}", s, next);
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// (c) Denied with no `next_allowed`: a coarse scan (every 5 minutes) of the whole search
    /// horizon finds no lawful instant per the oracle, nor an allowed one per the engine.
    /// Far-apart zones and strict states make empty intersections common.
    #[test]
    fn no_next_allowed_means_nothing_lawful_within_the_horizon(w in far_world()) {
        let p = BUNDLED.prepare(&w.candidates(), w.purpose);
        match p.decide(w.t, &w.subject(), &w.history) {
            Decision::Deny { next_allowed: None, searched_until, .. } => {
                let mut s = w.t;
                while s < searched_until {
                    prop_assert!(!w.lawful(s), "oracle finds {} lawful within the horizon", s);
                    prop_assert!(!w.allows(&p, s), "engine allows {} within the horizon", s);
                    s += Duration::minutes(5);
                }
            }
            Decision::Deny { next_allowed: Some(next), .. } => {
                prop_assert!(w.lawful(next), "oracle rejects next {}", next);
            }
            Decision::Allow { at } => prop_assert!(w.lawful(at), "oracle rejects allowed {}", at),
        }
    }
}

/// The generators reach every branch the properties check, so none of them passes vacuously.
#[test]
fn generators_reach_allowed_denied_and_nothing_within_horizon_outcomes() {
    let mut runner = TestRunner::deterministic();
    let mut tally = |strategy: &dyn Fn() -> proptest::strategy::BoxedStrategy<World>, n: usize| {
        let (mut allow, mut next, mut none) = (0, 0, 0);
        for _ in 0..n {
            let w = strategy()
                .new_tree(&mut runner)
                .expect("value tree")
                .current();
            let p = BUNDLED.prepare(&w.candidates(), w.purpose);
            match p.decide(w.t, &w.subject(), &w.history) {
                Decision::Allow { .. } => allow += 1,
                Decision::Deny {
                    next_allowed: Some(_),
                    ..
                } => next += 1,
                Decision::Deny {
                    next_allowed: None, ..
                } => none += 1,
            }
        }
        (allow, next, none)
    };
    let (allow, next, _) = tally(&|| any_world().boxed(), 400);
    println!("any_world: {allow} allowed, {next} denied with next_allowed");
    assert!(allow >= 60, "too few allowed instants: {allow}/400");
    assert!(next >= 60, "too few denied instants: {next}/400");
    let (allow, next, none) = tally(&|| far_world().boxed(), 400);
    println!("far_world: {allow} allowed, {next} denied with next, {none} with none");
    assert!(
        none >= 20,
        "too few denials with nothing in the horizon: {none}/400"
    );
    assert!(
        next >= 20,
        "too few denials with a next instant: {next}/400"
    );
}
