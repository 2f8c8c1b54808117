//! The polyglot examples — `plugins/{rust,py,js,c}-echo`, one contract in
//! four languages — each served by the same host: a walker over ws and
//! HTTP, a guard that refuses a publish, a scripted socket that answers
//! text with JSON and binary with the same bytes.

use integration_tests::*;
use serde_json::json;

/// (plugin file, walker, guarded channel prefix, `lang` it answers with).
const EXAMPLES: [(&str, &str, &str, &str); 4] = [
    ("rust-echo", "rust_echo", "rust", "rust"),
    ("py-echo", "py_echo", "py", "python"),
    ("js-echo", "js_echo", "js", "js"),
    ("c-echo", "c_echo", "c", "c"),
];

#[tokio::test]
async fn every_language_serves_a_walker_a_guard_and_a_socket() {
    let files: Vec<_> = EXAMPLES.iter().map(|e| example_plugin(e.0)).collect();
    let dir = plugin_dir(&files);
    let server = start(config_with_plugins(dir.path(), false)).await;
    let (mut client, _) = connect_native(server.addr, "").await;
    for (i, (file, walker, prefix, lang)) in EXAMPLES.into_iter().enumerate() {
        // The walker, anonymous, over ws and HTTP.
        let reply = client
            .request(
                json!({"type": "walker", "walker": walker, "context": {"n": i, "s": "é\"x"}}),
                walker,
            )
            .await;
        assert_eq!(reply["type"], "walker", "{file}: {reply}");
        assert_eq!(
            reply["returns"],
            json!({"echo": {"n": i, "s": "é\"x"}, "lang": lang}),
            "{file}"
        );
        assert_eq!(reply["reports"][0], reply["returns"], "{file}");
        let (status, body) = http_request(
            server.addr,
            "POST",
            &format!("/walker/{walker}"),
            None,
            r#"{"via":"http"}"#,
        )
        .await;
        assert_eq!(status, 200, "{file}: {body}");
        let body: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(body["returns"]["echo"], json!({"via": "http"}), "{file}");

        // The guard: a message with `blocked` is refused with its reason,
        // and nothing reaches the channel's subscriber; others pass.
        let channel = format!("{prefix}:room");
        let (mut watcher, _) = connect_native(server.addr, "").await;
        watcher
            .request(json!({"type": "subscribe", "channel": channel}), "s")
            .await;
        let refused = client
            .request(
                json!({"type": "publish", "channel": channel, "message": {"blocked": true}}),
                "p1",
            )
            .await;
        assert_eq!(refused["type"], "error", "{file}: {refused}");
        assert_eq!(refused["code"], "FORBIDDEN", "{file}: {refused}");
        let reason = refused["message"].as_str().unwrap_or_default();
        assert!(
            reason.contains(&format!("blocked by {lang}")),
            "{file}: {reason}"
        );
        let passed = client
            .request(
                json!({"type": "publish", "channel": channel, "message": {"fine": i}}),
                "p2",
            )
            .await;
        assert_eq!(passed["delivered"], 1, "{file}: {passed}");
        let got = watcher.recv_until(|v| v["type"] == "message").await;
        assert_eq!(
            got["data"],
            json!({"fine": i}),
            "{file}: only the allowed one"
        );

        // The scripted socket answers each message on its own path.
        let mut socket = connect(server.addr, &format!("/{file}")).await;
        socket.send(json!({"hi": lang, "i": i})).await;
        assert_eq!(
            socket.recv().await,
            json!({"lang": lang, "echo": {"hi": lang, "i": i}}),
            "{file}"
        );
        // Binary frames come back as the same bytes, in a binary frame.
        let bytes = [0u8, 0xff, 0x80, i as u8, b'{'];
        socket.send_binary(&bytes).await;
        assert_eq!(socket.recv_frame().await, Err(bytes.to_vec()), "{file}");
    }
}
