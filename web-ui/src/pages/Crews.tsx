// Crews (the crews service, :9010, behind /api/crews): the list, a crew's agents and tasks, its
// JSON editor with the service's refusals shown at the field they name, versions with diff and
// rollback, delete, the CrewAI import (dry run first), and starting a run.

import { useEffect, useState } from "preact/hooks";

import { ApiError, api, control, memory, query } from "../lib/api";
import {
  crewInputs,
  type CrewSpec,
  type CrewSummary,
  type CrewVersion,
  fieldBelongs,
  fieldError,
  type ImportReport,
  type ImportRequest,
  parseSpec,
  type Process,
  type Run,
  runRequest,
  taskMarks,
  unknownKeyPlace,
  type VersionDiff,
} from "../lib/crews";
import { parseUnified } from "../lib/diff";
import { when } from "../lib/format";
import { Action, ErrorNote, Notice, Section, Table, useData } from "../components/ui";
import "./Crews.css";

export const crews = <T = any>(path: string, options?: Parameters<typeof api>[1]) =>
  api<T>(`/api/crews${path}`, options);

/** Opens a run on the Runs page (the same as the menu's links do). */
export function openRun(id: string) {
  history.pushState(null, "", `/runs${query({ run: id })}`);
  dispatchEvent(new PopStateEvent("popstate"));
}

/** A refusal with the field it names, so it can be shown there. */
interface FieldProblem {
  field: string | null;
  message: string;
}

function problemOf(err: unknown): FieldProblem {
  const message = (err as Error).message;
  if (err instanceof ApiError && err.code === "invalid") return fieldError(message);
  return { field: null, message };
}

const EMPTY_CREW: CrewSpec = {
  id: "",
  name: "",
  description: "",
  process: "sequential",
  agents: [{ key: "researcher", role: "Researcher", goal: "Find what is asked about {topic}", tools: [] }],
  tasks: [{ key: "research", description: "Research {topic}", expected_output: "A short report", agent: "researcher" }],
  budget: {},
};

export function Crews() {
  const list = useData<CrewSummary[]>(() => crews("/v1/crews"), []);
  const [selected, setSelected] = useState<string | null>(null);
  const [mode, setMode] = useState<"none" | "new" | "import">("none");
  const changed = (id?: string) => {
    list.reload();
    if (id) {
      setSelected(id);
      setMode("none");
    }
  };
  return (
    <>
      <Section
        title="Crews"
        actions={
          <>
            <button type="button" aria-pressed={mode === "new"} onClick={() => setMode(mode === "new" ? "none" : "new")}>
              New crew
            </button>
            <button
              type="button"
              aria-pressed={mode === "import"}
              onClick={() => setMode(mode === "import" ? "none" : "import")}
            >
              Import CrewAI project
            </button>
          </>
        }
      >
        <ErrorNote error={list.error} />
        {list.data && list.data.length === 0 ? <p class="muted">No crews yet: make one or import a CrewAI project.</p> : null}
        <Table head={["Id", "Name", "Process", "Version", "Agents", "Tasks", "Updated"]} label="Crews">
          {list.data?.map((c) => (
            <tr data-crew={c.id} class={selected === c.id ? "chosen" : ""}>
              <td>
                <button type="button" class="link" onClick={() => (setSelected(c.id), setMode("none"))}>
                  {c.id}
                </button>
              </td>
              <td>
                {c.name}
                {c.description ? <div class="muted small">{c.description}</div> : null}
              </td>
              <td>{c.process}</td>
              <td>
                v{c.version} <span class="muted small">of {c.versions}</span>
              </td>
              <td>{c.agents}</td>
              <td>{c.tasks}</td>
              <td>{when(c.updated_at)}</td>
            </tr>
          ))}
        </Table>
      </Section>
      {mode === "new" ? (
        <Section title="New crew">
          <Editor initial={EMPTY_CREW} isNew onSaved={(v) => changed(v.crew)} />
        </Section>
      ) : null}
      {mode === "import" ? <Import onImported={(id) => changed(id)} /> : null}
      {selected && mode === "none" ? (
        <CrewDetail
          key={selected}
          id={selected}
          onChanged={() => changed()}
          onGone={() => {
            setSelected(null);
            changed();
          }}
        />
      ) : null}
    </>
  );
}

