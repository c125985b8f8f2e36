//! What a function is: its configuration (as the user set it), its code, and the bookkeeping
//! Lambda reports about it. Stored as JSON by the store; converted to AWS wire shapes only by
//! the control plane.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::limits;

/// Advanced logging controls (`LoggingConfig`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggingConfig {
    /// `Text` or `JSON`.
    pub log_format: String,
    /// As set; see [`LoggingConfig::application_level`] for the one in effect.
    pub application_log_level: Option<String>,
    /// As set; see [`LoggingConfig::system_level`] for the one in effect.
    pub system_log_level: Option<String>,
    pub log_group: String,
}

/// `ApplicationLogLevel` values, most detailed first.
pub const APPLICATION_LOG_LEVELS: &[&str] = &["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];
/// `SystemLogLevel` values, most detailed first.
pub const SYSTEM_LOG_LEVELS: &[&str] = &["DEBUG", "INFO", "WARN"];

impl LoggingConfig {
    /// Whether logs are JSON (`LogFormat` `JSON`): application logs as JSON objects, platform
    /// events as Telemetry API records, both filtered by level.
    pub fn is_json(&self) -> bool {
        self.log_format == "JSON"
    }

    /// The `ApplicationLogLevel` in effect: none with Text logs, `INFO` unless set with JSON.
    pub fn application_level(&self) -> Option<&str> {
        self.is_json()
            .then(|| self.application_log_level.as_deref().unwrap_or("INFO"))
    }

    /// The `SystemLogLevel` in effect: none with Text logs, `INFO` unless set with JSON.
    pub fn system_level(&self) -> Option<&str> {
        self.is_json()
            .then(|| self.system_log_level.as_deref().unwrap_or("INFO"))
    }

    /// Applies the members of a request's `LoggingConfig` as Lambda does: those given replace
    /// the stored ones, switching to Text drops the levels, and a level given for Text logs is
    /// refused (levels apply to JSON logs only).
    pub fn apply(
        &mut self,
        log_format: Option<&str>,
        application_log_level: Option<&str>,
        system_log_level: Option<&str>,
        log_group: Option<&str>,
    ) -> Result<(), ConfigError> {
        if let Some(f) = log_format {
            self.log_format = f.to_string();
        }
        if let Some(g) = log_group {
            self.log_group = g.to_string();
        }
        if self.log_format == "Text" {
            if application_log_level.is_some() || system_log_level.is_some() {
                return Err(ConfigError::invalid(
                    "LogLevel is not supported when LogFormat is set to \"Text\". Remove LogLevel from your request or change the LogFormat to \"JSON\" and try again.".into(),
                ));
            }
            self.application_log_level = None;
            self.system_log_level = None;
        }
        if let Some(l) = application_log_level {
            self.application_log_level = Some(l.to_string());
        }
        if let Some(l) = system_log_level {
            self.system_log_level = Some(l.to_string());
        }
        Ok(())
    }

    /// The members' constraints (enums, the log group's pattern and length).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let enum_error = |value: &str, member: &str, allowed: &[&str]| {
            ConfigError::validation(format!(
                "1 validation error detected: Value '{value}' at 'loggingConfig.{member}' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
                allowed.join(", ")
            ))
        };
        if !matches!(self.log_format.as_str(), "Text" | "JSON") {
            return Err(enum_error(&self.log_format, "logFormat", &["JSON", "Text"]));
        }
        if let Some(l) = &self.application_log_level {
            if !APPLICATION_LOG_LEVELS.contains(&l.as_str()) {
                return Err(enum_error(l, "applicationLogLevel", APPLICATION_LOG_LEVELS));
            }
        }
        if let Some(l) = &self.system_log_level {
            if !SYSTEM_LOG_LEVELS.contains(&l.as_str()) {
                return Err(enum_error(l, "systemLogLevel", SYSTEM_LOG_LEVELS));
            }
        }
        let group = &self.log_group;
        let constraint = if group.is_empty() {
            "Member must have length greater than or equal to 1"
        } else if group.len() > 512 {
            "Member must have length less than or equal to 512"
        } else if !group
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_/#".contains(&b))
        {
            "Member must satisfy regular expression pattern: [\\.\\-_/#A-Za-z0-9]+"
        } else {
            return Ok(());
        };
        Err(ConfigError::validation(format!(
            "1 validation error detected: Value '{group}' at 'loggingConfig.logGroup' failed to satisfy constraint: {constraint}"
        )))
    }
}

