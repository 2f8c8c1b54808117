//! Prometheus metrics served at `/metrics`. Counters are plain atomics
//! (prometheus-client), so the hot path pays one relaxed add per update.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

/// Every metric the server exports.
pub struct Metrics {
    registry: Registry,
    /// Connections open now.
    pub connections: Gauge,
    /// Connections accepted since start.
    pub connections_total: Counter,
    /// Frames received from clients.
    pub messages_in: Counter,
    /// Frames sent to clients.
    pub messages_out: Counter,
    /// Error frames sent, by code.
    pub errors: Family<Labels, Counter>,
    /// Connections dropped by the server, by reason (slow_consumer,
    /// heartbeat_timeout, payload_too_large...).
    pub disconnects: Family<Labels, Counter>,
    /// Plugin calls, by plugin and outcome (ok, error, trap, timeout).
    pub plugin_calls: Family<Labels, Counter>,
    /// Plugin loads, by file and outcome (loaded, failed, removed).
    pub plugin_loads: Family<Labels, Counter>,
    /// Tokens refused, by reason (expired, unknown_key_id, wrong_issuer...).
    pub auth_refusals: Family<Labels, Counter>,
    /// 1 while the cluster link is up (0 when down or not in a cluster).
    pub cluster_up: Gauge,
    /// Cluster traffic, by direction and kind (sent / received / dropped).
    pub cluster: Family<Labels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let m = Metrics {
            connections: Gauge::default(),
            connections_total: Counter::default(),
            messages_in: Counter::default(),
            messages_out: Counter::default(),
            errors: Family::default(),
            disconnects: Family::default(),
            plugin_calls: Family::default(),
            plugin_loads: Family::default(),
            auth_refusals: Family::default(),
            cluster_up: Gauge::default(),
            cluster: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "switchboard_connections",
            "Connections open now",
            m.connections.clone(),
        );
        registry.register(
            "switchboard_connections_accepted",
            "Connections accepted since start",
            m.connections_total.clone(),
        );
        registry.register(
            "switchboard_messages_in",
            "Frames received from clients",
            m.messages_in.clone(),
        );
        registry.register(
            "switchboard_messages_out",
            "Frames sent to clients",
            m.messages_out.clone(),
        );
        registry.register(
            "switchboard_errors",
            "Error frames sent, by code",
            m.errors.clone(),
        );
        registry.register(
            "switchboard_disconnects",
            "Connections dropped by the server, by reason",
            m.disconnects.clone(),
        );
        registry.register(
            "switchboard_plugin_calls",
            "Plugin calls, by plugin and outcome",
            m.plugin_calls.clone(),
        );
        registry.register(
            "switchboard_plugin_loads",
            "Plugin file loads, by file and outcome",
            m.plugin_loads.clone(),
        );
        registry.register(
            "switchboard_auth_refusals",
            "Tokens refused, by reason",
            m.auth_refusals.clone(),
        );
        registry.register(
            "switchboard_cluster_up",
            "1 while the link to the other nodes is up",
            m.cluster_up.clone(),
        );
        registry.register(
            "switchboard_cluster_events",
            "Events between nodes, by outcome (sent, received, dropped, lagged)",
            m.cluster.clone(),
        );
        Metrics { registry, ..m }
    }
}

/// A label value that cannot break the exposition format: file names come
/// from the plugins folder, where a name with a quote and a newline would
/// otherwise inject samples. Anything outside `[A-Za-z0-9._:-]` becomes
/// `_`, and the value is cut to 128 characters.
fn label(value: &str) -> String {
    value
        .chars()
        .take(128)
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._:-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl Metrics {
    /// Counts an error frame.
    pub fn error(&self, code: crate::error::ErrorCode) {
        self.errors
            .get_or_create(&vec![("code", code.as_str().to_owned())])
            .inc();
    }

    /// Counts a server-side disconnect.
    pub fn disconnect(&self, reason: &'static str) {
        self.disconnects
            .get_or_create(&vec![("reason", reason.to_owned())])
            .inc();
    }

    /// Counts a refused token.
    pub fn auth_refusal(&self, reason: &'static str) {
        self.auth_refusals
            .get_or_create(&vec![("reason", reason.to_owned())])
            .inc();
    }

    /// Counts a plugin call outcome.
    pub fn plugin_call(&self, plugin: &str, outcome: &'static str) {
        self.plugin_call_counter(plugin, outcome).inc();
    }

    /// The counter of one plugin's calls with `outcome`, to keep and count
    /// on without a lookup per call.
    pub fn plugin_call_counter(&self, plugin: &str, outcome: &'static str) -> Counter {
        self.plugin_calls
            .get_or_create(&vec![
                ("plugin", label(plugin)),
                ("outcome", outcome.to_owned()),
            ])
            .clone()
    }

    /// Counts a plugin load outcome.
    pub fn plugin_load(&self, file: &str, outcome: &'static str) {
        self.plugin_loads
            .get_or_create(&vec![
                ("file", label(file)),
                ("outcome", outcome.to_owned()),
            ])
            .inc();
    }

    /// Counts `n` events between nodes with this outcome.
    pub fn cluster_events(&self, outcome: &'static str, n: u64) {
        self.cluster
            .get_or_create(&vec![("outcome", outcome.to_owned())])
            .inc_by(n);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
