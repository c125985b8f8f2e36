//! What a target receives instead of the matched event: `InputPath` (one JSONPath selection) or an
//! `InputTransformer` (variables selected by JSONPath, substituted into a template).
//!
//! JSONPath is the subset EventBridge documents: `$`, dot notation with names made of letters,
//! digits, `-`, `_`, `/` (and any other character but `.`, `[`, `]`, `*`, quotes and whitespace),
//! array indices `[0]`, wildcards `.*` / `[*]`, and — beyond what AWS allows in `InputPathsMap` —
//! bracketed names `['key with space']`. A path with a wildcard selects a JSON array of every
//! match (possibly empty), as Jayway JsonPath does; a definite path selects one value or nothing.
//!
//! Template substitution follows what EventBridge does (its documentation examples, and the
//! behaviour recorded against AWS by LocalStack's validated tests):
//!
//! - In a JSON template (one starting with `{` or `[`), a placeholder outside quotes becomes the
//!   value as JSON (a string keeps its quotes: `{"id": <id>}` gives `{"id": "abc"}`), and a missing
//!   value becomes `""`. Inside quotes a string is inserted raw, unescaped, a number, boolean or
//!   null as its JSON text, and a missing value as nothing; an object or array inside quotes makes
//!   the output invalid, and AWS then drops the event, so rendering fails.
//! - In any other template (for example `"instance <id> is <state>"`) every placeholder is inserted
//!   raw; objects and arrays appear as JSON with every `"` removed (`{a:1,b:[x]}`), as AWS does.
//! - A JSON template's output must parse as JSON, otherwise rendering fails: values are not
//!   escaped, so a string with a quote inside quotes breaks it, exactly as on AWS.
//! - `<aws.events.event>` is the envelope without `detail`, its `detail-type` renamed `detailType`
//!   and its `time` the ingestion time (as AWS delivers it); `<aws.events.event.json>` is the whole
//!   event.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::{Map, Value};

#[cfg(test)]
mod tests;

/// An invalid path, transformer, or a transformation whose output is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("{path:?} is not a valid JSON path: {reason}")]
    InvalidPath { path: String, reason: String },
    #[error("InputPathsMap has {0} entries; at most 100 are allowed.")]
    TooManyPaths(usize),
    #[error("InputPathsMap key {0:?} is not valid: use 1 to 256 letters, digits, '_' or '-'.")]
    InvalidKey(String),
    #[error("InputPathsMap key {0:?} is not valid: keys cannot start with \"AWS.\".")]
    ReservedKey(String),
    #[error("InputTemplate must be 1 to 8192 characters long.")]
    TemplateLength,
    #[error("InputTemplate contains invalid placeholder {0}.")]
    InvalidPlaceholder(String),
    #[error("InputTemplate cannot use placeholder {0} as an object key.")]
    PlaceholderAsKey(String),
    #[error("The transformed input is not valid JSON: {0}")]
    InvalidOutput(String),
}

const MAX_PATHS: usize = 100;
const MAX_PATH_LEN: usize = 256;
const MAX_KEY_LEN: usize = 256;
const MAX_TEMPLATE_LEN: usize = 8192;

const RULE_ARN: &str = "aws.events.rule-arn";
const RULE_NAME: &str = "aws.events.rule-name";
const INGESTION_TIME: &str = "aws.events.event.ingestion-time";
const EVENT: &str = "aws.events.event";
const EVENT_JSON: &str = "aws.events.event.json";
const PREDEFINED: [&str; 5] = [RULE_ARN, RULE_NAME, INGESTION_TIME, EVENT, EVENT_JSON];

/// Selects `path` (an `InputPath`) from the event. `Ok(None)` when a definite path does not exist.
pub fn select_path(event: &Value, path: &str) -> Result<Option<Value>, InputError> {
    Ok(JsonPath::parse(path)?.select(event))
}

/// Validates a target's `InputPath` as `PutTargets` does: a valid path of at most 256 characters.
pub fn validate_path(path: &str) -> Result<(), InputError> {
    if path.chars().count() > MAX_PATH_LEN {
        return Err(path_error(path, "longer than 256 characters"));
    }
    JsonPath::parse(path).map(drop)
}

