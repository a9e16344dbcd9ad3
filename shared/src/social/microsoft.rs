//! Microsoft Entra ID: the generic OpenID flow ([`super::oidc`]) with
//! Microsoft's issuers.
//!
//! - **One tenant:** the connection's `issuer` is
//!   `https://login.microsoftonline.com/<tenant id>/v2.0`, discovered and
//!   checked as any OpenID issuer.
//! - **Many tenants:** the `issuer` is
//!   `https://login.microsoftonline.com/common/v2.0` (work, school and
//!   personal accounts; the preset) or `…/organizations/v2.0` (work and
//!   school only); or it holds [`TENANT_PLACEHOLDER`] in place of the tenant
//!   (`https://login.microsoftonline.com/{tenantid}/v2.0`, what Microsoft's
//!   multi-tenant discovery documents say their issuer is), which is read as
//!   `organizations` when `settings.tenants` lists only organisations'
//!   tenants (no personal account, [`CONSUMER_TENANT`], could pass it, so
//!   Microsoft is not asked to offer them) and as `common` otherwise.
//!   Discovery is read at `common` or `organizations`, and must name the
//!   template as its issuer; the ID token's `iss` must equal the template
//!   with the token's own `tid` in place of the placeholder.
//! - `…/consumers/v2.0` (personal accounts only) is the one tenant
//!   [`CONSUMER_TENANT`].
//!
//! Either way a non-empty `settings.tenants` is an allow-list of tenant ids
//! (`tid`). The upstream issuer of the person is the token's `iss` (their
//! tenant's), and the subject its `sub`: the OpenID subject, always present,
//! stable for this application, and the one a generic `oidc` connection to
//! the same tenant would have linked (`oid`, the directory object id, would
//! survive a new app registration but not that move). The `email` claim is
//! never trusted for linking: an Entra administrator can set any address on
//! an account, so `email_verified` is always false.

use std::cell::RefCell;

use http::header;
use serde_json::Value as Json;

use super::oidc::{self, Discovery};
use super::providers::{Callback, Pending};
use super::{Connection, Upstream, garbage, json_object, send};
use crate::Env;
use crate::crypto;
use crate::error::{Error, Result};
use crate::store::kv;

/// The placeholder for the tenant id in a multi-tenant issuer.
pub const TENANT_PLACEHOLDER: &str = "{tenantid}";

/// The tenant of personal Microsoft accounts (outlook.com, live.com, …).
pub const CONSUMER_TENANT: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

/// How a connection's issuer is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Issuer {
    /// One tenant: an OpenID issuer as any other.
    Tenant(String),
    /// Many tenants: the issuer `template` (with [`TENANT_PLACEHOLDER`]),
    /// discovered with `segment` (`common` or `organizations`) in place of
    /// the placeholder.
    Template {
        /// The issuer with the placeholder.
        template: String,
        /// `common` or `organizations`.
        segment: &'static str,
    },
}

/// The tenant segment for an issuer with the placeholder: `organizations`
/// when the allow-list leaves out personal accounts, else `common`.
fn placeholder_segment(conn: &Connection) -> &'static str {
    let tenants = &conn.settings.tenants;
    if tenants.is_empty() || tenants.iter().any(|t| t == CONSUMER_TENANT) {
        "common"
    } else {
        "organizations"
    }
}

