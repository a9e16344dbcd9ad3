//! One error type for the whole domain. It knows nothing of HTTP: the one
//! place where it becomes a response is [`crate::routes::errors`].

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The OAuth 2.0 / OpenID Connect error codes Lanyard returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthCode {
    /// RFC 6749 `invalid_request`.
    InvalidRequest,
    /// RFC 6749 `invalid_client`.
    InvalidClient,
    /// RFC 6749 `invalid_grant`.
    InvalidGrant,
    /// RFC 6749 `unauthorized_client`.
    UnauthorizedClient,
    /// RFC 6749 `unsupported_grant_type`.
    UnsupportedGrantType,
    /// RFC 6749 `invalid_scope`.
    InvalidScope,
    /// RFC 8693 `invalid_target`: no token can be issued for the audience
    /// or resource asked for.
    InvalidTarget,
    /// RFC 6749 `access_denied`.
    AccessDenied,
    /// RFC 6749 `unsupported_response_type`.
    UnsupportedResponseType,
    /// RFC 6750 `invalid_token`.
    InvalidToken,
    /// OIDC `login_required`.
    LoginRequired,
    /// OIDC `consent_required`.
    ConsentRequired,
}

impl OAuthCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::InvalidTarget => "invalid_target",
            Self::AccessDenied => "access_denied",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidToken => "invalid_token",
            Self::LoginRequired => "login_required",
            Self::ConsentRequired => "consent_required",
        }
    }
}

/// Everything that can go wrong while handling a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// The input is malformed or fails validation. The message is shown to the caller.
    BadRequest(String),
    /// A mailed link (verification, reset) that cannot be used: unknown,
    /// expired or spent. It is shown on a page of its own, since the form
    /// that sent it cannot fix it.
    DeadLink(String),
    /// An OAuth protocol error with its RFC 6749 code.
    OAuth {
        /// The error code.
        code: OAuthCode,
        /// A human-readable description for the developer.
        description: String,
    },
    /// The caller must authenticate first.
    Unauthorized(String),
    /// The caller may not do this (including a missing or wrong CSRF token).
    Forbidden(String),
    /// A sensitive change (email, password, second factors, erasure) needs
    /// the password or a second factor entered within the last five
    /// minutes (see `routes::account::RECENT`).
    RecentSignInRequired,
    /// Nothing lives at this path, or the thing asked for does not exist.
    NotFound,
    /// The path exists but not for this method; the allowed methods are listed.
    MethodNotAllowed(&'static str),
    /// The request body is larger than `max_body_bytes`.
    PayloadTooLarge {
        /// The configured limit in bytes.
        limit: usize,
    },
    /// A form or API call that conflicts with existing state.
    Conflict(String),
    /// Too many attempts; try again after this many seconds.
    TooManyRequests {
        /// Seconds until the next attempt may succeed.
        retry_after: u64,
    },
    /// A Spin variable is missing or invalid. Names the variable.
    Config {
        /// The variable's name, as in `spin.toml`.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A service we depend on (the mail API, an upstream identity provider)
    /// failed, timed out or answered garbage; the message is shown.
    Unavailable(String),
    /// An upstream identity provider's answer cannot be trusted (a bad
    /// signature, a wrong issuer, audience or nonce, an expired token) or
    /// lacks what the sign-in needs; the message is shown.
    Upstream(String),
    /// Outbound HTTP to this origin is refused by the component's
    /// `allowed_outbound_hosts`: the operator must allow it.
    OutboundDenied(String),
    /// The key-value store or the database failed. Answered `503` with
    /// `Retry-After`: a store fault is usually brief (a lock, a full disk, a
    /// restart), and every change is one statement, so a retry is safe.
    Storage(String),
    /// A bug or an unexpected failure; details go to the log, not the caller.
    Internal(String),
}

impl Error {
    /// A `BadRequest` with this message.
    pub fn bad_request(msg: impl Into<String>) -> Self {
        Self::BadRequest(msg.into())
    }

    /// An OAuth error with this code and description.
    pub fn oauth(code: OAuthCode, description: impl Into<String>) -> Self {
        Self::OAuth {
            code,
            description: description.into(),
        }
    }

    /// A configuration error naming the variable.
    pub fn config(name: &str, reason: impl Into<String>) -> Self {
        Self::Config {
            name: name.to_owned(),
            reason: reason.into(),
        }
    }

    /// A short title for the error, the same for every instance of a kind.
    pub fn title(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "Invalid request",
            Self::DeadLink(_) => "This link cannot be used",
            Self::OAuth { .. } => "OAuth error",
            Self::Unauthorized(_) => "Authentication required",
            Self::Forbidden(_) => "Forbidden",
            Self::RecentSignInRequired => "Confirm it is you",
            Self::NotFound => "Not found",
            Self::MethodNotAllowed(_) => "Method not allowed",
            Self::PayloadTooLarge { .. } => "Request too large",
            Self::Conflict(_) => "Conflict",
            Self::Unavailable(_) | Self::Storage(_) => "Temporarily unavailable",
            Self::Upstream(_) => "Sign-in failed",
            Self::OutboundDenied(_) => "Provider not allowed",
            Self::TooManyRequests { .. } => "Too many attempts",
            Self::Config { .. } => "Server misconfigured",
            Self::Internal(_) => "Internal error",
        }
    }

    /// What the caller is told. Storage and internal details stay in the log;
    /// a configuration error names the variable so that the operator can fix it.
    pub fn detail(&self) -> String {
        match self {
            Self::BadRequest(m)
            | Self::DeadLink(m)
            | Self::Unauthorized(m)
            | Self::Forbidden(m)
            | Self::Conflict(m)
            | Self::Unavailable(m)
            | Self::Upstream(m) => m.clone(),
            Self::OutboundDenied(origin) => format!(
                "This server may not contact {origin}. The operator must add it to the social component's allowed_outbound_hosts in spin.toml (a social_outbound_host_N variable can hold it)."
            ),
            Self::OAuth { description, .. } => description.clone(),
            Self::RecentSignInRequired => "This change needs a recent sign-in: enter your password or a second factor again, then retry.".into(),
            Self::NotFound => "There is nothing at this address.".into(),
            Self::MethodNotAllowed(allow) => format!("This address accepts {allow} only."),
            Self::PayloadTooLarge { limit } => {
                format!("The request body is larger than the limit of {limit} bytes.")
            }
            Self::TooManyRequests { retry_after } => {
                format!("Too many attempts. Try again in {retry_after} seconds.")
            }
            Self::Config { name, reason } => {
                format!("The Spin variable `{name}` is not set correctly: {reason}")
            }
            Self::Storage(_) => {
                "We cannot reach our data store right now. Nothing was changed; please try again in a moment.".into()
            }
            Self::Internal(_) => "Something went wrong on our side. Please try again.".into(),
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.title(), self.detail())
    }
}

impl std::error::Error for Error {}
