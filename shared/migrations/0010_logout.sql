-- Lanyard schema, version 10: single sign-out (OpenID Connect Back-Channel
-- and Front-Channel Logout 1.0).

-- Which clients got tokens in which browser session, so that the end of a
-- session can notify each of them. One row per (session, client), written by
-- one idempotent upsert when the client gets tokens of the session
-- (`store::session_clients`). It outlives the session row in `sessions`:
-- the clients are notified after the session ended, and a person's ended
-- sessions still name the clients that may hold their refresh tokens.
CREATE TABLE IF NOT EXISTS session_clients (
    sid              TEXT NOT NULL,
    client_id        TEXT NOT NULL,
    identity_id      TEXT NOT NULL,
    first_issued_at  INTEGER NOT NULL,
    last_issued_at   INTEGER NOT NULL,
    PRIMARY KEY (sid, client_id)
);
CREATE INDEX IF NOT EXISTS session_clients_identity ON session_clients (identity_id);
CREATE INDEX IF NOT EXISTS session_clients_client ON session_clients (client_id);
CREATE INDEX IF NOT EXISTS session_clients_last ON session_clients (last_issued_at);

-- The logout endpoints a client registers (RFC 7591 / OIDC metadata names).
-- `*_session_required`: the client wants the `sid` (Lanyard sends it
-- whenever it knows it).
ALTER TABLE clients ADD COLUMN backchannel_logout_uri TEXT;
ALTER TABLE clients ADD COLUMN backchannel_logout_session_required INTEGER NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN frontchannel_logout_uri TEXT;
ALTER TABLE clients ADD COLUMN frontchannel_logout_session_required INTEGER NOT NULL DEFAULT 0;
