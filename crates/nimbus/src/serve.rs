//! `nimbus serve`: wires the store, code blobs, runtimes, sandbox, invoker and HTTP API
//! together, then serves until SIGINT/SIGTERM.

use std::collections::BTreeMap;
use std::future::IntoFuture;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use nimbus_artifact::FsBlobs;
use nimbus_control_plane::async_invoke::RetryPolicy;
use nimbus_control_plane::{AppState, AsyncInvoker, Bus, Catalog};
use nimbus_egress::Outbound;
use nimbus_invoker::{Concurrency, Invoker, LogSink, Platform};
use nimbus_model::Identity;
use nimbus_runtimes::{RuntimeOptions, Runtimes};
use nimbus_sandbox::{NamespaceSandbox, ProcessSandbox, Sandbox};
use nimbus_store::SqliteStore;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "NIMBUS_LISTEN", default_value = "127.0.0.1:9600")]
    listen: SocketAddr,
    /// Where functions, code and logs are kept.
    #[arg(long, env = "NIMBUS_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Region this endpoint answers as.
    #[arg(long, env = "NIMBUS_REGION", default_value = "us-east-1")]
    region: String,
    /// 12-digit account id used in ARNs.
    #[arg(long, env = "NIMBUS_ACCOUNT_ID", default_value = "000000000000")]
    account_id: String,
    /// How environments are isolated: `sandbox` (namespaces, read-only root, unprivileged
    /// user, cgroups; needs root), `process` (plain host processes, NOT isolated), or `auto`:
    /// the sandbox where this host allows it, else process isolation (with a warning).
    #[arg(long, env = "NIMBUS_ISOLATION", default_value = "auto")]
    isolation: String,
    /// Map a runtime to an interpreter, e.g. `python3.12=/usr/bin/python3.12` (repeatable).
    #[arg(long = "runtime", value_name = "ID=PATH")]
    runtimes: Vec<String>,
    /// Refuse a python3.x whose exact interpreter is not installed (default: use the nearest).
    #[arg(long)]
    strict_runtimes: bool,
    /// Stop environments idle for this many seconds.
    #[arg(long, env = "NIMBUS_IDLE_TIMEOUT", default_value_t = 600)]
    idle_timeout: u64,
    /// Concurrent executions allowed for the whole account.
    #[arg(long, env = "NIMBUS_CONCURRENCY_LIMIT", default_value_t = 1000)]
    concurrency_limit: u32,
    /// Concurrency that can never be reserved (default: 100, or a tenth of a smaller limit).
    #[arg(long)]
    min_unreserved: Option<u32>,
    /// Memory all environments may claim together, in MB of their MemorySize (default: 80% of
    /// physical memory); idle environments are evicted least recently used first.
    #[arg(long, env = "NIMBUS_MEMORY_BUDGET")]
    memory_budget: Option<u64>,
    /// Do not freeze idle sandboxed environments (Lambda freezes them; thawing costs a
    /// little latency per warm invoke).
    #[arg(long)]
    no_freeze: bool,
    /// Do not install the managed boto3 for Python functions.
    #[arg(long)]
    no_python_sdk: bool,
    /// Outbound network of sandboxed functions: `nat` (any TCP and UDP, DNS included,
    /// through Nimbus' user-mode network stack; never to the host's loopback), `proxy` (HTTP
    /// and HTTPS through an egress proxy), `none`, or `auto` (`nat` where /dev/net/tun
    /// works, else `proxy`).
    #[arg(long, default_value = "auto", value_name = "MODE")]
    function_network: String,
    /// The DNS server sandboxed functions' queries go to, as IP[:PORT] (default: the
    /// host's first nameserver in /etc/resolv.conf). Only with `--function-network nat`.
    #[arg(long, value_name = "ADDR")]
    function_dns: Option<String>,
    /// The most log data kept (MB, all groups together); the oldest events go first.
    #[arg(long, default_value_t = 2048, value_name = "MB")]
    log_max_mb: u64,
    /// Burst scaling: new environments each function may start per 10 seconds (AWS: 1000).
    #[arg(long, default_value_t = 1000, value_name = "N")]
    scale_rate: u32,
    /// Seconds before the first retry of a failed asynchronous invocation (AWS: about 60;
    /// the second retry waits twice as long). Fractions are allowed, for tests.
    #[arg(long, default_value_t = 60.0, value_name = "SECONDS")]
    async_retry_delay: f64,
}

fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("NIMBUS_CACHE_DIR") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(d).join("nimbus");
    }
    match std::env::var_os("HOME") {
        Some(h) => PathBuf::from(h).join(".cache/nimbus"),
        None => std::env::temp_dir().join("nimbus-cache"),
    }
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("NIMBUS_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(args))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    match nimbus_sandbox::raise_fd_limit() {
        Ok(n) if n < 4096 => {
            tracing::warn!(
                limit = n,
                "few open files allowed (ulimit -n): fewer environments can run at once"
            )
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not raise the open-file limit"),
    }
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(crate::default_data_dir);
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating data directory {}", data_dir.display()))?;
    let identity = Identity {
        region: args.region.clone(),
        account_id: args.account_id.clone(),
    };
    if identity.account_id.len() != 12 || !identity.account_id.bytes().all(|b| b.is_ascii_digit()) {
        bail!("--account-id must be 12 digits");
    }
    let sandbox: Arc<dyn Sandbox> = match args.isolation.as_str() {
        "process" => Arc::new(ProcessSandbox),
        "sandbox" => Arc::new(
            NamespaceSandbox::new(&data_dir.join("sandboxes"))
                .context("--isolation sandbox is not available on this host")?,
        ),
        "auto" => match NamespaceSandbox::new(&data_dir.join("sandboxes")) {
            Ok(s) => Arc::new(s),
            Err(e) => {
                tracing::warn!(reason = %format!("{e:#}"), "the sandbox is not available here (it needs root, namespaces and cgroups): falling back to process isolation");
                Arc::new(ProcessSandbox)
            }
        },
        other => bail!("unknown --isolation {other:?} (available: auto, sandbox, process)"),
    };
    let sandboxed = sandbox.layout() == nimbus_sandbox::Layout::Lambda;

    let store =
        Arc::new(SqliteStore::open(&data_dir.join("nimbus.db")).context("opening the database")?);
    let blobs = Arc::new(FsBlobs::open(&data_dir.join("code")).context("opening the code store")?);
    let mut overrides = BTreeMap::new();
    for m in &args.runtimes {
        let (id, path) = m
            .split_once('=')
            .with_context(|| format!("--runtime {m}: expected ID=PATH"))?;
        overrides.insert(id.to_string(), PathBuf::from(path));
    }
    let runtimes = Arc::new(
        Runtimes::discover(
            &data_dir.join("runtimes"),
            &cache_dir().join("python-sdk"),
            RuntimeOptions {
                overrides,
                strict: args.strict_runtimes,
            },
        )
        .context("preparing runtimes")?,
    );
    if sandboxed {
        let rt = runtimes.clone();
        std::thread::spawn(move || {
            rt.precompile_python_bootstrap(std::path::Path::new("/var/runtime/python/bootstrap.py"))
        });
    }
    let (logs, log_writer) = LogSink::start(store.clone());
    let connect_host = if args.listen.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        args.listen.ip().to_string()
    };
    // Sandboxed functions reach the Nimbus API on their own loopback, at the same URL: the
    // router is served on a listener opened inside each environment's network namespace.
    let router_cell: Arc<std::sync::OnceLock<axum::Router>> = Arc::new(std::sync::OnceLock::new());
    let cell = router_cell.clone();
    let serve_api: nimbus_invoker::ApiHook = Arc::new(move |listener: std::net::TcpListener| {
        let router = cell.get().cloned();
        tokio::spawn(async move {
            let (Some(router), Ok(())) = (router, listener.set_nonblocking(true)) else {
                return;
            };
            if let Ok(listener) = tokio::net::TcpListener::from_std(listener) {
                let _ = axum::serve(
                    listener,
                    router.into_make_service_with_connect_info::<SocketAddr>(),
                )
                .await;
            }
        })
    });
    let outbound = outbound(&args, sandbox.as_ref())?;
    let network = match (&outbound, sandboxed) {
        (_, false) => "the host's (unisolated)".to_string(),
        (Outbound::None, _) => "none".to_string(),
        (Outbound::Proxy, _) => "HTTP(S) proxy".to_string(),
        (Outbound::Nat(c), _) => match c.resolver {
            Some(dns) => format!("nat (DNS via {dns})"),
            None => "nat (no DNS resolver found)".to_string(),
        },
    };
    let platform = Platform {
        identity: identity.clone(),
        endpoint_url: format!("http://{connect_host}:{}", args.listen.port()),
        runtimes: runtimes.clone(),
        logs,
        api_port: args.listen.port(),
        serve_api: Some(serve_api),
        outbound,
    };
    let min_unreserved = args
        .min_unreserved
        .unwrap_or_else(|| 100.min(args.concurrency_limit / 10));
    let concurrency = Concurrency::new(args.concurrency_limit, min_unreserved);
    let memory_budget = args
        .memory_budget
        .unwrap_or_else(|| physical_memory_mb() * 4 / 5);
    let invoker = Arc::new(
        Invoker::new(platform, sandbox.clone(), concurrency)
            .with_memory_budget(memory_budget)
            .with_scale_rate(args.scale_rate)
            .with_freezing(!args.no_freeze),
    );
    let catalog = Catalog::load(
        identity.clone(),
        store.clone(),
        blobs,
        runtimes.clone(),
        store.clone(),
    )
    .map_err(|e| anyhow::anyhow!("loading functions: {}", e.message))?;
    let function_count = catalog.list().len();
    for f in catalog.list() {
        for (qualifier, cfg) in &f.provisioned {
            match catalog.resolve(&f.name, Some(qualifier)) {
                Ok(v) => invoker.set_provisioned(v.clone(), catalog.code_paths(&v), cfg.requested),
                Err(_) => {
                    tracing::warn!(function = %f.name, qualifier = %qualifier, "provisioned concurrency target is gone; ignored")
                }
            }
        }
        if let Some(n) = f.reserved_concurrency {
            if invoker.concurrency().reserve(&f.name, n).is_err() {
                tracing::warn!(function = %f.name, reserved = n, "reserved concurrency no longer fits the account limit; ignored");
            }
        }
    }
    if !(args.async_retry_delay.is_finite() && args.async_retry_delay > 0.0) {
        bail!("--async-retry-delay must be a positive number of seconds");
    }
    let async_invoke = AsyncInvoker::start(
        store.clone(),
        RetryPolicy {
            first_retry: Duration::from_secs_f64(args.async_retry_delay),
        },
    )
    .context("opening the asynchronous-invocation queue")?;
    let bus = Bus::load(identity.clone(), store.clone()).context("loading EventBridge rules")?;
    let apis =
        nimbus_control_plane::apigw::Registry::load(store.clone()).context("loading HTTP APIs")?;
    let state = Arc::new(AppState {
        catalog,
        invoker: invoker.clone(),
        logs: store.clone(),
        async_invoke,
        bus,
        apis,
        usage: store.clone(),
        http_port: args.listen.port(),
    });
    tokio::spawn(nimbus_control_plane::async_invoke::run_delivery(
        state.clone(),
    ));
    tokio::spawn(nimbus_control_plane::eventbridge::scheduler::run(
        state.clone(),
    ));

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    tracing::info!(
        listen = %args.listen,
        data_dir = %data_dir.display(),
        functions = function_count,
        isolation = sandbox.name(),
        function_network = %network,
        "nimbus is serving the Lambda API at http://{}",
        args.listen
    );
    if !sandboxed {
        tracing::warn!(
            "environments run as plain host processes WITHOUT isolation: run only code you trust, or use --isolation sandbox (needs root)"
        );
    }
    for line in runtimes.describe() {
        tracing::info!("runtime {line}");
    }
    if !args.no_python_sdk && !runtimes.python_sdk().is_ready() {
        let rt = runtimes.clone();
        rt.python_sdk().mark_installing();
        std::thread::spawn(move || {
            tracing::info!(
                "installing the managed Python SDK (boto3 {}) in the background",
                nimbus_runtimes::BOTO3_VERSION
            );
            match rt.python_sdk().install(&rt.python_candidates()) {
                Ok(()) => {
                    tracing::info!(dir = %rt.python_sdk().dir().display(), "managed Python SDK ready")
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not install the managed Python SDK: `import boto3` will fail in functions")
                }
            }
        });
    }
    // Log retention (PutRetentionPolicy) and the size cap, enforced every minute.
    let log_store = store.clone();
    let log_cap = args.log_max_mb.saturating_mul(1024 * 1024);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            let s = log_store.clone();
            let swept = tokio::task::spawn_blocking(move || {
                use nimbus_store::LogStore;
                let expired = s.enforce_retention(nimbus_model::time_fmt::now_millis())?;
                let capped = s.enforce_size_cap(log_cap)?;
                Ok::<_, nimbus_store::StoreError>((expired, capped))
            })
            .await;
            match swept {
                Ok(Ok((0, 0))) => {}
                Ok(Ok((expired, capped))) => {
                    tracing::info!(expired, over_size_cap = capped, "deleted old log events")
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "log retention sweep failed"),
                Err(_) => {}
            }
        }
    });
    let reaper_invoker = invoker.clone();
    let idle = Duration::from_secs(args.idle_timeout.max(1));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(10).min(idle));
        loop {
            tick.tick().await;
            let n = reaper_invoker.reap_idle(idle);
            reaper_invoker.replenish_provisioned().await;
            if n > 0 {
                tracing::debug!(stopped = n, "reaped idle environments");
            }
        }
    });

    let final_state = state.clone();
    let router = nimbus_control_plane::router(state);
    let _ = router_cell.set(router.clone());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = stop_rx.await;
    });
    let mut server = std::pin::pin!(server.into_future());
    tokio::select! {
        r = &mut server => r.context("serving")?,
        () = shutdown_signal() => {
            tracing::info!("shutting down: stopping environments");
            invoker.shutdown();
            let _ = stop_tx.send(());
            // In-flight invocations get a moment to finish; the rest are cut off, and
            // their environments die with the runtime below.
            if tokio::time::timeout(Duration::from_secs(3), &mut server).await.is_err() {
                tracing::warn!("in-flight requests cut off at shutdown");
            }
        }
    }
    nimbus_control_plane::metrics_api::flush_usage(&final_state).await;
    // Let the log writer store what is queued.
    drop(log_writer);
    tokio::time::sleep(Duration::from_millis(200)).await;
    tracing::info!("stopped");
    Ok(())
}

