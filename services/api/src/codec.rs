//! The strict YAML/JSON codec: Kubernetes manifests in, bosun objects out, and back.
//!
//! Decoding parses YAML (JSON is YAML) into a positioned tree ([`tree`]), walks it against
//! the protobuf descriptors of the kind's message ([`decode`]) so that every unknown field,
//! duplicate key and wrong type is reported with its line, field path and fix, then applies
//! Kubernetes' defaults and validation and maps each validation error back to its line.
//! Encoding ([`encode`]) walks the same descriptors the other way, to JSON and kubectl-style
//! YAML.

mod decode;
mod encode;
mod tree;

use std::collections::HashMap;

use prost::Message;
use prost_reflect::{DynamicMessage, ReflectMessage, Value};

use crate::kind::{KINDS, KindInfo};
use crate::v1::Object;

pub use encode::{to_json_value, to_yaml};

/// One object decoded from a manifest file.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub object: Object,
    /// Where it came from (file name, URL or `-`).
    pub source: String,
    /// 1-based line of the document's first line.
    pub line: usize,
    /// Non-fatal remarks (deprecated apiVersion...).
    pub warnings: Vec<String>,
}

/// One problem found in a manifest: where, what, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub source: String,
    /// 1-based; 0 when unknown.
    pub line: usize,
    pub column: usize,
    /// Field path, `spec.template.spec.restartPolicy`.
    pub path: String,
    pub message: String,
    /// The fix, when one can be told (`did you mean spec.template.spec.restartPolicy?`).
    pub hint: Option<String>,
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: ", self.source, self.line)?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        write!(f, "{}", self.message)?;
        if let Some(h) = &self.hint {
            write!(f, "; {h}")?;
        }
        Ok(())
    }
}

/// Every problem found in one input; nothing from it should be applied.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", .diagnostics.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct CodecError {
    pub diagnostics: Vec<Diagnostic>,
}

/// Decodes every document of a YAML (or JSON) file: strict (unknown fields, duplicate keys,
/// wrong types and missing required fields are errors naming file, line and field path),
/// then Kubernetes defaults and validation.
///
/// Empty documents are skipped; a `kind: List` expands to its items. Every problem of the
/// file is reported, ordered by line.
pub fn decode_manifests(source: &str, text: &str) -> Result<Vec<Manifest>, CodecError> {
    let docs = match tree::parse(text) {
        Ok(docs) => docs,
        Err(e) => {
            return Err(CodecError {
                diagnostics: vec![Diagnostic {
                    source: source.to_string(),
                    line: e.line,
                    column: e.col,
                    path: String::new(),
                    message: format!("invalid YAML: {}", e.message),
                    hint: None,
                }],
            });
        }
    };
    let mut manifests = Vec::new();
    let mut diagnostics = Vec::new();
    for doc in docs {
        let Some(root) = doc.root else { continue };
        if root.is_null() {
            continue;
        }
        decode_document(source, &root, &mut manifests, &mut diagnostics);
    }
    if diagnostics.is_empty() {
        Ok(manifests)
    } else {
        diagnostics.sort_by_key(|d| (d.line, d.column));
        Err(CodecError { diagnostics })
    }
}

fn diag(
    source: &str,
    node: &tree::Node,
    path: &str,
    message: String,
    hint: Option<String>,
) -> Diagnostic {
    Diagnostic {
        source: source.to_string(),
        line: node.line,
        column: node.col,
        path: path.to_string(),
        message,
        hint,
    }
}

/// One document: an object, or a `List` of them.
fn decode_document(
    source: &str,
    root: &tree::Node,
    out: &mut Vec<Manifest>,
    diags: &mut Vec<Diagnostic>,
) {
    if !matches!(root.kind, tree::NodeKind::Map(_)) {
        let got = root.describe();
        diags.push(diag(
            source,
            root,
            "",
            format!("a manifest must be an object, got {got}"),
            None,
        ));
        return;
    }
    let kind = root.get_str("kind");
    let is_list = kind == Some("List")
        || (kind.is_none() && root.get("items").is_some() && root.get("apiVersion").is_some());
    if !is_list {
        decode_object(source, root, out, diags);
        return;
    }
    if kind.is_none() {
        diags.push(diag(
            source,
            root,
            "kind",
            "Required value: kind not set".into(),
            Some("this looks like `kubectl get -o yaml` output: add `kind: List`".into()),
        ));
    }
    match root.get("items").map(|n| &n.kind) {
        Some(tree::NodeKind::Seq(items)) => {
            for item in items {
                decode_document(source, item, out, diags);
            }
        }
        Some(_) => diags.push(diag(source, root, "items", "expected a list".into(), None)),
        None => {}
    }
}

