//! What the front end makes of a function's output.
//!
//! Payload format 2.0 (Function URLs, HTTP APIs), as documented and as LocalStack recorded it
//! against a real Function URL:
//!
//! - A JSON object with a `statusCode` member is the structured answer: `statusCode` (a number,
//!   or a numeric string such as `"418"`), `headers` (name → value), `cookies` (each one a
//!   `Set-Cookie` header), `body` and `isBase64Encoded` (the body is base64 and is decoded).
//!   Without a `content-type` header the response gets `content-type: application/json`.
//! - Any other valid JSON is the shortcut: status 200, `content-type: application/json`, and the
//!   function's output as the body — a JSON string is sent without its quotes (`"hello"` gives
//!   `hello`), everything else (objects without `statusCode`, arrays, numbers, booleans, `null`)
//!   byte for byte as the function returned it.
//!
//! Payload format 1.0: the function must return an object with `statusCode`; `headers` and
//! `multiValueHeaders` are merged, a name present in both taking the `multiValueHeaders` values
//! (API Gateway's documented merge); `cookies` means nothing in 1.0.
//!
//! Choices made where AWS documents nothing:
//!
//! - Output that is not JSON at all is an error for both formats (HTTP APIs answer 502; what
//!   Function URLs do is not documented, and Nimbus answers the same 502).
//! - A `body` that is a JSON value other than a string is sent as its JSON text in 2.0 (recorded
//!   against AWS for objects), and is an error in 1.0 (REST APIs reject it as a malformed proxy
//!   response).
//! - Header values may be strings, numbers or booleans (sent as their JSON text); `null` values
//!   are skipped; a name or value that HTTP cannot carry is an error. `multiValueHeaders` is
//!   ignored in 2.0.
//! - The status must lie in 200–599; 1xx statuses cannot end an exchange.

use std::collections::BTreeSet;

use base64::Engine;
use serde_json::{Map, Value};

#[cfg(test)]
mod tests;

/// An HTTP response ready to send. `Set-Cookie` entries are ordinary headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first value of a header, its name compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header, in order, its name compared case-insensitively.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why a function's output cannot become a response; the caller answers
/// `502 {"message":"Internal Server Error"}`. `Display` is a short reason for logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    #[error("the function's response is not valid JSON")]
    InvalidJson,
    #[error("the function's response is not a JSON object")]
    NotAnObject,
    #[error("the function's response has no statusCode")]
    MissingStatusCode,
    #[error("statusCode {0} is not a valid HTTP status")]
    InvalidStatusCode(String),
    #[error("header {name:?} is not valid: {reason}")]
    InvalidHeader { name: String, reason: String },
    #[error("{0} must be an object")]
    InvalidHeaders(&'static str),
    #[error("cookies must be an array of strings")]
    InvalidCookies,
    #[error("body must be a string")]
    InvalidBody,
    #[error("body is not valid base64 although isBase64Encoded is true")]
    InvalidBase64,
}

const JSON: &str = "application/json";

/// The 2.0 mapping (Function URLs and HTTP APIs).
pub fn response_v2(function_output: &[u8]) -> Result<HttpResponse, ResponseError> {
    let value: Value =
        serde_json::from_slice(function_output).map_err(|_| ResponseError::InvalidJson)?;
    let object = match value {
        Value::Object(object) if object.contains_key("statusCode") => object,
        Value::String(text) => return Ok(shortcut(text.into_bytes())),
        _ => return Ok(shortcut(function_output.to_vec())),
    };
    let status = status_code(&object)?;
    let mut headers = single_headers(&object)?;
    for cookie in cookies(&object)? {
        headers.push((
            "set-cookie".to_owned(),
            checked_value("set-cookie", cookie)?,
        ));
    }
    let body = match object.get("body") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(text)) => decode_body(text, is_base64(&object))?,
        Some(other) => other.to_string().into_bytes(),
    };
    Ok(finish(status, headers, body))
}

/// The 1.0 mapping (HTTP APIs whose integration uses payload format 1.0).
pub fn response_v1(function_output: &[u8]) -> Result<HttpResponse, ResponseError> {
    let value: Value =
        serde_json::from_slice(function_output).map_err(|_| ResponseError::InvalidJson)?;
    let Value::Object(object) = value else {
        return Err(ResponseError::NotAnObject);
    };
    if !object.contains_key("statusCode") {
        return Err(ResponseError::MissingStatusCode);
    }
    let status = status_code(&object)?;
    let multi = multi_value_headers(&object)?;
    let overridden: BTreeSet<String> = multi
        .iter()
        .map(|(name, _)| name.to_ascii_lowercase())
        .collect();
    let mut headers: Vec<(String, String)> = single_headers(&object)?
        .into_iter()
        .filter(|(name, _)| !overridden.contains(&name.to_ascii_lowercase()))
        .collect();
    headers.extend(multi);
    let body = match object.get("body") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(text)) => decode_body(text, is_base64(&object))?,
        Some(_) => return Err(ResponseError::InvalidBody),
    };
    Ok(finish(status, headers, body))
}

