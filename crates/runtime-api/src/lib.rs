//! The Runtime API of one execution environment (lambda-interfaces.md §3).
//!
//! Each environment gets its own listener, so the identity of a caller is the listener it
//! reached, never a header. The platform hands events in with [`RuntimeApi::dispatch`]; the
//! runtime takes them with `GET /next` and answers with `/response` or `/error`. A state
//! machine allows one invocation at a time, exactly as Lambda does.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use nimbus_model::limits::RESPONSE_MAX_BYTES;
use nimbus_model::time_fmt::now_millis;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, Notify};

pub use hyper::header::HeaderValue as RuntimeHeaderValue;

const PREFIX: &str = "/2018-06-01/runtime/";
/// Error bodies and init errors are small; anything bigger is truncated garbage.
const ERROR_MAX_BYTES: usize = 1024 * 1024;

/// One event for the runtime.
#[derive(Debug)]
pub struct Invocation {
    pub request_id: String,
    pub payload: Bytes,
    pub timeout: Duration,
    pub invoked_function_arn: String,
    pub trace_id: Option<String>,
    pub client_context: Option<String>,
    pub cognito_identity: Option<String>,
}

/// When the runtime took the event, and the deadline it was given.
#[derive(Debug, Clone, Copy)]
pub struct Started {
    pub at: Instant,
    pub deadline_ms: i64,
}

/// How the runtime answered.
#[derive(Debug)]
pub enum Outcome {
    Response {
        body: Bytes,
        content_type: Option<HeaderValue>,
    },
    Error {
        body: Bytes,
        error_type: Option<String>,
    },
    /// The runtime tried to return more than 6 MB.
    ResponseTooLarge,
    /// The runtime streams its response (`Lambda-Runtime-Function-Response-Mode:
    /// streaming`): parts arrive as it writes them; the channel closes when it is done.
    Stream {
        content_type: Option<HeaderValue>,
        parts: mpsc::Receiver<StreamPart>,
    },
}

/// A piece of a streamed response.
#[derive(Debug)]
pub enum StreamPart {
    Data(Bytes),
    /// The runtime reported a failure in its trailers (or sent more than the limit); nothing
    /// follows.
    Error {
        error_type: String,
        body: Bytes,
    },
}

/// Most bytes a streamed response may carry (AWS: 200 MB).
pub const STREAM_MAX_BYTES: usize = 200 * 1024 * 1024;

/// What the platform awaits for one dispatched invocation.
#[derive(Debug)]
pub struct Pending {
    pub started: oneshot::Receiver<Started>,
    pub outcome: oneshot::Receiver<(Outcome, Instant)>,
}

/// The environment already has an invocation queued (or is gone).
#[derive(Debug, Clone, Copy)]
pub struct Busy;

/// An init failure the runtime reported through `/init/error`.
#[derive(Debug, Clone)]
pub struct InitError {
    pub body: Bytes,
    pub error_type: Option<String>,
}

struct Queued {
    invocation: Invocation,
    started: oneshot::Sender<Started>,
    outcome: oneshot::Sender<(Outcome, Instant)>,
}

struct Current {
    request_id: String,
    outcome: oneshot::Sender<(Outcome, Instant)>,
}

/// Called as the runtime takes an event, before the event is sent: the platform's START
/// line goes out here so it precedes anything the handler prints.
pub type HandoutHook = Box<dyn Fn(&str) + Send + Sync>;

struct Shared {
    on_handout: HandoutHook,
    queue: tokio::sync::Mutex<mpsc::Receiver<Queued>>,
    current: Mutex<Option<Current>>,
    ready_at: OnceLock<Instant>,
    ready: Notify,
    init_error: Mutex<Option<InitError>>,
}

/// The platform's handle on one environment's Runtime API.
pub struct RuntimeApi {
    addr: SocketAddr,
    tx: mpsc::Sender<Queued>,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for RuntimeApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeApi")
            .field("addr", &self.addr)
            .finish()
    }
}

