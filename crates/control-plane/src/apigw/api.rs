//! The `apigatewayv2` REST-JSON API under `/v2/` for HTTP APIs: APIs (with quick create),
//! integrations (`AWS_PROXY` to a function), routes, stages and deployments. Member names
//! are camelCase, as botocore's model has them.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::Json;
use nimbus_http_events::RouteKey;
use nimbus_model::{HttpApiRecord, IntegrationRecord, RouteRecord, StageRecord};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::query::Query;
use crate::wire::CorsInput;
use crate::{parse_json, read_body, ApiError, ApiResult, AppState};

fn not_found(what: &str, id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "NotFoundException",
        format!("Invalid {what} identifier specified {id}"),
    )
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "BadRequestException", message)
}

fn conflict(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, "ConflictException", message)
}

fn now_iso() -> String {
    nimbus_model::time_fmt::iso_seconds(time::OffsetDateTime::now_utc())
}

/// Random lowercase alphanumerics, as API Gateway's ids are.
fn new_id(len: usize) -> String {
    let hex = uuid::Uuid::new_v4().simple().to_string();
    hex.chars().take(len).collect()
}

pub(crate) fn endpoint(state: &AppState, api_id: &str) -> String {
    format!(
        "http://{api_id}.execute-api.{}.localhost:{}",
        state.catalog.identity().region,
        state.http_port
    )
}

fn api_json(state: &AppState, a: &HttpApiRecord) -> Value {
    let mut v = json!({
        "apiId": a.api_id,
        "apiEndpoint": endpoint(state, &a.api_id),
        "name": a.name,
        "protocolType": "HTTP",
        "routeSelectionExpression": "${request.method} ${request.path}",
        "apiKeySelectionExpression": "$request.header.x-api-key",
        "createdDate": a.created,
        "disableExecuteApiEndpoint": false,
        "tags": a.tags,
    });
    if let Some(d) = &a.description {
        v["description"] = d.clone().into();
    }
    if let Some(c) = &a.cors {
        v["corsConfiguration"] = crate::wire::cors_json(c, true);
    }
    v
}

fn integration_json(i: &IntegrationRecord) -> Value {
    let mut v = json!({
        "integrationId": i.integration_id,
        "integrationType": i.integration_type,
        "integrationUri": i.integration_uri,
        "integrationMethod": "POST",
        "connectionType": "INTERNET",
        "payloadFormatVersion": i.payload_format_version,
        "timeoutInMillis": i.timeout_ms,
        "apiGatewayManaged": false,
    });
    if let Some(d) = &i.description {
        v["description"] = d.clone().into();
    }
    v
}

fn route_json(r: &RouteRecord) -> Value {
    let mut v = json!({
        "routeId": r.route_id,
        "routeKey": r.route_key,
        "authorizationType": r.authorization_type,
        "apiKeyRequired": false,
        "apiGatewayManaged": false,
    });
    if let Some(t) = &r.target {
        v["target"] = t.clone().into();
    }
    v
}

fn stage_json(s: &StageRecord) -> Value {
    let mut v = json!({
        "stageName": s.stage_name,
        "autoDeploy": s.auto_deploy,
        "createdDate": s.created,
        "lastUpdatedDate": s.last_updated,
        "stageVariables": s.stage_variables,
        "defaultRouteSettings": { "detailedMetricsEnabled": false },
        "routeSettings": {},
        "tags": {},
        "apiGatewayManaged": false,
    });
    if let Some(d) = &s.description {
        v["description"] = d.clone().into();
    }
    v
}

/// A page of `items` (`nextToken` is the index of the next item).
fn page(items: Vec<Value>, q: &Query) -> ApiResult<Json<Value>> {
    let start = match q.get("nextToken") {
        Some(t) => t.parse::<usize>().map_err(|_| bad("Invalid nextToken"))?,
        None => 0,
    };
    let size = match q.get("maxResults") {
        Some(m) => m
            .parse::<usize>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| bad("Invalid maxResults"))?,
        None => 100,
    };
    let end = (start + size).min(items.len());
    let mut v = json!({ "items": items.get(start.min(end)..end).unwrap_or_default() });
    if end < items.len() {
        v["nextToken"] = end.to_string().into();
    }
    Ok(Json(v))
}

