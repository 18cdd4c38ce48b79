//! The strict decoder: walks a positioned YAML tree against the message descriptors, builds
//! a `DynamicMessage`, and reports every unknown field, duplicate key and wrong type with its
//! line, its Kubernetes field path and, when it can tell, the fix.

use std::collections::HashMap;

use prost_reflect::{
    DynamicMessage, FieldDescriptor, Kind as PKind, MapKey, MessageDescriptor, Value,
};

use super::Diagnostic;
use super::tree::{Node, NodeKind, Scalar};

/// Map fields whose values are Kubernetes quantities: numbers are accepted there and kept as
/// written (`cpu: 1`, `memory: 200Mi`).
const QUANTITY_FIELDS: &[&str] = &[
    "bosun.v1.ResourceRequirements.limits",
    "bosun.v1.ResourceRequirements.requests",
    "bosun.v1.NodeStatus.capacity",
    "bosun.v1.NodeStatus.allocatable",
    "bosun.v1.EmptyDirVolumeSource.size_limit",
    "bosun.v1.ResourceFieldSelector.divisor",
];

const INT_OR_STRING: &str = "bosun.v1.IntOrString";

/// One walk over one object: its diagnostics and where each field path sits in the file.
pub(crate) struct Walker<'a> {
    pub source: &'a str,
    pub root: MessageDescriptor,
    pub diagnostics: Vec<Diagnostic>,
    /// Field path → (line, column) of its key (or its list item).
    pub lines: HashMap<String, (usize, usize)>,
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

impl<'a> Walker<'a> {
    pub fn new(source: &'a str, root: MessageDescriptor) -> Self {
        Walker {
            source,
            root,
            diagnostics: Vec::new(),
            lines: HashMap::new(),
        }
    }

    fn report(&mut self, node: &Node, path: &str, message: String, hint: Option<String>) {
        self.diagnostics.push(Diagnostic {
            source: self.source.to_string(),
            line: node.line,
            column: node.col,
            path: path.to_string(),
            message,
            hint,
        });
    }

    fn wrong_type(&mut self, node: &Node, path: &str, expected: &str) {
        let got = node.describe();
        self.report(node, path, format!("expected {expected}, got {got}"), None);
    }

    /// Decodes a mapping node into a message of type `desc`, skipping `skip` top-level keys
    /// (`apiVersion` and `kind` are read by the caller).
    pub fn message(&mut self, node: &Node, desc: &MessageDescriptor, path: &str) -> DynamicMessage {
        let mut msg = DynamicMessage::new(desc.clone());
        let entries = match &node.kind {
            NodeKind::Map(entries) => entries,
            _ => {
                if !node.is_null() {
                    self.wrong_type(node, path, "an object");
                }
                return msg;
            }
        };
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (i, (key, value)) in entries.iter().enumerate() {
            let name = match key.scalar() {
                Some(Scalar::Str(s)) => s.to_string(),
                Some(Scalar::Null) | None => {
                    self.report(key, path, "a key must be a string".into(), None);
                    continue;
                }
                Some(_) => match &key.kind {
                    NodeKind::Scalar { value, .. } => value.clone(),
                    _ => continue,
                },
            };
            let child = join(path, &name);
            if let Some(first) = seen.insert(name.clone(), key.line) {
                self.report(
                    key,
                    &child,
                    format!("duplicate key {name:?} (first at line {first})"),
                    Some("remove one of them".into()),
                );
            }
            let Some(field) = desc.fields().find(|f| f.json_name() == name) else {
                let hint = self.unknown_field_hint(entries, i, desc, path, &name);
                self.report(key, &child, format!("unknown field {name:?}"), hint);
                continue;
            };
            self.lines
                .entry(child.clone())
                .or_insert((key.line, key.col));
            if let Some(v) = self.field(value, &field, &child) {
                msg.set_field(&field, v);
            }
        }
        msg
    }

