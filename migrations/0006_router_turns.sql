-- The router stores a whole turn: an assistant message may carry the tool calls the model made,
-- and a tool message names the call it answers.
ALTER TABLE messages
    ADD COLUMN tool_calls   JSONB,
    ADD COLUMN tool_call_id TEXT CHECK (length(tool_call_id) <= 128);

-- The open session of one user with one agent in one chat, found on every turn.
CREATE INDEX sessions_open ON sessions (user_id, agent_id, chat) WHERE ended_at IS NULL;
