//! Customers, stored per company under the caller's own reference.
//!
//! `POST /customers` creates ([`Store::insert_customer`]): re-posting an id the company
//! already has is a [`Error::Conflict`] (409), never a silent overwrite; `PATCH` changes
//! fields ([`Store::update_customer`]). Every function takes the [`CompanyId`] and filters on
//! it, so another company's customer is simply [`Error::NotFound`]. `loanId` and `loanIds`
//! are also recorded as the customer's loans. An update that leaves `doNotCall` set cancels
//! every pending call and ends the active schedule in the same transaction.
//!
//! Listing pages by `seq`, an identity column. So that a page boundary never skips a row
//! whose insert was still in flight (it would hold a lower `seq` than a row already
//! returned), inserts take a per-company advisory lock in shared mode and a page read takes
//! it exclusively for the length of its query: a page sees every row numbered below any row
//! it returns, and rows inserted after it get higher numbers.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use outdial_domain::scheduled_call::CancelReason;
use outdial_domain::task::TaskType;
use outdial_domain::{
    Birthday, Customer, CustomerRef, Email, PersonName, PhoneNumber, SsnLastFour, UsState, ZipCode,
};
use serde_json::{Map, Value};
use sqlx::Postgres;
use sqlx::postgres::PgArguments;
use sqlx::query::QueryAs;

use crate::company::CompanyId;
use crate::scheduled_call::{Pending, cancel_pending, end_active_schedule};
use crate::{Error, Result, Store};

mod bulk;

pub(crate) use bulk::{StoredForImport, customers_for_import, insert_customers};

/// The most customers one page returns.
pub const MAX_PAGE: u32 = 1000;

/// First key of the advisory lock that orders customer inserts against page reads; the
/// second key is a hash of the company id. (`0x6f64_0001`, "od" + 1.)
const LIST_LOCK: i32 = 0x6f64_0001;

/// The columns read back into a [`CustomerRow`].
const CUSTOMER_COLUMNS: &str = "seq, id, task_type, first_name, last_name, email, birthday, \
     ssn_last_four, timezone, phone, street_address1, street_address2, city, state, zip_code, \
     do_not_call, is_test, external_metadata::text AS external_metadata, loan_id, loan_ids";

/// Which customers a list returns; `None` matches either value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CustomerFilter {
    pub is_test: Option<bool>,
    pub do_not_call: Option<bool>,
}

/// A `PATCH /customers/{id}`: each `Some` replaces that field; for a field that may be
/// absent, `Some(None)` clears it. Values must already be validated by the caller (a task
/// type against the company's catalog, for example); the id cannot change. `Debug` names
/// the fields set, never their values.
#[derive(Clone, Default, PartialEq)]
pub struct CustomerPatch {
    pub task_type: Option<TaskType>,
    pub first_name: Option<PersonName>,
    pub last_name: Option<PersonName>,
    pub email: Option<Option<Email>>,
    pub birthday: Option<Option<Birthday>>,
    pub ssn_last_four: Option<Option<SsnLastFour>>,
    pub timezone: Option<Tz>,
    pub phone: Option<PhoneNumber>,
    pub street_address1: Option<String>,
    pub street_address2: Option<Option<String>>,
    pub city: Option<String>,
    pub state: Option<UsState>,
    pub zip_code: Option<ZipCode>,
    pub do_not_call: Option<bool>,
    pub is_test: Option<bool>,
    pub external_metadata: Option<Map<String, Value>>,
    pub loan_id: Option<Option<String>>,
    pub loan_ids: Option<Vec<i64>>,
}

