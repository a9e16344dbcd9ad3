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
use crate::html::{self, ConsentPage, SignedOutPage};
use crate::oidc::authorize::{self, AuthRequest, Reject, Subject};
use crate::oidc::clients;
use crate::oidc::discovery::{self, paths};
use crate::oidc::grants::{self, TokenRequest};
use crate::oidc::{introspection, keys, tokens};
use crate::web::{self, Params, Request, Response};
use crate::{Env, csrf, session, sweep};

/// Metadata and keys may be cached this long by clients and CDNs. Short, so
/// that a key published as `next` reaches verifiers well before it signs.
const METADATA_MAX_AGE: u32 = 300;

/// Routes a request to the token component.
pub fn handle(env: &Env, req: Request) -> Response {
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
        _ => (Style::Api, Err(Error::NotFound)),
    };
    result.unwrap_or_else(|e| e.into_response(style))
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
    if config.dev_mode {
        clients::seed_demo_client(env.sql, &config.issuer, env.now)?;
    }
    Ok(())
}

// ------------------------------------------------------------------ authorize

fn authorize(env: &Env, auth: &Auth, req: &Request) -> Result<Response> {
    let config = &auth.config;
    prepare(env, config)?;
    let (mut params, decision) = match *req.method() {
        Method::GET => (Params::from_query(req)?, None),
        Method::POST => {
            let form = Params::from_form(req)?;
            csrf::check(req.headers(), &form, auth.policy.secure)?;
            let decision = form.one("decision")?.map(str::to_owned);
            (form, decision)
        }
        _ => return Err(Error::MethodNotAllowed("GET, POST")),
    };
    let ar = match authorize::parse(env.sql, &params) {
        Ok(ar) => ar,
        Err(Reject::Page(e)) => return Err(e),
        Err(Reject::Redirect {
            redirect_uri,
            state,
            error,
            description,
        }) => {
            return web::redirect(&authorize::redirect_url(
                &redirect_uri,
                &config.issuer,
                state.as_deref(),
                &[("error", error), ("error_description", &description)],
            )?);
        }
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
        // Back here after signing in, without the parameters that asked for it.
        params = Params::from_pairs(
            params
                .pairs()
                .iter()
                .filter(|(k, _)| !["prompt", "max_age", "csrf", "decision"].contains(&k.as_str()))
                .cloned()
                .collect(),
        );
        let back = format!("{}?{}", paths::AUTHORIZE, encode(&params));
        let mut to = format!("/login?return_to={}", web::pct(&back));
        if let Some(hint) = &ar.login_hint {
            to.push_str(&format!("&login_hint={}", web::pct(hint)));
        }
        return web::redirect(&to);
    };

    let consented = authorize::has_consent(env.sql, &who.id, &ar)?
        && !(ar.prompts("consent") && decision.is_none());
    if !consented {
        match decision.as_deref() {
            Some("allow") => authorize::grant_consent(env.sql, &who.id, &ar, env.now)?,
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
        },
        env.now,
    )?;
    web::redirect(&authorize::redirect_url(
        &ar.redirect_uri,
        &config.issuer,
        ar.state.as_deref(),
        &[("code", &code)],
    )?)
}

fn consent_page(
    auth: &Auth,
    req: &Request,
    ar: &AuthRequest,
    email: &str,
    params: &Params,
) -> Result<Response> {
    let (token, set_cookie) = csrf::token(req.headers(), auth.policy.secure)?;
    let scopes = ar
        .scopes
        .iter()
        .map(|s| match s.as_str() {
            "openid" => "Know who you are (your account id)".to_owned(),
            "profile" => "See your profile: name and other details".to_owned(),
            "email" => "See your email address".to_owned(),
            "offline_access" => "Stay connected when you are not using it".to_owned(),
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
        product: &auth.config.product_name,
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
    let mut res = web::json(StatusCode::OK, &grants::user_claims(&who, &scopes));
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
            let confirmed = csrf::check(req.headers(), &form, auth.policy.secure).is_ok();
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
        let (token, set_cookie) = csrf::token(req.headers(), auth.policy.secure)?;
        let page = SignedOutPage {
            product: &config.product_name,
            csrf: &token,
            heading: "Sign out?",
            text: "An application asked to sign you out.",
            confirm: true,
        };
        let mut res = html::render(&page, StatusCode::OK)?;
        if let Some(c) = set_cookie {
            res.headers_mut().append(header::SET_COOKIE, c);
        }
        return Ok(res);
    }
    let clear = session::end(env.kv, &auth.policy, req.headers())?;
    let mut res = match target {
        Some(uri) => {
            let mut url = url::Url::parse(&uri)
                .map_err(|_| Error::bad_request("bad post_logout_redirect_uri"))?;
            if let Some(state) = params.one("state")? {
                url.query_pairs_mut().append_pair("state", state);
            }
            web::redirect(url.as_str())?
        }
        None => {
            let page = SignedOutPage {
                product: &config.product_name,
                csrf: "",
                heading: "Signed out",
                text: "You are signed out.",
                confirm: false,
            };
            html::render(&page, StatusCode::OK)?
        }
    };
    res.headers_mut().append(header::SET_COOKIE, clear);
    Ok(res)
}
