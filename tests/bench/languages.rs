//! One walker in four languages: the polyglot examples
//! (`plugins/{rust,py,js,c}-echo`, the same contract each) served by one
//! server, each one's component size and walker round trips beside the
//! Rust one's, measured in the same run by the same clients.

use std::time::Duration;

use integration_tests::{example_plugin, plugin_dir};

use crate::load::start_switchboard;
use crate::walkers::measure;

/// (plugin file, walker), Rust first: the baseline.
const LANGS: [(&str, &str); 4] = [
    ("rust-echo", "rust_echo"),
    ("c-echo", "c_echo"),
    ("py-echo", "py_echo"),
    ("js-echo", "js_echo"),
];

/// Runs the comparison and prints its table.
pub async fn run(duration: Duration, clients: usize) {
    let files: Vec<_> = LANGS.iter().map(|(f, _)| example_plugin(f)).collect();
    let dir = plugin_dir(&files);
    let toml = format!(
        "[limits]\nrate_limit_max_requests = 0\n[plugins]\ndir = \"{}\"\nwatch = false\n",
        dir.path().display()
    );
    let server = start_switchboard(dir.path(), &toml);
    for (_, walker) in LANGS {
        measure(server.addr, walker, 2, Duration::from_millis(300)).await;
    }
    println!(
        "\n### Plugin languages: one walker, four languages ({clients} clients, {} s each, same server)\n",
        duration.as_secs()
    );
    println!(
        "| language | component bytes | vs Rust | walker rt/s | p50 µs | p99 µs | rt/s vs Rust |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let mut baseline: Option<(u64, f64)> = None;
    for (file, (plugin, walker)) in files.iter().zip(LANGS) {
        let bytes = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
        let sample = measure(server.addr, walker, clients, duration).await;
        let (base_bytes, base_rate) = *baseline.get_or_insert((bytes, sample.calls_per_sec));
        println!(
            "| {plugin} | {bytes} | {:.1}× | {:.0} | {} | {} | {:.2} |",
            bytes as f64 / base_bytes as f64,
            sample.calls_per_sec,
            sample.p50_us,
            sample.p99_us,
            sample.calls_per_sec / base_rate,
        );
    }
}
