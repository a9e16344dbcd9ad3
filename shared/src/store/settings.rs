//! The `settings` table: operator settings changed through the admin API,
//! a JSON value per key.

use super::SqlStore;
use crate::error::Result;

/// The value of a setting, if it was set.
pub fn get(db: &dyn SqlStore, key: &str) -> Result<Option<String>> {
    let rows = db.execute("SELECT value FROM settings WHERE key = ?", &[key.into()])?;
    rows.first().map(|r| r.string("value")).transpose()
}

/// Sets a setting.
pub fn set(db: &dyn SqlStore, key: &str, value: &str, now: i64) -> Result<()> {
    db.execute(
        "INSERT INTO settings (key, value, updated_at) VALUES (?1, ?2, ?3) \
         ON CONFLICT (key) DO UPDATE SET value = ?2, updated_at = ?3",
        &[key.into(), value.into(), now.into()],
    )?;
    Ok(())
}