impl RuntimeApi {
    /// Serves the Runtime API on `listener` until dropped.
    pub fn serve(listener: TcpListener, on_handout: HandoutHook) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let (tx, rx) = mpsc::channel(1);
        let shared = Arc::new(Shared {
            on_handout,
            queue: tokio::sync::Mutex::new(rx),
            current: Mutex::new(None),
            ready_at: OnceLock::new(),
            ready: Notify::new(),
            init_error: Mutex::new(None),
        });
        let accept_shared = shared.clone();
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let shared = accept_shared.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let shared = shared.clone();
                        async move { Ok::<_, Infallible>(route(&shared, req).await) }
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(io, svc)
                        .await;
                });
            }
        });
        Ok(RuntimeApi {
            addr,
            tx,
            shared,
            server,
        })
    }

    /// `host:port` for `AWS_LAMBDA_RUNTIME_API`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Queues an invocation for the runtime's next `/next`; fails if one is already queued.
    pub fn dispatch(&self, invocation: Invocation) -> Result<Pending, Busy> {
        let (started_tx, started) = oneshot::channel();
        let (outcome_tx, outcome) = oneshot::channel();
        let queued = Queued {
            invocation,
            started: started_tx,
            outcome: outcome_tx,
        };
        match self.tx.try_send(queued) {
            Ok(()) => Ok(Pending { started, outcome }),
            Err(_) => Err(Busy),
        }
    }

    /// When the runtime first asked for an event (the end of its init phase).
    pub fn ready_at(&self) -> Option<Instant> {
        self.shared.ready_at.get().copied()
    }

    /// Resolves once the runtime has asked for its first event.
    pub async fn ready(&self) -> Instant {
        loop {
            let notified = self.shared.ready.notified();
            if let Some(at) = self.ready_at() {
                return at;
            }
            notified.await;
        }
    }

    /// The error the runtime reported through `/init/error`, if any.
    pub fn init_error(&self) -> Option<InitError> {
        lock(&self.shared.init_error).clone()
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

type Resp = Response<Full<Bytes>>;

fn json(status: StatusCode, body: String) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn api_error(status: StatusCode, error_type: &str, message: &str) -> Resp {
    json(
        status,
        serde_json::json!({ "errorMessage": message, "errorType": error_type }).to_string(),
    )
}

fn accepted() -> Resp {
    json(StatusCode::ACCEPTED, r#"{"status":"OK"}"#.into())
}

async fn route(shared: &Shared, req: Request<Incoming>) -> Resp {
    let path = req.uri().path().to_owned();
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return api_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            "unknown Runtime API path",
        );
    };
    match (req.method(), rest) {
        (&Method::GET, "invocation/next") => next(shared).await,
        (&Method::POST, "init/error") => init_error(shared, req).await,
        (&Method::POST, rest) => match rest
            .strip_prefix("invocation/")
            .and_then(|r| r.rsplit_once('/'))
        {
            Some((id, "response")) => respond(shared, id.to_owned(), req, false).await,
            Some((id, "error")) => respond(shared, id.to_owned(), req, true).await,
            _ => api_error(
                StatusCode::NOT_FOUND,
                "NotFound",
                "unknown Runtime API path",
            ),
        },
        _ => api_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            "unknown Runtime API path",
        ),
    }
}

async fn next(shared: &Shared) -> Resp {
    if lock(&shared.current).is_some() {
        return api_error(
            StatusCode::FORBIDDEN,
            "InvalidStateTransition",
            "State transition from Invoke to Next is not allowed: answer the current invocation first",
        );
    }
    if shared.ready_at.set(Instant::now()).is_ok() {
        shared.ready.notify_waiters();
    }
    // Only one /next may wait at a time; a second one queues behind it.
    let mut queue = shared.queue.lock().await;
    let Some(q) = queue.recv().await else {
        return api_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            "environment is shutting down",
        );
    };
    drop(queue);
    let inv = q.invocation;
    let now = Instant::now();
    let timeout_ms = i64::try_from(inv.timeout.as_millis()).unwrap_or(i64::MAX);
    let deadline_ms = now_millis().saturating_add(timeout_ms);
    *lock(&shared.current) = Some(Current {
        request_id: inv.request_id.clone(),
        outcome: q.outcome,
    });
    (shared.on_handout)(&inv.request_id);
    let _ = q.started.send(Started {
        at: now,
        deadline_ms,
    });

    let mut r = Response::new(Full::new(inv.payload));
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let mut set = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    };
    set("lambda-runtime-aws-request-id", &inv.request_id);
    set("lambda-runtime-deadline-ms", &deadline_ms.to_string());
    set(
        "lambda-runtime-invoked-function-arn",
        &inv.invoked_function_arn,
    );
    if let Some(t) = &inv.trace_id {
        set("lambda-runtime-trace-id", t);
    }
    if let Some(c) = &inv.client_context {
        set("lambda-runtime-client-context", c);
    }
    if let Some(c) = &inv.cognito_identity {
        set("lambda-runtime-cognito-identity", c);
    }
    r
}

