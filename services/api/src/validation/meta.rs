//! Names, labels, annotations, selectors and object metadata.

use std::collections::BTreeMap;

use super::Errs;
use crate::v1::{LabelSelector, ObjectMeta};

const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const QUALIFIED_NAME_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
pub fn is_dns1123_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Dot-separated DNS-1123 labels, at most 253 characters.
pub fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns1123_label)
}

fn is_name_part(s: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_alphanumeric();
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| alnum(b) || matches!(b, b'-' | b'_' | b'.'))
        && alnum(s.as_bytes()[0])
        && alnum(s.as_bytes()[s.len() - 1])
}

/// A label or annotation key: `[prefix/]name`, prefix a DNS subdomain.
pub fn is_qualified_name(s: &str) -> bool {
    match s.split_once('/') {
        Some((prefix, name)) => is_dns1123_subdomain(prefix) && is_name_part(name),
        None => is_name_part(s),
    }
}

/// A label value: empty, or a name part of at most 63 characters.
pub fn is_valid_label_value(s: &str) -> bool {
    s.is_empty() || is_name_part(s)
}

pub(crate) fn validate_label_key(e: &mut Errs, path: &str, key: &str) {
    if !is_qualified_name(key) {
        let detail = if key.is_empty() {
            "name part must be non-empty".to_string()
        } else if key.len() > 316 || key.split('/').next_back().is_some_and(|n| n.len() > 63) {
            "name part must be no more than 63 characters".to_string()
        } else {
            QUALIFIED_NAME_MSG.to_string()
        };
        e.invalid(path, key, &detail);
    }
}

pub(crate) fn validate_labels(e: &mut Errs, path: &str, labels: &BTreeMap<String, String>) {
    for (k, v) in labels {
        validate_label_key(e, path, k);
        if !is_valid_label_value(v) {
            let detail = if v.len() > 63 {
                "must be no more than 63 characters"
            } else {
                LABEL_VALUE_MSG
            };
            e.invalid(path, v, detail);
        }
    }
}

fn validate_annotations(e: &mut Errs, path: &str, annotations: &BTreeMap<String, String>) {
    let mut total = 0usize;
    for (k, v) in annotations {
        validate_label_key(e, path, &k.to_ascii_lowercase());
        total += k.len() + v.len();
    }
    if total > 256 * 1024 {
        e.push(
            path,
            format!("Too long: may not be more than {} bytes", 256 * 1024),
        );
    }
}

pub(crate) fn validate_subdomain(e: &mut Errs, path: &str, name: &str) {
    if !is_dns1123_subdomain(name) {
        let detail = if name.len() > 253 {
            "must be no more than 253 characters"
        } else {
            DNS1123_SUBDOMAIN_MSG
        };
        e.invalid(path, name, detail);
    }
}

pub(crate) fn validate_dns_label(e: &mut Errs, path: &str, name: &str) {
    if !is_dns1123_label(name) {
        let detail = if name.len() > 63 {
            "must be no more than 63 characters"
        } else {
            DNS1123_LABEL_MSG
        };
        e.invalid(path, name, detail);
    }
}

/// `ValidateObjectMeta`: name or generateName, namespace, labels, annotations, owners.
pub(crate) fn validate_object_meta(e: &mut Errs, m: &ObjectMeta, namespaced: bool) {
    if m.name.is_empty() {
        if m.generate_name.is_empty() {
            e.required("metadata.name", "name or generateName is required");
        }
    } else {
        validate_subdomain(e, "metadata.name", &m.name);
    }
    if !m.generate_name.is_empty() {
        // A prefix: the trailing dash is allowed, the random suffix follows it.
        let masked = m
            .generate_name
            .strip_suffix('-')
            .map_or(m.generate_name.clone(), |s| format!("{s}a"));
        if !is_dns1123_subdomain(&masked) {
            e.invalid(
                "metadata.generateName",
                &m.generate_name,
                DNS1123_SUBDOMAIN_MSG,
            );
        }
    }
    if namespaced {
        if !m.namespace.is_empty() {
            validate_dns_label(e, "metadata.namespace", &m.namespace);
        }
    } else if !m.namespace.is_empty() {
        e.forbidden("metadata.namespace", "not allowed on this type");
    }
    validate_labels(e, "metadata.labels", &m.labels);
    validate_annotations(e, "metadata.annotations", &m.annotations);
    for (i, r) in m.owner_references.iter().enumerate() {
        let p = format!("metadata.ownerReferences[{i}]");
        for (field, value) in [
            ("apiVersion", &r.api_version),
            ("kind", &r.kind),
            ("name", &r.name),
            ("uid", &r.uid),
        ] {
            if value.is_empty() {
                e.invalid(
                    format!("{p}.{field}"),
                    value,
                    &format!("{field} must not be empty"),
                );
            }
        }
    }
    if m.owner_references
        .iter()
        .filter(|r| r.controller == Some(true))
        .count()
        > 1
    {
        e.invalid(
            "metadata.ownerReferences",
            "",
            "Only one reference can have Controller set to true",
        );
    }
}

