//! Configuration: embedded defaults, then an optional TOML file, then
//! `SWITCHBOARD_*` environment variables (nested keys joined by `__`,
//! e.g. `SWITCHBOARD_AUTH__REQUIRED=true`).
//!
//! Every field has a default so `switchboard serve` runs with no file at all.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

mod auth;
mod cluster;
mod limits;
mod plugins;

pub use auth::{ApiKeyIdentity, AuthConfig, ProviderConfig};
pub use cluster::{ChannelOptions, ClusterConfig};
pub use limits::{Compression, Limits};
pub use plugins::{PluginLimits, PluginsConfig};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// Why the configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file, key or value was wrong; figment's message names which.
    #[error("invalid configuration: {0}")]
    Invalid(#[from] Box<figment::Error>),
    /// A setting is out of range or inconsistent.
    #[error("invalid configuration: {0}")]
    Value(String),
    /// A referenced file (such as the RS256 public key) could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file that was named.
        path: PathBuf,
        /// What the file system said.
        source: std::io::Error,
    },
}

/// The whole server configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where to listen; port 0 picks a free port (the bound address is logged).
    pub listen: SocketAddr,
    /// Connection limits and timings.
    pub limits: Limits,
    /// Token verification.
    pub auth: AuthConfig,
    /// WebAssembly plugins.
    pub plugins: PluginsConfig,
    /// Embedded storage.
    pub store: StoreConfig,
    /// Resources clients may read, write and subscribe to (s3db.js `resources`).
    pub resources: BTreeMap<String, ResourceConfig>,
    /// Paths the protocol dialects are served at.
    pub paths: PathsConfig,
    /// Several nodes on Redis.
    pub cluster: ClusterConfig,
    /// Per-channel options by pattern (`"chat:*"`: a prefix, `"*"`: every
    /// channel, otherwise an exact name; the longest pattern wins).
    pub channels: BTreeMap<String, ChannelOptions>,
    /// Extra listeners, each serving one dialect at every path (a seed's
    /// client that connects to the root of its own port).
    pub listeners: Vec<ListenerConfig>,
    /// The server HTTP API (`/api/*`) and the console.
    pub api: ApiConfig,
}

/// Who may use the server HTTP API and the console.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Roles allowed (any of them); an API key or token with none of them
    /// is refused with FORBIDDEN.
    pub roles: Vec<String>,
    /// Serve the web console at `/console`.
    pub console: bool,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            roles: vec!["admin".into()],
            console: true,
        }
    }
}

/// One extra listener (`[[listeners]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// Where (port 0 picks a free one).
    pub listen: SocketAddr,
    /// What it speaks, at every path.
    pub dialect: DialectName,
}

/// The dialects a listener may serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DialectName {
    /// s3db.js / the native protocol.
    Native,
    /// Daptin.
    Daptin,
    /// jac-cloud.
    Jac,
    /// rtbdp.
    Rtbdp,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 3001)),
            limits: Limits::default(),
            auth: AuthConfig::default(),
            plugins: PluginsConfig::default(),
            store: StoreConfig::default(),
            resources: BTreeMap::new(),
            paths: PathsConfig::default(),
            cluster: ClusterConfig::default(),
            channels: BTreeMap::new(),
            listeners: Vec::new(),
            api: ApiConfig::default(),
        }
    }
}

/// Embedded storage.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// PostgreSQL, shared by every node (`postgres://user:pass@host/db`);
    /// none: the embedded redb file at `path`.
    pub url: Option<String>,
    /// Connections in the PostgreSQL pool.
    pub pool_size: usize,
    /// The redb file; created when missing.
    pub path: PathBuf,
    /// Largest record accepted, in bytes of JSON.
    pub max_record_bytes: usize,
    /// Change-log entries kept for resumable subscriptions.
    pub change_log_retention: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            url: None,
            pool_size: 16,
            path: PathBuf::from("data/switchboard.redb"),
            max_record_bytes: 256 * 1024,
            change_log_retention: 100_000,
        }
    }
}

/// One resource, as in the s3db.js `resources` option.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResourceConfig {
    /// Roles allowed to use the resource; empty allows everyone.
    pub auth: Vec<String>,
    /// Fields that never leave the server.
    pub protected: Vec<String>,
    /// Events broadcast to subscribers; empty means all of insert, update, delete.
    pub events: Vec<String>,
}

