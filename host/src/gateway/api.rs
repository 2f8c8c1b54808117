//! The server HTTP API, for backends and the console: publish, send,
//! disconnect, presence, channels, connections, resources and node info.
//! The caller authenticates as any HTTP caller does (an API key in
//! `x-api-key` or `Authorization: Bearer`, or a token) and must hold one of
//! `api.roles` (`admin` by default); then every action goes through the
//! same policy and rate limits as a socket's, acting as that caller.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequestParts, Path, Query};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::request::{caller, error, object_body};
use crate::bus::{Event, Member, Origin};
use crate::error::{ClientError, ErrorCode};
use crate::policy::{check_client_payload, Access, Actor};
use crate::protocol::fields::check_channel;
use crate::App;

/// Close code of an operator's disconnect (4000: application-defined).
const CLOSE_KICKED: u16 = 4000;

/// The `/api` routes.
pub(super) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/api/publish", post(publish))
        .route("/api/send", post(send))
        .route("/api/disconnect", post(disconnect))
        .route("/api/presence/{channel}", get(presence))
        .route("/api/channels", get(channels))
        .route("/api/connections", get(connections))
        .route("/api/resources", get(resources))
        .route("/api/resources/{name}", get(records))
        .route("/api/info", get(info))
}

/// What every handler gets: the app, the caller, the query.
struct Call {
    app: Arc<App>,
    actor: Actor,
    query: Vec<(String, String)>,
}

impl Call {
    fn access(&self) -> Access<'_> {
        Access::Client(&self.actor)
    }

    fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Who the API publishes as: the caller's user, no connection.
    fn origin(&self) -> Origin {
        Origin {
            client_id: Arc::from("api"),
            user_id: self.actor.identity.user_id.clone(),
        }
    }
}

/// Every handler's first step, as an extractor: authenticates the caller
/// (charging its request budget) and checks the API role; a refusal is
/// the response.
impl FromRequestParts<Arc<App>> for Call {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, Response> {
        let peer = match parts.extensions.get::<ConnectInfo<SocketAddr>>() {
            Some(ConnectInfo(peer)) => *peer,
            None => {
                let e = ClientError::new(ErrorCode::InternalError, "no peer address");
                return Err(error(app, &e));
            }
        };
        let query = match Query::<Vec<(String, String)>>::from_request_parts(parts, app).await {
            Ok(Query(query)) => query,
            Err(rejection) => return Err(rejection.into_response()),
        };
        let headers: &HeaderMap = &parts.headers;
        let actor = caller(app, peer, &query, headers).await?;
        let roles = &app.config.api.roles;
        if actor.identity.user_id.is_none() {
            return Err(error(
                app,
                &ClientError::new(
                    ErrorCode::Unauthorized,
                    "the server API needs an API key or token",
                ),
            ));
        }
        if !roles.iter().any(|r| actor.identity.has_role(r)) {
            return Err(error(
                app,
                &ClientError::forbidden(format!(
                    "the server API needs one of the roles {roles:?} (api.roles)"
                )),
            ));
        }
        Ok(Call {
            app: app.clone(),
            actor,
            query,
        })
    }
}

/// A handler's result as the response: the value, or the error with its
/// code's status.
fn respond(call: &Call, result: Result<Value, ClientError>) -> Response {
    match result {
        Ok(value) => ok(value),
        Err(e) => error(&call.app, &e),
    }
}

fn ok(value: Value) -> Response {
    Json(value).into_response()
}

fn string_list(body: &Value, key: &str) -> Result<Vec<String>, ClientError> {
    match &body[key] {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items
            .iter()
            .map(|v| {
                v.as_str().map(str::to_owned).ok_or_else(|| {
                    ClientError::bad_request(format!("`{key}` must be a list of strings"))
                })
            })
            .collect(),
        _ => Err(ClientError::bad_request(format!(
            "`{key}` must be a list of strings"
        ))),
    }
}

/// `POST /api/publish {"channel", "data"}` → `{"type":"published","channel","delivered"}`.
async fn publish(call: Call, body: Bytes) -> Response {
    let result = do_publish(&call, &body).await;
    respond(&call, result)
}

