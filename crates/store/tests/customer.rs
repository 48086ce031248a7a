//! Customers against a fresh Postgres database per test.

mod support;

use std::collections::HashSet;

use outdial_domain::Email;
use outdial_store::{CustomerFilter, CustomerPatch, Error, Store};
use serde_json::json;
use sqlx::PgPool;

use support::*;

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn seed_example_round_trips_field_by_field(pool: PgPool) {
    let store = Store::new(pool);
    let acme = company(&store, "acme").await;
    let body = seed_body();
    let sent = customer_from(body.clone());

    let inserted = store.insert_customer(acme, &sent, now()).await.unwrap();
    let got = store.customer(acme, "cust-8841").await.unwrap();
    assert_eq!(inserted, sent);
    assert_eq!(got, sent);

    let out = serde_json::to_value(&got).unwrap();
    for key in out.as_object().unwrap().keys() {
        assert_eq!(out[key], body[key], "{key}");
    }
    assert_eq!(out.as_object().unwrap().len(), 19);
    let keys: Vec<&String> = got.external_metadata.keys().collect();
    let sent_keys: Vec<&String> = body["externalMetadata"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(
        keys, sent_keys,
        "externalMetadata keeps the client's key order"
    );
    assert_eq!(keys[0], "home_phone");
    assert_eq!(keys[11], "pay_day");
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn minimal_customer_round_trips_with_absent_optionals(pool: PgPool) {
    let store = Store::new(pool);
    let acme = company(&store, "acme").await;
    let sent = customer("c-1", false, false);
    store.insert_customer(acme, &sent, now()).await.unwrap();
    let got = store.customer(acme, "c-1").await.unwrap();
    assert_eq!(got, sent);
    assert_eq!(got.email, None);
    assert_eq!(got.birthday, None);
    assert!(got.loan_ids.is_empty());
    assert!(got.external_metadata.is_empty());
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn reposting_an_existing_id_is_a_conflict_and_changes_nothing(pool: PgPool) {
    let store = Store::new(pool);
    let acme = company(&store, "acme").await;
    let first = customer_from(seed_body());
    store.insert_customer(acme, &first, now()).await.unwrap();

    let mut second = customer_from(seed_body());
    second.do_not_call = false;
    let err = store
        .insert_customer(acme, &second, now())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Conflict { what } if what == "customer"),
        "{err:?}"
    );
    assert_eq!(store.customer(acme, "cust-8841").await.unwrap(), first);

    // The same reference under another company is a different customer.
    let other = company(&store, "other").await;
    store.insert_customer(other, &second, now()).await.unwrap();
    assert!(
        !store
            .customer(other, "cust-8841")
            .await
            .unwrap()
            .do_not_call
    );
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn another_company_can_neither_read_nor_update_a_customer(pool: PgPool) {
    let store = Store::new(pool);
    let a = company(&store, "company-a").await;
    let b = company(&store, "company-b").await;
    let sent = customer_from(seed_body());
    store.insert_customer(a, &sent, now()).await.unwrap();

    let err = store.customer(b, "cust-8841").await.unwrap_err();
    assert!(
        matches!(err, Error::NotFound { what: "customer" }),
        "{err:?}"
    );

    let patch = CustomerPatch {
        do_not_call: Some(false),
        ..CustomerPatch::default()
    };
    let err = store
        .update_customer(b, "cust-8841", patch, now())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::NotFound { what: "customer" }),
        "{err:?}"
    );

    let (page, next) = store
        .list_customers(b, CustomerFilter::default(), None, 100)
        .await
        .unwrap();
    assert!(page.is_empty());
    assert_eq!(next, None);
    assert_eq!(store.customer(a, "cust-8841").await.unwrap(), sent);
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn update_changes_only_the_patched_fields_and_returns_the_new_row(pool: PgPool) {
    let store = Store::new(pool);
    let acme = company(&store, "acme").await;
    let sent = customer_from(seed_body());
    store.insert_customer(acme, &sent, now()).await.unwrap();

    let mut metadata = serde_json::Map::new();
    metadata.insert("z_last".into(), json!(1));
    metadata.insert("a_first".into(), json!({"nested": [1, 2]}));
    let patch = CustomerPatch {
        do_not_call: Some(false),
        is_test: Some(false),
        email: Some(None),
        city: Some("Oakland".to_owned()),
        zip_code: Some("94607".parse().unwrap()),
        external_metadata: Some(metadata.clone()),
        ..CustomerPatch::default()
    };
    assert_eq!(
        format!("{patch:?}"),
        "CustomerPatch([\"email\", \"city\", \"zipCode\", \"doNotCall\", \"isTest\", \"externalMetadata\"])"
    );
    let later = now() + chrono::Duration::minutes(5);
    let updated = store
        .update_customer(acme, "cust-8841", patch, later)
        .await
        .unwrap();

    let mut expected = sent.clone();
    expected.do_not_call = false;
    expected.is_test = false;
    expected.email = None;
    expected.city = "Oakland".to_owned();
    expected.zip_code = "94607".parse().unwrap();
    expected.external_metadata = metadata;
    assert_eq!(updated, expected);
    let got = store.customer(acme, "cust-8841").await.unwrap();
    assert_eq!(got, expected);
    let keys: Vec<&String> = got.external_metadata.keys().collect();
    assert_eq!(keys, ["z_last", "a_first"]);

    let patch = CustomerPatch {
        email: Some(Some(Email::new("sam@example.org").unwrap())),
        ..CustomerPatch::default()
    };
    let updated = store
        .update_customer(acme, "cust-8841", patch, later)
        .await
        .unwrap();
    assert_eq!(updated.email.unwrap().as_str(), "sam@example.org");
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn list_filters_on_is_test_and_do_not_call(pool: PgPool) {
    let store = Store::new(pool);
    let acme = company(&store, "acme").await;
    for (id, is_test, dnc) in [
        ("plain", false, false),
        ("test", true, false),
        ("dnc", false, true),
        ("test-dnc", true, true),
    ] {
        store
            .insert_customer(acme, &customer(id, is_test, dnc), now())
            .await
            .unwrap();
    }
    let cases = [
        ((None, None), vec!["plain", "test", "dnc", "test-dnc"]),
        ((Some(true), None), vec!["test", "test-dnc"]),
        ((Some(false), None), vec!["plain", "dnc"]),
        ((None, Some(true)), vec!["dnc", "test-dnc"]),
        ((None, Some(false)), vec!["plain", "test"]),
        ((Some(true), Some(false)), vec!["test"]),
        ((Some(false), Some(true)), vec!["dnc"]),
    ];
    for ((is_test, do_not_call), expected) in cases {
        let filter = CustomerFilter {
            is_test,
            do_not_call,
        };
        let (page, next) = store.list_customers(acme, filter, None, 10).await.unwrap();
        let ids: Vec<&str> = page.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, expected, "{filter:?}");
        assert_eq!(next, None);
    }

    // A filtered list pages too.
    let filter = CustomerFilter {
        is_test: Some(true),
        do_not_call: None,
    };
    let (page, next) = store.list_customers(acme, filter, None, 1).await.unwrap();
    assert_eq!(page[0].id.as_str(), "test");
    let (page, next) = store.list_customers(acme, filter, next, 1).await.unwrap();
    assert_eq!(page[0].id.as_str(), "test-dnc");
    assert_eq!(next, None);
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn pagination_returns_every_customer_exactly_once_under_concurrent_inserts(pool: PgPool) {
    let store = Store::new(pool);
    let acme = company(&store, "acme").await;
    let mut all: HashSet<String> = HashSet::new();
    for i in 0..120 {
        let id = format!("pre-{i:03}");
        store
            .insert_customer(acme, &customer(&id, i % 3 == 0, false), now())
            .await
            .unwrap();
        all.insert(id);
    }

    let mut seen: Vec<String> = Vec::new();
    let mut inserts = Vec::new();
    let mut cursor = None;
    // Pages while writers insert in the background: 8 pages of 10 stay short of the end.
    for page_no in 0..8 {
        for writer in 0..3 {
            let store = store.clone();
            let ids: Vec<String> = (0..4)
                .map(|k| format!("live-{page_no}-{writer}-{k}"))
                .collect();
            all.extend(ids.iter().cloned());
            inserts.push(tokio::spawn(async move {
                for id in ids {
                    store
                        .insert_customer(acme, &customer(&id, false, false), now())
                        .await
                        .unwrap();
                }
            }));
        }
        let (page, next) = store
            .list_customers(acme, CustomerFilter::default(), cursor, 10)
            .await
            .unwrap();
        assert_eq!(page.len(), 10);
        seen.extend(page.into_iter().map(|c| c.id.to_string()));
        cursor = Some(next.expect("more pages"));
    }
    for insert in inserts {
        insert.await.unwrap();
    }
    // Then to the end, once every writer is done.
    while let Some(after) = cursor {
        let (page, next) = store
            .list_customers(acme, CustomerFilter::default(), Some(after), 7)
            .await
            .unwrap();
        seen.extend(page.into_iter().map(|c| c.id.to_string()));
        cursor = next;
    }

    let unique: HashSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "a customer was returned twice");
    assert_eq!(unique, all, "a customer was skipped");
    assert_eq!(seen.len(), 120 + 8 * 3 * 4);
    // Pre-existing customers come first, in creation order.
    let pre: Vec<&String> = seen.iter().take(120).collect();
    let expected: Vec<String> = (0..120).map(|i| format!("pre-{i:03}")).collect();
    assert_eq!(pre, expected.iter().collect::<Vec<_>>());
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn page_size_is_clamped(pool: PgPool) {
    let store = Store::new(pool);
    let acme = company(&store, "acme").await;
    for i in 0..3 {
        store
            .insert_customer(acme, &customer(&format!("c{i}"), false, false), now())
            .await
            .unwrap();
    }
    let (page, next) = store
        .list_customers(acme, CustomerFilter::default(), None, 0)
        .await
        .unwrap();
    assert_eq!(page.len(), 1);
    assert!(next.is_some());
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn a_page_waits_for_an_insert_in_flight_instead_of_skipping_it(pool: PgPool) {
    let store = Store::new(pool.clone());
    let acme = company(&store, "acme").await;

    // An insert that has taken its number but not committed, following the store's
    // protocol (shared advisory lock, first key "od" + 1, second the company id's hash).
    let mut slow = pool.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock_shared(x'6f640001'::int, hashtext($1::text))")
        .bind(acme.as_uuid())
        .execute(&mut *slow)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO customers (company_id, id, task_type, first_name, last_name, timezone,
             phone, street_address1, city, state, zip_code, created_at, updated_at)
         VALUES ($1, 'slow', 'verification', 'Sam', 'Lee', 'America/New_York', '+12125550100',
             '1 Broadway', 'New York', 'NY', '10004', $2, $2)",
    )
    .bind(acme.as_uuid())
    .bind(now())
    .execute(&mut *slow)
    .await
    .unwrap();
    // A later insert gets a higher number and commits first.
    store
        .insert_customer(acme, &customer("fast", false, false), now())
        .await
        .unwrap();

    let lister = store.clone();
    let page = tokio::spawn(async move {
        lister
            .list_customers(acme, CustomerFilter::default(), None, 10)
            .await
    });
    // Wait (bounded) until the page read is queued behind the in-flight insert.
    let mut waiting = false;
    for _ in 0..200 {
        let blocked: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_locks
             WHERE locktype = 'advisory' AND NOT granted
               AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if blocked > 0 {
            waiting = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(
        waiting,
        "the page read did not wait for the in-flight insert"
    );
    assert!(!page.is_finished());
    slow.commit().await.unwrap();

    let (page, next) = page.await.unwrap().unwrap();
    let ids: Vec<&str> = page.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["slow", "fast"]);
    assert_eq!(next, None);
}
