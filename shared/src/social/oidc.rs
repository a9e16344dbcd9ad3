//! The generic OpenID provider (and Google, which is one): discovery of the
//! issuer, the authorization code exchange at its token endpoint (PKCE,
//! the client secret by `client_secret_basic` or `client_secret_post`), and
//! the ID token's verification against its JWKS.
//!
//! Discovery and the JWKS are cached in key-value per their
//! `Cache-Control: max-age`, clamped to [`MIN_CACHE`]..[`MAX_CACHE`]; an ID
//! token signed with a `kid` the cached JWKS lacks refetches it once.

use http::header;
use jwt_simple::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use super::providers::{Callback, Pending};
use super::{Connection, Kind, Upstream, garbage, json_object, send};
use crate::Env;
use crate::crypto;
use crate::error::{Error, Result};
use crate::store::kv;

/// The shortest time discovery or a JWKS is cached.
pub const MIN_CACHE: i64 = 60;
/// The longest time discovery or a JWKS is cached.
pub const MAX_CACHE: i64 = 86_400;
/// How long discovery or a JWKS is cached when the provider does not say.
const DEFAULT_CACHE: i64 = 3600;
/// The clock skew allowed on `exp`.
pub const LEEWAY: i64 = 60;
/// How far `iat` may be from now, either way.
pub const MAX_IAT_SKEW: i64 = 600;

/// What Lanyard uses of a provider's discovery document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discovery {
    /// The issuer, equal to the connection's.
    pub issuer: String,
    /// Where the browser goes.
    pub authorization_endpoint: String,
    /// Where the code is exchanged.
    pub token_endpoint: String,
    /// The signing keys.
    pub jwks_uri: String,
    /// How the client authenticates at the token endpoint.
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Vec<String>,
}

/// The seconds an answer may be cached, from its `Cache-Control`.
pub fn cache_seconds(res: &http::Response<Vec<u8>>) -> i64 {
    let Some(cc) = res
        .headers()
        .get(header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
    else {
        return DEFAULT_CACHE;
    };
    let mut age = DEFAULT_CACHE;
    for d in cc.split(',').map(str::trim) {
        let lower = d.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            age = 0;
        } else if let Some(v) = lower.strip_prefix("max-age=") {
            age = v.trim_matches('"').parse().unwrap_or(0);
        }
    }
    age.clamp(MIN_CACHE, MAX_CACHE)
}

fn get(url: &str) -> Result<http::Request<Vec<u8>>> {
    http::Request::get(url)
        .header(header::ACCEPT, "application/json")
        .body(Vec::new())
        .map_err(|e| Error::Internal(format!("upstream request: {e}")))
}

/// A URL the provider gives for an endpoint: https, or http when the
/// issuer itself is http (development).
fn endpoint(conn: &Connection, issuer: &str, value: Option<&Json>, name: &str) -> Result<String> {
    let text = value.and_then(Json::as_str).unwrap_or("");
    let ok = url::Url::parse(text).is_ok_and(|u| {
        u.scheme() == "https" || (u.scheme() == "http" && issuer.starts_with("http://"))
    });
    if !ok {
        return Err(garbage(
            conn,
            &format!("a discovery document without a usable {name}"),
        ));
    }
    Ok(text.to_owned())
}

/// The discovery document of `issuer`, from the cache or the provider
/// (`<issuer>/.well-known/openid-configuration`), whose `issuer` must be
/// exactly `issuer`.
pub fn discover(env: &Env, conn: &Connection, issuer: &str) -> Result<Discovery> {
    let key = format!("social:discovery:{}", crypto::hash_secret(issuer));
    if let Some(d) = kv::get_json::<Discovery>(env.kv, &key, env.now)? {
        return Ok(d);
    }
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let res = send(env, conn, get(&url)?)?;
    let doc = json_object(conn, &res, "discovery document")?;
    let stated = doc.get("issuer").and_then(Json::as_str).unwrap_or("");
    if stated != issuer {
        return Err(Error::Upstream(format!(
            "{} says its issuer is `{stated}`, not `{issuer}`: check the connection's issuer.",
            conn.name
        )));
    }
    let d = Discovery {
        issuer: issuer.to_owned(),
        authorization_endpoint: endpoint(
            conn,
            issuer,
            doc.get("authorization_endpoint"),
            "authorization_endpoint",
        )?,
        token_endpoint: endpoint(conn, issuer, doc.get("token_endpoint"), "token_endpoint")?,
        jwks_uri: endpoint(conn, issuer, doc.get("jwks_uri"), "jwks_uri")?,
        token_endpoint_auth_methods_supported: doc
            .get("token_endpoint_auth_methods_supported")
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default(),
    };
    kv::put_json(env.kv, &key, &d, env.now + cache_seconds(&res))?;
    Ok(d)
}

