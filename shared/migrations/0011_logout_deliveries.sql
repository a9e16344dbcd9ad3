-- Lanyard schema, version 11: back-channel logout deliveries that failed.

-- A logout token that a client's backchannel_logout_uri did not accept
-- (unreachable, too slow, an error status, a host not in the component's
-- allowed_outbound_hosts). It is retried, signed anew, by later sign-outs and
-- by the sweep endpoint, at most 5 attempts in all, 1, 4, 16 and 64 minutes
-- apart; after the last one `next_attempt_at` is NULL and the row stays for
-- the admin API until the sweep deletes it 7 days later.
CREATE TABLE IF NOT EXISTS logout_deliveries (
    id               TEXT PRIMARY KEY,
    client_id        TEXT NOT NULL,
    sid              TEXT NOT NULL,
    identity_id      TEXT NOT NULL,
    uri              TEXT NOT NULL,
    attempts         INTEGER NOT NULL,
    last_error       TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    last_attempt_at  INTEGER NOT NULL,
    next_attempt_at  INTEGER
);
CREATE INDEX IF NOT EXISTS logout_deliveries_due ON logout_deliveries (next_attempt_at);
CREATE INDEX IF NOT EXISTS logout_deliveries_client ON logout_deliveries (client_id);
CREATE INDEX IF NOT EXISTS logout_deliveries_identity ON logout_deliveries (identity_id);
