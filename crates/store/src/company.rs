//! Companies (tenants) and their configuration.
//!
//! A company row carries the configuration the rest of outdial reads: the task-type catalog
//! (TOML text, see [`outdial_domain::schedule::Catalog`]), the webhook target, rate limits
//! and caller IDs. Companies are made and configured by the operator (`outdial company …`);
//! `outdial run` makes a `demo` company with [`Store::ensure_demo_company`].

use std::fmt;

use chrono::{DateTime, Utc};
use outdial_domain::schedule::Catalog;
use uuid::Uuid;

use crate::api_key::{ApiKey, install_key, issue_key};
use crate::{Error, Result, Store};

/// The name of the company `outdial run` makes.
pub const DEMO_COMPANY: &str = "demo";

/// The columns of `companies c`, in [`CompanyRow`] order.
pub(crate) const COMPANY_COLUMNS: &str = "c.id, c.name, c.task_types, c.webhook_url, \
     c.webhook_secret, c.calls_per_second, c.max_live_calls, c.caller_ids, c.created_at";

/// A company's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CompanyId(Uuid);

impl CompanyId {
    /// Wraps a UUID.
    pub fn from_uuid(id: Uuid) -> CompanyId {
        CompanyId(id)
    }

    /// The UUID.
    pub fn as_uuid(self) -> Uuid {
        self.0
    }
}

impl fmt::Display for CompanyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A company (tenant) and its configuration. `Debug` hides the webhook secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Company {
    pub id: CompanyId,
    pub name: String,
    /// The task-type catalog as TOML text; [`Company::catalog`] parses it.
    pub task_types: String,
    pub webhook_url: Option<String>,
    pub webhook_secret: Option<String>,
    pub calls_per_second: u32,
    pub max_live_calls: u32,
    /// E.164 numbers calls are placed from.
    pub caller_ids: Vec<String>,
    pub created_at: DateTime<Utc>,
}

impl Company {
    /// The parsed task-type catalog. The text was validated when stored, so this fails only
    /// when the rules in `outdial-domain` have since become stricter.
    pub fn catalog(&self) -> Result<Catalog> {
        Catalog::parse(&self.task_types).map_err(Error::TaskTypes)
    }
}

impl fmt::Debug for Company {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secret = self.webhook_secret.as_ref().map(|_| "***");
        f.debug_struct("Company")
            .field("id", &self.id)
            .field("name", &self.name)
            .field(
                "task_types",
                &format_args!("{} bytes", self.task_types.len()),
            )
            .field("webhook_url", &self.webhook_url)
            .field("webhook_secret", &secret)
            .field("calls_per_second", &self.calls_per_second)
            .field("max_live_calls", &self.max_live_calls)
            .field("caller_ids", &self.caller_ids.len())
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// A `companies` row as read.
#[derive(sqlx::FromRow)]
pub(crate) struct CompanyRow {
    id: Uuid,
    name: String,
    task_types: String,
    webhook_url: Option<String>,
    webhook_secret: Option<String>,
    calls_per_second: i32,
    max_live_calls: i32,
    caller_ids: Vec<String>,
    created_at: DateTime<Utc>,
}

impl TryFrom<CompanyRow> for Company {
    type Error = Error;
    fn try_from(r: CompanyRow) -> Result<Company> {
        let positive = |v: i32, column| {
            u32::try_from(v).map_err(|_| Error::Corrupt {
                what: "company",
                column,
            })
        };
        Ok(Company {
            id: CompanyId(r.id),
            name: r.name,
            task_types: r.task_types,
            webhook_url: r.webhook_url,
            webhook_secret: r.webhook_secret,
            calls_per_second: positive(r.calls_per_second, "calls_per_second")?,
            max_live_calls: positive(r.max_live_calls, "max_live_calls")?,
            caller_ids: r.caller_ids,
            created_at: r.created_at,
        })
    }
}

impl Store {
    /// Makes a company with the built-in task types and default limits, and its first API
    /// key, returned in plain text (only its hash is stored). A taken name is a
    /// [`Error::Conflict`].
    pub async fn create_company(
        &self,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<(Company, ApiKey)> {
        let mut tx = self.pool.begin().await?;
        let sql = format!(
            "INSERT INTO companies AS c (id, name, created_at) VALUES ($1, $2, $3)
             RETURNING {COMPANY_COLUMNS}"
        );
        let row: CompanyRow = sqlx::query_as(&sql)
            .bind(Uuid::new_v4())
            .bind(name)
            .bind(now)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| Error::from(e).conflict_on("company name"))?;
        let company = Company::try_from(row)?;
        let key = issue_key(&mut tx, company.id, now).await?;
        tx.commit().await?;
        Ok((company, key))
    }

