//! The export (GDPR Art. 15 and 20): one JSON document of everything held
//! about a person, each table read through its own store module. Credential
//! metadata only: never a password hash, TOTP secret, recovery-code hash,
//! passkey key material or token hash.
//!
//! [`TABLES`] names, for every table that holds an identity id or an email
//! address, where the export shows it, or why it does not. A test checks
//! it against the schema, so a new table cannot be forgotten.

use serde_json::{Value as Json, json};

use crate::Env;
use crate::error::Result;
use crate::identity::Identity;
use crate::store::{
    auth_codes, consent_records, consents, email_changes, federated_identities, identities,
    invitations, mandate_delegates, mandates, memberships, passkeys, recovery_codes,
    refresh_families, role_assignments, security_events, sessions, totp_secrets,
};

/// The version of the export's shape.
pub const FORMAT: &str = "lanyard-export/1";

/// Where a table that holds an identity id or an email stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coverage {
    /// In the export, under this key (dotted for nested ones).
    Exported(&'static str),
    /// Not in the export, for this reason (what erasure does with it is in
    /// [`super::erase`]).
    NotExported(&'static str),
}

/// Every table with a column that holds an identity id or an email
/// address, and where the export shows it.
pub const TABLES: &[(&str, Coverage)] = &[
    ("identities", Coverage::Exported("identity")),
    (
        "federated_identities",
        Coverage::Exported("linked_identities"),
    ),
    ("consents", Coverage::Exported("consents")),
    ("sessions", Coverage::Exported("sessions")),
    ("memberships", Coverage::Exported("organisations")),
    ("role_assignments", Coverage::Exported("roles")),
    ("mandates", Coverage::Exported("mandates")),
    ("mandate_delegates", Coverage::Exported("delegations")),
    ("invitations", Coverage::Exported("invitations")),
    ("security_events", Coverage::Exported("security_events")),
    ("consent_records", Coverage::Exported("consent_records")),
    ("totp_secrets", Coverage::Exported("credentials.totp")),
    (
        "recovery_codes",
        Coverage::Exported("credentials.recovery_codes"),
    ),
    ("passkeys", Coverage::Exported("credentials.passkeys")),
    ("email_changes", Coverage::Exported("pending_email_changes")),
    ("refresh_families", Coverage::Exported("refresh_tokens")),
    ("auth_codes", Coverage::Exported("authorization_codes")),
    (
        "session_clients",
        Coverage::NotExported(
            "which applications got tokens in each browser session, kept to notify them when it ends; the same session and client are in the exported refresh tokens and authorization codes; deleted at erasure",
        ),
    ),
    (
        "logout_deliveries",
        Coverage::NotExported(
            "logout notices an application did not accept yet: the person's id and the session's, kept to retry (about an hour) and to show the operator a week, then swept; kept at erasure, so that the applications still learn of it",
        ),
    ),
    (
        "one_time_tokens",
        Coverage::NotExported(
            "verification and reset links in flight: only their hashes, swept days after use; deleted at erasure",
        ),
    ),
    (
        "social_states",
        Coverage::NotExported("an upstream sign-in in flight (minutes), swept; deleted at erasure"),
    ),
    (
        "pending_links",
        Coverage::NotExported(
            "an upstream link waiting for the password (minutes), swept; deleted at erasure",
        ),
    ),
    (
        "webauthn_states",
        Coverage::NotExported("a passkey ceremony in flight (minutes), swept; deleted at erasure"),
    ),
    (
        "dev_outbox",
        Coverage::NotExported(
            "development mail (dev_mode only), not a record kept about anyone; their mail is deleted at erasure",
        ),
    ),
    (
        "organisations",
        Coverage::NotExported(
            "the organisation's own record (created_by); the person's memberships are exported; anonymised at erasure",
        ),
    ),
    (
        "activations",
        Coverage::NotExported(
            "the organisation's record of a service request (requested_by); anonymised at erasure",
        ),
    ),
    (
        "org_audit",
        Coverage::NotExported(
            "the organisation's audit log, kept for its admins; the person's id and address are replaced at erasure",
        ),
    ),
];

/// Everything held about `who`, as one JSON document.
pub fn export(env: &Env, who: &Identity) -> Result<Json> {
    let db = env.sql;
    let id = who.id.as_str();
    let (created_at, updated_at) = identities::dates(db, id)?.unwrap_or_default();
    let linked = federated_identities::for_identity(db, id)?
        .into_iter()
        .map(|f| {
            json!({
                "issuer": f.issuer,
                "subject": f.subject,
                "connection": f.connection_id,
                "email": f.email,
                "linked_at": f.created_at,
                "last_used_at": f.last_used_at,
            })
        })
        .collect::<Vec<_>>();
    let organisations = memberships::organisations_of(db, id)?
        .into_iter()
        .map(|(org, m)| {
            json!({
                "org_id": org.id,
                "slug": org.slug,
                "name": org.name,
                "role": m.role,
                "status": m.status,
                "joined_at": m.joined_at,
                "invited_by": m.invited_by,
            })
        })
        .collect::<Vec<_>>();
    let roles = role_assignments::for_identity(db, id)?
        .into_iter()
        .map(|(org_id, a)| {
            json!({
                "org_id": org_id,
                "client_id": a.client_id,
                "project_id": a.project_id,
                "role": a.role,
            })
        })
        .collect::<Vec<_>>();
    let mandate_json = |m: &mandates::Mandate| {
        json!({
            "id": m.id,
            "principal_org_id": m.principal_org_id,
            "agent_org_id": m.agent_org_id,
            "agent_email": m.agent_email,
            "client_id": m.client_id,
            "project_id": m.project_id,
            "roles": m.roles,
            "not_before": m.not_before,
            "expires_at": m.expires_at,
            "state": m.state_at(env.now),
            "created_at": m.created_at,
        })
    };
    let as_agent = mandates::for_person(db, id, &who.email)?
        .iter()
        .map(mandate_json)
        .collect::<Vec<_>>();
    let mut delegations = Vec::new();
    for (mandate_id, added_at) in mandate_delegates::for_identity(db, id)? {
        let mandate = mandates::get(db, &mandate_id)?;
        delegations.push(json!({
            "mandate_id": mandate_id,
            "added_at": added_at,
            "mandate": mandate.as_ref().map(mandate_json),
        }));
    }
    let invitations = invitations::for_email(db, &who.email)?
        .into_iter()
        .map(|i| {
            json!({
                "id": i.id,
                "org_id": i.org_id,
                "org_role": i.org_role,
                "grants": i.grants,
                "state": i.state_at(env.now),
                "created_at": i.created_at,
                "expires_at": i.expires_at,
            })
        })
        .collect::<Vec<_>>();
    let totp = totp_secrets::get(db, id)?
        .map(|t| json!({ "enrolled_at": t.created_at, "confirmed_at": t.confirmed_at }));
    Ok(json!({
        "format": FORMAT,
        "exported_at": env.now,
        "identity": {
            "id": who.id,
            "email": who.email,
            "email_verified": who.email_verified,
            "attributes": who.attributes,
            "created_at": created_at,
            "updated_at": updated_at,
        },
        "credentials": {
            "password_set": who.password_hash.is_some(),
            "totp": totp,
            "recovery_codes": { "left": recovery_codes::left(db, id)? },
            "passkeys": passkeys::for_identity(db, id)?,
        },
        "linked_identities": linked,
        "consents": consents::for_identity(db, id)?,
        "sessions": sessions::for_identity(db, id, env.now)?,
        "organisations": organisations,
        "roles": roles,
        "mandates": as_agent,
        "delegations": delegations,
        "invitations": invitations,
        "security_events": security_events::page(db, id, None, i64::MAX)?,
        "consent_records": consent_records::for_identity(db, id)?,
        "pending_email_changes": email_changes::for_identity(db, id)?,
        "refresh_tokens": refresh_families::for_identity(db, id)?,
        "authorization_codes": auth_codes::for_identity(db, id)?,
    }))
}

/// The file name of the download.
pub const FILE_NAME: &str = "lanyard-export.json";
