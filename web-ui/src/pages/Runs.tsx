// Crew runs (the crews service behind /api/crews): the list with filters, refreshed while the
// page is open, and one run live from its event stream: budget against usage, why it stopped,
// its question, its result, the steps' waterfall with each step's transcript, and cancel /
// answer / resume / re-run as its state allows.

import { useEffect, useRef, useState } from "preact/hooks";

import { errorFrom, query, raw } from "../lib/api";
import {
  applyRunEvent,
  blocks,
  budgetBars,
  crewAt,
  type CrewSummary,
  isUuid,
  parseRunEvent,
  RUN_STATES,
  type Run,
  runActions,
  type Step,
  stateText,
  stopText,
  tokens,
  transcriptOf,
  waterfall,
} from "../lib/crews";
import { duration, number, when } from "../lib/format";
import { readEvents } from "../lib/sse";
import { Action, Badge, ErrorNote, Json, Section, Table, useData } from "../components/ui";
import { crews, openRun } from "./Crews";
import "./Crews.css";

const LIST_MS = 3000;
/** How often a run is read again when its event stream cannot be had. */
const POLL_MS = 2000;

function selectedFromUrl(): string | null {
  const id = new URLSearchParams(location.search).get("run");
  return id && isUuid(id) ? id : null;
}

export function Runs() {
  const [selected, setSelected] = useState<string | null>(selectedFromUrl);
  useEffect(() => {
    const update = () => setSelected(selectedFromUrl());
    addEventListener("popstate", update);
    return () => removeEventListener("popstate", update);
  }, []);
  return (
    <>
      <RunList selected={selected} onOpen={openRun} />
      {selected ? <RunDetail key={selected} id={selected} /> : null}
    </>
  );
}

function RunList(props: { selected: string | null; onOpen: (id: string) => void }) {
  const [state, setState] = useState("");
  const [crew, setCrew] = useState("");
  const [user, setUser] = useState("");
  const userOk = !user.trim() || isUuid(user);
  const crewList = useData<CrewSummary[]>(() => crews("/v1/crews"), []);
  const runs = useData<Run[]>(
    () => crews(`/v1/runs${query({ state, crew, user_id: userOk ? user.trim() : undefined, limit: 100 })}`),
    [state, crew, user, userOk],
    LIST_MS,
  );
  return (
    <Section title="Runs">
      <div class="row" role="search" aria-label="Run filters">
        <label>
          State
          <select aria-label="State filter" value={state} onChange={(e) => setState(e.currentTarget.value)}>
            <option value="">any</option>
            {RUN_STATES.map((s) => (
              <option value={s}>{stateText(s)}</option>
            ))}
          </select>
        </label>
        <label>
          Crew
          <select aria-label="Crew filter" value={crew} onChange={(e) => setCrew(e.currentTarget.value)}>
            <option value="">any</option>
            {crewList.data?.map((c) => (
              <option value={c.id}>{c.id}</option>
            ))}
          </select>
        </label>
        <label>
          User id
          <input
            aria-label="User filter"
            aria-invalid={userOk ? undefined : true}
            value={user}
            placeholder="UUID"
            onInput={(e) => setUser(e.currentTarget.value)}
          />
        </label>
        {userOk ? null : <p class="error small">A user id is a UUID.</p>}
      </div>
      <ErrorNote error={runs.error} />
      {runs.data && runs.data.length === 0 ? <p class="muted">No runs match.</p> : null}
      <Table head={["Run", "Crew", "User", "State", "Tasks", "Tokens", "Cost", "Created", "Took"]} label="Runs">
        {runs.data?.map((r) => (
          <tr data-run={r.id} data-state={r.state} class={props.selected === r.id ? "chosen" : ""}>
            <td>
              <button type="button" class="link mono" onClick={() => props.onOpen(r.id)} title={r.id}>
                {r.id.slice(0, 8)}
              </button>
            </td>
            <td>{crewAt(r)}</td>
            <td class="mono small" title={r.user_id}>
              {r.user_id.slice(0, 8)}
            </td>
            <td>
              <Badge state={r.state} />
              {r.stop ? <div class="small muted">{r.stop.code}</div> : null}
            </td>
            <td>
              {r.tasks_done} of {r.tasks_total}
            </td>
            <td>{number(tokens(r.usage))}</td>
            <td>{number(r.usage.cost, 4)}</td>
            <td>{when(r.created_at)}</td>
            <td>{r.started_at ? duration(took(r)) : "—"}</td>
          </tr>
        ))}
      </Table>
    </Section>
  );
}

