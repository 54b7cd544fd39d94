// The crews service's contract as the admin UI reads it (mirrors appliance/crews-client), and
// the pure pieces the Crews and Runs pages are made of: inputs a crew needs, which run actions
// a state allows, a run as its live events change it, budget bars, the steps' waterfall and
// their transcripts.

import { duration } from "./format";

export type Process = "sequential" | "hierarchical";

export interface Budget {
  max_tokens?: number;
  max_cost?: number;
  max_gpu_seconds?: number;
  max_steps?: number;
  max_wall_secs?: number;
}

export interface CrewAgent {
  key: string;
  role: string;
  goal: string;
  backstory?: string;
  llm?: string;
  tools?: string[];
  allow_delegation?: boolean;
  max_iter?: number;
  max_rpm?: number;
  max_retry_limit?: number;
}

export interface CrewTask {
  key: string;
  description: string;
  expected_output?: string;
  agent?: string;
  context?: string[];
  tools?: string[];
  async_execution?: boolean;
  human_input?: boolean;
  output_json?: unknown;
  guardrail?: string;
}

export interface CrewSpec {
  id: string;
  name?: string;
  description?: string;
  process?: Process;
  agent?: string;
  manager_llm?: string;
  agents: CrewAgent[];
  tasks: CrewTask[];
  budget?: Budget;
}

export interface CrewVersion {
  crew: string;
  version: number;
  spec: CrewSpec;
  author: string;
  note: string;
  created_at: string;
}

export interface CrewSummary {
  id: string;
  name: string;
  description: string;
  process: Process;
  version: number;
  versions: number;
  agents: number;
  tasks: number;
  updated_at: string;
}

export interface VersionDiff {
  from: number;
  to: number;
  diff: string;
}

export interface ImportRequest {
  id: string;
  name: string;
  process: Process;
  agents_yaml: string;
  tasks_yaml: string;
  dry_run: boolean;
}

export interface ImportReport {
  spec: CrewSpec;
  version: number | null;
  unknown_keys: string[];
  inputs: string[];
  warnings: string[];
}

export const RUN_STATES = ["queued", "running", "waiting_input", "completed", "failed", "cancelled"] as const;
export type RunState = (typeof RUN_STATES)[number];

export type StopCode =
  | "tokens"
  | "cost"
  | "gpu_seconds"
  | "steps"
  | "wall_time"
  | "max_iter"
  | "delegation_loop"
  | "cancelled"
  | "refused"
  | "invalid"
  | "failed";

export interface Stop {
  code: StopCode;
  detail: string;
}

export interface RunUsage {
  prompt_tokens: number;
  completion_tokens: number;
  cost: number;
  gpu_seconds: number;
  steps: number;
}

export interface Run {
  id: string;
  crew: string;
  crew_version: number;
  user_id: string;
  agent_id: string;
  session_id?: string | null;
  state: RunState;
  inputs: Record<string, string>;
  task: string;
  budget: Budget;
  usage: RunUsage;
  tasks_done: number;
  tasks_total: number;
  result?: string | null;
  stop?: Stop | null;
  question?: string | null;
  origin?: { channel: string; bot?: string; chat_id?: number; message_id?: number } | null;
  trace_id?: string | null;
  created_at: string;
  started_at?: string | null;
  finished_at?: string | null;
  steps: Step[];
}

export type StepKind = "llm" | "tool" | "task_output" | "delegation" | "human_input" | "guardrail" | "summary";

export interface Step {
  run_id: string;
  seq: number;
  key: string;
  kind: StepKind;
  task?: string | null;
  agent?: string | null;
  tool?: string | null;
  model?: string | null;
  input: unknown;
  output: unknown;
  error?: string | null;
  usage: RunUsage;
  duration_ms: number;
  at: string;
}

export type RunEvent =
  | { type: "snapshot"; run: Run }
  | { type: "step"; step: Step }
  | {
      type: "state";
      state: RunState;
      stop?: Stop | null;
      question?: string | null;
      result?: string | null;
      usage: RunUsage;
      tasks_done?: number;
    };

export interface RunRequest {
  inputs: Record<string, string>;
  task: string;
  user_id?: string;
  agent_id?: string;
}

// Definitions ---------------------------------------------------------------------------------

/** `{name}` placeholders in `text`, as the crews service finds them (import.rs `placeholders`). */
export function placeholders(text: string, into: Set<string> = new Set()): Set<string> {
  let rest = text;
  for (;;) {
    const open = rest.indexOf("{");
    if (open < 0) break;
    rest = rest.slice(open + 1);
    const close = rest.indexOf("}");
    if (close < 0) break;
    const name = rest.slice(0, close);
    if (name.length <= 64 && /^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      into.add(name);
      rest = rest.slice(close + 1);
    }
  }
  return into;
}

