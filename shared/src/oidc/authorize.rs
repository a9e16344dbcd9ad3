//! The authorization endpoint's logic (authorization code flow with PKCE,
//! RFC 6749 §4.1, RFC 7636, OIDC Core §3.1.2).
//!
//! Until `client_id` and `redirect_uri` are proven valid, errors are shown on
//! a page ([`Reject::Page`]); after that they go back to the client
//! ([`Reject::Redirect`], RFC 6749 §4.1.2.1).

use crate::crypto;
use crate::error::{Error, OAuthCode, Result};
use crate::oidc::clients::{self, Client};
use crate::store::{SqlStore, auth_codes, consents};
use crate::web::Params;

/// Codes live a minute (RFC 9700 recommends short).
pub const CODE_TTL: i64 = 60;

/// A validated authorization request.
#[derive(Debug, Clone)]
pub struct AuthRequest {
    /// The client.
    pub client: Client,
    /// The exact redirect URI presented (and registered).
    pub redirect_uri: String,
    /// Requested scopes, deduplicated, in order.
    pub scopes: Vec<String>,
    /// Echoed back to the client.
    pub state: Option<String>,
    /// Bound into the ID token.
    pub nonce: Option<String>,
    /// PKCE S256 challenge.
    pub code_challenge: String,
    /// `none`, `login`, `consent` (any subset; `none` alone).
    pub prompt: Vec<String>,
    /// Maximum authentication age, seconds.
    pub max_age: Option<i64>,
    /// A hint for the login form.
    pub login_hint: Option<String>,
}

/// Why a request is refused.
#[derive(Debug)]
pub enum Reject {
    /// Shown to the person: the client or redirect URI cannot be trusted.
    Page(Error),
    /// Sent back to the client's redirect URI.
    Redirect {
        /// Where to send it.
        redirect_uri: String,
        /// The client's state.
        state: Option<String>,
        /// The OAuth error code.
        error: &'static str,
        /// For the developer.
        description: String,
    },
}

fn is_unreserved(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// Validates an authorization request.
pub fn parse(db: &dyn SqlStore, params: &Params) -> std::result::Result<AuthRequest, Reject> {
    let page = |msg: String| Reject::Page(Error::bad_request(msg));
    let client_id = params
        .one("client_id")
        .map_err(Reject::Page)?
        .ok_or_else(|| {
            page("The application did not say who it is (client_id is missing).".into())
        })?;
    let client = clients::get(db, client_id)
        .map_err(Reject::Page)?
        .ok_or_else(|| page("This application is not registered here.".into()))?;
    let redirect_uri = params
        .one("redirect_uri")
        .map_err(Reject::Page)?
        .ok_or_else(|| {
            page("The application did not say where to return (redirect_uri is missing).".into())
        })?;
    if !client.accepts_redirect(redirect_uri) {
        return Err(page(
            "The application asked to return to an address it has not registered.".into(),
        ));
    }
    let redirect_uri = redirect_uri.to_owned();
    // From here on the client gets the error.
    // A repeated `state` cannot be echoed: the page, not the client, says so.
    let state = params
        .one("state")
        .map_err(Reject::Page)?
        .map(str::to_owned);
    let back = |error: &'static str, description: &str| Reject::Redirect {
        redirect_uri: redirect_uri.clone(),
        state: state.clone(),
        error,
        description: description.to_owned(),
    };
    let one = |name: &str| {
        params
            .one(name)
            .map_err(|_| back("invalid_request", &format!("`{name}` is repeated")))
    };
    if state.as_ref().is_some_and(|s| s.len() > 1024) {
        return Err(back("invalid_request", "state is too long"));
    }
    if one("request")?.is_some() {
        return Err(back(
            "request_not_supported",
            "request objects are not supported",
        ));
    }
    if one("request_uri")?.is_some() {
        return Err(back(
            "request_uri_not_supported",
            "request_uri is not supported",
        ));
    }
    match one("response_type")? {
        Some("code") => {}
        None => return Err(back("invalid_request", "response_type is missing")),
        Some(_) => {
            return Err(back(
                "unsupported_response_type",
                "only response_type=code is supported",
            ));
        }
    }
    if let Some(mode) = one("response_mode")?
        && mode != "query"
    {
        return Err(back(
            "invalid_request",
            "only response_mode=query is supported",
        ));
    }
    if !client.allows_grant("authorization_code") {
        return Err(back(
            "unauthorized_client",
            "this client may not use the authorization code flow",
        ));
    }
    let mut scopes: Vec<String> = Vec::new();
    for s in one("scope")?.unwrap_or("").split_ascii_whitespace() {
        if !scopes.iter().any(|x| x == s) {
            scopes.push(s.to_owned());
        }
    }
    if scopes.is_empty() {
        return Err(back("invalid_scope", "scope is missing"));
    }
    if let Some(bad) = scopes.iter().find(|s| !client.scopes.contains(s)) {
        return Err(back(
            "invalid_scope",
            &format!("scope `{bad}` is not allowed for this client"),
        ));
    }
    let code_challenge = one("code_challenge")?.ok_or_else(|| {
        back(
            "invalid_request",
            "PKCE is required: send code_challenge with code_challenge_method=S256",
        )
    })?;
    match one("code_challenge_method")? {
        Some("S256") => {}
        Some("plain") => {
            return Err(back(
                "invalid_request",
                "code_challenge_method=plain is not allowed; use S256",
            ));
        }
        _ => {
            return Err(back(
                "invalid_request",
                "code_challenge_method must be S256",
            ));
        }
    }
    if code_challenge.len() != 43 || !is_unreserved(code_challenge) {
        return Err(back(
            "invalid_request",
            "code_challenge must be a base64url SHA-256 (43 characters)",
        ));
    }
    let nonce = one("nonce")?.map(str::to_owned);
    if nonce.as_ref().is_some_and(|n| n.len() > 512) {
        return Err(back("invalid_request", "nonce is too long"));
    }
    let prompt: Vec<String> = one("prompt")?
        .unwrap_or("")
        .split_ascii_whitespace()
        .map(str::to_owned)
        .collect();
    if prompt
        .iter()
        .any(|p| !["none", "login", "consent"].contains(&p.as_str()))
    {
        return Err(back(
            "invalid_request",
            "prompt may be none, login or consent",
        ));
    }
    if prompt.iter().any(|p| p == "none") && prompt.len() > 1 {
        return Err(back("invalid_request", "prompt=none cannot be combined"));
    }
    let max_age = match one("max_age")? {
        None => None,
        Some(v) => Some(v.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            back(
                "invalid_request",
                "max_age must be a whole number of seconds",
            )
        })?),
    };
    let login_hint = one("login_hint")?
        .filter(|h| h.len() <= 254)
        .map(str::to_owned);
    Ok(AuthRequest {
        client,
        redirect_uri,
        scopes,
        state,
        nonce,
        code_challenge: code_challenge.to_owned(),
        prompt,
        max_age,
        login_hint,
    })
}