    /// Decodes the value of one field (`None` when null or wrong).
    fn field(&mut self, node: &Node, field: &FieldDescriptor, path: &str) -> Option<Value> {
        if field.is_map() {
            return self.map(node, field, path);
        }
        if field.is_list() {
            let items = match &node.kind {
                NodeKind::Seq(items) => items,
                _ => {
                    if !node.is_null() {
                        self.wrong_type(node, path, "a list");
                    }
                    return None;
                }
            };
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let item_path = format!("{path}[{i}]");
                self.lines.insert(item_path.clone(), (item.line, item.col));
                match self.single(item, field, &item_path) {
                    Some(v) => out.push(v),
                    None => {
                        if let PKind::Message(m) = field.kind() {
                            out.push(Value::Message(DynamicMessage::new(m)));
                        }
                    }
                }
            }
            return Some(Value::List(out));
        }
        self.single(node, field, path)
    }

    fn map(&mut self, node: &Node, field: &FieldDescriptor, path: &str) -> Option<Value> {
        let entries = match &node.kind {
            NodeKind::Map(entries) => entries,
            _ => {
                if !node.is_null() {
                    self.wrong_type(node, path, "an object (a map of strings)");
                }
                return None;
            }
        };
        let PKind::Message(entry) = field.kind() else {
            return None;
        };
        let value_field = entry.map_entry_value_field();
        let quantity = QUANTITY_FIELDS.contains(&field.full_name());
        let mut out = HashMap::new();
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (key, value) in entries {
            let name = match &key.kind {
                NodeKind::Scalar { value, .. } => value.clone(),
                _ => {
                    self.report(key, path, "a map key must be a string".into(), None);
                    continue;
                }
            };
            let child = format!("{path}[{name}]");
            if let Some(first) = seen.insert(name.clone(), key.line) {
                self.report(
                    key,
                    path,
                    format!("duplicate key {name:?} (first at line {first})"),
                    Some("remove one of them".into()),
                );
            }
            self.lines.insert(child.clone(), (key.line, key.col));
            let decoded = match (value_field.kind(), value.scalar()) {
                (PKind::String, Some(Scalar::Str(s))) => Some(Value::String(s.to_string())),
                (PKind::String, Some(Scalar::Int(_) | Scalar::Float(_))) if quantity => {
                    match &value.kind {
                        NodeKind::Scalar { value, .. } => Some(Value::String(value.clone())),
                        _ => None,
                    }
                }
                (PKind::String, _) => {
                    let got = value.describe();
                    let hint = match value.scalar() {
                        Some(Scalar::Null) => None,
                        Some(_) => {
                            let text = match &value.kind {
                                NodeKind::Scalar { value, .. } => value.clone(),
                                _ => String::new(),
                            };
                            Some(format!("quote it: {name}: \"{text}\""))
                        }
                        None => None,
                    };
                    self.report(
                        value,
                        &child,
                        format!("expected a string value for {name:?}, got {got}"),
                        hint,
                    );
                    None
                }
                _ => self.single(value, &value_field, &child),
            };
            if let Some(v) = decoded {
                out.insert(MapKey::String(name), v);
            }
        }
        Some(Value::Map(out))
    }

    /// Decodes one non-repeated value of `field`'s type.
    fn single(&mut self, node: &Node, field: &FieldDescriptor, path: &str) -> Option<Value> {
        let scalar = node.scalar();
        if scalar == Some(Scalar::Null) && !matches!(field.kind(), PKind::Message(_)) {
            return None;
        }
        match field.kind() {
            PKind::Message(m) if m.full_name() == INT_OR_STRING => {
                let mut msg = DynamicMessage::new(m.clone());
                match scalar {
                    Some(Scalar::Int(i)) if i32::try_from(i).is_ok() => {
                        msg.set_field_by_name("int_val", Value::I32(i as i32));
                    }
                    Some(Scalar::Str(s)) => {
                        msg.set_field_by_name("is_string", Value::Bool(true));
                        msg.set_field_by_name("str_val", Value::String(s.to_string()));
                    }
                    Some(Scalar::Null) => return None,
                    _ => {
                        self.wrong_type(node, path, "an integer or a string (\"10%\")");
                        return None;
                    }
                }
                Some(Value::Message(msg))
            }
            PKind::Message(m) => {
                if node.is_null() {
                    return None;
                }
                Some(Value::Message(self.message(node, &m, path)))
            }
            PKind::String => match scalar {
                Some(Scalar::Str(s)) => Some(Value::String(s.to_string())),
                _ => {
                    self.wrong_type(node, path, "a string");
                    None
                }
            },
            PKind::Bool => match scalar {
                Some(Scalar::Bool(b)) => Some(Value::Bool(b)),
                _ => {
                    self.wrong_type(node, path, "a boolean (true or false)");
                    None
                }
            },
            PKind::Int32 | PKind::Sint32 | PKind::Sfixed32 => match scalar {
                Some(Scalar::Int(i)) => match i32::try_from(i) {
                    Ok(v) => Some(Value::I32(v)),
                    Err(_) => {
                        self.report(
                            node,
                            path,
                            format!("{i} does not fit a 32-bit integer"),
                            None,
                        );
                        None
                    }
                },
                _ => {
                    self.wrong_type(node, path, "an integer");
                    None
                }
            },
            PKind::Int64 | PKind::Sint64 | PKind::Sfixed64 => match scalar {
                Some(Scalar::Int(i)) => Some(Value::I64(i)),
                _ => {
                    self.wrong_type(node, path, "an integer");
                    None
                }
            },
            PKind::Uint32 | PKind::Fixed32 => match scalar {
                Some(Scalar::Int(i)) if u32::try_from(i).is_ok() => Some(Value::U32(i as u32)),
                _ => {
                    self.wrong_type(node, path, "a non-negative integer");
                    None
                }
            },
            PKind::Uint64 | PKind::Fixed64 => match scalar {
                Some(Scalar::Int(i)) if i >= 0 => Some(Value::U64(i as u64)),
                _ => {
                    self.wrong_type(node, path, "a non-negative integer");
                    None
                }
            },
            PKind::Double | PKind::Float => match scalar {
                Some(Scalar::Int(i)) => Some(float_value(field, i as f64)),
                Some(Scalar::Float(f)) => Some(float_value(field, f)),
                _ => {
                    self.wrong_type(node, path, "a number");
                    None
                }
            },
            PKind::Bytes => match scalar {
                Some(Scalar::Str(s)) => Some(Value::Bytes(s.as_bytes().to_vec().into())),
                _ => {
                    self.wrong_type(node, path, "a string");
                    None
                }
            },
            PKind::Enum(e) => match scalar {
                Some(Scalar::Str(s)) => match e.get_value_by_name(s) {
                    Some(v) => Some(Value::EnumNumber(v.number())),
                    None => {
                        self.report(node, path, format!("Unsupported value: {s:?}"), None);
                        None
                    }
                },
                _ => {
                    self.wrong_type(node, path, "a string");
                    None
                }
            },
        }
    }

    /// The fix for an unknown field `name` at `entries[index]` of a mapping of type `desc`.
    fn unknown_field_hint(
        &self,
        entries: &[(Node, Node)],
        index: usize,
        desc: &MessageDescriptor,
        path: &str,
        name: &str,
    ) -> Option<String> {
        // (c) Lost indentation: the entry just above is an empty map/message that would
        // accept this key.
        if let Some((prev_key, prev_value)) = index.checked_sub(1).map(|i| &entries[i]) {
            let key = &entries[index].0;
            let prev_name = match prev_key.scalar() {
                Some(Scalar::Str(s)) => Some(s),
                _ => None,
            };
            let prev_field = prev_name.and_then(|n| desc.fields().find(|f| f.json_name() == n));
            if let (Some(prev_name), Some(prev_field)) = (prev_name, prev_field) {
                let accepts = match prev_field.kind() {
                    _ if prev_field.is_map() => true,
                    PKind::Message(m) if !prev_field.is_list() => {
                        m.fields().any(|f| f.json_name() == name)
                    }
                    _ => false,
                };
                if accepts && prev_value.is_null() && prev_key.col == key.col {
                    let parent = if path.is_empty() { "the object" } else { path };
                    return Some(format!(
                        "{name:?} is not a field of {parent}, and {prev_name} just above it is \
                         empty: indent {name} under {prev_name}"
                    ));
                }
            }
        }
        // (a) The same name elsewhere in this kind's schema, nearest first.
        if let Some(found) = find_elsewhere(&self.root, path, name) {
            return Some(format!("did you mean {found}?"));
        }
        // (b) A near-miss sibling.
        let lower = name.to_ascii_lowercase();
        let best = desc
            .fields()
            .map(|f| {
                let d = edit_distance(&lower, &f.json_name().to_ascii_lowercase());
                (d, f.json_name().to_string())
            })
            .min_by_key(|(d, _)| *d)?;
        let limit = if name.len() <= 4 { 1 } else { 2 };
        (best.0 <= limit).then(|| format!("did you mean {}?", join(path, &best.1)))
    }
}

