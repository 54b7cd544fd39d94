-- Crews (issue #19), owned by the crews service (:9010): crew definitions versioned like
-- prompts, runs with the lease of the worker executing them, each run's step journal, and the
-- outbox of the events the service owes the bus (written in the transaction of the change).

-- A crew and which of its versions is active. A deleted crew keeps its versions (runs keep
-- the version they started with); saving it again revives it.
CREATE TABLE crews (
    id             TEXT PRIMARY KEY,
    active_version INTEGER NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at     TIMESTAMPTZ
);

CREATE TABLE crew_versions (
    crew       TEXT NOT NULL REFERENCES crews (id),
    version    INTEGER NOT NULL CHECK (version > 0),
    spec       JSONB NOT NULL,
    author     TEXT NOT NULL,
    note       TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (crew, version)
);

-- A run. `crew_version` 0: the crew was unknown when the run was asked for (it failed at once).
CREATE TABLE crew_runs (
    id               UUID PRIMARY KEY,
    crew             TEXT NOT NULL,
    crew_version     INTEGER NOT NULL,
    user_id          UUID NOT NULL,
    agent_id         TEXT NOT NULL,
    session_id       UUID,
    state            TEXT NOT NULL CHECK (state IN
                         ('queued', 'running', 'waiting_input', 'completed', 'failed', 'cancelled')),
    inputs           JSONB NOT NULL DEFAULT '{}',
    task             TEXT NOT NULL DEFAULT '',
    budget           JSONB NOT NULL DEFAULT '{}',
    usage            JSONB NOT NULL DEFAULT '{}',
    tasks_done       INTEGER NOT NULL DEFAULT 0,
    tasks_total      INTEGER NOT NULL DEFAULT 0,
    result           TEXT,
    stop             JSONB,
    question         TEXT,
    origin           JSONB,
    trace_id         TEXT,
    -- Who asked for it (`token:<name>`, an admin, `bus` for a request that came over the bus):
    -- a `crews:run` credential sees the runs it started.
    started_by       TEXT NOT NULL,
    lease_holder     TEXT,
    lease_until      TIMESTAMPTZ,
    cancel_requested BOOLEAN NOT NULL DEFAULT false,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    started_at       TIMESTAMPTZ,
    -- When it last stopped or paused for its user: a resume moves `started_at` on by the time
    -- since, so the wall-time budget counts working time, not days spent waiting for an answer.
    paused_at        TIMESTAMPTZ,
    finished_at      TIMESTAMPTZ
);

CREATE INDEX crew_runs_created ON crew_runs (created_at DESC);
CREATE INDEX crew_runs_user ON crew_runs (user_id, created_at DESC);
CREATE INDEX crew_runs_crew ON crew_runs (crew, created_at DESC);
CREATE INDEX crew_runs_state ON crew_runs (state, created_at DESC);

-- The journal: a step is written before anything follows from it, once per key.
CREATE TABLE crew_run_steps (
    run_id      UUID NOT NULL REFERENCES crew_runs (id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    key         TEXT NOT NULL,
    kind        TEXT NOT NULL,
    task        TEXT,
    agent       TEXT,
    tool        TEXT,
    model       TEXT,
    input       JSONB NOT NULL,
    output      JSONB NOT NULL,
    error       TEXT,
    usage       JSONB NOT NULL DEFAULT '{}',
    duration_ms BIGINT NOT NULL DEFAULT 0,
    at          TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (run_id, seq),
    UNIQUE (run_id, key)
);

-- Events owed to the bus (`agent.run.*`, `audit.action`), relayed in `seq` order with the
-- row's id as the event id, so JetStream drops a relay's duplicate.
CREATE TABLE crews_outbox (
    seq        BIGSERIAL PRIMARY KEY,
    id         UUID NOT NULL UNIQUE,
    envelope   JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    sent_at    TIMESTAMPTZ
);

CREATE INDEX crews_outbox_unsent ON crews_outbox (seq) WHERE sent_at IS NULL;

CREATE FUNCTION crews_outbox_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('daarion_crews_outbox', '');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER crews_outbox_written AFTER INSERT ON crews_outbox
    FOR EACH STATEMENT EXECUTE FUNCTION crews_outbox_notify();
