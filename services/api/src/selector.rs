//! Label and field selectors: parsed from kubectl's syntax (`app=x,env in (a,b),!legacy`,
//! `spec.nodeName=node-1`) or from a `LabelSelector` object, and matched against objects.
//!
//! Parsing follows Kubernetes' `labels.Parse` and `fields.ParseSelector`, with two
//! deliberate differences: `>`/`<` (Gt/Lt, which only node affinity uses) are rejected as
//! label syntax, and a field selector names only the fields bosun can answer, listing them
//! in the error when it names another.

use std::collections::BTreeMap;

use crate::v1::{self, Kind, Object};

/// A parse failure, with what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid selector {input:?}: {reason}")]
pub struct SelectorError {
    pub input: String,
    pub reason: String,
}

impl SelectorError {
    fn new(input: &str, reason: impl Into<String>) -> SelectorError {
        SelectorError {
            input: input.to_string(),
            reason: reason.into(),
        }
    }
}

/// How a label requirement compares the label's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// `key=value`, `key==value`, `matchLabels`, `In` with one value.
    In,
    /// `key!=value`, `key notin (..)`: also true when the label is absent.
    NotIn,
    /// `key`
    Exists,
    /// `!key`
    DoesNotExist,
}

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub key: String,
    pub operator: Operator,
    /// Sorted and deduplicated; empty for `Exists`/`DoesNotExist`.
    pub values: Vec<String>,
}

impl Requirement {
    fn new(key: &str, operator: Operator, mut values: Vec<String>) -> Requirement {
        values.sort();
        values.dedup();
        Requirement {
            key: key.to_string(),
            operator,
            values,
        }
    }

    /// Whether `labels` satisfy this requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        match self.operator {
            Operator::In => value.is_some_and(|v| self.values.contains(v)),
            Operator::NotIn => value.is_none_or(|v| !self.values.contains(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
        }
    }
}

/// A label selector (all requirements must hold).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    /// Every requirement, in the order written.
    pub requirements: Vec<Requirement>,
}

impl LabelSelector {
    /// Parses kubectl's `-l` syntax. The empty string selects everything.
    pub fn parse(input: &str) -> Result<LabelSelector, SelectorError> {
        let mut requirements = Vec::new();
        for part in split_top_level(input).map_err(|r| SelectorError::new(input, r))? {
            let part = part.trim();
            if part.is_empty() {
                if input.trim().is_empty() {
                    continue;
                }
                return Err(SelectorError::new(
                    input,
                    "empty requirement between commas",
                ));
            }
            requirements.push(parse_requirement(part).map_err(|r| SelectorError::new(input, r))?);
        }
        Ok(LabelSelector { requirements })
    }

