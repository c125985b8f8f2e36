//! Durable state. [`Store`] holds functions (one row per function version) and aliases; [`LogStore`]
//! holds function logs as CloudWatch-style groups, streams and events. The embedded backend
//! is [`SqliteStore`]: one SQLite database in WAL mode with versioned migrations.

mod queue;
mod sqlite;

pub use queue::{
    NewEvent, Queue, QueueDepth, QueuedEvent, RuleStore, Settlement, StoredMessage, Tick,
};

pub use sqlite::SqliteStore;

use nimbus_model::{AliasRecord, FunctionRecord, HttpApiRecord, LayerVersionRecord};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("corrupt record for {what}: {source}")]
    Corrupt {
        what: String,
        source: serde_json::Error,
    },
    #[error("{0}")]
    Unavailable(String),
    #[error("database schema version {found} is newer than this Nimbus understands ({supported})")]
    FutureSchema { found: i64, supported: i64 },
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Function definitions.
pub trait Store: Send + Sync + 'static {
    /// Every function version, for the in-memory catalog built at start.
    fn load_functions(&self) -> Result<Vec<FunctionRecord>>;
    /// Inserts or replaces one function version.
    fn put_function(&self, record: &FunctionRecord) -> Result<()>;
    /// Deletes a function with all its versions and aliases.
    fn delete_function(&self, name: &str) -> Result<()>;
    /// Deletes one published version.
    fn delete_version(&self, name: &str, version: &str) -> Result<()>;
    /// Every alias.
    fn load_aliases(&self) -> Result<Vec<AliasRecord>>;
    /// Inserts or replaces an alias.
    fn put_alias(&self, alias: &AliasRecord) -> Result<()>;
    fn delete_alias(&self, function: &str, name: &str) -> Result<()>;
}

/// API Gateway HTTP APIs, each stored whole (integrations, routes and stages included).
pub trait ApiStore: Send + Sync + 'static {
    fn load_apis(&self) -> Result<Vec<HttpApiRecord>>;
    /// Inserts or replaces an API.
    fn put_api(&self, api: &HttpApiRecord) -> Result<()>;
    fn delete_api(&self, api_id: &str) -> Result<()>;
}

/// What invocations used, summed per minute and function version (and the settings that
/// set its price): the raw material of the bill.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageRow {
    /// Minutes since the epoch.
    pub minute: i64,
    pub function: String,
    pub version: String,
    /// `x86_64` or `arm64`.
    pub architecture: String,
    pub memory_mb: i64,
    pub ephemeral_mb: i64,
    pub requests: i64,
    pub errors: i64,
    /// Billed duration (1 ms granularity), init included where it is billed.
    pub billed_ms: i64,
    /// Init duration of cold starts, rounded up to ms.
    pub init_ms: i64,
    /// Response bytes sent out of the environments.
    pub egress_bytes: i64,
}

/// Usage records for the bill.
pub trait UsageStore: Send + Sync + 'static {
    /// Adds the rows' counts to what is stored for the same keys.
    fn add_usage(&self, rows: &[UsageRow]) -> Result<()>;
    fn usage_since(&self, minute: i64) -> Result<Vec<UsageRow>>;
}

/// What [`LayerStore::load_layers`] returns.
#[derive(Debug, Default)]
pub struct StoredLayers {
    /// `(layer name, highest version ever published)`.
    pub last_versions: Vec<(String, u64)>,
    pub versions: Vec<LayerVersionRecord>,
}

/// Layer versions. Numbers are never reused, so the highest ever published is kept per
/// layer even when its versions are deleted.
pub trait LayerStore: Send + Sync + 'static {
    /// Every layer's highest version ever, and every live layer version.
    fn load_layers(&self) -> Result<StoredLayers>;
    /// Inserts or replaces a layer version (and raises the layer's highest number).
    fn put_layer_version(&self, layer: &LayerVersionRecord) -> Result<()>;
    fn delete_layer_version(&self, name: &str, version: u64) -> Result<()>;
}

/// One log event as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEvent {
    pub group: String,
    pub stream: String,
    /// When it was produced, ms since the epoch.
    pub timestamp: i64,
    pub message: String,
}

/// A stored event with its id and ingestion time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLogEvent {
    pub id: i64,
    pub stream: String,
    pub timestamp: i64,
    pub ingestion_time: i64,
    pub message: String,
}

/// FilterLogEvents / GetLogEvents selection.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    pub group: String,
    pub streams: Vec<String>,
    pub stream_prefix: Option<String>,
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
    /// Events with an id strictly greater (or, when `backward`, smaller) than this.
    pub after_id: Option<i64>,
    pub backward: bool,
    /// Plain substrings that must all appear (a pre-filter; full patterns live above).
    pub contains: Vec<String>,
    pub limit: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogGroupInfo {
    pub name: String,
    pub created: i64,
    pub stored_bytes: i64,
    pub retention_days: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogStreamInfo {
    pub name: String,
    pub created: i64,
    pub first_event: Option<i64>,
    pub last_event: Option<i64>,
    pub last_ingestion: Option<i64>,
    pub stored_bytes: i64,
}

/// Function logs.
pub trait LogStore: Send + Sync + 'static {
    fn append_logs(&self, events: &[LogEvent]) -> Result<()>;
    fn query_logs(&self, query: &LogQuery) -> Result<Vec<StoredLogEvent>>;
    fn log_groups(&self, prefix: Option<&str>) -> Result<Vec<LogGroupInfo>>;
    fn log_streams(&self, group: &str, prefix: Option<&str>) -> Result<Vec<LogStreamInfo>>;
    /// Creates an empty group; false if it already existed.
    fn create_log_group(&self, name: &str) -> Result<bool>;
    /// Deletes a group and its events; false if it did not exist.
    fn delete_log_group(&self, name: &str) -> Result<bool>;
    /// Sets (`Some(days)`) or removes (`None`) a group's retention; false if the group does not
    /// exist. The caller validates `days` against CloudWatch's list.
    fn set_log_retention(&self, _group: &str, _days: Option<i64>) -> Result<bool> {
        Err(StoreError::Unavailable(
            "this log store does not support retention".into(),
        ))
    }
    /// Deletes the events of groups with a retention whose timestamp is older than it at
    /// `now_ms`, and the streams left with no events; returns how many events went. Deletes in
    /// short transactions, so log writes are not held up for long.
    fn enforce_retention(&self, _now_ms: i64) -> Result<u64> {
        Err(StoreError::Unavailable(
            "this log store does not support retention".into(),
        ))
    }
    /// While the stored log bytes (the sum of the messages, as `storedBytes` reports) exceed
    /// `max_bytes`, deletes the oldest events (in ingestion order, across groups); returns how
    /// many events went.
    fn enforce_size_cap(&self, _max_bytes: u64) -> Result<u64> {
        Err(StoreError::Unavailable(
            "this log store does not support a size cap".into(),
        ))
    }
}
