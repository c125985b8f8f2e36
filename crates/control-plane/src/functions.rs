//! Function management: CreateFunction, GetFunction(Configuration), ListFunctions,
//! UpdateFunctionCode/Configuration, DeleteFunction, tags, GetAccountSettings.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use nimbus_model::{limits, FunctionRef};
use serde_json::{json, Value};

use crate::query::Query;
use crate::wire::{self, CodeInput, ConfigInput, CreateFunctionInput, TagsInput, UpdateCodeInput};
use crate::{parse_json, read_body, ApiError, ApiResult, AppState};

/// Largest control-plane request: a 50 MB zip in base64 plus the rest of the JSON.
const CODE_REQUEST_MAX: usize = 72 * 1024 * 1024;
const CONFIG_REQUEST_MAX: usize = 1024 * 1024;

fn parse_ref(state: &AppState, raw: &str, max: usize, query: &Query) -> ApiResult<FunctionRef> {
    Ok(FunctionRef::parse(raw, state.catalog.identity(), max)?
        .with_query_qualifier(query.get("Qualifier"))?)
}

/// Unqualified-only operations refuse a qualifier.
fn unqualified(state: &AppState, raw: &str, max: usize) -> ApiResult<String> {
    let r = FunctionRef::parse(raw, state.catalog.identity(), max)?;
    match r.qualifier.as_deref() {
        None | Some("$LATEST") => Ok(r.name),
        Some(_) => Err(ApiError::invalid(
            "This operation does not accept a qualified function name",
        )),
    }
}

fn config_json(state: &AppState, f: &nimbus_model::FunctionRecord) -> Value {
    wire::function_configuration(f, state.catalog.identity())
}

pub(crate) async fn create(State(state): State<Arc<AppState>>, body: Body) -> ApiResult<Response> {
    let body = read_body(body, CODE_REQUEST_MAX, "CreateFunction").await?;
    let input: CreateFunctionInput = parse_json(&body)?;
    let name = unqualified(&state, &input.function_name, 140)?;
    let f = state.catalog.create(input, name).await?;
    tracing::info!(function = %f.name, runtime = %f.config.runtime, "function created");
    Ok((StatusCode::CREATED, Json(config_json(&state, &f))).into_response())
}

pub(crate) async fn get(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let q = Query::parse(q.as_deref());
    let r = parse_ref(&state, &name, 256, &q)?;
    let f = state.catalog.resolve(&r.name, r.qualifier.as_deref())?;
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1:9600");
    let mut out = json!({
        "Configuration": config_json(&state, &f),
        "Code": {
            "RepositoryType": "S3",
            "Location": format!("http://{host}/_nimbus/code/{}.zip", f.code.sha256_hex),
        },
    });
    if !f.tags.is_empty() {
        out["Tags"] = json!(f.tags);
    }
    if let Some(n) = state.invoker.concurrency().reservation(&r.name) {
        out["Concurrency"] = json!({ "ReservedConcurrentExecutions": n });
    }
    Ok(Json(out))
}

pub(crate) async fn get_configuration(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    let q = Query::parse(q.as_deref());
    let r = parse_ref(&state, &name, 256, &q)?;
    let f = state.catalog.resolve(&r.name, r.qualifier.as_deref())?;
    Ok(Json(config_json(&state, &f)))
}

pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    let q = Query::parse(q.as_deref());
    let max = match q.get("MaxItems") {
        None => 50,
        Some(m) => match m.parse::<usize>() {
            Ok(n) if (1..=10_000).contains(&n) => n.min(50),
            _ => {
                return Err(ApiError::validation(format!(
                    "1 validation error detected: Value '{m}' at 'maxItems' failed to satisfy constraint: Member must have value between 1 and 10000"
                )))
            }
        },
    };
    // With FunctionVersion=ALL every published version follows its function's $LATEST.
    // Items are ordered by (name, version number, $LATEST = 0), and the marker names the last
    // item of the previous page, so deletions between pages never skip anything.
    let all_versions = q.get("FunctionVersion") == Some("ALL");
    let mut items: Vec<((String, u64), Value)> = Vec::new();
    for f in state.catalog.list() {
        let mut head = config_json(&state, &f);
        if all_versions {
            head["FunctionArn"] = state
                .catalog
                .identity()
                .qualified_arn(&f.name, "$LATEST")
                .into();
        }
        items.push(((f.name.clone(), 0), head));
        if all_versions {
            for v in state.catalog.versions(&f.name) {
                let n = v.version.parse().unwrap_or(0);
                items.push(((f.name.clone(), n), config_json(&state, &v)));
            }
        }
    }
    let after = q
        .get("Marker")
        .filter(|m| !m.is_empty())
        .map(|m| match m.rsplit_once(':') {
            Some((name, n)) if n.bytes().all(|b| b.is_ascii_digit()) && !n.is_empty() => {
                (name.to_string(), n.parse().unwrap_or(0))
            }
            _ => (m.to_string(), 0),
        });
    let start = after.map_or(0, |a| {
        items
            .iter()
            .position(|(k, _)| *k > a)
            .unwrap_or(items.len())
    });
    let rest = &items[start..];
    let mut out =
        json!({ "Functions": rest.iter().take(max).map(|(_, v)| v.clone()).collect::<Vec<_>>() });
    if rest.len() > max {
        let (name, n) = &rest[max - 1].0;
        out["NextMarker"] = if *n == 0 {
            name.clone()
        } else {
            format!("{name}:{n}")
        }
        .into();
    }
    Ok(Json(out))
}

