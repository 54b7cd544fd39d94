import { useState } from "preact/hooks";

import { parseTyped } from "../lib/json";
import { control } from "../lib/api";
import { when } from "../lib/format";
import { Action, attempt, ErrorNote, Json, Notice, Section, Table, useData } from "../components/ui";

interface ConfigVersion {
  key: string;
  version: number;
  value: any;
  comment: string;
  author: string;
  created_at: string;
}

export function Config() {
  const all = useData<ConfigVersion[]>(() => control("/config"), []);
  const [selected, setSelected] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const flags = all.data?.filter((c) => c.key.startsWith("flags.")) ?? [];
  const rest = all.data?.filter((c) => !c.key.startsWith("flags.")) ?? [];
  return (
    <>
      <Section title="Feature flags">
        <ErrorNote error={all.error ?? error} />
        {flags.length === 0 ? <p>No flags yet: add one below with a key such as flags.voice_replies.</p> : null}
        <Table head={["Flag", "State", "Rollout", "Changed", ""]} label="Feature flags">
          {flags.map((f) => (
            <tr data-key={f.key}>
              <td>{f.key.slice("flags.".length)}</td>
              <td>{f.value.enabled ? "on" : "off"}</td>
              <td>{f.value.rollout_percent ?? 100}%</td>
              <td>
                v{f.version} · {when(f.created_at)} · {f.author}
              </td>
              <td class="actions">
                <Action
                  label={f.value.enabled ? "Turn off" : "Turn on"}
                  run={() =>
                    control(`/config/${f.key}`, {
                      method: "PUT",
                      body: {
                        value: { ...f.value, enabled: !f.value.enabled },
                        comment: `${f.value.enabled ? "off" : "on"} from the admin UI`,
                      },
                    })
                  }
                  onDone={all.reload}
                  onError={setError}
                />
                <button type="button" class="link" onClick={() => setSelected(f.key)}>
                  history
                </button>
              </td>
            </tr>
          ))}
        </Table>
      </Section>
      <Section title="Settings (routing, providers, agents, Telegram bots)">
        <Table head={["Key", "Version", "Changed by", ""]} label="Settings">
          {rest.map((c) => (
            <tr data-key={c.key}>
              <td>{c.key}</td>
              <td>v{c.version}</td>
              <td>
                {c.author} · {when(c.created_at)}
              </td>
              <td>
                <button type="button" class="link" onClick={() => setSelected(c.key)}>
                  edit
                </button>
              </td>
            </tr>
          ))}
        </Table>
        <Editor
          key={selected ?? "new"}
          keyName={selected}
          current={all.data?.find((c) => c.key === selected)}
          onSaved={(k) => (all.reload(), setSelected(k))}
        />
      </Section>
    </>
  );
}

function Editor(props: { keyName: string | null; current?: ConfigVersion; onSaved: (key: string) => void }) {
  const [key, setKey] = useState(props.keyName ?? "");
  const [text, setText] = useState(props.current ? JSON.stringify(props.current.value, null, 2) : "");
  const [comment, setComment] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const history = useData<ConfigVersion[]>(
    () => (props.keyName ? control(`/config/${props.keyName}/versions`) : Promise.resolve([])),
    [props.keyName],
  );
  return (
    <form
      class="stack"
      aria-label="Config editor"
      onSubmit={async (e) => {
        e.preventDefault();
        const typed = parseTyped(text);
        if ("error" in typed) {
          setError(typed.error);
          return;
        }
        const value = typed.value;
        const done = await attempt(setError, () =>
          control(`/config/${key}`, { method: "PUT", body: { value, comment } }));
        if (!done) return;
        setNote(`Saved ${key}.`);
        history.reload();
        props.onSaved(key);
      }}
    >
      <h3>{props.keyName ? `Edit ${props.keyName}` : "Add a setting or flag"}</h3>
      <label>
        Key
        <input value={key} required readOnly={!!props.keyName} onInput={(e) => setKey(e.currentTarget.value)} placeholder="flags.voice_replies" />
      </label>
      <label>
        Value (JSON)
        <textarea rows={8} class="mono" value={text} onInput={(e) => setText(e.currentTarget.value)} placeholder='{"enabled": true}' />
      </label>
      <label>
        Why
        <input value={comment} onInput={(e) => setComment(e.currentTarget.value)} />
      </label>
      <ErrorNote error={error} />
      <Notice text={note} />
      <button type="submit" class="primary">
        Save
      </button>
      {props.keyName && history.data ? (
        <>
          <h3>History of {props.keyName}</h3>
          <Table head={["Version", "When", "Author", "Comment", "Value", ""]} label="Config history">
            {[...history.data].reverse().map((v) => (
              <tr>
                <td>v{v.version}</td>
                <td>{when(v.created_at)}</td>
                <td>{v.author}</td>
                <td>{v.comment}</td>
                <td>
                  <Json value={v.value} />
                </td>
                <td>
                  <button type="button" class="link" onClick={() => setText(JSON.stringify(v.value, null, 2))}>
                    use this value
                  </button>
                </td>
              </tr>
            ))}
          </Table>
        </>
      ) : null}
    </form>
  );
}