impl CustomerPatch {
    /// The JSON names of the fields this patch sets.
    pub fn fields(&self) -> Vec<&'static str> {
        let set = [
            ("taskType", self.task_type.is_some()),
            ("firstName", self.first_name.is_some()),
            ("lastName", self.last_name.is_some()),
            ("email", self.email.is_some()),
            ("birthday", self.birthday.is_some()),
            ("ssnLastFour", self.ssn_last_four.is_some()),
            ("timezone", self.timezone.is_some()),
            ("phoneNumber", self.phone.is_some()),
            ("streetAddress1", self.street_address1.is_some()),
            ("streetAddress2", self.street_address2.is_some()),
            ("city", self.city.is_some()),
            ("state", self.state.is_some()),
            ("zipCode", self.zip_code.is_some()),
            ("doNotCall", self.do_not_call.is_some()),
            ("isTest", self.is_test.is_some()),
            ("externalMetadata", self.external_metadata.is_some()),
            ("loanId", self.loan_id.is_some()),
            ("loanIds", self.loan_ids.is_some()),
        ];
        set.into_iter()
            .filter_map(|(name, on)| on.then_some(name))
            .collect()
    }

    /// Applies the patch to `c`.
    pub fn apply(self, c: &mut Customer) {
        fn put<T>(slot: &mut T, value: Option<T>) {
            if let Some(v) = value {
                *slot = v;
            }
        }
        put(&mut c.task_type, self.task_type);
        put(&mut c.first_name, self.first_name);
        put(&mut c.last_name, self.last_name);
        put(&mut c.email, self.email);
        put(&mut c.birthday, self.birthday);
        put(&mut c.ssn_last_four, self.ssn_last_four);
        put(&mut c.timezone, self.timezone);
        put(&mut c.phone, self.phone);
        put(&mut c.street_address1, self.street_address1);
        put(&mut c.street_address2, self.street_address2);
        put(&mut c.city, self.city);
        put(&mut c.state, self.state);
        put(&mut c.zip_code, self.zip_code);
        put(&mut c.do_not_call, self.do_not_call);
        put(&mut c.is_test, self.is_test);
        put(&mut c.external_metadata, self.external_metadata);
        put(&mut c.loan_id, self.loan_id);
        put(&mut c.loan_ids, self.loan_ids);
    }
}

impl fmt::Debug for CustomerPatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CustomerPatch")
            .field(&self.fields())
            .finish()
    }
}

/// A `customers` row as read.
#[derive(sqlx::FromRow)]
struct CustomerRow {
    seq: i64,
    id: String,
    task_type: String,
    first_name: String,
    last_name: String,
    email: Option<String>,
    birthday: Option<NaiveDate>,
    ssn_last_four: Option<String>,
    timezone: String,
    phone: String,
    street_address1: String,
    street_address2: Option<String>,
    city: String,
    state: String,
    zip_code: String,
    do_not_call: bool,
    is_test: bool,
    external_metadata: String,
    loan_id: Option<String>,
    loan_ids: Vec<i64>,
}

impl TryFrom<CustomerRow> for Customer {
    type Error = Error;
    fn try_from(r: CustomerRow) -> Result<Customer> {
        fn col<T, E>(column: &'static str, value: Result<T, E>) -> Result<T> {
            value.map_err(|_| Error::Corrupt {
                what: "customer",
                column,
            })
        }
        Ok(Customer {
            first_name: col("first_name", PersonName::new(&r.first_name))?,
            last_name: col("last_name", PersonName::new(&r.last_name))?,
            id: col("id", CustomerRef::new(&r.id))?,
            email: col("email", r.email.as_deref().map(Email::new).transpose())?,
            birthday: r.birthday.map(Birthday::from_stored),
            ssn_last_four: col(
                "ssn_last_four",
                r.ssn_last_four.as_deref().map(SsnLastFour::new).transpose(),
            )?,
            timezone: col("timezone", Tz::from_str(&r.timezone))?,
            phone: col("phone", PhoneNumber::from_stored(&r.phone))?,
            street_address1: r.street_address1,
            street_address2: r.street_address2,
            city: r.city,
            state: col("state", UsState::from_str(&r.state))?,
            zip_code: col("zip_code", ZipCode::new(&r.zip_code))?,
            do_not_call: r.do_not_call,
            is_test: r.is_test,
            task_type: col("task_type", TaskType::from_str(&r.task_type))?,
            external_metadata: col(
                "external_metadata",
                serde_json::from_str::<Map<String, Value>>(&r.external_metadata),
            )?,
            loan_id: r.loan_id,
            loan_ids: r.loan_ids,
        })
    }
}

