//! A demo relying party, served at `/demo`: it signs a person in through
//! Lanyard with the authorization code flow and PKCE, as any application
//! would, over HTTP to the issuer, and validates the ID token offline with
//! `lanyard-verifier` against the JWKS. It uses the demo client that
//! `dev_mode` seeds (`demo` / `demo-secret`), and answers 404 without
//! `dev_mode`. When the client is `b2b`, the page also shows the
//! organisation and roles the token carries, as the verifier types them,
//! and, for a login through a mandate, who acts (`act`) and the mandate.
//!
//! Its sessions live in key-value (`demo:session:<hash of the cookie>`:
//! the claims shown, `sub`, Lanyard's `sid` and the refresh token that
//! `offline_access` brings), indexed by `demo:sid:<sid>` and
//! `demo:sub:<sub>` so that Lanyard can end them: `POST
//! /demo/backchannel-logout` takes a logout token (Back-Channel Logout 1.0)
//! and `GET /demo/frontchannel-logout?iss=…&sid=…` is loaded in an iframe
//! of Lanyard's logout page (Front-Channel Logout 1.0).

#[cfg(target_arch = "wasm32")]
mod app {
    use std::cell::RefCell;

    use askama::Template;
    use http::{HeaderMap, HeaderValue, StatusCode, header};
    use lanyard::session::Policy;
    use lanyard::spin::{SpinKv, SpinVariables};
    use lanyard::store::{KvStore, kv};
    use lanyard::web::{self, Params, SetCookie};
    use lanyard::{Config, Error, Result, Style, crypto};
    use lanyard_verifier::{
        Actor, Fetched, LanyardClaims, LogoutOptions, Mandate, Organisation, ReplayGuard,
        TokenKind, Verifier, VerifyError,
    };
    use serde_json::{Value, json};
    use spin_sdk::http::{IncomingRequest, Method, ResponseOutparam};

    const CLIENT: (&str, &str) = lanyard::oidc::clients::DEMO_CLIENT;
    /// How long a demo session (and its cookie) lasts, in seconds.
    const SESSION_TTL: i64 = 3600;
    /// Where Lanyard POSTs logout tokens (the seeded `backchannel_logout_uri`).
    const BACKCHANNEL: &str = "/demo/backchannel-logout";
    /// What Lanyard's logout page frames (the seeded `frontchannel_logout_uri`).
    const FRONTCHANNEL: &str = "/demo/frontchannel-logout";
    /// The largest back-channel logout body read, well above a logout
    /// token's form.
    const MAX_LOGOUT_BODY: usize = 16 * 1024;

    /// The demo's cookies: `demo_*`, never Lanyard's own `lanyard_*`, and
    /// like Lanyard's `Secure` and `__Host-` prefixed unless `cookie_secure`
    /// is off.
    struct Cookies {
        state: &'static str,
        session: &'static str,
        secure: bool,
    }

    impl Cookies {
        fn new(secure: bool) -> Self {
            if secure {
                Cookies {
                    state: "__Host-demo_state",
                    session: "__Host-demo_session",
                    secure,
                }
            } else {
                Cookies {
                    state: "demo_state",
                    session: "demo_session",
                    secure,
                }
            }
        }

        fn set(&self, name: &str, value: &str, max_age: i64) -> Result<HeaderValue> {
            SetCookie {
                name,
                value,
                max_age: Some(max_age),
                secure: self.secure,
            }
            .to_header()
        }
    }

