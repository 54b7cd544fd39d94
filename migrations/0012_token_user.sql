-- API tokens: a user-confined (`memory:user`) token names the user it acts for, and token
-- names are unique among live tokens (two tokens named alike were indistinguishable in audit
-- and usage records, and shared a user's memory).

-- The memory service's user id. Not a foreign key: users live in the memory service's tables,
-- and a service never reaches into another's.
ALTER TABLE api_tokens ADD COLUMN user_id UUID;

-- Live tokens that already share a name keep working, renamed apart by their id (the oldest
-- keeps its name).
UPDATE api_tokens t
SET name = left(t.name, 91) || '-' || left(t.id::text, 8)
WHERE t.revoked_at IS NULL
  AND EXISTS (
      SELECT 1 FROM api_tokens o
      WHERE o.name = t.name AND o.revoked_at IS NULL
        AND (o.created_at, o.id) < (t.created_at, t.id)
  );

CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens (name) WHERE revoked_at IS NULL;
