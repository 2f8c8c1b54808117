//! Chat walkers after jac-cloud's websocket example: send a chat to a
//! channel, a user or a client; `echo`; `whoami`; `progress` (notify-self
//! before returning); `save_message` (a store write that emits an event).

use serde_json::{json, Value};
use switchboard_guest::{
    error, export_plugin, host, json, notify_channels, notify_clients, notify_self, notify_users,
    reply, walker, ErrorCode, Manifest, Plugin, PluginError, WalkerReply, WalkerRequest,
};

struct Chat;

/// The first of `keys` present as a string in the context (jac-cloud calls
/// the user `root_id`; `user_id` is accepted too).
fn field<'a>(context: &'a Value, keys: &[&str]) -> Result<&'a str, PluginError> {
    keys.iter()
        .find_map(|k| context[*k].as_str())
        .ok_or_else(|| error(ErrorCode::BadRequest, &format!("missing `{}`", keys[0])))
}

/// The notification every send walker delivers.
fn chat(context: &Value) -> Value {
    json!({"type": "chat", "data": {"message": context["message"]}})
}

impl Plugin for Chat {
    fn manifest() -> Manifest {
        [
            "send_chat_to_group",
            "send_chat_to_user",
            "send_chat_to_client",
            "echo",
            "whoami",
            "progress",
            "save_message",
        ]
        .into_iter()
        .fold(Manifest::new("chat", "1.0.0"), |m, name| {
            m.walker(walker(name))
        })
    }

    fn walker(request: WalkerRequest) -> Result<WalkerReply, PluginError> {
        let context = json(&request.context);
        match request.walker.as_str() {
            "send_chat_to_group" => {
                let n = notify_channels(&[field(&context, &["channel_id"])?], &chat(&context))?;
                Ok(reply(json!({"delivered": n})))
            }
            "send_chat_to_user" => {
                let n = notify_users(
                    &[field(&context, &["root_id", "user_id"])?],
                    &chat(&context),
                )?;
                Ok(reply(json!({"delivered": n})))
            }
            "send_chat_to_client" => {
                let n = notify_clients(&[field(&context, &["client_id"])?], &chat(&context))?;
                Ok(reply(json!({"delivered": n})))
            }
            "echo" => Ok(reply(context)),
            "whoami" => {
                let id = request.identity;
                Ok(reply(json!({
                    "client_id": id.client_id,
                    "user_id": id.user_id,
                    "role": id.role,
                    "claims": json(&id.claims),
                })))
            }
            "progress" => {
                for pct in ["0%", "50%"] {
                    notify_self(&json!({"type": "progress", "progress": pct}))?;
                }
                Ok(reply(json!({"progress": "100%"})))
            }
            "save_message" => {
                let stored = host::store_insert("messages", &context.to_string())?;
                Ok(reply(json(&stored)))
            }
            other => Err(error(ErrorCode::NotFound, &format!("no walker `{other}`"))),
        }
    }
}

export_plugin!(Chat);