fn path_error(path: &str, reason: &str) -> InputError {
    InputError::InvalidPath {
        path: path.to_owned(),
        reason: reason.to_owned(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
    Wildcard,
}

/// A parsed JSONPath.
#[derive(Debug, Clone, PartialEq, Eq)]
struct JsonPath(Vec<Step>);

impl JsonPath {
    fn parse(path: &str) -> Result<JsonPath, InputError> {
        let fail = |reason: &str| Err(path_error(path, reason));
        let Some(mut rest) = path.strip_prefix('$') else {
            return fail("it must start with '$'");
        };
        let mut steps = Vec::new();
        while let Some(c) = rest.chars().next() {
            match c {
                '.' => {
                    let end = rest[1..].find(['.', '[']).map_or(rest.len(), |i| i + 1);
                    let name = &rest[1..end];
                    if name == "*" {
                        steps.push(Step::Wildcard);
                    } else if name.is_empty() {
                        return fail("a name is empty (deep scan '..' is not supported)");
                    } else if name
                        .chars()
                        .any(|c| c.is_whitespace() || c.is_control() || "]*'\"".contains(c))
                    {
                        return fail("a name has a character dot notation does not allow");
                    } else {
                        steps.push(Step::Key(name.to_owned()));
                    }
                    rest = &rest[end..];
                }
                '[' => {
                    let Some(end) = bracket_end(rest) else {
                        return fail("a '[' is not closed");
                    };
                    let inner = &rest[1..end];
                    let quoted = ['\'', '"']
                        .into_iter()
                        .find_map(|q| inner.strip_prefix(q).and_then(|s| s.strip_suffix(q)));
                    steps.push(match (inner, quoted) {
                        ("*", _) => Step::Wildcard,
                        (_, Some(name)) if inner.len() >= 2 => Step::Key(name.to_owned()),
                        _ if !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_digit()) => {
                            match inner.parse() {
                                Ok(index) => Step::Index(index),
                                Err(_) => return fail("an index is too large"),
                            }
                        }
                        _ => return fail("brackets must hold an index, '*' or a quoted name"),
                    });
                    rest = &rest[end + 1..];
                }
                _ => return fail("expected '.' or '[' after '$' and after each step"),
            }
        }
        Ok(JsonPath(steps))
    }

    fn is_definite(&self) -> bool {
        !self.0.contains(&Step::Wildcard)
    }

    fn select(&self, root: &Value) -> Option<Value> {
        let mut current = vec![root];
        for step in &self.0 {
            current = current
                .into_iter()
                .flat_map(|value| -> Vec<&Value> {
                    match (step, value) {
                        (Step::Key(key), Value::Object(map)) => map.get(key).into_iter().collect(),
                        (Step::Index(i), Value::Array(items)) => {
                            items.get(*i).into_iter().collect()
                        }
                        (Step::Wildcard, Value::Object(map)) => map.values().collect(),
                        (Step::Wildcard, Value::Array(items)) => items.iter().collect(),
                        _ => Vec::new(),
                    }
                })
                .collect();
        }
        if self.is_definite() {
            current.first().map(|v| (*v).clone())
        } else {
            Some(Value::Array(current.into_iter().cloned().collect()))
        }
    }
}

/// The index of the `]` closing the bracket at the start of `text`, skipping quoted names.
fn bracket_end(text: &str) -> Option<usize> {
    let mut quote = None;
    for (i, c) in text.char_indices().skip(1) {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            (None, ']') => return Some(i),
            _ => {}
        }
    }
    None
}

/// Per-delivery values of the predefined placeholders.
#[derive(Debug, Clone, Copy)]
pub struct TransformContext<'a> {
    pub rule_arn: &'a str,
    pub rule_name: &'a str,
    /// When EventBridge received the event, ISO 8601.
    pub ingestion_time: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Text(String),
    /// A `<name>` placeholder; `quoted` when it sits inside a JSON string of the template.
    Placeholder {
        name: String,
        quoted: bool,
    },
}

/// A validated `InputTransformer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputTransformer {
    input_paths_map: BTreeMap<String, String>,
    input_template: String,
    paths: BTreeMap<String, JsonPath>,
    segments: Vec<Segment>,
    /// The template is a JSON object or array, so its output must be JSON.
    json: bool,
}

