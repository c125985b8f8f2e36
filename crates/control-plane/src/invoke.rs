//! Invoke (RequestResponse, Event, DryRun) and the legacy InvokeAsync.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use nimbus_invoker::InvokeRequest;
use nimbus_model::{limits, FunctionRef};

use crate::query::Query;
use crate::{read_body, ApiError, ApiResult, AppState};

pub(crate) fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Lambda accepts any JSON document (or nothing) as a payload.
pub(crate) fn check_json(payload: &[u8]) -> ApiResult<()> {
    if payload.is_empty() {
        return Ok(());
    }
    serde_json::from_slice::<serde::de::IgnoredAny>(payload)
        .map(|_| ())
        .map_err(|e| {
            ApiError::bad_content(format!(
                "Could not parse request body into json: Could not parse payload into json: {e}"
            ))
        })
}

pub(crate) fn decode_client_context(raw: Option<&str>) -> ApiResult<Option<String>> {
    let Some(raw) = raw else { return Ok(None) };
    if raw.len() > limits::CLIENT_CONTEXT_MAX_BYTES {
        return Err(ApiError::invalid(format!(
            "Client context must be smaller than {} bytes",
            limits::CLIENT_CONTEXT_MAX_BYTES
        )));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(raw)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .filter(|s| serde_json::from_str::<serde_json::Value>(s).is_ok_and(|v| v.is_object()))
        .ok_or_else(|| {
            ApiError::bad_content("Client context must be a valid Base64-encoded JSON object.")
        })?;
    Ok(Some(decoded))
}

/// The last 4 KB of an invocation's log, base64 (`X-Amz-Log-Result`).
pub(crate) fn log_result(log: &str) -> String {
    let mut start = log.len().saturating_sub(limits::LOG_TAIL_BYTES);
    while !log.is_char_boundary(start) {
        start += 1;
    }
    base64::engine::general_purpose::STANDARD.encode(&log.as_bytes()[start..])
}

/// Queues an `Event` invocation durably; the 202 is answered only once it is on disk.
async fn accept_event(
    state: &AppState,
    r: &FunctionRef,
    request_id: String,
    payload: bytes::Bytes,
    client_context: Option<String>,
) -> ApiResult<()> {
    // The function (and qualifier) must exist now; which version runs is decided at delivery.
    state.catalog.resolve(&r.name, r.qualifier.as_deref())?;
    let now = nimbus_model::time_fmt::now_millis();
    let event = nimbus_store::NewEvent {
        function: r.name.clone(),
        qualifier: r.qualifier.clone(),
        request_id,
        payload: payload.to_vec(),
        client_context,
        enqueued_ms: now,
        due_ms: now,
    };
    state
        .async_invoke
        .enqueue(vec![event], None)
        .await
        .map_err(|e| ApiError::service(format!("could not queue the event: {e}")))
}

pub(crate) async fn invoke(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let q = Query::parse(q.as_deref());
    let r = FunctionRef::parse(&name, state.catalog.identity(), 256)?
        .with_query_qualifier(q.get("Qualifier"))?;
    let invocation_type = header(&headers, "x-amz-invocation-type").unwrap_or("RequestResponse");
    let limit = match invocation_type {
        "RequestResponse" | "DryRun" => limits::SYNC_PAYLOAD_MAX_BYTES,
        "Event" => limits::ASYNC_PAYLOAD_MAX_BYTES,
        other => {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value '{other}' at 'invocationType' failed to satisfy constraint: Member must satisfy enum value set: [Event, RequestResponse, DryRun]"
            )))
        }
    };
    let log_type = header(&headers, "x-amz-log-type").unwrap_or("None");
    if !matches!(log_type, "None" | "Tail") {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value '{log_type}' at 'logType' failed to satisfy constraint: Member must satisfy enum value set: [None, Tail]"
        )));
    }
    let payload = read_body(
        body,
        limit,
        if invocation_type == "Event" {
            "Invoke (Event)"
        } else {
            "InvokeFunction"
        },
    )
    .await
    .map_err(|_| {
        ApiError::too_large(format!(
            "Request must be smaller than {limit} bytes for the InvokeFunction operation"
        ))
    })?;
    check_json(&payload)?;
    let client_context = decode_client_context(header(&headers, "x-amz-client-context"))?;
    let request_id = uuid::Uuid::new_v4().to_string();
    let rid = HeaderValue::from_str(&request_id).map_err(|e| ApiError::service(e.to_string()))?;
    let payload = if payload.is_empty() {
        bytes::Bytes::from_static(b"{}")
    } else {
        payload
    };
    if invocation_type == "Event" {
        accept_event(&state, &r, request_id, payload, client_context).await?;
        return Ok((StatusCode::ACCEPTED, [("x-amzn-RequestId", rid)]).into_response());
    }
    let function = state
        .catalog
        .resolve_for_invoke(&r.name, r.qualifier.as_deref())?;
    let invoked_arn = state
        .catalog
        .identity()
        .arn(&r.name, r.qualifier.as_deref());
    let req = InvokeRequest {
        request_id: request_id.clone(),
        payload,
        invoked_arn,
        client_context,
        want_tail: log_type == "Tail" && invocation_type == "RequestResponse",
        stream: None,
    };
    let paths = state.catalog.code_paths(&function);

    match invocation_type {
        "DryRun" => Ok((StatusCode::NO_CONTENT, [("x-amzn-RequestId", rid)]).into_response()),
        _ => {
            let out = state
                .invoker
                .invoke(function, paths, req)
                .await
                .map_err(|t| ApiError::throttled(t.reason()))?;
            let mut resp = Response::new(Body::from(out.body));
            let h = resp.headers_mut();
            h.insert("x-amzn-RequestId", rid);
            h.insert(
                "content-type",
                out.content_type
                    .and_then(|c| HeaderValue::from_str(&c).ok())
                    .unwrap_or(HeaderValue::from_static("application/json")),
            );
            if let Ok(v) = HeaderValue::from_str(&out.executed_version) {
                h.insert("X-Amz-Executed-Version", v);
            }
            if out.function_error {
                h.insert(
                    "X-Amz-Function-Error",
                    HeaderValue::from_static("Unhandled"),
                );
            }
            if let Some(log) = out.log_tail {
                if let Ok(v) = HeaderValue::from_str(&log_result(&log)) {
                    h.insert("X-Amz-Log-Result", v);
                }
            }
            Ok(resp)
        }
    }
}

/// InvokeAsync (deprecated): a raw event of at most 256 KB, answered 202.
pub(crate) async fn invoke_async(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    body: Body,
) -> ApiResult<Response> {
    let r = FunctionRef::parse(&name, state.catalog.identity(), 256)?;
    let payload = read_body(body, 256 * 1024, "InvokeAsync").await?;
    check_json(&payload)?;
    let payload = if payload.is_empty() {
        bytes::Bytes::from_static(b"{}")
    } else {
        payload
    };
    accept_event(&state, &r, uuid::Uuid::new_v4().to_string(), payload, None).await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(serde_json::json!({ "Status": 202 })),
    )
        .into_response())
}