/// The user-settable configuration of one function version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionConfig {
    pub runtime: String,
    pub handler: String,
    pub role: String,
    pub description: String,
    pub timeout_s: u32,
    pub memory_mb: u32,
    pub ephemeral_mb: u32,
    pub environment: BTreeMap<String, String>,
    pub architectures: Vec<String>,
    pub logging: LoggingConfig,
    pub layers: Vec<String>,
    pub tracing_mode: String,
    /// Settings Nimbus stores and returns but does not act on (VpcConfig, DeadLetterConfig,
    /// KMSKeyArn, FileSystemConfigs, SnapStart, …), keyed by their AWS member name.
    #[serde(default)]
    pub passthrough: BTreeMap<String, serde_json::Value>,
}

/// The deployment package of a function, as stored in the content-addressed blob store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeInfo {
    /// Lowercase hex SHA-256 of the zip: the blob's address.
    pub sha256_hex: String,
    /// Size of the zip in bytes (`CodeSize`).
    pub size: u64,
    /// Bytes once unzipped (counts against the 250 MB limit).
    pub unzipped_size: u64,
}

/// One function version with everything Lambda reports about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionRecord {
    pub name: String,
    /// `$LATEST` or a published version number.
    pub version: String,
    pub config: FunctionConfig,
    pub code: CodeInfo,
    pub revision_id: String,
    /// Lambda-formatted `LastModified`.
    pub last_modified: String,
    pub tags: BTreeMap<String, String>,
    /// Bumped on every change of code or configuration; environments of an older
    /// generation are retired.
    pub generation: u64,
    /// On `$LATEST`: the highest version number ever published (numbers are never reused).
    #[serde(default)]
    pub last_published: u64,
    /// The layers of `config.layers`, in order, as they were when attached.
    #[serde(default)]
    pub attached_layers: Vec<AttachedLayer>,
    /// The merged layer tree (`/opt`) this version runs with, by its content key.
    #[serde(default)]
    pub opt_key: Option<String>,
    /// On `$LATEST`: the function's reserved concurrency (`PutFunctionConcurrency`).
    #[serde(default)]
    pub reserved_concurrency: Option<u32>,
    /// On `$LATEST`: provisioned concurrency per qualifier (version or alias).
    #[serde(default)]
    pub provisioned: BTreeMap<String, ProvisionedConfig>,
    /// On `$LATEST`: asynchronous-invocation settings per qualifier (version or alias).
    #[serde(default)]
    pub event_invoke: BTreeMap<String, crate::EventInvokeConfig>,
    /// On `$LATEST`: Function URLs per qualifier (`$LATEST` or an alias).
    #[serde(default)]
    pub urls: BTreeMap<String, crate::FunctionUrlConfig>,
    /// On a published version: the `$LATEST` RevisionId it was published from.
    #[serde(default)]
    pub published_from: Option<String>,
}

/// A provisioned concurrency configuration as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvisionedConfig {
    pub requested: u32,
    /// Lambda-formatted `LastModified`.
    pub last_modified: String,
}

impl FunctionRecord {
    /// A new function's `$LATEST`, generation 1, nothing published or attached yet.
    pub fn new_latest(
        name: &str,
        config: FunctionConfig,
        code: CodeInfo,
        revision_id: String,
        last_modified: String,
    ) -> Self {
        FunctionRecord {
            name: name.into(),
            version: "$LATEST".into(),
            config,
            code,
            revision_id,
            last_modified,
            tags: BTreeMap::new(),
            generation: 1,
            last_published: 0,
            attached_layers: vec![],
            opt_key: None,
            reserved_concurrency: None,
            provisioned: BTreeMap::new(),
            event_invoke: BTreeMap::new(),
            urls: BTreeMap::new(),
            published_from: None,
        }
    }
}

