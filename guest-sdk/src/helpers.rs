//! Small conveniences over the raw bindings: a manifest builder, reply and
//! error constructors, and host calls that take `serde_json::Value` instead
//! of JSON text, so a plugin rarely touches `to_string` / `from_str`.

use serde_json::Value;

use crate::{
    host, ErrorCode, GuardDecl, Manifest, Operation, PluginError, Transports, WalkerDecl,
    WalkerReply,
};

/// `value` as JSON text: serde_json writing into a buffer, which is
/// cheaper than `Display` (a formatter call per piece) on every reply.
fn json_text(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

impl Manifest {
    /// A manifest with a name and version and nothing served yet.
    pub fn new(name: &str, version: &str) -> Self {
        Manifest {
            name: name.into(),
            version: version.into(),
            walkers: Vec::new(),
            guards: Vec::new(),
            sockets: Vec::new(),
        }
    }

    /// Adds a walker.
    pub fn walker(mut self, walker: WalkerDecl) -> Self {
        self.walkers.push(walker);
        self
    }

    /// Adds a guard on `target` (`*`, `prefix*` or an exact name) for `operations`.
    pub fn guard(mut self, target: &str, operations: &[Operation]) -> Self {
        self.guards.push(GuardDecl {
            target: target.into(),
            operations: operations.to_vec(),
        });
        self
    }

    /// Adds a scripted socket path.
    pub fn socket(mut self, path: &str) -> Self {
        self.sockets.push(path.into());
        self
    }
}

/// A walker served over websocket and HTTP to authenticated callers (the
/// jac-cloud default); see [`WalkerDecl::anonymous`] to open it to all.
pub fn walker(name: &str) -> WalkerDecl {
    WalkerDecl {
        name: name.into(),
        transports: Transports::WS | Transports::HTTP,
        anonymous: false,
    }
}

impl WalkerDecl {
    /// Lets callers without a token call this walker (jac-cloud's
    /// `auth: False`).
    pub fn anonymous(mut self) -> Self {
        self.anonymous = true;
        self
    }

    /// Serves the walker on these transports only.
    pub fn transports(mut self, transports: Transports) -> Self {
        self.transports = transports;
        self
    }
}

/// A successful (status 200) walker reply returning `value`, also reported
/// once, as jac-cloud walkers that `report` their result do.
pub fn reply(value: Value) -> WalkerReply {
    let text = json_text(&value);
    WalkerReply {
        status: 200,
        reports: vec![text.clone()],
        returns: Some(text),
    }
}

/// A plugin error (an error the client sees as data, not a trap), with
/// the code the client gets.
pub fn error(code: ErrorCode, message: &str) -> PluginError {
    PluginError {
        code,
        message: message.into(),
    }
}

/// Parses JSON text from the host (null when it is not JSON).
pub fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

fn owned<S: AsRef<str>>(ids: &[S]) -> Vec<String> {
    ids.iter().map(|s| s.as_ref().to_owned()).collect()
}

/// Sends `data` to the connection the current call came from.
///
/// # Errors
/// `BadRequest` outside a connection (e.g. an HTTP walker call).
pub fn notify_self(data: &Value) -> Result<(), PluginError> {
    host::notify_self(&json_text(data))
}

/// From a scripted socket: one text frame with exactly `text` (no JSON
/// around it).
///
/// # Errors
/// `PayloadTooLarge` past the connection's outbound budget for one call.
pub fn notify_self_text(text: &str) -> Result<(), PluginError> {
    host::notify_self(&json_text(&Value::String(text.to_owned())))
}

/// From a scripted socket: one binary frame to its client.
///
/// # Errors
/// `BadRequest` outside a scripted socket; `PayloadTooLarge` past the
/// connection's outbound budget for one call.
pub fn notify_self_binary(data: &[u8]) -> Result<(), PluginError> {
    host::notify_self_binary(data)
}

/// Sends `data` to every connection of these users; returns how many got it.
///
/// # Errors
/// When the host refuses the send for the calling client (`Forbidden`: a
/// guard, a role list, or the anonymous-send rule).
pub fn notify_users<S: AsRef<str>>(user_ids: &[S], data: &Value) -> Result<u32, PluginError> {
    host::notify_users(&owned(user_ids), &json_text(data))
}

/// Sends `data` to every subscriber of these channels; returns how many got it.
///
/// # Errors
/// When the host refuses the send for the calling client (`Forbidden`: a
/// guard, a role list, or the anonymous-send rule).
pub fn notify_channels<S: AsRef<str>>(channels: &[S], data: &Value) -> Result<u32, PluginError> {
    host::notify_channels(&owned(channels), &json_text(data))
}

/// Sends `data` to these connections; returns how many got it.
///
/// # Errors
/// When the host refuses the send for the calling client (`Forbidden`: a
/// guard, a role list, or the anonymous-send rule).
pub fn notify_clients<S: AsRef<str>>(client_ids: &[S], data: &Value) -> Result<u32, PluginError> {
    host::notify_clients(&owned(client_ids), &json_text(data))
}

/// Publishes as the native `publish` does; returns how many got it.
///
/// # Errors
/// When the host refuses the publish for the calling client (`Forbidden`).
pub fn publish(channel: &str, message: &Value) -> Result<u32, PluginError> {
    host::publish(channel, &json_text(message))
}

/// Broadcasts to a channel's subscribers, the sender included (scripted
/// sockets); returns how many got it.
///
/// # Errors
/// When the host refuses the broadcast for the calling client (`Forbidden`).
pub fn broadcast(channel: &str, data: &Value) -> Result<u32, PluginError> {
    host::channel_broadcast(channel, &json_text(data))
}

/// Wall-clock time in Unix milliseconds.
///
/// `wasm32-unknown-unknown` has no clock, and the Switchboard world has no
/// time function, so this imports WASI's `wall-clock` (the host links WASI
/// 0.2 for every plugin). Only components that call it import it.
pub fn now_ms() -> u64 {
    let t = clock::wasi::clocks::wall_clock::now();
    t.seconds * 1000 + u64::from(t.nanoseconds / 1_000_000)
}

/// The one WASI function the SDK uses, declared inline rather than
/// vendoring WASI's WIT: only `now` is imported, and the host's WASI
/// definitions satisfy it.
mod clock {
    wit_bindgen::generate!({
        inline: r#"
            package switchboard:guest-clock;

            package wasi:clocks@0.2.0 {
                interface wall-clock {
                    record datetime {
                        seconds: u64,
                        nanoseconds: u32,
                    }
                    now: func() -> datetime;
                }
            }

            world clock {
                import wasi:clocks/wall-clock@0.2.0;
            }
        "#,
        world: "clock",
        generate_all,
    });
}
