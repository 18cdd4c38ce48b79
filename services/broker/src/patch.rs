//! Patches, applied in the broker: a JSON merge patch (RFC 7386) or a JSON patch (RFC 6902)
//! over an object's Kubernetes JSON form, decoded back strictly.
//!
//! The store runs [`patched`] inside its read-merge-write loop (`Store::patch` through
//! `store::merge_patch`, the same loop as an update), so a patch
//! is applied to the object as it is stored *now*: when another writer gets in between the
//! read and the write, the patch is applied again on a fresh read, and no concurrent write
//! is lost. Everything here is pure and table-tested: [`apply`] is the RFC step on JSON
//! values (through the `json-patch` crate, which implements both RFCs), [`patched`] the step
//! from a stored object to the object the patch asks for, with Kubernetes' checks around it
//! (name, namespace, kind and uid stay; a `metadata.resourceVersion` in the result is a
//! precondition).

use bosun_api::codec;
use bosun_api::v1::{Object, PatchType};
use bosun_api::validation::FieldError;
use serde_json::Value;

/// Why a patch could not be applied to an object.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PatchError {
    /// The request named no patch type (kubectl's default, strategic merge, is not served).
    #[error(
        "a patch type is required: merge (RFC 7386) or json (RFC 6902); strategic merge patch is not supported yet (it comes with the Kubernetes REST API)"
    )]
    NoType,
    /// The patch is not JSON, or not the shape its type needs.
    #[error("invalid {kind} patch: {reason}")]
    Malformed { kind: &'static str, reason: String },
    /// A JSON patch operation could not be applied (a missing path, a failed `test`).
    #[error("json patch operation {index} ({op} {path}) failed: {reason}")]
    Operation {
        index: usize,
        op: &'static str,
        path: String,
        reason: String,
    },
    /// The patched document is not an object of the same kind.
    #[error("the patched object is not {what}: {got}")]
    Shape { what: String, got: String },
    /// The patch renamed or moved the object; the URL (kind, namespace, name) names it.
    #[error(
        "the {field} of the object ({patched}) does not match the {field} it was read by ({stored})"
    )]
    Identity {
        field: &'static str,
        patched: String,
        stored: String,
    },
    /// The patched object does not decode (unknown field, wrong type) or is invalid: the
    /// field errors, reported like a rejected update's.
    #[error("the patched object is invalid: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
}

/// What a patch applied to a stored object produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Patched {
    /// The object the patch asks for, decoded strictly, defaulted and checked as a manifest
    /// is; the store then merges it with what the server owns and validates it as an
    /// update (immutable fields).
    Object(Box<Object>),
    /// The patch carries `metadata.resourceVersion` and it is not the stored one: a
    /// conflict, reported to the caller and not retried (the patch was meant for that version).
    Stale { sent: String },
}

/// The word for a patch type in messages (`merge`, `json`).
fn type_word(kind: PatchType) -> &'static str {
    match kind {
        PatchType::Merge => "merge",
        PatchType::Json => "json",
        PatchType::Unspecified => "unspecified",
    }
}

/// Parses `patch` as `kind` and applies it to `doc` (RFC 7386 or RFC 6902). A JSON patch is
/// atomic: on a failed operation `doc` is left as it was.
pub fn apply(doc: &mut Value, kind: PatchType, patch: &str) -> Result<(), PatchError> {
    let malformed = |reason: String| PatchError::Malformed {
        kind: type_word(kind),
        reason,
    };
    match kind {
        PatchType::Unspecified => Err(PatchError::NoType),
        PatchType::Merge => {
            let patch: Value = serde_json::from_str(patch).map_err(|e| malformed(e.to_string()))?;
            if !patch.is_object() {
                // RFC 7386 would replace the whole document; for an object that is never meant.
                return Err(malformed(format!(
                    "a merge patch must be a JSON object, got {}",
                    json_type(&patch)
                )));
            }
            json_patch::merge(doc, &patch);
            Ok(())
        }
        PatchType::Json => {
            let value: Value = serde_json::from_str(patch).map_err(|e| malformed(e.to_string()))?;
            if !value.is_array() {
                return Err(malformed(format!(
                    "a json patch must be a JSON array of operations, got {}",
                    json_type(&value)
                )));
            }
            let ops: json_patch::Patch =
                serde_json::from_value(value).map_err(|e| malformed(e.to_string()))?;
            json_patch::patch(doc, &ops).map_err(|e| {
                let op = &ops.0[e.operation];
                PatchError::Operation {
                    index: e.operation,
                    op: op_name(op),
                    path: op.path().to_string(),
                    reason: match e.kind {
                        json_patch::PatchErrorKind::TestFailed => {
                            let want = match op {
                                json_patch::PatchOperation::Test(t) => t.value.to_string(),
                                _ => String::new(),
                            };
                            // `doc` is rolled back: replay the operations before the test
                            // to show the value it saw.
                            let mut seen = doc.clone();
                            let _ = json_patch::patch_unsafe(&mut seen, &ops.0[..e.operation]);
                            let got = seen
                                .pointer(op.path().as_str())
                                .map_or_else(|| "nothing".to_string(), ToString::to_string);
                            format!("test failed: the value is {got}, the patch expects {want}")
                        }
                        other => other.to_string(),
                    },
                }
            })
        }
    }
}

