-- Lanyard schema, version 3: OpenID Connect clients, consents, codes and
-- refresh-token families.

-- Applications. Lists are JSON arrays. The secret is stored as SHA-256.
CREATE TABLE IF NOT EXISTS clients (
    id                        TEXT PRIMARY KEY,
    name                      TEXT NOT NULL,
    secret_hash               TEXT,
    redirect_uris             TEXT NOT NULL DEFAULT '[]',
    post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]',
    grant_types               TEXT NOT NULL DEFAULT '["authorization_code"]',
    scopes                    TEXT NOT NULL DEFAULT '["openid"]',
    allowed_origins           TEXT NOT NULL DEFAULT '[]',
    first_party               INTEGER NOT NULL DEFAULT 0,
    id_token_alg              TEXT NOT NULL DEFAULT 'ES256',
    access_token_alg          TEXT NOT NULL DEFAULT 'ES256',
    access_token_ttl          INTEGER NOT NULL DEFAULT 300,
    refresh_idle_ttl          INTEGER NOT NULL DEFAULT 1209600,
    refresh_max_ttl           INTEGER NOT NULL DEFAULT 7776000,
    created_at                INTEGER NOT NULL,
    updated_at                INTEGER NOT NULL
);

-- What a person let an application have: one row per (identity, client).
CREATE TABLE IF NOT EXISTS consents (
    identity_id TEXT NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    client_id   TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scopes      TEXT NOT NULL,
    granted_at  INTEGER NOT NULL,
    PRIMARY KEY (identity_id, client_id)
);

-- Authorization codes: single use by UPDATE … WHERE used_at IS NULL RETURNING.
-- `family_id` and `access_jti` record what the code issued, so that a replay
-- can revoke it.
CREATE TABLE IF NOT EXISTS auth_codes (
    hash           TEXT PRIMARY KEY,
    client_id      TEXT NOT NULL,
    identity_id    TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    scope          TEXT NOT NULL,
    nonce          TEXT,
    code_challenge TEXT NOT NULL,
    auth_time      INTEGER NOT NULL,
    amr            TEXT NOT NULL,
    sid            TEXT NOT NULL,
    expires_at     INTEGER NOT NULL,
    used_at        INTEGER,
    family_id      TEXT,
    access_jti     TEXT
);

-- Refresh tokens rotate inside a family: one conditional UPDATE moves
-- current to previous and installs the new hash. Presenting `previous_hash`
-- again is reuse, and revokes the family.
CREATE TABLE IF NOT EXISTS refresh_families (
    id            TEXT PRIMARY KEY,
    client_id     TEXT NOT NULL,
    identity_id   TEXT NOT NULL,
    scope         TEXT NOT NULL,
    current_hash  TEXT NOT NULL,
    previous_hash TEXT,
    generation    INTEGER NOT NULL DEFAULT 0,
    auth_time     INTEGER NOT NULL,
    amr           TEXT NOT NULL,
    sid           TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER NOT NULL,
    revoked_at    INTEGER
);

CREATE UNIQUE INDEX IF NOT EXISTS refresh_families_current ON refresh_families (current_hash);
CREATE INDEX IF NOT EXISTS refresh_families_previous ON refresh_families (previous_hash);
CREATE INDEX IF NOT EXISTS refresh_families_identity ON refresh_families (identity_id);

-- Access tokens (JWTs) revoked before they expire, by `jti`.
CREATE TABLE IF NOT EXISTS revoked_tokens (
    jti        TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
);

-- One current and one next key per algorithm (ES256, EdDSA).
DROP INDEX IF EXISTS signing_keys_one_per_role;
CREATE UNIQUE INDEX IF NOT EXISTS signing_keys_one_per_alg_role
    ON signing_keys (alg, role) WHERE role IN ('current', 'next');
