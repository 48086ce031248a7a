//! Companies and API keys against a fresh Postgres database per test.

use chrono::{DateTime, TimeZone, Utc};
use outdial_store::{Error, Store};
use sqlx::{PgPool, Row};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap()
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn new_company_key_authenticates_and_its_plaintext_is_not_stored(pool: PgPool) {
    let store = Store::new(pool.clone());
    let (company, key) = store.create_company("acme", now()).await.unwrap();
    assert_eq!(company.name, "acme");
    assert_eq!(company.calls_per_second, 5);
    assert_eq!(company.max_live_calls, 10);
    assert!(company.caller_ids.is_empty());
    let names: Vec<String> = company
        .catalog()
        .unwrap()
        .task_types()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(names, ["collections", "verification"]);

    let found = store.authenticate(key.expose()).await.unwrap().unwrap();
    assert_eq!(found, company);

    let plaintext = key.expose();
    let rows = sqlx::query("SELECT row_to_json(k)::text AS row, sha256 FROM api_keys k")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let row: String = rows[0].get("row");
    assert!(!row.contains(plaintext), "{row}");
    assert!(!row.contains(&plaintext[12..]), "{row}");
    assert!(
        row.contains(&plaintext[..12]),
        "the lookup prefix is stored: {row}"
    );
    let sha: Vec<u8> = rows[0].get("sha256");
    assert_eq!(sha.len(), 32);
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn wrong_short_or_unknown_keys_do_not_authenticate(pool: PgPool) {
    let store = Store::new(pool);
    let (_, key) = store.create_company("acme", now()).await.unwrap();
    let text = key.expose();
    let mut tampered = text.to_owned();
    let last = if text.ends_with('0') { "1" } else { "0" };
    tampered.replace_range(text.len() - 1.., last);
    for bad in [
        "",
        "odk_",
        &text[..12],
        &text[..text.len() - 1],
        &tampered,
        "odk_0000000000000000000000000000000000000000000000000000000000000000",
    ] {
        assert_eq!(store.authenticate(bad).await.unwrap(), None, "{bad:?}");
    }
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn duplicate_company_name_is_a_conflict(pool: PgPool) {
    let store = Store::new(pool);
    store.create_company("acme", now()).await.unwrap();
    let err = store.create_company("acme", now()).await.unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err:?}");
    assert_eq!(store.list_companies().await.unwrap().len(), 1);
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn rotating_a_key_revokes_the_old_one(pool: PgPool) {
    let store = Store::new(pool.clone());
    let (company, old) = store.create_company("acme", now()).await.unwrap();
    let later = now() + chrono::Duration::hours(1);
    let new = store.rotate_key(company.id, later).await.unwrap();
    assert_ne!(new, old);
    assert_eq!(store.authenticate(old.expose()).await.unwrap(), None);
    let found = store.authenticate(new.expose()).await.unwrap().unwrap();
    assert_eq!(found.id, company.id);

    let revoked: Vec<Option<DateTime<Utc>>> =
        sqlx::query_scalar("SELECT revoked_at FROM api_keys ORDER BY created_at")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(revoked, [Some(later), None]);
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn rotating_an_unknown_company_is_not_found(pool: PgPool) {
    let store = Store::new(pool);
    let id = outdial_store::CompanyId::from_uuid(uuid::Uuid::nil());
    let err = store.rotate_key(id, now()).await.unwrap_err();
    assert!(
        matches!(err, Error::NotFound { what: "company" }),
        "{err:?}"
    );
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn set_task_types_rejects_a_bad_catalog_naming_the_problem(pool: PgPool) {
    let store = Store::new(pool);
    let (company, _) = store.create_company("acme", now()).await.unwrap();
    let cases = [
        ("[collections]\nschedule = \"weekly\"\n", "weekly"),
        ("[\"bad name\"]\nschedule = \"collections\"\n", "bad name"),
        ("[collections\n", "do not parse"),
        ("", "at least one task type"),
        (
            "[welcome]\nschedule = \"custom\"\n[welcome.custom]\ncron = [\"not a cron\"]\n",
            "welcome",
        ),
    ];
    for (text, named) in cases {
        let err = store.set_task_types(company.id, text).await.unwrap_err();
        assert!(matches!(err, Error::TaskTypes(_)), "{err:?}");
        assert!(err.to_string().contains(named), "{text:?}: {err}");
    }
    let unchanged = store.company(company.id).await.unwrap();
    assert_eq!(unchanged.task_types, company.task_types);

    let good = "[welcome_call]\nschedule = \"verification\"\n";
    let updated = store.set_task_types(company.id, good).await.unwrap();
    assert_eq!(updated.task_types, good);
    let names: Vec<String> = store
        .company(company.id)
        .await
        .unwrap()
        .catalog()
        .unwrap()
        .task_types()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(names, ["welcome_call"]);
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn demo_company_is_made_once_and_a_fixed_key_authenticates_for_it(pool: PgPool) {
    let store = Store::new(pool);
    let fixed = "demo-key-0123456789abcdef0123456789";
    let (demo, generated) = store.ensure_demo_company(Some(fixed), now()).await.unwrap();
    assert_eq!(demo.name, "demo");
    assert_eq!(generated, None);
    assert_eq!(store.authenticate(fixed).await.unwrap(), Some(demo.clone()));

    // Idempotent, with or without the key.
    let (again, generated) = store.ensure_demo_company(Some(fixed), now()).await.unwrap();
    assert_eq!((again.id, generated), (demo.id, None));
    let (again, generated) = store.ensure_demo_company(None, now()).await.unwrap();
    assert_eq!((again.id, generated), (demo.id, None));
    assert_eq!(store.list_companies().await.unwrap().len(), 1);

    // A different key whose lookup prefix a stored key already has is refused.
    let clash = format!("{}-something-else-entirely", &fixed[..12]);
    let err = store
        .ensure_demo_company(Some(&clash), now())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err:?}");
    assert!(
        store
            .ensure_demo_company(Some("short"), now())
            .await
            .is_err()
    );
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn demo_company_without_a_fixed_key_gets_a_generated_one_once(pool: PgPool) {
    let store = Store::new(pool);
    let (demo, key) = store.ensure_demo_company(None, now()).await.unwrap();
    let key = key.unwrap();
    assert_eq!(store.authenticate(key.expose()).await.unwrap(), Some(demo));
    let (_, second) = store.ensure_demo_company(None, now()).await.unwrap();
    assert_eq!(second, None);
}