function took(r: Run): number {
  const end = r.finished_at ? Date.parse(r.finished_at) : Date.now();
  return (end - Date.parse(r.started_at ?? r.created_at)) / 1000;
}

type Live = "connecting" | "live" | "polling" | "ended";

/** The run, kept current: its event stream while it lasts, reading it again when it cannot. */
function useLiveRun(id: string, generation: number) {
  const [run, setRun] = useState<Run | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [live, setLive] = useState<Live>("connecting");
  const current = useRef<Run | null>(null);
  useEffect(() => {
    const abort = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const update = (next: Run | null) => {
      current.current = next;
      setRun(next);
    };
    const poll = async () => {
      try {
        const response = await raw(`/api/crews/v1/runs/${id}`, { signal: abort.signal });
        const body = await response.json().catch(() => null);
        if (!response.ok) throw errorFrom(response.status, body);
        update(body as Run);
        setError(null);
        if (runActions(body as Run).cancel) timer = setTimeout(poll, POLL_MS);
        else setLive("ended");
      } catch (err) {
        if (abort.signal.aborted) return;
        setError((err as Error).message);
        timer = setTimeout(poll, POLL_MS * 2);
      }
    };
    (async () => {
      try {
        const response = await raw(`/api/crews/v1/runs/${id}/events`, { signal: abort.signal });
        if (!response.ok) {
          const body = await response.json().catch(() => null);
          const err = errorFrom(response.status, body);
          // A run that is not there or not ours is an answer; anything else, try reading it.
          if (response.status === 404 || response.status === 403) {
            setError(err.message);
            setLive("ended");
            return;
          }
          throw err;
        }
        setLive("live");
        setError(null);
        await readEvents(response, (e) => {
          const event = parseRunEvent(e.event, e.data);
          if (event) update(applyRunEvent(current.current, event));
        });
        if (abort.signal.aborted) return;
        // The stream ends when the run does; one that ended early is read instead.
        if (current.current && !runActions(current.current).cancel) setLive("ended");
        else {
          setLive("polling");
          poll();
        }
      } catch {
        if (abort.signal.aborted) return;
        setLive("polling");
        poll();
      }
    })();
    return () => {
      abort.abort();
      clearTimeout(timer);
    };
  }, [id, generation]);
  return { run, error, live };
}

