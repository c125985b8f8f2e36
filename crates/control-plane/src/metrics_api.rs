//! `/metrics` in Prometheus' text exposition format (per function version and alias, the
//! asynchronous queue, the server), `/_nimbus/stats` (the same, as JSON, for `nimbus stats`)
//! and `/_nimbus/usage` (the usage rows `nimbus cost` prices).

use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use nimbus_invoker::metrics::DURATION_BUCKETS;
use serde_json::{json, Value};

use crate::query::Query;
use crate::{ApiError, ApiResult, AppState};

static STARTED: OnceLock<Instant> = OnceLock::new();

/// Marks the server's start (for `nimbus_uptime_seconds`).
pub(crate) fn mark_start() {
    STARTED.get_or_init(Instant::now);
}

struct Exposition(String);

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                // Names, versions and aliases never hold quotes or backslashes, but be safe.
                let v = v
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n");
                let _ = write!(self.0, "{k}=\"{v}\"");
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }
}

pub(crate) async fn metrics(State(state): State<Arc<AppState>>) -> ApiResult<Response> {
    let versions = state.invoker.metrics().versions();
    let mut out = Exposition(String::with_capacity(4096));
    let counter =
        |out: &mut Exposition,
         name: &str,
         help: &str,
         get: &dyn Fn(&nimbus_invoker::metrics::VersionMetrics) -> u64| {
            out.family(name, "counter", help);
            for ((f, v), m) in &versions {
                out.sample(name, &[("function", f), ("version", v)], get(m));
            }
        };
    counter(
        &mut out,
        "nimbus_invocations_total",
        "Invocations that ran, per function version.",
        &|m| m.invocations.load(Ordering::Relaxed),
    );
    counter(
        &mut out,
        "nimbus_errors_total",
        "Invocations that ended in a function error.",
        &|m| m.errors.load(Ordering::Relaxed),
    );
    counter(
        &mut out,
        "nimbus_throttles_total",
        "Invocations refused for lack of concurrency (429).",
        &|m| m.throttles.load(Ordering::Relaxed),
    );
    counter(
        &mut out,
        "nimbus_cold_starts_total",
        "Invocations that started a new environment.",
        &|m| m.cold_starts.load(Ordering::Relaxed),
    );

    out.family(
        "nimbus_concurrent_executions",
        "gauge",
        "Invocations running now, per function version.",
    );
    for ((f, v), m) in &versions {
        out.sample(
            "nimbus_concurrent_executions",
            &[("function", f), ("version", v)],
            m.in_flight.load(Ordering::Relaxed).max(0),
        );
    }

    out.family(
        "nimbus_duration_seconds",
        "histogram",
        "Handler duration of invocations.",
    );
    for ((f, v), m) in &versions {
        for (bound, count) in DURATION_BUCKETS.iter().zip(m.cumulative()) {
            let le = bound.to_string();
            out.sample(
                "nimbus_duration_seconds_bucket",
                &[("function", f), ("version", v), ("le", &le)],
                count,
            );
        }
        let n = m.invocations.load(Ordering::Relaxed);
        out.sample(
            "nimbus_duration_seconds_bucket",
            &[("function", f), ("version", v), ("le", "+Inf")],
            n,
        );
        out.sample(
            "nimbus_duration_seconds_sum",
            &[("function", f), ("version", v)],
            m.duration_us.load(Ordering::Relaxed) as f64 / 1e6,
        );
        out.sample(
            "nimbus_duration_seconds_count",
            &[("function", f), ("version", v)],
            n,
        );
    }

    out.family(
        "nimbus_init_duration_seconds",
        "summary",
        "Init duration of cold starts.",
    );
    for ((f, v), m) in &versions {
        out.sample(
            "nimbus_init_duration_seconds_sum",
            &[("function", f), ("version", v)],
            m.init_us.load(Ordering::Relaxed) as f64 / 1e6,
        );
        out.sample(
            "nimbus_init_duration_seconds_count",
            &[("function", f), ("version", v)],
            m.cold_starts.load(Ordering::Relaxed),
        );
    }

    out.family(
        "nimbus_alias_invocations_total",
        "counter",
        "Invocations through an alias, per alias and the version that ran.",
    );
    for ((f, v), m) in &versions {
        let mut aliases: Vec<(String, u64)> = m
            .via_alias
            .iter()
            .map(|e| (e.key().clone(), e.value().load(Ordering::Relaxed)))
            .collect();
        aliases.sort();
        for (alias, n) in aliases {
            out.sample(
                "nimbus_alias_invocations_total",
                &[("function", f), ("alias", &alias), ("version", v)],
                n,
            );
        }
    }

    out.family(
        "nimbus_provisioned_concurrency",
        "gauge",
        "Provisioned environments ready, per function and qualifier.",
    );
    let mut utilisation = Vec::new();
    for f in state.catalog.list() {
        for q in f.provisioned.keys() {
            let Ok(version) = state.catalog.resolve(&f.name, Some(q)) else {
                continue;
            };
            let Some(status) = state.invoker.provisioned_status(&f.name, &version.version) else {
                continue;
            };
            out.sample(
                "nimbus_provisioned_concurrency",
                &[("function", &f.name), ("qualifier", q)],
                status.available,
            );
            let busy = versions
                .iter()
                .find(|((n, v), _)| n == &f.name && v == &version.version)
                .map_or(0, |(_, m)| {
                    m.in_flight.load(Ordering::Relaxed).max(0) as u64
                });
            let ratio = if status.available == 0 {
                0.0
            } else {
                busy.min(u64::from(status.available)) as f64 / f64::from(status.available)
            };
            utilisation.push((f.name.clone(), q.clone(), ratio));
        }
    }
    out.family(
        "nimbus_provisioned_utilization",
        "gauge",
        "Share of the provisioned environments busy now.",
    );
    for (f, q, r) in &utilisation {
        out.sample(
            "nimbus_provisioned_utilization",
            &[("function", f), ("qualifier", q)],
            r,
        );
    }

    let s = state.clone();
    let depth = tokio::task::spawn_blocking(move || s.async_invoke.depth())
        .await
        .map_err(|e| ApiError::service(e.to_string()))??;
    let c = &state.async_invoke.counters;
    for (name, help, value) in [
        (
            "nimbus_async_events_accepted_total",
            "Asynchronous events queued.",
            &c.accepted,
        ),
        (
            "nimbus_async_events_delivered_total",
            "Asynchronous events that ran successfully.",
            &c.delivered,
        ),
        (
            "nimbus_async_events_retried_total",
            "Retries after function errors.",
            &c.retried,
        ),
        (
            "nimbus_async_events_throttled_total",
            "Deliveries put back for lack of concurrency.",
            &c.throttled,
        ),
        (
            "nimbus_async_events_failed_total",
            "Events that exhausted retries or their age.",
            &c.failed,
        ),
        (
            "nimbus_async_events_dead_lettered_total",
            "Events sent to a dead-letter queue.",
            &c.dead_lettered,
        ),
        (
            "nimbus_async_events_dropped_total",
            "Events whose function was deleted.",
            &c.dropped,
        ),
    ] {
        out.family(name, "counter", help);
        out.sample(name, &[], value.load(Ordering::Relaxed));
    }
    out.family(
        "nimbus_async_queue_depth",
        "gauge",
        "Asynchronous events waiting or in flight.",
    );
    out.sample("nimbus_async_queue_depth", &[], depth.events);
    out.family(
        "nimbus_async_oldest_event_age_seconds",
        "gauge",
        "Age of the oldest queued event.",
    );
    let age = depth.oldest_enqueued_ms.map_or(0.0, |t| {
        ((nimbus_model::time_fmt::now_millis() - t).max(0)) as f64 / 1000.0
    });
    out.sample("nimbus_async_oldest_event_age_seconds", &[], age);

    let conc = state.invoker.concurrency();
    for (name, kind, help, value) in [
        (
            "nimbus_account_concurrent_executions",
            "gauge",
            "Invocations running now, all functions.",
            f64::from(conc.in_flight()),
        ),
        (
            "nimbus_account_concurrency_limit",
            "gauge",
            "The account's concurrency limit.",
            f64::from(conc.limit()),
        ),
        (
            "nimbus_environments_idle",
            "gauge",
            "Warm environments waiting for work.",
            state.invoker.idle_count() as f64,
        ),
        (
            "nimbus_memory_reserved_mb",
            "gauge",
            "MemorySize of all live environments.",
            state.invoker.memory_in_use_mb() as f64,
        ),
        (
            "nimbus_functions",
            "gauge",
            "Functions defined.",
            state.catalog.list().len() as f64,
        ),
        (
            "nimbus_uptime_seconds",
            "gauge",
            "Seconds since the server started.",
            STARTED.get().map_or(0.0, |t| t.elapsed().as_secs_f64()),
        ),
    ] {
        out.family(name, kind, help);
        out.sample(name, &[], value);
    }

    let mut resp = out.0.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(resp)
}

