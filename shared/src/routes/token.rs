//! The token component: the OpenID Connect provider's endpoints (discovery,
//! JWKS, authorize, token, userinfo, introspection, revocation, logout) and
//! the admin API ([`super::admin`]).

use http::{Method, StatusCode, header};
use serde_json::json;

use super::errors::Style;
use super::{admin, cors, get_only};
use crate::accounts::{self, Auth};
use crate::config::Config;
use crate::error::{Error, OAuthCode, Result};
use crate::html::{self, ConsentPage, OrgOption, OrgPickerPage, SignedOutPage};
use crate::mfa::policy::{self as mfa_policy, Need};
use crate::oidc::authorize::{self, AuthRequest, Context, OrgStep, Reject, Subject};
use crate::oidc::clients;
use crate::oidc::discovery::{self, paths};
use crate::oidc::grants::{self, TokenRequest};
use crate::oidc::{introspection, keys, logout, signout, tokens};
use crate::web::{self, Params, Request, Response};
use crate::{Env, csrf, session, sweep};

/// Metadata and keys may be cached this long by clients and CDNs. Short, so
/// that a key published as `next` reaches verifiers well before it signs.
const METADATA_MAX_AGE: u32 = 300;

/// Routes a request to the token component.
pub fn handle(env: &Env, req: Request) -> Response {
    // This component holds the signing keys: it signs logout tokens itself
    // (and the other components link no signing code).
    let env = &Env {
        logout: &signout::Direct,
        ..*env
    };
    let path = req.uri().path().to_owned();
    let (style, result) = match path.as_str() {
        paths::DISCOVERY => (
            Style::Api,
            get_only(&req).and_then(|()| discovery_document(env)),
        ),
        paths::JWKS => (Style::Api, get_only(&req).and_then(|()| jwks(env))),
        paths::AUTHORIZE => (
            Style::Page,
            with_auth(env, |auth| authorize(env, auth, &req)),
        ),
        paths::TOKEN => (Style::OAuth, token(env, &req)),
        paths::USERINFO => (Style::Bearer, userinfo(env, &req)),
        paths::INTROSPECT => (Style::OAuth, introspect(env, &req)),
        paths::REVOKE => (Style::OAuth, revoke(env, &req)),
        paths::LOGOUT => (Style::Page, with_auth(env, |auth| logout(env, auth, &req))),
        p if admin::serves(p) => (Style::Api, admin::handle(env, &req)),
        signout::HAND_OVER_PATH => (Style::Api, handed_over(env, &req)),
        _ => (Style::Api, Err(Error::NotFound)),
    };
    result.unwrap_or_else(|e| e.into_response(style))
}

/// Logout tokens handed over by the login and profile components (Spin's
/// local service chaining; no public route leads here). It sends only what
/// is recorded as due, so a call from anywhere can do no more than the
/// sweep would.
fn handed_over(env: &Env, req: &Request) -> Result<Response> {
    if req.method() != Method::POST {
        return Err(Error::MethodNotAllowed("POST"));
    }
    let out = signout::deliver_handed_over(env)?;
    Ok(web::json(
        StatusCode::OK,
        &json!({ "delivered": out.delivered, "failed": out.failed }),
    ))
}

fn with_auth(env: &Env, f: impl FnOnce(&Auth) -> Result<Response>) -> Result<Response> {
    f(&Auth::load(env.vars)?)
}

fn discovery_document(env: &Env) -> Result<Response> {
    let config = Config::load(env.vars)?;
    Ok(public_json(&discovery::metadata(&config)))
}

fn jwks(env: &Env) -> Result<Response> {
    let config = Config::load(env.vars)?;
    let keys: Vec<_> = keys::published(env, &config)?
        .into_iter()
        .map(|k| k.jwk)
        .collect();
    Ok(public_json(&json!({ "keys": keys })))
}

/// Public, cacheable JSON that any origin may read (no credentials).
fn public_json<T: serde::Serialize>(value: &T) -> Response {
    let mut res = web::json(StatusCode::OK, value);
    web::cache_for(&mut res, METADATA_MAX_AGE);
    cors::allow_any(&mut res);
    res
}

/// In `dev_mode`, the documented demo client.
fn prepare(env: &Env, config: &Config) -> Result<()> {
    if config.dev_mode()? {
        clients::seed_demo_client(env.sql, &config.issuer, env.now)?;
    }
    Ok(())
}

// ------------------------------------------------------------------ authorize

