//! Nimbus' AWS-shaped HTTP surface, served by one axum router on one listener (like one AWS
//! region): the Lambda REST API under its dated paths, the CloudWatch Logs and EventBridge
//! JSON 1.1 APIs dispatched by `X-Amz-Target`, a code download URL for `GetFunction`, a
//! health check and a few `/_nimbus/` views for the CLI. It also owns what runs behind the
//! asynchronous APIs: the durable queue's delivery workers ([`async_invoke`]) and the
//! EventBridge rules and scheduler ([`eventbridge`]).
//! Requests are parsed here into typed inputs; failures become AWS errors in [`error`].

pub mod apigw;
pub mod async_invoke;
pub mod catalog;
pub mod error;
mod event_config;
pub mod eventbridge;
mod function_urls;
mod functions;
mod http_trigger;
mod internal;
mod invoke;
mod json11;
mod layers;
mod logs_api;
pub mod metrics_api;
mod provisioned;
mod query;
mod streaming;
mod versions;
pub mod wire;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use nimbus_invoker::Invoker;
use nimbus_store::LogStore;

pub use async_invoke::AsyncInvoker;
pub use catalog::Catalog;
pub use error::{ApiError, ApiResult};
pub use eventbridge::Bus;

/// Everything the handlers share.
pub struct AppState {
    pub catalog: Catalog,
    pub invoker: Arc<Invoker>,
    pub logs: Arc<dyn LogStore>,
    pub async_invoke: AsyncInvoker,
    pub bus: Bus,
    pub apis: apigw::Registry,
    pub usage: Arc<dyn nimbus_store::UsageStore>,
    /// The port the API listens on (Function URLs and API endpoints name it).
    pub http_port: u16,
}