function CrewDetail(props: { id: string; onChanged: () => void; onGone: () => void }) {
  const crew = useData<CrewVersion>(() => crews(`/v1/crews/${encodeURIComponent(props.id)}`), [props.id]);
  const [tab, setTab] = useState<"view" | "edit" | "versions" | "run">("view");
  const [error, setError] = useState<string | null>(null);
  const v = crew.data;
  const tabs: [typeof tab, string][] = [
    ["view", "Agents & tasks"],
    ["edit", "Edit"],
    ["versions", "Versions"],
    ["run", "Run"],
  ];
  return (
    <Section
      title={v ? `Crew ${v.crew} (v${v.version})` : `Crew ${props.id}`}
      actions={
        <>
          {tabs.map(([t, label]) => (
            <button type="button" aria-pressed={tab === t} onClick={() => setTab(t)}>
              {label}
            </button>
          ))}
          <Action
            label="Delete"
            kind="danger"
            run={async () => {
              if (!confirm(`Delete crew ${props.id}? Its runs keep their versions; no new runs can start.`)) return;
              await crews(`/v1/crews/${encodeURIComponent(props.id)}`, { method: "DELETE" });
              props.onGone();
            }}
            onError={setError}
          />
        </>
      }
    >
      <ErrorNote error={crew.error ?? error} />
      {v ? (
        <>
          <p class="muted small">
            Saved {when(v.created_at)} by {v.author}
            {v.note ? ` — ${v.note}` : ""}
          </p>
          {tab === "view" ? <CrewView spec={v.spec} /> : null}
          {tab === "edit" ? (
            <Editor
              initial={v.spec}
              onSaved={() => {
                crew.reload();
                props.onChanged();
              }}
            />
          ) : null}
          {tab === "versions" ? (
            <Versions
              id={v.crew}
              active={v.version}
              onRolledBack={() => {
                crew.reload();
                props.onChanged();
              }}
            />
          ) : null}
          {tab === "run" ? <RunForm spec={v.spec} /> : null}
        </>
      ) : null}
    </Section>
  );
}

/** The problem to show at a place of the outline, if the refusal names it. */
function At(props: { problem?: FieldProblem | null; prefix: string; exact?: boolean }) {
  const p = props.problem;
  if (!p || !p.field) return null;
  const mine = props.exact ? p.field === props.prefix : fieldBelongs(p.field, props.prefix);
  return mine ? (
    <p class="error small field-error" role="alert">
      <code>{p.field}</code>: {p.message}
    </p>
  ) : null;
}

