//! Filters, evaluated natively per event so that guard filters need no
//! plugin call per recipient.
//!
//! Two spellings, one model — an OR of rows, each an AND of column tests:
//! - an object, `{"channel": "general", "price": {"start": 10}}`: one row;
//! - an array of such objects (rtbdp's `filters`): any row may match.
//!
//! A column test is a plain value (equality; a list matches any of its
//! items) or an object of rtbdp column filters: `opt` (one of), `start` /
//! `end` (a range, `inclusive` of the end, default true), `substr`.
//! Column names may be dotted paths (`"meta.tenant"`).

use serde_json::{Map, Value};

/// An OR of AND-ed column tests.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    rows: Vec<Vec<(String, Test)>>,
    /// The filter as given, for replies.
    source: Value,
}

#[derive(Debug, Clone, PartialEq)]
enum Test {
    Equals(Value),
    OneOf(Vec<Value>),
    Range {
        start: Option<Value>,
        end: Option<Value>,
        inclusive: bool,
    },
    Substr(String),
    All(Vec<Test>),
}

const COLUMN_FILTER_KEYS: [&str; 5] = ["opt", "start", "end", "inclusive", "substr"];

/// Bounds on what a client's filter may cost: its size as JSON, and its
/// rows once combined (each row is tested against every event, under the
/// bus's read lock).
#[derive(Debug, Clone, Copy)]
pub struct FilterLimits {
    /// Largest filter, in bytes of JSON.
    pub max_bytes: usize,
    /// Most rows.
    pub max_rows: usize,
}

/// Why a client's filter was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// Not a filter's shape.
    #[error("{0}")]
    Shape(String),
    /// Larger than allowed.
    #[error("the filter is {0} bytes; at most {1} (limits.max_filter_bytes)")]
    TooLarge(usize, usize),
    /// More rows than allowed (after combining with guards and keyed
    /// subscriptions).
    #[error("the filter has {0} rows; at most {1} (limits.max_filter_rows)")]
    TooComplex(usize, usize),
}

impl From<FilterError> for crate::error::ClientError {
    fn from(e: FilterError) -> Self {
        let code = match e {
            FilterError::TooLarge(..) => crate::error::ErrorCode::PayloadTooLarge,
            _ => crate::error::ErrorCode::BadRequest,
        };
        crate::error::ClientError::new(code, e.to_string())
    }
}

impl FilterLimits {
    /// Compiles a client's filter within these bounds.
    ///
    /// # Errors
    /// A bad shape, too large, or too many rows.
    pub fn compile(&self, value: &Value) -> Result<Option<Filter>, FilterError> {
        let size = super::envelope::json_len(value);
        if size > self.max_bytes {
            return Err(FilterError::TooLarge(size, self.max_bytes));
        }
        let filter = Filter::from_value(value).map_err(FilterError::Shape)?;
        self.check(filter)
    }

    /// Refuses a (combined) filter with more rows than allowed.
    ///
    /// # Errors
    /// Too many rows.
    pub fn check(&self, filter: Option<Filter>) -> Result<Option<Filter>, FilterError> {
        match &filter {
            Some(f) if f.rows.len() > self.max_rows => {
                Err(FilterError::TooComplex(f.rows.len(), self.max_rows))
            }
            _ => Ok(filter),
        }
    }
}

impl Filter {
    /// A filter from JSON: an object, an array of objects, or null / `{}` /
    /// `[]` for "match all".
    ///
    /// # Errors
    /// Any other shape, with what was wrong.
    pub fn from_value(value: &Value) -> Result<Option<Self>, String> {
        let rows = match value {
            Value::Null => return Ok(None),
            Value::Object(map) if map.is_empty() => return Ok(None),
            Value::Array(rows) if rows.is_empty() => return Ok(None),
            Value::Object(map) => vec![row(map)?],
            Value::Array(rows) => rows
                .iter()
                .map(|r| match r {
                    Value::Object(map) => row(map),
                    other => Err(format!(
                        "each filter row must be an object, got {}",
                        type_name(other)
                    )),
                })
                .collect::<Result<_, _>>()?,
            other => {
                return Err(format!(
                    "filter must be an object or a list of objects, got {}",
                    type_name(other)
                ))
            }
        };
        Ok(Some(Self {
            rows,
            source: value.clone(),
        }))
    }