pub(crate) async fn update_code(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    body: Body,
) -> ApiResult<Json<Value>> {
    let body = read_body(body, CODE_REQUEST_MAX, "UpdateFunctionCode").await?;
    let input: UpdateCodeInput = parse_json(&body)?;
    let name = unqualified(&state, &name, 140)?;
    let code = CodeInput {
        zip_file: None,
        s3_bucket: input.s3_bucket.clone(),
        s3_key: input.s3_key.clone(),
        s3_object_version: None,
        image_uri: input.image_uri.clone(),
    };
    let dry_run = input.dry_run.unwrap_or(false);
    let f = state
        .catalog
        .update_code(
            &name,
            input.zip_file.as_deref(),
            &code,
            input.revision_id.as_deref(),
            dry_run,
            input.publish.unwrap_or(false),
        )
        .await?;
    if !dry_run {
        state.invoker.retire_version(&name, "$LATEST");
        tracing::info!(function = %name, "code updated");
    }
    Ok(Json(config_json(&state, &f)))
}

pub(crate) async fn update_configuration(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    body: Body,
) -> ApiResult<Json<Value>> {
    let body = read_body(body, CONFIG_REQUEST_MAX, "UpdateFunctionConfiguration").await?;
    let input: ConfigInput = parse_json(&body)?;
    let name = unqualified(&state, &name, 140)?;
    let f = state.catalog.update_config(&name, &input).await?;
    state.invoker.retire_version(&name, "$LATEST");
    tracing::info!(function = %name, "configuration updated");
    Ok(Json(config_json(&state, &f)))
}

pub(crate) async fn delete(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<StatusCode> {
    let q = Query::parse(q.as_deref());
    let r = parse_ref(&state, &name, 256, &q)?;
    state
        .catalog
        .delete(&r.name, r.qualifier.as_deref())
        .await?;
    match r.qualifier.as_deref() {
        Some(version) => state.invoker.retire_version(&r.name, version),
        None => {
            state.invoker.retire(&r.name);
            state.invoker.concurrency().unreserve(&r.name);
        }
    }
    tracing::info!(function = %r.name, "function deleted");
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn account_settings(State(state): State<Arc<AppState>>) -> Json<Value> {
    let functions = state.catalog.list();
    Json(json!({
        "AccountLimit": {
            "TotalCodeSize": limits::ACCOUNT_TOTAL_CODE_SIZE,
            "CodeSizeUnzipped": limits::UNZIPPED_MAX_BYTES,
            "CodeSizeZipped": limits::ZIP_MAX_BYTES,
            "ConcurrentExecutions": state.invoker.concurrency().limit(),
            "UnreservedConcurrentExecutions": state.invoker.concurrency().unreserved(),
        },
        "AccountUsage": {
            "TotalCodeSize": state.catalog.total_code_size(),
            "FunctionCount": functions.len(),
        },
    }))
}

/// The function named by a taggable resource ARN.
fn tagged_function(state: &AppState, arn: &str) -> ApiResult<String> {
    if !arn.starts_with("arn:") {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value '{arn}' at 'resource' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:(aws[a-zA-Z-]*):lambda:[a-z]{{2}}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{{1}}:\\d{{12}}:(function:[a-zA-Z0-9-_]+(:(\\$LATEST|[a-zA-Z0-9-_]+))?|layer:([a-zA-Z0-9-_]+)|code-signing-config:csc-[a-z0-9]{{17}}|event-source-mapping:[0-9a-f]{{8}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{12}})"
        )));
    }
    let r = FunctionRef::parse(arn, state.catalog.identity(), 256)?;
    state.catalog.resolve(&r.name, None)?;
    Ok(r.name)
}