fn authorize(env: &Env, auth: &Auth, req: &Request) -> Result<Response> {
    let config = &auth.config;
    prepare(env, config)?;
    // `decision` (consent) and `org` (the organisation picker: `org:<id>`,
    // `mandate:<id>` or `personal`) come only from our own CSRF-protected
    // forms.
    let (mut params, decision, picked) = match *req.method() {
        Method::GET => (Params::from_query(req)?, None, None),
        Method::POST => {
            let form = Params::from_form(req)?;
            csrf::check(req.headers(), &form, auth.policy()?.secure)?;
            let decision = form.one("decision")?.map(str::to_owned);
            let picked = form.one("org")?.map(str::to_owned);
            (form, decision, picked)
        }
        _ => return Err(Error::MethodNotAllowed("GET, POST")),
    };
    let ar = match authorize::parse(env.sql, &params) {
        Ok(ar) => ar,
        Err(r) => return rejected(config, r),
    };
    let deny = |error: &str, description: &str| -> Result<Response> {
        web::redirect(&authorize::redirect_url(
            &ar.redirect_uri,
            &config.issuer,
            ar.state.as_deref(),
            &[("error", error), ("error_description", description)],
        )?)
    };

    let current = accounts::current(env, auth, req.headers())?;
    let stale = |created: i64| {
        ar.prompts("login") && decision.is_none()
            || ar.max_age.is_some_and(|m| env.now - created > m)
    };
    let Some((who, s)) = current.filter(|(_, s)| !stale(s.created_at)) else {
        if ar.prompts("none") {
            return deny("login_required", "The user is not signed in.");
        }
        // Back here after signing in, without the parameters that asked for
        // it; a request for the organisation picker stays.
        let mut pairs: Vec<(String, String)> = params
            .pairs()
            .iter()
            .filter(|(k, _)| {
                !["prompt", "max_age", "csrf", "decision", "org"].contains(&k.as_str())
            })
            .cloned()
            .collect();
        if ar.prompts("select_account") {
            pairs.push(("prompt".into(), "select_account".into()));
        }
        params = Params::from_pairs(pairs);
        let back = format!("{}?{}", paths::AUTHORIZE, encode(&params));
        let mut to = format!("/login?return_to={}", web::pct(&back));
        if let Some(hint) = &ar.login_hint {
            to.push_str(&format!("&login_hint={}", web::pct(hint)));
        }
        return web::redirect(&to);
    };

    // Second factors (docs/account.md): a client that asks for two factors,
    // and the operator's `require_mfa`.
    match mfa_policy::need(env, ar.wants_mfa(), &who.id, &s.amr)? {
        Need::Met => {}
        Need::StepUp | Need::Unmet if ar.prompts("none") => {
            return deny(
                "login_required",
                "The user must sign in with a second factor.",
            );
        }
        Need::Enrol if ar.prompts("none") => {
            return deny(
                "interaction_required",
                "The user must set up a second factor.",
            );
        }
        Need::Unmet => {
            return deny(
                "unmet_authentication_requirements",
                "The user has no second factor to sign in with.",
            );
        }
        need => return web::redirect(&mfa_policy::detour(need, &this_request(&params))),
    }

    // Terms that changed since this person accepted them (privacy): accept
    // them at /account/terms, then come back here.
    if crate::privacy::consent::terms_needed(env, &who.id)?.is_some() {
        if ar.prompts("none") {
            return deny("interaction_required", "The user must accept the terms.");
        }
        let back = this_request(&params);
        return web::redirect(&format!("/account/terms?return_to={}", web::pct(&back)));
    }

    // A b2b client's login is for a context (an organisation, a mandate,
    // or just the person), chosen before consent.
    let context = match authorize::choose_org(env.sql, &who.id, &ar, picked.as_deref(), env.now) {
        Ok(OrgStep::NotNeeded) => None,
        Ok(OrgStep::Chosen(context)) => Some(context),
        Ok(OrgStep::Pick { contexts }) => {
            return org_picker(auth, req, &ar, &who.email, &params, &contexts);
        }
        Err(r) => return rejected(config, r),
    };
    let consented = authorize::has_consent(env.sql, &who.id, &ar)?
        && !(ar.prompts("consent") && decision.is_none());
    if !consented {
        match decision.as_deref() {
            Some("allow") => {
                authorize::grant_consent(env.sql, &who.id, &ar, env.now)?;
                crate::events::record(
                    env,
                    &who.id,
                    crate::events::Kind::AppConnected,
                    json!({ "client_id": ar.client.id, "scopes": ar.scopes }),
                    &crate::device::Device::of(env.vars, req.headers())?,
                )?;
            }
            Some(_) => return deny("access_denied", "The user did not allow access."),
            None if ar.prompts("none") => {
                return deny("consent_required", "The user has not consented.");
            }
            None => return consent_page(auth, req, &ar, &who.email, &params),
        }
    }
    let code = authorize::issue_code(
        env.sql,
        &ar,
        &Subject {
            id: &who.id,
            auth_time: s.created_at,
            amr: &s.amr,
            sid: &s.sid,
            idp: s.idp.as_deref(),
        },
        context.as_ref(),
        env.now,
    )?;
    web::redirect(&authorize::redirect_url(
        &ar.redirect_uri,
        &config.issuer,
        ar.state.as_deref(),
        &[("code", &code)],
    )?)
}

/// This authorization request as a local URL to come back to after a
/// detour (a second factor, the terms), without the fields of our own forms.
fn this_request(params: &Params) -> String {
    let kept = params
        .pairs()
        .iter()
        .filter(|(k, _)| !["csrf", "decision", "org"].contains(&k.as_str()))
        .cloned()
        .collect();
    format!("{}?{}", paths::AUTHORIZE, encode(&Params::from_pairs(kept)))
}