/// How the connection's issuer is read (see the module's documentation).
pub fn issuer(conn: &Connection) -> Result<Issuer> {
    let given = oidc::issuer_of(conn)?;
    if given.contains(TENANT_PLACEHOLDER) {
        return Ok(Issuer::Template {
            template: given.to_owned(),
            segment: placeholder_segment(conn),
        });
    }
    // The tenant is a path segment after `scheme://host`.
    let parts: Vec<&str> = given.split('/').collect();
    let at = parts
        .iter()
        .enumerate()
        .skip(3)
        .find(|(_, p)| matches!(**p, "common" | "organizations" | "consumers"));
    let Some((i, &segment)) = at else {
        return Ok(Issuer::Tenant(given.to_owned()));
    };
    let with = |tenant: &str| {
        let mut p = parts.clone();
        if let Some(slot) = p.get_mut(i) {
            *slot = tenant;
        }
        p.join("/")
    };
    Ok(match segment {
        "consumers" => Issuer::Tenant(with(CONSUMER_TENANT)),
        "common" => Issuer::Template {
            template: with(TENANT_PLACEHOLDER),
            segment: "common",
        },
        _ => Issuer::Template {
            template: with(TENANT_PLACEHOLDER),
            segment: "organizations",
        },
    })
}

/// A URL of a discovery document: https, or http when the issuer is http
/// (development).
fn endpoint(conn: &Connection, issuer: &str, value: Option<&Json>, name: &str) -> Result<String> {
    let text = value.and_then(Json::as_str).unwrap_or("");
    let ok = url::Url::parse(text).is_ok_and(|u| {
        u.scheme() == "https" || (u.scheme() == "http" && issuer.starts_with("http://"))
    });
    if ok {
        Ok(text.to_owned())
    } else {
        Err(garbage(
            conn,
            &format!("a discovery document without a usable {name}"),
        ))
    }
}

/// The discovery document of a multi-tenant `template` issuer: read at the
/// template with `segment` for the tenant, and saying the template itself
/// is its issuer. Cached as [`oidc::discover`] caches.
fn discover_template(
    env: &Env,
    conn: &Connection,
    template: &str,
    segment: &str,
) -> Result<Discovery> {
    let base = template.replace(TENANT_PLACEHOLDER, segment);
    let key = format!(
        "social:discovery:microsoft:{}",
        crypto::hash_secret(&format!("{segment} {template}"))
    );
    if let Some(d) = kv::get_json::<Discovery>(env.kv, &key, env.now)? {
        return Ok(d);
    }
    let url = format!(
        "{}/.well-known/openid-configuration",
        base.trim_end_matches('/')
    );
    let req = http::Request::get(&url)
        .header(header::ACCEPT, "application/json")
        .body(Vec::new())
        .map_err(|e| Error::Internal(format!("upstream request: {e}")))?;
    let res = send(env, conn, req)?;
    let doc = json_object(conn, &res, "discovery document")?;
    let stated = doc.get("issuer").and_then(Json::as_str).unwrap_or("");
    if stated != template {
        return Err(Error::Upstream(format!(
            "{} says its issuer is `{stated}`, not `{template}`: check the connection's issuer.",
            conn.name
        )));
    }
    let d = Discovery {
        issuer: template.to_owned(),
        authorization_endpoint: endpoint(
            conn,
            template,
            doc.get("authorization_endpoint"),
            "authorization_endpoint",
        )?,
        token_endpoint: endpoint(conn, template, doc.get("token_endpoint"), "token_endpoint")?,
        jwks_uri: endpoint(conn, template, doc.get("jwks_uri"), "jwks_uri")?,
        token_endpoint_auth_methods_supported: doc
            .get("token_endpoint_auth_methods_supported")
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default(),
    };
    kv::put_json(env.kv, &key, &d, env.now + oidc::cache_seconds(&res))?;
    Ok(d)
}

/// The discovery document of the connection: its tenant's, or the
/// multi-tenant one.
fn discover(env: &Env, conn: &Connection) -> Result<Discovery> {
    match issuer(conn)? {
        Issuer::Template { template, segment } => discover_template(env, conn, &template, segment),
        Issuer::Tenant(issuer) => oidc::discover(env, conn, &issuer),
    }
}

/// Microsoft's authorization URL for this sign-in.
pub fn authorize_url(
    env: &Env,
    conn: &Connection,
    state: &str,
    nonce: &str,
    code_challenge: &str,
    redirect_uri: &str,
) -> Result<String> {
    let d = discover(env, conn)?;
    oidc::authorization_request(&d, conn, state, nonce, code_challenge, redirect_uri, &[])
}

