-- Lanyard schema, version 5: attempt counters in SQLite, and indexes for the
-- sweep of expired rows.

-- Counters that guard credential endpoints and mail (per account, per client
-- address, per recipient). One conditional upsert counts an attempt before
-- the guarded work and refuses it while the key is backing off, so that
-- concurrent attempts cannot all pass a check made before the count.
CREATE TABLE IF NOT EXISTS throttles (
    key        TEXT PRIMARY KEY,
    count      INTEGER NOT NULL,
    first_at   INTEGER NOT NULL,
    last_at    INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS throttles_expiry ON throttles (expires_at);

-- The sweep deletes rows past these deadlines a few at a time.
CREATE INDEX IF NOT EXISTS auth_codes_expiry ON auth_codes (expires_at);
CREATE INDEX IF NOT EXISTS revoked_tokens_expiry ON revoked_tokens (expires_at);
CREATE INDEX IF NOT EXISTS one_time_tokens_expiry ON one_time_tokens (expires_at);
CREATE INDEX IF NOT EXISTS auth_codes_identity ON auth_codes (identity_id);
CREATE INDEX IF NOT EXISTS refresh_families_client ON refresh_families (client_id);

-- The clients whose access tokens this client (a resource server) may
-- introspect, a JSON array of client ids. A client always may its own.
ALTER TABLE clients ADD COLUMN resource_server_for TEXT NOT NULL DEFAULT '[]';
