import { useEffect, useState } from "preact/hooks";

import { api, control, memory, query } from "../lib/api";
import { parseTyped } from "../lib/json";
import { when } from "../lib/format";
import { Action, attempt, ErrorNote, Notice, Section, Table, useData } from "../components/ui";

export function Policy() {
  return (
    <>
      <Roles />
      <AgentPolicy />
      <Users />
      <Pairings />
    </>
  );
}

function Roles() {
  const roles = useData<any[]>(() => control("/roles"), []);
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const [error, setError] = useState<string | null>(null);
  return (
    <Section title="Roles">
      <ErrorNote error={roles.error ?? error} />
      <Table head={["Role", "Description", ""]} label="Roles">
        {roles.data?.map((r) => (
          <tr>
            <td>{r.name}</td>
            <td>{r.description}</td>
            <td>{r.builtin ? <span class="tag">built in</span> : null}</td>
          </tr>
        ))}
      </Table>
      <form
        class="row"
        aria-label="New role"
        onSubmit={async (e) => {
          e.preventDefault();
          const done = await attempt(setError, () =>
            control("/roles", { body: { name, description } }));
          if (!done) return;
          setName("");
          setDescription("");
          roles.reload();
        }}
      >
        <label>
          New role
          <input value={name} required onInput={(e) => setName(e.currentTarget.value)} />
        </label>
        <label>
          Description
          <input value={description} onInput={(e) => setDescription(e.currentTarget.value)} />
        </label>
        <button type="submit">Add role</button>
      </form>
    </Section>
  );
}

const EXAMPLE = {
  roles: { user: { use: true, tools: { allow: ["*"], deny: [] }, models: { allow: ["*"], deny: [] } } },
  users: {},
};

function AgentPolicy() {
  const agents = useData<any[]>(() => control("/agents"), []);
  const [agent, setAgent] = useState("");
  const [text, setText] = useState("");
  const [comment, setComment] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const versions = useData<any[]>(
    () => (agent ? control(`/policy/${agent}/versions`).catch(() => []) : Promise.resolve([])),
    [agent],
  );
  useEffect(() => {
    if (!agent) return;
    control(`/policy/${agent}`)
      .then((p) => setText(JSON.stringify(p.document, null, 2)))
      .catch(() => setText(JSON.stringify(EXAMPLE, null, 2)));
  }, [agent]);
  return (
    <Section title="Entitlements per agent">
      <label class="inline">
        Agent
        <select value={agent} onChange={(e) => setAgent(e.currentTarget.value)}>
          <option value="">choose…</option>
          {agents.data?.map((a) => (
            <option value={a.id}>{a.id}</option>
          ))}
        </select>
      </label>
      {agent ? (
        <form
          class="stack"
          aria-label="Agent policy"
          onSubmit={async (e) => {
            e.preventDefault();
            const typed = parseTyped(text);
            if ("error" in typed) {
              setError(typed.error);
              return;
            }
            const document = typed.value;
            const done = await attempt(setError, () =>
              control(`/policy/${agent}`, { method: "PUT", body: { document, comment } }));
            if (!done) return;
            setNote("Saved as a new version.");
            versions.reload();
          }}
        >
          <label>
            Policy (roles and per-user grants: use, tools, models, modes)
            <textarea rows={12} class="mono" value={text} onInput={(e) => setText(e.currentTarget.value)} />
          </label>
          <label>
            What changed
            <input value={comment} onInput={(e) => setComment(e.currentTarget.value)} />
          </label>
          <ErrorNote error={error} />
          <Notice text={note} />
          <button type="submit" class="primary">
            Save policy
          </button>
          <Table head={["Version", "When", "Author", "Comment"]} label="Policy versions">
            {[...(versions.data ?? [])].reverse().map((v) => (
              <tr>
                <td>v{v.version}</td>
                <td>{when(v.created_at)}</td>
                <td>{v.author}</td>
                <td>{v.comment}</td>
              </tr>
            ))}
          </Table>
        </form>
      ) : null}
    </Section>
  );
}

function Users() {
  const [q, setQ] = useState("");
  const users = useData<any[]>(() => memory(`/v1/users${query({ q, limit: 100 })}`), [q]);
  const roles = useData<any[]>(() => control("/roles"), []);
  const [editing, setEditing] = useState<string | null>(null);
  return (
    <Section title="Users">
      <label class="inline">
        Find
        <input type="search" value={q} placeholder="name, id or Telegram id" onInput={(e) => setQ(e.currentTarget.value)} />
      </label>
      <ErrorNote error={users.error} />
      <Table head={["User", "Identities", "Since", "Roles"]} label="Users">
        {users.data?.map((u) => (
          <tr data-user={u.id}>
            <td>
              {u.display_name || <span class="muted">(no name)</span>}
              <div class="muted small">{u.id}</div>
            </td>
            <td>{u.identities.join(", ")}</td>
            <td>{when(u.created_at)}</td>
            <td>
              {editing === u.id ? (
                <UserRoles user={u.id} all={roles.data?.map((r) => r.name) ?? []} onDone={() => setEditing(null)} />
              ) : (
                <RolesOf user={u.id} onEdit={() => setEditing(u.id)} />
              )}
            </td>
          </tr>
        ))}
      </Table>
    </Section>
  );
}

function RolesOf(props: { user: string; onEdit: () => void }) {
  const roles = useData<any>(() => control(`/users/${props.user}/roles`), [props.user]);
  return (
    <>
      {roles.data?.roles.join(", ") || <span class="muted">none</span>}{" "}
      <button type="button" class="link" onClick={props.onEdit}>
        change
      </button>
    </>
  );
}

function UserRoles(props: { user: string; all: string[]; onDone: () => void }) {
  const current = useData<any>(() => control(`/users/${props.user}/roles`), [props.user]);
  const [chosen, setChosen] = useState<string[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const held: string[] = chosen ?? current.data?.roles ?? [];
  return (
    <fieldset>
      <legend class="sr-only">Roles of {props.user}</legend>
      {props.all.map((role) => (
        <label class="check">
          <input
            type="checkbox"
            checked={held.includes(role)}
            onChange={(e) =>
              setChosen(e.currentTarget.checked ? [...held, role] : held.filter((r) => r !== role))
            }
          />
          {role}
        </label>
      ))}
      <ErrorNote error={error} />
      <Action
        label="Save roles"
        kind="primary"
        run={() => control(`/users/${props.user}/roles`, { method: "PUT", body: { roles: held } })}
        onDone={props.onDone}
        onError={setError}
      />
    </fieldset>
  );
}

function Pairings() {
  const pending = useData<any[]>(() => api("/api/gateway/v1/pairings"), [], 5000);
  const [error, setError] = useState<string | null>(null);
  return (
    <Section title="Pairing requests">
      <ErrorNote error={pending.error ?? error} />
      {pending.data && pending.data.length === 0 ? <p>No one is waiting for approval.</p> : null}
      <Table head={["Code", "Bot", "Telegram user", "Name", ""]} label="Pairing requests">
        {pending.data?.map((p) => (
          <tr>
            <td>
              <code>{p.code}</code>
            </td>
            <td>{p.bot}</td>
            <td>{p.telegram_user}</td>
            <td>{p.name}</td>
            <td>
              <Action
                label="Approve"
                kind="primary"
                run={() => api(`/api/gateway/v1/pairings/${p.code}/approve`, { method: "POST" })}
                onDone={pending.reload}
                onError={setError}
              />
            </td>
          </tr>
        ))}
      </Table>
    </Section>
  );
}