fn float_value(field: &FieldDescriptor, f: f64) -> Value {
    match field.kind() {
        PKind::Float => Value::F32(f as f32),
        _ => Value::F64(f),
    }
}

/// Every path (with `[*]` for list items) where a field called `name` exists under `root`,
/// skipping status and managedFields; returns the one nearest to `path`.
fn find_elsewhere(root: &MessageDescriptor, path: &str, name: &str) -> Option<String> {
    let mut found = Vec::new();
    let mut queue = vec![(root.clone(), String::new(), 0usize)];
    while let Some((desc, prefix, depth)) = queue.pop() {
        for f in desc.fields() {
            let json = f.json_name();
            if depth == 0 && json == "status" || json == "managedFields" {
                continue;
            }
            let child = join(&prefix, json);
            if json == name {
                found.push(child.clone());
            }
            if let PKind::Message(m) = f.kind() {
                if f.is_map() || depth >= 10 || m.full_name() == INT_OR_STRING {
                    continue;
                }
                let next = if f.is_list() {
                    format!("{child}[*]")
                } else {
                    child
                };
                queue.push((m, next, depth + 1));
            }
        }
    }
    let here: Vec<&str> = if path.is_empty() {
        vec![]
    } else {
        path.split('.').collect()
    };
    let strip = |s: &str| s.split('[').next().unwrap_or("").to_string();
    found
        .into_iter()
        .filter(|p| p.rsplit_once('.').map_or("", |(parent, _)| parent) != path)
        .map(|p| {
            let segs: Vec<String> = p.split('.').map(strip).collect();
            let common = here
                .iter()
                .zip(segs.iter())
                .take_while(|(a, b)| strip(a) == **b)
                .count();
            (std::cmp::Reverse(common), segs.len(), p)
        })
        .min()
        .map(|(_, _, p)| p)
}

/// Levenshtein distance.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(
            edit_distance("startingdeadlinesecond", "startingdeadlineseconds"),
            1
        );
        assert_eq!(edit_distance("abc", "abc"), 0);
        assert_eq!(edit_distance("", "ab"), 2);
    }

    #[test]
    fn the_nearest_path_of_a_misplaced_field_is_found() {
        let job = crate::descriptor_pool()
            .get_message_by_name("bosun.v1.Job")
            .unwrap();
        assert_eq!(
            find_elsewhere(&job, "spec", "restartPolicy").as_deref(),
            Some("spec.template.spec.restartPolicy")
        );
        assert_eq!(find_elsewhere(&job, "spec", "nosuchfield"), None);
    }
}