async fn respond(shared: &Shared, id: String, req: Request<Incoming>, is_error: bool) -> Resp {
    {
        let current = lock(&shared.current);
        match current.as_ref() {
            None => {
                return api_error(
                    StatusCode::FORBIDDEN,
                    "InvalidStateTransition",
                    "no invocation is in progress",
                )
            }
            Some(c) if c.request_id != id => {
                return api_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidRequestID",
                    "Invalid request ID",
                )
            }
            Some(_) => {}
        }
    }
    let content_type = req.headers().get(CONTENT_TYPE).cloned();
    if !is_error {
        if let Some(mode) = req.headers().get("lambda-runtime-function-response-mode") {
            if mode.as_bytes().eq_ignore_ascii_case(b"streaming") {
                return stream(shared, content_type, req.into_body()).await;
            }
            return api_error(
                StatusCode::BAD_REQUEST,
                "InvalidFunctionResponseMode",
                "Lambda-Runtime-Function-Response-Mode must be 'streaming'",
            );
        }
    }
    let error_type = req
        .headers()
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let limit = if is_error {
        ERROR_MAX_BYTES
    } else {
        RESPONSE_MAX_BYTES
    };
    let body = Limited::new(req.into_body(), limit).collect().await;
    let Some(current) = lock(&shared.current).take() else {
        return api_error(
            StatusCode::FORBIDDEN,
            "InvalidStateTransition",
            "no invocation is in progress",
        );
    };
    let done = Instant::now();
    match body {
        Ok(b) => {
            let body = b.to_bytes();
            let outcome = if is_error {
                Outcome::Error { body, error_type }
            } else {
                Outcome::Response { body, content_type }
            };
            let _ = current.outcome.send((outcome, done));
            accepted()
        }
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            let _ = current.outcome.send((Outcome::ResponseTooLarge, done));
            api_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                &format!("Exceeded maximum allowed payload size ({RESPONSE_MAX_BYTES} bytes)."),
            )
        }
        Err(_) => {
            // The runtime hung up mid-body: a truncated response.
            let body = Bytes::from_static(
                br#"{"errorType":"Runtime.TruncatedResponse","errorMessage":"the runtime closed the connection before sending the whole response"}"#,
            );
            let _ = current.outcome.send((
                Outcome::Error {
                    body,
                    error_type: Some("Runtime.TruncatedResponse".into()),
                },
                done,
            ));
            api_error(
                StatusCode::BAD_REQUEST,
                "TruncatedHTTPRequest",
                "truncated request body",
            )
        }
    }
}

/// A streamed response: parts go to the platform as they arrive (backpressure included);
/// the runtime's request is answered when its body ends. Errors come as HTTP trailers.
async fn stream(shared: &Shared, content_type: Option<HeaderValue>, mut body: Incoming) -> Resp {
    let Some(current) = lock(&shared.current).take() else {
        return api_error(
            StatusCode::FORBIDDEN,
            "InvalidStateTransition",
            "no invocation is in progress",
        );
    };
    let (tx, parts) = mpsc::channel(16);
    let _ = current.outcome.send((
        Outcome::Stream {
            content_type,
            parts,
        },
        Instant::now(),
    ));
    let mut sent = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            let _ = tx
                .send(StreamPart::Error {
                    error_type: "Runtime.TruncatedResponse".into(),
                    body: Bytes::from_static(br#"{"errorType":"Runtime.TruncatedResponse","errorMessage":"the runtime closed the connection before ending the stream"}"#),
                })
                .await;
            return api_error(
                StatusCode::BAD_REQUEST,
                "TruncatedHTTPRequest",
                "truncated request body",
            );
        };
        match frame.into_data() {
            Ok(data) => {
                sent += data.len();
                if sent > STREAM_MAX_BYTES {
                    let _ = tx
                        .send(StreamPart::Error {
                            error_type: "Function.ResponseSizeTooLarge".into(),
                            body: Bytes::from(format!(
                                r#"{{"errorType":"Function.ResponseSizeTooLarge","errorMessage":"Response payload size exceeded maximum allowed payload size ({STREAM_MAX_BYTES} bytes)."}}"#
                            )),
                        })
                        .await;
                    return api_error(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "RequestEntityTooLarge",
                        &format!(
                            "Exceeded maximum allowed payload size ({STREAM_MAX_BYTES} bytes)."
                        ),
                    );
                }
                // A platform that stopped listening (client gone) still lets the runtime finish.
                let _ = tx.send(StreamPart::Data(data)).await;
            }
            Err(frame) => {
                let Ok(trailers) = frame.into_trailers() else {
                    continue;
                };
                let header = |name: &str| {
                    trailers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                };
                if let Some(error_type) = header("lambda-runtime-function-error-type") {
                    use base64::Engine;
                    let body = header("lambda-runtime-function-error-body")
                        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                        .unwrap_or_default();
                    let _ = tx
                        .send(StreamPart::Error {
                            error_type,
                            body: Bytes::from(body),
                        })
                        .await;
                }
            }
        }
    }
    accepted()
}

async fn init_error(shared: &Shared, req: Request<Incoming>) -> Resp {
    if shared.ready_at.get().is_some() {
        return api_error(
            StatusCode::FORBIDDEN,
            "InvalidStateTransition",
            "init has already completed",
        );
    }
    let error_type = req
        .headers()
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = match Limited::new(req.into_body(), ERROR_MAX_BYTES)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    *lock(&shared.init_error) = Some(InitError { body, error_type });
    accepted()
}