/// The customer's loan references: `loanId` and each of `loanIds` (as decimal text).
pub(crate) fn loan_refs(c: &Customer) -> Vec<String> {
    c.loan_id
        .iter()
        .cloned()
        .chain(c.loan_ids.iter().map(i64::to_string))
        .collect()
}

/// Inserts `customer` with `loans` as its loan rows (see [`Store::insert_customer`]).
pub(crate) async fn insert_customer<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    company: CompanyId,
    customer: &Customer,
    loans: Vec<String>,
    now: DateTime<Utc>,
) -> Result<Customer> {
    let sql = format!(
        "WITH gate AS (
             SELECT pg_advisory_xact_lock_shared({LIST_LOCK}, hashtext($1::text))
         ), stored AS (
             INSERT INTO customers (company_id, id, task_type, first_name, last_name, email,
                 birthday, ssn_last_four, timezone, phone, street_address1, street_address2,
                 city, state, zip_code, do_not_call, is_test, external_metadata, loan_id,
                 loan_ids, created_at, updated_at)
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                 $17, $18::text::json, $19, $20, $21, $21
             FROM gate
             RETURNING {CUSTOMER_COLUMNS}
         ), loans AS (
             INSERT INTO loans (company_id, customer_id, id, created_at)
             SELECT $1, $2, loan, $21 FROM unnest($22::text[]) AS loan, stored
             ON CONFLICT DO NOTHING
         )
         SELECT * FROM stored"
    );
    let row = bind_customer(sqlx::query_as(&sql), company, customer, now)?
        .bind(loans)
        .fetch_one(executor)
        .await
        .map_err(|e| Error::from(e).conflict_on("customer"))?;
    row.try_into()
}

/// [`Store::update_customer`] inside the caller's transaction.
pub(crate) async fn update_customer(
    tx: &mut sqlx::PgConnection,
    company: CompanyId,
    id: &str,
    patch: CustomerPatch,
    now: DateTime<Utc>,
) -> Result<Customer> {
    let sql = format!(
        "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE company_id = $1 AND id = $2 FOR UPDATE"
    );
    let row: Option<CustomerRow> = sqlx::query_as(&sql)
        .bind(company.as_uuid())
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    let mut customer = Customer::try_from(row.ok_or(Error::NotFound { what: "customer" })?)?;
    patch.apply(&mut customer);
    write_customer(tx, company, &customer, now).await
}

/// Stores every field of `customer` over its row (locked by the caller), adds its loan
/// references, and, when it is do-not-call, cancels its pending calls and ends its schedule.
pub(crate) async fn write_customer(
    tx: &mut sqlx::PgConnection,
    company: CompanyId,
    customer: &Customer,
    now: DateTime<Utc>,
) -> Result<Customer> {
    let id = customer.id.as_str();
    let sql = format!(
        "UPDATE customers SET task_type = $3, first_name = $4, last_name = $5, email = $6,
                 birthday = $7, ssn_last_four = $8, timezone = $9, phone = $10,
                 street_address1 = $11, street_address2 = $12, city = $13, state = $14,
                 zip_code = $15, do_not_call = $16, is_test = $17,
                 external_metadata = $18::text::json, loan_id = $19, loan_ids = $20,
                 updated_at = $21
             WHERE company_id = $1 AND id = $2
             RETURNING {CUSTOMER_COLUMNS}"
    );
    let row = bind_customer(sqlx::query_as(&sql), company, customer, now)?
        .fetch_one(&mut *tx)
        .await?;
    sqlx::query(
        // A reference that names an imported loan by its LMS loanId is that loan.
        "INSERT INTO loans (company_id, customer_id, id, created_at)
             SELECT $1, $2, loan, $3 FROM unnest($4::text[]) AS loan
             WHERE NOT EXISTS (SELECT 1 FROM loans l WHERE l.company_id = $1
                 AND l.customer_id = $2 AND l.reference = loan)
             ON CONFLICT DO NOTHING",
    )
    .bind(company.as_uuid())
    .bind(id)
    .bind(now)
    .bind(loan_refs(customer))
    .execute(&mut *tx)
    .await?;
    if customer.do_not_call {
        // Do-not-call stops everything pending, in the same transaction.
        cancel_pending(
            &mut *tx,
            company,
            Pending::Customer(id),
            CancelReason::DoNotCall,
            now,
        )
        .await?;
        end_active_schedule(&mut *tx, company, id, now).await?;
    }
    row.try_into()
}

