//! The two storage traits the domain is written against.
//!
//! - [`KvStore`]: Spin key-value. Short-lived state (sessions, CSRF tokens,
//!   rate-limit counters). It has no compare-and-swap, so nothing single-use
//!   is ever settled here. Values expire by a stored deadline ([`kv`]).
//! - [`SqlStore`]: Spin SQLite. Everything durable. Each atomic change is one
//!   statement (`UPDATE … WHERE … RETURNING`, `INSERT … ON CONFLICT`): each
//!   request opens its own connection, and on libSQL each call is its own
//!   request, so a transaction spread over calls would not be isolated.

pub mod activations;
pub mod auth_codes;
pub mod client_assertions;
pub mod clients;
pub mod connections;
pub mod consent_records;
pub mod consents;
pub mod dev_outbox;
pub mod domain_claims;
pub mod email_changes;
pub mod federated_identities;
pub mod identities;
#[cfg(any(test, feature = "testkit"))]
pub mod introspect;
pub mod invitations;
pub mod kv;
pub mod logout_deliveries;
pub mod mandate_delegates;
pub mod mandate_templates;
pub mod mandates;
pub mod memberships;
#[cfg(not(target_arch = "wasm32"))]
pub mod native;
pub mod one_time_tokens;
pub mod org_access;
pub mod org_audit;
pub mod organisations;
pub mod passkeys;
pub mod pending_links;
pub mod projects;
pub mod recovery_codes;
pub mod refresh_families;
pub mod revoked_tokens;
pub mod role_assignments;
pub mod schema;
pub mod security_events;
pub mod session_clients;
pub mod sessions;
pub mod settings;
pub mod signing_keys;
pub mod social_states;
pub mod throttles;
pub mod totp_secrets;
pub mod webauthn_states;

use crate::error::{Error, Result};

/// A key-value store (Spin's `fermyon:spin/key-value`).
pub trait KvStore {
    /// The value under `key`, if any.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>>;
    /// Stores `value` under `key`, replacing what was there.
    fn set(&self, key: &str, value: &[u8]) -> Result<()>;
    /// Removes `key`; removing a missing key is not an error.
    fn delete(&self, key: &str) -> Result<()>;
}

/// A SQL database (Spin's `fermyon:spin/sqlite`): one parameterised statement
/// per call, returning its rows.
pub trait SqlStore {
    /// Runs one statement with `?` placeholders bound to `params`.
    fn execute(&self, sql: &str, params: &[Value]) -> Result<Rows>;
}

/// Deletes at most `limit` rows of `table` that match `dead` (a condition
/// on `?1`, bound to `before`), for the sweep. Each table module names its
/// own condition.
fn sweep_expired(
    db: &dyn SqlStore,
    table: &str,
    dead: &str,
    before: i64,
    limit: i64,
) -> Result<usize> {
    let rows = db.execute(
        &format!(
            "DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} WHERE {dead} LIMIT ?2) RETURNING 1"
        ),
        &[before.into(), limit.into()],
    )?;
    Ok(rows.len())
}

/// How many rows `table` has, for tests that check nothing was left half-made.
#[cfg(any(test, feature = "testkit"))]
pub fn count_rows(db: &dyn SqlStore, table: &str) -> Result<i64> {
    db.execute(&format!("SELECT count(*) AS n FROM {table}"), &[])?
        .first()
        .map_or(Ok(0), |r| r.int("n"))
}

/// A SQLite value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A 64-bit integer.
    Integer(i64),
    /// A double.
    Real(f64),
    /// UTF-8 text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
    /// NULL.
    Null,
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Integer(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}
impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Value::Blob(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Integer(i64::from(v))
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// The rows a statement returned.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rows {
    /// Column names, in order.
    pub columns: Vec<String>,
    /// Each row's values, in column order.
    pub rows: Vec<Row>,
}

impl Rows {
    /// The first row, if any, read by column name.
    pub fn first(&self) -> Option<Named<'_>> {
        self.rows.first().map(|row| Named {
            columns: &self.columns,
            row,
        })
    }

    /// Every row, read by column name.
    pub fn iter(&self) -> impl Iterator<Item = Named<'_>> {
        self.rows.iter().map(|row| Named {
            columns: &self.columns,
            row,
        })
    }

    /// Decodes every row with `f`.
    pub fn decode<T>(&self, f: impl Fn(&Named<'_>) -> Result<T>) -> Result<Vec<T>> {
        self.iter().map(|r| f(&r)).collect()
    }

    /// How many rows came back.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether no row came back (for `UPDATE … RETURNING`: nothing changed).
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// One row of values, in the order of [`Rows::columns`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row(pub Vec<Value>);

/// A row whose values are read by column name. A missing column or a value of
/// the wrong type is a bug in the code that reads it, not a store fault: it is
/// an [`Error::Internal`].
#[derive(Debug, Clone, Copy)]
pub struct Named<'a> {
    columns: &'a [String],
    row: &'a Row,
}

impl<'a> Named<'a> {
    fn value(&self, name: &str) -> Result<&'a Value> {
        self.columns
            .iter()
            .position(|c| c == name)
            .and_then(|i| self.row.0.get(i))
            .ok_or_else(|| Error::Internal(format!("column `{name}` missing")))
    }

    fn wrong(name: &str, expected: &str, got: &Value) -> Error {
        Error::Internal(format!("column `{name}`: expected {expected}, got {got:?}"))
    }

    /// An integer column.
    pub fn int(&self, name: &str) -> Result<i64> {
        match self.value(name)? {
            Value::Integer(v) => Ok(*v),
            other => Err(Self::wrong(name, "integer", other)),
        }
    }

    /// A nullable integer column.
    pub fn opt_int(&self, name: &str) -> Result<Option<i64>> {
        match self.value(name)? {
            Value::Null => Ok(None),
            _ => self.int(name).map(Some),
        }
    }

    /// An integer column holding 0 or 1.
    pub fn bool(&self, name: &str) -> Result<bool> {
        self.int(name).map(|v| v != 0)
    }

    /// A text column.
    pub fn text(&self, name: &str) -> Result<&'a str> {
        match self.value(name)? {
            Value::Text(v) => Ok(v),
            other => Err(Self::wrong(name, "text", other)),
        }
    }

    /// A text column, owned.
    pub fn string(&self, name: &str) -> Result<String> {
        self.text(name).map(str::to_owned)
    }

    /// A nullable text column, owned.
    pub fn opt_string(&self, name: &str) -> Result<Option<String>> {
        match self.value(name)? {
            Value::Null => Ok(None),
            _ => self.string(name).map(Some),
        }
    }

    /// A blob column.
    pub fn blob(&self, name: &str) -> Result<&'a [u8]> {
        match self.value(name)? {
            Value::Blob(v) => Ok(v),
            other => Err(Self::wrong(name, "blob", other)),
        }
    }
}
