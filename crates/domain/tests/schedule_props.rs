//! Properties of schedule expansion.
//!
//! - Cadence slots (memoized per local date and zone) equal the `cron` crate's own
//!   `Schedule::after` iteration in the zone, on ordinary and DST transition days.
//! - Every plan is ordered, spaced, within its horizon and attempt limit; every planned
//!   call is lawful given the history and the calls planned before it; no frequency cap is
//!   exceeded in any rolling or local-calendar window (brute-force count); and no call
//!   falls in a quiet period after a prior conversation.

use std::sync::LazyLock;

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use outdial_domain::UsState;
use outdial_domain::policy::ruleset::{Counted, KeyPart, RuleMeta};
use outdial_domain::policy::{Candidates, Contact, ContactKind, Ruleset, Subject};
use outdial_domain::schedule::{Cadence, CadenceDef, MAX_SLOTS, Plan, Request, RetryDef, expand};
use outdial_domain::task::{Purpose, ScheduleType};
use proptest::prelude::*;
use proptest::sample::Index;

static BUNDLED: LazyLock<Ruleset> =
    LazyLock::new(|| Ruleset::bundled().expect("the bundled ruleset loads"));

/// Realistic cron expressions, including ones whose matches fall into DST gaps and
/// overlaps (01:00–03:00 local) and a dense one that reaches `MAX_SLOTS`.
const CRONS: [&str; 12] = [
    "0 0 9,16 * * Mon-Fri",
    "0 30 2 * * *",
    "0 0 * * * *",
    "0 15 1 * * Sun",
    "0 0 8-20/3 * * *",
    "0 0 11,17 * * Mon-Sat",
    "0 */20 1-2 * * *",
    "0 30 1 * * *",
    "0 45 9 1,15 * *",
    "30 10 12 * * Sat,Sun",
    "0 0 0 * * *",
    "0 * * * * *",
];

/// Zones for slot generation: US rules, none, the southern hemisphere, half-hour offsets
/// and a 30-minute DST shift, changes at local midnight.
const SLOT_ZONES: [Tz; 9] = [
    chrono_tz::America::New_York,
    chrono_tz::America::Phoenix,
    chrono_tz::Pacific::Guam,
    chrono_tz::America::St_Johns,
    chrono_tz::Europe::London,
    chrono_tz::Australia::Lord_Howe,
    chrono_tz::America::Chicago,
    chrono_tz::America::Santiago,
    chrono_tz::Asia::Beirut,
];

/// US and territory zones for customers.
const US_ZONES: [Tz; 16] = [
    chrono_tz::America::New_York,
    chrono_tz::America::Chicago,
    chrono_tz::America::Denver,
    chrono_tz::America::Phoenix,
    chrono_tz::America::Los_Angeles,
    chrono_tz::America::Anchorage,
    chrono_tz::America::Adak,
    chrono_tz::America::Boise,
    chrono_tz::America::Detroit,
    chrono_tz::America::Indiana::Indianapolis,
    chrono_tz::Pacific::Honolulu,
    chrono_tz::America::Puerto_Rico,
    chrono_tz::America::St_Thomas,
    chrono_tz::Pacific::Guam,
    chrono_tz::Pacific::Saipan,
    chrono_tz::Pacific::Pago_Pago,
];

/// States with state rules (windows, caps, holidays) and some without.
const STATES: [UsState; 24] = [
    UsState::MA,
    UsState::WA,
    UsState::FL,
    UsState::MD,
    UsState::OK,
    UsState::TX,
    UsState::AL,
    UsState::CT,
    UsState::KY,
    UsState::LA,
    UsState::MS,
    UsState::NE,
    UsState::PA,
    UsState::RI,
    UsState::SD,
    UsState::IL,
    UsState::TN,
    UsState::IN,
    UsState::NV,
    UsState::ME,
    UsState::NY,
    UsState::CA,
    UsState::PR,
    UsState::GU,
];