/// An alias: a movable name for a version, optionally splitting traffic with a second one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AliasRecord {
    pub function: String,
    pub name: String,
    pub function_version: String,
    pub description: String,
    /// `AdditionalVersionWeights`: at most one version and its share (0.0–1.0).
    pub additional_version: Option<(String, f64)>,
    pub revision_id: String,
}

/// Alias names: 1–128 of `[a-zA-Z0-9-_]`, not purely numeric (that would be a version).
pub fn is_valid_alias_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !name.bytes().all(|b| b.is_ascii_digit())
}

/// Keys customers may not set (lambda-interfaces.md §4.1).
pub const RESERVED_ENV_KEYS: &[&str] = &[
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
];

/// A configuration problem, phrased as Lambda phrases it. `validation` tells whether AWS
/// reports it as a framework `ValidationException` (pattern/range) rather than a business
/// `InvalidParameterValueException`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub validation: bool,
    pub message: String,
}

impl ConfigError {
    fn validation(message: String) -> Self {
        ConfigError {
            validation: true,
            message,
        }
    }
    fn invalid(message: String) -> Self {
        ConfigError {
            validation: false,
            message,
        }
    }
}

impl FunctionConfig {
    /// A configuration with Lambda's defaults (3 s, 128 MB, 512 MB of /tmp, x86_64, Text
    /// logs to `/aws/lambda/<function>`).
    pub fn new(function: &str, runtime: &str, handler: &str, role: &str) -> Self {
        FunctionConfig {
            runtime: runtime.into(),
            handler: handler.into(),
            role: role.into(),
            description: String::new(),
            timeout_s: limits::TIMEOUT_DEFAULT_S,
            memory_mb: limits::MEMORY_DEFAULT_MB,
            ephemeral_mb: limits::EPHEMERAL_MIN_MB,
            environment: BTreeMap::new(),
            architectures: vec!["x86_64".into()],
            logging: LoggingConfig {
                log_format: "Text".into(),
                application_log_level: None,
                system_log_level: None,
                log_group: format!("/aws/lambda/{function}"),
            },
            layers: vec![],
            tracing_mode: "PassThrough".into(),
            passthrough: BTreeMap::new(),
        }
    }

