//! API keys: generation, hashing, lookup and rotation.
//!
//! A key is `odk_` followed by 64 hex digits (32 random bytes). The database keeps only its
//! first [`PREFIX_LEN`] characters (to find the row) and the SHA-256 of the whole key; the
//! plain text is returned once, when the key is made. Authentication looks the row up by
//! prefix and compares digests in constant time.

use std::fmt;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, Row};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::company::{COMPANY_COLUMNS, Company, CompanyId, CompanyRow};
use crate::{Error, Result, Store};

/// How many leading characters of a key are stored in the clear for lookup.
pub const PREFIX_LEN: usize = 12;
/// The longest key accepted from a caller (`OUTDIAL_DEMO_API_KEY`, `X-API-Key`).
const MAX_KEY_LEN: usize = 256;
/// Every generated key starts with this.
const KEY_PREFIX: &str = "odk_";
/// How many fresh keys to try when a generated prefix is already taken.
const GENERATE_TRIES: usize = 8;

/// An API key in plain text. It is a secret: `Debug` shows only its lookup prefix, and there
/// is no `Display`; use [`ApiKey::expose`] where the key must be shown once.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// A new random key.
    pub(crate) fn generate() -> ApiKey {
        let bytes: [u8; 32] = rand::random();
        let mut key = String::with_capacity(KEY_PREFIX.len() + 64);
        key.push_str(KEY_PREFIX);
        for b in bytes {
            key.push(char::from(HEX[usize::from(b >> 4)]));
            key.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        ApiKey(key)
    }

    /// Wraps a key chosen by the operator (`OUTDIAL_DEMO_API_KEY`): at least 32 and at
    /// most 256 printable ASCII characters.
    pub fn parse(key: &str) -> Result<ApiKey> {
        if key.len() < 32 || key.len() > MAX_KEY_LEN {
            return Err(Error::InvalidApiKey("must be 32 to 256 characters long"));
        }
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::InvalidApiKey(
                "must be printable ASCII without spaces",
            ));
        }
        Ok(ApiKey(key.to_owned()))
    }

    /// The key in plain text, to print once or send in `X-API-Key`.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The stored lookup prefix.
    pub(crate) fn prefix(&self) -> &str {
        lookup_prefix(&self.0).unwrap_or(&self.0)
    }

    /// SHA-256 of the whole key.
    pub(crate) fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.0.as_bytes()).into()
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKey({}…)", self.prefix())
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The lookup prefix of a presented key, if it is long enough to have one.
fn lookup_prefix(key: &str) -> Option<&str> {
    key.get(..PREFIX_LEN)
}

/// Stores `key` for `company`. Returns `false` when its prefix is already taken.
async fn insert_key(
    conn: &mut PgConnection,
    company: CompanyId,
    key: &ApiKey,
    now: DateTime<Utc>,
) -> Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO api_keys (id, company_id, prefix, sha256, created_at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (prefix) DO NOTHING",
    )
    .bind(Uuid::new_v4())
    .bind(company.as_uuid())
    .bind(key.prefix())
    .bind(key.digest().as_slice())
    .bind(now)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Generates a key for `company`, stores its hash and returns the plain text.
pub(crate) async fn issue_key(
    conn: &mut PgConnection,
    company: CompanyId,
    now: DateTime<Utc>,
) -> Result<ApiKey> {
    for _ in 0..GENERATE_TRIES {
        let key = ApiKey::generate();
        if insert_key(conn, company, &key, now).await? {
            return Ok(key);
        }
    }
    // 32 random bits of prefix colliding 8 times in a row means the generator is broken.
    Err(Error::Conflict {
        what: "api key prefix".to_owned(),
    })
}

impl Store {
    /// The company that `key` belongs to, or `None` for an unknown, malformed or revoked
    /// key. The digest comparison takes the same time however many bytes match.
    pub async fn authenticate(&self, key: &str) -> Result<Option<Company>> {
        if key.len() > MAX_KEY_LEN {
            return Ok(None);
        }
        let Some(prefix) = lookup_prefix(key) else {
            return Ok(None);
        };
        let sql = format!(
            "SELECT k.sha256, {COMPANY_COLUMNS}
             FROM api_keys k JOIN companies c ON c.id = k.company_id
             WHERE k.prefix = $1 AND k.revoked_at IS NULL"
        );
        let Some(row) = sqlx::query(&sql)
            .bind(prefix)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let stored: Vec<u8> = row.try_get("sha256")?;
        let presented: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        if !bool::from(presented.as_slice().ct_eq(stored.as_slice())) {
            return Ok(None);
        }
        let company = <CompanyRow as sqlx::FromRow<_>>::from_row(&row)?;
        Ok(Some(company.try_into()?))
    }

    /// Revokes every live key of `company` and issues a new one, returned in plain text.
    pub async fn rotate_key(&self, company: CompanyId, now: DateTime<Utc>) -> Result<ApiKey> {
        let mut tx = self.pool.begin().await?;
        // Lock the company row so two rotations cannot both leave a live key.
        sqlx::query("SELECT id FROM companies WHERE id = $1 FOR UPDATE")
            .bind(company.as_uuid())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(Error::NotFound { what: "company" })?;
        sqlx::query(
            "UPDATE api_keys SET revoked_at = $2 WHERE company_id = $1 AND revoked_at IS NULL",
        )
        .bind(company.as_uuid())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let key = issue_key(&mut tx, company, now).await?;
        tx.commit().await?;
        Ok(key)
    }
}

/// Makes sure `key` (chosen by the operator) authenticates as `company`: stores it unless
/// it is already a live key of that company. A key whose prefix belongs to another
/// company, or to a revoked key, is a [`Error::Conflict`].
pub(crate) async fn install_key(
    conn: &mut PgConnection,
    company: CompanyId,
    key: &ApiKey,
    now: DateTime<Utc>,
) -> Result<()> {
    if insert_key(conn, company, key, now).await? {
        return Ok(());
    }
    let row = sqlx::query(
        "SELECT company_id, sha256, revoked_at IS NULL AS live FROM api_keys WHERE prefix = $1",
    )
    .bind(key.prefix())
    .fetch_one(&mut *conn)
    .await?;
    let owner: Uuid = row.try_get("company_id")?;
    let stored: Vec<u8> = row.try_get("sha256")?;
    let live: bool = row.try_get("live")?;
    let same = bool::from(key.digest().as_slice().ct_eq(stored.as_slice()));
    if owner == company.as_uuid() && same && live {
        Ok(())
    } else {
        Err(Error::Conflict {
            what: "api key with this prefix".to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_prefixed_hex_and_debug_shows_only_the_prefix() {
        let key = ApiKey::generate();
        let text = key.expose();
        assert_eq!(text.len(), 68);
        assert!(text.starts_with("odk_"));
        assert!(text[4..].bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(key.prefix(), &text[..12]);
        let debug = format!("{key:?}");
        assert!(!debug.contains(&text[12..]), "{debug}");
        assert_ne!(ApiKey::generate(), key);
    }

    #[test]
    fn operator_keys_must_be_long_printable_ascii() {
        assert!(ApiKey::parse("short").is_err());
        assert!(ApiKey::parse(&"x ".repeat(20)).is_err());
        assert!(ApiKey::parse(&"é".repeat(20)).is_err());
        assert!(ApiKey::parse(&"k".repeat(32)).is_ok());
    }
}
