// Test support: a real Switchboard process on a free loopback port, HS256
// tokens minted with the test secret. Paths come from the environment the
// Rust harness (tests/all/sdk.rs) sets: SB_EXE, SB_CHAT_WASM, SB_REDIS_URL.

import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

export const SECRET = "switchboard-test-secret";

/** Headless Chromium on a closed network: no background connections out. */
export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export function token(sub, claims = {}) {
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString("base64url");
  const body = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ sub, exp: Math.floor(Date.now() / 1000) + 3600, ...claims })}`;
  return `${body}.${createHmac("sha256", SECRET).update(body).digest("base64url")}`;
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function need(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run these tests through \`cargo test -p integration-tests --test all sdk\``);
  return value;
}

/** Starts a server; `extra` is TOML placed before [store] / [plugins]. */
export async function startServer({ extra = "", port } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "sb-js-"));
  const plugins = join(dir, "plugins");
  mkdirSync(plugins);
  copyFileSync(need("SB_CHAT_WASM"), join(plugins, "chat.wasm"));
  port = port ?? (await freePort());
  const config = join(dir, "switchboard.toml");
  writeFileSync(
    config,
    `listen = "127.0.0.1:${port}"\n${extra}\n[store]\npath = "${join(dir, "data.redb")}"\n[plugins]\ndir = "${plugins}"\nwatch = false\ncache_dir = "${join(dir, "cache")}"\n`,
  );
  const server = { port, url: `ws://127.0.0.1:${port}/ws`, http: `http://127.0.0.1:${port}`, dir, config };
  server.start = async () => {
    const proc = spawn(need("SB_EXE"), ["serve", "--config", config], {
      env: { ...process.env, SWITCHBOARD_AUTH__JWT_SECRET: SECRET, RUST_LOG: "error" },
      stdio: ["ignore", "pipe", "inherit"],
    });
    server.proc = proc;
    const lines = createInterface({ input: proc.stdout });
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("the server did not start in 30 s")), 30_000);
      proc.once("exit", (code) => reject(new Error(`the server exited with ${code}`)));
      lines.once("line", (line) => {
        clearTimeout(timer);
        if (line.includes("listening")) resolve();
        else reject(new Error(`unexpected banner: ${line}`));
      });
    });
    lines.on("line", () => {});
  };
  /** SIGKILL, like a crash. */
  server.kill = async () => {
    const proc = server.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    await new Promise((resolve) => {
      proc.once("exit", resolve);
      proc.kill("SIGKILL");
    });
  };
  server.stop = server.kill;
  await server.start();
  return server;
}
