//! SoliDB's "Simple Chat Room" as a scripted socket at `/chat`:
//! `?room=general&name=Alice` joins channel `chat:<room>` with presence;
//! `{"type":"message","text"}` broadcasts `{"type":"chat","from","text"}`;
//! joins and leaves arrive as `presence_join` / `presence_leave`. Presence
//! metadata is `{"name", "joined": <unix ms>}`, as in SoliDB's script.

use std::cell::RefCell;
use std::collections::HashMap;

use serde_json::json;
use switchboard_guest::{
    broadcast, error, export_plugin, host, json, notify_self, now_ms, ChannelMessage, ErrorCode,
    Manifest,
    Plugin, PluginError, PresenceEvent, PresenceKind, SocketOpen,
};

struct ChatRoom;

struct Member {
    channel: String,
    name: String,
}

thread_local! {
    /// Per-connection state (the host gives each connection its own
    /// instance, but keying by id keeps the plugin correct either way).
    static MEMBERS: RefCell<HashMap<String, Member>> = RefCell::new(HashMap::new());
}

fn member<T>(conn: &str, f: impl FnOnce(&Member) -> T) -> Result<T, PluginError> {
    MEMBERS
        .with(|m| m.borrow().get(conn).map(f))
        .ok_or_else(|| error(ErrorCode::BadRequest, "unknown connection"))
}

impl Plugin for ChatRoom {
    fn manifest() -> Manifest {
        Manifest::new("chatroom", "1.0.0").socket("/chat")
    }

    fn socket_open(conn: SocketOpen) -> Result<(), PluginError> {
        let query = |key: &str| {
            conn.query
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
        };
        let channel = format!("chat:{}", query("room").unwrap_or_else(|| "general".into()));
        let name = query("name").unwrap_or_else(|| "Anonymous".into());
        host::channel_subscribe(&channel)?;
        host::presence_join(
            &channel,
            &json!({"name": name, "joined": now_ms()}).to_string(),
        )?;
        let users = json(&host::presence_list(&channel)?);
        notify_self(&json!({"type": "init", "users": users}))?;
        MEMBERS.with(|m| {
            m.borrow_mut()
                .insert(conn.conn_id, Member { channel, name })
        });
        Ok(())
    }

    fn socket_message(conn_id: String, message: String) -> Result<(), PluginError> {
        let data = json(&message);
        if data["type"] == "message" {
            let (channel, name) = member(&conn_id, |m| (m.channel.clone(), m.name.clone()))?;
            broadcast(
                &channel,
                &json!({"type": "chat", "from": name, "text": data["text"]}),
            )?;
        }
        Ok(())
    }

    fn socket_channel(_conn_id: String, message: ChannelMessage) -> Result<(), PluginError> {
        host::notify_self(&message.data)
    }

    fn socket_presence(_conn_id: String, event: PresenceEvent) -> Result<(), PluginError> {
        let kind = match event.kind {
            PresenceKind::Join => "presence_join",
            PresenceKind::Leave => "presence_leave",
        };
        notify_self(&json!({"type": kind, "user": json(&event.user_info)}))
    }

    fn socket_close(conn_id: String) {
        MEMBERS.with(|m| m.borrow_mut().remove(&conn_id));
    }
}

export_plugin!(ChatRoom);