/// The connection's issuer, which every OpenID kind has.
pub fn issuer_of(conn: &Connection) -> Result<&str> {
    conn.issuer
        .as_deref()
        .ok_or_else(|| Error::Internal(format!("the connection `{}` has no issuer", conn.id)))
}

/// The provider's authorization URL for this sign-in.
pub fn authorize_url(
    env: &Env,
    conn: &Connection,
    state: &str,
    nonce: &str,
    code_challenge: &str,
    redirect_uri: &str,
) -> Result<String> {
    let d = discover(env, conn, issuer_of(conn)?)?;
    authorization_request(&d, conn, state, nonce, code_challenge, redirect_uri, &[])
}

/// The authorization request at `d`'s endpoint, with `extra` parameters
/// (such as Apple's `response_mode`).
pub fn authorization_request(
    d: &Discovery,
    conn: &Connection,
    state: &str,
    nonce: &str,
    code_challenge: &str,
    redirect_uri: &str,
    extra: &[(&str, &str)],
) -> Result<String> {
    let mut url = url::Url::parse(&d.authorization_endpoint)
        .map_err(|_| garbage(conn, "an authorization endpoint that is not a URL"))?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", &conn.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", &conn.scopes.join(" "))
            .append_pair("state", state)
            .append_pair("nonce", nonce)
            .append_pair("code_challenge", code_challenge)
            .append_pair("code_challenge_method", "S256");
        for (k, v) in extra {
            q.append_pair(k, v);
        }
    }
    Ok(url.into())
}

/// Exchanges the code with the connection's secret and returns the ID
/// token of the answer, unverified yet.
pub fn id_token_for_code(
    env: &Env,
    conn: &Connection,
    d: &Discovery,
    code: &str,
    pending: &Pending,
    redirect_uri: &str,
) -> Result<String> {
    let secret = super::secret(env, conn)?;
    let tokens = exchange_code(
        env,
        conn,
        d,
        code,
        &pending.code_verifier,
        redirect_uri,
        &secret,
    )?;
    tokens
        .get("id_token")
        .and_then(Json::as_str)
        .map(str::to_owned)
        .ok_or_else(|| garbage(conn, "a token response without an ID token"))
}

/// Exchanges the code at the token endpoint (with the PKCE verifier and
/// the client secret) and returns the token response.
pub fn exchange_code(
    env: &Env,
    conn: &Connection,
    d: &Discovery,
    code: &str,
    code_verifier: &str,
    redirect_uri: &str,
    client_secret: &str,
) -> Result<Map<String, Json>> {
    // client_secret_basic is the default (OpenID Connect Discovery §3);
    // client_secret_post only when the provider lists it and not basic.
    let methods = &d.token_endpoint_auth_methods_supported;
    let basic = methods.is_empty() || methods.iter().any(|m| m == "client_secret_basic");
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", "authorization_code")
        .append_pair("code", code)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("code_verifier", code_verifier);
    if !basic {
        form.append_pair("client_id", &conn.client_id)
            .append_pair("client_secret", client_secret);
    }
    let mut req = http::Request::post(&d.token_endpoint)
        .header(header::CONTENT_TYPE, crate::web::FORM)
        .header(header::ACCEPT, "application/json");
    if basic {
        // RFC 6749 §2.3.1: both form-encoded before the Basic encoding.
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let pair = format!("{}:{}", enc(&conn.client_id), enc(client_secret));
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(pair);
        req = req.header(header::AUTHORIZATION, format!("Basic {b64}"));
    }
    let req = req
        .body(form.finish().into_bytes())
        .map_err(|e| Error::Internal(format!("token request: {e}")))?;
    let res = send(env, conn, req)?;
    if res.status().is_client_error() {
        let body: Json = serde_json::from_slice(res.body()).unwrap_or_default();
        let code = body["error"].as_str().unwrap_or("an error");
        let desc = body["error_description"]
            .as_str()
            .map(|d| format!(": {d}"))
            .unwrap_or_default();
        return Err(Error::Upstream(format!(
            "{} refused to finish the sign-in ({code}{desc}). Please start again.",
            conn.name
        )));
    }
    json_object(conn, &res, "token response")
}

