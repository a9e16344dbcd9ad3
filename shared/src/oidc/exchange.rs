//! RFC 8693 token exchange at `/token`: a confidential client trades a
//! person's access token (the subject token) for a narrower one meant for
//! another registered client, its API (`audience`).
//!
//! What a client may exchange for is the operator's metadata,
//! `token_exchange: [{"audience", "scope"}]`. The new token keeps the
//! subject's `sub`, organisation and mandate claims, names the requesting
//! client as `client_id`, has `aud` = the audience and a scope within both
//! the subject token's and the registration's, and lives no longer than the
//! subject token. An `actor_token` (a `client_credentials` token of the
//! requesting client) makes the client the current actor: `act` becomes
//! `{"sub": <client>, "act": <the subject's act>}` (RFC 8693 §4.1).
//!
//! Nothing is stored: the exchange reads the audience's registration and
//! the revocation list (through [`tokens::verify_access`]), and signs.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use crate::Env;
use crate::config::Config;
use crate::error::{Error, OAuthCode, Result};
use crate::oidc::clients::{self, Client};
use crate::oidc::grants::{self, OrgCheck, TokenResponse};
use crate::oidc::keys::Alg;
use crate::oidc::tokens::{self, Signer, Verified};
use crate::web::Params;

/// The grant type (RFC 8693 §2.1).
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// The one token type exchanged and issued: an access token (RFC 8693 §3).
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// The most exchanges one client may register.
pub const MAX_REGISTRATIONS: usize = 20;

/// One exchange a client may make, from its metadata: a token for
/// `audience` (another client's id) with at most `scope`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    /// The client the exchanged token is for (its `aud`).
    pub audience: String,
    /// The scopes it may carry, space-separated; an exchange gets those of
    /// them the subject token holds.
    pub scope: String,
}

/// Checks a client's `token_exchange` metadata: at most
/// [`MAX_REGISTRATIONS`] entries, each audience a valid client id other
/// than `own_id` and listed once, each scope non-empty and well-formed.
pub fn check_registrations(own_id: Option<&str>, regs: &[Registration]) -> Result<()> {
    let invalid = |m: String| Error::bad_request(format!("`token_exchange`: {m}"));
    if regs.len() > MAX_REGISTRATIONS {
        return Err(invalid(format!(
            "at most {MAX_REGISTRATIONS} audiences may be registered"
        )));
    }
    let mut seen = std::collections::BTreeSet::new();
    for r in regs {
        if !clients::is_client_id(&r.audience) {
            return Err(invalid(format!(
                "`{}`: an audience is a client_id, 3 to 64 characters of A-Z, a-z, 0-9, - _ .",
                r.audience
            )));
        }
        if own_id == Some(r.audience.as_str()) {
            return Err(invalid("a client cannot exchange tokens for itself".into()));
        }
        if !seen.insert(r.audience.as_str()) {
            return Err(invalid(format!("`{}` is listed twice", r.audience)));
        }
        if r.scope.split_ascii_whitespace().next().is_none() {
            return Err(invalid(format!("the scope for `{}` is empty", r.audience)));
        }
        if let Some(bad) = r.scope.split_ascii_whitespace().find(|s| {
            s.len() > 64
                || !s
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
        }) {
            return Err(invalid(format!("invalid scope `{bad}`")));
        }
    }
    Ok(())
}

/// A token-exchange request (RFC 8693 §2.1), as read from the form. The
/// token types are checked by [`grant`], after the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeRequest {
    /// The token to exchange.
    pub subject_token: String,
    /// Its type; only [`ACCESS_TOKEN_TYPE`] is accepted.
    pub subject_token_type: String,
    /// The acting party's token, if any.
    pub actor_token: Option<String>,
    /// Its type, given exactly when `actor_token` is.
    pub actor_token_type: Option<String>,
    /// The client the new token is for (one value, required here).
    pub audience: String,
    /// The scopes asked for, space-separated.
    pub scope: Option<String>,
    /// Whether `resource` (RFC 8707) was sent: refused, `audience` names
    /// the target.
    pub resource: bool,
    /// The type asked for; only [`ACCESS_TOKEN_TYPE`] can be issued.
    pub requested_token_type: Option<String>,
}

fn invalid_request(msg: impl Into<String>) -> Error {
    Error::oauth(OAuthCode::InvalidRequest, msg)
}

impl ExchangeRequest {
    /// Reads the exchange's parameters. A missing `subject_token`,
    /// `subject_token_type` or `audience`, or any repeated parameter, is
    /// `invalid_request`.
    pub fn parse(form: &Params) -> Result<ExchangeRequest> {
        let one = |name: &str| -> Result<Option<String>> {
            form.one(name)
                .map(|v| v.map(str::to_owned))
                .map_err(|_| invalid_request(format!("`{name}` is repeated")))
        };
        let required = |name: &str| -> Result<String> {
            one(name)?.ok_or_else(|| invalid_request(format!("`{name}` is missing")))
        };
        Ok(ExchangeRequest {
            subject_token: required("subject_token")?,
            subject_token_type: required("subject_token_type")?,
            actor_token: one("actor_token")?,
            actor_token_type: one("actor_token_type")?,
            audience: required("audience")?,
            scope: one("scope")?,
            resource: form.pairs().iter().any(|(k, _)| k == "resource"),
            requested_token_type: one("requested_token_type")?,
        })
    }
}

