import { describe, expect, test } from "vitest";

import {
  applyRunEvent,
  blocks,
  budgetBars,
  crewAt,
  crewInputs,
  type CrewSpec,
  fieldBelongs,
  fieldError,
  mergeSteps,
  parseRunEvent,
  parseSpec,
  placeholders,
  type Run,
  runActions,
  runRequest,
  type RunState,
  type Step,
  stopText,
  taskMarks,
  textOf,
  transcriptOf,
  unknownKeyPlace,
  waterfall,
} from "./crews";

const usage = (change: Partial<Run["usage"]> = {}) => ({
  prompt_tokens: 0,
  completion_tokens: 0,
  cost: 0,
  gpu_seconds: 0,
  steps: 0,
  ...change,
});

const step = (seq: number, at: string, duration_ms: number, change: Partial<Step> = {}): Step => ({
  run_id: "r1",
  seq,
  key: `t1/i${seq}/llm`,
  kind: "llm",
  input: null,
  output: null,
  usage: usage(),
  duration_ms,
  at,
  ...change,
});

const run = (change: Partial<Run> = {}): Run => ({
  id: "r1",
  crew: "research",
  crew_version: 2,
  user_id: "00000000-0000-0000-0000-000000000001",
  agent_id: "helper",
  state: "running",
  inputs: {},
  task: "",
  budget: {},
  usage: usage(),
  tasks_done: 0,
  tasks_total: 2,
  created_at: "2025-01-01T00:00:00Z",
  steps: [],
  ...change,
});

describe("crews: definitions", () => {
  test("placeholders are found as the service finds them", () => {
    const cases: [string, string[]][] = [
      ["Compare {suppliers} for {topic}", ["suppliers", "topic"]],
      ["no braces", []],
      ["{not valid} {_ok} {9no} {a1}", ["_ok", "a1"]],
      ["JSON {\"a\": 1} then {city}", ["city"]],
      ["{{double}}", ["double"]],
      ["{unclosed", []],
      ["{}", []],
      [`{${"x".repeat(65)}} {${"y".repeat(64)}}`, ["y".repeat(64)]],
    ];
    for (const [text, want] of cases) expect([...placeholders(text)].sort(), text).toEqual(want);
  });

  test("a crew's inputs come from its agents and tasks, sorted, once each", () => {
    const spec: CrewSpec = {
      id: "c",
      agents: [{ key: "a", role: "{topic} researcher", goal: "find {topic}", backstory: "in {city}" }],
      tasks: [
        { key: "t1", description: "research {topic} in {range}", expected_output: "a {format}" },
        { key: "t2", description: "no inputs" },
      ],
    };
    expect(crewInputs(spec)).toEqual(["city", "format", "range", "topic"]);
  });

  test("a 422 names its field, and the field finds its place in the outline", () => {
    const cases: [string, string | null, string][] = [
      ["tasks.t1.agent: no agent `x` in this crew", "tasks.t1.agent", "no agent `x` in this crew"],
      ["agents.a.tools[2]: bad", "agents.a.tools[2]", "bad"],
      ["id: must match ^[a-z]", "id", "must match ^[a-z]"],
      ["the crews service failed; see its log", null, "the crews service failed; see its log"],
      ["body: missing field `agents` at line 1", "body", "missing field `agents` at line 1"],
    ];
    for (const [message, field, rest] of cases) expect(fieldError(message), message).toEqual({ field, message: rest });
    expect(fieldBelongs("tasks.t1.agent", "tasks.t1")).toBe(true);
    expect(fieldBelongs("tasks.t10.agent", "tasks.t1")).toBe(false);
    expect(fieldBelongs("agents.a.tools[0]", "agents.a.tools")).toBe(true);
    expect(fieldBelongs("tasks", "tasks")).toBe(true);
    expect(fieldBelongs(null, "tasks")).toBe(false);
  });

  test("the editor's text is checked before the service is asked", () => {
    const cases: [string, string | null][] = [
      ['{"id": "c", "agents": [], "tasks": []}', null],
      ["{", "Not valid JSON"],
      ["[]", "A crew is a JSON object."],
      ['{"agents": [], "tasks": []}', "id:"],
      ['{"id": "c", "tasks": []}', "agents:"],
      ['{"id": "c", "agents": []}', "tasks:"],
    ];
    for (const [text, error] of cases) {
      const parsed = parseSpec(text);
      if (error === null) expect(parsed, text).toHaveProperty("spec");
      else expect("error" in parsed && parsed.error.startsWith(error), `${text}: ${JSON.stringify(parsed)}`).toBe(true);
    }
  });

  test("an unknown key says which file and entry it came from", () => {
    expect(unknownKeyPlace("agents.researcher.verbose")).toEqual({ file: "agents", entry: "researcher", key: "verbose" });
    expect(unknownKeyPlace("tasks.report.output_file")).toEqual({ file: "tasks", entry: "report", key: "output_file" });
    expect(unknownKeyPlace("agents.x")).toEqual({ file: "agents", entry: "", key: "x" });
    expect(unknownKeyPlace("other")).toEqual({ file: null, entry: "", key: "other" });
  });

  test("a task's markers", () => {
    expect(taskMarks({ key: "t", description: "" })).toEqual([]);
    expect(
      taskMarks({ key: "t", description: "", async_execution: true, human_input: true, output_json: {}, guardrail: "short" }),
    ).toEqual(["async", "asks the user", "JSON output", "guardrail"]);
  });
});