/// Paths the dialects are served at.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PathsConfig {
    /// The native protocol (also served at `/`).
    pub native: String,
    /// Daptin's `/live`.
    pub daptin: String,
    /// jac-cloud's `/websocket`.
    pub jac: String,
    /// rtbdp's endpoint.
    pub rtbdp: String,
}

impl Default for PathsConfig {
    fn default() -> Self {
        Self {
            native: "/ws".into(),
            daptin: "/live".into(),
            jac: "/websocket".into(),
            rtbdp: "/rtbdp".into(),
        }
    }
}

impl Config {
    /// Reads defaults, then `file` if given, then the environment.
    ///
    /// # Errors
    /// A file that does not parse, an unknown key, a value of the wrong type,
    /// or an unreadable key file.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::Read {
                    path: path.to_owned(),
                    source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
                });
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        figment = figment.merge(Env::prefixed("SWITCHBOARD_").split("__"));
        let mut config: Config = figment.extract().map_err(Box::new)?;
        config.resolve_files()?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what the types cannot: dialect paths are distinct absolute
    /// paths clear of the host's own routes.
    ///
    /// # Errors
    /// The first problem found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let p = &self.paths;
        let paths = [
            ("native", &p.native),
            ("daptin", &p.daptin),
            ("jac", &p.jac),
            ("rtbdp", &p.rtbdp),
        ];
        for (i, (name, path)) in paths.iter().enumerate() {
            let ok = path.starts_with('/')
                && path.len() > 1
                && !path.contains(['{', '}', '*', ' ', '?', '#'])
                && !["/healthz", "/readyz", "/metrics", "/api", "/console"]
                    .contains(&path.as_str())
                && !path.starts_with("/walker/")
                && !path.starts_with("/api/")
                && !path.starts_with("/console/");
            if !ok {
                return Err(ConfigError::Value(format!(
                    "paths.{name} = `{path}`: use an absolute path other than /, /healthz, /readyz, /metrics, /walker/*, /api/*, /console"
                )));
            }
            if let Some((other, _)) = paths[..i].iter().find(|(_, q)| q == path) {
                return Err(ConfigError::Value(format!(
                    "paths.{name} and paths.{other} are both `{path}`"
                )));
            }
        }
        let limits = &self.limits;
        if !(9..=15).contains(&limits.compression_window_bits) {
            return Err(ConfigError::Value(format!(
                "limits.compression_window_bits = {}: use 9 to 15",
                limits.compression_window_bits
            )));
        }
        if limits.compression_level > 9 {
            return Err(ConfigError::Value(format!(
                "limits.compression_level = {}: use 0 to 9",
                limits.compression_level
            )));
        }
        for (i, provider) in self.auth.all_providers().iter().enumerate() {
            if provider.issuer.is_none() && provider.jwks_url.is_none() {
                return Err(ConfigError::Value(format!(
                    "auth provider {}: give `jwks_url`, or `issuer` for OIDC discovery",
                    i + 1
                )));
            }
        }
        for (i, l) in self.listeners.iter().enumerate() {
            let clash = l.listen.port() != 0
                && (l.listen == self.listen
                    || self.listeners[..i].iter().any(|o| o.listen == l.listen));
            if clash {
                return Err(ConfigError::Value(format!(
                    "listeners[{i}].listen = {}: already used by another listener",
                    l.listen
                )));
            }
        }
        if self.plugins.reuse_calls == 0 {
            return Err(ConfigError::Value(
                "plugins.reuse_calls must be at least 1 (1 = a fresh instance per call)".into(),
            ));
        }
        if self.limits.outbound_queue == 0 || self.limits.max_connections == 0 {
            return Err(ConfigError::Value(
                "limits.outbound_queue and limits.max_connections must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// Reads files the configuration points at, so later code sees only values.
    fn resolve_files(&mut self) -> Result<(), ConfigError> {
        if let Some(path) = &self.auth.jwt_public_key_file {
            let pem = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?;
            self.auth.jwt_public_key_pem = Some(pem);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Config;

    #[test]
    fn validate_names_the_bad_key() {
        let mut config = Config::default();
        assert!(config.validate().is_ok());
        config.plugins.reuse_calls = 0;
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("plugins.reuse_calls"), "{err}");
        config.plugins.reuse_calls = 1;
        config.paths.jac = config.paths.native.clone();
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("paths.jac and paths.native"), "{err}");
    }
}
