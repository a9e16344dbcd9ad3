//! GitHub: OAuth 2.0 without OpenID. The browser is sent to
//! `<base>/login/oauth/authorize` (the connection's scopes, by default
//! `read:user user:email`; `state`; PKCE S256, which GitHub supports; no
//! nonce, since there is no ID token to carry one), the code is exchanged at
//! `<base>/login/oauth/access_token`, and the person read from the REST API:
//! `GET <api>/user` (the subject is the numeric `id`, as a string; `name`;
//! `login` as `preferred_username`) and `GET <api>/user/emails` (only the
//! primary address, and only when verified).
//!
//! `<base>` is the connection's `issuer` when set, else
//! `https://github.com`, and is the upstream issuer of the person. `<api>`
//! is `https://api.github.com` for GitHub itself, and `<issuer>/api/v3` for
//! any other issuer: the API of a GitHub Enterprise Server, and where a test
//! provider serves it.

use http::header;
use serde_json::{Map, Value as Json};

use super::providers::{Callback, Pending};
use super::{Connection, Upstream, garbage, json_object, send};
use crate::Env;
use crate::error::{Error, Result};

/// GitHub's issuer (and web base URL).
pub const ISSUER: &str = "https://github.com";

/// GitHub's REST API.
pub const API: &str = "https://api.github.com";

/// The scopes asked for when the connection names none.
pub const DEFAULT_SCOPES: &str = "read:user user:email";

/// The `User-Agent` GitHub's API requires.
const USER_AGENT: &str = "Lanyard";

/// The connection's base URL (its issuer), without a trailing slash.
pub fn base(conn: &Connection) -> &str {
    conn.issuer
        .as_deref()
        .map(|i| i.trim_end_matches('/'))
        .filter(|i| !i.is_empty())
        .unwrap_or(ISSUER)
}

/// The REST API's base URL for the connection.
pub fn api(conn: &Connection) -> String {
    match base(conn) {
        ISSUER => API.to_owned(),
        other => format!("{other}/api/v3"),
    }
}

