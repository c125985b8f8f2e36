//! The HTTP front door of Function URLs and HTTP APIs. Requests are recognised by `Host`
//! (`<url-id>.lambda-url.<region>.localhost`, `<api-id>.execute-api.<region>.localhost`) or
//! by the path fallback `/_nimbus/url/<url-id>/…` and `/_nimbus/api/<api-id>/…`, turned
//! into a payload 2.0 (or 1.0) event, invoked synchronously, and the function's answer
//! turned back into an HTTP response — with the errors AWS' front ends give.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use nimbus_http_events::{
    apply_cors, event_v1, event_v2, preflight, response_v1, response_v2, select_route, Cors,
    HttpRequest, HttpResponse, RequestContext,
};
use nimbus_invoker::InvokeRequest;
use nimbus_model::{limits, CorsConfig};

use crate::AppState;

/// What a request addresses.
enum Trigger {
    Url { id: String, path: String },
    Api { id: String, path: String },
}

fn host_of(headers: &HeaderMap) -> Option<&str> {
    let host = headers.get("host")?.to_str().ok()?;
    Some(host.rsplit_once(':').map_or(host, |(h, p)| {
        if p.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            host
        }
    }))
}

fn trigger(state: &AppState, req: &Request) -> Option<Trigger> {
    let region = &state.catalog.identity().region;
    let path_and_query = req.uri().path();
    if let Some(host) = host_of(req.headers()) {
        let host = host.to_ascii_lowercase();
        if let Some(id) = host.strip_suffix(&format!(".lambda-url.{region}.localhost")) {
            return Some(Trigger::Url {
                id: id.to_string(),
                path: path_and_query.to_string(),
            });
        }
        if let Some(id) = host.strip_suffix(&format!(".execute-api.{region}.localhost")) {
            return Some(Trigger::Api {
                id: id.to_string(),
                path: path_and_query.to_string(),
            });
        }
    }
    let split = |rest: &str| {
        let (id, path) = rest.split_once('/').map_or((rest, ""), |(i, p)| (i, p));
        (id.to_string(), format!("/{path}"))
    };
    if let Some(rest) = path_and_query.strip_prefix("/_nimbus/url/") {
        let (id, path) = split(rest);
        return Some(Trigger::Url { id, path });
    }
    if let Some(rest) = path_and_query.strip_prefix("/_nimbus/api/") {
        let (id, path) = split(rest);
        return Some(Trigger::Api { id, path });
    }
    None
}

/// Middleware: serves trigger requests, passes everything else to the AWS APIs.
pub(crate) async fn front_door(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    match trigger(&state, &req) {
        None => next.run(req).await,
        Some(Trigger::Url { id, path }) => function_url(&state, &id, &path, req).await,
        Some(Trigger::Api { id, path }) => http_api(&state, &id, &path, req).await,
    }
}

fn message(status: StatusCode, text: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "message": text }))).into_response()
}

fn cors_of(c: &CorsConfig) -> Cors {
    Cors {
        allow_origins: c.allow_origins.clone().unwrap_or_default(),
        allow_methods: c.allow_methods.clone().unwrap_or_default(),
        allow_headers: c.allow_headers.clone().unwrap_or_default(),
        expose_headers: c.expose_headers.clone().unwrap_or_default(),
        max_age: c.max_age,
        allow_credentials: c.allow_credentials.unwrap_or(false),
    }
}

fn into_response(r: HttpResponse, request_id: &str) -> Response {
    let mut resp = Response::new(Body::from(r.body));
    *resp.status_mut() = StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let h = resp.headers_mut();
    for (k, v) in r.headers {
        if let (Ok(k), Ok(v)) = (
            axum::http::HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_bytes(v.as_bytes()),
        ) {
            h.append(k, v);
        }
    }
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-amzn-RequestId", v);
    }
    resp
}

/// The request's parts the event needs, with its body read (6 MB at most).
struct Incoming {
    method: String,
    query: String,
    headers: HeaderMap,
    body: bytes::Bytes,
    source_ip: String,
    protocol: String,
}

async fn read(req: Request) -> Result<Incoming, Response> {
    let source_ip = req
        .extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map_or_else(|| "127.0.0.1".to_string(), |c| c.0.ip().to_string());
    let protocol = format!("{:?}", req.version());
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, limits::SYNC_PAYLOAD_MAX_BYTES)
        .await
        .map_err(|_| message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large"))?;
    Ok(Incoming {
        method: parts.method.as_str().to_string(),
        query: parts.uri.query().unwrap_or("").to_string(),
        headers: parts.headers,
        body,
        source_ip,
        protocol,
    })
}