async fn do_publish(call: &Call, body: &[u8]) -> Result<Value, ClientError> {
    let body = &object_body(&call.app, body)?;
    let channel = body["channel"]
        .as_str()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ClientError::bad_request("`channel` (a non-empty string) is required"))?;
    check_channel(channel, "channel")?;
    let data = &body["data"];
    check_client_payload(data)?;
    let policy = call.app.resources.policy();
    let data = policy.write_channel(&call.access(), channel, data).await?;
    let (delivered, position) = call
        .app
        .resources
        .publish_message(channel, Some(call.origin()), &data)
        .await?;
    let mut reply = json!({"type": "published", "channel": channel, "delivered": delivered});
    if let Some(p) = position {
        reply["offset"] = json!(p.offset);
        reply["epoch"] = json!(&*p.epoch);
    }
    Ok(reply)
}

/// `POST /api/send {"users"?, "clients"?, "channels"?, "data"}` → `{"type":"sent","delivered"}`.
async fn send(call: Call, body: Bytes) -> Response {
    let result = do_send(&call, &body).await;
    respond(&call, result)
}

async fn do_send(call: &Call, body: &[u8]) -> Result<Value, ClientError> {
    let body = &object_body(&call.app, body)?;
    let users = string_list(body, "users")?;
    let clients = string_list(body, "clients")?;
    let channels = string_list(body, "channels")?;
    if users.is_empty() && clients.is_empty() && channels.is_empty() {
        return Err(ClientError::bad_request(
            "give `users`, `clients` or `channels` to send to",
        ));
    }
    let data = &body["data"];
    check_client_payload(data)?;
    let policy = call.app.resources.policy();
    let access = call.access();
    let direct = if users.is_empty() && clients.is_empty() {
        None
    } else {
        Some(policy.send_direct(&access, &users, &clients, data).await?)
    };
    let mut to_channels = Vec::with_capacity(channels.len());
    for channel in &channels {
        if channel.is_empty() {
            return Err(ClientError::bad_request(
                "`channels` must not hold an empty name",
            ));
        }
        check_channel(channel, "channels")?;
        to_channels.push((channel, policy.write_channel(&access, channel, data).await?));
    }
    let bus = &call.app.bus;
    let mut delivered = 0;
    if let Some(data) = direct {
        let event = || Event::Direct {
            from: call.origin(),
            data: data.clone(),
        };
        delivered += bus.send_to_users(&users, event()) + bus.send_to_clients(&clients, event());
        if let Some(why) = bus.cluster_down() {
            return Err(ClientError::new(ErrorCode::Unavailable, why));
        }
    }
    for (channel, data) in to_channels {
        delivered += call
            .app
            .resources
            .publish_message(channel, Some(call.origin()), &data)
            .await?
            .0;
    }
    Ok(json!({"type": "sent", "delivered": delivered}))
}

/// `POST /api/disconnect {"clients"?, "users"?, "reason"?}` → `{"type":"disconnected","closed"}`
/// (closed on this node; other nodes close theirs).
async fn disconnect(call: Call, body: Bytes) -> Response {
    let run = || -> Result<Value, ClientError> {
        let body = object_body(&call.app, &body)?;
        let users = string_list(&body, "users")?;
        let clients = string_list(&body, "clients")?;
        if users.is_empty() && clients.is_empty() {
            return Err(ClientError::bad_request(
                "give `users` or `clients` to disconnect",
            ));
        }
        let reason = body["reason"]
            .as_str()
            .unwrap_or("disconnected by an operator");
        // A close reason is at most 123 bytes (RFC 6455).
        let reason: String = reason.chars().take(100).collect();
        let closed = call
            .app
            .bus
            .disconnect(&users, &clients, CLOSE_KICKED, &reason);
        Ok(json!({"type": "disconnected", "closed": closed}))
    };
    respond(&call, run())
}

fn member_json(m: &Member) -> Value {
    json!({
        "memberId": &*m.member_id,
        "clientId": &*m.client_id,
        "userId": m.user_id,
        "info": m.info,
        "joinedAt": m.joined_at,
    })
}

