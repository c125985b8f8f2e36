//! Event patterns: parsing (with AWS' validation messages) and matching events against them.
//!
//! EventBridge matches with Event Ruler, so this module reproduces Ruler's observable behaviour:
//!
//! - A pattern is a JSON object whose leaves are non-empty arrays. A leaf matches when any of its
//!   entries matches; all fields of an object must match (AND of fields, OR within a leaf).
//! - Field names are joined with dots, as Ruler does, so `{"a": {"b": [..]}}` and `{"a.b": [..]}`
//!   are the same pattern and both match the events `{"a": {"b": ..}}` and `{"a.b": ..}`.
//! - Only leaf values (strings, numbers, booleans, null) are matched; an object in the event is not
//!   a value, so `exists: true` does not hold for it.
//! - Event arrays: a leaf matches if any element matches, and a nested pattern object must be
//!   satisfied within one element (Ruler's "array-consistent" matching). A field that must not
//!   exist (a leaf of only `exists: false`) may appear in no element at all.
//! - `$or` at any level is expanded into alternative patterns (at most 1000, as AWS limits), and
//!   the event matches if any alternative does.
//! - Exact numbers compare numerically (`300` matches `300.0`), as Ruler does; `anything-but` of a
//!   string or prefix matches any non-string value (and `null`), but never a missing field.
//!
//! Deliberate differences from AWS:
//! - The wildcard "complexity" limit (AWS rejects e.g. `*:*:*:*:*:event-bus/*`) is not enforced:
//!   matching here is a glob in O(pattern * value) time, with no state explosion to guard against.
//! - Under an array, Ruler checks `exists: false` against every element only when that field's
//!   name sorts before the other fields it is matched with, and otherwise against the element
//!   that matched them; here it is always every element. (A leaf mixing `exists: false` with
//!   other matchers is an alternative, so it is evaluated per element.)
//! - AWS' Jackson parser reports JSON syntax errors in its own words; here they are serde_json's.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde_json::{Map, Number, Value};

#[cfg(test)]
mod tests;

/// The most `$or` combinations a pattern may expand to, as AWS documents for `PutRule`.
const MAX_COMBINATIONS: usize = 1000;

/// Field names Ruler reserves inside `$or`, so a typo'd operator there is not taken for a field.
const RESERVED_IN_OR: &[&str] = &[
    "exactly",
    "equals-ignore-case",
    "prefix",
    "suffix",
    "anything-but",
    "exists",
    "wildcard",
    "numeric",
    "cidr",
    "=",
    "<",
    "<=",
    ">",
    ">=",
    "regex",
    "not-wildcard",
    "not-equals-ignore-case",
    "date-after",
    "date-on-or-after",
    "date-before",
    "date-on-or-before",
    "in-date-range",
    "ip-address-in-range",
    "ip-address-not-in-range",
];

/// An invalid event pattern. `Display` is the full message AWS returns with
/// `InvalidEventPatternException`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Event pattern is not valid. Reason: {reason}")]
pub struct PatternError {
    reason: String,
}

impl PatternError {
    fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
        }
    }

    /// The reason alone, without the "Event pattern is not valid." preamble.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

type Result<T> = std::result::Result<T, PatternError>;

fn invalid<T>(reason: impl Into<String>) -> Result<T> {
    Err(PatternError::new(reason))
}

/// A parsed, validated event pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    /// The `$or`-free alternatives; the pattern matches when any of them does.
    branches: Vec<Node>,
}

impl Pattern {
    /// Parses and validates an EventBridge event pattern (JSON text).
    pub fn parse(text: &str) -> Result<Pattern> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| PatternError::new(e.to_string()))?;
        let Value::Object(root) = &value else {
            return invalid("Filter is not an object");
        };
        let mut rules = Vec::new();
        parse_object(&mut rules, &mut Vec::new(), root, false)?;
        Ok(Pattern {
            branches: rules.into_iter().map(Node::from_rule).collect(),
        })
    }

    /// Whether the event (a full EventBridge envelope as JSON) matches.
    pub fn matches(&self, event: &Value) -> bool {
        let dotted = has_dotted_key(event);
        let root = [("", event)];
        self.branches
            .iter()
            .any(|branch| branch.matches(&root, dotted))
    }
}

