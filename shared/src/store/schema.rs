//! The SQLite schema: versioned migrations embedded in the crate, and
//! [`Migrated`], the database as a request sees it, brought up to date before
//! its first statement.
//!
//! Every Spin request is a fresh instance, so the check runs once per request
//! that touches SQL, and its common path is one statement that cannot fail on
//! a new database: `PRAGMA user_version`, kept in the file's header. libSQL
//! servers refuse PRAGMA; there the version is read from the
//! `lanyard_schema` row, which every migration also writes.
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
    include_str!("../../migrations/0006_organisations.sql"),
    include_str!("../../migrations/0007_mandates.sql"),
    include_str!("../../migrations/0008_social.sql"),
    include_str!("../../migrations/0009_account.sql"),
    include_str!("../../migrations/0010_logout.sql"),
    include_str!("../../migrations/0011_logout_deliveries.sql"),
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
    match db.execute("PRAGMA user_version", &[]) {
        Ok(rows) => rows.first().map_or(Ok(0), |r| r.int("user_version")),
        // libSQL servers (Turso) refuse PRAGMA statements: there the version
        // row tells. A genuine fault fails that read too.
        Err(_) => recorded_version(db),
    }
}

/// The version in the `lanyard_schema` row, 0 on a new database.
fn recorded_version(db: &dyn SqlStore) -> Result<i64> {
    if table_sql(db, "lanyard_schema")?.is_none() {
        return Ok(0);
    }
    let rows = db.execute("SELECT version FROM lanyard_schema WHERE id = 1", &[])?;
    rows.first().map_or(Ok(0), |r| r.int("version"))
}

/// The `CREATE TABLE` statement of a table, if it exists.
fn table_sql(db: &dyn SqlStore, table: &str) -> Result<Option<String>> {
    let rows = db.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?",
        &[table.into()],
    )?;
    rows.first().map(|r| r.string("sql")).transpose()
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
        // The row for every backend, and the header field for the one-statement
        // check where PRAGMA is allowed (PRAGMA takes no parameters; the
        // version is our own constant).
        db.execute(
            "INSERT INTO lanyard_schema (id, version) VALUES (1, ?) \
             ON CONFLICT (id) DO UPDATE SET version = max(version, excluded.version)",
            &[version.into()],
        )?;
        let _ = db.execute(&format!("PRAGMA user_version = {version}"), &[]);
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

/// Whether the table's definition (which `ADD COLUMN` rewrites) has the
/// column. Read from `sqlite_master`, which every backend serves.
fn has_column(db: &dyn SqlStore, table: &str, column: &str) -> Result<bool> {
    Ok(table_sql(db, table)?.is_some_and(|sql| columns(&sql).any(|c| c == column)))
}

/// The column names of a `CREATE TABLE` statement: the first word of each
/// top-level definition between its outer parentheses (constraints such as
/// `PRIMARY KEY (a, b)` yield keywords, never a column name of ours).
fn columns(create: &str) -> impl Iterator<Item = &str> {
    let body = create.split_once('(').map_or("", |(_, rest)| {
        rest.rsplit_once(')').map_or(rest, |(b, _)| b)
    });
    let mut depth = 0;
    let mut parts = Vec::new();
    let mut start = 0;
    for (i, c) in body.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&body[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&body[start..]);
    parts.into_iter().filter_map(|p| {
        p.split_ascii_whitespace()
            .next()
            .map(|w| w.trim_matches(|c| c == '"' || c == '`' || c == '[' || c == ']'))
    })
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
    use crate::store::Value;
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

    /// A backend that refuses PRAGMA, as libSQL servers do.
    struct NoPragma(SqliteSql);

    impl SqlStore for NoPragma {
        fn execute(&self, sql: &str, params: &[Value]) -> Result<Rows> {
            if sql.trim_start().starts_with("PRAGMA") {
                return Err(Error::Storage("SQL not allowed statement: PRAGMA".into()));
            }
            self.0.execute(sql, params)
        }
    }

    #[test]
    fn without_pragma_the_version_row_tells() {
        let db = NoPragma(SqliteSql::in_memory().unwrap());
        assert_eq!(current_version(&db).unwrap(), 0);
        ensure(&db).unwrap();
        assert_eq!(current_version(&db).unwrap(), LATEST);
        ensure(&db).unwrap();
        // Columns added by ALTER are found again without PRAGMA.
        db.execute("UPDATE lanyard_schema SET version = 0", &[])
            .unwrap();
        migrate(&db).unwrap();
        assert_eq!(current_version(&db).unwrap(), LATEST);
    }

    #[test]
    fn column_names_come_from_the_definition() {
        let create = "CREATE TABLE t (a TEXT, b INTEGER DEFAULT (1), c TEXT NOT NULL DEFAULT '[]', PRIMARY KEY (a, b))";
        assert_eq!(
            columns(create).collect::<Vec<_>>(),
            ["a", "b", "c", "PRIMARY"]
        );
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
