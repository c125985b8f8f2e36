//! Values on the right of a comparison in JSON and space-delimited patterns, and how they compare
//! with what an event holds.

use crate::regex::Regex;
use crate::FilterError;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn is_ordering(self) -> bool {
        matches!(self, Op::Lt | Op::Le | Op::Gt | Op::Ge)
    }

    fn holds(self, ord: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            Op::Eq => ord == Equal,
            Op::Ne => ord != Equal,
            Op::Lt => ord == Less,
            Op::Le => ord != Greater,
            Op::Gt => ord == Greater,
            Op::Ge => ord != Less,
        }
    }
}

/// A string with `*` wildcards: a leading `*` matches any text before, a trailing one any text
/// after; a `*` elsewhere is a literal star (AWS: "`Ev*ent` will only match the actual string
/// `Ev*ent`"). `\*` is a literal star anywhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Glob {
    leading: bool,
    trailing: bool,
    core: String,
}

impl Glob {
    /// From characters with whether each was escaped.
    pub(crate) fn new(chars: &[(char, bool)]) -> Self {
        let wild = |&(c, escaped): &(char, bool)| c == '*' && !escaped;
        let start = chars.iter().take_while(|c| wild(c)).count();
        if start == chars.len() && start > 0 {
            return Glob {
                leading: true,
                trailing: true,
                core: String::new(),
            };
        }
        let end = chars.len() - chars.iter().rev().take_while(|c| wild(c)).count();
        Glob {
            leading: start > 0,
            trailing: end < chars.len(),
            core: chars[start..end].iter().map(|&(c, _)| c).collect(),
        }
    }

    pub(crate) fn has_wildcard(&self) -> bool {
        self.leading || self.trailing
    }

    pub(crate) fn matches(&self, s: &str) -> bool {
        match (self.leading, self.trailing) {
            (false, false) => s == self.core,
            (true, false) => s.ends_with(&self.core),
            (false, true) => s.starts_with(&self.core),
            (true, true) => s.contains(&self.core),
        }
    }
}

/// The right-hand side of a comparison.
#[derive(Debug, Clone)]
pub(crate) enum Literal {
    /// Written without quotes; `number` is its value when it is a number (and has no wildcard).
    Bare { glob: Glob, number: Option<f64> },
    /// Written in double quotes: always compared as a string.
    Quoted(Glob),
    /// `%regex%`, searched for in the value.
    Regex(Regex),
}

/// Parses a number as AWS writes them: an optional sign, digits with an optional fraction, an
/// optional exponent (`10e-3`, `+1000`, `55.5`).
pub(crate) fn parse_number(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let mut digits = i - int_start;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let frac_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        digits += i - frac_start;
    }
    if digits == 0 {
        return None;
    }
    if i < b.len() && matches!(b[i], b'e' | b'E') {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exp_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == exp_start {
            return None;
        }
    }
    if i != b.len() {
        return None;
    }
    s.parse().ok()
}

fn cmp_f64(a: f64, b: f64) -> Option<std::cmp::Ordering> {
    a.partial_cmp(&b)
}

/// Characters a value may contain without double quotes. AWS: alphanumeric strings need no
/// quotes, `@`, `$`, `\`, unicode and the like do; its own examples leave `.`, `*`, `-` and `+`
/// bare (`123.123.*`, `-1`, `+1000`, `1e-3`).
pub(crate) fn is_bare_value_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '*' | '+')
}

impl Literal {
    /// A bare word as a value (validated).
    pub(crate) fn bare(word: &str) -> Result<Self, FilterError> {
        if !word.chars().all(is_bare_value_char) {
            return Err(FilterError::InvalidCharacters(word.to_owned()));
        }
        let chars: Vec<(char, bool)> = word.chars().map(|c| (c, false)).collect();
        let glob = Glob::new(&chars);
        let number = if glob.has_wildcard() {
            None
        } else {
            parse_number(word)
        };
        Ok(Literal::Bare { glob, number })
    }

    /// Checks that the literal can stand after `op`: `<`, `<=`, `>` and `>=` take numbers only.
    pub(crate) fn check_op(&self, op: Op, raw: &str) -> Result<(), FilterError> {
        if !op.is_ordering() {
            return Ok(());
        }
        match self {
            Literal::Bare {
                number: Some(_), ..
            } => Ok(()),
            Literal::Regex(_) => Err(FilterError::syntax(format!(
                "a regular expression cannot be compared with '{}'",
                op_text(op)
            ))),
            _ => Err(FilterError::InvalidCharacters(raw.to_owned())),
        }
    }

    /// Compares a string value (a JSON string, a space-delimited field).
    ///
    /// `numeric_text`: whether a bare number on the right compares numerically with a string
    /// that reads as a number (space-delimited fields are all text; JSON strings are not).
    pub(crate) fn compare_str(&self, op: Op, s: &str, numeric_text: bool) -> bool {
        match self {
            Literal::Regex(r) => match op {
                Op::Eq => r.is_match(s),
                Op::Ne => !r.is_match(s),
                _ => false,
            },
            Literal::Bare {
                number: Some(n), ..
            } if op.is_ordering() || numeric_text => match parse_number(s) {
                Some(v) => cmp_f64(v, *n).is_some_and(|o| op.holds(o)),
                None if op.is_ordering() => false,
                None => self.compare_glob(op, s),
            },
            _ if op.is_ordering() => false,
            _ => self.compare_glob(op, s),
        }
    }

    /// Compares a JSON number. A bare number compares numerically (`123` = `123.0`); a quoted
    /// or wildcard value compares with the number as written (`"123.0"` ≠ `123`, `1*` = `123`).
    pub(crate) fn compare_number(&self, op: Op, n: &serde_json::Number) -> bool {
        match self {
            Literal::Bare {
                number: Some(lit), ..
            } => n
                .as_f64()
                .and_then(|v| cmp_f64(v, *lit))
                .is_some_and(|o| op.holds(o)),
            _ if op.is_ordering() => false,
            _ => self.compare_str(op, &n.to_string(), false),
        }
    }

    fn compare_glob(&self, op: Op, s: &str) -> bool {
        let glob = match self {
            Literal::Bare { glob, .. } | Literal::Quoted(glob) => glob,
            Literal::Regex(_) => return false,
        };
        match op {
            Op::Eq => glob.matches(s),
            Op::Ne => !glob.matches(s),
            _ => false,
        }
    }
}

pub(crate) fn op_text(op: Op) -> &'static str {
    match op {
        Op::Eq => "=",
        Op::Ne => "!=",
        Op::Lt => "<",
        Op::Le => "<=",
        Op::Gt => ">",
        Op::Ge => ">=",
    }
}
