-- Lanyard schema, version 6: customer organisations, their members, the
-- services (b2b clients) they activate, projects, role assignments,
-- invitations and the audit log; the organisation a code or refresh family
-- was issued for.

-- A customer organisation. `status` is `active` or `suspended` (by the
-- operator). Deleting one deletes this row first: every access check joins
-- it, so whatever rows are left behind grant nothing.
CREATE TABLE IF NOT EXISTS organisations (
    id         TEXT PRIMARY KEY,
    slug       TEXT NOT NULL,
    name       TEXT NOT NULL,
    status     TEXT NOT NULL DEFAULT 'active',
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS organisations_slug ON organisations (slug);

-- A person's membership. `role` is the organisation-wide built-in role
-- (`owner`, `admin` or `member`), kept here so that the last-owner rule is
-- one conditional statement. `status` is `active` or `suspended`.
CREATE TABLE IF NOT EXISTS memberships (
    org_id      TEXT NOT NULL,
    identity_id TEXT NOT NULL,
    role        TEXT NOT NULL DEFAULT 'member',
    status      TEXT NOT NULL DEFAULT 'active',
    joined_at   INTEGER NOT NULL,
    invited_by  TEXT,
    PRIMARY KEY (org_id, identity_id)
);
CREATE INDEX IF NOT EXISTS memberships_identity ON memberships (identity_id);

-- An organisation's use of a b2b application: `requested`, `active` or
-- `deactivated`.
CREATE TABLE IF NOT EXISTS activations (
    org_id       TEXT NOT NULL,
    client_id    TEXT NOT NULL,
    status       TEXT NOT NULL,
    requested_by TEXT,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (org_id, client_id)
);
CREATE INDEX IF NOT EXISTS activations_status ON activations (status);

-- Projects (sites): named sub-scopes of an activated application.
CREATE TABLE IF NOT EXISTS projects (
    id         TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    name       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS projects_name ON projects (org_id, client_id, name);

-- Roles of the application's catalogue given to a member, on the whole
-- application (`project_id` = '') or on one project of it.
CREATE TABLE IF NOT EXISTS role_assignments (
    org_id      TEXT NOT NULL,
    identity_id TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    project_id  TEXT NOT NULL DEFAULT '',
    role        TEXT NOT NULL,
    granted_by  TEXT,
    granted_at  INTEGER NOT NULL,
    PRIMARY KEY (org_id, identity_id, client_id, project_id, role)
);
CREATE INDEX IF NOT EXISTS role_assignments_client ON role_assignments (org_id, client_id);

-- Invitations: the token is stored as SHA-256; `grants` is a JSON array of
-- {client_id, project_id, role}. `state` is `pending`, `accepted` or
-- `revoked`; a pending one past `expires_at` is expired.
CREATE TABLE IF NOT EXISTS invitations (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL,
    email       TEXT NOT NULL,
    token_hash  TEXT NOT NULL,
    org_role    TEXT NOT NULL DEFAULT 'member',
    grants      TEXT NOT NULL DEFAULT '[]',
    invited_by  TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'pending',
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    accepted_by TEXT,
    accepted_at INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS invitations_token ON invitations (token_hash);
CREATE INDEX IF NOT EXISTS invitations_org ON invitations (org_id, state);

-- Every change to an organisation: who (an identity id, or `operator`),
-- what, when, and the JSON before and after.
CREATE TABLE IF NOT EXISTS org_audit (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id   TEXT NOT NULL,
    at       INTEGER NOT NULL,
    actor    TEXT NOT NULL,
    action   TEXT NOT NULL,
    target   TEXT,
    before   TEXT,
    after    TEXT
);
CREATE INDEX IF NOT EXISTS org_audit_org ON org_audit (org_id, id);

-- Applications as services: a b2b client has a role catalogue (a JSON array
-- of {name, description}) and an activation policy (`self_service`,
-- `approval` or `operator_only`).
ALTER TABLE clients ADD COLUMN b2b INTEGER NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN roles TEXT NOT NULL DEFAULT '[]';
ALTER TABLE clients ADD COLUMN activation_policy TEXT NOT NULL DEFAULT 'self_service';

-- The organisation a login chose for a b2b client, carried from the code to
-- the refresh family, and re-checked at every refresh.
ALTER TABLE auth_codes ADD COLUMN org_id TEXT;
ALTER TABLE refresh_families ADD COLUMN org_id TEXT;
