// switchboard-client: the native protocol (ws://host:3001/ws) for apps.
//
// One connection that reconnects by itself (jittered exponential backoff),
// re-authenticates with a fresh token before the old one expires, and
// resubscribes after every reconnect with `since` — the last history
// offset of a channel, the last `seq` of a resource — dropping anything it
// already delivered, so a handler sees each message once across
// reconnects. Requests are correlated by `requestId`; pending ones are
// rejected when the connection drops or is closed.
//
// Plain ESM, no dependencies: browsers and Node >= 22 have `WebSocket`;
// on Node 20 run with `--experimental-websocket` or pass one
// (`{ WebSocket }` from the `ws` package).

const STATES = ["connecting", "open", "closed"];

/** An error frame from the server (or from the client, for lost connections). */
export class SwitchboardError extends Error {
  constructor(code, message) {
    super(`${code}: ${message}`);
    this.name = "SwitchboardError";
    this.code = code;
    this.detail = message;
  }
}

/** The seconds-since-epoch `exp` of a JWT, if it has one. */
function expiryOf(token) {
  try {
    const part = String(token).split(".")[1];
    if (!part) return null;
    const json = atob(part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "="));
    const exp = JSON.parse(json).exp;
    return typeof exp === "number" ? exp : null;
  } catch {
    return null;
  }
}

class Subscription {
  constructor(client, key, frame, handler) {
    this.client = client;
    this.key = key;
    this.frame = frame; // the subscribe frame, without requestId
    this.handler = handler;
    this.position = null; // channels: {offset, epoch}
    this.seq = null; // resources: last seq delivered
    this.recovered = undefined;
  }

  /** Stops delivery and tells the server. */
  async unsubscribe() {
    this.client.subs.delete(this.key);
    const target = this.frame.channel !== undefined ? { channel: this.frame.channel } : { resource: this.frame.resource };
    if (this.client.state === "open") {
      await this.client.request({ type: "unsubscribe", ...target });
    }
  }

  /** The frame to (re)subscribe with, resuming from what was delivered. */
  resumeFrame() {
    const frame = { ...this.frame };
    if (this.frame.channel !== undefined && this.position) frame.since = this.position;
    if (this.frame.resource !== undefined && this.seq !== null) frame.since = this.seq;
    return frame;
  }

  /** Delivers an event unless it was delivered before. */
  deliver(frame) {
    if (frame.type === "message") {
      if (typeof frame.offset === "number" && typeof frame.epoch === "string") {
        const seen = this.position;
        if (seen && seen.epoch === frame.epoch && frame.offset <= seen.offset) return;
        this.position = { offset: frame.offset, epoch: frame.epoch };
      }
    } else if (frame.type === "event" && typeof frame.seq === "number") {
      if (this.seq !== null && frame.seq <= this.seq) return;
      this.seq = frame.seq;
    }
    try {
      this.handler(frame.type === "message" ? frame.data : frame, frame);
    } catch (e) {
      this.client.emit("error", e);
    }
  }
}

class Client {
  constructor(url, options = {}) {
    this.url = url;
    this.options = options;
    this.WS = options.WebSocket || globalThis.WebSocket;
    if (!this.WS) throw new Error("no WebSocket: pass { WebSocket } (e.g. from the `ws` package) or run Node with --experimental-websocket");
    this.token = options.token || null;
    this.state = "connecting";
    this.subs = new Map();
    this.pending = new Map();
    this.listeners = new Map();
    this.nextId = 1;
    this.attempt = 0;
    this.closedByUser = false;
    this.waiters = [];
    this.ready = new Promise((resolve, reject) => {
      this.readyResolve = resolve;
      this.readyReject = reject;
    });
    this.ready.catch(() => {});
    this.connect();
  }

  /** Listens to `direct`, `presence`, `notify`, `state`, `error`; returns a function that stops. */
  on(event, handler) {
    if (!this.listeners.has(event)) this.listeners.set(event, new Set());
    this.listeners.get(event).add(handler);
    return () => this.listeners.get(event)?.delete(handler);
  }

