//! Seeding a scratch database with companies, customers and due calls, fast, and with the
//! rows the real paths write: per company and place, one template customer goes through
//! `Store::insert_customer` and one template schedule (one call) through
//! `Store::create_schedule`; the other customers, loans, schedules, scheduled calls and
//! trail entries are copies of those rows made in SQL (`generate_series`), with only the
//! ids, the phone number and the loan reference changed. Then every pending call is
//! enqueued the way the API mirrors a new schedule (`Queue::enqueue_many`).

use chrono::{DateTime, NaiveTime, TimeZone, Utc};
use outdial_domain::policy::{Decision, Ruleset};
use outdial_domain::schedule::{Cadence, Catalog, Plan, PlannedCall};
use outdial_domain::task::{Purpose, ScheduleType};
use outdial_domain::{CallId, Customer, CustomerInput, CustomerRef};
use outdial_queue::{NewJob, Queue};
use outdial_store::{CompanyId, NewSchedule, Store};
use uuid::Uuid;

use crate::Res;

/// A US place: zone, state, ZIP and the number prefix (`+1` and an area code of that
/// state), consistent so that every candidate location of the customer agrees.
#[derive(Debug, Clone, Copy)]
pub struct Place {
    pub zone: &'static str,
    state: &'static str,
    zip: &'static str,
    area: &'static str,
}

/// Places across the US zones, so that some are lawful to call at any hour.
pub const PLACES: [Place; 7] = [
    Place {
        zone: "America/New_York",
        state: "NY",
        zip: "10004",
        area: "+1212",
    },
    Place {
        zone: "America/Chicago",
        state: "IL",
        zip: "60601",
        area: "+1312",
    },
    Place {
        zone: "America/Denver",
        state: "CO",
        zip: "80202",
        area: "+1303",
    },
    Place {
        zone: "America/Los_Angeles",
        state: "CA",
        zip: "94102",
        area: "+1415",
    },
    Place {
        zone: "Pacific/Honolulu",
        state: "HI",
        zip: "96813",
        area: "+1808",
    },
    Place {
        zone: "Pacific/Guam",
        state: "GU",
        zip: "96910",
        area: "+1671",
    },
    Place {
        zone: "America/Puerto_Rico",
        state: "PR",
        zip: "00901",
        area: "+1787",
    },
];

/// A validated customer of `place`, number `i` of its company.
pub fn customer(place: &Place, i: usize) -> Customer {
    let input: CustomerInput = serde_json::from_value(serde_json::json!({
        "id": customer_id(i),
        "taskType": "collections",
        "firstName": "Bench",
        "lastName": "Customer",
        "timezone": place.zone,
        "phoneNumber": format!("{}{:07}", place.area, 2_000_000 + i),
        "streetAddress1": "1 Main St",
        "city": "Town",
        "state": place.state,
        "zipCode": place.zip,
        "loanId": format!("loan-{i}"),
    }))
    .expect("a customer input");
    input
        .validate(
            &Catalog::builtin().task_types(),
            outdial_domain::Clock::now(&outdial_domain::SystemClock).date_naive(),
        )
        .expect("a valid customer")
}

fn customer_id(i: usize) -> String {
    format!("c{i:07}")
}

/// The places where a collection call is lawful at every 5 minutes from `now` for `span`
/// (their customers' calls are dialed, not deferred, while the bench runs).
pub fn lawful_places(rules: &Ruleset, now: DateTime<Utc>, span: chrono::Duration) -> Vec<Place> {
    PLACES
        .iter()
        .filter(|place| {
            let c = customer(place, 0);
            let policy = rules.prepare(&c.candidates(), Purpose::Collection);
            let steps = span.num_minutes() / 5;
            (0..=steps).all(|m| {
                matches!(
                    policy.decide(now + chrono::Duration::minutes(m * 5), &c.subject(), &[]),
                    Decision::Allow { .. }
                )
            })
        })
        .copied()
        .collect()
}

