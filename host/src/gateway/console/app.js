// The Switchboard console: plain JavaScript, no build step. It only uses
// the server HTTP API (/api/*, with the admin key as a Bearer token), the
// public /metrics text, and the native protocol (/ws) to watch a channel.

const $ = (sel) => document.querySelector(sel);
const state = { key: sessionStorage.getItem("sb-console-key") || "", timer: null, cursor: null, ws: null };
const series = new Map(); // metric name -> recent values
const CHARTED = [
  ["switchboard_connections", "connections open", false],
  ["switchboard_messages_in_total", "frames in /s", true],
  ["switchboard_messages_out_total", "frames out /s", true],
  ["switchboard_errors_total", "errors /s", true],
  ["switchboard_plugin_calls_total", "plugin calls /s", true],
  ["switchboard_disconnects_total", "disconnects /s", true],
];

function text(value) {
  return value === null || value === undefined ? "" : String(value);
}

function cell(row, value, cls) {
  const td = document.createElement("td");
  td.textContent = text(value);
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}

async function api(path, options = {}) {
  const response = await fetch(path, {
    ...options,
    headers: { Authorization: `Bearer ${state.key}`, "Content-Type": "application/json" },
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(`${body.code || response.status}: ${body.message || ""}`);
  return body;
}

function setStatus(message, error) {
  const el = $("#status");
  el.textContent = message;
  el.className = error ? "error" : "muted";
}

async function refresh() {
  try {
    const [info, connections, channels] = await Promise.all([
      api("/api/info"),
      api("/api/connections"),
      api("/api/channels"),
    ]);
    $("#node").textContent = `v${info.version} · ${info.store}` + (info.node ? ` · node ${info.node} of ${info.nodes.length}` : "");
    renderConnections(connections.connections);
    renderChannels(channels.channels, connections.connections);
    renderPlugins(info.plugins);
    await renderCounters();
    setStatus(`updated ${new Date().toLocaleTimeString()}`);
  } catch (e) {
    setStatus(String(e.message || e), true);
  }
}

function renderConnections(list) {
  $("#connection-count").textContent = `(${list.length})`;
  const body = $("#connections tbody");
  body.replaceChildren();
  for (const c of list) {
    const row = document.createElement("tr");
    row.dataset.client = c.clientId;
    cell(row, c.clientId);
    cell(row, c.userId || "anonymous", c.userId ? "" : "muted");
    cell(row, c.dialect);
    cell(row, [...c.channels, ...c.resources.map((r) => `resource:${r}`)].join(", "));
    cell(row, c.presence.join(", "));
    cell(row, `${c.queuedBytes} B`);
    const kick = document.createElement("button");
    kick.textContent = "disconnect";
    kick.onclick = () => api("/api/disconnect", { method: "POST", body: JSON.stringify({ clients: [c.clientId], reason: "disconnected from the console" }) }).then(refresh);
    row.appendChild(document.createElement("td")).appendChild(kick);
    body.appendChild(row);
  }
}

function renderChannels(list, connections) {
  const body = $("#channels tbody");
  body.replaceChildren();
  const present = new Map();
  for (const c of connections) for (const p of c.presence) present.set(p, (present.get(p) || 0) + 1);
  const names = new Set([...list.map((c) => c.name), ...present.keys()]);
  for (const name of [...names].sort()) {
    const row = document.createElement("tr");
    const link = document.createElement("a");
    link.href = "#";
    link.textContent = name;
    link.onclick = (e) => { e.preventDefault(); showPresence(name); };
    row.appendChild(document.createElement("td")).appendChild(link);
    cell(row, (list.find((c) => c.name === name) || { subscribers: 0 }).subscribers);
    cell(row, present.get(name) || 0);
    body.appendChild(row);
  }
}

async function showPresence(channel) {
  const reply = await api(`/api/presence/${encodeURIComponent(channel)}`);
  const lines = reply.members.map((m) => `${m.userId || "anonymous"} ${JSON.stringify(m.info)}`);
  $("#presence").textContent = `${channel}: ${lines.length ? lines.join(" · ") : "nobody present"}`;
}

function renderPlugins(list) {
  const body = $("#plugins tbody");
  body.replaceChildren();
  for (const p of list) {
    const row = document.createElement("tr");
    for (const v of [p.file, p.name, p.version, p.state, (p.walkers || []).join(", "), (p.guards || []).join(", "), (p.sockets || []).join(", ")]) cell(row, v);
    cell(row, p.error, "error");
    body.appendChild(row);
  }
}

function parseMetrics(textBody) {
  const totals = new Map();
  for (const line of textBody.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const name = line.split(/[{ ]/)[0];
    const value = Number(line.slice(line.lastIndexOf(" ") + 1));
    if (Number.isFinite(value)) totals.set(name, (totals.get(name) || 0) + value);
  }
  return totals;
}

async function renderCounters() {
  const totals = parseMetrics(await (await fetch("/metrics")).text());
  const charts = $("#charts");
  for (const [name, label, rate] of CHARTED) {
    const values = series.get(name) || [];
    values.push({ at: Date.now(), total: totals.get(name) || 0 });
    if (values.length > 60) values.shift();
    series.set(name, values);
    const points = rate
      ? values.slice(1).map((v, i) => (v.total - values[i].total) / Math.max((v.at - values[i].at) / 1000, 0.001))
      : values.map((v) => v.total);
    let box = charts.querySelector(`[data-metric="${name}"]`);
    if (!box) {
      box = document.createElement("div");
      box.className = "chart";
      box.dataset.metric = name;
      box.innerHTML = '<b></b><svg viewBox="0 0 100 40" preserveAspectRatio="none"><polyline/></svg>';
      charts.appendChild(box);
    }
    const now = points.length ? points[points.length - 1] : 0;
    box.querySelector("b").textContent = `${label}: ${Math.round(now * 10) / 10}`;
    const max = Math.max(1, ...points);
    const step = 100 / Math.max(points.length - 1, 1);
    box.querySelector("polyline").setAttribute("points", points.map((v, i) => `${i * step},${40 - (v / max) * 38}`).join(" "));
  }
}

async function loadResources() {
  const { resources } = await api("/api/resources");
  const select = $("#resource");
  select.replaceChildren(...resources.map((r) => new Option(r, r)));
  if (resources.length) await loadRecords(true);
}

async function loadRecords(fresh) {
  const name = $("#resource").value;
  if (fresh) state.cursor = null;
  const query = new URLSearchParams({ limit: "50" });
  if (state.cursor) query.set("cursor", state.cursor);
  const page = await api(`/api/resources/${encodeURIComponent(name)}?${query}`);
  const head = $("#records thead");
  const body = $("#records tbody");
  if (fresh) { head.replaceChildren(); body.replaceChildren(); }
  const columns = [...new Set(page.data.flatMap((r) => Object.keys(r)))];
  if (fresh || !head.children.length) {
    const row = document.createElement("tr");
    for (const c of columns) { const th = document.createElement("th"); th.textContent = c; row.appendChild(th); }
    head.appendChild(row);
  }
  for (const record of page.data) {
    const row = document.createElement("tr");
    for (const c of columns) cell(row, typeof record[c] === "object" ? JSON.stringify(record[c]) : record[c]);
    body.appendChild(row);
  }
  state.cursor = page.cursor;
  $("#more").hidden = !page.cursor;
}

function watch(channel) {
  if (state.ws) state.ws.close();
  const log = $("#tail-log");
  log.textContent = "";
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws?token=${encodeURIComponent(state.key)}`;
  const ws = new WebSocket(url);
  state.ws = ws;
  ws.onopen = () => ws.send(JSON.stringify({ type: "subscribe", channel, requestId: "console" }));
  ws.onmessage = (m) => {
    log.textContent = `${m.data}\n${log.textContent}`.slice(0, 20000);
  };
}

function start() {
  clearInterval(state.timer);
  refresh();
  loadResources().catch((e) => setStatus(String(e.message || e), true));
  state.timer = setInterval(refresh, 2000);
}

$("#login").onsubmit = (e) => {
  e.preventDefault();
  state.key = $("#key").value.trim();
  sessionStorage.setItem("sb-console-key", state.key);
  start();
};
$("#resource").onchange = () => loadRecords(true);
$("#more").onclick = () => loadRecords(false);
$("#tail").onsubmit = (e) => { e.preventDefault(); watch($("#tail-channel").value.trim()); };
const fromHash = new URLSearchParams(location.hash.slice(1)).get("key");
if (fromHash) { state.key = fromHash; sessionStorage.setItem("sb-console-key", fromHash); history.replaceState(null, "", location.pathname); }
if (state.key) { $("#key").value = state.key; start(); }
