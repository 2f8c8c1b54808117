//! The JavaScript client SDK (`clients/js`) and the web console, tested by
//! Node's test runner against real servers: this test starts a Redis for
//! the restart test, points the Node tests at the server binary, the chat
//! plugin and Debian's Chromium, and fails when they do.

use std::path::PathBuf;
use std::process::Command;

use integration_tests::redis::RedisServer;
use integration_tests::*;

fn js_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../clients/js")
}

#[test]
fn the_js_client_and_the_console_pass_their_node_tests() {
    let dir = js_dir();
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "run `npm ci --prefix clients/js` first (scripts/test.sh does)"
    );
    let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("Debian's chromium: install it with scripts/install-services.sh");
    let redis = RedisServer::start();
    let out = Command::new("node")
        .arg("--experimental-websocket")
        .arg("--test")
        .arg("--test-concurrency=1")
        .args([
            "test/client.test.js",
            "test/browser.test.js",
            "test/console.test.js",
        ])
        .current_dir(&dir)
        .env("SB_EXE", env!("CARGO_BIN_EXE_switchboard-cli"))
        .env("SB_CHAT_WASM", example_plugin("chat"))
        .env("SB_REDIS_URL", redis.url())
        .env("SB_CHROMIUM", chromium)
        .output()
        .expect("node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "node tests failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("# fail 0"), "{stdout}");
}