    #[derive(Template)]
    #[template(path = "demo.html")]
    struct Page<'a> {
        product: &'a str,
        claims: Option<String>,
        /// The organisation in the claims (a `b2b` client's token).
        organisation: Option<Organisation>,
        /// Who acts for the organisation, through a mandate.
        act: Option<Actor>,
        /// The mandate, and when it ends (`YYYY-MM-DD HH:MM UTC`).
        mandate: Option<(Mandate, String)>,
        error: Option<&'a str>,
        logout: String,
    }

    /// The tiny page the front-channel logout answers inside Lanyard's
    /// iframe.
    #[derive(Template)]
    #[template(path = "demo_frontchannel.html")]
    struct FrontChannelPage<'a> {
        message: &'a str,
    }

    fn page(
        status: StatusCode,
        config: &Config,
        claims: Option<String>,
        error: Option<&str>,
    ) -> Result<web::Response> {
        let issuer = &config.issuer;
        let logout = format!(
            "{issuer}/logout?client_id={}&post_logout_redirect_uri={}",
            CLIENT.0,
            web::pct(&format!("{issuer}/demo"))
        );
        // The stored claims are the verified token's, organisation, act and
        // mandate included.
        let typed = claims
            .as_deref()
            .and_then(|c| serde_json::from_str::<LanyardClaims>(c).ok());
        let (organisation, act, mandate) = match typed {
            Some(c) => (c.organisation, c.act, c.mandate),
            None => (None, None, None),
        };
        let mandate = mandate.map(|m| {
            let ends = i64::try_from(m.expires_at)
                .map(lanyard::html::utc_time)
                .unwrap_or_default();
            (m, ends)
        });
        let body = Page {
            product: config.product_name()?,
            claims,
            organisation,
            act,
            mandate,
            error,
            logout,
        }
        .render()
        .unwrap_or_default();
        Ok(web::html(status, body))
    }

    /// A `303` to `to` that sets one cookie.
    fn redirect(to: &str, cookie: HeaderValue) -> Result<web::Response> {
        let mut res = web::redirect(to)?;
        res.headers_mut().append(header::SET_COOKIE, cookie);
        Ok(res)
    }

    /// The response is sent by Lanyard's adapter, every header kept. The
    /// back-channel endpoint answers errors as OAuth JSON, the rest as pages.
    #[spin_sdk::http_component]
    async fn handle(req: IncomingRequest, out: ResponseOutparam) {
        let vars = SpinVariables::default();
        let path = req.path_with_query().unwrap_or_default();
        let style = if path.split('?').next() == Some(BACKCHANNEL) {
            Style::OAuth
        } else {
            Style::Page
        };
        let mut res = demo(req, &path, &vars)
            .await
            .unwrap_or_else(|e| e.into_response(style));
        web::transport_security(&mut res, &vars);
        lanyard::spin::send_response(out, res, style);
    }

    async fn demo(req: IncomingRequest, path: &str, vars: &SpinVariables) -> Result<web::Response> {
        let config = Config::load(vars)?;
        // The demo client exists only in dev_mode; in production the demo is
        // not there at all, and writes nothing.
        if !config.dev_mode()? {
            return Err(Error::NotFound);
        }
        let (route, query) = path.split_once('?').unwrap_or((path, ""));
        let allowed = match route {
            BACKCHANNEL => "POST",
            "/demo" | "/demo/" | "/demo/login" | "/demo/callback" | FRONTCHANNEL => "GET",
            _ => return Err(Error::NotFound),
        };
        let method = match req.method() {
            Method::Get => "GET",
            Method::Post => "POST",
            _ => "",
        };
        if method != allowed {
            return Err(Error::MethodNotAllowed(allowed));
        }
        let cookies = Cookies::new(Policy::load(vars)?.secure);
        let mut headers = HeaderMap::new();
        for (name, value) in req.headers().entries() {
            let name = match name.to_ascii_lowercase().as_str() {
                "cookie" => header::COOKIE,
                "content-type" => header::CONTENT_TYPE,
                "content-length" => header::CONTENT_LENGTH,
                _ => continue,
            };
            if let Ok(v) = HeaderValue::from_bytes(&value) {
                headers.append(name, v);
            }
        }
        let kv = SpinKv::default();
        let now = lanyard::time::now();
        let issuer = &config.issuer;
        match route {
            "/demo" | "/demo/" => {
                let id = web::cookie(&headers, cookies.session);
                let claims = match id {
                    Some(id) => kv::get_json::<Value>(&kv, &session_key(id), now)?
                        .and_then(|s| s["claims"].as_str().map(str::to_owned)),
                    None => None,
                };
                let mut res = page(StatusCode::OK, &config, claims.clone(), None)?;
                // A cookie whose session ended (logout) or expired is dropped.
                if id.is_some() && claims.is_none() {
                    res.headers_mut()
                        .append(header::SET_COOKIE, cookies.set(cookies.session, "", 0)?);
                }
                Ok(res)
            }
            "/demo/login" => {
                let state = crypto::random_token()?;
                let nonce = crypto::random_token()?;
                let verifier = crypto::random_token()?;
                let challenge = crypto::b64url(&crypto::sha256(verifier.as_bytes()));
                kv::put_json(
                    &kv,
                    &state_key(&state),
                    &json!({ "verifier": verifier, "nonce": nonce }),
                    now + 600,
                )?;
                // offline_access: the sign-in holds a refresh-token family,
                // which Lanyard's logout then concerns too.
                let url = format!(
                    "{issuer}/authorize?response_type=code&client_id={}&redirect_uri={}&scope=openid%20profile%20email%20offline_access&state={state}&nonce={nonce}&code_challenge={challenge}&code_challenge_method=S256",
                    CLIENT.0,
                    web::pct(&format!("{issuer}/demo/callback"))
                );
                redirect(&url, cookies.set(cookies.state, &state, 600)?)
            }
            "/demo/callback" => match callback(issuer, query, &headers, &cookies, &kv, now).await {
                Ok(session) => redirect(
                    "/demo",
                    cookies.set(cookies.session, &session, SESSION_TTL)?,
                ),
                // A refused or failed sign-in is shown on the demo's page; a
                // store fault is Lanyard's 503.
                Err(e @ (Error::BadRequest(_) | Error::Unavailable(_))) => {
                    let status = match e {
                        Error::BadRequest(_) => StatusCode::BAD_REQUEST,
                        _ => StatusCode::BAD_GATEWAY,
                    };
                    page(status, &config, None, Some(&e.detail()))
                }
                Err(e) => Err(e),
            },
            BACKCHANNEL => {
                let form = headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.split(';').next())
                    .is_some_and(|v| v.trim().eq_ignore_ascii_case(web::FORM));
                if !form {
                    return Err(Error::bad_request(
                        "Expected an application/x-www-form-urlencoded body.",
                    ));
                }
                let declared = headers
                    .get(header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<usize>().ok());
                let too_large = || Error::bad_request("The body is too large for a logout token.");
                if declared.is_some_and(|n| n > MAX_LOGOUT_BODY) {
                    return Err(too_large());
                }
                let body = req.into_body().await.map_err(|e| {
                    Error::bad_request(format!("The body could not be read: {e:?}"))
                })?;
                if body.len() > MAX_LOGOUT_BODY {
                    return Err(too_large());
                }
                backchannel_logout(issuer, &body, &kv, now).await
            }
            FRONTCHANNEL => frontchannel_logout(issuer, query, &cookies, &kv, now),
            _ => Err(Error::NotFound),
        }
    }

    /// `POST /demo/backchannel-logout`: verifies the `logout_token` (once:
    /// its `jti` is remembered in key-value) and ends the demo sessions of
    /// its `sid`, or without one of its `sub`. `200` with an empty body; a
    /// refused token is `BadRequest`, answered `400` `invalid_request` (§2.8).
    async fn backchannel_logout(
        issuer: &str,
        body: &[u8],
        kv_store: &SpinKv,
        now: i64,
    ) -> Result<web::Response> {
        let form = Params::parse(body)?;
        let token = form.required("logout_token")?;
        let fetched = fetch_jwks(issuer).await?;
        let verifier = Verifier::new(issuer, CLIENT.0, move |_: &str| Ok(fetched.clone()));
        let guard = KvReplayGuard {
            kv: kv_store,
            recorded: RefCell::new(None),
            fault: RefCell::new(None),
        };
        let verified = verifier.verify_logout_token_once(token, &LogoutOptions::default(), &guard);
        if let Some(fault) = guard.fault.take() {
            return Err(fault);
        }
        let token = verified.map_err(|e| match e {
            VerifyError::Jwks(why) => {
                Error::Unavailable(format!("The JWKS could not be read: {why}"))
            }
            e => Error::bad_request(format!("The logout token was refused: {e}")),
        })?;
        let index = match (&token.sid, &token.sub) {
            (Some(sid), _) => sid_key(sid),
            (None, Some(sub)) => sub_key(sub),
            // The verifier refuses a token with neither.
            (None, None) => return Err(Error::bad_request("The logout token names no session.")),
        };
        if let Err(e) = end_sessions(kv_store, &index, now) {
            // Nothing was ended for sure: let a redelivery of this token pass.
            if let Some(key) = guard.recorded.take() {
                let _ = kv_store.delete(&key);
            }
            return Err(e);
        }
        let mut res = web::response(StatusCode::OK, "text/plain; charset=utf-8", Vec::new());
        web::no_store(&mut res);
        Ok(res)
    }

    /// `GET /demo/frontchannel-logout?iss=…&sid=…`, loaded in a hidden iframe
    /// of Lanyard's logout page: with this issuer and a `sid`, ends the demo
    /// sessions of that `sid` and clears this browser's session cookie. Its
    /// page may be framed by the issuer's origin only.
    fn frontchannel_logout(
        issuer: &str,
        query: &str,
        cookies: &Cookies,
        kv_store: &SpinKv,
        now: i64,
    ) -> Result<web::Response> {
        let q = Params::parse(query.as_bytes());
        let sid = match &q {
            Ok(q) if q.one("iss").ok().flatten() == Some(issuer) => q.one("sid").ok().flatten(),
            _ => None,
        };
        let Some(sid) = sid else {
            return framed_page(
                StatusCode::BAD_REQUEST,
                issuer,
                "This logout request does not name this issuer and a session.",
            );
        };
        end_sessions(kv_store, &sid_key(sid), now)?;
        let mut res = framed_page(StatusCode::OK, issuer, "Signed out of the demo app.")?;
        res.headers_mut()
            .append(header::SET_COOKIE, cookies.set(cookies.session, "", 0)?);
        Ok(res)
    }

    /// A front-channel logout page: Lanyard's page headers, except that the
    /// issuer's origin (and only it) may frame it.
    fn framed_page(status: StatusCode, issuer: &str, message: &str) -> Result<web::Response> {
        let uri: http::Uri = issuer
            .parse()
            .map_err(|_| Error::Internal("the issuer is not a URI".into()))?;
        let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            return Err(Error::Internal("the issuer has no origin".into()));
        };
        let csp = web::PAGE_CSP.replace(
            "frame-ancestors 'none'",
            &format!("frame-ancestors {scheme}://{authority}"),
        );
        let body = FrontChannelPage { message }.render().unwrap_or_default();
        let mut res = web::html(status, body);
        let h = res.headers_mut();
        h.remove(header::X_FRAME_OPTIONS);
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_str(&csp).map_err(|_| Error::Internal("frame-ancestors".into()))?,
        );
        Ok(res)
    }

    /// Remembers the logout tokens already accepted, in key-value under
    /// `demo:jti:<SHA-256 of the replay key>` until the token could no
    /// longer be accepted anyway.
    ///
    /// Key-value has no insert-if-absent, so this is a get then a set: two
    /// concurrent deliveries of one token may both pass, which only ends the
    /// same sessions twice; the demo accepts that. A production RP records
    /// the `jti` in one step, e.g. SQLite `INSERT … ON CONFLICT DO NOTHING`
    /// and a count of changed rows of 1 meaning first use.
    struct KvReplayGuard<'a> {
        kv: &'a SpinKv,
        /// The key this request recorded.
        recorded: RefCell<Option<String>>,
        /// A store fault, answered as such rather than as a replay.
        fault: RefCell<Option<Error>>,
    }

    impl ReplayGuard for KvReplayGuard<'_> {
        fn first_use(&self, key: &str, until: u64, now: u64) -> bool {
            let key = format!("demo:jti:{}", crypto::hash_secret(key));
            let now = i64::try_from(now).unwrap_or(i64::MAX);
            // The token is accepted up to `until` included; kv expires at it.
            let until = i64::try_from(until).unwrap_or(i64::MAX).saturating_add(1);
            let first = kv::get(self.kv, &key, now).and_then(|seen| match seen {
                Some(_) => Ok(false),
                None => kv::put(self.kv, &key, &[], until).map(|()| true),
            });
            match first {
                Ok(first) => {
                    if first {
                        *self.recorded.borrow_mut() = Some(key);
                    }
                    first
                }
                Err(e) => {
                    *self.fault.borrow_mut() = Some(e);
                    false
                }
            }
        }
    }

    /// The issuer's JWKS, fetched over HTTP as any app does.
    async fn fetch_jwks(issuer: &str) -> Result<Fetched> {
        let jwks_req = http::Request::get(format!("{issuer}/jwks.json"))
            .body(Vec::new())
            .map_err(|e| Error::Internal(format!("JWKS request: {e}")))?;
        let jwks: http::Response<Vec<u8>> = spin_sdk::http::send(jwks_req)
            .await
            .map_err(|e| Error::Unavailable(format!("The JWKS could not be fetched: {e}")))?;
        Ok(Fetched {
            status: jwks.status().as_u16(),
            cache_control: jwks
                .headers()
                .get("cache-control")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            body: jwks.into_body(),
        })
    }

    /// Adds the session stored under `session` to the list under `index`
    /// (a `sid` or a `sub`), drops the sessions that already ended, and
    /// keeps the list until `until` (the newest session's expiry). Key-value
    /// has no compare-and-swap: two sign-ins of one `sid` at the same moment
    /// may lose an entry, which the demo accepts.
    fn index_session(
        kv_store: &SpinKv,
        index: &str,
        session: &str,
        until: i64,
        now: i64,
    ) -> Result<()> {
        let listed: Vec<String> = kv::get_json(kv_store, index, now)?.unwrap_or_default();
        let mut keys = Vec::with_capacity(listed.len() + 1);
        for key in listed {
            if key != session && kv::get(kv_store, &key, now)?.is_some() {
                keys.push(key);
            }
        }
        keys.push(session.to_owned());
        kv::put_json(kv_store, index, &keys, until)
    }

    /// Deletes every demo session listed under `index`, and the list.
    fn end_sessions(kv_store: &SpinKv, index: &str, now: i64) -> Result<()> {
        let keys: Vec<String> = kv::get_json(kv_store, index, now)?.unwrap_or_default();
        for key in keys.iter().filter(|k| k.starts_with("demo:session:")) {
            kv_store.delete(key)?;
        }
        kv_store.delete(index)
    }

    fn state_key(state: &str) -> String {
        format!("demo:state:{state}")
    }

    fn session_key(id: &str) -> String {
        format!("demo:session:{}", crypto::hash_secret(id))
    }

    /// The demo sessions signed in during one Lanyard session.
    fn sid_key(sid: &str) -> String {
        format!("demo:sid:{sid}")
    }

    /// The demo sessions of one person.
    fn sub_key(sub: &str) -> String {
        format!("demo:sub:{sub}")
    }

    /// Checks state and iss, exchanges the code, validates the ID token, and
    /// returns the demo's new session id: its record holds the claims shown,
    /// `sub`, `sid` and the refresh token, and is indexed by `sid` and `sub`.
    /// A bad answer is `BadRequest`, a failing issuer `Unavailable`.
    async fn callback(
        issuer: &str,
        query: &str,
        headers: &HeaderMap,
        cookies: &Cookies,
        kv_store: &SpinKv,
        now: i64,
    ) -> Result<String> {
        let refused = |msg: &str| Error::bad_request(msg);
        // A repeated parameter is refused, never resolved by picking one.
        let q = Params::parse(query.as_bytes())?;
        if let Some(error) = q.one("error")? {
            return Err(refused(&format!("Sign-in did not complete: {error}")));
        }
        let state = q
            .one("state")?
            .ok_or_else(|| refused("The answer has no state."))?;
        if web::cookie(headers, cookies.state) != Some(state) {
            return Err(refused("This answer was not started in this browser."));
        }
        if q.one("iss")? != Some(issuer) {
            return Err(refused("The answer comes from another issuer."));
        }
        let code = q
            .one("code")?
            .ok_or_else(|| refused("The answer has no code."))?;
        let key = state_key(state);
        let saved: Value = kv::get_json(kv_store, &key, now)?
            .ok_or_else(|| refused("The sign-in took too long; try again."))?;
        kv_store.delete(&key)?;
        let body = format!(
            "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={}&client_id={}&client_secret={}",
            web::pct(code),
            web::pct(&format!("{issuer}/demo/callback")),
            web::pct(saved["verifier"].as_str().unwrap_or_default()),
            CLIENT.0,
            CLIENT.1
        );
        let req = http::Request::post(format!("{issuer}/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.into_bytes())
            .map_err(|e| Error::Internal(format!("token request: {e}")))?;
        let res: http::Response<Vec<u8>> = spin_sdk::http::send(req)
            .await
            .map_err(|e| Error::Unavailable(format!("The token endpoint failed: {e}")))?;
        let tokens: Value = serde_json::from_slice(res.body())
            .map_err(|e| Error::Unavailable(format!("The token endpoint answered: {e}")))?;
        let id_token = tokens["id_token"]
            .as_str()
            .ok_or_else(|| refused(&format!("No ID token: {tokens}")))?;

        let fetched = fetch_jwks(issuer).await?;
        let verifier = Verifier::new(issuer, CLIENT.0, move |_: &str| Ok(fetched.clone()));
        let verified = verifier
            .verify::<LanyardClaims>(id_token, TokenKind::Id)
            .map_err(|e| refused(&format!("The ID token was refused: {e}")))?;
        if verified.nonce.as_deref() != saved["nonce"].as_str() {
            return Err(refused("The ID token's nonce does not match."));
        }
        let sub = verified.sub.clone();
        let sid = verified.claims.claims["sid"].as_str().map(str::to_owned);
        // All the token's claims again, the organisation's included.
        let Value::Object(mut shown) = serde_json::to_value(&verified.claims)
            .map_err(|e| Error::Internal(format!("claims: {e}")))?
        else {
            return Err(Error::Internal("claims: not an object".into()));
        };
        shown.insert("sub".into(), verified.sub.into());
        shown.insert("iss".into(), verified.iss.into());
        shown.insert("exp".into(), verified.exp.into());
        let pretty = serde_json::to_string_pretty(&shown)
            .map_err(|e| Error::Internal(format!("claims: {e}")))?;
        let session = crypto::random_token()?;
        let key = session_key(&session);
        let until = now + SESSION_TTL;
        // Indexed first, so that a stored session can always be ended.
        if let Some(sid) = &sid {
            index_session(kv_store, &sid_key(sid), &key, until, now)?;
        }
        index_session(kv_store, &sub_key(&sub), &key, until, now)?;
        kv::put_json(
            kv_store,
            &key,
            &json!({
                "claims": pretty,
                "sub": sub,
                "sid": sid,
                "refresh_token": tokens["refresh_token"].as_str(),
            }),
            until,
        )?;
        Ok(session)
    }
}