/// One `$or`-free alternative in Ruler's compiled form: dotted field name to its leaf entries.
type Rule = BTreeMap<String, Vec<Matcher>>;

/// Mirrors Ruler's compiler: walks the pattern, forking `rules` at every `$or`.
fn parse_object(
    rules: &mut Vec<Rule>,
    path: &mut Vec<String>,
    object: &Map<String, Value>,
    in_or: bool,
) -> Result<()> {
    if object.is_empty() {
        return invalid("Empty objects are not allowed");
    }
    for (key, value) in object {
        if key == "$or" {
            parse_or(rules, path, value)?;
            continue;
        }
        if in_or && RESERVED_IN_OR.contains(&key.as_str()) {
            return invalid(format!(
                "{key} is Ruler reserved fieldName which cannot be used inside $or."
            ));
        }
        path.push(key.clone());
        let parsed = match value {
            Value::Object(inner) => parse_object(rules, path, inner, in_or),
            Value::Array(entries) => add_leaf(rules, path.join("."), entries),
            _ => invalid(format!("\"{key}\" must be an object or an array")),
        };
        path.pop();
        parsed?;
    }
    Ok(())
}

fn parse_or(rules: &mut Vec<Rule>, path: &mut Vec<String>, value: &Value) -> Result<()> {
    let Value::Array(alternatives) = value else {
        return invalid("It must be an Array followed with $or.");
    };
    let before = std::mem::take(rules);
    for alternative in alternatives {
        let Value::Object(object) = alternative else {
            return invalid("Only JSON object is allowed in array of $or relationship.");
        };
        let mut forked = if before.is_empty() {
            vec![Rule::new()]
        } else {
            before.clone()
        };
        parse_object(&mut forked, path, object, true)?;
        rules.append(&mut forked);
        // Checked as we go so a hostile pattern cannot make us build millions of rules first.
        if rules.len() > MAX_COMBINATIONS {
            return invalid(format!(
                "The use of $or results in more than {MAX_COMBINATIONS} rule combinations"
            ));
        }
    }
    if alternatives.len() < 2 {
        return invalid("There must have at least 2 Objects in $or relationship.");
    }
    Ok(())
}

fn add_leaf(rules: &mut Vec<Rule>, name: String, entries: &[Value]) -> Result<()> {
    let matchers = entries
        .iter()
        .map(|entry| match entry {
            Value::Object(expression) => parse_match_expression(expression),
            Value::Array(_) => invalid("Match value must be String, number, true, false, or null"),
            scalar => Ok(Matcher::Exact(scalar.clone())),
        })
        .collect::<Result<Vec<_>>>()?;
    if matchers.is_empty() {
        return invalid("Empty arrays are not allowed");
    }
    if rules.is_empty() {
        rules.push(Rule::new());
    }
    // A field given twice keeps its last definition, as AWS documents for duplicate keys.
    for rule in rules.iter_mut() {
        rule.insert(name.clone(), matchers.clone());
    }
    Ok(())
}

/// One entry of a leaf array.
#[derive(Debug, Clone, PartialEq)]
enum Matcher {
    /// A string, number, boolean or null to equal.
    Exact(Value),
    EqualsIgnoreCase(String),
    Prefix(String),
    PrefixIgnoreCase(String),
    Suffix(String),
    SuffixIgnoreCase(String),
    Wildcard(Wildcard),
    AnythingBut(AnythingBut),
    Numeric(Range),
    Cidr(Cidr),
    Exists(bool),
}

/// What `anything-but` excludes; it matches every leaf value not excluded.
#[derive(Debug, Clone, PartialEq)]
enum AnythingBut {
    Strings(Vec<String>),
    Numbers(Vec<Number>),
    IgnoreCase(Vec<String>),
    Prefixes(Vec<String>),
    Suffixes(Vec<String>),
    Wildcards(Vec<Wildcard>),
}

