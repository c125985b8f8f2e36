//! Create/Get/Update/Delete/ListFunctionUrlConfigs. A URL lives on `$LATEST` (unqualified)
//! or on an alias; its address is `http://<url-id>.lambda-url.<region>.localhost:<port>/`,
//! served by [`crate::http_trigger`].

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::Json;
use nimbus_model::time_fmt::lambda_timestamp;
use nimbus_model::{CorsConfig, FunctionRef, FunctionUrlConfig};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::query::{page, Query};
use crate::wire::CorsInput;
use crate::{parse_json, read_body, ApiError, ApiResult, AppState};

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct UrlInput {
    auth_type: Option<String>,
    cors: Option<CorsInput>,
    invoke_mode: Option<String>,
}

const METHODS: &[&str] = &["GET", "PUT", "HEAD", "POST", "PATCH", "DELETE", "*"];

fn validate_cors(c: CorsInput) -> ApiResult<CorsConfig> {
    let list = |v: &Option<Vec<String>>, max: usize, member: &str| -> ApiResult<()> {
        match v {
            Some(items) if items.len() > max => Err(ApiError::validation(format!(
                "1 validation error detected: Value at 'cors.{member}' failed to satisfy constraint: Member must have length less than or equal to {max}"
            ))),
            _ => Ok(()),
        }
    };
    list(&c.allow_headers, 100, "allowHeaders")?;
    list(&c.allow_methods, 6, "allowMethods")?;
    list(&c.allow_origins, 100, "allowOrigins")?;
    list(&c.expose_headers, 100, "exposeHeaders")?;
    if let Some(m) = c
        .allow_methods
        .iter()
        .flatten()
        .find(|m| !METHODS.contains(&m.to_ascii_uppercase().as_str()))
    {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value '{m}' at 'cors.allowMethods' failed to satisfy constraint: Member must satisfy constraint: [Member must have length less than or equal to 6, Member must satisfy regular expression pattern: .*]"
        )));
    }
    if let Some(age) = c.max_age.filter(|a| !(0..=86_400).contains(a)) {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value '{age}' at 'cors.maxAge' failed to satisfy constraint: Member must have value less than or equal to 86400"
        )));
    }
    Ok(c.into())
}

fn check_auth(v: &str) -> ApiResult<()> {
    if matches!(v, "NONE" | "AWS_IAM") {
        Ok(())
    } else {
        Err(ApiError::validation(format!(
            "1 validation error detected: Value '{v}' at 'authType' failed to satisfy constraint: Member must satisfy enum value set: [AWS_IAM, NONE]"
        )))
    }
}

fn check_mode(v: &str) -> ApiResult<()> {
    if matches!(v, "BUFFERED" | "RESPONSE_STREAM") {
        Ok(())
    } else {
        Err(ApiError::validation(format!(
            "1 validation error detected: Value '{v}' at 'invokeMode' failed to satisfy constraint: Member must satisfy enum value set: [BUFFERED, RESPONSE_STREAM]"
        )))
    }
}

/// The function and the qualifier key (`$LATEST` when unqualified); the qualifier must be
/// an alias that exists (URLs are not allowed on numbered versions).
fn target(state: &AppState, raw: &str, q: &Query) -> ApiResult<(String, Option<String>)> {
    let r = FunctionRef::parse(raw, state.catalog.identity(), 140)?
        .with_query_qualifier(q.get("Qualifier"))?;
    if let Some(qualifier) = &r.qualifier {
        if qualifier.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value '{qualifier}' at 'qualifier' failed to satisfy constraint: Member must satisfy regular expression pattern: ((?!^\\d+$)^[0-9a-zA-Z-_]+$)"
            )));
        }
    }
    state.catalog.resolve(&r.name, r.qualifier.as_deref())?;
    let qualifier = r.qualifier.filter(|q| q != "$LATEST");
    Ok((r.name, qualifier))
}

fn key(qualifier: &Option<String>) -> &str {
    qualifier.as_deref().unwrap_or("$LATEST")
}

pub(crate) fn url_of(state: &AppState, url_id: &str) -> String {
    format!(
        "http://{url_id}.lambda-url.{}.localhost:{}/",
        state.catalog.identity().region,
        state.http_port
    )
}

