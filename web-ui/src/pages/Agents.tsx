import { useEffect, useState } from "preact/hooks";

import { control } from "../lib/api";
import { parseUnified } from "../lib/diff";
import { when } from "../lib/format";
import { Action, attempt, ErrorNote, Notice, Section, Table, useData } from "../components/ui";

interface Agent {
  id: string;
  name: string;
  description: string;
  default_model: string | null;
  telegram_bot: string | null;
  enabled: boolean;
  active_prompt: number | null;
}

interface PromptVersion {
  version: number;
  content: string;
  comment: string;
  author: string;
  created_at: string;
}

export function Agents() {
  const agents = useData<Agent[]>(() => control("/agents"), []);
  const [selected, setSelected] = useState<string | null>(null);
  const agent = agents.data?.find((a) => a.id === selected) ?? null;
  return (
    <>
      <Section title="Agents">
        <ErrorNote error={agents.error} />
        <Table head={["Id", "Name", "Model", "Telegram bot", "Enabled", "Prompt"]} label="Agents">
          {agents.data?.map((a) => (
            <tr data-agent={a.id}>
              <td>
                <button type="button" class="link" onClick={() => setSelected(a.id)}>
                  {a.id}
                </button>
              </td>
              <td>{a.name}</td>
              <td>{a.default_model ?? "—"}</td>
              <td>{a.telegram_bot ?? "—"}</td>
              <td>{a.enabled ? "yes" : "no"}</td>
              <td>{a.active_prompt ? `v${a.active_prompt}` : "—"}</td>
            </tr>
          ))}
        </Table>
        <NewAgent onCreated={(id) => (agents.reload(), setSelected(id))} />
      </Section>
      {agent ? <AgentDetail key={agent.id} agent={agent} onChanged={agents.reload} /> : null}
    </>
  );
}

function NewAgent(props: { onCreated: (id: string) => void }) {
  const [id, setId] = useState("");
  const [name, setName] = useState("");
  const [error, setError] = useState<string | null>(null);
  return (
    <form
      class="row"
      aria-label="New agent"
      onSubmit={async (e) => {
        e.preventDefault();
        const done = await attempt(setError, () =>
          control("/agents", { body: { id, name: name || id } }));
        if (!done) return;
        props.onCreated(id);
        setId("");
        setName("");
      }}
    >
      <label>
        New agent id
        <input value={id} required onInput={(e) => setId(e.currentTarget.value)} placeholder="helper" />
      </label>
      <label>
        Name
        <input value={name} onInput={(e) => setName(e.currentTarget.value)} />
      </label>
      <button type="submit">Create</button>
      <ErrorNote error={error} />
    </form>
  );
}