/// Whether `iss` has the shape of `template` with some tenant in place of
/// the placeholder (the exact tenant is checked against `tid` after the
/// signature).
fn fits_template(template: &str, iss: &str) -> bool {
    let Some((before, after)) = template.split_once(TENANT_PLACEHOLDER) else {
        return iss == template;
    };
    iss.strip_prefix(before)
        .and_then(|rest| rest.strip_suffix(after))
        .is_some_and(|tenant| !tenant.is_empty() && !tenant.contains('/'))
}

/// Exchanges the code, verifies the ID token and its tenant.
pub fn finish(
    env: &Env,
    conn: &Connection,
    cb: &Callback,
    pending: &Pending,
    redirect_uri: &str,
) -> Result<Upstream> {
    let d = discover(env, conn)?;
    let id_token = oidc::id_token_for_code(env, conn, &d, &cb.code, pending, redirect_uri)?;
    verify(env, conn, &d, &id_token, &pending.nonce)
}

/// Verifies a Microsoft ID token: as any OpenID ID token, then its `iss`
/// against its `tid` (multi-tenant) and `tid` against `settings.tenants`.
pub fn verify(
    env: &Env,
    conn: &Connection,
    d: &Discovery,
    id_token: &str,
    nonce: &str,
) -> Result<Upstream> {
    let untrusted = |why: String| {
        Error::Upstream(format!(
            "{}'s answer cannot be trusted: {why}. Nothing was changed; please try again, and tell the site's operator if it keeps happening.",
            conn.name
        ))
    };
    let seen_iss = RefCell::new(String::new());
    let mut up = oidc::verify_id_token(env, conn, d, id_token, nonce, &|iss| {
        seen_iss.replace(iss.to_owned());
        fits_template(&d.issuer, iss)
    })?;
    let iss = seen_iss.into_inner();
    let tid = up
        .claims
        .get("tid")
        .and_then(Json::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_owned);
    if d.issuer.contains(TENANT_PLACEHOLDER) {
        let Some(tid) = tid.as_deref() else {
            return Err(untrusted("the ID token names no tenant (tid)".into()));
        };
        if iss != d.issuer.replace(TENANT_PLACEHOLDER, tid) {
            return Err(untrusted(format!(
                "the ID token was issued by `{iss}`, which is not the issuer of its tenant `{tid}`"
            )));
        }
    }
    let tenants = &conn.settings.tenants;
    if !tenants.is_empty()
        && !tid
            .as_deref()
            .is_some_and(|t| tenants.iter().any(|a| a == t))
    {
        return Err(Error::Upstream(format!(
            "Your {} account belongs to an organisation (tenant `{}`) that may not sign in here. Sign in with another account, or ask the site's operator.",
            conn.name,
            tid.as_deref().unwrap_or("none")
        )));
    }
    // Never trusted for linking: see the module's documentation.
    up.email_verified = false;
    up.claims.insert("email_verified".into(), Json::Bool(false));
    up.issuer = iss;
    Ok(up)
}

/// Test support shared by the social kinds' tests: a fake outbound HTTP
/// client and ID token signing.
#[cfg(test)]
pub(super) mod fake {
    use std::cell::RefCell;
    use std::collections::HashMap;

    use jwt_simple::prelude::*;
    use serde_json::{Map, Value as Json};

    use crate::Env;
    use crate::error::{Error, Result};
    use crate::mail::HttpClient;
    use crate::testkit::World;

    /// Canned answers by method and URL (without its query), and every
    /// request sent.
    #[derive(Default)]
    pub struct Http {
        routes: RefCell<HashMap<String, (u16, Vec<u8>)>>,
        /// The requests sent, in order.
        pub seen: RefCell<Vec<http::Request<Vec<u8>>>>,
    }

    fn key(method: &str, url: &str) -> String {
        format!("{method} {}", url.split('?').next().unwrap_or(url))
    }

