//! {{name}}: a Switchboard plugin in Rust (made by `switchboard plugin new`).
//! `switchboard plugin build` turns it into `{{name}}.wasm` in the plugins
//! folder; the server loads it without a restart.
//!
//! - walker `{{ident}}`: returns (and reports) `{"from": "{{name}}", "got": <context>}`
//! - guard on `{{name}}:*`: a publish whose message has a `blocked` field is refused

wit_bindgen::generate!({ path: "wit", world: "plugin" });

use exports::switchboard::plugin::{guard, meta, socket, walker};
use serde_json::{json, Value};
use switchboard::plugin::types::{
    ChannelMessage, GuardDecl, GuardRequest, Manifest, Operation, PluginError, PresenceEvent,
    SocketOpen, Transports, Verdict, WalkerDecl, WalkerReply, WalkerRequest,
};

struct Plugin;

impl meta::Guest for Plugin {
    fn describe() -> Manifest {
        Manifest {
            name: "{{name}}".into(),
            version: "0.1.0".into(),
            walkers: vec![WalkerDecl {
                name: "{{ident}}".into(),
                transports: Transports::WS | Transports::HTTP,
                anonymous: true,
            }],
            guards: vec![GuardDecl {
                target: "{{name}}:*".into(),
                operations: vec![Operation::Publish],
            }],
            sockets: vec![],
        }
    }
}

impl walker::Guest for Plugin {
    fn call(request: WalkerRequest) -> Result<WalkerReply, PluginError> {
        let context: Value = serde_json::from_str(&request.context).unwrap_or_default();
        let value = json!({"from": "{{name}}", "got": context}).to_string();
        Ok(WalkerReply {
            status: 200,
            reports: vec![value.clone()],
            returns: Some(value),
        })
    }
}

impl guard::Guest for Plugin {
    fn check(request: GuardRequest) -> Verdict {
        match serde_json::from_str::<Value>(&request.payload) {
            Ok(Value::Object(message)) if message.contains_key("blocked") => {
                Verdict::Deny("blocked by {{name}}".into())
            }
            _ => Verdict::Allow,
        }
    }
}

// The world exports sockets too; the manifest lists none, so the host
// never calls these.
impl socket::Guest for Plugin {
    fn on_open(_conn: SocketOpen) -> Result<(), PluginError> {
        Ok(())
    }
    fn on_message(_conn_id: String, _message: String) -> Result<(), PluginError> {
        Ok(())
    }
    fn on_binary(_conn_id: String, _data: Vec<u8>) -> Result<(), PluginError> {
        Ok(())
    }
    fn on_channel(_conn_id: String, _message: ChannelMessage) -> Result<(), PluginError> {
        Ok(())
    }
    fn on_presence(_conn_id: String, _event: PresenceEvent) -> Result<(), PluginError> {
        Ok(())
    }
    fn on_close(_conn_id: String) {}
}

export!(Plugin);