/// `grant_type=urn:ietf:params:oauth:grant-type:token-exchange` for an
/// authenticated client. Errors follow RFC 8693 §2.2.2: a public client or
/// one without the grant is `unauthorized_client`; a bad, expired, revoked
/// or foreign subject token, a bad actor token and unsupported token types
/// are `invalid_request`; an audience not registered for this client, or
/// gone, and `resource` are `invalid_target`; a scope outside both the
/// subject token's and the registration's is `invalid_scope`.
pub fn grant(
    env: &Env,
    config: &Config,
    client: &Client,
    req: &ExchangeRequest,
) -> Result<TokenResponse> {
    if !client.confidential || !client.allows_grant(GRANT_TYPE) {
        return Err(Error::oauth(
            OAuthCode::UnauthorizedClient,
            "this client may not use token exchange",
        ));
    }
    check_types(req)?;
    if req.resource {
        return Err(Error::oauth(
            OAuthCode::InvalidTarget,
            "`resource` is not supported: name the client the token is for in `audience`.",
        ));
    }
    let target = || {
        Error::oauth(
            OAuthCode::InvalidTarget,
            format!(
                "This client may not exchange tokens for `{}`.",
                req.audience
            ),
        )
    };
    let registration = client
        .token_exchange
        .iter()
        .find(|r| r.audience == req.audience)
        .ok_or_else(target)?;
    if clients::get(env.sql, &req.audience)?.is_none() {
        return Err(target());
    }
    let subject = tokens::verify_access(env, config, &req.subject_token).map_err(|_| {
        invalid_request("The subject_token is not a valid, unexpired access token from here.")
    })?;
    // Issued to this client, meant for it (an exchanged token, exchanged
    // again by its audience), or issued to a client it is the API of.
    let mine = subject.claims.client_id == client.id
        || subject.aud == client.id
        || client
            .resource_server_for
            .contains(&subject.claims.client_id);
    if !mine {
        return Err(invalid_request(
            "The subject_token was issued to another client.",
        ));
    }
    still_granted(env, &subject)?;
    let actor = match &req.actor_token {
        Some(token) => Some(actor(env, config, client, token)?),
        None => None,
    };
    let scope = narrowed(
        &subject.claims.scope,
        &registration.scope,
        req.scope.as_deref(),
    )?;
    // Never longer than the subject token, nor than this client's tokens.
    let ttl = client.access_token_ttl.min(subject.exp - env.now);
    if ttl <= 0 {
        return Err(invalid_request("The subject_token has expired."));
    }
    let custom = exchanged_claims(&subject, &req.subject_token, &client.id, &scope, actor)?;
    let claims = tokens::claims(custom, config, &subject.sub, &req.audience, env.now, ttl)?;
    // Each token follows the client's choice of algorithm (ES256 by default).
    let alg = Alg::from_name(&client.access_token_alg).unwrap_or(Alg::Es256);
    Ok(TokenResponse {
        access_token: Signer::load(env, config, alg)?.sign(claims, "at+jwt")?,
        token_type: "Bearer",
        expires_in: ttl,
        scope,
        id_token: None,
        refresh_token: None,
        issued_token_type: Some(ACCESS_TOKEN_TYPE),
    })
}

/// A subject token of a b2b login still stands for what it says: the
/// organisation (or the mandate) behind it is checked again, in one
/// statement, so a removed member or a revoked mandate exchanges nothing.
/// A token that is itself an exchange's (issued to a client that is not a
/// service) was checked when it was made, and lives no longer than that.
fn still_granted(env: &Env, subject: &Verified) -> Result<()> {
    let Some(org) = &subject.claims.org else {
        return Ok(());
    };
    let Some(issued_to) = clients::get(env.sql, &subject.claims.client_id)?.filter(|c| c.b2b)
    else {
        return Ok(());
    };
    let mandate = subject.claims.mandate.as_ref().map(|m| m.id.as_str());
    let check = grants::check_org(
        env.sql,
        &issued_to,
        &subject.sub,
        Some(&org.org_id),
        mandate,
        env.now,
    )?;
    if check == OrgCheck::Ended {
        return Err(invalid_request(
            "The organisation access behind the subject_token has ended.",
        ));
    }
    Ok(())
}