    impl Http {
        /// Answers `method url` with this status and body.
        pub fn on(&self, method: &str, url: &str, status: u16, body: impl Into<Vec<u8>>) {
            self.routes
                .borrow_mut()
                .insert(key(method, url), (status, body.into()));
        }

        /// Answers `method url` with 200 and this JSON.
        pub fn json(&self, method: &str, url: &str, value: &Json) {
            self.on(method, url, 200, value.to_string());
        }

        /// The requests sent to `method url`.
        pub fn sent(&self, method: &str, url: &str) -> Vec<http::Request<Vec<u8>>> {
            self.seen
                .borrow()
                .iter()
                .filter(|r| key(r.method().as_str(), &r.uri().to_string()) == key(method, url))
                .cloned()
                .collect()
        }
    }

    impl HttpClient for Http {
        fn send(&self, req: http::Request<Vec<u8>>) -> Result<http::Response<Vec<u8>>> {
            let k = key(req.method().as_str(), &req.uri().to_string());
            let origin = format!(
                "{}://{}",
                req.uri().scheme_str().unwrap_or(""),
                req.uri().authority().map(|a| a.as_str()).unwrap_or("")
            );
            self.seen.borrow_mut().push(req);
            let Some((status, body)) = self.routes.borrow().get(&k).cloned() else {
                return Err(Error::OutboundDenied(origin));
            };
            Ok(http::Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(body)
                .unwrap())
        }
    }

    /// The environment of a request at `now` with this HTTP client.
    pub fn env<'a>(w: &'a World, http: &'a Http, now: i64) -> Env<'a> {
        Env {
            kv: &w.kv,
            sql: &w.sql,
            vars: &w.vars,
            http,
            now,
            logout: &crate::oidc::signout::HandOver,
        }
    }

    /// A JWKS holding `key`'s public half.
    pub fn jwks(key: &ES256KeyPair) -> Json {
        serde_json::json!({"keys": [serde_json::from_str::<Json>(&key.public_key().to_jwk()).unwrap()]})
    }