/// The complete router.
pub fn router(state: Arc<AppState>) -> Router {
    metrics_api::mark_start();
    Router::new()
        .route(
            "/_nimbus/health",
            get(|State(s): State<Arc<AppState>>| async move {
                axum::Json(
                    serde_json::json!({ "status": "ok", "isolation": s.invoker.isolation() }),
                )
            }),
        )
        .route("/_nimbus/code/{file}", get(functions::download_code))
        .route("/_nimbus/functions/{name}/stats", get(functions::stats))
        .route("/_nimbus/async", get(internal::async_stats))
        .route("/metrics", get(metrics_api::metrics))
        .route("/_nimbus/stats", get(metrics_api::stats))
        .route("/_nimbus/usage", get(metrics_api::usage))
        .route("/_nimbus/schedules", get(internal::schedules))
        .route("/_nimbus/messages", get(internal::messages))
        .route(
            "/2015-03-31/functions",
            post(functions::create).get(functions::list),
        )
        .route("/2015-03-31/functions/", get(functions::list))
        .route(
            "/2015-03-31/functions/{name}",
            get(functions::get).delete(functions::delete),
        )
        .route(
            "/2015-03-31/functions/{name}/configuration",
            get(functions::get_configuration).put(functions::update_configuration),
        )
        .route(
            "/2015-03-31/functions/{name}/code",
            axum::routing::put(functions::update_code),
        )
        .route(
            "/2015-03-31/functions/{name}/invocations",
            post(invoke::invoke),
        )
        .route(
            "/2021-11-15/functions/{name}/response-streaming-invocations",
            post(streaming::invoke_stream),
        )
        .route(
            "/2015-03-31/functions/{name}/versions",
            post(versions::publish).get(versions::list_versions),
        )
        .route(
            "/2015-03-31/functions/{name}/aliases",
            post(versions::create_alias).get(versions::list_aliases),
        )
        .route(
            "/2015-03-31/functions/{name}/aliases/{alias}",
            get(versions::get_alias)
                .put(versions::update_alias)
                .delete(versions::delete_alias),
        )
        .route(
            "/2014-11-13/functions/{name}/invoke-async",
            post(invoke::invoke_async),
        )
        .route(
            "/2016-08-19/account-settings",
            get(functions::account_settings),
        )
        .route(
            "/2016-08-19/account-settings/",
            get(functions::account_settings),
        )
        .route(
            "/2017-10-31/functions/{name}/concurrency",
            axum::routing::put(functions::put_concurrency).delete(functions::delete_concurrency),
        )
        .route(
            "/2019-09-30/functions/{name}/concurrency",
            get(functions::get_concurrency),
        )
        .route(
            "/2019-09-30/functions/{name}/provisioned-concurrency",
            get(provisioned::get)
                .put(provisioned::put)
                .delete(provisioned::delete),
        )
        .route(
            "/2017-03-31/tags/{arn}",
            get(functions::list_tags)
                .post(functions::tag)
                .delete(functions::untag),
        )
        .route("/2018-10-31/layers", get(layers::list_or_find))
        .route(
            "/2018-10-31/layers/{layer}/versions",
            post(layers::publish).get(layers::list_versions),
        )
        .route(
            "/2018-10-31/layers/{layer}/versions/{version}",
            get(layers::get_version).delete(layers::delete_version),
        )
        .route(
            "/2018-10-31/layers/{layer}/versions/{version}/policy",
            post(layers::add_permission).get(layers::get_policy),
        )
        .route(
            "/2018-10-31/layers/{layer}/versions/{version}/policy/{sid}",
            axum::routing::delete(layers::remove_permission),
        )
        .route(
            "/2019-09-25/functions/{name}/event-invoke-config",
            get(event_config::get)
                .put(event_config::put)
                .post(event_config::update)
                .delete(event_config::delete),
        )
        .route(
            "/2019-09-25/functions/{name}/event-invoke-config/list",
            get(event_config::list),
        )
        .route(
            "/2021-10-31/functions/{name}/url",
            get(function_urls::get)
                .post(function_urls::create)
                .put(function_urls::update)
                .delete(function_urls::delete),
        )
        .route(
            "/2021-10-31/functions/{name}/urls",
            get(function_urls::list),
        )
        .route(
            "/v2/apis",
            post(apigw::api::create_api).get(apigw::api::list_apis),
        )
        .route(
            "/v2/apis/{api}",
            get(apigw::api::get_api)
                .patch(apigw::api::update_api)
                .delete(apigw::api::delete_api),
        )
        .route(
            "/v2/apis/{api}/integrations",
            post(apigw::api::create_integration).get(apigw::api::list_integrations),
        )
        .route(
            "/v2/apis/{api}/integrations/{id}",
            get(apigw::api::get_integration).delete(apigw::api::delete_integration),
        )
        .route(
            "/v2/apis/{api}/routes",
            post(apigw::api::create_route).get(apigw::api::list_routes),
        )
        .route(
            "/v2/apis/{api}/routes/{id}",
            get(apigw::api::get_route)
                .patch(apigw::api::update_route)
                .delete(apigw::api::delete_route),
        )
        .route(
            "/v2/apis/{api}/stages",
            post(apigw::api::create_stage).get(apigw::api::list_stages),
        )
        .route(
            "/v2/apis/{api}/stages/{name}",
            get(apigw::api::get_stage).delete(apigw::api::delete_stage),
        )
        .route(
            "/v2/apis/{api}/deployments",
            post(apigw::api::create_deployment),
        )
        .route("/", post(json11::dispatch))
        .fallback(unknown_operation)
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn(request_id))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            http_trigger::front_door,
        ))
        .with_state(state)
}

async fn unknown_operation(req: Request) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "UnknownOperationException",
        format!(
            "Nimbus does not implement {} {}",
            req.method(),
            req.uri().path()
        ),
    )
}

/// Every response carries `x-amzn-RequestId` (Invoke sets its own: the invocation id).
async fn request_id(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    if !resp.headers().contains_key("x-amzn-requestid") {
        if let Ok(v) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
            resp.headers_mut().insert("x-amzn-RequestId", v);
        }
    }
    resp
}

/// Reads a request body up to `limit` bytes, or answers 413 with Lambda's message.
pub(crate) async fn read_body(
    body: axum::body::Body,
    limit: usize,
    operation: &str,
) -> ApiResult<bytes::Bytes> {
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::too_large(format!(
            "Request must be smaller than {limit} bytes for the {operation} operation"
        ))
    })
}

/// Parses a JSON request body.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    let body = if body.is_empty() {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| {
        if e.is_data() {
            ApiError::validation(format!("1 validation error detected: {e}"))
        } else {
            ApiError::bad_content(format!("Could not parse request body into json: {e}"))
        }
    })
}
