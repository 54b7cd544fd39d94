-- Attachments: files users send, as the memory API keeps their record (ingest creates it once
-- the bytes are in the blob store, the parser moves it through its states, the indexer marks it
-- indexed). The same content from the same user is one attachment; across users it is one blob.
CREATE TABLE attachments (
    id              UUID PRIMARY KEY,
    user_id         UUID NOT NULL REFERENCES users (id),
    name            TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
    format          TEXT NOT NULL CHECK (format ~ '^[a-z0-9]{1,16}$'),
    mime            TEXT NOT NULL CHECK (length(mime) BETWEEN 1 AND 100),
    bytes           BIGINT NOT NULL CHECK (bytes > 0),
    sha256          TEXT NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    origin          JSONB,
    options         JSONB NOT NULL DEFAULT '{}',
    state           TEXT NOT NULL DEFAULT 'received'
                    CHECK (state IN ('received', 'parsing', 'parsed', 'indexed', 'failed')),
    -- Starts at 1, one more per retry: the parser's calls and the bus events carry it, so
    -- those of an earlier attempt are recognised and refused.
    attempt         INTEGER NOT NULL DEFAULT 1 CHECK (attempt >= 1),
    progress_done   INTEGER CHECK (progress_done >= 0),
    progress_total  INTEGER CHECK (progress_total >= 0),
    pages           INTEGER CHECK (pages >= 0),
    document_id     UUID,
    error           TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    parsed_at       TIMESTAMPTZ,
    indexed_at      TIMESTAMPTZ,
    UNIQUE (user_id, sha256)
);
CREATE INDEX attachments_user ON attachments (user_id, created_at DESC);
-- "Is anyone else still using this blob?" on delete.
CREATE INDEX attachments_sha256 ON attachments (sha256);

-- A document made from an attachment is not searchable (full-text or by meaning) until the
-- parser says every section is in: nothing partial is ever an answer.
ALTER TABLE documents
    ADD COLUMN attachment_id UUID REFERENCES attachments (id),
    ADD COLUMN ready BOOLEAN NOT NULL DEFAULT true;
CREATE UNIQUE INDEX documents_attachment ON documents (attachment_id) WHERE attachment_id IS NOT NULL;
ALTER TABLE attachments
    ADD CONSTRAINT attachments_document FOREIGN KEY (document_id) REFERENCES documents (id);

-- Where each chunk's text was in its file (page, sheet, slide, time range) and the heading
-- path above it; NULL for chunks of documents given as plain text.
ALTER TABLE chunks
    ADD COLUMN locator JSONB,
    ADD COLUMN headings TEXT[];

-- Events the memory service owes the bus, written in the same transaction as the change they
-- announce and published by its relay (`outbox.rs`) with the row's id as the event id, in
-- `seq` order; JetStream deduplicates a relay that publishes twice.
CREATE TABLE outbox (
    seq         BIGSERIAL PRIMARY KEY,
    id          UUID NOT NULL UNIQUE,
    envelope    JSONB NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    sent_at     TIMESTAMPTZ
);
CREATE INDEX outbox_unsent ON outbox (seq) WHERE sent_at IS NULL;

CREATE FUNCTION outbox_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('daarion_outbox', '');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER outbox_written AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
