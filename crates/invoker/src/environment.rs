//! One execution environment: a runtime process, its Runtime API, its log stream, and the
//! state machine of one invocation on it (wait for the runtime to take the event, then for
//! its answer, a crash, or the deadline).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use nimbus_model::limits::INIT_TIMEOUT_MS;
use nimbus_model::FunctionRecord;
use nimbus_runtime_api::{Invocation, Outcome, RuntimeApi, StreamPart};
use std::path::{Path, PathBuf};

use nimbus_egress::{proxy, Outbound};
use nimbus_sandbox::{LaunchSpec, Layout, ProcessGuard, Sandbox};
use tokio::sync::{mpsc, oneshot, watch};

use crate::logs::{spawn_env_log, LogCmd};
use crate::report::{self, Event, PlatformLog, Status};
use crate::{
    CodePaths, InvokeRequest, InvokeResponse, MemoryCharge, Platform, ProvisionedToken, StreamChunk,
};

/// Why a streamed response ended early.
enum StreamAbort {
    Crashed(String),
    TimedOut,
}

/// How an invocation ended, for the caller and for the REPORT line.
pub(crate) struct RunResult {
    pub response: InvokeResponse,
    /// Whether the environment can serve another invocation.
    pub reusable: bool,
}

pub(crate) struct Environment {
    pub generation: u64,
    pub last_used: Instant,
    api: RuntimeApi,
    guard: ProcessGuard,
    exited: watch::Receiver<Option<String>>,
    /// The log task, and the format of the platform's lines in it.
    log: PlatformLog,
    spawned_at: Instant,
    initialized: bool,
    /// What ends with init, until it has ended (shared with the Runtime API's handout hook).
    init_end: Arc<Mutex<Option<InitEnd>>>,
    memory_mb: u32,
    /// This environment's share of the host's memory budget.
    _charge: MemoryCharge,
    /// What serves the environment's network namespace: the Nimbus API inside it, and its
    /// way out (the egress proxy or the user-mode stack).
    _servers: Vec<AbortOnDrop>,
    /// Set for environments kept ready by provisioned concurrency (never reaped or evicted).
    pub provisioned: Option<ProvisionedToken>,
}

/// What happens once when an environment's init ends, whichever way it ends: the runtime's
/// first `/next` (on demand) or [`Environment::initialize`] (provisioned concurrency).
struct InitEnd {
    /// On demand: when the runtime was spawned, for the init line before the first START.
    since: Option<Instant>,
    /// The init CPU burst, to be lowered to the memory's share.
    boost: Option<nimbus_sandbox::InitBoost>,
}

/// A failure to start the runtime process at all, reported to the caller as a function
/// error (as Lambda reports a missing or broken bootstrap).
pub(crate) struct LaunchFailure {
    pub error_type: &'static str,
    pub message: String,
}

