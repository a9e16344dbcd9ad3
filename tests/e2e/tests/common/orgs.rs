//! Helpers for the organisation and mandate tests: the JSON API as a
//! browser's script or an application calls it, the operator's admin API,
//! verified people, b2b services and organisations, and the code flow of a
//! b2b client with its tokens.

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use serde_json::{Value, json as j};

use super::{App, Browser, ISSUER, form_body, header, json, text, urlencode};

pub const ADMIN: &str = "admin-token-for-tests-0123456789abcdef";
pub const PASSWORD: &str = "seven long words make a passphrase";
pub const REDIRECT: &str = "https://app.example.com/callback";
pub const B2B_SCOPE: &str = "openid profile email offline_access";

/// The app in dev mode with the operator's admin token.
pub async fn app() -> App {
    App::dev(&[("admin_token", ADMIN)]).await
}

/// A request to the JSON API as a browser's script sends it: JSON, from the
/// issuer's origin, with the session cookie if any.
pub async fn call(
    app: &App,
    method: &str,
    path: &str,
    body: Option<Value>,
    cookie: Option<&str>,
) -> Response<Bytes> {
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .header("origin", ISSUER);
    if let Some(c) = cookie {
        b = b.header("cookie", c);
    }
    let body = body.map(|v| Bytes::from(v.to_string())).unwrap_or_default();
    app.send(b.body(body).unwrap()).await
}

/// The same with a bearer access token instead of a cookie (no Origin: an
/// application's server calls).
pub async fn bearer(
    app: &App,
    method: &str,
    path: &str,
    body: Option<Value>,
    token: &str,
) -> Response<Bytes> {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {token}"))
        .body(body.map(|v| Bytes::from(v.to_string())).unwrap_or_default())
        .unwrap();
    app.send(req).await
}

/// The operator's admin API.
pub async fn admin(app: &App, method: &str, path: &str, body: Option<Value>) -> Response<Bytes> {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {ADMIN}"))
        .header("content-type", "application/json")
        .body(body.map(|b| Bytes::from(b.to_string())).unwrap_or_default())
        .unwrap();
    app.send(req).await
}

/// Asserts a problem+json answer with this status; returns its body.
#[track_caller]
pub fn problem(res: &Response<Bytes>, status: StatusCode) -> Value {
    assert_eq!(res.status(), status, "{}", text(res));
    assert_eq!(header(res, "content-type"), "application/problem+json");
    json(res)
}

/// Asserts the status; returns the JSON body (or null for an empty one).
#[track_caller]
pub fn expect(res: &Response<Bytes>, status: StatusCode) -> Value {
    assert_eq!(res.status(), status, "{}", text(res));
    if res.body().is_empty() {
        Value::Null
    } else {
        json(res)
    }
}

/// A signed-in person with a verified email.
pub struct Person {
    pub sub: String,
    /// `__Host-lanyard_session=…`
    pub cookie: String,
}

impl Person {
    pub fn c(&self) -> Option<&str> {
        Some(&self.cookie)
    }
}

pub fn session_cookie(res: &Response<Bytes>) -> String {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|v| v.starts_with("__Host-lanyard_session="))
        .unwrap_or_else(|| panic!("no session cookie: {:?}", res.headers()))
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

/// The token of the newest link mailed to `to`.
pub async fn mailed_token(app: &App, to: &str) -> String {
    let link = app.mailed_link(to).await;
    link.split("token=").nth(1).unwrap().to_owned()
}

/// Signs up by the JSON API, follows the verification link and signs in.
pub async fn person(app: &App, email: &str) -> Person {
    let res = call(
        app,
        "POST",
        "/api/account/signup",
        Some(j!({"email": email, "password": PASSWORD, "name": "Pat"})),
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED, "{}", text(&res));
    let token = mailed_token(app, email).await;
    let res = call(
        app,
        "POST",
        "/api/account/verify",
        Some(j!({"token": token})),
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK, "{}", text(&res));
    login(app, email).await
}

pub async fn login(app: &App, email: &str) -> Person {
    let res = call(
        app,
        "POST",
        "/api/account/login",
        Some(j!({"email": email, "password": PASSWORD})),
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK, "{}", text(&res));
    let cookie = session_cookie(&res);
    let me = call(app, "GET", "/api/account/me", None, Some(&cookie)).await;
    let sub = json(&me)["sub"].as_str().unwrap().to_owned();
    Person { sub, cookie }
}

