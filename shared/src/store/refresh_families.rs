//! The `refresh_families` table: refresh tokens rotate inside a family. One
//! conditional UPDATE moves `current_hash` to `previous_hash` and installs the
//! new hash; presenting a hash that is not current revokes the family.
//!
//! A family is live while it is not revoked, was used within the client's
//! idle lifetime and was created within its absolute lifetime: [`LIVE`] says
//! so once, for rotation and introspection alike.

use super::identities::{self, Identity};
use super::org_access::{self, MandateGrant, OrgGrant};
use super::{Named, SqlStore};
use crate::error::Result;

/// The liveness rule, over `?1` now, `?2` the idle and `?3` the absolute
/// lifetime in seconds.
const LIVE: &str = "revoked_at IS NULL AND last_used_at > ?1 - ?2 AND created_at > ?1 - ?3";

/// A client's refresh lifetimes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    /// Seconds a family may go unused.
    pub idle: i64,
    /// Seconds a family lives after the login, used or not.
    pub max: i64,
}

/// What a family carries from the login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Family {
    /// The family id.
    pub id: String,
    /// The client.
    pub client_id: String,
    /// The person.
    pub identity_id: String,
    /// Granted scopes, space-separated.
    pub scope: String,
    /// When the person authenticated.
    pub auth_time: i64,
    /// How, space-separated.
    pub amr: String,
    /// The browser session.
    pub sid: String,
    /// The organisation of a b2b login (A, through a mandate), re-checked
    /// at every refresh.
    pub org_id: Option<String>,
    /// The mandate of a login that acts for A through one, re-checked at
    /// every refresh instead of a membership.
    pub mandate_id: Option<String>,
    /// The upstream connection of the login, if any (the `idp` claim).
    pub idp: Option<String>,
}

const COLUMNS: &str =
    "id, client_id, identity_id, scope, auth_time, amr, sid, org_id, mandate_id, idp";

fn decode(r: &Named<'_>) -> Result<Family> {
    Ok(Family {
        id: r.string("id")?,
        client_id: r.string("client_id")?,
        identity_id: r.string("identity_id")?,
        scope: r.string("scope")?,
        auth_time: r.int("auth_time")?,
        amr: r.string("amr")?,
        sid: r.string("sid")?,
        org_id: r.opt_string("org_id")?,
        mandate_id: r.opt_string("mandate_id")?,
        idp: r.opt_string("idp")?,
    })
}

/// Starts a family whose current token hashes to `current_hash`.
pub fn insert(db: &dyn SqlStore, family: &Family, current_hash: &str, now: i64) -> Result<()> {
    db.execute(
        "INSERT INTO refresh_families (id, client_id, identity_id, scope, current_hash, auth_time, amr, sid, created_at, last_used_at, org_id, mandate_id, idp) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        &[
            family.id.as_str().into(),
            family.client_id.as_str().into(),
            family.identity_id.as_str().into(),
            family.scope.as_str().into(),
            current_hash.into(),
            family.auth_time.into(),
            family.amr.as_str().into(),
            family.sid.as_str().into(),
            now.into(),
            now.into(),
            family.org_id.as_deref().into(),
            family.mandate_id.as_deref().into(),
            family.idp.as_deref().into(),
        ],
    )?;
    Ok(())
}

/// A rotated family, with what its refresh needs now, read by the rotation
/// itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Rotated {
    /// The family.
    pub family: Family,
    /// Its person; `None` when the identity is gone.
    pub identity: Option<Identity>,
    /// What the family's organisation grants the person now, when the family
    /// has an organisation and no mandate ([`org_access::grant`]).
    pub org_grant: Option<OrgGrant>,
    /// What the family's mandate grants the person now, when it has one
    /// ([`org_access::mandate_grant`]).
    pub mandate_grant: Option<MandateGrant>,
}

/// Rotates a live family of `client_id` whose current token hashes to
/// `presented`, in one statement: of two concurrent rotations, one wins.
/// The same statement returns the family's person and, for a b2b login,
/// what its organisation or mandate grants at `now` (scalar subqueries in
/// `RETURNING`, the same ones that [`org_access::grant`] and
/// [`org_access::mandate_grant`] run alone), so that a refresh needs no
/// other read.
pub fn rotate(
    db: &dyn SqlStore,
    presented: &str,
    next: &str,
    client_id: &str,
    life: Lifetimes,
    now: i64,
) -> Result<Option<Rotated>> {
    const F: &str = "refresh_families";
    let identity = identities::json_of(&format!("{F}.identity_id"));
    let org = org_access::grant_json(
        &format!("{F}.org_id"),
        &format!("{F}.identity_id"),
        &format!("{F}.client_id"),
    );
    let mandate = org_access::mandate_json(
        &format!("{F}.mandate_id"),
        &format!("{F}.identity_id"),
        &format!("{F}.client_id"),
        "?1",
    );
    let rows = db.execute(
        &format!(
            "UPDATE refresh_families SET previous_hash = current_hash, current_hash = ?4, \
             generation = generation + 1, last_used_at = ?1 \
             WHERE current_hash = ?5 AND client_id = ?6 AND {LIVE} RETURNING {COLUMNS}, \
             {identity} AS identity, \
             CASE WHEN {F}.org_id IS NOT NULL AND {F}.mandate_id IS NULL THEN {org} END AS org_grant, \
             CASE WHEN {F}.mandate_id IS NOT NULL THEN {mandate} END AS mandate_grant"
        ),
        &[
            now.into(),
            life.idle.into(),
            life.max.into(),
            next.into(),
            presented.into(),
            client_id.into(),
        ],
    )?;
    let Some(r) = rows.first() else {
        return Ok(None);
    };
    let family = decode(&r)?;
    Ok(Some(Rotated {
        identity: identities::from_json(r.opt_string("identity")?.as_deref())?,
        org_grant: org_access::grant_from_json(
            r.opt_string("org_grant")?.as_deref(),
            &family.client_id,
        )?,
        mandate_grant: org_access::mandate_from_json(
            r.opt_string("mandate_grant")?.as_deref(),
            &family.identity_id,
            &family.client_id,
        )?,
        family,
    }))
}

