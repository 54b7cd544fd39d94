-- The knowledge graph in PostgreSQL (the embedded default): people, topics, places and other
-- entities of a user's memory (or shared, user_id NULL), and the relations between them with
-- the message they came from. Relations are never deleted: an ended one keeps its history.

CREATE TABLE graph_nodes (
    id          UUID PRIMARY KEY,
    user_id     UUID REFERENCES users (id),
    kind        TEXT NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_]{0,31}$'),
    -- The name as matched: trimmed and lower-cased, so "Kyiv" and "kyiv " are one node.
    key         TEXT NOT NULL CHECK (length(key) BETWEEN 1 AND 200),
    name        TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE NULLS NOT DISTINCT (user_id, kind, key)
);
CREATE INDEX graph_nodes_key ON graph_nodes (user_id, key text_pattern_ops);

CREATE TABLE graph_edges (
    id                 UUID PRIMARY KEY,
    from_node          UUID NOT NULL REFERENCES graph_nodes (id),
    to_node            UUID NOT NULL REFERENCES graph_nodes (id),
    relation           TEXT NOT NULL CHECK (relation ~ '^[a-z][a-z0-9_]{0,63}$'),
    source_message_id  UUID REFERENCES messages (id),
    created_by         TEXT NOT NULL,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    ended_at           TIMESTAMPTZ,
    end_reason         TEXT,
    CHECK (from_node <> to_node)
);
-- One open relation of a kind between two nodes: saying it again changes nothing.
CREATE UNIQUE INDEX graph_edges_open ON graph_edges (from_node, to_node, relation) WHERE ended_at IS NULL;
CREATE INDEX graph_edges_from ON graph_edges (from_node) WHERE ended_at IS NULL;
CREATE INDEX graph_edges_to ON graph_edges (to_node) WHERE ended_at IS NULL;