/** The inputs a run of `spec` must give: every placeholder of its agents' and tasks' texts. */
export function crewInputs(spec: CrewSpec): string[] {
  const found = new Set<string>();
  for (const a of spec.agents ?? []) for (const t of [a.role, a.goal, a.backstory ?? ""]) placeholders(t ?? "", found);
  for (const t of spec.tasks ?? []) for (const s of [t.description, t.expected_output ?? ""]) placeholders(s ?? "", found);
  return [...found].sort();
}

/** A 422's `field: message` split, so the editor can show it next to the field it names. */
export function fieldError(message: string): { field: string | null; message: string } {
  const m = /^([A-Za-z0-9_.\[\]-]+): ([\s\S]*)$/.exec(message);
  return m ? { field: m[1], message: m[2] } : { field: null, message };
}

/** The 422 field a path in the editor's outline owns: `tasks.t1.agent` is the task `t1`'s. */
export function fieldBelongs(field: string | null, prefix: string): boolean {
  if (!field) return false;
  return field === prefix || field.startsWith(`${prefix}.`) || field.startsWith(`${prefix}[`);
}

/** The editor's text as a crew, or why it is not one (before the service is asked). */
export function parseSpec(text: string): { spec: CrewSpec } | { error: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { error: `Not valid JSON: ${(err as Error).message}` };
  }
  if (!value || typeof value !== "object" || Array.isArray(value)) return { error: "A crew is a JSON object." };
  const spec = value as CrewSpec;
  if (typeof spec.id !== "string" || !spec.id) return { error: "id: a crew needs an id." };
  if (!Array.isArray(spec.agents)) return { error: "agents: a list of agents is needed." };
  if (!Array.isArray(spec.tasks)) return { error: "tasks: a list of tasks is needed." };
  return { spec };
}

/** An unknown key's place in the YAML: `agents.researcher.verbose` → the file and the entry. */
export function unknownKeyPlace(path: string): { file: "agents" | "tasks" | null; entry: string; key: string } {
  const parts = path.split(".");
  const file = parts[0] === "agents" || parts[0] === "tasks" ? parts[0] : null;
  if (!file || parts.length < 3) return { file, entry: "", key: file ? parts.slice(1).join(".") : path };
  return { file, entry: parts[1], key: parts.slice(2).join(".") };
}

/** Flags on a task a person should see at a glance. */
export function taskMarks(task: CrewTask): string[] {
  const marks: string[] = [];
  if (task.async_execution) marks.push("async");
  if (task.human_input) marks.push("asks the user");
  if (task.output_json !== undefined && task.output_json !== null) marks.push("JSON output");
  if (task.guardrail) marks.push("guardrail");
  return marks;
}

// Runs ----------------------------------------------------------------------------------------

export function isFinal(state: RunState): boolean {
  return state === "completed" || state === "failed" || state === "cancelled";
}

export interface RunActions {
  cancel: boolean;
  /** Answer the waiting run's question. */
  answer: boolean;
  /** Go on with a failed or cancelled run from its last finished step. */
  resume: boolean;
  rerun: boolean;
}

/** What the service allows for a run in its state (see crews/src/api/runs.rs). */
export function runActions(run: Pick<Run, "state" | "crew_version">): RunActions {
  // A run whose crew was unknown when asked for has nothing to resume or repeat.
  const known = run.crew_version > 0;
  return {
    cancel: !isFinal(run.state),
    answer: run.state === "waiting_input",
    resume: known && (run.state === "failed" || run.state === "cancelled"),
    rerun: known && isFinal(run.state),
  };
}

const STOP_WORDS: Record<StopCode, string> = {
  tokens: "it used up its token budget",
  cost: "it used up its cost budget",
  gpu_seconds: "it used up its GPU-seconds budget",
  steps: "it reached its limit of steps",
  wall_time: "it ran out of wall time",
  max_iter: "a task reached its agent's max_iter without an answer",
  delegation_loop: "the manager's delegation went round in a circle or past its bounds",
  cancelled: "it was cancelled",
  refused: "policy or a quota refused a step",
  invalid: "the crew or its inputs cannot run",
  failed: "a provider or tool kept failing, or an output never passed its check",
};

export function stopText(stop: Stop | null | undefined): string {
  if (!stop) return "";
  const words = STOP_WORDS[stop.code] ?? `it stopped (${stop.code})`;
  const sentence = words.charAt(0).toUpperCase() + words.slice(1);
  return stop.detail ? `${sentence}: ${stop.detail}` : `${sentence}.`;
}

export function stateText(state: RunState): string {
  return state === "waiting_input" ? "waiting for input" : state;
}

/** Parses one SSE event of `/v1/runs/{id}/events`; anything else is ignored. */
export function parseRunEvent(name: string, data: string): RunEvent | null {
  if (name !== "snapshot" && name !== "step" && name !== "state") return null;
  try {
    const event = JSON.parse(data) as RunEvent;
    return event && event.type === name ? event : null;
  } catch {
    return null;
  }
}

