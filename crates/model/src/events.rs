//! Asynchronous-invocation settings and EventBridge rules as stored.

use serde::{Deserialize, Serialize};

/// `FunctionEventInvokeConfig` of one qualifier (the default: nothing set, Lambda's
/// defaults apply).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventInvokeConfig {
    pub maximum_retry_attempts: Option<u32>,
    pub maximum_event_age_s: Option<u32>,
    pub on_success: Option<String>,
    pub on_failure: Option<String>,
    /// Epoch milliseconds.
    pub last_modified_ms: i64,
}

impl EventInvokeConfig {
    /// Lambda's defaults: two retries and six hours.
    pub const DEFAULT_RETRIES: u32 = 2;
    pub const DEFAULT_MAX_AGE_S: u32 = 21_600;

    pub fn retries(&self) -> u32 {
        self.maximum_retry_attempts.unwrap_or(Self::DEFAULT_RETRIES)
    }

    pub fn max_age_s(&self) -> u32 {
        self.maximum_event_age_s.unwrap_or(Self::DEFAULT_MAX_AGE_S)
    }
}

/// An EventBridge rule with its targets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleRecord {
    pub bus: String,
    pub name: String,
    pub description: Option<String>,
    pub event_pattern: Option<String>,
    pub schedule_expression: Option<String>,
    /// `ENABLED` or `DISABLED`.
    pub state: String,
    pub role_arn: Option<String>,
    /// When the rule was created or its schedule last changed or enabled (ms); rates count
    /// from here.
    pub anchor_ms: i64,
    pub targets: Vec<TargetRecord>,
}

impl RuleRecord {
    pub fn enabled(&self) -> bool {
        self.state == "ENABLED"
    }

    /// The key a rule's schedule tick is stored under.
    pub fn key(&self) -> String {
        format!("{}/{}", self.bus, self.name)
    }
}

/// One target of a rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetRecord {
    pub id: String,
    pub arn: String,
    pub input: Option<String>,
    pub input_path: Option<String>,
    pub input_transformer: Option<InputTransformerRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputTransformerRecord {
    pub input_paths_map: std::collections::BTreeMap<String, String>,
    pub input_template: String,
}
