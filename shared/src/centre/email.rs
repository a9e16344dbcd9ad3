//! Changing the email address: the new address is proven by a link mailed
//! to it before it replaces the old one, which is told afterwards. Both stay
//! unique: a request for a taken address is answered the same way (the
//! address gets a note instead of a link), and the change itself re-checks
//! in the statement that makes it.

use serde_json::json;

use crate::Env;
use crate::accounts::Auth;
use crate::crypto;
use crate::device::Device;
use crate::error::{Error, Result};
use crate::events::{self, Kind};
use crate::identity::{self, Identity};
use crate::mail::{self, Mail};
use crate::onetime::{self, Purpose};
use crate::store::{email_changes, identities};
use crate::throttle;

/// How long the link to the new address works, in seconds.
pub const TTL: i64 = 24 * 3600;

/// Asks to move the account to `new_email`: mails the new address a link,
/// or a note when it already belongs to an account. The caller answers the
/// same either way ("check the new address"), and needs a recent sign-in.
/// Returns the normalised address.
pub fn request(
    env: &Env,
    auth: &Auth,
    who: &Identity,
    new_email: &str,
    device: &Device,
) -> Result<String> {
    if new_email.trim().is_empty() {
        return Err(Error::bad_request("Enter the new email address."));
    }
    let new_email = identity::normalise_email(new_email)?;
    if new_email == who.email {
        return Err(Error::bad_request(
            "This is already your email address. Enter a different one.",
        ));
    }
    // Each request mails someone: counted per address and per recipient, as
    // sign-up and reset are.
    let limits = auth.limits()?;
    throttle::reserve(
        env.sql,
        &throttle::address_key("email_change", &device.addr),
        &limits.address,
        env.now,
    )?;
    throttle::reserve(
        env.sql,
        &throttle::recipient_key(&new_email),
        &limits.recipient,
        env.now,
    )?;
    let mail = if identity::by_email(env.sql, &new_email)?.is_some() {
        Mail::email_in_use(&auth.config, &new_email)?
    } else {
        let token = crypto::random_token()?;
        email_changes::insert(
            env.sql,
            &crypto::hash_secret(&token),
            &who.id,
            &new_email,
            env.now + TTL,
        )?;
        Mail::email_change(&auth.config, &new_email, &token)?
    };
    mail::send(env, &auth.config, &mail)?;
    Ok(new_email)
}

/// Whether a link can still be used (for the page before the POST): the
/// new address it would set.
pub fn check(env: &Env, token: &str) -> Result<String> {
    match email_changes::get(env.sql, &crypto::hash_secret(token))? {
        Some(c) if !c.used && c.expires_at > env.now => Ok(c.new_email),
        other => Err(dead(other.as_ref(), env.now)),
    }
}

fn dead(change: Option<&email_changes::Change>, now: i64) -> Error {
    Error::DeadLink(
        match change {
            None => "This link is not valid. Check that you copied all of it.",
            Some(c) if c.used => {
                "This link has already been used, or a newer change replaced it. Each link works once."
            }
            Some(c) if c.expires_at <= now => {
                "This link has expired. Ask for the change again in your account and use the new link within 24 hours."
            }
            Some(_) => "This link cannot be used.",
        }
        .into(),
    )
}

/// A change that went through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    /// Whose address changed.
    pub identity_id: String,
    /// The address before.
    pub old_email: String,
    /// The address now (verified).
    pub new_email: String,
}