/// Today's 08:00 in `place`'s zone (the day of `now` there).
pub fn eight_local(place: &Place, now: DateTime<Utc>) -> DateTime<Utc> {
    let tz: chrono_tz::Tz = place.zone.parse().expect("a zone");
    let day = now.with_timezone(&tz).date_naive();
    let eight = day.and_time(NaiveTime::from_hms_opt(8, 0, 0).expect("08:00"));
    tz.from_local_datetime(&eight)
        .earliest()
        .expect("08:00 exists")
        .with_timezone(&Utc)
}

/// What to seed.
pub struct Seed<'a> {
    pub companies: usize,
    pub per_company: usize,
    /// Each company's customers are split evenly across these places.
    pub places: &'a [Place],
    /// The due time of a place's calls.
    pub due: &'a dyn Fn(&Place) -> DateTime<Utc>,
    pub webhook: Option<&'a str>,
    pub now: DateTime<Utc>,
}

/// The companies made, in order.
pub async fn seed(store: &Store, s: &Seed<'_>) -> Res<Vec<CompanyId>> {
    let def = Cadence::default_def(ScheduleType::Collections).expect("collections cadence");
    let mut companies = Vec::new();
    for k in 0..s.companies {
        let (company, _) = store.create_company(&format!("bench-{k}"), s.now).await?;
        // The limits are checked on every call but never bind: the company's GCRA has a
        // burst of 1 and sees milliseconds, so 1,000,000/s admits 1,000 calls within one.
        sqlx::query(
            "UPDATE companies SET calls_per_second = 1000000, max_live_calls = 1000000
             WHERE id = $1",
        )
        .bind(company.id.as_uuid())
        .execute(store.pool())
        .await?;
        if let Some(url) = s.webhook {
            store.set_webhook(company.id, Some(url)).await?;
        }
        let per_place = s.per_company.div_ceil(s.places.len());
        for (j, place) in s.places.iter().enumerate() {
            let lo = j * per_place;
            let hi = ((j + 1) * per_place).min(s.per_company);
            if lo >= hi {
                continue;
            }
            let due = (s.due)(place);
            let template = customer(place, lo);
            store.insert_customer(company.id, &template, s.now).await?;
            let plan = Plan {
                calls: vec![PlannedCall {
                    at: due,
                    local: due.with_timezone(&template.timezone).naive_local(),
                    slot: due,
                    moved_by: vec![],
                }],
                dropped: vec![],
            };
            let created = store
                .create_schedule(
                    company.id,
                    &NewSchedule {
                        customer_id: &template.id,
                        schedule_type: ScheduleType::Collections,
                        task_type: "collections",
                        loan_id: template.loan_id.as_deref(),
                        cadence: &def,
                        ruleset: "bench",
                        zone: template.timezone,
                        plan: &plan,
                    },
                    s.now,
                )
                .await?;
            clone_rows(
                store,
                company.id,
                &template,
                place,
                *created.calls[0].id.as_uuid(),
                (lo + 1, hi),
            )
            .await?;
        }
        companies.push(company.id);
    }
    sqlx::query("ANALYZE").execute(store.pool()).await?;
    Ok(companies)
}

