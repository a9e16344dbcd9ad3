//! Outgoing mail. In `dev_mode` mail goes to the dev outbox (a SQLite table
//! shown at `/dev/outbox`); otherwise it is POSTed as JSON to an HTTP mail API
//! (`{"from", "to", "subject", "text"}` with a bearer token, the shape Resend
//! and similar APIs take). The API's host must be in the login component's
//! `allowed_outbound_hosts`.

use askama::Template;
use http::{HeaderValue, header};
use serde::Serialize;

use crate::Env;
use crate::config::{self, Config};
use crate::error::{Error, Result};
use crate::store::dev_outbox;

/// Outbound HTTP, as the host provides it (Spin's `wasi:http/outgoing-handler`).
pub trait HttpClient {
    /// Sends a request and returns the whole response.
    fn send(&self, req: http::Request<Vec<u8>>) -> Result<http::Response<Vec<u8>>>;

    /// Sends every request at once and waits at most `limit` in all for
    /// their answers: each answer's status, in the order of `reqs`, or why it
    /// failed (a request still unanswered at `limit` fails as timed out). The
    /// answers' bodies are not read. Redirects are not followed.
    ///
    /// This default sends one after the other, each with the host's own
    /// time-outs; the Spin client overrides it to send in parallel.
    fn send_all(
        &self,
        reqs: Vec<http::Request<Vec<u8>>>,
        limit: std::time::Duration,
    ) -> Vec<Result<http::StatusCode>> {
        let _ = limit;
        reqs.into_iter()
            .map(|req| self.send(req).map(|res| res.status()))
            .collect()
    }
}

/// A client for environments without outbound HTTP: every call fails.
pub struct NoHttp;

impl HttpClient for NoHttp {
    fn send(&self, _req: http::Request<Vec<u8>>) -> Result<http::Response<Vec<u8>>> {
        Err(Error::Unavailable(
            "Outbound HTTP is not available here.".into(),
        ))
    }
}

/// A message to one person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mail {
    /// The recipient's address.
    pub to: String,
    /// The subject line.
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// The one link the message is about, if any (shown in the outbox).
    pub link: Option<String>,
}

#[derive(Template)]
#[template(path = "mail/verify.txt")]
struct VerifyText<'a> {
    product: &'a str,
    link: &'a str,
}

#[derive(Template)]
#[template(path = "mail/already.txt")]
struct AlreadyText<'a> {
    product: &'a str,
    issuer: &'a str,
}

#[derive(Template)]
#[template(path = "mail/reset.txt")]
struct ResetText<'a> {
    product: &'a str,
    link: &'a str,
}

#[derive(Template)]
#[template(path = "mail/reset_unknown.txt")]
struct ResetUnknownText<'a> {
    product: &'a str,
    issuer: &'a str,
}

#[derive(Template)]
#[template(path = "mail/verify_unknown.txt")]
struct VerifyUnknownText<'a> {
    product: &'a str,
    issuer: &'a str,
}

#[derive(Template)]
#[template(path = "mail/invite.txt")]
struct InviteText<'a> {
    product: &'a str,
    org: &'a str,
    inviter: &'a str,
    link: &'a str,
}

#[derive(Template)]
#[template(path = "mail/mandate.txt")]
struct MandateText<'a> {
    product: &'a str,
    org: &'a str,
    service: &'a str,
    link: &'a str,
}

fn render(t: &impl Template) -> Result<String> {
    t.render()
        .map_err(|e| Error::Internal(format!("mail template: {e}")))
}

impl Mail {
    /// "Verify your email", with a link that carries the token.
    pub fn verify(config: &Config, to: &str, token: &str) -> Result<Mail> {
        let link = config.url(&format!("/verify?token={token}"));
        Ok(Mail {
            to: to.to_owned(),
            subject: format!("Verify your email for {}", config.product_name()?),
            text: render(&VerifyText {
                product: config.product_name()?,
                link: &link,
            })?,
            link: Some(link),
        })
    }

    /// "You already have an account", sent instead of a second sign-up.
    pub fn already_registered(config: &Config, to: &str) -> Result<Mail> {
        Ok(Mail {
            to: to.to_owned(),
            subject: format!("You already have a {} account", config.product_name()?),
            text: render(&AlreadyText {
                product: config.product_name()?,
                issuer: &config.issuer,
            })?,
            link: Some(config.url("/login")),
        })
    }

    /// "Reset your password", with a link that carries the token.
    pub fn reset(config: &Config, to: &str, token: &str) -> Result<Mail> {
        let link = config.url(&format!("/reset?token={token}"));
        Ok(Mail {
            to: to.to_owned(),
            subject: format!("Reset your {} password", config.product_name()?),
            text: render(&ResetText {
                product: config.product_name()?,
                link: &link,
            })?,
            link: Some(link),
        })
    }

    /// "You are invited to join an organisation", with a link that carries
    /// the invitation's token.
    pub fn invitation(
        config: &Config,
        to: &str,
        org: &str,
        inviter: &str,
        token: &str,
    ) -> Result<Mail> {
        let link = config.url(&format!("/orgs/join?token={token}"));
        Ok(Mail {
            to: to.to_owned(),
            subject: format!("Join {org} on {}", config.product_name()?),
            text: render(&InviteText {
                product: config.product_name()?,
                org,
                inviter,
                link: &link,
            })?,
            link: Some(link),
        })
    }

