//! What an import chunk does with many customers at once: insert the new ones in a few
//! statements, and read (and lock) the ones already stored.

use chrono::{DateTime, Utc};
use outdial_domain::{Customer, Email, SsnLastFour};

use super::{CUSTOMER_COLUMNS, CustomerWithContacts, LIST_LOCK, loan_refs};
use crate::company::CompanyId;
use crate::{Error, Result};

/// Inserts those of `customers` (distinct ids) that `company` does not have yet, with their
/// loan references, in two statements: what an import chunk does with its rows. Returns the
/// ids it inserted; a stored id is left as it is (the caller reads and locks it with
/// [`customers_for_import`]). A customer another transaction is inserting meanwhile is
/// waited for, then counts as stored.
pub(crate) async fn insert_customers(
    tx: &mut sqlx::PgConnection,
    company: CompanyId,
    customers: &[&Customer],
    now: DateTime<Utc>,
) -> Result<std::collections::HashSet<String>> {
    if customers.is_empty() {
        return Ok(Default::default());
    }
    let n = customers.len();
    let mut ids = Vec::with_capacity(n);
    let mut task_types = Vec::with_capacity(n);
    let mut first = Vec::with_capacity(n);
    let mut last = Vec::with_capacity(n);
    let mut emails = Vec::with_capacity(n);
    let mut birthdays = Vec::with_capacity(n);
    let mut ssn = Vec::with_capacity(n);
    let mut zones = Vec::with_capacity(n);
    let mut phones = Vec::with_capacity(n);
    let mut street1 = Vec::with_capacity(n);
    let mut street2 = Vec::with_capacity(n);
    let mut cities = Vec::with_capacity(n);
    let mut states = Vec::with_capacity(n);
    let mut zips = Vec::with_capacity(n);
    let mut dnc = Vec::with_capacity(n);
    let mut test = Vec::with_capacity(n);
    let mut metadata = Vec::with_capacity(n);
    let mut loan_id = Vec::with_capacity(n);
    let mut loan_ids = Vec::with_capacity(n);
    let (mut loan_owner, mut loan_ref) = (Vec::new(), Vec::new());
    for c in customers {
        ids.push(c.id.as_str());
        task_types.push(c.task_type.as_str());
        first.push(c.first_name.as_str());
        last.push(c.last_name.as_str());
        emails.push(c.email.as_ref().map(Email::as_str));
        birthdays.push(c.birthday.map(|b| b.date()));
        ssn.push(c.ssn_last_four.as_ref().map(SsnLastFour::as_str));
        zones.push(c.timezone.name());
        phones.push(c.phone.as_e164());
        street1.push(c.street_address1.as_str());
        street2.push(c.street_address2.as_deref());
        cities.push(c.city.as_str());
        states.push(c.state.code());
        zips.push(c.zip_code.as_str());
        dnc.push(c.do_not_call);
        test.push(c.is_test);
        metadata.push(
            serde_json::to_string(&c.external_metadata).map_err(|_| Error::Corrupt {
                what: "customer",
                column: "external_metadata",
            })?,
        );
        loan_id.push(c.loan_id.as_deref());
        loan_ids.push(
            serde_json::to_string(&c.loan_ids).map_err(|_| Error::Corrupt {
                what: "customer",
                column: "loan_ids",
            })?,
        );
        for reference in loan_refs(c) {
            loan_owner.push(c.id.as_str());
            loan_ref.push(reference);
        }
    }
    let sql = format!(
        "WITH gate AS (
             SELECT pg_advisory_xact_lock_shared({LIST_LOCK}, hashtext($1::text))
         )
         INSERT INTO customers (company_id, id, task_type, first_name, last_name, email,
             birthday, ssn_last_four, timezone, phone, street_address1, street_address2,
             city, state, zip_code, do_not_call, is_test, external_metadata, loan_id,
             loan_ids, created_at, updated_at)
         SELECT $1, c.id, c.task_type, c.first_name, c.last_name, c.email, c.birthday, c.ssn,
             c.zone, c.phone, c.street1, c.street2, c.city, c.state, c.zip, c.dnc, c.test,
             c.metadata::json, c.loan_id,
             ARRAY(SELECT jsonb_array_elements_text(c.loan_ids::jsonb)::bigint), $2, $2
         FROM gate, unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
             $8::date[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[],
             $14::text[], $15::text[], $16::text[], $17::bool[], $18::bool[], $19::text[],
             $20::text[], $21::text[])
             AS c(id, task_type, first_name, last_name, email, birthday, ssn, zone, phone,
                  street1, street2, city, state, zip, dnc, test, metadata, loan_id, loan_ids)
         ON CONFLICT (company_id, id) DO NOTHING
         RETURNING id"
    );
    let inserted: std::collections::HashSet<String> = sqlx::query_scalar(&sql)
        .bind(company.as_uuid())
        .bind(now)
        .bind(&ids)
        .bind(&task_types)
        .bind(&first)
        .bind(&last)
        .bind(&emails)
        .bind(&birthdays)
        .bind(&ssn)
        .bind(&zones)
        .bind(&phones)
        .bind(&street1)
        .bind(&street2)
        .bind(&cities)
        .bind(&states)
        .bind(&zips)
        .bind(&dnc)
        .bind(&test)
        .bind(&metadata)
        .bind(&loan_id)
        .bind(&loan_ids)
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| Error::from(e).conflict_on("customer"))?
        .into_iter()
        .collect();
    let (loan_owner, loan_ref): (Vec<&str>, Vec<String>) = loan_owner
        .into_iter()
        .zip(loan_ref)
        .filter(|(owner, _)| inserted.contains(*owner))
        .unzip();
    if !loan_owner.is_empty() {
        sqlx::query(
            "INSERT INTO loans (company_id, customer_id, id, created_at)
             SELECT $1, c, l, $2 FROM unnest($3::text[], $4::text[]) AS t(c, l)
             ON CONFLICT DO NOTHING",
        )
        .bind(company.as_uuid())
        .bind(now)
        .bind(&loan_owner)
        .bind(&loan_ref)
        .execute(&mut *tx)
        .await?;
    }
    Ok(inserted)
}

