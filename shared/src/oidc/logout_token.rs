//! Logout tokens (OpenID Connect Back-Channel Logout 1.0 §2.4): what Lanyard
//! POSTs to a client's `backchannel_logout_uri` when a session in which the
//! client got tokens ends.
//!
//! A logout token is explicitly typed (`typ: logout+jwt`, §2.4 and §4.1), so
//! that it cannot pass for an ID token or an access token, and an ID token
//! cannot pass for it. It carries `iss`, `aud` (the client), `iat`, a short
//! `exp` (two minutes: each delivery, a retry too, signs a new one), a
//! random `jti`, the back-channel logout event, `sub` (the person) and the
//! session's `sid` when it is known, and never a `nonce`. It is signed with
//! the key of the client's ID-token algorithm, which the client already
//! verifies.

use std::collections::BTreeMap;

use jwt_simple::prelude::JWTClaims;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::Env;
use crate::config::Config;
use crate::error::Result;
use crate::oidc::clients::Client;
use crate::oidc::keys::Alg;
use crate::oidc::tokens::{self, Signer};

/// The header `typ` of a logout token.
pub const TYP: &str = "logout+jwt";

/// The member of `events` that makes a JWT a back-channel logout token.
pub const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// How long a logout token is valid, in seconds (§4.1 suggests at most two
/// minutes, against replays of a captured token).
pub const TTL: i64 = 120;

/// The claims of a logout token beyond the registered ones.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LogoutClaims {
    /// `{ EVENT: {} }`.
    pub events: BTreeMap<String, Json>,
    /// The Lanyard session that ended, as in the ID tokens issued in it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sid: Option<String>,
}

/// What ended, for one client: the person, and the session when it is one
/// session (not every session of the person).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ended<'a> {
    /// The client to notify (the token's `aud`).
    pub client_id: &'a str,
    /// The person (the `sub` of the ID tokens the client got).
    pub sub: &'a str,
    /// The session (`sid`), when known.
    pub sid: Option<&'a str>,
}

/// The claims of a logout token for `ended`, issued at `now`. Without a
/// `sid` the token means every session of the person at the client.
pub fn claims(config: &Config, ended: &Ended<'_>, now: i64) -> Result<JWTClaims<LogoutClaims>> {
    let custom = LogoutClaims {
        events: BTreeMap::from([(EVENT.to_owned(), Json::Object(Default::default()))]),
        sid: ended.sid.map(str::to_owned),
    };
    // The registered claims of every token, with a fresh `jti` and never a
    // nonce (§2.4: it would let the token pass for an ID token).
    tokens::claims(custom, config, ended.sub, ended.client_id, now, TTL)
}

/// The algorithm a client's logout tokens are signed with: its ID tokens'.
pub fn alg(client: &Client) -> Alg {
    Alg::from_name(&client.id_token_alg).unwrap_or(Alg::Es256)
}

/// Signs a logout token for `ended` with `signer`, which must hold the key
/// of [`alg`] for the client (several tokens of one algorithm share a
/// loaded key).
pub fn sign_with(signer: &Signer, config: &Config, ended: &Ended<'_>, now: i64) -> Result<String> {
    signer.sign(claims(config, ended, now)?, TYP)
}

/// Signs a logout token for `client` about `sub` and, when known, the
/// session `sid`, with the key of the client's ID-token algorithm.
pub fn sign(
    env: &Env,
    config: &Config,
    client: &Client,
    sub: &str,
    sid: Option<&str>,
) -> Result<String> {
    let signer = Signer::load(env, config, alg(client))?;
    let ended = Ended {
        client_id: &client.id,
        sub,
        sid,
    };
    sign_with(&signer, config, &ended, env.now)
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use jwt_simple::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::oidc::keys;
    use crate::testkit::{self, ISSUER, World};

    const NOW: i64 = 1_800_000_000;

    fn part(token: &str, i: usize) -> Json {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.split('.').nth(i).unwrap())
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    fn published(w: &World, config: &Config, kid: &str) -> String {
        keys::published(&w.env(NOW), config)
            .unwrap()
            .into_iter()
            .map(|k| k.jwk)
            .find(|k| k["kid"] == kid)
            .unwrap()
            .to_string()
    }

    #[test]
    fn a_logout_token_is_typed_signed_and_carries_what_the_spec_asks() {
        let w = World::new();
        let config = Config::load(&w.vars).unwrap();
        let (client, _) = testkit::client(
            &w.sql,
            json!({"client_name": "Shop", "client_id": "shop", "redirect_uris": ["https://shop.example/cb"]}),
            NOW,
        );
        let token = sign(&w.env(NOW), &config, &client, "person-1", Some("sid-1")).unwrap();
        let header = part(&token, 0);
        assert_eq!(
            (header["typ"].as_str(), header["alg"].as_str()),
            (Some(TYP), Some("ES256"))
        );
        let claims = part(&token, 1);
        assert_eq!(claims["iss"], ISSUER);
        assert_eq!(claims["aud"], "shop");
        assert_eq!(claims["sub"], "person-1");
        assert_eq!(claims["sid"], "sid-1");
        assert_eq!(claims["iat"], NOW);
        assert_eq!(claims["exp"], NOW + TTL);
        assert_eq!(claims["events"], json!({ EVENT: {} }));
        assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 22));
        assert!(claims.get("nonce").is_none() && claims.get("nbf").is_none());

        // The signature is the published key's.
        let kid = header["kid"].as_str().unwrap();
        let key = ES256PublicKey::from_jwk(&published(&w, &config, kid)).unwrap();
        let options = VerificationOptions {
            required_signature_type: Some(TYP.into()),
            artificial_time: Some(Duration::from_secs(NOW as u64 + 1)),
            ..Default::default()
        };
        let verified = key
            .verify_token::<LogoutClaims>(&token, Some(options))
            .unwrap();
        assert_eq!(verified.custom.sid.as_deref(), Some("sid-1"));

        // Every token has its own jti; without a session, no sid.
        let again = sign(&w.env(NOW), &config, &client, "person-1", None).unwrap();
        let claims2 = part(&again, 1);
        assert_ne!(claims2["jti"], claims["jti"]);
        assert!(claims2.get("sid").is_none());
    }

    #[test]
    fn a_logout_token_follows_the_clients_id_token_algorithm() {
        let w = World::new();
        let config = Config::load(&w.vars).unwrap();
        let (client, _) = testkit::client(
            &w.sql,
            json!({"client_name": "Shop", "client_id": "shop", "redirect_uris": ["https://shop.example/cb"],
                   "id_token_signed_response_alg": "EdDSA"}),
            NOW,
        );
        assert_eq!(alg(&client), Alg::EdDsa);
        let token = sign(&w.env(NOW), &config, &client, "person-1", Some("sid-1")).unwrap();
        let header = part(&token, 0);
        assert_eq!(header["alg"], "EdDSA");
        let key =
            Ed25519PublicKey::from_jwk(&published(&w, &config, header["kid"].as_str().unwrap()))
                .unwrap();
        let options = VerificationOptions {
            required_signature_type: Some(TYP.into()),
            artificial_time: Some(Duration::from_secs(NOW as u64)),
            ..Default::default()
        };
        assert!(
            key.verify_token::<LogoutClaims>(&token, Some(options))
                .is_ok()
        );
    }
}