fn op_name(op: &json_patch::PatchOperation) -> &'static str {
    use json_patch::PatchOperation as P;
    match op {
        P::Add(_) => "add",
        P::Remove(_) => "remove",
        P::Replace(_) => "replace",
        P::Move(_) => "move",
        P::Copy(_) => "copy",
        P::Test(_) => "test",
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn str_at<'a>(doc: &'a Value, pointer: &str) -> &'a str {
    doc.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// Applies `patch` to `stored` through its Kubernetes JSON form and decodes the result
/// strictly (unknown fields, wrong types). Kind, apiVersion, name and namespace may not
/// change (the request names the object by them), nor the uid; a resourceVersion other
/// than the stored one makes the patch [`Patched::Stale`].
pub fn patched(stored: &Object, kind: PatchType, patch: &str) -> Result<Patched, PatchError> {
    let before = codec::to_json_value(stored);
    let mut doc = before.clone();
    apply(&mut doc, kind, patch)?;
    if !doc.is_object() {
        return Err(PatchError::Shape {
            what: "an object".into(),
            got: json_type(&doc).into(),
        });
    }
    for (field, pointer) in [
        ("apiVersion", "/apiVersion"),
        ("kind", "/kind"),
        ("name", "/metadata/name"),
        ("namespace", "/metadata/namespace"),
        ("uid", "/metadata/uid"),
    ] {
        let (was, now) = (str_at(&before, pointer), str_at(&doc, pointer));
        if was != now {
            return Err(PatchError::Identity {
                field,
                patched: format!("{now:?}"),
                stored: format!("{was:?}"),
            });
        }
    }
    let sent = str_at(&doc, "/metadata/resourceVersion");
    if !sent.is_empty() && sent != str_at(&before, "/metadata/resourceVersion") {
        return Ok(Patched::Stale {
            sent: sent.to_string(),
        });
    }
    let text = doc.to_string();
    let manifests = codec::decode_manifests("patch", &text).map_err(|e| {
        PatchError::Invalid(
            e.diagnostics
                .into_iter()
                .map(|d| FieldError {
                    path: d.path,
                    message: match d.hint {
                        Some(h) => format!("{}; {h}", d.message),
                        None => d.message,
                    },
                })
                .collect(),
        )
    })?;
    match <[_; 1]>::try_from(manifests) {
        Ok([one]) => Ok(Patched::Object(Box::new(one.object))),
        Err(many) => Err(PatchError::Shape {
            what: "one object".into(),
            got: format!("{} objects", many.len()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn patches_follow_rfc_7386_and_rfc_6902() {
        let doc = json!({"a": 1, "b": {"c": 2, "d": [1, 2]}, "e/f": 3, "g~h": 4});
        let table: [(&str, PatchType, &str, Value); 14] = [
            (
                "merge sets, nests and deletes with null",
                PatchType::Merge,
                r#"{"a": null, "b": {"c": 5, "x": {"y": null, "z": 1}}}"#,
                json!({"b": {"c": 5, "d": [1, 2], "x": {"z": 1}}, "e/f": 3, "g~h": 4}),
            ),
            (
                "merge replaces a list whole",
                PatchType::Merge,
                r#"{"b": {"d": [9]}}"#,
                json!({"a": 1, "b": {"c": 2, "d": [9]}, "e/f": 3, "g~h": 4}),
            ),
            (
                "merge of an empty object changes nothing",
                PatchType::Merge,
                "{}",
                doc.clone(),
            ),
            (
                "json add to an object",
                PatchType::Json,
                r#"[{"op": "add", "path": "/b/n", "value": "v"}]"#,
                json!({"a": 1, "b": {"c": 2, "d": [1, 2], "n": "v"}, "e/f": 3, "g~h": 4}),
            ),
            (
                "json add inserts into a list, - appends",
                PatchType::Json,
                r#"[{"op": "add", "path": "/b/d/0", "value": 0},
                    {"op": "add", "path": "/b/d/-", "value": 3}]"#,
                json!({"a": 1, "b": {"c": 2, "d": [0, 1, 2, 3]}, "e/f": 3, "g~h": 4}),
            ),
            (
                "json remove",
                PatchType::Json,
                r#"[{"op": "remove", "path": "/a"}, {"op": "remove", "path": "/b/d/0"}]"#,
                json!({"b": {"c": 2, "d": [2]}, "e/f": 3, "g~h": 4}),
            ),
            (
                "json replace",
                PatchType::Json,
                r#"[{"op": "replace", "path": "/b/c", "value": [true]}]"#,
                json!({"a": 1, "b": {"c": [true], "d": [1, 2]}, "e/f": 3, "g~h": 4}),
            ),
            (
                "json pointer escapes ~1 for / and ~0 for ~",
                PatchType::Json,
                r#"[{"op": "replace", "path": "/e~1f", "value": 30},
                    {"op": "remove", "path": "/g~0h"}]"#,
                json!({"a": 1, "b": {"c": 2, "d": [1, 2]}, "e/f": 30}),
            ),
            (
                "json move",
                PatchType::Json,
                r#"[{"op": "move", "from": "/a", "path": "/b/a"}]"#,
                json!({"b": {"c": 2, "d": [1, 2], "a": 1}, "e/f": 3, "g~h": 4}),
            ),
            (
                "json copy",
                PatchType::Json,
                r#"[{"op": "copy", "from": "/b/d", "path": "/d"}]"#,
                json!({"a": 1, "b": {"c": 2, "d": [1, 2]}, "e/f": 3, "g~h": 4, "d": [1, 2]}),
            ),
            (
                "json test that holds, then a change",
                PatchType::Json,
                r#"[{"op": "test", "path": "/b/c", "value": 2},
                    {"op": "replace", "path": "/b/c", "value": 3}]"#,
                json!({"a": 1, "b": {"c": 3, "d": [1, 2]}, "e/f": 3, "g~h": 4}),
            ),
            (
                "json test compares structure, not text",
                PatchType::Json,
                r#"[{"op": "test", "path": "/b", "value": {"d": [1, 2], "c": 2}}]"#,
                doc.clone(),
            ),
            ("empty json patch", PatchType::Json, "[]", doc.clone()),
            (
                "json add replaces the whole document at the empty path",
                PatchType::Json,
                r#"[{"op": "add", "path": "", "value": {"z": 1}}]"#,
                json!({"z": 1}),
            ),
        ];
        for (name, kind, patch, want) in table {
            let mut got = doc.clone();
            apply(&mut got, kind, patch).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn a_patch_that_cannot_apply_says_why_and_changes_nothing() {
        let doc = json!({"a": 1, "l": [1]});
        let table: [(&str, PatchType, &str, &str); 10] = [
            (
                "no type",
                PatchType::Unspecified,
                "{}",
                "a patch type is required",
            ),
            (
                "merge not json",
                PatchType::Merge,
                "{a: 1",
                "invalid merge patch: key must be a string",
            ),
            (
                "merge not an object",
                PatchType::Merge,
                "[1]",
                "a merge patch must be a JSON object, got an array",
            ),
            (
                "json not a list",
                PatchType::Json,
                r#"{"op": "add"}"#,
                "a json patch must be a JSON array of operations, got an object",
            ),
            (
                "unknown op",
                PatchType::Json,
                r#"[{"op": "append", "path": "/a"}]"#,
                "invalid json patch: unknown variant `append`",
            ),
            (
                "missing value",
                PatchType::Json,
                r#"[{"op": "add", "path": "/a"}]"#,
                "missing field `value`",
            ),
            (
                "a failed test fails the whole patch",
                PatchType::Json,
                r#"[{"op": "replace", "path": "/a", "value": 5}, {"op": "test", "path": "/a", "value": 6}]"#,
                "json patch operation 1 (test /a) failed: test failed: the value is 5, the patch expects 6",
            ),
            (
                "remove missing",
                PatchType::Json,
                r#"[{"op": "remove", "path": "/b"}]"#,
                "json patch operation 0 (remove /b) failed: path is invalid",
            ),
            (
                "index out of range",
                PatchType::Json,
                r#"[{"op": "add", "path": "/l/5", "value": 0}]"#,
                "(add /l/5) failed: path is invalid",
            ),
            (
                "move into itself",
                PatchType::Json,
                r#"[{"op": "move", "from": "/l", "path": "/l/0"}]"#,
                "cannot move the value inside itself",
            ),
        ];
        for (name, kind, patch, want) in table {
            let mut got = doc.clone();
            let err = apply(&mut got, kind, patch).expect_err(name).to_string();
            assert!(err.contains(want), "{name}: {err}");
            assert_eq!(got, doc, "{name}: the document is left as it was");
        }
    }

    /// A Job as the broker stores it: defaulted, with uid and resourceVersion.
    fn stored_job() -> Object {
        let text = r#"{"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "pi", "namespace": "default", "labels": {"app": "pi"}},
            "spec": {"parallelism": 2, "template": {"spec": {"restartPolicy": "Never",
                "containers": [{"name": "c", "image": "busybox", "command": ["true"]}]}}},
            "status": {"active": 1}}"#;
        let mut obj = codec::decode_manifests("test", text)
            .unwrap()
            .remove(0)
            .object;
        obj.meta_mut().uid = "u-1".into();
        obj.meta_mut().creation_timestamp = "2026-01-01T00:00:00Z".into();
        bosun_api::defaults::apply_defaults(&mut obj);
        obj.meta_mut().resource_version = "7".into();
        obj
    }

    fn job_of(p: Patched) -> bosun_api::v1::Job {
        match p {
            Patched::Object(o) => o.as_job().cloned().unwrap(),
            other => panic!("expected an object, got {other:?}"),
        }
    }

    #[test]
    fn a_patched_object_is_decoded_back_with_the_change_and_nothing_else() {
        let stored = stored_job();
        let stored_job = stored.as_job().unwrap().clone();
        type Change = fn(&mut bosun_api::v1::Job);
        let table: [(&str, PatchType, &str, Change); 5] = [
            ("no-op merge", PatchType::Merge, "{}", |_| {}),
            ("no-op json", PatchType::Json, "[]", |_| {}),
            (
                "merge parallelism and a label",
                PatchType::Merge,
                r#"{"metadata": {"labels": {"tier": "x"}}, "spec": {"parallelism": 5}}"#,
                |j| {
                    j.metadata
                        .as_mut()
                        .unwrap()
                        .labels
                        .insert("tier".into(), "x".into());
                    j.spec.as_mut().unwrap().parallelism = Some(5);
                },
            ),
            (
                "json remove a label, replace an image",
                PatchType::Json,
                r#"[{"op": "remove", "path": "/metadata/labels/app"},
                    {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "alpine"}]"#,
                |j| {
                    j.metadata.as_mut().unwrap().labels.remove("app");
                    let t = j.spec.as_mut().unwrap().template.as_mut().unwrap();
                    t.spec.as_mut().unwrap().containers[0].image = "alpine".into();
                },
            ),
            (
                "a resourceVersion equal to the stored one is a precondition that holds",
                PatchType::Merge,
                r#"{"metadata": {"resourceVersion": "7"}, "spec": {"parallelism": 3}}"#,
                |j| j.spec.as_mut().unwrap().parallelism = Some(3),
            ),
        ];
        for (name, kind, patch, change) in table {
            let mut want = stored_job.clone();
            change(&mut want);
            let got =
                job_of(patched(&stored, kind, patch).unwrap_or_else(|e| panic!("{name}: {e}")));
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn a_patch_may_not_rename_the_object_and_a_stale_resource_version_is_a_conflict() {
        let stored = stored_job();
        let table: [(&str, PatchType, &str, Result<&str, &str>); 8] = [
            (
                "rename",
                PatchType::Merge,
                r#"{"metadata": {"name": "other"}}"#,
                Err(
                    "the name of the object (\"other\") does not match the name it was read by (\"pi\")",
                ),
            ),
            (
                "move namespace",
                PatchType::Json,
                r#"[{"op": "replace", "path": "/metadata/namespace", "value": "x"}]"#,
                Err("the namespace of the object"),
            ),
            (
                "change kind",
                PatchType::Merge,
                r#"{"kind": "Pod"}"#,
                Err("the kind of the object (\"Pod\")"),
            ),
            (
                "change uid",
                PatchType::Merge,
                r#"{"metadata": {"uid": "u-2"}}"#,
                Err("the uid of the object"),
            ),
            (
                "not an object",
                PatchType::Json,
                r#"[{"op": "replace", "path": "", "value": 3}]"#,
                Err("the patched object is not an object: a number"),
            ),
            (
                "unknown field",
                PatchType::Merge,
                r#"{"spec": {"paralelism": 3}}"#,
                Err("spec.paralelism: unknown field \"paralelism\""),
            ),
            (
                "wrong type",
                PatchType::Merge,
                r#"{"spec": {"parallelism": "three"}}"#,
                Err("spec.parallelism: expected"),
            ),
            (
                "stale resourceVersion",
                PatchType::Merge,
                r#"{"metadata": {"resourceVersion": "6"}}"#,
                Ok("6"),
            ),
        ];
        for (name, kind, patch, want) in table {
            match (patched(&stored, kind, patch), want) {
                (Ok(Patched::Stale { sent }), Ok(w)) => assert_eq!(sent, w, "{name}"),
                (Err(e), Err(w)) => assert!(e.to_string().contains(w), "{name}: {e}"),
                (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
    }
}