/// Exchanges the callback's code and verifies the ID token.
pub fn finish(
    env: &Env,
    conn: &Connection,
    cb: &Callback,
    pending: &Pending,
    redirect_uri: &str,
) -> Result<Upstream> {
    let issuer = issuer_of(conn)?;
    let d = discover(env, conn, issuer)?;
    let id_token = id_token_for_code(env, conn, &d, &cb.code, pending, redirect_uri)?;
    let google = conn.kind == Kind::Google;
    verify_id_token(env, conn, &d, &id_token, &pending.nonce, &|iss| {
        iss == d.issuer || (google && iss == "accounts.google.com")
    })
}

/// The keys of a JWKS, from the cache unless `fresh`; and whether they
/// came from the cache.
fn jwks(env: &Env, conn: &Connection, uri: &str, fresh: bool) -> Result<(Vec<Json>, bool)> {
    let key = format!("social:jwks:{}", crypto::hash_secret(uri));
    if !fresh && let Some(keys) = kv::get_json::<Vec<Json>>(env.kv, &key, env.now)? {
        return Ok((keys, true));
    }
    let res = send(env, conn, get(uri)?)?;
    let doc = json_object(conn, &res, "key set")?;
    let Some(Json::Array(keys)) = doc.get("keys") else {
        return Err(garbage(conn, "a key set without keys"));
    };
    kv::put_json(env.kv, &key, keys, env.now + cache_seconds(&res))?;
    Ok((keys.clone(), false))
}

/// The key among `keys` that verifies a token signed with `alg` (RS256 or
/// ES256) and `kid`, as a clean public JWK.
fn pick(keys: &[Json], alg: &str, kid: Option<&str>) -> Option<String> {
    let fits = |k: &&Json| {
        let kty_ok = match alg {
            "RS256" => k["kty"] == "RSA",
            _ => k["kty"] == "EC" && k["crv"] == "P-256",
        };
        let use_ok = k.get("use").is_none_or(|u| u == "sig");
        let alg_ok = k.get("alg").is_none_or(|a| a == alg);
        let kid_ok = kid.is_none_or(|kid| k["kid"] == kid);
        kty_ok && use_ok && alg_ok && kid_ok
    };
    let mut found = keys.iter().filter(fits);
    let key = found.next()?;
    if kid.is_none() && found.next().is_some() {
        return None;
    }
    let public = match alg {
        "RS256" => serde_json::json!({"kty": "RSA", "n": key["n"], "e": key["e"]}),
        _ => serde_json::json!({"kty": "EC", "crv": "P-256", "x": key["x"], "y": key["y"]}),
    };
    Some(public.to_string())
}