    /// Both must match, except that on a column both constrain the guard's
    /// test replaces the client's: every guard column is always enforced, so
    /// a client can never widen what a guard allowed.
    pub fn and(client: Option<Self>, guard: Option<Self>) -> Option<Self> {
        match (client, guard) {
            (None, g) => g,
            (c, None) => c,
            (Some(c), Some(g)) => {
                let rows = c
                    .rows
                    .iter()
                    .flat_map(|cr| {
                        g.rows.iter().map(move |gr| {
                            cr.iter()
                                .filter(|(col, _)| !gr.iter().any(|(g, _)| g == col))
                                .chain(gr)
                                .cloned()
                                .collect()
                        })
                    })
                    .collect();
                let source = match (&c.source, &g.source) {
                    (Value::Object(a), Value::Object(b)) => {
                        let mut merged = a.clone();
                        merged.extend(b.clone());
                        Value::Object(merged)
                    }
                    (a, b) => serde_json::json!({"all": [a, b]}),
                };
                Some(Self { rows, source })
            }
        }
    }

    /// Both must match, every test of each kept: how the filters of
    /// several guards combine (unlike [`Filter::and`], neither side may
    /// replace the other's test, or one guard could widen another).
    pub fn both(a: Option<Self>, b: Option<Self>) -> Option<Self> {
        match (a, b) {
            (None, x) | (x, None) => x,
            (Some(a), Some(b)) => {
                let rows = a
                    .rows
                    .iter()
                    .flat_map(|ar| {
                        b.rows
                            .iter()
                            .map(move |br| ar.iter().chain(br).cloned().collect())
                    })
                    .collect();
                let source = serde_json::json!({"all": [a.source, b.source]});
                Some(Self { rows, source })
            }
        }
    }

    /// Every column path the filter tests.
    pub fn columns(&self) -> impl Iterator<Item = &str> {
        self.rows
            .iter()
            .flatten()
            .map(|(column, _)| column.as_str())
    }

    /// Either may match (several rtbdp subscriptions on one table).
    pub fn or(a: Option<Self>, b: Option<Self>) -> Option<Self> {
        match (a, b) {
            (None, _) | (_, None) => None,
            (Some(mut a), Some(b)) => {
                a.rows.extend(b.rows);
                a.source = Value::Null;
                Some(a)
            }
        }
    }

    /// Whether `record` matches any row.
    pub fn matches(&self, record: &Value) -> bool {
        self.rows.iter().any(|row| {
            row.iter()
                .all(|(path, test)| test.check(lookup(record, path)))
        })
    }

    /// The filter as given (the merged object for AND-ed object filters).
    pub fn to_value(&self) -> Value {
        self.source.clone()
    }
}

fn row(map: &Map<String, Value>) -> Result<Vec<(String, Test)>, String> {
    map.iter()
        .map(|(k, v)| Ok((k.clone(), test(k, v)?)))
        .collect()
}

fn test(column: &str, value: &Value) -> Result<Test, String> {
    let Value::Object(spec) = value else {
        return Ok(match value {
            Value::Array(items) => Test::OneOf(items.clone()),
            other => Test::Equals(other.clone()),
        });
    };
    if spec.is_empty()
        || !spec
            .keys()
            .all(|k| COLUMN_FILTER_KEYS.contains(&k.as_str()))
    {
        return Ok(Test::Equals(value.clone()));
    }
    let mut tests = Vec::new();
    if let Some(opt) = spec.get("opt") {
        let Value::Array(items) = opt else {
            return Err(format!("`{column}.opt` must be a list"));
        };
        tests.push(Test::OneOf(items.clone()));
    }
    if spec.contains_key("start") || spec.contains_key("end") {
        tests.push(Test::Range {
            start: spec.get("start").cloned().filter(|v| !v.is_null()),
            end: spec.get("end").cloned().filter(|v| !v.is_null()),
            inclusive: spec
                .get("inclusive")
                .and_then(Value::as_bool)
                .unwrap_or(true),
        });
    }
    if let Some(sub) = spec.get("substr") {
        let Value::String(sub) = sub else {
            return Err(format!("`{column}.substr` must be a string"));
        };
        tests.push(Test::Substr(sub.clone()));
    }
    Ok(Test::All(tests))
}

