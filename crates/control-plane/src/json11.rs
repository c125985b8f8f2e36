//! The JSON 1.1 protocol (`POST /` with `X-Amz-Target: <Service>.<Operation>`), shared by
//! CloudWatch Logs (`Logs_20140328`) and EventBridge (`AWSEvents`).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::{read_body, ApiError, AppState};

/// A JSON 1.1 error: `{"__type": code, "message": …}`, 400 for every client fault.
pub(crate) fn error(e: ApiError) -> Response {
    let status = if e.status.is_client_error() {
        StatusCode::BAD_REQUEST
    } else {
        e.status
    };
    let mut resp = (
        status,
        axum::Json(json!({ "__type": e.code, "message": e.message })),
    )
        .into_response();
    resp.headers_mut()
        .insert("x-amzn-ErrorType", HeaderValue::from_static(e.code));
    resp
}

fn ok(v: Value) -> Response {
    let mut resp = (StatusCode::OK, axum::Json(v)).into_response();
    resp.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    resp
}

/// Decodes an operation's input, with the error code the service uses for bad parameters.
pub(crate) fn parse<T: for<'de> Deserialize<'de>>(
    v: Value,
    code: &'static str,
) -> Result<T, ApiError> {
    serde_json::from_value(v)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, code, e.to_string()))
}

pub(crate) async fn dispatch(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some((service, op)) = target.split_once('.') else {
        return error(unknown(target));
    };
    if !matches!(service, "Logs_20140328" | "AWSEvents") {
        return error(unknown(target));
    }
    let body = match read_body(body, 1024 * 1024, op).await {
        Ok(b) => b,
        Err(e) => return error(e),
    };
    let input: Value = match serde_json::from_slice(if body.is_empty() { b"{}" } else { &body }) {
        Ok(v) => v,
        Err(e) => {
            return error(ApiError::new(
                StatusCode::BAD_REQUEST,
                "SerializationException",
                e.to_string(),
            ))
        }
    };
    let result = if service == "AWSEvents" {
        crate::eventbridge::api::handle(&state, op, input).await
    } else {
        let store = state.logs.clone();
        let op = op.to_string();
        tokio::task::spawn_blocking(move || crate::logs_api::handle(store.as_ref(), &op, input))
            .await
            .unwrap_or_else(|e| Err(ApiError::service(e.to_string())))
    };
    match result {
        Ok(v) => ok(v),
        Err(e) => error(e),
    }
}

pub(crate) fn unknown(target: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "UnknownOperationException",
        format!("Nimbus does not implement the operation '{target}'"),
    )
}
