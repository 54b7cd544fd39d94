// End-to-end: the Crews and Runs pages in a real headless Chromium against the appliance with
// the crews service and worker. Started by supervisor/tests/it/web_ui.rs after admin.e2e.mjs
// (see there for the common variables); it also passes:
//   DAARION_E2E_CREWAI_DIR   a CrewAI project (agents.yaml, tasks.yaml): the trip planner
//   DAARION_E2E_CREW_AGENT   an agent on the harness's scripted model, for the crew's steps
//   DAARION_E2E_CREW_ANSWER  what that model answers as each task's final answer
//   DAARION_E2E_USER_ID      a memory user whose run it is

import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { go, shot, signIn } from "./session.mjs";

const project = process.env.DAARION_E2E_CREWAI_DIR;
const crewAgent = process.env.DAARION_E2E_CREW_AGENT;
const answer = process.env.DAARION_E2E_CREW_ANSWER;
const runUser = process.env.DAARION_E2E_USER_ID;
assert.ok(project && crewAgent && answer && runUser, "the crews variables (see the top of this file)");

let browser;
let page;
let offsite;

before(async () => {
  ({ browser, page, offsite } = await signIn());
});

after(async () => {
  await browser?.close();
});

/** The JSON editor's crew, changed by `edit`, written back into the editor. */
async function editJson(edit) {
  const box = page.getByRole("form", { name: "Crew editor" }).getByRole("textbox");
  await page.waitForFunction(() => document.querySelector('form[aria-label="Crew editor"] textarea')?.value.length > 0);
  const spec = JSON.parse(await box.inputValue());
  edit(spec);
  await box.fill(JSON.stringify(spec, null, 2));
}

const crewsTable = () => page.getByRole("table", { name: "Crews" });
const detail = (id) => page.getByRole("region", { name: new RegExp(`^Crew ${id} \\(v\\d+\\)$`) });

test("import a CrewAI project: the dry run reports unknown keys and inputs, then it is a crew", async () => {
  await go(page, "Crews");
  await page.getByRole("button", { name: "Import CrewAI project", exact: true }).click();
  const form = page.getByRole("form", { name: "Import" });
  await form.getByLabel("Crew id").fill("trip_planner");
  await form.getByLabel("Name", { exact: true }).fill("Trip planner");
  await form.getByLabel("Upload agents.yaml").setInputFiles(join(project, "agents.yaml"));
  await form.getByLabel("Upload tasks.yaml").setInputFiles(join(project, "tasks.yaml"));
  await page.waitForFunction(() =>
    [...document.querySelectorAll('form[aria-label="Import"] textarea')].every((t) => t.value.includes(":")),
  );
  const importButton = form.getByRole("button", { name: "Import", exact: true });
  assert.ok(await importButton.isDisabled(), "nothing to import before a dry run");

  await form.getByRole("button", { name: "Check (dry run)" }).click();
  const report = page.getByLabel("Import report");
  await report.getByText("nothing stored yet").waitFor();
  const unknown = report.getByRole("note", { name: "Unknown keys" });
  for (const key of ["agents.travel_concierge.memory", "tasks.plan_task.callback"]) {
    await unknown.getByText(key, { exact: true }).waitFor();
  }
  const inputs = await report.locator("code.input-name").allTextContents();
  assert.deepEqual(inputs.sort(), ["{cities}", "{interests}", "{origin}", "{range}"]);
  await report.locator('[data-task="plan_task"]').getByText("Sees the output of").waitFor();
  assert.equal(await crewsTable().locator('tr[data-crew="trip_planner"]').count(), 0, "a dry run stores nothing");

  await importButton.click();
  const row = crewsTable().locator('tr[data-crew="trip_planner"]');
  await row.waitFor();
  assert.match(await row.textContent(), /Trip planner.*v1.*3.*3/s, "three agents, three tasks, v1");
  await detail("trip_planner").getByLabel("Agent travel_concierge").waitFor();
});