    /// Checks every limit that does not depend on the host.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.memory_mb < limits::MEMORY_MIN_MB {
            return Err(ConfigError::validation(format!(
                "1 validation error detected: Value '{}' at 'memorySize' failed to satisfy constraint: Member must have value greater than or equal to {}",
                self.memory_mb,
                limits::MEMORY_MIN_MB
            )));
        }
        if self.memory_mb > limits::MEMORY_MAX_MB {
            return Err(ConfigError::invalid(format!(
                "'MemorySize' value failed to satisfy constraint: Member must have value less than or equal to {}",
                limits::MEMORY_MAX_MB
            )));
        }
        if self.timeout_s < limits::TIMEOUT_MIN_S {
            return Err(ConfigError::validation(format!(
                "1 validation error detected: Value '{}' at 'timeout' failed to satisfy constraint: Member must have value greater than or equal to {}",
                self.timeout_s,
                limits::TIMEOUT_MIN_S
            )));
        }
        if self.timeout_s > limits::TIMEOUT_MAX_S {
            return Err(ConfigError::invalid(format!(
                "'Timeout' value failed to satisfy constraint: Member must have value less than or equal to {}",
                limits::TIMEOUT_MAX_S
            )));
        }
        if !(limits::EPHEMERAL_MIN_MB..=limits::EPHEMERAL_MAX_MB).contains(&self.ephemeral_mb) {
            return Err(ConfigError::validation(format!(
                "1 validation error detected: Value '{}' at 'ephemeralStorage.size' failed to satisfy constraint: Member must have value between {} and {}",
                self.ephemeral_mb,
                limits::EPHEMERAL_MIN_MB,
                limits::EPHEMERAL_MAX_MB
            )));
        }
        if self.handler.is_empty()
            || self.handler.len() > 128
            || self.handler.chars().any(char::is_whitespace)
        {
            return Err(ConfigError::validation(format!(
                "1 validation error detected: Value '{}' at 'handler' failed to satisfy constraint: Member must satisfy regular expression pattern: [^\\s]+",
                self.handler
            )));
        }
        if self.description.chars().count() > limits::DESCRIPTION_MAX_CHARS {
            return Err(ConfigError::validation(
                "1 validation error detected: Value at 'description' failed to satisfy constraint: Member must have length less than or equal to 256".into(),
            ));
        }
        if !is_valid_role(&self.role) {
            return Err(ConfigError::validation(format!(
                "1 validation error detected: Value '{}' at 'role' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:(aws[a-zA-Z-]*)?:iam::\\d{{12}}:role/?[a-zA-Z_0-9+=,.@\\-_/]+",
                self.role
            )));
        }
        if self.architectures.len() != 1
            || !matches!(self.architectures[0].as_str(), "x86_64" | "arm64")
        {
            return Err(ConfigError::validation(
                "1 validation error detected: Value at 'architectures' failed to satisfy constraint: Member must have length less than or equal to 1, Member must satisfy enum value set: [x86_64, arm64]".into(),
            ));
        }
        self.logging.validate()?;
        self.validate_environment()
    }

    fn validate_environment(&self) -> Result<(), ConfigError> {
        let mut total = 0usize;
        let mut reserved = Vec::new();
        for (k, v) in &self.environment {
            total += k.len() + v.len();
            // The model's pattern, `[a-zA-Z]([a-zA-Z0-9_])+`: two characters at least.
            let valid_key = k.len() >= 2
                && k.as_bytes()[0].is_ascii_alphabetic()
                && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !valid_key {
                return Err(ConfigError::validation(format!(
                    "1 validation error detected: Value at 'environment.variables' failed to satisfy constraint: Map keys must satisfy constraint: [Member must satisfy regular expression pattern: [a-zA-Z]([a-zA-Z0-9_])+] (key '{k}')"
                )));
            }
            if RESERVED_ENV_KEYS.contains(&k.as_str()) {
                reserved.push(k.as_str());
            }
        }
        if !reserved.is_empty() {
            return Err(ConfigError::invalid(format!(
                "Lambda was unable to configure your environment variables because the environment variables you have provided contains reserved keys that are currently not supported for modification. Reserved keys used in this request: {}",
                reserved.join(", ")
            )));
        }
        if total > limits::ENV_VARS_MAX_BYTES {
            return Err(ConfigError::invalid(format!(
                "Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit. String measured: {total} bytes"
            )));
        }
        Ok(())
    }
}