/// A refused authorization request: a page, or the error sent back to the
/// client.
fn rejected(config: &Config, r: Reject) -> Result<Response> {
    match r {
        Reject::Page(e) => Err(e),
        Reject::Redirect {
            redirect_uri,
            state,
            error,
            description,
        } => web::redirect(&authorize::redirect_url(
            &redirect_uri,
            &config.issuer,
            state.as_deref(),
            &[("error", error), ("error_description", &description)],
        )?),
    }
}

/// The organisation picker: a CSRF-protected form back to /authorize with
/// the request's parameters and the chosen context as `org`
/// ([`Context::value`]).
fn org_picker(
    auth: &Auth,
    req: &Request,
    ar: &AuthRequest,
    email: &str,
    params: &Params,
    contexts: &[Context],
) -> Result<Response> {
    let (token, set_cookie) = csrf::token(req.headers(), auth.policy()?.secure)?;
    let carried = params
        .pairs()
        .iter()
        .filter(|(k, _)| !["csrf", "decision", "org"].contains(&k.as_str()))
        .cloned()
        .collect();
    let options: Vec<OrgOption> = contexts
        .iter()
        .map(|c| {
            let (label, detail) = match c {
                Context::Member(o) => (o.name.clone(), o.slug.clone()),
                Context::Mandate(m) => (
                    match &m.agent {
                        Some(b) => format!("{} on behalf of {}", b.name, m.principal.name),
                        None => format!("On behalf of {}", m.principal.name),
                    },
                    format!("{}, by mandate", m.principal.slug),
                ),
                Context::Personal => ("Just me".into(), "for no organisation".into()),
            };
            OrgOption {
                value: c.value(),
                label,
                detail,
            }
        })
        .collect();
    let page = OrgPickerPage {
        product: auth.config.product_name()?,
        csrf: &token,
        client: &ar.client.name,
        email,
        orgs: options,
        params: carried,
    };
    let mut res = html::render(&page, StatusCode::OK)?;
    if let Some(c) = set_cookie {
        res.headers_mut().append(header::SET_COOKIE, c);
    }
    Ok(res)
}

fn consent_page(
    auth: &Auth,
    req: &Request,
    ar: &AuthRequest,
    email: &str,
    params: &Params,
) -> Result<Response> {
    let (token, set_cookie) = csrf::token(req.headers(), auth.policy()?.secure)?;
    let scopes = ar
        .scopes
        .iter()
        .map(|s| match s.as_str() {
            "openid" => "Know who you are (your account id)".to_owned(),
            "profile" => "See your profile: name and other details".to_owned(),
            "email" => "See your email address".to_owned(),
            "offline_access" => "Stay connected when you are not using it".to_owned(),
            "orgs" => "Manage your organisations for you".to_owned(),
            other => format!("Use the permission “{other}”"),
        })
        .collect();
    let carried = params
        .pairs()
        .iter()
        .filter(|(k, _)| k != "csrf" && k != "decision")
        .cloned()
        .collect();
    let page = ConsentPage {
        product: auth.config.product_name()?,
        csrf: &token,
        client: &ar.client.name,
        email,
        scopes,
        params: carried,
    };
    let mut res = html::render(&page, StatusCode::OK)?;
    if let Some(c) = set_cookie {
        res.headers_mut().append(header::SET_COOKIE, c);
    }
    Ok(res)
}

fn encode(params: &Params) -> String {
    params
        .pairs()
        .iter()
        .map(|(k, v)| format!("{}={}", web::pct(k), web::pct(v)))
        .collect::<Vec<_>>()
        .join("&")
}

// ------------------------------------------------------------------ token

fn oauth_form(req: &Request) -> Result<Params> {
    if req.method() != Method::POST {
        return Err(Error::MethodNotAllowed("POST"));
    }
    Params::from_form(req).map_err(|e| Error::oauth(OAuthCode::InvalidRequest, e.detail()))
}

fn token(env: &Env, req: &Request) -> Result<Response> {
    if req.method() == Method::OPTIONS {
        return cors::preflight(env, req);
    }
    let form = oauth_form(req)?;
    let config = Config::load(env.vars)?;
    prepare(env, &config)?;
    sweep::maybe(env)?;
    let client = clients::authenticate(env.sql, req.headers(), &form, &config.issuer, env.now)?;
    let request = TokenRequest::parse(&form)?;
    let response = grants::exchange(env, &config, &client, &request)?;
    let mut res = web::json(StatusCode::OK, &response);
    web::no_store(&mut res);
    cors::allow_registered(&mut res, req, &client.allowed_origins);
    Ok(res)
}

/// The `token` parameter of introspection and revocation.
fn token_param(form: &Params) -> Result<&str> {
    form.one("token")
        .map_err(|_| Error::oauth(OAuthCode::InvalidRequest, "`token` is repeated"))?
        .ok_or_else(|| Error::oauth(OAuthCode::InvalidRequest, "`token` is missing"))
}

// ------------------------------------------------------------------ userinfo