test("an edit naming an agent the crew lacks is refused at the field; a good one is v2 with a diff", async () => {
  const crew = detail("trip_planner");
  await crew.getByRole("button", { name: "Edit", exact: true }).click();
  await editJson((spec) => {
    spec.tasks.find((t) => t.key === "gather_task").agent = "nobody";
  });
  const editor = page.getByRole("form", { name: "Crew editor" });
  await editor.getByRole("button", { name: "Save as new version" }).click();
  const refusal = editor.getByRole("alert");
  await refusal.waitFor();
  assert.match(await refusal.textContent(), /tasks\.gather_task\.agent: `nobody` is not an agent of this crew/);
  // Shown at the task it names in the outline beside the editor, and at no other.
  const atTask = crew.locator('[data-task="gather_task"] .field-error');
  await atTask.waitFor();
  assert.match(await atTask.textContent(), /tasks\.gather_task\.agent/);
  assert.equal(await crew.locator('[data-task="identify_task"] .field-error').count(), 0);

  await editJson((spec) => {
    spec.tasks.find((t) => t.key === "gather_task").agent = "local_expert";
    spec.name = "Trip planner (checked)";
  });
  await editor.getByRole("button", { name: "Save as new version" }).click();
  await page.getByRole("heading", { level: 2, name: "Crew trip_planner (v2)" }).waitFor();

  await crew.getByRole("button", { name: "Versions", exact: true }).click();
  const versions = page.getByRole("table", { name: "Crew versions" });
  await versions.locator('tr[data-version="2"]').getByText("active").waitFor();
  await versions.locator('tr[data-version="1"]').waitFor();
  await versions.locator('tr[data-version="2"]').getByRole("button", { name: "Diff with previous" }).click();
  const diff = page.getByLabel("Crew diff");
  await diff.getByRole("heading", { name: "v1 → v2" }).waitFor();
  await diff.locator(".diff-add", { hasText: "Trip planner (checked)" }).waitFor();
  await diff.locator(".diff-del", { hasText: "Trip planner" }).first().waitFor();
  await shot(page, "crews");
});

test("a crew run reaches completed on the Runs page, with its steps and their transcripts", async () => {
  await page.getByRole("button", { name: "New crew", exact: true }).click();
  await editJson((spec) => {
    spec.id = "briefing";
    spec.name = "Briefing";
    spec.agent = crewAgent;
  });
  await page.getByRole("button", { name: "Create crew" }).click();
  await crewsTable().locator('tr[data-crew="briefing"]').waitFor();
  const crew = detail("briefing");
  await crew.getByRole("button", { name: "Run", exact: true }).click();
  const form = page.getByRole("form", { name: "Run the crew" });
  await form.locator('input[name="topic"]').fill("tomatoes");
  await form.getByLabel(/^User id/).fill(runUser);
  await form.getByRole("button", { name: "Start run" }).click();

  // Starting a run opens it on the Runs page, live.
  await page.getByRole("heading", { level: 1, name: "Runs" }).waitFor();
  const runId = new URL(page.url()).searchParams.get("run");
  assert.match(runId ?? "", /^[0-9a-f-]{36}$/);
  await page.getByTestId("run-state").locator(".badge-completed").waitFor({ timeout: 90_000 });
  await page.getByLabel("Result", { exact: true }).getByText(answer).waitFor();
  await page.getByRole("table", { name: "Runs" }).locator(`tr[data-run="${runId}"][data-state="completed"]`).waitFor({
    timeout: 10_000,
  });

  const steps = page.getByRole("table", { name: "Steps" }).locator("tr[data-step]");
  await steps.first().waitFor();
  const kinds = await page.getByRole("table", { name: "Steps" }).locator("tr[data-step] .kind").allTextContents();
  assert.ok(kinds.includes("llm"), `a model call among the steps: ${kinds}`);
  const llm = page.getByRole("table", { name: "Steps" }).locator("tr[data-step]", { has: page.locator(".kind-llm") }).first();
  const seq = await llm.getAttribute("data-step");
  await llm.getByRole("button", { name: seq, exact: true }).click();
  const transcript = page.getByLabel(`Step ${seq} transcript`, { exact: true });
  await transcript.waitFor();
  await transcript.getByText(answer).first().waitFor();
  // What the step asked: the task's description with its input filled in.
  await transcript.getByText("tomatoes").first().waitFor();
  await shot(page, "runs");
});

test("the crews pages asked nothing of another origin", () => {
  assert.deepEqual(offsite, []);
});
