"""{{name}}: a Switchboard plugin in Python (made by `switchboard plugin new`).

`switchboard plugin build` turns it into `{{name}}.wasm` in the plugins
folder (with componentize-py); the server loads it without a restart.

- walker `{{ident}}`: returns (and reports) {"from": "{{name}}", "got": <context>}
- guard on `{{name}}:*`: a publish whose message has a "blocked" field is refused
"""

import json

from wit_world import exports
from wit_world.imports import types


class Meta(exports.Meta):
    def describe(self) -> types.Manifest:
        walker = types.WalkerDecl("{{ident}}", types.Transports.WS | types.Transports.HTTP, True)
        guard = types.GuardDecl("{{name}}:*", [types.Operation.PUBLISH])
        return types.Manifest("{{name}}", "0.1.0", [walker], [guard], [])


class Walker(exports.Walker):
    def call(self, request: types.WalkerRequest) -> types.WalkerReply:
        value = json.dumps({"from": "{{name}}", "got": json.loads(request.context)})
        return types.WalkerReply(200, [value], value)


class Guard(exports.Guard):
    def check(self, request: types.GuardRequest) -> types.Verdict:
        message = json.loads(request.payload)
        if isinstance(message, dict) and "blocked" in message:
            return types.Verdict_Deny("blocked by {{name}}")
        return types.Verdict_Allow()


# The world exports sockets too; the manifest lists none, so the host never
# calls these.
class Socket(exports.Socket):
    def on_open(self, conn: types.SocketOpen) -> None:
        return None

    def on_message(self, conn_id: str, message: str) -> None:
        return None

    def on_binary(self, conn_id: str, data: bytes) -> None:
        return None

    def on_channel(self, conn_id: str, message: types.ChannelMessage) -> None:
        return None

    def on_presence(self, conn_id: str, event: types.PresenceEvent) -> None:
        return None

    def on_close(self, conn_id: str) -> None:
        return None
