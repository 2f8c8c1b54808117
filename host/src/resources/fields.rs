//! Protected fields and patches: what of a record a caller gets to see,
//! and how guard patches merge into written data.

use serde_json::{Map, Value};

use crate::policy::Grant;

/// Removes protected fields. A dotted path reaches into objects, and a
/// literal key spelled like the path is removed too: both, always, so a key
/// `"meta.internal"` can neither hide nor stand in for the nested value.
pub fn strip(mut record: Value, protected: &[String]) -> Value {
    for path in protected {
        remove_path(&mut record, path);
    }
    record
}

fn remove_path(value: &mut Value, path: &str) {
    let Value::Object(map) = value else { return };
    map.remove(path);
    if let Some((head, rest)) = path.split_once('.') {
        if let Some(child) = map.get_mut(head) {
            remove_path(child, rest);
        }
    }
}

/// `record` as the grant's caller may see it.
pub(super) fn shown(record: Value, grant: &Grant<'_>) -> Value {
    if grant.strip {
        strip(record, &grant.config.protected)
    } else {
        record
    }
}

/// `data` with a guard's patch merged in.
pub(super) fn merge(data: Value, patch: Map<String, Value>) -> Value {
    crate::policy::patched(data, patch)
}

#[cfg(test)]
mod tests {
    use super::strip;
    use serde_json::json;

    #[test]
    fn literal_and_nested_paths_both_go() {
        let record =
            json!({"meta.internal": "forged", "meta": {"internal": "hidden", "public": 1}});
        let shown = strip(record, &["meta.internal".to_owned()]);
        assert_eq!(shown, json!({"meta": {"public": 1}}));
    }
}
