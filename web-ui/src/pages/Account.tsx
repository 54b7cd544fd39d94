// The signed-in admin's own account (a new password, signing out everywhere) and, for every
// admin account, disabling, enabling and ending its sessions. The control plane ends the
// sessions each change must end; this page only asks.

import { useState } from "preact/hooks";

import { control, setCsrfToken } from "../lib/api";
import { Action, attempt, Badge, ErrorNote, Notice, Section, Table, useData } from "../components/ui";

interface AdminInfo {
  id: string;
  username: string;
  created_at: string;
  disabled_at: string | null;
}

export function Account() {
  // Who "me" is: the disable and end-sessions buttons are off for the own account.
  const who = useData<{ name: string }>(() => control("/auth/whoami", { method: "POST" }), []);
  return (
    <>
      <ChangePassword />
      <SignOutEverywhere />
      <Admins own={who.data?.name.replace(/^admin:/, "")} />
    </>
  );
}

function ChangePassword() {
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [note, setNote] = useState<string | null>(null);
  return (
    <Section title="Change password">
      <form
        class="stack"
        aria-label="Change password"
        onSubmit={async (e) => {
          e.preventDefault();
          setNote(null);
          let ended = 0;
          const done = await attempt(setError, async () => {
            const answer = await control("/auth/password", {
              body: { current_password: current, new_password: next },
            });
            ended = answer.sessions_ended ?? 0;
          });
          if (!done) return;
          setCurrent("");
          setNext("");
          setNote(`Password changed; ${ended} other session(s) signed out.`);
        }}
      >
        <label>
          Current password
          <input
            type="password"
            autocomplete="current-password"
            required
            value={current}
            onInput={(e) => setCurrent(e.currentTarget.value)}
          />
        </label>
        <label>
          New password (12 characters or more)
          <input
            type="password"
            autocomplete="new-password"
            required
            minLength={12}
            value={next}
            onInput={(e) => setNext(e.currentTarget.value)}
          />
        </label>
        <ErrorNote error={error} />
        <Notice text={note} />
        <button type="submit" class="primary">
          Change password
        </button>
      </form>
    </Section>
  );
}

function SignOutEverywhere() {
  const [error, setError] = useState<string | null>(null);
  return (
    <Section title="Sessions">
      <p>Ends every session of this account, on every device, this one included.</p>
      <ErrorNote error={error} />
      <Action
        label="Sign out everywhere"
        kind="danger"
        run={() => control("/auth/signout-everywhere", { method: "POST" })}
        onDone={() => {
          // This session ended too: start again at the sign-in form.
          setCsrfToken(null);
          location.assign("/");
        }}
        onError={setError}
      />
    </Section>
  );
}

function Admins(props: { own?: string }) {
  const admins = useData<AdminInfo[]>(() => control("/auth/admins"), []);
  const [error, setError] = useState<string | null>(null);
  const path = (username: string, what: string) => `/auth/admins/${encodeURIComponent(username)}/${what}`;
  return (
    <Section title="Admin accounts">
      <ErrorNote error={admins.error ?? error} />
      <Table head={["Account", "State", "Actions"]} label="Admin accounts">
        {(admins.data ?? []).map((a) => (
          <tr>
            <td>{a.username}</td>
            <td>
              <Badge state={a.disabled_at ? "disabled" : "active"} />
            </td>
            <td class="row">
              {a.disabled_at ? (
                <Action
                  label="Enable"
                  run={() => control(path(a.username, "enable"), { method: "POST" })}
                  onDone={admins.reload}
                  onError={setError}
                />
              ) : (
                <Action
                  label="Disable"
                  kind="danger"
                  disabled={a.username === props.own}
                  title={a.username === props.own ? "You cannot disable your own account" : undefined}
                  run={() => control(path(a.username, "disable"), { method: "POST" })}
                  onDone={admins.reload}
                  onError={setError}
                />
              )}
              <Action
                label="End sessions"
                disabled={a.username === props.own}
                title={a.username === props.own ? "Use “Sign out everywhere” for your own" : undefined}
                run={() => control(path(a.username, "sessions"), { method: "DELETE" })}
                onDone={admins.reload}
                onError={setError}
              />
            </td>
          </tr>
        ))}
      </Table>
    </Section>
  );
}