/// Binds `$1` company, `$2` id and `$3`–`$20` every other field, `$21` now: the parameter
/// order shared by the insert and the update.
fn bind_customer<'q>(
    query: QueryAs<'q, Postgres, CustomerRow, PgArguments>,
    company: CompanyId,
    c: &'q Customer,
    now: DateTime<Utc>,
) -> Result<QueryAs<'q, Postgres, CustomerRow, PgArguments>> {
    let metadata = serde_json::to_string(&c.external_metadata).map_err(|_| Error::Corrupt {
        what: "customer",
        column: "external_metadata",
    })?;
    Ok(query
        .bind(company.as_uuid())
        .bind(c.id.as_str())
        .bind(c.task_type.as_str())
        .bind(c.first_name.as_str())
        .bind(c.last_name.as_str())
        .bind(c.email.as_ref().map(Email::as_str))
        .bind(c.birthday.map(|b| b.date()))
        .bind(c.ssn_last_four.as_ref().map(SsnLastFour::as_str))
        .bind(c.timezone.name())
        .bind(c.phone.as_e164())
        .bind(c.street_address1.as_str())
        .bind(c.street_address2.as_deref())
        .bind(c.city.as_str())
        .bind(c.state.code())
        .bind(c.zip_code.as_str())
        .bind(c.do_not_call)
        .bind(c.is_test)
        .bind(metadata)
        .bind(c.loan_id.as_deref())
        .bind(c.loan_ids.as_slice())
        .bind(now))
}

impl Store {
    /// Stores a new customer for `company` and returns it as stored. An id the company
    /// already has is [`Error::Conflict`]: creation never overwrites (PATCH updates).
    pub async fn insert_customer(
        &self,
        company: CompanyId,
        customer: &Customer,
        now: DateTime<Utc>,
    ) -> Result<Customer> {
        insert_customer(&self.pool, company, customer, loan_refs(customer), now).await
    }

    /// One of `company`'s customers; another company's is [`Error::NotFound`].
    pub async fn customer(&self, company: CompanyId, id: &str) -> Result<Customer> {
        let sql =
            format!("SELECT {CUSTOMER_COLUMNS} FROM customers WHERE company_id = $1 AND id = $2");
        let row: Option<CustomerRow> = sqlx::query_as(&sql)
            .bind(company.as_uuid())
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.ok_or(Error::NotFound { what: "customer" })?.try_into()
    }

    /// One of `company`'s customers with their placed calls as the contact history
    /// ([`Store::contacts`]), in one round trip: what planning a schedule reads.
    pub async fn customer_and_contacts(
        &self,
        company: CompanyId,
        id: &str,
    ) -> Result<(Customer, Vec<outdial_domain::policy::Contact>)> {
        let sql = format!(
            "SELECT {CUSTOMER_COLUMNS},
                 (SELECT coalesce(json_agg(json_build_object(
                      'at', a.started_at, 'number', a.number, 'loan', a.loan_id,
                      'outcome', a.outcome, 'flags', a.flags) ORDER BY a.started_at), '[]')
                  FROM call_attempts a
                  WHERE a.company_id = $1 AND a.customer_id = $2) AS contacts
             FROM customers WHERE company_id = $1 AND id = $2"
        );
        let row: Option<CustomerWithContacts> = sqlx::query_as(&sql)
            .bind(company.as_uuid())
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        let row = row.ok_or(Error::NotFound { what: "customer" })?;
        let contacts = row
            .contacts
            .0
            .into_iter()
            .map(|c| crate::call_attempt::contact((c.at, c.number, c.loan, c.outcome, c.flags)))
            .collect::<Result<_>>()?;
        Ok((Customer::try_from(row.row)?, contacts))
    }