/// The token types: access tokens in, an access token out, and an actor
/// token's type exactly when there is one (RFC 8693 §2.1).
fn check_types(req: &ExchangeRequest) -> Result<()> {
    if req.subject_token_type != ACCESS_TOKEN_TYPE {
        return Err(invalid_request(format!(
            "subject_token_type must be {ACCESS_TOKEN_TYPE}."
        )));
    }
    match (&req.actor_token, &req.actor_token_type) {
        (Some(_), Some(t)) if t == ACCESS_TOKEN_TYPE => {}
        (Some(_), Some(_)) => {
            return Err(invalid_request(format!(
                "actor_token_type must be {ACCESS_TOKEN_TYPE}."
            )));
        }
        (Some(_), None) => return Err(invalid_request("`actor_token_type` is missing")),
        (None, Some(_)) => {
            return Err(invalid_request(
                "`actor_token_type` is only sent with an `actor_token`",
            ));
        }
        (None, None) => {}
    }
    if req
        .requested_token_type
        .as_ref()
        .is_some_and(|t| t != ACCESS_TOKEN_TYPE)
    {
        return Err(invalid_request(format!(
            "Only {ACCESS_TOKEN_TYPE} can be issued."
        )));
    }
    Ok(())
}

/// The actor token: one of ours, unexpired, and a `client_credentials`
/// token of this very client (its `sub` and `client_id` are the client).
fn actor(env: &Env, config: &Config, client: &Client, token: &str) -> Result<Verified> {
    let v = tokens::verify_access(env, config, token).map_err(|_| {
        invalid_request("The actor_token is not a valid, unexpired access token from here.")
    })?;
    if v.sub != client.id || v.claims.client_id != client.id {
        return Err(invalid_request(
            "The actor_token must be a client_credentials token of this client.",
        ));
    }
    Ok(v)
}

/// The exchanged scope: the asked scopes, each held by the subject token and
/// registered for the audience; by default all such scopes. None at all, or
/// one outside either, is `invalid_scope`.
fn narrowed(subject: &str, registered: &str, asked: Option<&str>) -> Result<String> {
    let held: Vec<&str> = subject.split_ascii_whitespace().collect();
    let available: Vec<&str> = registered
        .split_ascii_whitespace()
        .filter(|s| held.contains(s))
        .collect();
    let scope: Vec<&str> = match asked {
        None => available.clone(),
        Some(asked) => {
            let mut out: Vec<&str> = Vec::new();
            for s in asked.split_ascii_whitespace() {
                if !available.contains(&s) {
                    return Err(Error::oauth(
                        OAuthCode::InvalidScope,
                        format!(
                            "scope `{s}` is not both in the subject_token and registered for this audience"
                        ),
                    ));
                }
                if !out.contains(&s) {
                    out.push(s);
                }
            }
            out
        }
    };
    if scope.is_empty() {
        return Err(Error::oauth(
            OAuthCode::InvalidScope,
            "The subject_token holds none of the scopes registered for this audience.",
        ));
    }
    Ok(scope.join(" "))
}