/// MemTotal from /proc/meminfo, in MB (a generous fallback where it cannot be read).
fn physical_memory_mb() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(16 * 1024, |kb| kb / 1024)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// The outbound network of sandboxed functions, from `--function-network` and
/// `--function-dns`.
fn outbound(args: &ServeArgs, sandbox: &dyn Sandbox) -> anyhow::Result<Outbound> {
    let sandboxed = sandbox.layout() == nimbus_sandbox::Layout::Lambda;
    use nimbus_sandbox::vnet;
    let mode = match args.function_network.as_str() {
        "auto" => match sandbox.outbound_device() {
            Ok(()) => "nat",
            Err(e) if sandboxed => {
                tracing::warn!(error = %e, "environments cannot have a TUN device: sandboxed functions get HTTP(S) through the egress proxy only (--function-network proxy)");
                "proxy"
            }
            // Unsandboxed functions use the host's network: the mode does not apply.
            Err(_) => "none",
        },
        "nat" if sandboxed => {
            sandbox.outbound_device().context(
                "--function-network nat needs a TUN device in each environment (/dev/net/tun)",
            )?;
            "nat"
        }
        other => other,
    };
    Ok(match mode {
        "none" => Outbound::None,
        "proxy" => Outbound::Proxy,
        "nat" => {
            let resolver = match &args.function_dns {
                Some(addr) => Some(
                    addr.parse::<SocketAddr>()
                        .or_else(|_| {
                            addr.parse::<std::net::IpAddr>()
                                .map(|ip| SocketAddr::new(ip, 53))
                        })
                        .with_context(|| {
                            format!("--function-dns {addr}: expected IP or IP:PORT")
                        })?,
                ),
                None => nimbus_egress::stack::host_resolver(),
            };
            Outbound::Nat(Arc::new(nimbus_egress::stack::Config {
                mtu: vnet::MTU,
                address: vnet::ADDRESS,
                gateway: vnet::GATEWAY,
                dns: vnet::DNS,
                resolver,
                api_port: args.listen.port(),
            }))
        }
        other => bail!("unknown --function-network {other:?} (available: auto, nat, proxy, none)"),
    })
}