impl Environment {
    /// Starts a new environment for `function`, running its code from `code_dir`.
    pub(crate) async fn start(
        platform: &Platform,
        sandbox: &dyn Sandbox,
        function: &FunctionRecord,
        paths: &CodePaths,
        charge: MemoryCharge,
        provisioned: Option<ProvisionedToken>,
        egress_meter: Arc<std::sync::atomic::AtomicU64>,
    ) -> Result<Environment, LaunchFailure> {
        let code_dir = paths.task.as_path();
        let env_id = uuid::Uuid::new_v4().simple().to_string();
        let today = time::OffsetDateTime::now_utc().date();
        let stream = format!(
            "{:04}/{:02}/{:02}/[{}]{}",
            today.year(),
            u8::from(today.month()),
            today.day(),
            function.version,
            env_id
        );
        let layout = sandbox.layout();
        let mut extra_ports: Vec<u16> = Vec::new();
        if layout == Layout::Lambda {
            if platform.serve_api.is_some() {
                extra_ports.push(platform.api_port);
            }
            if matches!(platform.outbound, Outbound::Proxy) {
                extra_ports.push(proxy::PROXY_PORT);
            }
        }
        let stack = match &platform.outbound {
            Outbound::Nat(config) => Some(config),
            _ => None,
        };
        let net = sandbox
            .network(&extra_ports, stack.is_some())
            .map_err(|e| LaunchFailure {
                error_type: "Runtime.Unknown",
                message: format!("could not open the Runtime API: {e}"),
            })?;
        // The listeners come in the order of `extra_ports`.
        let mut servers: Vec<AbortOnDrop> = extra_ports
            .iter()
            .zip(net.extra)
            .filter_map(|(port, l)| match &platform.serve_api {
                Some(serve) if *port == platform.api_port => Some(AbortOnDrop(serve(l))),
                _ if *port == proxy::PROXY_PORT => Some(AbortOnDrop(proxy::serve(
                    l,
                    platform.api_port,
                    egress_meter.clone(),
                ))),
                _ => None,
            })
            .collect();
        if let (Some(tun), Some(config)) = (net.tun, stack) {
            let served =
                nimbus_egress::stack::serve(tun, config.clone(), egress_meter).map_err(|e| {
                    LaunchFailure {
                        error_type: "Runtime.Unknown",
                        message: format!("could not start the environment's network: {e}"),
                    }
                })?;
            servers.push(AbortOnDrop(served));
        }
        let listener = net
            .runtime_api
            .set_nonblocking(true)
            .and_then(|()| tokio::net::TcpListener::from_std(net.runtime_api))
            .map_err(|e| LaunchFailure {
                error_type: "Runtime.Unknown",
                message: format!("could not open the Runtime API: {e}"),
            })?;
        let (log_tx, log_rx) = mpsc::unbounded_channel();
        let log = PlatformLog::new(log_tx, &function.config.logging);
        let init_type = if provisioned.is_some() {
            "provisioned-concurrency"
        } else {
            "on-demand"
        };
        // On demand, init ends with the runtime's first `/next`, which takes the first event:
        // its end is reported there, just before that event's START (from the spawn time
        // set below). Provisioned environments report it from `initialize`.
        let init_end: Arc<Mutex<Option<InitEnd>>> = Arc::default();
        let (hook_log, hook_end) = (log.clone(), init_end.clone());
        let version = function.version.clone();
        let on_handout: nimbus_runtime_api::HandoutHook = Box::new(move |request_id: &str| {
            hook_log.send(LogCmd::Begin);
            if let Some(end) = hook_end.lock().ok().and_then(|mut e| e.take()) {
                if let Some(boost) = end.boost {
                    boost.end();
                }
                if let Some(since) = end.since {
                    hook_log.emit(&Event::InitDone {
                        init_type: "on-demand",
                        duration_ms: since.elapsed().as_secs_f64() * 1000.0,
                        status: Status::Success,
                    });
                }
            }
            hook_log.emit(&Event::Start {
                request_id,
                version: &version,
            });
        });
        let api = RuntimeApi::serve(listener, on_handout).map_err(|e| LaunchFailure {
            error_type: "Runtime.Unknown",
            message: format!("could not open the Runtime API: {e}"),
        })?;
        let family = nimbus_runtimes::family(&function.config.runtime);
        if matches!(family, Some(nimbus_runtimes::Family::Python { .. })) {
            wait_for_sdk(platform.runtimes.python_sdk()).await;
        }
        // The command is planned on the host's paths (it checks what exists), then, in
        // Lambda's layout, the code and layer directories are renamed /var/task and /opt.
        let mut command = platform
            .runtimes
            .command(&function.config.runtime, code_dir, paths.opt.as_deref())
            .map_err(|e| LaunchFailure {
                error_type: "Runtime.InvalidRuntime",
                message: e.to_string(),
            })?;
        if matches!(family, Some(nimbus_runtimes::Family::Provided)) && !command.program.is_file() {
            return Err(LaunchFailure {
                error_type: "Runtime.InvalidEntrypoint",
                message: "Couldn't find valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap]"
                    .into(),
            });
        }
        // What the runtime needs from the host besides the system, and where it sees it:
        // Nimbus' bootstraps at /var/runtime (as Lambda's runtime), the managed SDK, and the
        // interpreter's own prefix (e.g. a pyenv build) at its host path.
        let mut mounts = vec![
            (
                platform.runtimes.dir().to_path_buf(),
                PathBuf::from("/var/runtime"),
            ),
            (
                platform.runtimes.python_sdk().dir().to_path_buf(),
                PathBuf::from("/var/runtime-sdk"),
            ),
        ];
        if let Some(prefix) = command.program.parent().and_then(Path::parent) {
            if !prefix.starts_with(code_dir)
                && prefix != Path::new("/")
                && !prefix.starts_with("/usr")
            {
                mounts.push((prefix.to_path_buf(), prefix.to_path_buf()));
            }
        }
        let (task_dir, opt_dir) = match layout {
            Layout::Host => (code_dir.to_path_buf(), paths.opt.clone()),
            Layout::Lambda => {
                let mut renames: Vec<(String, String)> = mounts
                    .iter()
                    .map(|(h, i)| (h.display().to_string(), i.display().to_string()))
                    .collect();
                renames.push((code_dir.display().to_string(), "/var/task".into()));
                if let Some(opt) = &paths.opt {
                    renames.push((opt.display().to_string(), "/opt".into()));
                }
                // Longest host paths first, so nested directories map correctly.
                renames.sort_by_key(|(h, _)| std::cmp::Reverse(h.len()));
                let remap = |s: &str| {
                    let mut s = s.to_string();
                    for (h, i) in &renames {
                        s = s.replace(h.as_str(), i);
                    }
                    s
                };
                command.program = remap(&command.program.to_string_lossy()).into();
                command.args = command
                    .args
                    .iter()
                    .map(|a| remap(&a.to_string_lossy()).into())
                    .collect();
                command.env = command
                    .env
                    .iter()
                    .map(|(k, v)| (k.clone(), remap(v)))
                    .collect();
                (
                    PathBuf::from("/var/task"),
                    paths.opt.as_ref().map(|_| PathBuf::from("/opt")),
                )
            }
        };
        let cx = crate::env_vars::EnvContext {
            opt: opt_dir.as_deref(),
            code_dir: &task_dir,
            stream: &stream,
            runtime_api: &net.runtime_api_addr,
            runtime_env: &command.env,
            init_type,
            host_layout: layout == Layout::Host,
            proxy: (layout == Layout::Lambda && matches!(platform.outbound, Outbound::Proxy))
                .then_some(proxy::PROXY_URL),
        };
        let env = crate::env_vars::build(platform, function, &cx);
        let spec = LaunchSpec {
            program: command.program.clone(),
            args: command.args,
            cwd: code_dir.to_path_buf(),
            env,
            memory_mb: function.config.memory_mb,
            ephemeral_mb: function.config.ephemeral_mb,
            opt_dir: paths.opt.clone(),
            mounts,
            netns: net.netns,
            id: env_id.clone(),
        };
        let spawned_at = Instant::now();
        let running = sandbox.launch(&spec).map_err(|e| LaunchFailure {
            error_type: "Runtime.InvalidEntrypoint",
            message: e.to_string(),
        })?;
        if let Ok(mut end) = init_end.lock() {
            *end = Some(InitEnd {
                since: provisioned.is_none().then_some(spawned_at),
                boost: running.init_boost,
            });
        }
        let group = function.config.logging.log_group.clone();
        spawn_env_log(platform.logs.clone(), group, stream, running.output, log_rx);
        // A cold start's Tail log includes what init printed.
        log.send(LogCmd::Begin);
        log.emit(&Event::InitStart {
            runtime: &function.config.runtime,
            region: &platform.identity.region,
            function: &function.name,
            version: &function.version,
            init_type,
        });
        let (exit_tx, exited) = watch::channel(None);
        let mut child = running.child;
        tokio::spawn(async move {
            let status = child.wait().await;
            let text = match status {
                Ok(s) => report::exit_text(s),
                Err(e) => format!("wait failed: {e}"),
            };
            let _ = exit_tx.send(Some(text));
        });
        Ok(Environment {
            generation: function.generation,
            last_used: Instant::now(),
            api,
            guard: running.guard,
            exited,
            log,
            spawned_at,
            initialized: false,
            init_end,
            memory_mb: function.config.memory_mb,
            _charge: charge,
            _servers: servers,
            provisioned,
        })
    }

