//! Space-delimited patterns: `[ip, user, ..., status_code = 4*, bytes > 1000]`.
//!
//! As AWS documents:
//!
//! - The message is split into fields at spaces; text between double quotes or between square
//!   brackets is one field (without its quotes or brackets): `127.0.0.1 - frank
//!   [10/Oct/2000:13:25:15 -0700] "GET /index.html HTTP/1.0" 404 1534` has seven fields.
//! - The pattern names the fields in order, separated by commas. Without `...` the message must
//!   have exactly as many fields as the pattern (`[w1=ERROR, w2]` matches `ERROR message` but not
//!   `ERROR WARN message`); `...` stands for any number of fields.
//! - A field may carry conditions: `= value` / `!= value` with `*` wildcards at the start or end
//!   (`status_code = 4*`, `request = *.html*`), or a `%regex%`; `<`, `<=`, `>`, `>=` (and `=`,
//!   `!=` with a bare number) compare numbers. Conditions combine with `&&` and `||`, and may
//!   name other fields: `[w1=ERROR || w1=WARN, w2]`, `[ip, ..., status_code = 4* && bytes >
//!   1000]`.
//!
//! Where AWS is silent: fields are separated by runs of spaces or tabs (Lambda's own text log
//! lines are tab-separated); field names are letters, digits, `-` and `_` and are matched
//! ignoring case when no field has the exact spelling (AWS' own example writes `w1` and `W1`);
//! several `...` may appear; an empty slot (a trailing comma) is an unnamed field.

use crate::lex::{tokenize, Cursor, Tok};
use crate::value::{Literal, Op};
use crate::FilterError;

/// How many ways of spreading fields over `...` slots are tried before giving up.
const MAX_BINDINGS: usize = 10_000;

/// A parsed space-delimited pattern.
#[derive(Debug, Clone)]
pub struct DelimitedPattern {
    slots: Vec<Slot>,
    /// Every slot's conditions; all must hold.
    conditions: Vec<Expr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Slot {
    Field(Option<String>),
    Ellipsis,
}

#[derive(Debug, Clone)]
enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    /// Field (slot index), operator, value.
    Cond(usize, Op, Literal),
}

impl DelimitedPattern {
    /// Parses `[ … ]` (surrounding whitespace already trimmed).
    pub fn parse(pattern: &str) -> Result<Self, FilterError> {
        let inner = pattern
            .strip_prefix('[')
            .and_then(|p| p.strip_suffix(']'))
            .ok_or(FilterError::Unclosed {
                open: '[',
                close: ']',
            })?;
        let toks = tokenize(inner)?;
        let mut groups: Vec<Vec<Tok>> = vec![Vec::new()];
        for t in toks {
            match t {
                Tok::Comma => groups.push(Vec::new()),
                t => {
                    if let Some(g) = groups.last_mut() {
                        g.push(t);
                    }
                }
            }
        }
        if groups.len() == 1 && groups[0].is_empty() {
            return Err(FilterError::syntax("empty space-delimited pattern"));
        }
        // Names first, so that conditions may refer to fields declared later.
        let mut slots = Vec::with_capacity(groups.len());
        for g in &groups {
            // A slot is named by its first word: `status_code = 4* && bytes > 1000` is
            // `status_code`, also when its conditions start with a parenthesis.
            let first_word = g.iter().find_map(|t| match t {
                Tok::Word(w) => Some(w),
                _ => None,
            });
            slots.push(match (g.len(), first_word) {
                (0, _) => Slot::Field(None),
                (1, Some(w)) if w == "..." => Slot::Ellipsis,
                (_, Some(w)) => Slot::Field(Some(name(w)?)),
                (_, None) => {
                    return Err(FilterError::syntax(format!(
                        "expected a field name, found '{}'",
                        g[0].text()
                    )))
                }
            });
        }
        let mut conditions = Vec::new();
        let mut regexes = 0;
        for g in groups {
            if g.len() > 1 {
                let mut cur = Cursor::new(g);
                let e = or_expr(&mut cur, &slots, &mut regexes)?;
                if let Some(t) = cur.next() {
                    return Err(FilterError::syntax(format!("unexpected '{}'", t.text())));
                }
                conditions.push(e);
            }
        }
        Ok(DelimitedPattern { slots, conditions })
    }

    pub fn matches(&self, message: &str) -> bool {
        let fields = split_fields(message);
        let mut bound: Vec<Option<&str>> = vec![None; self.slots.len()];
        let mut budget = MAX_BINDINGS;
        self.bind(0, &fields, &mut bound, &mut budget)
    }