/// GitHub's authorization URL for this sign-in (no nonce: see the module).
pub fn authorize_url(
    _env: &Env,
    conn: &Connection,
    state: &str,
    code_challenge: &str,
    redirect_uri: &str,
) -> Result<String> {
    let mut url = url::Url::parse(&format!("{}/login/oauth/authorize", base(conn)))
        .map_err(|_| Error::Internal(format!("the connection `{}` has a bad issuer", conn.id)))?;
    let scopes = if conn.scopes.is_empty() {
        DEFAULT_SCOPES.to_owned()
    } else {
        conn.scopes.join(" ")
    };
    url.query_pairs_mut()
        .append_pair("client_id", &conn.client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", &scopes)
        .append_pair("state", state)
        .append_pair("code_challenge", code_challenge)
        .append_pair("code_challenge_method", "S256");
    Ok(url.into())
}

fn request(method: http::Method, url: &str) -> http::request::Builder {
    http::Request::builder()
        .method(method)
        .uri(url)
        .header(header::USER_AGENT, USER_AGENT)
}

fn built(b: http::request::Builder, body: Vec<u8>) -> Result<http::Request<Vec<u8>>> {
    b.body(body)
        .map_err(|e| Error::Internal(format!("upstream request: {e}")))
}

/// Exchanges the code for an access token. GitHub answers a refused code
/// with status 200 and an `error`: both shapes are refusals.
fn access_token(
    env: &Env,
    conn: &Connection,
    code: &str,
    code_verifier: &str,
    redirect_uri: &str,
) -> Result<String> {
    let secret = super::secret(env, conn)?;
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", &conn.client_id)
        .append_pair("client_secret", &secret)
        .append_pair("code", code)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("code_verifier", code_verifier)
        .finish();
    let req = request(
        http::Method::POST,
        &format!("{}/login/oauth/access_token", base(conn)),
    )
    .header(header::CONTENT_TYPE, crate::web::FORM)
    .header(header::ACCEPT, "application/json");
    let res = send(env, conn, built(req, body.into_bytes())?)?;
    let answer: Json = serde_json::from_slice(res.body()).unwrap_or_default();
    if let Some(code) = answer.get("error").and_then(Json::as_str) {
        let desc = answer["error_description"]
            .as_str()
            .map(|d| format!(": {d}"))
            .unwrap_or_default();
        return Err(Error::Upstream(format!(
            "{} refused to finish the sign-in ({code}{desc}). Please start again.",
            conn.name
        )));
    }
    if res.status().is_client_error() {
        return Err(Error::Upstream(format!(
            "{} refused to finish the sign-in (status {}). Please start again.",
            conn.name,
            res.status().as_u16()
        )));
    }
    let answer = json_object(conn, &res, "token response")?;
    answer
        .get("access_token")
        .and_then(Json::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| garbage(conn, "a token response without an access token"))
}

/// `GET <api><path>` with the access token.
fn api_get(
    env: &Env,
    conn: &Connection,
    token: &str,
    path: &str,
) -> Result<http::Response<Vec<u8>>> {
    let req = request(http::Method::GET, &format!("{}{path}", api(conn)))
        .header(header::ACCEPT, "application/vnd.github+json")
        .header("X-GitHub-Api-Version", "2022-11-28")
        .header(header::AUTHORIZATION, format!("Bearer {token}"));
    send(env, conn, built(req, Vec::new())?)
}

/// The verified primary address of `GET <api>/user/emails`, if any. A 403
/// or 404 (the address was not shared: no `user:email` scope, or a GitHub
/// App without the email permission) is no address; other failures are
/// errors.
fn verified_primary_email(env: &Env, conn: &Connection, token: &str) -> Result<Option<String>> {
    let res = api_get(env, conn, token, "/user/emails")?;
    if matches!(res.status().as_u16(), 403 | 404) {
        return Ok(None);
    }
    if !res.status().is_success() {
        return Err(refused(conn, res.status().as_u16(), "email addresses"));
    }
    let Ok(Json::Array(emails)) = serde_json::from_slice::<Json>(res.body()) else {
        return Err(garbage(
            conn,
            "a list of email addresses that is not a JSON array",
        ));
    };
    Ok(emails
        .iter()
        .find(|e| e["primary"] == true && e["verified"] == true)
        .and_then(|e| e["email"].as_str())
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(str::to_owned))
}

fn refused(conn: &Connection, status: u16, what: &str) -> Error {
    Error::Upstream(format!(
        "{} refused to give your {what} (status {status}). Nothing was changed; please start again.",
        conn.name
    ))
}

/// Exchanges the code and reads who signed in from the API.
pub fn finish(
    env: &Env,
    conn: &Connection,
    cb: &Callback,
    pending: &Pending,
    redirect_uri: &str,
) -> Result<Upstream> {
    let token = access_token(env, conn, &cb.code, &pending.code_verifier, redirect_uri)?;
    let res = api_get(env, conn, &token, "/user")?;
    if res.status().is_client_error() {
        return Err(refused(conn, res.status().as_u16(), "profile"));
    }
    let user = json_object(conn, &res, "profile")?;
    let subject = user
        .get("id")
        .and_then(Json::as_u64)
        .map(|id| id.to_string())
        .ok_or_else(|| garbage(conn, "a profile without a numeric id"))?;
    let email = verified_primary_email(env, conn, &token)?;
    Ok(Upstream {
        issuer: base(conn).to_owned(),
        subject: subject.clone(),
        email_verified: email.is_some(),
        claims: claims(user, &subject, email.as_deref()),
        email,
    })
}

/// The person's claims: GitHub's profile as it is, with the OpenID names
/// of what it says (`sub`, `preferred_username`, `picture`, `profile`), and
/// the verified primary address as `email` (never the profile's public
/// `email`, which is not necessarily verified).
fn claims(mut user: Map<String, Json>, subject: &str, email: Option<&str>) -> Map<String, Json> {
    user.retain(|_, v| !v.is_null());
    user.insert("sub".into(), subject.into());
    for (from, to) in [
        ("login", "preferred_username"),
        ("avatar_url", "picture"),
        ("html_url", "profile"),
    ] {
        if let Some(v) = user.get(from).filter(|v| v.is_string()).cloned() {
            user.insert(to.into(), v);
        }
    }
    match email {
        Some(e) => user.insert("email".into(), e.into()),
        None => user.remove("email"),
    };
    user.insert("email_verified".into(), email.is_some().into());
    user
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::microsoft::fake::{self, Http};
    use super::*;
    use crate::social::{Kind, Settings};
    use crate::testkit::World;

    const NOW: i64 = 1_800_000_000;
    const TOKEN: &str = "https://github.com/login/oauth/access_token";
    const USER: &str = "https://api.github.com/user";
    const EMAILS: &str = "https://api.github.com/user/emails";

    fn conn(issuer: Option<&str>) -> Connection {
        Connection {
            id: "github".into(),
            kind: Kind::Github,
            name: "GitHub".into(),
            issuer: issuer.map(str::to_owned),
            client_id: "Iv1.abc".into(),
            secret_variable: Some("github_secret".into()),
            scopes: vec![],
            settings: Settings::default(),
            trusted_email: true,
            org_id: None,
            default_role: None,
            enabled: true,
            created_at: 1,
            updated_at: 1,
        }
    }

    fn world() -> World {
        World::with(&[("github_secret", "gh-s3cret")])
    }

    fn profile() -> Json {
        json!({
            "login": "octocat", "id": 583231, "name": "The Octocat",
            "email": "public@example.com", "avatar_url": "https://avatars.example/u/583231",
            "html_url": "https://github.com/octocat", "company": null,
        })
    }

    fn happy(http: &Http, api: &str, token: &str) {
        http.json("POST", token, &json!({"access_token": "gho_x", "token_type": "bearer", "scope": "read:user,user:email"}));
        http.json("GET", &format!("{api}/user"), &profile());
        http.json(
            "GET",
            &format!("{api}/user/emails"),
            &json!([
                {"email": "old@example.com", "primary": false, "verified": true},
                {"email": "octo@example.com", "primary": true, "verified": true, "visibility": "private"},
            ]),
        );
    }

    fn run(w: &World, http: &Http, c: &Connection) -> Result<Upstream> {
        finish(
            &fake::env(w, http, NOW),
            c,
            &Callback {
                code: "gh-code".into(),
                user: None,
            },
            &Pending {
                nonce: "unused".into(),
                code_verifier: "verifier".into(),
            },
            "https://id.example.test/social/github/callback",
        )
    }

    #[test]
    fn the_authorization_request() {
        let (w, http) = (world(), Http::default());
        let url = authorize_url(
            &fake::env(&w, &http, NOW),
            &conn(None),
            "st",
            "chal",
            "https://id.example.test/social/github/callback",
        )
        .unwrap();
        let url = url::Url::parse(&url).unwrap();
        assert_eq!(
            url.as_str().split('?').next(),
            Some("https://github.com/login/oauth/authorize")
        );
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q["scope"], "read:user user:email");
        assert_eq!(q["state"], "st");
        assert_eq!(q["client_id"], "Iv1.abc");
        assert_eq!(
            q["redirect_uri"],
            "https://id.example.test/social/github/callback"
        );
        assert_eq!(q["code_challenge"], "chal");
        assert_eq!(q["code_challenge_method"], "S256");
        assert!(!q.contains_key("nonce"));
        assert!(http.seen.borrow().is_empty(), "nothing is fetched to start");
    }

    #[test]
    fn sign_in_reads_the_profile_and_the_verified_primary_address() {
        let (w, http) = (world(), Http::default());
        happy(&http, API, TOKEN);
        let up = run(&w, &http, &conn(None)).unwrap();
        assert_eq!(up.issuer, "https://github.com");
        assert_eq!(up.subject, "583231");
        assert_eq!(up.email.as_deref(), Some("octo@example.com"));
        assert!(up.email_verified);
        assert_eq!(up.claims["sub"], "583231");
        assert_eq!(up.claims["preferred_username"], "octocat");
        assert_eq!(up.claims["name"], "The Octocat");
        assert_eq!(up.claims["email"], "octo@example.com");
        assert_eq!(up.claims["picture"], "https://avatars.example/u/583231");
        assert!(up.claims.get("company").is_none());

        let token = &http.sent("POST", TOKEN)[0];
        assert_eq!(token.headers()["accept"], "application/json");
        let form: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(token.body())
                .into_owned()
                .collect();
        assert_eq!(form["client_id"], "Iv1.abc");
        assert_eq!(form["client_secret"], "gh-s3cret");
        assert_eq!(form["code"], "gh-code");
        assert_eq!(form["code_verifier"], "verifier");
        for url in [USER, EMAILS] {
            let req = &http.sent("GET", url)[0];
            assert_eq!(req.headers()["authorization"], "Bearer gho_x");
            assert_eq!(req.headers()["accept"], "application/vnd.github+json");
            assert_eq!(req.headers()["user-agent"], "Lanyard");
        }
    }

    #[test]
    fn no_verified_primary_address_is_no_email() {
        let (w, http) = (world(), Http::default());
        happy(&http, API, TOKEN);
        http.json(
            "GET",
            EMAILS,
            &json!([
                {"email": "primary@example.com", "primary": true, "verified": false},
                {"email": "other@example.com", "primary": false, "verified": true},
            ]),
        );
        let up = run(&w, &http, &conn(None)).unwrap();
        assert_eq!(up.email, None);
        assert!(!up.email_verified);
        assert!(
            up.claims.get("email").is_none(),
            "never the public profile email"
        );
        assert_eq!(up.claims["email_verified"], false);

        // Not shared (no user:email scope): no email either.
        http.on("GET", EMAILS, 404, r#"{"message":"Not Found"}"#);
        assert_eq!(run(&w, &http, &conn(None)).unwrap().email, None);
    }

    #[test]
    fn refusals_and_garbage_are_clear_errors() {
        let (w, http) = (world(), Http::default());
        happy(&http, API, TOKEN);
        // GitHub's refusal of a code is a 200 with an error.
        http.json("POST", TOKEN, &json!({"error": "bad_verification_code", "error_description": "The code passed is incorrect or expired."}));
        let err = run(&w, &http, &conn(None)).unwrap_err();
        assert!(
            matches!(&err, Error::Upstream(m) if m.contains("bad_verification_code")),
            "{err}"
        );
        assert!(
            http.sent("GET", USER).is_empty(),
            "no API call without a token"
        );

        http.json("POST", TOKEN, &json!({"token_type": "bearer"}));
        let err = run(&w, &http, &conn(None)).unwrap_err();
        assert!(
            matches!(&err, Error::Unavailable(m) if m.contains("without an access token")),
            "{err}"
        );

        happy(&http, API, TOKEN);
        http.on("GET", USER, 401, r#"{"message":"Bad credentials"}"#);
        let err = run(&w, &http, &conn(None)).unwrap_err();
        assert!(
            matches!(&err, Error::Upstream(m) if m.contains("profile") && m.contains("401")),
            "{err}"
        );

        http.on("GET", USER, 502, "bad gateway");
        let err = run(&w, &http, &conn(None)).unwrap_err();
        assert!(
            matches!(&err, Error::Unavailable(m) if m.contains("502")),
            "{err}"
        );

        http.json("GET", USER, &json!({"login": "octocat"}));
        let err = run(&w, &http, &conn(None)).unwrap_err();
        assert!(
            matches!(&err, Error::Unavailable(m) if m.contains("numeric id")),
            "{err}"
        );

        happy(&http, API, TOKEN);
        http.on("GET", EMAILS, 401, "{}");
        let err = run(&w, &http, &conn(None)).unwrap_err();
        assert!(
            matches!(&err, Error::Upstream(m) if m.contains("email addresses")),
            "{err}"
        );
        http.json("GET", EMAILS, &json!({"not": "a list"}));
        let err = run(&w, &http, &conn(None)).unwrap_err();
        assert!(
            matches!(&err, Error::Unavailable(m) if m.contains("JSON array")),
            "{err}"
        );

        let mut no_secret = world();
        no_secret.set("github_secret", None);
        let err = run(&no_secret, &http, &conn(None)).unwrap_err();
        assert!(
            matches!(&err, Error::Config { name, .. } if name == "github_secret"),
            "{err}"
        );
    }

    #[test]
    fn another_issuer_is_a_github_enterprise_server_or_a_test_provider() {
        let (w, http) = (world(), Http::default());
        let c = conn(Some("https://github.test/"));
        assert_eq!(api(&c), "https://github.test/api/v3");
        happy(
            &http,
            "https://github.test/api/v3",
            "https://github.test/login/oauth/access_token",
        );
        let up = run(&w, &http, &c).unwrap();
        assert_eq!(up.issuer, "https://github.test");
        assert_eq!(up.subject, "583231");
        let url = authorize_url(&fake::env(&w, &http, NOW), &c, "s", "c", "r").unwrap();
        assert!(url.starts_with("https://github.test/login/oauth/authorize?"));
    }
}
