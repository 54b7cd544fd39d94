-- First-run defaults of the control plane (issue #25): one row per set of defaults, written in
-- the transaction that applied (or, on an appliance that already had agents, skipped) them, so
-- they are considered once: an operator who deletes or changes the default agent does not see
-- it come back at the next start.
CREATE TABLE control_defaults (
    name        TEXT PRIMARY KEY,
    -- false: the appliance already had agents, so nothing was added.
    seeded      BOOLEAN NOT NULL,
    detail      JSONB NOT NULL DEFAULT '{}',
    applied_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
