//! Response streaming to callers: InvokeWithResponseStream (AWS event-stream framing:
//! `PayloadChunk` messages, then `InvokeComplete`) and the plumbing shared with streaming
//! Function URLs — a body fed by a channel, so chunks reach the client as the function
//! writes them.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, Bytes, BytesMut};
use http_body::Frame;
use nimbus_invoker::{InvokeRequest, InvokeResponse, StreamChunk, Throttle};
use nimbus_model::{limits, FunctionRef};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::query::Query;
use crate::{read_body, ApiError, ApiResult, AppState};

/// A response body fed by a channel: each item is sent as soon as it arrives.
pub(crate) struct ChannelBody(pub mpsc::Receiver<Bytes>);

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

/// One event-stream message with string headers (lambda-interfaces.md §1.6).
fn message(headers: &[(&str, &str)], payload: &[u8]) -> Bytes {
    let mut h = BytesMut::new();
    for (name, value) in headers {
        h.put_u8(name.len() as u8);
        h.put_slice(name.as_bytes());
        h.put_u8(7);
        h.put_u16(value.len() as u16);
        h.put_slice(value.as_bytes());
    }
    let total = 12 + h.len() + payload.len() + 4;
    let mut m = BytesMut::with_capacity(total);
    m.put_u32(total as u32);
    m.put_u32(h.len() as u32);
    m.put_u32(crc32fast::hash(&m[..8]));
    m.put_slice(&h);
    m.put_slice(payload);
    m.put_u32(crc32fast::hash(&m));
    m.freeze()
}

fn event(kind: &str, content_type: &str, payload: &[u8]) -> Bytes {
    message(
        &[
            (":event-type", kind),
            (":content-type", content_type),
            (":message-type", "event"),
        ],
        payload,
    )
}

/// A running invocation whose response may stream.
pub(crate) struct Running {
    pub chunks: mpsc::Receiver<StreamChunk>,
    pub task: JoinHandle<Result<InvokeResponse, Throttle>>,
}

/// How a running invocation began.
pub(crate) enum Began {
    /// The function streams; `content_type` is what it declared.
    Streaming { content_type: Option<String> },
    /// It answered without streaming (or failed before streaming).
    Finished(Result<InvokeResponse, Throttle>),
}

/// Starts `req` on its own task with a stream sink attached.
pub(crate) fn start(
    state: &AppState,
    function: Arc<nimbus_model::FunctionRecord>,
    mut req: InvokeRequest,
) -> Running {
    let (tx, chunks) = mpsc::channel(16);
    req.stream = Some(tx);
    let invoker = state.invoker.clone();
    let paths = state.catalog.code_paths(&function);
    let task = tokio::spawn(async move { invoker.invoke(function, paths, req).await });
    Running { chunks, task }
}

impl Running {
    /// Waits for the first sign of the response: a stream starting, or the whole answer.
    pub(crate) async fn begin(&mut self) -> Began {
        loop {
            match self.chunks.recv().await {
                Some(StreamChunk::Start { content_type }) => {
                    return Began::Streaming { content_type }
                }
                // Data never precedes Start.
                Some(StreamChunk::Data(_)) => continue,
                None => {
                    let finished = (&mut self.task)
                        .await
                        .unwrap_or_else(|_| Err(Throttle::ConcurrentInvocationLimitExceeded));
                    return Began::Finished(finished);
                }
            }
        }
    }
}

fn error_fields(body: &[u8]) -> (String, String) {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let kind = v["errorType"].as_str().unwrap_or("Unhandled").to_string();
    let details = v["errorMessage"]
        .as_str()
        .map_or_else(|| String::from_utf8_lossy(body).into_owned(), str::to_owned);
    (kind, details)
}

fn complete(out: Option<&InvokeResponse>) -> Bytes {
    let mut v = serde_json::json!({});
    if let Some(out) = out {
        if out.function_error {
            let (code, details) = error_fields(&out.body);
            v["ErrorCode"] = code.into();
            v["ErrorDetails"] = details.into();
        }
        if let Some(log) = &out.log_tail {
            v["LogResult"] = crate::invoke::log_result(log).into();
        }
    }
    event(
        "InvokeComplete",
        "application/json",
        v.to_string().as_bytes(),
    )
}

/// InvokeWithResponseStream.
pub(crate) async fn invoke_stream(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let q = Query::parse(q.as_deref());
    let r = FunctionRef::parse(&name, state.catalog.identity(), 256)?
        .with_query_qualifier(q.get("Qualifier"))?;
    let header = |n: &str| crate::invoke::header(&headers, n);
    let invocation_type = header("x-amz-invocation-type").unwrap_or("RequestResponse");
    if !matches!(invocation_type, "RequestResponse" | "DryRun") {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value '{invocation_type}' at 'invocationType' failed to satisfy constraint: Member must satisfy enum value set: [RequestResponse, DryRun]"
        )));
    }
    let payload = read_body(
        body,
        limits::SYNC_PAYLOAD_MAX_BYTES,
        "InvokeWithResponseStream",
    )
    .await?;
    crate::invoke::check_json(&payload)?;
    let client_context = crate::invoke::decode_client_context(header("x-amz-client-context"))?;
    let function = state
        .catalog
        .resolve_for_invoke(&r.name, r.qualifier.as_deref())?;
    let request_id = uuid::Uuid::new_v4().to_string();
    let rid = HeaderValue::from_str(&request_id).map_err(|e| ApiError::service(e.to_string()))?;
    if invocation_type == "DryRun" {
        return Ok((StatusCode::NO_CONTENT, [("x-amzn-RequestId", rid)]).into_response());
    }
    let identity = state.catalog.identity();
    let req = InvokeRequest {
        request_id,
        payload: if payload.is_empty() {
            Bytes::from_static(b"{}")
        } else {
            payload
        },
        invoked_arn: identity.arn(&r.name, r.qualifier.as_deref()),
        client_context,
        want_tail: header("x-amz-log-type") == Some("Tail"),
        stream: None,
    };
    let version = function.version.clone();
    let mut running = start(&state, function, req);
    let began = running.begin().await;
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    match began {
        Began::Finished(Err(t)) => return Err(ApiError::throttled(t.reason())),
        Began::Finished(Ok(out)) => {
            // A function that does not stream: its whole answer is one chunk.
            tokio::spawn(async move {
                if !out.function_error {
                    let _ = tx
                        .send(event("PayloadChunk", "application/octet-stream", &out.body))
                        .await;
                }
                let _ = tx.send(complete(Some(&out))).await;
            });
        }
        Began::Streaming { .. } => {
            tokio::spawn(async move {
                while let Some(chunk) = running.chunks.recv().await {
                    if let StreamChunk::Data(data) = chunk {
                        if tx
                            .send(event("PayloadChunk", "application/octet-stream", &data))
                            .await
                            .is_err()
                        {
                            // The client left: keep draining so the function can finish.
                            continue;
                        }
                    }
                }
                let out = running.task.await.ok().and_then(Result::ok);
                let _ = tx.send(complete(out.as_ref())).await;
            });
        }
    }
    let mut resp = Response::new(Body::new(ChannelBody(rx)));
    let h = resp.headers_mut();
    h.insert("x-amzn-RequestId", rid);
    h.insert(
        "content-type",
        HeaderValue::from_static("application/vnd.amazon.eventstream"),
    );
    if let Ok(v) = HeaderValue::from_str(&version) {
        h.insert("X-Amz-Executed-Version", v);
    }
    Ok(resp)
}