/** Steps by `seq`, each once (a step may arrive twice around the snapshot). */
export function mergeSteps(steps: Step[], more: Step[]): Step[] {
  const bySeq = new Map<number, Step>();
  for (const s of steps) bySeq.set(s.seq, s);
  for (const s of more) bySeq.set(s.seq, s);
  return [...bySeq.values()].sort((a, b) => a.seq - b.seq);
}

/** The run after one live event. `now` stamps a run that the event finishes. */
export function applyRunEvent(run: Run | null, event: RunEvent, now: string = new Date().toISOString()): Run | null {
  switch (event.type) {
    case "snapshot":
      return { ...event.run, steps: mergeSteps([], event.run.steps ?? []) };
    case "step":
      if (!run || event.step.run_id !== run.id) return run;
      return { ...run, steps: mergeSteps(run.steps, [event.step]) };
    case "state": {
      if (!run) return run;
      const finished = isFinal(event.state) ? (run.finished_at ?? now) : null;
      return {
        ...run,
        state: event.state,
        stop: event.stop ?? null,
        question: event.question ?? null,
        result: event.result ?? (event.state === "completed" ? run.result : null),
        usage: event.usage,
        tasks_done: event.tasks_done ?? run.tasks_done,
        started_at: event.state === "running" ? (run.started_at ?? now) : run.started_at,
        finished_at: finished,
      };
    }
  }
}

export function tokens(u: RunUsage | null | undefined): number {
  return u ? (u.prompt_tokens ?? 0) + (u.completion_tokens ?? 0) : 0;
}

export interface Bar {
  label: string;
  used: number;
  limit: number | null;
  /** 0..1 of the limit; null without one. */
  fraction: number | null;
  text: string;
}

function figure(n: number, digits: number): string {
  return n.toLocaleString("en-US", { maximumFractionDigits: digits });
}

function bar(label: string, used: number, limit: number | undefined | null, digits: number, unit = ""): Bar {
  const has = limit !== undefined && limit !== null;
  const fraction = has ? (limit > 0 ? Math.min(1, used / limit) : 1) : null;
  const text = has
    ? `${figure(used, digits)}${unit} of ${figure(limit, digits)}${unit}`
    : `${figure(used, digits)}${unit} (no limit)`;
  return { label, used, limit: has ? limit : null, fraction, text };
}

/** Wall time reads as a duration (`4 min 5 s`), not a count of seconds. */
function wall(used: number, limit: number | undefined): Bar {
  const b = bar("Wall time", used, limit, 0);
  return { ...b, text: b.limit === null ? `${duration(used)} (no limit)` : `${duration(used)} of ${duration(b.limit)}` };
}

/** Seconds the run has run: from its start (or creation) to its end (or now). */
export function wallSeconds(run: Pick<Run, "created_at" | "started_at" | "finished_at">, now: number = Date.now()): number {
  const start = Date.parse(run.started_at ?? run.created_at);
  const end = run.finished_at ? Date.parse(run.finished_at) : now;
  if (Number.isNaN(start) || Number.isNaN(end)) return 0;
  return Math.max(0, (end - start) / 1000);
}

/** Usage against the run's budget, one bar per limit. */
export function budgetBars(run: Run, now: number = Date.now()): Bar[] {
  const b = run.budget ?? {};
  return [
    bar("Tokens", tokens(run.usage), b.max_tokens, 0),
    bar("Cost", run.usage?.cost ?? 0, b.max_cost, 4),
    bar("GPU-seconds", run.usage?.gpu_seconds ?? 0, b.max_gpu_seconds, 1, " s"),
    bar("Steps", run.usage?.steps ?? 0, b.max_steps, 0),
    wall(Math.round(wallSeconds(run, now)), b.max_wall_secs),
  ];
}

export interface Lane {
  step: Step;
  /** Percent of the run's span where the step began, and how much of it the step took. */
  left: number;
  width: number;
}

/** Steps laid out on one time axis: a step is journalled (`at`) when it ends. */
export function waterfall(steps: Step[]): { lanes: Lane[]; spanMs: number } {
  const timed = steps.map((step) => {
    const end = Date.parse(step.at);
    const ok = !Number.isNaN(end);
    return { step, start: ok ? end - (step.duration_ms ?? 0) : 0, end: ok ? end : 0, ok };
  });
  const known = timed.filter((t) => t.ok);
  if (known.length === 0) return { lanes: steps.map((step) => ({ step, left: 0, width: 0 })), spanMs: 0 };
  const first = Math.min(...known.map((t) => t.start));
  const last = Math.max(...known.map((t) => t.end));
  const span = last - first;
  const lanes = timed.map(({ step, start, end, ok }): Lane => {
    if (!ok || span <= 0) return { step, left: 0, width: span <= 0 && ok ? 100 : 0 };
    const left = ((start - first) / span) * 100;
    return { step, left, width: Math.max(0, Math.min(100 - left, ((end - start) / span) * 100)) };
  });
  return { lanes, spanMs: span };
}