impl Test {
    fn check(&self, actual: Option<&Value>) -> bool {
        match self {
            Test::Equals(Value::Null) => actual.is_none_or(Value::is_null),
            Test::Equals(expected) => actual == Some(expected),
            Test::OneOf(options) => actual.is_some_and(|a| options.contains(a)),
            Test::Range {
                start,
                end,
                inclusive,
            } => actual.is_some_and(|a| {
                start
                    .as_ref()
                    .is_none_or(|s| compare(a, s).is_some_and(|o| o.is_ge()))
                    && end.as_ref().is_none_or(|e| {
                        compare(a, e)
                            .is_some_and(|o| if *inclusive { o.is_le() } else { o.is_lt() })
                    })
            }),
            Test::Substr(sub) => actual
                .and_then(Value::as_str)
                .is_some_and(|s| s.contains(sub.as_str())),
            Test::All(tests) => tests.iter().all(|t| t.check(actual)),
        }
    }
}

/// Numbers compare as numbers, strings as strings (ISO dates sort right).
fn compare(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn lookup<'a>(record: &'a Value, path: &str) -> Option<&'a Value> {
    if let Some(v) = record.get(path) {
        return Some(v);
    }
    path.split('.').try_fold(record, |v, key| v.get(key))
}

/// A JSON value's kind, for error messages.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn f(v: Value) -> Filter {
        Filter::from_value(&v).expect("valid").expect("non-empty")
    }

    #[test]
    fn equality_paths_and_lists() {
        let f = f(json!({"a": 1, "m.t": "x", "k": ["p", "q"]}));
        assert!(f.matches(&json!({"a": 1, "m": {"t": "x"}, "k": "q"})));
        assert!(!f.matches(&json!({"a": 2, "m": {"t": "x"}, "k": "q"})));
        assert!(!f.matches(&json!({"a": 1, "m": {"t": "x"}, "k": "z"})));
        assert!(!f.matches(&json!({"a": 1})));
    }

    #[test]
    fn rtbdp_or_of_and_column_filters() {
        let f = f(json!([
            {"kind": {"opt": ["PushEvent"]}, "n": {"start": 10, "end": 20, "inclusive": false}},
            {"repo": {"substr": "rtbdp"}}
        ]));
        assert!(f.matches(&json!({"kind": "PushEvent", "n": 10})));
        assert!(
            !f.matches(&json!({"kind": "PushEvent", "n": 20})),
            "end exclusive"
        );
        assert!(!f.matches(&json!({"kind": "ForkEvent", "n": 15})));
        assert!(f.matches(&json!({"kind": "ForkEvent", "repo": "rolandbernard/rtbdp-project"})));
        let dates =
            Filter::from_value(&json!({"at": {"start": "2026-01-01", "end": "2026-02-01"}}))
                .unwrap()
                .unwrap();
        assert!(dates.matches(&json!({"at": "2026-01-10T12:00:00Z"})));
        assert!(!dates.matches(&json!({"at": "2025-12-31"})));
    }

    #[test]
    fn guard_filter_cannot_be_widened() {
        let c = Filter::from_value(&json!({"tenant": "evil", "x": 1})).unwrap();
        let g = Filter::from_value(&json!({"tenant": "acme"})).unwrap();
        let both = Filter::and(c, g).unwrap();
        assert!(
            both.matches(&json!({"tenant": "acme", "x": 1})),
            "the guard's tenant wins"
        );
        assert!(!both.matches(&json!({"tenant": "evil", "x": 1})));
        assert!(
            !both.matches(&json!({"tenant": "acme", "x": 2})),
            "client columns still apply"
        );
        assert_eq!(both.to_value(), json!({"tenant": "acme", "x": 1}));
        let g = Filter::from_value(&json!({"tenant": "acme"})).unwrap();
        let or_client = Filter::from_value(&json!([{"x": 1}, {"x": 2}])).unwrap();
        let both = Filter::and(or_client, g).unwrap();
        assert!(both.matches(&json!({"tenant": "acme", "x": 2})));
        assert!(!both.matches(&json!({"tenant": "other", "x": 2})));
    }

    #[test]
    fn both_keeps_every_guard_test() {
        let a = Filter::from_value(&json!({"tenant": "acme"})).unwrap();
        let b = Filter::from_value(&json!({"tenant": "globex"})).unwrap();
        let both = Filter::both(a, b).unwrap();
        assert!(!both.matches(&json!({"tenant": "acme"})));
        assert!(!both.matches(&json!({"tenant": "globex"})));
        assert_eq!(both.columns().collect::<Vec<_>>(), ["tenant", "tenant"]);
    }

    #[test]
    fn bad_shapes_are_refused() {
        assert!(Filter::from_value(&json!([1])).is_err());
        assert!(Filter::from_value(&json!("x")).is_err());
        assert!(Filter::from_value(&json!({"k": {"opt": 3}})).is_err());
        assert!(Filter::from_value(&json!(null)).unwrap().is_none());
    }
}
