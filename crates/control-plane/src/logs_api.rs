//! The CloudWatch Logs API subset (JSON 1.1, `X-Amz-Target: Logs_20140328.*`) over the
//! function logs Nimbus stores, enough for `aws logs filter-log-events|tail` and
//! `nimbus logs`: log groups and streams, GetLogEvents, FilterLogEvents with CloudWatch's
//! filter pattern language (`nimbus-log-filter`), and retention policies (enforced by the
//! store's periodic sweep, `LogStore::enforce_retention`).

use axum::http::StatusCode;
use nimbus_log_filter::FilterPattern;
use nimbus_store::{LogQuery, LogStore, StoredLogEvent};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::ApiError;

fn parse<T: for<'de> Deserialize<'de>>(v: Value) -> Result<T, ApiError> {
    crate::json11::parse(v, "InvalidParameterException")
}

fn group_missing() -> ApiError {
    ApiError::not_found("The specified log group does not exist.")
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Filter {
    log_group_name: Option<String>,
    log_group_identifier: Option<String>,
    log_stream_names: Vec<String>,
    log_stream_name_prefix: Option<String>,
    start_time: Option<i64>,
    end_time: Option<i64>,
    filter_pattern: Option<String>,
    next_token: Option<String>,
    limit: Option<usize>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct GetEvents {
    log_group_name: Option<String>,
    log_group_identifier: Option<String>,
    log_stream_name: String,
    start_time: Option<i64>,
    end_time: Option<i64>,
    next_token: Option<String>,
    limit: Option<usize>,
    start_from_head: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct DescribeGroups {
    log_group_name_prefix: Option<String>,
    limit: Option<usize>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct DescribeStreams {
    log_group_name: Option<String>,
    log_group_identifier: Option<String>,
    log_stream_name_prefix: Option<String>,
    order_by: Option<String>,
    descending: Option<bool>,
    limit: Option<usize>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct GroupName {
    log_group_name: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Retention {
    log_group_name: Option<String>,
    retention_in_days: Option<i64>,
}

/// The values `PutRetentionPolicy` accepts for `retentionInDays`, as AWS lists them.
const RETENTION_DAYS: [i64; 22] = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

fn invalid_parameter(message: impl Into<String>) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "InvalidParameterException",
        message,
    )
}

/// Checks `retentionInDays` with AWS' message for a value outside its list.
fn retention_days(days: Option<i64>) -> Result<i64, ApiError> {
    let days = days.ok_or_else(|| {
        invalid_parameter(
            "1 validation error detected: Value null at 'retentionInDays' failed to satisfy constraint: Member must not be null",
        )
    })?;
    if RETENTION_DAYS.contains(&days) {
        Ok(days)
    } else {
        let list = RETENTION_DAYS.map(|d| d.to_string()).join(", ");
        Err(invalid_parameter(format!(
            "Invalid retention value. Valid values are: [{list}]"
        )))
    }
}

fn filter_pattern(pattern: Option<&str>) -> Result<FilterPattern, ApiError> {
    let Some(pattern) = pattern else {
        return Ok(FilterPattern::all());
    };
    FilterPattern::parse(pattern).map_err(|e| {
        tracing::debug!(pattern, detail = %e.detail(), "invalid filter pattern");
        invalid_parameter(e.to_string())
    })
}

/// How much one FilterLogEvents call does before it answers with what it has and a
/// `nextToken` (AWS, too, may return fewer events than the limit, or none, with a token).
#[derive(Debug, Clone, Copy)]
struct ScanBudget {
    /// Events tested against the pattern (after the store's substring pre-filter).
    events: usize,
    /// Message bytes tested.
    bytes: usize,
    /// Message bytes returned: AWS returns "as many log events as can fit in 1 MB".
    response_bytes: usize,
}

const SCAN_BUDGET: ScanBudget = ScanBudget {
    events: 100_000,
    bytes: 64 << 20,
    response_bytes: 1 << 20,
};

/// Events read from the store per round while post-filtering (doubling from the page size).
const MAX_SCAN_BATCH: usize = 2_000;

/// One FilterLogEvents page: up to `q.limit` events after `q.after_id` that match `pattern`,
/// and the token to continue from (the id of the last event examined), `None` when the
/// selection is exhausted. The store pre-filters with the pattern's required substrings.
fn filter_page(
    store: &dyn LogStore,
    mut q: LogQuery,
    pattern: &FilterPattern,
    budget: ScanBudget,
) -> Result<(Vec<StoredLogEvent>, Option<i64>), ApiError> {
    let limit = q.limit.max(1);
    q.contains = pattern.required_substrings();
    let mut out: Vec<StoredLogEvent> = Vec::new();
    let (mut scanned, mut scanned_bytes, mut out_bytes) = (0usize, 0usize, 0usize);
    let mut batch = if pattern.matches_everything() {
        limit
    } else {
        limit.clamp(32, MAX_SCAN_BATCH)
    };
    loop {
        q.limit = batch;
        let events = store.query_logs(&q)?;
        let exhausted = events.len() < batch;
        for e in events {
            scanned += 1;
            scanned_bytes += e.message.len();
            let hit = pattern.matches(&e.message);
            if hit && !out.is_empty() && out_bytes + e.message.len() > budget.response_bytes {
                // The response is full: continue after the last event returned.
                let token = out.last().map(|l| l.id);
                return Ok((out, token));
            }
            q.after_id = Some(e.id);
            if hit {
                out_bytes += e.message.len();
                out.push(e);
                if out.len() == limit {
                    return Ok((out, q.after_id));
                }
            }
        }
        if exhausted {
            return Ok((out, None));
        }
        if scanned >= budget.events || scanned_bytes >= budget.bytes {
            return Ok((out, q.after_id));
        }
        batch = (batch * 2).min(MAX_SCAN_BATCH).max(batch);
    }
}

fn group_of(name: Option<String>, identifier: Option<String>) -> Result<String, ApiError> {
    name.or(identifier.map(|i| {
        // An ARN identifier: arn:aws:logs:region:acct:log-group:NAME[:*]
        match i.split_once(":log-group:") {
            Some((_, rest)) => rest.trim_end_matches(":*").to_string(),
            None => i,
        }
    }))
    .filter(|g| !g.is_empty())
    .ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidParameterException",
            "logGroupName is required",
        )
    })
}

fn group_exists(store: &dyn LogStore, group: &str) -> Result<(), ApiError> {
    if store
        .log_groups(Some(group))?
        .iter()
        .any(|g| g.name == group)
    {
        Ok(())
    } else {
        Err(group_missing())
    }
}

pub(crate) fn handle(store: &dyn LogStore, op: &str, input: Value) -> Result<Value, ApiError> {
    match op {
        "FilterLogEvents" => {
            let f: Filter = parse(input)?;
            let group = group_of(f.log_group_name, f.log_group_identifier)?;
            let pattern = filter_pattern(f.filter_pattern.as_deref())?;
            group_exists(store, &group)?;
            let limit = f.limit.unwrap_or(10_000).clamp(1, 10_000);
            let q = LogQuery {
                group,
                streams: f.log_stream_names,
                stream_prefix: f.log_stream_name_prefix,
                start_time: f.start_time,
                end_time: f.end_time,
                after_id: f.next_token.as_deref().and_then(|t| t.parse().ok()),
                backward: false,
                contains: Vec::new(),
                limit,
            };
            let (events, next) = filter_page(store, q, &pattern, SCAN_BUDGET)?;
            let mut out = json!({
                "events": events.iter().map(|e| json!({
                    "logStreamName": e.stream,
                    "timestamp": e.timestamp,
                    "message": e.message,
                    "ingestionTime": e.ingestion_time,
                    "eventId": format!("{:056}", e.id),
                })).collect::<Vec<_>>(),
                "searchedLogStreams": [],
            });
            if let Some(next) = next {
                out["nextToken"] = next.to_string().into();
            }
            Ok(out)
        }
        "GetLogEvents" => {
            let g: GetEvents = parse(input)?;
            let group = group_of(g.log_group_name, g.log_group_identifier)?;
            group_exists(store, &group)?;
            if !store
                .log_streams(&group, Some(&g.log_stream_name))?
                .iter()
                .any(|s| s.name == g.log_stream_name)
            {
                return Err(ApiError::not_found(
                    "The specified log stream does not exist.",
                ));
            }
            let limit = g.limit.unwrap_or(10_000).clamp(1, 10_000);
            let (after_id, backward) = match g.next_token.as_deref() {
                Some(t) if t.starts_with("f/") => (t[2..].parse().ok(), false),
                Some(t) if t.starts_with("b/") => (t[2..].parse().ok(), true),
                _ => (None, !g.start_from_head.unwrap_or(false)),
            };
            let events = store.query_logs(&LogQuery {
                group,
                streams: vec![g.log_stream_name],
                start_time: g.start_time,
                end_time: g.end_time,
                after_id,
                backward,
                limit,
                ..Default::default()
            })?;
            let first = events.first().map(|e| e.id).or(after_id).unwrap_or(0);
            let last = events.last().map(|e| e.id).or(after_id).unwrap_or(0);
            Ok(json!({
                "events": events.iter().map(|e| json!({
                    "timestamp": e.timestamp, "message": e.message, "ingestionTime": e.ingestion_time,
                })).collect::<Vec<_>>(),
                "nextForwardToken": format!("f/{last}"),
                "nextBackwardToken": format!("b/{first}"),
            }))
        }
        "DescribeLogGroups" => {
            let d: DescribeGroups = parse(input)?;
            let groups = store.log_groups(d.log_group_name_prefix.as_deref())?;
            let limit = d.limit.unwrap_or(50).clamp(1, 50);
            Ok(json!({
                "logGroups": groups.iter().take(limit).map(|g| {
                    let mut v = json!({
                        "logGroupName": g.name,
                        "creationTime": g.created,
                        "metricFilterCount": 0,
                        "arn": format!("arn:aws:logs:us-east-1:000000000000:log-group:{}:*", g.name),
                        "logGroupArn": format!("arn:aws:logs:us-east-1:000000000000:log-group:{}", g.name),
                        "storedBytes": g.stored_bytes,
                        "logGroupClass": "STANDARD",
                    });
                    if let Some(r) = g.retention_days {
                        v["retentionInDays"] = r.into();
                    }
                    v
                }).collect::<Vec<_>>(),
            }))
        }
        "DescribeLogStreams" => {
            let d: DescribeStreams = parse(input)?;
            let group = group_of(d.log_group_name, d.log_group_identifier)?;
            group_exists(store, &group)?;
            let mut streams = store.log_streams(&group, d.log_stream_name_prefix.as_deref())?;
            if d.order_by.as_deref() == Some("LastEventTime") {
                streams.sort_by_key(|s| s.last_event.unwrap_or(0));
            }
            if d.descending.unwrap_or(false) {
                streams.reverse();
            }
            let limit = d.limit.unwrap_or(50).clamp(1, 50);
            Ok(json!({
                "logStreams": streams.iter().take(limit).map(|s| json!({
                    "logStreamName": s.name,
                    "creationTime": s.created,
                    "firstEventTimestamp": s.first_event,
                    "lastEventTimestamp": s.last_event,
                    "lastIngestionTime": s.last_ingestion,
                    "arn": format!("arn:aws:logs:us-east-1:000000000000:log-group:{group}:log-stream:{}", s.name),
                    "storedBytes": s.stored_bytes,
                })).collect::<Vec<_>>(),
            }))
        }
        "CreateLogGroup" => {
            let g: GroupName = parse(input)?;
            if !store.create_log_group(&g.log_group_name)? {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "ResourceAlreadyExistsException",
                    "The specified log group already exists",
                ));
            }
            Ok(json!({}))
        }
        "DeleteLogGroup" => {
            let g: GroupName = parse(input)?;
            if !store.delete_log_group(&g.log_group_name)? {
                return Err(group_missing());
            }
            Ok(json!({}))
        }
        "PutRetentionPolicy" => {
            let r: Retention = parse(input)?;
            let group = group_of(r.log_group_name, None)?;
            let days = retention_days(r.retention_in_days)?;
            if !store.set_log_retention(&group, Some(days))? {
                return Err(group_missing());
            }
            Ok(json!({}))
        }
        "DeleteRetentionPolicy" => {
            let r: Retention = parse(input)?;
            let group = group_of(r.log_group_name, None)?;
            if !store.set_log_retention(&group, None)? {
                return Err(group_missing());
            }
            Ok(json!({}))
        }
        other => Err(crate::json11::unknown(&format!("Logs_20140328.{other}"))),
    }
}

#[cfg(test)]
mod tests;
