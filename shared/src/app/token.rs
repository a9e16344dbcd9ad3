//! The token component: the OpenID Connect provider's endpoints (discovery,
//! JWKS, authorize, token, userinfo, introspection, revocation, logout) and
//! the client admin API.

use http::{HeaderValue, Method, StatusCode, header};
use serde_json::json;

use super::get_only;
use crate::accounts::{self, Auth};
use crate::config::{self, Config};
use crate::error::{Error, OAuthCode, Result, Style};
use crate::html::{self, ConsentPage, SignedOutPage};
use crate::oidc::authorize::{self, AuthRequest, Reject, Subject};
use crate::oidc::clients::{self, ClientSpec};
use crate::oidc::discovery::{self, paths};
use crate::oidc::{grants, keys, tokens};
use crate::throttle::{self, Limits};
use crate::web::{self, Params, Request, Response};
use crate::{Env, client_addr, crypto, csrf, schema, session, sweep};

/// Metadata and keys may be cached this long by clients and CDNs. Short, so
/// that a key published as `next` reaches verifiers well before it signs.
const METADATA_MAX_AGE: u32 = 300;

/// The prefix of the client admin API.
const ADMIN: &str = "/api/admin/clients";
/// The admin endpoint a cron job calls to delete expired rows.
const SWEEP: &str = "/api/admin/sweep";
/// Rows per table one call of the sweep endpoint deletes at most.
const SWEEP_ROWS: i64 = 1000;

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
        paths::USERINFO => return userinfo(env, &req),
        paths::INTROSPECT => (Style::OAuth, introspect(env, &req)),
        paths::REVOKE => (Style::OAuth, revoke(env, &req)),
        paths::LOGOUT => (Style::Page, with_auth(env, |auth| logout(env, auth, &req))),
        p if p == ADMIN || p.starts_with("/api/admin/clients/") || p == SWEEP => {
            (Style::Api, admin(env, &req))
        }
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
    res.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    res
}

/// Schema check, and in `dev_mode` the documented demo client.
fn prepare(env: &Env, config: &Config) -> Result<()> {
    schema::ensure(env.sql)?;
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
        return preflight(env, req);
    }
    let form = oauth_form(req)?;
    let config = Config::load(env.vars)?;
    prepare(env, &config)?;
    sweep::maybe(env)?;
    let client = clients::authenticate(env.sql, req.headers(), &form, &config.issuer, env.now)?;
    let grant_type = form
        .one("grant_type")
        .map_err(|_| Error::oauth(OAuthCode::InvalidRequest, "`grant_type` is repeated"))?
        .ok_or_else(|| Error::oauth(OAuthCode::InvalidRequest, "`grant_type` is missing"))?;
    let response = match grant_type {
        "authorization_code" => grants::authorization_code(env, &config, &client, &form)?,
        "refresh_token" => grants::refresh_token(env, &config, &client, &form)?,
        "client_credentials" => grants::client_credentials(env, &config, &client, &form)?,
        _ => {
            return Err(Error::oauth(
                OAuthCode::UnsupportedGrantType,
                "grant_type is not supported",
            ));
        }
    };
    let mut res = web::json(StatusCode::OK, &response);
    web::no_store(&mut res);
    cors(&mut res, req, &client.allowed_origins);
    Ok(res)
}

/// Lets a browser app read the response when its origin is registered.
fn cors(res: &mut Response, req: &Request, allowed: &[String]) {
    let Some(origin) = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
    else {
        return;
    };
    if allowed.iter().any(|a| a == origin)
        && let Ok(v) = HeaderValue::from_str(origin)
    {
        res.headers_mut()
            .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        res.headers_mut()
            .append(header::VARY, HeaderValue::from_static("Origin"));
    }
}

