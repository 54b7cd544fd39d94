-- Control plane: roles and their assignment, per-agent policy versions, versioned config
-- values (routing rules, feature flags, provider settings) and quota limits.

CREATE TABLE roles (
    name        TEXT PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_-]{0,31}$'),
    description TEXT NOT NULL DEFAULT '',
    builtin     BOOLEAN NOT NULL DEFAULT false,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
INSERT INTO roles (name, description, builtin) VALUES
    ('admin', 'Everything, on every agent', true),
    ('operator', 'Runs the appliance', true),
    ('user', 'A known user', true),
    ('guest', 'Anyone not yet approved', true);

-- A user without a row here has the role `guest`.
CREATE TABLE user_roles (
    user_id     TEXT NOT NULL CHECK (length(user_id) BETWEEN 1 AND 128),
    role        TEXT NOT NULL REFERENCES roles (name),
    PRIMARY KEY (user_id, role)
);

CREATE TABLE policy_versions (
    agent_id    TEXT NOT NULL REFERENCES agents (id),
    version     INTEGER NOT NULL CHECK (version >= 1),
    document    JSONB NOT NULL,
    comment     TEXT NOT NULL DEFAULT '',
    author      TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (agent_id, version)
);
CREATE TRIGGER policy_versions_no_update_or_delete
    BEFORE UPDATE OR DELETE ON policy_versions
    FOR EACH ROW EXECUTE FUNCTION prompt_versions_append_only();

CREATE TABLE config_versions (
    key         TEXT NOT NULL CHECK (key ~ '^[a-z0-9][a-z0-9_.-]{0,127}$'),
    version     INTEGER NOT NULL CHECK (version >= 1),
    value       JSONB NOT NULL,
    comment     TEXT NOT NULL DEFAULT '',
    author      TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (key, version)
);
CREATE TRIGGER config_versions_no_update_or_delete
    BEFORE UPDATE OR DELETE ON config_versions
    FOR EACH ROW EXECUTE FUNCTION prompt_versions_append_only();

-- scope is `user:<id>` or `role:<name>`; NULL limits mean unlimited.
CREATE TABLE quota_limits (
    scope                   TEXT PRIMARY KEY CHECK (scope ~ '^(user|role):.{1,128}$'),
    requests_per_minute     BIGINT CHECK (requests_per_minute >= 0),
    tokens_per_day          BIGINT CHECK (tokens_per_day >= 0),
    gpu_seconds_per_day     DOUBLE PRECISION CHECK (gpu_seconds_per_day >= 0),
    cost_per_month          NUMERIC(14, 4) CHECK (cost_per_month >= 0),
    currency                TEXT NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
    revision                INTEGER NOT NULL DEFAULT 1,
    updated_by              TEXT NOT NULL,
    updated_at              TIMESTAMPTZ NOT NULL DEFAULT now()
);
