//! The subset of kubectl's JSONPath templates that people use with `-o jsonpath=...`:
//! text with `{...}` expressions; `.field`, `..field` (recursive), `[n]`, `[-1]`, `[*]`,
//! `.*`, `['key']`, optional leading `$`; quoted literals `{"\n"}`; and
//! `{range EXPR}...{end}`. Missing keys print nothing (kubectl get's default).

use serde_json::Value;

/// A template that does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPathError(pub String);

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    nodes: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Expr(Vec<Step>),
    Range(Vec<Step>, Vec<Node>),
}

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    Recursive(String),
    AllFields,
    Index(i64),
    All,
}

impl Template {
    /// Parses `{.items[*].metadata.name}`, `{range .items[*]}{.metadata.name}{"\n"}{end}`...
    pub fn parse(input: &str) -> Result<Template, JsonPathError> {
        let mut pieces = Vec::new();
        let mut rest = input;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_string()));
            }
            let close = find_close(&rest[open..])
                .ok_or_else(|| JsonPathError(format!("unclosed action in {input:?}")))?;
            pieces.push(Piece::Action(
                rest[open + 1..open + close].trim().to_string(),
            ));
            rest = &rest[open + close + 1..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        let mut iter = pieces.into_iter();
        let nodes = build(&mut iter, false)?;
        Ok(Template { nodes })
    }

    /// Renders the template against `root`.
    pub fn render(&self, root: &Value) -> String {
        let mut out = String::new();
        render_nodes(&self.nodes, root, &mut out);
        out
    }
}

enum Piece {
    Text(String),
    Action(String),
}

/// The index of the `}` closing the action at the start of `s`, skipping quoted text.
fn find_close(s: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in s.char_indices().skip(1) {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '}' => return Some(i),
            None => {}
        }
    }
    None
}

fn build(
    iter: &mut impl Iterator<Item = Piece>,
    in_range: bool,
) -> Result<Vec<Node>, JsonPathError> {
    let mut nodes = Vec::new();
    while let Some(piece) = iter.next() {
        match piece {
            Piece::Text(t) => nodes.push(Node::Text(t)),
            Piece::Action(a) if a == "end" => {
                if in_range {
                    return Ok(nodes);
                }
                return Err(JsonPathError("{end} without {range}".into()));
            }
            Piece::Action(a) => {
                if let Some(expr) = a.strip_prefix("range ") {
                    let steps = parse_path(expr.trim())?;
                    let body = build(iter, true)?;
                    nodes.push(Node::Range(steps, body));
                } else if let Some(lit) = literal(&a) {
                    nodes.push(Node::Text(lit));
                } else {
                    nodes.push(Node::Expr(parse_path(&a)?));
                }
            }
        }
    }
    if in_range {
        return Err(JsonPathError("{range} without {end}".into()));
    }
    Ok(nodes)
}

/// A quoted literal action (`"\n"`, `'\t'`), unescaped.
fn literal(a: &str) -> Option<String> {
    let q = a.chars().next()?;
    if (q != '"' && q != '\'') || a.len() < 2 || !a.ends_with(q) {
        return None;
    }
    let inner = &a[1..a.len() - 1];
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some(o) => out.push(o),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

fn parse_path(expr: &str) -> Result<Vec<Step>, JsonPathError> {
    let err = |m: &str| JsonPathError(format!("invalid jsonpath {expr:?}: {m}"));
    let s = expr.strip_prefix('$').unwrap_or(expr);
    let bytes: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut steps = Vec::new();
    // A field name runs to the next `.` or `[`; `\.` is a literal dot, as in kubectl's
    // `{.metadata.annotations.example\.com/key}`.
    let ident = |i: &mut usize| {
        let mut name = String::new();
        while *i < bytes.len() && !matches!(bytes[*i], '.' | '[') {
            if bytes[*i] == '\\' && *i + 1 < bytes.len() {
                *i += 1;
            }
            name.push(bytes[*i]);
            *i += 1;
        }
        name
    };
    while i < bytes.len() {
        match bytes[i] {
            '.' if bytes.get(i + 1) == Some(&'.') => {
                i += 2;
                let name = ident(&mut i);
                if name.is_empty() {
                    return Err(err("`..` needs a field name"));
                }
                steps.push(Step::Recursive(name));
            }
            '.' => {
                i += 1;
                let name = ident(&mut i);
                match name.as_str() {
                    "" => {}
                    "*" => steps.push(Step::AllFields),
                    _ => steps.push(Step::Field(name)),
                }
            }
            '[' => {
                let end = bytes[i..]
                    .iter()
                    .position(|c| *c == ']')
                    .ok_or_else(|| err("unclosed ["))?;
                let inner: String = bytes[i + 1..i + end].iter().collect();
                let inner = inner.trim();
                if inner == "*" {
                    steps.push(Step::All);
                } else if let Some(lit) = literal(inner) {
                    steps.push(Step::Field(lit));
                } else {
                    let n: i64 = inner
                        .parse()
                        .map_err(|_| err(&format!("unsupported subscript [{inner}]")))?;
                    steps.push(Step::Index(n));
                }
                i += end + 1;
            }
            _ if steps.is_empty() && i == 0 => {
                // `{metadata.name}` without the leading dot, as kubectl tolerates.
                let name = ident(&mut i);
                steps.push(Step::Field(name));
            }
            c => return Err(err(&format!("unexpected {c:?}"))),
        }
    }
    Ok(steps)
}

fn eval<'a>(steps: &[Step], root: &'a Value) -> Vec<&'a Value> {
    let mut current = vec![root];
    for step in steps {
        let mut next = Vec::new();
        for v in current {
            match step {
                Step::Field(name) => next.extend(v.get(name.as_str())),
                Step::Recursive(name) => collect_recursive(v, name, &mut next),
                Step::AllFields => match v {
                    Value::Object(m) => next.extend(m.values()),
                    Value::Array(a) => next.extend(a.iter()),
                    _ => {}
                },
                Step::All => match v {
                    Value::Array(a) => next.extend(a.iter()),
                    Value::Object(m) => next.extend(m.values()),
                    _ => {}
                },
                Step::Index(n) => {
                    if let Value::Array(a) = v {
                        let idx = if *n < 0 { a.len() as i64 + n } else { *n };
                        if idx >= 0 {
                            next.extend(a.get(idx as usize));
                        }
                    }
                }
            }
        }
        current = next;
    }
    current
}

