//! The invoke path. [`Invoker::invoke`] takes an idle environment of the function version
//! (or starts one), hands it the event through its Runtime API, waits for the answer, a
//! crash or the deadline, writes START/END/REPORT, and returns the environment to its pool
//! if it is still good. Pools are per function version and hold only a short lock each;
//! there is no global lock on this path.

mod concurrency;
mod env_vars;
mod environment;
mod logs;
pub mod metrics;
pub mod report;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use dashmap::DashMap;
use nimbus_model::{FunctionRecord, Identity};
use nimbus_runtimes::Runtimes;
use nimbus_sandbox::Sandbox;
use tokio::sync::mpsc;

pub use concurrency::{Concurrency, ReserveError, ScaleLimiter, Throttle};
use environment::Environment;
pub use logs::LogSink;

/// What environments need to know about the platform around them.
#[derive(Clone)]
pub struct Platform {
    pub identity: Identity,
    /// The URL functions use to reach Nimbus (`AWS_ENDPOINT_URL`).
    pub endpoint_url: String,
    pub runtimes: Arc<Runtimes>,
    pub logs: LogSink,
    /// The port of the Nimbus API (`AWS_ENDPOINT_URL`).
    pub api_port: u16,
    /// Serves the Nimbus API on a listener opened inside an environment's network
    /// namespace, so functions reach Nimbus at the same URL without host networking.
    pub serve_api: Option<ApiHook>,
    /// How sandboxed functions reach the outside ([`nimbus_egress`]).
    pub outbound: nimbus_egress::Outbound,
}

/// See [`Platform::serve_api`].
pub type ApiHook = Arc<dyn Fn(std::net::TcpListener) -> tokio::task::JoinHandle<()> + Send + Sync>;

/// Where a function version's files are: its unpacked code (`/var/task`) and its merged
/// layers (`/opt`).
#[derive(Debug, Clone)]
pub struct CodePaths {
    pub task: PathBuf,
    pub opt: Option<PathBuf>,
}

impl std::fmt::Debug for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Platform")
            .field("identity", &self.identity)
            .field("endpoint_url", &self.endpoint_url)
            .finish()
    }
}

/// One synchronous invocation.
#[derive(Debug, Clone)]
pub struct InvokeRequest {
    pub request_id: String,
    pub payload: Bytes,
    /// The ARN the caller used, qualifier included.
    pub invoked_arn: String,
    /// Decoded `X-Amz-Client-Context` JSON.
    pub client_context: Option<String>,
    /// `LogType=Tail`: return this invocation's log.
    pub want_tail: bool,
    /// Where a streamed response goes as the function writes it (InvokeWithResponseStream,
    /// streaming Function URLs). Without it a streamed response is collected (6 MB at most).
    pub stream: Option<mpsc::Sender<StreamChunk>>,
}

/// What a caller that takes streamed responses receives, in order: `Start` once the
/// runtime begins to stream, then the data. A function that does not stream sends nothing;
/// its response is in the [`InvokeResponse`] as usual.
#[derive(Debug)]
pub enum StreamChunk {
    Start { content_type: Option<String> },
    Data(Bytes),
}

/// The result of an invocation that ran (successfully or not). For a streamed response
/// `streamed` is set, `body` is empty on success and holds the error document when the
/// stream failed.
#[derive(Debug)]
pub struct InvokeResponse {
    pub streamed: bool,
    pub body: Bytes,
    pub content_type: Option<String>,
    /// `X-Amz-Function-Error: Unhandled`.
    pub function_error: bool,
    pub executed_version: String,
    /// The invocation's log lines (START … REPORT), when asked for.
    pub log_tail: Option<String>,
    pub init_ms: Option<f64>,
    pub duration_ms: f64,
}

#[derive(Hash, PartialEq, Eq, Clone, Debug)]
struct PoolKey {
    name: String,
    version: String,
}