fn preflight(env: &Env, req: &Request) -> Result<Response> {
    schema::ensure(env.sql)?;
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .unwrap_or("");
    let mut res = web::response(StatusCode::NO_CONTENT, "text/plain", Vec::new());
    if !origin.is_empty() && clients::origin_allowed(env.sql, origin)? {
        let h = res.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_str(origin).map_err(|_| Error::bad_request("bad origin"))?,
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        h.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    Ok(res)
}

// ------------------------------------------------------------------ userinfo

fn userinfo(env: &Env, req: &Request) -> Response {
    let result = userinfo_inner(env, req);
    result.unwrap_or_else(|e| {
        let (code, status) = match &e {
            Error::OAuth {
                code: OAuthCode::InvalidToken,
                ..
            } => ("invalid_token", StatusCode::UNAUTHORIZED),
            Error::Forbidden(_) => ("insufficient_scope", StatusCode::FORBIDDEN),
            Error::OAuth { .. } | Error::BadRequest(_) => {
                ("invalid_request", StatusCode::BAD_REQUEST)
            }
            _ => return e.into_response(Style::OAuth),
        };
        let mut res = e.into_response(Style::OAuth);
        *res.status_mut() = status;
        if let Ok(v) = HeaderValue::from_str(&format!("Bearer error=\"{code}\"")) {
            res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        res
    })
}

fn bearer(req: &Request) -> Result<String> {
    let header_token = web::bearer_token(req.headers()).map(str::to_owned);
    let body_token = if req.method() == Method::POST && !req.body().is_empty() {
        Params::from_form(req)
            .ok()
            .and_then(|f| f.one("access_token").ok().flatten().map(str::to_owned))
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

fn userinfo_inner(env: &Env, req: &Request) -> Result<Response> {
    if req.method() == Method::OPTIONS {
        return preflight(env, req);
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
        cors(&mut res, req, &client.allowed_origins);
    }
    Ok(res)
}

// ------------------------------------------------------------------ introspection and revocation

fn introspect(env: &Env, req: &Request) -> Result<Response> {
    let form = oauth_form(req)?;
    let config = Config::load(env.vars)?;
    schema::ensure(env.sql)?;
    let client = clients::authenticate(env.sql, req.headers(), &form, &config.issuer, env.now)?;
    if !client.confidential {
        return Err(Error::oauth(
            OAuthCode::InvalidClient,
            "Introspection needs a confidential client.",
        ));
    }
    let token = form
        .one("token")
        .map_err(|_| Error::oauth(OAuthCode::InvalidRequest, "`token` is repeated"))?
        .ok_or_else(|| Error::oauth(OAuthCode::InvalidRequest, "`token` is missing"))?;
    let mut body = json!({ "active": false });
    // RFC 7662 §2.2 leaves it to policy who may learn about a token: here,
    // the client it was issued to and the resource servers registered for
    // that client. Anyone else hears `active: false`, as for a bad token.
    let entitled = |issued_to: &str| {
        issued_to == client.id || client.resource_server_for.iter().any(|c| c == issued_to)
    };
    if let Ok(v) = tokens::verify_access(env, &config, token)
        && entitled(&v.claims.client_id)
    {
        body = json!({
            "active": true, "token_type": "Bearer", "scope": v.claims.scope, "client_id": v.claims.client_id,
            "sub": v.sub, "aud": v.aud, "iss": config.issuer, "exp": v.exp, "iat": v.iat, "jti": v.jti,
        });
    } else if token.len() == 43 {
        let rows = env.sql.execute(
            "SELECT client_id, identity_id, scope, last_used_at, created_at FROM refresh_families \
             WHERE current_hash = ? AND revoked_at IS NULL AND client_id = ?",
            &[crypto::hash_secret(token).into(), client.id.clone().into()],
        )?;
        if let Some(r) = rows.first() {
            let exp = (r.int(3)? + client.refresh_idle_ttl).min(r.int(4)? + client.refresh_max_ttl);
            if exp > env.now {
                body = json!({
                    "active": true, "token_type": "refresh_token", "scope": r.text(2)?, "client_id": r.text(0)?,
                    "sub": r.text(1)?, "iss": config.issuer, "exp": exp,
                });
            }
        }
    }
    let mut res = web::json(StatusCode::OK, &body);
    web::no_store(&mut res);
    Ok(res)
}

fn revoke(env: &Env, req: &Request) -> Result<Response> {
    let form = oauth_form(req)?;
    let config = Config::load(env.vars)?;
    schema::ensure(env.sql)?;
    let client = clients::authenticate(env.sql, req.headers(), &form, &config.issuer, env.now)?;
    let token = form
        .one("token")
        .map_err(|_| Error::oauth(OAuthCode::InvalidRequest, "`token` is repeated"))?
        .ok_or_else(|| Error::oauth(OAuthCode::InvalidRequest, "`token` is missing"))?;
    let revoked = env.sql.execute(
        "UPDATE refresh_families SET revoked_at = ? WHERE current_hash = ? AND client_id = ? AND revoked_at IS NULL RETURNING id",
        &[env.now.into(), crypto::hash_secret(token).into(), client.id.clone().into()],
    )?;
    if revoked.is_empty()
        && let Ok(v) = tokens::verify_access(env, &config, token)
        && v.claims.client_id == client.id
    {
        tokens::revoke_access(env, &v.jti, v.exp)?;
    }
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

// ------------------------------------------------------------------ admin API

/// Outside `dev_mode`, a client may ask for RS256 ID tokens only once the
/// operator has given Lanyard an RSA key: told at registration, not at the
/// client's first login.
fn rs256_ready(env: &Env) -> Result<()> {
    if Config::load(env.vars)?.dev_mode
        || config::optional(env.vars, "signing_key_rs256")?.is_some()
    {
        return Ok(());
    }
    Err(Error::bad_request(
        "`id_token_signed_response_alg` RS256 needs an RSA key: set the signing_key_rs256 variable first.",
    ))
}

/// The shortest admin token accepted: a guessable one would open every client.
const ADMIN_TOKEN_MIN: usize = 32;

fn admin(env: &Env, req: &Request) -> Result<Response> {
    let expected = config::optional(env.vars, "admin_token")?.ok_or_else(|| {
        Error::Forbidden("The admin API is off: set the admin_token variable to use it.".into())
    })?;
    if expected.chars().count() < ADMIN_TOKEN_MIN {
        return Err(Error::config(
            "admin_token",
            format!(
                "use at least {ADMIN_TOKEN_MIN} random characters (openssl rand -base64 32 makes one)"
            ),
        ));
    }
    schema::ensure(env.sql)?;
    // Each attempt is counted before the comparison and given back when it
    // succeeds, so only failures add up, per client address.
    let limits = Limits::load(env.vars)?;
    let attempts = throttle::address_key("admin", &client_addr::of(env.vars, req.headers())?);
    throttle::reserve(env.sql, &attempts, &limits.address, env.now)?;
    let presented = web::bearer_token(req.headers()).unwrap_or("");
    if !crypto::ct_eq(
        crypto::sha256(presented.as_bytes()).as_slice(),
        crypto::sha256(expected.as_bytes()).as_slice(),
    ) {
        let mut res = Error::Unauthorized("A valid admin token is required.".into())
            .into_response(Style::Api);
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"lanyard-admin\""),
        );
        return Ok(res);
    }
    throttle::refund(env.sql, &attempts)?;
    if req.uri().path() == SWEEP {
        if req.method() != Method::POST {
            return Err(Error::MethodNotAllowed("POST"));
        }
        return Ok(web::json(
            StatusCode::OK,
            &sweep::run(env.sql, env.now, SWEEP_ROWS)?,
        ));
    }
    let id = req
        .uri()
        .path()
        .strip_prefix(ADMIN)
        .unwrap_or("")
        .trim_start_matches('/');
    let spec = || -> Result<ClientSpec> {
        let spec: ClientSpec = serde_json::from_slice(req.body())
            .map_err(|e| Error::bad_request(format!("Invalid client: {e}")))?;
        if spec.id_token_signed_response_alg.as_deref() == Some("RS256") {
            rs256_ready(env)?;
        }
        Ok(spec)
    };
    let now = env.now;
    match (req.method().clone(), id.is_empty()) {
        (Method::GET, true) => Ok(web::json(
            StatusCode::OK,
            &json!({ "clients": clients::list(env.sql)? }),
        )),
        (Method::POST, true) => {
            let (client, secret) = clients::create(env.sql, &spec()?, now)?;
            // RFC 7591 §3.2.1: the client's metadata, with its secret (shown
            // once) and the secret's expiry (0: never).
            let mut body = serde_json::to_value(&client)
                .map_err(|e| Error::Internal(format!("client JSON: {e}")))?;
            if let (Some(secret), Some(fields)) = (secret, body.as_object_mut()) {
                fields.insert("client_secret".into(), secret.into());
                fields.insert("client_secret_expires_at".into(), 0.into());
            }
            let mut res = web::json(StatusCode::CREATED, &body);
            web::no_store(&mut res);
            Ok(res)
        }
        (Method::GET, false) => Ok(web::json(
            StatusCode::OK,
            &clients::get(env.sql, id)?.ok_or(Error::NotFound)?,
        )),
        (Method::PUT, false) => Ok(web::json(
            StatusCode::OK,
            &clients::update(env.sql, id, &spec()?, now)?,
        )),
        (Method::DELETE, false) => {
            clients::delete(env.sql, id)?;
            Ok(web::response(
                StatusCode::NO_CONTENT,
                "application/json",
                Vec::new(),
            ))
        }
        (_, true) => Err(Error::MethodNotAllowed("GET, POST")),
        (_, false) => Err(Error::MethodNotAllowed("GET, PUT, DELETE")),
    }
}