/// `/_nimbus/stats`: per function version, the counters as JSON.
pub(crate) async fn stats(State(state): State<Arc<AppState>>) -> Json<Value> {
    let versions: Vec<Value> = state
        .invoker
        .metrics()
        .versions()
        .iter()
        .map(|((f, v), m)| {
            let n = m.invocations.load(Ordering::Relaxed);
            // The median from the histogram: the first bucket holding half the samples.
            let p50 = DURATION_BUCKETS
                .iter()
                .zip(m.cumulative())
                .find(|(_, c)| n > 0 && c * 2 >= n)
                .map(|(b, _)| b * 1000.0);
            json!({
                "function": f,
                "version": v,
                "invocations": n,
                "errors": m.errors.load(Ordering::Relaxed),
                "throttles": m.throttles.load(Ordering::Relaxed),
                "cold_starts": m.cold_starts.load(Ordering::Relaxed),
                "concurrent": m.in_flight.load(Ordering::Relaxed).max(0),
                "duration_ms_total": m.duration_us.load(Ordering::Relaxed) as f64 / 1000.0,
                "p50_ms_at_most": p50,
            })
        })
        .collect();
    Json(json!({ "versions": versions }))
}

/// `/_nimbus/usage?since_ms=…`: stored usage rows (what has been flushed so far).
pub(crate) async fn usage(
    State(state): State<Arc<AppState>>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    let q = Query::parse(q.as_deref());
    let since_ms: i64 = q.get("since_ms").and_then(|s| s.parse().ok()).unwrap_or(0);
    // Include what has not been flushed yet.
    flush_usage(&state).await;
    let s = state.clone();
    let rows =
        tokio::task::spawn_blocking(move || s.usage.usage_since(since_ms.div_euclid(60_000)))
            .await
            .map_err(|e| ApiError::service(e.to_string()))??;
    let rows: Vec<Value> = rows
        .into_iter()
        .map(|r| {
            json!({
                "minute": r.minute, "function": r.function, "version": r.version,
                "architecture": r.architecture, "memory_mb": r.memory_mb, "ephemeral_mb": r.ephemeral_mb,
                "requests": r.requests, "errors": r.errors, "billed_ms": r.billed_ms,
                "init_ms": r.init_ms, "egress_bytes": r.egress_bytes,
            })
        })
        .collect();
    Ok(Json(json!({ "usage": rows })))
}

/// Writes the usage counted since the last flush to the store.
pub async fn flush_usage(state: &Arc<AppState>) {
    let minute = nimbus_model::time_fmt::now_millis().div_euclid(60_000);
    let rows = state.invoker.metrics().drain_usage(minute);
    if rows.is_empty() {
        return;
    }
    let s = state.clone();
    match tokio::task::spawn_blocking(move || s.usage.add_usage(&rows)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "could not record usage"),
        Err(e) => tracing::error!(error = %e, "could not record usage"),
    }
}
