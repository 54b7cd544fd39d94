// End-to-end: the Trace, Metrics and Alerts pages in a real headless Chromium against the
// appliance with Prometheus and Alertmanager running (one-second scrapes). Started by
// supervisor/tests/it/web_ui.rs after admin.e2e.mjs (see there for the common variables); it
// also passes DAARION_E2E_CHAT_AGENT, an agent to chat with (on the local model).

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, test } from "node:test";

import { go, shot, signIn, until } from "./session.mjs";

const chatAgent = process.env.DAARION_E2E_CHAT_AGENT;
assert.ok(chatAgent, "DAARION_E2E_CHAT_AGENT");

let browser;
let page;
let offsite;

before(async () => {
  ({ browser, page, offsite } = await signIn());
});

after(async () => {
  await browser?.close();
});

test("a chat message's trace shows the gateway, router and memory spans", async (t) => {
  await go(page, "Chat");
  await page.getByRole("region", { name: "Talk to an agent" }).getByRole("combobox").selectOption(chatAgent);
  await page.getByLabel("Message", { exact: true }).fill("Name one colour.");
  // The browser's request starts the trace, as a traced client's would: the admin port's proxy
  // passes the caller's traceparent on to the gateway, and its own span joins the same trace.
  const traceId = randomBytes(16).toString("hex");
  const chat = "**/api/gateway/v1/chat";
  await page.route(chat, (route) =>
    route.continue({
      headers: { ...route.request().headers(), traceparent: `00-${traceId}-${randomBytes(8).toString("hex")}-01` },
    }),
  );
  const answered = page.waitForResponse((r) => new URL(r.url()).pathname === "/api/gateway/v1/chat");
  await page.getByRole("button", { name: "Send" }).click();
  const response = await answered;
  await page.unroute(chat);
  assert.equal(response.status(), 200);
  const traceparent = response.headers()["traceparent"] ?? "";
  assert.equal(traceparent.split("-")[1], traceId, `the answer is in the caller's trace: ${traceparent}`);
  const conversation = page.getByRole("list", { name: "Conversation" });
  await conversation.locator(".turn.agent").waitFor({ timeout: 120_000 });
  await page.getByRole("button", { name: "Send" }).waitFor({ timeout: 120_000 });

  await go(page, "Trace");
  const find = page.getByRole("form", { name: "Find a trace" });
  await find.getByLabel("Trace id").fill(traceId);
  const spans = page.getByRole("list", { name: "Spans" });
  const services = async () =>
    new Set(await spans.locator(".span-name .muted").allTextContents().catch(() => []));
  // Each service records a span when it ends; the memory write behind the turn may come after
  // the answer, so the trace is asked for again until every part is there.
  const wanted = ["supervisor", "gateway", "router", "memory"];
  let seen = new Set();
  await find.getByRole("button", { name: "Show" }).click();
  await until(
    `spans of ${wanted.join(", ")} in trace ${traceId}`,
    async () => {
      seen = await services();
      return wanted.every((s) => seen.has(s));
    },
    // Show with the same id does not ask again; the page's URL names the trace, so a reload does.
    () => page.reload(),
    { within: 30_000, every: 2_000 },
  ).catch(async (e) => {
    const incomplete = await page.getByRole("status").allTextContents();
    throw new Error(`${e.message}; seen: ${[...seen].join(", ") || "none"}; ${incomplete.join(" ")}`);
  });
  t.diagnostic(`figure: trace ${traceId} has ${await spans.locator("li").count()} spans from ${[...seen].sort().join(", ")}`);
  assert.equal(new URL(page.url()).searchParams.get("trace"), traceId, "the trace is in the URL");
  // A span opens its fields; the gateway's request span names its route.
  const gateway = spans.locator("li", { has: page.locator(".span-name .muted", { hasText: /^gateway$/ }) }).first();
  await gateway.getByRole("button").click();
  const fields = page.getByRole("region", { name: /^gateway: / });
  await fields.waitFor();
  assert.match(await fields.textContent(), /span [0-9a-f]{16}/);
  await shot(page, "trace");
});

test("the Metrics page draws the request rate from Prometheus", async () => {
  await go(page, "Metrics");
  const panel = page.getByRole("figure", { name: "Requests per second", exact: true });
  const plot = panel.getByRole("img", { name: /^Requests per second, \d+ series$/ });
  // One-second scrapes: the recorded rate needs two samples of the services' counters.
  await until(
    "a request rate drawn",
    async () => {
      const name = (await plot.getAttribute("aria-label", { timeout: 1_000 }).catch(() => null)) ?? "";
      return /, [1-9]\d* series$/.test(name);
    },
    () => page.getByRole("button", { name: "Now", exact: true }).click(),
    { within: 60_000, every: 2_000 },
  );
  const legend = await panel.locator(".legend li").allTextContents();
  assert.ok(
    legend.some((l) => /gateway|control-plane|memory|router/.test(l)),
    `the legend names services: ${legend}`,
  );
  assert.ok(await panel.locator("path.series").count(), "a line is drawn");
  await page.getByRole("figure", { name: "Units ready" }).getByRole("img").waitFor();
  await shot(page, "metrics");
});

test("the Alerts page lists the firing Watchdog and silences it, then expires the silence", async () => {
  await go(page, "Alerts");
  const firing = page.getByRole("region", { name: "Firing and pending", exact: true });
  // By its name: other alerts' descriptions mention the Watchdog.
  const byName = (name) => ({ has: page.locator("strong", { hasText: new RegExp(`^${name}$`) }) });
  const watchdog = firing.getByRole("table", { name: "Firing and pending alerts" }).locator("tr", byName("Watchdog"));
  await until(
    "Watchdog firing",
    async () => (await watchdog.locator(".badge-firing").count()) > 0,
    () => firing.getByRole("button", { name: "Refresh" }).click(),
    { within: 60_000, every: 2_000 },
  );
  // Prometheus sends it on: Alertmanager holds it too.
  const held = page.getByRole("region", { name: "In Alertmanager", exact: true });
  await until(
    "Watchdog in Alertmanager",
    async () => (await held.locator("tr", byName("Watchdog")).count()) > 0,
    () => held.getByRole("button", { name: "Refresh" }).click(),
    { within: 60_000, every: 2_000 },
  );

  await watchdog.getByRole("button", { name: "Silence…" }).click();
  const form = page.getByRole("region", { name: "Silence Watchdog" });
  await form.getByRole("group", { name: "Matchers" }).getByText('alertname="Watchdog"').waitFor();
  await form.getByLabel("Duration").fill("15m");
  await form.getByLabel("Why").fill("the e2e test silences the heartbeat");
  await form.getByRole("button", { name: "Create silence" }).click();
  await page.getByRole("status").getByText(/^Silence [0-9a-f-]+ created\.$/).waitFor();
  const silences = page.getByRole("region", { name: "Silences", exact: true });
  const silence = silences.getByRole("table", { name: "Silences" }).locator("tr", {
    hasText: "the e2e test silences the heartbeat",
  });
  await silence.locator(".badge-active").waitFor();
  assert.match(await silence.textContent(), /alertname="Watchdog"/);
  assert.match(await silence.textContent(), new RegExp(process.env.DAARION_E2E_USER));
  await shot(page, "alerts");

  await silence.getByRole("button", { name: "Expire" }).click();
  await silence.waitFor({ state: "detached" });
  await silences.getByLabel("show expired").check();
  await silence.locator(".badge-expired").waitFor();
});

test("the monitoring pages asked nothing of another origin", () => {
  assert.deepEqual(offsite, []);
});
