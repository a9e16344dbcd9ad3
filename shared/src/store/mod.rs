//! The two storage traits the domain is written against.
//!
//! - [`KvStore`]: Spin key-value. Short-lived state (sessions, CSRF tokens,
//!   rate-limit counters). It has no compare-and-swap, so nothing single-use
//!   is ever settled here. Values expire by a stored deadline ([`kv`]).
//! - [`SqlStore`]: Spin SQLite. Everything durable. Each atomic change is one
//!   statement (`UPDATE … WHERE … RETURNING`, `INSERT … ON CONFLICT`), because
//!   Spin shares one connection between concurrent requests.

pub mod kv;
#[cfg(not(target_arch = "wasm32"))]
pub mod native;

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
    /// The first row, if any.
    pub fn first(&self) -> Option<&Row> {
        self.rows.first()
    }

    /// Whether no row came back (for `UPDATE … RETURNING`: nothing changed).
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// One row of values. A value of the wrong type is a bug in the code that
/// reads it, not a store fault: it is an [`Error::Internal`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row(pub Vec<Value>);

impl Row {
    fn value(&self, i: usize) -> Result<&Value> {
        self.0
            .get(i)
            .ok_or_else(|| Error::Internal(format!("column {i} missing")))
    }

    /// An integer column.
    pub fn int(&self, i: usize) -> Result<i64> {
        match self.value(i)? {
            Value::Integer(v) => Ok(*v),
            other => Err(Error::Internal(format!(
                "column {i}: expected integer, got {other:?}"
            ))),
        }
    }

    /// A text column.
    pub fn text(&self, i: usize) -> Result<&str> {
        match self.value(i)? {
            Value::Text(v) => Ok(v),
            other => Err(Error::Internal(format!(
                "column {i}: expected text, got {other:?}"
            ))),
        }
    }

    /// A nullable text column.
    pub fn opt_text(&self, i: usize) -> Result<Option<&str>> {
        match self.value(i)? {
            Value::Null => Ok(None),
            _ => self.text(i).map(Some),
        }
    }

    /// A blob column.
    pub fn blob(&self, i: usize) -> Result<&[u8]> {
        match self.value(i)? {
            Value::Blob(v) => Ok(v),
            other => Err(Error::Internal(format!(
                "column {i}: expected blob, got {other:?}"
            ))),
        }
    }
}