    /// "An organisation asks you to act for it", with a link that carries
    /// the mandate's token.
    pub fn mandate(
        config: &Config,
        to: &str,
        org: &str,
        service: &str,
        token: &str,
    ) -> Result<Mail> {
        let link = config.url(&format!("/orgs/mandates/accept?token={token}"));
        Ok(Mail {
            to: to.to_owned(),
            subject: format!("{org} asks you to act for it on {}", config.product_name()?),
            text: render(&MandateText {
                product: config.product_name()?,
                org,
                service,
                link: &link,
            })?,
            link: Some(link),
        })
    }

    /// "There is no account with this address", for a reset request.
    pub fn reset_unknown(config: &Config, to: &str) -> Result<Mail> {
        Ok(Mail {
            to: to.to_owned(),
            subject: format!("{} password reset", config.product_name()?),
            text: render(&ResetUnknownText {
                product: config.product_name()?,
                issuer: &config.issuer,
            })?,
            link: None,
        })
    }

    /// "No account is waiting for verification", for a resend request.
    pub fn verify_unknown(config: &Config, to: &str) -> Result<Mail> {
        Ok(Mail {
            to: to.to_owned(),
            subject: format!("Verify your email for {}", config.product_name()?),
            text: render(&VerifyUnknownText {
                product: config.product_name()?,
                issuer: &config.issuer,
            })?,
            link: None,
        })
    }
}

#[derive(Template)]
#[template(path = "mail/email_change.txt")]
struct EmailChangeText<'a> {
    product: &'a str,
    link: &'a str,
}

#[derive(Template)]
#[template(path = "mail/email_in_use.txt")]
struct EmailInUseText<'a> {
    product: &'a str,
    issuer: &'a str,
}

#[derive(Template)]
#[template(path = "mail/email_changed.txt")]
struct EmailChangedText<'a> {
    product: &'a str,
    issuer: &'a str,
    new_email: &'a str,
}

/// The mails of an email change (the account centre).
impl Mail {
    /// "Confirm your new address", to the new address, with a link that
    /// carries the change's token.
    pub fn email_change(config: &Config, to: &str, token: &str) -> Result<Mail> {
        let link = config.url(&format!("/account/email/confirm?token={token}"));
        Ok(Mail {
            to: to.to_owned(),
            subject: format!("Confirm your new email for {}", config.product_name()?),
            text: render(&EmailChangeText {
                product: config.product_name()?,
                link: &link,
            })?,
            link: Some(link),
        })
    }

    /// "This address already has an account", to a new address that is
    /// taken, instead of the confirmation link.
    pub fn email_in_use(config: &Config, to: &str) -> Result<Mail> {
        Ok(Mail {
            to: to.to_owned(),
            subject: format!("Confirm your new email for {}", config.product_name()?),
            text: render(&EmailInUseText {
                product: config.product_name()?,
                issuer: &config.issuer,
            })?,
            link: None,
        })
    }

    /// "Your address was changed", to the old address.
    pub fn email_changed(config: &Config, to: &str, new_email: &str) -> Result<Mail> {
        Ok(Mail {
            to: to.to_owned(),
            subject: format!("Your {} email address was changed", config.product_name()?),
            text: render(&EmailChangedText {
                product: config.product_name()?,
                issuer: &config.issuer,
                new_email,
            })?,
            link: None,
        })
    }
}

/// Sends a message: to the outbox in `dev_mode`, to the mail API otherwise.
pub fn send(env: &Env, config: &Config, mail: &Mail) -> Result<()> {
    if config.dev_mode()? {
        return dev_outbox::insert(
            env.sql,
            &mail.to,
            &mail.subject,
            &mail.text,
            mail.link.as_deref(),
            env.now,
        );
    }
    let url = config::required(env.vars, "mail_api_url")?;
    let parsed = url::Url::parse(&url).map_err(|_| Error::config("mail_api_url", "not a URL"))?;
    if parsed.scheme() != "https" && parsed.scheme() != "http" {
        return Err(Error::config("mail_api_url", "use an https URL"));
    }
    let token = config::optional(env.vars, "mail_api_token")?.unwrap_or_default();
    let from = match config::optional(env.vars, "mail_from")? {
        Some(from) => from,
        None => format!(
            "{} <no-reply@{}>",
            config.product_name()?,
            host_of(&config.issuer)
        ),
    };
    #[derive(Serialize)]
    struct Body<'a> {
        from: &'a str,
        to: &'a str,
        subject: &'a str,
        text: &'a str,
    }
    let body = serde_json::to_vec(&Body {
        from: &from,
        to: &mail.to,
        subject: &mail.subject,
        text: &mail.text,
    })
    .map_err(|e| Error::Internal(e.to_string()))?;
    let mut req = http::Request::post(parsed.as_str())
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .map_err(|e| Error::Internal(e.to_string()))?;
    if !token.is_empty() {
        let auth = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
            Error::config(
                "mail_api_token",
                "contains characters not allowed in a header",
            )
        })?;
        req.headers_mut().insert(header::AUTHORIZATION, auth);
    }
    let unavailable = || {
        Error::Unavailable(
            "We could not send the email just now. Please try again in a moment.".into(),
        )
    };
    match env.http.send(req) {
        Ok(res) if res.status().is_success() => Ok(()),
        Ok(res) => {
            eprintln!("lanyard: mail API answered {}", res.status());
            Err(unavailable())
        }
        Err(e) => {
            eprintln!("lanyard: mail API unreachable: {e}");
            Err(unavailable())
        }
    }
}

fn host_of(issuer: &str) -> String {
    url::Url::parse(issuer)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "localhost".into())
}
