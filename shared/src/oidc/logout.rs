//! Single sign-out (OpenID Connect Back-Channel and Front-Channel Logout
//! 1.0), without HTTP: from the clients that got tokens in sessions that
//! ended ([`session_clients`](crate::store::session_clients)), what to tell each of them.
//!
//! - A client with a `backchannel_logout_uri` gets a [`BackChannel`]: a
//!   logout token signed now, to POST as the form field `logout_token`.
//! - A client with a `frontchannel_logout_uri` gets a [`FrontChannel`]: the
//!   URI with `iss` and `sid` added, for a hidden iframe of the logout page,
//!   whose CSP `frame-src` allows exactly those origins ([`frame_src`]).
//!
//! The caller delivers (outbound HTTP, the page). A client deleted since,
//! or one that registered neither URI, is skipped.

use url::Url;

use crate::Env;
use crate::config::Config;
use crate::error::Result;
use crate::oidc::clients::{self, Client};
use crate::oidc::keys::Alg;
use crate::oidc::logout_token::{self, Ended};
use crate::oidc::tokens::Signer;
use crate::store::session_clients::Row;

/// A logout token to POST to a client's back-channel logout endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackChannel {
    /// The client.
    pub client_id: String,
    /// The session that ended.
    pub sid: String,
    /// Whose session it was.
    pub identity_id: String,
    /// Its `backchannel_logout_uri`.
    pub uri: String,
    /// The signed logout token, valid for [`logout_token::TTL`] seconds.
    pub logout_token: String,
}

/// A client's front-channel logout URI, for a hidden iframe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontChannel {
    /// The client.
    pub client_id: String,
    /// Its `frontchannel_logout_uri` with `iss` and `sid` added (§2: if
    /// either is added both must be; Lanyard always knows both).
    pub uri: String,
    /// The URI's origin, for the page's CSP `frame-src`.
    pub origin: String,
}

/// What to tell the clients of sessions that ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notices {
    /// Logout tokens to POST, one per (session, client).
    pub back: Vec<BackChannel>,
    /// Iframes for the logout page, one per (session, client).
    pub front: Vec<FrontChannel>,
}

/// What to tell each client of `ended` (rows taken with
/// [`crate::store::session_clients::take_session`] or `take_identity`).
/// Signs each back-channel token now, loading each algorithm's key once.
pub fn notices(env: &Env, config: &Config, ended: &[Row]) -> Result<Notices> {
    let mut out = Notices::default();
    let mut signers: Vec<(Alg, Signer)> = Vec::new();
    for row in ended {
        let Some(client) = clients::get(env.sql, &row.client_id)? else {
            continue;
        };
        if let Some(uri) = &client.logout.backchannel_logout_uri {
            let alg = logout_token::alg(&client);
            let signer = match signers.iter().position(|(a, _)| *a == alg) {
                Some(i) => &signers[i].1,
                None => {
                    signers.push((alg, Signer::load(env, config, alg)?));
                    &signers[signers.len() - 1].1
                }
            };
            let token = logout_token::sign_with(
                signer,
                config,
                &Ended {
                    client_id: &client.id,
                    sub: &row.identity_id,
                    sid: Some(&row.sid),
                },
                env.now,
            )?;
            out.back.push(BackChannel {
                client_id: client.id.clone(),
                sid: row.sid.clone(),
                identity_id: row.identity_id.clone(),
                uri: uri.clone(),
                logout_token: token,
            });
        }
        if let Some(front) = front_channel(config, &client, &row.sid) {
            out.front.push(front);
        }
    }
    Ok(out)
}

/// The iframe of `client` for session `sid`, if it registered a
/// front-channel logout URI (and the stored URI still parses).
pub fn front_channel(config: &Config, client: &Client, sid: &str) -> Option<FrontChannel> {
    let registered = client.logout.frontchannel_logout_uri.as_deref()?;
    let mut url = Url::parse(registered).ok()?;
    url.query_pairs_mut()
        .append_pair("iss", &config.issuer)
        .append_pair("sid", sid);
    Some(FrontChannel {
        client_id: client.id.clone(),
        origin: url.origin().ascii_serialization(),
        uri: url.into(),
    })
}