    /// Every company, oldest first.
    pub async fn list_companies(&self) -> Result<Vec<Company>> {
        let sql = format!("SELECT {COMPANY_COLUMNS} FROM companies c ORDER BY c.created_at, c.id");
        let rows: Vec<CompanyRow> = sqlx::query_as(&sql).fetch_all(&self.pool).await?;
        rows.into_iter().map(Company::try_from).collect()
    }

    /// One company.
    pub async fn company(&self, id: CompanyId) -> Result<Company> {
        let sql = format!("SELECT {COMPANY_COLUMNS} FROM companies c WHERE c.id = $1");
        let row: Option<CompanyRow> = sqlx::query_as(&sql)
            .bind(id.as_uuid())
            .fetch_optional(&self.pool)
            .await?;
        row.ok_or(Error::NotFound { what: "company" })?.try_into()
    }

    /// A company by name.
    pub async fn company_named(&self, name: &str) -> Result<Company> {
        let sql = format!("SELECT {COMPANY_COLUMNS} FROM companies c WHERE c.name = $1");
        let row: Option<CompanyRow> = sqlx::query_as(&sql)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.ok_or(Error::NotFound { what: "company" })?.try_into()
    }

    /// Replaces a company's task-type catalog with `toml_text` after checking it with
    /// [`Catalog::parse`]; a bad file is [`Error::TaskTypes`] naming the problem.
    pub async fn set_task_types(&self, id: CompanyId, toml_text: &str) -> Result<Company> {
        Catalog::parse(toml_text).map_err(Error::TaskTypes)?;
        let sql = format!(
            "UPDATE companies AS c SET task_types = $2 WHERE c.id = $1 RETURNING {COMPANY_COLUMNS}"
        );
        let row: Option<CompanyRow> = sqlx::query_as(&sql)
            .bind(id.as_uuid())
            .bind(toml_text)
            .fetch_optional(&self.pool)
            .await?;
        row.ok_or(Error::NotFound { what: "company" })?.try_into()
    }

    /// Sets (or, with `None`, removes) a company's webhook URL. Setting one issues a new
    /// signing secret (`whsec_` + 64 hex digits), returned in the company; removing it drops
    /// the secret. The secret is stored as is: webhooks are signed with it.
    pub async fn set_webhook(&self, id: CompanyId, url: Option<&str>) -> Result<Company> {
        let secret = url.map(|_| {
            let bytes: [u8; 32] = rand::random();
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            format!("whsec_{hex}")
        });
        let sql = format!(
            "UPDATE companies AS c SET webhook_url = $2, webhook_secret = $3 WHERE c.id = $1
             RETURNING {COMPANY_COLUMNS}"
        );
        let row: Option<CompanyRow> = sqlx::query_as(&sql)
            .bind(id.as_uuid())
            .bind(url)
            .bind(secret)
            .fetch_optional(&self.pool)
            .await?;
        row.ok_or(Error::NotFound { what: "company" })?.try_into()
    }

    /// The `demo` company of `outdial run`, made if missing.
    ///
    /// With `api_key` (from `OUTDIAL_DEMO_API_KEY`), that key is made to authenticate as the
    /// demo company and `None` is returned beside it. Without one, a new company's generated
    /// key is returned; an existing company's keys are left alone (only their hashes are
    /// stored, so none can be shown) and `None` is returned: call [`Store::rotate_key`] to get
    /// a fresh one. Safe to run from several processes at once.
    pub async fn ensure_demo_company(
        &self,
        api_key: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(Company, Option<ApiKey>)> {
        let api_key = api_key.map(ApiKey::parse).transpose()?;
        let mut tx = self.pool.begin().await?;
        let sql = format!(
            "INSERT INTO companies AS c (id, name, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO NOTHING
             RETURNING {COMPANY_COLUMNS}"
        );
        let created: Option<CompanyRow> = sqlx::query_as(&sql)
            .bind(Uuid::new_v4())
            .bind(DEMO_COMPANY)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
        let (company, is_new) = match created {
            Some(row) => (Company::try_from(row)?, true),
            None => {
                let sql = format!("SELECT {COMPANY_COLUMNS} FROM companies c WHERE c.name = $1");
                let row: CompanyRow = sqlx::query_as(&sql)
                    .bind(DEMO_COMPANY)
                    .fetch_one(&mut *tx)
                    .await?;
                (Company::try_from(row)?, false)
            }
        };
        let generated = match (&api_key, is_new) {
            (Some(key), _) => {
                install_key(&mut tx, company.id, key, now).await?;
                None
            }
            (None, true) => Some(issue_key(&mut tx, company.id, now).await?),
            (None, false) => None,
        };
        tx.commit().await?;
        Ok((company, generated))
    }
}