/// `arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+`
pub fn is_valid_role(role: &str) -> bool {
    let Some(rest) = role.strip_prefix("arn:") else {
        return false;
    };
    let Some((partition, rest)) = rest.split_once(':') else {
        return false;
    };
    if !(partition.is_empty() || partition.starts_with("aws")) {
        return false;
    }
    let Some(rest) = rest.strip_prefix("iam::") else {
        return false;
    };
    let Some((account, rest)) = rest.split_once(':') else {
        return false;
    };
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let Some(path) = rest.strip_prefix("role") else {
        return false;
    };
    let path = path.strip_prefix('/').unwrap_or(path);
    !path.is_empty()
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@-_/".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> FunctionConfig {
        FunctionConfig::new(
            "f",
            "python3.12",
            "app.handler",
            "arn:aws:iam::000000000000:role/lambda-role",
        )
    }

    #[test]
    fn limits_are_enforced() {
        assert!(config().validate().is_ok());
        let mut c = config();
        c.memory_mb = 127;
        assert!(c.validate().unwrap_err().validation);
        c.memory_mb = 10_241;
        assert!(!c.validate().unwrap_err().validation);
        let mut c = config();
        c.timeout_s = 0;
        assert!(c.validate().is_err());
        c.timeout_s = 901;
        assert!(c.validate().is_err());
        let mut c = config();
        c.role = "not-a-role".into();
        assert!(c.validate().is_err());
    }

    #[test]
    fn environment_rules() {
        let mut c = config();
        c.environment.insert("AWS_REGION".into(), "x".into());
        let e = c.validate().unwrap_err();
        assert!(!e.validation && e.message.contains("AWS_REGION"));
        let mut c = config();
        c.environment.insert("BIG".into(), "x".repeat(4 * 1024));
        assert!(c.validate().unwrap_err().message.contains("4KB"));
        let mut c = config();
        c.environment.insert("1BAD".into(), "x".into());
        assert!(c.validate().unwrap_err().validation);
    }

    #[test]
    fn logging_config_rules() {
        let mut c = config();
        assert_eq!(c.logging.application_level(), None, "no levels with Text");
        assert_eq!(c.logging.system_level(), None);
        c.logging.log_format = "JSON".into();
        assert_eq!(c.logging.application_level(), Some("INFO"), "JSON defaults");
        assert_eq!(c.logging.system_level(), Some("INFO"));
        assert!(c.validate().is_ok());

        for (app, sys, bad) in [
            (Some("warn"), None, "applicationLogLevel"),
            (Some("VERBOSE"), None, "applicationLogLevel"),
            (None, Some("ERROR"), "systemLogLevel"),
        ] {
            let mut c = c.clone();
            c.logging.application_log_level = app.map(Into::into);
            c.logging.system_log_level = sys.map(Into::into);
            let e = c.validate().unwrap_err();
            assert!(e.validation && e.message.contains(bad), "{e:?}");
        }
        let mut ok = c.clone();
        ok.logging.application_log_level = Some("FATAL".into());
        ok.logging.system_log_level = Some("DEBUG".into());
        assert!(ok.validate().is_ok());
        let mut bad = c.clone();
        bad.logging.log_format = "json".into();
        assert!(bad.validate().unwrap_err().message.contains("[JSON, Text]"));
        for group in ["", "has space", &"g".repeat(513)] {
            let mut bad = c.clone();
            bad.logging.log_group = group.into();
            let e = bad.validate().unwrap_err();
            assert!(
                e.validation && e.message.contains("loggingConfig.logGroup"),
                "{e:?}"
            );
        }
    }

    #[test]
    fn logging_config_updates_like_lambda() {
        let mut l = config().logging;
        // Levels need JSON logs, whether the format comes with them or is already stored.
        let e = l.apply(Some("Text"), Some("WARN"), None, None).unwrap_err();
        assert!(
            !e.validation
                && e.message
                    .starts_with("LogLevel is not supported when LogFormat is set to \"Text\"")
        );
        assert!(l.apply(None, None, Some("WARN"), None).is_err());
        l.apply(Some("JSON"), Some("WARN"), None, Some("/custom/group"))
            .unwrap();
        assert_eq!(l.application_level(), Some("WARN"));
        assert_eq!(l.system_level(), Some("INFO"));
        assert_eq!(l.log_group, "/custom/group");
        l.apply(None, None, Some("DEBUG"), None).unwrap();
        assert_eq!(
            (l.application_level(), l.system_level()),
            (Some("WARN"), Some("DEBUG"))
        );
        // Back to Text: the levels go (and do not come back with JSON).
        l.apply(Some("Text"), None, None, None).unwrap();
        assert_eq!(
            (&l.application_log_level, &l.system_log_level),
            (&None, &None)
        );
        l.apply(Some("JSON"), None, None, None).unwrap();
        assert_eq!(l.application_level(), Some("INFO"));
    }

    #[test]
    fn roles() {
        assert!(is_valid_role(
            "arn:aws:iam::123456789012:role/service-role/x"
        ));
        assert!(!is_valid_role("arn:aws:iam::1234:role/x"));
        assert!(!is_valid_role("arn:aws:iam::123456789012:user/x"));
    }
}

/// One statement of a layer version's resource policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyStatement {
    pub sid: String,
    pub action: String,
    pub principal: String,
    pub organization_id: Option<String>,
}

/// A published layer version: content-addressed code plus its metadata and policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerVersionRecord {
    pub name: String,
    pub version: u64,
    pub description: String,
    /// Lambda-formatted `CreatedDate`.
    pub created_date: String,
    pub compatible_runtimes: Vec<String>,
    pub compatible_architectures: Vec<String>,
    pub license_info: Option<String>,
    pub code: CodeInfo,
    pub policy: Vec<PolicyStatement>,
    pub policy_revision: String,
}

/// A layer version as a function holds it: enough to keep running on its content even
/// after the layer version is deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachedLayer {
    pub arn: String,
    pub code: CodeInfo,
}
