//! `-o` formats: parsing the flag, Kubernetes' `List` wrapper, and YAML from JSON values.

use bosun_api::codec;
use bosun_api::v1::Object;
use serde_json::{Value, json};
use yaml_rust2::{Yaml, YamlEmitter, yaml::Hash};

use crate::jsonpath::Template;

/// What `-o` asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    Table,
    Wide,
    Yaml,
    Json,
    Name,
    JsonPath(Template),
}

impl Output {
    /// Parses `-o` (`wide`, `yaml`, `json`, `name`, `jsonpath=...`, `jsonpath='...'`).
    pub fn parse(s: Option<&str>) -> anyhow::Result<Output> {
        Ok(match s {
            None | Some("") => Output::Table,
            Some("wide") => Output::Wide,
            Some("yaml") => Output::Yaml,
            Some("json") => Output::Json,
            Some("name") => Output::Name,
            Some(other) => {
                let tpl = other
                    .strip_prefix("jsonpath=")
                    .or_else(|| other.strip_prefix("jsonpath-as-json="))
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "unable to match a printer suitable for the output format \"{other}\", allowed formats are: json, jsonpath, name, wide, yaml"
                        )
                    })?;
                let tpl = tpl.trim_matches('\'');
                Output::JsonPath(Template::parse(tpl)?)
            }
        })
    }
}

/// Kubernetes' `List` around `items`.
pub fn list_value(items: &[Object]) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": items.iter().map(codec::to_json_value).collect::<Vec<_>>(),
        "metadata": {"resourceVersion": ""},
    })
}

/// One object, or a `List` when the user asked for a kind rather than one name.
pub fn value_of(items: &[Object], single: bool) -> Value {
    match items {
        [one] if single => codec::to_json_value(one),
        _ => list_value(items),
    }
}

/// YAML for `-o yaml`: the codec's own rendering for one object, else the list's JSON as YAML.
pub fn yaml_of(items: &[Object], single: bool) -> String {
    match items {
        [one] if single => codec::to_yaml(one),
        _ => json_to_yaml(&list_value(items)),
    }
}

/// Renders a JSON value as a YAML document (no leading `---`).
pub fn json_to_yaml(v: &Value) -> String {
    let mut out = String::new();
    let mut emitter = YamlEmitter::new(&mut out);
    emitter.multiline_strings(true);
    if emitter.dump(&to_yaml(v)).is_err() {
        // Emitting into a String cannot fail on I/O; fall back to JSON, which is valid YAML.
        return format!("{v:#}\n");
    }
    let body = out.strip_prefix("---\n").unwrap_or(&out).to_string();
    body + "\n"
}

fn to_yaml(v: &Value) -> Yaml {
    match v {
        Value::Null => Yaml::Null,
        Value::Bool(b) => Yaml::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Yaml::Integer(i),
            None => Yaml::Real(n.to_string()),
        },
        Value::String(s) => Yaml::String(s.clone()),
        Value::Array(a) => Yaml::Array(a.iter().map(to_yaml).collect()),
        Value::Object(m) => {
            let mut h = Hash::new();
            for (k, v) in m {
                h.insert(Yaml::String(k.clone()), to_yaml(v));
            }
            Yaml::Hash(h)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_flags_parse_to_printers() {
        assert_eq!(Output::parse(None).unwrap(), Output::Table);
        assert_eq!(Output::parse(Some("wide")).unwrap(), Output::Wide);
        assert_eq!(Output::parse(Some("name")).unwrap(), Output::Name);
        assert!(matches!(
            Output::parse(Some("jsonpath='{.items[*].metadata.name}'")).unwrap(),
            Output::JsonPath(_)
        ));
        assert!(Output::parse(Some("table2")).is_err());
    }

    #[test]
    fn json_values_render_as_yaml_keeping_key_order_and_quoting_ambiguous_strings() {
        let v = json!({"kind": "List", "items": [{"a": 1, "b": "yes"}], "empty": ""});
        let y = json_to_yaml(&v);
        assert!(y.starts_with("kind: List\nitems:\n"), "{y}");
        assert!(y.contains("a: 1"), "{y}");
        assert!(y.contains("b: \"yes\""), "{y}");
        assert!(y.contains("empty: \"\""), "{y}");
    }
}