const PURPOSES: [Purpose; 3] = [
    Purpose::Collection,
    Purpose::Verification,
    Purpose::Marketing,
];
const KINDS: [ContactKind; 4] = [
    ContactKind::NotConnected,
    ContactKind::Placed,
    ContactKind::Connected,
    ContactKind::Conversation,
];
const DEBTS: [Option<&str>; 3] = [Some("L1"), Some("L2"), None];
const NUMBERS: [Option<&str>; 3] = [Some("+16175550100"), Some("+16175550199"), None];

fn first_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 1, 1).expect("date")
}

/// Minutes in 2025–2028.
const MINUTES: i64 = (365 * 3 + 366) * 1440;

/// Local dates in 2025–2028 on which `zone` changes its UTC offset.
fn transition_days(zone: Tz) -> Vec<NaiveDate> {
    let noon = |d: NaiveDate| {
        zone.from_local_datetime(&d.and_hms_opt(12, 0, 0).expect("noon"))
            .earliest()
            .map(|t| t.with_timezone(&Utc))
    };
    first_day()
        .iter_days()
        .take(4 * 366)
        .filter(|d| {
            let offset = |t: Option<DateTime<Utc>>| {
                t.map(|t| t.with_timezone(&zone).naive_local() - t.naive_utc())
            };
            offset(noon(*d)) != offset(d.succ_opt().and_then(noon))
        })
        .map(|d| d.succ_opt().expect("date"))
        .collect()
}

static TRANSITIONS: LazyLock<Vec<(Tz, Vec<NaiveDate>)>> = LazyLock::new(|| {
    SLOT_ZONES
        .iter()
        .chain(&US_ZONES)
        .map(|z| (*z, transition_days(*z)))
        .collect()
});

fn transitions(zone: Tz) -> &'static [NaiveDate] {
    TRANSITIONS
        .iter()
        .find(|(z, _)| *z == zone)
        .map_or(&[], |(_, d)| d.as_slice())
}

/// A start instant in 2025–2028: uniform, or within a day of one of `zone`'s DST
/// transitions; whole minutes, sometimes with seconds.
fn start_in(zone: Tz) -> impl Strategy<Value = DateTime<Utc>> {
    let base = first_day().and_time(NaiveTime::MIN).and_utc();
    let secs = prop_oneof![3 => Just(0i64), 1 => 0..60i64];
    (
        any::<bool>(),
        0..MINUTES,
        any::<Index>(),
        0..3 * 1440i64,
        secs,
    )
        .prop_map(move |(near, minute, day, around, secs)| {
            let days = transitions(zone);
            if near && !days.is_empty() {
                let d = *day.get(days);
                let midnight = zone
                    .from_local_datetime(&d.and_time(NaiveTime::MIN))
                    .earliest()
                    .map_or_else(
                        || d.and_time(NaiveTime::MIN).and_utc(),
                        |t| t.with_timezone(&Utc),
                    );
                midnight - Duration::days(1) + Duration::minutes(around) + Duration::seconds(secs)
            } else {
                base + Duration::minutes(minute) + Duration::seconds(secs)
            }
        })
}

fn retry() -> RetryDef {
    RetryDef {
        no_answer: "4h".into(),
        busy: "30m".into(),
        voicemail: "1d".into(),
    }
}

fn cron_cadence(crons: &[&str], horizon_days: u32) -> Cadence {
    Cadence::parse(&CadenceDef {
        cron: crons.iter().map(|c| (*c).to_owned()).collect(),
        local_times: vec![],
        first_asap: false,
        horizon: format!("{horizon_days}d"),
        max_attempts: 1,
        min_gap: "1h".into(),
        retry: retry(),
    })
    .expect("valid cadence")
}

