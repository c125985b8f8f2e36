//! Provisioned concurrency: Put/Get/Delete/ListProvisionedConcurrencyConfigs.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use nimbus_model::FunctionRef;
use serde_json::{json, Value};

use crate::query::Query;
use crate::{parse_json, read_body, ApiError, ApiResult, AppState};

fn not_configured() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "ProvisionedConcurrencyConfigNotFoundException",
        "No Provisioned Concurrency Config found for this function",
    )
}

/// The function name and a qualifier that must be a published version or an alias.
fn target(state: &AppState, raw: &str, q: &Query) -> ApiResult<(String, String)> {
    let r = FunctionRef::parse(raw, state.catalog.identity(), 140)?
        .with_query_qualifier(q.get("Qualifier"))?;
    let qualifier = r.qualifier.ok_or_else(|| {
        ApiError::validation("1 validation error detected: Value null at 'qualifier' failed to satisfy constraint: Member must not be null")
    })?;
    if qualifier == "$LATEST" {
        return Err(ApiError::invalid(
            "Provisioned Concurrency Configs cannot be applied to unpublished function versions.",
        ));
    }
    Ok((r.name, qualifier))
}

fn render(state: &AppState, name: &str, qualifier: &str) -> ApiResult<Value> {
    let latest = state.catalog.resolve(name, None)?;
    let cfg = latest
        .provisioned
        .get(qualifier)
        .ok_or_else(not_configured)?;
    let version = state.catalog.resolve(name, Some(qualifier))?;
    let status = state.invoker.provisioned_status(name, &version.version);
    let (available, status, reason) = match &status {
        Some(s) => (s.available, s.status, s.reason.clone()),
        None => (0, "IN_PROGRESS", None),
    };
    let mut v = json!({
        "RequestedProvisionedConcurrentExecutions": cfg.requested,
        "AvailableProvisionedConcurrentExecutions": available,
        "AllocatedProvisionedConcurrentExecutions": available,
        "Status": status,
        "LastModified": cfg.last_modified,
    });
    if let Some(r) = reason {
        v["StatusReason"] = r.into();
    }
    Ok(v)
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutInput {
    provisioned_concurrent_executions: Option<i64>,
}

pub(crate) async fn put(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
    body: Body,
) -> ApiResult<Response> {
    let q = Query::parse(q.as_deref());
    let body = read_body(body, 64 * 1024, "PutProvisionedConcurrencyConfig").await?;
    let input: PutInput = parse_json(&body)?;
    let (name, qualifier) = target(&state, &name, &q)?;
    let n = input.provisioned_concurrent_executions.unwrap_or(0);
    let n = u32::try_from(n).ok().filter(|n| *n >= 1).ok_or_else(|| {
        ApiError::validation(format!(
            "1 validation error detected: Value '{n}' at 'provisionedConcurrentExecutions' failed to satisfy constraint: Member must have value greater than or equal to 1"
        ))
    })?;
    let version = state.catalog.resolve(&name, Some(&qualifier))?;
    if version.version == "$LATEST" {
        return Err(ApiError::invalid(
            "Provisioned Concurrency Configs cannot be applied to unpublished function versions.",
        ));
    }
    let concurrency = state.invoker.concurrency();
    let cap = concurrency
        .reservation(&name)
        .unwrap_or(concurrency.unreserved());
    if n > cap {
        return Err(ApiError::invalid(format!(
            "Requested Provisioned Concurrency should not be greater than the reservedConcurrentExecution ({cap}) for function"
        )));
    }
    state
        .catalog
        .set_provisioned(&name, &qualifier, Some(n))
        .await?;
    let paths = state.catalog.code_paths(&version);
    state.invoker.set_provisioned(version, paths, n);
    Ok((
        StatusCode::ACCEPTED,
        Json(render(&state, &name, &qualifier)?),
    )
        .into_response())
}

/// `GET …/provisioned-concurrency`: one config (`Qualifier`) or all of them (`List=ALL`).
pub(crate) async fn get(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    let q = Query::parse(q.as_deref());
    if q.get("List") == Some("ALL") {
        let r = FunctionRef::parse(&name, state.catalog.identity(), 140)?;
        let latest = state.catalog.resolve(&r.name, None)?;
        let mut configs = Vec::new();
        for qualifier in latest.provisioned.keys() {
            let mut v = render(&state, &r.name, qualifier)?;
            v["FunctionArn"] = state
                .catalog
                .identity()
                .qualified_arn(&r.name, qualifier)
                .into();
            configs.push(v);
        }
        return Ok(Json(json!({ "ProvisionedConcurrencyConfigs": configs })));
    }
    let (name, qualifier) = target(&state, &name, &q)?;
    state.catalog.resolve(&name, Some(&qualifier))?;
    Ok(Json(render(&state, &name, &qualifier)?))
}

pub(crate) async fn delete(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<StatusCode> {
    let q = Query::parse(q.as_deref());
    let (name, qualifier) = target(&state, &name, &q)?;
    let version = state.catalog.resolve(&name, Some(&qualifier))?;
    if !state
        .catalog
        .resolve(&name, None)?
        .provisioned
        .contains_key(&qualifier)
    {
        return Err(not_configured());
    }
    state
        .catalog
        .set_provisioned(&name, &qualifier, None)
        .await?;
    let paths = state.catalog.code_paths(&version);
    state.invoker.set_provisioned(version, paths, 0);
    Ok(StatusCode::NO_CONTENT)
}