    /// Signs these claims (registered ones by name, the rest custom).
    pub fn sign(key: &ES256KeyPair, claims: Json) -> String {
        let Json::Object(mut all) = claims else {
            panic!("claims are an object")
        };
        let mut take = |name: &str| all.remove(name);
        let secs = |v: Option<Json>| v.and_then(|v| v.as_u64()).map(Duration::from_secs);
        let text = |v: Option<Json>| v.and_then(|v| v.as_str().map(str::to_owned));
        let claims = JWTClaims {
            issued_at: secs(take("iat")),
            expires_at: secs(take("exp")),
            invalid_before: None,
            issuer: text(take("iss")),
            subject: text(take("sub")),
            audiences: text(take("aud")).map(Audiences::AsString),
            jwt_id: None,
            nonce: text(take("nonce")),
            custom: Map::new(),
        };
        let claims = JWTClaims {
            custom: all,
            ..claims
        };
        key.sign(claims).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use jwt_simple::prelude::*;
    use serde_json::json;

    use super::fake::{self, Http};
    use super::*;
    use crate::social::{Kind, Settings};
    use crate::testkit::World;

    const NOW: i64 = 1_800_000_000;
    const T1: &str = "11111111-1111-1111-1111-111111111111";
    const T2: &str = "22222222-2222-2222-2222-222222222222";
    const TEMPLATE: &str = "https://login.microsoftonline.com/{tenantid}/v2.0";
    const MS: &str = "https://login.microsoftonline.com";

    fn conn(issuer: &str, tenants: &[&str]) -> Connection {
        Connection {
            id: "microsoft".into(),
            kind: Kind::Microsoft,
            name: "Microsoft".into(),
            issuer: Some(issuer.into()),
            client_id: "ms-client".into(),
            secret_variable: Some("ms_secret".into()),
            scopes: vec!["openid".into(), "email".into(), "profile".into()],
            settings: Settings {
                tenants: tenants.iter().map(|t| t.to_string()).collect(),
                ..Settings::default()
            },
            trusted_email: true,
            org_id: None,
            default_role: None,
            enabled: true,
            created_at: 1,
            updated_at: 1,
        }
    }

    /// Microsoft's endpoints for `segment`, its discovery saying `issuer`,
    /// and a token endpoint answering `id_token`.
    fn provider(http: &Http, key: &ES256KeyPair, segment: &str, issuer: &str) {
        http.json(
            "GET",
            &format!("{MS}/{segment}/v2.0/.well-known/openid-configuration"),
            &json!({
                "issuer": issuer,
                "authorization_endpoint": format!("{MS}/{segment}/oauth2/v2.0/authorize"),
                "token_endpoint": format!("{MS}/{segment}/oauth2/v2.0/token"),
                "jwks_uri": format!("{MS}/{segment}/discovery/v2.0/keys"),
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            }),
        );
        http.json(
            "GET",
            &format!("{MS}/{segment}/discovery/v2.0/keys"),
            &fake::jwks(key),
        );
    }

    fn answer_token(http: &Http, segment: &str, id_token: &str) {
        http.json(
            "POST",
            &format!("{MS}/{segment}/oauth2/v2.0/token"),
            &json!({"access_token": "at", "token_type": "Bearer", "id_token": id_token}),
        );
    }

    fn claims(iss: &str, tid: &str) -> Json {
        json!({
            "iss": iss, "aud": "ms-client", "sub": "pairwise-sub", "oid": "object-id",
            "tid": tid, "nonce": "n-1", "iat": NOW, "exp": NOW + 3600,
            "email": "ada@contoso.example", "email_verified": true, "name": "Ada Lovelace",
        })
    }

    fn world() -> World {
        World::with(&[("ms_secret", "s3cret")])
    }

    fn run(w: &World, http: &Http, c: &Connection) -> Result<Upstream> {
        finish(
            &fake::env(w, http, NOW),
            c,
            &Callback {
                code: "the-code".into(),
                user: None,
            },
            &Pending {
                nonce: "n-1".into(),
                code_verifier: "verifier".into(),
            },
            "https://id.example.test/social/microsoft/callback",
        )
    }

    #[test]
    fn multi_tenant_sign_in_takes_the_tokens_tenant_and_never_trusts_the_email() {
        let (w, http) = (world(), Http::default());
        let key = ES256KeyPair::generate().with_key_id("k1");
        provider(&http, &key, "common", TEMPLATE);
        let iss = format!("{MS}/{T1}/v2.0");
        answer_token(&http, "common", &fake::sign(&key, claims(&iss, T1)));
        let c = conn(TEMPLATE, &[]);

        let url = authorize_url(
            &fake::env(&w, &http, NOW),
            &c,
            "st",
            "n-1",
            "chal",
            "https://id.example.test/social/microsoft/callback",
        )
        .unwrap();
        assert!(url.starts_with(&format!("{MS}/common/oauth2/v2.0/authorize?")));
        assert!(url.contains("client_id=ms-client") && url.contains("code_challenge=chal"));

        let up = run(&w, &http, &c).unwrap();
        assert_eq!(up.issuer, iss, "the person's tenant is the issuer");
        assert_eq!(up.subject, "pairwise-sub");
        assert_eq!(up.email.as_deref(), Some("ada@contoso.example"));
        assert!(!up.email_verified, "Entra's email is never trusted");
        assert_eq!(up.claims["email_verified"], false);
        assert_eq!(up.claims["name"], "Ada Lovelace");
        let token = http.sent("POST", &format!("{MS}/common/oauth2/v2.0/token"));
        assert_eq!(token.len(), 1);
        let body = String::from_utf8(token[0].body().clone()).unwrap();
        assert!(body.contains("code=the-code") && body.contains("code_verifier=verifier"));
    }

    #[test]
    fn an_allow_list_of_organisations_discovers_at_organizations() {
        let (w, http) = (world(), Http::default());
        let key = ES256KeyPair::generate().with_key_id("k1");
        provider(&http, &key, "organizations", TEMPLATE);
        let iss = format!("{MS}/{T1}/v2.0");
        answer_token(&http, "organizations", &fake::sign(&key, claims(&iss, T1)));
        let c = conn(TEMPLATE, &[T1]);
        let url = authorize_url(&fake::env(&w, &http, NOW), &c, "s", "n", "c", "r").unwrap();
        assert!(url.starts_with(&format!("{MS}/organizations/oauth2/v2.0/authorize?")));
        assert_eq!(run(&w, &http, &c).unwrap().issuer, iss);
        assert_eq!(
            issuer(&conn(TEMPLATE, &[T1, CONSUMER_TENANT])).unwrap(),
            Issuer::Template {
                template: TEMPLATE.into(),
                segment: "common"
            }
        );
    }

    #[test]
    fn a_tenant_outside_the_allow_list_is_refused() {
        let (w, http) = (world(), Http::default());
        let key = ES256KeyPair::generate().with_key_id("k1");
        provider(&http, &key, "organizations", TEMPLATE);
        let iss = format!("{MS}/{T2}/v2.0");
        answer_token(&http, "organizations", &fake::sign(&key, claims(&iss, T2)));
        let err = run(&w, &http, &conn(TEMPLATE, &[T1])).unwrap_err();
        assert!(
            matches!(&err, Error::Upstream(m) if m.contains(T2) && m.contains("may not sign in")),
            "{err}"
        );
    }

    #[test]
    fn an_iss_of_another_tenant_than_tid_is_refused() {
        let (w, http) = (world(), Http::default());
        let key = ES256KeyPair::generate().with_key_id("k1");
        provider(&http, &key, "common", TEMPLATE);
        // Signed by Microsoft's key, but iss names T2 while tid says T1.
        let iss = format!("{MS}/{T2}/v2.0");
        answer_token(&http, "common", &fake::sign(&key, claims(&iss, T1)));
        let err = run(&w, &http, &conn(TEMPLATE, &[])).unwrap_err();
        assert!(
            matches!(&err, Error::Upstream(m) if m.contains("not the issuer of its tenant")),
            "{err}"
        );

        // No tid at all.
        let mut no_tid = claims(&iss, T1);
        no_tid.as_object_mut().unwrap().remove("tid");
        answer_token(&http, "common", &fake::sign(&key, no_tid));
        let err = run(&w, &http, &conn(TEMPLATE, &[])).unwrap_err();
        assert!(
            matches!(&err, Error::Upstream(m) if m.contains("(tid)")),
            "{err}"
        );
    }

    #[test]
    fn an_iss_of_another_host_or_shape_is_refused() {
        let (w, http) = (world(), Http::default());
        let key = ES256KeyPair::generate().with_key_id("k1");
        provider(&http, &key, "common", TEMPLATE);
        for iss in [
            format!("https://evil.example/{T1}/v2.0"),
            format!("{MS}/{T1}/extra/v2.0"),
            format!("{MS}//v2.0"),
        ] {
            answer_token(&http, "common", &fake::sign(&key, claims(&iss, T1)));
            let err = run(&w, &http, &conn(TEMPLATE, &[])).unwrap_err();
            assert!(
                matches!(&err, Error::Upstream(m) if m.contains("was issued by")),
                "{iss}: {err}"
            );
        }
    }

    #[test]
    fn one_tenant_is_plain_openid_with_an_untrusted_email() {
        let (w, http) = (world(), Http::default());
        let key = ES256KeyPair::generate().with_key_id("k1");
        let fixed = format!("{MS}/{T1}/v2.0");
        provider(&http, &key, T1, &fixed);
        answer_token(&http, T1, &fake::sign(&key, claims(&fixed, T1)));
        let up = run(&w, &http, &conn(&fixed, &[])).unwrap();
        assert_eq!(up.issuer, fixed);
        assert!(!up.email_verified);

        // Another tenant's token is refused by its iss.
        answer_token(
            &http,
            T1,
            &fake::sign(&key, claims(&format!("{MS}/{T2}/v2.0"), T2)),
        );
        let err = run(&w, &http, &conn(&fixed, &[])).unwrap_err();
        assert!(
            matches!(&err, Error::Upstream(m) if m.contains("was issued by")),
            "{err}"
        );

        // A fixed tenant with an allow-list that leaves it out.
        answer_token(&http, T1, &fake::sign(&key, claims(&fixed, T1)));
        let err = run(&w, &http, &conn(&fixed, &[T2])).unwrap_err();
        assert!(
            matches!(&err, Error::Upstream(m) if m.contains("may not sign in")),
            "{err}"
        );
    }

    #[test]
    fn a_discovery_document_naming_another_issuer_is_refused() {
        let (w, http) = (world(), Http::default());
        let key = ES256KeyPair::generate().with_key_id("k1");
        provider(&http, &key, "common", &format!("{MS}/common/v2.0"));
        let err = authorize_url(
            &fake::env(&w, &http, NOW),
            &conn(TEMPLATE, &[]),
            "s",
            "n",
            "c",
            "r",
        )
        .unwrap_err();
        assert!(
            matches!(&err, Error::Upstream(m) if m.contains("check the connection's issuer")),
            "{err}"
        );
    }

    #[test]
    fn the_preset_common_issuer_is_the_multi_tenant_template() {
        let (w, http) = (world(), Http::default());
        let key = ES256KeyPair::generate().with_key_id("k1");
        provider(&http, &key, "common", TEMPLATE);
        let iss = format!("{MS}/{CONSUMER_TENANT}/v2.0");
        answer_token(
            &http,
            "common",
            &fake::sign(&key, claims(&iss, CONSUMER_TENANT)),
        );
        let up = run(&w, &http, &conn(&format!("{MS}/common/v2.0"), &[])).unwrap();
        assert_eq!(up.issuer, iss, "a personal account's tenant");
        assert!(!up.email_verified);
    }

    #[test]
    fn issuer_forms() {
        let template = |segment| Issuer::Template {
            template: TEMPLATE.into(),
            segment,
        };
        let of = |i: &str| issuer(&conn(i, &[])).unwrap();
        assert_eq!(of(&format!("{MS}/common/v2.0")), template("common"));
        assert_eq!(
            of(&format!("{MS}/organizations/v2.0")),
            template("organizations")
        );
        assert_eq!(
            of(&format!("{MS}/consumers/v2.0")),
            Issuer::Tenant(format!("{MS}/{CONSUMER_TENANT}/v2.0"))
        );
        assert_eq!(
            of(&format!("{MS}/{T1}/v2.0")),
            Issuer::Tenant(format!("{MS}/{T1}/v2.0"))
        );
        assert_eq!(of(TEMPLATE), template("common"));
        assert_eq!(
            issuer(&conn(TEMPLATE, &[T1])).unwrap(),
            template("organizations")
        );
        // A test provider's host.
        assert_eq!(
            of("http://127.0.0.1:8080/common/v2.0"),
            Issuer::Template {
                template: "http://127.0.0.1:8080/{tenantid}/v2.0".into(),
                segment: "common"
            }
        );
    }

    #[test]
    fn template_shapes() {
        assert!(fits_template(TEMPLATE, &format!("{MS}/{T1}/v2.0")));
        assert!(!fits_template(TEMPLATE, &format!("{MS}/v2.0")));
        assert!(!fits_template(TEMPLATE, &format!("{MS}/a/b/v2.0")));
        assert!(fits_template("https://x/v2.0", "https://x/v2.0"));
        assert!(!fits_template("https://x/v2.0", "https://y/v2.0"));
    }
}
