// End-to-end: the admin UI in a real headless Chromium against a running appliance.
// Started by the supervisor's integration test (supervisor/tests/it/web_ui.rs), which brings
// the appliance up, creates the admin account and the data this script looks for, and passes:
//   DAARION_E2E_URL          the admin port (http://127.0.0.1:PORT)
//   DAARION_E2E_USER/PASSWORD the admin account
//   DAARION_E2E_SCREENSHOTS  where each page's screenshot goes
//   DAARION_E2E_CHROMIUM     the browser (default /usr/bin/chromium)

import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { chromium } from "playwright-core";

const base = process.env.DAARION_E2E_URL;
const user = process.env.DAARION_E2E_USER;
const password = process.env.DAARION_E2E_PASSWORD;
const shots = process.env.DAARION_E2E_SCREENSHOTS ?? "e2e/screenshots";
assert.ok(base && user && password, "DAARION_E2E_URL, DAARION_E2E_USER and DAARION_E2E_PASSWORD");
mkdirSync(shots, { recursive: true });

let browser;
let page;
/** Requests the page made to anywhere but the appliance: everything must be bundled. */
const offsite = [];

before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.DAARION_E2E_CHROMIUM ?? "/usr/bin/chromium",
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  context.on("request", (request) => {
    const url = new URL(request.url());
    if (url.protocol.startsWith("http") && url.origin !== new URL(base).origin) offsite.push(request.url());
  });
  page = await context.newPage();
  page.setDefaultTimeout(20_000);
});

after(async () => {
  await browser?.close();
});

const shot = (name) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
const go = async (title) => {
  await page.getByRole("navigation", { name: "Pages" }).getByRole("link", { name: title, exact: true }).click();
  await page.getByRole("heading", { level: 1, name: title }).waitFor();
};

test("a wrong password is refused", async () => {
  await page.goto(base);
  await page.getByLabel("Username").fill(user);
  await page.getByLabel("Password").fill("not the password at all");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("alert").waitFor();
  assert.match(await page.getByRole("alert").textContent(), /wrong username or password/i);
  await shot("login-refused");
});

test("log in and see every service ready", async () => {
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { level: 1, name: "Overview" }).waitFor();
  const summary = page.getByTestId("ready-summary");
  await summary.waitFor();
  await page.waitForFunction(() => {
    const text = document.querySelector('[data-testid="ready-summary"]')?.textContent ?? "";
    const m = text.match(/(\d+) of (\d+) ready/);
    return m && m[1] === m[2];
  });
  await page.getByRole("table", { name: "Streams and consumer lag" }).waitFor();
  await shot("overview");
});

test("a state-changing call without the CSRF token is refused", async () => {
  const result = await page.evaluate(async () => {
    const create = await fetch("/api/control/agents", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ id: "sneaky", name: "sneaky" }),
    });
    const read = await fetch("/api/services");
    const withToken = await fetch("/api/services", {
      headers: { "X-CSRF-Token": sessionStorage.getItem("daarion.csrf") },
    });
    return { create: create.status, read: read.status, withToken: withToken.status };
  });
  assert.equal(result.create, 403);
  assert.equal(result.read, 401, "the supervisor's API needs the CSRF token too");
  assert.equal(result.withToken, 200);
});

test("edit an agent's prompt, see the new version, roll back", async () => {
  await go("Agents");
  await page.getByRole("button", { name: "helper", exact: true }).click();
  const editor = page.getByRole("form", { name: "Prompt editor" });
  const prompt = editor.getByLabel(/^Prompt/);
  await prompt.waitFor();
  await page.waitForFunction(() => document.querySelector("textarea")?.value.length > 0);
  const original = await prompt.inputValue();
  await prompt.fill(`${original}\nAlways greet the user by name.`);
  await editor.getByLabel("What changed").fill("greet by name");
  await editor.getByRole("button", { name: "Save as new version" }).click();
  const versions = page.getByRole("table", { name: "Prompt versions" });
  await versions.locator('tr[data-version="2"]').getByText("active").waitFor();
  await versions.locator('tr[data-version="2"]').getByRole("button", { name: "Diff" }).click();
  await page.getByLabel("Prompt diff").getByText("Always greet the user by name.").waitFor();
  await shot("agents");
  await versions.getByRole("button", { name: "Roll back to v1" }).click();
  await versions.locator('tr[data-version="1"]').getByText("active").waitFor();
  assert.equal(await prompt.inputValue(), original);
});

