-- Short-lived values a conversation keeps between turns (a pending question, a chosen option,
-- a tool's progress). Each entry expires; reads never see an expired one, and the memory service
-- deletes them in the background. Redis caches them; this table is the truth, so a Redis outage
-- loses nothing.
CREATE TABLE session_state (
    session_id  UUID NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    key         TEXT NOT NULL CHECK (key ~ '^[a-z0-9][a-z0-9_.:-]{0,63}$'),
    value       JSONB NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    expires_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (session_id, key)
);
CREATE INDEX session_state_expiry ON session_state (expires_at);
