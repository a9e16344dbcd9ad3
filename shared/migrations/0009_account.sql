-- Lanyard schema, version 9: the account centre, multi-factor
-- authentication and privacy (see docs/account.md).

-- Browser sessions, listed for their owner. The session itself lives in
-- key-value under `kv_key` (the hash of its cookie); this row lets its owner
-- see it and end it. `expires_at` follows the key-value deadline, so that
-- the sweep can drop rows of sessions that timed out.
CREATE TABLE IF NOT EXISTS sessions (
    sid          TEXT PRIMARY KEY,
    identity_id  TEXT NOT NULL,
    kv_key       TEXT NOT NULL,
    user_agent   TEXT NOT NULL DEFAULT '',
    client_addr  TEXT NOT NULL DEFAULT '',
    amr          TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_identity ON sessions (identity_id);
CREATE INDEX IF NOT EXISTS sessions_expiry ON sessions (expires_at);

-- What happened to an account, for its owner to see (a JSON `detail` per
-- kind). Erasure keeps no row that names the person: `identity_id` becomes
-- NULL and the address and device are blanked. The sweep drops rows older
-- than `security_event_retention_days`.
CREATE TABLE IF NOT EXISTS security_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    identity_id TEXT,
    kind        TEXT NOT NULL,
    detail      TEXT NOT NULL DEFAULT '{}',
    client_addr TEXT NOT NULL DEFAULT '',
    user_agent  TEXT NOT NULL DEFAULT '',
    at          INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS security_events_identity ON security_events (identity_id, id);
CREATE INDEX IF NOT EXISTS security_events_at ON security_events (at);

-- A TOTP authenticator (RFC 6238), one per identity. `confirmed_at` stays
-- NULL until a first code proves the enrolment. `last_step` is the time step
-- of the last code accepted: one conditional UPDATE accepts a code only for
-- a later step, so that a code works once.
CREATE TABLE IF NOT EXISTS totp_secrets (
    identity_id  TEXT PRIMARY KEY,
    secret       TEXT NOT NULL,
    confirmed_at INTEGER,
    last_step    INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL
);

-- Recovery codes, stored as SHA-256. A code is used by one conditional
-- UPDATE … WHERE used_at IS NULL; regenerating deletes the old set.
CREATE TABLE IF NOT EXISTS recovery_codes (
    identity_id TEXT NOT NULL,
    hash        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    used_at     INTEGER,
    PRIMARY KEY (identity_id, hash)
);

-- WebAuthn credentials (passkeys). `user_handle` is the random WebAuthn
-- user id of the identity (the same on all its passkeys), which a
-- discoverable sign-in returns; `passkey` is the relying-party library's
-- credential record (public key, counter) as JSON.
CREATE TABLE IF NOT EXISTS passkeys (
    credential_id TEXT PRIMARY KEY,
    identity_id   TEXT NOT NULL,
    user_handle   TEXT NOT NULL,
    name          TEXT NOT NULL,
    passkey       TEXT NOT NULL,
    sign_count    INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER
);
CREATE INDEX IF NOT EXISTS passkeys_identity ON passkeys (identity_id);
CREATE INDEX IF NOT EXISTS passkeys_handle ON passkeys (user_handle);

-- A WebAuthn ceremony's state between its two requests, keyed by the hash
-- of a random handle, and taken once by DELETE … RETURNING.
CREATE TABLE IF NOT EXISTS webauthn_states (
    id          TEXT PRIMARY KEY,
    identity_id TEXT,
    purpose     TEXT NOT NULL CHECK (purpose IN ('register', 'authenticate', 'discover')),
    state       TEXT NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS webauthn_states_expiry ON webauthn_states (expires_at);

-- A requested change of email address, waiting for the link sent to the
-- new address (stored as SHA-256, single use).
CREATE TABLE IF NOT EXISTS email_changes (
    hash        TEXT PRIMARY KEY,
    identity_id TEXT NOT NULL,
    new_email   TEXT NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
);
CREATE INDEX IF NOT EXISTS email_changes_identity ON email_changes (identity_id);
CREATE INDEX IF NOT EXISTS email_changes_expiry ON email_changes (expires_at);

-- Consent records with their history: the version of the terms accepted
-- (`terms`, value = the version) and marketing choices (`marketing`, value
-- `opt_in` or `opt_out`). The latest row of a kind is the current choice.
CREATE TABLE IF NOT EXISTS consent_records (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    identity_id TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('terms', 'marketing')),
    value       TEXT NOT NULL,
    client_addr TEXT NOT NULL DEFAULT '',
    at          INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS consent_records_identity ON consent_records (identity_id, kind, id);