/// Registers a b2b service (self-service activation) with this client
/// metadata on top of the defaults; returns (client_id, secret).
pub async fn register(app: &App, metadata: Value) -> (String, String) {
    let mut m = j!({
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": B2B_SCOPE,
        "b2b": true,
        "activation_policy": "self_service",
    });
    for (k, v) in metadata.as_object().unwrap() {
        m[k] = v.clone();
    }
    let res = admin(app, "POST", "/api/admin/clients", Some(m)).await;
    let b = expect(&res, StatusCode::CREATED);
    (
        b["client_id"].as_str().unwrap().to_owned(),
        b["client_secret"].as_str().unwrap_or_default().to_owned(),
    )
}

/// Creates an organisation owned by `owner`; returns it.
pub async fn org(app: &App, owner: &Person, slug: &str, name: &str) -> Value {
    let res = call(
        app,
        "POST",
        "/api/orgs",
        Some(j!({"name": name, "slug": slug})),
        owner.c(),
    )
    .await;
    expect(&res, StatusCode::CREATED)
}

pub async fn activate(app: &App, admin_: &Person, slug: &str, client: &str) -> Value {
    let res = call(
        app,
        "POST",
        &format!("/api/orgs/{slug}/services/{client}/activate"),
        None,
        admin_.c(),
    )
    .await;
    expect(&res, StatusCode::OK)
}

/// Creates a project of `client` in `slug`; returns its id.
pub async fn project(app: &App, admin_: &Person, slug: &str, client: &str, name: &str) -> String {
    let res = call(
        app,
        "POST",
        &format!("/api/orgs/{slug}/projects"),
        Some(j!({"client_id": client, "name": name})),
        admin_.c(),
    )
    .await;
    expect(&res, StatusCode::CREATED)["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Invites `email` into `slug`; returns the invitation and the mailed token.
pub async fn invite(app: &App, by: &Person, slug: &str, spec: Value) -> (Value, String) {
    let email = spec["email"].as_str().unwrap().to_lowercase();
    let res = call(
        app,
        "POST",
        &format!("/api/orgs/{slug}/invitations"),
        Some(spec),
        by.c(),
    )
    .await;
    let inv = expect(&res, StatusCode::CREATED);
    (inv, mailed_token(app, &email).await)
}

/// Accepts an invitation with this token: signed in with `cookie`, or
/// without one as a newcomer creating the account with [`PASSWORD`].
pub async fn accept(app: &App, token: &str, cookie: Option<&str>) -> Response<Bytes> {
    let body = if cookie.is_some() {
        j!({"token": token})
    } else {
        j!({"token": token, "password": PASSWORD})
    };
    call(
        app,
        "POST",
        "/api/orgs/invitations/accept",
        Some(body),
        cookie,
    )
    .await
}

/// A verified person who joined `slug` as a member by invitation.
pub async fn member(app: &App, owner: &Person, slug: &str, email: &str) -> Person {
    let p = person(app, email).await;
    let (_, token) = invite(app, owner, slug, j!({"email": email})).await;
    expect(&accept(app, &token, p.c()).await, StatusCode::OK);
    p
}

pub fn find<'a>(list: &'a Value, key: &str, value: &str) -> Option<&'a Value> {
    list.as_array().unwrap().iter().find(|x| x[key] == value)
}

// ------------------------------------------------------------------ code flow

pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

pub fn pkce() -> Pkce {
    let verifier = lanyard::crypto::random_token().unwrap();
    let challenge = lanyard::crypto::b64url(&lanyard::crypto::sha256(verifier.as_bytes()));
    Pkce {
        verifier,
        challenge,
    }
}

pub fn authorize_url(client: &str, scope: &str, p: &Pkce, extra: &str) -> String {
    format!(
        "/authorize?response_type=code&client_id={client}&redirect_uri={}&scope={}&state=st-1&nonce=n-1&code_challenge={}&code_challenge_method=S256{extra}",
        urlencode(REDIRECT),
        urlencode(scope),
        p.challenge
    )
}

/// The hidden fields of the first form on a page (without the CSRF token).
pub fn hidden_fields(page: &str) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    for chunk in page.split("<input type=\"hidden\" name=\"").skip(1) {
        let name = chunk.split('"').next().unwrap().to_owned();
        let value = chunk
            .split("value=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .replace("&#38;", "&")
            .replace("&amp;", "&");
        if name != "csrf" {
            fields.push((name, value));
        }
    }
    fields
}

/// A browser signed in as `p` (its session cookie).
pub fn browser<'a>(app: &'a App, p: &Person) -> Browser<'a> {
    let mut b = Browser::new(app);
    let (name, value) = p.cookie.split_once('=').unwrap();
    b.cookies.insert(name.into(), value.into());
    b
}