/// Verifies an ID token: signature (RS256 or ES256) by a key of the
/// provider's JWKS, `iss` accepted by `issuer_ok`, `aud` containing the
/// client id, `azp` the client id when present or when there are several
/// audiences, `exp` in the future (with [`LEEWAY`]), `iat` within
/// [`MAX_IAT_SKEW`] of now, `nonce` the one sent, and a `sub`. The
/// upstream issuer is `d.issuer`.
pub fn verify_id_token(
    env: &Env,
    conn: &Connection,
    d: &Discovery,
    token: &str,
    nonce: &str,
    issuer_ok: &dyn Fn(&str) -> bool,
) -> Result<Upstream> {
    let untrusted = |why: &str| {
        Error::Upstream(format!(
            "{}'s answer cannot be trusted: {why}. Nothing was changed; please try again, and tell the site's operator if it keeps happening.",
            conn.name
        ))
    };
    let meta = Token::decode_metadata(token).map_err(|_| untrusted("the ID token is not a JWT"))?;
    let alg = meta.algorithm().to_owned();
    if alg != "RS256" && alg != "ES256" {
        return Err(untrusted(&format!(
            "the ID token is signed with {alg}, and only RS256 and ES256 are accepted"
        )));
    }
    let kid = meta.key_id().map(str::to_owned);
    let (keys, cached) = jwks(env, conn, &d.jwks_uri, false)?;
    let key = match pick(&keys, &alg, kid.as_deref()) {
        Some(k) => k,
        // The provider may have rotated its keys since: refetch once.
        None if cached => pick(&jwks(env, conn, &d.jwks_uri, true)?.0, &alg, kid.as_deref())
            .ok_or_else(|| untrusted("the ID token is signed with a key it does not publish"))?,
        None => {
            return Err(untrusted(
                "the ID token is signed with a key it does not publish",
            ));
        }
    };
    let options = VerificationOptions {
        artificial_time: Some(UnixTimeStamp::from_secs(
            u64::try_from(env.now).unwrap_or(0),
        )),
        time_tolerance: Some(Duration::from_secs(LEEWAY.unsigned_abs())),
        // iat is checked below, both ways.
        accept_future: true,
        ..Default::default()
    };
    let verified = match alg.as_str() {
        "RS256" => RS256PublicKey::from_jwk(&key)
            .and_then(|k| k.verify_token::<Map<String, Json>>(token, Some(options))),
        _ => ES256PublicKey::from_jwk(&key)
            .and_then(|k| k.verify_token::<Map<String, Json>>(token, Some(options))),
    };
    let claims = verified.map_err(|e| match e.downcast_ref::<jwt_simple::JWTError>() {
        Some(jwt_simple::JWTError::TokenHasExpired) => untrusted("the ID token has expired"),
        _ => untrusted("the ID token's signature does not verify"),
    })?;
    let iss = claims.issuer.as_deref().unwrap_or("");
    if !issuer_ok(iss) {
        return Err(untrusted(&format!(
            "the ID token was issued by `{iss}`, not `{}`",
            d.issuer
        )));
    }
    let audiences: Vec<String> = match &claims.audiences {
        Some(Audiences::AsString(a)) => vec![a.clone()],
        Some(Audiences::AsSet(set)) => set.iter().cloned().collect(),
        None => Vec::new(),
    };
    if !audiences.contains(&conn.client_id) {
        return Err(untrusted("the ID token is meant for another application"));
    }
    let azp = claims.custom.get("azp").and_then(Json::as_str);
    match azp {
        Some(azp) if azp != conn.client_id => {
            return Err(untrusted(
                "the ID token was issued to another application (azp)",
            ));
        }
        None if audiences.len() > 1 => {
            return Err(untrusted(
                "the ID token has several audiences and does not say which one it is for (azp)",
            ));
        }
        _ => {}
    }
    let now = env.now.max(0).unsigned_abs();
    match claims.expires_at {
        Some(exp) if exp.as_secs() + LEEWAY.unsigned_abs() > now => {}
        _ => return Err(untrusted("the ID token has expired")),
    }
    match claims.issued_at {
        Some(iat) if iat.as_secs().abs_diff(now) <= MAX_IAT_SKEW.unsigned_abs() => {}
        _ => return Err(untrusted("the ID token's issue time is too far from now")),
    }
    if !claims
        .nonce
        .as_deref()
        .is_some_and(|n| crypto::ct_eq(n.as_bytes(), nonce.as_bytes()))
    {
        return Err(untrusted("the ID token is not for this sign-in (nonce)"));
    }
    let subject = claims
        .subject
        .filter(|s| !s.is_empty())
        .ok_or_else(|| untrusted("the ID token names nobody (sub)"))?;
    let mut custom = claims.custom;
    let email = custom
        .get("email")
        .and_then(Json::as_str)
        .filter(|e| !e.is_empty())
        .map(str::to_owned);
    let email_verified = match custom.get("email_verified") {
        Some(Json::Bool(b)) => *b,
        Some(Json::String(s)) => s == "true",
        _ => false,
    };
    custom.insert("sub".into(), subject.clone().into());
    Ok(Upstream {
        issuer: d.issuer.clone(),
        subject,
        email,
        email_verified,
        claims: custom,
    })
}