    /// Waits for the runtime's init to finish (its first `/next`), as provisioned
    /// concurrency does before an environment counts as ready. Fails with the runtime's
    /// init error, or when it exits or exceeds `budget`.
    pub(crate) async fn initialize(&mut self, budget: Duration) -> Result<(), String> {
        let mut exited = self.exited.clone();
        let outcome = tokio::select! {
            ready = self.api.ready() => Ok(ready),
            status = exited.wait_for(Option::is_some) => Err(status.map(|s| s.clone().unwrap_or_default()).unwrap_or_default()),
            _ = tokio::time::sleep(budget) => return Err(format!("init did not finish within {}s", budget.as_secs())),
        };
        match outcome {
            Ok(ready) => {
                self.initialized = true;
                let end = self.init_end.lock().ok().and_then(|mut e| e.take());
                if let Some(boost) = end.and_then(|e| e.boost) {
                    boost.end();
                }
                self.emit(Event::InitDone {
                    init_type: self.init_type(),
                    duration_ms: ready.duration_since(self.spawned_at).as_secs_f64() * 1000.0,
                    status: Status::Success,
                });
                Ok(())
            }
            Err(status) => Err(match self.api.init_error() {
                Some(e) => String::from_utf8_lossy(&e.body).into_owned(),
                None => format!("Runtime exited with error: {status}"),
            }),
        }
    }