/// The CSP `frame-src` of a logout page with these iframes: exactly their
/// origins, each once, or `'none'` without any.
pub fn frame_src(front: &[FrontChannel]) -> String {
    let mut origins: Vec<&str> = front.iter().map(|f| f.origin.as_str()).collect();
    origins.sort_unstable();
    origins.dedup();
    if origins.is_empty() {
        "'none'".into()
    } else {
        origins.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value as Json, json};

    use super::*;
    use crate::store::session_clients;
    use crate::testkit::{self, ISSUER, World};

    const NOW: i64 = 1_800_000_000;

    fn claims(token: &str) -> Json {
        crate::oidc::tokens::unverified_payload(token).unwrap()
    }

    fn register(w: &World, id: &str, extra: Json) {
        let mut meta = json!({"client_name": id, "client_id": id,
                              "redirect_uris": [format!("https://{id}.example/cb")]});
        meta.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        testkit::client(&w.sql, meta, NOW);
    }

    #[test]
    fn each_client_of_an_ended_session_gets_what_it_registered() {
        let w = World::new();
        let config = Config::load(&w.vars).unwrap();
        register(
            &w,
            "shop",
            json!({"backchannel_logout_uri": "https://shop.example/bc",
                   "backchannel_logout_session_required": true}),
        );
        register(
            &w,
            "blog",
            json!({"backchannel_logout_uri": "https://blog.example/bc",
                   "id_token_signed_response_alg": "EdDSA",
                   "frontchannel_logout_uri": "https://blog.example/fc?lang=fi"}),
        );
        register(
            &w,
            "spa",
            json!({"frontchannel_logout_uri": "https://spa.example/fc"}),
        );
        register(&w, "quiet", json!({}));
        for client in ["shop", "blog", "spa", "quiet", "gone"] {
            session_clients::record(&w.sql, "sid-1", client, "ada", NOW - 60).unwrap();
        }
        let mut rows = session_clients::take_session(&w.sql, "sid-1").unwrap();
        rows.sort_by(|a, b| a.client_id.cmp(&b.client_id));
        let n = notices(&w.env(NOW), &config, &rows).unwrap();

        let back: Vec<(&str, &str)> = n
            .back
            .iter()
            .map(|b| (b.client_id.as_str(), b.uri.as_str()))
            .collect();
        assert_eq!(
            back,
            [
                ("blog", "https://blog.example/bc"),
                ("shop", "https://shop.example/bc")
            ]
        );
        for b in &n.back {
            let c = claims(&b.logout_token);
            assert_eq!(
                (c["aud"].as_str(), c["sub"].as_str(), c["sid"].as_str()),
                (Some(b.client_id.as_str()), Some("ada"), Some("sid-1"))
            );
            assert_eq!(c["iat"], NOW);
            assert!(c.get("nonce").is_none());
        }

        let iss = url::form_urlencoded::byte_serialize(ISSUER.as_bytes()).collect::<String>();
        assert_eq!(
            n.front,
            [
                FrontChannel {
                    client_id: "blog".into(),
                    uri: format!("https://blog.example/fc?lang=fi&iss={iss}&sid=sid-1"),
                    origin: "https://blog.example".into(),
                },
                FrontChannel {
                    client_id: "spa".into(),
                    uri: format!("https://spa.example/fc?iss={iss}&sid=sid-1"),
                    origin: "https://spa.example".into(),
                },
            ]
        );
        assert_eq!(
            frame_src(&n.front),
            "https://blog.example https://spa.example"
        );
    }

    #[test]
    fn frame_src_lists_each_origin_once_or_none() {
        assert_eq!(frame_src(&[]), "'none'");
        let f = |origin: &str| FrontChannel {
            client_id: "c".into(),
            uri: format!("{origin}/fc"),
            origin: origin.into(),
        };
        assert_eq!(
            frame_src(&[
                f("https://b.example"),
                f("http://localhost:8080"),
                f("https://b.example")
            ]),
            "http://localhost:8080 https://b.example"
        );
    }

    #[test]
    fn no_rows_no_notices() {
        let w = World::new();
        let config = Config::load(&w.vars).unwrap();
        assert_eq!(
            notices(&w.env(NOW), &config, &[]).unwrap(),
            Notices::default()
        );
    }
}
