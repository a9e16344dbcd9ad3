//! The `dev_outbox` table: mail in `dev_mode`, shown at `/dev/outbox`.

use serde::Serialize;

use super::SqlStore;
use crate::error::Result;

/// A message in the dev outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutboxMail {
    /// Row id, newest highest.
    pub id: i64,
    /// The recipient.
    pub to: String,
    /// The subject.
    pub subject: String,
    /// The body.
    pub text: String,
    /// The link in it, if any.
    pub link: Option<String>,
}

/// Keeps a message.
pub fn insert(
    db: &dyn SqlStore,
    to: &str,
    subject: &str,
    text: &str,
    link: Option<&str>,
    now: i64,
) -> Result<()> {
    db.execute(
        "INSERT INTO dev_outbox (recipient, subject, body, link, created_at) VALUES (?, ?, ?, ?, ?)",
        &[to.into(), subject.into(), text.into(), link.into(), now.into()],
    )?;
    Ok(())
}

/// The newest 50 messages, newest first, optionally for one recipient.
pub fn newest(db: &dyn SqlStore, to: Option<&str>) -> Result<Vec<OutboxMail>> {
    db.execute(
        "SELECT id, recipient, subject, body, link FROM dev_outbox \
         WHERE ?1 IS NULL OR recipient = ?1 ORDER BY id DESC LIMIT 50",
        &[to.into()],
    )?
    .decode(|r| {
        Ok(OutboxMail {
            id: r.int("id")?,
            to: r.string("recipient")?,
            subject: r.string("subject")?,
            text: r.string("body")?,
            link: r.opt_string("link")?,
        })
    })
}

/// Deletes the mail to an address, or that names it or an identity id
/// (erasure).
pub fn delete_for_person(db: &dyn SqlStore, identity_id: &str, email: &str) -> Result<()> {
    db.execute(
        "DELETE FROM dev_outbox WHERE recipient = ?2 OR instr(body, ?2) > 0 OR instr(subject, ?2) > 0 \
         OR instr(body, ?1) > 0 OR instr(coalesce(link, ''), ?1) > 0",
        &[identity_id.into(), email.into()],
    )?;
    Ok(())
}