/// Why a front end got no function response.
enum Failed {
    /// The function (or its alias) no longer exists.
    Missing,
    Throttled,
    /// The integration's timeout passed first (APIs only).
    TimedOut,
}

/// The invocation an HTTP trigger makes: its event, under the front end's request id.
fn trigger_request(
    identity: &nimbus_model::Identity,
    name: &str,
    qualifier: Option<&str>,
    event: &serde_json::Value,
    request_id: &str,
) -> InvokeRequest {
    InvokeRequest {
        request_id: request_id.to_string(),
        payload: bytes::Bytes::from(event.to_string()),
        invoked_arn: identity.arn(name, qualifier),
        client_context: None,
        want_tail: false,
        stream: None,
    }
}

/// Invokes a function synchronously with `event`.
async fn invoke(
    state: &AppState,
    name: &str,
    qualifier: Option<&str>,
    event: serde_json::Value,
    request_id: &str,
    timeout: Option<std::time::Duration>,
) -> Result<nimbus_invoker::InvokeResponse, Failed> {
    let function = state
        .catalog
        .resolve_for_invoke(name, qualifier)
        .map_err(|_| Failed::Missing)?;
    let identity = state.catalog.identity();
    let req = trigger_request(identity, name, qualifier, &event, request_id);
    let paths = state.catalog.code_paths(&function);
    // The invocation runs on its own task: when the integration gives up, the function
    // still runs to its own end, as on AWS.
    let invoker = state.invoker.clone();
    let call = tokio::spawn(async move { invoker.invoke(function, paths, req).await });
    let joined = match timeout {
        Some(t) => tokio::time::timeout(t, call)
            .await
            .map_err(|_| Failed::TimedOut)?,
        None => call.await,
    };
    joined
        .map_err(|_| Failed::Missing)?
        .map_err(|_| Failed::Throttled)
}

async fn function_url(state: &AppState, url_id: &str, path: &str, req: Request) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    // An unknown URL is refused as AWS refuses it: 403 AccessDeniedException.
    let denied = || {
        let mut r = (
            StatusCode::FORBIDDEN,
            axum::Json(serde_json::json!({ "Message": null })),
        )
            .into_response();
        r.headers_mut().insert(
            "x-amzn-ErrorType",
            HeaderValue::from_static("AccessDeniedException"),
        );
        r
    };
    let Some((name, qualifier)) = state.catalog.url_target(url_id) else {
        return denied();
    };
    let Some(config) = state
        .catalog
        .get(&name)
        .and_then(|f| f.urls.get(&qualifier).cloned())
    else {
        return denied();
    };
    let incoming = match read(req).await {
        Ok(i) => i,
        Err(resp) => return resp,
    };
    let cors = config.cors.as_ref().map(cors_of);
    if let Some(c) = &cors {
        if let Some(r) = preflight(c, &incoming.method, &incoming.headers) {
            return into_response(r, &request_id);
        }
    }
    if config.auth_type == "AWS_IAM"
        && !incoming
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.starts_with("AWS4-HMAC-SHA256"))
    {
        return (
            StatusCode::FORBIDDEN,
            axum::Json(serde_json::json!({ "Message": "Forbidden" })),
        )
            .into_response();
    }
    let region = &state.catalog.identity().region;
    let ctx = RequestContext {
        account_id: state.catalog.identity().account_id.clone(),
        api_id: url_id.to_string(),
        domain_name: format!("{url_id}.lambda-url.{region}.localhost"),
        domain_prefix: url_id.to_string(),
        stage: "$default".into(),
        route_key: "$default".into(),
        resource_path: path.to_string(),
        path_parameters: None,
        stage_variables: None,
        authorizer: None,
    };
    let event = event_v2(&http_request(&incoming, path, &request_id), &ctx);
    let q = (qualifier != "$LATEST").then_some(qualifier.as_str());
    if config.invoke_mode == "RESPONSE_STREAM" {
        return stream_url(
            state,
            &name,
            q,
            event,
            &request_id,
            cors.as_ref(),
            &incoming.headers,
        )
        .await;
    }
    let out = match invoke(state, &name, q, event, &request_id, None).await {
        Ok(out) => out,
        Err(Failed::Throttled) => return message(StatusCode::TOO_MANY_REQUESTS, "Rate Exceeded."),
        Err(_) => return denied(),
    };
    let mut resp = if out.function_error {
        Err(())
    } else {
        response_v2(&out.body).map_err(|_| ())
    }
    .unwrap_or_else(|()| HttpResponse {
        status: 502,
        headers: vec![("content-type".into(), "text/plain".into())],
        body: b"Internal Server Error".to_vec(),
    });
    if let Some(c) = &cors {
        apply_cors(c, &incoming.headers, &mut resp);
    }
    into_response(resp, &request_id)
}