    /// Applies `patch` to one of `company`'s customers and returns the row as now stored;
    /// another company's customer is [`Error::NotFound`] and is left untouched.
    pub async fn update_customer(
        &self,
        company: CompanyId,
        id: &str,
        patch: CustomerPatch,
        now: DateTime<Utc>,
    ) -> Result<Customer> {
        let mut tx = self.pool.begin().await?;
        let stored = update_customer(&mut tx, company, id, patch, now).await?;
        tx.commit().await?;
        Ok(stored)
    }

    /// One page of `company`'s customers matching `filter`, in creation order, starting
    /// after the cursor `after` (from a previous page). Returns the page and the cursor for
    /// the next one, `None` on the last page. `limit` is clamped to `1..=`[`MAX_PAGE`].
    pub async fn list_customers(
        &self,
        company: CompanyId,
        filter: CustomerFilter,
        after: Option<i64>,
        limit: u32,
    ) -> Result<(Vec<Customer>, Option<i64>)> {
        let limit = limit.clamp(1, MAX_PAGE);
        let mut sql = format!("SELECT {CUSTOMER_COLUMNS} FROM customers WHERE company_id = $1");
        let mut n = 1;
        let mut clause = |sql: &mut String, column: &str, op: &str| {
            n += 1;
            sql.push_str(&format!(" AND {column} {op} ${n}"));
        };
        if filter.is_test.is_some() {
            clause(&mut sql, "is_test", "=");
        }
        if filter.do_not_call.is_some() {
            clause(&mut sql, "do_not_call", "=");
        }
        if after.is_some() {
            clause(&mut sql, "seq", ">");
        }
        sql.push_str(" ORDER BY seq LIMIT ");
        sql.push_str(&(limit + 1).to_string());

        let mut query = sqlx::query_as::<_, CustomerRow>(&sql).bind(company.as_uuid());
        for value in [filter.is_test, filter.do_not_call].into_iter().flatten() {
            query = query.bind(value);
        }
        if let Some(after) = after {
            query = query.bind(after);
        }

        // Waits for in-flight inserts of this company and holds new ones off until the page
        // is read (see the module documentation).
        crate::page::read(
            &self.pool,
            LIST_LOCK,
            company,
            query,
            limit,
            |r: &CustomerRow| r.seq,
        )
        .await
    }
}

/// A customer row with its placed calls.
#[derive(sqlx::FromRow)]
struct CustomerWithContacts {
    #[sqlx(flatten)]
    row: CustomerRow,
    contacts: sqlx::types::Json<Vec<ContactJson>>,
}

/// One placed call as `customer_and_contacts` aggregates it.
#[derive(serde::Deserialize)]
struct ContactJson {
    at: DateTime<Utc>,
    number: String,
    loan: Option<String>,
    outcome: Option<String>,
    flags: Vec<String>,
}

/// A customer row with its company.
#[derive(sqlx::FromRow)]
struct OwnedCustomerRow {
    company_id: uuid::Uuid,
    #[sqlx(flatten)]
    row: CustomerRow,
}

/// The customers named by `(company, id)` pairs, keyed the same way (missing ones absent).
pub(crate) async fn customers_by_key(
    conn: &mut sqlx::PgConnection,
    keys: &[(uuid::Uuid, String)],
) -> Result<std::collections::HashMap<(uuid::Uuid, String), Customer>> {
    let (companies, ids): (Vec<uuid::Uuid>, Vec<String>) = keys.iter().cloned().unzip();
    let sql = format!(
        "SELECT company_id, {CUSTOMER_COLUMNS} FROM customers
         WHERE (company_id, id) IN (SELECT * FROM unnest($1::uuid[], $2::text[]))"
    );
    let rows: Vec<OwnedCustomerRow> = sqlx::query_as(&sql)
        .bind(&companies)
        .bind(&ids)
        .fetch_all(conn)
        .await?;
    rows.into_iter()
        .map(|r| {
            let key = (r.company_id, r.row.id.clone());
            Ok((key, Customer::try_from(r.row)?))
        })
        .collect()
}
