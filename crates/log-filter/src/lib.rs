//! CloudWatch Logs filter patterns (the `filterPattern` of `FilterLogEvents`, metric and
//! subscription filters and Live Tail), free of I/O so the API layer and the store can share them.
//!
//! A pattern is one of, decided by how it starts (surrounding whitespace ignored):
//!
//! - empty: matches every event;
//! - `{ … }`: a JSON pattern over events whose message is a JSON object ([`json`]);
//! - `[ … ]`: a space-delimited pattern over the fields of the message ([`delimited`]);
//! - `%…%`: a standalone regular expression searched for in the message ([`regex`]);
//! - anything else: unstructured terms and "exact phrases", `?alternatives` and `-exclusions`
//!   ([`text`]).
//!
//! Matching is case-sensitive throughout, as AWS documents. Invalid patterns are rejected at
//! [`FilterPattern::parse`] with AWS' `InvalidParameterException` messages ([`FilterError`]).
//!
//! [`FilterPattern::required_substrings`] lists plain substrings every matching message contains,
//! so a store can discard most non-matching events before they are decoded (e.g. with SQL
//! `instr`); the pattern itself must still be applied to what passes.
//!
//! ```
//! use nimbus_log_filter::FilterPattern;
//!
//! let p = FilterPattern::parse("ERROR -ARGUMENTS")?;
//! assert!(p.matches("[ERROR 400] BAD REQUEST"));
//! assert!(!p.matches("[ERROR 419] MISSING ARGUMENTS"));
//! assert_eq!(p.required_substrings(), vec!["ERROR"]);
//!
//! let p = FilterPattern::parse(r#"{ $.eventType = "UpdateTrail" && $.latency > 100 }"#)?;
//! assert!(p.matches(r#"{"eventType": "UpdateTrail", "latency": 250}"#));
//!
//! let p = FilterPattern::parse("[ip, user, ..., status_code = 4*, bytes > 1000]")?;
//! assert!(p.matches(r#"127.0.0.1 frank [10/Oct/2000:13:25:15 -0700] "GET /x HTTP/1.0" 404 1534"#));
//!
//! let p = FilterPattern::parse(r"%\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}%")?;
//! assert!(p.matches("client 10.0.0.12 connected"));
//!
//! let err = FilterPattern::parse("user@example.com").unwrap_err();
//! assert_eq!(err.to_string(), "Invalid character(s) in term 'user@example.com'");
//! # Ok::<(), nimbus_log_filter::FilterError>(())
//! ```

pub mod delimited;
pub mod json;
mod lex;
pub mod regex;
pub mod text;
mod value;

/// The most regular expressions a JSON or space-delimited pattern may contain, as AWS documents.
pub const MAX_REGEX_PER_PATTERN: usize = 2;

/// An invalid filter pattern. `Display` is the message AWS returns with
/// `InvalidParameterException`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// A term that would need double quotes (or, in a regular expression, a character outside
    /// the documented set). The term is shown as written, quotes and `%` included.
    #[error("Invalid character(s) in term '{0}'")]
    InvalidCharacters(String),
    /// A JSON or space-delimited pattern without its closing brace or bracket.
    #[error("If a filter pattern starts with '{open}' it must end with '{close}'")]
    Unclosed { open: char, close: char },
    /// Any other syntax error. AWS says only "Invalid filter pattern"; [`FilterError::detail`]
    /// tells what was wrong, for logs.
    #[error("Invalid filter pattern")]
    Syntax(String),
}

impl FilterError {
    /// What exactly was wrong (for a syntax error, more than AWS' message says).
    pub fn detail(&self) -> String {
        match self {
            FilterError::Syntax(d) => d.clone(),
            other => other.to_string(),
        }
    }

    pub(crate) fn syntax(detail: impl Into<String>) -> Self {
        FilterError::Syntax(detail.into())
    }
}

/// A parsed filter pattern.
#[derive(Debug, Clone)]
pub struct FilterPattern {
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    All,
    Text(text::TextPattern),
    Regex(regex::Regex),
    Json(json::JsonPattern),
    Delimited(delimited::DelimitedPattern),
}

impl FilterPattern {
    /// Parses a pattern, with AWS' validation.
    pub fn parse(pattern: &str) -> Result<Self, FilterError> {
        let p = pattern.trim();
        let kind = if p.is_empty() {
            Kind::All
        } else if p.starts_with('{') {
            Kind::Json(json::JsonPattern::parse(p)?)
        } else if p.starts_with('[') {
            Kind::Delimited(delimited::DelimitedPattern::parse(p)?)
        } else if p.len() >= 2 && p.starts_with('%') && p.ends_with('%') {
            Kind::Regex(regex::Regex::parse(&p[1..p.len() - 1], p)?)
        } else {
            let t = text::TextPattern::parse(p)?;
            if t.matches_everything() {
                Kind::All
            } else {
                Kind::Text(t)
            }
        };
        Ok(FilterPattern { kind })
    }

    /// The pattern that matches every event (an empty `filterPattern`).
    pub fn all() -> Self {
        FilterPattern { kind: Kind::All }
    }

    /// Whether `message` (one log event's message) matches.
    pub fn matches(&self, message: &str) -> bool {
        match &self.kind {
            Kind::All => true,
            Kind::Text(t) => t.matches(message),
            Kind::Regex(r) => r.is_match(message),
            Kind::Json(j) => j.matches(message),
            Kind::Delimited(d) => d.matches(message),
        }
    }

    /// True when every message matches, so a caller need not test events one by one.
    pub fn matches_everything(&self) -> bool {
        matches!(self.kind, Kind::All)
    }

    /// Plain substrings every matching message contains (case-sensitive): a pre-filter a store
    /// can apply before [`FilterPattern::matches`]. Empty when nothing is certain.
    pub fn required_substrings(&self) -> Vec<String> {
        match &self.kind {
            Kind::All | Kind::Delimited(_) => Vec::new(),
            Kind::Text(t) => t.required_substrings(),
            Kind::Regex(r) => r.required_literal().into_iter().collect(),
            // Selectors start at the root object.
            Kind::Json(_) => vec!["{".to_owned()],
        }
    }
}

#[cfg(test)]
mod tests;