fn parse_match_expression(expression: &Map<String, Value>) -> Result<Matcher> {
    let mut keys = expression.iter();
    let Some((operator, value)) = keys.next() else {
        return invalid("Match expression name not found");
    };
    let extra_key = keys.next().is_some();
    let single = |matcher: Matcher| {
        if extra_key {
            invalid("Only one key allowed in match expression")
        } else {
            Ok(matcher)
        }
    };
    match operator.as_str() {
        "exactly" => match value {
            Value::String(s) => single(Matcher::Exact(Value::String(s.clone()))),
            _ => invalid("exact match pattern must be a string"),
        },
        "prefix" => match value {
            Value::String(s) => single(Matcher::Prefix(s.clone())),
            Value::Object(inner) => single(Matcher::PrefixIgnoreCase(ignore_case_operand(
                inner, "Prefix", "prefix",
            )?)),
            _ => invalid("prefix match pattern must be a string"),
        },
        "suffix" => match value {
            Value::String(s) => single(Matcher::Suffix(s.clone())),
            Value::Object(inner) => single(Matcher::SuffixIgnoreCase(ignore_case_operand(
                inner, "Suffix", "suffix",
            )?)),
            _ => invalid("suffix match pattern must be a string"),
        },
        "equals-ignore-case" => match value {
            Value::String(s) => single(Matcher::EqualsIgnoreCase(s.clone())),
            _ => invalid("equals-ignore-case match pattern must be a string"),
        },
        "wildcard" => match value {
            Value::String(s) => single(Matcher::Wildcard(Wildcard::parse(s)?)),
            _ => invalid("wildcard match pattern must be a string"),
        },
        "numeric" => {
            let Value::Array(terms) = value else {
                return invalid("Value of numeric must be an array.");
            };
            let range = Range::parse(terms)?;
            if extra_key {
                return invalid("Too many elements in numeric expression");
            }
            Ok(Matcher::Numeric(range))
        }
        "anything-but" => {
            let excluded = parse_anything_but(value)?;
            if extra_key {
                // Ruler's wording for any trailing key, kept so messages match AWS.
                return invalid("Too many elements in numeric expression");
            }
            Ok(Matcher::AnythingBut(excluded))
        }
        "exists" => match value {
            Value::Bool(b) => single(Matcher::Exists(*b)),
            _ => invalid("exists match pattern must be either true or false."),
        },
        // AWS reports a non-string CIDR with the prefix message; kept verbatim.
        "cidr" => match value {
            Value::String(s) => single(Matcher::Cidr(Cidr::parse(s)?)),
            _ => invalid("prefix match pattern must be a string"),
        },
        other => invalid(format!("Unrecognized match type {other}")),
    }
}

/// The operand of `{"prefix": {"equals-ignore-case": ".."}}` (or suffix).
fn ignore_case_operand(inner: &Map<String, Value>, label: &str, operator: &str) -> Result<String> {
    let Some((key, value)) = inner.iter().next() else {
        return invalid(format!("{label} expression name not found"));
    };
    if key != "equals-ignore-case" {
        return invalid(format!("Unsupported {operator} pattern: {key}"));
    }
    let Value::String(s) = value else {
        return invalid("equals-ignore-case match pattern must be a string");
    };
    if inner.len() > 1 {
        return invalid("Only one key allowed in match expression");
    }
    Ok(s.clone())
}

