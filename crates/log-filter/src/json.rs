//! JSON patterns: `{ SELECTOR OPERATOR VALUE }` conditions joined with `&&` and `||`.
//!
//! As AWS documents:
//!
//! - The pattern is enclosed in braces; only messages that are JSON objects can match.
//! - Selectors start with `$.` and name properties of letters, digits, `-` and `_`, with array
//!   elements as `[N]` after a property: `$.eventType`, `$.users[0].id`, `$.coordinates[0][1]`.
//! - `=` and `!=` compare with a string, quoted or bare (bare only for letters, digits and
//!   `_ - . * +`; anything else needs quotes, else "Invalid character(s) in term"). A `*` at the
//!   start or end is a wildcard (`*Event`, `Event*`, `*` alone for any value); elsewhere it is a
//!   literal star. A bare number compares numerically with a JSON number (`{ $.id = 2 }`
//!   matches `2.0`); a quoted one compares with the number as written.
//! - `<`, `<=`, `>`, `>=` (and `=`, `!=`) compare numbers: integers, decimals, scientific
//!   notation, with a sign. A non-number after them is "Invalid character(s) in term". A string
//!   value compares if it reads as a number.
//! - `%regex%` after `=` or `!=` searches the value ([`crate::regex`]); at most two per pattern.
//! - `IS NULL`, `IS TRUE`, `IS FALSE` and `NOT EXISTS`; `EXISTS` and `IS NOT` are not supported.
//! - The selected value must be a string or a number for `=` and the others: a selector that
//!   points to an object or an array, or to nothing, matches neither `=` nor `!=`.
//! - `&&` binds tighter than `||`; parentheses group.

use serde_json::Value;

use crate::lex::{tokenize, Cursor, Tok};
use crate::value::{Literal, Op};
use crate::FilterError;

/// A parsed JSON pattern.
#[derive(Debug, Clone)]
pub struct JsonPattern {
    expr: Expr,
}

#[derive(Debug, Clone)]
enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Cond(Cond),
}

#[derive(Debug, Clone)]
struct Cond {
    path: Vec<Step>,
    test: Test,
}

#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

#[derive(Debug, Clone)]
enum Test {
    Compare(Op, Literal),
    IsNull,
    Is(bool),
    NotExists,
}

impl JsonPattern {
    /// Parses `{ … }` (surrounding whitespace already trimmed).
    pub fn parse(pattern: &str) -> Result<Self, FilterError> {
        let inner = pattern
            .strip_prefix('{')
            .and_then(|p| p.strip_suffix('}'))
            .ok_or(FilterError::Unclosed {
                open: '{',
                close: '}',
            })?;
        let mut cur = Cursor::new(tokenize(inner)?);
        if cur.at_end() {
            return Err(FilterError::syntax("empty JSON pattern"));
        }
        let mut regexes = 0;
        let expr = or_expr(&mut cur, &mut regexes)?;
        if let Some(t) = cur.next() {
            return Err(FilterError::syntax(format!("unexpected '{}'", t.text())));
        }
        Ok(JsonPattern { expr })
    }

    /// Whether `message` is a JSON object satisfying the pattern.
    pub fn matches(&self, message: &str) -> bool {
        match serde_json::from_str::<Value>(message) {
            Ok(v @ Value::Object(_)) => self.expr.eval(&v),
            _ => false,
        }
    }
}

fn or_expr(cur: &mut Cursor, regexes: &mut usize) -> Result<Expr, FilterError> {
    let mut terms = vec![and_expr(cur, regexes)?];
    while matches!(cur.peek(), Some(Tok::Or)) {
        cur.next();
        terms.push(and_expr(cur, regexes)?);
    }
    Ok(if terms.len() == 1 {
        terms.remove(0)
    } else {
        Expr::Or(terms)
    })
}

fn and_expr(cur: &mut Cursor, regexes: &mut usize) -> Result<Expr, FilterError> {
    let mut terms = vec![primary(cur, regexes)?];
    while matches!(cur.peek(), Some(Tok::And)) {
        cur.next();
        terms.push(primary(cur, regexes)?);
    }
    Ok(if terms.len() == 1 {
        terms.remove(0)
    } else {
        Expr::And(terms)
    })
}

