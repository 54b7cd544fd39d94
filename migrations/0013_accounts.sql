-- API tokens may carry an expiry (chosen at mint). Past it a token is marked revoked on its next
-- use or by the control plane's periodic sweep, so every reader that already refuses revoked
-- tokens refuses expired ones too.
ALTER TABLE api_tokens ADD COLUMN expires_at TIMESTAMPTZ;
CREATE INDEX api_tokens_expiry ON api_tokens (expires_at)
    WHERE expires_at IS NOT NULL AND revoked_at IS NULL;

-- Sessions end after an idle timeout as well as an absolute one: `expires_at` becomes the
-- sliding deadline (moved forward on use, never past created_at + the absolute limit), and
-- sessions are found by account to end them all at once (password change, disable, sign out
-- everywhere).
CREATE INDEX admin_sessions_account ON admin_sessions (account_id);