/// The new token's own claims: the subject's (organisation, auth time,
/// whatever [`tokens::AccessClaims`] carries, and its `mandate`) with this
/// client as `client_id`, the narrowed scope, no session id, and `act`: the
/// actor over the subject's `act`, or the subject's `act` as it is.
fn exchanged_claims(
    subject: &Verified,
    subject_token: &str,
    client_id: &str,
    scope: &str,
    actor: Option<Verified>,
) -> Result<Map<String, Json>> {
    let mut claims = match serde_json::to_value(&subject.claims) {
        Ok(Json::Object(m)) => m,
        Ok(_) | Err(_) => {
            return Err(Error::Internal(
                "access token claims are not an object".into(),
            ));
        }
    };
    claims.insert("client_id".into(), client_id.into());
    claims.insert("scope".into(), scope.into());
    claims.remove("sid");
    // `act` and `mandate` exactly as the (verified) subject token has them,
    // nesting and all.
    let raw = tokens::unverified_payload(subject_token);
    let subject_claim = |name: &str| {
        raw.as_ref()
            .and_then(|p| p.get(name).cloned())
            .filter(Json::is_object)
    };
    let subject_act = subject_claim("act");
    claims.remove("act");
    match subject_claim("mandate") {
        Some(m) => claims.insert("mandate".into(), m),
        None => claims.remove("mandate"),
    };
    let act = match actor {
        Some(a) => {
            let mut act = Map::new();
            act.insert("sub".into(), a.sub.into());
            if let Some(inner) = subject_act {
                act.insert("act".into(), inner);
            }
            Some(Json::Object(act))
        }
        None => subject_act,
    };
    if let Some(act) = act {
        claims.insert("act".into(), act);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oidc::grants::{self, TokenRequest};
    use crate::oidc::introspection;
    use crate::testkit::{self, World};
    use serde_json::json;

    const NOW: i64 = 1_700_000_000;

    /// `app` (confidential, may exchange for `invoices` with `invoice:read
    /// invoice:write`, and for `gone`, never registered as a client),
    /// `invoices` (its API, which may exchange for `ledger`), `ledger`, and
    /// `other` (a stranger that may exchange its own tokens for `invoices`).
    fn world() -> (World, Client, Client, Client) {
        let w = World::new();
        let app = testkit::client(
            &w.sql,
            json!({
                "client_name": "App", "client_id": "app",
                "redirect_uris": ["https://app.example/cb"],
                "grant_types": ["authorization_code", "client_credentials", GRANT_TYPE],
                "scope": "openid invoice:read invoice:write api",
                "access_token_ttl": 600,
                "token_exchange": [
                    {"audience": "invoices", "scope": "invoice:read invoice:write"},
                    {"audience": "gone", "scope": "invoice:read"}
                ]
            }),
            NOW,
        )
        .0;
        let invoices = testkit::client(
            &w.sql,
            json!({
                "client_name": "Invoices", "client_id": "invoices",
                "grant_types": ["client_credentials", GRANT_TYPE], "scope": "invoice:read",
                "access_token_signed_response_alg": "EdDSA",
                "token_exchange": [{"audience": "ledger", "scope": "invoice:read"}]
            }),
            NOW,
        )
        .0;
        testkit::client(
            &w.sql,
            json!({"client_name": "Ledger", "client_id": "ledger", "grant_types": ["client_credentials"]}),
            NOW,
        );
        let other = testkit::client(
            &w.sql,
            json!({
                "client_name": "Other", "client_id": "other",
                "redirect_uris": ["https://other.example/cb"],
                "grant_types": ["authorization_code", GRANT_TYPE],
                "token_exchange": [{"audience": "invoices", "scope": "invoice:read"}]
            }),
            NOW,
        )
        .0;
        (w, app, invoices, other)
    }

    fn config(w: &World) -> Config<'_> {
        Config::load(&w.vars).unwrap()
    }

    /// An access token as Lanyard issues it at `/token` for a person: to
    /// `client_id`, with this scope, `extra` claims, for `ttl` seconds.
    fn person_token(w: &World, client_id: &str, scope: &str, extra: Json, ttl: i64) -> String {
        let config = config(w);
        let env = w.env(NOW);
        let mut custom = json!({
            "client_id": client_id, "scope": scope, "auth_time": NOW - 60, "sid": "sid-1"
        });
        for (k, v) in extra.as_object().unwrap() {
            custom[k] = v.clone();
        }
        let custom: Map<String, Json> = serde_json::from_value(custom).unwrap();
        let claims = tokens::claims(custom, &config, "person-1", client_id, NOW, ttl).unwrap();
        Signer::load(&env, &config, Alg::Es256)
            .unwrap()
            .sign(claims, "at+jwt")
            .unwrap()
    }

    /// The client's own `client_credentials` token.
    fn cc_token(w: &World, client: &Client) -> String {
        let req = TokenRequest::ClientCredentials { scope: None };
        grants::exchange(&w.env(NOW), &config(w), client, &req)
            .unwrap()
            .access_token
    }

    fn request(subject: &str, audience: &str, scope: Option<&str>) -> ExchangeRequest {
        ExchangeRequest {
            subject_token: subject.into(),
            subject_token_type: ACCESS_TOKEN_TYPE.into(),
            actor_token: None,
            actor_token_type: None,
            audience: audience.into(),
            scope: scope.map(str::to_owned),
            resource: false,
            requested_token_type: None,
        }
    }

    fn run(w: &World, client: &Client, req: &ExchangeRequest, at: i64) -> Result<TokenResponse> {
        let req = TokenRequest::TokenExchange(req.clone());
        grants::exchange(&w.env(at), &config(w), client, &req)
    }

    fn verify(w: &World, token: &str, at: i64) -> Verified {
        tokens::verify_access(&w.env(at), &config(w), token).unwrap()
    }

    fn oauth<T: std::fmt::Debug>(r: Result<T>) -> OAuthCode {
        match r {
            Err(Error::OAuth { code, .. }) => code,
            other => panic!("expected an OAuth error, got {other:?}"),
        }
    }

    #[test]
    fn a_token_is_exchanged_for_a_narrower_one_for_the_audience() {
        let (w, app, invoices, other) = world();
        let subject = person_token(
            &w,
            "app",
            "openid invoice:read invoice:write api",
            json!({}),
            300,
        );
        let res = run(
            &w,
            &app,
            &request(&subject, "invoices", Some("invoice:read")),
            NOW + 10,
        )
        .unwrap();
        assert_eq!(res.scope, "invoice:read");
        assert_eq!(res.issued_token_type, Some(ACCESS_TOKEN_TYPE));
        assert!(res.refresh_token.is_none() && res.id_token.is_none());
        // The subject token has 290 s left: the new one lives no longer.
        assert_eq!(res.expires_in, 290);
        let body = serde_json::to_value(&res).unwrap();
        assert_eq!(body["issued_token_type"], ACCESS_TOKEN_TYPE);
        assert_eq!(body["token_type"], "Bearer");
        assert!(body.get("refresh_token").is_none());

        let s = verify(&w, &subject, NOW + 10);
        let v = verify(&w, &res.access_token, NOW + 10);
        assert_eq!((v.sub.as_str(), v.aud.as_str()), ("person-1", "invoices"));
        assert_eq!(
            (v.claims.client_id.as_str(), v.claims.scope.as_str()),
            ("app", "invoice:read")
        );
        assert_eq!((v.exp, v.iat), (s.exp, NOW + 10));
        assert_ne!(v.jti, s.jti, "a fresh jti");
        assert_eq!(v.claims.auth_time, Some(NOW - 60));
        assert_eq!(v.claims.sid, None);
        let meta = jwt_simple::prelude::Token::decode_metadata(&res.access_token).unwrap();
        assert_eq!(meta.signature_type(), Some("at+jwt"));
        let raw = tokens::unverified_payload(&res.access_token).unwrap();
        assert!(raw.get("act").is_none(), "no actor, none before");

        // By default: every registered scope the subject token holds; and the
        // client's own lifetime when the subject token outlives it.
        let long = person_token(
            &w,
            "app",
            "openid invoice:read invoice:write",
            json!({}),
            3600,
        );
        let res = run(&w, &app, &request(&long, "invoices", None), NOW).unwrap();
        assert_eq!(
            (res.scope.as_str(), res.expires_in),
            ("invoice:read invoice:write", 600)
        );
        assert_eq!(verify(&w, &res.access_token, NOW).exp, NOW + 600);

        // The audience introspects it; the requesting client still may, and a
        // stranger hears nothing.
        let env = w.env(NOW);
        let about =
            introspection::introspect(&env, &config(&w), &invoices, &res.access_token).unwrap();
        assert_eq!(
            (about["active"].as_bool(), about["aud"].as_str()),
            (Some(true), Some("invoices"))
        );
        let about = introspection::introspect(&env, &config(&w), &app, &res.access_token).unwrap();
        assert_eq!(about["active"], true);
        let about =
            introspection::introspect(&env, &config(&w), &other, &res.access_token).unwrap();
        assert_eq!(about, json!({"active": false}));

        // The audience, which received it, may exchange it in turn, for its
        // own registrations only; the token is still the person's and names
        // the client that asked.
        let next = run(
            &w,
            &invoices,
            &request(&res.access_token, "ledger", None),
            NOW,
        )
        .unwrap();
        let v = verify(&w, &next.access_token, NOW);
        assert_eq!(
            (v.sub.as_str(), v.aud.as_str(), v.claims.client_id.as_str()),
            ("person-1", "ledger", "invoices")
        );
        assert_eq!(
            oauth(run(
                &w,
                &invoices,
                &request(&res.access_token, "app", None),
                NOW
            )),
            OAuthCode::InvalidTarget
        );
        // A stranger may not.
        assert_eq!(
            oauth(run(
                &w,
                &other,
                &request(&res.access_token, "invoices", None),
                NOW
            )),
            OAuthCode::InvalidRequest
        );
    }

    #[test]
    fn the_form_is_parsed_strictly() {
        let form = |pairs: &[(&str, &str)]| TokenRequest::parse(&testkit::params(pairs));
        let base = [
            ("grant_type", GRANT_TYPE),
            ("subject_token", "s"),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
            ("audience", "invoices"),
        ];
        let mut expected = request("s", "invoices", None);
        assert_eq!(
            form(&base).unwrap(),
            TokenRequest::TokenExchange(expected.clone())
        );
        let mut full = base.to_vec();
        full.extend([
            ("scope", "invoice:read"),
            ("actor_token", "a"),
            ("actor_token_type", ACCESS_TOKEN_TYPE),
            ("requested_token_type", ACCESS_TOKEN_TYPE),
            ("resource", "https://api.example"),
        ]);
        expected.scope = Some("invoice:read".into());
        expected.actor_token = Some("a".into());
        expected.actor_token_type = Some(ACCESS_TOKEN_TYPE.into());
        expected.requested_token_type = Some(ACCESS_TOKEN_TYPE.into());
        expected.resource = true;
        assert_eq!(form(&full).unwrap(), TokenRequest::TokenExchange(expected));
        for missing in ["subject_token", "subject_token_type", "audience"] {
            let pairs: Vec<_> = base
                .iter()
                .copied()
                .filter(|(k, _)| *k != missing)
                .collect();
            assert_eq!(oauth(form(&pairs)), OAuthCode::InvalidRequest, "{missing}");
        }
        let mut two_audiences = base.to_vec();
        two_audiences.push(("audience", "other"));
        assert_eq!(oauth(form(&two_audiences)), OAuthCode::InvalidRequest);
    }

    #[test]
    fn wrong_token_types_and_resource_are_refused() {
        let (w, app, _, _) = world();
        let subject = person_token(&w, "app", "invoice:read", json!({}), 300);
        let actor = cc_token(&w, &app);
        let id_token_type = "urn:ietf:params:oauth:token-type:id_token";
        type Change = fn(&mut ExchangeRequest);
        let cases: [(&str, Change, OAuthCode); 6] = [
            (
                "subject type",
                |r| r.subject_token_type = "urn:ietf:params:oauth:token-type:id_token".into(),
                OAuthCode::InvalidRequest,
            ),
            (
                "requested type",
                |r| {
                    r.requested_token_type =
                        Some("urn:ietf:params:oauth:token-type:refresh_token".into())
                },
                OAuthCode::InvalidRequest,
            ),
            (
                "actor type",
                |r| r.actor_token_type = Some("urn:ietf:params:oauth:token-type:jwt".into()),
                OAuthCode::InvalidRequest,
            ),
            (
                "actor without type",
                |r| r.actor_token_type = None,
                OAuthCode::InvalidRequest,
            ),
            (
                "type without actor",
                |r| r.actor_token = None,
                OAuthCode::InvalidRequest,
            ),
            ("resource", |r| r.resource = true, OAuthCode::InvalidTarget),
        ];
        for (why, change, code) in cases {
            let mut req = request(&subject, "invoices", None);
            req.actor_token = Some(actor.clone());
            req.actor_token_type = Some(ACCESS_TOKEN_TYPE.into());
            change(&mut req);
            assert_eq!(oauth(run(&w, &app, &req, NOW)), code, "{why}");
        }
        let mut req = request(&subject, "invoices", None);
        req.requested_token_type = Some(ACCESS_TOKEN_TYPE.into());
        assert!(run(&w, &app, &req, NOW).is_ok());
        let mut req = request(&subject, "invoices", None);
        req.subject_token_type = id_token_type.into();
        assert_eq!(oauth(run(&w, &app, &req, NOW)), OAuthCode::InvalidRequest);
    }

    #[test]
    fn unregistered_and_unknown_audiences_are_invalid_targets() {
        let (w, app, _, _) = world();
        let subject = person_token(&w, "app", "invoice:read", json!({}), 300);
        for audience in ["other", "app", "nobody"] {
            assert_eq!(
                oauth(run(&w, &app, &request(&subject, audience, None), NOW)),
                OAuthCode::InvalidTarget,
                "{audience}"
            );
        }
        // Registered, but no such client.
        assert_eq!(
            oauth(run(&w, &app, &request(&subject, "gone", None), NOW)),
            OAuthCode::InvalidTarget
        );
        // Once it exists, it works.
        testkit::client(
            &w.sql,
            json!({"client_name": "Gone", "client_id": "gone", "grant_types": ["client_credentials"]}),
            NOW,
        );
        assert!(run(&w, &app, &request(&subject, "gone", None), NOW).is_ok());
    }

    #[test]
    fn foreign_expired_revoked_and_forged_subject_tokens_are_refused() {
        let (w, app, _, other) = world();
        // Issued to another client.
        let foreign = person_token(&w, "other", "invoice:read", json!({}), 300);
        assert_eq!(
            oauth(run(&w, &app, &request(&foreign, "invoices", None), NOW)),
            OAuthCode::InvalidRequest
        );
        assert!(run(&w, &other, &request(&foreign, "invoices", None), NOW).is_ok());
        // A resource server registered for `other` may exchange its tokens.
        let api = testkit::client(
            &w.sql,
            json!({
                "client_name": "Api", "client_id": "api", "grant_types": [GRANT_TYPE],
                "resource_server_for": ["other"],
                "token_exchange": [{"audience": "invoices", "scope": "invoice:read"}]
            }),
            NOW,
        )
        .0;
        assert!(run(&w, &api, &request(&foreign, "invoices", None), NOW).is_ok());

        // Expired, by the request's clock (30 s of leeway, and never a token
        // that outlives its subject).
        let subject = person_token(&w, "app", "invoice:read", json!({}), 300);
        assert!(run(&w, &app, &request(&subject, "invoices", None), NOW + 299).is_ok());
        for at in [NOW + 300, NOW + 320, NOW + 400] {
            assert_eq!(
                oauth(run(&w, &app, &request(&subject, "invoices", None), at)),
                OAuthCode::InvalidRequest,
                "{at}"
            );
        }
        // Revoked by its client.
        introspection::revoke(&w.env(NOW), &config(&w), &app, &subject).unwrap();
        assert_eq!(
            oauth(run(&w, &app, &request(&subject, "invoices", None), NOW)),
            OAuthCode::InvalidRequest
        );
        // Not a token at all, or tampered with.
        let fresh = person_token(&w, "app", "invoice:read", json!({}), 300);
        let mut parts: Vec<String> = fresh.split('.').map(str::to_owned).collect();
        let mut payload = tokens::unverified_payload(&fresh).unwrap();
        payload["scope"] = "invoice:read invoice:write".into();
        parts[1] = crate::crypto::b64url(payload.to_string().as_bytes());
        for bad in ["not-a-token".to_owned(), parts.join(".")] {
            assert_eq!(
                oauth(run(&w, &app, &request(&bad, "invoices", None), NOW)),
                OAuthCode::InvalidRequest
            );
        }
    }

    #[test]
    fn a_scope_wider_than_the_subject_or_the_registration_is_refused() {
        let (w, app, _, _) = world();
        let subject = person_token(&w, "app", "openid invoice:read api", json!({}), 300);
        for asked in [
            "invoice:write", // registered, not held
            "api",           // held, not registered
            "invoice:read invoice:write",
            "openid",
        ] {
            assert_eq!(
                oauth(run(
                    &w,
                    &app,
                    &request(&subject, "invoices", Some(asked)),
                    NOW
                )),
                OAuthCode::InvalidScope,
                "{asked}"
            );
        }
        // Nothing in common.
        let unrelated = person_token(&w, "app", "openid api", json!({}), 300);
        assert_eq!(
            oauth(run(&w, &app, &request(&unrelated, "invoices", None), NOW)),
            OAuthCode::InvalidScope
        );
        let res = run(
            &w,
            &app,
            &request(&subject, "invoices", Some("invoice:read invoice:read")),
            NOW,
        )
        .unwrap();
        assert_eq!(res.scope, "invoice:read");
    }

    #[test]
    fn public_clients_and_clients_without_the_grant_are_unauthorized() {
        let (w, app, _, _) = world();
        let subject = person_token(&w, "app", "invoice:read", json!({}), 300);
        let mut public = app.clone();
        public.confidential = false;
        assert_eq!(
            oauth(run(&w, &public, &request(&subject, "invoices", None), NOW)),
            OAuthCode::UnauthorizedClient
        );
        let mut without = app.clone();
        without.grant_types.retain(|g| g != GRANT_TYPE);
        assert_eq!(
            oauth(run(&w, &without, &request(&subject, "invoices", None), NOW)),
            OAuthCode::UnauthorizedClient
        );
        // Registration refuses the grant to a public client outright.
        let spec: clients::ClientSpec = serde_json::from_value(json!({
            "client_name": "Spa", "token_endpoint_auth_method": "none",
            "redirect_uris": ["https://spa.example/cb"],
            "grant_types": ["authorization_code", GRANT_TYPE]
        }))
        .unwrap();
        assert!(clients::create(&w.sql, &spec, NOW).is_err());
    }

    #[test]
    fn organisation_and_mandate_claims_are_carried_through() {
        let (w, app, _, _) = world();
        let org = json!({
            "org_id": "org_A", "org_slug": "acme", "org_name": "Acme Oy",
            "roles": ["invoice:read"], "project_roles": {"prj_1": ["invoice:submit"]},
            "act": {"sub": "person-1", "org_id": "org_B"},
            "mandate": {"id": "mnd_1", "expires_at": NOW + 86_400}
        });
        let subject = person_token(&w, "app", "invoice:read", org.clone(), 300);
        let res = run(&w, &app, &request(&subject, "invoices", None), NOW).unwrap();
        let raw = tokens::unverified_payload(&res.access_token).unwrap();
        for k in [
            "org_id",
            "org_slug",
            "org_name",
            "roles",
            "project_roles",
            "act",
            "mandate",
        ] {
            assert_eq!(raw[k], org[k], "{k}");
        }
        let (s, v) = (
            verify(&w, &subject, NOW),
            verify(&w, &res.access_token, NOW),
        );
        assert!(s.claims.org.is_some());
        assert_eq!(v.claims.org, s.claims.org);
    }

    #[test]
    fn an_actor_token_nests_the_subjects_act() {
        let (w, app, _, _) = world();
        let actor = cc_token(&w, &app);
        let with_actor = |subject: &str, actor: &str| {
            let mut req = request(subject, "invoices", None);
            req.actor_token = Some(actor.into());
            req.actor_token_type = Some(ACCESS_TOKEN_TYPE.into());
            req
        };
        let act_of = |res: TokenResponse| {
            tokens::unverified_payload(&res.access_token).unwrap()["act"].clone()
        };
        // No act before: the client becomes the actor.
        let plain = person_token(&w, "app", "invoice:read", json!({}), 300);
        let res = run(&w, &app, &with_actor(&plain, &actor), NOW).unwrap();
        assert_eq!(act_of(res), json!({"sub": "app"}));
        // A mandate's act nests inside, and again at the next exchange.
        let act = json!({"sub": "person-1", "org_id": "org_B"});
        let mandated = person_token(&w, "app", "invoice:read", json!({"act": act}), 300);
        let res = run(&w, &app, &with_actor(&mandated, &actor), NOW).unwrap();
        let once = res.access_token.clone();
        assert_eq!(act_of(res), json!({"sub": "app", "act": act}));
        let res = run(&w, &app, &with_actor(&once, &actor), NOW).unwrap();
        assert_eq!(
            act_of(res),
            json!({"sub": "app", "act": {"sub": "app", "act": act}})
        );
        // Without an actor token the subject's act stays as it is.
        let res = run(&w, &app, &request(&once, "invoices", None), NOW).unwrap();
        assert_eq!(act_of(res), json!({"sub": "app", "act": act}));

        // The actor token must be this client's own client_credentials token.
        let person = person_token(&w, "app", "invoice:read", json!({}), 300);
        let others = {
            let spec: clients::ClientSpec = serde_json::from_value(json!({
                "client_name": "Svc", "client_id": "svc", "grant_types": ["client_credentials"]
            }))
            .unwrap();
            let svc = clients::create(&w.sql, &spec, NOW).unwrap().0;
            cc_token(&w, &svc)
        };
        for bad in [person.as_str(), others.as_str(), "garbage"] {
            assert_eq!(
                oauth(run(&w, &app, &with_actor(&plain, bad), NOW)),
                OAuthCode::InvalidRequest
            );
        }
    }

    #[test]
    fn registrations_are_validated() {
        let w = World::new();
        let meta = |exchange: Json, grants: Json| {
            json!({
                "client_name": "App", "client_id": "app",
                "redirect_uris": ["https://app.example/cb"],
                "grant_types": grants, "token_exchange": exchange
            })
        };
        let with_grant = json!(["authorization_code", GRANT_TYPE]);
        let many: Vec<Json> = (0..21)
            .map(|i| json!({"audience": format!("api-{i}"), "scope": "read"}))
            .collect();
        for (why, bad) in [
            (
                "not a client id",
                meta(
                    json!([{"audience": "a b", "scope": "read"}]),
                    with_grant.clone(),
                ),
            ),
            (
                "too short",
                meta(
                    json!([{"audience": "ab", "scope": "read"}]),
                    with_grant.clone(),
                ),
            ),
            (
                "itself",
                meta(
                    json!([{"audience": "app", "scope": "read"}]),
                    with_grant.clone(),
                ),
            ),
            (
                "empty scope",
                meta(
                    json!([{"audience": "api", "scope": " "}]),
                    with_grant.clone(),
                ),
            ),
            (
                "twice",
                meta(
                    json!([{"audience": "api", "scope": "a"}, {"audience": "api", "scope": "b"}]),
                    with_grant.clone(),
                ),
            ),
            ("too many", meta(Json::Array(many), with_grant.clone())),
            (
                "without the grant",
                meta(
                    json!([{"audience": "api", "scope": "read"}]),
                    json!(["authorization_code"]),
                ),
            ),
        ] {
            let spec: clients::ClientSpec = serde_json::from_value(bad).unwrap();
            assert!(clients::create(&w.sql, &spec, NOW).is_err(), "{why}");
        }
        assert!(
            serde_json::from_value::<clients::ClientSpec>(meta(
                json!([{"audience": "api", "scope": "read", "extra": 1}]),
                with_grant.clone()
            ))
            .is_err(),
            "unknown fields"
        );
        // Valid: stored, shown, and checked again on update.
        let ok = meta(
            json!([{"audience": "api", "scope": "read write"}]),
            with_grant.clone(),
        );
        let spec: clients::ClientSpec = serde_json::from_value(ok).unwrap();
        let (c, _) = clients::create(&w.sql, &spec, NOW).unwrap();
        let expected = vec![Registration {
            audience: "api".into(),
            scope: "read write".into(),
        }];
        assert_eq!(c.token_exchange, expected);
        assert_eq!(
            clients::get(&w.sql, "app").unwrap().unwrap().token_exchange,
            expected
        );
        let shown = serde_json::to_value(&c).unwrap();
        assert_eq!(
            shown["token_exchange"],
            json!([{"audience": "api", "scope": "read write"}])
        );
        let mut itself = meta(json!([{"audience": "app", "scope": "read"}]), with_grant);
        itself.as_object_mut().unwrap().remove("client_id");
        let spec: clients::ClientSpec = serde_json::from_value(itself).unwrap();
        assert!(clients::update(&w.sql, "app", &spec, NOW).is_err());
        // Default: none.
        let spec: clients::ClientSpec = serde_json::from_value(json!({
            "client_name": "Plain", "redirect_uris": ["https://p.example/cb"]
        }))
        .unwrap();
        assert!(
            clients::create(&w.sql, &spec, NOW)
                .unwrap()
                .0
                .token_exchange
                .is_empty()
        );
    }

    #[test]
    fn a_subject_token_whose_organisation_access_ended_exchanges_nothing() {
        use crate::store::org_access::seed;
        let (w, _, invoices, _) = world();
        // `shop` is a service whose person-1 is a buyer in Acme, and may
        // exchange for `invoices`.
        let shop = testkit::client(
            &w.sql,
            json!({
                "client_name": "Shop", "client_id": "shop",
                "redirect_uris": ["https://shop.example/cb"],
                "grant_types": ["authorization_code", GRANT_TYPE],
                "scope": "openid invoice:read", "b2b": true,
                "roles": [{"name": "buyer", "description": "Buys"}],
                "token_exchange": [{"audience": "invoices", "scope": "invoice:read"}]
            }),
            NOW,
        )
        .0;
        let org = seed::org(&w.sql, "acme", "Acme");
        seed::member(&w.sql, &org, "person-1");
        seed::activate(&w.sql, &org, "shop");
        seed::role(&w.sql, &org, "person-1", "shop", "", "buyer");
        let claims = json!({
            "org_id": org, "org_slug": "acme", "org_name": "Acme",
            "roles": ["buyer"], "project_roles": {}
        });
        let subject = person_token(&w, "shop", "invoice:read", claims, 300);
        assert!(run(&w, &shop, &request(&subject, "invoices", None), NOW).is_ok());
        // The member leaves: the token they still hold exchanges nothing.
        seed::delete(
            &w.sql,
            "memberships",
            &[("org_id", &org), ("identity_id", "person-1")],
        );
        assert_eq!(
            oauth(run(&w, &shop, &request(&subject, "invoices", None), NOW)),
            OAuthCode::InvalidRequest
        );
        let _ = invoices;
    }
}