/// A Lambda function ARN an integration may name (this region and account).
fn check_function_arn(state: &AppState, uri: &str) -> ApiResult<()> {
    match crate::async_invoke::record::Destination::parse(uri, state.catalog.identity()) {
        Ok(crate::async_invoke::record::Destination::Function { .. }) => Ok(()),
        _ => Err(bad(format!(
            "Invalid integration URI specified: {uri} (Nimbus serves AWS_PROXY integrations to Lambda functions of this region and account)"
        ))),
    }
}

fn integration(
    state: &AppState,
    uri: String,
    payload: Option<String>,
    timeout_ms: Option<u32>,
    description: Option<String>,
) -> ApiResult<IntegrationRecord> {
    check_function_arn(state, &uri)?;
    let payload = payload.unwrap_or_else(|| "2.0".into());
    if !matches!(payload.as_str(), "1.0" | "2.0") {
        return Err(bad(format!(
            "Invalid payload format version specified: {payload}"
        )));
    }
    let timeout_ms = timeout_ms.unwrap_or(30_000);
    if !(50..=30_000).contains(&timeout_ms) {
        return Err(bad(
            "Timeout must be between 50 milliseconds and 30 seconds.",
        ));
    }
    Ok(IntegrationRecord {
        integration_id: new_id(7),
        integration_type: "AWS_PROXY".into(),
        integration_uri: uri,
        payload_format_version: payload,
        timeout_ms,
        description,
    })
}

fn parse_key(key: &str) -> ApiResult<()> {
    RouteKey::parse(key)
        .map(|_| ())
        .map_err(|e| bad(e.to_string()))
}

