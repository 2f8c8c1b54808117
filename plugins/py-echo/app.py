"""py-echo: a Switchboard plugin in Python, built with componentize-py.

Walker `py_echo` returns {"echo": <context>, "lang": "python"} and reports
it once; anyone may call it (`anonymous=True`, jac-cloud's `auth: False`). The other interfaces are exported as no-ops because the world
requires them; the manifest tells the host to use only the walker.
"""

import json

from wit_world import exports
from wit_world.imports import types


class Meta(exports.Meta):
    def describe(self) -> types.Manifest:
        walker = types.WalkerDecl("py_echo", types.Transports.WS | types.Transports.HTTP, True)
        return types.Manifest("py-echo", "1.0.0", [walker], [], [])


class Walker(exports.Walker):
    def call(self, request: types.WalkerRequest) -> types.WalkerReply:
        value = json.dumps({"echo": json.loads(request.context), "lang": "python"})
        return types.WalkerReply(200, [value], value)


class Guard(exports.Guard):
    def check(self, request: types.GuardRequest) -> types.Verdict:
        return types.Verdict_Allow()


class Socket(exports.Socket):
    def on_open(self, conn: types.SocketOpen) -> None:
        return None

    def on_message(self, conn_id: str, message: str) -> None:
        return None

    def on_channel(self, conn_id: str, message: types.ChannelMessage) -> None:
        return None

    def on_presence(self, conn_id: str, event: types.PresenceEvent) -> None:
        return None

    def on_close(self, conn_id: str) -> None:
        return None