fn parse_anything_but(value: &Value) -> Result<AnythingBut> {
    const NOT_A_VALUE: &str =
        "Value of anything-but must be an array or single string/number value.";
    match value {
        Value::String(s) => Ok(AnythingBut::Strings(vec![s.clone()])),
        Value::Number(n) => Ok(AnythingBut::Numbers(vec![n.clone()])),
        Value::Array(list) => {
            let mut strings = Vec::new();
            let mut numbers = Vec::new();
            for item in list {
                match item {
                    Value::String(s) => strings.push(s.clone()),
                    Value::Number(n) => numbers.push(n.clone()),
                    _ => {
                        return invalid(
                            "Inside anything but list, start|null|boolean is not supported.",
                        )
                    }
                }
            }
            match (strings.is_empty(), numbers.is_empty()) {
                (false, true) => Ok(AnythingBut::Strings(strings)),
                (true, false) => Ok(AnythingBut::Numbers(numbers)),
                _ => invalid(
                    "Inside anything but list, either all values are number or string, mixed type is not supported",
                ),
            }
        }
        Value::Object(inner) => {
            let Some((operator, operand)) = inner.iter().next() else {
                return invalid("Anything-But expression name not found");
            };
            let type_error = match operator.as_str() {
                "equals-ignore-case" => {
                    "Inside anything-but/equals-ignore-case list, number|start|null|boolean is not supported."
                }
                "prefix" | "suffix" => "prefix/suffix match pattern must be a string",
                "wildcard" => "wildcard match pattern must be a string",
                other => return invalid(format!("Unsupported anything-but pattern: {other}")),
            };
            let values: Vec<String> = match operand {
                Value::String(s) => vec![s.clone()],
                Value::Number(_) => return invalid(type_error),
                Value::Array(items) => items
                    .iter()
                    .map(|item| item.as_str().map(str::to_owned))
                    .collect::<Option<_>>()
                    .ok_or_else(|| PatternError::new(type_error))?,
                _ => return invalid(NOT_A_VALUE),
            };
            if matches!(operator.as_str(), "prefix" | "suffix")
                && values.iter().any(String::is_empty)
            {
                return invalid("Null prefix/suffix not allowed");
            }
            if inner.len() > 1 {
                return invalid("Too many elements in numeric expression");
            }
            Ok(match operator.as_str() {
                "equals-ignore-case" => AnythingBut::IgnoreCase(values),
                "prefix" => AnythingBut::Prefixes(values),
                "suffix" => AnythingBut::Suffixes(values),
                _ => AnythingBut::Wildcards(
                    values
                        .iter()
                        .map(|v| Wildcard::parse(v))
                        .collect::<Result<_>>()?,
                ),
            })
        }
        _ => invalid(NOT_A_VALUE),
    }
}

/// A numeric range; `=` is the degenerate range with both bounds inclusive and equal.
#[derive(Debug, Clone, PartialEq)]
struct Range {
    lower: Option<(f64, bool)>,
    upper: Option<(f64, bool)>,
}

impl Range {
    /// Parses the array of `{"numeric": [...]}`: `= n`, `< n`, `<= n`, `> n`, `>= n`, or a lower
    /// bound followed by an upper bound.
    fn parse(terms: &[Value]) -> Result<Range> {
        let mut terms = terms.iter();
        let operator = match terms.next() {
            Some(Value::String(op)) => op.as_str(),
            Some(other) => {
                return invalid(format!("Invalid member in numeric match: {}", token(other)))
            }
            None => return invalid("Invalid member in numeric match: ]"),
        };
        let mut number = |label: &str| match terms.next() {
            Some(Value::Number(n)) => n
                .as_f64()
                .ok_or_else(|| PatternError::new(format!("Value of {label} must be numeric"))),
            _ => invalid(format!("Value of {label} must be numeric")),
        };
        let range = match operator {
            "=" => {
                let n = number("equals")?;
                Range {
                    lower: Some((n, true)),
                    upper: Some((n, true)),
                }
            }
            "<" | "<=" => Range {
                lower: None,
                upper: Some((number(operator)?, operator == "<=")),
            },
            ">" | ">=" => {
                let lower = Some((number(operator)?, operator == ">="));
                return match terms.next() {
                    None => Ok(Range { lower, upper: None }),
                    Some(Value::String(top)) if top == "<" || top == "<=" => {
                        let Some(Value::Number(n)) = terms.next() else {
                            return invalid(format!("Value of {top} must be numeric"));
                        };
                        if terms.next().is_some() {
                            return invalid("Too many terms in numeric range expression");
                        }
                        let top_value = n.as_f64().unwrap_or(f64::NAN);
                        if !lower.is_some_and(|(bottom, _)| bottom < top_value) {
                            return invalid("Bottom must be less than top");
                        }
                        Ok(Range {
                            lower,
                            upper: Some((top_value, top == "<=")),
                        })
                    }
                    Some(Value::String(other)) => {
                        invalid(format!("Bad numeric range operator: {other}"))
                    }
                    Some(other) => invalid(format!("Bad value in numeric range: {}", token(other))),
                };
            }
            other => return invalid(format!("Unrecognized numeric range operator: {other}")),
        };
        if terms.next().is_some() {
            return invalid("Too many elements in numeric expression");
        }
        Ok(range)
    }

