-- Lanyard schema, version 7: mandates (an organisation lets another
-- organisation, or one named person, act for it on a service), their
-- designated members, operator templates and settings; the mandate a code or
-- refresh family was issued under; token exchange registrations.

-- A mandate: principal organisation A grants an agent (organisation B, or
-- the person invited by `agent_email`) `roles` (a JSON array of names of the
-- service's catalogue) on the service `client_id`, or on its project
-- `project_id`, between `not_before` and `expires_at`. `state` is `offered`,
-- `accepted` or `revoked`; an accepted one past `expires_at` is expired.
-- `all_members`: every active member of B may use it (otherwise only those
-- in `mandate_delegates`). A person's offer is accepted through a mailed
-- link whose token is stored as SHA-256.
CREATE TABLE IF NOT EXISTS mandates (
    id                TEXT PRIMARY KEY,
    principal_org_id  TEXT NOT NULL,
    agent_org_id      TEXT,
    agent_email       TEXT,
    agent_identity_id TEXT,
    client_id         TEXT NOT NULL,
    project_id        TEXT NOT NULL DEFAULT '',
    roles             TEXT NOT NULL,
    template_id       TEXT,
    not_before        INTEGER NOT NULL,
    expires_at        INTEGER NOT NULL,
    state             TEXT NOT NULL DEFAULT 'offered',
    all_members       INTEGER NOT NULL DEFAULT 0,
    token_hash        TEXT,
    created_by        TEXT NOT NULL,
    created_at        INTEGER NOT NULL,
    accepted_by       TEXT,
    accepted_at       INTEGER,
    revoked_by        TEXT,
    revoked_at        INTEGER
);
CREATE INDEX IF NOT EXISTS mandates_principal ON mandates (principal_org_id);
CREATE INDEX IF NOT EXISTS mandates_agent_org ON mandates (agent_org_id);
CREATE INDEX IF NOT EXISTS mandates_agent_identity ON mandates (agent_identity_id);
CREATE UNIQUE INDEX IF NOT EXISTS mandates_token ON mandates (token_hash);

-- The members of the agent organisation designated to use a mandate.
CREATE TABLE IF NOT EXISTS mandate_delegates (
    mandate_id  TEXT NOT NULL,
    identity_id TEXT NOT NULL,
    added_by    TEXT NOT NULL,
    added_at    INTEGER NOT NULL,
    PRIMARY KEY (mandate_id, identity_id)
);

-- Operator-defined mandate templates: "accountant: invoice:read and
-- invoice:submit on billing, 365 days".
CREATE TABLE IF NOT EXISTS mandate_templates (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    roles      TEXT NOT NULL,
    days       INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);

-- Operator settings changed through the admin API (key → JSON value), such
-- as `mandate_max_days`.
CREATE TABLE IF NOT EXISTS settings (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);

-- The mandate a login chose, carried from the code to the refresh family
-- and re-checked at every refresh.
ALTER TABLE auth_codes ADD COLUMN mandate_id TEXT;
ALTER TABLE refresh_families ADD COLUMN mandate_id TEXT;

-- A b2b client that also serves people on their own ("just me").
ALTER TABLE clients ADD COLUMN personal_use INTEGER NOT NULL DEFAULT 0;
-- RFC 8693 token exchange: what this client may exchange a subject token
-- for, a JSON array of {audience, scope}.
ALTER TABLE clients ADD COLUMN token_exchange TEXT NOT NULL DEFAULT '[]';
