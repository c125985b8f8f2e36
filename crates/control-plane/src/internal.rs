//! `/_nimbus/…` views for the CLI and for people: the asynchronous queue, schedules, and
//! the messages Nimbus keeps for SQS/SNS/S3 targets it does not have.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::Json;
use base64::Engine;
use serde_json::{json, Value};

use crate::query::Query;
use crate::{ApiResult, AppState};

pub(crate) async fn async_stats(State(state): State<Arc<AppState>>) -> ApiResult<Json<Value>> {
    let a = &state.async_invoke;
    let s = state.clone();
    let depth = tokio::task::spawn_blocking(move || s.async_invoke.depth())
        .await
        .map_err(|e| crate::ApiError::service(e.to_string()))??;
    let c = &a.counters;
    let n = |x: &std::sync::atomic::AtomicU64| x.load(Ordering::Relaxed);
    Ok(Json(json!({
        "queued": depth.events,
        "in_flight": depth.leased,
        "oldest_enqueued_ms": depth.oldest_enqueued_ms,
        "accepted": n(&c.accepted),
        "delivered": n(&c.delivered),
        "retried": n(&c.retried),
        "throttled": n(&c.throttled),
        "failed": n(&c.failed),
        "dead_lettered": n(&c.dead_lettered),
        "dropped": n(&c.dropped),
    })))
}

pub(crate) async fn schedules(State(state): State<Arc<AppState>>) -> Json<Value> {
    let bus = &state.bus;
    let next = bus
        .next_fires
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let rules: Vec<Value> = bus
        .rules()
        .iter()
        .filter_map(|r| {
            let rec = &r.record;
            let expr = rec.schedule_expression.as_ref()?;
            Some(json!({
                "rule": rec.name,
                "arn": bus.rule_arn(&rec.bus, &rec.name),
                "expression": expr,
                "state": rec.state,
                "next_fire_ms": next.get(&rec.key()),
                "targets": rec.targets.iter().map(|t| t.arn.clone()).collect::<Vec<_>>(),
            }))
        })
        .collect();
    Json(json!({ "schedules": rules }))
}

pub(crate) async fn messages(
    State(state): State<Arc<AppState>>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    let q = Query::parse(q.as_deref());
    let target = q.get("target").map(str::to_string);
    let limit = q
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(1000usize);
    let s = state.clone();
    let messages = tokio::task::spawn_blocking(move || {
        s.async_invoke.queue().messages(target.as_deref(), limit)
    })
    .await
    .map_err(|e| crate::ApiError::service(e.to_string()))??;
    let out: Vec<Value> = messages
        .into_iter()
        .map(|m| {
            let body = match String::from_utf8(m.body) {
                Ok(s) => json!(s),
                Err(e) => json!(base64::engine::general_purpose::STANDARD.encode(e.into_bytes())),
            };
            json!({
                "target": m.target_arn,
                "body": body,
                "attributes": serde_json::from_str::<Value>(&m.attributes).unwrap_or(Value::Null),
                "created_ms": m.created_ms,
            })
        })
        .collect();
    Ok(Json(json!({ "messages": out })))
}
