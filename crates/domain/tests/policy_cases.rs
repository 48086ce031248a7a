//! Table-driven cases for the calling policy: compliance.md §5 (T1–T26), every state row of
//! the bundled ruleset, and the "no candidate" / "nothing within the horizon" answers.
//!
//! Each test is one theme: a table of named cases run through `Ruleset::prepare(..)
//! .decide(..)`. Instants are written as UTC (`…Z`) or as local wall-clock time in the
//! customer's first zone (`YYYY-MM-DD HH:MM[:SS]`). A failing assertion names the case.

mod support;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Utc, Weekday};
use chrono_tz::{America, Asia, Etc, Pacific, Tz};
use outdial_domain::UsState;
use outdial_domain::geo::Geo;
use outdial_domain::policy::ruleset::{BUNDLED_US, WindowRule};
use outdial_domain::policy::{
    Candidates, Contact, ContactKind, Decision, LoadOptions, LocationFacts, NO_LOCATION_RULE,
    Reason, Ruleset, RulesetError, Status, Subject,
};
use outdial_domain::task::Purpose;

use support::{BUNDLED, Oracle, at, contact, contact_on, date, is_transition_day, utc};

const NY: Tz = America::New_York;
const CHI: Tz = America::Chicago;
const DEN: Tz = America::Denver;
const PHX: Tz = America::Phoenix;
const LAX: Tz = America::Los_Angeles;

const COLLECTION: Purpose = Purpose::Collection;
const MARKETING: Purpose = Purpose::Marketing;

const L1: Option<&str> = Some("L1");
const L2: Option<&str> = Some("L2");
const N1: Option<&str> = Some("+16175550101");
const N2: Option<&str> = Some("+16175550102");

const FED_COLLECTION: &str = "fed.regf.1006.6.b.1.i";
const FED_MARKETING: &str = "fed.tcpa.64.1200.c.1";
const REGF_CAP: &str = "fed.regf.1006.14.b.2.i.A";
const REGF_COOLDOWN: &str = "fed.regf.1006.14.b.2.i.B";

use Reason::{AfterWindow, BeforeWindow, ClosedDay, Cooldown, FrequencyCap, Holiday};

// ---------------------------------------------------------------------------------------
// The case table
// ---------------------------------------------------------------------------------------

/// An instant written in a case: UTC (`…Z`), local wall-clock time, or a computed instant.
trait When {
    fn resolve(&self, tz: Tz) -> DateTime<Utc>;
}

impl When for &str {
    fn resolve(&self, tz: Tz) -> DateTime<Utc> {
        if self.ends_with('Z') {
            utc(self)
        } else {
            at(tz, self)
        }
    }
}

impl When for String {
    fn resolve(&self, tz: Tz) -> DateTime<Utc> {
        self.as_str().resolve(tz)
    }
}

impl When for DateTime<Utc> {
    fn resolve(&self, _: Tz) -> DateTime<Utc> {
        *self
    }
}

/// A customer and a purpose; local instants in its cases are read in `tz`.
#[derive(Debug, Clone)]
struct Who {
    cands: Candidates,
    purpose: Purpose,
    tz: Tz,
}

fn who(zones: &[Tz], states: &[UsState], purpose: Purpose) -> Who {
    Who {
        cands: Candidates::explicit(zones, states),
        purpose,
        tz: zones.first().copied().unwrap_or(Tz::UTC),
    }
}

fn resolved(facts: LocationFacts<'_>, purpose: Purpose) -> Who {
    let cands = Candidates::resolve(&facts, Geo::us());
    let tz = cands.zones.first().copied().unwrap_or(Tz::UTC);
    Who { cands, purpose, tz }
}

impl Who {
    fn case(&self, name: impl Into<String>, t: impl When) -> Case {
        Case {
            name: name.into(),
            who: self.clone(),
            t: t.resolve(self.tz),
            subject: Subject {
                debt: L1,
                number: N1,
            },
            history: Vec::new(),
            allow: true,
            next: None,
            blocks: Vec::new(),
            until: None,
        }
    }

    fn with(&self, purpose: Purpose) -> Who {
        Who {
            purpose,
            ..self.clone()
        }
    }
}

