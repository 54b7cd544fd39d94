// What every e2e file beside admin.e2e.mjs shares: the browser, a signed-in page, the page
// menu, screenshots, and the check that nothing was fetched from another origin. Not a test
// file itself (no `.e2e.mjs`): the harness names the files it runs.

import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

export const base = process.env.DAARION_E2E_URL;
const user = process.env.DAARION_E2E_USER;
const password = process.env.DAARION_E2E_PASSWORD;
const shots = process.env.DAARION_E2E_SCREENSHOTS ?? "e2e/screenshots";
assert.ok(base && user && password, "DAARION_E2E_URL, DAARION_E2E_USER and DAARION_E2E_PASSWORD");
mkdirSync(shots, { recursive: true });

/** A browser with one page, signed in as the admin and on the Overview. */
export async function signIn() {
  const browser = await chromium.launch({
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
  /** Requests the page made to anywhere but the appliance: everything must be bundled. */
  const offsite = [];
  context.on("request", (request) => {
    const url = new URL(request.url());
    if (url.protocol.startsWith("http") && url.origin !== new URL(base).origin) offsite.push(request.url());
  });
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  await page.goto(base);
  await page.getByLabel("Username").fill(user);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { level: 1, name: "Overview" }).waitFor();
  return { browser, page, offsite };
}

export const shot = (page, name) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });

/** Opens a page from the menu and waits for its heading. */
export async function go(page, title) {
  await page.getByRole("navigation", { name: "Pages" }).getByRole("link", { name: title, exact: true }).click();
  await page.getByRole("heading", { level: 1, name: title }).waitFor();
}

/**
 * Repeats `act` (a click that asks again: Refresh, Now, Show) until `check` holds; the pages
 * poll slowly (15 s to 1 min) and what they show arrives within seconds.
 */
export async function until(what, check, act, { within = 60_000, every = 1_000 } = {}) {
  const deadline = Date.now() + within;
  for (;;) {
    if (await check()) return;
    assert.ok(Date.now() < deadline, `${what}: not within ${within / 1000} s`);
    await act();
    await new Promise((resolve) => setTimeout(resolve, every));
  }
}
