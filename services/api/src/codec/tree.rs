//! A positioned YAML tree: every node keeps the line and column it started at, mapping
//! entries keep their order and their duplicates (so the decoder can report them).

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// One YAML node with its 1-based position.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub line: usize,
    pub col: usize,
    pub kind: NodeKind,
}

/// The shape of a node.
#[derive(Debug, Clone)]
pub(crate) enum NodeKind {
    /// A scalar as written; `plain` is false when it was quoted (always a string then).
    Scalar {
        value: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    /// Entries in document order, duplicates included.
    Map(Vec<(Node, Node)>),
}

/// A scalar resolved the way Kubernetes' YAML-to-JSON step resolves it (YAML 1.1 core
/// types, as go-yaml v2 does).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
}

impl Node {
    /// The scalar this node resolves to, `None` for lists and maps.
    pub fn scalar(&self) -> Option<Scalar<'_>> {
        match &self.kind {
            NodeKind::Scalar { value, plain } => Some(resolve(value, *plain)),
            _ => None,
        }
    }

    /// Whether this node is an explicit or implicit null (`key:` with nothing after it).
    pub fn is_null(&self) -> bool {
        self.scalar() == Some(Scalar::Null)
    }

    /// The value of `key` in a mapping node (the last one, as JSON decoding keeps).
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            NodeKind::Map(entries) => entries
                .iter()
                .rev()
                .find(|(k, _)| k.scalar() == Some(Scalar::Str(key)))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string value of `key`, when it is a string.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        match self.get(key)?.scalar()? {
            Scalar::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A short description of what this node is, for "expected X, got Y" messages.
    pub fn describe(&self) -> String {
        match &self.kind {
            NodeKind::Seq(_) => "a list".into(),
            NodeKind::Map(_) => "an object".into(),
            NodeKind::Scalar { value, plain } => match resolve(value, *plain) {
                Scalar::Null => "null".into(),
                Scalar::Bool(b) => format!("a boolean ({b})"),
                Scalar::Int(_) | Scalar::Float(_) => format!("a number ({value})"),
                Scalar::Str(s) => format!("a string ({s:?})"),
            },
        }
    }
}

/// Resolves a scalar's text to its type.
fn resolve(value: &str, plain: bool) -> Scalar<'_> {
    if !plain {
        return Scalar::Str(value);
    }
    match value {
        "" | "~" | "null" | "Null" | "NULL" => return Scalar::Null,
        "true" | "True" | "TRUE" | "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => {
            return Scalar::Bool(true);
        }
        "false" | "False" | "FALSE" | "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => {
            return Scalar::Bool(false);
        }
        _ => {}
    }
    if let Some(i) = parse_int(value) {
        return Scalar::Int(i);
    }
    let looks_float = value
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'))
        && value.chars().any(|c| c.is_ascii_digit());
    if looks_float && let Ok(f) = value.parse::<f64>() {
        return Scalar::Float(f);
    }
    match value {
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => Scalar::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => Scalar::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => Scalar::Float(f64::NAN),
        _ => Scalar::Str(value),
    }
}

fn parse_int(v: &str) -> Option<i64> {
    let (neg, digits) = match v.as_bytes().first()? {
        b'-' => (true, &v[1..]),
        b'+' => (false, &v[1..]),
        _ => (false, v),
    };
    if digits.is_empty() {
        return None;
    }
    let magnitude = if let Some(hex) = digits.strip_prefix("0x") {
        i64::from_str_radix(hex, 16).ok()?
    } else if let Some(oct) = digits.strip_prefix("0o") {
        i64::from_str_radix(oct, 8).ok()?
    } else if digits.len() > 1 && digits.starts_with('0') {
        // YAML 1.1 octal, as go-yaml v2 reads it.
        i64::from_str_radix(&digits[1..], 8).ok()?
    } else if digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse().ok()?
    } else {
        return None;
    };
    Some(if neg { -magnitude } else { magnitude })
}

/// One YAML document: its root (`None` or a null scalar when empty).
#[derive(Debug)]
pub(crate) struct Document {
    pub root: Option<Node>,
}