function AgentDetail(props: { agent: Agent; onChanged: () => void }) {
  const { agent } = props;
  const [form, setForm] = useState({
    name: agent.name,
    description: agent.description,
    default_model: agent.default_model ?? "",
    telegram_bot: agent.telegram_bot ?? "",
    enabled: agent.enabled,
  });
  const [note, setNote] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  return (
    <>
      <Section title={`Agent ${agent.id}`}>
        <form
          class="stack"
          aria-label="Agent settings"
          onSubmit={async (e) => {
            e.preventDefault();
            const done = await attempt(setError, () =>
              control(`/agents/${agent.id}`, {
                method: "PATCH",
                body: {
                  name: form.name,
                  description: form.description,
                  default_model: form.default_model || null,
                  telegram_bot: form.telegram_bot || null,
                  enabled: form.enabled,
                },
              }));
            if (!done) return;
            setNote("Saved.");
            props.onChanged();
          }}
        >
          <label>
            Name
            <input value={form.name} onInput={(e) => setForm({ ...form, name: e.currentTarget.value })} />
          </label>
          <label>
            Description
            <input
              value={form.description}
              onInput={(e) => setForm({ ...form, description: e.currentTarget.value })}
            />
          </label>
          <label>
            Default model (provider/model)
            <input
              value={form.default_model}
              placeholder="local/smollm2"
              onInput={(e) => setForm({ ...form, default_model: e.currentTarget.value })}
            />
          </label>
          <label>
            Telegram bot (a telegram.* config key's bot name)
            <input
              value={form.telegram_bot}
              onInput={(e) => setForm({ ...form, telegram_bot: e.currentTarget.value })}
            />
          </label>
          <label class="check">
            <input
              type="checkbox"
              checked={form.enabled}
              onChange={(e) => setForm({ ...form, enabled: e.currentTarget.checked })}
            />
            Enabled
          </label>
          <ErrorNote error={error} />
          <Notice text={note} />
          <button type="submit" class="primary">
            Save agent
          </button>
        </form>
      </Section>
      <Prompts agent={agent} onChanged={props.onChanged} />
    </>
  );
}

function Prompts(props: { agent: Agent; onChanged: () => void }) {
  const { agent } = props;
  const prompts = useData<{ active: number | null; versions: PromptVersion[] }>(
    () => control(`/prompts/${agent.id}`),
    [agent.id],
  );
  const [text, setText] = useState<string | null>(null);
  const [comment, setComment] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [diff, setDiff] = useState<{ from: number; to: number; unified: string } | null>(null);
  const sorted = [...(prompts.data?.versions ?? [])].sort((a, b) => b.version - a.version);
  const activeVersion = prompts.data?.active ?? null;
  useEffect(() => {
    if (text === null && prompts.data) setText(sorted.find((v) => v.version === activeVersion)?.content ?? "");
  }, [prompts.data]);
  const showDiff = async (from: number, to: number) => {
    const answer = await control(`/prompts/${agent.id}/diff?from=${from}&to=${to}`);
    setDiff({ from, to, unified: answer.unified });
  };
  return (
    <Section title="System prompt">
      <form
        class="stack"
        aria-label="Prompt editor"
        onSubmit={async (e) => {
          e.preventDefault();
          const done = await attempt(setError, () =>
            control(`/prompts/${agent.id}`, { body: { content: text ?? "", comment, activate: true } }));
          if (!done) return;
          setComment("");
          prompts.reload();
          props.onChanged();
        }}
      >
        <label>
          <span>
            Prompt (variables as <code>{"{{name}}"}</code>)
          </span>
          <textarea rows={10} value={text ?? ""} onInput={(e) => setText(e.currentTarget.value)} />
        </label>
        <label>
          What changed
          <input value={comment} onInput={(e) => setComment(e.currentTarget.value)} />
        </label>
        <ErrorNote error={error ?? prompts.error} />
        <button type="submit" class="primary">
          Save as new version
        </button>
      </form>
      <h3>Versions</h3>
      <Table head={["Version", "When", "Author", "Comment", ""]} label="Prompt versions">
        {sorted.map((v, i) => (
          <tr data-version={v.version}>
            <td>
              v{v.version} {v.version === activeVersion ? <span class="tag">active</span> : null}
            </td>
            <td>{when(v.created_at)}</td>
            <td>{v.author}</td>
            <td>{v.comment}</td>
            <td class="actions">
              {i + 1 < sorted.length ? (
                <Action label="Diff" run={() => showDiff(sorted[i + 1].version, v.version)} onError={setError} />
              ) : null}
              {v.version !== activeVersion ? (
                <Action
                  label={`Roll back to v${v.version}`}
                  run={() => control(`/prompts/${agent.id}/${v.version}/activate`, { method: "POST" })}
                  onDone={() => {
                    setText(v.content);
                    prompts.reload();
                    props.onChanged();
                  }}
                  onError={setError}
                />
              ) : null}
            </td>
          </tr>
        ))}
      </Table>
      {diff ? (
        <div aria-label="Prompt diff">
          <h3>
            v{diff.from} → v{diff.to}
          </h3>
          <pre class="diff">
            {parseUnified(diff.unified).map((line) => (
              <div class={`diff-${line.kind}`}>
                {line.kind === "add" ? "+ " : line.kind === "del" ? "- " : "  "}
                {line.text}
              </div>
            ))}
          </pre>
        </div>
      ) : null}
    </Section>
  );
}
