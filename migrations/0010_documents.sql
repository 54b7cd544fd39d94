-- Documents a user (or an agent for them) gave the appliance, cut into chunks for search. The
-- text is kept as given; chunks are full-text searchable and indexed as vectors through the
-- same index_state outbox as messages and facts.
CREATE TABLE documents (
    id          UUID PRIMARY KEY,
    user_id     UUID NOT NULL REFERENCES users (id),
    agent_id    TEXT,
    title       TEXT NOT NULL CHECK (length(title) BETWEEN 1 AND 300),
    mime        TEXT NOT NULL DEFAULT 'text/plain',
    -- Where it came from: `upload`, `telegram:<file id>`, a URL.
    source      TEXT NOT NULL DEFAULT 'upload',
    bytes       INTEGER NOT NULL CHECK (bytes >= 0),
    created_by  TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX documents_user ON documents (user_id, created_at DESC);

CREATE TABLE chunks (
    id           UUID PRIMARY KEY,
    document_id  UUID NOT NULL REFERENCES documents (id),
    user_id      UUID NOT NULL REFERENCES users (id),
    ordinal      INTEGER NOT NULL CHECK (ordinal >= 0),
    content      TEXT NOT NULL CHECK (length(content) BETWEEN 1 AND 4000),
    search       TSVECTOR GENERATED ALWAYS AS (to_tsvector('simple', content)) STORED,
    UNIQUE (document_id, ordinal)
);
CREATE INDEX chunks_user ON chunks (user_id);
CREATE INDEX chunks_search ON chunks USING GIN (search);

CREATE TRIGGER chunks_index AFTER INSERT ON chunks
    FOR EACH ROW EXECUTE FUNCTION index_state_enqueue('chunk');