/// A live family of `client_id` whose current token hashes to `hash`, and
/// when it would expire unused.
pub fn live(
    db: &dyn SqlStore,
    hash: &str,
    client_id: &str,
    life: Lifetimes,
    now: i64,
) -> Result<Option<(Family, i64)>> {
    let rows = db.execute(
        &format!(
            "SELECT {COLUMNS}, min(last_used_at + ?2, created_at + ?3) AS expires_at \
             FROM refresh_families WHERE current_hash = ?4 AND client_id = ?5 AND {LIVE}"
        ),
        &[
            now.into(),
            life.idle.into(),
            life.max.into(),
            hash.into(),
            client_id.into(),
        ],
    )?;
    rows.first()
        .map(|r| Ok((decode(&r)?, r.int("expires_at")?)))
        .transpose()
}

/// Revokes the family a token belongs to, whether it is the current or the
/// previous one (reuse detection).
pub fn revoke_holding(db: &dyn SqlStore, hash: &str, now: i64) -> Result<()> {
    db.execute(
        "UPDATE refresh_families SET revoked_at = ?1 \
         WHERE (current_hash = ?2 OR previous_hash = ?2) AND revoked_at IS NULL",
        &[now.into(), hash.into()],
    )?;
    Ok(())
}

/// Revokes the family of `client_id` whose current token hashes to `hash`;
/// `true` when there was one (RFC 7009 revocation).
pub fn revoke_current(db: &dyn SqlStore, hash: &str, client_id: &str, now: i64) -> Result<bool> {
    let rows = db.execute(
        "UPDATE refresh_families SET revoked_at = ? \
         WHERE current_hash = ? AND client_id = ? AND revoked_at IS NULL RETURNING id",
        &[now.into(), hash.into(), client_id.into()],
    )?;
    Ok(!rows.is_empty())
}

/// Revokes one family by id.
pub fn revoke(db: &dyn SqlStore, id: &str, now: i64) -> Result<()> {
    db.execute(
        "UPDATE refresh_families SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
        &[now.into(), id.into()],
    )?;
    Ok(())
}

/// Revokes every family of an identity.
pub fn revoke_for_identity(db: &dyn SqlStore, identity_id: &str, now: i64) -> Result<()> {
    db.execute(
        "UPDATE refresh_families SET revoked_at = ? WHERE identity_id = ? AND revoked_at IS NULL",
        &[now.into(), identity_id.into()],
    )?;
    Ok(())
}

/// Revokes every family of `identity_id` issued in browser session `sid`
/// (the session ended: single sign-out).
pub fn revoke_for_session(db: &dyn SqlStore, identity_id: &str, sid: &str, now: i64) -> Result<()> {
    db.execute(
        "UPDATE refresh_families SET revoked_at = ? \
         WHERE identity_id = ? AND sid = ? AND revoked_at IS NULL",
        &[now.into(), identity_id.into(), sid.into()],
    )?;
    Ok(())
}

/// Revokes every family of an identity at one client (the person revoked
/// the client's access); how many were live.
pub fn revoke_for_client(
    db: &dyn SqlStore,
    identity_id: &str,
    client_id: &str,
    now: i64,
) -> Result<usize> {
    let rows = db.execute(
        "UPDATE refresh_families SET revoked_at = ? \
         WHERE identity_id = ? AND client_id = ? AND revoked_at IS NULL RETURNING id",
        &[now.into(), identity_id.into(), client_id.into()],
    )?;
    Ok(rows.len())
}

/// Deletes a client's families (the client is being deleted).
pub fn delete_for_client(db: &dyn SqlStore, client_id: &str) -> Result<()> {
    db.execute(
        "DELETE FROM refresh_families WHERE client_id = ?",
        &[client_id.into()],
    )?;
    Ok(())
}

/// Deletes at most `limit` families revoked before `before`, or unused for a
/// year (the longest lifetime a client may have) before it.
pub fn sweep(db: &dyn SqlStore, before: i64, limit: i64) -> Result<usize> {
    super::sweep_expired(
        db,
        "refresh_families",
        "revoked_at < ?1 OR last_used_at < ?1 - 31536000",
        before,
        limit,
    )
}

/// An identity's families (for the export): client, scope, dates, never a
/// token hash.
pub fn for_identity(db: &dyn SqlStore, identity_id: &str) -> Result<Vec<serde_json::Value>> {
    db.execute(
        "SELECT id, client_id, scope, org_id, mandate_id, created_at, last_used_at, revoked_at \
         FROM refresh_families WHERE identity_id = ? ORDER BY created_at, id",
        &[identity_id.into()],
    )?
    .decode(|r| {
        Ok(serde_json::json!({
            "id": r.string("id")?,
            "client_id": r.string("client_id")?,
            "scope": r.string("scope")?,
            "org_id": r.opt_string("org_id")?,
            "mandate_id": r.opt_string("mandate_id")?,
            "created_at": r.int("created_at")?,
            "last_used_at": r.int("last_used_at")?,
            "revoked_at": r.opt_int("revoked_at")?,
        }))
    })
}

/// Deletes every family of an identity (erasure, after they were revoked).
pub fn delete_for_identity(db: &dyn SqlStore, identity_id: &str) -> Result<()> {
    db.execute(
        "DELETE FROM refresh_families WHERE identity_id = ?",
        &[identity_id.into()],
    )?;
    Ok(())
}
