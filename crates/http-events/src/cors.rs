//! CORS as the Function URL and HTTP API front ends apply it.
//!
//! From the documentation: CORS headers are returned only to a request with an `Origin` header;
//! a preflight is an `OPTIONS` request with `Origin` and `Access-Control-Request-Method`, which
//! the front end answers itself; an allowed origin is `*` (any), an exact origin, or a pattern
//! with `*` (`https://*` allows every origin that begins with `https://`); CORS headers the
//! function returns are ignored (HTTP APIs) or overridden (Function URLs) by the configured ones.
//!
//! Choices made where AWS documents nothing:
//!
//! - The preflight answer is `204 No Content`, with or without CORS headers: an origin that is not
//!   allowed gets the same answer without any, and the browser refuses. The requested method and
//!   headers are not checked against the configuration; the lists are returned and the browser
//!   decides.
//! - Origins compare case-insensitively. `Access-Control-Allow-Origin` is `*` when `*` is allowed
//!   and credentials are not; otherwise it echoes the request's origin and `Vary: Origin` is added.
//!   (Browsers reject `*` together with credentials, so echoing is the only working answer.)
//! - List headers are joined with `,`; `Access-Control-Max-Age` is sent whenever `max_age` is set
//!   (`0` included); `Access-Control-Allow-Credentials` only as `true`.
//! - [`apply_cors`] removes every `Access-Control-Allow-*`, `-Expose-Headers` and `-Max-Age`
//!   header of the function's response, whether or not it then adds its own.
//! - HTTP APIs route a request before answering its preflight: an `OPTIONS` request that a route
//!   matches — an `OPTIONS` or `ANY` route, or `$default` — goes to that route (AWS documents this
//!   for `$default`). Callers should answer with [`preflight`] only when no route matches;
//!   Function URLs always answer preflights themselves.

use http::HeaderMap;

use crate::response::HttpResponse;

#[cfg(test)]
mod tests;

/// A CORS configuration: Lambda's `Cors` or API Gateway's `CorsConfiguration`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cors {
    pub allow_origins: Vec<String>,
    pub allow_methods: Vec<String>,
    pub allow_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub max_age: Option<i64>,
    pub allow_credentials: bool,
}

const ALLOW_ORIGIN: &str = "access-control-allow-origin";
const ALLOW_METHODS: &str = "access-control-allow-methods";
const ALLOW_HEADERS: &str = "access-control-allow-headers";
const ALLOW_CREDENTIALS: &str = "access-control-allow-credentials";
const EXPOSE_HEADERS: &str = "access-control-expose-headers";
const MAX_AGE: &str = "access-control-max-age";

/// The answer to a CORS preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`),
/// given without invoking the function; `None` when the request is not a preflight.
pub fn preflight(cors: &Cors, method: &str, headers: &HeaderMap) -> Option<HttpResponse> {
    if method != "OPTIONS" || !headers.contains_key(http::header::ACCESS_CONTROL_REQUEST_METHOD) {
        return None;
    }
    let origin = origin(headers)?;
    let mut response = HttpResponse {
        status: 204,
        headers: Vec::new(),
        body: Vec::new(),
    };
    let Some(allow_origin) = allowed_origin(cors, &origin) else {
        return Some(response);
    };
    let h = &mut response.headers;
    if cors.allow_credentials {
        h.push((ALLOW_CREDENTIALS.to_owned(), "true".to_owned()));
    }
    if !cors.allow_headers.is_empty() {
        h.push((ALLOW_HEADERS.to_owned(), cors.allow_headers.join(",")));
    }
    if !cors.allow_methods.is_empty() {
        h.push((ALLOW_METHODS.to_owned(), cors.allow_methods.join(",")));
    }
    let echoed = allow_origin != "*";
    h.push((ALLOW_ORIGIN.to_owned(), allow_origin));
    if let Some(max_age) = cors.max_age {
        h.push((MAX_AGE.to_owned(), max_age.to_string()));
    }
    if echoed {
        h.push(("vary".to_owned(), "Origin".to_owned()));
    }
    Some(response)
}

/// Puts the configured CORS headers on an actual response: `Access-Control-Allow-Origin`,
/// `-Expose-Headers` and `-Allow-Credentials` (and `Vary: Origin` when the origin is echoed) when
/// the request's origin is allowed; the function's own CORS headers are removed in every case.
pub fn apply_cors(cors: &Cors, request_headers: &HeaderMap, resp: &mut HttpResponse) {
    resp.headers.retain(|(name, _)| !is_cors_header(name));
    let Some(origin) = origin(request_headers) else {
        return;
    };
    let Some(allow_origin) = allowed_origin(cors, &origin) else {
        return;
    };
    let echoed = allow_origin != "*";
    resp.headers.push((ALLOW_ORIGIN.to_owned(), allow_origin));
    if !cors.expose_headers.is_empty() {
        resp.headers
            .push((EXPOSE_HEADERS.to_owned(), cors.expose_headers.join(",")));
    }
    if cors.allow_credentials {
        resp.headers
            .push((ALLOW_CREDENTIALS.to_owned(), "true".to_owned()));
    }
    if echoed {
        add_vary_origin(resp);
    }
}

fn is_cors_header(name: &str) -> bool {
    [
        ALLOW_ORIGIN,
        ALLOW_METHODS,
        ALLOW_HEADERS,
        ALLOW_CREDENTIALS,
        EXPOSE_HEADERS,
        MAX_AGE,
    ]
    .iter()
    .any(|cors| name.eq_ignore_ascii_case(cors))
}

/// The request's `Origin`, if it has one that is text.
fn origin(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(http::header::ORIGIN)?.to_str().ok()?.trim();
    Some(value.to_owned())
}

/// The `Access-Control-Allow-Origin` value for an origin, or `None` if it is not allowed.
fn allowed_origin(cors: &Cors, origin: &str) -> Option<String> {
    let mut allowed = cors
        .allow_origins
        .iter()
        .map(|o| o.trim())
        .filter(|o| origin_matches(o, origin));
    let first = allowed.next()?;
    let any = first == "*" || allowed.any(|o| o == "*");
    Some(if any && !cors.allow_credentials {
        "*".to_owned()
    } else {
        origin.to_owned()
    })
}

/// Whether an allowed-origin entry admits an origin: `*` matches any run of characters, and the
/// comparison ignores ASCII case.
fn origin_matches(pattern: &str, origin: &str) -> bool {
    let pattern = pattern.to_ascii_lowercase();
    let origin = origin.to_ascii_lowercase();
    let mut parts = pattern.split('*');
    let Some(first) = parts.next() else {
        return false;
    };
    let Some(mut rest) = origin.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        // No `*` at all: an exact comparison.
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

fn add_vary_origin(resp: &mut HttpResponse) {
    let existing = resp
        .headers
        .iter_mut()
        .find(|(name, _)| name.eq_ignore_ascii_case("vary"));
    match existing {
        Some((_, value)) => {
            let covered = value
                .split(',')
                .map(str::trim)
                .any(|v| v == "*" || v.eq_ignore_ascii_case("origin"));
            if !covered {
                value.push_str(", Origin");
            }
        }
        None => resp.headers.push(("vary".to_owned(), "Origin".to_owned())),
    }
}
