use chrono::{Duration, TimeZone};
use chrono_tz::America::New_York;

use super::*;
use crate::UsState;
use crate::policy::{Candidates, Ruleset};
use crate::schedule::CadenceDef;
use crate::task::{Purpose, ScheduleType};

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn cadence(kind: ScheduleType) -> Cadence {
    Cadence::parse(&Cadence::default_def(kind).unwrap()).unwrap()
}

fn plan_for(cadence: &Cadence, start: &str) -> Plan {
    let set = Ruleset::bundled().unwrap();
    let c = Candidates::explicit(&[New_York], &[UsState::NY]);
    let p = set.prepare(&c, Purpose::Collection);
    let req = Request {
        policy: &p,
        zone: New_York,
        subject: Subject {
            debt: Some("L1"),
            number: None,
        },
        history: &[],
        start: utc(start),
    };
    expand(cadence, &req)
}

#[test]
fn collections_plan_never_exceeds_seven_attempts_in_seven_days() {
    // Monday 2026-11-23 00:00 New York.
    let plan = plan_for(&cadence(ScheduleType::Collections), "2026-11-23T05:00:00Z");
    assert!(!plan.calls.is_empty());
    for (i, c) in plan.calls.iter().enumerate() {
        let in_window = plan.calls[..=i]
            .iter()
            .filter(|o| o.at > c.at - Duration::hours(169))
            .count();
        assert!(
            in_window <= 7,
            "{} calls in 169h ending {}",
            in_window,
            c.at
        );
    }
    // Ten weekday slots a week, at most seven calls: the rest are moved or dropped.
    assert!(
        plan.dropped
            .iter()
            .any(|d| d.reason == DropReason::Superseded)
    );
}

#[test]
fn verification_first_call_is_at_the_next_lawful_instant() {
    // Sunday 2026-11-22 23:00 New York = 2026-11-23T04:00Z: next lawful is Monday 08:00.
    let plan = plan_for(&cadence(ScheduleType::Verification), "2026-11-23T04:00:00Z");
    let first = &plan.calls[0];
    assert_eq!(first.at, utc("2026-11-23T13:00:00Z"));
    assert_eq!(first.local.to_string(), "2026-11-23 08:00:00");
    assert!(!first.moved_by.is_empty());
}

#[test]
fn planned_calls_are_in_order_and_spaced() {
    let c = cadence(ScheduleType::Verification);
    let plan = plan_for(&c, "2026-11-23T15:00:00Z");
    for w in plan.calls.windows(2) {
        assert!(w[1].at - w[0].at >= c.min_gap);
    }
    assert!(plan.calls.len() <= c.max_attempts as usize);
}

#[test]
fn explicit_local_time_in_spring_gap_moves_forward() {
    let def: CadenceDef = serde_json::from_str(
        r#"{"localTimes":["2026-03-08T02:30:00","2026-03-09T20:59:00"],"horizon":"7d","maxAttempts":5,
            "retry":{"noAnswer":"4h","busy":"30m","voicemail":"1d"}}"#,
    )
    .unwrap();
    let plan = plan_for(&Cadence::parse(&def).unwrap(), "2026-03-07T12:00:00Z");
    // 02:30 does not exist; the slot becomes 03:00 EDT, outside the window: moved to 08:00.
    assert_eq!(plan.calls[0].slot, utc("2026-03-08T07:00:00Z"));
    assert_eq!(plan.calls[0].at, utc("2026-03-08T12:00:00Z"));
    // 20:59 is after the last lawful start (20:54:15): moved to the next morning's 08:00.
    assert_eq!(plan.calls[1].at, utc("2026-03-10T12:00:00Z"));
}

#[test]
fn cron_dst_behaviour_is_pinned() {
    // zslayton/cron #145/#150: what the pinned version does with a zone on DST days.
    let daily_0230: cron::Schedule = "0 30 2 * * *".parse().unwrap();
    let from = New_York.with_ymd_and_hms(2026, 3, 7, 12, 0, 0).unwrap();
    let next: Vec<_> = daily_0230
        .after(&from)
        .take(2)
        .map(|t| t.naive_local().to_string())
        .collect();
    // The 02:30 of 2026-03-08 does not exist and is skipped.
    assert_eq!(next, ["2026-03-09 02:30:00", "2026-03-10 02:30:00"]);

    let hourly: cron::Schedule = "0 0 * * * *".parse().unwrap();
    let from = New_York.with_ymd_and_hms(2026, 10, 31, 23, 30, 0).unwrap();
    let next: Vec<_> = hourly
        .after(&from)
        .take(4)
        .map(|t| t.with_timezone(&Utc).to_rfc3339())
        .collect();
    // Fall back: 01:00 EDT (05:00Z), 01:00 EST (06:00Z) — the repeated hour.
    assert_eq!(
        next,
        [
            "2026-11-01T04:00:00+00:00",
            "2026-11-01T05:00:00+00:00",
            "2026-11-01T06:00:00+00:00",
            "2026-11-01T07:00:00+00:00"
        ]
    );
}
