//! The schema itself, read from `sqlite_master` and `pragma_table_info`,
//! for tests that must see every table (the privacy export's coverage, and
//! erasure leaving no row that names a person).

use super::SqlStore;
use crate::error::Result;

/// The tables of the schema, by name.
pub fn tables(db: &dyn SqlStore) -> Result<Vec<String>> {
    db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
        &[],
    )?
    .decode(|r| r.string("name"))
}

/// The columns of a table: (name, declared type).
pub fn columns(db: &dyn SqlStore, table: &str) -> Result<Vec<(String, String)>> {
    db.execute(
        "SELECT name, type FROM pragma_table_info(?)",
        &[table.into()],
    )?
    .decode(|r| Ok((r.string("name")?, r.string("type")?)))
}

/// Every row of every table, as text: to tell that nothing changed.
pub fn dump(db: &dyn SqlStore) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for t in tables(db)? {
        for row in db
            .execute(&format!("SELECT * FROM {t} ORDER BY rowid"), &[])?
            .rows
        {
            out.push(format!("{t}: {:?}", row.0));
        }
    }
    Ok(out)
}

/// Where `needle` appears in any column of any table, as text: (table,
/// column, rows).
pub fn holding(db: &dyn SqlStore, needle: &str) -> Result<Vec<(String, String, i64)>> {
    let mut found = Vec::new();
    for t in tables(db)? {
        for (c, _) in columns(db, &t)? {
            let n = db
                .execute(
                    &format!("SELECT count(*) AS n FROM {t} WHERE instr(CAST({c} AS TEXT), ?) > 0"),
                    &[needle.into()],
                )?
                .first()
                .map_or(Ok(0), |r| r.int("n"))?;
            if n > 0 {
                found.push((t.clone(), c, n));
            }
        }
    }
    Ok(found)
}