export interface Message {
  role: string;
  content: string;
  extra: unknown;
}

/** A step's transcript: messages when it was a model call, else the text or JSON it carries. */
export function transcriptOf(step: Pick<Step, "input" | "output">): {
  messages: Message[] | null;
  input: string | null;
  output: string;
} {
  const input = step.input as any;
  const rows = Array.isArray(input?.messages) ? input.messages : null;
  const messages = rows
    ? rows.map((m: any): Message => ({
        role: String(m?.role ?? "?"),
        content: typeof m?.content === "string" ? m.content : pretty(m?.content),
        extra: m?.tool_calls && (!Array.isArray(m.tool_calls) || m.tool_calls.length) ? m.tool_calls : null,
      }))
    : null;
  return {
    messages,
    input: messages ? null : input === null || input === undefined ? null : textOf(input),
    output: textOf(step.output),
  };
}

function pretty(value: unknown): string {
  return value === undefined ? "" : JSON.stringify(value, null, 2);
}

/** A value's words when it is text or carries text in a usual field; pretty JSON otherwise. */
export function textOf(value: unknown): string {
  if (value === null || value === undefined) return "";
  if (typeof value === "string") return value;
  if (typeof value === "object" && !Array.isArray(value)) {
    const v = value as Record<string, unknown>;
    const keys = Object.keys(v);
    for (const field of ["content", "answer", "output", "text", "result"]) {
      if (typeof v[field] !== "string") continue;
      const rest = keys.filter((k) => k !== field && !isEmpty(v[k]));
      if (rest.length === 0) return v[field] as string;
      // The text first, then what else the step carried.
      const others: Record<string, unknown> = {};
      for (const k of rest) others[k] = v[k];
      return `${v[field] as string}\n\n${pretty(others)}`;
    }
  }
  return pretty(value);
}

function isEmpty(v: unknown): boolean {
  return v === null || v === undefined || v === false || (Array.isArray(v) && v.length === 0);
}

/** `crew@3` */
export function crewAt(run: Pick<Run, "crew" | "crew_version">): string {
  return run.crew_version > 0 ? `${run.crew}@${run.crew_version}` : `${run.crew}@?`;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(text: string): boolean {
  return UUID.test(text.trim());
}

/** The run form's values as the request, or why they are not one. */
export function runRequest(
  inputs: string[],
  values: Record<string, string>,
  task: string,
  userId: string,
  agentId: string,
): { request: RunRequest } | { error: string } {
  const missing = inputs.filter((name) => !(values[name] ?? "").trim() && !(name === "task" && task.trim()));
  if (missing.length) return { error: `Fill in ${missing.join(", ")}.` };
  const user = userId.trim();
  if (user && !isUuid(user)) return { error: "The user id is a UUID (a memory user's id)." };
  const given: Record<string, string> = {};
  for (const name of inputs) if ((values[name] ?? "").trim()) given[name] = values[name];
  const request: RunRequest = { inputs: given, task: task.trim() };
  if (user) request.user_id = user;
  if (agentId.trim()) request.agent_id = agentId.trim();
  return { request };
}

export type Block =
  | { kind: "heading"; level: number; text: string }
  | { kind: "item"; text: string }
  | { kind: "code"; text: string }
  | { kind: "para"; text: string };

/** A run's result (usually Markdown from a model) as blocks to render as text, never markup. */
export function blocks(text: string): Block[] {
  const out: Block[] = [];
  let para: string[] = [];
  let code: string[] | null = null;
  const flush = () => {
    if (para.length) out.push({ kind: "para", text: para.join("\n") });
    para = [];
  };
  for (const line of text.split(/\r?\n/)) {
    if (code) {
      if (line.trim().startsWith("```")) {
        out.push({ kind: "code", text: code.join("\n") });
        code = null;
      } else code.push(line);
      continue;
    }
    if (line.trim().startsWith("```")) {
      flush();
      code = [];
      continue;
    }
    const heading = /^(#{1,6})\s+(.*)$/.exec(line);
    const item = /^\s*(?:[-*•]|\d+[.)])\s+(.*)$/.exec(line);
    if (heading) {
      flush();
      out.push({ kind: "heading", level: heading[1].length, text: heading[2].trim() });
    } else if (item) {
      flush();
      out.push({ kind: "item", text: item[1] });
    } else if (line.trim() === "") flush();
    else para.push(line);
  }
  if (code) out.push({ kind: "code", text: code.join("\n") });
  flush();
  return out;
}