    fn contains(&self, n: f64) -> bool {
        let above = self
            .lower
            .is_none_or(|(bound, inclusive)| n > bound || (inclusive && n == bound));
        let below = self
            .upper
            .is_none_or(|(bound, inclusive)| n < bound || (inclusive && n == bound));
        above && below
    }
}

/// How Ruler's JSON parser names a token in its messages.
fn token(value: &Value) -> String {
    match value {
        Value::Array(_) => "[".into(),
        Value::Object(_) => "{".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A `wildcard` pattern: literal bytes and `*` (any run of characters, possibly empty).
#[derive(Debug, Clone, PartialEq)]
struct Wildcard(Vec<Option<u8>>);

impl Wildcard {
    /// `\*` is a literal star and `\\` a literal backslash; other escapes and `**` are invalid.
    /// Positions in messages count Ruler's leading quote, hence the `+ 1`.
    fn parse(text: &str) -> Result<Wildcard> {
        let bytes = text.as_bytes();
        let mut tokens = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'*' if bytes.get(i + 1) == Some(&b'*') => {
                    return invalid(format!("Consecutive wildcard characters at pos {}", i + 1))
                }
                b'*' => tokens.push(None),
                b'\\' => match bytes.get(i + 1) {
                    Some(&escaped @ (b'*' | b'\\')) => {
                        tokens.push(Some(escaped));
                        i += 1;
                    }
                    _ => return invalid(format!("Invalid escape character at pos {}", i + 1)),
                },
                byte => tokens.push(Some(byte)),
            }
            i += 1;
        }
        Ok(Wildcard(tokens))
    }

    /// Greedy glob with backtracking to the last star: O(len(pattern) * len(text)) at worst.
    fn matches(&self, text: &str) -> bool {
        let (pattern, text) = (&self.0, text.as_bytes());
        let (mut p, mut t) = (0, 0);
        let mut resume: Option<(usize, usize)> = None;
        while t < text.len() {
            match pattern.get(p) {
                Some(Some(byte)) if *byte == text[t] => {
                    p += 1;
                    t += 1;
                }
                Some(None) => {
                    resume = Some((p + 1, t));
                    p += 1;
                }
                _ => match resume {
                    Some((after_star, star_text)) => {
                        p = after_star;
                        t = star_text + 1;
                        resume = Some((after_star, t));
                    }
                    None => return false,
                },
            }
        }
        pattern[p..].iter().all(Option::is_none)
    }
}

/// An IPv4 or IPv6 network.
#[derive(Debug, Clone, PartialEq)]
struct Cidr {
    network: IpAddr,
    bits: u32,
}

impl Cidr {
    /// Ruler's rules and messages, including its limits of `/31` and `/127`.
    fn parse(text: &str) -> Result<Cidr> {
        // Java's split drops trailing empty parts, so "10.0.0.0/" has one part.
        let parts: Vec<&str> = text.trim_end_matches('/').split('/').collect();
        let [address, bits] = parts[..] else {
            return invalid("Malformed CIDR, one '/' required");
        };
        let bits: i32 = bits
            .parse()
            .map_err(|_| PatternError::new("Malformed CIDR, mask bits must be an integer"))?;
        let Ok(bits) = u32::try_from(bits) else {
            return invalid("Malformed CIDR, mask bits must not be negative");
        };
        let network = match parse_ip(address) {
            IpLiteral::Address(ip) => ip,
            IpLiteral::Invalid => return invalid(format!("Invalid IP address: {address}")),
            IpLiteral::NotIp => return invalid(format!("Nonstandard IP address: {address}")),
        };
        match network {
            IpAddr::V4(_) if bits > 31 => invalid("IPv4 mask bits must be < 32"),
            IpAddr::V6(_) if bits > 127 => invalid("IPv6 mask bits must be < 128"),
            _ => Ok(Cidr { network, bits }),
        }
    }