impl InputTransformer {
    /// Validates as `PutTargets` does: at most 100 paths, keys of letters, digits, `_` and `-`
    /// (so none starts with `aws.`), valid JSONPaths of at most 256 characters, a template of
    /// 1-8192 characters whose placeholders are all defined or predefined and, in a JSON
    /// template, never object keys.
    pub fn new(
        input_paths_map: BTreeMap<String, String>,
        input_template: String,
    ) -> Result<Self, InputError> {
        if input_paths_map.len() > MAX_PATHS {
            return Err(InputError::TooManyPaths(input_paths_map.len()));
        }
        let mut paths = BTreeMap::new();
        for (key, path) in &input_paths_map {
            if key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("aws.")) {
                return Err(InputError::ReservedKey(key.clone()));
            }
            let valid_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
            if key.is_empty() || key.len() > MAX_KEY_LEN || !key.chars().all(valid_char) {
                return Err(InputError::InvalidKey(key.clone()));
            }
            validate_path(path)?;
            paths.insert(key.clone(), JsonPath::parse(path)?);
        }
        if !(1..=MAX_TEMPLATE_LEN).contains(&input_template.chars().count()) {
            return Err(InputError::TemplateLength);
        }
        let json = input_template.trim_start().starts_with(['{', '[']);
        let segments = scan(&input_template);
        for (i, segment) in segments.iter().enumerate() {
            let Segment::Placeholder { name, quoted } = segment else {
                continue;
            };
            if !paths.contains_key(name) && !PREDEFINED.contains(&name.as_str()) {
                return Err(InputError::InvalidPlaceholder(name.clone()));
            }
            let after = match segments.get(i + 1) {
                Some(Segment::Text(text)) => text.as_str(),
                _ => "",
            };
            if json && is_object_key(after, *quoted) {
                return Err(InputError::PlaceholderAsKey(name.clone()));
            }
        }
        Ok(InputTransformer {
            input_paths_map,
            input_template,
            paths,
            segments,
            json,
        })
    }

    /// The variables as given to [`InputTransformer::new`].
    pub fn input_paths_map(&self) -> &BTreeMap<String, String> {
        &self.input_paths_map
    }

    /// The template as given to [`InputTransformer::new`].
    pub fn input_template(&self) -> &str {
        &self.input_template
    }

    /// Renders the template for one event; see the module documentation for the rules. Fails when
    /// the output of a JSON template is not JSON, where AWS drops the event.
    pub fn render(&self, event: &Value, ctx: &TransformContext) -> Result<String, InputError> {
        let mut out = String::with_capacity(self.input_template.len());
        for segment in &self.segments {
            let (name, quoted) = match segment {
                Segment::Text(text) => {
                    out.push_str(text);
                    continue;
                }
                Segment::Placeholder { name, quoted } => (name, *quoted),
            };
            let value = self.resolve(name, event, ctx);
            if self.json && !quoted {
                match value {
                    Some(value) => out.push_str(&value.to_string()),
                    None => out.push_str("\"\""),
                }
                continue;
            }
            match value.as_deref() {
                None => {}
                Some(Value::String(s)) => out.push_str(s),
                Some(value @ (Value::Object(_) | Value::Array(_))) => {
                    if self.json {
                        return Err(InputError::InvalidOutput(format!(
                            "<{name}> holds an object or array but is inside a string"
                        )));
                    }
                    out.push_str(&value.to_string().replace('"', ""));
                }
                Some(scalar) => out.push_str(&scalar.to_string()),
            }
        }
        if self.json {
            serde_json::from_str::<Value>(&out)
                .map_err(|e| InputError::InvalidOutput(e.to_string()))?;
        }
        Ok(out)
    }

    fn resolve<'v>(
        &self,
        name: &str,
        event: &'v Value,
        ctx: &TransformContext,
    ) -> Option<Cow<'v, Value>> {
        let text = |s: &str| Some(Cow::Owned(Value::String(s.to_owned())));
        match name {
            RULE_ARN => text(ctx.rule_arn),
            RULE_NAME => text(ctx.rule_name),
            INGESTION_TIME => text(ctx.ingestion_time),
            EVENT_JSON => Some(Cow::Borrowed(event)),
            EVENT => {
                let mut envelope: Map<String, Value> =
                    event.as_object().cloned().unwrap_or_default();
                envelope.remove("detail");
                if let Some(detail_type) = envelope.remove("detail-type") {
                    envelope.insert("detailType".into(), detail_type);
                }
                envelope.insert("time".into(), Value::String(ctx.ingestion_time.to_owned()));
                Some(Cow::Owned(Value::Object(envelope)))
            }
            _ => self.paths.get(name)?.select(event).map(Cow::Owned),
        }
    }
}

/// Splits a template into text and `<name>` placeholders, noting which sit inside JSON strings.
/// A `<` not followed by a name and `>` is plain text.
fn scan(template: &str) -> Vec<Segment> {
    let is_name_char = |c: char| c.is_ascii_alphanumeric() || "_-.".contains(c);
    let mut segments = Vec::new();
    let mut text = String::new();
    let (mut in_string, mut escaped) = (false, false);
    let mut rest = template;
    while let Some(c) = rest.chars().next() {
        if c == '<' {
            let name_len = rest[1..]
                .find(|c: char| !is_name_char(c))
                .unwrap_or(rest.len() - 1);
            if name_len > 0 && rest[1 + name_len..].starts_with('>') {
                segments.push(Segment::Text(std::mem::take(&mut text)));
                segments.push(Segment::Placeholder {
                    name: rest[1..1 + name_len].to_owned(),
                    quoted: in_string,
                });
                rest = &rest[name_len + 2..];
                continue;
            }
        }
        if escaped {
            escaped = false;
        } else if in_string && c == '\\' {
            escaped = true;
        } else if c == '"' {
            in_string = !in_string;
        }
        text.push(c);
        rest = &rest[c.len_utf8()..];
    }
    segments.push(Segment::Text(text));
    segments.retain(|s| *s != Segment::Text(String::new()));
    segments
}

/// Whether a placeholder followed by `after` is an object key: the next token (after closing the
/// string it sits in, if quoted) is a `:`.
fn is_object_key(after: &str, quoted: bool) -> bool {
    let mut rest = after;
    if quoted {
        let mut escaped = false;
        let Some(close) = rest.char_indices().find_map(|(i, c)| {
            let closes = c == '"' && !escaped;
            escaped = !escaped && c == '\\';
            closes.then_some(i)
        }) else {
            return false;
        };
        rest = &rest[close + 1..];
    }
    rest.trim_start().starts_with(':')
}