  emit(event, ...args) {
    for (const handler of this.listeners.get(event) || []) {
      try {
        handler(...args);
      } catch (e) {
        if (event !== "error") this.emit("error", e);
      }
    }
  }

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.emit("state", state);
  }

  async connect() {
    if (this.closedByUser) return;
    this.setState("connecting");
    let token = this.token;
    if (this.options.getToken) {
      try {
        token = await this.options.getToken();
        this.token = token;
      } catch (e) {
        this.emit("error", e);
      }
    }
    if (this.closedByUser) return;
    let url = this.url;
    if (token) url += (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token);
    let ws;
    try {
      ws = new this.WS(url);
    } catch (e) {
      this.emit("error", e);
      this.retry();
      return;
    }
    this.ws = ws;
    // Each socket ends once: Node 20's WebSocket fires only `error` (no
    // `close`) when the connection is refused, browsers fire both.
    let ended = false;
    const end = (e) => {
      if (ended) return;
      ended = true;
      if (this.ws === ws) this.onClose(e);
    };
    ws.onmessage = (m) => this.onFrame(typeof m.data === "string" ? m.data : String(m.data));
    ws.onclose = (e) => end(e);
    ws.onerror = () => {
      if (ws.readyState !== 1) end({ code: 1006, reason: "connection failed" });
    };
  }

  retry() {
    if (this.closedByUser) return;
    const { min = 250, max = 10_000 } = this.options.backoff || {};
    const ceiling = Math.min(max, min * 2 ** this.attempt);
    this.attempt += 1;
    // Full jitter: a fleet of clients does not come back in lockstep.
    const delay = Math.random() * ceiling;
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  onClose(event) {
    clearTimeout(this.refreshTimer);
    this.ws = null;
    const lost = new SwitchboardError("CONNECTION_LOST", `the connection closed (${event?.code ?? "?"} ${event?.reason ?? ""})`.trim());
    for (const [, p] of this.pending) p.reject(lost);
    this.pending.clear();
    if (this.closedByUser) {
      this.setState("closed");
      return;
    }
    if (event && (event.code === 1008 || event.code === 4000)) {
      // Refused (auth) or disconnected by an operator: reconnecting with
      // the same credentials would be refused again, unless getToken can
      // provide new ones.
      if (!this.options.getToken || event.code === 4000) {
        this.setState("closed");
        this.readyReject(new SwitchboardError(event.code === 4000 ? "DISCONNECTED" : "UNAUTHORIZED", event.reason || "closed"));
        return;
      }
    }
    this.retry();
  }

  onFrame(text) {
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      return;
    }
    if (frame.type === "connected") {
      this.onConnected(frame);
      return;
    }
    const id = frame.requestId;
    if (id !== undefined && this.pending.has(String(id))) {
      const p = this.pending.get(String(id));
      this.pending.delete(String(id));
      if (frame.type === "error") p.reject(new SwitchboardError(frame.code, frame.message));
      else p.resolve(frame);
      return;
    }
    switch (frame.type) {
      case "message": {
        const sub = this.subs.get(`channel:${frame.channel}`);
        if (sub) sub.deliver(frame);
        return;
      }
      case "event": {
        const sub = this.subs.get(`resource:${frame.resource}`);
        if (sub) sub.deliver(frame);
        return;
      }
      case "direct":
        this.emit("direct", frame.data, frame);
        return;
      case "presence":
        this.emit("presence", frame);
        return;
      case "unsubscribed": {
        // The server dropped a subscription (re-authorization).
        this.subs.delete(frame.channel !== undefined ? `channel:${frame.channel}` : `resource:${frame.resource}`);
        this.emit("notify", frame);
        return;
      }
      case "error":
        if (frame.code === "TOKEN_EXPIRED" && this.options.getToken) this.refresh();
        this.emit("error", new SwitchboardError(frame.code, frame.message));
        return;
      default:
        this.emit("notify", frame);
    }
  }

  async onConnected(frame) {
    this.clientId = frame.clientId;
    this.attempt = 0;
    this.scheduleRefresh();
    // Resubscribe before anything else is sent, resuming each stream.
    const resubscribed = [...this.subs.values()].map((sub) =>
      this.transmit(sub.resumeFrame()).then(
        (reply) => (sub.recovered = reply.recovered),
        (e) => this.emit("error", e),
      ),
    );
    this.setState("open");
    for (const w of this.waiters.splice(0)) w();
    await Promise.all(resubscribed);
    this.readyResolve(frame);
  }

  scheduleRefresh() {
    clearTimeout(this.refreshTimer);
    if (!this.options.getToken) return;
    const exp = expiryOf(this.token);
    if (!exp) return;
    const left = exp * 1000 - Date.now();
    // A third of what is left, at most a minute before expiry.
    const at = Math.max(0, left - Math.min(60_000, left / 3));
    this.refreshTimer = setTimeout(() => this.refresh(), at);
  }

  async refresh() {
    try {
      const token = await this.options.getToken();
      this.token = token;
      if (this.state === "open") await this.transmit({ type: "auth", token });
      this.scheduleRefresh();
    } catch (e) {
      this.emit("error", e);
    }
  }

  /** Resolves once the connection is open. */
  opened() {
    if (this.state === "open") return Promise.resolve();
    if (this.closedByUser) return Promise.reject(new SwitchboardError("CLOSED", "the client is closed"));
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Sends one request on the open connection and waits for its reply. */
  transmit(frame) {
    const ws = this.ws;
    if (!ws || ws.readyState !== 1) return Promise.reject(new SwitchboardError("CONNECTION_LOST", "not connected"));
    const requestId = String(this.nextId++);
    const timeout = this.options.requestTimeout ?? 10_000;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(requestId);
        reject(new SwitchboardError("TIMEOUT", `no reply in ${timeout} ms`));
      }, timeout);
      this.pending.set(requestId, {
        resolve: (v) => (clearTimeout(timer), resolve(v)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      ws.send(JSON.stringify({ ...frame, requestId }));
    });
  }

  /** Waits for the connection, then sends a request. */
  async request(frame) {
    await this.opened();
    return this.transmit(frame);
  }

  /**
   * Subscribes to a channel (`"name"`) or a resource (`{ resource }`);
   * `handler(data, frame)` gets each message (a channel's payload, a
   * resource's event frame) once.
   */
  async subscribe(target, handler, options = {}) {
    const frame = { type: "subscribe" };
    let key;
    if (typeof target === "string") {
      frame.channel = target;
      key = `channel:${target}`;
    } else if (target && typeof target.resource === "string") {
      frame.resource = target.resource;
      key = `resource:${target.resource}`;
      if (options.events) frame.events = options.events;
    } else {
      throw new TypeError("subscribe(channel, handler) or subscribe({ resource }, handler)");
    }
    if (options.filter) frame.filter = options.filter;
    const sub = new Subscription(this, key, frame, handler);
    if (options.since !== undefined) {
      if (frame.channel !== undefined) sub.position = options.since;
      else sub.seq = options.since;
    }
    this.subs.set(key, sub);
    await this.opened();
    try {
      const reply = await this.transmit(sub.resumeFrame());
      sub.recovered = reply.recovered;
      if (frame.channel !== undefined && !sub.position && typeof reply.offset === "number") {
        sub.position = { offset: reply.offset, epoch: reply.epoch };
      }
      return sub;
    } catch (e) {
      if (this.subs.get(key) === sub && e.code !== "CONNECTION_LOST") this.subs.delete(key);
      if (e.code === "CONNECTION_LOST") return sub; // resubscribed on reconnect
      throw e;
    }
  }

  /** Publishes to a channel; resolves with `{ delivered, offset?, epoch? }`. */
  async publish(channel, message) {
    const reply = await this.request({ type: "publish", channel, message });
    return { delivered: reply.delivered, offset: reply.offset, epoch: reply.epoch };
  }

  /** Sends to users, client ids or channels; resolves with `{ delivered }`. */
  async send({ users, clients, channels, data }) {
    const reply = await this.request({ type: "send", users, clients, channels, data });
    return { delivered: reply.delivered };
  }

  /** Calls a walker; resolves with its reply (`{ status, reports, returns }`). */
  async call(walker, context = {}) {
    return this.request({ type: "walker", walker, context });
  }

  /** Joins a channel's presence list. */
  async join(channel, info = {}) {
    await this.request({ type: "join", channel, info });
  }

  /** Leaves a channel's presence list. */
  async leave(channel) {
    const reply = await this.request({ type: "leave", channel });
    return reply.wasPresent;
  }

  /** A channel's presence list. */
  async presence(channel) {
    const reply = await this.request({ type: "presence", channel });
    return reply.members;
  }

  /** Re-authenticates with another token (or none) without reconnecting. */
  async auth(token) {
    this.token = token;
    const reply = await this.request(token ? { type: "auth", token } : { type: "auth" });
    this.scheduleRefresh();
    return reply;
  }

  /** Closes for good: pending requests are rejected, no reconnect. */
  async close() {
    this.closedByUser = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.refreshTimer);
    const closed = new SwitchboardError("CLOSED", "the client was closed");
    for (const [, p] of this.pending) p.reject(closed);
    this.pending.clear();
    this.readyReject(closed);
    const ws = this.ws;
    if (!ws || ws.readyState === 3) {
      this.setState("closed");
      return;
    }
    await new Promise((resolve) => {
      const done = () => resolve();
      ws.addEventListener?.("close", done);
      setTimeout(done, 2000);
      ws.close(1000, "bye");
    });
    this.setState("closed");
  }
}

/** A client for `url` (`ws://host:3001/ws`); `options`: token, getToken, WebSocket, backoff, requestTimeout. */
export function createClient(url, options) {
  return new Client(url, options);
}

export { STATES };