fn primary(cur: &mut Cursor, regexes: &mut usize) -> Result<Expr, FilterError> {
    match cur.next() {
        Some(Tok::LParen) => {
            let e = or_expr(cur, regexes)?;
            match cur.next() {
                Some(Tok::RParen) => Ok(e),
                _ => Err(FilterError::syntax("missing ')'")),
            }
        }
        Some(Tok::Word(w)) => {
            let path = selector(&w)?;
            let test = test(cur, regexes)?;
            Ok(Expr::Cond(Cond { path, test }))
        }
        Some(t) => Err(FilterError::syntax(format!(
            "expected a selector, found '{}'",
            t.text()
        ))),
        None => Err(FilterError::syntax("expected a selector")),
    }
}

fn test(cur: &mut Cursor, regexes: &mut usize) -> Result<Test, FilterError> {
    if cur.keyword("IS") {
        return if cur.keyword("NULL") {
            Ok(Test::IsNull)
        } else if cur.keyword("TRUE") {
            Ok(Test::Is(true))
        } else if cur.keyword("FALSE") {
            Ok(Test::Is(false))
        } else {
            Err(FilterError::syntax("IS takes NULL, TRUE or FALSE"))
        };
    }
    if cur.keyword("NOT") {
        return if cur.keyword("EXISTS") {
            Ok(Test::NotExists)
        } else {
            Err(FilterError::syntax("NOT takes EXISTS"))
        };
    }
    let op = match cur.next() {
        Some(Tok::Op(op)) => op,
        Some(t) => {
            return Err(FilterError::syntax(format!(
                "expected an operator, found '{}'",
                t.text()
            )))
        }
        None => return Err(FilterError::syntax("expected an operator")),
    };
    let tok = cur
        .next()
        .ok_or_else(|| FilterError::syntax("expected a value"))?;
    let lit = tok.literal(regexes)?;
    lit.check_op(op, &tok.text())?;
    Ok(Test::Compare(op, lit))
}

fn selector(s: &str) -> Result<Vec<Step>, FilterError> {
    let invalid = || FilterError::InvalidCharacters(s.to_owned());
    let rest = s.strip_prefix('$').ok_or_else(|| {
        FilterError::syntax(format!("'{s}' is not a selector (they start with $.)"))
    })?;
    let b = rest.as_bytes();
    let mut steps = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'.' => {
                let start = i + 1;
                let mut end = start;
                while end < b.len()
                    && (b[end].is_ascii_alphanumeric() || matches!(b[end], b'-' | b'_'))
                {
                    end += 1;
                }
                if end == start {
                    return Err(invalid());
                }
                steps.push(Step::Key(rest[start..end].to_owned()));
                i = end;
            }
            b'[' if !steps.is_empty() => {
                let close = rest[i..].find(']').ok_or_else(invalid)? + i;
                let index = rest[i + 1..close].parse().map_err(|_| invalid())?;
                steps.push(Step::Index(index));
                i = close + 1;
            }
            _ => return Err(invalid()),
        }
    }
    if steps.is_empty() {
        return Err(FilterError::syntax("a selector needs a property after $"));
    }
    Ok(steps)
}

impl Expr {
    fn eval(&self, root: &Value) -> bool {
        match self {
            Expr::And(es) => es.iter().all(|e| e.eval(root)),
            Expr::Or(es) => es.iter().any(|e| e.eval(root)),
            Expr::Cond(c) => c.eval(root),
        }
    }
}

impl Cond {
    fn eval(&self, root: &Value) -> bool {
        let mut node = Some(root);
        for step in &self.path {
            node = match (node, step) {
                (Some(Value::Object(m)), Step::Key(k)) => m.get(k),
                (Some(Value::Array(a)), Step::Index(i)) => a.get(*i),
                _ => None,
            };
        }
        match (&self.test, node) {
            (Test::NotExists, node) => node.is_none(),
            (Test::IsNull, Some(Value::Null)) => true,
            (Test::Is(b), Some(Value::Bool(v))) => b == v,
            (Test::Compare(op, lit), Some(Value::String(s))) => lit.compare_str(*op, s, false),
            (Test::Compare(op, lit), Some(Value::Number(n))) => lit.compare_number(*op, n),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests;