test("change a feature flag", async () => {
  await go("Config");
  const editor = page.getByRole("form", { name: "Config editor" });
  await editor.getByLabel("Key").fill("flags.e2e_voice");
  await editor.getByLabel("Value (JSON)").fill('{"enabled": false}');
  await editor.getByLabel("Why").fill("made by the e2e test");
  await editor.getByRole("button", { name: "Save" }).click();
  const row = page.getByRole("table", { name: "Feature flags" }).locator('tr[data-key="flags.e2e_voice"]');
  await row.getByText("off", { exact: true }).waitFor();
  await row.getByRole("button", { name: "Turn on" }).click();
  await row.getByText("on", { exact: true }).waitFor();
  await shot("config");
});

test("set a quota", async () => {
  await go("Quotas & usage");
  const form = page.getByRole("form", { name: "Quota limits" });
  await form.getByLabel("Named").fill("guest");
  await form.getByLabel("Tokens per day").fill("50000");
  await form.getByRole("button", { name: "Save limits" }).click();
  await form.getByRole("status").getByText("Limits for role guest saved.").waitFor();
  await page.getByRole("img", { name: "Tokens over time" }).waitFor();
  await shot("quotas");
});

test("search memory and find a stored fact", async () => {
  await go("Memory");
  await page.getByLabel("Find a user").fill("Olena");
  await page.getByRole("list", { name: "Users" }).getByRole("button", { name: "Olena" }).click();
  const search = page.getByRole("search", { name: "Memory search" });
  await search.getByLabel("Words").fill("teal");
  await search.getByRole("button", { name: "Search" }).click();
  const results = page.getByRole("list", { name: "Search results" });
  await results.getByText("favourite colour is teal").waitFor();
  const why = await results.textContent();
  assert.match(why, /matched words: .*teal/);
  assert.match(why, /close in meaning/, "found by its embedding too");
  await page.getByRole("table", { name: "Index state" }).waitFor();
  const add = page.getByRole("form", { name: "Add a document" });
  await add.getByLabel("Title").fill("Allotment notes");
  await add.getByLabel("Text").fill("Water the tomatoes twice a week.\n\nThe shed key is under the blue pot.");
  await add.getByRole("button", { name: "Add document" }).click();
  const row = page.getByRole("table", { name: "Documents" }).locator("tr", { hasText: "Allotment notes" });
  await row.getByText("1 of 1 indexed").waitFor({ timeout: 30_000 });
  await page.getByLabel("Entity").fill("Olena");
  await page.getByRole("list", { name: "Entities" }).getByRole("button").first().click();
  await page.getByRole("img", { name: "Neighbourhood graph" }).getByText("Kyiv").waitFor();
  await shot("memory");
});

