//! Versions and aliases: PublishVersion, ListVersionsByFunction, Create/Get/Update/Delete/
//! ListAliases.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use nimbus_model::FunctionRef;
use serde_json::Value;

use crate::query::{page, Query};
use crate::wire::{self, AliasInput, PublishVersionInput, RoutingInput};
use crate::{parse_json, read_body, ApiError, ApiResult, AppState};

const REQUEST_MAX: usize = 1024 * 1024;

/// The unqualified function name of a path that must not carry a qualifier.
fn function_name(state: &AppState, raw: &str) -> ApiResult<String> {
    let r = FunctionRef::parse(raw, state.catalog.identity(), 140)?;
    if r.qualifier.is_some() {
        return Err(ApiError::invalid(
            "This operation does not accept a qualified function name",
        ));
    }
    Ok(r.name)
}

fn routing(input: Option<RoutingInput>) -> ApiResult<Option<Option<(String, f64)>>> {
    let Some(r) = input else { return Ok(None) };
    let weights = r.additional_version_weights.unwrap_or_default();
    if weights.len() > 1 {
        return Err(ApiError::invalid(
            "Number of entries in AdditionalVersionWeights cannot be greater than 1",
        ));
    }
    Ok(Some(weights.into_iter().next()))
}

pub(crate) async fn publish(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    body: Body,
) -> ApiResult<Response> {
    let body = read_body(body, REQUEST_MAX, "PublishVersion").await?;
    let input: PublishVersionInput = parse_json(&body)?;
    let name = function_name(&state, &name)?;
    let v = state
        .catalog
        .publish(
            &name,
            input.code_sha256.as_deref(),
            input.description,
            input.revision_id.as_deref(),
        )
        .await?;
    tracing::info!(function = %name, version = %v.version, "version published");
    Ok((
        StatusCode::CREATED,
        Json(wire::function_configuration(&v, state.catalog.identity())),
    )
        .into_response())
}

pub(crate) async fn list_versions(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    let q = Query::parse(q.as_deref());
    let name = function_name(&state, &name)?;
    let id = state.catalog.identity();
    let latest = state.catalog.resolve(&name, None)?;
    let mut head = wire::function_configuration(&latest, id);
    head["FunctionArn"] = id.qualified_arn(&name, "$LATEST").into();
    let mut items = vec![("$LATEST".to_string(), head)];
    items.extend(
        state
            .catalog
            .versions(&name)
            .iter()
            .map(|v| (v.version.clone(), wire::function_configuration(v, id))),
    );
    let out = page("Versions", items, &q, 50)?;
    Ok(Json(out))
}

pub(crate) async fn create_alias(
    State(state): State<Arc<AppState>>,
    Path(function): Path<String>,
    body: Body,
) -> ApiResult<Response> {
    let body = read_body(body, REQUEST_MAX, "CreateAlias").await?;
    let input: AliasInput = parse_json(&body)?;
    let function = function_name(&state, &function)?;
    let name = input
        .name
        .clone()
        .ok_or_else(|| ApiError::validation("1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null"))?;
    let version = input.function_version.clone().ok_or_else(|| {
        ApiError::validation("1 validation error detected: Value null at 'functionVersion' failed to satisfy constraint: Member must not be null")
    })?;
    let routing = routing(input.routing_config)?.flatten();
    let a = state
        .catalog
        .create_alias(&function, &name, &version, input.description, routing)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(wire::alias_configuration(&a, state.catalog.identity())),
    )
        .into_response())
}

pub(crate) async fn get_alias(
    State(state): State<Arc<AppState>>,
    Path((function, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let function = function_name(&state, &function)?;
    state.catalog.resolve(&function, None)?;
    let a = state
        .catalog
        .alias(&function, &name)
        .ok_or_else(|| state.catalog.alias_not_found(&function, &name))?;
    Ok(Json(wire::alias_configuration(
        &a,
        state.catalog.identity(),
    )))
}

pub(crate) async fn update_alias(
    State(state): State<Arc<AppState>>,
    Path((function, name)): Path<(String, String)>,
    body: Body,
) -> ApiResult<Json<Value>> {
    let body = read_body(body, REQUEST_MAX, "UpdateAlias").await?;
    let input: AliasInput = parse_json(&body)?;
    let function = function_name(&state, &function)?;
    let routing = routing(input.routing_config)?;
    let before = state.catalog.resolve(&function, Some(&name))?;
    let a = state
        .catalog
        .update_alias(
            &function,
            &name,
            input.function_version.as_deref(),
            input.description,
            routing,
            input.revision_id.as_deref(),
        )
        .await?;
    follow_provisioned(&state, &function, &name, &before.version);
    Ok(Json(wire::alias_configuration(
        &a,
        state.catalog.identity(),
    )))
}

/// Provisioned concurrency set on an alias follows it: when the alias moves to another
/// version, that version is provisioned and the old one released (unless another qualifier
/// still provisions it), as Lambda does.
fn follow_provisioned(state: &AppState, function: &str, alias: &str, old_version: &str) {
    let Some(latest) = state.catalog.get(function) else {
        return;
    };
    let Some(cfg) = latest.provisioned.get(alias) else {
        return;
    };
    let Ok(now) = state.catalog.resolve(function, Some(alias)) else {
        return;
    };
    if now.version == old_version {
        return;
    }
    state
        .invoker
        .set_provisioned(now.clone(), state.catalog.code_paths(&now), cfg.requested);
    let still_used = latest.provisioned.keys().any(|q| {
        q != alias
            && state
                .catalog
                .resolve(function, Some(q))
                .is_ok_and(|v| v.version == old_version)
    });
    if !still_used {
        if let Ok(old) = state.catalog.resolve(function, Some(old_version)) {
            state
                .invoker
                .set_provisioned(old.clone(), state.catalog.code_paths(&old), 0);
        }
    }
}

pub(crate) async fn delete_alias(
    State(state): State<Arc<AppState>>,
    Path((function, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let function = function_name(&state, &function)?;
    state.catalog.delete_alias(&function, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn list_aliases(
    State(state): State<Arc<AppState>>,
    Path(function): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    let q = Query::parse(q.as_deref());
    let function = function_name(&state, &function)?;
    state.catalog.resolve(&function, None)?;
    let filter = q.get("FunctionVersion").filter(|v| !v.is_empty());
    let items: Vec<(String, Value)> = state
        .catalog
        .aliases(&function)
        .iter()
        .filter(|a| {
            filter.is_none_or(|v| {
                a.function_version == v
                    || a.additional_version.as_ref().is_some_and(|(x, _)| x == v)
            })
        })
        .map(|a| {
            (
                a.name.clone(),
                wire::alias_configuration(a, state.catalog.identity()),
            )
        })
        .collect();
    let out = page("Aliases", items, &q, 10_000)?;
    Ok(Json(out))
}
