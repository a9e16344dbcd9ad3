//! The SQLite schema: versioned migrations embedded in the crate, and
//! [`Migrated`], the database as a request sees it, brought up to date before
//! its first statement.
//!
//! Every Spin request is a fresh instance, so the check runs once per request
//! that touches SQL, and its common path is one statement that cannot fail on
//! a new database: `PRAGMA user_version`, kept in the file's header.
//! Migrations are lists of idempotent statements, applied one statement per
//! call (Spin's SQLite interface runs one statement at a time, and libSQL has
//! no transactions across calls). The version moves only after every
//! statement of a migration has succeeded, so an interrupted migration runs
//! again; two instances migrating at once run the same idempotent statements.

use std::cell::Cell;

use crate::error::{Error, Result};
use crate::store::{Rows, SqlStore, Value};

/// The migrations, in order: schema version `i + 1` is `MIGRATIONS[i]`.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/0001_keys.sql"),
    include_str!("../../migrations/0002_identities.sql"),
    include_str!("../../migrations/0003_oidc.sql"),
    include_str!("../../migrations/0004_client_keys.sql"),
    include_str!("../../migrations/0005_hardening.sql"),
];

/// The schema version this build needs.
pub const LATEST: i64 = MIGRATIONS.len() as i64;

/// A request's database: the first statement brings the schema up to
/// [`LATEST`] first, and later ones go straight through.
pub struct Migrated<'a> {
    db: &'a dyn SqlStore,
    ready: Cell<bool>,
}

impl<'a> Migrated<'a> {
    /// Wraps the database of one request.
    pub fn new(db: &'a dyn SqlStore) -> Self {
        Self {
            db,
            ready: Cell::new(false),
        }
    }
}

impl SqlStore for Migrated<'_> {
    fn execute(&self, sql: &str, params: &[Value]) -> Result<Rows> {
        if !self.ready.get() {
            ensure(self.db)?;
            self.ready.set(true);
        }
        self.db.execute(sql, params)
    }
}

/// Brings the database up to [`LATEST`]. Cheap when it already is.
pub fn ensure(db: &dyn SqlStore) -> Result<()> {
    if current_version(db)? >= LATEST {
        return Ok(());
    }
    migrate(db)
}

fn current_version(db: &dyn SqlStore) -> Result<i64> {
    let rows = db.execute("PRAGMA user_version", &[])?;
    rows.first().map_or(Ok(0), |r| r.int("user_version"))
}

fn migrate(db: &dyn SqlStore) -> Result<()> {
    // WAL lets requests read while another writes, and commits with one
    // fsync; under concurrent load its p99 is a fraction of the rollback
    // journal's (docs/performance.md). It persists in the file; a backend
    // without it (libSQL) may refuse, which is fine.
    let _ = db.execute("PRAGMA journal_mode = WAL", &[]);
    let from = current_version(db)?;
    for (version, sql) in (1..).zip(MIGRATIONS).filter(|(v, _)| *v > from) {
        for stmt in statements(sql) {
            if let Some((table, column)) = added_column(&stmt)
                && has_column(db, table, column)?
            {
                continue;
            }
            db.execute(&stmt, &[])
                .map_err(|e| Error::Storage(format!("migration {version} failed: {e:?}")))?;
        }
        // PRAGMA takes no parameters; the version is our own constant.
        db.execute(&format!("PRAGMA user_version = {version}"), &[])?;
    }
    Ok(())
}

/// `ALTER TABLE t ADD COLUMN c …` is the one statement SQLite cannot make
/// idempotent: its table and column, to check first.
fn added_column(stmt: &str) -> Option<(&str, &str)> {
    let words: Vec<&str> = stmt.split_ascii_whitespace().collect();
    match words.as_slice() {
        [alter, table_kw, table, add, column_kw, column, ..]
            if alter.eq_ignore_ascii_case("ALTER")
                && table_kw.eq_ignore_ascii_case("TABLE")
                && add.eq_ignore_ascii_case("ADD")
                && column_kw.eq_ignore_ascii_case("COLUMN") =>
        {
            Some((table, column))
        }
        _ => None,
    }
}

fn has_column(db: &dyn SqlStore, table: &str, column: &str) -> Result<bool> {
    let rows = db.execute(
        "SELECT count(*) AS n FROM pragma_table_info(?) WHERE name = ?",
        &[table.into(), column.into()],
    )?;
    Ok(rows.first().map_or(Ok(0), |r| r.int("n"))? > 0)
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
    fn ensure_creates_the_schema_and_is_idempotent() {
        let db = SqliteSql::in_memory().unwrap();
        assert_eq!(current_version(&db).unwrap(), 0);
        ensure(&db).unwrap();
        assert_eq!(current_version(&db).unwrap(), LATEST);
        ensure(&db).unwrap();
        // Re-running every statement (two instances racing, or a migration
        // interrupted before its version moved) is harmless too.
        db.execute("PRAGMA user_version = 0", &[]).unwrap();
        migrate(&db).unwrap();
        assert_eq!(current_version(&db).unwrap(), LATEST);
        db.execute("SELECT kid, role FROM signing_keys", &[])
            .unwrap();
    }

    #[test]
    fn a_request_migrates_before_its_first_statement_once() {
        let db = SqliteSql::in_memory().unwrap();
        let migrated = Migrated::new(&db);
        let rows = migrated
            .execute("SELECT count(*) AS n FROM identities", &[])
            .unwrap();
        assert_eq!(rows.first().unwrap().int("n").unwrap(), 0);
        assert_eq!(current_version(&db).unwrap(), LATEST);
    }

    #[test]
    fn added_columns_are_recognised() {
        assert_eq!(
            added_column("ALTER TABLE clients ADD COLUMN jwks TEXT"),
            Some(("clients", "jwks"))
        );
        assert_eq!(added_column("CREATE TABLE x (a)"), None);
    }

    #[test]
    fn statements_split_on_line_ends() {
        let s =
            statements("-- c\nCREATE TABLE a (x); -- trailing\n\nCREATE INDEX i\n  ON a (x);\n");
        assert_eq!(s, vec!["CREATE TABLE a (x)", "CREATE INDEX i\n  ON a (x)"]);
    }
}
