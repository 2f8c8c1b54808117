//! jac-cloud at `/websocket`: the `connection` event first, client events
//! `walker`, `user`, `channel`, `client`, `change_user`, `connection`;
//! notifications arrive as the bare data object. Shapes follow jac-cloud's
//! own server: a walker's reply (only with `"response": true`) is the bare
//! `{status, reports, returns}`, a walker failure `{"type":"walker",
//! "error"}`, anything else `{"error"}`.

use serde_json::{json, Value};

use super::fields::{any, check_channel, opt_str, req_str, str_list, Obj};
use super::native::{member_json, parse_object};
use super::{Command, ConnInfo, DecodeError, Dialect, Held, Reply, Request, Revoked, Target};
use crate::bus::{Envelope, Event};
use crate::error::{ClientError, ErrorCode};

/// The jac-cloud dialect.
pub struct Jac;

/// jac-cloud's id for the public (anonymous) root.
pub const PUBLIC_ROOT: &str = "n::000000000000000000000001";

impl Jac {
    /// The connection's channel: `?channel_id=`, else its own client id
    /// (jac-cloud makes a random one; the client id is one).
    pub(crate) fn channel_id<'a>(conn: &'a ConnInfo<'_>) -> &'a str {
        conn.query
            .iter()
            .find(|(k, _)| k == "channel_id")
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
            .unwrap_or(conn.client_id)
    }

    fn connection(conn: &ConnInfo<'_>) -> Value {
        json!({
            "type": "connection",
            "data": {
                "client_id": conn.client_id,
                "root_id": conn.identity.user_id.as_deref().unwrap_or(PUBLIC_ROOT),
                "channel_id": Self::channel_id(conn),
            }
        })
    }
}

impl Dialect for Jac {
    fn id(&self) -> usize {
        2
    }

    fn name(&self) -> &'static str {
        "jac"
    }

    fn greeting(&self, conn: &ConnInfo<'_>) -> Vec<Value> {
        vec![Self::connection(conn)]
    }

    fn start(&self, conn: &ConnInfo<'_>) -> Vec<Command> {
        vec![Command::Subscribe {
            target: Target::Channel(Self::channel_id(conn).to_owned()),
            key: None,
            filter: Value::Null,
            events: Vec::new(),
            since: None,
        }]
    }

    fn decode(&self, text: &str) -> Result<Vec<Request>, DecodeError> {
        let obj = parse_object(text)?;
        decode_event(&obj)
            .map(|command| vec![Request::new(None, command)])
            .map_err(|error| DecodeError {
                request_id: None,
                error,
            })
    }

    fn reply(&self, request: &Request, reply: &Reply, conn: &ConnInfo<'_>) -> Vec<Value> {
        match (reply, &request.command) {
            (
                Reply::Walker {
                    status,
                    reports,
                    returns,
                    ..
                },
                Command::Walker { respond: true, .. },
            ) => vec![json!({"status": status, "reports": reports, "returns": returns})],
            (Reply::Info | Reply::Authenticated { .. }, _) => vec![Self::connection(conn)],
            _ => Vec::new(),
        }
    }

    fn error(&self, _: Option<&Value>, request: Option<&Request>, error: &ClientError) -> Value {
        match request.map(|r| &r.command) {
            Some(Command::Walker { .. }) => {
                json!({"type": "walker", "error": error.message, "code": error.code.as_str()})
            }
            _ => json!({"error": error.message, "code": error.code.as_str()}),
        }
    }

    fn revoked(&self, revoked: &Revoked) -> Value {
        match &revoked.what {
            Held::Subscription(target, _) => json!({
                "type": "unsubscribed",
                "channel_id": target.name(),
                "reason": revoked.reason,
            }),
            Held::Presence(channel) => json!({
                "type": "unsubscribed",
                "presence": channel,
                "reason": revoked.reason,
            }),
        }
    }

    fn event(&self, envelope: &Envelope) -> Option<Value> {
        match &envelope.event {
            Event::Message { data, .. }
            | Event::Direct { data, .. }
            | Event::Notify { data, .. } => Some(data.clone()),
            Event::Presence {
                channel,
                kind,
                member,
            } => Some(json!({
                "type": "presence",
                "event": kind.as_str(),
                "channel": channel,
                "member": member_json(member),
            })),
            Event::Change(change) => Some(json!({
                "type": "event",
                "event": change.op,
                "resource": change.resource,
                "data": change.record,
                "seq": change.seq,
            })),
        }
    }
}

fn decode_event(obj: &Obj) -> Result<Command, ClientError> {
    let kind = obj.get("type").and_then(Value::as_str).unwrap_or_default();
    Ok(match kind {
        "walker" => Command::Walker {
            name: req_str(obj, "walker")?,
            context: match any(obj, "context") {
                Value::Null => json!({}),
                other => other,
            },
            respond: obj
                .get("response")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        },
        "user" => send(Vec::new(), targets(obj, "root_ids")?, Vec::new(), obj),
        "channel" => {
            let channels = targets(obj, "channel_ids")?;
            for channel in &channels {
                check_channel(channel, "channel_ids")?;
            }
            send(Vec::new(), Vec::new(), channels, obj)
        }
        "client" => send(targets(obj, "client_ids")?, Vec::new(), Vec::new(), obj),
        // jac-cloud drops a connection whose new token is refused to the
        // public identity (and re-sends `connection`).
        "change_user" => Command::Auth {
            token: opt_str(obj, "token")?,
            anonymous_on_failure: true,
        },
        "connection" => Command::Info,
        _ => {
            return Err(ClientError::new(
                ErrorCode::UnknownMessageType,
                "Not a valid event!",
            ));
        }
    })
}

/// A non-empty target list: an empty one would silently do nothing.
fn targets(obj: &Obj, key: &str) -> Result<Vec<String>, ClientError> {
    let list = str_list(obj, key)?;
    if list.is_empty() {
        return Err(ClientError::bad_request(format!(
            "`{key}` must list at least one target"
        )));
    }
    Ok(list)
}

fn send(clients: Vec<String>, users: Vec<String>, channels: Vec<String>, obj: &Obj) -> Command {
    Command::Send {
        users,
        clients,
        channels,
        data: any(obj, "data"),
    }
}