/// Copies the template customer, its loan, schedule, call and trail entry to customers
/// `from..to` (exclusive) of `company`.
async fn clone_rows(
    store: &Store,
    company: CompanyId,
    template: &Customer,
    place: &Place,
    call: Uuid,
    (from, to): (usize, usize),
) -> Res<()> {
    if from >= to {
        return Ok(());
    }
    let (lo, hi) = (customer_id(from), customer_id(to - 1));
    let company = company.as_uuid();
    let mut tx = store.pool().begin().await?;
    sqlx::query(
        "INSERT INTO customers (company_id, id, task_type, first_name, last_name, email,
             birthday, ssn_last_four, timezone, phone, street_address1, street_address2, city,
             state, zip_code, do_not_call, is_test, external_metadata, loan_id, loan_ids,
             created_at, updated_at)
         SELECT t.company_id, 'c' || lpad(i::text, 7, '0'), t.task_type, t.first_name,
             t.last_name, t.email, t.birthday, t.ssn_last_four, t.timezone,
             $3 || lpad((2000000 + i)::text, 7, '0'), t.street_address1, t.street_address2,
             t.city, t.state, t.zip_code, t.do_not_call, t.is_test, t.external_metadata,
             'loan-' || i, t.loan_ids, t.created_at, t.updated_at
         FROM customers t, generate_series($4::int, $5::int) AS i
         WHERE t.company_id = $1 AND t.id = $2",
    )
    .bind(company)
    .bind(template.id.as_str())
    .bind(place.area)
    .bind(i32::try_from(from)?)
    .bind(i32::try_from(to - 1)?)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO loans (company_id, customer_id, id, created_at)
         SELECT c.company_id, c.id, c.loan_id, c.created_at FROM customers c
         WHERE c.company_id = $1 AND c.id BETWEEN $2 AND $3",
    )
    .bind(company)
    .bind(&lo)
    .bind(&hi)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO schedules (id, company_id, customer_id, schedule_type, task_type, loan_id,
             cadence, ruleset, active, created_at, plan_id)
         SELECT gen_random_uuid(), c.company_id, c.id, t.schedule_type, t.task_type, c.loan_id,
             t.cadence, t.ruleset, t.active, t.created_at, t.plan_id
         FROM customers c, scheduled_calls tc JOIN schedules t ON t.id = tc.schedule_id
         WHERE tc.id = $4 AND c.company_id = $1 AND c.id BETWEEN $2 AND $3",
    )
    .bind(company)
    .bind(&lo)
    .bind(&hi)
    .bind(call)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO scheduled_calls (id, company_id, customer_id, schedule_id, status, due_at,
             slot_at, reasons, created_at, updated_at, planned_due_at, planned_reasons)
         SELECT gen_random_uuid(), s.company_id, s.customer_id, s.id, t.status, t.due_at,
             t.slot_at, t.reasons, t.created_at, t.updated_at, t.planned_due_at,
             t.planned_reasons
         FROM schedules s, scheduled_calls t
         WHERE t.id = $4 AND s.company_id = $1 AND s.customer_id BETWEEN $2 AND $3",
    )
    .bind(company)
    .bind(&lo)
    .bind(&hi)
    .bind(call)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO call_events (call_id, at, entry)
         SELECT sc.id, e.at, e.entry FROM scheduled_calls sc, call_events e
         WHERE e.call_id = $4 AND sc.company_id = $1 AND sc.customer_id BETWEEN $2 AND $3",
    )
    .bind(company)
    .bind(&lo)
    .bind(&hi)
    .bind(call)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// A seeded call, as the checks need it.
#[derive(Debug, Clone)]
pub struct SeededCall {
    pub id: Uuid,
    /// The due time it was seeded with (a hand-back moves the row's own).
    pub due: DateTime<Utc>,
}

/// Enqueues every pending call (as the API does after a schedule commits); returns them.
pub async fn enqueue(store: &Store, queue: &Queue) -> Res<Vec<SeededCall>> {
    let rows: Vec<(Uuid, Uuid, String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT id, company_id, customer_id, due_at FROM scheduled_calls
         WHERE status = 'scheduled'",
    )
    .fetch_all(store.pool())
    .await?;
    let mut jobs = Vec::with_capacity(rows.len());
    let mut calls = Vec::with_capacity(rows.len());
    for (id, company, customer, due) in rows {
        jobs.push(NewJob {
            call: CallId::from_uuid(id),
            partition: outdial_worker::partition(CompanyId::from_uuid(company))?,
            customer: CustomerRef::new(&customer)?,
            due,
        });
        calls.push(SeededCall { id, due });
    }
    for chunk in jobs.chunks(20_000) {
        queue.enqueue_many(chunk).await?;
    }
    Ok(calls)
}