test(
  "upload a file for a user, watch it being read, open it, delete it",
  async () => {
    await go("Attachments");
    await page.getByLabel("Find a user").fill("Olena");
    await page.getByRole("list", { name: "Users" }).getByRole("button", { name: "Olena" }).click();
    const name = "garden-notes.md";
    await page.getByLabel("Choose files").setInputFiles({
      name,
      mimeType: "text/markdown",
      buffer: Buffer.from("# Garden\n\nThe greenhouse thermometer hangs by the door.\n"),
    });
    const upload = page.getByRole("list", { name: "Uploads" }).locator(`li[data-upload="${name}"]`);
    await upload.getByText("received").waitFor({ timeout: 30_000 });
    const table = page.getByRole("table", { name: "Attachments" });
    const row = table.locator("tr", { hasText: name });
    await row.waitFor();
    assert.equal(await row.locator("td").nth(1).textContent(), "markdown");
    // Polled every 2 s while unfinished: the row moves on by itself, up to indexed.
    await table.locator(`tr[data-state="indexed"]`, { hasText: name }).waitFor({ timeout: 120_000 });
    await page.getByLabel("State filter").selectOption("indexed");
    await table.locator("tr", { hasText: name }).waitFor();
    await page.getByLabel("State filter").selectOption("failed");
    await table.locator("tr", { hasText: name }).waitFor({ state: "detached" });
    await page.getByLabel("State filter").selectOption("");
    await table.locator("tr", { hasText: name }).getByRole("button", { name: "open" }).click();
    const detail = page.getByRole("region", { name: `Attachment: ${name}` });
    await detail.getByTestId("attachment-state").waitFor();
    await detail.getByTestId("attachment-state").getByText("indexed").first().waitFor();
    await detail.getByLabel("Extracted text").getByText("greenhouse thermometer").waitFor();
    await shot("attachments");
    page.once("dialog", (dialog) => dialog.accept());
    await detail.getByRole("button", { name: "Delete" }).click();
    await detail.waitFor({ state: "detached" });
    await table.locator("tr", { hasText: name }).waitFor({ state: "detached", timeout: 10_000 });
  },
);

test("restart a service and watch it come back", async () => {
  await go("Services");
  const row = page.locator('tr[data-unit="router"]');
  await row.getByText("ready").waitFor();
  const pid = (await row.locator("td").nth(2).textContent()).trim();
  await row.getByRole("button", { name: "Restart" }).click();
  await page.waitForFunction(
    (old) => {
      const cells = document.querySelectorAll('tr[data-unit="router"] td');
      return cells[2]?.textContent?.trim() !== old && cells[1]?.textContent?.includes("ready");
    },
    pid,
    { timeout: 60_000 },
  );
  await row.getByRole("button", { name: "Logs" }).click();
  await page.getByRole("region", { name: "Logs: router" }).waitFor();
  await shot("services");
});

test("chat with an agent and get a streamed answer", async () => {
  await go("Chat");
  await page.getByRole("region", { name: "Talk to an agent" }).getByRole("combobox").selectOption("helper");
  await page.getByLabel("Message", { exact: true }).fill("Say hello in three words.");
  await page.getByRole("button", { name: "Send" }).click();
  const conversation = page.getByRole("list", { name: "Conversation" });
  await conversation.locator(".turn.agent").waitFor({ timeout: 120_000 });
  await page.getByRole("button", { name: "Send" }).waitFor({ timeout: 120_000 });
  const answer = (await conversation.locator(".turn.agent").last().textContent()).trim();
  assert.ok(answer.length > 0, "the agent answered");
  await shot("chat");
});

test("the audit log shows who did what", async () => {
  await go("Audit log");
  await page.getByRole("table", { name: "Audit log" }).getByText(`admin:${user}`).first().waitFor({ timeout: 30_000 });
  await shot("audit");
});

test("every other page renders, and the layout fits a phone", async () => {
  await go("Models");
  await page.locator('tr[data-model="smollm2"]').getByText("loaded").waitFor();
  await shot("models");
  await go("Policy & users");
  await page.getByRole("table", { name: "Users" }).getByText("Olena").waitFor();
  await page.getByRole("table", { name: "Roles" }).getByText("guest", { exact: true }).waitFor();
  await shot("policy-users");
  await page.setViewportSize({ width: 390, height: 844 });
  await page.getByRole("button", { name: "Menu" }).click();
  await page.getByRole("navigation", { name: "Pages" }).getByRole("link", { name: "Overview" }).click();
  await page.getByTestId("ready-summary").waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `no sideways scrolling on a phone (overflow ${overflow}px)`);
  await shot("overview-phone");
});

test("no page asked anything of another origin", () => {
  assert.deepEqual(offsite, []);
});

test("sign out ends the session", async () => {
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByRole("button", { name: "Sign in" }).waitFor();
  const status = await page.evaluate(async () => (await fetch("/api/control/agents")).status);
  assert.equal(status, 401);
});