fn shortcut(body: Vec<u8>) -> HttpResponse {
    HttpResponse {
        status: 200,
        headers: vec![("content-type".to_owned(), JSON.to_owned())],
        body,
    }
}

fn finish(status: u16, mut headers: Vec<(String, String)>, body: Vec<u8>) -> HttpResponse {
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
    {
        headers.insert(0, ("content-type".to_owned(), JSON.to_owned()));
    }
    HttpResponse {
        status,
        headers,
        body,
    }
}

fn status_code(object: &Map<String, Value>) -> Result<u16, ResponseError> {
    let raw = object.get("statusCode").unwrap_or(&Value::Null);
    let parsed = match raw {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                .map(|f| f as u64)
        }),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse::<u64>().ok()
        }
        _ => None,
    };
    match parsed {
        Some(code @ 200..=599) => Ok(code as u16),
        _ => Err(ResponseError::InvalidStatusCode(raw.to_string())),
    }
}

fn is_base64(object: &Map<String, Value>) -> bool {
    matches!(object.get("isBase64Encoded"), Some(Value::Bool(true)))
}

fn decode_body(text: &str, base64: bool) -> Result<Vec<u8>, ResponseError> {
    if !base64 {
        return Ok(text.as_bytes().to_vec());
    }
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| ResponseError::InvalidBase64)
}

/// `headers`: name → scalar.
fn single_headers(object: &Map<String, Value>) -> Result<Vec<(String, String)>, ResponseError> {
    let headers = match object.get("headers") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(headers)) => headers,
        Some(_) => return Err(ResponseError::InvalidHeaders("headers")),
    };
    let mut out = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        if let Some(value) = scalar(name, value)? {
            out.push((checked_name(name)?, checked_value(name, value)?));
        }
    }
    Ok(out)
}

/// `multiValueHeaders`: name → array of scalars.
fn multi_value_headers(
    object: &Map<String, Value>,
) -> Result<Vec<(String, String)>, ResponseError> {
    let headers = match object.get("multiValueHeaders") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(headers)) => headers,
        Some(_) => return Err(ResponseError::InvalidHeaders("multiValueHeaders")),
    };
    let mut out = Vec::new();
    for (name, values) in headers {
        let values = match values {
            Value::Null => continue,
            Value::Array(values) => values,
            _ => {
                return Err(ResponseError::InvalidHeader {
                    name: name.clone(),
                    reason: "multiValueHeaders values must be arrays".into(),
                })
            }
        };
        let name_checked = checked_name(name)?;
        for value in values {
            if let Some(value) = scalar(name, value)? {
                out.push((name_checked.clone(), checked_value(name, value)?));
            }
        }
    }
    Ok(out)
}

fn cookies(object: &Map<String, Value>) -> Result<Vec<String>, ResponseError> {
    match object.get("cookies") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_owned)
                    .ok_or(ResponseError::InvalidCookies)
            })
            .collect(),
        Some(_) => Err(ResponseError::InvalidCookies),
    }
}

/// A header value given as JSON: strings as they are, numbers and booleans as their JSON text,
/// `null` skipped.
fn scalar(name: &str, value: &Value) -> Result<Option<String>, ResponseError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        Value::Number(_) | Value::Bool(_) => Ok(Some(value.to_string())),
        Value::Array(_) | Value::Object(_) => Err(ResponseError::InvalidHeader {
            name: name.to_owned(),
            reason: "a header value must be a string, number or boolean".into(),
        }),
    }
}

fn checked_name(name: &str) -> Result<String, ResponseError> {
    http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| ResponseError::InvalidHeader {
        name: name.to_owned(),
        reason: "not a valid header name".into(),
    })?;
    Ok(name.to_owned())
}

fn checked_value(name: &str, value: String) -> Result<String, ResponseError> {
    http::HeaderValue::from_bytes(value.as_bytes()).map_err(|_| ResponseError::InvalidHeader {
        name: name.to_owned(),
        reason: "the value contains characters a header cannot carry".into(),
    })?;
    Ok(value)
}
