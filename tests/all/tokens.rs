//! Tokens as an attacker tries them: the old public default secret, a
//! server that only knows RS256, tokens missing `aud` / `iss`, expiry on an
//! open connection, and a cross-site page riding the `token` cookie.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use integration_tests::*;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use switchboard::auth::mint_token;
use switchboard::Config;

/// The secret that used to be written in config.rs: anyone could sign with it.
const OLD_PUBLIC_SECRET: &str = "switchboard-dev-secret-change-me";
const RS_PRIVATE: &str = include_str!("../keys/rs256-private.pem");
const RS_PUBLIC: &str = include_str!("../keys/rs256-public.pem");

fn now() -> u64 {
    switchboard::now_ms() / 1000
}

fn hs(secret: &str, claims: Value) -> String {
    sign_hs256(secret, &claims)
}

async fn refused(addr: std::net::SocketAddr, token: &str) -> String {
    let mut c = connect(addr, &format!("/ws?token={token}")).await;
    let close = c.recv_close().await.expect("close frame");
    assert_eq!(u16::from(close.code), 1008);
    close.reason.to_string()
}

#[tokio::test]
async fn without_a_configured_key_a_private_secret_is_generated_and_shared_with_the_token_command()
{
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("switchboard.toml");
    std::fs::write(
        &file,
        format!(
            "[store]\npath = \"{0}/data/store.redb\"\n[plugins]\ndir = \"{0}/plugins\"\nwatch = false\n",
            dir.path().display()
        ),
    )
    .expect("config");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard-cli"))
        .arg("--config")
        .arg(&file)
        .args(["token", "--sub", "alice", "--role", "admin"])
        .env_remove("SWITCHBOARD_CONFIG")
        .output()
        .expect("run switchboard token");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let minted = String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_owned();
    let secret_file = dir.path().join("data/jwt-secret");
    let meta = std::fs::metadata(&secret_file).expect("secret generated");
    assert_eq!(
        meta.permissions().mode() & 0o777,
        0o600,
        "only the owner reads it"
    );
    let secret = std::fs::read_to_string(&secret_file).expect("read");
    assert_eq!(secret.trim().len(), 64, "32 random bytes, hex");

    let mut config = Config::load(Some(&file)).expect("load");
    config.listen = "127.0.0.1:0".parse().expect("addr");
    let server = start(config).await;
    let (_, hello) = connect_native(server.addr, &format!("?token={minted}")).await;
    assert_eq!(
        hello["user"]["id"], "alice",
        "the server and the command share it"
    );

    // The attack: an admin token signed with the old built-in secret.
    let forged = mint_token(
        OLD_PUBLIC_SECRET,
        "mallory",
        Some("admin"),
        60,
        Default::default(),
    )
    .expect("mint");
    let reason = refused(server.addr, &forged).await;
    assert!(reason.contains("bad signature"), "{reason}");
    assert_eq!(
        std::fs::read_to_string(&secret_file).expect("read"),
        secret,
        "a restart keeps the secret"
    );
}

#[tokio::test]
async fn an_rs256_only_server_refuses_every_hs256_token() {
    let dir = tempfile::tempdir().expect("dir");
    let mut config = test_config();
    config.auth.jwt_secret = None;
    config.auth.jwt_public_key_pem = Some(RS_PUBLIC.into());
    config.store.path = dir.path().join("store.redb");
    let server = start(config).await;
    assert!(
        !dir.path().join("jwt-secret").exists(),
        "no HS256 secret is made up"
    );
    for secret in [OLD_PUBLIC_SECRET, TEST_SECRET, ""] {
        let forged = hs(secret, json!({"sub": "mallory", "role": "admin"}));
        let reason = refused(server.addr, &forged).await;
        assert!(reason.contains("HS256"), "{reason}");
    }
    let rs = encode(
        &Header::new(Algorithm::RS256),
        &json!({"sub": "rs", "exp": now() + 60}),
        &EncodingKey::from_rsa_pem(RS_PRIVATE.as_bytes()).expect("key"),
    )
    .expect("encode");
    let (_, hello) = connect_native(server.addr, &format!("?token={rs}")).await;
    assert_eq!(hello["user"]["id"], "rs");
}

