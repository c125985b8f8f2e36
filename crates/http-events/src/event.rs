//! The event an HTTP trigger hands the function: payload format 2.0 (Function URLs and HTTP
//! APIs) and 1.0 (HTTP APIs whose integration asks for it).
//!
//! What follows AWS' documentation and captured events:
//!
//! - 2.0: header names lower-cased, repeated headers joined with `,`; every `Cookie` header is
//!   removed from `headers` and split on `;` into `cookies`; repeated query parameters joined with
//!   `,` in `queryStringParameters`, names and values decoded (`%XX`, and `+` as a space, as API
//!   Gateway does); `rawQueryString` as received. `cookies`, `queryStringParameters`,
//!   `pathParameters`, `stageVariables`, `requestContext.authorizer` and `body` are left out when
//!   there is nothing to put in them, as in AWS' captured events (the documentation's `null`s and
//!   an absent member read the same in every runtime library).
//! - 1.0: `headers`/`queryStringParameters` hold one value per name next to the
//!   `multiValue…` lists — the last header value and the first query value, exactly as the HTTP
//!   API documentation's 1.0 example shows; members with nothing in them are `null`, and
//!   `requestContext.identity` has AWS' full set of (mostly `null`) members.
//! - A body travels as text unless its content type is binary ([`is_binary_content_type`]), in
//!   which case it is base64 with `isBase64Encoded: true`.
//!
//! Choices made where AWS documents nothing:
//!
//! - A text content type whose body is not valid UTF-8 is sent base64 too, so no byte is lost.
//! - `rawPath`, `requestContext.http.path`, 1.0's `path` and `requestContext.path` are
//!   [`HttpRequest::raw_path`] unchanged. Function URLs deliver the path percent-encoded, as
//!   received; HTTP APIs are reported to deliver it decoded, which loses information (an encoded
//!   `/` or `?`); Nimbus keeps the encoded form for both.
//! - `userAgent` is the `User-Agent` header, or `""` without one. The `x-forwarded-*` and
//!   `x-amzn-trace-id` headers AWS adds are the caller's to add to [`HttpRequest::headers`].

use std::borrow::Cow;
use std::collections::BTreeMap;

use base64::Engine;
use http::HeaderMap;
use serde_json::{json, Map, Value};
use time::macros::format_description;
use time::OffsetDateTime;

use crate::percent;

#[cfg(test)]
mod tests;

/// The parts of an HTTP request an event is made of.
#[derive(Debug, Clone, Copy)]
pub struct HttpRequest<'a> {
    /// The method as received, e.g. `"GET"`.
    pub method: &'a str,
    /// The path as received, percent-encoded, e.g. `"/my/path%20x"`; for an HTTP API stage other
    /// than `$default`, AWS keeps the stage's segment in it (`/prod/pets`).
    pub raw_path: &'a str,
    /// The query string without `?`, as received; may be empty.
    pub raw_query: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub source_ip: &'a str,
    /// e.g. `"HTTP/1.1"`.
    pub protocol: &'a str,
    /// When the request arrived, in milliseconds since the Unix epoch.
    pub time_ms: i64,
    pub request_id: &'a str,
}

/// What differs between a Function URL and an HTTP API route.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestContext {
    pub account_id: String,
    /// The URL id or the API id.
    pub api_id: String,
    /// e.g. `"<id>.lambda-url.us-east-1.localhost"`, whatever the caller passes.
    pub domain_name: String,
    pub domain_prefix: String,
    /// `"$default"` for Function URLs.
    pub stage: String,
    /// `"$default"` for Function URLs, the route's key (`"GET /pets/{id}"`) for APIs.
    pub route_key: String,
    /// 1.0's `resource` and `requestContext.resourcePath`: the route's path (`"/pets/{id}"`), or
    /// what the caller chooses for `$default`.
    pub resource_path: String,
    /// Decoded path variables ([`crate::select_route`] gives them); `None` or empty for none.
    pub path_parameters: Option<BTreeMap<String, String>>,
    /// `None` or empty for none.
    pub stage_variables: Option<BTreeMap<String, String>>,
    /// `requestContext.authorizer` as is (`{"iam": {…}}`, `{"jwt": {…}}`, `{"lambda": {…}}`).
    pub authorizer: Option<Value>,
}