/** A crew for reading: its settings, agents (role, goal, tools) and tasks (who, context, marks). */
export function CrewView(props: { spec: CrewSpec; problem?: FieldProblem | null }) {
  const { spec, problem } = props;
  const budget = Object.entries(spec.budget ?? {}).filter(([, value]) => value !== undefined && value !== null);
  const taskKeys = new Set((spec.tasks ?? []).map((t) => t.key));
  return (
    <div class="crew-view" aria-label="Crew outline">
      <dl class="facts">
        <dt>Id</dt>
        <dd>
          {spec.id} <At problem={problem} prefix="id" exact />
        </dd>
        <dt>Name</dt>
        <dd>{spec.name || "—"}</dd>
        {spec.description ? (
          <>
            <dt>Description</dt>
            <dd>{spec.description}</dd>
          </>
        ) : null}
        <dt>Process</dt>
        <dd>{spec.process ?? "sequential"}</dd>
        <dt>Agent (chain, policy, quota)</dt>
        <dd>
          {spec.agent || <span class="muted">the agent that starts the run</span>}
          <At problem={problem} prefix="agent" exact />
        </dd>
        {spec.process === "hierarchical" ? (
          <>
            <dt>Manager model</dt>
            <dd>
              {spec.manager_llm || <span class="muted">the agent's chain</span>}
              <At problem={problem} prefix="manager_llm" exact />
            </dd>
          </>
        ) : null}
        <dt>Budget</dt>
        <dd>
          {budget.length ? budget.map(([k, value]) => `${k.replace(/^max_/, "")} ≤ ${value}`).join(", ") : (
            <span class="muted">the appliance's defaults</span>
          )}
          <At problem={problem} prefix="budget" />
        </dd>
      </dl>
      <h3>Agents</h3>
      <At problem={problem} prefix="agents" exact />
      <div class="crew-cards">
        {(spec.agents ?? []).map((a) => (
          <article class="crew-card" data-agent={a.key} aria-label={`Agent ${a.key}`}>
            <header>
              <strong>{a.role || a.key}</strong> <code class="muted">{a.key}</code>
              {a.allow_delegation ? <span class="tag">delegates</span> : null}
              {a.llm ? <span class="tag">{a.llm}</span> : null}
            </header>
            <p>
              <span class="muted">Goal:</span> {a.goal}
            </p>
            {a.backstory ? <p class="muted small">{a.backstory}</p> : null}
            <p class="small">
              <span class="muted">Tools:</span> {a.tools?.length ? a.tools.join(", ") : "none"}
              <span class="muted"> · max_iter</span> {a.max_iter ?? 20}
              {a.max_rpm ? (
                <>
                  <span class="muted"> · max_rpm</span> {a.max_rpm}
                </>
              ) : null}
              <span class="muted"> · retries</span> {a.max_retry_limit ?? 2}
            </p>
            <At problem={problem} prefix={`agents.${a.key}`} />
          </article>
        ))}
      </div>
      <h3>Tasks</h3>
      <At problem={problem} prefix="tasks" exact />
      <ol class="crew-tasks">
        {(spec.tasks ?? []).map((t) => (
          <li class="crew-card" data-task={t.key} aria-label={`Task ${t.key}`}>
            <header>
              <code>{t.key}</code> <span class="muted">→</span> <strong>{t.agent || "the manager's choice"}</strong>
              {taskMarks(t).map((m) => (
                <span class={`tag mark-${m.replace(/\s+/g, "-")}`}>{m}</span>
              ))}
            </header>
            <p class="pre">{t.description}</p>
            {t.expected_output ? (
              <p class="small">
                <span class="muted">Expected:</span> {t.expected_output}
              </p>
            ) : null}
            {t.context?.length ? (
              <p class="small context">
                <span class="muted">Sees the output of:</span>{" "}
                {t.context.map((c) => (
                  <span class={taskKeys.has(c) ? "arrow" : "arrow missing"}>{c} ⟶</span>
                ))}{" "}
                <code>{t.key}</code>
              </p>
            ) : null}
            {t.tools?.length ? (
              <p class="small">
                <span class="muted">Tools (instead of the agent's):</span> {t.tools.join(", ")}
              </p>
            ) : null}
            {t.guardrail ? (
              <p class="small">
                <span class="muted">Guardrail:</span> {t.guardrail}
              </p>
            ) : null}
            <At problem={problem} prefix={`tasks.${t.key}`} />
          </li>
        ))}
      </ol>
    </div>
  );
}

/** The crew as JSON; the outline beside it shows the text as it stands and where a refusal points. */
function Editor(props: { initial: CrewSpec; isNew?: boolean; onSaved: (v: CrewVersion) => void }) {
  const [text, setText] = useState(() => JSON.stringify(props.initial, null, 2));
  const [problem, setProblem] = useState<FieldProblem | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const parsed = parseSpec(text);
  const save = async () => {
    setNote(null);
    if ("error" in parsed) {
      setProblem(fieldError(parsed.error));
      return;
    }
    setBusy(true);
    try {
      const saved = await crews<CrewVersion>(`/v1/crews/${encodeURIComponent(parsed.spec.id)}`, {
        method: "PUT",
        body: parsed.spec,
      });
      setProblem(null);
      setNote(`Saved as v${saved.version}.`);
      props.onSaved(saved);
    } catch (err) {
      setProblem(problemOf(err));
    } finally {
      setBusy(false);
    }
  };
  const shown = "spec" in parsed ? parsed.spec : null;
  return (
    <div class="editor">
      <form
        class="stack"
        aria-label="Crew editor"
        onSubmit={(e) => {
          e.preventDefault();
          save();
        }}
      >
        <label>
          <span>
            The crew as JSON (CrewSpec: id, name, process, agent, manager_llm, agents, tasks, budget)
          </span>
          <textarea
            class="mono"
            rows={24}
            spellcheck={false}
            aria-invalid={problem ? true : undefined}
            value={text}
            onInput={(e) => {
              setText(e.currentTarget.value);
              setNote(null);
            }}
          />
        </label>
        {"error" in parsed ? <p class="error small">{parsed.error}</p> : null}
        {problem ? (
          <p class="error" role="alert">
            {problem.field ? <code>{problem.field}</code> : null}
            {problem.field ? ": " : ""}
            {problem.message}
          </p>
        ) : null}
        <Notice text={note} />
        <button type="submit" class="primary" disabled={busy || "error" in parsed}>
          {props.isNew ? "Create crew" : "Save as new version"}
        </button>
      </form>
      <div>
        <h3>As it reads</h3>
        {shown ? <CrewView spec={shown} problem={problem} /> : <p class="muted">Fix the JSON to see the crew.</p>}
      </div>
    </div>
  );
}

function Versions(props: { id: string; active: number; onRolledBack: () => void }) {
  const versions = useData<CrewVersion[]>(() => crews(`/v1/crews/${encodeURIComponent(props.id)}/versions`), [
    props.id,
    props.active,
  ]);
  const sorted = [...(versions.data ?? [])].sort((a, b) => b.version - a.version);
  const [from, setFrom] = useState<number | null>(null);
  const [to, setTo] = useState<number | null>(null);
  const [diff, setDiff] = useState<VersionDiff | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    if (sorted.length >= 2 && from === null) {
      setFrom(sorted[1].version);
      setTo(sorted[0].version);
    }
  }, [versions.data]);
  const showDiff = async (a: number, b: number) => {
    setDiff(await crews<VersionDiff>(`/v1/crews/${encodeURIComponent(props.id)}/diff${query({ from: a, to: b })}`));
  };
  const pick = (value: number | null, set: (n: number) => void, label: string) => (
    <label>
      {label}
      <select value={value ?? ""} onChange={(e) => set(Number(e.currentTarget.value))}>
        {sorted.map((v) => (
          <option value={v.version}>v{v.version}</option>
        ))}
      </select>
    </label>
  );
  return (
    <div aria-label="Crew versions">
      <ErrorNote error={versions.error ?? error} />
      {sorted.length >= 2 ? (
        <div class="row">
          {pick(from, setFrom, "From")}
          {pick(to, setTo, "To")}
          <Action
            label="Diff"
            disabled={from === null || to === null}
            run={() => showDiff(from!, to!)}
            onError={setError}
          />
        </div>
      ) : null}
      <Table head={["Version", "When", "Author", "Note", ""]} label="Crew versions">
        {sorted.map((v, i) => (
          <tr data-version={v.version}>
            <td>
              v{v.version} {v.version === props.active ? <span class="tag">active</span> : null}
            </td>
            <td>{when(v.created_at)}</td>
            <td>{v.author}</td>
            <td class="detail">{v.note}</td>
            <td class="actions">
              {i + 1 < sorted.length ? (
                <Action label="Diff with previous" run={() => showDiff(sorted[i + 1].version, v.version)} onError={setError} />
              ) : null}
              {v.version !== props.active ? (
                <Action
                  label={`Roll back to v${v.version}`}
                  run={() =>
                    crews(`/v1/crews/${encodeURIComponent(props.id)}/rollback`, { body: { version: v.version } })
                  }
                  onDone={() => {
                    setDiff(null);
                    props.onRolledBack();
                  }}
                  onError={setError}
                />
              ) : null}
            </td>
          </tr>
        ))}
      </Table>
      {diff ? (
        <div aria-label="Crew diff">
          <h3>
            v{diff.from} → v{diff.to}
          </h3>
          {diff.diff.trim() ? (
            <pre class="diff">
              {parseUnified(diff.diff).map((line) => (
                <div class={`diff-${line.kind}`}>
                  {line.kind === "add" ? "+ " : line.kind === "del" ? "- " : "  "}
                  {line.text}
                </div>
              ))}
            </pre>
          ) : (
            <p class="muted">The two versions are the same.</p>
          )}
        </div>
      ) : null}
    </div>
  );
}

