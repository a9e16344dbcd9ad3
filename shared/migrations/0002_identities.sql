-- Lanyard schema, version 2: identities, one-time tokens and the dev outbox.

-- One row per person. `id` is the stable, random OIDC subject; the email is
-- stored normalised (lower case) and is unique. `password_hash` is a PHC
-- argon2id string, NULL for accounts without a password. Bumping
-- `session_generation` ends every session created before.
CREATE TABLE IF NOT EXISTS identities (
    id                 TEXT PRIMARY KEY,
    email              TEXT NOT NULL,
    email_verified     INTEGER NOT NULL DEFAULT 0,
    password_hash      TEXT,
    attributes         TEXT NOT NULL DEFAULT '{}',
    session_generation INTEGER NOT NULL DEFAULT 0,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
);

CREATE UNIQUE INDEX IF NOT EXISTS identities_email ON identities (email);

-- Single-use links (email verification, password reset), stored as SHA-256
-- of the token. Used by one conditional UPDATE … RETURNING.
CREATE TABLE IF NOT EXISTS one_time_tokens (
    hash        TEXT PRIMARY KEY,
    purpose     TEXT NOT NULL CHECK (purpose IN ('verify_email', 'reset_password')),
    identity_id TEXT NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
);

CREATE INDEX IF NOT EXISTS one_time_tokens_identity ON one_time_tokens (identity_id);

-- Mail in dev_mode goes here instead of a mail API; /dev/outbox shows it.
CREATE TABLE IF NOT EXISTS dev_outbox (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    recipient  TEXT NOT NULL,
    subject    TEXT NOT NULL,
    body       TEXT NOT NULL,
    link       TEXT,
    created_at INTEGER NOT NULL
);