/// Payload format 2.0, as Function URLs and HTTP APIs build it.
pub fn event_v2(req: &HttpRequest, ctx: &RequestContext) -> Value {
    let mut headers = Map::new();
    let mut cookies = Vec::new();
    for name in req.headers.keys() {
        let values: Vec<Cow<str>> = req
            .headers
            .get_all(name)
            .iter()
            .map(|v| text(v.as_bytes()))
            .collect();
        if name == http::header::COOKIE {
            cookies.extend(values.iter().flat_map(|v| split_cookies(v)));
        } else {
            headers.insert(name.as_str().to_owned(), Value::String(values.join(",")));
        }
    }
    let mut query: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in parse_query(req.raw_query) {
        query.entry(name).or_default().push(value);
    }

    let mut context = Map::new();
    context.insert("accountId".into(), json!(ctx.account_id));
    context.insert("apiId".into(), json!(ctx.api_id));
    if let Some(authorizer) = &ctx.authorizer {
        context.insert("authorizer".into(), authorizer.clone());
    }
    context.insert("domainName".into(), json!(ctx.domain_name));
    context.insert("domainPrefix".into(), json!(ctx.domain_prefix));
    context.insert(
        "http".into(),
        json!({
            "method": req.method,
            "path": req.raw_path,
            "protocol": req.protocol,
            "sourceIp": req.source_ip,
            "userAgent": user_agent(req.headers),
        }),
    );
    context.insert("requestId".into(), json!(req.request_id));
    context.insert("routeKey".into(), json!(ctx.route_key));
    context.insert("stage".into(), json!(ctx.stage));
    context.insert("time".into(), json!(request_time(req.time_ms)));
    context.insert("timeEpoch".into(), json!(req.time_ms));

    let mut event = Map::new();
    event.insert("version".into(), json!("2.0"));
    event.insert("routeKey".into(), json!(ctx.route_key));
    event.insert("rawPath".into(), json!(req.raw_path));
    event.insert("rawQueryString".into(), json!(req.raw_query));
    if !cookies.is_empty() {
        event.insert("cookies".into(), json!(cookies));
    }
    event.insert("headers".into(), Value::Object(headers));
    if !query.is_empty() {
        let joined: Map<String, Value> = query
            .into_iter()
            .map(|(name, values)| (name, Value::String(values.join(","))))
            .collect();
        event.insert("queryStringParameters".into(), Value::Object(joined));
    }
    event.insert("requestContext".into(), Value::Object(context));
    let (body, is_base64) = encode_body(req);
    if let Some(body) = body {
        event.insert("body".into(), Value::String(body));
    }
    if let Some(params) = non_empty(&ctx.path_parameters) {
        event.insert("pathParameters".into(), json!(params));
    }
    event.insert("isBase64Encoded".into(), Value::Bool(is_base64));
    if let Some(variables) = non_empty(&ctx.stage_variables) {
        event.insert("stageVariables".into(), json!(variables));
    }
    Value::Object(event)
}

/// Payload format 1.0, as HTTP APIs build it for integrations that ask for it.
pub fn event_v1(req: &HttpRequest, ctx: &RequestContext) -> Value {
    let mut headers = Map::new();
    let mut multi_headers = Map::new();
    for name in req.headers.keys() {
        let values: Vec<Value> = req
            .headers
            .get_all(name)
            .iter()
            .map(|v| Value::String(text(v.as_bytes()).into_owned()))
            .collect();
        if let Some(last) = values.last() {
            headers.insert(name.as_str().to_owned(), last.clone());
        }
        multi_headers.insert(name.as_str().to_owned(), Value::Array(values));
    }
    let mut query = Map::new();
    let mut multi_query = Map::new();
    for (name, value) in parse_query(req.raw_query) {
        if !query.contains_key(&name) {
            query.insert(name.clone(), Value::String(value.clone()));
        }
        if let Value::Array(values) = multi_query
            .entry(name)
            .or_insert_with(|| Value::Array(Vec::new()))
        {
            values.push(Value::String(value));
        }
    }

    let mut context = Map::new();
    context.insert("accountId".into(), json!(ctx.account_id));
    context.insert("apiId".into(), json!(ctx.api_id));
    if let Some(authorizer) = &ctx.authorizer {
        context.insert("authorizer".into(), authorizer.clone());
    }
    context.insert("domainName".into(), json!(ctx.domain_name));
    context.insert("domainPrefix".into(), json!(ctx.domain_prefix));
    context.insert("extendedRequestId".into(), json!(req.request_id));
    context.insert("httpMethod".into(), json!(req.method));
    context.insert(
        "identity".into(),
        json!({
            "accessKey": null,
            "accountId": null,
            "caller": null,
            "cognitoAuthenticationProvider": null,
            "cognitoAuthenticationType": null,
            "cognitoIdentityId": null,
            "cognitoIdentityPoolId": null,
            "principalOrgId": null,
            "sourceIp": req.source_ip,
            "user": null,
            "userAgent": user_agent(req.headers),
            "userArn": null,
        }),
    );
    context.insert("path".into(), json!(req.raw_path));
    context.insert("protocol".into(), json!(req.protocol));
    context.insert("requestId".into(), json!(req.request_id));
    context.insert("requestTime".into(), json!(request_time(req.time_ms)));
    context.insert("requestTimeEpoch".into(), json!(req.time_ms));
    context.insert("resourceId".into(), Value::Null);
    context.insert("resourcePath".into(), json!(ctx.resource_path));
    context.insert("stage".into(), json!(ctx.stage));

    let (body, is_base64) = encode_body(req);
    let object_or_null = |map: Map<String, Value>| {
        if map.is_empty() {
            Value::Null
        } else {
            Value::Object(map)
        }
    };
    let mut event = Map::new();
    event.insert("version".into(), json!("1.0"));
    event.insert("resource".into(), json!(ctx.resource_path));
    event.insert("path".into(), json!(req.raw_path));
    event.insert("httpMethod".into(), json!(req.method));
    event.insert("headers".into(), object_or_null(headers));
    event.insert("multiValueHeaders".into(), object_or_null(multi_headers));
    event.insert("queryStringParameters".into(), object_or_null(query));
    event.insert(
        "multiValueQueryStringParameters".into(),
        object_or_null(multi_query),
    );
    event.insert("requestContext".into(), Value::Object(context));
    event.insert(
        "pathParameters".into(),
        non_empty(&ctx.path_parameters).map_or(Value::Null, |p| json!(p)),
    );
    event.insert(
        "stageVariables".into(),
        non_empty(&ctx.stage_variables).map_or(Value::Null, |v| json!(v)),
    );
    event.insert("body".into(), body.map_or(Value::Null, Value::String));
    event.insert("isBase64Encoded".into(), Value::Bool(is_base64));
    Value::Object(event)
}

