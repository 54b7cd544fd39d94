-- What made it into the vector index. A row is written by trigger in the same transaction as
-- the message or fact it stands for (an outbox: the intent to index is never lost). The memory
-- service's relay publishes `memory.store.<kind>` for pending rows that are due; the
-- memory-indexer consumer embeds, writes the vector store, and only then marks the row indexed.
-- After a partial failure every item says where it stands.
CREATE TABLE index_state (
    kind             TEXT NOT NULL CHECK (kind IN ('message', 'fact', 'chunk')),
    item_id          UUID NOT NULL,
    user_id          UUID NOT NULL REFERENCES users (id),
    state            TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'indexed', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    -- When the relay (re)publishes the item's event: now for new rows, later after a failure,
    -- and a while after each publish in case the event is lost.
    next_attempt_at  TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    published_at     TIMESTAMPTZ,
    error            TEXT,
    -- The embedding model that made the stored vector.
    model            TEXT,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (kind, item_id)
);
CREATE INDEX index_state_pending ON index_state (next_attempt_at) WHERE state = 'pending';

CREATE FUNCTION index_state_enqueue() RETURNS trigger AS $$
BEGIN
    INSERT INTO index_state (kind, item_id, user_id)
    VALUES (TG_ARGV[0], NEW.id, NEW.user_id)
    ON CONFLICT (kind, item_id) DO NOTHING;
    PERFORM pg_notify('daarion_index', TG_ARGV[0]);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

-- What people said and the agents answered; system prompts and tool output are not memories.
CREATE TRIGGER messages_index AFTER INSERT ON messages
    FOR EACH ROW WHEN (NEW.role IN ('user', 'assistant') AND length(NEW.content) > 0)
    EXECUTE FUNCTION index_state_enqueue('message');
CREATE TRIGGER facts_index AFTER INSERT ON facts
    FOR EACH ROW EXECUTE FUNCTION index_state_enqueue('fact');

-- Rows stored before this migration.
INSERT INTO index_state (kind, item_id, user_id)
    SELECT 'message', id, user_id FROM messages WHERE role IN ('user', 'assistant') AND length(content) > 0;
INSERT INTO index_state (kind, item_id, user_id)
    SELECT 'fact', id, user_id FROM facts;
