//! Deleting what can no longer be used: spent and expired codes, expired
//! revocations, used and expired links, spent client assertions, dead
//! refresh-token families, old attempt counters, social sign-ins in
//! flight and pending links that are over, ended sessions' listings,
//! passkey ceremonies and email changes that are over, and security events
//! older than `security_event_retention_days` (default 365).
//!
//! Spin has no background jobs, so the sweep runs in bounded steps: a few
//! rows per table on a sample of the requests that write anyway
//! ([`maybe`]), and as many as asked from `POST /api/admin/sweep`, which a
//! cron job (or Spin's cron trigger) can call. Each step is one `DELETE` per
//! table with a `LIMIT`, so no request ever pays for a large backlog.

use serde::Serialize;

use crate::Env;
use crate::config::{self, Variables};
use crate::crypto;
use crate::error::{Error, Result};
use crate::store::{
    SqlStore, auth_codes, client_assertions, email_changes, logout_deliveries, one_time_tokens,
    pending_links, refresh_families, revoked_tokens, security_events, session_clients, sessions,
    social_states, throttles, webauthn_states,
};

/// A code is kept this long past its expiry, so that a replay can still
/// find and revoke what it issued.
const CODE_GRACE: i64 = 86_400;
/// A used or expired link is kept this long, to tell "used" from "unknown".
const LINK_GRACE: i64 = 7 * 86_400;
/// A revoked refresh family is kept this long, for reuse detection to answer
/// the same way.
const FAMILY_GRACE: i64 = 86_400;

/// A social sign-in state or pending link is kept this long past its
/// expiry, to tell "finished already" from "unknown".
const SOCIAL_GRACE: i64 = 86_400;

/// Security events are kept this many days unless the operator says
/// otherwise (`security_event_retention_days`).
pub const DEFAULT_RETENTION_DAYS: i64 = 365;

/// Reads `security_event_retention_days`: a whole number of days from 1 to
/// 3650, default [`DEFAULT_RETENTION_DAYS`].
pub fn retention_days(vars: &dyn Variables) -> Result<i64> {
    let name = "security_event_retention_days";
    match config::optional(vars, name)? {
        None => Ok(DEFAULT_RETENTION_DAYS),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|d| (1..=3650).contains(d))
            .ok_or_else(|| Error::config(name, "use a whole number of days from 1 to 3650")),
    }
}

/// Rows deleted per table on a sampled request.
const SAMPLE_ROWS: i64 = 20;
/// One request in this many sweeps.
const SAMPLE_ONE_IN: u8 = 32;

/// How many rows each table lost.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Swept {
    /// Authorization codes.
    pub auth_codes: usize,
    /// Revoked access-token ids.
    pub revoked_tokens: usize,
    /// Verification and reset links.
    pub one_time_tokens: usize,
    /// Spent client-assertion ids.
    pub client_assertions: usize,
    /// Refresh-token families.
    pub refresh_families: usize,
    /// Attempt counters.
    pub throttles: usize,
    /// Social sign-ins in flight.
    pub social_states: usize,
    /// Links waiting for a password.
    pub pending_links: usize,
    /// Listings of sessions that ended.
    pub sessions: usize,
    /// Security events past their retention.
    pub security_events: usize,
    /// Passkey ceremonies in flight that are over.
    pub webauthn_states: usize,
    /// Email changes whose link is over.
    pub email_changes: usize,
    /// Records of which clients got tokens in sessions no client can still
    /// need.
    pub session_clients: usize,
    /// Back-channel logout deliveries given up on a week ago.
    pub logout_deliveries: usize,
}

/// Deletes at most `limit` dead rows from each table, keeping security
/// events [`DEFAULT_RETENTION_DAYS`].
pub fn run(sql: &dyn SqlStore, now: i64, limit: i64) -> Result<Swept> {
    run_keeping(sql, now, limit, DEFAULT_RETENTION_DAYS)
}

/// Like [`run`], with the operator's `security_event_retention_days`.
pub fn run_configured(env: &Env, limit: i64) -> Result<Swept> {
    run_keeping(env.sql, env.now, limit, retention_days(env.vars)?)
}