fn check_target(api: &HttpApiRecord, target: &Option<String>) -> ApiResult<()> {
    match target {
        None => Ok(()),
        Some(t) => match t.strip_prefix("integrations/") {
            Some(id) if api.integrations.contains_key(id) => Ok(()),
            _ => Err(bad(format!("Invalid target specified: {t}"))),
        },
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct ApiInput {
    name: Option<String>,
    protocol_type: Option<String>,
    description: Option<String>,
    cors_configuration: Option<CorsInput>,
    target: Option<String>,
    route_key: Option<String>,
    tags: Option<BTreeMap<String, String>>,
}

pub(crate) async fn create_api(
    State(state): State<Arc<AppState>>,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let body = read_body(body, 256 * 1024, "CreateApi").await?;
    let input: ApiInput = parse_json(&body)?;
    let name = input
        .name
        .filter(|n| !n.is_empty() && n.len() <= 128)
        .ok_or_else(|| bad("Name must be between 1 and 128 characters."))?;
    match input.protocol_type.as_deref() {
        Some("HTTP") => {}
        Some("WEBSOCKET") => return Err(bad("Nimbus serves HTTP APIs only (ProtocolType HTTP).")),
        _ => {
            return Err(bad(
                "Invalid protocol type specified. Valid values are HTTP and WEBSOCKET.",
            ))
        }
    }
    let now = now_iso();
    let mut api = HttpApiRecord {
        api_id: new_id(10),
        name,
        description: input.description,
        cors: input.cors_configuration.map(Into::into),
        tags: input.tags.unwrap_or_default(),
        created: now.clone(),
        integrations: BTreeMap::new(),
        routes: BTreeMap::new(),
        stages: BTreeMap::new(),
    };
    // Quick create: an integration to the target, a route ($default unless a RouteKey is
    // given) and a $default stage that deploys automatically.
    if let Some(target) = input.target {
        let i = integration(&state, target, Some("2.0".into()), None, None)?;
        let key = input.route_key.unwrap_or_else(|| "$default".into());
        parse_key(&key)?;
        let route = RouteRecord {
            route_id: new_id(7),
            route_key: key,
            target: Some(format!("integrations/{}", i.integration_id)),
            authorization_type: "NONE".into(),
        };
        api.routes.insert(route.route_id.clone(), route);
        api.integrations.insert(i.integration_id.clone(), i);
        api.stages.insert(
            "$default".into(),
            StageRecord {
                stage_name: "$default".into(),
                auto_deploy: true,
                description: None,
                stage_variables: BTreeMap::new(),
                created: now.clone(),
                last_updated: now,
            },
        );
    } else if input.route_key.is_some() {
        return Err(bad(
            "RouteKey can only be specified with Target (quick create).",
        ));
    }
    let id = api.api_id.clone();
    let v = api_json(&state, &api);
    state.apis.update(&id, |_| Ok((Some(api), ()))).await?;
    Ok((StatusCode::CREATED, Json(v)))
}

fn load(state: &AppState, api_id: &str) -> ApiResult<Arc<super::CompiledApi>> {
    state
        .apis
        .get(api_id)
        .ok_or_else(|| not_found("API", api_id))
}

pub(crate) async fn get_api(
    State(state): State<Arc<AppState>>,
    Path(api_id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(api_json(&state, &load(&state, &api_id)?.record)))
}

pub(crate) async fn list_apis(
    State(state): State<Arc<AppState>>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    let q = Query::parse(q.as_deref());
    let items = state
        .apis
        .all()
        .iter()
        .map(|a| api_json(&state, &a.record))
        .collect();
    page(items, &q)
}

pub(crate) async fn update_api(
    State(state): State<Arc<AppState>>,
    Path(api_id): Path<String>,
    body: Body,
) -> ApiResult<Json<Value>> {
    let body = read_body(body, 256 * 1024, "UpdateApi").await?;
    let input: ApiInput = parse_json(&body)?;
    let api = state
        .apis
        .update(&api_id, |current| {
            let mut a = current.cloned().ok_or_else(|| not_found("API", &api_id))?;
            if let Some(n) = input.name {
                a.name = n;
            }
            if let Some(d) = input.description {
                a.description = Some(d);
            }
            if let Some(c) = input.cors_configuration {
                a.cors = Some(c.into());
            }
            Ok((Some(a.clone()), a))
        })
        .await?;
    Ok(Json(api_json(&state, &api)))
}

pub(crate) async fn delete_api(
    State(state): State<Arc<AppState>>,
    Path(api_id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .apis
        .update(&api_id, |current| match current {
            Some(_) => Ok((None, ())),
            None => Err(not_found("API", &api_id)),
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct IntegrationInput {
    integration_type: Option<String>,
    integration_uri: Option<String>,
    payload_format_version: Option<String>,
    timeout_in_millis: Option<u32>,
    description: Option<String>,
}

pub(crate) async fn create_integration(
    State(state): State<Arc<AppState>>,
    Path(api_id): Path<String>,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let body = read_body(body, 256 * 1024, "CreateIntegration").await?;
    let input: IntegrationInput = parse_json(&body)?;
    if input.integration_type.as_deref() != Some("AWS_PROXY") {
        return Err(bad(
            "Nimbus serves AWS_PROXY integrations (to Lambda functions) only.",
        ));
    }
    let uri = input
        .integration_uri
        .ok_or_else(|| bad("IntegrationUri is required for AWS_PROXY integrations."))?;
    let i = integration(
        &state,
        uri,
        input.payload_format_version,
        input.timeout_in_millis,
        input.description,
    )?;
    let v = integration_json(&i);
    state
        .apis
        .update(&api_id, |current| {
            let mut a = current.cloned().ok_or_else(|| not_found("API", &api_id))?;
            a.integrations.insert(i.integration_id.clone(), i);
            Ok((Some(a), ()))
        })
        .await?;
    Ok((StatusCode::CREATED, Json(v)))
}

pub(crate) async fn get_integration(
    State(state): State<Arc<AppState>>,
    Path((api_id, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let api = load(&state, &api_id)?;
    let i = api
        .record
        .integrations
        .get(&id)
        .ok_or_else(|| not_found("Integration", &id))?;
    Ok(Json(integration_json(i)))
}

pub(crate) async fn list_integrations(
    State(state): State<Arc<AppState>>,
    Path(api_id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    let q = Query::parse(q.as_deref());
    let api = load(&state, &api_id)?;
    page(
        api.record
            .integrations
            .values()
            .map(integration_json)
            .collect(),
        &q,
    )
}

pub(crate) async fn delete_integration(
    State(state): State<Arc<AppState>>,
    Path((api_id, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    state
        .apis
        .update(&api_id, |current| {
            let mut a = current.cloned().ok_or_else(|| not_found("API", &api_id))?;
            let target = format!("integrations/{id}");
            if a.routes
                .values()
                .any(|r| r.target.as_deref() == Some(&target))
            {
                return Err(conflict(format!(
                    "Cannot delete Integration {id} because it is the target of a Route"
                )));
            }
            a.integrations
                .remove(&id)
                .ok_or_else(|| not_found("Integration", &id))?;
            Ok((Some(a), ()))
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RouteInput {
    route_key: Option<String>,
    target: Option<String>,
    authorization_type: Option<String>,
}

fn check_auth(t: &Option<String>) -> ApiResult<String> {
    match t.as_deref() {
        None | Some("NONE") => Ok("NONE".into()),
        Some(other) => Err(bad(format!(
            "Nimbus does not verify authorizers: AuthorizationType {other} is not supported (use NONE)."
        ))),
    }
}

pub(crate) async fn create_route(
    State(state): State<Arc<AppState>>,
    Path(api_id): Path<String>,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let body = read_body(body, 256 * 1024, "CreateRoute").await?;
    let input: RouteInput = parse_json(&body)?;
    let key = input
        .route_key
        .ok_or_else(|| bad("RouteKey is required."))?;
    parse_key(&key)?;
    let authorization_type = check_auth(&input.authorization_type)?;
    let route = state
        .apis
        .update(&api_id, |current| {
            let mut a = current.cloned().ok_or_else(|| not_found("API", &api_id))?;
            if a.routes.values().any(|r| r.route_key == key) {
                return Err(conflict(format!(
                    "Unable to create Route with RouteKey {key} because a Route with that key already exists"
                )));
            }
            check_target(&a, &input.target)?;
            let r = RouteRecord {
                route_id: new_id(7),
                route_key: key.clone(),
                target: input.target.clone(),
                authorization_type,
            };
            a.routes.insert(r.route_id.clone(), r.clone());
            Ok((Some(a), r))
        })
        .await?;
    Ok((StatusCode::CREATED, Json(route_json(&route))))
}

pub(crate) async fn update_route(
    State(state): State<Arc<AppState>>,
    Path((api_id, id)): Path<(String, String)>,
    body: Body,
) -> ApiResult<Json<Value>> {
    let body = read_body(body, 256 * 1024, "UpdateRoute").await?;
    let input: RouteInput = parse_json(&body)?;
    if let Some(k) = &input.route_key {
        parse_key(k)?;
    }
    let route = state
        .apis
        .update(&api_id, |current| {
            let mut a = current.cloned().ok_or_else(|| not_found("API", &api_id))?;
            check_target(&a, &input.target)?;
            if let Some(k) = &input.route_key {
                if a.routes.values().any(|r| &r.route_key == k && r.route_id != id) {
                    return Err(conflict(format!(
                        "Unable to update Route with RouteKey {k} because a Route with that key already exists"
                    )));
                }
            }
            let r = a.routes.get_mut(&id).ok_or_else(|| not_found("Route", &id))?;
            if let Some(k) = input.route_key {
                r.route_key = k;
            }
            if input.target.is_some() {
                r.target = input.target;
            }
            if input.authorization_type.is_some() {
                r.authorization_type = check_auth(&input.authorization_type)?;
            }
            let r = r.clone();
            Ok((Some(a), r))
        })
        .await?;
    Ok(Json(route_json(&route)))
}

pub(crate) async fn get_route(
    State(state): State<Arc<AppState>>,
    Path((api_id, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let api = load(&state, &api_id)?;
    let r = api
        .record
        .routes
        .get(&id)
        .ok_or_else(|| not_found("Route", &id))?;
    Ok(Json(route_json(r)))
}

pub(crate) async fn list_routes(
    State(state): State<Arc<AppState>>,
    Path(api_id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    let q = Query::parse(q.as_deref());
    let api = load(&state, &api_id)?;
    page(api.record.routes.values().map(route_json).collect(), &q)
}

pub(crate) async fn delete_route(
    State(state): State<Arc<AppState>>,
    Path((api_id, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    state
        .apis
        .update(&api_id, |current| {
            let mut a = current.cloned().ok_or_else(|| not_found("API", &api_id))?;
            a.routes
                .remove(&id)
                .ok_or_else(|| not_found("Route", &id))?;
            Ok((Some(a), ()))
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct StageInput {
    stage_name: Option<String>,
    auto_deploy: Option<bool>,
    description: Option<String>,
    stage_variables: Option<BTreeMap<String, String>>,
}

pub(crate) async fn create_stage(
    State(state): State<Arc<AppState>>,
    Path(api_id): Path<String>,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let body = read_body(body, 256 * 1024, "CreateStage").await?;
    let input: StageInput = parse_json(&body)?;
    let name = input
        .stage_name
        .filter(|n| {
            n == "$default"
                || (!n.is_empty()
                    && n.len() <= 128
                    && n.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        })
        .ok_or_else(|| bad("Stage name must be $default or 1-128 characters of [A-Za-z0-9-_]."))?;
    let now = now_iso();
    let stage = StageRecord {
        stage_name: name.clone(),
        auto_deploy: input.auto_deploy.unwrap_or(false),
        description: input.description,
        stage_variables: input.stage_variables.unwrap_or_default(),
        created: now.clone(),
        last_updated: now,
    };
    let v = stage_json(&stage);
    state
        .apis
        .update(&api_id, |current| {
            let mut a = current.cloned().ok_or_else(|| not_found("API", &api_id))?;
            if a.stages.contains_key(&name) {
                return Err(conflict(format!("Stage {name} already exists")));
            }
            a.stages.insert(name.clone(), stage);
            Ok((Some(a), ()))
        })
        .await?;
    Ok((StatusCode::CREATED, Json(v)))
}

pub(crate) async fn get_stage(
    State(state): State<Arc<AppState>>,
    Path((api_id, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let api = load(&state, &api_id)?;
    let s = api
        .record
        .stages
        .get(&name)
        .ok_or_else(|| not_found("Stage", &name))?;
    Ok(Json(stage_json(s)))
}

pub(crate) async fn list_stages(
    State(state): State<Arc<AppState>>,
    Path(api_id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    let q = Query::parse(q.as_deref());
    let api = load(&state, &api_id)?;
    page(api.record.stages.values().map(stage_json).collect(), &q)
}

pub(crate) async fn delete_stage(
    State(state): State<Arc<AppState>>,
    Path((api_id, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    state
        .apis
        .update(&api_id, |current| {
            let mut a = current.cloned().ok_or_else(|| not_found("API", &api_id))?;
            a.stages
                .remove(&name)
                .ok_or_else(|| not_found("Stage", &name))?;
            Ok((Some(a), ()))
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// CreateDeployment: every stage already serves the API's current routes (as AutoDeploy
/// does), so a deployment is only acknowledged.
pub(crate) async fn create_deployment(
    State(state): State<Arc<AppState>>,
    Path(api_id): Path<String>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    load(&state, &api_id)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "deploymentId": new_id(6),
            "deploymentStatus": "DEPLOYED",
            "createdDate": now_iso(),
            "autoDeployed": false,
        })),
    ))
}
