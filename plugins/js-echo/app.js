// js-echo: a Switchboard plugin in JavaScript, built with componentize-js
// (scripts/build-guests.sh). It serves the polyglot examples' contract,
// the same in every language (plugins/c-echo, plugins/py-echo, plugins/rust-echo):
//   walker `js_echo`  returns and reports {"echo": <context>, "lang": "js"};
//                     anonymous callers allowed (jac-cloud's `auth: False`)
//   guard  `js:*`     refuses a publish whose message has a "blocked" field
//   socket `/js-echo` answers each message with {"lang": "js", "echo": <message>},
//                     and each binary frame with the same bytes
import { notifySelf, notifySelfBinary } from "switchboard:plugin/host@0.1.0";

const LANG = "js";

export const meta = {
  describe() {
    return {
      name: "js-echo",
      version: "1.0.0",
      walkers: [{ name: "js_echo", transports: { ws: true, http: true }, anonymous: true }],
      guards: [{ target: "js:*", operations: ["publish"] }],
      sockets: ["/js-echo"],
    };
  },
};

export const walker = {
  call(request) {
    const value = JSON.stringify({ echo: JSON.parse(request.context), lang: LANG });
    return { status: 200, reports: [value], returns: value };
  },
};

export const guard = {
  check(request) {
    const payload = JSON.parse(request.payload);
    if (payload && typeof payload === "object" && "blocked" in payload) {
      return { tag: "deny", val: `blocked by ${LANG}` };
    }
    return { tag: "allow" };
  },
};

export const socket = {
  onOpen(_conn) {},
  onMessage(_connId, message) {
    let echo;
    try {
      echo = JSON.parse(message);
    } catch {
      echo = message;
    }
    notifySelf(JSON.stringify({ lang: LANG, echo }));
  },
  onBinary(_connId, data) {
    notifySelfBinary(data);
  },
  onChannel(_connId, _message) {},
  onPresence(_connId, _event) {},
  onClose(_connId) {},
};
