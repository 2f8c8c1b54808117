//! Several nodes on one real `redis-server`: every test starts its own
//! Redis on a free loopback port and two or three nodes on port 0, and
//! checks what clients on different nodes receive.

mod delivery;
mod faults;
mod presence;
mod resume;

use integration_tests::redis::RedisServer;
use integration_tests::*;
use switchboard::Server;

/// `n` nodes of one cluster on `redis`, settled.
async fn nodes(redis: &RedisServer, n: usize) -> Vec<Server> {
    let mut servers = Vec::with_capacity(n);
    for _ in 0..n {
        servers.push(start(cluster_config(redis)).await);
    }
    servers
}

/// Waits until each node's Redis subscriptions and state are in place.
async fn settle_all(servers: &[Server]) {
    let refs: Vec<&Server> = servers.iter().collect();
    settle(&refs).await;
}
