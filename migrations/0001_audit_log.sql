-- The append-only audit log: who did what, when, with the state before and after.
-- Rows arrive from the AUDIT stream (audit-logger consumer); the event id is the key, so a
-- redelivered event is stored once.
CREATE TABLE audit_log (
    id          UUID PRIMARY KEY,
    at          TIMESTAMPTZ NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    target      TEXT,
    outcome     TEXT NOT NULL DEFAULT 'ok',
    source      TEXT NOT NULL,
    trace_id    TEXT NOT NULL,
    before      JSONB,
    after       JSONB,
    detail      JSONB,
    recorded_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX audit_log_at ON audit_log (at DESC);
CREATE INDEX audit_log_actor_at ON audit_log (actor, at DESC);
CREATE INDEX audit_log_action_at ON audit_log (action, at DESC);
CREATE INDEX audit_log_trace ON audit_log (trace_id);

-- History must not be rewritten, not even by a bug in the appliance itself.
CREATE FUNCTION audit_log_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER audit_log_no_update_or_delete
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

CREATE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