    /// Converts a `LabelSelector` object (matchLabels + matchExpressions).
    pub fn from_proto(sel: &v1::LabelSelector) -> Result<LabelSelector, SelectorError> {
        let shown = || format!("{sel:?}");
        let mut requirements = Vec::new();
        for (key, value) in &sel.match_labels {
            check_key(key)
                .map_err(|r| SelectorError::new(&shown(), format!("matchLabels: {r}")))?;
            check_value(value)
                .map_err(|r| SelectorError::new(&shown(), format!("matchLabels[{key}]: {r}")))?;
            requirements.push(Requirement::new(key, Operator::In, vec![value.clone()]));
        }
        for (i, expr) in sel.match_expressions.iter().enumerate() {
            let at = format!("matchExpressions[{i}]");
            let fail = |r: String| SelectorError::new(&shown(), format!("{at}: {r}"));
            check_key(&expr.key).map_err(|r| fail(format!("key: {r}")))?;
            let operator = match expr.operator.as_str() {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "Exists" => Operator::Exists,
                "DoesNotExist" => Operator::DoesNotExist,
                other => {
                    return Err(fail(format!(
                        "operator: Unsupported value: {other:?}: supported values: \"In\", \"NotIn\", \"Exists\", \"DoesNotExist\""
                    )));
                }
            };
            match operator {
                Operator::In | Operator::NotIn if expr.values.is_empty() => {
                    return Err(fail(
                        "values: Required value: must be specified when `operator` is 'In' or 'NotIn'"
                            .into(),
                    ));
                }
                Operator::Exists | Operator::DoesNotExist if !expr.values.is_empty() => {
                    return Err(fail(
                        "values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
                            .into(),
                    ));
                }
                _ => {}
            }
            for v in &expr.values {
                check_value(v).map_err(|r| fail(format!("values: {r}")))?;
            }
            requirements.push(Requirement::new(&expr.key, operator, expr.values.clone()));
        }
        Ok(LabelSelector { requirements })
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Whether this selector selects everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether `obj`'s labels satisfy every requirement.
    pub fn matches_object(&self, obj: &Object) -> bool {
        if self.is_empty() {
            return true;
        }
        match obj.meta() {
            Some(m) => self.matches(&m.labels),
            None => self.matches(&BTreeMap::new()),
        }
    }
}

/// Splits on commas that are not inside parentheses.
fn split_top_level(input: &str) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in input.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| "unbalanced ')'".to_string())?;
            }
            ',' if depth == 0 => {
                parts.push(&input[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err("missing ')'".into());
    }
    parts.push(&input[start..]);
    Ok(parts)
}

/// Parses one requirement: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`.
fn parse_requirement(part: &str) -> Result<Requirement, String> {
    if let Some(rest) = part.strip_prefix('!') {
        let key = rest.trim();
        check_key(key)?;
        return Ok(Requirement::new(key, Operator::DoesNotExist, vec![]));
    }
    if part.contains('>') || part.contains('<') {
        return Err(format!(
            "{part:?}: '>' and '<' are not label selector operators; use =, ==, !=, in, notin, exists (key) or !key"
        ));
    }
    // Equality forms; `!=` first so `a!=b` is not read as `a!` = `b`.
    for (op, operator) in [
        ("!=", Operator::NotIn),
        ("==", Operator::In),
        ("=", Operator::In),
    ] {
        if let Some((key, value)) = part.split_once(op) {
            let (key, value) = (key.trim(), value.trim());
            check_key(key)?;
            check_value(value)?;
            return Ok(Requirement::new(key, operator, vec![value.to_string()]));
        }
    }
    // Set forms: `key in (..)`, `key notin (..)`.
    if let Some(open) = part.find('(') {
        let head = part[..open].trim();
        let (key, word) = head.rsplit_once(char::is_whitespace).ok_or_else(|| {
            format!("{part:?}: expected `key in (values)` or `key notin (values)`")
        })?;
        let operator = match word {
            "in" => Operator::In,
            "notin" => Operator::NotIn,
            other => {
                return Err(format!(
                    "{part:?}: unknown set operator {other:?}; expected `in` or `notin`"
                ));
            }
        };
        let key = key.trim();
        check_key(key)?;
        let tail = part[open + 1..].trim_end();
        let inner = tail
            .strip_suffix(')')
            .ok_or_else(|| format!("{part:?}: expected ')' at the end"))?;
        let values: Vec<String> = inner.split(',').map(|v| v.trim().to_string()).collect();
        for v in &values {
            check_value(v)?;
        }
        return Ok(Requirement::new(key, operator, values));
    }
    if part.split_whitespace().count() > 1 {
        return Err(format!(
            "{part:?}: expected an operator (=, ==, !=, in, notin) after the key"
        ));
    }
    check_key(part)?;
    Ok(Requirement::new(part, Operator::Exists, vec![]))
}

/// A label key: an optional DNS-subdomain prefix and `/`, then a name of ≤ 63 characters.
fn check_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(prefix) = prefix
        && (prefix.is_empty() || prefix.len() > 253 || !is_dns_subdomain(prefix))
    {
        return Err(format!(
            "key {key:?}: prefix part must be a lowercase RFC 1123 subdomain of at most 253 characters"
        ));
    }
    if name.is_empty() {
        return Err(format!("key {key:?}: name part must be non-empty"));
    }
    if name.len() > 63 || !is_qualified_name_part(name) {
        return Err(format!(
            "key {key:?}: name part must be at most 63 characters, alphanumeric, '-', '_' or '.', and start and end with an alphanumeric character"
        ));
    }
    Ok(())
}

/// A label value: empty, or ≤ 63 characters of the same alphabet as a key's name.
fn check_value(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Ok(());
    }
    if value.len() > 63 || !is_qualified_name_part(value) {
        return Err(format!(
            "value {value:?}: a label value must be empty or at most 63 characters, alphanumeric, '-', '_' or '.', and start and end with an alphanumeric character"
        ));
    }
    Ok(())
}

fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

fn is_dns_subdomain(s: &str) -> bool {
    s.split('.').all(|label| {
        let b = label.as_bytes();
        !b.is_empty()
            && b.len() <= 63
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
    })
}