/// Whether a request body with this `Content-Type` travels base64-encoded.
///
/// As recorded against AWS (the documentation only says "if the content type is binary"): only
/// `text/*`, `application/json`, `application/xml` and `application/javascript` are text —
/// parameters (`; charset=utf-8`) and case aside. Everything else is binary, including a missing
/// or empty content type, `application/x-www-form-urlencoded`, `multipart/form-data` and
/// structured-suffix types such as `application/vnd.api+json` (not recorded; treated like AWS'
/// recorded rule reads).
pub fn is_binary_content_type(content_type: Option<&str>) -> bool {
    let Some(content_type) = content_type else {
        return true;
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let text = essence
        .strip_prefix("text/")
        .is_some_and(|subtype| !subtype.is_empty())
        || matches!(
            essence.as_str(),
            "application/json" | "application/xml" | "application/javascript"
        );
    !text
}

/// The body member and `isBase64Encoded`: no body for an empty one.
fn encode_body(req: &HttpRequest) -> (Option<String>, bool) {
    if req.body.is_empty() {
        return (None, false);
    }
    let content_type = req
        .headers
        .get(http::header::CONTENT_TYPE)
        .map(|v| text(v.as_bytes()));
    if !is_binary_content_type(content_type.as_deref()) {
        if let Ok(body) = std::str::from_utf8(req.body) {
            return (Some(body.to_owned()), false);
        }
    }
    (
        Some(base64::engine::general_purpose::STANDARD.encode(req.body)),
        true,
    )
}

/// `name=value` pairs of a query string, decoded; a pair without `=` has an empty value.
fn parse_query(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent::decode_query(name), percent::decode_query(value))
        })
        .collect()
}

/// The cookies of one `Cookie` header: split on `;`, trimmed, empty pieces dropped.
fn split_cookies(header: &str) -> impl Iterator<Item = String> + '_ {
    header
        .split(';')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
}

fn user_agent(headers: &HeaderMap) -> String {
    let values: Vec<Cow<str>> = headers
        .get_all(http::header::USER_AGENT)
        .iter()
        .map(|v| text(v.as_bytes()))
        .collect();
    values.join(",")
}

/// A header value as text; bytes that are not UTF-8 become U+FFFD.
fn text(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

fn non_empty(map: &Option<BTreeMap<String, String>>) -> Option<&BTreeMap<String, String>> {
    map.as_ref().filter(|m| !m.is_empty())
}

/// `requestContext.time`: `12/Mar/2020:19:03:58 +0000`. An epoch outside what `time` can
/// represent gives the epoch's start.
fn request_time(time_ms: i64) -> String {
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(time_ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    at.format(format_description!(
        "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000"
    ))
    .unwrap_or_default()
}
