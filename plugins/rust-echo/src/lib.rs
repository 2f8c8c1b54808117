//! rust-echo: the polyglot examples' contract in Rust, the baseline the
//! other languages (`plugins/py-echo`, `plugins/js-echo`, `plugins/c-echo`)
//! are measured against — the same walker, guard and socket in each, so
//! their sizes and round trips compare like for like:
//! - walker `rust_echo` returns and reports `{"echo": <context>, "lang":
//!   "rust"}`; anonymous callers allowed (jac-cloud's `auth: False`);
//! - guard `rust:*` refuses a publish whose message has a `blocked` field;
//! - socket `/rust-echo` answers each message with `{"lang": "rust",
//!   "echo": <message>}`, and each binary frame with the same bytes.

use serde_json::{json, Value};
use switchboard_guest::{
    export_plugin, notify_self, notify_self_binary, reply, walker, GuardRequest, Manifest, Operation, Plugin,
    PluginError, Verdict, WalkerReply, WalkerRequest,
};

const LANG: &str = "rust";

struct Echo;

impl Plugin for Echo {
    fn manifest() -> Manifest {
        Manifest::new("rust-echo", "1.0.0")
            .walker(walker("rust_echo").anonymous())
            .guard("rust:*", &[Operation::Publish])
            .socket("/rust-echo")
    }

    fn walker(request: WalkerRequest) -> Result<WalkerReply, PluginError> {
        let context = switchboard_guest::json(&request.context);
        Ok(reply(json!({"echo": context, "lang": LANG})))
    }

    fn guard(request: GuardRequest) -> Verdict {
        match serde_json::from_str::<Value>(&request.payload) {
            Ok(Value::Object(m)) if m.contains_key("blocked") => {
                Verdict::Deny(format!("blocked by {LANG}"))
            }
            _ => Verdict::Allow,
        }
    }

    fn socket_message(_conn_id: String, message: String) -> Result<(), PluginError> {
        let echo = serde_json::from_str(&message).unwrap_or(Value::String(message));
        notify_self(&json!({"lang": LANG, "echo": echo}))
    }

    fn socket_binary(_conn_id: String, data: Vec<u8>) -> Result<(), PluginError> {
        notify_self_binary(&data)
    }
}

export_plugin!(Echo);