fn render(
    state: &AppState,
    name: &str,
    qualifier: &Option<String>,
    u: &FunctionUrlConfig,
) -> Value {
    let identity = state.catalog.identity();
    let mut v = json!({
        "FunctionUrl": url_of(state, &u.url_id),
        "FunctionArn": identity.arn(name, qualifier.as_deref()),
        "AuthType": u.auth_type,
        "CreationTime": u.creation_time,
        "LastModifiedTime": u.last_modified,
        "InvokeMode": u.invoke_mode,
    });
    if let Some(c) = &u.cors {
        v["Cors"] = crate::wire::cors_json(c, false);
    }
    v
}

fn not_found() -> ApiError {
    ApiError::not_found("The resource you requested does not exist.")
}

fn new_url_id() -> String {
    // 32 lowercase alphanumerics, like AWS' url-id; a v4 UUID's hex digits are random enough.
    uuid::Uuid::new_v4().simple().to_string()
}

pub(crate) async fn create(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let q = Query::parse(q.as_deref());
    let body = read_body(body, 64 * 1024, "CreateFunctionUrlConfig").await?;
    let input: UrlInput = parse_json(&body)?;
    let (name, qualifier) = target(&state, &name, &q)?;
    let auth = input.auth_type.ok_or_else(|| {
        ApiError::validation("1 validation error detected: Value null at 'authType' failed to satisfy constraint: Member must not be null")
    })?;
    check_auth(&auth)?;
    let mode = input.invoke_mode.unwrap_or_else(|| "BUFFERED".into());
    check_mode(&mode)?;
    let cors = input.cors.map(validate_cors).transpose()?;
    if state
        .catalog
        .resolve(&name, None)?
        .urls
        .contains_key(key(&qualifier))
    {
        let arn = state.catalog.identity().arn(&name, qualifier.as_deref());
        return Err(ApiError::conflict(format!(
            "Failed to create function url config for [functionArn = {arn}]. Error message:  FunctionUrlConfig exists for this Lambda function"
        )));
    }
    let now = lambda_timestamp(time::OffsetDateTime::now_utc());
    let config = FunctionUrlConfig {
        url_id: new_url_id(),
        auth_type: auth,
        cors,
        invoke_mode: mode,
        creation_time: now.clone(),
        last_modified: now,
    };
    state
        .catalog
        .set_function_url(&name, key(&qualifier), Some(config.clone()))
        .await?;
    let mut v = render(&state, &name, &qualifier, &config);
    if let Some(m) = v.as_object_mut() {
        m.remove("LastModifiedTime");
    }
    Ok((StatusCode::CREATED, Json(v)))
}

pub(crate) async fn update(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
    body: Body,
) -> ApiResult<Json<Value>> {
    let q = Query::parse(q.as_deref());
    let body = read_body(body, 64 * 1024, "UpdateFunctionUrlConfig").await?;
    let input: UrlInput = parse_json(&body)?;
    let (name, qualifier) = target(&state, &name, &q)?;
    let mut config = state
        .catalog
        .resolve(&name, None)?
        .urls
        .get(key(&qualifier))
        .cloned()
        .ok_or_else(not_found)?;
    if let Some(a) = input.auth_type {
        check_auth(&a)?;
        config.auth_type = a;
    }
    if let Some(m) = input.invoke_mode {
        check_mode(&m)?;
        config.invoke_mode = m;
    }
    if let Some(c) = input.cors {
        config.cors = Some(validate_cors(c)?);
    }
    config.last_modified = lambda_timestamp(time::OffsetDateTime::now_utc());
    state
        .catalog
        .set_function_url(&name, key(&qualifier), Some(config.clone()))
        .await?;
    Ok(Json(render(&state, &name, &qualifier, &config)))
}

pub(crate) async fn get(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    let q = Query::parse(q.as_deref());
    let (name, qualifier) = target(&state, &name, &q)?;
    let latest = state.catalog.resolve(&name, None)?;
    let u = latest.urls.get(key(&qualifier)).ok_or_else(not_found)?;
    Ok(Json(render(&state, &name, &qualifier, u)))
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
        .urls
        .contains_key(key(&qualifier))
    {
        return Err(not_found());
    }
    state
        .catalog
        .set_function_url(&name, key(&qualifier), None)
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
        .urls
        .iter()
        .map(|(k, u)| {
            let qualifier = (k != "$LATEST").then(|| k.clone());
            (k.clone(), render(&state, &r.name, &qualifier, u))
        })
        .collect();
    let v = page("FunctionUrlConfigs", items, &q, 50)?;
    Ok(Json(v))
}