pub(crate) async fn list_tags(
    State(state): State<Arc<AppState>>,
    Path(arn): Path<String>,
) -> ApiResult<Json<Value>> {
    let name = tagged_function(&state, &arn)?;
    let f = state.catalog.resolve(&name, None)?;
    Ok(Json(json!({ "Tags": f.tags })))
}

pub(crate) async fn tag(
    State(state): State<Arc<AppState>>,
    Path(arn): Path<String>,
    body: Body,
) -> ApiResult<StatusCode> {
    let body = read_body(body, CONFIG_REQUEST_MAX, "TagResource").await?;
    let input: TagsInput = parse_json(&body)?;
    let name = tagged_function(&state, &arn)?;
    state.catalog.retag(&name, input.tags, &[]).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn untag(
    State(state): State<Arc<AppState>>,
    Path(arn): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<StatusCode> {
    let keys = Query::parse(q.as_deref()).all("tagKeys");
    let name = tagged_function(&state, &arn)?;
    state
        .catalog
        .retag(&name, Default::default(), &keys)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `Code.Location`: the stored zip, by its digest.
pub(crate) async fn download_code(
    State(state): State<Arc<AppState>>,
    Path(file): Path<String>,
) -> ApiResult<Response> {
    let sha = file.strip_suffix(".zip").unwrap_or(&file);
    if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::not_found("No such code package"));
    }
    let zip = state
        .catalog
        .read_zip(sha)
        .map_err(|_| ApiError::not_found("No such code package"))?;
    Ok(([("content-type", "application/zip")], zip).into_response())
}

/// Nimbus' own per-version counters (invocations, errors), used by `nimbus release`.
pub(crate) async fn stats(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let name = unqualified(&state, &name, 140)?;
    state.catalog.resolve(&name, None)?;
    let versions: serde_json::Map<String, Value> = state
        .invoker
        .stats(&name)
        .into_iter()
        .map(|(v, s)| {
            (
                v,
                json!({ "Invocations": s.invocations, "Errors": s.errors, "DurationMicros": s.duration_us }),
            )
        })
        .collect();
    Ok(Json(json!({ "FunctionName": name, "Versions": versions })))
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ConcurrencyInput {
    reserved_concurrent_executions: Option<i64>,
}

/// PutFunctionConcurrency.
pub(crate) async fn put_concurrency(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    body: Body,
) -> ApiResult<Json<Value>> {
    let body = read_body(body, CONFIG_REQUEST_MAX, "PutFunctionConcurrency").await?;
    let input: ConcurrencyInput = parse_json(&body)?;
    let name = unqualified(&state, &name, 140)?;
    state.catalog.resolve(&name, None)?;
    let n = input.reserved_concurrent_executions.ok_or_else(|| {
        ApiError::validation("1 validation error detected: Value null at 'reservedConcurrentExecutions' failed to satisfy constraint: Member must not be null")
    })?;
    let n = u32::try_from(n).map_err(|_| {
        ApiError::validation(format!(
            "1 validation error detected: Value '{n}' at 'reservedConcurrentExecutions' failed to satisfy constraint: Member must have value greater than or equal to 0"
        ))
    })?;
    state.invoker.concurrency().reserve(&name, n).map_err(|e| {
        ApiError::invalid(format!(
            "Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [{}].",
            e.min_unreserved
        ))
    })?;
    state
        .catalog
        .set_reserved_concurrency(&name, Some(n))
        .await?;
    Ok(Json(json!({ "ReservedConcurrentExecutions": n })))
}

/// GetFunctionConcurrency.
pub(crate) async fn get_concurrency(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let name = unqualified(&state, &name, 140)?;
    state.catalog.resolve(&name, None)?;
    Ok(Json(match state.invoker.concurrency().reservation(&name) {
        Some(n) => json!({ "ReservedConcurrentExecutions": n }),
        None => json!({}),
    }))
}

/// DeleteFunctionConcurrency.
pub(crate) async fn delete_concurrency(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    let name = unqualified(&state, &name, 140)?;
    state.catalog.resolve(&name, None)?;
    state.invoker.concurrency().unreserve(&name);
    state.catalog.set_reserved_concurrency(&name, None).await?;
    Ok(StatusCode::NO_CONTENT)
}