/// A snapshot of one function version's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VersionStats {
    pub invocations: u64,
    /// Invocations that ended in a function error (`X-Amz-Function-Error`).
    pub errors: u64,
    /// Total handler time, microseconds.
    pub duration_us: u64,
}

/// How long an environment stays thawed after an invocation: one invoked again within it
/// (a busy function) pays for neither freezing nor thawing.
const FREEZE_DELAY: Duration = Duration::from_millis(10);

#[derive(Default)]
struct Pool {
    idle: Mutex<Vec<Environment>>,
}

impl Pool {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Environment>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The most recently used idle environment of the current generation.
    fn checkout(&self, generation: u64) -> Option<Environment> {
        let mut idle = self.lock();
        while let Some(env) = idle.pop() {
            if env.generation == generation && env.is_alive() {
                drop(idle);
                env.thaw();
                return Some(env);
            }
            env.kill();
        }
        None
    }
}

/// Counts a provisioned environment while it lives.
#[derive(Debug)]
pub struct ProvisionedToken {
    live: Arc<AtomicU32>,
}

impl Drop for ProvisionedToken {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Provisioned concurrency of one function version.
#[derive(Debug, Default)]
struct Provisioned {
    requested: AtomicU32,
    live: Arc<AtomicU32>,
    /// Once every requested environment has been ready at least once.
    ready: std::sync::atomic::AtomicBool,
    failure: Mutex<Option<String>>,
    /// One reconciliation at a time.
    busy: tokio::sync::Mutex<()>,
    function: Mutex<Option<(Arc<FunctionRecord>, CodePaths)>>,
}

/// Lambda's view of a provisioned concurrency configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionedStatus {
    pub requested: u32,
    pub available: u32,
    /// `IN_PROGRESS`, `READY` or `FAILED`.
    pub status: &'static str,
    pub reason: Option<String>,
}

/// Runs invocations on pools of environments.
pub struct Invoker {
    platform: Platform,
    sandbox: Arc<dyn Sandbox>,
    pools: DashMap<PoolKey, Arc<Pool>>,
    metrics: metrics::Metrics,
    concurrency: Concurrency,
    memory: Arc<MemoryBudget>,
    provisioned: DashMap<PoolKey, Arc<Provisioned>>,
    /// Freeze idle environments (cgroup freezer), as Lambda does.
    freeze_idle: bool,
    scaling: ScaleLimiter,
}

/// The host memory environments may claim, counted in their configured `MemorySize`.
#[derive(Debug)]
pub(crate) struct MemoryBudget {
    limit_mb: u64,
    used_mb: AtomicU64,
}

/// One environment's share of the budget, given back when the environment goes.
#[derive(Debug)]
pub(crate) struct MemoryCharge {
    budget: Arc<MemoryBudget>,
    mb: u64,
}

impl Drop for MemoryCharge {
    fn drop(&mut self) {
        self.budget.used_mb.fetch_sub(self.mb, Ordering::AcqRel);
    }
}

impl std::fmt::Debug for Invoker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invoker")
            .field("sandbox", &self.sandbox.name())
            .finish()
    }
}

impl Invoker {
    pub fn new(platform: Platform, sandbox: Arc<dyn Sandbox>, concurrency: Concurrency) -> Self {
        Invoker {
            platform,
            sandbox,
            pools: DashMap::new(),
            metrics: metrics::Metrics::default(),
            concurrency,
            memory: Arc::new(MemoryBudget {
                limit_mb: u64::MAX,
                used_mb: AtomicU64::new(0),
            }),
            provisioned: DashMap::new(),
            freeze_idle: true,
            scaling: ScaleLimiter::new(1000),
        }
    }

    /// Whether idle environments are frozen (where the sandbox has a freezer).
    pub fn with_freezing(mut self, on: bool) -> Self {
        self.freeze_idle = on;
        self
    }