    fn contains(&self, ip: IpAddr) -> bool {
        fn same_prefix(a: u128, b: u128, width: u32, bits: u32) -> bool {
            bits == 0 || (a ^ b) >> (width - bits) == 0
        }
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                same_prefix(u32::from(net).into(), u32::from(ip).into(), 32, self.bits)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                same_prefix(u128::from(net), u128::from(ip), 128, self.bits)
            }
            _ => false,
        }
    }
}

enum IpLiteral {
    Address(IpAddr),
    /// Shaped like an address but not one (e.g. an octet above 255).
    Invalid,
    NotIp,
}

/// Ruler only treats strings shaped like `d.d.d.d` or hex-and-colons as addresses.
fn parse_ip(text: &str) -> IpLiteral {
    let v4_shape = {
        let octets: Vec<&str> = text.split('.').collect();
        octets.len() == 4
            && octets
                .iter()
                .all(|o| !o.is_empty() && o.bytes().all(|b| b.is_ascii_digit()))
    };
    let v6_shape = text.contains(':') && text.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
    let parsed = if v4_shape {
        text.parse::<Ipv4Addr>().map(IpAddr::V4).ok()
    } else if v6_shape {
        text.parse::<Ipv6Addr>().map(IpAddr::V6).ok()
    } else {
        return IpLiteral::NotIp;
    };
    parsed.map_or(IpLiteral::Invalid, IpLiteral::Address)
}

fn ip_of(text: &str) -> Option<IpAddr> {
    match parse_ip(text) {
        IpLiteral::Address(ip) => Some(ip),
        _ => None,
    }
}

impl Matcher {
    /// Whether this entry accepts a field whose leaf values are `leaves` (empty when the field is
    /// missing or holds no scalar).
    fn accepts(&self, leaves: &[&Value]) -> bool {
        match self {
            Matcher::Exists(exists) => *exists != leaves.is_empty(),
            _ => leaves.iter().any(|leaf| self.accepts_value(leaf)),
        }
    }

    fn accepts_value(&self, value: &Value) -> bool {
        let text = value.as_str();
        match self {
            Matcher::Exact(Value::String(expected)) => text.is_some_and(|s| {
                // Ruler compares IP literals by address, so "::1" equals "0:0:0:0:0:0:0:1".
                s == expected || ip_of(s).is_some_and(|ip| ip_of(expected) == Some(ip))
            }),
            Matcher::Exact(Value::Number(expected)) => value
                .as_number()
                .is_some_and(|n| numbers_equal(n, expected)),
            Matcher::Exact(expected) => value == expected,
            Matcher::EqualsIgnoreCase(expected) => {
                text.is_some_and(|s| eq_ignore_case(s, expected))
            }
            Matcher::Prefix(prefix) => text.is_some_and(|s| s.starts_with(prefix.as_str())),
            Matcher::PrefixIgnoreCase(prefix) => {
                text.is_some_and(|s| starts_with_ignore_case(s, prefix))
            }
            Matcher::Suffix(suffix) => text.is_some_and(|s| s.ends_with(suffix.as_str())),
            Matcher::SuffixIgnoreCase(suffix) => {
                text.is_some_and(|s| ends_with_ignore_case(s, suffix))
            }
            Matcher::Wildcard(wildcard) => text.is_some_and(|s| wildcard.matches(s)),
            Matcher::Numeric(range) => value.as_f64().is_some_and(|n| range.contains(n)),
            Matcher::Cidr(cidr) => text.and_then(ip_of).is_some_and(|ip| cidr.contains(ip)),
            Matcher::AnythingBut(excluded) => !excluded.excludes(value),
            Matcher::Exists(exists) => *exists,
        }
    }
}

