use chrono::TimeZone;
use chrono_tz::America::New_York;

use super::*;
use crate::schedule::CadenceDef;

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn crons(exprs: &[&str]) -> CronSlots {
    CronSlots::new(exprs.iter().map(|e| e.parse().unwrap()).collect())
}

#[test]
fn spring_forward_gap_match_is_skipped() {
    let c = crons(&["0 30 2 * * *"]);
    let got = c.between(
        New_York,
        utc("2026-03-07T12:00:00Z"),
        utc("2026-03-10T12:00:00Z"),
        MAX_SLOTS,
    );
    // 02:30 of 2026-03-08 does not exist (as with `cron_dst_behaviour_is_pinned`).
    assert_eq!(
        got,
        [utc("2026-03-09T06:30:00Z"), utc("2026-03-10T06:30:00Z")]
    );
}

#[test]
fn repeated_local_times_yield_both_instants_even_from_inside_the_overlap() {
    // 2026-11-01 in New York: 01:00-02:00 happens at 05:00-06:00Z (EDT), then again at
    // 06:00-07:00Z (EST).
    let c = crons(&["0 0,30 1 * * *"]);
    let end = utc("2026-11-01T07:00:00Z");
    let from_before = c.between(New_York, utc("2026-11-01T04:00:00Z"), end, MAX_SLOTS);
    assert_eq!(
        from_before,
        [
            utc("2026-11-01T05:00:00Z"),
            utc("2026-11-01T05:30:00Z"),
            utc("2026-11-01T06:00:00Z"),
            utc("2026-11-01T06:30:00Z"),
        ]
    );
    // Starting inside the first pass (01:10 EDT) or the second (01:10 EST) keeps exactly
    // the later instants.
    let first_pass = utc("2026-11-01T05:10:00Z");
    assert_eq!(
        c.between(New_York, first_pass, end, MAX_SLOTS),
        from_before[1..]
    );
    let second_pass = utc("2026-11-01T06:10:00Z");
    assert_eq!(
        c.between(New_York, second_pass, end, MAX_SLOTS),
        from_before[3..]
    );

    // Why slots do not iterate `after(start)` per customer: from inside the overlap the
    // pinned `cron` version skips 01:00 EST after starting in the first pass, and returns
    // 01:30 EDT, before the start, after starting in the second.
    let schedule: cron::Schedule = "0 0,30 1 * * *".parse().unwrap();
    let after = |t: DateTime<Utc>| -> Vec<DateTime<Utc>> {
        schedule
            .after(&t.with_timezone(&New_York))
            .take(2)
            .map(|t| t.with_timezone(&Utc))
            .collect()
    };
    assert_eq!(
        after(first_pass),
        [utc("2026-11-01T05:30:00Z"), utc("2026-11-01T06:30:00Z")]
    );
    assert_eq!(
        after(second_pass),
        [utc("2026-11-01T05:30:00Z"), utc("2026-11-01T06:30:00Z")]
    );
}

#[test]
fn a_match_at_start_counts_as_start() {
    let c = crons(&["0 0 9 * * *"]);
    let nine = New_York
        .with_ymd_and_hms(2026, 11, 23, 9, 0, 0)
        .unwrap()
        .with_timezone(&Utc);
    let end = nine + Duration::hours(1);
    assert_eq!(c.between(New_York, nine, end, MAX_SLOTS), [nine]);
    // As `Schedule::includes` reads it: the start's whole second matches.
    let later = nine + Duration::milliseconds(500);
    assert_eq!(c.between(New_York, later, end, MAX_SLOTS), [later]);
    assert!(
        c.between(New_York, nine + Duration::seconds(1), end, MAX_SLOTS)
            .is_empty()
    );
}

#[test]
fn dense_expressions_stop_at_max_slots() {
    let def: CadenceDef = serde_json::from_str(
        r#"{"cron":["* * * * * *"],"horizon":"100d","maxAttempts":5,
            "retry":{"noAnswer":"4h","busy":"30m","voicemail":"1d"}}"#,
    )
    .unwrap();
    let cadence = Cadence::parse(&def).unwrap();
    let start = utc("2026-11-23T23:59:00Z");
    let slots = cadence.slots(New_York, start, start + cadence.horizon);
    assert_eq!(slots.len(), MAX_SLOTS);
    assert_eq!(slots[0], start);
    assert!(
        slots
            .windows(2)
            .all(|w| w[1] - w[0] == Duration::seconds(1))
    );
}

#[test]
fn clones_share_the_memo_and_cadences_cross_threads() {
    fn shareable<T: Send + Sync + Clone>() {}
    shareable::<Cadence>();
    let c = crons(&["0 0 9,16 * * Mon-Fri"]);
    let start = utc("2026-11-23T00:00:00Z");
    let clone = c.clone();
    let first = c.between(New_York, start, start + Duration::days(14), MAX_SLOTS);
    assert_eq!(first.len(), 20);
    assert!(Arc::ptr_eq(&c.memo, &clone.memo));
    assert_eq!(
        clone.between(New_York, start, start + Duration::days(14), MAX_SLOTS),
        first
    );
}
