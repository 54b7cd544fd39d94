import { useState } from "preact/hooks";

import { ApiError, api, setCsrfToken } from "../lib/api";
import { ErrorNote, Notice } from "../components/ui";

export function Login(props: { reason?: string; onIn: (name: string) => void }) {
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  return (
    <main class="login">
      <form
        class="card"
        aria-label="Sign in"
        onSubmit={async (e) => {
          e.preventDefault();
          setBusy(true);
          setError(null);
          try {
            const answer = await api("/api/control/auth/login", {
              body: { username, password },
            });
            setCsrfToken(answer.csrf_token);
            props.onIn(`admin:${answer.username}`);
          } catch (err) {
            // The control plane says the same for an unknown user and a wrong password.
            setError(
              err instanceof ApiError && err.status === 401
                ? "Wrong username or password."
                : err instanceof ApiError && err.status === 429
                  ? "Too many failed sign-ins for this account or address; wait a while and try again."
                  : (err as Error).message,
            );
          } finally {
            setBusy(false);
          }
        }}
      >
        <h1>DAARION admin</h1>
        <Notice text={props.reason ?? null} />
        <label>
          Username
          <input
            name="username"
            autocomplete="username"
            required
            value={username}
            onInput={(e) => setUsername(e.currentTarget.value)}
          />
        </label>
        <label>
          Password
          <input
            name="password"
            type="password"
            autocomplete="current-password"
            required
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
          />
        </label>
        <ErrorNote error={error} />
        <button type="submit" class="primary" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
        <p class="hint">
          No account yet? On the box: <code>sudo daarion admin create &lt;name&gt;</code>
        </p>
      </form>
    </main>
  );
}
