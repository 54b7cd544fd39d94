-- Admin accounts for the browser (argon2id password hashes) and their sessions. Only a
-- session id's SHA-256 is stored, so a database dump cannot be replayed as a login.
CREATE TABLE admin_accounts (
    id            UUID PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE CHECK (username ~ '^[a-z][a-z0-9_.-]{1,63}$'),
    password_hash TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    disabled_at   TIMESTAMPTZ
);

CREATE TABLE admin_sessions (
    id_hash     BYTEA PRIMARY KEY,
    account_id  UUID NOT NULL REFERENCES admin_accounts (id) ON DELETE CASCADE,
    csrf_token  TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX admin_sessions_expiry ON admin_sessions (expires_at);