fn collect_recursive<'a>(v: &'a Value, name: &str, out: &mut Vec<&'a Value>) {
    match v {
        Value::Object(m) => {
            if let Some(x) = m.get(name) {
                out.push(x);
            }
            for child in m.values() {
                collect_recursive(child, name, out);
            }
        }
        Value::Array(a) => {
            for child in a {
                collect_recursive(child, name, out);
            }
        }
        _ => {}
    }
}

fn print_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn render_nodes(nodes: &[Node], root: &Value, out: &mut String) {
    for node in nodes {
        match node {
            Node::Text(t) => out.push_str(t),
            Node::Expr(steps) => {
                let values = eval(steps, root);
                out.push_str(
                    &values
                        .into_iter()
                        .map(print_value)
                        .collect::<Vec<_>>()
                        .join(" "),
                );
            }
            Node::Range(steps, body) => {
                for v in eval(steps, root) {
                    // `{range .items[*]}` walks the elements; a range over an array value
                    // itself walks its items too.
                    match v {
                        Value::Array(items) if !matches!(steps.last(), Some(Step::All)) => {
                            for item in items {
                                render_nodes(body, item, out);
                            }
                        }
                        _ => render_nodes(body, v, out),
                    }
                }
            }
        }
    }
}

impl std::error::Error for JsonPathError {}

impl std::fmt::Display for JsonPathError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn list() -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "List",
            "items": [
                {"metadata": {"name": "a", "labels": {"app": "x", "example.com/tier": "gold"}}, "status": {"phase": "Running"}},
                {"metadata": {"name": "b"}, "status": {"phase": "Succeeded"}},
            ]
        })
    }

    #[test]
    fn the_common_kubectl_templates_render_like_kubectl() {
        let table = [
            ("{.items[*].metadata.name}", "a b"),
            ("{.items..metadata.name}", "a b"),
            ("{..name}", "a b"),
            ("{.items[0].status.phase}", "Running"),
            ("{.items[-1].status.phase}", "Succeeded"),
            ("{$.kind}", "List"),
            (
                "{.items[0].metadata.labels}",
                r#"{"app":"x","example.com/tier":"gold"}"#,
            ),
            ("{.items[0].metadata.labels['app']}", "x"),
            ("{.items[0].metadata.labels.example\\.com/tier}", "gold"),
            ("{.missing.field}", ""),
            (
                "{range .items[*]}{.metadata.name}={.status.phase}{\"\\n\"}{end}",
                "a=Running\nb=Succeeded\n",
            ),
            ("names: {.items[*].metadata.name}!", "names: a b!"),
        ];
        for (tpl, want) in table {
            let t = Template::parse(tpl).unwrap_or_else(|e| panic!("{tpl}: {e}"));
            assert_eq!(t.render(&list()), want, "{tpl}");
        }
    }

    #[test]
    fn a_single_object_template_reads_its_fields() {
        let obj = json!({"status": {"phase": "Running"}, "spec": {"n": 3}});
        assert_eq!(
            Template::parse("{.status.phase}").unwrap().render(&obj),
            "Running"
        );
        assert_eq!(Template::parse("{.spec.n}").unwrap().render(&obj), "3");
    }

    #[test]
    fn broken_templates_are_errors() {
        for bad in [
            "{.items[*]",
            "{range .items[*]}{.a}",
            "{end}",
            "{.items[x]}",
        ] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
    }
}