/// `ValidateLabelSelector`: keys, operators and values.
pub(crate) fn validate_selector(e: &mut Errs, path: &str, s: &LabelSelector) {
    validate_labels(e, &format!("{path}.matchLabels"), &s.match_labels);
    for (i, r) in s.match_expressions.iter().enumerate() {
        let p = format!("{path}.matchExpressions[{i}]");
        validate_label_key(e, &format!("{p}.key"), &r.key);
        match r.operator.as_str() {
            "In" | "NotIn" => {
                if r.values.is_empty() {
                    e.required(
                        format!("{p}.values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    );
                }
            }
            "Exists" | "DoesNotExist" => {
                if !r.values.is_empty() {
                    e.forbidden(
                        format!("{p}.values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    );
                }
            }
            other => e.invalid(
                format!("{p}.operator"),
                other,
                "not a valid selector operator",
            ),
        }
    }
}

/// Whether `s` selects `labels`. An invalid selector counts as matching: its own errors are
/// reported by [`validate_selector`], and Kubernetes only checks the match of a selector it
/// could convert.
pub(crate) fn selector_matches(s: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    match crate::selector::LabelSelector::from_proto(s) {
        Ok(selector) => selector.matches(labels),
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names_follow_rfc_1123() {
        let table = [
            ("pi", true, true),
            ("a.b", false, true),
            ("Pi", false, false),
            ("-a", false, false),
            ("a-", false, false),
            ("a_b", false, false),
            ("", false, false),
        ];
        for (s, label, sub) in table {
            assert_eq!(is_dns1123_label(s), label, "{s}");
            assert_eq!(is_dns1123_subdomain(s), sub, "{s}");
        }
        assert!(!is_dns1123_label(&"a".repeat(64)));
    }

    #[test]
    fn label_keys_and_values_follow_kubernetes_syntax() {
        for k in ["app", "batch.kubernetes.io/job-name", "A_b.c", "k8s-app"] {
            assert!(is_qualified_name(k), "{k}");
        }
        for k in ["", "/a", "a/", "-a", "UPPER.io/x", "a/b/c"] {
            assert!(!is_qualified_name(k), "{k}");
        }
        assert!(is_valid_label_value(""));
        assert!(is_valid_label_value("v1.2_3"));
        assert!(!is_valid_label_value("has space"));
        assert!(!is_valid_label_value(&"x".repeat(64)));
    }

    #[test]
    fn selectors_match_labels_and_expressions() {
        let labels: BTreeMap<String, String> = [("app".to_string(), "x".to_string())].into();
        let mut s = LabelSelector::default();
        assert!(selector_matches(&s, &labels));
        s.match_labels.insert("app".into(), "y".into());
        assert!(!selector_matches(&s, &labels));
        s.match_labels.clear();
        s.match_expressions
            .push(crate::v1::LabelSelectorRequirement {
                key: "app".into(),
                operator: "NotIn".into(),
                values: vec!["x".into()],
            });
        assert!(!selector_matches(&s, &labels));
        s.match_expressions[0].values = vec!["y".into()];
        assert!(selector_matches(&s, &labels));
        // A broken selector is reported by validate_selector, not as a mismatch too.
        s.match_expressions[0].operator = "Sideways".into();
        assert!(selector_matches(&s, &labels));
    }
}
