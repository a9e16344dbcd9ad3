-- Lanyard schema, version 4: private_key_jwt client authentication.

-- The public keys (a JWK Set, JSON) of a client that authenticates with
-- signed assertions (RFC 7523) instead of a secret.
ALTER TABLE clients ADD COLUMN jwks TEXT;

-- Each client assertion's `jti`, kept until the assertion expires, so that it
-- is accepted once: the INSERT that records it is the check.
CREATE TABLE IF NOT EXISTS client_assertions (
    client_id  TEXT NOT NULL,
    jti        TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (client_id, jti)
);
CREATE INDEX IF NOT EXISTS client_assertions_expiry ON client_assertions (expires_at);
