// switchboard-client against a real server (Node's test runner).

import assert from "node:assert/strict";
import { after, test } from "node:test";

import { createClient } from "../src/index.js";
import { startServer, token } from "./server.js";

const servers = [];
after(async () => {
  for (const s of servers) await s.kill();
});

async function server(extra) {
  const s = await startServer({ extra });
  servers.push(s);
  return s;
}

/** Resolves with the next value pushed to `queue` (within `ms`). */
function inbox() {
  const items = [];
  const waiters = [];
  return {
    push(v) {
      const w = waiters.shift();
      if (w) w(v);
      else items.push(v);
    },
    next(ms = 5000) {
      if (items.length) return Promise.resolve(items.shift());
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`nothing within ${ms} ms`)), ms);
        waiters.push((v) => (clearTimeout(t), resolve(v)));
      });
    },
    get length() {
      return items.length;
    },
  };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test("channels, walkers, presence, direct sends and close", async () => {
  const s = await server("[limits]\nrate_limit_max_requests = 0");
  const states = [];
  const ann = createClient(s.url, { token: token("ann") });
  ann.on("state", (st) => states.push(st));
  const connected = await ann.ready;
  assert.equal(connected.type, "connected");
  assert.equal(ann.state, "open");

  const got = inbox();
  const sub = await ann.subscribe("room", (data) => got.push(data));
  const bob = createClient(s.url, { token: token("bob") });
  await bob.ready;
  const { delivered } = await bob.publish("room", { text: "hi" });
  assert.equal(delivered, 1);
  assert.deepEqual(await got.next(), { text: "hi" });

  const reply = await bob.call("echo", { val: 1 });
  assert.deepEqual(reply.returns, { val: 1 });
  await assert.rejects(bob.call("no-such-walker"), (e) => e.code === "NOT_FOUND");
  await assert.rejects(bob.publish("room", { type: "connection" }), (e) => e.code === "BAD_REQUEST");

  await ann.join("room", { name: "Ann" });
  const members = await bob.presence("room");
  assert.deepEqual(members.map((m) => m.info.name), ["Ann"]);

  const directs = inbox();
  ann.on("direct", (data) => directs.push(data));
  await bob.send({ users: ["ann"], data: { psst: true } });
  assert.deepEqual(await directs.next(), { psst: true });

  await sub.unsubscribe();
  await bob.publish("room", { text: "unheard" });
  await sleep(200);
  assert.equal(got.length, 0, "no delivery after unsubscribe");

  // Pending requests are rejected on close, and nothing reconnects.
  const pending = ann.call("echo", { slow: true });
  const closing = ann.close();
  await assert.rejects(pending, (e) => ["CLOSED", "CONNECTION_LOST"].includes(e.code));
  await closing;
  assert.equal(ann.state, "closed");
  assert.deepEqual(states.slice(-1), ["closed"]);
  await assert.rejects(ann.publish("room", 1), (e) => e.code === "CLOSED");
  await bob.close();
});

test("resources: filtered events, resumed across a reconnect", async () => {
  const s = await server("[resources.orders]\n[limits]\nrate_limit_max_requests = 0");
  const watcher = createClient(s.url);
  const events = inbox();
  await watcher.subscribe({ resource: "orders" }, (ev) => events.push(ev), { filter: { k: 1 } });
  const writer = createClient(s.url);
  for (const [id, k] of [["a", 1], ["b", 2], ["c", 1]]) {
    await writer.request({ type: "insert", resource: "orders", data: { id, k } });
  }
  assert.deepEqual([(await events.next()).data.id, (await events.next()).data.id], ["a", "c"]);

  // Drop the watcher's socket under it: it reconnects and resumes with
  // `since`, so the writes made meanwhile arrive once, in order.
  watcher.ws.close(4999, "test drop");
  await writer.request({ type: "insert", resource: "orders", data: { id: "d", k: 1 } });
  await writer.request({ type: "update", resource: "orders", id: "a", data: { v: 2 } });
  const missed = [await events.next(), await events.next()];
  assert.deepEqual(missed.map((e) => [e.event, e.data.id]), [["insert", "d"], ["update", "a"]]);
  await sleep(300);
  assert.equal(events.length, 0, "nothing twice");
  await watcher.close();
  await writer.close();
});

test("a server restart mid-stream loses and repeats nothing on a history channel", async () => {
  const redis = process.env.SB_REDIS_URL;
  assert.ok(redis, "SB_REDIS_URL is set by the Rust harness");
  // History lives in Redis, so it outlives the node.
  const s = await server(`[cluster]\nredis_url = "${redis}"\n[channels."hist:*"]\nhistory_size = 1000\n[limits]\nrate_limit_max_requests = 0`);
  const seen = [];
  const reader = createClient(s.url, { backoff: { min: 50, max: 500 } });
  await reader.subscribe("hist:feed", (data, frame) => seen.push([data.n, frame.offset]));
  const writer = createClient(s.url, { backoff: { min: 50, max: 500 } });
  await writer.ready;
  const acked = [];
  let restarted = false;
  for (let n = 0; n < 60; n++) {
    if (n === 20) {
      await s.kill();
      setTimeout(() => s.start().then(() => (restarted = true)), 300);
    }
    // Retry until acknowledged (a publish lost with the connection is sent again).
    for (;;) {
      try {
        await writer.publish("hist:feed", { n });
        acked.push(n);
        break;
      } catch (e) {
        assert.ok(["CONNECTION_LOST", "TIMEOUT"].includes(e.code), String(e));
        await sleep(50);
      }
    }
  }
  assert.ok(restarted, "the server came back");
  const deadline = Date.now() + 10_000;
  while (new Set(seen.map(([n]) => n)).size < acked.length && Date.now() < deadline) await sleep(50);
  const offsets = seen.map(([, o]) => o);
  assert.deepEqual(offsets, [...offsets].sort((a, b) => a - b), "in order");
  assert.equal(new Set(offsets).size, offsets.length, "no message twice");
  for (let i = 1; i < offsets.length; i++) assert.equal(offsets[i], offsets[i - 1] + 1, `no gap after offset ${offsets[i - 1]}`);
  for (const n of acked) assert.ok(seen.some(([m]) => m === n), `acknowledged message ${n} arrived`);
  await reader.close();
  await writer.close();
});

test("getToken refreshes the token before it expires", async () => {
  const s = await server("[auth]\nexpiry_warning_ms = 1500");
  let issued = 0;
  const getToken = () => {
    issued += 1;
    return token("ann", { exp: Math.floor(Date.now() / 1000) + 3 });
  };
  const ann = createClient(s.url, { getToken });
  const got = inbox();
  await ann.subscribe("news", (d) => got.push(d));
  await sleep(5000);
  assert.equal(ann.state, "open", "still connected past the first token's exp");
  assert.ok(issued >= 2, `getToken was called again (${issued})`);
  const other = createClient(s.url);
  await other.publish("news", { still: "here" });
  assert.deepEqual(await got.next(), { still: "here" });
  await ann.close();
  await other.close();
});