impl AuthRequest {
    /// Whether `prompt` contains this value.
    pub fn prompts(&self, value: &str) -> bool {
        self.prompt.iter().any(|p| p == value)
    }

    /// The space-separated scope string.
    pub fn scope(&self) -> String {
        self.scopes.join(" ")
    }
}

/// Whether the person already consented to these scopes for this client.
pub fn has_consent(db: &dyn SqlStore, identity_id: &str, req: &AuthRequest) -> Result<bool> {
    if req.client.first_party {
        return Ok(true);
    }
    let granted = consents::scopes(db, identity_id, &req.client.id)?.unwrap_or_default();
    Ok(req.scopes.iter().all(|s| granted.contains(s)))
}

/// Records consent, adding these scopes to what was granted before.
pub fn grant_consent(
    db: &dyn SqlStore,
    identity_id: &str,
    req: &AuthRequest,
    now: i64,
) -> Result<()> {
    let mut all = consents::scopes(db, identity_id, &req.client.id)?.unwrap_or_default();
    for s in &req.scopes {
        if !all.contains(s) {
            all.push(s.clone());
        }
    }
    consents::upsert(db, identity_id, &req.client.id, &all, now)
}

/// The signed-in person as the code records them.
pub struct Subject<'a> {
    /// Identity id.
    pub id: &'a str,
    /// When they authenticated.
    pub auth_time: i64,
    /// How.
    pub amr: &'a [String],
    /// Session id.
    pub sid: &'a str,
}

/// Issues a single-use code for the request and returns it.
pub fn issue_code(db: &dyn SqlStore, req: &AuthRequest, who: &Subject, now: i64) -> Result<String> {
    let code = crypto::random_token()?;
    let stored = auth_codes::Code {
        client_id: req.client.id.clone(),
        identity_id: who.id.to_owned(),
        redirect_uri: req.redirect_uri.clone(),
        scope: req.scope(),
        nonce: req.nonce.clone(),
        code_challenge: req.code_challenge.clone(),
        auth_time: who.auth_time,
        amr: who.amr.join(" "),
        sid: who.sid.to_owned(),
        expires_at: now + CODE_TTL,
    };
    auth_codes::insert(db, &crypto::hash_secret(&code), &stored)?;
    Ok(code)
}

/// The redirect back to the client: `code` or `error`, with `state` and `iss` (RFC 9207).
pub fn redirect_url(
    redirect_uri: &str,
    issuer: &str,
    state: Option<&str>,
    pairs: &[(&str, &str)],
) -> Result<String> {
    let mut url = url::Url::parse(redirect_uri)
        .map_err(|_| Error::oauth(OAuthCode::InvalidRequest, "bad redirect_uri"))?;
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in pairs {
            q.append_pair(k, v);
        }
        if let Some(s) = state {
            q.append_pair("state", s);
        }
        q.append_pair("iss", issuer);
    }
    Ok(url.into())
}
