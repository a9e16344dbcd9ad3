//! Sign in with Apple: OpenID by discovery of `https://appleid.apple.com`
//! (the connection's `issuer` when set, for test providers), with Apple's
//! differences:
//!
//! - the authorization request asks for the scopes `name email` and
//!   `response_mode=form_post` (Apple requires it when scopes are asked
//!   for), so the callback is a POST;
//! - the client secret is not a stored string but an ES256 JWT signed at
//!   each token request with the operator's key ([`client_secret`]), from
//!   the Spin variable named by `secret_variable` (a P-256 private key as a
//!   JWK or PKCS#8 PEM: Apple's `AuthKey_<key id>.p8` file as it is);
//! - the person's name is not in the ID token: Apple posts it as the `user`
//!   JSON with the first sign-in only ([`names`]).
//!
//! The ID token is verified as any OpenID ID token. Apple's
//! `email_verified` may be the string `"true"`; private-relay addresses
//! (`…@privaterelay.appleid.com`) are real, verified addresses.

use jwt_simple::prelude::*;
use serde_json::{Map, Value as Json};

use super::oidc::{self, Discovery};
use super::providers::{Callback, Pending};
use super::{Connection, Upstream, garbage};
use crate::Env;
use crate::error::{Error, Result};

/// Apple's issuer (and the client secret's audience).
pub const ISSUER: &str = "https://appleid.apple.com";

/// How long a client secret is valid. Apple allows up to six months; one
/// made for each token request needs minutes.
pub const SECRET_TTL: i64 = 300;

/// The scopes Apple knows, which the authorization request asks for.
pub const SCOPES: &str = "name email";

/// The longest name part taken from the `user` JSON.
const MAX_NAME_CHARS: usize = 200;

/// The issuer discovered: the connection's, else Apple's.
fn issuer(conn: &Connection) -> &str {
    conn.issuer.as_deref().unwrap_or(ISSUER)
}

fn discover(env: &Env, conn: &Connection) -> Result<Discovery> {
    oidc::discover(env, conn, issuer(conn))
}

/// Apple's authorization URL for this sign-in: scopes `name email`,
/// `response_mode=form_post`.
pub fn authorize_url(
    env: &Env,
    conn: &Connection,
    state: &str,
    nonce: &str,
    code_challenge: &str,
    redirect_uri: &str,
) -> Result<String> {
    let d = discover(env, conn)?;
    let asking = Connection {
        scopes: SCOPES.split(' ').map(str::to_owned).collect(),
        ..conn.clone()
    };
    oidc::authorization_request(
        &d,
        &asking,
        state,
        nonce,
        code_challenge,
        redirect_uri,
        &[("response_mode", "form_post")],
    )
}

/// A setting Apple's connection cannot do without.
fn setting<'a>(conn: &'a Connection, value: Option<&'a str>, name: &str) -> Result<&'a str> {
    value.filter(|v| !v.trim().is_empty()).ok_or_else(|| {
        Error::Unavailable(format!(
            "Sign in with Apple is not set up completely: the connection `{}` has no settings.{name}. Please tell the site's operator.",
            conn.id
        ))
    })
}

/// The client secret for a token request at `now`: an ES256 JWT signed
/// with the operator's key, header `kid` = `settings.key_id`, claims `iss`
/// = `settings.team_id`, `iat` now, `exp` now + [`SECRET_TTL`], `aud`
/// Apple's issuer, `sub` the client id (the Services ID).
pub fn client_secret(env: &Env, conn: &Connection) -> Result<String> {
    let team_id = setting(conn, conn.settings.team_id.as_deref(), "team_id")?;
    let key_id = setting(conn, conn.settings.key_id.as_deref(), "key_id")?;
    let text = super::secret(env, conn)?;
    let text = text.trim();
    let key = if text.starts_with('{') {
        ES256KeyPair::from_jwk(text)
    } else if !text.contains('\n') {
        // A PEM squeezed onto one line with `\n` escapes (a common way to
        // put it in an environment variable).
        ES256KeyPair::from_pem(&text.replace("\\n", "\n"))
    } else {
        ES256KeyPair::from_pem(text)
    };
    let variable = conn.secret_variable.as_deref().unwrap_or("secret_variable");
    let key = key
        .map_err(|_| {
            Error::config(
                variable,
                format!(
                    "it must hold the P-256 private key of Sign in with Apple (a JWK, or the PKCS#8 PEM of Apple's .p8 file) for the connection `{}`",
                    conn.id
                ),
            )
        })?
        .with_key_id(key_id);
    let at = |t: i64| Duration::from_secs(u64::try_from(t).unwrap_or(0));
    let claims = JWTClaims {
        issued_at: Some(at(env.now)),
        expires_at: Some(at(env.now + SECRET_TTL)),
        invalid_before: None,
        issuer: Some(team_id.to_owned()),
        subject: Some(conn.client_id.clone()),
        audiences: Some(Audiences::AsString(ISSUER.to_owned())),
        jwt_id: None,
        nonce: None,
        custom: NoCustomClaims {},
    };
    key.sign(claims)
        .map_err(|e| Error::Internal(format!("signing Apple's client secret: {e}")))
}