/// Posts the consent form on `page` with "allow".
pub async fn consent(b: &mut Browser<'_>, page: &str) -> Response<Bytes> {
    let mut fields = hidden_fields(page);
    fields.push(("decision".into(), "allow".into()));
    let refs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    b.post("/authorize", &refs).await
}

#[track_caller]
pub fn code_of(res: &Response<Bytes>) -> String {
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "{}", text(res));
    let location = header(res, "location");
    assert!(location.starts_with(REDIRECT), "{location}");
    let q: std::collections::HashMap<String, String> = url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    q.get("code")
        .unwrap_or_else(|| panic!("no code: {location}"))
        .clone()
}

pub async fn exchange(
    app: &App,
    client: &(String, String),
    code: &str,
    p: &Pkce,
) -> Response<Bytes> {
    token(
        app,
        client,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &p.verifier),
        ],
    )
    .await
}

/// A POST to `/token` authenticated with HTTP Basic.
pub async fn token(
    app: &App,
    client: &(String, String),
    fields: &[(&str, &str)],
) -> Response<Bytes> {
    use base64::Engine as _;
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", client.0, client.1));
    app.send(
        Request::post("/token")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("authorization", format!("Basic {basic}"))
            .body(form_body(fields))
            .unwrap(),
    )
    .await
}

/// The whole code flow for `scope` (consenting when asked): the token response.
pub async fn tokens(
    app: &App,
    b: &mut Browser<'_>,
    client: &(String, String),
    scope: &str,
) -> Value {
    let p = pkce();
    let mut res = b.get(&authorize_url(&client.0, scope, &p, "")).await;
    if res.status() == StatusCode::OK {
        let page = text(&res);
        res = consent(b, &page).await;
    }
    let code = code_of(&res);
    let res = exchange(app, client, &code, &p).await;
    expect(&res, StatusCode::OK)
}

/// A JWT's payload, as an application decodes it after verifying it.
pub fn payload(jwt: &str) -> Value {
    use base64::Engine as _;
    let part = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// The values of the choices on a picker page, in order (`org:<id>`,
/// `mandate:<id>`, `personal`).
pub fn offered(page: &str) -> Vec<String> {
    page.split("name=\"org\" value=\"")
        .skip(1)
        .map(|c| c.split('"').next().unwrap().to_owned())
        .collect()
}

/// The code flow for a b2b client's `B2B_SCOPE`: `pick` answers the
/// organisation picker (a form value) if it is shown, consent is given if
/// asked; the token response.
pub async fn b2b_tokens(
    app: &App,
    b: &mut Browser<'_>,
    client: &(String, String),
    extra: &str,
    pick: Option<&str>,
) -> Value {
    b2b_tokens_for(app, b, client, B2B_SCOPE, extra, pick).await
}

/// [`b2b_tokens`] for this scope.
pub async fn b2b_tokens_for(
    app: &App,
    b: &mut Browser<'_>,
    client: &(String, String),
    scope: &str,
    extra: &str,
    pick: Option<&str>,
) -> Value {
    let p = pkce();
    let mut res = b.get(&authorize_url(&client.0, scope, &p, extra)).await;
    for _ in 0..2 {
        if res.status() != StatusCode::OK {
            break;
        }
        let page = text(&res);
        let mut fields = hidden_fields(&page);
        if page.contains("Which organisation?") {
            fields.push(("org".into(), pick.expect("no picker expected").into()));
        } else {
            fields.push(("decision".into(), "allow".into()));
        }
        let refs: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        res = b.post("/authorize", &refs).await;
    }
    let code = code_of(&res);
    expect(&exchange(app, client, &code, &p).await, StatusCode::OK)
}

pub async fn refresh(app: &App, client: &(String, String), token_: &str) -> Response<Bytes> {
    token(
        app,
        client,
        &[("grant_type", "refresh_token"), ("refresh_token", token_)],
    )
    .await
}

/// Asserts an `invalid_grant` answer from `/token`.
#[track_caller]
pub fn refused(res: &Response<Bytes>) {
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{}", text(res));
    assert_eq!(json(res)["error"], "invalid_grant");
}

/// Userinfo for an access token.
pub async fn userinfo(app: &App, access: &str) -> Value {
    expect(
        &app.send(
            Request::get("/userinfo")
                .header("authorization", format!("Bearer {access}"))
                .body(Bytes::new())
                .unwrap(),
        )
        .await,
        StatusCode::OK,
    )
}