/// A Function URL in `RESPONSE_STREAM` mode: the function's bytes reach the client as it
/// writes them. An HTTP-integration stream starts with a JSON prelude (status, headers,
/// cookies) and 8 NUL bytes; any other stream is a 200 of its content type.
async fn stream_url(
    state: &AppState,
    name: &str,
    qualifier: Option<&str>,
    event: serde_json::Value,
    request_id: &str,
    cors: Option<&Cors>,
    request_headers: &HeaderMap,
) -> Response {
    use crate::streaming::{start, Began, ChannelBody};
    use nimbus_invoker::StreamChunk;

    let Ok(function) = state.catalog.resolve_for_invoke(name, qualifier) else {
        return message(StatusCode::FORBIDDEN, "Forbidden");
    };
    let identity = state.catalog.identity();
    let req = trigger_request(identity, name, qualifier, &event, request_id);
    let mut running = start(state, function, req);
    let content_type = match running.begin().await {
        Began::Finished(Err(_)) => return message(StatusCode::TOO_MANY_REQUESTS, "Rate Exceeded."),
        Began::Finished(Ok(out)) => {
            // The function answered without streaming: map it as a buffered URL would.
            let mut resp = if out.function_error {
                None
            } else {
                response_v2(&out.body).ok()
            }
            .unwrap_or_else(|| HttpResponse {
                status: 502,
                headers: vec![("content-type".into(), "text/plain".into())],
                body: b"Internal Server Error".to_vec(),
            });
            if let Some(c) = cors {
                apply_cors(c, request_headers, &mut resp);
            }
            return into_response(resp, request_id);
        }
        Began::Streaming { content_type } => content_type,
    };
    let mut head = HttpResponse {
        status: 200,
        headers: vec![(
            "content-type".into(),
            content_type
                .clone()
                .unwrap_or_else(|| "application/octet-stream".into()),
        )],
        body: Vec::new(),
    };
    let mut first = bytes::Bytes::new();
    if content_type.as_deref() == Some("application/vnd.awslambda.http-integration-response") {
        // Collect the prelude (bounded) up to its 8-NUL separator.
        let mut buf = Vec::new();
        let split = loop {
            if let Some(i) = buf.windows(8).position(|w| w == [0u8; 8]) {
                break Some(i);
            }
            if buf.len() > 64 * 1024 {
                break None;
            }
            match running.chunks.recv().await {
                Some(StreamChunk::Data(d)) => buf.extend_from_slice(&d),
                Some(StreamChunk::Start { .. }) => {}
                None => break None,
            }
        };
        let Some(i) = split else {
            return message(StatusCode::BAD_GATEWAY, "Internal Server Error");
        };
        let prelude: serde_json::Value = serde_json::from_slice(&buf[..i]).unwrap_or_default();
        head.status = prelude["statusCode"]
            .as_u64()
            .and_then(|s| u16::try_from(s).ok())
            .filter(|s| (100..=599).contains(s))
            .unwrap_or(200);
        if let Some(h) = prelude["headers"].as_object() {
            head.headers.clear();
            for (k, v) in h {
                let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                head.headers.push((k.to_ascii_lowercase(), v));
            }
            if !head.headers.iter().any(|(k, _)| k == "content-type") {
                head.headers
                    .push(("content-type".into(), "application/octet-stream".into()));
            }
        }
        for c in prelude["cookies"].as_array().into_iter().flatten() {
            if let Some(c) = c.as_str() {
                head.headers.push(("set-cookie".into(), c.to_string()));
            }
        }
        first = bytes::Bytes::copy_from_slice(&buf[i + 8..]);
    }
    if let Some(c) = cors {
        apply_cors(c, request_headers, &mut head);
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(16);
    tokio::spawn(async move {
        let mut client_gone = !first.is_empty() && tx.send(first).await.is_err();
        while let Some(chunk) = running.chunks.recv().await {
            if let (StreamChunk::Data(d), false) = (chunk, client_gone) {
                client_gone = tx.send(d).await.is_err();
            }
        }
    });
    let mut resp = into_response(head, request_id);
    *resp.body_mut() = Body::new(ChannelBody(rx));
    resp
}

fn http_request<'a>(i: &'a Incoming, path: &'a str, request_id: &'a str) -> HttpRequest<'a> {
    HttpRequest {
        method: &i.method,
        raw_path: path,
        raw_query: &i.query,
        headers: &i.headers,
        body: &i.body,
        source_ip: &i.source_ip,
        protocol: &i.protocol,
        time_ms: nimbus_model::time_fmt::now_millis(),
        request_id,
    }
}

