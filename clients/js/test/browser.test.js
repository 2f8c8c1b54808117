// switchboard-client in headless Chromium (Debian's), from a page this
// test serves: the package runs in a browser as it is, no build step.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import http from "node:http";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

import { CHROMIUM_ARGS, startServer, token } from "./server.js";

const sdk = readFileSync(fileURLToPath(new URL("../src/index.js", import.meta.url)));
const page = `<!doctype html><meta charset="utf-8"><title>sdk</title>
<script type="module">
import { createClient } from "/src/index.js";
const query = new URLSearchParams(location.search);
const url = query.get("ws");
try {
  const a = createClient(url);
  const b = createClient(url, { token: query.get("token") });
  const got = [];
  const sub = await a.subscribe("room", (d) => got.push(d));
  const { delivered } = await b.publish("room", { from: "browser" });
  const echo = await b.call("echo", { val: 7 });
  await a.join("room", { name: "Chromium" });
  const members = await b.presence("room");
  while (!got.length) await new Promise((r) => setTimeout(r, 20));
  await sub.unsubscribe();
  await a.close(); await b.close();
  window.result = { delivered, got, echo: echo.returns, members: members.map((m) => m.info.name), state: a.state };
} catch (e) {
  window.result = { error: String(e) };
}
</script>`;

const cleanup = [];
after(async () => {
  for (const f of cleanup.reverse()) await f();
});

test("the client works in headless Chromium", async () => {
  const executablePath = process.env.SB_CHROMIUM;
  assert.ok(executablePath, "SB_CHROMIUM names Debian's chromium (set by the Rust harness)");
  const s = await startServer();
  cleanup.push(() => s.kill());
  const site = http.createServer((req, res) => {
    if (req.url.startsWith("/src/index.js")) {
      res.writeHead(200, { "content-type": "text/javascript" });
      res.end(sdk);
    } else {
      res.writeHead(200, { "content-type": "text/html" });
      res.end(page);
    }
  });
  await new Promise((r) => site.listen(0, "127.0.0.1", r));
  cleanup.push(() => new Promise((r) => site.close(r)));
  const browser = await chromium.launch({ executablePath, args: CHROMIUM_ARGS });
  cleanup.push(() => browser.close());
  const tab = await browser.newPage();
  await tab.goto(`http://127.0.0.1:${site.address().port}/?ws=${encodeURIComponent(s.url)}&token=${token("browser")}`);
  await tab.waitForFunction(() => window.result, null, { timeout: 20_000 });
  const result = await tab.evaluate(() => window.result);
  assert.deepEqual(result, {
    delivered: 1,
    got: [{ from: "browser" }],
    echo: { val: 7 },
    members: ["Chromium"],
    state: "closed",
  });
});
