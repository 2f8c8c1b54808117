//! The running server: shared state ([`App`]) and its lifecycle
//! ([`Server`]): bind, serve, shut down gracefully.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::{AuthError, Authenticator};
use crate::bus::history::{Histories, History, MemoryHistory};
use crate::bus::{Bus, BusLimits, FilterLimits};
use crate::cluster::Cluster;
use crate::config::Config;
use crate::gateway::Admission;
use crate::metrics::Metrics;
use crate::plugins::{EngineError, HostEnv, Plugins};
use crate::policy::{Guards, Policy};
use crate::quota::Quotas;
use crate::resources::Resources;
use crate::session::NamedTopics;
use crate::store::{RedbStore, Store, StoreError};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The auth configuration is unusable.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The configuration is inconsistent.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The store could not be opened.
    #[error("cannot open the store: {0}")]
    Store(#[from] StoreError),
    /// The plugin engine could not start.
    #[error(transparent)]
    Plugins(#[from] EngineError),
    /// The node could not join its cluster.
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
    /// Serving failed.
    #[error("server error: {0}")]
    Serve(#[from] std::io::Error),
}

/// State every connection and handler shares.
pub struct App {
    /// The configuration in force.
    pub config: Arc<Config>,
    /// Token verification.
    pub auth: Authenticator,
    /// Delivery.
    pub bus: Arc<Bus>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Cancelled when the server shuts down; sessions then close with 1001.
    pub shutdown: CancellationToken,
    /// Tracks live sessions so shutdown can wait for their close frames.
    pub sessions: TaskTracker,
    /// Caps concurrent connections.
    pub connections: Arc<Semaphore>,
    /// The WebSocket layer: upgrade options, compression and its budget.
    pub wire: crate::wire::Layer,
    /// Loaded WebAssembly plugins.
    pub plugins: Arc<Plugins>,
    /// Configured resources over the store.
    pub resources: Arc<Resources>,
    /// Daptin's user-created topics (the cluster's, in a cluster).
    pub topics: NamedTopics,
    /// Request rate limits and write quotas, by identity.
    pub quotas: Arc<Quotas>,
    /// Connections counted per address, unfinished handshakes bounded.
    pub admission: Arc<Admission>,
    /// This node's cluster membership, when `cluster.redis_url` is set.
    pub cluster: Option<Arc<Cluster>>,
}

impl App {
    /// Starts shutting down: background tasks and listeners see the
    /// token, every connection (and any still registering) is asked to
    /// close with 1001.
    pub fn stop(&self) {
        self.shutdown.cancel();
        self.bus
            .close_all(crate::session::CLOSE_GOING_AWAY, "server shutting down");
    }

    /// Builds the shared state of a single node.
    ///
    /// # Errors
    /// An unusable auth configuration.
    pub fn new(config: Config) -> Result<Arc<Self>, StartError> {
        let store = Arc::new(RedbStore::open(
            &config.store.path,
            config.store.max_record_bytes,
            config.store.change_log_retention,
        )?);
        Self::build(config, Arc::new(Metrics::default()), None, store)
    }

    /// Builds the shared state over `store`; with `cluster`, channel
    /// history is kept in its Redis (the bus is attached when the server
    /// starts).
    ///
    /// # Errors
    /// An unusable auth configuration.
    pub fn build(
        config: Config,
        metrics: Arc<Metrics>,
        cluster: Option<Arc<Cluster>>,
        store: Arc<dyn Store>,
    ) -> Result<Arc<Self>, StartError> {
        config.validate()?;
        let hs256_secret = crate::auth::secret::hs256_secret(&config)?;
        let limits = &config.limits;
        let bus = Arc::new(Bus::new(metrics.clone(), BusLimits::from_config(limits)));
        let quotas = Quotas::new(limits);
        // WebSocket connections stay `fd_reserve` short of what the
        // process's descriptors allow, so plain requests and handshakes
        // (the health checks among them) always find one.
        let capacity = crate::gateway::fd_capacity();
        let sockets = limits
            .max_connections
            .min(capacity.saturating_sub(limits.fd_reserve).max(1));
        let admission = Admission::new(limits, capacity);
        let filters = FilterLimits {
            max_bytes: limits.max_filter_bytes,
            max_rows: limits.max_filter_rows,
        };
        let policy = Arc::new(Policy::new(config.resources.clone(), &config.auth, filters));
        let kept: Arc<dyn History> = match &cluster {
            Some(cluster) => cluster.history(),
            None => Arc::new(MemoryHistory::default()),
        };
        let histories = Arc::new(Histories::new(config.channels.clone(), kept));
        let resources = Arc::new(Resources::new(
            store,
            policy.clone(),
            bus.clone(),
            quotas.clone(),
            limits.max_page_bytes,
            histories,
        ));
        let env = Arc::new(HostEnv {
            bus: bus.clone(),
            kv: Default::default(),
            resources: resources.clone(),
        });
        let plugins = Plugins::new(config.plugins.clone(), env, metrics.clone())?;
        let guards: std::sync::Weak<dyn Guards> = Arc::downgrade(&plugins) as _;
        policy.set_guards(guards);
        Ok(Arc::new(Self {
            auth: Authenticator::new(&config.auth, hs256_secret.as_deref(), metrics.clone())?,
            bus,
            plugins,
            resources,
            topics: Default::default(),
            quotas,
            connections: Arc::new(Semaphore::new(sockets)),
            wire: crate::wire::Layer::new(&config.limits),
            admission,
            cluster,
            config: Arc::new(config),
            metrics,
            shutdown: CancellationToken::new(),
            sessions: TaskTracker::new(),
        }))
    }
}

/// Binds with a deep accept queue: connection storms (a reconnecting fleet,
/// a load test) otherwise overflow tokio's default backlog of 1024, and
/// every overflowed client waits out a one-second SYN retransmit. The
/// kernel caps the value at `net.core.somaxconn`.
fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(65_535)
}

/// Forgets idle rate-limit keys once a minute, until shutdown: budgets
/// cost memory only while they are being spent.
fn spawn_pruner(app: &Arc<App>) {
    let (quotas, shutdown) = (app.quotas.clone(), app.shutdown.clone());
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(60));
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = every.tick() => quotas.prune(),
            }
        }
    });
}

