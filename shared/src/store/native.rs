//! Native implementations of the storage traits over real SQLite
//! (`rusqlite`, the same dialect as Spin's), for tests and tools.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use rusqlite::types::ValueRef;

use super::{KvStore, Row, Rows, SqlStore, Value};
use crate::error::{Error, Result};

fn storage(e: impl std::fmt::Display) -> Error {
    Error::Storage(e.to_string())
}

/// A SQLite database behind one shared connection, as Spin has it.
pub struct SqliteSql {
    conn: Mutex<rusqlite::Connection>,
}

impl SqliteSql {
    /// Opens (or creates) a database file.
    pub fn open(path: &Path) -> Result<Self> {
        Ok(Self {
            conn: Mutex::new(rusqlite::Connection::open(path).map_err(storage)?),
        })
    }

    /// A private in-memory database.
    pub fn in_memory() -> Result<Self> {
        Ok(Self {
            conn: Mutex::new(rusqlite::Connection::open_in_memory().map_err(storage)?),
        })
    }
}

impl SqlStore for SqliteSql {
    fn execute(&self, sql: &str, params: &[Value]) -> Result<Rows> {
        let conn = self
            .conn
            .lock()
            .map_err(|_| Error::Storage("connection poisoned".into()))?;
        let mut stmt = conn.prepare_cached(sql).map_err(storage)?;
        let columns: Vec<String> = stmt.column_names().map(str::to_owned).collect();
        let bound = params.iter().map(to_sql).collect::<Vec<_>>();
        let mut rows = stmt
            .query(rusqlite::params_from_iter(bound))
            .map_err(storage)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(storage)? {
            let mut values = Vec::with_capacity(columns.len());
            for i in 0..columns.len() {
                values.push(match row.get_ref(i).map_err(storage)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(v) => Value::Integer(v),
                    ValueRef::Real(v) => Value::Real(v),
                    ValueRef::Text(v) => Value::Text(String::from_utf8_lossy(v).into_owned()),
                    ValueRef::Blob(v) => Value::Blob(v.to_vec()),
                });
            }
            out.push(Row(values));
        }
        Ok(Rows { columns, rows: out })
    }
}

fn to_sql(v: &Value) -> rusqlite::types::Value {
    use rusqlite::types::Value as V;
    match v {
        Value::Integer(i) => V::Integer(*i),
        Value::Real(r) => V::Real(*r),
        Value::Text(t) => V::Text(t.clone()),
        Value::Blob(b) => V::Blob(b.clone()),
        Value::Null => V::Null,
    }
}

/// A key-value store kept in a SQLite table, as Spin's default store is.
pub struct SqliteKv {
    db: SqliteSql,
}

impl SqliteKv {
    /// Opens (or creates) the store in a database file.
    pub fn open(path: &Path) -> Result<Self> {
        Self::with(SqliteSql::open(path)?)
    }

    /// A private in-memory store.
    pub fn in_memory() -> Result<Self> {
        Self::with(SqliteSql::in_memory()?)
    }

    fn with(db: SqliteSql) -> Result<Self> {
        db.execute(
            "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL)",
            &[],
        )?;
        Ok(Self { db })
    }
}

impl KvStore for SqliteKv {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let rows = self
            .db
            .execute("SELECT value FROM kv WHERE key = ?", &[key.into()])?;
        rows.first()
            .map(|r| r.blob("value").map(<[u8]>::to_vec))
            .transpose()
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<()> {
        self.db.execute(
            "INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            &[key.into(), value.to_vec().into()],
        )?;
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<()> {
        self.db
            .execute("DELETE FROM kv WHERE key = ?", &[key.into()])?;
        Ok(())
    }
}

/// A key-value store in memory.
#[derive(Default)]
pub struct MemoryKv {
    map: Mutex<HashMap<String, Vec<u8>>>,
}

impl MemoryKv {
    fn map(&self) -> Result<std::sync::MutexGuard<'_, HashMap<String, Vec<u8>>>> {
        self.map
            .lock()
            .map_err(|_| Error::Storage("store poisoned".into()))
    }
}

impl KvStore for MemoryKv {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.map()?.get(key).cloned())
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<()> {
        self.map()?.insert(key.to_owned(), value.to_vec());
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<()> {
        self.map()?.remove(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_round_trips_every_type() {
        let db = SqliteSql::in_memory().unwrap();
        db.execute(
            "CREATE TABLE t (i INTEGER, r REAL, s TEXT, b BLOB, n TEXT)",
            &[],
        )
        .unwrap();
        db.execute(
            "INSERT INTO t VALUES (?, ?, ?, ?, ?)",
            &[
                Value::Integer(7),
                Value::Real(1.5),
                "x".into(),
                vec![1u8, 2].into(),
                Value::Null,
            ],
        )
        .unwrap();
        let rows = db.execute("SELECT i, r, s, b, n FROM t", &[]).unwrap();
        assert_eq!(rows.columns, ["i", "r", "s", "b", "n"]);
        let r = rows.first().unwrap();
        assert_eq!(r.int("i").unwrap(), 7);
        assert_eq!(rows.rows[0].0[1], Value::Real(1.5));
        assert_eq!(r.text("s").unwrap(), "x");
        assert_eq!(r.blob("b").unwrap(), &[1, 2]);
        assert_eq!(r.opt_string("n").unwrap(), None);
        assert!(r.text("i").is_err(), "a wrong type is an error");
        assert!(r.int("nope").is_err(), "so is a missing column");
    }

    #[test]
    fn conditional_update_settles_single_use() {
        let db = SqliteSql::in_memory().unwrap();
        db.execute(
            "CREATE TABLE codes (h TEXT PRIMARY KEY, used INTEGER NOT NULL)",
            &[],
        )
        .unwrap();
        db.execute("INSERT INTO codes VALUES ('a', 0)", &[])
            .unwrap();
        let claim = || {
            db.execute(
                "UPDATE codes SET used = 1 WHERE h = 'a' AND used = 0 RETURNING h",
                &[],
            )
            .unwrap()
        };
        assert!(!claim().is_empty());
        assert!(claim().is_empty());
    }

    #[test]
    fn sqlite_kv_persists_in_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv.db");
        SqliteKv::open(&path).unwrap().set("a", b"1").unwrap();
        let kv = SqliteKv::open(&path).unwrap();
        assert_eq!(kv.get("a").unwrap(), Some(b"1".to_vec()));
        kv.delete("a").unwrap();
        kv.delete("a").unwrap();
        assert_eq!(kv.get("a").unwrap(), None);
    }
}
