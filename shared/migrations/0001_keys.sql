-- Lanyard schema, version 1: signing keys.
-- Each statement runs on its own (Spin executes one statement per call) and
-- must be safe to run twice: two fresh instances may migrate at once.

CREATE TABLE IF NOT EXISTS signing_keys (
    kid         TEXT PRIMARY KEY,
    alg         TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('current', 'next', 'previous')),
    private_key BLOB NOT NULL,
    public_jwk  TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

-- At most one current and one next key: generating them is a race that the
-- first INSERT wins.
CREATE UNIQUE INDEX IF NOT EXISTS signing_keys_one_per_role
    ON signing_keys (role) WHERE role IN ('current', 'next');
