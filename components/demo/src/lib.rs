//! A demo relying party, served at `/demo`: it signs a person in through
//! Lanyard with the authorization code flow and PKCE, as any application
//! would, over HTTP to the issuer, and validates the ID token offline with
//! `lanyard-verifier` against the JWKS. It uses the demo client that
//! `dev_mode` seeds (`demo` / `demo-secret`), and answers 404 without
//! `dev_mode`.

#[cfg(target_arch = "wasm32")]
mod app {
    use askama::Template;
    use lanyard::crypto;
    use lanyard::store::{KvStore, kv};
    use lanyard::web::{self, Params};
    use lanyard_verifier::{Fetched, TokenKind, Verifier};
    use spin_sdk::http::{IncomingRequest, Method};

    const CLIENT: (&str, &str) = lanyard::oidc::clients::DEMO_CLIENT;
    const STATE_COOKIE: &str = "demo_state";
    const SESSION_COOKIE: &str = "demo_session";

    #[derive(Template)]
    #[template(path = "demo.html")]
    struct Page<'a> {
        product: &'a str,
        claims: Option<String>,
        error: Option<&'a str>,
        logout: String,
    }

    fn page(
        product: &str,
        issuer: &str,
        claims: Option<String>,
        error: Option<&str>,
    ) -> web::Response {
        let logout = format!(
            "{issuer}/logout?client_id={}&post_logout_redirect_uri={}",
            CLIENT.0,
            web::pct(&format!("{issuer}/demo"))
        );
        let body = Page {
            product,
            claims,
            error,
            logout,
        }
        .render()
        .unwrap_or_default();
        web::html(http::StatusCode::OK, body)
    }

    fn redirect(to: &str, cookie: Option<String>) -> web::Response {
        let mut res = web::response(http::StatusCode::SEE_OTHER, "text/plain", Vec::new());
        if let Ok(v) = http::HeaderValue::from_str(to) {
            res.headers_mut().insert(http::header::LOCATION, v);
        }
        if let Some(c) = cookie.and_then(|c| http::HeaderValue::from_str(&c).ok()) {
            res.headers_mut().append(http::header::SET_COOKIE, c);
        }
        res
    }

    fn cookie(name: &str, value: &str, max_age: i64) -> String {
        format!("{name}={value}; Path=/demo; HttpOnly; SameSite=Lax; Max-Age={max_age}")
    }

    #[spin_sdk::http_component]
    async fn handle(req: IncomingRequest) -> anyhow::Result<web::Response> {
        let vars = lanyard::spin::SpinVariables::default();
        let config = lanyard::Config::load(&vars).map_err(|e| anyhow::anyhow!("{e}"))?;
        // The demo client exists only in dev_mode; in production the demo is
        // not there at all, and writes nothing.
        if !config.dev_mode {
            return Ok(lanyard::Error::NotFound.into_response(lanyard::Style::Page));
        }
        let issuer = config.issuer.clone();
        let path = req.path_with_query().unwrap_or_default();
        let (route, query) = path.split_once('?').unwrap_or((&path, ""));
        let cookies = req
            .headers()
            .get("cookie")
            .into_iter()
            .filter_map(|v| String::from_utf8(v).ok())
            .collect::<Vec<_>>()
            .join("; ");
        let mut headers = http::HeaderMap::new();
        if let Ok(v) = http::HeaderValue::from_str(&cookies) {
            headers.insert(http::header::COOKIE, v);
        }
        let store = spin_sdk::key_value::Store::open_default()?;
        let kv = Kv(store);
        let now = lanyard::time::now();
        if !matches!(req.method(), Method::Get) {
            return Ok(lanyard::Error::MethodNotAllowed("GET").into_response(lanyard::Style::Page));
        }
        Ok(match route {
            "/demo" | "/demo/" => {
                let claims = web::cookie(&headers, SESSION_COOKIE)
                    .and_then(|id| {
                        kv::get(
                            &kv,
                            &format!("demo:session:{}", crypto::hash_secret(id)),
                            now,
                        )
                        .ok()
                        .flatten()
                    })
                    .and_then(|b| String::from_utf8(b).ok());
                page(&config.product_name, &issuer, claims, None)
            }
            "/demo/login" => {
                let state = crypto::random_token()?;
                let nonce = crypto::random_token()?;
                let verifier = crypto::random_token()?;
                let challenge = crypto::b64url(&crypto::sha256(verifier.as_bytes()));
                let saved = serde_json::json!({ "verifier": verifier, "nonce": nonce }).to_string();
                kv::put(
                    &kv,
                    &format!("demo:state:{state}"),
                    saved.as_bytes(),
                    now + 600,
                )?;
                let url = format!(
                    "{issuer}/authorize?response_type=code&client_id={}&redirect_uri={}&scope=openid%20profile%20email&state={state}&nonce={nonce}&code_challenge={challenge}&code_challenge_method=S256",
                    CLIENT.0,
                    web::pct(&format!("{issuer}/demo/callback"))
                );
                redirect(&url, Some(cookie(STATE_COOKIE, &state, 600)))
            }
            "/demo/callback" => match callback(&issuer, query, &headers, &kv, now).await {
                Ok(session) => redirect("/demo", Some(cookie(SESSION_COOKIE, &session, 3600))),
                Err(e) => page(&config.product_name, &issuer, None, Some(&e)),
            },
            _ => lanyard::Error::NotFound.into_response(lanyard::Style::Page),
        })
    }

    /// Checks state and iss, exchanges the code, validates the ID token.
    async fn callback(
        issuer: &str,
        query: &str,
        headers: &http::HeaderMap,
        kv_store: &Kv,
        now: i64,
    ) -> Result<String, String> {
        let q = Params::parse(query.as_bytes()).map_err(|e| e.to_string())?;
        let one = |n: &str| q.one(n).ok().flatten().map(str::to_owned);
        if let Some(error) = one("error") {
            return Err(format!("Sign-in did not complete: {error}"));
        }
        let state = one("state").ok_or("The answer has no state.")?;
        if web::cookie(headers, STATE_COOKIE) != Some(state.as_str()) {
            return Err("This answer was not started in this browser.".into());
        }
        if one("iss").as_deref() != Some(issuer) {
            return Err("The answer comes from another issuer.".into());
        }
        let key = format!("demo:state:{state}");
        let saved = kv::get(kv_store, &key, now)
            .map_err(|e| e.to_string())?
            .ok_or("The sign-in took too long; try again.")?;
        kv_store.delete(&key).map_err(|e| e.to_string())?;
        let saved: serde_json::Value = serde_json::from_slice(&saved).map_err(|e| e.to_string())?;
        let code = one("code").ok_or("The answer has no code.")?;
        let body = format!(
            "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={}&client_id={}&client_secret={}",
            web::pct(&code),
            web::pct(&format!("{issuer}/demo/callback")),
            saved["verifier"].as_str().unwrap_or_default(),
            CLIENT.0,
            CLIENT.1
        );
        let req = http::Request::post(format!("{issuer}/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.into_bytes())
            .map_err(|e| e.to_string())?;
        let res: http::Response<Vec<u8>> = spin_sdk::http::send(req)
            .await
            .map_err(|e| format!("token endpoint: {e}"))?;
        let tokens: serde_json::Value =
            serde_json::from_slice(res.body()).map_err(|e| e.to_string())?;
        let id_token = tokens["id_token"]
            .as_str()
            .ok_or_else(|| format!("no ID token: {tokens}"))?;

        let jwks_req = http::Request::get(format!("{issuer}/jwks.json"))
            .body(Vec::new())
            .map_err(|e| e.to_string())?;
        let jwks: http::Response<Vec<u8>> = spin_sdk::http::send(jwks_req)
            .await
            .map_err(|e| format!("JWKS: {e}"))?;
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
            .verify::<serde_json::Value>(id_token, TokenKind::Id)
            .map_err(|e| format!("The ID token was refused: {e}"))?;
        if verified.nonce.as_deref() != saved["nonce"].as_str() {
            return Err("The ID token's nonce does not match.".into());
        }
        let mut shown = verified.claims.clone();
        shown["sub"] = verified.sub.clone().into();
        shown["iss"] = verified.iss.into();
        shown["exp"] = verified.exp.into();
        let pretty = serde_json::to_string_pretty(&shown).map_err(|e| e.to_string())?;
        let session = crypto::random_token().map_err(|e| e.to_string())?;
        kv::put(
            kv_store,
            &format!("demo:session:{}", crypto::hash_secret(&session)),
            pretty.as_bytes(),
            now + 3600,
        )
        .map_err(|e| e.to_string())?;
        Ok(session)
    }

    /// The demo's own key-value store (the demo is a separate app in spirit;
    /// here it shares the app's `default` store under a `demo:` prefix).
    struct Kv(spin_sdk::key_value::Store);

    impl KvStore for Kv {
        fn get(&self, key: &str) -> lanyard::Result<Option<Vec<u8>>> {
            self.0
                .get(key)
                .map_err(|e| lanyard::Error::Storage(format!("{e:?}")))
        }
        fn set(&self, key: &str, value: &[u8]) -> lanyard::Result<()> {
            self.0
                .set(key, value)
                .map_err(|e| lanyard::Error::Storage(format!("{e:?}")))
        }
        fn delete(&self, key: &str) -> lanyard::Result<()> {
            self.0
                .delete(key)
                .map_err(|e| lanyard::Error::Storage(format!("{e:?}")))
        }
    }
}
