//! Lambda's JSON shapes (botocore's `lambda` model): requests parsed from it, responses
//! rendered into it. Nothing else in Nimbus knows these member names.

use std::collections::BTreeMap;

use nimbus_artifact::code_sha256_b64;
use nimbus_model::{FunctionRecord, Identity};
use serde::Deserialize;
use serde_json::{json, Map, Value};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CodeInput {
    pub zip_file: Option<String>,
    #[serde(rename = "S3Bucket")]
    pub s3_bucket: Option<String>,
    #[serde(rename = "S3Key")]
    pub s3_key: Option<String>,
    #[serde(rename = "S3ObjectVersion")]
    pub s3_object_version: Option<String>,
    pub image_uri: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EnvironmentInput {
    pub variables: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EphemeralInput {
    pub size: u32,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LoggingInput {
    pub log_format: Option<String>,
    pub application_log_level: Option<String>,
    pub system_log_level: Option<String>,
    pub log_group: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TracingInput {
    pub mode: Option<String>,
}

/// Members shared by CreateFunction and UpdateFunctionConfiguration.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConfigInput {
    pub runtime: Option<String>,
    pub handler: Option<String>,
    pub role: Option<String>,
    pub description: Option<String>,
    pub timeout: Option<i64>,
    pub memory_size: Option<i64>,
    pub environment: Option<EnvironmentInput>,
    pub ephemeral_storage: Option<EphemeralInput>,
    pub logging_config: Option<LoggingInput>,
    pub tracing_config: Option<TracingInput>,
    pub layers: Option<Vec<String>>,
    pub revision_id: Option<String>,
    /// Everything else, stored and echoed back.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateFunctionInput {
    pub function_name: String,
    pub code: CodeInput,
    pub package_type: Option<String>,
    pub architectures: Option<Vec<String>>,
    pub tags: Option<BTreeMap<String, String>>,
    pub publish: Option<bool>,
    #[serde(flatten)]
    pub config: ConfigInput,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateCodeInput {
    pub zip_file: Option<String>,
    #[serde(rename = "S3Bucket")]
    pub s3_bucket: Option<String>,
    #[serde(rename = "S3Key")]
    pub s3_key: Option<String>,
    pub image_uri: Option<String>,
    pub architectures: Option<Vec<String>>,
    pub revision_id: Option<String>,
    pub dry_run: Option<bool>,
    pub publish: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagsInput {
    pub tags: BTreeMap<String, String>,
}

/// Members we accept and echo but do not act on.
pub const PASSTHROUGH_MEMBERS: &[&str] = &[
    "VpcConfig",
    "DeadLetterConfig",
    "KMSKeyArn",
    "FileSystemConfigs",
    "ImageConfig",
    "SnapStart",
    "CodeSigningConfigArn",
];

/// `FunctionConfiguration` as Lambda returns it.
pub fn function_configuration(f: &FunctionRecord, id: &Identity) -> Value {
    let c = &f.config;
    let arn = if f.version == "$LATEST" {
        id.function_arn(&f.name)
    } else {
        id.qualified_arn(&f.name, &f.version)
    };
    let mut v = json!({
        "FunctionName": f.name,
        "FunctionArn": arn,
        "Runtime": c.runtime,
        "Role": c.role,
        "Handler": c.handler,
        "CodeSize": f.code.size,
        "Description": c.description,
        "Timeout": c.timeout_s,
        "MemorySize": c.memory_mb,
        "LastModified": f.last_modified,
        "CodeSha256": code_sha256_b64(&f.code.sha256_hex),
        "Version": f.version,
        "TracingConfig": { "Mode": c.tracing_mode },
        "RevisionId": f.revision_id,
        "State": "Active",
        "LastUpdateStatus": "Successful",
        "PackageType": "Zip",
        "Architectures": c.architectures,
        "EphemeralStorage": { "Size": c.ephemeral_mb },
        "SnapStart": { "ApplyOn": "None", "OptimizationStatus": "Off" },
        "RuntimeVersionConfig": {
            "RuntimeVersionArn": format!("arn:aws:lambda:{}::runtime:{}", id.region, runtime_version_id(&c.runtime)),
        },
        "LoggingConfig": logging(c),
    });
    let o = v.as_object_mut().expect("object literal");
    if !c.environment.is_empty() {
        o.insert("Environment".into(), json!({ "Variables": c.environment }));
    }
    if !f.attached_layers.is_empty() {
        let layers: Vec<Value> = f
            .attached_layers
            .iter()
            .map(|l| json!({ "Arn": l.arn, "CodeSize": l.code.size }))
            .collect();
        o.insert("Layers".into(), layers.into());
    }
    for (k, val) in &c.passthrough {
        o.insert(k.clone(), val.clone());
    }
    v
}

/// Levels only with JSON logs, where Lambda reports `INFO` for those never set.
fn logging(c: &nimbus_model::FunctionConfig) -> Value {
    let l = &c.logging;
    let mut v = json!({ "LogFormat": l.log_format, "LogGroup": l.log_group });
    if let (Some(app), Some(system)) = (l.application_level(), l.system_level()) {
        v["ApplicationLogLevel"] = app.into();
        v["SystemLogLevel"] = system.into();
    }
    v
}

fn runtime_version_id(runtime: &str) -> String {
    use std::fmt::Write;
    // A stable 64-hex id per runtime, shaped like Lambda's.
    let mut out = String::new();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for i in 0..4u8 {
        for b in runtime.bytes().chain([i]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        let _ = write!(out, "{h:016x}");
    }
    out
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PublishVersionInput {
    pub code_sha256: Option<String>,
    pub description: Option<String>,
    pub revision_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RoutingInput {
    pub additional_version_weights: Option<BTreeMap<String, f64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AliasInput {
    pub name: Option<String>,
    pub function_version: Option<String>,
    pub description: Option<String>,
    pub routing_config: Option<RoutingInput>,
    pub revision_id: Option<String>,
}

/// `AliasConfiguration` as Lambda returns it.
pub fn alias_configuration(a: &nimbus_model::AliasRecord, id: &Identity) -> Value {
    let mut v = json!({
        "AliasArn": id.qualified_arn(&a.function, &a.name),
        "Name": a.name,
        "FunctionVersion": a.function_version,
        "Description": a.description,
        "RevisionId": a.revision_id,
    });
    if let Some((version, weight)) = &a.additional_version {
        v["RoutingConfig"] = json!({ "AdditionalVersionWeights": { version.as_str(): weight } });
    }
    v
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PublishLayerInput {
    pub content: Option<CodeInput>,
    pub description: Option<String>,
    pub compatible_runtimes: Option<Vec<String>>,
    pub compatible_architectures: Option<Vec<String>>,
    pub license_info: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LayerPermissionInput {
    pub statement_id: Option<String>,
    pub action: Option<String>,
    pub principal: Option<String>,
    pub organization_id: Option<String>,
    pub revision_id: Option<String>,
}

/// The members shared by a layer version and ListLayers' `LatestMatchingVersion`.
fn layer_common(l: &nimbus_model::LayerVersionRecord, layer_arn: &str) -> Value {
    let mut v = json!({
        "LayerVersionArn": format!("{layer_arn}:{}", l.version),
        "Version": l.version,
        "Description": l.description,
        "CreatedDate": l.created_date,
    });
    if !l.compatible_runtimes.is_empty() {
        v["CompatibleRuntimes"] = json!(l.compatible_runtimes);
    }
    if !l.compatible_architectures.is_empty() {
        v["CompatibleArchitectures"] = json!(l.compatible_architectures);
    }
    if let Some(li) = &l.license_info {
        v["LicenseInfo"] = li.clone().into();
    }
    v
}

/// PublishLayerVersion / GetLayerVersion output.
pub fn layer_version(
    l: &nimbus_model::LayerVersionRecord,
    layer_arn: &str,
    location: String,
) -> Value {
    let mut v = layer_common(l, layer_arn);
    v["LayerArn"] = layer_arn.into();
    v["Content"] = json!({
        "Location": location,
        "CodeSha256": code_sha256_b64(&l.code.sha256_hex),
        "CodeSize": l.code.size,
    });
    v
}

/// A ListLayerVersions item / ListLayers' `LatestMatchingVersion`.
pub fn layer_version_item(l: &nimbus_model::LayerVersionRecord, layer_arn: &str) -> Value {
    layer_common(l, layer_arn)
}

/// One statement of a layer policy, as AWS renders it.
pub fn layer_statement(s: &nimbus_model::PolicyStatement, resource: &str) -> Value {
    let principal = if s.principal == "*" {
        json!("*")
    } else {
        json!({ "AWS": if s.principal.len() == 12 { format!("arn:aws:iam::{}:root", s.principal) } else { s.principal.clone() } })
    };
    let mut v = json!({
        "Sid": s.sid,
        "Effect": "Allow",
        "Principal": principal,
        "Action": s.action,
        "Resource": resource,
    });
    if let Some(org) = &s.organization_id {
        v["Condition"] = json!({ "StringEquals": { "aws:PrincipalOrgID": org } });
    }
    v
}

/// A `Cors` block as Lambda (`AllowOrigins`) or API Gateway v2 (`allowOrigins`) spells it.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CorsInput {
    #[serde(alias = "allowCredentials")]
    pub allow_credentials: Option<bool>,
    #[serde(alias = "allowHeaders")]
    pub allow_headers: Option<Vec<String>>,
    #[serde(alias = "allowMethods")]
    pub allow_methods: Option<Vec<String>>,
    #[serde(alias = "allowOrigins")]
    pub allow_origins: Option<Vec<String>>,
    #[serde(alias = "exposeHeaders")]
    pub expose_headers: Option<Vec<String>>,
    #[serde(alias = "maxAge")]
    pub max_age: Option<i64>,
}

impl From<CorsInput> for nimbus_model::CorsConfig {
    fn from(c: CorsInput) -> Self {
        nimbus_model::CorsConfig {
            allow_credentials: c.allow_credentials,
            allow_headers: c.allow_headers,
            allow_methods: c.allow_methods,
            allow_origins: c.allow_origins,
            expose_headers: c.expose_headers,
            max_age: c.max_age,
        }
    }
}

/// Renders a CORS configuration, PascalCase for Lambda or camelCase for API Gateway v2.
pub fn cors_json(c: &nimbus_model::CorsConfig, camel_case: bool) -> Value {
    let key = |k: &str| {
        if camel_case {
            let mut s = k[..1].to_ascii_lowercase();
            s.push_str(&k[1..]);
            s
        } else {
            k.to_string()
        }
    };
    let mut v = Map::new();
    if let Some(x) = c.allow_credentials {
        v.insert(key("AllowCredentials"), x.into());
    }
    for (k, x) in [
        ("AllowHeaders", &c.allow_headers),
        ("AllowMethods", &c.allow_methods),
        ("AllowOrigins", &c.allow_origins),
        ("ExposeHeaders", &c.expose_headers),
    ] {
        if let Some(x) = x {
            v.insert(key(k), json!(x));
        }
    }
    if let Some(x) = c.max_age {
        v.insert(key("MaxAge"), x.into());
    }
    Value::Object(v)
}
