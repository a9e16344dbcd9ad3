//! Erasure (GDPR Art. 17): the person deletes their account.
//!
//! It needs a recent sign-in (checked by the route) and the person's email
//! address typed again as confirmation. It is refused, with nothing
//! changed, while they are the last active owner of an organisation: the
//! answer names the organisations and the way out (make someone else owner,
//! or delete the organisation).
//!
//! Otherwise, in this order, so that an interruption leaves no live access
//! (and running it again finishes the job):
//! 1. every refresh-token family is revoked and every unused code voided,
//!    and every session ends (key-value and listing);
//! 2. the person leaves every organisation and mandate (recorded in each
//!    organisation's audit with the actor [`ERASED`]);
//! 3. what others must keep is anonymised: the organisation audit, the
//!    security events, who invited, granted, offered or created what;
//! 4. every row tied to the identity is deleted, table by table;
//! 5. the identity row goes last.

use serde_json::json;

use super::ERASED;
use crate::Env;
use crate::error::{Error, Result};
use crate::identity::Identity;
use crate::oidc::grants;
use crate::session;
use crate::store::{
    activations, auth_codes, consent_records, consents, dev_outbox, email_changes,
    federated_identities, identities, invitations, mandate_delegates, mandates, memberships,
    one_time_tokens, org_audit, organisations, passkeys, pending_links, recovery_codes,
    refresh_families, role_assignments, security_events, session_clients, social_states,
    totp_secrets, webauthn_states,
};

/// Checks the confirmation: the person's email address, typed again.
pub fn check_confirmation(who: &Identity, confirm: &str) -> Result<()> {
    if confirm.trim().to_lowercase() == who.email {
        Ok(())
    } else {
        Err(Error::bad_request(
            "To confirm, type your email address exactly as shown.",
        ))
    }
}

/// Refuses while the person is the last active owner of an organisation,
/// naming it and the way out.
pub fn check_no_sole_ownership(env: &Env, who: &Identity) -> Result<()> {
    let orgs = memberships::sole_owner_of(env.sql, &who.id)?;
    if orgs.is_empty() {
        return Ok(());
    }
    let names = orgs
        .iter()
        .map(|(_, name)| format!("“{name}”"))
        .collect::<Vec<_>>()
        .join(", ");
    Err(Error::Conflict(format!(
        "You are the last owner of {names}. Make another member owner (transfer ownership) \
         or delete the organisation first, then delete your account."
    )))
}

/// Erases the account of `who` after checking the confirmation and the
/// last-owner rule (nothing is changed when either fails).
pub fn erase(env: &Env, who: &Identity, confirm: &str) -> Result<()> {
    check_confirmation(who, confirm)?;
    check_no_sole_ownership(env, who)?;
    let db = env.sql;
    let (id, email) = (who.id.as_str(), who.email.as_str());

    // 1. No live access.
    grants::end_all(db, id, env.now)?;
    session::revoke_all(env, id, None)?;

    // 2. Out of every organisation and mandate.
    for (org_id, role) in memberships::of_identity(db, id)? {
        if !memberships::remove(db, &org_id, id)? {
            // Someone demoted the other owner since the check.
            return Err(Error::Conflict(
                "You became the last owner of an organisation meanwhile. Transfer ownership \
                 or delete it first."
                    .into(),
            ));
        }
        role_assignments::delete_for_member(db, &org_id, id)?;
        org_audit::insert(
            db,
            &org_id,
            env.now,
            ERASED,
            "member.erased",
            Some(ERASED),
            Some(&json!({ "role": role })),
            None,
        )?;
    }
    role_assignments::delete_for_identity(db, id)?;
    for mandate_id in mandate_delegates::delete_for_identity(db, id)? {
        if let Some(m) = mandates::get(db, &mandate_id)?
            && let Some(agent) = &m.agent_org_id
        {
            org_audit::insert(
                db,
                agent,
                env.now,
                ERASED,
                "mandate.delegate_erased",
                Some(&mandate_id),
                None,
                None,
            )?;
        }
    }
    for (mandate_id, principal) in mandates::erase_agent(db, id, email, ERASED, env.now)? {
        org_audit::insert(
            db,
            &principal,
            env.now,
            ERASED,
            "mandate.revoked",
            Some(&mandate_id),
            None,
            Some(&json!({ "state": "revoked", "reason": "agent erased their account" })),
        )?;
    }

    // 3. What others keep, without the person.
    org_audit::anonymise(db, id, email, ERASED)?;
    security_events::anonymise(db, id)?;
    organisations::anonymise_creator(db, id, ERASED)?;
    activations::anonymise_requester(db, id, ERASED)?;
    role_assignments::anonymise_granter(db, id, ERASED)?;
    memberships::anonymise_inviter(db, id, ERASED)?;
    invitations::anonymise(db, id, email, ERASED)?;
    mandates::anonymise(db, id, ERASED)?;
    mandate_delegates::anonymise_adder(db, id, ERASED)?;

    // 4. Every row tied to the identity.
    refresh_families::delete_for_identity(db, id)?;
    auth_codes::delete_for_identity(db, id)?;
    session_clients::take_identity(db, id, None)?;
    consents::delete_for_identity(db, id)?;
    federated_identities::delete_for_identity(db, id)?;
    totp_secrets::delete(db, id)?;
    recovery_codes::delete_all(db, id)?;
    passkeys::delete_for_identity(db, id)?;
    webauthn_states::delete_for_identity(db, id)?;
    email_changes::delete_for_identity(db, id)?;
    consent_records::delete_for_identity(db, id)?;
    one_time_tokens::delete_for_identity(db, id)?;
    social_states::delete_for_identity(db, id)?;
    pending_links::delete_for_identity(db, id, email)?;
    dev_outbox::delete_for_person(db, id, email)?;

    // 5. The identity.
    identities::delete(db, id)
}