/// One object: kind and apiVersion checked, fields walked, defaults and validation applied.
fn decode_object(
    source: &str,
    node: &tree::Node,
    out: &mut Vec<Manifest>,
    diags: &mut Vec<Diagnostic>,
) {
    let mut warnings = Vec::new();
    let api_version = node.get_str("apiVersion");
    let Some(kind) = node.get_str("kind") else {
        let mut missing = vec!["kind not set"];
        if api_version.is_none() {
            missing.insert(0, "apiVersion not set");
        }
        diags.push(diag(
            source,
            node,
            "kind",
            format!("Required value: {}", missing.join(", ")),
            Some(
                "a manifest starts with `apiVersion:` and `kind:` (for example batch/v1 Job)"
                    .into(),
            ),
        ));
        return;
    };
    let kind_node = node.get("kind").unwrap_or(node);
    let Some(info) = KindInfo::by_manifest_kind(kind) else {
        let hint = KINDS
            .iter()
            .find(|k| k.name.eq_ignore_ascii_case(kind))
            .map(|k| format!("did you mean {}?", k.name))
            .unwrap_or_else(|| {
                let names: Vec<&str> = KINDS.iter().map(|k| k.name).collect();
                format!("bosun serves {}", names.join(", "))
            });
        diags.push(diag(
            source,
            kind_node,
            "kind",
            format!("unknown kind {kind:?}"),
            Some(hint),
        ));
        return;
    };
    let version_node = node.get("apiVersion").unwrap_or(node);
    match api_version {
        Some(v) if v == info.api_version => {}
        Some(v) if info.deprecated_api_versions.contains(&v) => warnings.push(format!(
            "{v} {} is deprecated; stored as {}",
            info.name, info.api_version
        )),
        Some(v) => diags.push(diag(
            source,
            version_node,
            "apiVersion",
            format!("{} is not served at apiVersion {v:?}", info.name),
            Some(format!("use apiVersion: {}", info.api_version)),
        )),
        None => diags.push(diag(
            source,
            node,
            "apiVersion",
            "Required value: apiVersion not set".into(),
            Some(format!("use apiVersion: {}", info.api_version)),
        )),
    }

    let pool = crate::descriptor_pool();
    let Some(desc) = pool.get_message_by_name(&format!("bosun.v1.{}", info.name)) else {
        return;
    };
    let mut walker = decode::Walker::new(source, desc.clone());
    let msg = walker.message(node, &desc, "");
    let mut obj = match wrap(msg) {
        Some(obj) => obj,
        None => return,
    };
    obj.set_type_meta();
    crate::defaults::apply_defaults(&mut obj);
    let decode_paths: Vec<String> = walker.diagnostics.iter().map(|d| d.path.clone()).collect();
    let mut found = std::mem::take(&mut walker.diagnostics);
    if let Err(errors) = crate::validation::validate_create(&obj) {
        for e in errors {
            let shadowed = decode_paths.iter().any(|p| {
                e.path == *p
                    || e.path.starts_with(&format!("{p}."))
                    || e.path.starts_with(&format!("{p}["))
            });
            if shadowed {
                continue;
            }
            let (line, column) = line_of(&walker.lines, &e.path).unwrap_or((node.line, node.col));
            found.push(Diagnostic {
                source: source.to_string(),
                line,
                column,
                hint: selector_hint(&obj, &e.message),
                path: e.path,
                message: e.message,
            });
        }
    }
    if found.is_empty() {
        out.push(Manifest {
            object: obj,
            source: source.to_string(),
            line: node.line,
            warnings,
        });
    } else {
        diags.extend(found);
    }
}

/// The line of `path`, or of its nearest ancestor present in the document.
fn line_of(lines: &HashMap<String, (usize, usize)>, path: &str) -> Option<(usize, usize)> {
    let mut p = path;
    loop {
        if let Some(pos) = lines.get(p) {
            return Some(*pos);
        }
        let cut = p.rfind(['.', '['])?;
        p = &p[..cut];
    }
}

/// Wraps a kind's message into `Object` by transcoding through the `Object` oneof.
fn wrap(msg: DynamicMessage) -> Option<Object> {
    let pool = crate::descriptor_pool();
    let object_desc = pool.get_message_by_name("bosun.v1.Object")?;
    let name = msg.descriptor().full_name().to_string();
    let field = object_desc.fields().find(|f| match f.kind() {
        prost_reflect::Kind::Message(m) => m.full_name() == name,
        _ => false,
    })?;
    let mut wrapper = DynamicMessage::new(object_desc);
    wrapper.set_field(&field, Value::Message(msg));
    Object::decode(wrapper.encode_to_vec().as_slice()).ok()
}

/// For an empty DaemonSet selector: say which template labels it no longer matches.
fn selector_hint(obj: &Object, message: &str) -> Option<String> {
    if !message.contains("empty selector") {
        return None;
    }
    let labels = obj
        .as_daemon_set()?
        .spec
        .as_ref()?
        .template
        .as_ref()?
        .metadata
        .as_ref()?
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>();
    (!labels.is_empty()).then(|| {
        format!(
            "the selector no longer matches the template labels ({})",
            labels.join(", ")
        )
    })
}
