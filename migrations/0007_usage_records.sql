-- What each answered turn used, from the router's `message.processed` events (the event id is
-- the key, so a redelivered event is counted once): the data behind usage charts and bills.
CREATE TABLE usage_records (
    id                UUID PRIMARY KEY,
    at                TIMESTAMPTZ NOT NULL,
    user_id           UUID NOT NULL,
    agent_id          TEXT NOT NULL,
    session_id        UUID,
    message_id        UUID,
    provider          TEXT NOT NULL,
    model             TEXT NOT NULL,
    prompt_tokens     INTEGER NOT NULL CHECK (prompt_tokens >= 0),
    completion_tokens INTEGER NOT NULL CHECK (completion_tokens >= 0),
    cost              DOUBLE PRECISION NOT NULL CHECK (cost >= 0),
    currency          TEXT NOT NULL DEFAULT 'USD',
    gpu_seconds       DOUBLE PRECISION NOT NULL CHECK (gpu_seconds >= 0),
    tool_steps        INTEGER NOT NULL DEFAULT 0,
    trace_id          TEXT NOT NULL
);
CREATE INDEX usage_records_user_at ON usage_records (user_id, at);
CREATE INDEX usage_records_agent_at ON usage_records (agent_id, at);
CREATE INDEX usage_records_at ON usage_records (at);