function YamlBox(props: { label: string; value: string; onChange: (text: string) => void }) {
  return (
    <div class="yaml-box">
      <label>
        {props.label}
        <textarea class="mono" rows={14} spellcheck={false} value={props.value} onInput={(e) => props.onChange(e.currentTarget.value)} />
      </label>
      <label class="inline small">
        or upload
        <input
          type="file"
          accept=".yaml,.yml,text/yaml,text/plain"
          aria-label={`Upload ${props.label}`}
          onChange={async (e) => {
            const file = e.currentTarget.files?.[0];
            if (file) props.onChange(await file.text());
            e.currentTarget.value = "";
          }}
        />
      </label>
    </div>
  );
}

/** CrewAI's agents.yaml + tasks.yaml: checked first (nothing stored), then imported. */
function Import(props: { onImported: (id: string) => void }) {
  const [form, setForm] = useState<Omit<ImportRequest, "dry_run">>({
    id: "",
    name: "",
    process: "sequential",
    agents_yaml: "",
    tasks_yaml: "",
  });
  const [report, setReport] = useState<ImportReport | null>(null);
  const [checked, setChecked] = useState<string | null>(null);
  const [problem, setProblem] = useState<FieldProblem | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  // The import button is for what was checked: any edit asks for a new dry run.
  const current = JSON.stringify(form);
  const set = (change: Partial<typeof form>) => setForm({ ...form, ...change });
  const send = async (dry_run: boolean) => {
    setBusy(true);
    setNote(null);
    try {
      const answer = await crews<ImportReport>("/v1/crews/import", { body: { ...form, dry_run } });
      setProblem(null);
      setReport(answer);
      if (dry_run) setChecked(current);
      else {
        setNote(`Imported as ${answer.spec.id} v${answer.version ?? "?"}.`);
        props.onImported(answer.spec.id);
      }
    } catch (err) {
      setProblem(problemOf(err));
      setReport(null);
      setChecked(null);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Section title="Import a CrewAI project">
      <form
        class="stack"
        aria-label="Import"
        onSubmit={(e) => {
          e.preventDefault();
          send(true);
        }}
      >
        <div class="row">
          <label>
            Crew id
            <input value={form.id} required placeholder="trip_planner" onInput={(e) => set({ id: e.currentTarget.value })} />
          </label>
          <label>
            Name
            <input value={form.name} onInput={(e) => set({ name: e.currentTarget.value })} />
          </label>
          <label>
            Process
            <select value={form.process} onChange={(e) => set({ process: e.currentTarget.value as Process })}>
              <option value="sequential">sequential</option>
              <option value="hierarchical">hierarchical</option>
            </select>
          </label>
        </div>
        <div class="yaml-pair">
          <YamlBox label="agents.yaml" value={form.agents_yaml} onChange={(agents_yaml) => set({ agents_yaml })} />
          <YamlBox label="tasks.yaml" value={form.tasks_yaml} onChange={(tasks_yaml) => set({ tasks_yaml })} />
        </div>
        {problem ? (
          <p class="error" role="alert">
            {problem.field ? <code>{problem.field}</code> : null}
            {problem.field ? ": " : ""}
            {problem.message}
          </p>
        ) : null}
        <Notice text={note} />
        <div>
          <button type="submit" disabled={busy}>
            Check (dry run)
          </button>
          <button
            type="button"
            class="primary"
            disabled={busy || checked !== current}
            title={checked === current ? "Store it as a crew" : "Check it first"}
            onClick={() => send(false)}
          >
            Import
          </button>
        </div>
      </form>
      {report ? <ImportResult report={report} problem={problem} /> : null}
    </Section>
  );
}

function ImportResult(props: { report: ImportReport; problem: FieldProblem | null }) {
  const { report } = props;
  return (
    <div aria-label="Import report">
      <h3>{report.version ? `Stored as v${report.version}` : "What the import makes (nothing stored yet)"}</h3>
      {report.unknown_keys.length ? (
        <div class="unknown-keys" role="note" aria-label="Unknown keys">
          <strong>These keys are not used</strong> by this appliance (they are reported, not imported):
          <ul>
            {report.unknown_keys.map((k) => {
              const place = unknownKeyPlace(k);
              return (
                <li>
                  <mark class="mono">{k}</mark>
                  {place.file ? (
                    <span class="muted small">
                      {" "}
                      ({place.file}.yaml{place.entry ? `, ${place.entry}` : ""})
                    </span>
                  ) : null}
                </li>
              );
            })}
          </ul>
        </div>
      ) : (
        <p class="notice">Every key is used.</p>
      )}
      {report.warnings.length ? (
        <div aria-label="Warnings">
          <strong>Warnings</strong>
          <ul class="warnings">
            {report.warnings.map((w) => (
              <li class="warn">{w}</li>
            ))}
          </ul>
        </div>
      ) : null}
      <p>
        <strong>Inputs a run must give:</strong>{" "}
        {report.inputs.length ? report.inputs.map((i) => <code class="input-name">{`{${i}}`}</code>) : "none"}
      </p>
      <CrewView spec={report.spec} problem={props.problem} />
    </div>
  );
}

interface User {
  id: string;
  display_name?: string | null;
  identities?: string[];
}

/** A run of the crew's active version: its `{placeholder}` inputs, whose run, which agent. */
function RunForm(props: { spec: CrewSpec }) {
  const inputs = crewInputs(props.spec).filter((name) => name !== "task");
  const needsTask = crewInputs(props.spec).includes("task");
  const agents = useData<{ id: string; name: string }[]>(() => control("/agents"), []);
  const users = useData<User[]>(() => memory(`/v1/users${query({ limit: 100 })}`), []);
  const [values, setValues] = useState<Record<string, string>>({});
  const [task, setTask] = useState("");
  const [user, setUser] = useState("");
  const [agent, setAgent] = useState("");
  const [problem, setProblem] = useState<FieldProblem | null>(null);
  const [busy, setBusy] = useState(false);
  return (
    <form
      class="stack"
      aria-label="Run the crew"
      onSubmit={async (e) => {
        e.preventDefault();
        const made = runRequest(needsTask ? [...inputs, "task"] : inputs, values, task, user, agent);
        if ("error" in made) {
          setProblem({ field: null, message: made.error });
          return;
        }
        setBusy(true);
        try {
          const created = await crews<{ run: Run }>(`/v1/crews/${encodeURIComponent(props.spec.id)}/runs`, {
            body: made.request,
          });
          setProblem(null);
          openRun(created.run.id);
        } catch (err) {
          setProblem(problemOf(err));
        } finally {
          setBusy(false);
        }
      }}
    >
      {inputs.length ? (
        inputs.map((name) => (
          <label>
            <span>
              <code>{`{${name}}`}</code>
            </span>
            <input
              name={name}
              required
              value={values[name] ?? ""}
              onInput={(e) => setValues({ ...values, [name]: e.currentTarget.value })}
            />
            <At problem={problem} prefix={`inputs.${name}`} exact />
          </label>
        ))
      ) : (
        <p class="muted">This crew takes no inputs.</p>
      )}
      <label>
        <span>
          Task in words {needsTask ? <code>{"{task}"}</code> : <span class="muted">(optional: extra context)</span>}
        </span>
        <textarea rows={3} required={needsTask} value={task} onInput={(e) => setTask(e.currentTarget.value)} />
      </label>
      <div class="row">
        <label>
          User id (whose run: their quota is charged)
          <input
            list="crew-run-users"
            value={user}
            placeholder="a memory user's UUID"
            onInput={(e) => setUser(e.currentTarget.value)}
          />
          <datalist id="crew-run-users">
            {users.data?.map((u) => (
              <option value={u.id}>{u.display_name || u.identities?.[0] || u.id}</option>
            ))}
          </datalist>
          <At problem={problem} prefix="user_id" exact />
        </label>
        <label>
          Agent {props.spec.agent ? <span class="muted small">(the crew uses {props.spec.agent})</span> : null}
          <select value={agent} onChange={(e) => setAgent(e.currentTarget.value)} disabled={!!props.spec.agent}>
            <option value="">{props.spec.agent ? props.spec.agent : "choose the agent whose chain and policy apply"}</option>
            {agents.data?.map((a) => (
              <option value={a.id}>{a.name || a.id}</option>
            ))}
          </select>
          <At problem={problem} prefix="agent_id" exact />
        </label>
      </div>
      {problem ? (
        <p class="error" role="alert">
          {problem.field ? <code>{problem.field}</code> : null}
          {problem.field ? ": " : ""}
          {problem.message}
        </p>
      ) : null}
      <button type="submit" class="primary" disabled={busy}>
        Start run
      </button>
    </form>
  );
}
