//! Layers: PublishLayerVersion, GetLayerVersion(ByArn), ListLayerVersions, ListLayers,
//! DeleteLayerVersion and the layer version policy operations.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use nimbus_model::{LayerVersionRecord, PolicyStatement};
use serde_json::{json, Value};

use crate::catalog::NewLayerVersion;
use crate::query::{page, Query};
use crate::wire::{self, LayerPermissionInput, PublishLayerInput};
use crate::{parse_json, read_body, ApiError, ApiResult, AppState};

/// A layer zip in base64 plus the rest of the JSON.
const PUBLISH_MAX: usize = 72 * 1024 * 1024;
const POLICY_MAX: usize = 64 * 1024;

fn host(headers: &HeaderMap) -> &str {
    headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1:9600")
}

fn version_number(raw: &str) -> ApiResult<u64> {
    raw.parse().map_err(|_| {
        ApiError::validation(format!(
            "1 validation error detected: Value '{raw}' at 'versionNumber' failed to satisfy constraint: Member must be a number"
        ))
    })
}

fn render(state: &AppState, l: &LayerVersionRecord, headers: &HeaderMap) -> Value {
    let location = format!(
        "http://{}/_nimbus/code/{}.zip",
        host(headers),
        l.code.sha256_hex
    );
    wire::layer_version(l, &state.catalog.layer_arn(&l.name), location)
}

fn matches(l: &LayerVersionRecord, q: &Query) -> bool {
    let runtime_ok = q
        .get("CompatibleRuntime")
        .is_none_or(|r| l.compatible_runtimes.iter().any(|x| x == r));
    let arch_ok = q
        .get("CompatibleArchitecture")
        .is_none_or(|a| l.compatible_architectures.iter().any(|x| x == a));
    runtime_ok && arch_ok
}

pub(crate) async fn publish(
    State(state): State<Arc<AppState>>,
    Path(layer): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let body = read_body(body, PUBLISH_MAX, "PublishLayerVersion").await?;
    let input: PublishLayerInput = parse_json(&body)?;
    let name = state.catalog.layer_name(&layer)?;
    let content = input.content.ok_or_else(|| {
        ApiError::validation("1 validation error detected: Value null at 'content' failed to satisfy constraint: Member must not be null")
    })?;
    if content.s3_bucket.is_some() || content.s3_key.is_some() {
        return Err(ApiError::invalid(
            "Nimbus does not read layer content from Amazon S3: upload the zip inline as Content.ZipFile",
        ));
    }
    let zip_b64 = content.zip_file.ok_or_else(|| {
        ApiError::invalid("Please provide a source for the layer content (Content.ZipFile).")
    })?;
    let l = state
        .catalog
        .publish_layer(
            &name,
            NewLayerVersion {
                zip_b64,
                description: input.description.unwrap_or_default(),
                compatible_runtimes: input.compatible_runtimes.unwrap_or_default(),
                compatible_architectures: input.compatible_architectures.unwrap_or_default(),
                license_info: input.license_info,
            },
        )
        .await?;
    tracing::info!(layer = %name, version = l.version, "layer version published");
    Ok((StatusCode::CREATED, Json(render(&state, &l, &headers))).into_response())
}

