//! Put/Update/Get/Delete/ListFunctionEventInvokeConfigs: the retry, event-age and
//! destination settings of asynchronous invocation, per function version or alias.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::Json;
use nimbus_model::time_fmt::now_millis;
use nimbus_model::{EventInvokeConfig, FunctionRef};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::async_invoke::record::Destination;
use crate::query::{page, Query};
use crate::{parse_json, read_body, ApiError, ApiResult, AppState};

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct ConfigInput {
    maximum_retry_attempts: Option<i64>,
    maximum_event_age_in_seconds: Option<i64>,
    destination_config: Option<DestinationConfig>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct DestinationConfig {
    on_success: Option<OnTarget>,
    on_failure: Option<OnTarget>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct OnTarget {
    destination: Option<String>,
}

/// The function and the qualifier a request addresses (`$LATEST` when unqualified), which
/// must exist.
fn target(state: &AppState, raw: &str, q: &Query) -> ApiResult<(String, String)> {
    let r = FunctionRef::parse(raw, state.catalog.identity(), 140)?
        .with_query_qualifier(q.get("Qualifier"))?;
    let qualifier = r.qualifier.clone().unwrap_or_else(|| "$LATEST".into());
    state.catalog.resolve(&r.name, Some(&qualifier))?;
    Ok((r.name, qualifier))
}

fn render(state: &AppState, name: &str, qualifier: &str, c: &EventInvokeConfig) -> Value {
    let dest = |d: &Option<String>| match d {
        Some(arn) => json!({ "Destination": arn }),
        None => json!({}),
    };
    let mut v = json!({
        "LastModified": c.last_modified_ms as f64 / 1000.0,
        "FunctionArn": state.catalog.identity().qualified_arn(name, qualifier),
        "DestinationConfig": { "OnSuccess": dest(&c.on_success), "OnFailure": dest(&c.on_failure) },
    });
    if let Some(n) = c.maximum_retry_attempts {
        v["MaximumRetryAttempts"] = n.into();
    }
    if let Some(n) = c.maximum_event_age_s {
        v["MaximumEventAgeInSeconds"] = n.into();
    }
    v
}

fn not_configured(state: &AppState, name: &str, qualifier: &str) -> ApiError {
    ApiError::not_found(format!(
        "The function {} doesn't have an EventInvokeConfig",
        state.catalog.identity().qualified_arn(name, qualifier)
    ))
}

fn in_range(v: i64, lo: i64, hi: i64, member: &str) -> ApiResult<u32> {
    if v < lo {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value '{v}' at '{member}' failed to satisfy constraint: Member must have value greater than or equal to {lo}"
        )));
    }
    if v > hi {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value '{v}' at '{member}' failed to satisfy constraint: Member must have value less than or equal to {hi}"
        )));
    }
    Ok(v as u32)
}

fn destination(
    state: &AppState,
    d: Option<OnTarget>,
    on_success: bool,
) -> ApiResult<Option<Option<String>>> {
    let Some(t) = d else { return Ok(None) };
    let Some(arn) = t.destination.filter(|a| !a.is_empty()) else {
        return Ok(Some(None));
    };
    match Destination::parse(&arn, state.catalog.identity()) {
        Ok(Destination::Stored(a)) if on_success && a.starts_with("arn:aws:s3:") => Err(
            ApiError::invalid("S3 destinations are only supported for OnFailure."),
        ),
        Ok(_) => Ok(Some(Some(arn))),
        Err(message) => Err(ApiError::invalid(message)),
    }
}

/// Applies `input` over `base` (Put passes an empty base, Update the current config).
fn apply(
    state: &AppState,
    base: EventInvokeConfig,
    input: ConfigInput,
) -> ApiResult<EventInvokeConfig> {
    let mut c = base;
    if let Some(n) = input.maximum_retry_attempts {
        c.maximum_retry_attempts = Some(in_range(n, 0, 2, "maximumRetryAttempts")?);
    }
    if let Some(n) = input.maximum_event_age_in_seconds {
        c.maximum_event_age_s = Some(in_range(n, 60, 21_600, "maximumEventAgeInSeconds")?);
    }
    if let Some(d) = input.destination_config {
        if let Some(s) = destination(state, d.on_success, true)? {
            c.on_success = s;
        }
        if let Some(f) = destination(state, d.on_failure, false)? {
            c.on_failure = f;
        }
    }
    c.last_modified_ms = now_millis();
    Ok(c)
}

/// PUT (replace) and POST (update) share this.
async fn store(
    state: Arc<AppState>,
    raw: String,
    q: Option<String>,
    body: Body,
    merge: bool,
) -> ApiResult<Json<Value>> {
    let q = Query::parse(q.as_deref());
    let op = if merge {
        "UpdateFunctionEventInvokeConfig"
    } else {
        "PutFunctionEventInvokeConfig"
    };
    let body = read_body(body, 64 * 1024, op).await?;
    let input: ConfigInput = parse_json(&body)?;
    let (name, qualifier) = target(&state, &raw, &q)?;
    let current = state
        .catalog
        .resolve(&name, None)?
        .event_invoke
        .get(&qualifier)
        .cloned();
    let base = if merge {
        current.unwrap_or_default()
    } else {
        EventInvokeConfig::default()
    };
    let config = apply(&state, base, input)?;
    state
        .catalog
        .set_event_invoke(&name, &qualifier, Some(config.clone()))
        .await?;
    Ok(Json(render(&state, &name, &qualifier, &config)))
}

pub(crate) async fn put(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
    body: Body,
) -> ApiResult<Json<Value>> {
    store(state, name, q, body, false).await
}

pub(crate) async fn update(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
    body: Body,
) -> ApiResult<Json<Value>> {
    store(state, name, q, body, true).await
}

pub(crate) async fn get(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    let q = Query::parse(q.as_deref());
    let (name, qualifier) = target(&state, &name, &q)?;
    let latest = state.catalog.resolve(&name, None)?;
    let c = latest
        .event_invoke
        .get(&qualifier)
        .ok_or_else(|| not_configured(&state, &name, &qualifier))?;
    Ok(Json(render(&state, &name, &qualifier, c)))
}

pub(crate) async fn delete(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<StatusCode> {
    let q = Query::parse(q.as_deref());
    let (name, qualifier) = target(&state, &name, &q)?;
    if !state
        .catalog
        .resolve(&name, None)?
        .event_invoke
        .contains_key(&qualifier)
    {
        return Err(not_configured(&state, &name, &qualifier));
    }
    state
        .catalog
        .set_event_invoke(&name, &qualifier, None)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    let q = Query::parse(q.as_deref());
    let r = FunctionRef::parse(&name, state.catalog.identity(), 140)?;
    let latest = state.catalog.resolve(&r.name, None)?;
    let items = latest
        .event_invoke
        .iter()
        .map(|(qualifier, c)| (qualifier.clone(), render(&state, &r.name, qualifier, c)))
        .collect();
    let v = page("FunctionEventInvokeConfigs", items, &q, 50)?;
    Ok(Json(v))
}