/// What an import needs of a customer it finds already stored.
#[derive(Debug)]
pub(crate) struct StoredForImport {
    pub customer: Customer,
    /// The customer has an active schedule.
    pub scheduled: bool,
    /// Its placed calls, for planning a schedule.
    pub contacts: Vec<outdial_domain::policy::Contact>,
}

/// `company`'s customers among `ids`, locked for update, keyed by id (missing ones absent).
pub(crate) async fn customers_for_import(
    conn: &mut sqlx::PgConnection,
    company: CompanyId,
    ids: &[String],
) -> Result<std::collections::HashMap<String, StoredForImport>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        with: CustomerWithContacts,
        scheduled: bool,
    }
    let sql = format!(
        "SELECT {CUSTOMER_COLUMNS},
             (SELECT coalesce(json_agg(json_build_object(
                  'at', a.started_at, 'number', a.number, 'loan', a.loan_id,
                  'outcome', a.outcome, 'flags', a.flags) ORDER BY a.started_at), '[]')
              FROM call_attempts a
              WHERE a.company_id = $1 AND a.customer_id = c.id) AS contacts,
             EXISTS (SELECT 1 FROM schedules s
                     WHERE s.company_id = $1 AND s.customer_id = c.id AND s.active) AS scheduled
         FROM customers c WHERE c.company_id = $1 AND c.id = ANY($2)
         ORDER BY c.id
         FOR UPDATE OF c"
    );
    // Planned at every run, not as a prepared statement: a plan cached while an import's
    // first chunks made the table small read it sequentially afterwards (60 ms a chunk at
    // 30,000 customers, growing; docs/benchmarks/import.md).
    let rows: Vec<Row> = sqlx::query_as(&sql)
        .persistent(false)
        .bind(company.as_uuid())
        .bind(ids)
        .fetch_all(conn)
        .await?;
    rows.into_iter()
        .map(|r| {
            let contacts = r
                .with
                .contacts
                .0
                .into_iter()
                .map(|c| crate::call_attempt::contact((c.at, c.number, c.loan, c.outcome, c.flags)))
                .collect::<Result<_>>()?;
            let customer = Customer::try_from(r.with.row)?;
            Ok((
                customer.id.as_str().to_owned(),
                StoredForImport {
                    customer,
                    scheduled: r.scheduled,
                    contacts,
                },
            ))
        })
        .collect()
}
