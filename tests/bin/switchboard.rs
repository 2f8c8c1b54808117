//! The switchboard command line, for tests and benchmarks that run it as a
//! process. It adds one native walker, `native_echo`, which the walker
//! benchmark measures WASM walkers against in the same server process.

use std::sync::Arc;

use switchboard::plugins::WalkerOutcome;

fn main() -> std::process::ExitCode {
    switchboard::cli::main_with(|app| {
        // Authenticated callers only, like the chat plugin's `echo`.
        app.plugins.register_native(
            "native_echo",
            false,
            Arc::new(|context: &serde_json::Value, _identity| {
                Ok(WalkerOutcome {
                    status: 200,
                    reports: vec![context.clone()],
                    returns: context.clone(),
                })
            }),
        );
    })
}