impl AnythingBut {
    fn excludes(&self, value: &Value) -> bool {
        if let AnythingBut::Numbers(numbers) = self {
            return value
                .as_number()
                .is_some_and(|n| numbers.iter().any(|excluded| numbers_equal(n, excluded)));
        }
        // Every other form excludes strings only; numbers, booleans and null always pass.
        let Some(s) = value.as_str() else {
            return false;
        };
        match self {
            AnythingBut::Strings(list) => list.iter().any(|x| x == s),
            AnythingBut::IgnoreCase(list) => list.iter().any(|x| eq_ignore_case(s, x)),
            AnythingBut::Prefixes(list) => list.iter().any(|x| s.starts_with(x.as_str())),
            AnythingBut::Suffixes(list) => list.iter().any(|x| s.ends_with(x.as_str())),
            AnythingBut::Wildcards(list) => list.iter().any(|w| w.matches(s)),
            AnythingBut::Numbers(_) => false,
        }
    }
}

/// Exact for integers (account numbers exceed f64's precision), numeric otherwise.
fn numbers_equal(a: &Number, b: &Number) -> bool {
    match (a.as_i64(), b.as_i64(), a.as_u64(), b.as_u64()) {
        (Some(x), Some(y), _, _) => x == y,
        (_, _, Some(x), Some(y)) => x == y,
        _ => a.as_f64() == b.as_f64(),
    }
}

fn folded(s: &str) -> impl DoubleEndedIterator<Item = char> + '_ {
    s.chars().flat_map(char::to_lowercase)
}

fn eq_ignore_case(a: &str, b: &str) -> bool {
    folded(a).eq(folded(b))
}

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    let mut s = folded(s);
    folded(prefix).all(|c| s.next() == Some(c))
}

fn ends_with_ignore_case(s: &str, suffix: &str) -> bool {
    let mut s = s.chars().rev().flat_map(char::to_lowercase);
    suffix
        .chars()
        .rev()
        .flat_map(char::to_lowercase)
        .all(|c| s.next() == Some(c))
}

/// One `$or`-free alternative as a tree of path segments (dotted names split back apart).
#[derive(Debug, Clone, Default)]
struct Node {
    leaves: BTreeMap<String, Vec<Matcher>>,
    children: BTreeMap<String, Node>,
}

/// The event values at one pattern path, each as `(rest, value)`: `value` sits at the dotted path
/// `rest` below it (empty: right there). Usually one entry; dotted event keys add more, so
/// `{"a.b": 1}` is found at `a` as `("b", 1)` and at `a.b` as `("", 1)`, without copying the event.
type Place<'a> = Vec<(&'a str, &'a Value)>;

impl Node {
    fn from_rule(rule: Rule) -> Node {
        let mut root = Node::default();
        for (name, matchers) in rule {
            let mut segments: Vec<&str> = name.split('.').collect();
            let last = segments.pop().unwrap_or_default().to_owned();
            let node = segments.into_iter().fold(&mut root, |node, segment| {
                node.children.entry(segment.to_owned()).or_default()
            });
            node.leaves.insert(last, matchers);
        }
        root
    }

    /// Matches at `place`; an array there must satisfy the node within one element, while
    /// fields required absent must be absent from every element.
    fn matches(&self, place: &[(&str, &Value)], dotted: bool) -> bool {
        let Some((fixed, elements)) = split_arrays(place) else {
            return self.matches_here(place, dotted);
        };
        if elements.is_empty() {
            // An empty array holds no fields, like a missing one.
            return self.matches_here(&fixed, dotted);
        }
        let with = |element| [fixed.as_slice(), &[("", element)]].concat();
        elements.iter().all(|e| self.absent_here(&with(*e), dotted))
            && elements
                .iter()
                .any(|e| self.matches_here(&with(*e), dotted))
    }

