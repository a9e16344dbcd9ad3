//! Single-use links: email verification (24 h) and password reset (1 h).
//!
//! The token is a random 256-bit value sent by mail; SQLite keeps only its
//! SHA-256. Redeeming is one conditional `UPDATE … RETURNING`, so a link
//! works once even when two requests race.

use crate::crypto;
use crate::error::Result;
use crate::store::{SqlStore, one_time_tokens};

/// What a link is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Proves the person receives mail at the address.
    VerifyEmail,
    /// Lets the person choose a new password.
    ResetPassword,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::VerifyEmail => "verify_email",
            Purpose::ResetPassword => "reset_password",
        }
    }

    /// How long a link lives, in seconds.
    pub fn ttl(self) -> i64 {
        match self {
            Purpose::VerifyEmail => 24 * 3600,
            Purpose::ResetPassword => 3600,
        }
    }
}

/// Why a link cannot be used, or whose it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Valid: the identity it belongs to.
    Valid(String),
    /// It was valid but its time is up.
    Expired,
    /// It has been used already.
    Used,
    /// No such link.
    Unknown,
}

/// Creates a link for an identity and returns the token for the mail.
pub fn issue(db: &dyn SqlStore, purpose: Purpose, identity_id: &str, now: i64) -> Result<String> {
    let token = crypto::random_token()?;
    one_time_tokens::insert(
        db,
        &crypto::hash_secret(&token),
        purpose.as_str(),
        identity_id,
        now + purpose.ttl(),
    )?;
    Ok(token)
}

/// Uses a link up. Only the first call for a valid link gets `Valid`.
pub fn redeem(db: &dyn SqlStore, purpose: Purpose, token: &str, now: i64) -> Result<Status> {
    let hash = crypto::hash_secret(token);
    match one_time_tokens::spend(db, &hash, purpose.as_str(), now)? {
        Some(id) => Ok(Status::Valid(id)),
        None => status_of(db, &hash, purpose, now),
    }
}

/// Looks a link up without using it (to show the right page before a POST).
pub fn peek(db: &dyn SqlStore, purpose: Purpose, token: &str, now: i64) -> Result<Status> {
    status_of(db, &crypto::hash_secret(token), purpose, now)
}

fn status_of(db: &dyn SqlStore, hash: &str, purpose: Purpose, now: i64) -> Result<Status> {
    Ok(match one_time_tokens::get(db, hash, purpose.as_str())? {
        None => Status::Unknown,
        Some(link) if link.used => Status::Used,
        Some(link) if link.expires_at <= now => Status::Expired,
        Some(link) => Status::Valid(link.identity_id),
    })
}

/// Voids every unused link of this purpose for an identity (after a reset).
pub fn void_all(db: &dyn SqlStore, purpose: Purpose, identity_id: &str, now: i64) -> Result<()> {
    one_time_tokens::void_all(db, purpose.as_str(), identity_id, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity;
    use crate::store::native::SqliteSql;
    use crate::store::schema;

    #[test]
    fn links_work_once_and_expire() {
        let db = SqliteSql::in_memory().unwrap();
        schema::ensure(&db).unwrap();
        let who = identity::create(&db, "a@example.com", None, &Default::default(), 0)
            .unwrap()
            .unwrap()
            .id;
        let t = issue(&db, Purpose::ResetPassword, &who, 0).unwrap();
        assert_eq!(
            peek(&db, Purpose::ResetPassword, &t, 10).unwrap(),
            Status::Valid(who.clone())
        );
        assert_eq!(
            redeem(&db, Purpose::VerifyEmail, &t, 10).unwrap(),
            Status::Unknown,
            "purpose is checked"
        );
        assert_eq!(
            redeem(&db, Purpose::ResetPassword, &t, 10).unwrap(),
            Status::Valid(who.clone())
        );
        assert_eq!(
            redeem(&db, Purpose::ResetPassword, &t, 11).unwrap(),
            Status::Used
        );
        let late = issue(&db, Purpose::ResetPassword, &who, 0).unwrap();
        assert_eq!(
            redeem(&db, Purpose::ResetPassword, &late, 3600).unwrap(),
            Status::Expired
        );
        assert_eq!(
            redeem(&db, Purpose::ResetPassword, "nonsense", 1).unwrap(),
            Status::Unknown
        );
        let spare = issue(&db, Purpose::ResetPassword, &who, 0).unwrap();
        void_all(&db, Purpose::ResetPassword, &who, 5).unwrap();
        assert_eq!(
            redeem(&db, Purpose::ResetPassword, &spare, 6).unwrap(),
            Status::Used
        );
    }
}
