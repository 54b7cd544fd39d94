-- Memory: who people are across channels, their chats and sessions, every message, and facts
-- that are never overwritten (a new fact supersedes an old one; the history stays).

CREATE TABLE users (
    id           UUID PRIMARY KEY,
    display_name TEXT NOT NULL DEFAULT '' CHECK (length(display_name) <= 200),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- A person's handle on one channel (a Telegram user id, a web login).
CREATE TABLE identities (
    channel      TEXT NOT NULL CHECK (channel ~ '^[a-z][a-z0-9_-]{0,31}$'),
    external_id  TEXT NOT NULL CHECK (length(external_id) BETWEEN 1 AND 128),
    user_id      UUID NOT NULL REFERENCES users (id),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (channel, external_id)
);
CREATE INDEX identities_user ON identities (user_id);

CREATE TABLE sessions (
    id          UUID PRIMARY KEY,
    user_id     UUID NOT NULL REFERENCES users (id),
    agent_id    TEXT NOT NULL CHECK (length(agent_id) BETWEEN 1 AND 64),
    chat        TEXT NOT NULL DEFAULT '' CHECK (length(chat) <= 128),
    started_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    ended_at    TIMESTAMPTZ
);
CREATE INDEX sessions_user ON sessions (user_id, started_at DESC);

CREATE TABLE messages (
    id                UUID PRIMARY KEY,
    session_id        UUID NOT NULL REFERENCES sessions (id),
    user_id           UUID NOT NULL REFERENCES users (id),
    role              TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool')),
    content           TEXT NOT NULL,
    agent_id          TEXT,
    model             TEXT,
    prompt_tokens     INTEGER CHECK (prompt_tokens >= 0),
    completion_tokens INTEGER CHECK (completion_tokens >= 0),
    trace_id          TEXT,
    -- The prompt/policy/config versions that served this message.
    versions          JSONB NOT NULL DEFAULT '{}',
    created_at        TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    search            TSVECTOR GENERATED ALWAYS AS (to_tsvector('simple', content)) STORED
);
CREATE INDEX messages_session ON messages (session_id, created_at);
CREATE INDEX messages_user ON messages (user_id, created_at DESC);
CREATE INDEX messages_search ON messages USING GIN (search);

-- valid_to is set when a newer fact supersedes this one (or it is forgotten); rows are never
-- deleted, so "what did we believe on date X" stays answerable.
CREATE TABLE facts (
    id                 UUID PRIMARY KEY,
    user_id            UUID NOT NULL REFERENCES users (id),
    agent_id           TEXT,
    content            TEXT NOT NULL CHECK (length(content) BETWEEN 1 AND 4000),
    valid_from         TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    valid_to           TIMESTAMPTZ,
    supersedes         UUID REFERENCES facts (id),
    reason             TEXT NOT NULL DEFAULT '',
    source_message_id  UUID REFERENCES messages (id),
    forgotten          BOOLEAN NOT NULL DEFAULT false,
    created_by         TEXT NOT NULL,
    search             TSVECTOR GENERATED ALWAYS AS (to_tsvector('simple', content)) STORED
);
CREATE INDEX facts_current ON facts (user_id) WHERE valid_to IS NULL;
CREATE INDEX facts_search ON facts USING GIN (search);
-- One successor per fact: two concurrent supersedes of the same fact cannot both win.
CREATE UNIQUE INDEX facts_one_successor ON facts (supersedes) WHERE supersedes IS NOT NULL;