/// The name parts of Apple's `user` JSON (`{"name": {"firstName",
/// "lastName"}, "email"}`) as OpenID claims: `given_name`, `family_name`
/// and `name`. Nothing for a `user` that is not such JSON: the name is a
/// courtesy of the first sign-in, never needed, and the email in it is
/// ignored (the ID token's is the signed one).
pub fn names(user: &str) -> Map<String, Json> {
    let mut out = Map::new();
    let Ok(value) = serde_json::from_str::<Json>(user) else {
        return out;
    };
    let part = |name: &str| {
        value["name"][name]
            .as_str()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.chars().take(MAX_NAME_CHARS).collect::<String>())
    };
    let (given, family) = (part("firstName"), part("lastName"));
    let full: Vec<&str> = [given.as_deref(), family.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    if !full.is_empty() {
        out.insert("name".into(), full.join(" ").into());
    }
    if let Some(g) = given {
        out.insert("given_name".into(), g.into());
    }
    if let Some(f) = family {
        out.insert("family_name".into(), f.into());
    }
    out
}

/// Exchanges the code (with a fresh client secret), verifies the ID token,
/// and adds the name of the first sign-in's `user` JSON.
pub fn finish(
    env: &Env,
    conn: &Connection,
    cb: &Callback,
    pending: &Pending,
    redirect_uri: &str,
) -> Result<Upstream> {
    let d = discover(env, conn)?;
    let secret = client_secret(env, conn)?;
    let tokens = oidc::exchange_code(
        env,
        conn,
        &d,
        &cb.code,
        &pending.code_verifier,
        redirect_uri,
        &secret,
    )?;
    let id_token = tokens
        .get("id_token")
        .and_then(Json::as_str)
        .ok_or_else(|| garbage(conn, "a token response without an ID token"))?;
    let mut up = oidc::verify_id_token(env, conn, &d, id_token, &pending.nonce, &|iss| {
        iss == d.issuer
    })?;
    if let Some(user) = cb.user.as_deref() {
        up.claims.extend(names(user));
    }
    Ok(up)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::microsoft::fake::{self, Http};
    use super::*;
    use crate::social::{Kind, Settings};
    use crate::testkit::World;

    const NOW: i64 = 1_800_000_000;
    const TOKEN: &str = "https://appleid.apple.com/auth/token";

    fn conn() -> Connection {
        Connection {
            id: "apple".into(),
            kind: Kind::Apple,
            name: "Apple".into(),
            issuer: None,
            client_id: "com.example.web".into(),
            secret_variable: Some("apple_key".into()),
            scopes: vec!["name".into(), "email".into()],
            settings: Settings {
                team_id: Some("TEAM123456".into()),
                key_id: Some("KEY1234567".into()),
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

    /// Apple's discovery (client_secret_post only, as Apple's says) and
    /// keys, the operator's key in `apple_key` as `pem` or a JWK.
    fn setup(apple: &ES256KeyPair, operator: &ES256KeyPair, pem: bool) -> (World, Http) {
        let secret = if pem {
            operator.to_pem().unwrap()
        } else {
            operator.to_jwk()
        };
        let w = World::with(&[("apple_key", &secret)]);
        let http = Http::default();
        http.json(
            "GET",
            "https://appleid.apple.com/.well-known/openid-configuration",
            &json!({
                "issuer": ISSUER,
                "authorization_endpoint": "https://appleid.apple.com/auth/authorize",
                "token_endpoint": TOKEN,
                "jwks_uri": "https://appleid.apple.com/auth/keys",
                "token_endpoint_auth_methods_supported": ["client_secret_post"],
            }),
        );
        http.json(
            "GET",
            "https://appleid.apple.com/auth/keys",
            &fake::jwks(apple),
        );
        (w, http)
    }

    fn id_token(key: &ES256KeyPair) -> String {
        fake::sign(
            key,
            json!({
                "iss": ISSUER, "aud": "com.example.web", "sub": "001234.abcdef.0999",
                "nonce": "n-1", "iat": NOW, "exp": NOW + 600,
                "email": "x7@privaterelay.appleid.com", "email_verified": "true",
                "is_private_email": "true",
            }),
        )
    }

    fn run(w: &World, http: &Http, user: Option<&str>) -> Result<Upstream> {
        finish(
            &fake::env(w, http, NOW),
            &conn(),
            &Callback {
                code: "c0de".into(),
                user: user.map(str::to_owned),
            },
            &Pending {
                nonce: "n-1".into(),
                code_verifier: "verifier".into(),
            },
            "https://id.example.test/social/apple/callback",
        )
    }

    fn form(req: &http::Request<Vec<u8>>) -> std::collections::HashMap<String, String> {
        url::form_urlencoded::parse(req.body())
            .into_owned()
            .collect()
    }

    #[test]
    fn the_authorization_request_posts_the_form_back_and_asks_for_name_and_email() {
        let key = ES256KeyPair::generate().with_key_id("apple1");
        let (w, http) = setup(&key, &ES256KeyPair::generate(), true);
        let mut c = conn();
        c.scopes = vec!["openid".into(), "email".into(), "profile".into()];
        let url = authorize_url(
            &fake::env(&w, &http, NOW),
            &c,
            "st",
            "n-1",
            "chal",
            "https://id.example.test/social/apple/callback",
        )
        .unwrap();
        let url = url::Url::parse(&url).unwrap();
        assert_eq!(
            url.as_str().split('?').next(),
            Some("https://appleid.apple.com/auth/authorize")
        );
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q["response_mode"], "form_post");
        assert_eq!(q["scope"], "name email");
        assert_eq!(q["client_id"], "com.example.web");
        assert_eq!(q["nonce"], "n-1");
        assert_eq!(q["state"], "st");
        assert_eq!(q["code_challenge"], "chal");
        assert_eq!(q["code_challenge_method"], "S256");
    }

    #[test]
    fn first_sign_in_with_a_pem_key_signs_a_short_client_secret_and_takes_the_name() {
        let apple = ES256KeyPair::generate().with_key_id("apple1");
        let operator = ES256KeyPair::generate();
        let (w, http) = setup(&apple, &operator, true);
        http.json(
            "POST",
            TOKEN,
            &json!({"access_token": "a", "token_type": "Bearer", "id_token": id_token(&apple)}),
        );
        let user =
            r#"{"name":{"firstName":"Grace","lastName":"Hopper"},"email":"spoofed@example.com"}"#;
        let up = run(&w, &http, Some(user)).unwrap();
        assert_eq!(up.issuer, ISSUER);
        assert_eq!(up.subject, "001234.abcdef.0999");
        assert_eq!(up.email.as_deref(), Some("x7@privaterelay.appleid.com"));
        assert!(up.email_verified, "Apple's \"true\" is true");
        assert_eq!(up.claims["given_name"], "Grace");
        assert_eq!(up.claims["family_name"], "Hopper");
        assert_eq!(up.claims["name"], "Grace Hopper");

        // What the token endpoint received: the client secret, by POST.
        let sent = http.sent("POST", TOKEN);
        assert_eq!(sent.len(), 1);
        assert!(sent[0].headers().get("authorization").is_none());
        let f = form(&sent[0]);
        assert_eq!(f["client_id"], "com.example.web");
        assert_eq!(f["code"], "c0de");
        assert_eq!(f["code_verifier"], "verifier");
        let secret = &f["client_secret"];
        let meta = Token::decode_metadata(secret).unwrap();
        assert_eq!(meta.algorithm(), "ES256");
        assert_eq!(meta.key_id(), Some("KEY1234567"));
        let options = VerificationOptions {
            artificial_time: Some(UnixTimeStamp::from_secs(NOW as u64)),
            allowed_issuers: Some(HashSet::from(["TEAM123456".to_owned()])),
            allowed_audiences: Some(HashSet::from([ISSUER.to_owned()])),
            required_subject: Some("com.example.web".into()),
            ..Default::default()
        };
        let claims = operator
            .public_key()
            .verify_token::<NoCustomClaims>(secret, Some(options))
            .unwrap();
        assert_eq!(claims.issued_at.unwrap().as_secs(), NOW as u64);
        assert_eq!(claims.expires_at.unwrap().as_secs(), (NOW + 300) as u64);
    }

    #[test]
    fn later_sign_ins_with_a_jwk_key_have_no_name() {
        let apple = ES256KeyPair::generate().with_key_id("apple1");
        let operator = ES256KeyPair::generate();
        let (w, http) = setup(&apple, &operator, false);
        http.json("POST", TOKEN, &json!({"id_token": id_token(&apple)}));
        let up = run(&w, &http, None).unwrap();
        assert!(up.claims.get("name").is_none());
        assert!(up.claims.get("given_name").is_none());
        let secret = form(&http.sent("POST", TOKEN)[0])["client_secret"].clone();
        assert!(
            operator
                .public_key()
                .verify_token::<NoCustomClaims>(
                    &secret,
                    Some(VerificationOptions {
                        artificial_time: Some(UnixTimeStamp::from_secs(NOW as u64)),
                        ..Default::default()
                    })
                )
                .is_ok()
        );
        // A user that is not JSON adds nothing and fails nothing.
        assert!(
            run(&w, &http, Some("not json"))
                .unwrap()
                .claims
                .get("name")
                .is_none()
        );
    }

    #[test]
    fn an_id_token_signed_by_another_key_is_refused() {
        let apple = ES256KeyPair::generate().with_key_id("apple1");
        let forger = ES256KeyPair::generate().with_key_id("apple1");
        let (w, http) = setup(&apple, &ES256KeyPair::generate(), true);
        http.json("POST", TOKEN, &json!({"id_token": id_token(&forger)}));
        let err = run(&w, &http, None).unwrap_err();
        assert!(
            matches!(&err, Error::Upstream(m) if m.contains("signature")),
            "{err}"
        );
    }

    #[test]
    fn a_missing_or_bad_key_or_setting_says_what_to_fix() {
        let apple = ES256KeyPair::generate().with_key_id("apple1");
        let (mut w, http) = setup(&apple, &ES256KeyPair::generate(), true);
        w.set(
            "apple_key",
            Some("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----"),
        );
        let err = client_secret(&fake::env(&w, &http, NOW), &conn()).unwrap_err();
        assert!(
            matches!(&err, Error::Config { name, .. } if name == "apple_key"),
            "{err}"
        );
        // A PEM on one line with \n escapes is read.
        let operator = ES256KeyPair::generate();
        w.set(
            "apple_key",
            Some(&operator.to_pem().unwrap().replace('\n', "\\n")),
        );
        let secret = client_secret(&fake::env(&w, &http, NOW), &conn()).unwrap();
        let options = VerificationOptions {
            artificial_time: Some(UnixTimeStamp::from_secs(NOW as u64)),
            ..Default::default()
        };
        assert!(
            operator
                .public_key()
                .verify_token::<NoCustomClaims>(&secret, Some(options))
                .is_ok()
        );
        w.set("apple_key", None);
        let err = client_secret(&fake::env(&w, &http, NOW), &conn()).unwrap_err();
        assert!(
            matches!(&err, Error::Config { name, .. } if name == "apple_key"),
            "{err}"
        );
        let mut c = conn();
        c.settings.team_id = None;
        let err = client_secret(&fake::env(&w, &http, NOW), &c).unwrap_err();
        assert!(err.to_string().contains("settings.team_id"), "{err}");
        assert!(http.sent("POST", TOKEN).is_empty());
    }

    #[test]
    fn names_of_the_user_json() {
        assert_eq!(
            Json::Object(names(r#"{"name":{"firstName":" Ada "}}"#)),
            json!({"name": "Ada", "given_name": "Ada"})
        );
        assert!(names(r#"{"name":{"firstName":""}}"#).is_empty());
        assert!(names("[]").is_empty());
        assert!(names(r#"{"email":"a@b.c"}"#).is_empty());
    }
}