    /// Freezes the environment while it waits in its pool, `delay` after it went idle
    /// unless it is busy again by then: background work does not run (and burns no CPU)
    /// between invocations, as on Lambda.
    pub(crate) fn freeze_after(&self, delay: Duration) {
        self.guard.freeze_after(delay);
    }

    /// Thaws the environment for an invocation.
    pub(crate) fn thaw(&self) {
        self.guard.thaw();
    }

    /// Whether the runtime process is still there.
    pub(crate) fn is_alive(&self) -> bool {
        self.exited.borrow().is_none()
    }

    /// Kills the runtime (the process group dies with `guard` as well).
    pub(crate) fn kill(&self) {
        self.guard.kill();
    }

    fn init_type(&self) -> &'static str {
        if self.provisioned.is_some() {
            "provisioned-concurrency"
        } else {
            "on-demand"
        }
    }

    fn emit(&self, event: Event<'_>) {
        self.log.emit(&event);
    }

    /// The end of an invocation: END and REPORT (JSON: runtimeDone and report).
    fn end(&self, report: report::Report<'_>, produced_bytes: Option<usize>) {
        self.emit(Event::RuntimeDone {
            request_id: report.request_id,
            status: report.status,
            duration_ms: report.duration_ms,
            produced_bytes,
        });
        self.emit(Event::Report(report));
    }

    async fn wait_exit(&mut self) -> String {
        match self.exited.wait_for(Option::is_some).await {
            Ok(v) => v.clone().unwrap_or_default(),
            Err(_) => "unknown".into(),
        }
    }

    /// Runs one invocation to completion. `None` means a warm environment turned out to be
    /// gone before it took the event (its runtime exited while idle): nothing ran, and the
    /// caller retries on another environment.
    pub(crate) async fn run(
        &mut self,
        function: &FunctionRecord,
        req: &InvokeRequest,
    ) -> Option<RunResult> {
        let request_id = req.request_id.clone();
        let timeout = Duration::from_secs(u64::from(function.config.timeout_s));
        let cold = !self.initialized;

        let invocation = Invocation {
            request_id: request_id.clone(),
            payload: req.payload.clone(),
            timeout,
            invoked_function_arn: req.invoked_arn.clone(),
            trace_id: Some(report::trace_id()),
            client_context: req.client_context.clone(),
            cognito_identity: None,
        };
        let Ok(mut pending) = self.api.dispatch(invocation) else {
            return None;
        };

        // Phase 1: the runtime takes the event (after its init, on a cold start).
        let init_budget = Duration::from_millis(INIT_TIMEOUT_MS) + timeout;
        let started = tokio::select! {
            biased;
            s = &mut pending.started => s.ok(),
            status = self.wait_exit() => {
                if !cold {
                    return None;
                }
                return Some(self.init_failed(&request_id, status, function).await);
            }
            _ = tokio::time::sleep(init_budget) => None,
        };
        let Some(started) = started else {
            let secs = init_budget.as_secs_f64();
            return Some(self.timed_out(&request_id, secs, None, function).await);
        };
        let init_ms = if cold {
            self.initialized = true;
            let ready = self.api.ready_at().unwrap_or(started.at);
            Some(ready.duration_since(self.spawned_at).as_secs_f64() * 1000.0)
        } else {
            None
        };

        // Phase 2: its answer, a crash, or the deadline.
        let deadline = tokio::time::Instant::from_std(started.at + timeout);
        let answered = tokio::select! {
            biased;
            o = &mut pending.outcome => o.ok(),
            status = self.wait_exit() => {
                let message = format!("RequestId: {request_id} Error: Runtime exited with error: {status}");
                let error_type = if self.guard.oom_killed() { "Runtime.OutOfMemory" } else { "Runtime.ExitError" };
                self.emit(Event::Crashed { message: &message, error_type });
                let duration_ms = started.at.elapsed().as_secs_f64() * 1000.0;
                return Some(self.finish_failure(&request_id, init_ms, duration_ms, error_type, message, function).await);
            }
            _ = tokio::time::sleep_until(deadline) => None,
        };
        let Some((outcome, done)) = answered else {
            let secs = started.at.elapsed().as_secs_f64();
            return Some(self.timed_out(&request_id, secs, init_ms, function).await);
        };
        let (outcome, done, streamed) = match outcome {
            Outcome::Stream {
                content_type,
                parts,
            } => match self.drain_stream(req, content_type, parts, deadline).await {
                Ok((outcome, done)) => (outcome, done, true),
                Err(StreamAbort::Crashed(status)) => {
                    let message = format!(
                        "RequestId: {request_id} Error: Runtime exited with error: {status}"
                    );
                    let error_type = if self.guard.oom_killed() {
                        "Runtime.OutOfMemory"
                    } else {
                        "Runtime.ExitError"
                    };
                    self.emit(Event::Crashed {
                        message: &message,
                        error_type,
                    });
                    let duration_ms = started.at.elapsed().as_secs_f64() * 1000.0;
                    return Some(
                        self.finish_failure(
                            &request_id,
                            init_ms,
                            duration_ms,
                            error_type,
                            message,
                            function,
                        )
                        .await,
                    );
                }
                Err(StreamAbort::TimedOut) => {
                    let secs = started.at.elapsed().as_secs_f64();
                    return Some(self.timed_out(&request_id, secs, init_ms, function).await);
                }
            },
            other => (other, done, false),
        };
        let duration_ms = done.duration_since(started.at).as_secs_f64() * 1000.0;
        let (body, content_type, function_error, status) = match outcome {
            Outcome::Response { body, content_type } => {
                (body, content_type.and_then(|v| v.to_str().ok().map(str::to_owned)), false, None)
            }
            Outcome::Error { body, .. } => (body, None, true, None),
            // Drained above.
            Outcome::Stream { .. } => (Bytes::new(), None, false, None),
            Outcome::ResponseTooLarge => (
                Bytes::from(
                    serde_json::json!({
                        "errorMessage": format!("Response payload size exceeded maximum allowed payload size ({} bytes).", nimbus_model::limits::RESPONSE_MAX_BYTES),
                        "errorType": "Function.ResponseSizeTooLarge",
                    })
                    .to_string(),
                ),
                None,
                true,
                Some("Function.ResponseSizeTooLarge"),
            ),
        };
        self.end(
            report::Report {
                request_id: &request_id,
                duration_ms,
                memory_mb: self.memory_mb,
                max_memory_mb: self.guard.max_memory_used_mb(),
                init_ms,
                status: status.map_or(Status::Success, Status::Error),
            },
            (!streamed).then_some(body.len()),
        );
        let log_tail = self.finish_log(req.want_tail).await;
        Some(RunResult {
            response: InvokeResponse {
                streamed,
                body,
                content_type,
                function_error,
                executed_version: function.version.clone(),
                log_tail,
                init_ms,
                duration_ms,
            },
            reusable: true,
        })
    }

    /// Passes a streamed response on as it arrives (or collects it, 6 MB at most, when the
    /// caller does not take streams), watching for a crash and the deadline. Returns what
    /// the stream amounts to as an ordinary outcome, and when it ended.
    async fn drain_stream(
        &mut self,
        req: &InvokeRequest,
        content_type: Option<nimbus_runtime_api::RuntimeHeaderValue>,
        mut parts: tokio::sync::mpsc::Receiver<StreamPart>,
        deadline: tokio::time::Instant,
    ) -> Result<(Outcome, std::time::Instant), StreamAbort> {
        let content_type = content_type.and_then(|v| v.to_str().ok().map(str::to_owned));
        if let Some(tx) = &req.stream {
            let _ = tx
                .send(StreamChunk::Start {
                    content_type: content_type.clone(),
                })
                .await;
        }
        let mut collected = Vec::new();
        let mut too_large = false;
        loop {
            let part = tokio::select! {
                biased;
                p = parts.recv() => p,
                status = self.wait_exit() => return Err(StreamAbort::Crashed(status)),
                _ = tokio::time::sleep_until(deadline) => return Err(StreamAbort::TimedOut),
            };
            match part {
                None => break,
                Some(StreamPart::Data(data)) => match &req.stream {
                    // A caller that went away does not stop the function; its bytes are dropped.
                    Some(tx) => {
                        if tokio::time::timeout_at(deadline, tx.send(StreamChunk::Data(data)))
                            .await
                            .is_err()
                        {
                            return Err(StreamAbort::TimedOut);
                        }
                    }
                    None if collected.len() + data.len()
                        > nimbus_model::limits::RESPONSE_MAX_BYTES =>
                    {
                        too_large = true
                    }
                    None => collected.extend_from_slice(&data),
                },
                Some(StreamPart::Error { error_type, body }) => {
                    let body = if body.is_empty() {
                        Bytes::from(
                            serde_json::json!({ "errorType": error_type, "errorMessage": "" })
                                .to_string(),
                        )
                    } else {
                        body
                    };
                    return Ok((
                        Outcome::Error {
                            body,
                            error_type: Some(error_type),
                        },
                        std::time::Instant::now(),
                    ));
                }
            }
        }
        let done = std::time::Instant::now();
        if too_large {
            return Ok((Outcome::ResponseTooLarge, done));
        }
        Ok((
            Outcome::Response {
                body: Bytes::from(collected),
                content_type: content_type
                    .and_then(|c| nimbus_runtime_api::RuntimeHeaderValue::from_str(&c).ok()),
            },
            done,
        ))
    }

    async fn finish_log(&self, want: bool) -> Option<String> {
        let (tx, rx) = oneshot::channel();
        self.log.send(LogCmd::Finish(tx));
        if want {
            rx.await.ok()
        } else {
            None
        }
    }

    async fn init_failed(
        &mut self,
        request_id: &str,
        status: String,
        function: &FunctionRecord,
    ) -> RunResult {
        let init_ms = self.spawned_at.elapsed().as_secs_f64() * 1000.0;
        if let Some(err) = self.api.init_error() {
            let error_type = err
                .error_type
                .clone()
                .or_else(|| {
                    serde_json::from_slice::<serde_json::Value>(&err.body)
                        .ok()
                        .and_then(|v| {
                            v.get("errorType")
                                .and_then(|t| t.as_str())
                                .map(str::to_owned)
                        })
                })
                .unwrap_or_else(|| "Runtime.Unknown".into());
            let status = Status::Error(&error_type);
            self.emit(Event::InitDone {
                init_type: self.init_type(),
                duration_ms: init_ms,
                status,
            });
            self.emit(Event::Start {
                request_id,
                version: &function.version,
            });
            self.end(
                report::Report {
                    request_id,
                    duration_ms: 0.0,
                    memory_mb: self.memory_mb,
                    max_memory_mb: None,
                    init_ms: Some(init_ms),
                    status,
                },
                None,
            );
            let log_tail = self.finish_log(true).await;
            return RunResult {
                response: InvokeResponse {
                    streamed: false,
                    body: err.body,
                    content_type: None,
                    function_error: true,
                    executed_version: function.version.clone(),
                    log_tail,
                    init_ms: Some(init_ms),
                    duration_ms: 0.0,
                },
                reusable: false,
            };
        }
        let message = format!("RequestId: {request_id} Error: Runtime exited with error: {status}");
        self.emit(Event::InitDone {
            init_type: self.init_type(),
            duration_ms: init_ms,
            status: Status::Error("Runtime.ExitError"),
        });
        self.emit(Event::Crashed {
            message: &message,
            error_type: "Runtime.ExitError",
        });
        self.finish_failure(
            request_id,
            Some(init_ms),
            0.0,
            "Runtime.ExitError",
            message,
            function,
        )
        .await
    }

    async fn timed_out(
        &mut self,
        request_id: &str,
        secs: f64,
        init_ms: Option<f64>,
        function: &FunctionRecord,
    ) -> RunResult {
        // Read the peak before the runtime goes (its cgroup keeps the figure).
        let max_memory_mb = self.guard.max_memory_used_mb();
        self.kill();
        self.emit(Event::TimedOut { request_id, secs });
        let message =
            format!("RequestId: {request_id} Error: Task timed out after {secs:.2} seconds");
        self.end(
            report::Report {
                request_id,
                duration_ms: secs * 1000.0,
                memory_mb: self.memory_mb,
                max_memory_mb,
                init_ms,
                status: Status::Timeout,
            },
            None,
        );
        let log_tail = self.finish_log(true).await;
        RunResult {
            response: InvokeResponse {
                streamed: false,
                body: error_body("Sandbox.Timedout", &message),
                content_type: None,
                function_error: true,
                executed_version: function.version.clone(),
                log_tail,
                init_ms,
                duration_ms: secs * 1000.0,
            },
            reusable: false,
        }
    }

    async fn finish_failure(
        &mut self,
        request_id: &str,
        init_ms: Option<f64>,
        duration_ms: f64,
        error_type: &str,
        message: String,
        function: &FunctionRecord,
    ) -> RunResult {
        // Read the peak before the environment goes (its cgroup keeps the figure).
        let max_memory_mb = self.guard.max_memory_used_mb();
        self.kill();
        self.end(
            report::Report {
                request_id,
                duration_ms,
                memory_mb: self.memory_mb,
                max_memory_mb,
                init_ms,
                status: Status::Error(error_type),
            },
            None,
        );
        let log_tail = self.finish_log(true).await;
        RunResult {
            response: InvokeResponse {
                streamed: false,
                body: error_body(error_type, &message),
                content_type: None,
                function_error: true,
                executed_version: function.version.clone(),
                log_tail,
                init_ms,
                duration_ms,
            },
            reusable: false,
        }
    }
}

/// Lets a Python environment started while the managed boto3 is being installed wait for it
/// (bounded), instead of failing `import boto3`.
async fn wait_for_sdk(sdk: &nimbus_runtimes::PythonSdk) {
    let give_up = Instant::now() + Duration::from_secs(120);
    while sdk.is_installing() && !sdk.is_ready() && Instant::now() < give_up {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Stops a server task when the environment it serves goes away.
pub(crate) struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A platform-generated function error body.
pub(crate) fn error_body(error_type: &str, message: &str) -> Bytes {
    Bytes::from(serde_json::json!({ "errorType": error_type, "errorMessage": message }).to_string())
}

/// Reports a launch failure as the invocation's outcome.
pub(crate) fn launch_failed(
    function: &FunctionRecord,
    request_id: &str,
    failure: LaunchFailure,
) -> InvokeResponse {
    InvokeResponse {
        streamed: false,
        body: error_body(
            failure.error_type,
            &format!("RequestId: {request_id} Error: {}", failure.message),
        ),
        content_type: None,
        function_error: true,
        executed_version: function.version.clone(),
        log_tail: None,
        init_ms: None,
        duration_ms: 0.0,
    }
}
