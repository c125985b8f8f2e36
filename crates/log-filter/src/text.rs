//! Unstructured patterns: terms matched anywhere in the message.
//!
//! As AWS documents:
//!
//! - `ERROR` matches messages containing `ERROR` (also inside a longer word: `ERRORCODE`);
//!   `ERROR ARGUMENTS` needs both terms; matching is case-sensitive.
//! - `"INTERNAL SERVER ERROR"` is an exact phrase. Terms with characters other than letters,
//!   digits and `_` must be quoted (`"user@example.com"`), else AWS' "Invalid character(s) in
//!   term"; inside quotes `\"` and `\\` escape. An empty phrase `""` is invalid; a phrase of
//!   only spaces (`" "`) matches everything.
//! - `-ARGUMENTS` (or `- "a phrase"`) excludes messages containing the term.
//! - `?ERROR ?WARN` matches messages with either term.
//!
//! Combining `?` with other terms is not spelled out by AWS; here a `?` starts an alternative
//! and the plain or `-` terms after it belong to that alternative, which is how the AWS CDK
//! writes "any of these groups of terms" (`?"ERROR" "MainThread" ?"WARN" "Deadlock"`). Terms
//! before the first `?` form an alternative of their own.

use crate::FilterError;

/// A parsed unstructured pattern: alternatives, each a set of terms that must all hold.
#[derive(Debug, Clone)]
pub struct TextPattern {
    alternatives: Vec<Vec<Term>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Term {
    text: String,
    exclude: bool,
}

impl Term {
    /// A phrase of only whitespace: AWS' "match everything".
    fn is_blank(&self) -> bool {
        self.text.trim().is_empty()
    }

    fn holds(&self, message: &str) -> bool {
        if self.is_blank() {
            return true;
        }
        message.contains(self.text.as_str()) != self.exclude
    }
}

impl TextPattern {
    /// Parses terms (the caller has ruled out JSON, delimited and regex patterns).
    pub fn parse(pattern: &str) -> Result<Self, FilterError> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut alternatives: Vec<Vec<Term>> = vec![Vec::new()];
        let mut i = 0;
        while i < chars.len() {
            if chars[i].is_whitespace() {
                i += 1;
                continue;
            }
            let mut optional = false;
            let mut exclude = false;
            if chars[i] == '?' {
                optional = true;
                i += 1;
            } else if chars[i] == '-' {
                exclude = true;
                i += 1;
                // `"ERROR" - "Exiting"`: a lone minus before a quoted phrase.
                let ws = chars[i..].iter().take_while(|c| c.is_whitespace()).count();
                if ws > 0 && chars.get(i + ws) == Some(&'"') {
                    i += ws;
                }
            }
            let (text, len) = if chars.get(i) == Some(&'"') {
                phrase(&chars, i)?
            } else {
                let len = chars[i..].iter().take_while(|c| !c.is_whitespace()).count();
                let word: String = chars[i..i + len].iter().collect();
                if word.is_empty() || !word.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    let start = i - usize::from(optional || exclude);
                    let shown: String = chars[start..i + len].iter().collect();
                    return Err(FilterError::InvalidCharacters(shown));
                }
                (word, len)
            };
            i += len;
            if optional
                && alternatives
                    .last()
                    .is_some_and(|alternative| !alternative.is_empty())
            {
                alternatives.push(Vec::new());
            }
            if let Some(alternative) = alternatives.last_mut() {
                alternative.push(Term { text, exclude });
            }
        }
        alternatives.retain(|a| !a.is_empty());
        Ok(TextPattern { alternatives })
    }

    /// True when every message matches (no terms, or only blank phrases).
    pub fn matches_everything(&self) -> bool {
        self.alternatives.is_empty()
            || self
                .alternatives
                .iter()
                .any(|a| a.iter().all(Term::is_blank))
    }

    pub fn matches(&self, message: &str) -> bool {
        self.alternatives.is_empty()
            || self
                .alternatives
                .iter()
                .any(|a| a.iter().all(|t| t.holds(message)))
    }

    /// Terms every alternative requires.
    pub fn required_substrings(&self) -> Vec<String> {
        let required = |a: &Vec<Term>| -> Vec<String> {
            a.iter()
                .filter(|t| !t.exclude && !t.is_blank())
                .map(|t| t.text.clone())
                .collect()
        };
        let mut alternatives = self.alternatives.iter();
        let Some(first) = alternatives.next() else {
            return Vec::new();
        };
        let mut common = required(first);
        for a in alternatives {
            let other = required(a);
            common.retain(|t| other.contains(t));
        }
        let mut seen = Vec::new();
        common.retain(|t| {
            let new = !seen.contains(t);
            seen.push(t.clone());
            new
        });
        common
    }
}

/// A double-quoted phrase starting at `start`: its text and its length in characters.
fn phrase(chars: &[char], start: usize) -> Result<(String, usize), FilterError> {
    let mut text = String::new();
    let mut i = start + 1;
    loop {
        match chars.get(i) {
            None => return Err(FilterError::syntax("unterminated quoted phrase")),
            Some('"') => break,
            Some('\\') if matches!(chars.get(i + 1), Some('"' | '\\')) => {
                text.push(chars[i + 1]);
                i += 2;
            }
            Some(&c) => {
                text.push(c);
                i += 1;
            }
        }
    }
    if text.is_empty() {
        return Err(FilterError::InvalidCharacters("\"\"".into()));
    }
    Ok((text, i + 1 - start))
}

#[cfg(test)]
mod tests;