async fn http_api(state: &AppState, api_id: &str, path: &str, req: Request) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let Some(api) = state.apis.get(api_id) else {
        return message(StatusCode::NOT_FOUND, "Not Found");
    };
    // With a `$default` stage the path is the route path; otherwise its first segment
    // names the stage.
    let (stage, path) = if let Some(s) = api.record.stages.get("$default") {
        (s, path.to_string())
    } else {
        let trimmed = path.trim_start_matches('/');
        let (name, rest) = trimmed.split_once('/').unwrap_or((trimmed, ""));
        match api.record.stages.get(name) {
            Some(s) => (s, format!("/{rest}")),
            None => return message(StatusCode::NOT_FOUND, "Not Found"),
        }
    };
    let incoming = match read(req).await {
        Ok(i) => i,
        Err(resp) => return resp,
    };
    let cors = api.record.cors.as_ref().map(cors_of);
    if let Some(c) = &cors {
        if let Some(r) = preflight(c, &incoming.method, &incoming.headers) {
            return into_response(r, &request_id);
        }
    }
    let keys: Vec<_> = api.routes.iter().map(|(_, k)| k.clone()).collect();
    let Some((index, params)) = select_route(&keys, &incoming.method, &path) else {
        return message(StatusCode::NOT_FOUND, "Not Found");
    };
    let (route_id, key) = &api.routes[index];
    let integration = api
        .record
        .routes
        .get(route_id)
        .and_then(|r| r.target.as_deref())
        .and_then(|t| t.strip_prefix("integrations/"))
        .and_then(|id| api.record.integrations.get(id));
    let Some(integration) = integration else {
        return message(StatusCode::NOT_FOUND, "Not Found");
    };
    let Ok(crate::async_invoke::record::Destination::Function { name, qualifier }) =
        crate::async_invoke::record::Destination::parse(
            &integration.integration_uri,
            state.catalog.identity(),
        )
    else {
        return message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
    };
    let region = &state.catalog.identity().region;
    let route_key = key.as_str().to_string();
    let resource_path = route_key
        .split_once(' ')
        .map_or_else(|| path.clone(), |(_, p)| p.to_string());
    let ctx = RequestContext {
        account_id: state.catalog.identity().account_id.clone(),
        api_id: api_id.to_string(),
        domain_name: format!("{api_id}.execute-api.{region}.localhost"),
        domain_prefix: api_id.to_string(),
        stage: stage.stage_name.clone(),
        route_key,
        resource_path,
        path_parameters: (!params.is_empty()).then(|| params.clone()),
        stage_variables: (!stage.stage_variables.is_empty()).then(|| {
            stage
                .stage_variables
                .clone()
                .into_iter()
                .collect::<BTreeMap<_, _>>()
        }),
        authorizer: None,
    };
    let request = http_request(&incoming, &path, &request_id);
    let v1 = integration.payload_format_version == "1.0";
    let event = if v1 {
        event_v1(&request, &ctx)
    } else {
        event_v2(&request, &ctx)
    };
    let timeout = std::time::Duration::from_millis(u64::from(integration.timeout_ms));
    // As API Gateway answers: a rejected invocation is a 500, a function error or a
    // malformed response a 502, an integration timeout a 503.
    let out = match invoke(
        state,
        &name,
        qualifier.as_deref(),
        event,
        &request_id,
        Some(timeout),
    )
    .await
    {
        Ok(out) => out,
        Err(Failed::TimedOut) => {
            return message(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable")
        }
        Err(Failed::Throttled | Failed::Missing) => {
            return message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
        }
    };
    let mapped = if out.function_error {
        None
    } else if v1 {
        response_v1(&out.body).ok()
    } else {
        response_v2(&out.body).ok()
    };
    let mut resp = mapped.unwrap_or_else(|| HttpResponse {
        status: 502,
        headers: vec![("content-type".into(), "application/json".into())],
        body: br#"{"message":"Internal Server Error"}"#.to_vec(),
    });
    if let Some(c) = &cors {
        apply_cors(c, &incoming.headers, &mut resp);
    }
    into_response(resp, &request_id)
}