function RunDetail(props: { id: string }) {
  // Bumped after an action that brings the run back to life, so the stream is opened again.
  const [generation, setGeneration] = useState(0);
  const { run, error: streamError, live } = useLiveRun(props.id, generation);
  const [error, setError] = useState<string | null>(null);
  const [answer, setAnswer] = useState("");
  const [, tick] = useState(0);
  useEffect(() => {
    // Wall time moves while the run is going.
    if (!run || !runActions(run).cancel) return;
    const timer = setInterval(() => tick((n) => n + 1), 1000);
    return () => clearInterval(timer);
  }, [run?.state]);
  const again = () => setGeneration((n) => n + 1);
  const post = (path: string, body: unknown) => crews<Run>(`/v1/runs/${props.id}/${path}`, { body });
  if (!run) {
    return (
      <Section title={`Run ${props.id.slice(0, 8)}`}>
        <ErrorNote error={streamError} />
        {streamError ? null : <p class="muted">Loading…</p>}
      </Section>
    );
  }
  const can = runActions(run);
  return (
    <Section
      title={`Run ${run.id.slice(0, 8)} of ${crewAt(run)}`}
      actions={
        <>
          <span class={`live live-${live}`} aria-live="polite">
            {live === "live" ? "● live" : live === "polling" ? "refreshing" : live === "connecting" ? "connecting…" : ""}
          </span>
          <Action
            label="Cancel"
            kind="danger"
            disabled={!can.cancel}
            run={() => post("cancel", {})}
            onDone={again}
            onError={setError}
          />
          <Action
            label="Resume"
            disabled={!can.resume}
            title="Go on from the last finished step"
            run={() => post("resume", {})}
            onDone={again}
            onError={setError}
          />
          <Action
            label="Re-run (same version)"
            disabled={!can.rerun}
            run={async () => openRun((await post("rerun", { latest: false })).id)}
            onError={setError}
          />
          <Action
            label="Re-run (latest version)"
            disabled={!can.rerun}
            run={async () => openRun((await post("rerun", { latest: true })).id)}
            onError={setError}
          />
        </>
      }
    >
      <ErrorNote error={error ?? streamError} />
      <dl class="facts" aria-label="Run details">
        <dt>State</dt>
        <dd data-testid="run-state">
          <Badge state={run.state} /> {stateText(run.state)}
          <span class="muted small">
            {" "}
            · {run.tasks_done} of {run.tasks_total} tasks
          </span>
        </dd>
        <dt>Crew</dt>
        <dd>{crewAt(run)}</dd>
        <dt>User</dt>
        <dd class="mono small">{run.user_id}</dd>
        <dt>Agent</dt>
        <dd>{run.agent_id}</dd>
        {Object.keys(run.inputs ?? {}).length ? (
          <>
            <dt>Inputs</dt>
            <dd>
              {Object.entries(run.inputs).map(([k, v]) => (
                <div>
                  <code>{k}</code> = {v}
                </div>
              ))}
            </dd>
          </>
        ) : null}
        {run.task ? (
          <>
            <dt>Task</dt>
            <dd>{run.task}</dd>
          </>
        ) : null}
        <dt>Created</dt>
        <dd>
          {when(run.created_at)}
          {run.finished_at ? ` · finished ${when(run.finished_at)}` : ""}
        </dd>
        {run.origin ? (
          <>
            <dt>From</dt>
            <dd>
              {run.origin.channel}
              {run.origin.bot ? ` (${run.origin.bot})` : ""}
            </dd>
          </>
        ) : null}
        {run.trace_id ? (
          <>
            <dt>Trace</dt>
            <dd class="mono small">{run.trace_id}</dd>
          </>
        ) : null}
      </dl>
      <div class="bars" aria-label="Budget and usage">
        {budgetBars(run).map((b) => (
          <div class="bar-row">
            <span class="bar-label">{b.label}</span>
            <span
              class={`bar ${b.fraction !== null && b.fraction >= 1 ? "full" : ""}`}
              role="meter"
              aria-label={b.label}
              aria-valuemin={0}
              aria-valuemax={b.limit ?? undefined}
              aria-valuenow={b.used}
            >
              <span style={{ width: `${Math.round((b.fraction ?? 0) * 100)}%` }} />
            </span>
            <span class="small">{b.text}</span>
          </div>
        ))}
      </div>
      {run.stop ? (
        <p class="stop" role="status" data-stop={run.stop.code}>
          <strong>Why it stopped:</strong> {stopText(run.stop)}
        </p>
      ) : null}
      {run.state === "waiting_input" ? (
        <form
          class="stack question"
          aria-label="Answer the question"
          onSubmit={async (e) => {
            e.preventDefault();
            try {
              await post("resume", { answer });
              setAnswer("");
              setError(null);
              again();
            } catch (err) {
              setError((err as Error).message);
            }
          }}
        >
          <p>
            <strong>The crew asks:</strong> <span class="pre">{run.question ?? "(no question text)"}</span>
          </p>
          <label>
            Answer (empty or “ok”: go on as it is)
            <textarea rows={3} value={answer} onInput={(e) => setAnswer(e.currentTarget.value)} />
          </label>
          <button type="submit" class="primary" disabled={!can.answer}>
            Answer and resume
          </button>
        </form>
      ) : null}
      {run.result ? <Result text={run.result} /> : null}
      <Timeline steps={run.steps} />
    </Section>
  );
}

