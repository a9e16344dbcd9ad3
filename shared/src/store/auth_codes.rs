//! The `auth_codes` table: authorization codes, stored as SHA-256, claimed
//! once by a conditional UPDATE. A claimed code records what it issued, so
//! that a replay can find and revoke it.

use super::identities::{self, Identity};
use super::org_access::{self, MandateGrant, OrgGrant};
use super::{Named, SqlStore};
use crate::error::Result;

/// What a code carries from the authorization request and the login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Code {
    /// The client it was issued to.
    pub client_id: String,
    /// The person.
    pub identity_id: String,
    /// The exact redirect URI of the request.
    pub redirect_uri: String,
    /// Granted scopes, space-separated.
    pub scope: String,
    /// The request's nonce.
    pub nonce: Option<String>,
    /// The PKCE S256 challenge.
    pub code_challenge: String,
    /// When the person authenticated.
    pub auth_time: i64,
    /// How, space-separated (`pwd`).
    pub amr: String,
    /// The browser session.
    pub sid: String,
    /// When the code stops working.
    pub expires_at: i64,
    /// The organisation chosen for a b2b client (A, through a mandate).
    pub org_id: Option<String>,
    /// The mandate chosen, if the login acts for A through one.
    pub mandate_id: Option<String>,
    /// The upstream connection of the login, if any (the `idp` claim).
    pub idp: Option<String>,
}

const CODE_COLUMNS: &str = "client_id, identity_id, redirect_uri, scope, nonce, code_challenge, auth_time, amr, sid, expires_at, org_id, mandate_id, idp";

fn decode(r: &Named<'_>) -> Result<Code> {
    Ok(Code {
        client_id: r.string("client_id")?,
        identity_id: r.string("identity_id")?,
        redirect_uri: r.string("redirect_uri")?,
        scope: r.string("scope")?,
        nonce: r.opt_string("nonce")?,
        code_challenge: r.string("code_challenge")?,
        auth_time: r.int("auth_time")?,
        amr: r.string("amr")?,
        sid: r.string("sid")?,
        expires_at: r.int("expires_at")?,
        org_id: r.opt_string("org_id")?,
        mandate_id: r.opt_string("mandate_id")?,
        idp: r.opt_string("idp")?,
    })
}

/// Stores a new code under its hash.
pub fn insert(db: &dyn SqlStore, hash: &str, code: &Code) -> Result<()> {
    db.execute(
        &format!(
            "INSERT INTO auth_codes (hash, {CODE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ),
        &[
            hash.into(),
            code.client_id.as_str().into(),
            code.identity_id.as_str().into(),
            code.redirect_uri.as_str().into(),
            code.scope.as_str().into(),
            code.nonce.as_deref().into(),
            code.code_challenge.as_str().into(),
            code.auth_time.into(),
            code.amr.as_str().into(),
            code.sid.as_str().into(),
            code.expires_at.into(),
            code.org_id.as_deref().into(),
            code.mandate_id.as_deref().into(),
            code.idp.as_deref().into(),
        ],
    )?;
    Ok(())
}

/// A claimed code, with what its exchange needs, read by the claim itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    /// The code.
    pub code: Code,
    /// Its person; `None` when the identity is gone.
    pub identity: Option<Identity>,
    /// What the code's organisation grants the person at the claim, when it
    /// has an organisation and no mandate ([`org_access::grant`]).
    pub org_grant: Option<OrgGrant>,
    /// What the code's mandate grants the person at the claim, when it has
    /// one ([`org_access::mandate_grant`]).
    pub mandate_grant: Option<MandateGrant>,
}

/// Claims an unused code, recording the refresh family and access token its
/// exchange will issue, in one statement: of two concurrent claims, one gets
/// the code. Expiry and binding are the caller's to check (a claimed code is
/// spent either way). The same statement returns the code's person and, for
/// a b2b login, what its organisation or mandate grants at `now` (scalar
/// subqueries in `RETURNING`, the ones [`org_access::grant`] and
/// [`org_access::mandate_grant`] run alone), so that the exchange needs no
/// other read.
pub fn claim_for_exchange(
    db: &dyn SqlStore,
    hash: &str,
    now: i64,
    family_id: &str,
    access_jti: &str,
) -> Result<Option<Claimed>> {
    const C: &str = "auth_codes";
    let identity = identities::json_of(&format!("{C}.identity_id"));
    let org = org_access::grant_json(
        &format!("{C}.org_id"),
        &format!("{C}.identity_id"),
        &format!("{C}.client_id"),
    );
    let mandate = org_access::mandate_json(
        &format!("{C}.mandate_id"),
        &format!("{C}.identity_id"),
        &format!("{C}.client_id"),
        "?1",
    );
    let rows = db.execute(
        &format!(
            "UPDATE auth_codes SET used_at = ?1, family_id = ?2, access_jti = ?3 \
             WHERE hash = ?4 AND used_at IS NULL RETURNING {CODE_COLUMNS}, \
             {identity} AS identity, \
             CASE WHEN {C}.org_id IS NOT NULL AND {C}.mandate_id IS NULL THEN {org} END AS org_grant, \
             CASE WHEN {C}.mandate_id IS NOT NULL THEN {mandate} END AS mandate_grant"
        ),
        &[now.into(), family_id.into(), access_jti.into(), hash.into()],
    )?;
    let Some(r) = rows.first() else {
        return Ok(None);
    };
    let code = decode(&r)?;
    Ok(Some(Claimed {
        identity: identities::from_json(r.opt_string("identity")?.as_deref())?,
        org_grant: org_access::grant_from_json(
            r.opt_string("org_grant")?.as_deref(),
            &code.client_id,
        )?,
        mandate_grant: org_access::mandate_from_json(
            r.opt_string("mandate_grant")?.as_deref(),
            &code.identity_id,
            &code.client_id,
        )?,
        code,
    }))
}

