//! The CloudWatch Logs API subset (JSON 1.1, `X-Amz-Target: Logs_20140328.*`) over the
//! function logs Nimbus stores, enough for `aws logs filter-log-events|tail` and
//! `nimbus logs`.

use axum::http::StatusCode;
use nimbus_store::{LogQuery, LogStore};
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

/// Splits a filter pattern into terms that must all appear: bare words and "quoted
/// phrases". (The full pattern language arrives with the observability work.)
fn pattern_terms(p: &str) -> Vec<String> {
    let mut terms = Vec::new();
    let mut rest = p.trim();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('"') {
            let end = r.find('"').unwrap_or(r.len());
            terms.push(r[..end].to_string());
            rest = r.get(end + 1..).unwrap_or("").trim_start();
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            terms.push(rest[..end].to_string());
            rest = rest[end..].trim_start();
        }
    }
    terms.retain(|t| !t.is_empty());
    terms
}

pub(crate) fn handle(store: &dyn LogStore, op: &str, input: Value) -> Result<Value, ApiError> {
    match op {
        "FilterLogEvents" => {
            let f: Filter = parse(input)?;
            let group = group_of(f.log_group_name, f.log_group_identifier)?;
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
                contains: pattern_terms(f.filter_pattern.as_deref().unwrap_or("")),
                limit,
            };
            let events = store.query_logs(&q)?;
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
            if events.len() == limit {
                if let Some(last) = events.last() {
                    out["nextToken"] = last.id.to_string().into();
                }
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
        other => Err(crate::json11::unknown(&format!("Logs_20140328.{other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::pattern_terms;

    #[test]
    fn pattern_terms_split_words_and_phrases() {
        assert_eq!(
            pattern_terms(r#"ERROR "task timed out" x"#),
            vec!["ERROR", "task timed out", "x"]
        );
        assert!(pattern_terms("  ").is_empty());
    }
}
