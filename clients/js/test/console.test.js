// The web console (/console) in headless Chromium: it lists a client this
// test connects, shows records without their protected fields, and leaves
// a screenshot in target/console.png.

import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

import { createClient } from "../src/index.js";
import { CHROMIUM_ARGS, startServer, token } from "./server.js";

const cleanup = [];
after(async () => {
  for (const f of cleanup.reverse()) await f();
});

test("the console shows live connections, channels, plugins and records", async () => {
  const s = await startServer({
    extra: '[auth.api_keys]\nsk_console = { id = "ops", role = "admin" }\n[resources.users]\nprotected = ["password"]',
  });
  cleanup.push(() => s.kill());
  const watched = createClient(s.url, { token: token("watched-user") });
  cleanup.push(() => watched.close());
  const { clientId } = await watched.ready;
  await watched.subscribe("lobby", () => {});
  await watched.join("lobby", { name: "W" });
  await watched.request({ type: "insert", resource: "users", data: { id: "u1", name: "Ann", password: "hunter2" } });

  const browser = await chromium.launch({ executablePath: process.env.SB_CHROMIUM, args: CHROMIUM_ARGS });
  cleanup.push(() => browser.close());
  const tab = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const errors = [];
  tab.on("pageerror", (e) => errors.push(String(e)));
  await tab.goto(`${s.http}/console#key=sk_console`);
  const row = tab.locator(`tr[data-client="${clientId}"]`);
  await row.waitFor({ timeout: 15_000 });
  const text = await row.innerText();
  assert.match(text, /watched-user/);
  assert.match(text, /lobby/);
  assert.match(text, /native/);
  await tab.locator("#channels td", { hasText: "lobby" }).first().waitFor();
  await tab.locator("#plugins td", { hasText: "chat.wasm" }).waitFor();
  await tab.locator("#records td", { hasText: "Ann" }).waitFor();
  const records = await tab.locator("#records").innerText();
  assert.doesNotMatch(records, /hunter2/, "protected fields never reach the console");
  // Counters are charted once two samples were taken.
  await tab.locator('.chart[data-metric="switchboard_connections"] b', { hasText: "connections open: " }).waitFor();
  const shots = fileURLToPath(new URL("../../../target/", import.meta.url));
  mkdirSync(shots, { recursive: true });
  await tab.screenshot({ path: `${shots}console.png`, fullPage: true });
  assert.deepEqual(errors, []);
});
