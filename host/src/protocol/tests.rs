//! Decoding tests for every dialect: the shapes each seed document uses,
//! and the errors bad frames get.

use serde_json::json;

use super::daptin::Daptin;
use super::jac::Jac;
use super::native::Native;
use super::rtbdp::Rtbdp;
use super::{Command, Dialect, Target};
use crate::error::ErrorCode;

fn decode(dialect: &dyn Dialect, frame: serde_json::Value) -> Vec<Command> {
    dialect
        .decode(&frame.to_string())
        .expect("decodes")
        .into_iter()
        .map(|r| r.command)
        .collect()
}

fn error_code(dialect: &dyn Dialect, text: &str) -> ErrorCode {
    dialect.decode(text).expect_err("refused").error.code
}

#[test]
fn native_keeps_request_ids_and_names_bad_fields() {
    let requests = Native
        .decode(r#"{"type":"publish","requestId":"9","channel":"n","message":{"a":1}}"#)
        .expect("decodes");
    assert_eq!(requests[0].id, Some(json!("9")));
    let err = Native
        .decode(r#"{"type":"publish","requestId":7,"channel":3}"#)
        .expect_err("bad");
    assert_eq!(err.request_id, Some(json!(7)));
    assert_eq!(err.error.code, ErrorCode::BadRequest);
    assert!(err.error.message.contains("`channel`"));
    assert_eq!(error_code(&Native, "{"), ErrorCode::InvalidJson);
    assert_eq!(
        error_code(&Native, r#"{"type":"nope"}"#),
        ErrorCode::UnknownMessageType
    );
    assert_eq!(
        error_code(&Native, r#"{"type":"subscribe","channel":"a\u0000b"}"#),
        ErrorCode::BadRequest,
        "control characters are reserved for internal channels"
    );
}

#[test]
fn daptin_splits_comma_separated_topics() {
    let commands = decode(
        &Daptin,
        json!({"method": "subscribe", "attributes": {"topicName": "user_account, document,order"}}),
    );
    let names: Vec<&str> = commands
        .iter()
        .map(|c| match c {
            Command::Subscribe { target, .. } => target.name(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(names, ["user_account", "document", "order"]);
    assert_eq!(
        decode(&Daptin, json!({"method": "list-topic"})),
        [Command::TopicList]
    );
    assert_eq!(
        error_code(&Daptin, r#"{"attributes":{}}"#),
        ErrorCode::UnknownMessageType
    );
}

#[test]
fn jac_walker_replies_only_on_request() {
    let commands = decode(
        &Jac,
        json!({"type": "walker", "walker": "w", "context": {"v": 1}}),
    );
    assert!(matches!(
        &commands[0],
        Command::Walker { respond: false, .. }
    ));
    let commands = decode(
        &Jac,
        json!({"type": "walker", "walker": "w", "response": true}),
    );
    assert!(matches!(
        &commands[0],
        Command::Walker { respond: true, .. }
    ));
    let commands = decode(&Jac, json!({"type": "user", "root_ids": ["r"], "data": 1}));
    assert!(matches!(&commands[0], Command::Send { users, .. } if users == &["r".to_owned()]));
}

#[test]
fn rtbdp_handles_subscribe_then_replay_then_unsubscribe() {
    let commands = decode(
        &Rtbdp,
        json!({"unsubscribe": [0], "replay": [{"id": 2, "table": "t", "limit": 5}], "subscribe": [{"id": 1, "table": "t"}]}),
    );
    assert!(
        matches!(&commands[0], Command::Subscribe { key: Some(k), target: Target::Resource(t), .. } if k == "1" && t == "t")
    );
    assert!(matches!(
        &commands[1],
        Command::Replay { limit: Some(5), .. }
    ));
    assert!(matches!(&commands[2], Command::Unsubscribe { key: Some(k), .. } if k == "0"));
    assert_eq!(
        error_code(&Rtbdp, r#"{"subscribe":[{"table":"t"}]}"#),
        ErrorCode::BadRequest
    );
    assert_eq!(error_code(&Rtbdp, "{}"), ErrorCode::UnknownMessageType);
}