/// Uses a link: the new address replaces the old one, verified; the old
/// address is told; other pending changes and the links mailed to the old
/// address (verification, reset) stop working. When the new address
/// belongs to another account by now, nothing changes and the answer says
/// so (the link is spent either way).
pub fn confirm(env: &Env, auth: &Auth, token: &str, device: &Device) -> Result<Changed> {
    let hash = crypto::hash_secret(token);
    let Some((id, new_email)) = email_changes::spend(env.sql, &hash, env.now)? else {
        return Err(dead(email_changes::get(env.sql, &hash)?.as_ref(), env.now));
    };
    let Some(who) = identity::by_id(env.sql, &id)? else {
        return Err(dead(None, env.now));
    };
    if !identities::change_email(env.sql, &id, &who.email, &new_email, env.now)? {
        return Err(Error::Conflict(format!(
            "{new_email} belongs to another account now, so your email address was not changed. It is still {}.",
            who.email
        )));
    }
    email_changes::void_all(env.sql, &id, env.now)?;
    onetime::void_all(env.sql, Purpose::ResetPassword, &id, env.now)?;
    onetime::void_all(env.sql, Purpose::VerifyEmail, &id, env.now)?;
    events::record(
        env,
        &id,
        Kind::EmailChanged,
        json!({ "from": who.email, "to": new_email }),
        device,
    )?;
    // The change is made: a mail API failure must not make it look undone.
    if let Err(e) = Mail::email_changed(&auth.config, &who.email, &new_email)
        .and_then(|m| mail::send(env, &auth.config, &m))
    {
        eprintln!("lanyard: could not tell the old address of an email change: {e}");
    }
    Ok(Changed {
        identity_id: id,
        old_email: who.email,
        new_email,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::dev_outbox;
    use crate::testkit::World;
    use serde_json::Map;

    fn person(w: &World, email: &str) -> Identity {
        let who = identity::create(&w.sql, email, None, &Map::new(), 0)
            .unwrap()
            .unwrap();
        identity::mark_verified(&w.sql, &who.id, 0).unwrap();
        identity::by_id(&w.sql, &who.id).unwrap().unwrap()
    }

    fn token_mailed_to(w: &World, to: &str) -> Option<String> {
        dev_outbox::newest(&w.sql, Some(to))
            .unwrap()
            .first()
            .and_then(|m| m.link.clone())
            .and_then(|l| l.split("token=").nth(1).map(str::to_owned))
    }

    #[test]
    fn the_new_address_replaces_the_old_only_through_its_link() {
        let w = World::new();
        let auth = Auth::load(&w.vars).unwrap();
        let ada = person(&w, "ada@example.com");
        let d = Device::addr("192.0.2.1");
        let reset = onetime::issue(&w.sql, Purpose::ResetPassword, &ada.id, 0).unwrap();
        request(&w.env(1), &auth, &ada, " Ada@New.Example ", &d).unwrap();
        // Not yet.
        assert_eq!(
            identity::by_id(&w.sql, &ada.id).unwrap().unwrap().email,
            "ada@example.com"
        );
        let token = token_mailed_to(&w, "ada@new.example").unwrap();
        assert_eq!(check(&w.env(2), &token).unwrap(), "ada@new.example");
        let done = confirm(&w.env(3), &auth, &token, &d).unwrap();
        assert_eq!(done.old_email, "ada@example.com");
        let after = identity::by_id(&w.sql, &ada.id).unwrap().unwrap();
        assert_eq!(
            (after.email.as_str(), after.email_verified),
            ("ada@new.example", true)
        );
        // The old address is told, the link works once, and the reset link
        // mailed to the old address is void.
        let told = dev_outbox::newest(&w.sql, Some("ada@example.com")).unwrap();
        assert!(told[0].text.contains("ada@new.example"), "{}", told[0].text);
        assert!(matches!(
            confirm(&w.env(4), &auth, &token, &d),
            Err(Error::DeadLink(_))
        ));
        assert_eq!(
            onetime::peek(&w.sql, Purpose::ResetPassword, &reset, 4).unwrap(),
            onetime::Status::Used
        );
    }

    #[test]
    fn a_taken_address_gets_a_note_and_nothing_changes() {
        let w = World::new();
        let auth = Auth::load(&w.vars).unwrap();
        let ada = person(&w, "ada@example.com");
        person(&w, "bob@example.com");
        let d = Device::addr("192.0.2.1");
        request(&w.env(1), &auth, &ada, "bob@example.com", &d).unwrap();
        assert!(token_mailed_to(&w, "bob@example.com").is_none());
        assert_eq!(
            crate::store::count_rows(&w.sql, "email_changes").unwrap(),
            0
        );
        // Free when asked, taken when confirmed: nothing changes.
        request(&w.env(2), &auth, &ada, "cy@example.com", &d).unwrap();
        let token = token_mailed_to(&w, "cy@example.com").unwrap();
        person(&w, "cy@example.com");
        assert!(matches!(
            confirm(&w.env(3), &auth, &token, &d),
            Err(Error::Conflict(_))
        ));
        assert_eq!(
            identity::by_id(&w.sql, &ada.id).unwrap().unwrap().email,
            "ada@example.com"
        );
    }

    #[test]
    fn links_expire_and_a_confirmed_change_voids_the_others() {
        let w = World::new();
        let auth = Auth::load(&w.vars).unwrap();
        let ada = person(&w, "ada@example.com");
        let d = Device::addr("192.0.2.1");
        request(&w.env(0), &auth, &ada, "one@example.com", &d).unwrap();
        let one = token_mailed_to(&w, "one@example.com").unwrap();
        request(&w.env(0), &auth, &ada, "two@example.com", &d).unwrap();
        let two = token_mailed_to(&w, "two@example.com").unwrap();
        assert!(matches!(
            confirm(&w.env(TTL), &auth, &one, &d),
            Err(Error::DeadLink(m)) if m.contains("expired")
        ));
        confirm(&w.env(10), &auth, &two, &d).unwrap();
        assert!(check(&w.env(11), &one).is_err());
        assert!(matches!(
            request(&w.env(12), &auth, &ada, "", &d),
            Err(Error::BadRequest(_))
        ));
    }
}
