//! A property-based fuzzing harness for every input the host parses from
//! the outside: the four dialect decoders (raw text, arbitrary JSON, and
//! frames shaped like each dialect's, with fields of every type), the
//! filter compiler, and the WIT JSON boundary (walker replies, guard
//! filters and patches). For every input: no panic, and the peak memory the
//! call allocates stays within a small multiple of the input's size.
//!
//! cargo-fuzz needs a nightly compiler and rebuilds wasmtime with sanitizer
//! instrumentation; this runs as an ordinary test, bounded by
//! `FUZZ_CASES` inputs per target (default 1500; CI uses the default,
//! longer runs set more).
//!
//! One test, one thread: the peak is measured by the global allocator, so
//! nothing else may allocate meanwhile.

use std::alloc::System;

use peakmem_alloc::{PeakMemAlloc, PeakMemAllocTrait, INSTRUMENTED_SYSTEM};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Map, Value};
use switchboard::bus::{Filter, FilterLimits};
use switchboard::plugins::boundary;
use switchboard::protocol::daptin::Daptin;
use switchboard::protocol::jac::Jac;
use switchboard::protocol::native::Native;
use switchboard::protocol::rtbdp::Rtbdp;
use switchboard::protocol::Dialect;

#[global_allocator]
static GLOBAL: &PeakMemAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Keys the decoders look for, so generated frames reach deep paths.
const KEYS: [&str; 36] = [
    "type",
    "requestId",
    "channel",
    "resource",
    "filter",
    "since",
    "events",
    "id",
    "data",
    "message",
    "users",
    "clients",
    "channels",
    "info",
    "method",
    "attributes",
    "topicName",
    "name",
    "walker",
    "context",
    "response",
    "subscribe",
    "replay",
    "unsubscribe",
    "table",
    "filters",
    "limit",
    "cursor",
    "opt",
    "start",
    "end",
    "substr",
    "inclusive",
    "token",
    "root_ids",
    "channel_ids",
];

/// `type` / `method` values the decoders know.
const KINDS: [&str; 24] = [
    "ping",
    "info",
    "auth",
    "subscribe",
    "unsubscribe",
    "publish",
    "send",
    "join",
    "leave",
    "presence",
    "walker",
    "get",
    "list",
    "insert",
    "update",
    "delete",
    "replay",
    "user",
    "client",
    "change_user",
    "connection",
    "new-message",
    "create-topic",
    "list-topic",
];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(&KEYS[..]).prop_map(str::to_owned),
        1 => ".{0,12}",
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        proptest::sample::select(&KINDS[..]).prop_map(|s| json!(s)),
        ".{0,24}".prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 96, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A frame shaped like one of the dialects': a known kind plus fields.
fn frame() -> impl Strategy<Value = Value> {
    (
        proptest::sample::select(&KINDS[..]),
        prop::collection::btree_map(key(), json_value(), 0..8),
        0..3u8,
    )
        .prop_map(|(kind, fields, shape)| {
            let mut obj: Map<String, Value> = fields.into_iter().collect();
            match shape {
                0 => {
                    obj.insert("type".into(), json!(kind));
                }
                1 => {
                    obj.insert("method".into(), json!(kind));
                }
                _ => {
                    let entries = obj
                        .remove("data")
                        .unwrap_or(json!([{"id": 1, "table": "t"}]));
                    obj.insert(kind.into(), entries);
                }
            }
            Value::Object(obj)
        })
}

/// Runs `f` on `input`, failing when it allocates more than allowed at once.
fn bounded<T>(input_len: usize, what: &str, f: impl FnOnce() -> T) -> Result<(), TestCaseError> {
    let limit = 64 * input_len + (64 << 10);
    INSTRUMENTED_SYSTEM.reset_peak_memory();
    let out = f();
    let peak = INSTRUMENTED_SYSTEM.get_peak_memory();
    drop(out);
    prop_assert!(
        peak <= limit,
        "{what}: peak {peak} bytes for {input_len} bytes of input"
    );
    Ok(())
}

fn decoders() -> [&'static dyn Dialect; 4] {
    [&Native, &Daptin, &Jac, &Rtbdp]
}

fn check_text(text: &str) -> Result<(), TestCaseError> {
    for dialect in decoders() {
        bounded(text.len(), dialect.name(), || {
            dialect.decode(text).map(|r| r.len())
        })?;
    }
    Ok(())
}

fn check_filter(value: &Value) -> Result<(), TestCaseError> {
    let len = value.to_string().len();
    let limits = FilterLimits {
        max_bytes: 16 << 10,
        max_rows: 64,
    };
    bounded(len, "filter", || limits.compile(value).map(|f| f.is_some()))?;
    bounded(len, "filter", || {
        Filter::from_value(value).map(|f| f.is_some_and(|f| f.matches(value)))
    })?;
    Ok(())
}

fn check_boundary(text: &str) -> Result<(), TestCaseError> {
    bounded(text.len(), "reply", || boundary::reply_value(text))?;
    bounded(text.len(), "guard filter", || {
        boundary::guard_filter(text).map(|f| f.is_some())
    })?;
    bounded(text.len(), "guard patch", || {
        boundary::guard_patch(text).map(|p| p.len())
    })?;
    Ok(())
}

fn runner() -> TestRunner {
    let cases = std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1500);
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

#[test]
fn everything_parsed_from_outside_never_panics_and_stays_bounded() {
    // Known hard cases first: deep nesting, huge numbers, control bytes.
    let deep = "[".repeat(5000) + &"]".repeat(5000);
    let deep_obj = "{\"type\":".repeat(3000);
    for text in [
        deep.as_str(),
        deep_obj.as_str(),
        "",
        "\u{0}",
        "{\"type\":\"subscribe\",\"resource\":\"r\",\"since\":18446744073709551615}",
        "{\"type\":\"list\",\"resource\":\"r\",\"limit\":1e309}",
        "{\"subscribe\":[{\"id\":1e400,\"table\":\"t\"}]}",
        "{\"method\":\"subscribe\",\"attributes\":{\"topicName\":\",,,,\"}}",
    ] {
        check_text(text).expect("hard case");
        check_boundary(text).expect("hard case");
    }

    runner()
        .run(&".{0,256}", |text| {
            check_text(&text)?;
            check_boundary(&text)
        })
        .expect("arbitrary text");
    runner()
        .run(&json_value(), |value| {
            let text = value.to_string();
            check_text(&text)?;
            check_filter(&value)?;
            check_boundary(&text)
        })
        .expect("arbitrary JSON");
    runner()
        .run(&frame(), |value| check_text(&value.to_string()))
        .expect("dialect-shaped frames");
}