fn run_keeping(sql: &dyn SqlStore, now: i64, limit: i64, retention_days: i64) -> Result<Swept> {
    Ok(Swept {
        auth_codes: auth_codes::sweep(sql, now - CODE_GRACE, limit)?,
        revoked_tokens: revoked_tokens::sweep(sql, now, limit)?,
        one_time_tokens: one_time_tokens::sweep(sql, now - LINK_GRACE, limit)?,
        client_assertions: client_assertions::sweep(sql, now, limit)?,
        refresh_families: refresh_families::sweep(sql, now - FAMILY_GRACE, limit)?,
        throttles: throttles::sweep(sql, now, limit)?,
        social_states: social_states::sweep(sql, now - SOCIAL_GRACE, limit)?,
        pending_links: pending_links::sweep(sql, now - SOCIAL_GRACE, limit)?,
        sessions: sessions::sweep(sql, now, limit)?,
        security_events: security_events::sweep(sql, now - retention_days * 86_400, limit)?,
        webauthn_states: webauthn_states::sweep(sql, now, limit)?,
        email_changes: email_changes::sweep(sql, now - LINK_GRACE, limit)?,
        session_clients: session_clients::sweep(sql, now, limit)?,
        logout_deliveries: logout_deliveries::sweep(
            sql,
            now - logout_deliveries::KEEP_GIVEN_UP,
            limit,
        )?,
    })
}

/// On one request in [`SAMPLE_ONE_IN`], sweeps a few rows per table.
pub fn maybe(env: &Env) -> Result<()> {
    if crypto::random_bytes::<1>()?[0] % SAMPLE_ONE_IN == 0 {
        run_configured(env, SAMPLE_ROWS)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::native::SqliteSql;
    use crate::store::schema;

    #[test]
    fn only_dead_rows_go_and_at_most_the_limit() {
        let db = SqliteSql::in_memory().unwrap();
        schema::ensure(&db).unwrap();
        let now = 1_000_000_000;
        for (jti, exp) in [("a", now - 10), ("b", now - 5), ("c", now + 60)] {
            db.execute(
                "INSERT INTO revoked_tokens (jti, expires_at) VALUES (?, ?)",
                &[jti.into(), exp.into()],
            )
            .unwrap();
        }
        for (key, exp) in [("old", now - 1), ("live", now + 900)] {
            db.execute(
                "INSERT INTO throttles (key, count, first_at, last_at, expires_at) VALUES (?, 1, 0, 0, ?)",
                &[key.into(), exp.into()],
            )
            .unwrap();
        }
        for (id, revoked, used) in [
            ("revoked-long-ago", Some(now - 2 * 86_400), now - 2 * 86_400),
            ("revoked-now", Some(now), now),
            ("idle-forever", None, now - 31_536_000 - 2 * 86_400),
            ("live", None, now),
        ] {
            db.execute(
                "INSERT INTO refresh_families (id, client_id, identity_id, scope, current_hash, auth_time, amr, sid, created_at, last_used_at, revoked_at) \
                 VALUES (?, 'c', 'u', 'openid', ?, 0, 'pwd', 's', 0, ?, ?)",
                &[id.into(), format!("h-{id}").into(), used.into(), revoked.into()],
            )
            .unwrap();
        }
        let first = run(&db, now, 1).unwrap();
        assert_eq!(first.revoked_tokens, 1, "the limit holds");
        let second = run(&db, now, 100).unwrap();
        assert_eq!(second.revoked_tokens, 1);
        assert_eq!(first.throttles + second.throttles, 1);
        assert_eq!(first.refresh_families + second.refresh_families, 2);
        let left = |sql: &str| {
            db.execute(sql, &[])
                .unwrap()
                .iter()
                .map(|r| r.string("k").unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(left("SELECT jti AS k FROM revoked_tokens"), ["c"]);
        assert_eq!(left("SELECT key AS k FROM throttles"), ["live"]);
        assert_eq!(
            left("SELECT id AS k FROM refresh_families ORDER BY id"),
            ["live", "revoked-now"]
        );
        assert_eq!(run(&db, now, 100).unwrap(), Swept::default());
    }
}