/// [`claim_for_exchange`], for the code alone.
pub fn claim(
    db: &dyn SqlStore,
    hash: &str,
    now: i64,
    family_id: &str,
    access_jti: &str,
) -> Result<Option<Code>> {
    Ok(claim_for_exchange(db, hash, now, family_id, access_jti)?.map(|c| c.code))
}

/// What a spent code issued: its refresh family and access token, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    /// The refresh-token family its exchange started.
    pub family_id: Option<String>,
    /// The `jti` of the access token it issued.
    pub access_jti: Option<String>,
    /// The code's own expiry.
    pub expires_at: i64,
}

/// What a spent code issued (for revocation when it is replayed).
pub fn issued_by_spent(db: &dyn SqlStore, hash: &str) -> Result<Option<Issued>> {
    let rows = db.execute(
        "SELECT family_id, access_jti, expires_at FROM auth_codes WHERE hash = ? AND used_at IS NOT NULL",
        &[hash.into()],
    )?;
    rows.first()
        .map(|r| {
            Ok(Issued {
                family_id: r.opt_string("family_id")?,
                access_jti: r.opt_string("access_jti")?,
                expires_at: r.int("expires_at")?,
            })
        })
        .transpose()
}

/// Spends every unused code of an identity.
pub fn void_for_identity(db: &dyn SqlStore, identity_id: &str, now: i64) -> Result<()> {
    db.execute(
        "UPDATE auth_codes SET used_at = ? WHERE identity_id = ? AND used_at IS NULL",
        &[now.into(), identity_id.into()],
    )?;
    Ok(())
}

/// Spends every unused code of `identity_id` issued in browser session
/// `sid` (the session ended).
pub fn void_for_session(db: &dyn SqlStore, identity_id: &str, sid: &str, now: i64) -> Result<()> {
    db.execute(
        "UPDATE auth_codes SET used_at = ? WHERE identity_id = ? AND sid = ? AND used_at IS NULL",
        &[now.into(), identity_id.into(), sid.into()],
    )?;
    Ok(())
}

/// Deletes a client's codes (the client is being deleted).
pub fn delete_for_client(db: &dyn SqlStore, client_id: &str) -> Result<()> {
    db.execute(
        "DELETE FROM auth_codes WHERE client_id = ?",
        &[client_id.into()],
    )?;
    Ok(())
}

/// Deletes at most `limit` codes that expired before `before`.
pub fn sweep(db: &dyn SqlStore, before: i64, limit: i64) -> Result<usize> {
    super::sweep_expired(db, "auth_codes", "expires_at < ?1", before, limit)
}

/// What an identity's codes say (for the export): client, scope and dates,
/// never the hash, challenge or nonce.
pub fn for_identity(db: &dyn SqlStore, identity_id: &str) -> Result<Vec<serde_json::Value>> {
    db.execute(
        "SELECT client_id, scope, auth_time, expires_at, used_at FROM auth_codes \
         WHERE identity_id = ? ORDER BY auth_time, client_id",
        &[identity_id.into()],
    )?
    .decode(|r| {
        Ok(serde_json::json!({
            "client_id": r.string("client_id")?,
            "scope": r.string("scope")?,
            "auth_time": r.int("auth_time")?,
            "expires_at": r.int("expires_at")?,
            "used_at": r.opt_int("used_at")?,
        }))
    })
}

/// Deletes every code of an identity (erasure).
pub fn delete_for_identity(db: &dyn SqlStore, identity_id: &str) -> Result<()> {
    db.execute(
        "DELETE FROM auth_codes WHERE identity_id = ?",
        &[identity_id.into()],
    )?;
    Ok(())
}