    /// Matches at a place holding no array: every leaf and child must match.
    fn matches_here(&self, place: &[(&str, &Value)], dotted: bool) -> bool {
        self.leaves.iter().all(|(key, matchers)| {
            let leaves = leaves(&lookup(place, key, dotted));
            matchers.iter().any(|m| m.accepts(&leaves))
        }) && self
            .children
            .iter()
            .all(|(key, child)| child.matches(&lookup(place, key, dotted), dotted))
    }

    /// Whether the fields required to be absent (a leaf of only `exists: false`) are absent here,
    /// looking into every element of any array on the way.
    fn absent_here(&self, place: &[(&str, &Value)], dotted: bool) -> bool {
        self.leaves
            .iter()
            .filter(|(_, matchers)| matchers.iter().all(|m| *m == Matcher::Exists(false)))
            .all(|(key, _)| leaves(&lookup(place, key, dotted)).is_empty())
            && self.children.iter().all(|(key, child)| {
                let below = lookup(place, key, dotted);
                match split_arrays(&below) {
                    None => child.absent_here(&below, dotted),
                    Some((fixed, elements)) => {
                        child.absent_here(&fixed, dotted)
                            && elements.iter().all(|e| {
                                child.absent_here(&[fixed.as_slice(), &[("", *e)]].concat(), dotted)
                            })
                    }
                }
            })
    }
}

/// Separates the arrays sitting right at `place` (flattened to their non-array elements) from the
/// rest; `None` when there are none.
fn split_arrays<'a>(place: &[(&'a str, &'a Value)]) -> Option<(Place<'a>, Vec<&'a Value>)> {
    if !place
        .iter()
        .any(|(rest, v)| rest.is_empty() && v.is_array())
    {
        return None;
    }
    let (arrays, fixed): (Place<'a>, Place<'a>) = place
        .iter()
        .partition(|(rest, v)| rest.is_empty() && v.is_array());
    let elements = arrays
        .into_iter()
        .flat_map(|(_, v)| flatten(Some(v)))
        .collect();
    Some((fixed, elements))
}

/// The values found one segment (`key`) below `place`. Dotted event keys are only scanned for
/// when the event has any (`dotted`), which keeps the common case a single map lookup.
fn lookup<'a>(place: &[(&'a str, &'a Value)], key: &str, dotted: bool) -> Place<'a> {
    let below = |path: &'a str| path.strip_prefix(key)?.strip_prefix('.');
    let mut found = Vec::new();
    for &(rest, value) in place {
        if !rest.is_empty() {
            if rest == key {
                found.push(("", value));
            } else if let Some(deeper) = below(rest) {
                found.push((deeper, value));
            }
        } else if let Value::Object(map) = value {
            found.extend(map.get(key).map(|v| ("", v)));
            if dotted {
                found.extend(map.iter().filter_map(|(name, v)| Some((below(name)?, v))));
            }
        }
    }
    found
}

/// The non-array values of `value`, descending into nested arrays (iteratively, so no depth
/// limit applies).
fn flatten(value: Option<&Value>) -> Vec<&Value> {
    let mut out = Vec::new();
    let mut stack: Vec<&Value> = value.into_iter().collect();
    while let Some(v) = stack.pop() {
        match v {
            Value::Array(items) => stack.extend(items.iter().rev()),
            other => out.push(other),
        }
    }
    out
}

/// The scalar values a field holds: itself, or the scalars of an array. Objects are not values.
fn leaves<'a>(place: &[(&'a str, &'a Value)]) -> Vec<&'a Value> {
    place
        .iter()
        .filter(|(rest, _)| rest.is_empty())
        .flat_map(|(_, v)| flatten(Some(v)))
        .filter(|v| !v.is_object())
        .collect()
}

/// Whether any object in the event has a key with a dot (iteratively, so no depth limit applies).
fn has_dotted_key(value: &Value) -> bool {
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(map) => {
                if map.keys().any(|k| k.contains('.')) {
                    return true;
                }
                stack.extend(map.values());
            }
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    false
}