    /// Binds slots from `slot` on to `fields`, trying every spread over `...`.
    fn bind<'m>(
        &self,
        slot: usize,
        fields: &[&'m str],
        bound: &mut Vec<Option<&'m str>>,
        budget: &mut usize,
    ) -> bool {
        let Some(s) = self.slots.get(slot) else {
            if !fields.is_empty() {
                return false;
            }
            if *budget == 0 {
                return false;
            }
            *budget -= 1;
            return self.conditions.iter().all(|c| c.eval(bound));
        };
        match s {
            Slot::Field(_) => {
                let Some((first, rest)) = fields.split_first() else {
                    return false;
                };
                bound[slot] = Some(first);
                self.bind(slot + 1, rest, bound, budget)
            }
            Slot::Ellipsis => {
                let needed = self.slots[slot + 1..]
                    .iter()
                    .filter(|s| **s != Slot::Ellipsis)
                    .count();
                if fields.len() < needed {
                    return false;
                }
                (0..=fields.len() - needed)
                    .any(|skip| *budget > 0 && self.bind(slot + 1, &fields[skip..], bound, budget))
            }
        }
    }
}

fn name(w: &str) -> Result<String, FilterError> {
    if w.chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
    {
        Ok(w.to_owned())
    } else {
        Err(FilterError::InvalidCharacters(w.to_owned()))
    }
}

fn slot_of(slots: &[Slot], w: &str) -> Result<usize, FilterError> {
    let named = |exact: bool| {
        slots.iter().position(|s| match s {
            Slot::Field(Some(n)) if exact => n == w,
            Slot::Field(Some(n)) => n.eq_ignore_ascii_case(w),
            _ => false,
        })
    };
    named(true)
        .or_else(|| named(false))
        .ok_or_else(|| FilterError::syntax(format!("no field named '{w}'")))
}

fn or_expr(cur: &mut Cursor, slots: &[Slot], regexes: &mut usize) -> Result<Expr, FilterError> {
    let mut terms = vec![and_expr(cur, slots, regexes)?];
    while matches!(cur.peek(), Some(Tok::Or)) {
        cur.next();
        terms.push(and_expr(cur, slots, regexes)?);
    }
    Ok(if terms.len() == 1 {
        terms.remove(0)
    } else {
        Expr::Or(terms)
    })
}

fn and_expr(cur: &mut Cursor, slots: &[Slot], regexes: &mut usize) -> Result<Expr, FilterError> {
    let mut terms = vec![primary(cur, slots, regexes)?];
    while matches!(cur.peek(), Some(Tok::And)) {
        cur.next();
        terms.push(primary(cur, slots, regexes)?);
    }
    Ok(if terms.len() == 1 {
        terms.remove(0)
    } else {
        Expr::And(terms)
    })
}

fn primary(cur: &mut Cursor, slots: &[Slot], regexes: &mut usize) -> Result<Expr, FilterError> {
    match cur.next() {
        Some(Tok::LParen) => {
            let e = or_expr(cur, slots, regexes)?;
            match cur.next() {
                Some(Tok::RParen) => Ok(e),
                _ => Err(FilterError::syntax("missing ')'")),
            }
        }
        Some(Tok::Word(w)) => {
            let slot = slot_of(slots, &name(&w)?)?;
            let op = match cur.next() {
                Some(Tok::Op(op)) => op,
                Some(t) => {
                    return Err(FilterError::syntax(format!(
                        "expected an operator, found '{}'",
                        t.text()
                    )))
                }
                None => return Err(FilterError::syntax(format!("'{w}' needs a condition"))),
            };
            let tok = cur
                .next()
                .ok_or_else(|| FilterError::syntax("expected a value"))?;
            let lit = tok.literal(regexes)?;
            lit.check_op(op, &tok.text())?;
            Ok(Expr::Cond(slot, op, lit))
        }
        Some(t) => Err(FilterError::syntax(format!(
            "expected a field name, found '{}'",
            t.text()
        ))),
        None => Err(FilterError::syntax("expected a field name")),
    }
}

impl Expr {
    fn eval(&self, bound: &[Option<&str>]) -> bool {
        match self {
            Expr::And(es) => es.iter().all(|e| e.eval(bound)),
            Expr::Or(es) => es.iter().any(|e| e.eval(bound)),
            Expr::Cond(slot, op, lit) => bound
                .get(*slot)
                .copied()
                .flatten()
                .is_some_and(|f| lit.compare_str(*op, f, true)),
        }
    }
}

/// The fields of a message: runs of non-blank characters, or what is between `"…"` or `[…]`.
pub(crate) fn split_fields(message: &str) -> Vec<&str> {
    let is_sep = |c: char| c == ' ' || c == '\t' || c == '\n' || c == '\r';
    let mut out = Vec::new();
    let mut rest = message.trim_matches(is_sep);
    while !rest.is_empty() {
        let close = match rest.as_bytes()[0] {
            b'"' => Some('"'),
            b'[' => Some(']'),
            _ => None,
        };
        let enclosed = close.and_then(|close| rest[1..].find(close).map(|end| (end + 1, close)));
        let (field, len) = match enclosed {
            Some((end, _)) => (&rest[1..end], end + 1),
            None => {
                let end = rest.find(is_sep).unwrap_or(rest.len());
                (&rest[..end], end)
            }
        };
        out.push(field);
        rest = rest[len..].trim_start_matches(is_sep);
    }
    out
}

#[cfg(test)]
mod tests;