/// A started server.
pub struct Server {
    /// The bound address (useful with port 0).
    pub addr: SocketAddr,
    /// The extra listeners' bound addresses, in configuration order.
    pub listeners: Vec<SocketAddr>,
    /// Its shared state.
    pub app: Arc<App>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Binds `config.listen` and starts serving in the background.
    ///
    /// # Errors
    /// Bad auth configuration, or the address cannot be bound.
    pub async fn start(config: Config) -> Result<Self, StartError> {
        let addr = config.listen;
        let listener = bind(addr).map_err(|source| StartError::Bind { addr, source })?;
        let addr = listener.local_addr()?;
        let metrics = Arc::new(Metrics::default());
        let cluster = match config.cluster.redis_url.clone() {
            Some(url) => Some(Cluster::connect(&config.cluster, &url, metrics.clone()).await?),
            None => None,
        };
        let store = crate::store::open(&config.store).await?;
        let app = App::build(config, metrics, cluster, store)?;
        app.resources.start_feed().await?;
        if let Some(cluster) = &app.cluster {
            cluster.start(&app.bus, &app.shutdown);
        }
        app.auth.start(app.shutdown.clone());
        app.plugins.start().await;
        spawn_pruner(&app);
        let router = crate::gateway::router(app.clone());
        let task = tokio::spawn(crate::gateway::serve(listener, router, app.clone()));
        tracing::info!(%addr, "listening");
        let mut listeners = Vec::new();
        for extra in &app.config.listeners {
            let listener = bind(extra.listen).map_err(|source| StartError::Bind {
                addr: extra.listen,
                source,
            })?;
            let bound = listener.local_addr()?;
            let router = crate::gateway::dialect_router(app.clone(), extra.dialect);
            tokio::spawn(crate::gateway::serve(listener, router, app.clone()));
            tracing::info!(addr = %bound, dialect = ?extra.dialect, "listening");
            listeners.push(bound);
        }
        Ok(Self {
            addr,
            listeners,
            app,
            task,
        })
    }

    /// Starts shutting down: stop accepting, close every socket with 1001.
    pub fn shutdown(&self) {
        self.app.stop();
    }

    /// Waits until the server stopped and every session said goodbye
    /// (at most five seconds for the sessions).
    ///
    /// # Errors
    /// The server failed while serving.
    pub async fn wait(self) -> Result<(), StartError> {
        let served = self.task.await.unwrap_or(Ok(()));
        self.app.sessions.close();
        if tokio::time::timeout(Duration::from_secs(5), self.app.sessions.wait())
            .await
            .is_err()
        {
            tracing::warn!("sessions still open after 5 s; exiting anyway");
        }
        if let Some(cluster) = &self.app.cluster {
            cluster.leave().await;
        }
        served.map_err(StartError::Serve)
    }
}
