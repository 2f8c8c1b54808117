//! Configuration: embedded defaults, then an optional TOML file, then
//! `SWITCHBOARD_*` environment variables (nested keys joined by `__`,
//! e.g. `SWITCHBOARD_AUTH__REQUIRED=true`).
//!
//! Every field has a default so `switchboard serve` runs with no file at all.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

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
        }
    }
}

/// Per-connection limits. Milliseconds, as in the s3db.js options.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// How often the server pings each client.
    pub heartbeat_interval_ms: u64,
    /// How long after a ping a silent client is dropped.
    pub heartbeat_timeout_ms: u64,
    /// Largest accepted frame in bytes; larger ones close the socket with 1009.
    pub max_payload_bytes: usize,
    /// Requests allowed per window per connection; 0 disables the limit.
    pub rate_limit_max_requests: u32,
    /// The rate-limit window.
    pub rate_limit_window_ms: u64,
    /// Frames queued for one client before it counts as a slow consumer and
    /// is disconnected (so it never slows anyone else down).
    pub outbound_queue: usize,
    /// Most connections served at once; further upgrades get HTTP 503.
    pub max_connections: usize,
    /// Bytes read from a socket at a time. Small keeps idle connections
    /// cheap (each holds one such buffer); raise it when clients send
    /// large frames often.
    pub read_chunk_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            heartbeat_interval_ms: 30_000,
            heartbeat_timeout_ms: 10_000,
            max_payload_bytes: 1024 * 1024,
            rate_limit_max_requests: 0,
            rate_limit_window_ms: 60_000,
            outbound_queue: 1024,
            max_connections: 200_000,
            read_chunk_bytes: 512,
        }
    }
}

impl Limits {
    /// The heartbeat interval as a duration.
    pub fn heartbeat_interval(&self) -> Duration {
        Duration::from_millis(self.heartbeat_interval_ms.max(1))
    }

    /// The heartbeat timeout as a duration.
    pub fn heartbeat_timeout(&self) -> Duration {
        Duration::from_millis(self.heartbeat_timeout_ms.max(1))
    }
}

/// How clients prove who they are.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Refuse anonymous clients.
    pub required: bool,
    /// HS256 secret; tokens signed with it are accepted. With no secret and
    /// no public key configured, a random one is generated on first start
    /// and kept in `secret_file` (there is no built-in default: a secret
    /// written in the source would let anyone mint tokens).
    pub jwt_secret: Option<String>,
    /// Where the generated HS256 secret lives (mode 0600); default:
    /// `jwt-secret` beside the store file.
    pub secret_file: Option<PathBuf>,
    /// RS256 public key (PEM text); tokens signed with the matching private key are accepted.
    pub jwt_public_key_pem: Option<String>,
    /// File holding the RS256 public key, read at start-up.
    pub jwt_public_key_file: Option<PathBuf>,
    /// Required `iss` claim, when set.
    pub issuer: Option<String>,
    /// Required `aud` claim, when set.
    pub audience: Option<String>,
    /// API keys: key → identity.
    pub api_keys: BTreeMap<String, ApiKeyIdentity>,
    /// How long before a connection's token expires it is warned with a
    /// `TOKEN_EXPIRED` error frame (it can then send a fresh token in-band;
    /// otherwise it is closed at `exp`).
    pub expiry_warning_ms: u64,
    /// Origins whose pages may use the `token` cookie (WebSocket upgrades
    /// and `POST /walker`). Empty: the server's own host only; `"*"`: any.
    /// Tokens in the query or the Authorization header are not affected:
    /// a cross-site page cannot make the browser add those.
    pub allowed_origins: Vec<String>,
    /// Whether anonymous clients may send to users and client ids directly
    /// (guards decide for everyone else).
    pub anonymous_send: bool,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            required: false,
            jwt_secret: None,
            secret_file: None,
            jwt_public_key_pem: None,
            jwt_public_key_file: None,
            issuer: None,
            audience: None,
            api_keys: BTreeMap::new(),
            expiry_warning_ms: 60_000,
            allowed_origins: Vec::new(),
            anonymous_send: false,
        }
    }
}

impl AuthConfig {
    /// Whether the operator configured any JWT verification key.
    pub fn has_jwt_key(&self) -> bool {
        self.jwt_secret.as_deref().is_some_and(|s| !s.is_empty())
            || self.jwt_public_key_pem.is_some()
    }
}

/// The identity an API key stands for.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyIdentity {
    /// The user id the key acts as.
    pub id: String,
    /// Its role.
    #[serde(default)]
    pub role: Option<String>,
    /// Extra claims (tenant, scopes...) handed to guards.
    #[serde(default, flatten)]
    pub claims: BTreeMap<String, serde_json::Value>,
}

/// Where plugins come from and how tightly they are held.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginsConfig {
    /// The folder watched for `*.wasm` components.
    pub dir: PathBuf,
    /// Watch the folder and hot-reload changes.
    pub watch: bool,
    /// Wall-clock budget of one plugin call.
    pub timeout_ms: u64,
    /// Linear-memory cap of one plugin instance.
    pub max_memory_bytes: usize,
    /// Per-plugin overrides, by manifest name.
    pub overrides: BTreeMap<String, PluginLimits>,
    /// Where compiled components are cached (by content hash) across
    /// restarts; none disables the disk cache.
    pub cache_dir: Option<PathBuf>,
    /// Plugin instances alive at once, from a pre-reserved pool (walker and
    /// guard calls each hold one briefly; a scripted-socket connection
    /// holds one while open). Pooling makes instantiation cheap; 0 turns
    /// it off and allocates on demand, without a cap.
    pub pool_instances: u32,
    /// Calls one walker / guard instance serves before it is retired. An
    /// instance is reused only after calls that did not trap; 1 gives
    /// every call a fresh instance (no guest state survives between calls)
    /// at several times the cost per call.
    pub reuse_calls: u32,
}

impl Default for PluginsConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("plugins"),
            watch: true,
            timeout_ms: 1_000,
            max_memory_bytes: 64 * 1024 * 1024,
            overrides: BTreeMap::new(),
            cache_dir: Some(PathBuf::from("data/wasm-cache")),
            pool_instances: 1000,
            reuse_calls: 1000,
        }
    }
}

/// Limits and rights for one plugin, overriding the defaults.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginLimits {
    /// Wall-clock budget of one call.
    pub timeout_ms: Option<u64>,
    /// Linear-memory cap.
    pub max_memory_bytes: Option<usize>,
    /// Store calls act with full rights (no role lists, no guards, protected
    /// fields readable) instead of as the calling client.
    pub trusted_store: bool,
    /// Bus calls (publish, notify, channel and presence calls) act with
    /// full rights instead of as the calling client.
    pub trusted_bus: bool,
}

/// Embedded storage.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
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
                && !["/healthz", "/readyz", "/metrics"].contains(&path.as_str())
                && !path.starts_with("/walker/");
            if !ok {
                return Err(ConfigError::Value(format!(
                    "paths.{name} = `{path}`: use an absolute path other than /, /healthz, /readyz, /metrics, /walker/*"
                )));
            }
            if let Some((other, _)) = paths[..i].iter().find(|(_, q)| q == path) {
                return Err(ConfigError::Value(format!(
                    "paths.{name} and paths.{other} are both `{path}`"
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