fn userinfo(env: &Env, req: &Request) -> Result<Response> {
    if req.method() == Method::OPTIONS {
        return cors::preflight(env, req);
    }
    if req.method() != Method::GET && req.method() != Method::POST {
        return Err(Error::MethodNotAllowed("GET, POST"));
    }
    let config = Config::load(env.vars)?;
    let token = bearer(req)?;
    let v = tokens::verify_access(env, &config, &token)?;
    let scopes: Vec<&str> = v.claims.scope.split_ascii_whitespace().collect();
    if !scopes.contains(&"openid") {
        return Err(Error::Forbidden(
            "The access token lacks the openid scope.".into(),
        ));
    }
    let who = crate::identity::by_id(env.sql, &v.sub)?
        .ok_or_else(|| Error::oauth(OAuthCode::InvalidToken, "The account no longer exists."))?;
    let mut body = grants::user_claims(&who, &scopes);
    body.extend(v.claims.context_members()?);
    let mut res = web::json(StatusCode::OK, &body);
    web::no_store(&mut res);
    if let Some(client) = clients::get(env.sql, &v.claims.client_id)? {
        cors::allow_registered(&mut res, req, &client.allowed_origins);
    }
    Ok(res)
}

fn bearer(req: &Request) -> Result<String> {
    let header_token = web::bearer_token(req.headers()).map(str::to_owned);
    // RFC 6750 §2.2: a form body may carry the token instead.
    let body_token = if req.method() == Method::POST && web::content_type_is(req, web::FORM) {
        Params::from_form(req)
            .and_then(|f| f.one("access_token").map(|t| t.map(str::to_owned)))
            .map_err(|e| Error::oauth(OAuthCode::InvalidRequest, e.detail()))?
    } else {
        None
    };
    match (header_token, body_token) {
        (Some(_), Some(_)) => Err(Error::oauth(
            OAuthCode::InvalidRequest,
            "Send the access token once.",
        )),
        (Some(t), None) | (None, Some(t)) => Ok(t),
        (None, None) => Err(Error::oauth(
            OAuthCode::InvalidToken,
            "An access token is required.",
        )),
    }
}

// ------------------------------------------------------------------ introspection and revocation

fn introspect(env: &Env, req: &Request) -> Result<Response> {
    let form = oauth_form(req)?;
    let config = Config::load(env.vars)?;
    let client = clients::authenticate(env.sql, req.headers(), &form, &config.issuer, env.now)?;
    let body = introspection::introspect(env, &config, &client, token_param(&form)?)?;
    let mut res = web::json(StatusCode::OK, &body);
    web::no_store(&mut res);
    Ok(res)
}

fn revoke(env: &Env, req: &Request) -> Result<Response> {
    let form = oauth_form(req)?;
    let config = Config::load(env.vars)?;
    let client = clients::authenticate(env.sql, req.headers(), &form, &config.issuer, env.now)?;
    introspection::revoke(env, &config, &client, token_param(&form)?)?;
    // RFC 7009 §2.2: the same answer for unknown and invalid tokens.
    let mut res = web::response(StatusCode::OK, "application/json", b"{}".to_vec());
    web::no_store(&mut res);
    Ok(res)
}

// ------------------------------------------------------------------ RP-initiated logout

