//! The SQLite schema: versioned migrations embedded in the crate.
//!
//! [`ensure`] runs at the start of every request that touches SQL, in a fresh
//! instance, so its common path is a single one-row read. Migrations are lists
//! of idempotent statements, applied one statement per call (Spin's SQLite
//! interface runs one statement at a time and shares its connection, so a
//! transaction across calls would not be isolated). The version row moves
//! forward only after every statement of a migration has succeeded, and only
//! forward (`max`), so two instances migrating at once converge.

use crate::error::{Error, Result};
use crate::store::{SqlStore, Value};

/// One schema version: its number and its SQL.
struct Migration {
    version: i64,
    sql: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sql: include_str!("../migrations/0001_keys.sql"),
    },
    Migration {
        version: 2,
        sql: include_str!("../migrations/0002_identities.sql"),
    },
    Migration {
        version: 3,
        sql: include_str!("../migrations/0003_oidc.sql"),
    },
    Migration {
        version: 4,
        sql: include_str!("../migrations/0004_client_keys.sql"),
    },
    Migration {
        version: 5,
        sql: include_str!("../migrations/0005_hardening.sql"),
    },
];

/// The schema version this build needs.
pub const LATEST: i64 = 5;

/// Brings the database up to [`LATEST`]. Cheap when it already is.
pub fn ensure(db: &dyn SqlStore) -> Result<()> {
    if current_version(db)? >= LATEST {
        return Ok(());
    }
    migrate(db)
}

fn current_version(db: &dyn SqlStore) -> Result<i64> {
    match db.execute("SELECT version FROM lanyard_schema WHERE id = 1", &[]) {
        Ok(rows) => rows.first().map_or(Ok(0), |r| r.int(0)),
        // A new database has no version table yet.
        Err(Error::Storage(msg)) if msg.contains("no such table") => Ok(0),
        Err(e) => Err(e),
    }
}

fn migrate(db: &dyn SqlStore) -> Result<()> {
    // WAL lets requests read while another writes, and commits with one
    // fsync; under concurrent load its p99 is a fraction of the rollback
    // journal's (docs/performance.md). It persists in the file; a backend
    // without it (libSQL) may refuse, which is fine.
    let _ = db.execute("PRAGMA journal_mode = WAL", &[]);
    db.execute(
        "CREATE TABLE IF NOT EXISTS lanyard_schema (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)",
        &[],
    )?;
    let from = current_version(db)?;
    for m in MIGRATIONS.iter().filter(|m| m.version > from) {
        for stmt in statements(m.sql) {
            match db.execute(&stmt, &[]) {
                Ok(_) => {}
                // Another request ran this `ADD COLUMN` first.
                Err(Error::Storage(e)) if e.contains("duplicate column name") => {}
                Err(e) => {
                    return Err(Error::Storage(format!(
                        "migration {} failed: {e:?}",
                        m.version
                    )));
                }
            }
        }
        db.execute(
            "INSERT INTO lanyard_schema (id, version) VALUES (1, ?) \
             ON CONFLICT(id) DO UPDATE SET version = max(version, excluded.version)",
            &[Value::Integer(m.version)],
        )?;
    }
    Ok(())
}

/// Splits a migration file into statements: `--` comments are dropped and
/// statements end with `;` at the end of a line.
fn statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in sql.lines() {
        let line = line.split("--").next().unwrap_or("").trim_end();
        if line.trim().is_empty() {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        if line.ends_with(';') {
            out.push(current.trim().trim_end_matches(';').to_owned());
            current.clear();
        }
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_owned());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::native::SqliteSql;

    #[test]
    fn migrations_are_numbered_in_order_up_to_latest() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1);
        }
        assert_eq!(MIGRATIONS.last().unwrap().version, LATEST);
    }

    #[test]
    fn ensure_creates_the_schema_and_is_idempotent() {
        let db = SqliteSql::in_memory().unwrap();
        assert_eq!(current_version(&db).unwrap(), 0);
        ensure(&db).unwrap();
        assert_eq!(current_version(&db).unwrap(), LATEST);
        ensure(&db).unwrap();
        // Re-running every statement (two instances racing) is harmless too.
        migrate_from_scratch_again(&db);
        assert_eq!(current_version(&db).unwrap(), LATEST);
        db.execute("SELECT kid, role FROM signing_keys", &[])
            .unwrap();
    }

    fn migrate_from_scratch_again(db: &SqliteSql) {
        db.execute("UPDATE lanyard_schema SET version = 0", &[])
            .unwrap();
        migrate(db).unwrap();
    }

    #[test]
    fn statements_split_on_line_ends() {
        let s =
            statements("-- c\nCREATE TABLE a (x); -- trailing\n\nCREATE INDEX i\n  ON a (x);\n");
        assert_eq!(s, vec!["CREATE TABLE a (x)", "CREATE INDEX i\n  ON a (x)"]);
    }
}
