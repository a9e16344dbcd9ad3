-- Lanyard schema, version 8: social and enterprise sign-in: connections to
-- upstream identity providers, the upstream identities linked to accounts,
-- the single-use state of a sign-in in flight, links waiting for a password
-- proof, and organisations' claimed email domains; the connection a code or
-- refresh family was signed in through.

-- An upstream identity provider. `kind` is `oidc` (any OpenID provider, by
-- discovery of `issuer`), `google`, `microsoft` (Entra ID; `issuer` may hold
-- `{tenantid}`), `apple` or `github`. The secret is never stored: it is the
-- Spin variable named by `secret_variable`. `settings` is JSON (claim
-- mapping, tenant allow-list, Apple's team and key ids). `org_id` makes it
-- an organisation's own connection, with `default_role` for people who
-- arrive through it the first time.
CREATE TABLE IF NOT EXISTS connections (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    name            TEXT NOT NULL,
    issuer          TEXT,
    client_id       TEXT NOT NULL,
    secret_variable TEXT,
    scopes          TEXT NOT NULL,
    settings        TEXT NOT NULL DEFAULT '{}',
    trusted_email   INTEGER NOT NULL DEFAULT 0,
    org_id          TEXT,
    default_role    TEXT,
    enabled         INTEGER NOT NULL DEFAULT 1,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS connections_org ON connections (org_id);

-- One Lanyard identity per (upstream issuer, upstream subject).
CREATE TABLE IF NOT EXISTS federated_identities (
    issuer        TEXT NOT NULL,
    subject       TEXT NOT NULL,
    connection_id TEXT NOT NULL,
    identity_id   TEXT NOT NULL,
    email         TEXT,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER NOT NULL,
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX IF NOT EXISTS federated_identities_identity ON federated_identities (identity_id);

-- A sign-in in flight: the `state` sent upstream (stored as SHA-256), bound
-- to the browser that started it (the SHA-256 of its cookie), with the
-- nonce and PKCE verifier. Used once: UPDATE … WHERE used_at IS NULL.
CREATE TABLE IF NOT EXISTS social_states (
    hash             TEXT PRIMARY KEY,
    connection_id    TEXT NOT NULL,
    browser_hash     TEXT NOT NULL,
    nonce            TEXT NOT NULL,
    code_verifier    TEXT NOT NULL,
    return_to        TEXT,
    link_identity_id TEXT,
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    used_at          INTEGER
);
CREATE INDEX IF NOT EXISTS social_states_expiry ON social_states (expires_at);

-- An upstream identity whose email matches an account that must first be
-- proven with its password before the link is made. Used once.
CREATE TABLE IF NOT EXISTS pending_links (
    hash          TEXT PRIMARY KEY,
    identity_id   TEXT NOT NULL,
    issuer        TEXT NOT NULL,
    subject       TEXT NOT NULL,
    connection_id TEXT NOT NULL,
    email         TEXT,
    return_to     TEXT,
    expires_at    INTEGER NOT NULL,
    used_at       INTEGER
);
CREATE INDEX IF NOT EXISTS pending_links_expiry ON pending_links (expires_at);

-- An organisation's claim on an email domain: proven by a DNS TXT record
-- `lanyard-verification=<token>` at the domain, checked over DNS-over-HTTPS.
-- Only a verified claim routes sign-ins to the organisation's connection.
-- Several organisations may claim a domain; only one can prove it.
CREATE TABLE IF NOT EXISTS domain_claims (
    domain        TEXT NOT NULL,
    org_id        TEXT NOT NULL,
    connection_id TEXT,
    token         TEXT NOT NULL,
    verified_at   INTEGER,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (domain, org_id)
);
CREATE UNIQUE INDEX IF NOT EXISTS domain_claims_verified ON domain_claims (domain) WHERE verified_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS domain_claims_org ON domain_claims (org_id);

-- The connection a login came through (the ID token's `idp`).
ALTER TABLE auth_codes ADD COLUMN idp TEXT;
ALTER TABLE refresh_families ADD COLUMN idp TEXT;