pub(crate) async fn get_version(
    State(state): State<Arc<AppState>>,
    Path((layer, version)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let name = state.catalog.layer_name(&layer)?;
    let l = state
        .catalog
        .layer_version_or_404(&name, version_number(&version)?)?;
    Ok(Json(render(&state, &l, &headers)))
}

pub(crate) async fn delete_version(
    State(state): State<Arc<AppState>>,
    Path((layer, version)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let name = state.catalog.layer_name(&layer)?;
    state
        .catalog
        .delete_layer_version(&name, version_number(&version)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn list_versions(
    State(state): State<Arc<AppState>>,
    Path(layer): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    let q = Query::parse(q.as_deref());
    let name = state.catalog.layer_name(&layer)?;
    let arn = state.catalog.layer_arn(&name);
    let items = state
        .catalog
        .layer_versions(&name)
        .iter()
        .filter(|l| matches(l, &q))
        .map(|l| (l.version.to_string(), wire::layer_version_item(l, &arn)))
        .collect();
    let out = page("LayerVersions", items, &q, 50)?;
    Ok(Json(out))
}

/// `GET /2018-10-31/layers`: ListLayers, or GetLayerVersionByArn with `find=LayerVersion`.
pub(crate) async fn list_or_find(
    State(state): State<Arc<AppState>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let q = Query::parse(q.as_deref());
    if q.get("find") == Some("LayerVersion") {
        let arn = q.get("Arn").unwrap_or("");
        let (name, version) = state.catalog.parse_layer_version_arn(arn).ok_or_else(|| {
            ApiError::validation(format!(
                "1 validation error detected: Value '{arn}' at 'arn' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\\d{{12}}:layer:[a-zA-Z0-9-_]+:[0-9]+"
            ))
        })?;
        let l = state.catalog.layer_version_or_404(&name, version)?;
        return Ok(Json(render(&state, &l, &headers)));
    }
    let items = state
        .catalog
        .layer_names()
        .into_iter()
        .filter_map(|name| {
            let arn = state.catalog.layer_arn(&name);
            let latest = state
                .catalog
                .layer_versions(&name)
                .into_iter()
                .find(|l| matches(l, &q))?;
            Some((
                name.clone(),
                json!({
                    "LayerName": name,
                    "LayerArn": arn,
                    "LatestMatchingVersion": wire::layer_version_item(&latest, &arn),
                }),
            ))
        })
        .collect();
    let out = page("Layers", items, &q, 50)?;
    Ok(Json(out))
}

pub(crate) async fn add_permission(
    State(state): State<Arc<AppState>>,
    Path((layer, version)): Path<(String, String)>,
    RawQuery(q): RawQuery,
    body: Body,
) -> ApiResult<Response> {
    let q = Query::parse(q.as_deref());
    let body = read_body(body, POLICY_MAX, "AddLayerVersionPermission").await?;
    let input: LayerPermissionInput = parse_json(&body)?;
    let name = state.catalog.layer_name(&layer)?;
    let version = version_number(&version)?;
    let missing = |m: &str| {
        ApiError::validation(format!(
            "1 validation error detected: Value null at '{m}' failed to satisfy constraint: Member must not be null"
        ))
    };
    let sid = input.statement_id.ok_or_else(|| missing("statementId"))?;
    if sid.is_empty()
        || sid.len() > 100
        || !sid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value '{sid}' at 'statementId' failed to satisfy constraint: Member must satisfy regular expression pattern: ([a-zA-Z0-9-_]+)"
        )));
    }
    let action = input.action.ok_or_else(|| missing("action"))?;
    if action != "lambda:GetLayerVersion" {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value '{action}' at 'action' failed to satisfy constraint: Member must satisfy regular expression pattern: lambda:GetLayerVersion"
        )));
    }
    let principal = input.principal.ok_or_else(|| missing("principal"))?;
    let principal_ok = principal == "*"
        || (principal.len() == 12 && principal.bytes().all(|b| b.is_ascii_digit()))
        || (principal.starts_with("arn:aws") && principal.ends_with(":root"));
    if !principal_ok {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value '{principal}' at 'principal' failed to satisfy constraint: Member must satisfy regular expression pattern: \\d{{12}}|\\*|arn:(aws[a-zA-Z-]*):iam::\\d{{12}}:root"
        )));
    }
    let statement = PolicyStatement {
        sid,
        action,
        principal,
        organization_id: input.organization_id,
    };
    let revision = q.get("RevisionId").map(str::to_owned).or(input.revision_id);
    let l = state
        .catalog
        .add_layer_permission(&name, version, statement.clone(), revision.as_deref())
        .await?;
    let resource = format!("{}:{version}", state.catalog.layer_arn(&name));
    let out = json!({
        "Statement": wire::layer_statement(&statement, &resource).to_string(),
        "RevisionId": l.policy_revision,
    });
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

pub(crate) async fn get_policy(
    State(state): State<Arc<AppState>>,
    Path((layer, version)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let name = state.catalog.layer_name(&layer)?;
    let version = version_number(&version)?;
    let l = state.catalog.layer_version_or_404(&name, version)?;
    if l.policy.is_empty() {
        return Err(ApiError::not_found(
            "No policy is associated with the given resource.",
        ));
    }
    let resource = format!("{}:{version}", state.catalog.layer_arn(&name));
    let policy = json!({
        "Version": "2012-10-17",
        "Id": "default",
        "Statement": l.policy.iter().map(|s| wire::layer_statement(s, &resource)).collect::<Vec<_>>(),
    });
    Ok(Json(
        json!({ "Policy": policy.to_string(), "RevisionId": l.policy_revision }),
    ))
}

pub(crate) async fn remove_permission(
    State(state): State<Arc<AppState>>,
    Path((layer, version, sid)): Path<(String, String, String)>,
    RawQuery(q): RawQuery,
) -> ApiResult<StatusCode> {
    let q = Query::parse(q.as_deref());
    let name = state.catalog.layer_name(&layer)?;
    state
        .catalog
        .remove_layer_permission(&name, version_number(&version)?, &sid, q.get("RevisionId"))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