/// Every field a field selector may name, and the kinds that have it (`None`: every kind).
const FIELDS: &[(&str, Option<Kind>)] = &[
    ("metadata.name", None),
    ("metadata.namespace", None),
    ("spec.nodeName", Some(Kind::Pod)),
    ("status.phase", Some(Kind::Pod)),
    ("spec.unschedulable", Some(Kind::Node)),
    ("involvedObject.kind", Some(Kind::Event)),
    ("involvedObject.name", Some(Kind::Event)),
    ("involvedObject.uid", Some(Kind::Event)),
    ("reason", Some(Kind::Event)),
    ("type", Some(Kind::Event)),
];

/// One `field=value` or `field!=value` requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRequirement {
    pub field: String,
    /// `true` for `!=`.
    pub negated: bool,
    pub value: String,
}

/// A field selector (`metadata.name`, `metadata.namespace`, `spec.nodeName`, `status.phase`,
/// with `=`, `==`, `!=`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    /// Every requirement, in the order written.
    pub requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// Parses kubectl's `--field-selector` syntax. The empty string selects everything.
    pub fn parse(input: &str) -> Result<FieldSelector, SelectorError> {
        let mut requirements = Vec::new();
        if input.trim().is_empty() {
            return Ok(FieldSelector { requirements });
        }
        for part in input.split(',') {
            let part = part.trim();
            let (field, negated, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, true, v)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, false, v)
            } else {
                return Err(SelectorError::new(
                    input,
                    format!("{part:?}: expected field=value, field==value or field!=value"),
                ));
            };
            let field = field.trim();
            if !FIELDS.iter().any(|(f, _)| *f == field) {
                let supported: Vec<&str> = FIELDS.iter().map(|(f, _)| *f).collect();
                return Err(SelectorError::new(
                    input,
                    format!(
                        "field {field:?} is not supported; supported fields: {}",
                        supported.join(", ")
                    ),
                ));
            }
            requirements.push(FieldRequirement {
                field: field.to_string(),
                negated,
                value: value.trim().to_string(),
            });
        }
        Ok(FieldSelector { requirements })
    }

    /// Checks that every field named exists on `kind` (`spec.nodeName` is a Pod's, not a
    /// Job's), naming the fields `kind` supports otherwise.
    pub fn check_kind(&self, kind: Kind) -> Result<(), SelectorError> {
        for r in &self.requirements {
            let ok = FIELDS
                .iter()
                .any(|(f, k)| *f == r.field && k.is_none_or(|k| k == kind));
            if !ok {
                let supported: Vec<&str> = FIELDS
                    .iter()
                    .filter(|(_, k)| k.is_none_or(|k| k == kind))
                    .map(|(f, _)| *f)
                    .collect();
                return Err(SelectorError::new(
                    &r.field,
                    format!(
                        "field {:?} is not supported for {}; supported fields: {}",
                        r.field,
                        kind.as_str_name(),
                        supported.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Whether this selector selects everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether `obj` satisfies every requirement.
    pub fn matches(&self, obj: &Object) -> bool {
        self.requirements.iter().all(|r| {
            let actual = field_value(obj, &r.field);
            (actual == r.value) != r.negated
        })
    }

    /// Whether the object `view` was taken of satisfies every requirement.
    pub fn matches_view(&self, view: &Selectable) -> bool {
        self.requirements.iter().all(|r| {
            let actual = view
                .fields
                .iter()
                .find(|(f, _)| *f == r.field)
                .map_or("", |(_, v)| v.as_str());
            (actual == r.value) != r.negated
        })
    }
}

/// What label and field selectors read of an object, taken once: its namespace, its labels
/// and the value of every selectable field of its kind. The broker keeps this beside each
/// event of its watch window instead of the decoded object (a tenth of the memory).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selectable {
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    fields: Vec<(&'static str, String)>,
}

impl Selectable {
    pub fn of(obj: &Object) -> Selectable {
        let kind = obj.kind();
        Selectable {
            namespace: obj.namespace().to_string(),
            labels: obj.meta().map(|m| m.labels.clone()).unwrap_or_default(),
            fields: FIELDS
                .iter()
                .filter(|(_, k)| k.is_none_or(|k| k == kind))
                .map(|(f, _)| (*f, field_value(obj, f)))
                .collect(),
        }
    }
}

/// The value of a supported field on `obj` (empty when the kind has no such field).
fn field_value(obj: &Object, field: &str) -> String {
    match field {
        "metadata.name" => obj.name().to_string(),
        "metadata.namespace" => obj.namespace().to_string(),
        "spec.nodeName" => obj
            .as_pod()
            .and_then(|p| p.spec.as_ref())
            .map(|s| s.node_name.clone())
            .unwrap_or_default(),
        "status.phase" => obj
            .as_pod()
            .and_then(|p| p.status.as_ref())
            .map(|s| s.phase.clone())
            .unwrap_or_default(),
        "spec.unschedulable" => obj
            .as_node()
            .map(|n| n.spec.as_ref().is_some_and(|s| s.unschedulable).to_string())
            .unwrap_or_default(),
        "involvedObject.kind" | "involvedObject.name" | "involvedObject.uid" => obj
            .as_event()
            .and_then(|e| e.involved_object.as_ref())
            .map(|r| match field {
                "involvedObject.kind" => r.kind.clone(),
                "involvedObject.name" => r.name.clone(),
                _ => r.uid.clone(),
            })
            .unwrap_or_default(),
        "reason" => obj.as_event().map(|e| e.reason.clone()).unwrap_or_default(),
        "type" => obj.as_event().map(|e| e.r#type.clone()).unwrap_or_default(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn kubectl_label_syntax_matches_like_kubernetes() {
        let app_x = labels(&[("app", "x"), ("env", "prod")]);
        let app_y = labels(&[("app", "y")]);
        let none = labels(&[]);
        // (selector, matches app_x, matches app_y, matches none)
        let table = [
            ("", true, true, true),
            ("app=x", true, false, false),
            ("app==x", true, false, false),
            ("app!=x", false, true, true),
            ("app in (x,z)", true, false, false),
            ("app in (y, z)", false, true, false),
            ("app notin (x)", false, true, true),
            ("app", true, true, false),
            ("!app", false, false, true),
            ("app,!env", false, true, false),
            ("app=x,env in (prod,dev)", true, false, false),
            ("env notin (prod),app", false, true, false),
            (" app = x ", true, false, false),
            ("example.com/tier", false, false, false),
        ];
        for (sel, x, y, n) in table {
            let s = LabelSelector::parse(sel).unwrap_or_else(|e| panic!("{sel}: {e}"));
            assert_eq!(s.matches(&app_x), x, "{sel} vs app=x");
            assert_eq!(s.matches(&app_y), y, "{sel} vs app=y");
            assert_eq!(s.matches(&none), n, "{sel} vs no labels");
        }
    }

    #[test]
    fn malformed_label_selectors_are_rejected_with_a_reason() {
        let table = [
            ("app>3", "'>' and '<' are not label selector operators"),
            ("app<3", "'>' and '<' are not label selector operators"),
            ("app in (x", "missing ')'"),
            ("app in x)", "unbalanced"),
            ("app,,env", "empty requirement"),
            ("app among (x)", "unknown set operator"),
            ("-app=x", "name part must be"),
            ("app=x y", "value"),
            ("Example.com/app=x", "prefix part"),
            ("app x", "expected an operator"),
            ("!", "name part must be non-empty"),
        ];
        for (sel, want) in table {
            let err = LabelSelector::parse(sel).expect_err(sel);
            assert!(err.reason.contains(want), "{sel}: {}", err.reason);
        }
    }

    fn expr(key: &str, op: &str, values: &[&str]) -> v1::LabelSelectorRequirement {
        v1::LabelSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    #[test]
    fn label_selector_objects_convert_with_kubernetes_validation() {
        let ok = v1::LabelSelector {
            match_labels: labels(&[("app", "x")]),
            match_expressions: vec![
                expr("env", "In", &["prod", "dev"]),
                expr("legacy", "DoesNotExist", &[]),
                expr("tier", "Exists", &[]),
                expr("zone", "NotIn", &["a"]),
            ],
        };
        let s = LabelSelector::from_proto(&ok).unwrap();
        assert!(s.matches(&labels(&[("app", "x"), ("env", "dev"), ("tier", "1")])));
        assert!(!s.matches(&labels(&[("app", "x"), ("env", "dev")])));
        assert!(!s.matches(&labels(&[
            ("app", "x"),
            ("env", "dev"),
            ("tier", "1"),
            ("legacy", "")
        ])));
        assert!(
            LabelSelector::from_proto(&v1::LabelSelector::default())
                .unwrap()
                .is_empty()
        );

        let bad = [
            (expr("env", "In", &[]), "Required value"),
            (expr("env", "NotIn", &[]), "Required value"),
            (expr("env", "Exists", &["x"]), "Forbidden"),
            (expr("env", "DoesNotExist", &["x"]), "Forbidden"),
            (expr("env", "Gt", &["1"]), "Unsupported value"),
            (expr("env", "In", &["not valid"]), "values"),
            (expr("", "Exists", &[]), "key"),
        ];
        for (e, want) in bad {
            let sel = v1::LabelSelector {
                match_expressions: vec![e.clone()],
                ..Default::default()
            };
            let err = LabelSelector::from_proto(&sel).expect_err(&format!("{e:?}"));
            assert!(err.reason.contains(want), "{e:?}: {}", err.reason);
        }
        let bad_value = v1::LabelSelector {
            match_labels: labels(&[("app", "-x")]),
            ..Default::default()
        };
        assert!(LabelSelector::from_proto(&bad_value).is_err());
    }

    fn pod(name: &str, node: &str, phase: &str) -> Object {
        v1::Pod {
            metadata: Some(v1::ObjectMeta {
                name: name.into(),
                namespace: "default".into(),
                ..Default::default()
            }),
            spec: Some(Box::new(v1::PodSpec {
                node_name: node.into(),
                ..Default::default()
            })),
            status: Some(v1::PodStatus {
                phase: phase.into(),
                ..Default::default()
            }),
            ..Default::default()
        }
        .into()
    }

    #[test]
    fn field_selectors_match_pods_nodes_and_events() {
        let p = pod("a", "node-1", "Running");
        let unbound = pod("b", "", "Pending");
        let node: Object = v1::Node {
            metadata: Some(v1::ObjectMeta {
                name: "n1".into(),
                ..Default::default()
            }),
            spec: Some(v1::NodeSpec {
                unschedulable: true,
                ..Default::default()
            }),
            ..Default::default()
        }
        .into();
        let event: Object = v1::Event {
            metadata: Some(v1::ObjectMeta {
                name: "e".into(),
                namespace: "default".into(),
                ..Default::default()
            }),
            involved_object: Some(v1::ObjectReference {
                kind: "Job".into(),
                name: "pi".into(),
                uid: "u1".into(),
                ..Default::default()
            }),
            reason: "Completed".into(),
            r#type: "Normal".into(),
            ..Default::default()
        }
        .into();
        let table: &[(&str, &Object, bool)] = &[
            ("", &p, true),
            ("metadata.name=a", &p, true),
            ("metadata.name==b", &p, false),
            ("metadata.namespace=default", &p, true),
            ("spec.nodeName=node-1", &p, true),
            ("spec.nodeName=", &unbound, true),
            ("spec.nodeName!=", &p, true),
            ("spec.nodeName!=", &unbound, false),
            ("status.phase!=Running", &p, false),
            ("status.phase=Pending,metadata.name=b", &unbound, true),
            ("spec.unschedulable=true", &node, true),
            ("spec.unschedulable=false", &node, false),
            (
                "involvedObject.kind=Job,involvedObject.name=pi",
                &event,
                true,
            ),
            ("involvedObject.uid=u2", &event, false),
            ("reason=Completed,type=Normal", &event, true),
            ("type!=Warning", &event, true),
        ];
        for (sel, obj, want) in table {
            let s = FieldSelector::parse(sel).unwrap_or_else(|e| panic!("{sel}: {e}"));
            assert_eq!(s.matches(obj), *want, "{sel} on {}", obj.name());
            let view = Selectable::of(obj);
            assert_eq!(
                s.matches_view(&view),
                *want,
                "{sel} on a view of {}",
                obj.name()
            );
        }
    }

    #[test]
    fn unsupported_fields_are_rejected_naming_the_supported_ones() {
        let err = FieldSelector::parse("spec.restartPolicy=Never").unwrap_err();
        assert!(err.reason.contains("spec.restartPolicy"), "{}", err.reason);
        assert!(err.reason.contains("spec.nodeName"), "{}", err.reason);
        assert!(FieldSelector::parse("metadata.name").is_err());

        let on_job = FieldSelector::parse("spec.nodeName=n1").unwrap();
        let err = on_job.check_kind(Kind::Job).unwrap_err();
        assert!(err.reason.contains("metadata.name"), "{}", err.reason);
        assert!(!err.reason.contains("status.phase"), "{}", err.reason);
        assert!(on_job.check_kind(Kind::Pod).is_ok());
    }
}
