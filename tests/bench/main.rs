//! Benchmarks that print tables. Every figure stands beside a baseline
//! measured in the same run on the same machine.
//!
//! `cargo run --release -p integration-tests --bin bench -- [scenario]`
//!
//! The process-level scenarios (idle, fanout, guarded, swap) start the
//! server as its own process (`switchboard-cli`, built by the same command)
//! and load it from this one over loopback.

mod cluster;
mod compression;
mod fanout;
mod idle;
mod inserts;
mod jac;
mod languages;
mod load;
mod swap;
mod walkers;

use std::time::Duration;

use clap::{Parser, ValueEnum};

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum Scenario {
    /// Walker round trips through WASM vs a native Rust walker.
    Walkers,
    /// One walker in Rust, C, Python and JavaScript: sizes and round trips.
    Languages,
    /// Inserts per second with events fanned out to N subscribers.
    Inserts,
    /// Idle connections held: RSS per connection, time to connect.
    Idle,
    /// Broadcast fan-out against a Node.js ws server.
    Fanout,
    /// Fan-out where every subscriber holds a guard filter.
    Guarded,
    /// Broadcast and idle connections with permessage-deflate on and off.
    Compression,
    /// Hot swap of a plugin under load.
    Swap,
    /// Fan-out across a cluster of nodes on Redis vs a single node.
    Cluster,
    /// Walker round trips over /websocket against jac-cloud itself.
    Jac,
    /// (internal) a subscriber process for `cluster`.
    #[value(hide = true)]
    Worker,
    /// Everything.
    All,
}

#[derive(Parser)]
#[command(about = "Switchboard benchmarks")]
struct Args {
    /// Which benchmark to run.
    #[arg(value_enum, default_value = "all")]
    scenario: Scenario,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Concurrent clients for the walker benchmark.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// Idle connections to hold (capped by the open-file limit).
    #[arg(long, default_value_t = 100_000)]
    idle: usize,
    /// Subscriber counts for the fan-out benchmark.
    #[arg(long, value_delimiter = ',', default_values_t = [1000, 10_000])]
    subscribers: Vec<usize>,
    /// Messages published per fan-out run.
    #[arg(long, default_value_t = 100)]
    messages: usize,
    /// Clients calling during the hot swap.
    #[arg(long, default_value_t = 1000)]
    swap_clients: usize,
    /// Subscribers across the cluster.
    #[arg(long, default_value_t = 100_000)]
    cluster_subscribers: usize,
    /// Nodes in the cluster.
    #[arg(long, default_value_t = 6)]
    cluster_nodes: usize,
    /// (worker) the node to connect to.
    #[arg(long, hide = true)]
    worker_addr: Option<std::net::SocketAddr>,
    /// (worker) how many subscribers.
    #[arg(long, hide = true, default_value_t = 0)]
    worker_count: usize,
    /// (worker) the first subscriber's index (spreads source addresses).
    #[arg(long, hide = true, default_value_t = 0)]
    worker_first: usize,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let duration = Duration::from_secs(args.seconds.max(1));
    if args.scenario == Scenario::Worker {
        let addr = args.worker_addr.expect("--worker-addr");
        cluster::worker(addr, args.worker_count, args.worker_first, args.messages).await;
        return;
    }
    if matches!(args.scenario, Scenario::Walkers | Scenario::All) {
        walkers::run(duration, args.clients).await;
    }
    if matches!(args.scenario, Scenario::Languages | Scenario::All) {
        languages::run(duration, args.clients).await;
    }
    if matches!(args.scenario, Scenario::Jac | Scenario::All) {
        jac::run(duration, args.clients).await;
    }
    if matches!(args.scenario, Scenario::Inserts | Scenario::All) {
        inserts::run(duration).await;
    }
    if matches!(args.scenario, Scenario::Idle | Scenario::All) {
        idle::run(args.idle).await;
    }
    if matches!(args.scenario, Scenario::Fanout | Scenario::All) {
        fanout::run(&args.subscribers, args.messages).await;
    }
    if matches!(args.scenario, Scenario::Compression | Scenario::All) {
        compression::run(&args.subscribers, args.messages).await;
    }
    if matches!(args.scenario, Scenario::Guarded | Scenario::All) {
        let n = args.subscribers.iter().copied().max().unwrap_or(10_000);
        fanout::run_guarded(
            n,
            args.messages,
            &integration_tests::example_plugin("guard"),
        )
        .await;
    }
    if matches!(args.scenario, Scenario::Cluster | Scenario::All) {
        cluster::run(args.cluster_subscribers, args.cluster_nodes, args.messages).await;
    }
    if matches!(args.scenario, Scenario::Swap | Scenario::All) {
        swap::run(
            args.swap_clients,
            args.seconds.max(6),
            &integration_tests::fixture_plugin("counter-v1"),
            &integration_tests::fixture_plugin("counter-v2"),
        )
        .await;
    }
}

/// Latency percentiles in microseconds from sorted samples.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}
