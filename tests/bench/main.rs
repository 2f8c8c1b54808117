//! Benchmarks that print tables. Every figure stands beside a baseline
//! measured in the same run on the same machine.
//!
//! `cargo run --release -p integration-tests --bin bench -- [walkers|inserts|all]`

mod inserts;
mod walkers;

use std::time::Duration;

use clap::{Parser, ValueEnum};

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum Scenario {
    /// Walker round trips through WASM vs a native Rust walker.
    Walkers,
    /// Inserts per second with events fanned out to N subscribers.
    Inserts,
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
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let duration = Duration::from_secs(args.seconds.max(1));
    if matches!(args.scenario, Scenario::Walkers | Scenario::All) {
        walkers::run(duration, args.clients).await;
    }
    if matches!(args.scenario, Scenario::Inserts | Scenario::All) {
        inserts::run(duration).await;
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
