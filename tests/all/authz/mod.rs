//! Authorization attacked over real sockets: each test sends the
//! attacker's frames, then proves nothing leaked or changed. One policy
//! covers every dialect, operation and walker, so the same rule is tried
//! from several sides.

mod channels;
mod identity;
mod resources;
mod topics;
mod walkers;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use integration_tests::*;
use serde_json::{json, Value};
use switchboard::config::ResourceConfig;
use switchboard::Config;

/// A resource with a role list and protected fields.
fn resource(auth: &[&str], protected: &[&str]) -> ResourceConfig {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect();
    ResourceConfig {
        auth: s(auth),
        protected: s(protected),
        events: Vec::new(),
    }
}

/// A server config serving `plugins` with the resources the tests attack:
/// `vault` and `secrets` (admins only), `docs` (anyone; the example guard
/// scopes it by tenant), `users` (admins and users; password and
/// meta.secret protected).
fn config(plugins: &Path) -> Config {
    let mut config = config_with_plugins(plugins, false);
    config
        .resources
        .insert("vault".into(), resource(&["admin"], &[]));
    config
        .resources
        .insert("secrets".into(), resource(&["admin"], &[]));
    config.resources.insert("docs".into(), resource(&[], &[]));
    config.resources.insert(
        "users".into(),
        resource(&["admin", "user"], &["password", "meta.secret"]),
    );
    config
}

/// The example guard plus `extra` plugins, in a fresh folder.
fn with_guard(extra: &[PathBuf]) -> tempfile::TempDir {
    let mut files = vec![example_plugin("guard")];
    files.extend_from_slice(extra);
    plugin_dir(&files)
}

/// A native client with `token` (anonymous when none).
async fn native(addr: SocketAddr, token: Option<&str>) -> Client {
    let query = token.map(|t| format!("?token={t}")).unwrap_or_default();
    connect_native(addr, &query).await.0
}

fn admin() -> String {
    token("root", Some("admin"), json!({}))
}

fn tenant_user(user: &str, tenant: &str, role: &str) -> String {
    token(user, Some(role), json!({ "tenant": tenant }))
}

/// Sends `frame` and expects an error with `code`; returns the error.
async fn refused(c: &mut Client, frame: Value, code: &str) -> Value {
    let reply = c.request(frame.clone(), "attack").await;
    assert_eq!(reply["type"], "error", "{frame} was not refused: {reply}");
    assert_eq!(reply["code"], code, "{frame} → {reply}");
    reply
}
