-- Control plane: agents, their versioned system prompts, API tokens, and the outbox that turns
-- committed changes into bus events.

CREATE TABLE agents (
    id              TEXT PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    name            TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    description     TEXT NOT NULL DEFAULT '',
    default_model   TEXT,
    telegram_bot    TEXT UNIQUE,
    enabled         BOOLEAN NOT NULL DEFAULT true,
    active_prompt   INTEGER,
    -- Bumped on every change, so caches and traces can name the state they used.
    revision        INTEGER NOT NULL DEFAULT 1,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Append-only: a prompt version, once written, is history.
CREATE TABLE prompt_versions (
    agent_id    TEXT NOT NULL REFERENCES agents (id),
    version     INTEGER NOT NULL CHECK (version >= 1),
    content     TEXT NOT NULL,
    variables   TEXT[] NOT NULL DEFAULT '{}',
    comment     TEXT NOT NULL DEFAULT '',
    author      TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (agent_id, version)
);

ALTER TABLE agents
    ADD CONSTRAINT agents_active_prompt_fk
    FOREIGN KEY (id, active_prompt) REFERENCES prompt_versions (agent_id, version)
    DEFERRABLE INITIALLY DEFERRED;

CREATE FUNCTION prompt_versions_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'prompt_versions is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER prompt_versions_no_update_or_delete
    BEFORE UPDATE OR DELETE ON prompt_versions
    FOR EACH ROW EXECUTE FUNCTION prompt_versions_append_only();

-- Only the SHA-256 of a token is stored; the token itself is shown once, at creation.
CREATE TABLE api_tokens (
    id          UUID PRIMARY KEY,
    name        TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    token_hash  BYTEA NOT NULL UNIQUE,
    scopes      TEXT[] NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at  TIMESTAMPTZ
);

-- Events written in the same transaction as the change they describe; a relay publishes them
-- to JetStream (with the event id as Nats-Msg-Id) and only then deletes them.
CREATE TABLE control_outbox (
    id          UUID PRIMARY KEY,
    event       JSONB NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX control_outbox_created ON control_outbox (created_at);
