//! A demo relying party, served at `/demo`: it signs a person in through
//! Lanyard with the authorization code flow and PKCE, as any application
//! would, over HTTP to the issuer, and validates the ID token offline with
//! `lanyard-verifier` against the JWKS. It uses the demo client that
//! `dev_mode` seeds (`demo` / `demo-secret`), and answers 404 without
//! `dev_mode`. When the client is `b2b`, the page also shows the
//! organisation and roles the token carries, as the verifier types them,
//! and, for a login through a mandate, who acts (`act`) and the mandate.

#[cfg(target_arch = "wasm32")]
mod app {
    use askama::Template;
    use http::{HeaderMap, HeaderValue, StatusCode, header};
    use lanyard::session::Policy;
    use lanyard::spin::{SpinKv, SpinVariables};
    use lanyard::store::{KvStore, kv};
    use lanyard::web::{self, Params, SetCookie};
    use lanyard::{Config, Error, Result, Style, crypto};
    use lanyard_verifier::{
        Actor, Fetched, LanyardClaims, Mandate, Organisation, TokenKind, Verifier,
    };
    use spin_sdk::http::{IncomingRequest, Method, ResponseOutparam};

    const CLIENT: (&str, &str) = lanyard::oidc::clients::DEMO_CLIENT;

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

    /// The response is sent by Lanyard's adapter, every header kept.
    #[spin_sdk::http_component]
    async fn handle(req: IncomingRequest, out: ResponseOutparam) {
        let vars = SpinVariables::default();
        let mut res = demo(&req, &vars)
            .await
            .unwrap_or_else(|e| e.into_response(Style::Page));
        web::transport_security(&mut res, &vars);
        lanyard::spin::send_response(out, res, Style::Page);
    }

    async fn demo(req: &IncomingRequest, vars: &SpinVariables) -> Result<web::Response> {
        let config = Config::load(vars)?;
        // The demo client exists only in dev_mode; in production the demo is
        // not there at all, and writes nothing.
        if !config.dev_mode()? {
            return Err(Error::NotFound);
        }
        if !matches!(req.method(), Method::Get) {
            return Err(Error::MethodNotAllowed("GET"));
        }
        let cookies = Cookies::new(Policy::load(vars)?.secure);
        let path = req.path_with_query().unwrap_or_default();
        let (route, query) = path.split_once('?').unwrap_or((&path, ""));
        let mut headers = HeaderMap::new();
        for (name, value) in req.headers().entries() {
            if name.eq_ignore_ascii_case("cookie")
                && let Ok(v) = HeaderValue::from_bytes(&value)
            {
                headers.append(header::COOKIE, v);
            }
        }
        let kv = SpinKv::default();
        let now = lanyard::time::now();
        let issuer = &config.issuer;
        match route {
            "/demo" | "/demo/" => {
                let claims = match web::cookie(&headers, cookies.session) {
                    Some(id) => {
                        kv::get(&kv, &session_key(id), now)?.and_then(|b| String::from_utf8(b).ok())
                    }
                    None => None,
                };
                page(StatusCode::OK, &config, claims, None)
            }
            "/demo/login" => {
                let state = crypto::random_token()?;
                let nonce = crypto::random_token()?;
                let verifier = crypto::random_token()?;
                let challenge = crypto::b64url(&crypto::sha256(verifier.as_bytes()));
                kv::put_json(
                    &kv,
                    &state_key(&state),
                    &serde_json::json!({ "verifier": verifier, "nonce": nonce }),
                    now + 600,
                )?;
                let url = format!(
                    "{issuer}/authorize?response_type=code&client_id={}&redirect_uri={}&scope=openid%20profile%20email&state={state}&nonce={nonce}&code_challenge={challenge}&code_challenge_method=S256",
                    CLIENT.0,
                    web::pct(&format!("{issuer}/demo/callback"))
                );
                redirect(&url, cookies.set(cookies.state, &state, 600)?)
            }
            "/demo/callback" => match callback(issuer, query, &headers, &cookies, &kv, now).await {
                Ok(session) => redirect("/demo", cookies.set(cookies.session, &session, 3600)?),
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
            _ => Err(Error::NotFound),
        }
    }

    fn state_key(state: &str) -> String {
        format!("demo:state:{state}")
    }

    fn session_key(id: &str) -> String {
        format!("demo:session:{}", crypto::hash_secret(id))
    }

    /// Checks state and iss, exchanges the code, validates the ID token, and
    /// returns the demo's new session id. A bad answer is `BadRequest`, a
    /// failing issuer `Unavailable`.
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
        let saved: serde_json::Value = kv::get_json(kv_store, &key, now)?
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
        let tokens: serde_json::Value = serde_json::from_slice(res.body())
            .map_err(|e| Error::Unavailable(format!("The token endpoint answered: {e}")))?;
        let id_token = tokens["id_token"]
            .as_str()
            .ok_or_else(|| refused(&format!("No ID token: {tokens}")))?;

        let jwks_req = http::Request::get(format!("{issuer}/jwks.json"))
            .body(Vec::new())
            .map_err(|e| Error::Internal(format!("JWKS request: {e}")))?;
        let jwks: http::Response<Vec<u8>> = spin_sdk::http::send(jwks_req)
            .await
            .map_err(|e| Error::Unavailable(format!("The JWKS could not be fetched: {e}")))?;
        let fetched = Fetched {
            status: jwks.status().as_u16(),
            cache_control: jwks
                .headers()
                .get("cache-control")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            body: jwks.into_body(),
        };
        let verifier = Verifier::new(issuer, CLIENT.0, move |_: &str| Ok(fetched.clone()));
        let verified = verifier
            .verify::<LanyardClaims>(id_token, TokenKind::Id)
            .map_err(|e| refused(&format!("The ID token was refused: {e}")))?;
        if verified.nonce.as_deref() != saved["nonce"].as_str() {
            return Err(refused("The ID token's nonce does not match."));
        }
        // All the token's claims again, the organisation's included.
        let serde_json::Value::Object(mut shown) = serde_json::to_value(&verified.claims)
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
        kv::put(
            kv_store,
            &session_key(&session),
            pretty.as_bytes(),
            now + 3600,
        )?;
        Ok(session)
    }
}
