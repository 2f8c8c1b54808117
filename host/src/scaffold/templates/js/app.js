// {{name}}: a Switchboard plugin in JavaScript (made by `switchboard plugin new`).
// `switchboard plugin build` turns it into `{{name}}.wasm` in the plugins
// folder (with componentize-js); the server loads it without a restart.
//
// - walker `{{ident}}`: returns (and reports) {"from": "{{name}}", "got": <context>}
// - guard on `{{name}}:*`: a publish whose message has a "blocked" field is refused

export const meta = {
  describe() {
    return {
      name: "{{name}}",
      version: "0.1.0",
      walkers: [{ name: "{{ident}}", transports: { ws: true, http: true }, anonymous: true }],
      guards: [{ target: "{{name}}:*", operations: ["publish"] }],
      sockets: [],
    };
  },
};

export const walker = {
  call(request) {
    const value = JSON.stringify({ from: "{{name}}", got: JSON.parse(request.context) });
    return { status: 200, reports: [value], returns: value };
  },
};

export const guard = {
  check(request) {
    const message = JSON.parse(request.payload);
    if (message && typeof message === "object" && "blocked" in message) {
      return { tag: "deny", val: "blocked by {{name}}" };
    }
    return { tag: "allow" };
  },
};

// The world exports sockets too; the manifest lists none, so the host never
// calls these.
export const socket = {
  onOpen() {},
  onMessage() {},
  onBinary() {},
  onChannel() {},
  onPresence() {},
  onClose() {},
};