    /// Keeps `n` initialised environments of `function` (a published version) ready, with
    /// `AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency`; 0 removes the setting.
    pub fn set_provisioned(
        self: &Arc<Self>,
        function: Arc<FunctionRecord>,
        paths: CodePaths,
        n: u32,
    ) {
        let key = PoolKey {
            name: function.name.clone(),
            version: function.version.clone(),
        };
        if n == 0 {
            self.provisioned.remove(&key);
            if let Some(pool) = self.pools.get(&key) {
                pool.lock().retain(|e| e.provisioned.is_none());
            }
            return;
        }
        let set = self.provisioned.entry(key.clone()).or_default().clone();
        set.requested.store(n, Ordering::Release);
        set.ready.store(false, Ordering::Release);
        *set.failure.lock().unwrap_or_else(|e| e.into_inner()) = None;
        *set.function.lock().unwrap_or_else(|e| e.into_inner()) = Some((function, paths));
        let this = self.clone();
        tokio::spawn(async move { this.reconcile(&key, &set).await });
    }

    /// Starts provisioned environments until the requested number live.
    async fn reconcile(&self, key: &PoolKey, set: &Provisioned) {
        let _one = set.busy.lock().await;
        let Some((function, paths)) = set
            .function
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        else {
            return;
        };
        let pool = self.pool(&function);
        // Excess environments (a smaller request) are dropped from the idle list.
        let requested = set.requested.load(Ordering::Acquire);
        {
            let mut idle = pool.lock();
            while set.live.load(Ordering::Acquire) > requested {
                match idle.iter().position(|e| e.provisioned.is_some()) {
                    Some(i) => drop(idle.remove(i)),
                    None => break,
                }
            }
        }
        while set.live.load(Ordering::Acquire) < set.requested.load(Ordering::Acquire) {
            if !self.provisioned.contains_key(key) {
                return;
            }
            let Ok(charge) = self.charge(function.config.memory_mb) else {
                self.provision_failed(set, "the host's memory budget is exhausted".into());
                return;
            };
            set.live.fetch_add(1, Ordering::AcqRel);
            let token = ProvisionedToken {
                live: set.live.clone(),
            };
            let started = Environment::start(
                &self.platform,
                self.sandbox.as_ref(),
                &function,
                &paths,
                charge,
                Some(token),
                self.metrics.egress_meter(&function),
            )
            .await;
            let mut env = match started {
                Ok(env) => env,
                Err(f) => return self.provision_failed(set, f.message),
            };
            let budget = Duration::from_secs(u64::from(function.config.timeout_s).max(130));
            if let Err(reason) = env.initialize(budget).await {
                env.kill();
                return self.provision_failed(set, reason);
            }
            env.last_used = std::time::Instant::now();
            if self.freeze_idle {
                env.freeze_after(Duration::ZERO);
            }
            pool.lock().push(env);
        }
        set.ready.store(true, Ordering::Release);
    }

