//! HTTP API routes: route keys as `CreateRoute` accepts them, and the route a request selects.
//!
//! A route key is `$default` or `<METHOD> <path>`: one of `GET POST PUT PATCH DELETE HEAD
//! OPTIONS ANY`, one space, and a path that starts with `/`. Path segments are literals, `{name}`
//! (one segment) or `{name+}` (greedy: the rest of the path), a variable always filling a whole
//! segment, a greedy one only as the last segment, and no name twice.
//!
//! Selection follows the documented priorities: a full match of route and method, then a match
//! with a greedy variable, then `$default`; `ANY` matches every method "you haven't defined for a
//! resource"; path variables match one segment and capture it percent-decoded (API Gateway
//! decodes parameters before passing them on), a greedy variable captures the rest of the path
//! without its leading `/`.
//!
//! Choices made where AWS documents nothing (the test tool AWS publishes for Lambda emulates
//! the same choices unless said otherwise):
//!
//! - Specificity is decided segment by segment from the left — a literal beats a variable, which
//!   beats a greedy variable — like a resource tree; only among equally specific paths does a
//!   method-specific route beat `ANY`. So `ANY /pets/dog` wins over `GET /pets/{id}` for
//!   `GET /pets/dog`.
//! - Trailing slashes are significant: `/pets/` does not match `GET /pets` (and a route path
//!   cannot end with `/`, as AWS rejects). A greedy variable does match an empty rest: `/pets/`
//!   matches `/pets/{proxy+}` with `proxy` = `""`, and `/` matches `/{proxy+}`.
//! - A variable does not match an empty segment (`/pets/` does not match `/pets/{id}`).
//! - Literal segments compare after percent-decoding both sides, case-sensitively (the test tool
//!   ignores case; AWS paths are case-sensitive elsewhere). An encoded `/` (`%2F`) stays inside
//!   its segment.
//! - Literal segments may hold the characters a URL path may hold (RFC 3986 `pchar`), except
//!   `{` and `}`; variable names are letters, digits, `_`, `-`, `.` and `:`.
//! - Error messages follow AWS' `BadRequestException` style but are not AWS' exact texts, which
//!   are not published.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use crate::percent;

#[cfg(test)]
mod tests;

/// A valid HTTP API route key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RouteKey {
    key: String,
    route: Option<Route>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Route {
    method: String,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Segment {
    /// Percent-decoded.
    Literal(String),
    Variable(String),
    Greedy(String),
}

impl Segment {
    /// Lower is more specific.
    fn rank(&self) -> u8 {
        match self {
            Segment::Literal(_) => 0,
            Segment::Variable(_) => 1,
            Segment::Greedy(_) => 2,
        }
    }
}

/// Why a route key is not valid. `Display` reads like API Gateway's `BadRequestException`
/// message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteKeyError {
    #[error("Route key is required.")]
    Empty,
    #[error(
        "Invalid route key: {0}. A route key must be $default or an HTTP method followed by a \
         single space and a resource path, such as GET /pets."
    )]
    Format(String),
    #[error(
        "Invalid HTTP method {0} in route key. Supported methods are ANY, DELETE, GET, HEAD, \
         OPTIONS, PATCH, POST and PUT."
    )]
    Method(String),
    #[error("Invalid resource path {path} in route key: {reason}.")]
    Path { path: String, reason: &'static str },
}

const METHODS: [&str; 8] = [
    "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY",
];

impl RouteKey {
    /// Validates a route key as `CreateRoute` does.
    pub fn parse(s: &str) -> Result<RouteKey, RouteKeyError> {
        if s.is_empty() {
            return Err(RouteKeyError::Empty);
        }
        if s == "$default" {
            return Ok(RouteKey {
                key: s.to_owned(),
                route: None,
            });
        }
        let Some((method, path)) = s.split_once(' ') else {
            return Err(RouteKeyError::Format(s.to_owned()));
        };
        if method.is_empty() || path.is_empty() || path.starts_with(' ') {
            return Err(RouteKeyError::Format(s.to_owned()));
        }
        if !METHODS.contains(&method) {
            return Err(RouteKeyError::Method(method.to_owned()));
        }
        let segments = parse_path(path)?;
        Ok(RouteKey {
            key: s.to_owned(),
            route: Some(Route {
                method: method.to_owned(),
                segments,
            }),
        })
    }

    /// The key as given: `"$default"`, `"GET /pets/{id}"`.
    pub fn as_str(&self) -> &str {
        &self.key
    }

    /// Whether this is the `$default` route.
    pub fn is_default(&self) -> bool {
        self.route.is_none()
    }

    /// The method (`"ANY"` included); `None` for `$default`.
    pub fn method(&self) -> Option<&str> {
        self.route.as_ref().map(|r| r.method.as_str())
    }

