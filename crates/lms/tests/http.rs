//! The HTTP dialect against the fake LMS: retries inside the budget, each failure mapped to
//! its error naming the host, the breaker.

use std::time::{Duration, Instant};

use outdial_lms::fake::{Behaviour, FakeLms};
use outdial_lms::{BreakerPolicy, Connection, Lms, LmsError};
use serde_json::json;
use uuid::Uuid;

fn connection(fake: &FakeLms, timeout_ms: u64) -> Connection {
    Connection::new(
        &fake.base_url(),
        vec![("Authorization".into(), "Bearer s3cret".into())],
        Some(timeout_ms),
    )
    .expect("a valid connection")
}

#[tokio::test]
async fn a_customer_and_its_loans_arrive_with_the_configured_headers() {
    let fake = FakeLms::start().await;
    fake.put(
        "12345",
        json!({"firstName": "Sam", "zipCode": "94102"}),
        json!([{"id": 123, "loanId": "L-123", "balanceCents": 5000}, {"id": 456}]),
    );
    let lms = Lms::default();
    let record = lms
        .fetch(Uuid::nil(), &connection(&fake, 2000), "12345")
        .await
        .expect("fetched");
    assert_eq!(record.customer["firstName"], "Sam");
    assert_eq!(record.loans.len(), 2);
    assert_eq!(record.loans[0].loan_id.as_deref(), Some("L-123"));
    assert_eq!(
        fake.last_header("authorization").as_deref(),
        Some("Bearer s3cret")
    );
}

#[tokio::test]
async fn five_hundreds_are_retried_within_the_budget_and_then_succeed() {
    let fake = FakeLms::start().await;
    fake.put("1", json!({"firstName": "Sam"}), json!([]));
    fake.behave("1", Behaviour::FailFirst(2));
    let lms = Lms::default();
    let record = lms.fetch(Uuid::nil(), &connection(&fake, 2000), "1").await;
    assert!(record.is_ok(), "{record:?}");
    assert_eq!(
        fake.requests("1"),
        6,
        "three tries each for customer and loans"
    );
}

#[tokio::test]
async fn each_failure_maps_to_its_error_naming_the_host() {
    let fake = FakeLms::start().await;
    let host = fake.host();
    fake.put("slow", json!({}), json!([]));
    fake.behave("slow", Behaviour::Slow(Duration::from_secs(5)));
    fake.put("down", json!({}), json!([]));
    fake.behave("down", Behaviour::Status(503));
    fake.put("denied", json!({}), json!([]));
    fake.behave("denied", Behaviour::Status(401));
    fake.put("garbled", json!({}), json!([]));
    fake.behave("garbled", Behaviour::Malformed);
    fake.put("array", json!([1, 2]), json!([]));
    fake.put("badloan", json!({}), json!([{"loanId": "no integer id"}]));
    let lms = Lms::new(BreakerPolicy {
        threshold: 100,
        cooldown: Duration::from_secs(1),
    });
    let conn = connection(&fake, 300);
    let fetch = |id: &'static str| {
        let lms = &lms;
        let conn = &conn;
        async move { lms.fetch(Uuid::nil(), conn, id).await.expect_err(id) }
    };

    let started = Instant::now();
    let slow = fetch("slow").await;
    assert!(
        matches!(&slow, LmsError::Timeout { host: h, .. } if *h == host),
        "{slow:?}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "bounded by the budget"
    );

    let started = Instant::now();
    let down = fetch("down").await;
    assert!(
        matches!(&down, LmsError::Unavailable { host: h, .. } if *h == host),
        "{down:?}"
    );
    assert!(started.elapsed() < Duration::from_millis(1500));
    assert!(fake.requests("down") > 2, "5xx is retried");

    for id in ["denied", "garbled", "array", "badloan"] {
        let e = fetch(id).await;
        assert!(matches!(&e, LmsError::Unavailable { .. }), "{id}: {e:?}");
        assert!(e.to_string().contains(&host), "{id}: {e}");
    }
    assert_eq!(fake.requests("denied"), 2, "a 401 is not retried");
    let missing = fetch("nobody").await;
    assert_eq!(missing, LmsError::NotFound { host: host.clone() });

    // Nothing listens on a closed port: unreachable is a timeout.
    let closed = Connection::new("http://127.0.0.1:1", vec![], Some(200)).unwrap();
    let e = lms.fetch(Uuid::nil(), &closed, "x").await.unwrap_err();
    assert!(matches!(e, LmsError::Timeout { .. }), "{e:?}");
}

#[tokio::test]
async fn the_breaker_opens_per_company_and_a_probe_closes_it() {
    let fake = FakeLms::start().await;
    fake.put("1", json!({"firstName": "Sam"}), json!([]));
    fake.behave("1", Behaviour::Status(500));
    let lms = Lms::new(BreakerPolicy {
        threshold: 2,
        cooldown: Duration::from_millis(300),
    });
    let conn = connection(&fake, 100);
    let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
    for _ in 0..2 {
        let e = lms.fetch(a, &conn, "1").await.unwrap_err();
        assert!(matches!(e, LmsError::Unavailable { .. }), "{e:?}");
    }
    let before = fake.requests("1");
    let open = lms.fetch(a, &conn, "1").await.unwrap_err();
    assert!(
        matches!(open, LmsError::CircuitOpen { failures: 2, .. }),
        "{open:?}"
    );
    assert_eq!(fake.requests("1"), before, "not asked while open");
    // Another company's breaker is its own.
    let other = lms.fetch(b, &conn, "1").await.unwrap_err();
    assert!(matches!(other, LmsError::Unavailable { .. }), "{other:?}");

    fake.behave("1", Behaviour::Normal);
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(lms.fetch(a, &conn, "1").await.is_ok(), "the probe succeeds");
    assert!(lms.fetch(a, &conn, "1").await.is_ok(), "closed again");
}