    fn provision_failed(&self, set: &Provisioned, reason: String) {
        tracing::warn!(reason = %reason, "provisioned concurrency failed");
        *set.failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason);
    }

    /// Replaces provisioned environments that died (after a crash or timeout).
    pub async fn replenish_provisioned(&self) {
        let sets: Vec<(PoolKey, Arc<Provisioned>)> = self
            .provisioned
            .iter()
            .map(|e| (e.key().clone(), e.value().clone()))
            .collect();
        for (key, set) in sets {
            let failed = set
                .failure
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_some();
            if !failed && set.live.load(Ordering::Acquire) < set.requested.load(Ordering::Acquire) {
                self.reconcile(&key, &set).await;
            }
        }
    }

    /// The state of a version's provisioned concurrency, if configured.
    pub fn provisioned_status(&self, name: &str, version: &str) -> Option<ProvisionedStatus> {
        let key = PoolKey {
            name: name.to_string(),
            version: version.to_string(),
        };
        let set = self.provisioned.get(&key)?.clone();
        let requested = set.requested.load(Ordering::Acquire);
        let available = set.live.load(Ordering::Acquire).min(requested);
        let failure = set
            .failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let status = if failure.is_some() {
            "FAILED"
        } else if set.ready.load(Ordering::Acquire) {
            "READY"
        } else {
            "IN_PROGRESS"
        };
        Some(ProvisionedStatus {
            requested,
            available,
            status,
            reason: failure,
        })
    }

    /// Sets the burst scaling rate: new environments per function per 10 s (AWS: 1000).
    pub fn with_scale_rate(mut self, per_10s: u32) -> Self {
        self.scaling = ScaleLimiter::new(per_10s);
        self
    }

    /// Caps the memory (sum of `MemorySize`) of all environments together; beyond it, the
    /// least recently used idle environments are stopped to make room.
    pub fn with_memory_budget(mut self, limit_mb: u64) -> Self {
        self.memory = Arc::new(MemoryBudget {
            limit_mb,
            used_mb: AtomicU64::new(0),
        });
        self
    }

    /// Claims memory for a new environment, evicting idle ones (least recently used first)
    /// when the budget is full; throttles when everything is busy.
    fn charge(&self, memory_mb: u32) -> Result<MemoryCharge, Throttle> {
        let mb = u64::from(memory_mb);
        loop {
            let claimed =
                self.memory
                    .used_mb
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                        (used + mb <= self.memory.limit_mb).then_some(used + mb)
                    });
            if claimed.is_ok() {
                return Ok(MemoryCharge {
                    budget: self.memory.clone(),
                    mb,
                });
            }
            if !self.evict_lru() {
                return Err(Throttle::ConcurrentInvocationLimitExceeded);
            }
        }
    }

    /// Stops the least recently used idle environment; false if there is none.
    fn evict_lru(&self) -> bool {
        let mut oldest: Option<(std::time::Instant, Arc<Pool>)> = None;
        for pool in self.pools.iter() {
            let lru = pool
                .lock()
                .iter()
                .filter(|e| e.provisioned.is_none())
                .map(|e| e.last_used)
                .min();
            if let Some(t) = lru {
                if oldest.as_ref().is_none_or(|(o, _)| t < *o) {
                    oldest = Some((t, pool.value().clone()));
                }
            }
        }
        let Some((t, pool)) = oldest else {
            return false;
        };
        let mut idle = pool.lock();
        match idle
            .iter()
            .position(|e| e.provisioned.is_none() && e.last_used == t)
        {
            Some(i) => {
                idle.remove(i).kill();
                true
            }
            None => idle.iter().any(|e| e.provisioned.is_none()), // raced with a checkout: look again
        }
    }

    /// Memory claimed by environments now, in MB (of configured `MemorySize`).
    pub fn memory_in_use_mb(&self) -> u64 {
        self.memory.used_mb.load(Ordering::Acquire)
    }

    fn pool(&self, f: &FunctionRecord) -> Arc<Pool> {
        let key = PoolKey {
            name: f.name.clone(),
            version: f.version.clone(),
        };
        if let Some(p) = self.pools.get(&key) {
            return p.clone();
        }
        self.pools.entry(key).or_default().clone()
    }

    /// Invokes `function` (whose code is unpacked at `code_dir`).
    pub async fn invoke(
        &self,
        function: Arc<FunctionRecord>,
        paths: CodePaths,
        req: InvokeRequest,
    ) -> Result<InvokeResponse, Throttle> {
        let metrics = self.metrics.version(&function);
        // The slot is held until this invocation's environment is back in its pool.
        let _slot = self.concurrency.acquire(&function.name).inspect_err(|_| {
            metrics.throttles.fetch_add(1, Ordering::Relaxed);
        })?;
        let _running = metrics::Metrics::running(&metrics);
        let pool = self.pool(&function);
        let (mut env, result) = loop {
            let mut env = match pool.checkout(function.generation) {
                Some(env) => env,
                None => match Environment::start(
                    &self.platform,
                    self.sandbox.as_ref(),
                    &function,
                    &paths,
                    // Cold starts draw on the function's burst scaling budget.
                    self.scaling
                        .take(&function.name)
                        .and_then(|()| self.charge(function.config.memory_mb))
                        .inspect_err(|_| {
                            metrics.throttles.fetch_add(1, Ordering::Relaxed);
                        })?,
                    None,
                    self.metrics.egress_meter(&function),
                )
                .await
                {
                    Ok(env) => env,
                    Err(failure) => {
                        tracing::warn!(function = %function.name, error = failure.message, "environment failed to start");
                        return Ok(environment::launch_failed(
                            &function,
                            &req.request_id,
                            failure,
                        ));
                    }
                },
            };
            // A new environment always yields a result, so this retries at most once per
            // idle environment that died unseen.
            match env.run(&function, &req).await {
                Some(result) => break (env, result),
                None => env.kill(),
            }
        };
        self.metrics
            .record(&metrics, &function, &req.invoked_arn, &result.response);
        if result.reusable && env.is_alive() {
            env.last_used = std::time::Instant::now();
            if self.freeze_idle {
                env.freeze_after(FREEZE_DELAY);
            }
            let mut idle = pool.lock();
            idle.push(env);
        } else {
            env.kill();
        }
        Ok(result.response)
    }

    /// The account's concurrency (limits, reservations, executions in flight).
    pub fn concurrency(&self) -> &Concurrency {
        &self.concurrency
    }

    /// The sandbox environments run in (`process (UNISOLATED)`, `sandbox`, …).
    pub fn isolation(&self) -> &'static str {
        self.sandbox.name()
    }

    /// Everything counted since the server started, for metrics and the bill.
    pub fn metrics(&self) -> &metrics::Metrics {
        &self.metrics
    }

    /// Counters per version of a function, since the server started.
    pub fn stats(&self, name: &str) -> Vec<(String, VersionStats)> {
        let mut out: Vec<(String, VersionStats)> = self
            .metrics
            .versions()
            .into_iter()
            .filter(|((n, _), _)| n == name)
            .map(|((_, version), v)| {
                (
                    version,
                    VersionStats {
                        invocations: v.invocations.load(Ordering::Relaxed),
                        errors: v.errors.load(Ordering::Relaxed),
                        duration_us: v.duration_us.load(Ordering::Relaxed),
                    },
                )
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Stops the idle environments of a function (after an update or delete); busy ones
    /// are retired when they finish, by their stale generation.
    pub fn retire(&self, name: &str) {
        for pool in self.pools.iter().filter(|p| p.key().name == name) {
            for env in pool.lock().drain(..) {
                env.kill();
            }
        }
        self.pools.retain(|k, _| k.name != name);
        self.provisioned.retain(|k, _| k.name != name);
    }

    /// Stops the idle environments of one version (after it changed or was deleted).
    pub fn retire_version(&self, name: &str, version: &str) {
        let key = PoolKey {
            name: name.to_string(),
            version: version.to_string(),
        };
        self.provisioned.remove(&key);
        if let Some((_, pool)) = self.pools.remove(&key) {
            for env in pool.lock().drain(..) {
                env.kill();
            }
        }
    }

    /// Stops environments idle for longer than `idle_for`; returns how many.
    pub fn reap_idle(&self, idle_for: Duration) -> usize {
        let mut reaped = 0;
        for pool in self.pools.iter() {
            let mut idle = pool.lock();
            let before = idle.len();
            idle.retain(|env| {
                let keep = env.is_alive()
                    && (env.provisioned.is_some() || env.last_used.elapsed() < idle_for);
                if !keep {
                    env.kill();
                }
                keep
            });
            reaped += before - idle.len();
        }
        reaped
    }

    /// Number of idle environments (for diagnostics).
    pub fn idle_count(&self) -> usize {
        self.pools.iter().map(|p| p.lock().len()).sum()
    }

    /// Stops every environment (graceful shutdown).
    pub fn shutdown(&self) {
        for pool in self.pools.iter() {
            for env in pool.lock().drain(..) {
                env.kill();
            }
        }
        self.pools.clear();
    }

    pub fn platform(&self) -> &Platform {
        &self.platform
    }
}
