//! Tokens of JSON and space-delimited patterns: selectors and field names, comparison
//! operators, values (bare, "quoted" or %regex%), `&&`, `||`, parentheses and commas.

use crate::value::{Glob, Literal, Op};
use crate::FilterError;

#[derive(Debug, Clone)]
pub(crate) enum Tok {
    LParen,
    RParen,
    And,
    Or,
    Comma,
    Op(Op),
    /// A double-quoted string: its characters (with whether each was escaped) and the raw text.
    Quoted(Vec<(char, bool)>, String),
    /// A `%regex%`: the body and the raw text.
    Regex(String, String),
    /// Anything else up to whitespace or punctuation: selectors, names, keywords, bare values.
    Word(String),
}

impl Tok {
    /// The token as written, for messages.
    pub(crate) fn text(&self) -> String {
        match self {
            Tok::LParen => "(".into(),
            Tok::RParen => ")".into(),
            Tok::And => "&&".into(),
            Tok::Or => "||".into(),
            Tok::Comma => ",".into(),
            Tok::Op(op) => crate::value::op_text(*op).into(),
            Tok::Quoted(_, raw) | Tok::Regex(_, raw) => raw.clone(),
            Tok::Word(w) => w.clone(),
        }
    }

    /// The token as the right-hand side of a comparison.
    pub(crate) fn literal(&self, regexes: &mut usize) -> Result<Literal, FilterError> {
        match self {
            Tok::Quoted(chars, _) => Ok(Literal::Quoted(Glob::new(chars))),
            Tok::Regex(body, raw) => {
                *regexes += 1;
                if *regexes > crate::MAX_REGEX_PER_PATTERN {
                    return Err(FilterError::syntax(format!(
                        "a filter pattern may contain at most {} regular expressions",
                        crate::MAX_REGEX_PER_PATTERN
                    )));
                }
                Ok(Literal::Regex(crate::regex::Regex::parse(body, raw)?))
            }
            Tok::Word(w) => Literal::bare(w),
            other => Err(FilterError::syntax(format!(
                "expected a value, found '{}'",
                other.text()
            ))),
        }
    }
}

fn is_word_char(c: char) -> bool {
    !c.is_whitespace() && !matches!(c, '(' | ')' | '=' | '!' | '<' | '>' | ',' | '&' | '|' | '"')
}

/// Splits `s` into tokens.
pub(crate) fn tokenize(s: &str) -> Result<Vec<Tok>, FilterError> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let two = |i: usize, a: char, b: char| chars.get(i) == Some(&a) && chars.get(i + 1) == Some(&b);
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let (tok, len) = match c {
            '(' => (Tok::LParen, 1),
            ')' => (Tok::RParen, 1),
            ',' => (Tok::Comma, 1),
            '&' if two(i, '&', '&') => (Tok::And, 2),
            '|' if two(i, '|', '|') => (Tok::Or, 2),
            '!' if two(i, '!', '=') => (Tok::Op(Op::Ne), 2),
            '<' if two(i, '<', '=') => (Tok::Op(Op::Le), 2),
            '>' if two(i, '>', '=') => (Tok::Op(Op::Ge), 2),
            '<' => (Tok::Op(Op::Lt), 1),
            '>' => (Tok::Op(Op::Gt), 1),
            // `==` is a common spelling of `=`.
            '=' if two(i, '=', '=') => (Tok::Op(Op::Eq), 2),
            '=' => (Tok::Op(Op::Eq), 1),
            '"' => quoted(&chars, i)?,
            '%' => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|&c| c == '%')
                    .ok_or_else(|| FilterError::syntax("unterminated regular expression"))?;
                let body: String = chars[i + 1..i + 1 + end].iter().collect();
                let raw = format!("%{body}%");
                (Tok::Regex(body, raw), end + 2)
            }
            '&' | '|' | '!' => {
                return Err(FilterError::syntax(format!("unexpected '{c}'")));
            }
            _ => {
                let len = chars[i..].iter().take_while(|&&c| is_word_char(c)).count();
                (Tok::Word(chars[i..i + len].iter().collect()), len)
            }
        };
        out.push(tok);
        i += len;
    }
    Ok(out)
}

/// A double-quoted string starting at `start`: `\"`, `\\` and `\*` are escapes, any other
/// backslash is itself.
fn quoted(chars: &[char], start: usize) -> Result<(Tok, usize), FilterError> {
    let mut value = Vec::new();
    let mut i = start + 1;
    loop {
        match chars.get(i) {
            None => return Err(FilterError::syntax("unterminated quoted string")),
            Some('"') => break,
            Some('\\') if matches!(chars.get(i + 1), Some('"' | '\\' | '*')) => {
                value.push((chars[i + 1], true));
                i += 2;
            }
            Some(&c) => {
                value.push((c, false));
                i += 1;
            }
        }
    }
    let raw: String = chars[start..=i].iter().collect();
    Ok((Tok::Quoted(value, raw), i + 1 - start))
}

/// A cursor over tokens for the recursive-descent parsers.
pub(crate) struct Cursor {
    toks: Vec<Tok>,
    pos: usize,
}

impl Cursor {
    pub(crate) fn new(toks: Vec<Tok>) -> Self {
        Cursor { toks, pos: 0 }
    }

    pub(crate) fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    pub(crate) fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        if t.is_some() {
            self.pos += 1;
        }
        t
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.toks.len()
    }

    /// Consumes the next token if it is a word equal (ignoring ASCII case) to `kw`.
    pub(crate) fn keyword(&mut self, kw: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests;