/// A syntax error: 1-based line and column, and the parser's message.
#[derive(Debug)]
pub(crate) struct SyntaxError {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

enum Frame {
    Seq(Node, usize),
    /// Flat key, value, key, value... until the mapping ends.
    Map(Node, usize, Vec<Node>),
}

#[derive(Default)]
struct Builder {
    docs: Vec<Document>,
    root: Option<Node>,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
}

impl Builder {
    fn finish(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            Some(Frame::Seq(seq, _)) => {
                if let NodeKind::Seq(items) = &mut seq.kind {
                    items.push(node);
                }
            }
            Some(Frame::Map(_, _, flat)) => flat.push(node),
            None => self.root = Some(node),
        }
    }
}

fn pos(mark: &Marker) -> (usize, usize) {
    (mark.line(), mark.col() + 1)
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let (line, col) = pos(&mark);
        match ev {
            Event::DocumentStart => self.root = None,
            Event::DocumentEnd => {
                let root = self.root.take();
                self.docs.push(Document { root });
            }
            Event::Scalar(value, style, anchor, _tag) => {
                let plain = style == TScalarStyle::Plain;
                self.finish(
                    Node {
                        line,
                        col,
                        kind: NodeKind::Scalar { value, plain },
                    },
                    anchor,
                );
            }
            Event::Alias(id) => {
                let mut node = self.anchors.get(&id).cloned().unwrap_or(Node {
                    line,
                    col,
                    kind: NodeKind::Scalar {
                        value: String::new(),
                        plain: true,
                    },
                });
                node.line = line;
                node.col = col;
                self.finish(node, 0);
            }
            Event::SequenceStart(anchor, _) => self.stack.push(Frame::Seq(
                Node {
                    line,
                    col,
                    kind: NodeKind::Seq(Vec::new()),
                },
                anchor,
            )),
            Event::MappingStart(anchor, _) => self.stack.push(Frame::Map(
                Node {
                    line,
                    col,
                    kind: NodeKind::Map(Vec::new()),
                },
                anchor,
                Vec::new(),
            )),
            Event::SequenceEnd | Event::MappingEnd => match self.stack.pop() {
                Some(Frame::Seq(node, anchor)) => self.finish(node, anchor),
                Some(Frame::Map(mut node, anchor, flat)) => {
                    let mut entries = Vec::with_capacity(flat.len() / 2);
                    let mut it = flat.into_iter();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        entries.push((k, v));
                    }
                    node.kind = NodeKind::Map(entries);
                    self.finish(node, anchor);
                }
                None => {}
            },
            Event::Nothing | Event::StreamStart | Event::StreamEnd => {}
        }
    }
}

/// Parses every document of `text`.
pub(crate) fn parse(text: &str) -> Result<Vec<Document>, SyntaxError> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut builder, true).map_err(|e| SyntaxError {
        line: e.marker().line(),
        col: e.marker().col() + 1,
        message: e.info().to_string(),
    })?;
    Ok(builder.docs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_keep_their_lines_and_duplicate_keys() {
        let docs = parse("a: 1\nb:\n  c: x\n  c: y\n---\n---\n- 1\n").unwrap();
        assert_eq!(docs.len(), 3);
        let root = docs[0].root.as_ref().unwrap();
        let b = root.get("b").unwrap();
        assert_eq!(b.line, 3);
        match &b.kind {
            NodeKind::Map(e) => {
                assert_eq!(e.len(), 2);
                assert_eq!(e[1].0.line, 4);
            }
            _ => panic!("map expected"),
        }
        assert!(docs[1].root.as_ref().is_none_or(Node::is_null));
    }

    #[test]
    fn scalars_resolve_like_go_yaml() {
        let table = [
            ("1", true, Scalar::Int(1)),
            ("-12", true, Scalar::Int(-12)),
            ("1.5", true, Scalar::Float(1.5)),
            ("true", true, Scalar::Bool(true)),
            ("yes", true, Scalar::Bool(true)),
            ("", true, Scalar::Null),
            ("~", true, Scalar::Null),
            ("1", false, Scalar::Str("1")),
            ("100m", true, Scalar::Str("100m")),
            ("1.2.3", true, Scalar::Str("1.2.3")),
        ];
        for (text, plain, want) in table {
            assert_eq!(resolve(text, plain), want, "{text}");
        }
    }
}
