//! `switchboard plugin new` and `plugin build`, as a plugin author runs
//! them: each language's template is scaffolded outside the repository,
//! built with its real toolchain into a plugins folder, loaded by a
//! server, and its walker and guard answer.

use std::path::Path;
use std::process::Command;

use integration_tests::*;
use serde_json::json;

fn cli(args: &[&str], dir: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard-cli"))
        .args(args)
        .current_dir(dir)
        // One cargo target dir for every run, so std and the bindings'
        // macros are compiled once, not per test run.
        .env("CARGO_TARGET_DIR", target_dir().join("scaffold"))
        .output()
        .expect("switchboard-cli");
    assert!(
        out.status.success(),
        "switchboard {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn each_language_is_scaffolded_built_loaded_and_called() {
    let work = tempfile::tempdir().expect("dir");
    let plugins = work.path().join("plugins");
    let langs = ["rust", "python", "js", "c"];
    for lang in langs {
        let name = format!("hello-{lang}");
        cli(&["plugin", "new", &name, "--lang", lang], work.path());
        if lang == "js" {
            // Reuse the example's installed componentize-js (the template
            // pins the same version) instead of a fresh npm install.
            let modules =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/js-echo/node_modules");
            std::os::unix::fs::symlink(&modules, work.path().join(&name).join("node_modules"))
                .expect("link node_modules");
        }
        cli(&["plugin", "build", &name, "--out", "plugins"], work.path());
        assert!(
            plugins.join(format!("{name}.wasm")).is_file(),
            "{name}.wasm"
        );
    }
    let server = start(config_with_plugins(&plugins, false)).await;
    let (mut client, _) = connect_native(server.addr, "").await;
    for lang in langs {
        let name = format!("hello-{lang}");
        let walker = name.replace('-', "_");
        let reply = client
            .request(
                json!({"type": "walker", "walker": walker, "context": {"name": "Ann"}}),
                &walker,
            )
            .await;
        assert_eq!(
            reply["returns"],
            json!({"from": name, "got": {"name": "Ann"}}),
            "{lang}: {reply}"
        );
        let refused = client
            .request(
                json!({"type": "publish", "channel": format!("{name}:x"), "message": {"blocked": 1}}),
                "p",
            )
            .await;
        assert_eq!(refused["code"], "FORBIDDEN", "{lang}: {refused}");
        let passed = client
            .request(
                json!({"type": "publish", "channel": format!("{name}:x"), "message": {"ok": 1}}),
                "q",
            )
            .await;
        assert_eq!(passed["type"], "published", "{lang}: {passed}");
    }
}