/// The `cron` crate's answer: each schedule iterated with `after` in the zone from local
/// noon two days before `start` (never inside a DST change, so the iteration visits every
/// match of the repeated hour), the instants in `[start, end)` kept, sorted, the first
/// `MAX_SLOTS`.
fn cron_reference(
    cadence: &Cadence,
    zone: Tz,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Vec<DateTime<Utc>> {
    let local_date = |t: DateTime<Utc>| t.with_timezone(&zone).date_naive();
    let from_date = local_date(start) - Duration::days(2);
    let from = zone
        .from_local_datetime(&from_date.and_hms_opt(12, 0, 0).expect("noon"))
        .single()
        .expect("local noon is unambiguous");
    let until: NaiveDateTime = (local_date(end) + Duration::days(2)).and_time(NaiveTime::MIN);
    let mut out = Vec::new();
    for schedule in cadence.crons.schedules() {
        let mut kept = 0;
        for t in schedule.after(&from) {
            // Local times come in order; instants only out of order within an overlap
            // (at most an hour of matches), so a margin past MAX_SLOTS is enough.
            if t.naive_local() >= until || kept > MAX_SLOTS + 500 {
                break;
            }
            let at = t.with_timezone(&Utc);
            if at >= start && at < end {
                out.push(at);
                kept += 1;
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out.truncate(MAX_SLOTS);
    out
}

fn slot_case() -> impl Strategy<Value = (Vec<usize>, Tz, Vec<DateTime<Utc>>, u32)> {
    (
        prop::collection::vec(0..CRONS.len(), 1..=2),
        prop::sample::select(SLOT_ZONES.to_vec()),
        1..=30u32,
    )
        .prop_flat_map(|(crons, zone, horizon)| {
            (
                Just(crons),
                Just(zone),
                prop::collection::vec(start_in(zone), 1..=3),
                Just(horizon),
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Several starts share one cadence (and a clone of it), so the memo is both filled
    /// and read.
    #[test]
    fn cron_slots_equal_the_cron_crates_iteration_in_the_zone(
        (crons, zone, starts, horizon) in slot_case()
    ) {
        let exprs: Vec<&str> = crons.iter().map(|i| CRONS[*i]).collect();
        let cadence = cron_cadence(&exprs, horizon);
        let shared = cadence.clone();
        for (i, start) in starts.iter().enumerate() {
            let end = *start + cadence.horizon;
            let expected = cron_reference(&cadence, zone, *start, end);
            let c = if i % 2 == 0 { &cadence } else { &shared };
            prop_assert_eq!(c.slots(zone, *start, end), expected.clone(), "{:?} in {} from {}", exprs, zone, start);
            // A second read comes from the memo.
            prop_assert_eq!(c.slots(zone, *start, end), expected);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Plans
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Customer {
    zones: Vec<Tz>,
    states: Vec<UsState>,
    purpose: Purpose,
    debt: Option<&'static str>,
    number: Option<&'static str>,
    start: DateTime<Utc>,
    history: Vec<Contact>,
}

fn customer() -> impl Strategy<Value = Customer> {
    (
        prop::collection::vec(prop::sample::select(US_ZONES.to_vec()), 1..=3),
        prop::collection::vec(prop::sample::select(STATES.to_vec()), 0..=3),
        prop::sample::select(PURPOSES.to_vec()),
        prop::sample::select(DEBTS.to_vec()),
        prop::sample::select(NUMBERS.to_vec()),
    )
        .prop_flat_map(|(zones, states, purpose, debt, number)| {
            let contact = (
                1..10 * 1440i64,
                prop::sample::select(KINDS.to_vec()),
                prop::sample::select(DEBTS.to_vec()),
                prop::sample::select(NUMBERS.to_vec()),
            );
            (
                Just(zones.clone()),
                Just(states),
                Just(purpose),
                Just(debt),
                Just(number),
                start_in(zones[0]),
                prop::collection::vec(contact, 0..=10),
            )
        })
        .prop_map(
            |(zones, states, purpose, debt, number, start, prior)| Customer {
                zones,
                states,
                purpose,
                debt,
                number,
                start,
                history: prior
                    .into_iter()
                    .map(|(ago, kind, debt, number)| Contact {
                        at: start - Duration::minutes(ago),
                        debt: debt.map(str::to_owned),
                        number: number.map(str::to_owned),
                        kind,
                    })
                    .collect(),
            },
        )
}

/// A custom cadence: cron expressions, explicit local times within its horizon, or both.
fn custom_cadence(start: DateTime<Utc>, zone: Tz) -> impl Strategy<Value = CadenceDef> {
    (
        prop::collection::vec(
            prop::sample::select(CRONS[..CRONS.len() - 1].to_vec()),
            0..=2,
        ),
        prop::collection::vec(0..30 * 1440i64, 0..=4),
        any::<bool>(),
        1..=30u32,
        1..=30u32,
        1..=360i64,
    )
        .prop_map(
            move |(cron, locals, first_asap, horizon, max_attempts, gap)| CadenceDef {
                first_asap: first_asap || (cron.is_empty() && locals.is_empty()),
                cron: cron.into_iter().map(str::to_owned).collect(),
                local_times: locals
                    .into_iter()
                    .map(|m| {
                        (start + Duration::minutes(m))
                            .with_timezone(&zone)
                            .naive_local()
                    })
                    .collect(),
                horizon: format!("{horizon}d"),
                max_attempts,
                min_gap: format!("{gap}m"),
                retry: retry(),
            },
        )
}

fn plan_case() -> impl Strategy<Value = (Customer, CadenceDef)> {
    customer().prop_flat_map(|c| {
        let custom = custom_cadence(c.start, c.zones[0]);
        (Just(c), custom)
    })
}

fn key_matches(key: &[KeyPart], c: &Contact, debt: Option<&str>, number: Option<&str>) -> bool {
    // Unknown on either side may be the same: it matches.
    let same = |a: Option<&str>, b: Option<&str>| !matches!((a, b), (Some(x), Some(y)) if x != y);
    key.iter().all(|part| match part {
        KeyPart::Person => true,
        KeyPart::Debt => same(c.debt.as_deref(), debt),
        KeyPart::Number => same(c.number.as_deref(), number),
    })
}

fn counted(what: Counted, kind: ContactKind) -> bool {
    match what {
        Counted::Attempts => true,
        Counted::ConnectedAttempts => kind != ContactKind::NotConnected,
        Counted::Conversations => kind == ContactKind::Conversation,
    }
}

fn local_date(zone: Tz, t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&zone).date_naive()
}

/// Check properties 1–4 of one plan; `Err` names the first violation.
fn check_plan(c: &Customer, cadence: &Cadence, plan: &Plan) -> Result<(), String> {
    let set = &*BUNDLED;
    let candidates = Candidates::explicit(&c.zones, &c.states);
    let prepared = set.prepare(&candidates, c.purpose);
    let subject = Subject {
        debt: c.debt,
        number: c.number,
    };
    let end = c.start + cadence.horizon;

    // 1. Ordered, spaced, bounded.
    if plan.calls.len() > cadence.max_attempts as usize {
        return Err(format!(
            "{} calls > {}",
            plan.calls.len(),
            cadence.max_attempts
        ));
    }
    for w in plan.calls.windows(2) {
        if w[1].at <= w[0].at || w[1].at - w[0].at < cadence.min_gap {
            return Err(format!(
                "{} then {}: not increasing by {}",
                w[0].at, w[1].at, cadence.min_gap
            ));
        }
    }
    for call in &plan.calls {
        if call.at < c.start || call.at >= end {
            return Err(format!("{} outside [{}, {end})", call.at, c.start));
        }
    }

    // 2. Lawful given the prior history and the calls planned before it.
    let planned: Vec<Contact> = plan
        .calls
        .iter()
        .map(|call| Contact {
            at: call.at,
            debt: c.debt.map(str::to_owned),
            number: c.number.map(str::to_owned),
            kind: ContactKind::Placed,
        })
        .collect();
    for (i, call) in plan.calls.iter().enumerate() {
        let mut before = c.history.clone();
        before.extend_from_slice(&planned[..i]);
        if !prepared.allows(call.at, &subject, &before) {
            return Err(format!(
                "call {i} at {} is not lawful: {:?}",
                call.at,
                prepared.decide(call.at, &subject, &before)
            ));
        }
    }

    // 3. No cap exceeded in any window containing a planned call.
    let in_force = |meta: &RuleMeta, t: DateTime<Utc>| {
        c.zones.iter().any(|z| meta.in_force_on(local_date(*z, t)))
    };
    let all: Vec<&Contact> = c.history.iter().chain(&planned).collect();
    for cap in set
        .caps
        .iter()
        .filter(|r| r.meta.binds(c.purpose, &candidates.states))
    {
        let counts: Vec<&Contact> = all
            .iter()
            .copied()
            .filter(|x| counted(cap.count, x.kind) && key_matches(&cap.key, x, c.debt, c.number))
            .collect();
        let max = cap.max as usize;
        for p in planned.iter().filter(|p| in_force(&cap.meta, p.at)) {
            if let Some(w) = cap.span.rolling {
                let n = counts
                    .iter()
                    .filter(|x| x.at <= p.at && p.at - x.at < w)
                    .count();
                if n > max {
                    return Err(format!(
                        "{}: {n} contacts in the {w} ending {}",
                        cap.meta.id, p.at
                    ));
                }
            }
            if let Some(days) = cap.span.local_days {
                let days = i64::from(days);
                for &zone in &c.zones {
                    let d = local_date(zone, p.at);
                    for back in 0..days {
                        let first = d - Duration::days(back);
                        let last = first + Duration::days(days - 1);
                        let n = counts
                            .iter()
                            .filter(|x| (first..=last).contains(&local_date(zone, x.at)))
                            .count();
                        if n > max {
                            return Err(format!(
                                "{}: {n} contacts on local days {first}..={last} in {zone}",
                                cap.meta.id
                            ));
                        }
                    }
                }
            }
        }
    }

    // 4. No call in a quiet period after a prior event (Reg F: a conversation about the
    //    debt, then 168 h and until local day D+7 in every candidate zone).
    for rule in set
        .cooldowns
        .iter()
        .filter(|r| r.meta.binds(c.purpose, &candidates.states))
    {
        for e in c
            .history
            .iter()
            .filter(|e| counted(rule.after, e.kind) && key_matches(&rule.key, e, c.debt, c.number))
        {
            for call in plan
                .calls
                .iter()
                .filter(|call| in_force(&rule.meta, call.at))
            {
                if rule.span.rolling.is_some_and(|w| call.at - e.at < w) {
                    return Err(format!(
                        "{}: call {} within {:?} of {}",
                        rule.meta.id, call.at, rule.span.rolling, e.at
                    ));
                }
                if let Some(days) = rule.span.local_days {
                    for &zone in &c.zones {
                        let gap = (local_date(zone, call.at) - local_date(zone, e.at)).num_days();
                        if gap < i64::from(days) {
                            return Err(format!(
                                "{}: call {} on local day {} after {} in {zone}",
                                rule.meta.id,
                                call.at,
                                gap + 1,
                                e.at
                            ));
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

static DEFAULTS: LazyLock<[Cadence; 2]> = LazyLock::new(|| {
    [ScheduleType::Verification, ScheduleType::Collections].map(|kind| {
        Cadence::parse(&Cadence::default_def(kind).expect("built-in cadence")).expect("valid")
    })
});

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn plans_are_spaced_lawful_and_never_breach_a_cap_or_quiet_period(
        (customer, custom) in plan_case()
    ) {
        let set = &*BUNDLED;
        let candidates = Candidates::explicit(&customer.zones, &customer.states);
        let prepared = set.prepare(&candidates, customer.purpose);
        let custom = Cadence::parse(&custom).expect("valid custom cadence");
        for cadence in DEFAULTS.iter().chain([&custom]) {
            let plan = expand(cadence, &Request {
                policy: &prepared,
                zone: customer.zones[0],
                subject: Subject { debt: customer.debt, number: customer.number },
                history: &customer.history,
                start: customer.start,
            });
            if let Err(e) = check_plan(&customer, cadence, &plan) {
                return Err(TestCaseError::fail(format!("{e}\ncadence: {cadence:?}\nplan: {plan:#?}")));
            }
        }
    }
}