describe("crews: runs", () => {
  test("each state allows what the service allows", () => {
    const cases: [RunState, number, { cancel: boolean; answer: boolean; resume: boolean; rerun: boolean }][] = [
      ["queued", 1, { cancel: true, answer: false, resume: false, rerun: false }],
      ["running", 1, { cancel: true, answer: false, resume: false, rerun: false }],
      ["waiting_input", 1, { cancel: true, answer: true, resume: false, rerun: false }],
      ["completed", 1, { cancel: false, answer: false, resume: false, rerun: true }],
      ["failed", 1, { cancel: false, answer: false, resume: true, rerun: true }],
      ["cancelled", 1, { cancel: false, answer: false, resume: true, rerun: true }],
      ["failed", 0, { cancel: false, answer: false, resume: false, rerun: false }],
    ];
    for (const [state, crew_version, want] of cases) {
      expect(runActions({ state, crew_version }), `${state} v${crew_version}`).toEqual(want);
    }
  });

  test("why a run stopped reads as words", () => {
    expect(stopText(null)).toBe("");
    expect(stopText({ code: "tokens", detail: "12,000 of 10,000 tokens" })).toBe(
      "It used up its token budget: 12,000 of 10,000 tokens",
    );
    expect(stopText({ code: "delegation_loop", detail: "" })).toBe(
      "The manager's delegation went round in a circle or past its bounds.",
    );
    expect(stopText({ code: "cancelled", detail: "cancelled by admin" })).toBe("It was cancelled: cancelled by admin");
  });

  test("live events build the run: snapshot, steps once each in order, state changes", () => {
    const events: [string, unknown][] = [
      ["snapshot", { type: "snapshot", run: run({ steps: [step(2, "2025-01-01T00:00:02Z", 10)] }) }],
      ["step", { type: "step", step: step(1, "2025-01-01T00:00:01Z", 10) }],
      ["step", { type: "step", step: step(2, "2025-01-01T00:00:02Z", 10) }],
      ["step", { type: "step", step: { ...step(3, "2025-01-01T00:00:03Z", 10), run_id: "other" } }],
      ["state", { type: "state", state: "waiting_input", question: "Shorter?", usage: usage({ steps: 2 }) }],
      ["ping", {}],
      ["state", { type: "state", state: "completed", result: "done", usage: usage({ steps: 3 }) }],
    ];
    let current: Run | null = null;
    const seen: string[] = [];
    for (const [name, data] of events) {
      const event = parseRunEvent(name, JSON.stringify(data));
      if (!event) continue;
      current = applyRunEvent(current, event, "2025-01-01T00:01:00Z");
      seen.push(`${current!.state}:${current!.steps.map((s) => s.seq).join(",")}:${current!.question ?? ""}`);
    }
    expect(seen).toEqual(["running:2:", "running:1,2:", "running:1,2:", "running:1,2:", "waiting_input:1,2:Shorter?", "completed:1,2:"]);
    expect(current!.result).toBe("done");
    expect(current!.usage.steps).toBe(3);
    expect(current!.finished_at).toBe("2025-01-01T00:01:00Z");
    expect(parseRunEvent("step", "not json")).toBeNull();
    expect(parseRunEvent("step", JSON.stringify({ type: "state" }))).toBeNull();
  });

  test("a step arriving twice replaces itself", () => {
    const a = step(1, "2025-01-01T00:00:01Z", 5);
    const b = { ...a, error: "again" };
    expect(mergeSteps([a], [b])).toEqual([b]);
  });

  test("budget bars: used against the limit, or no limit", () => {
    const r = run({
      budget: { max_tokens: 1000, max_cost: 0.5, max_steps: 10, max_wall_secs: 120 },
      usage: usage({ prompt_tokens: 300, completion_tokens: 200, cost: 0.75, gpu_seconds: 2.5, steps: 4 }),
      started_at: "2025-01-01T00:00:00Z",
      finished_at: "2025-01-01T00:01:00Z",
    });
    const bars = budgetBars(r);
    expect(bars.map((b) => [b.label, b.fraction, b.text])).toEqual([
      ["Tokens", 0.5, "500 of 1,000"],
      ["Cost", 1, "0.75 of 0.5"],
      ["GPU-seconds", null, "2.5 s (no limit)"],
      ["Steps", 0.4, "4 of 10"],
      ["Wall time", 0.5, "1 min 0 s of 2 min 0 s"],
    ]);
    const live = budgetBars(run({ budget: { max_wall_secs: 100 }, started_at: "2025-01-01T00:00:00Z" }), Date.parse("2025-01-01T00:00:10Z"));
    expect(live[4].text).toBe("10 s of 1 min 40 s");
  });

  test("the waterfall lays steps on one axis from their end and duration", () => {
    const { lanes, spanMs } = waterfall([
      step(1, "2025-01-01T00:00:01.000Z", 1000),
      step(2, "2025-01-01T00:00:02.000Z", 500),
      step(3, "2025-01-01T00:00:03.000Z", 2000),
    ]);
    expect(spanMs).toBe(3000);
    expect(lanes.map((l) => [Math.round(l.left), Math.round(l.width)])).toEqual([
      [0, 33],
      [50, 17],
      [33, 67],
    ]);
    expect(waterfall([]).spanMs).toBe(0);
    expect(waterfall([step(1, "2025-01-01T00:00:01Z", 0)]).lanes[0].width).toBe(100);
  });

  test("a step's transcript: messages of a model call, text of an answer, JSON otherwise", () => {
    const llm = transcriptOf({
      input: {
        messages: [
          { role: "system", content: "You are a researcher", tool_calls: [] },
          { role: "assistant", content: "", tool_calls: [{ name: "web_search" }] },
        ],
        model: "local/smollm2",
      },
      output: { content: "Three suppliers", tool_calls: [], provider: "local", model: "smollm2" },
    });
    expect(llm.messages?.map((m) => [m.role, m.content, m.extra])).toEqual([
      ["system", "You are a researcher", null],
      ["assistant", "", [{ name: "web_search" }]],
    ]);
    expect(llm.output.startsWith("Three suppliers\n\n")).toBe(true);
    expect(llm.output).toContain('"provider": "local"');
    const human = transcriptOf({ input: { question: "Shorter?" }, output: { answer: "yes" } });
    expect(human.messages).toBeNull();
    expect(human.input).toContain('"question": "Shorter?"');
    expect(human.output).toBe("yes");
    expect(textOf("plain")).toBe("plain");
    expect(textOf({ pass: false, reason: "too long" })).toBe('{\n  "pass": false,\n  "reason": "too long"\n}');
    expect(textOf(null)).toBe("");
  });

  test("the run form's values become the request, or say what is missing", () => {
    const ok = runRequest(["city", "task"], { city: "Kyiv" }, "compare", "", "helper");
    expect(ok).toEqual({ request: { inputs: { city: "Kyiv" }, task: "compare", agent_id: "helper" } });
    const missing = runRequest(["city", "range"], { city: " " }, "", "", "");
    expect(missing).toEqual({ error: "Fill in city, range." });
    const badUser = runRequest([], {}, "", "bob", "");
    expect("error" in badUser && badUser.error).toMatch(/UUID/);
    const user = runRequest([], {}, "", "00000000-0000-0000-0000-00000000000a", "");
    expect(user).toEqual({ request: { inputs: {}, task: "", user_id: "00000000-0000-0000-0000-00000000000a" } });
  });

  test("crew@version", () => {
    expect(crewAt({ crew: "c", crew_version: 3 })).toBe("c@3");
    expect(crewAt({ crew: "c", crew_version: 0 })).toBe("c@?");
  });
});

describe("crews: results", () => {
  test("a result's Markdown becomes blocks of text", () => {
    const text = "# Suppliers\n\nThree were found:\n- Acme\n* Beta\n1. Gamma\n\nA second\nparagraph.\n```\nraw <b>x</b>\n```\n## End";
    expect(blocks(text)).toEqual([
      { kind: "heading", level: 1, text: "Suppliers" },
      { kind: "para", text: "Three were found:" },
      { kind: "item", text: "Acme" },
      { kind: "item", text: "Beta" },
      { kind: "item", text: "Gamma" },
      { kind: "para", text: "A second\nparagraph." },
      { kind: "code", text: "raw <b>x</b>" },
      { kind: "heading", level: 2, text: "End" },
    ]);
    expect(blocks("```\nnever closed")).toEqual([{ kind: "code", text: "never closed" }]);
  });
});