    /// The resource path (`"/pets/{id}"`); `None` for `$default`.
    pub fn path(&self) -> Option<&str> {
        self.route
            .as_ref()
            .and_then(|_| self.key.split_once(' '))
            .map(|(_, path)| path)
    }
}

impl fmt::Display for RouteKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key)
    }
}

impl FromStr for RouteKey {
    type Err = RouteKeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RouteKey::parse(s)
    }
}

fn parse_path(path: &str) -> Result<Vec<Segment>, RouteKeyError> {
    let invalid = |reason| {
        Err(RouteKeyError::Path {
            path: path.to_owned(),
            reason,
        })
    };
    let Some(rest) = path.strip_prefix('/') else {
        return invalid("the path must start with /");
    };
    if rest.is_empty() {
        return Ok(vec![Segment::Literal(String::new())]);
    }
    if rest.ends_with('/') {
        return invalid("the path must not end with /");
    }
    let raw: Vec<&str> = rest.split('/').collect();
    let mut segments = Vec::with_capacity(raw.len());
    let mut names = BTreeSet::new();
    for (i, part) in raw.iter().enumerate() {
        if part.is_empty() {
            return invalid("the path must not contain empty segments (//)");
        }
        let segment = if let Some(inner) = part.strip_prefix('{') {
            let Some(inner) = inner.strip_suffix('}') else {
                return invalid("a path variable must fill a whole segment, as {name} or {name+}");
            };
            let (name, greedy) = match inner.strip_suffix('+') {
                Some(name) => (name, true),
                None => (inner, false),
            };
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-.:".contains(&b))
            {
                return invalid(
                    "a path variable name may contain only letters, digits, _, -, . and :",
                );
            }
            if greedy && i + 1 != raw.len() {
                return invalid("a greedy path variable {name+} must be the last segment");
            }
            if !names.insert(name) {
                return invalid("a path variable name must not be used twice");
            }
            if greedy {
                Segment::Greedy(name.to_owned())
            } else {
                Segment::Variable(name.to_owned())
            }
        } else {
            if part.contains(['{', '}']) {
                return invalid("a path variable must fill a whole segment, as {name} or {name+}");
            }
            if !part.bytes().all(is_path_char) {
                return invalid("the path contains characters a URL path cannot hold");
            }
            Segment::Literal(percent::decode(part))
        };
        segments.push(segment);
    }
    Ok(segments)
}

/// RFC 3986 `pchar` (unreserved, sub-delims, `:`, `@`) plus `%` of percent-encodings.
fn is_path_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@%".contains(&b)
}

/// The route a request selects: its index in `routes` and its path parameters (percent-decoded;
/// a greedy variable holds the rest of the path without the leading `/`). `path` is the request
/// path as received (percent-encoded), without the query string and without a stage prefix.
/// `None` when nothing matches: AWS then answers `404 {"message":"Not Found"}`.
pub fn select_route(
    routes: &[RouteKey],
    method: &str,
    path: &str,
) -> Option<(usize, BTreeMap<String, String>)> {
    let path = path.split(['?', '#']).next().unwrap_or("");
    let request: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
    let mut best: Option<Candidate> = None;
    for (index, key) in routes.iter().enumerate() {
        let Some(route) = &key.route else {
            continue;
        };
        let any = route.method == "ANY";
        if !any && route.method != method {
            continue;
        }
        let Some(params) = match_segments(&route.segments, &request) else {
            continue;
        };
        // Lower sorts first: per-segment ranks from the left, then method-specific before ANY.
        let specificity = (route.segments.iter().map(Segment::rank).collect(), any);
        if best.as_ref().is_none_or(|b| specificity < b.specificity) {
            best = Some(Candidate {
                specificity,
                index,
                params,
            });
        }
    }
    if let Some(best) = best {
        return Some((best.index, best.params));
    }
    routes
        .iter()
        .position(RouteKey::is_default)
        .map(|index| (index, BTreeMap::new()))
}

/// A route that matches, while the best one is sought.
struct Candidate {
    specificity: (Vec<u8>, bool),
    index: usize,
    params: BTreeMap<String, String>,
}

/// The parameters of a route whose segments match the request's (raw) segments.
fn match_segments(segments: &[Segment], request: &[&str]) -> Option<BTreeMap<String, String>> {
    let mut params = BTreeMap::new();
    for (i, segment) in segments.iter().enumerate() {
        match segment {
            Segment::Greedy(name) => {
                let rest = request.get(i..).filter(|rest| !rest.is_empty())?;
                params.insert(name.clone(), percent::decode(&rest.join("/")));
                return Some(params);
            }
            Segment::Variable(name) => {
                let part = request.get(i).filter(|part| !part.is_empty())?;
                params.insert(name.clone(), percent::decode(part));
            }
            Segment::Literal(literal) => {
                let part = request.get(i)?;
                if percent::decode(part) != *literal {
                    return None;
                }
            }
        }
    }
    (segments.len() == request.len()).then_some(params)
}
