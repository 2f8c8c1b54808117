"""py-echo: a Switchboard plugin in Python, built with componentize-py.

It serves the polyglot examples' contract, the same in every language
(plugins/rust-echo, plugins/js-echo, plugins/c-echo):
- walker `py_echo` returns and reports {"echo": <context>, "lang": "python"};
  anyone may call it (`anonymous=True`, jac-cloud's `auth: False`);
- guard `py:*` refuses a publish whose message has a "blocked" field;
- socket `/py-echo` answers each message with {"lang": "python", "echo": <message>},
  and each binary frame with the same bytes.
"""

import json

from wit_world import exports
from wit_world.imports import host, types

LANG = "python"


class Meta(exports.Meta):
    def describe(self) -> types.Manifest:
        walker = types.WalkerDecl("py_echo", types.Transports.WS | types.Transports.HTTP, True)
        guard = types.GuardDecl("py:*", [types.Operation.PUBLISH])
        return types.Manifest("py-echo", "1.1.0", [walker], [guard], ["/py-echo"])


class Walker(exports.Walker):
    def call(self, request: types.WalkerRequest) -> types.WalkerReply:
        value = json.dumps({"echo": json.loads(request.context), "lang": LANG})
        return types.WalkerReply(200, [value], value)


class Guard(exports.Guard):
    def check(self, request: types.GuardRequest) -> types.Verdict:
        payload = json.loads(request.payload)
        if isinstance(payload, dict) and "blocked" in payload:
            return types.Verdict_Deny(f"blocked by {LANG}")
        return types.Verdict_Allow()


class Socket(exports.Socket):
    def on_open(self, conn: types.SocketOpen) -> None:
        return None

    def on_message(self, conn_id: str, message: str) -> None:
        try:
            echo = json.loads(message)
        except ValueError:
            echo = message
        host.notify_self(json.dumps({"lang": LANG, "echo": echo}))

    def on_binary(self, conn_id: str, data: bytes) -> None:
        host.notify_self_binary(data)

    def on_channel(self, conn_id: str, message: types.ChannelMessage) -> None:
        return None

    def on_presence(self, conn_id: str, event: types.PresenceEvent) -> None:
        return None

    def on_close(self, conn_id: str) -> None:
        return None