/// `GET /api/presence/{channel}` → `{"type":"presence","channel","members"}` (every node's).
async fn presence(Path(channel): Path<String>, call: Call) -> Response {
    let run = async {
        check_channel(&channel, "channel")?;
        let payload = json!({"presence": "list"});
        call.app
            .resources
            .policy()
            .read_channel(&call.access(), &channel, &Value::Null, &payload)
            .await?;
        let members = call.app.bus.presence_members(&channel).await;
        let members: Vec<Value> = members.iter().map(member_json).collect();
        Ok::<_, ClientError>(json!({"type": "presence", "channel": channel, "members": members}))
    };
    respond(&call, run.await)
}

/// `GET /api/channels` → this node's channels with subscriber counts.
async fn channels(call: Call) -> Response {
    let channels: Vec<Value> = call
        .app
        .bus
        .channel_counts()
        .into_iter()
        .map(|(name, subscribers)| json!({"name": name, "subscribers": subscribers}))
        .collect();
    ok(json!({"type": "channels", "channels": channels}))
}

/// `GET /api/connections` → this node's connections.
async fn connections(call: Call) -> Response {
    let list: Vec<Value> = call
        .app
        .bus
        .connections()
        .into_iter()
        .map(|c| {
            json!({
                "clientId": &*c.id, "userId": c.user_id, "dialect": c.dialect,
                "channels": c.channels, "resources": c.resources, "presence": c.presence,
                "queuedBytes": c.queued_bytes,
            })
        })
        .collect();
    ok(json!({"type": "connections", "connections": list}))
}

/// `GET /api/resources` → the configured resources the caller may read.
async fn resources(call: Call) -> Response {
    let policy = call.app.resources.policy();
    let names: Vec<&String> = policy
        .resource_names()
        .filter(|name| policy.roles(&call.access(), name).is_ok())
        .collect();
    ok(json!({"type": "resources", "resources": names}))
}

/// `GET /api/resources/{name}?limit=&cursor=` → a page of records, as
/// `list` shows them (guards and protected fields apply).
async fn records(Path(name): Path<String>, call: Call) -> Response {
    let limit = call.param("limit").and_then(|l| l.parse().ok());
    let cursor = call.param("cursor").map(str::to_owned);
    let page = call
        .app
        .resources
        .list(&call.access(), &name, &Value::Null, limit, cursor)
        .await;
    let result = page.map(|(page, next)| {
        let data: Vec<Value> = page.into_iter().map(|r| r.record).collect();
        json!({"type": "data", "resource": name, "data": data, "cursor": next})
    });
    respond(&call, result)
}

/// `GET /api/info` → this node, the cluster's nodes, connections, store,
/// and plugins with their load state.
async fn info(call: Call) -> Response {
    let app = &call.app;
    let snapshot = app.plugins.snapshot();
    let errors = app.plugins.errors();
    let mut plugins: Vec<Value> = snapshot
        .files()
        .iter()
        .map(|(file, p)| {
            let m = &p.manifest;
            json!({
                "file": file.file_name().map(|f| f.to_string_lossy().into_owned()),
                "name": &*p.name, "version": m.version, "state": "loaded",
                "walkers": m.walkers.iter().map(|w| w.name.clone()).collect::<Vec<_>>(),
                "guards": m.guards.iter().map(|g| g.target.clone()).collect::<Vec<_>>(),
                "sockets": m.sockets,
                "error": errors.get(file),
            })
        })
        .collect();
    for (file, e) in &errors {
        if !snapshot.files().contains_key(file) {
            plugins.push(json!({
                "file": file.file_name().map(|f| f.to_string_lossy().into_owned()),
                "state": "failed", "error": e,
            }));
        }
    }
    let nodes = match &app.cluster {
        Some(cluster) => cluster.nodes().await,
        None => Vec::new(),
    };
    ok(json!({
        "type": "info",
        "version": env!("CARGO_PKG_VERSION"),
        "node": app.cluster.as_ref().map(|c| c.name().to_owned()),
        "nodes": nodes,
        "connections": app.bus.client_count(),
        "store": app.resources.store().kind(),
        "plugins": plugins,
    }))
}
