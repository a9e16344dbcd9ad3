//! OpenID Connect Discovery 1.0 with the RFC 8414 fields.

use serde::Serialize;

use crate::config::Config;

/// Paths of the provider's endpoints, relative to the issuer.
pub mod paths {
    /// OpenID Connect Discovery document.
    pub const DISCOVERY: &str = "/.well-known/openid-configuration";
    /// JSON Web Key Set.
    pub const JWKS: &str = "/jwks.json";
    /// Authorization endpoint (code flow with PKCE).
    pub const AUTHORIZE: &str = "/authorize";
    /// Token endpoint.
    pub const TOKEN: &str = "/token";
    /// UserInfo endpoint.
    pub const USERINFO: &str = "/userinfo";
    /// Token introspection (RFC 7662).
    pub const INTROSPECT: &str = "/introspect";
    /// Token revocation (RFC 7009).
    pub const REVOKE: &str = "/revoke";
    /// RP-initiated logout.
    pub const LOGOUT: &str = "/logout";
}

/// The discovery document. Field names are the registered metadata names.
#[derive(Debug, Serialize)]
pub struct Metadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    userinfo_endpoint: String,
    jwks_uri: String,
    end_session_endpoint: String,
    introspection_endpoint: String,
    revocation_endpoint: String,
    scopes_supported: &'static [&'static str],
    response_types_supported: &'static [&'static str],
    response_modes_supported: &'static [&'static str],
    grant_types_supported: &'static [&'static str],
    subject_types_supported: &'static [&'static str],
    id_token_signing_alg_values_supported: &'static [&'static str],
    token_endpoint_auth_methods_supported: &'static [&'static str],
    token_endpoint_auth_signing_alg_values_supported: &'static [&'static str],
    introspection_endpoint_auth_methods_supported: &'static [&'static str],
    introspection_endpoint_auth_signing_alg_values_supported: &'static [&'static str],
    revocation_endpoint_auth_methods_supported: &'static [&'static str],
    revocation_endpoint_auth_signing_alg_values_supported: &'static [&'static str],
    authorization_response_iss_parameter_supported: bool,
    code_challenge_methods_supported: &'static [&'static str],
    claims_supported: &'static [&'static str],
    prompt_values_supported: &'static [&'static str],
    acr_values_supported: &'static [&'static str],
    claims_parameter_supported: bool,
    request_parameter_supported: bool,
    request_uri_parameter_supported: bool,
    backchannel_logout_supported: bool,
    backchannel_logout_session_supported: bool,
    frontchannel_logout_supported: bool,
    frontchannel_logout_session_supported: bool,
}

use crate::oidc::clients::AUTH_METHODS as CLIENT_AUTH;

/// Builds the document for this issuer. Reads nothing but the configuration.
pub fn metadata(config: &Config) -> Metadata {
    Metadata {
        issuer: config.issuer.clone(),
        authorization_endpoint: config.url(paths::AUTHORIZE),
        token_endpoint: config.url(paths::TOKEN),
        userinfo_endpoint: config.url(paths::USERINFO),
        jwks_uri: config.url(paths::JWKS),
        end_session_endpoint: config.url(paths::LOGOUT),
        introspection_endpoint: config.url(paths::INTROSPECT),
        revocation_endpoint: config.url(paths::REVOKE),
        scopes_supported: &["openid", "profile", "email", "offline_access"],
        response_types_supported: &["code"],
        response_modes_supported: &["query"],
        grant_types_supported: crate::oidc::clients::GRANT_TYPES,
        subject_types_supported: &["public"],
        // What Lanyard signs ID tokens with, per client: ES256 by default,
        // EdDSA, and RS256, which OIDC Discovery requires to be supported.
        id_token_signing_alg_values_supported: &["ES256", "EdDSA", "RS256"],
        token_endpoint_auth_methods_supported: CLIENT_AUTH,
        token_endpoint_auth_signing_alg_values_supported: crate::oidc::assertion::ALGS,
        introspection_endpoint_auth_methods_supported: CLIENT_AUTH,
        introspection_endpoint_auth_signing_alg_values_supported: crate::oidc::assertion::ALGS,
        revocation_endpoint_auth_methods_supported: CLIENT_AUTH,
        revocation_endpoint_auth_signing_alg_values_supported: crate::oidc::assertion::ALGS,
        // `iss` comes back with every authorization response (RFC 9207).
        authorization_response_iss_parameter_supported: true,
        // PKCE S256 only: `plain` is refused.
        code_challenge_methods_supported: &["S256"],
        claims_supported: &[
            "iss",
            "sub",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "acr",
            "amr",
            "sid",
            "name",
            "given_name",
            "family_name",
            "locale",
            "email",
            "email_verified",
            // For b2b clients: the organisation and the member's roles;
            // through a mandate, who acts and the mandate.
            "org_id",
            "org_slug",
            "org_name",
            "roles",
            "project_roles",
            "act",
            "mandate",
        ],
        prompt_values_supported: crate::oidc::authorize::PROMPTS,
        acr_values_supported: crate::oidc::authorize::ACR_VALUES,
        claims_parameter_supported: false,
        request_parameter_supported: false,
        request_uri_parameter_supported: false,
        // Single sign-out (OIDC Back- and Front-Channel Logout 1.0): every
        // logout token and front-channel URI carries `sid` (and `iss`).
        backchannel_logout_supported: true,
        backchannel_logout_session_supported: true,
        frontchannel_logout_supported: true,
        frontchannel_logout_session_supported: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn endpoints_hang_off_the_issuer() {
        let vars: HashMap<String, String> =
            [("issuer".to_string(), "https://id.example.com/".to_string())].into();
        let config = Config::load(&vars).unwrap();
        let doc = serde_json::to_value(metadata(&config)).unwrap();
        assert_eq!(doc["issuer"], "https://id.example.com");
        assert_eq!(doc["jwks_uri"], "https://id.example.com/jwks.json");
        assert_eq!(doc["token_endpoint"], "https://id.example.com/token");
        assert_eq!(
            doc["code_challenge_methods_supported"],
            serde_json::json!(["S256"])
        );
        assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));
        for flag in [
            "backchannel_logout_supported",
            "backchannel_logout_session_supported",
            "frontchannel_logout_supported",
            "frontchannel_logout_session_supported",
        ] {
            assert_eq!(doc[flag], true, "{flag}");
        }
        assert_eq!(
            doc["id_token_signing_alg_values_supported"],
            serde_json::json!(["ES256", "EdDSA", "RS256"])
        );
        assert_eq!(
            doc["grant_types_supported"],
            serde_json::json!([
                "authorization_code",
                "refresh_token",
                "client_credentials",
                "urn:ietf:params:oauth:grant-type:token-exchange"
            ])
        );
    }
}