function Result(props: { text: string }) {
  return (
    <div class="result" aria-label="Result">
      <h3>Result</h3>
      {blocks(props.text).map((b) => {
        switch (b.kind) {
          case "heading":
            return <p class={`result-h result-h${Math.min(b.level, 3)}`}>{b.text}</p>;
          case "item":
            return <p class="result-item">• {b.text}</p>;
          case "code":
            return <pre class="text">{b.text}</pre>;
          default:
            return <p class="pre">{b.text}</p>;
        }
      })}
    </div>
  );
}

function Timeline(props: { steps: Step[] }) {
  const { lanes, spanMs } = waterfall(props.steps);
  const [open, setOpen] = useState<Set<number>>(new Set());
  const toggle = (seq: number) => {
    const next = new Set(open);
    if (next.has(seq)) next.delete(seq);
    else next.add(seq);
    setOpen(next);
  };
  return (
    <div aria-label="Timeline">
      <h3>
        Steps <span class="muted small">({props.steps.length}, over {duration(spanMs / 1000)})</span>
      </h3>
      {props.steps.length === 0 ? <p class="muted">No steps yet.</p> : null}
      <Table head={["#", "Task", "Agent", "Kind", "Tool / model", "Tokens", "Cost", "GPU-s", "Time", "When"]} label="Steps">
        {lanes.map(({ step: s, left, width }) => (
          <>
            <tr data-step={s.seq} class={s.error ? "step-error" : ""}>
              <td>
                <button type="button" class="link" aria-expanded={open.has(s.seq)} onClick={() => toggle(s.seq)}>
                  {s.seq}
                </button>
              </td>
              <td>{s.task ?? "—"}</td>
              <td>{s.agent ?? "—"}</td>
              <td>
                <span class={`kind kind-${s.kind}`}>{s.kind.replace("_", " ")}</span>
              </td>
              <td>{s.tool ?? s.model ?? "—"}</td>
              <td>{tokens(s.usage) ? number(tokens(s.usage)) : "—"}</td>
              <td>{s.usage.cost ? number(s.usage.cost, 5) : "—"}</td>
              <td>{s.usage.gpu_seconds ? number(s.usage.gpu_seconds, 2) : "—"}</td>
              <td>{s.duration_ms >= 1000 ? `${number(s.duration_ms / 1000, 1)} s` : `${s.duration_ms} ms`}</td>
              <td class="lane-cell">
                <span class="lane" title={when(s.at)}>
                  <span class={`kind-${s.kind}`} style={{ left: `${left}%`, width: `max(2px, ${width}%)` }} />
                </span>
              </td>
            </tr>
            {open.has(s.seq) ? (
              <tr class="step-detail">
                <td colSpan={10}>
                  <StepTranscript step={s} />
                </td>
              </tr>
            ) : null}
          </>
        ))}
      </Table>
    </div>
  );
}

function StepTranscript(props: { step: Step }) {
  const t = transcriptOf(props.step);
  return (
    <div class="step-transcript" aria-label={`Step ${props.step.seq} transcript`}>
      <p class="muted small">
        <code>{props.step.key}</code> · {when(props.step.at)}
      </p>
      {props.step.error ? <p class="error">{props.step.error}</p> : null}
      {t.messages ? (
        <ol class="transcript">
          {t.messages.map((m) => (
            <li class={`turn ${m.role === "user" ? "you" : m.role === "assistant" ? "agent" : "note"}`}>
              <span class="muted small">{m.role}: </span>
              {m.content}
              {m.extra ? <Json value={m.extra} /> : null}
            </li>
          ))}
        </ol>
      ) : t.input ? (
        <>
          <h4>In</h4>
          <pre class="text">{t.input}</pre>
        </>
      ) : null}
      <h4>Out</h4>
      {t.output ? <pre class="text">{t.output}</pre> : <p class="muted">nothing</p>}
    </div>
  );
}