/// One row: a customer, an instant, and what the engine must answer. A case expects
/// `Allow` unless one of `denied`, `next`, `no_next`, `by`, `by_in` or `until` is called.
#[derive(Debug, Clone)]
struct Case {
    name: String,
    who: Who,
    t: DateTime<Utc>,
    subject: Subject<'static>,
    history: Vec<Contact>,
    allow: bool,
    /// `Some(x)`: `next_allowed` must equal `x`.
    next: Option<Option<DateTime<Utc>>>,
    /// Blocks that must be present: rule, reason, and the zone if given.
    blocks: Vec<(&'static str, Reason, Option<Tz>)>,
    /// A block of this rule must report this `until`.
    until: Option<(&'static str, DateTime<Utc>)>,
}

impl Case {
    fn denied(mut self) -> Self {
        self.allow = false;
        self
    }

    fn next(mut self, next: impl When) -> Self {
        self.allow = false;
        self.next = Some(Some(next.resolve(self.who.tz)));
        self
    }

    fn no_next(mut self) -> Self {
        self.allow = false;
        self.next = Some(None);
        self
    }

    fn by(mut self, rule: &'static str, reason: Reason) -> Self {
        self.allow = false;
        self.blocks.push((rule, reason, None));
        self
    }

    fn by_in(mut self, rule: &'static str, reason: Reason, zone: Tz) -> Self {
        self.allow = false;
        self.blocks.push((rule, reason, Some(zone)));
        self
    }

    fn until(mut self, rule: &'static str, until: impl When) -> Self {
        self.allow = false;
        self.until = Some((rule, until.resolve(self.who.tz)));
        self
    }

    fn history(mut self, history: &[Contact]) -> Self {
        self.history = history.to_vec();
        self
    }

    fn subject(mut self, debt: Option<&'static str>, number: Option<&'static str>) -> Self {
        self.subject = Subject { debt, number };
        self
    }
}

/// Run every case against `set`; prints and returns the number of cases.
fn run(theme: &str, set: &Ruleset, cases: &[Case]) -> usize {
    assert!(!cases.is_empty(), "{theme}: empty table");
    for c in cases {
        let name = format!("{theme} / {}", c.name);
        let prepared = set.prepare(&c.who.cands, c.who.purpose);
        let d = prepared.decide(c.t, &c.subject, &c.history);
        assert_eq!(
            prepared.allows(c.t, &c.subject, &c.history),
            d.is_allow(),
            "{name}: allows() disagrees with decide()"
        );
        if c.allow {
            assert!(
                d.is_allow(),
                "{name}: expected Allow at {}, got {d:#?}",
                c.t
            );
            continue;
        }
        let Decision::Deny {
            blocks,
            next_allowed,
            searched_until,
            ..
        } = &d
        else {
            panic!("{name}: expected Deny at {}, got Allow", c.t);
        };
        assert!(!blocks.is_empty(), "{name}: Deny without blocks");
        assert_eq!(
            *searched_until,
            c.t + set.search_horizon,
            "{name}: searched_until"
        );
        if let Some(expected) = c.next {
            assert_eq!(
                *next_allowed, expected,
                "{name}: next_allowed at {} (blocks: {blocks:#?})",
                c.t
            );
        }
        if let Some(n) = next_allowed {
            assert!(*n > c.t, "{name}: next_allowed {n} not after {}", c.t);
            // `decide(t)` treats contacts after `t` as not yet history, throughout.
            let known: Vec<Contact> = c.history.iter().filter(|h| h.at <= c.t).cloned().collect();
            assert!(
                prepared.allows(*n, &c.subject, &known),
                "{name}: next_allowed {n} is not allowed"
            );
        }
        for (rule, reason, zone) in &c.blocks {
            assert!(
                blocks.iter().any(|b| &*b.rule == *rule
                    && b.reason == *reason
                    && zone.is_none_or(|z| b.zone == Some(z))),
                "{name}: expected a block by {rule} ({reason:?}{}) at {}, got {blocks:#?}",
                zone.map(|z| format!(" in {z}")).unwrap_or_default(),
                c.t
            );
        }
        if let Some((rule, until)) = c.until {
            assert!(
                blocks
                    .iter()
                    .any(|b| &*b.rule == rule && b.until == Some(until)),
                "{name}: expected {rule} to block until {until}, got {blocks:#?}"
            );
        }
    }
    println!("{theme}: {} cases", cases.len());
    cases.len()
}

/// `n` contacts of `kind` about `debt`, one a day at the local date and time `first`.
fn daily(tz: Tz, first: &str, n: i64, debt: Option<&str>, kind: ContactKind) -> Vec<Contact> {
    let (d, time) = first.split_once(' ').expect("date and time");
    (0..n)
        .map(|i| {
            let day = date(d) + Duration::days(i);
            contact(at(tz, &format!("{day} {time}")), debt, kind)
        })
        .collect()
}

/// `n` placed attempts about `debt`, 1, 2, … `n` hours before `t`.
fn hours_before(t: DateTime<Utc>, n: i64, debt: Option<&str>) -> Vec<Contact> {
    (1..=n)
        .map(|h| contact(t - Duration::hours(h), debt, ContactKind::Placed))
        .collect()
}

// ---------------------------------------------------------------------------------------
// T1–T3: DST and offsets
// ---------------------------------------------------------------------------------------

/// Federal test windows with bounds inside DST changes: collection 02:30-12:00 (start in
/// the spring gap) and marketing 00:00-01:30 (end in the fall overlap).
const DST_EDGES: &str = r#"
[meta]
version = "test-dst-edges"

[operational]
guard_before_end = "5m"
max_ring = "45s"
search_horizon = "21d"

[[rule]]
id = "test.gap_start"
kind = "window"
title = "starts at 02:30"
purposes = ["collection"]
hours = { all = ["02:30", "12:00"] }
sources = ["test"]
status = "verified"

[[rule]]
id = "test.overlap_end"
kind = "window"
title = "ends at 01:30"
purposes = ["marketing"]
hours = { all = ["00:00", "01:30"] }
sources = ["test"]
status = "verified"
"#;

fn parse(text: &str) -> Ruleset {
    Ruleset::parse(text, LoadOptions::default()).expect("test ruleset parses")
}

/// compliance.md §5 T1.
#[test]
fn spring_forward_keeps_the_wall_clock_window_and_caps_count_real_hours() {
    let ny = who(&[NY], &[], COLLECTION);
    let mut cases = Vec::new();
    for day in ["2025-03-09", "2026-03-08", "2027-03-14", "2028-03-12"] {
        let eve = date(day) - Duration::days(1);
        cases.extend([
            ny.case(format!("{day} 07:59 EDT"), format!("{day} 07:59"))
                .by(FED_COLLECTION, BeforeWindow)
                .next(format!("{day} 08:00")),
            ny.case(format!("{day} 08:00 EDT opens"), format!("{day} 08:00")),
            ny.case(
                format!("{day} 20:54:14 EDT last start"),
                format!("{day} 20:54:14"),
            ),
            ny.case(format!("{day} 20:54:15 EDT"), format!("{day} 20:54:15"))
                .by(FED_COLLECTION, AfterWindow),
            ny.case(
                format!("{day} 01:59 EST, before the gap"),
                format!("{day} 01:59"),
            )
            .next(format!("{day} 08:00")),
            ny.case(format!("{eve} 08:00 EST opens"), format!("{eve} 08:00")),
            ny.case(format!("{eve} 07:59 EST"), format!("{eve} 07:59"))
                .denied(),
        ]);
    }
    let chi = who(&[CHI], &[], COLLECTION);
    cases.extend([
        ny.case("12:00Z = 08:00 EDT opens", "2026-03-08T12:00:00Z"),
        ny.case("11:59Z = 07:59 EDT", "2026-03-08T11:59:00Z")
            .next("2026-03-08T12:00:00Z"),
        ny.case("00:54:14Z = 20:54:14 EDT", "2026-03-09T00:54:14Z"),
        ny.case("00:54:15Z = 20:54:15 EDT", "2026-03-09T00:54:15Z")
            .by(FED_COLLECTION, AfterWindow)
            .next("2026-03-09T12:00:00Z"),
        ny.case("day before: 12:00Z = 07:00 EST", "2026-03-07T12:00:00Z")
            .next("2026-03-07T13:00:00Z"),
        chi.case("Chicago 12:59Z = 07:59 CDT", "2026-03-08T12:59:00Z")
            .next("2026-03-08T13:00:00Z"),
    ]);
    // A rolling 24 h cap counts real hours: 12:00 EST on 03-07 + 24 h = 13:00 EDT on 03-08.
    let fl = who(&[NY], &[UsState::FL], MARKETING);
    let three = [
        contact(at(NY, "2026-03-07 12:00"), L1, ContactKind::Placed),
        contact(at(NY, "2026-03-07 15:00"), L1, ContactKind::Placed),
        contact(at(NY, "2026-03-08 10:00"), L1, ContactKind::Placed),
    ];
    let fl_cap = "st.fl.501.616.6.b";
    cases.extend([
        fl.case("FL 3/24h frees at 13:00 EDT, not 12:00", "2026-03-08 11:00")
            .history(&three)
            .by(fl_cap, FrequencyCap)
            .next("2026-03-08T17:00:00Z"),
        fl.case("FL 3/24h holds at 12:59 EDT", "2026-03-08 12:59")
            .history(&three)
            .by(fl_cap, FrequencyCap),
        fl.case("FL 3/24h frees at 13:00 EDT", "2026-03-08 13:00")
            .history(&three),
    ]);
    run("T1 spring forward", &BUNDLED, &cases);

    // A window start inside the gap moves to the first instant after it (03:00 EDT).
    let gap = [
        ny.case(
            "02:30 does not exist: 01:59 EST waits",
            "2026-03-08T06:59:00Z",
        )
        .by("test.gap_start", BeforeWindow)
        .next("2026-03-08T07:00:00Z"),
        ny.case(
            "03:00 EDT, first instant after the gap",
            "2026-03-08T07:00:00Z",
        ),
        ny.case("next day 02:29 EDT", "2026-03-09 02:29")
            .next("2026-03-09 02:30"),
        ny.case("next day 02:30 EDT", "2026-03-09 02:30"),
    ];
    run(
        "T1 spring forward (start in the gap)",
        &parse(DST_EDGES),
        &gap,
    );
}

/// compliance.md §5 T2.
#[test]
fn fall_back_keeps_the_window_and_reg_f_seven_local_days_can_last_169_hours() {
    let ny = who(&[NY], &[], COLLECTION);
    let mut cases = vec![
        ny.case("13:00Z = 08:00 EST opens", "2026-11-01T13:00:00Z"),
        ny.case("12:59Z = 07:59 EST", "2026-11-01T12:59:00Z")
            .by(FED_COLLECTION, BeforeWindow)
            .next("2026-11-01T13:00:00Z"),
        ny.case("first 01:30 (EDT)", "2026-11-01T05:30:00Z")
            .next("2026-11-01T13:00:00Z"),
        ny.case("second 01:30 (EST)", "2026-11-01T06:30:00Z")
            .next("2026-11-01T13:00:00Z"),
        ny.case("01:54:14Z = 20:54:14 EST", "2026-11-02T01:54:14Z"),
        ny.case("01:54:15Z = 20:54:15 EST", "2026-11-02T01:54:15Z")
            .by(FED_COLLECTION, AfterWindow),
        ny.case("day before: 12:00Z = 08:00 EDT", "2026-10-31T12:00:00Z"),
        ny.case("day before: 11:59Z = 07:59 EDT", "2026-10-31T11:59:00Z")
            .denied(),
    ];
    for day in ["2025-11-02", "2027-11-07"] {
        cases.extend([
            ny.case(format!("{day} 08:00 EST opens"), format!("{day} 08:00")),
            ny.case(format!("{day} 07:59 EST"), format!("{day} 07:59"))
                .denied(),
            ny.case(format!("{day} 20:54:15 EST"), format!("{day} 20:54:15"))
                .denied(),
        ]);
    }
    // Seven calls at 10:00 local, 10-29 .. 11-04, span the change. The oldest (14:00Z)
    // leaves the 169 h window at 11-05 15:00Z = 10:00 EST (168 h would say 09:00 EST).
    let seven = daily(NY, "2026-10-29 10:00", 7, L1, ContactKind::Placed);
    // The oldest at 00:10 EDT on 10-29, the 8th at 23:50 EST on 11-04: the same 7 local
    // days, but 168 h 40 min apart, so a pure 168 h window would let it through.
    let mut edge = vec![contact(at(NY, "2026-10-29 00:10"), L1, ContactKind::Placed)];
    edge.extend(daily(NY, "2026-10-30 12:00", 6, L1, ContactKind::Placed));
    // A conversation at 00:30 EDT on 10-31: day one is 10-31, so the quiet period ends at
    // the start of 11-07 EST (05:00Z), later than conversation + 168 h (04:30Z).
    let conv = [contact(
        utc("2026-10-31T04:30:00Z"),
        L1,
        ContactKind::Conversation,
    )];
    cases.extend([
        ny.case(
            "8th call within the 7 days spanning the change",
            "2026-11-04 18:00",
        )
        .history(&seven)
        .by(REGF_CAP, FrequencyCap)
        .until(REGF_CAP, "2026-11-05T15:00:00Z")
        .next("2026-11-05T15:00:00Z"),
        ny.case("8th call at 09:59:59 EST on day 8", "2026-11-05T14:59:59Z")
            .history(&seven)
            .by(REGF_CAP, FrequencyCap)
            .next("2026-11-05T15:00:00Z"),
        ny.case("8th call at 10:00 EST on day 8", "2026-11-05T15:00:00Z")
            .history(&seven),
        ny.case("8th call 168h40m after the oldest", "2026-11-04 23:50")
            .history(&edge)
            .by(REGF_CAP, FrequencyCap)
            .until(REGF_CAP, "2026-11-05T05:10:00Z")
            .next("2026-11-05T13:00:00Z"),
        ny.case(
            "quiet period ends at the start of local day 8",
            "2026-11-07T04:45:00Z",
        )
        .history(&conv)
        .by(REGF_COOLDOWN, Cooldown)
        .until(REGF_COOLDOWN, "2026-11-07T05:00:00Z")
        .next("2026-11-07T13:00:00Z"),
    ]);
    run("T2 fall back", &BUNDLED, &cases);

    // A window end inside the overlap takes the earlier instant: 01:30 EDT = 05:30Z, so the
    // last start is 05:24:15Z and the second pass through 01:00-01:30 (EST) is closed.
    let m = ny.with(MARKETING);
    let overlap = [
        m.case("01:24:14 EDT, first pass", "2026-11-01T05:24:14Z"),
        m.case("01:24:15 EDT, first pass", "2026-11-01T05:24:15Z")
            .by("test.overlap_end", AfterWindow)
            .next("2026-11-02T05:00:00Z"),
        m.case("01:10 EST, second pass", "2026-11-01T06:10:00Z")
            .by("test.overlap_end", AfterWindow)
            .next("2026-11-02T05:00:00Z"),
        m.case("next day 00:00 EST opens", "2026-11-02T05:00:00Z"),
        m.case("next day 01:24:15 EST", "2026-11-02T06:24:15Z")
            .denied(),
        ny.case("02:30 EST occurs once: 07:29Z", "2026-11-01T07:29:00Z")
            .next("2026-11-01T07:30:00Z"),
    ];
    run(
        "T2 fall back (end in the overlap)",
        &parse(DST_EDGES),
        &overlap,
    );
}

/// compliance.md §5 T3: the offset comes from the IANA zone at the instant, never a cache.
#[test]
fn offsets_are_recomputed_from_the_iana_zone_at_each_instant() {
    let ny = who(&[NY], &[], COLLECTION);
    let cached_est = who(&[Etc::GMTPlus5], &[], COLLECTION);
    let cached_edt = who(&[Etc::GMTPlus4], &[], COLLECTION);
    let cases = [
        ny.case("NY 03-08 12:00Z is 08:00 EDT", "2026-03-08T12:00:00Z"),
        cached_est
            .case(
                "offset -5 cached on 03-07 reads 07:00",
                "2026-03-08T12:00:00Z",
            )
            .by(FED_COLLECTION, BeforeWindow)
            .next("2026-03-08T13:00:00Z"),
        ny.case("NY 03-07 12:00Z is 07:00 EST", "2026-03-07T12:00:00Z")
            .denied(),
        ny.case("NY 11-01 12:30Z is 07:30 EST", "2026-11-01T12:30:00Z")
            .next("2026-11-01T13:00:00Z"),
        cached_edt.case(
            "offset -4 cached on 10-31 reads 08:30",
            "2026-11-01T12:30:00Z",
        ),
    ];
    run("T3 offsets", &BUNDLED, &cases);
}

// ---------------------------------------------------------------------------------------
// T6, T8, T9: zones at the edges
// ---------------------------------------------------------------------------------------

/// compliance.md §5 T6.
#[test]
fn arizona_stays_on_mst_while_the_navajo_nation_follows_denver() {
    let navajo = resolved(
        LocationFacts {
            zip: Some("86515"),
            ..Default::default()
        },
        COLLECTION,
    );
    assert_eq!(
        navajo.cands.zones,
        [DEN],
        "ZIP 86515 (Window Rock) is on Denver time"
    );
    assert_eq!(navajo.cands.states, [UsState::AZ]);
    let phoenix = resolved(
        LocationFacts {
            zip: Some("85001"),
            ..Default::default()
        },
        COLLECTION,
    );
    assert_eq!(phoenix.cands.zones, [PHX]);
    let phx_la = resolved(
        LocationFacts {
            timezone: Some(LAX),
            zip: Some("85001"),
            ..Default::default()
        },
        COLLECTION,
    );
    let ac928 = resolved(
        LocationFacts {
            area_code: Some(928),
            ..Default::default()
        },
        COLLECTION,
    );
    assert!(ac928.cands.zones.contains(&DEN) && ac928.cands.zones.contains(&PHX));
    let cases = [
        // Winter: MST everywhere in Arizona; Los Angeles is an hour behind.
        navajo
            .case("winter Navajo 14:59Z", "2026-01-07T14:59:00Z")
            .next("2026-01-07T15:00:00Z"),
        navajo.case("winter Navajo 15:00Z = 08:00 MST", "2026-01-07T15:00:00Z"),
        navajo.case("winter Navajo 03:54:14Z", "2026-01-08T03:54:14Z"),
        navajo
            .case("winter Navajo 03:54:15Z", "2026-01-08T03:54:15Z")
            .denied(),
        phoenix
            .case("winter Phoenix 14:59Z", "2026-01-07T14:59:00Z")
            .denied(),
        phoenix.case("winter Phoenix 15:00Z = 08:00 MST", "2026-01-07T15:00:00Z"),
        phoenix.case("winter Phoenix 03:54:14Z", "2026-01-08T03:54:14Z"),
        phoenix
            .case("winter Phoenix 03:54:15Z", "2026-01-08T03:54:15Z")
            .denied(),
        phx_la
            .case(
                "winter Phoenix+LA 15:00Z = 07:00 PST",
                "2026-01-07T15:00:00Z",
            )
            .by_in(FED_COLLECTION, BeforeWindow, LAX)
            .next("2026-01-07T16:00:00Z"),
        phx_la.case("winter Phoenix+LA 16:00Z", "2026-01-07T16:00:00Z"),
        phx_la.case("winter Phoenix+LA 03:54:14Z", "2026-01-08T03:54:14Z"),
        phx_la
            .case("winter Phoenix+LA 03:54:15Z", "2026-01-08T03:54:15Z")
            .by_in(FED_COLLECTION, AfterWindow, PHX),
        // Summer: the Navajo Nation is on MDT, Phoenix on MST = PDT.
        navajo
            .case("summer Navajo 13:59Z", "2026-07-08T13:59:00Z")
            .next("2026-07-08T14:00:00Z"),
        navajo.case("summer Navajo 14:00Z = 08:00 MDT", "2026-07-08T14:00:00Z"),
        navajo.case("summer Navajo 02:54:14Z", "2026-07-09T02:54:14Z"),
        navajo
            .case("summer Navajo 02:54:15Z", "2026-07-09T02:54:15Z")
            .denied(),
        phoenix
            .case("summer Phoenix 14:00Z = 07:00 MST", "2026-07-08T14:00:00Z")
            .next("2026-07-08T15:00:00Z"),
        phoenix.case("summer Phoenix 15:00Z", "2026-07-08T15:00:00Z"),
        phoenix.case("summer Phoenix 02:54:15Z", "2026-07-09T02:54:15Z"),
        phoenix.case("summer Phoenix 03:54:14Z", "2026-07-09T03:54:14Z"),
        phoenix
            .case("summer Phoenix 03:54:15Z", "2026-07-09T03:54:15Z")
            .denied(),
        phx_la
            .case("summer Phoenix+LA 14:59Z", "2026-07-08T14:59:00Z")
            .denied(),
        phx_la.case("summer Phoenix+LA 15:00Z", "2026-07-08T15:00:00Z"),
        phx_la.case("summer Phoenix+LA 03:54:14Z", "2026-07-09T03:54:14Z"),
        phx_la
            .case("summer Phoenix+LA 03:54:15Z", "2026-07-09T03:54:15Z")
            .denied(),
        ac928
            .case(
                "summer 928 14:00Z waits for Phoenix",
                "2026-07-08T14:00:00Z",
            )
            .by_in(FED_COLLECTION, BeforeWindow, PHX)
            .next("2026-07-08T15:00:00Z"),
        ac928.case("summer 928 02:54:14Z", "2026-07-09T02:54:14Z"),
        ac928
            .case(
                "summer 928 02:54:15Z ends by Denver",
                "2026-07-09T02:54:15Z",
            )
            .by_in(FED_COLLECTION, AfterWindow, DEN),
    ];
    run("T6 Arizona", &BUNDLED, &cases);
}

/// compliance.md §5 T8.
#[test]
fn alaska_area_code_907_brings_in_adak_and_shifts_the_window() {
    let (anc, adk) = (America::Anchorage, America::Adak);
    let by = |facts| resolved(facts, COLLECTION);
    let ak = by(LocationFacts {
        area_code: Some(907),
        ..Default::default()
    });
    assert!(
        ak.cands.zones.contains(&adk),
        "907 includes Adak: {:?}",
        ak.cands.zones
    );
    assert!(ak.cands.zones.contains(&anc));
    let anch = by(LocationFacts {
        zip: Some("99501"),
        ..Default::default()
    });
    assert_eq!(anch.cands.zones, [anc]);
    let adak = by(LocationFacts {
        zip: Some("99546"),
        ..Default::default()
    });
    assert_eq!(adak.cands.zones, [adk]);
    let cases = [
        anch.case(
            "winter Anchorage 17:00Z = 08:00 AKST",
            "2026-01-07T17:00:00Z",
        ),
        anch.case("winter Anchorage 16:59Z", "2026-01-07T16:59:00Z")
            .denied(),
        anch.case("winter Anchorage 05:54:14Z", "2026-01-08T05:54:14Z"),
        adak.case("winter Adak 17:59Z", "2026-01-07T17:59:00Z")
            .denied(),
        adak.case("winter Adak 18:00Z = 08:00 HST", "2026-01-07T18:00:00Z"),
        adak.case("winter Adak 06:54:14Z", "2026-01-08T06:54:14Z"),
        ak.case("winter 907 17:00Z is 07:00 in Adak", "2026-01-07T17:00:00Z")
            .by_in(FED_COLLECTION, BeforeWindow, adk)
            .next("2026-01-07T18:00:00Z"),
        ak.case("winter 907 18:00Z", "2026-01-07T18:00:00Z"),
        ak.case("winter 907 05:54:14Z", "2026-01-08T05:54:14Z"),
        ak.case(
            "winter 907 05:54:15Z ends by Anchorage",
            "2026-01-08T05:54:15Z",
        )
        .by_in(FED_COLLECTION, AfterWindow, anc)
        .next("2026-01-08T18:00:00Z"),
        anch.case(
            "summer Anchorage 16:00Z = 08:00 AKDT",
            "2026-07-08T16:00:00Z",
        ),
        ak.case(
            "summer 907 16:00Z is 07:00 HDT in Adak",
            "2026-07-08T16:00:00Z",
        )
        .next("2026-07-08T17:00:00Z"),
        ak.case("summer 907 17:00Z", "2026-07-08T17:00:00Z"),
        ak.case("summer 907 04:54:14Z", "2026-07-09T04:54:14Z"),
        ak.case("summer 907 04:54:15Z", "2026-07-09T04:54:15Z")
            .denied(),
    ];
    run("T8 Alaska", &BUNDLED, &cases);
}

/// compliance.md §5 T9.
#[test]
fn territories_use_their_own_offsets_and_their_own_local_dates() {
    let by_code = |npa: u16| {
        resolved(
            LocationFacts {
                area_code: Some(npa),
                ..Default::default()
            },
            COLLECTION,
        )
    };
    let (pr, vi, gu, mp, sm) = (
        by_code(787),
        by_code(340),
        by_code(671),
        by_code(670),
        by_code(684),
    );
    assert_eq!(pr.cands.zones, [America::Puerto_Rico]);
    assert_eq!(vi.cands.zones, [America::St_Thomas]);
    assert_eq!(gu.cands.zones, [Pacific::Guam]);
    assert_eq!(mp.cands.zones, [Pacific::Saipan]);
    assert_eq!(sm.cands.zones, [Pacific::Pago_Pago]);
    let mut cases = vec![
        pr.case("Puerto Rico winter 11:59Z", "2026-01-07T11:59:00Z")
            .next("2026-01-07T12:00:00Z"),
        pr.case(
            "Puerto Rico winter 12:00Z = 08:00 AST",
            "2026-01-07T12:00:00Z",
        ),
        pr.case("Puerto Rico summer 11:59Z", "2026-07-08T11:59:00Z")
            .denied(),
        pr.case("Puerto Rico summer 12:00Z (no DST)", "2026-07-08T12:00:00Z"),
        pr.case("Puerto Rico summer 00:54:14Z", "2026-07-09T00:54:14Z"),
        pr.case("Puerto Rico summer 00:54:15Z", "2026-07-09T00:54:15Z")
            .denied(),
        vi.case("USVI winter 12:00Z", "2026-01-07T12:00:00Z"),
        vi.case("USVI summer 11:59Z", "2026-07-08T11:59:00Z")
            .denied(),
        vi.case("USVI summer 12:00Z", "2026-07-08T12:00:00Z"),
        gu.case("Guam 21:59Z = 07:59 ChST", "2026-01-06T21:59:00Z")
            .next("2026-01-06T22:00:00Z"),
        gu.case("Guam 22:00Z = 08:00 ChST next day", "2026-01-06T22:00:00Z"),
        gu.case("Guam 10:54:14Z", "2026-01-07T10:54:14Z"),
        gu.case("Guam 10:54:15Z", "2026-01-07T10:54:15Z").denied(),
        gu.case("Guam summer 22:00Z (no DST)", "2026-07-07T22:00:00Z"),
        mp.case("Saipan 21:59Z", "2026-01-06T21:59:00Z").denied(),
        mp.case("Saipan 22:00Z", "2026-01-06T22:00:00Z"),
        sm.case("American Samoa 18:59Z", "2026-01-07T18:59:00Z")
            .next("2026-01-07T19:00:00Z"),
        sm.case("American Samoa 19:00Z = 08:00 SST", "2026-01-07T19:00:00Z"),
        sm.case("American Samoa 07:54:14Z", "2026-01-08T07:54:14Z"),
        sm.case("American Samoa 07:54:15Z", "2026-01-08T07:54:15Z")
            .denied(),
    ];
    // A Sunday-closed marketing rule (Utah) uses each zone's own date: Sunday 2026-07-12
    // 20:00 EDT is Monday 10:00 in Guam; Saturday 20:00 EDT is Sunday 10:00 in Guam.
    let ut_rule = "st.ut.13-25a-103.3";
    let guam = who(&[Pacific::Guam], &[UsState::UT], MARKETING);
    let ny = who(&[NY], &[UsState::UT], MARKETING);
    let both = who(&[NY, Pacific::Guam], &[UsState::UT], MARKETING);
    let (sun_eve, sat_eve) = ("2026-07-13T00:00:00Z", "2026-07-12T00:00:00Z");
    cases.extend([
        guam.case("Sun 20:00 EDT = Mon 10:00 Guam: Guam", sun_eve),
        ny.case("Sun 20:00 EDT: New York", sun_eve)
            .by_in(ut_rule, ClosedDay, NY),
        both.case("Sun 20:00 EDT: New York + Guam", sun_eve)
            .by_in(ut_rule, ClosedDay, NY),
        guam.case("Sat 20:00 EDT = Sun 10:00 Guam: Guam", sat_eve)
            .by_in(ut_rule, ClosedDay, Pacific::Guam)
            .next("2026-07-12T22:00:00Z"),
        ny.case("Sat 20:00 EDT: New York", sat_eve),
        both.case("Sat 20:00 EDT: New York + Guam", sat_eve).by_in(
            ut_rule,
            ClosedDay,
            Pacific::Guam,
        ),
    ]);
    run("T9 territories", &BUNDLED, &cases);
}

// ---------------------------------------------------------------------------------------
// T12, T13: caps and quiet periods
// ---------------------------------------------------------------------------------------

/// compliance.md §5 T12.
#[test]
fn reg_f_allows_seven_calls_per_debt_per_seven_days_and_a_quiet_week_after_a_conversation() {
    let ny = who(&[NY], &[], COLLECTION);
    let placed = |debt| daily(NY, "2026-01-05 10:00", 7, debt, ContactKind::Placed);
    let seven = placed(L1);
    let six = daily(NY, "2026-01-05 10:00", 6, L1, ContactKind::Placed);
    let not_connected = daily(NY, "2026-01-05 10:00", 7, L1, ContactKind::NotConnected);
    let mut seven_six = placed(L1);
    seven_six.extend(daily(NY, "2026-01-05 11:00", 6, L2, ContactKind::Placed));
    let mut seven_seven = seven_six.clone();
    seven_seven.push(contact(at(NY, "2026-01-11 11:00"), L2, ContactKind::Placed));
    let sunday = "2026-01-11 20:00";
    // The oldest (01-05 15:00Z) + 169 h = 01-12 16:00Z (11:00 EST); the local-day bound
    // (start of 01-12) is earlier.
    let freed = "2026-01-12T16:00:00Z";
    let conv = [contact(
        at(NY, "2026-01-05 10:00"),
        L1,
        ContactKind::Conversation,
    )];
    // 20:30 EST on 01-05 is 01:30Z on 01-06. Day one is the local date (01-05), so the
    // quiet period ends at conversation + 168 h; were the UTC date day one, it would end at
    // the start of 01-13 EST (05:00Z).
    let late_conv = [contact(
        at(NY, "2026-01-05 20:30"),
        L1,
        ContactKind::Conversation,
    )];
    let cases = [
        ny.case("six attempts allow a seventh", sunday)
            .history(&six),
        ny.case("seven attempts block the eighth", sunday)
            .history(&seven)
            .by(REGF_CAP, FrequencyCap)
            .until(REGF_CAP, freed)
            .next(freed),
        ny.case(
            "seven still block at 10:59:59 EST on day 8",
            "2026-01-12 10:59:59",
        )
        .history(&seven)
        .next(freed),
        ny.case("allowed once the oldest leaves 169 h", freed)
            .history(&seven),
        ny.case("seven on L1 do not block L2", sunday)
            .history(&seven)
            .subject(L2, N1),
        ny.case(
            "seven on L1 and six on L2 allow a 7th on L2",
            "2026-01-11 12:00",
        )
        .history(&seven_six)
        .subject(L2, N1),
        ny.case("seven on L1 and seven on L2 block L2", sunday)
            .history(&seven_seven)
            .subject(L2, N1)
            .by(REGF_CAP, FrequencyCap),
        ny.case("seven about an unknown debt count for L1", sunday)
            .history(&placed(None))
            .by(REGF_CAP, FrequencyCap),
        ny.case("seven on L1 count for an unknown debt", sunday)
            .history(&seven)
            .subject(None, N1)
            .by(REGF_CAP, FrequencyCap),
        ny.case("not-connected attempts still count", sunday)
            .history(&not_connected)
            .by(REGF_CAP, FrequencyCap)
            .next(freed),
        ny.with(Purpose::Verification)
            .case("verification shares the Reg F cap", sunday)
            .history(&seven)
            .by(REGF_CAP, FrequencyCap),
        ny.with(MARKETING)
            .case("marketing is outside Reg F", sunday)
            .history(&seven),
        ny.case("a conversation starts the quiet period", "2026-01-05 10:30")
            .history(&conv)
            .by(REGF_COOLDOWN, Cooldown)
            .next("2026-01-12T15:00:00Z"),
        ny.case("quiet on day 7", sunday)
            .history(&conv)
            .by(REGF_COOLDOWN, Cooldown),
        ny.case("quiet at 09:59 EST on day 8", "2026-01-12 09:59")
            .history(&conv)
            .next("2026-01-12T15:00:00Z"),
        ny.case(
            "quiet ends 168 h after the conversation",
            "2026-01-12 10:00",
        )
        .history(&conv),
        ny.case("the quiet period is per debt", "2026-01-05 10:30")
            .history(&conv)
            .subject(L2, N1),
        ny.case(
            "late conversation: day one is its local date",
            "2026-01-12 20:00",
        )
        .history(&late_conv)
        .by(REGF_COOLDOWN, Cooldown)
        .until(REGF_COOLDOWN, "2026-01-13T01:30:00Z")
        .next("2026-01-13T01:30:00Z"),
        ny.case(
            "late conversation: allowed 20:30 EST day 8",
            "2026-01-12 20:30",
        )
        .history(&late_conv),
    ];
    run("T12 Reg F", &BUNDLED, &cases);
}

/// compliance.md §5 T13 and the telemarketing 3-per-24 h caps.
#[test]
fn state_caps_count_per_their_own_keys_and_purposes() {
    let mut cases = Vec::new();
    // Massachusetts: 2 per 7 days per debt per (personal) number, collection only.
    let ma = who(&[NY], &[UsState::MA], COLLECTION);
    let ma_cap = "st.ma.940cmr7.04.1.f";
    let two = [
        contact_on(at(NY, "2026-01-05 10:00"), L1, N1, ContactKind::Placed),
        contact_on(at(NY, "2026-01-06 10:00"), L1, N1, ContactKind::Placed),
    ];
    let two_unknown_number = [
        contact_on(at(NY, "2026-01-05 10:00"), L1, None, ContactKind::Placed),
        contact_on(at(NY, "2026-01-06 10:00"), L1, None, ContactKind::Placed),
    ];
    let wed = "2026-01-07 10:00";
    cases.extend([
        ma.case("MA: 3rd call, same debt and number", wed)
            .history(&two)
            .by(ma_cap, FrequencyCap)
            .next("2026-01-12T15:00:00Z"),
        ma.case("MA: same debt, another number", wed)
            .history(&two)
            .subject(L1, N2),
        ma.case("MA: same number, another debt", wed)
            .history(&two)
            .subject(L2, N1),
        ma.case("MA: unknown number to dial counts as the same", wed)
            .history(&two)
            .subject(L1, None)
            .by(ma_cap, FrequencyCap),
        ma.case("MA: calls to unknown numbers count for every number", wed)
            .history(&two_unknown_number)
            .subject(L1, N2)
            .by(ma_cap, FrequencyCap),
        ma.case("MA: one call allows a second", wed)
            .history(&two[..1]),
        ma.with(Purpose::Verification)
            .case("MA: not for verification calls", wed)
            .history(&two),
        who(&[NY], &[], COLLECTION)
            .case("MA: no MA candidate, no MA cap", wed)
            .history(&two),
    ]);
    // Washington: 3 per 7 days per person, across debts.
    let wa = who(&[LAX], &[UsState::WA], COLLECTION);
    let wa_cap = "st.wa.19.16.250.cap";
    let three = [
        contact(at(LAX, "2026-01-05 10:00"), L1, ContactKind::Placed),
        contact(at(LAX, "2026-01-06 10:00"), L2, ContactKind::Placed),
        contact(at(LAX, "2026-01-07 10:00"), L1, ContactKind::Placed),
    ];
    let thu = "2026-01-08 10:00";
    cases.extend([
        wa.case("WA: 4th communication in a week, other debt", thu)
            .history(&three)
            .subject(L2, N1)
            .by(wa_cap, FrequencyCap)
            .next("2026-01-12T18:00:00Z"),
        wa.case("WA: 4th communication in a week, new debt", thu)
            .history(&three)
            .subject(Some("L3"), N1)
            .by(wa_cap, FrequencyCap),
        wa.case("WA: two allow a third", thu).history(&three[..2]),
        wa.with(Purpose::Verification)
            .case("WA: collection agencies only", thu)
            .history(&three),
        wa.case(
            "WA: 07:30 start, but federal 08:00 binds",
            "2026-01-08 07:45",
        )
        .by(FED_COLLECTION, BeforeWindow)
        .next("2026-01-08 08:00"),
    ]);
    // Telemarketing: 3 per 24 h on the same subject in FL, OK and MD, marketing only.
    for (state, zone, cap) in [
        (UsState::FL, NY, "st.fl.501.616.6.b"),
        (UsState::OK, CHI, "st.ok.775c.4.cap"),
        (UsState::MD, NY, "st.md.14-4502.cap"),
    ] {
        let m = who(&[zone], &[state], MARKETING);
        let t = at(zone, "2026-01-07 12:00");
        let three = [
            contact(t - Duration::hours(20), L1, ContactKind::Placed),
            contact(t - Duration::hours(10), L1, ContactKind::Placed),
            contact(t - Duration::hours(1), L1, ContactKind::Placed),
        ];
        cases.extend([
            m.case(format!("{state}: 4th marketing call in 24 h"), t)
                .history(&three)
                .by(cap, FrequencyCap)
                .next(t + Duration::hours(4)),
            m.case(format!("{state}: another subject"), t)
                .history(&three)
                .subject(L2, N1),
            m.case(format!("{state}: 3rd marketing call"), t)
                .history(&three[1..]),
            m.with(COLLECTION)
                .case(format!("{state}: not for collection"), t)
                .history(&three),
        ]);
    }
    let ga = who(&[NY], &[UsState::GA], MARKETING);
    let t = at(NY, "2026-01-07 12:00");
    cases.push(
        ga.case("GA: no telemarketing cap", t)
            .history(&hours_before(t, 3, L1)),
    );
    run("T13 state caps", &BUNDLED, &cases);
}

// ---------------------------------------------------------------------------------------
// T15, T17: state reached by area code, days and holidays
// ---------------------------------------------------------------------------------------

/// compliance.md §5 T15.
#[test]
fn florida_area_code_with_a_georgia_address_applies_florida_rules_in_both_zones() {
    let fl_ga = resolved(
        LocationFacts {
            state: Some(UsState::GA),
            zip: Some("30301"),
            area_code: Some(850),
            ..Default::default()
        },
        MARKETING,
    );
    let (zones, states) = (&fl_ga.cands.zones, &fl_ga.cands.states);
    assert!(zones.contains(&NY) && zones.contains(&CHI), "{zones:?}");
    assert!(
        states.contains(&UsState::GA) && states.contains(&UsState::FL),
        "{states:?}"
    );
    let ga = resolved(
        LocationFacts {
            state: Some(UsState::GA),
            zip: Some("30301"),
            ..Default::default()
        },
        MARKETING,
    );
    assert_eq!(
        (&ga.cands.zones[..], &ga.cands.states[..]),
        (&[NY][..], &[UsState::GA][..])
    );
    assert_eq!(fl_ga.tz, NY, "local instants below are Eastern");
    let fl_window = "st.fl.501.616.6.a";
    let fl_collection = "st.fl.559.72.17";
    let t0 = at(NY, "2026-01-07 12:00");
    let three = hours_before(t0, 3, L1);
    let c = fl_ga.with(COLLECTION);
    let cases = [
        fl_ga
            .case("marketing 08:30 EST = 07:30 CST", "2026-01-07 08:30")
            .by_in(FED_MARKETING, BeforeWindow, CHI)
            .by_in(fl_window, BeforeWindow, CHI)
            .next("2026-01-07 09:00"),
        fl_ga.case("marketing 09:00 EST = 08:00 CST", "2026-01-07 09:00"),
        fl_ga.case(
            "marketing 19:54:14 EST, FL last start",
            "2026-01-07 19:54:14",
        ),
        fl_ga
            .case(
                "marketing 19:54:15 EST: FL 20:00 end",
                "2026-01-07 19:54:15",
            )
            .by_in(fl_window, AfterWindow, NY),
        ga.case("GA only: 19:54:15 EST", "2026-01-07 19:54:15"),
        ga.case("GA only: 20:54:15 EST", "2026-01-07 20:54:15")
            .by(FED_MARKETING, AfterWindow),
        c.case("collection 08:30 EST = 07:30 CST", "2026-01-07 08:30")
            .by_in(fl_collection, BeforeWindow, CHI)
            .next("2026-01-07 09:00"),
        c.case("collection 20:54:14 EST", "2026-01-07 20:54:14"),
        c.case("collection 20:54:15 EST", "2026-01-07 20:54:15")
            .by_in(fl_collection, AfterWindow, NY),
        fl_ga
            .case("FL 3/24h reaches the GA address via 850", t0)
            .history(&three)
            .by("st.fl.501.616.6.b", FrequencyCap),
        ga.case("GA address alone: no FL cap", t0).history(&three),
    ];
    run("T15 area-code state", &BUNDLED, &cases);
}

/// compliance.md §5 T17.
#[test]
fn sunday_rules_and_state_holidays_use_the_consumers_local_date() {
    let tx = who(&[CHI], &[UsState::TX], MARKETING);
    let ri = who(&[NY], &[UsState::RI], MARKETING);
    let ut = who(&[DEN], &[UsState::UT], MARKETING);
    let al = who(&[CHI], &[UsState::AL], MARKETING);
    let la = who(&[CHI], &[UsState::LA], MARKETING);
    let tx_r = "st.tx.301.051";
    let ri_r = "st.ri.5-61-3.6";
    let ut_r = "st.ut.13-25a-103.3";
    let al_r = "st.al.770-x-5-.17";
    let la_r = "st.la.r-29617";
    let noon = |d: &str| format!("{d} 12:00");
    let cases = [
        // Texas: noon start on Sunday, 9:00 otherwise; debt collection excluded.
        tx.case("TX Sunday 11:59", "2026-01-11 11:59")
            .by(tx_r, BeforeWindow)
            .next("2026-01-11 12:00"),
        tx.case("TX Sunday 12:00", "2026-01-11 12:00"),
        tx.case("TX Sunday 20:54:14", "2026-01-11 20:54:14"),
        tx.case("TX Monday 08:59", "2026-01-12 08:59")
            .by(tx_r, BeforeWindow),
        tx.case("TX Monday 09:00", "2026-01-12 09:00"),
        tx.case("TX Saturday 08:30", "2026-01-10 08:30")
            .by(tx_r, BeforeWindow),
        tx.with(COLLECTION)
            .case("TX Sunday 08:00 collection", "2026-01-11 08:00"),
        // Rhode Island: Mon-Fri 9-18, Sat 10-17, no Sundays, no state or federal holidays.
        ri.case("RI Saturday 09:59", "2026-01-10 09:59")
            .by(ri_r, BeforeWindow),
        ri.case("RI Saturday 10:00", "2026-01-10 10:00"),
        ri.case("RI Saturday 16:54:14", "2026-01-10 16:54:14"),
        ri.case("RI Saturday 16:54:15", "2026-01-10 16:54:15")
            .by(ri_r, AfterWindow)
            .next("2026-01-12 09:00"),
        ri.case("RI Sunday", noon("2026-01-11"))
            .by(ri_r, ClosedDay)
            .next("2026-01-12 09:00"),
        ri.case("RI Monday 08:59", "2026-01-12 08:59")
            .by(ri_r, BeforeWindow),
        ri.case("RI Monday 17:54:14", "2026-01-12 17:54:14"),
        ri.case("RI Monday 17:54:15", "2026-01-12 17:54:15")
            .by(ri_r, AfterWindow),
        ri.case("RI MLK Day 2026-01-19", noon("2026-01-19"))
            .by(ri_r, Holiday)
            .next("2026-01-20 09:00"),
        ri.case("RI Juneteenth (federal only)", noon("2026-06-19"))
            .by(ri_r, Holiday),
        ri.case("RI Victory Day (state only)", noon("2026-08-10"))
            .by(ri_r, Holiday),
        ri.case("RI Columbus Day 2026-10-12", noon("2026-10-12"))
            .by(ri_r, Holiday),
        ri.case("RI the day after Columbus Day", noon("2026-10-13")),
        ri.with(COLLECTION)
            .case("RI Sunday collection", noon("2026-01-11")),
        // Utah: Pioneer Day (07-24), observed Friday when on a Saturday.
        ut.case("UT Pioneer Day Fri 2026-07-24", noon("2026-07-24"))
            .by(ut_r, Holiday)
            .next("2026-07-25 08:00"),
        ut.case("UT Thu 2026-07-23", noon("2026-07-23")),
        ut.case("UT Sat 2027-07-24 observed Fri 07-23", noon("2027-07-23"))
            .by(ut_r, Holiday),
        ut.case("UT Sat 2027-07-24 itself", noon("2027-07-24"))
            .by(ut_r, Holiday),
        ut.case("UT Thu 2027-07-22", noon("2027-07-22")),
        ut.case("UT Pioneer Day Mon 2028-07-24", noon("2028-07-24"))
            .by(ut_r, Holiday),
        ut.case("UT Tue 2028-07-25", noon("2028-07-25")),
        ut.case("UT Sunday", noon("2026-07-26")).by(ut_r, ClosedDay),
        ut.with(COLLECTION)
            .case("UT Pioneer Day collection", noon("2026-07-24")),
        // Alabama: Saturday holidays observed Friday, Sunday holidays Monday.
        al.case("AL Jul 4 on Sat 2026: Fri 07-03", noon("2026-07-03"))
            .by(al_r, Holiday),
        al.case("AL Sat 2026-07-04 itself", noon("2026-07-04"))
            .by(al_r, Holiday),
        al.case("AL Thu 2026-07-02", noon("2026-07-02")),
        al.case("AL Jul 4 on Sun 2027: Mon 07-05", noon("2027-07-05"))
            .by(al_r, Holiday)
            .next("2027-07-06 08:00"),
        al.case("AL Tue 2027-07-06", noon("2027-07-06")),
        al.case("AL Christmas on Sat 2027: Fri 12-24", noon("2027-12-24"))
            .by(al_r, Holiday),
        al.case("AL Christmas on Sun 2022: Mon 12-26", noon("2022-12-26"))
            .by(al_r, Holiday),
        al.case("AL Mardi Gras 2026-02-17", noon("2026-02-17"))
            .by(al_r, Holiday),
        al.case("AL Sunday", noon("2026-07-12")).by(al_r, ClosedDay),
        // Louisiana: governor proclamations.
        la.case("LA proclamation 2023-07-03", noon("2023-07-03"))
            .by(la_r, Holiday)
            .next("2023-07-05 08:00"),
        la.case("LA 2023-07-05", noon("2023-07-05")),
        la.case("LA proclamation 2020-12-24", noon("2020-12-24"))
            .by(la_r, Holiday),
        la.case("LA 2020-12-23", noon("2020-12-23")),
        la.with(COLLECTION)
            .case("LA proclamation, collection", noon("2023-07-03")),
    ];
    run("T17 days and holidays", &BUNDLED, &cases);
}

/// compliance.md §5 T17: a proclamation is data; a reloaded file applies it.
#[test]
fn a_proclamation_added_to_the_rules_file_takes_effect_when_the_file_is_parsed() {
    let anchor = r#"{ name = "Proclamation: July 3, 2023", on = "date:2023-07-03" },"#;
    assert!(
        BUNDLED_US.contains(anchor),
        "rules/us.toml lost the anchor line"
    );
    let added =
        format!("{anchor}\n  {{ name = \"Proclamation: test\", on = \"date:2026-08-14\" }},");
    let reloaded = parse(&BUNDLED_US.replace(anchor, &added));
    assert_ne!(reloaded.fingerprint, BUNDLED.fingerprint);
    let la = who(&[CHI], &[UsState::LA], MARKETING);
    let friday = "2026-08-14 12:00";
    run(
        "T17 proclamation (bundled file)",
        &BUNDLED,
        &[la.case("2026-08-14 is a normal Friday", friday)],
    );
    run(
        "T17 proclamation (edited file)",
        &reloaded,
        &[
            la.case("2026-08-14 is a holiday", friday)
                .by("st.la.r-29617", Holiday)
                .next("2026-08-15 08:00"),
            la.case("2026-08-13 is unaffected", "2026-08-13 12:00"),
        ],
    );
}

// ---------------------------------------------------------------------------------------
// T19, T20, T24
// ---------------------------------------------------------------------------------------

/// compliance.md §5 T19.
#[test]
fn half_hour_zones_open_and_close_at_half_past_in_utc() {
    let stj = who(&[America::St_Johns], &[], COLLECTION);
    let kol = who(&[Asia::Kolkata], &[], COLLECTION);
    let both = who(&[America::St_Johns, Asia::Kolkata], &[], COLLECTION);
    let cases = [
        stj.case("St John's 11:29Z = 07:59 NST", "2026-01-07T11:29:00Z")
            .next("2026-01-07T11:30:00Z"),
        stj.case("St John's 11:30Z = 08:00 NST", "2026-01-07T11:30:00Z"),
        stj.case("St John's 00:24:14Z", "2026-01-08T00:24:14Z"),
        stj.case("St John's 00:24:15Z", "2026-01-08T00:24:15Z")
            .denied(),
        stj.case("St John's 05:00Z", "2026-01-07T05:00:00Z")
            .next("2026-01-07T11:30:00Z"),
        stj.case("St John's summer 10:29Z", "2026-07-08T10:29:00Z")
            .denied(),
        stj.case(
            "St John's summer 10:30Z = 08:00 NDT",
            "2026-07-08T10:30:00Z",
        ),
        stj.case("St John's summer 23:24:14Z", "2026-07-08T23:24:14Z"),
        stj.case("St John's summer 23:24:15Z", "2026-07-08T23:24:15Z")
            .denied(),
        kol.case("Kolkata 02:29Z", "2026-01-07T02:29:00Z").denied(),
        kol.case("Kolkata 02:30Z = 08:00 IST", "2026-01-07T02:30:00Z"),
        kol.case("Kolkata 15:24:14Z", "2026-01-07T15:24:14Z"),
        kol.case("Kolkata 15:24:15Z", "2026-01-07T15:24:15Z")
            .denied(),
        kol.case("Kolkata 20:00Z = 01:30 IST", "2026-01-06T20:00:00Z")
            .next("2026-01-07T02:30:00Z"),
        both.case("both 03:00Z", "2026-01-07T03:00:00Z")
            .next("2026-01-07T11:30:00Z"),
        both.case("both 11:30Z", "2026-01-07T11:30:00Z"),
        both.case("both 15:24:14Z", "2026-01-07T15:24:14Z"),
        both.case("both 15:24:15Z", "2026-01-07T15:24:15Z")
            .by_in(FED_COLLECTION, AfterWindow, Asia::Kolkata)
            .next("2026-01-08T11:30:00Z"),
        both.case("both summer 10:30Z", "2026-07-08T10:30:00Z"),
    ];
    run("T19 half-hour zones", &BUNDLED, &cases);
}

/// A small ruleset: calls allowed all day, one call per `days` local days.
fn one_per_local_days(days: u32) -> Ruleset {
    parse(&format!(
        r#"
[meta]
version = "test-local-days"

[operational]
guard_before_end = "5m"
max_ring = "45s"
search_horizon = "40d"

[[rule]]
id = "test.allday"
kind = "window"
title = "all day"
purposes = ["collection"]
hours = {{ all = ["00:00", "24:00"] }}
sources = ["test"]
status = "verified"

[[rule]]
id = "test.cap"
kind = "cap"
title = "one call per {days} local days"
purposes = ["collection"]
key = ["person"]
count = "attempts"
max = 1
local_days = {days}
sources = ["test"]
status = "verified"
"#
    ))
}

/// compliance.md §5 T20.
#[test]
fn leap_day_counts_as_a_local_day_and_fixed_feb_29_holidays_are_rejected() {
    let ny = who(&[NY], &[], COLLECTION);
    let once = |local: &str| [contact(at(NY, local), L1, ContactKind::Placed)];
    let week = [
        ny.case("7 days from 2028-02-24 end 03-01", "2028-03-01 23:50")
            .history(&once("2028-02-24 10:00"))
            .by("test.cap", FrequencyCap)
            .next("2028-03-02 00:00"),
        ny.case("2028-03-02 is day 8", "2028-03-02 00:00")
            .history(&once("2028-02-24 10:00")),
        ny.case("2027: 7 days from 02-24 end 03-02", "2027-03-02 12:00")
            .history(&once("2027-02-24 10:00"))
            .next("2027-03-03 00:00"),
    ];
    run("T20 leap day, 7 local days", &one_per_local_days(7), &week);
    let month = [
        ny.case("30 days from 2028-02-15 end 03-15", "2028-03-15 12:00")
            .history(&once("2028-02-15 10:00"))
            .next("2028-03-16 00:00"),
        ny.case("2027: 30 days from 02-15 end 03-16", "2027-03-16 12:00")
            .history(&once("2027-02-15 10:00"))
            .next("2027-03-17 00:00"),
    ];
    run(
        "T20 leap day, 30 local days",
        &one_per_local_days(30),
        &month,
    );
    // Reg F over the leap day: the oldest of 7 (02-24 10:00 EST) leaves 169 h later.
    let regf = [ny
        .case("Reg F 8th call over the leap day", "2028-03-01 18:00")
        .history(&daily(NY, "2028-02-24 10:00", 7, L1, ContactKind::Placed))
        .by(REGF_CAP, FrequencyCap)
        .next("2028-03-02T16:00:00Z")];
    run("T20 leap day, Reg F", &BUNDLED, &regf);

    let pioneer = r#"on = "fixed:07-24""#;
    assert!(BUNDLED_US.contains(pioneer));
    let fixed = BUNDLED_US.replace(pioneer, r#"on = "fixed:02-29""#);
    let err = Ruleset::parse(&fixed, LoadOptions::default()).expect_err("fixed:02-29 rejected");
    assert!(
        err.to_string().contains("02-29"),
        "the error names the date: {err}"
    );
    let one_off = parse(&BUNDLED_US.replace(pioneer, r#"on = "date:2028-02-29""#));
    let ut = who(&[DEN], &[UsState::UT], MARKETING);
    let cases = [ut
        .case("one-off holiday on 2028-02-29", "2028-02-29 12:00")
        .by("st.ut.13-25a-103.3", Holiday)];
    run("T20 leap day, one-off holiday", &one_off, &cases);
}

/// compliance.md §5 T24.
#[test]
fn rules_apply_only_between_their_effective_dates() {
    let fl = who(&[NY], &[UsState::FL], MARKETING);
    let ms = who(&[CHI], &[UsState::MS], MARKETING);
    let (fl_old, fl_new) = ("st.fl.501.616.6.a.pre2021", "st.fl.501.616.6.a");
    let (ms_old, ms_new) = ("st.ms.77-3-723.holidays", "st.ms.77-3-723");
    let cases = [
        fl.case("FL 2021-06-30 20:30 EDT: 8-21 before", "2021-06-30 20:30"),
        fl.case("FL 2021-06-30 20:54:15 EDT", "2021-06-30 20:54:15")
            .by(fl_old, AfterWindow),
        fl.case("FL 2021-07-01 20:30 EDT: 8-20 from", "2021-07-01 20:30")
            .by(fl_new, AfterWindow),
        fl.case("FL 2021-07-01 19:54:14 EDT", "2021-07-01 19:54:14"),
        fl.case("FL 2021-07-01 19:54:15 EDT", "2021-07-01 19:54:15")
            .denied(),
        fl.case("FL 2020-01-08 20:30 EST", "2020-01-08 20:30"),
        fl.case("FL 2026-01-07 19:54:15 EST", "2026-01-07 19:54:15")
            .denied(),
        ms.case("MS Jul 4 2023: holiday ban in force", "2023-07-04 12:00")
            .by(ms_old, Holiday),
        ms.case("MS Jul 4 2024: holiday ban repealed", "2024-07-04 12:00"),
        ms.case("MS Christmas 2023", "2023-12-25 12:00")
            .by(ms_old, Holiday),
        ms.case("MS Christmas 2024", "2024-12-25 12:00"),
        ms.case("MS Sunday 2023-12-31", "2023-12-31 12:00")
            .by(ms_old, ClosedDay),
        ms.case("MS Sunday 2024-01-07: ban kept", "2024-01-07 12:00")
            .by(ms_new, ClosedDay),
        ms.case("MS 08:30 CDT = 07:30 CST", "2024-07-03 08:30")
            .by_in(ms_new, BeforeWindow, Etc::GMTPlus6)
            .next("2024-07-03 09:00"),
        ms.case("MS 09:00 CDT = 08:00 CST", "2024-07-03 09:00"),
    ];
    run("T24 effective dates", &BUNDLED, &cases);
}

/// compliance.md §5 T24 for caps: `st.fl.501.616.6.b`, `st.ok.775c.4.cap` and
/// `st.md.14-4502.cap` carry `effective_from`, but the engine applies caps on any date.
#[test]
fn telemarketing_caps_do_not_bind_before_their_effective_date() {
    let mut cases = Vec::new();
    for (state, zone, local) in [
        (UsState::FL, NY, "2020-03-10 12:00"),
        (UsState::OK, CHI, "2022-03-08 12:00"),
        (UsState::MD, NY, "2023-03-07 12:00"),
    ] {
        let m = who(&[zone], &[state], MARKETING);
        let t = at(zone, local);
        cases.push(
            m.case(
                format!("{state}: 4th call in 24 h before the cap existed"),
                t,
            )
            .history(&hours_before(t, 3, L1)),
        );
    }
    run("T24 cap effective dates", &BUNDLED, &cases);
}

// ---------------------------------------------------------------------------------------
// T26: ruleset validation
// ---------------------------------------------------------------------------------------

const SMALL: &str = r#"
[meta]
version = "test-1"

[operational]
guard_before_end = "5m"
max_ring = "45s"
search_horizon = "21d"

[[calendar]]
id = "C1"
sources = ["test calendar"]
status = "verified"
holidays = [{ name = "Day", on = "fixed:07-04" }]

[[rule]]
id = "fed.window"
kind = "window"
title = "federal window"
purposes = ["collection"]
hours = { all = ["08:00", "21:00"] }
sources = ["fed source"]
status = "verified"

[[rule]]
id = "st.window"
kind = "window"
title = "state window"
purposes = ["marketing"]
states = ["TX"]
hours = { mon_sat = ["09:00", "21:00"], sun = ["12:00", "21:00"] }
holidays = "C1"
sources = ["state source"]
status = "unverified"
"#;

/// compliance.md §5 T26.
#[test]
fn invalid_rulesets_are_rejected_at_load() {
    let base = parse(SMALL);
    assert_eq!(base.windows.len(), 2, "the small base ruleset is valid");
    let edit = |from: &str, to: &str| {
        assert!(SMALL.contains(from), "base lacks {from:?}");
        SMALL.replacen(from, to, 1)
    };
    let hours = r#"hours = { mon_sat = ["09:00", "21:00"], sun = ["12:00", "21:00"] }"#;
    let fed = "title = \"federal window\"\n";
    // (case, bad file, a word the error must contain)
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "missing sources",
            edit("sources = [\"state source\"]\n", ""),
            "sources",
        ),
        ("empty sources", edit(r#"["state source"]"#, "[]"), "source"),
        (
            "blank source",
            edit(r#"["state source"]"#, r#"[" "]"#),
            "source",
        ),
        (
            "missing status",
            edit("status = \"unverified\"\n", ""),
            "status",
        ),
        (
            "unknown status",
            edit(r#""unverified""#, r#""rumoured""#),
            "rumoured",
        ),
        (
            "unknown state code XX",
            edit(r#"["TX"]"#, r#"["XX"]"#),
            "XX",
        ),
        (
            "lower-case state code",
            edit(r#"["TX"]"#, r#"["tx"]"#),
            "tx",
        ),
        (
            "overnight window",
            edit(hours, r#"hours = { all = ["22:00", "06:00"] }"#),
            "overnight",
        ),
        (
            "empty window",
            edit(hours, r#"hours = { all = ["09:00", "09:00"] }"#),
            "empty",
        ),
        (
            "shorter than the guard",
            edit(hours, r#"hours = { all = ["09:00", "09:05"] }"#),
            "guard",
        ),
        (
            "weekday given twice",
            edit(
                hours,
                r#"hours = { all = ["09:00", "21:00"], sun = "closed" }"#,
            ),
            "twice",
        ),
        (
            "weekday missing",
            edit(
                hours,
                r#"hours = { mon_fri = ["09:00", "21:00"], sat = "closed" }"#,
            ),
            "no hours",
        ),
        (
            "unknown day set",
            edit(hours, r#"hours = { wkdays = ["09:00", "21:00"] }"#),
            "day set",
        ),
        (
            "bad clock time",
            edit(hours, r#"hours = { all = ["9:00", "21:00"] }"#),
            "HH:MM",
        ),
        (
            "unknown calendar",
            edit(r#"holidays = "C1""#, r#"holidays = "C2""#),
            "C2",
        ),
        (
            "unknown field",
            edit("holidays = \"C1\"", "holidays = \"C1\"\ncolour = 1"),
            "colour",
        ),
        (
            "window with a cap field",
            edit("holidays = \"C1\"", "holidays = \"C1\"\nmax = 3"),
            "window",
        ),
        (
            "fixed 02-29 holiday",
            edit("fixed:07-04", "fixed:02-29"),
            "02-29",
        ),
        (
            "duplicate rule id",
            edit(r#""st.window""#, r#""fed.window""#),
            "twice",
        ),
        (
            "no federal window",
            edit(fed, &format!("{fed}states = [\"NY\"]\n")),
            "federal",
        ),
    ];
    for (name, text, word) in &cases {
        assert_ne!(text, SMALL, "{name}: the edit changed nothing");
        match Ruleset::parse(text, LoadOptions::default()) {
            Ok(_) => panic!("T26 / {name}: accepted"),
            Err(e @ (RulesetError::Parse(_) | RulesetError::Invalid(_))) => assert!(
                e.to_string().contains(word),
                "T26 / {name}: error {e} does not mention {word:?}"
            ),
        }
    }
    println!("T26 validation: {} cases", cases.len() + 1);
}

/// compliance.md §5 T26: `exclude_unverified` leaves unverified rules out, keeps the rest.
#[test]
fn excluding_unverified_rules_drops_only_unverified_rules() {
    let opts = LoadOptions {
        exclude_unverified: true,
    };
    let strict = Ruleset::parse(BUNDLED_US, opts).expect("loads without unverified rules");
    let all = &*BUNDLED;
    let metas = all
        .windows
        .iter()
        .map(|w| &w.meta)
        .chain(all.caps.iter().map(|c| &c.meta))
        .chain(all.cooldowns.iter().map(|c| &c.meta));
    let mut dropped = 0;
    for meta in metas {
        let kept = strict.rule(&meta.id).is_some();
        let unverified = meta.status == Status::Unverified;
        assert_eq!(
            kept, !unverified,
            "{} ({:?}) kept = {kept}",
            meta.id, meta.status
        );
        dropped += usize::from(unverified);
    }
    assert!(
        dropped >= 3,
        "the bundled file has unverified rules to drop"
    );
    for id in ["st.sd.sunday", "st.il.seed", "st.me.seed"] {
        assert!(
            all.rule(id).is_some() && strict.rule(id).is_none(),
            "{id} dropped"
        );
    }
    for id in [FED_COLLECTION, REGF_CAP, "st.tx.301.051", "st.fl.559.72.17"] {
        assert!(strict.rule(id).is_some(), "{id} kept");
    }
    let sd = who(&[CHI], &[UsState::SD], MARKETING);
    let sunday = "2026-01-11 12:00";
    run(
        "T26 exclude_unverified (all rules)",
        all,
        &[sd.case("SD Sunday, unverified rule loaded", sunday)
            .by("st.sd.sunday", ClosedDay)],
    );
    run(
        "T26 exclude_unverified (strict)",
        &strict,
        &[sd.case("SD Sunday, unverified rule excluded", sunday)],
    );
}

// ---------------------------------------------------------------------------------------
// No candidates; nothing lawful within the horizon; contacts after t
// ---------------------------------------------------------------------------------------

#[test]
fn an_empty_candidate_set_denies_with_no_next_instant() {
    let no_zone = [
        ("no facts", LocationFacts::default()),
        (
            "an address state only",
            LocationFacts {
                state: Some(UsState::GA),
                ..Default::default()
            },
        ),
        (
            "a toll-free number only",
            LocationFacts {
                area_code: Some(800),
                ..Default::default()
            },
        ),
        (
            "an unknown ZIP only",
            LocationFacts {
                zip: Some("00000"),
                ..Default::default()
            },
        ),
    ];
    let mut whos: Vec<(&str, Who)> = no_zone
        .into_iter()
        .map(|(name, facts)| (name, resolved(facts, COLLECTION)))
        .collect();
    whos.push((
        "explicit states, no zone",
        who(&[], &[UsState::FL], COLLECTION),
    ));
    let mut cases = Vec::new();
    for (name, w) in &whos {
        assert!(w.cands.zones.is_empty(), "{name}: {:?}", w.cands.zones);
        for p in Purpose::ALL {
            cases.push(
                w.with(p)
                    .case(format!("{name}, {}", p.as_str()), "2026-01-07T17:00:00Z")
                    .by(NO_LOCATION_RULE, Reason::NoCandidateLocation)
                    .no_next(),
            );
        }
    }
    run("no candidates", &BUNDLED, &cases);
}

/// A ruleset open on Mondays only with a 2-day horizon and a week-long quiet period.
const MONDAYS_ONLY: &str = r#"
[meta]
version = "test-mondays"

[operational]
guard_before_end = "5m"
max_ring = "45s"
search_horizon = "2d"

[[rule]]
id = "test.mondays"
kind = "window"
title = "Mondays only"
purposes = ["collection"]
hours = { mon = ["08:00", "21:00"], tue = "closed", wed = "closed", thu = "closed", fri = "closed", sat_sun = "closed" }
sources = ["test"]
status = "verified"

[[rule]]
id = "test.quiet"
kind = "cooldown"
title = "quiet week"
purposes = ["collection"]
key = ["person"]
count = "conversations"
rolling = "168h"
sources = ["test"]
status = "verified"
"#;

#[test]
fn a_dial_with_no_lawful_instant_within_the_horizon_reports_none() {
    let ny = who(&[NY], &[], COLLECTION);
    let talked = [contact(
        at(NY, "2026-01-12 09:00"),
        L1,
        ContactKind::Conversation,
    )];
    let cases = [
        ny.case("Tuesday: next Monday is beyond 2 days", "2026-01-06 12:00")
            .by("test.mondays", ClosedDay)
            .no_next(),
        ny.case("Saturday noon: Monday 08:00 is within", "2026-01-10 12:00")
            .next("2026-01-12 08:00"),
        ny.case("Monday, quiet week beyond the horizon", "2026-01-12 10:00")
            .history(&talked)
            .by("test.quiet", Cooldown)
            .no_next(),
        ny.case("Monday without history", "2026-01-12 10:00"),
    ];
    run(
        "nothing within the horizon (test ruleset)",
        &parse(MONDAYS_ONLY),
        &cases,
    );
    // Bundled: Guam and Newfoundland share no minute of Maine's 9-17 marketing window.
    let far = who(
        &[Pacific::Guam, America::St_Johns],
        &[UsState::ME],
        MARKETING,
    );
    let cases = [
        far.case("Guam + St John's, Maine hours", "2026-01-07T12:00:00Z")
            .no_next(),
        far.with(COLLECTION)
            .case("Guam + St John's, collection", "2026-01-07T12:00:00Z")
            .next("2026-01-07T22:00:00Z"),
    ];
    run("nothing within the horizon (bundled)", &BUNDLED, &cases);
}

/// `Prepared::decide` documents that contacts after `t` are ignored, but its search for
/// `next_allowed` counts them once it passes them: a conversation at 07:30 EST (after `t`
/// = 06:00 EST) moves `next_allowed` from 08:00 EST to a week later.
#[test]
fn contacts_after_t_do_not_change_the_next_allowed_instant() {
    let ny = who(&[NY], &[], COLLECTION);
    let later = [contact(
        at(NY, "2026-01-07 07:30"),
        L1,
        ContactKind::Conversation,
    )];
    let cases = [
        ny.case("no history: next is 08:00", "2026-01-07 06:00")
            .next("2026-01-07 08:00"),
        ny.case(
            "conversation after t: next is still 08:00",
            "2026-01-07 06:00",
        )
        .history(&later)
        .next("2026-01-07 08:00"),
    ];
    run("contacts after t", &BUNDLED, &cases);
}

// ---------------------------------------------------------------------------------------
// Every state row
// ---------------------------------------------------------------------------------------

/// A `weekday` on which `rule` is in force and not a holiday of its calendar, and which is
/// not a DST-transition day in any zone it is checked in.
fn pick_date(set: &Ruleset, rule: &WindowRule, zones: &[Tz], weekday: Weekday) -> NaiveDate {
    let m = &rule.meta;
    let base = match (m.effective_from, m.effective_until) {
        (_, Some(until)) => until - Duration::days(150),
        (Some(from), None) => from + Duration::days(60),
        (None, None) => date("2026-06-01"),
    };
    let mut d = base;
    while d.weekday() != weekday {
        d = d.succ_opt().expect("date");
    }
    for _ in 0..30 {
        let holiday = rule.holidays.is_some_and(|c| set.calendars[c].contains(d));
        let dst = zones.iter().any(|z| is_transition_day(*z, d));
        if m.in_force_on(d) && !holiday && !dst {
            return d;
        }
        d += Duration::days(7);
    }
    panic!("{}: no usable {weekday} after {base}", m.id);
}

/// The instant `secs` after local midnight of `d` in `tz` (an unambiguous local time).
fn at_secs(tz: Tz, d: NaiveDate, secs: u32) -> DateTime<Utc> {
    let time = NaiveTime::from_num_seconds_from_midnight_opt(secs, 0).expect("time of day");
    at(tz, &format!("{d} {}", time.format("%H:%M:%S")))
}

/// For every state window rule: candidates = New York + the rule's first state; for each
/// of its purposes and each open weekday, probe 1 minute after and before its start, and
/// end − 5m45s and end − 5m46s. The expected verdict is the intersection of every binding
/// window rule (computed by the oracle). The rule under test must itself block (in New
/// York) 1 minute before its start and at end − 5m45s, and must not block at the others.
#[test]
fn every_state_window_rule_opens_and_closes_at_its_own_hours() {
    let set = &*BUNDLED;
    let margin = set.end_margin();
    let (mut rules, mut probes) = (0, 0);
    for rule in set.windows.iter().filter(|w| !w.meta.states.is_empty()) {
        rules += 1;
        let state = rule.meta.states[0];
        let cands = Candidates::explicit(&[NY], &[state]);
        let mut zones = vec![NY];
        zones.extend(rule.extra_zones.iter().copied());
        for &purpose in &rule.meta.purposes {
            let prepared = set.prepare(&cands, purpose);
            let oracle = Oracle {
                set,
                zones: &[NY],
                states: &[state],
                purpose,
            };
            for (i, hours) in rule.hours.iter().enumerate() {
                let Some((s, e)) = *hours else { continue };
                let weekday = Weekday::try_from(u8::try_from(i).expect("index")).expect("day");
                let d = pick_date(set, rule, &zones, weekday);
                let (start, end) = (at_secs(NY, d, s), at_secs(NY, d, e));
                let probes_here = [
                    ("1 min after its start", start + Duration::minutes(1), None),
                    (
                        "1 min before its start",
                        start - Duration::minutes(1),
                        Some(BeforeWindow),
                    ),
                    ("at end - 5m45s", end - margin, Some(AfterWindow)),
                    ("at end - 5m46s", end - margin - Duration::seconds(1), None),
                ];
                for (what, t, own_block) in probes_here {
                    let name = format!(
                        "{} ({state}, {}, {weekday} {d}) {what} = {}",
                        rule.meta.id,
                        purpose.as_str(),
                        t.with_timezone(&NY).format("%H:%M:%S %Z")
                    );
                    let decision = prepared.decide(t, &Subject::default(), &[]);
                    let expected = oracle.window_violations(t);
                    assert_eq!(
                        decision.is_allow(),
                        expected.is_empty(),
                        "{name}: oracle says {expected:?}, engine {decision:#?}"
                    );
                    let own: Vec<Reason> = decision
                        .blocks()
                        .iter()
                        .filter(|b| b.rule == rule.meta.id && b.zone == Some(NY))
                        .map(|b| b.reason)
                        .collect();
                    match own_block {
                        Some(reason) => assert!(
                            own.contains(&reason),
                            "{name}: the rule itself must block with {reason:?}: {decision:#?}"
                        ),
                        None => assert!(own.is_empty(), "{name}: the rule must not block: {own:?}"),
                    }
                    probes += 1;
                }
            }
        }
    }
    assert!(rules >= 30, "only {rules} state window rules");
    println!("every state row: {rules} rules, {probes} probes");
}
