//! HTTP triggers as stored: Function URL configurations and API Gateway HTTP APIs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// CORS settings of a Function URL or an HTTP API.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorsConfig {
    pub allow_credentials: Option<bool>,
    pub allow_headers: Option<Vec<String>>,
    pub allow_methods: Option<Vec<String>>,
    pub allow_origins: Option<Vec<String>>,
    pub expose_headers: Option<Vec<String>>,
    pub max_age: Option<i64>,
}

/// A Function URL (on `$LATEST` or an alias).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionUrlConfig {
    /// 32 lowercase alphanumerics: the URL's host label.
    pub url_id: String,
    /// `NONE` or `AWS_IAM`.
    pub auth_type: String,
    pub cors: Option<CorsConfig>,
    /// `BUFFERED` or `RESPONSE_STREAM`.
    pub invoke_mode: String,
    /// Lambda-formatted timestamps.
    pub creation_time: String,
    pub last_modified: String,
}

/// An API Gateway HTTP API with its integrations, routes and stages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpApiRecord {
    pub api_id: String,
    pub name: String,
    pub description: Option<String>,
    pub cors: Option<CorsConfig>,
    pub tags: BTreeMap<String, String>,
    /// ISO-8601 (`2024-01-01T00:00:00Z`).
    pub created: String,
    pub integrations: BTreeMap<String, IntegrationRecord>,
    pub routes: BTreeMap<String, RouteRecord>,
    pub stages: BTreeMap<String, StageRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntegrationRecord {
    pub integration_id: String,
    /// Only `AWS_PROXY` is served.
    pub integration_type: String,
    /// The function's ARN (possibly qualified).
    pub integration_uri: String,
    /// `1.0` or `2.0`.
    pub payload_format_version: String,
    pub timeout_ms: u32,
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteRecord {
    pub route_id: String,
    pub route_key: String,
    /// `integrations/<id>`.
    pub target: Option<String>,
    pub authorization_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageRecord {
    pub stage_name: String,
    pub auto_deploy: bool,
    pub description: Option<String>,
    pub stage_variables: BTreeMap<String, String>,
    pub created: String,
    pub last_updated: String,
}