#[tokio::test]
async fn a_configured_audience_or_issuer_must_be_present() {
    let mut config = test_config();
    config.auth.audience = Some("switchboard".into());
    config.auth.issuer = Some("https://issuer.test".into());
    let server = start(config).await;
    let good = json!({"sub": "a", "aud": "switchboard", "iss": "https://issuer.test"});
    let (_, hello) =
        connect_native(server.addr, &format!("?token={}", hs(TEST_SECRET, good))).await;
    assert_eq!(hello["user"]["id"], "a");
    for (missing, claims) in [
        ("aud", json!({"sub": "a", "iss": "https://issuer.test"})),
        ("iss", json!({"sub": "a", "aud": "switchboard"})),
    ] {
        let reason = refused(server.addr, &hs(TEST_SECRET, claims)).await;
        assert!(
            reason.contains("missing required claim") && reason.contains(missing),
            "{reason}"
        );
    }
}

#[tokio::test]
async fn an_open_connection_is_warned_then_closed_at_exp_unless_refreshed() {
    let mut config = test_config();
    config.auth.expiry_warning_ms = 1500;
    let server = start(config).await;
    let exp = now() + 3;
    let short = hs(TEST_SECRET, json!({"sub": "eve", "exp": exp}));
    let long = token("eve", None, json!({}));
    let (mut expiring, _) = connect_native(server.addr, &format!("?token={short}")).await;
    let (mut refreshing, _) = connect_native(server.addr, &format!("?token={short}")).await;
    let bearer = format!("Bearer {short}");
    let mut jac = connect_with(server.addr, "/websocket", &[("authorization", &bearer)]).await;
    assert_eq!(jac.recv().await["data"]["root_id"], "eve");
    let started = Instant::now();

    let warning = expiring.recv().await;
    assert_eq!(warning["type"], "error", "{warning}");
    assert_eq!(warning["code"], "TOKEN_EXPIRED");
    let warned = refreshing.recv().await;
    assert_eq!(warned["code"], "TOKEN_EXPIRED");
    assert!(
        switchboard::now_ms() < exp * 1000,
        "the warning comes before exp"
    );
    let ok = refreshing
        .request(json!({"type": "auth", "token": long}), "r")
        .await;
    assert_eq!(ok["type"], "authenticated", "{ok}");
    jac.send(json!({"type": "change_user", "token": format!("Bearer {long}")}))
        .await;
    jac.recv_until(|v| v["type"] == "connection").await;

    let close = expiring.recv_close().await.expect("close frame");
    assert_eq!(u16::from(close.code), 1008);
    assert_eq!(close.reason, "UNAUTHORIZED: token expired");
    assert!(
        switchboard::now_ms() + 100 >= exp * 1000,
        "closed at exp, not before ({:?} after connecting)",
        started.elapsed()
    );
    // The refreshed connections outlive the old exp and keep working.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pong = refreshing.request(json!({"type": "ping"}), "p").await;
    assert_eq!(pong["type"], "pong");
    jac.send(json!({"type": "connection"})).await;
    assert_eq!(jac.recv().await["data"]["root_id"], "eve");
}

#[tokio::test]
async fn a_cross_site_page_cannot_ride_the_token_cookie() {
    let dir = plugin_dir(&[example_plugin("chat")]);
    let mut config = config_with_plugins(dir.path(), false);
    config.auth.allowed_origins = vec!["https://app.example".into()];
    let server = start(config).await;
    let alice = token("alice", Some("admin"), json!({}));
    let cookie = format!("token={alice}");
    let own = format!("http://{}", server.addr);
    let evil = [
        ("cookie", cookie.as_str()),
        ("origin", "https://evil.example"),
    ];

    assert_eq!(
        try_connect_with(server.addr, "/ws", &evil).await.err(),
        Some(403),
        "a WebSocket from another site with the user's cookie is refused"
    );
    for origin in [own.as_str(), "https://app.example"] {
        let headers = [("cookie", cookie.as_str()), ("origin", origin)];
        let mut c = connect_with(server.addr, "/ws", &headers).await;
        assert_eq!(c.recv().await["user"]["id"], "alice", "{origin} may");
    }
    // Tokens a page cannot make the browser add are not affected.
    let mut c = connect_with(
        server.addr,
        &format!("/ws?token={alice}"),
        &[("origin", "https://evil.example")],
    )
    .await;
    assert_eq!(c.recv().await["user"]["id"], "alice");

    let cookie_header = format!("Cookie: {cookie}\r\nOrigin: https://evil.example\r\n");
    let (status, body) =
        http_raw(server.addr, "POST", "/walker/whoami", &cookie_header, "{}").await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("FORBIDDEN"), "{body}");
    let cookie_header = format!("Cookie: {cookie}\r\nOrigin: {own}\r\n");
    let (status, body) =
        http_raw(server.addr, "POST", "/walker/whoami", &cookie_header, "{}").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("alice"), "{body}");
}