fn logout(env: &Env, auth: &Auth, req: &Request) -> Result<Response> {
    let config = &auth.config;
    prepare(env, config)?;
    let (params, confirmed) = match *req.method() {
        Method::GET => (Params::from_query(req)?, false),
        Method::POST => {
            let form = Params::from_form(req)?;
            let confirmed = csrf::check(req.headers(), &form, auth.policy()?.secure).is_ok();
            (form, confirmed)
        }
        _ => return Err(Error::MethodNotAllowed("GET, POST")),
    };
    let hint = match params.one("id_token_hint")? {
        Some(t) => Some(tokens::verify_id_token_hint(env, config, t)?),
        None => None,
    };
    let client_id = match (params.one("client_id")?, &hint) {
        (Some(c), Some(h)) if c != h.aud => {
            return Err(Error::bad_request(
                "client_id does not match the id_token_hint.",
            ));
        }
        (Some(c), _) => Some(c.to_owned()),
        (None, Some(h)) => Some(h.aud.clone()),
        (None, None) => None,
    };
    let target = match params.one("post_logout_redirect_uri")? {
        None => None,
        Some(uri) => {
            let client = client_id
                .as_deref()
                .map(|id| clients::get(env.sql, id))
                .transpose()?
                .flatten()
                .ok_or_else(|| {
                    Error::bad_request(
                        "post_logout_redirect_uri needs an id_token_hint or client_id.",
                    )
                })?;
            if !client.post_logout_redirect_uris.iter().any(|u| u == uri) {
                return Err(Error::bad_request(
                    "This post_logout_redirect_uri is not registered for the application.",
                ));
            }
            Some(uri.to_owned())
        }
    };
    let current = accounts::current(env, auth, req.headers())?;
    // Without a valid hint for the signed-in person, ask first (a link alone
    // must not sign anyone out).
    let hinted = matches!((&hint, &current), (Some(h), Some((who, _))) if h.sub == who.id);
    if current.is_some() && !hinted && !confirmed {
        let (token, set_cookie) = csrf::token(req.headers(), auth.policy()?.secure)?;
        // The confirmation carries the application's request (checked
        // above), so that the person goes back to it afterwards.
        let mut carried = Vec::new();
        for name in ["client_id", "post_logout_redirect_uri", "state"] {
            let value = match name {
                "client_id" => client_id.clone(),
                _ => params.one(name)?.map(str::to_owned),
            };
            if let Some(v) = value {
                carried.push((name.to_owned(), v));
            }
        }
        let page = SignedOutPage {
            product: config.product_name()?,
            csrf: &token,
            heading: "Sign out?",
            text: "An application asked to sign you out.",
            confirm: true,
            carried,
            frames: Vec::new(),
            next: "",
        };
        let mut res = html::render(&page, StatusCode::OK)?;
        if let Some(c) = set_cookie {
            res.headers_mut().append(header::SET_COOKIE, c);
        }
        return Ok(res);
    }
    let (clear, signed_out) = session::sign_out(env, auth.policy()?, req.headers())?;
    let target = match target {
        Some(uri) => {
            let mut url = url::Url::parse(&uri)
                .map_err(|_| Error::bad_request("bad post_logout_redirect_uri"))?;
            if let Some(state) = params.one("state")? {
                url.query_pairs_mut().append_pair("state", state);
            }
            Some(String::from(url))
        }
        None => None,
    };
    // Front-channel logout: the applications' iframes load first, then the
    // browser goes on (static/js/signout.js).
    let mut res = match target {
        Some(uri) if signed_out.front.is_empty() => web::redirect(&uri)?,
        next => {
            let frames = signed_out.front.iter().map(|f| f.uri.clone()).collect();
            let page = SignedOutPage {
                product: config.product_name()?,
                csrf: "",
                heading: "Signed out",
                text: "You are signed out.",
                confirm: false,
                carried: Vec::new(),
                frames,
                next: next.as_deref().unwrap_or(""),
            };
            let mut res = html::render(&page, StatusCode::OK)?;
            if !signed_out.front.is_empty() {
                let csp = format!(
                    "{}; frame-src {}",
                    web::PAGE_CSP,
                    logout::frame_src(&signed_out.front)
                );
                res.headers_mut().insert(
                    header::CONTENT_SECURITY_POLICY,
                    http::HeaderValue::from_str(&csp)
                        .map_err(|_| Error::Internal("the logout page's CSP".into()))?,
                );
            }
            res
        }
    };
    res.headers_mut().append(header::SET_COOKIE, clear);
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::org_access::seed;
    use crate::testkit::{self, PKCE_CHALLENGE, PKCE_VERIFIER, World};

    const NOW: i64 = 1_700_000_000;
    const CB: &str = "https://shop.example/cb";

    /// A first-party b2b client `shop` with the role `buyer`, and a person
    /// who is a buyer in these organisations; returns her session cookie.
    fn world(slugs: &[&str]) -> (World, String) {
        let w = World::new();
        testkit::client(
            &w.sql,
            json!({
                "client_name": "Shop", "client_id": "shop", "redirect_uris": [CB],
                "first_party": true, "b2b": true, "roles": [{"name": "buyer"}]
            }),
            NOW,
        );
        let ada = testkit::person(&w.sql, "ada@example.com", NOW);
        for slug in slugs {
            let org = seed::org(&w.sql, slug, &slug.to_uppercase());
            seed::member(&w.sql, &org, &ada.id);
            seed::activate(&w.sql, &org, "shop");
            seed::role(&w.sql, &org, &ada.id, "shop", "", "buyer");
        }
        let policy = session::Policy::load(&w.vars).unwrap();
        let set = crate::testkit::signed_in(&w, &policy, &ada.id, ada.session_generation, NOW);
        let cookie = testkit::cookie_pair(&set);
        (w, cookie)
    }

    const PARAMS: [(&str, &str); 6] = [
        ("client_id", "shop"),
        ("redirect_uri", CB),
        ("response_type", "code"),
        ("scope", "openid offline_access"),
        ("code_challenge", PKCE_CHALLENGE),
        ("code_challenge_method", "S256"),
    ];

    fn query(extra: &[(&str, &str)]) -> String {
        let pairs: Vec<_> = PARAMS
            .iter()
            .chain(extra)
            .map(|(k, v)| format!("{k}={}", web::pct(v)))
            .collect();
        format!("/authorize?{}", pairs.join("&"))
    }

    fn text(res: &Response) -> String {
        String::from_utf8(res.body().clone()).unwrap()
    }

    fn location(res: &Response) -> url::Url {
        url::Url::parse(res.headers()[header::LOCATION].to_str().unwrap()).unwrap()
    }

    fn param(url: &url::Url, name: &str) -> Option<String> {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// The tokens for the code in a redirect to the client.
    fn tokens_for(w: &World, res: &Response) -> grants::TokenResponse {
        let code = param(&location(res), "code").expect("a code");
        let shop = clients::get(&w.sql, "shop").unwrap().unwrap();
        let req = TokenRequest::AuthorizationCode {
            code,
            redirect_uri: CB.into(),
            code_verifier: PKCE_VERIFIER.into(),
        };
        grants::exchange(&w.env(NOW), &Config::load(&w.vars).unwrap(), &shop, &req).unwrap()
    }

    /// A POST to /logout from the signed-in browser, confirmed with its
    /// CSRF token, for `client_id` with its post-logout URI.
    fn logout_from(w: &World, http: &testkit::Posts, cookie: &str, client: &str) -> Response {
        let (csrf, set) = csrf::token(&http::HeaderMap::new(), true).unwrap();
        let csrf_cookie = testkit::cookie_pair(&set.unwrap());
        handle(
            &w.env_with_http(NOW + 5, http),
            testkit::post("/logout")
                .header("cookie", &format!("{cookie}; {csrf_cookie}"))
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("client_id", client),
                    (
                        "post_logout_redirect_uri",
                        &format!("https://{client}.example/bye"),
                    ),
                    ("state", "s1"),
                ])
                .build(),
        )
    }

    fn logout_client(w: &World, id: &str, front: bool) {
        let mut meta = json!({
            "client_name": id, "client_id": id,
            "redirect_uris": [format!("https://{id}.example/cb")],
            "post_logout_redirect_uris": [format!("https://{id}.example/bye")],
            "backchannel_logout_uri": format!("https://{id}.example/bc"),
        });
        if front {
            meta["frontchannel_logout_uri"] = json!(format!("https://{id}.example/fc"));
        }
        testkit::client(&w.sql, meta, NOW);
    }

    /// The session's `sid`, after recording that `clients` got tokens in it.
    fn used_by(w: &World, cookie: &str, clients: &[&str]) -> String {
        let policy = session::Policy::load(&w.vars).unwrap();
        let mut h = http::HeaderMap::new();
        h.insert(header::COOKIE, cookie.parse().unwrap());
        let s = session::current(&w.env(NOW), &policy, &h).unwrap().unwrap();
        for c in clients {
            crate::store::session_clients::record(&w.sql, &s.sid, c, &s.sub, NOW).unwrap();
        }
        s.sid
    }

    #[test]
    fn logout_signs_the_session_out_of_its_applications_and_frames_the_front_channel_ones() {
        let (w, cookie) = world(&[]);
        logout_client(&w, "blog", true);
        logout_client(&w, "wiki", false);
        let sid = used_by(&w, &cookie, &["blog", "wiki"]);
        // Without an id_token_hint the person confirms first; the form
        // carries the application's request.
        let ask = handle(
            &w.env(NOW),
            testkit::get("/logout?client_id=blog&post_logout_redirect_uri=https%3A%2F%2Fblog.example%2Fbye&state=s1")
                .header("cookie", &cookie)
                .build(),
        );
        let form = text(&ask);
        for field in [
            r#"name="client_id" value="blog""#,
            r#"name="post_logout_redirect_uri" value="https://blog.example/bye""#,
            r#"name="state" value="s1""#,
        ] {
            assert!(form.contains(field), "{field}: {form}");
        }
        let rps = testkit::Posts::default();
        let res = logout_from(&w, &rps, &cookie, "blog");
        assert_eq!(res.status(), StatusCode::OK);
        let html = text(&res);
        let iss = web::pct(crate::testkit::ISSUER);
        assert!(
            html.contains(&format!(
                r#"<iframe class="frontchannel" src="https://blog.example/fc?iss={iss}&#38;sid={sid}""#
            )),
            "{html}"
        );
        assert!(!html.contains("wiki.example/fc"));
        assert!(
            html.contains(r#"id="signout-next" href="https://blog.example/bye?state=s1""#),
            "{html}"
        );
        assert!(html.contains(r#"<script src="/static/js/signout.js"></script>"#));
        let csp = res.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(csp.ends_with("; frame-src https://blog.example"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"));
        // Both got a logout token over the back channel.
        let posted: Vec<String> = rps.take().into_iter().map(|(u, _)| u).collect();
        assert_eq!(
            posted,
            ["https://blog.example/bc", "https://wiki.example/bc"]
        );
        // The cookie is cleared and the session is over.
        let cleared = res.headers().get_all(header::SET_COOKIE).iter().any(|v| {
            v.to_str().unwrap().starts_with(session::COOKIE)
                && v.to_str().unwrap().contains("Max-Age=0")
        });
        assert!(cleared);
        let again = logout_from(&w, &rps, &cookie, "blog");
        assert_eq!(
            again.status(),
            StatusCode::SEE_OTHER,
            "no session, nothing to frame"
        );
        assert!(rps.take().is_empty());
    }

    #[test]
    fn logout_without_front_channel_clients_redirects_at_once() {
        let (w, cookie) = world(&[]);
        logout_client(&w, "wiki", false);
        used_by(&w, &cookie, &["wiki"]);
        let rps = testkit::Posts::default();
        let res = logout_from(&w, &rps, &cookie, "wiki");
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&res).as_str(), "https://wiki.example/bye?state=s1");
        assert_eq!(rps.take().len(), 1);
    }

    #[test]
    fn the_picker_posts_the_chosen_organisation_back_with_the_request() {
        let (w, cookie) = world(&["acme", "globex"]);
        let page = handle(
            &w.env(NOW),
            testkit::get(&query(&[("state", "s1")]))
                .header("cookie", &cookie)
                .build(),
        );
        assert_eq!(page.status(), StatusCode::OK);
        let html = text(&page);
        assert!(html.contains("ACME") && html.contains("GLOBEX"), "{html}");
        assert!(html.contains(r#"name="org" value="org:org_globex""#));
        assert!(
            html.contains(r#"name="state" value="s1""#),
            "the request is carried"
        );
        let csrf_cookie = page.headers()[header::SET_COOKIE].to_str().unwrap();
        let csrf_cookie = csrf_cookie.split(';').next().unwrap().to_owned();
        let token = csrf_cookie.split_once('=').unwrap().1.to_owned();
        let cookies = format!("{cookie}; {csrf_cookie}");
        let mut form: Vec<(&str, &str)> = PARAMS.to_vec();
        form.extend([("state", "s1"), ("org", "org:org_globex")]);

        // Without the CSRF token, the choice is refused.
        let forged = handle(
            &w.env(NOW),
            testkit::post("/authorize")
                .header("cookie", &cookies)
                .form(&form)
                .build(),
        );
        assert_eq!(forged.status(), StatusCode::FORBIDDEN);

        form.push(("csrf", &token));
        let res = handle(
            &w.env(NOW),
            testkit::post("/authorize")
                .header("cookie", &cookies)
                .form(&form)
                .build(),
        );
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{}", text(&res));
        assert_eq!(param(&location(&res), "state").as_deref(), Some("s1"));
        let issued = tokens_for(&w, &res);
        let v = tokens::verify_access(
            &w.env(NOW),
            &Config::load(&w.vars).unwrap(),
            &issued.access_token,
        )
        .unwrap();
        assert_eq!(v.claims.org.unwrap().org_slug, "globex");

        // userinfo says the same.
        let info = handle(
            &w.env(NOW),
            testkit::get("/userinfo")
                .header("authorization", &format!("Bearer {}", issued.access_token))
                .build(),
        );
        let body: serde_json::Value = serde_json::from_slice(info.body()).unwrap();
        assert_eq!(
            (body["org_id"].as_str(), body["roles"].clone()),
            (Some("org_globex"), json!(["buyer"]))
        );
        assert_eq!(body["project_roles"], json!({}));

        // `organization` names one without the picker; prompt=none with a
        // choice to make is sent back.
        let res = handle(
            &w.env(NOW),
            testkit::get(&query(&[("organization", "acme")]))
                .header("cookie", &cookie)
                .build(),
        );
        assert_eq!(tokens_for(&w, &res).scope, "openid offline_access");
        let res = handle(
            &w.env(NOW),
            testkit::get(&query(&[("prompt", "none")]))
                .header("cookie", &cookie)
                .build(),
        );
        assert_eq!(
            param(&location(&res), "error").as_deref(),
            Some("account_selection_required")
        );
        let res = handle(
            &w.env(NOW),
            testkit::get(&query(&[("organization", "initech")]))
                .header("cookie", &cookie)
                .build(),
        );
        assert_eq!(
            param(&location(&res), "error").as_deref(),
            Some("access_denied")
        );
    }

    /// The picker page for `cookie`: its HTML, and the cookies and CSRF
    /// token to post it back with.
    fn picker_page(w: &World, cookie: &str) -> (String, String, String) {
        let page = handle(
            &w.env(NOW),
            testkit::get(&query(&[])).header("cookie", cookie).build(),
        );
        assert_eq!(page.status(), StatusCode::OK);
        let csrf_cookie = page.headers()[header::SET_COOKIE].to_str().unwrap();
        let csrf_cookie = csrf_cookie.split(';').next().unwrap().to_owned();
        let token = csrf_cookie.split_once('=').unwrap().1.to_owned();
        (text(&page), format!("{cookie}; {csrf_cookie}"), token)
    }

    /// Posts the picker's answer.
    fn pick(w: &World, cookies: &str, csrf: &str, value: &str) -> Response {
        let mut form: Vec<(&str, &str)> = PARAMS.to_vec();
        form.extend([("org", value), ("csrf", csrf)]);
        handle(
            &w.env(NOW),
            testkit::post("/authorize")
                .header("cookie", cookies)
                .form(&form)
                .build(),
        )
    }

    #[test]
    fn the_picker_offers_mandates_and_just_me_and_the_tokens_say_who_acts() {
        use crate::store::org_access::seed::{Agent, Mandate, delegate, mandate};
        let (w, cookie) = world(&["acme"]);
        let ada = crate::identity::by_email(&w.sql, "ada@example.com")
            .unwrap()
            .unwrap()
            .id;
        let globex = seed::org(&w.sql, "globex", "Globex");
        seed::activate(&w.sql, &globex, "shop");
        seed::project(&w.sql, "prj_g", &globex, "shop");
        let ledger = seed::org(&w.sql, "ledger", "Ledger & Co");
        seed::member(&w.sql, &ledger, &ada);
        let m = Mandate {
            id: "mnd_g",
            principal: &globex,
            agent: Agent::Org(&ledger),
            client_id: "shop",
            project_id: "prj_g",
            roles: &["buyer"],
            not_before: NOW - 10,
            expires_at: NOW + 600,
            all_members: false,
        };
        mandate(&w.sql, &m);
        delegate(&w.sql, "mnd_g", &ada);
        seed::set(&w.sql, "clients", "personal_use", "1", &[("id", "shop")]);

        let (html, cookies, csrf) = picker_page(&w, &cookie);
        assert!(html.contains("Which organisation?"), "{html}");
        for (value, label) in [
            ("org:org_acme", ">ACME</button>"),
            (
                "mandate:mnd_g",
                ">Ledger &#38; Co on behalf of Globex</button>",
            ),
            ("personal", ">Just me</button>"),
        ] {
            assert!(
                html.contains(&format!(r#"name="org" value="{value}""#)),
                "{value}: {html}"
            );
            assert!(html.contains(label), "{label}: {html}");
        }

        // Through the mandate: Globex, the actor and the mandate, its roles on
        // its project; the access token lives no longer than the mandate.
        let res = pick(&w, &cookies, &csrf, "mandate:mnd_g");
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{}", text(&res));
        let issued = tokens_for(&w, &res);
        let config = Config::load(&w.vars).unwrap();
        let v = tokens::verify_access(&w.env(NOW), &config, &issued.access_token).unwrap();
        assert_eq!(v.claims.org.as_ref().unwrap().org_slug, "globex");
        assert_eq!(
            v.claims.act,
            Some(tokens::Actor {
                sub: ada.clone(),
                org_id: Some(ledger.clone())
            })
        );
        assert_eq!(
            v.claims.mandate,
            Some(tokens::MandateClaims {
                id: "mnd_g".into(),
                expires_at: NOW + 600
            })
        );
        let info = handle(
            &w.env(NOW),
            testkit::get("/userinfo")
                .header("authorization", &format!("Bearer {}", issued.access_token))
                .build(),
        );
        let body: serde_json::Value = serde_json::from_slice(info.body()).unwrap();
        assert_eq!(body["sub"], ada.as_str());
        assert_eq!(body["org_id"], "org_globex");
        assert_eq!(body["act"], json!({"sub": ada, "org_id": "org_ledger"}));
        assert_eq!(
            body["mandate"],
            json!({"id": "mnd_g", "expires_at": NOW + 600})
        );
        assert_eq!(
            (body["roles"].clone(), body["project_roles"].clone()),
            (json!([]), json!({"prj_g": ["buyer"]}))
        );

        // Just me: no organisation at all.
        let issued = tokens_for(&w, &pick(&w, &cookies, &csrf, "personal"));
        let v = tokens::verify_access(&w.env(NOW), &config, &issued.access_token).unwrap();
        assert_eq!(
            (v.claims.org, v.claims.act, v.claims.mandate),
            (None, None, None)
        );
        let id = tokens::unverified_payload(&issued.id_token.unwrap()).unwrap();
        assert!(id.get("org_id").is_none() && id.get("act").is_none());

        // A bare organisation id, as the picker sent before mandates.
        let issued = tokens_for(&w, &pick(&w, &cookies, &csrf, "org_acme"));
        let v = tokens::verify_access(&w.env(NOW), &config, &issued.access_token).unwrap();
        assert_eq!(v.claims.org.unwrap().org_slug, "acme");
        assert_eq!((v.claims.act, v.claims.mandate), (None, None));

        // A mandate not hers is refused.
        let res = pick(&w, &cookies, &csrf, "mandate:mnd_other");
        assert_eq!(
            param(&location(&res), "error").as_deref(),
            Some("access_denied")
        );
    }

    #[test]
    fn a_person_without_an_organisation_is_told_why() {
        let (w, cookie) = world(&[]);
        let res = handle(
            &w.env(NOW),
            testkit::get(&query(&[])).header("cookie", &cookie).build(),
        );
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        let html = text(&res);
        assert!(html.contains("admin") && html.contains("Shop"), "{html}");
        // One organisation: no page at all.
        let (w, cookie) = world(&["acme"]);
        let res = handle(
            &w.env(NOW),
            testkit::get(&query(&[])).header("cookie", &cookie).build(),
        );
        assert!(param(&location(&res), "code").is_some());
    }

    #[test]
    fn select_account_survives_the_login() {
        let (w, _) = world(&["acme"]);
        let res = handle(
            &w.env(NOW),
            testkit::get(&query(&[("prompt", "select_account login")])).build(),
        );
        let to = res.headers()[header::LOCATION].to_str().unwrap().to_owned();
        let back = url::Url::parse(&format!("{}{to}", testkit::ISSUER)).unwrap();
        let back = param(&back, "return_to").unwrap();
        assert!(
            back.contains("prompt=select_account") && !back.contains("login"),
            "{back}"
        );
    }

    #[test]
    fn discovery_lists_select_account_and_the_organisation_claims() {
        let w = World::new();
        let res = handle(&w.env(NOW), testkit::get(paths::DISCOVERY).build());
        let doc: serde_json::Value = serde_json::from_slice(res.body()).unwrap();
        assert_eq!(
            doc["prompt_values_supported"],
            json!(["none", "login", "consent", "select_account"])
        );
        for claim in [
            "org_id",
            "org_slug",
            "org_name",
            "roles",
            "project_roles",
            "act",
            "mandate",
        ] {
            assert!(
                doc["claims_supported"]
                    .as_array()
                    .unwrap()
                    .contains(&json!(claim)),
                "{claim}"
            );
        }
    }
}
