//! The encoder: an object as Kubernetes-shaped JSON (proto field order, empty fields omitted,
//! int64 as numbers, IntOrString bare) and as kubectl-style block YAML.

use prost::Message;
use prost_reflect::{DynamicMessage, Kind as PKind, MapKey, ReflectMessage, Value};
use serde_json::{Map, Value as Json};

use super::tree;
use crate::v1::Object;

/// The object as Kubernetes-shaped JSON (empty fields omitted, int64 as numbers).
pub fn to_json_value(obj: &Object) -> Json {
    let mut obj = obj.clone();
    if obj.type_meta().0.is_empty() || obj.type_meta().1.is_empty() {
        obj.set_type_meta();
    }
    let Some(desc) = crate::descriptor_pool().get_message_by_name("bosun.v1.Object") else {
        return Json::Object(Map::new());
    };
    let Ok(dynamic) = DynamicMessage::decode(desc, obj.encode_to_vec().as_slice()) else {
        return Json::Object(Map::new());
    };
    // The wrapper has exactly one field set: the kind's message.
    for (_, value) in dynamic.fields() {
        if let Value::Message(inner) = value {
            return message(inner);
        }
    }
    Json::Object(Map::new())
}

/// The object as Kubernetes-shaped YAML, in kubectl's block style.
pub fn to_yaml(obj: &Object) -> String {
    let mut out = String::new();
    match to_json_value(obj) {
        Json::Object(map) if !map.is_empty() => emit_map(&mut out, &map, 0),
        other => {
            out.push_str(&scalar(&other));
            out.push('\n');
        }
    }
    out
}

fn message(msg: &DynamicMessage) -> Json {
    let desc = msg.descriptor();
    if desc.full_name() == "bosun.v1.IntOrString" {
        let is_string = matches!(
            msg.get_field_by_name("is_string").as_deref(),
            Some(Value::Bool(true))
        );
        return if is_string {
            match msg.get_field_by_name("str_val").as_deref() {
                Some(Value::String(s)) => Json::String(s.clone()),
                _ => Json::String(String::new()),
            }
        } else {
            match msg.get_field_by_name("int_val").as_deref() {
                Some(Value::I32(i)) => Json::from(*i),
                _ => Json::from(0),
            }
        };
    }
    let mut map = Map::new();
    for field in desc.fields() {
        if !msg.has_field(&field) {
            continue;
        }
        let value = msg.get_field(&field);
        map.insert(
            field.json_name().to_string(),
            value_json(&value, &field.kind()),
        );
    }
    Json::Object(map)
}

fn value_json(value: &Value, kind: &PKind) -> Json {
    match value {
        Value::Bool(b) => Json::Bool(*b),
        Value::I32(i) => Json::from(*i),
        Value::I64(i) => Json::from(*i),
        Value::U32(i) => Json::from(*i),
        Value::U64(i) => Json::from(*i),
        Value::F32(f) => {
            serde_json::Number::from_f64(f64::from(*f)).map_or(Json::Null, Json::Number)
        }
        Value::F64(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Value::String(s) => Json::String(s.clone()),
        Value::Bytes(b) => Json::String(String::from_utf8_lossy(b).into_owned()),
        Value::EnumNumber(n) => match kind {
            PKind::Enum(e) => e
                .get_value(*n)
                .map_or(Json::from(*n), |v| Json::String(v.name().to_string())),
            _ => Json::from(*n),
        },
        Value::Message(m) => message(m),
        Value::List(items) => Json::Array(items.iter().map(|v| value_json(v, kind)).collect()),
        Value::Map(entries) => {
            let value_kind = match kind {
                PKind::Message(entry) => entry.map_entry_value_field().kind(),
                other => other.clone(),
            };
            let mut keys: Vec<(&MapKey, &Value)> = entries.iter().collect();
            keys.sort_by(|a, b| a.0.cmp(b.0));
            let mut map = Map::new();
            for (k, v) in keys {
                let key = match k {
                    MapKey::String(s) => s.clone(),
                    MapKey::Bool(b) => b.to_string(),
                    MapKey::I32(i) => i.to_string(),
                    MapKey::I64(i) => i.to_string(),
                    MapKey::U32(i) => i.to_string(),
                    MapKey::U64(i) => i.to_string(),
                };
                map.insert(key, value_json(v, &value_kind));
            }
            Json::Object(map)
        }
    }
}

fn is_scalar(v: &Json) -> bool {
    match v {
        Json::Object(m) => m.is_empty(),
        Json::Array(a) => a.is_empty(),
        _ => true,
    }
}

/// A scalar (or an empty collection) as YAML text.
fn scalar(v: &Json) -> String {
    match v {
        Json::Null => "null".into(),
        Json::Bool(b) => b.to_string(),
        Json::Number(n) => n.to_string(),
        Json::String(s) => quote(s),
        Json::Object(_) => "{}".into(),
        Json::Array(_) => "[]".into(),
    }
}

/// `s` as a YAML scalar: plain when it reads back as the same string, double-quoted (JSON
/// escaping, which YAML accepts) otherwise.
fn quote(s: &str) -> String {
    let needs = s.is_empty()
        || !plain_reads_back(s)
        || s.starts_with([
            '*', '&', '!', '%', '@', '|', '>', '\'', '"', '#', '{', '}', '[', ']', ',', '?', ':',
            '-', ' ', '`',
        ])
        || s.ends_with([' ', ':'])
        || s.contains(": ")
        || s.contains(" #")
        || s.chars().any(|c| c.is_control());
    if needs {
        serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
    } else {
        s.to_string()
    }
}

fn plain_reads_back(s: &str) -> bool {
    let node = tree::Node {
        line: 0,
        col: 0,
        kind: tree::NodeKind::Scalar {
            value: s.to_string(),
            plain: true,
        },
    };
    node.scalar() == Some(tree::Scalar::Str(s))
}

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

fn emit_map(out: &mut String, map: &Map<String, Json>, indent: usize) {
    let mut first = true;
    for (k, v) in map {
        if !first {
            pad(out, indent);
        }
        first = false;
        out.push_str(&quote(k));
        out.push(':');
        emit_value_after_key(out, v, indent);
    }
}

fn emit_value_after_key(out: &mut String, v: &Json, indent: usize) {
    if is_scalar(v) {
        out.push(' ');
        out.push_str(&scalar(v));
        out.push('\n');
        return;
    }
    out.push('\n');
    match v {
        Json::Object(m) => {
            pad(out, indent + 2);
            emit_map(out, m, indent + 2);
        }
        Json::Array(a) => emit_seq(out, a, indent),
        _ => {}
    }
}

/// A sequence at `indent` (kubectl writes `- ` at the parent key's column).
fn emit_seq(out: &mut String, items: &[Json], indent: usize) {
    for item in items {
        pad(out, indent);
        out.push('-');
        if is_scalar(item) {
            out.push(' ');
            out.push_str(&scalar(item));
            out.push('\n');
            continue;
        }
        match item {
            Json::Object(m) => {
                out.push(' ');
                emit_map(out, m, indent + 2);
            }
            Json::Array(a) => {
                out.push('\n');
                emit_seq(out, a, indent + 2);
            }
            _ => {}
        }
    }
}
