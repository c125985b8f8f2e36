//! The EventBridge API (JSON 1.1, `X-Amz-Target: AWSEvents.*`): rules, targets, PutEvents
//! and TestEventPattern on the default bus.

use std::sync::Arc;

use axum::http::StatusCode;
use nimbus_model::time_fmt::now_millis;
use nimbus_model::{InputTransformerRecord, RuleRecord, TargetRecord};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{Bus, DEFAULT_BUS};
use crate::async_invoke::record::Destination;
use crate::{ApiError, AppState};

const MAX_TARGETS: usize = 5;
const PUT_EVENTS_MAX_BYTES: usize = 256 * 1024;

fn validation(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "ValidationException", message)
}

fn parse<T: for<'de> Deserialize<'de>>(v: Value) -> Result<T, ApiError> {
    crate::json11::parse(v, "ValidationException")
}

fn rule_missing(name: &str, bus: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "ResourceNotFoundException",
        format!("Rule {name} does not exist on EventBus {bus}."),
    )
}

/// The bus a request names (by name or ARN); only the default bus exists.
fn bus_name(bus: &Bus, given: Option<&str>) -> Result<String, ApiError> {
    let name = match given {
        None | Some("") => return Ok(DEFAULT_BUS.into()),
        Some(g) => g.rsplit_once(":event-bus/").map_or(g, |(_, n)| n),
    };
    if name == DEFAULT_BUS && given.is_none_or(|g| !g.starts_with("arn:") || g == bus.bus_arn(name))
    {
        Ok(name.into())
    } else {
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "ResourceNotFoundException",
            format!("Event bus {name} does not exist."),
        ))
    }
}

fn valid_name(name: &str, what: &str) -> Result<(), ApiError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if ok {
        Ok(())
    } else {
        Err(validation(format!(
            "1 validation error detected: Value '{name}' at '{what}' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\.\\-_A-Za-z0-9]+"
        )))
    }
}

fn describe(bus: &Bus, r: &RuleRecord) -> Value {
    let mut v = json!({
        "Name": r.name,
        "Arn": bus.rule_arn(&r.bus, &r.name),
        "State": r.state,
        "EventBusName": r.bus,
    });
    for (key, val) in [
        ("EventPattern", &r.event_pattern),
        ("ScheduleExpression", &r.schedule_expression),
        ("Description", &r.description),
        ("RoleArn", &r.role_arn),
    ] {
        if let Some(val) = val {
            v[key] = json!(val);
        }
    }
    v
}

fn target_json(t: &TargetRecord) -> Value {
    let mut v = json!({ "Id": t.id, "Arn": t.arn });
    if let Some(i) = &t.input {
        v["Input"] = json!(i);
    }
    if let Some(p) = &t.input_path {
        v["InputPath"] = json!(p);
    }
    if let Some(x) = &t.input_transformer {
        v["InputTransformer"] =
            json!({ "InputPathsMap": x.input_paths_map, "InputTemplate": x.input_template });
    }
    v
}

/// `NextToken` is the index of the next item.
fn page<T: Clone>(
    items: &[T],
    token: Option<&str>,
    limit: Option<usize>,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let start = match token {
        None => 0,
        Some(t) => t
            .parse::<usize>()
            .map_err(|_| validation("The NextToken provided is invalid."))?,
    };
    let limit = limit.unwrap_or(100).clamp(1, 100);
    let end = (start + limit).min(items.len());
    let next = (end < items.len()).then(|| end.to_string());
    Ok((items.get(start..end).unwrap_or_default().to_vec(), next))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutRule {
    name: String,
    schedule_expression: Option<String>,
    event_pattern: Option<String>,
    state: Option<String>,
    description: Option<String>,
    role_arn: Option<String>,
    event_bus_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RuleName {
    name: String,
    event_bus_name: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct ListRules {
    name_prefix: Option<String>,
    event_bus_name: Option<String>,
    next_token: Option<String>,
    limit: Option<usize>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TargetInput {
    id: String,
    arn: String,
    input: Option<String>,
    input_path: Option<String>,
    input_transformer: Option<TransformerInput>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TransformerInput {
    #[serde(default)]
    input_paths_map: std::collections::BTreeMap<String, String>,
    input_template: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutTargets {
    rule: String,
    event_bus_name: Option<String>,
    targets: Vec<TargetInput>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RemoveTargets {
    rule: String,
    event_bus_name: Option<String>,
    ids: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListTargets {
    rule: String,
    event_bus_name: Option<String>,
    next_token: Option<String>,
    limit: Option<usize>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ByTarget {
    target_arn: String,
    event_bus_name: Option<String>,
    next_token: Option<String>,
    limit: Option<usize>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutEvents {
    entries: Vec<EventEntry>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct EventEntry {
    source: Option<String>,
    detail_type: Option<String>,
    detail: Option<String>,
    resources: Vec<String>,
    /// Epoch seconds (the JSON 1.1 timestamp encoding).
    time: Option<f64>,
    event_bus_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TestPattern {
    event_pattern: String,
    event: String,
}

pub(crate) async fn handle(
    state: &Arc<AppState>,
    op: &str,
    input: Value,
) -> Result<Value, ApiError> {
    let bus = &state.bus;
    match op {
        "PutRule" => {
            let p: PutRule = parse(input)?;
            let bus_id = bus_name(bus, p.event_bus_name.as_deref())?;
            valid_name(&p.name, "name")?;
            if p.schedule_expression.is_none() && p.event_pattern.is_none() {
                return Err(validation(
                    "Parameter(s) EventPattern or ScheduleExpression must be specified.",
                ));
            }
            if let Some(e) = &p.event_pattern {
                nimbus_events::Pattern::parse(e).map_err(|e| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "InvalidEventPatternException",
                        e.to_string(),
                    )
                })?;
            }
            if let Some(s) = &p.schedule_expression {
                nimbus_events::Schedule::parse(s).map_err(|e| validation(e.to_string()))?;
            }
            let state_in = p.state.unwrap_or_else(|| "ENABLED".into());
            if !matches!(state_in.as_str(), "ENABLED" | "DISABLED") {
                return Err(validation(format!(
                    "1 validation error detected: Value '{state_in}' at 'state' failed to satisfy constraint: Member must satisfy enum value set: [ENABLED, DISABLED]"
                )));
            }
            let arn = bus.rule_arn(&bus_id, &p.name);
            bus.update(&bus_id, &p.name.clone(), |current| {
                let now = now_millis();
                let anchor = match current {
                    // A rate keeps counting from when it started unless the schedule changes or
                    // the rule is switched back on.
                    Some(c)
                        if c.schedule_expression == p.schedule_expression
                            && (c.enabled() || state_in != "ENABLED") =>
                    {
                        c.anchor_ms
                    }
                    _ => now,
                };
                let record = RuleRecord {
                    bus: bus_id.clone(),
                    name: p.name.clone(),
                    description: p.description.clone(),
                    event_pattern: p.event_pattern.clone(),
                    schedule_expression: p.schedule_expression.clone(),
                    state: state_in.clone(),
                    role_arn: p.role_arn.clone(),
                    anchor_ms: anchor,
                    targets: current.map(|c| c.targets.clone()).unwrap_or_default(),
                };
                Ok((Some(record), ()))
            })
            .await?;
            Ok(json!({ "RuleArn": arn }))
        }
        "DescribeRule" => {
            let p: RuleName = parse(input)?;
            let bus_id = bus_name(bus, p.event_bus_name.as_deref())?;
            let rule = bus
                .rule(&bus_id, &p.name)
                .ok_or_else(|| rule_missing(&p.name, &bus_id))?;
            let mut v = describe(bus, &rule.record);
            v["CreatedBy"] = json!(bus.identity().account_id);
            Ok(v)
        }
        "ListRules" => {
            let p: ListRules = parse(input)?;
            let bus_id = bus_name(bus, p.event_bus_name.as_deref())?;
            let rules: Vec<Value> = bus
                .rules()
                .iter()
                .map(|r| &r.record)
                .filter(|r| {
                    r.bus == bus_id
                        && p.name_prefix
                            .as_deref()
                            .is_none_or(|pre| r.name.starts_with(pre))
                })
                .map(|r| describe(bus, r))
                .collect();
            let (items, next) = page(&rules, p.next_token.as_deref(), p.limit)?;
            Ok(with_token(json!({ "Rules": items }), next))
        }
        "EnableRule" | "DisableRule" => {
            let p: RuleName = parse(input)?;
            let bus_id = bus_name(bus, p.event_bus_name.as_deref())?;
            let enable = op == "EnableRule";
            bus.update(&bus_id, &p.name, |current| {
                let mut r = current
                    .cloned()
                    .ok_or_else(|| rule_missing(&p.name, &bus_id))?;
                if enable && !r.enabled() {
                    r.anchor_ms = now_millis();
                }
                r.state = if enable { "ENABLED" } else { "DISABLED" }.into();
                Ok((Some(r), ()))
            })
            .await?;
            Ok(json!({}))
        }
        "DeleteRule" => {
            let p: RuleName = parse(input)?;
            let bus_id = bus_name(bus, p.event_bus_name.as_deref())?;
            bus.update(&bus_id, &p.name, |current| match current {
                Some(r) if !r.targets.is_empty() => {
                    Err(validation("Rule can't be deleted since it has targets."))
                }
                _ => Ok((None, ())),
            })
            .await?;
            Ok(json!({}))
        }
        "PutTargets" => {
            let p: PutTargets = parse(input)?;
            let bus_id = bus_name(bus, p.event_bus_name.as_deref())?;
            if p.targets.is_empty() || p.targets.len() > 10 {
                return Err(validation("1 validation error detected: Value at 'targets' failed to satisfy constraint: Member must have length between 1 and 10"));
            }
            let identity = bus.identity().clone();
            let failed = bus
                .update(&bus_id, &p.rule, |current| {
                    let mut r = current.cloned().ok_or_else(|| rule_missing(&p.rule, &bus_id))?;
                    let mut failed = Vec::new();
                    for t in p.targets {
                        valid_name(&t.id, "targets.id")?;
                        let inputs = [t.input.is_some(), t.input_path.is_some(), t.input_transformer.is_some()];
                        if inputs.iter().filter(|b| **b).count() > 1 {
                            return Err(validation("Only one of Input, InputPath, or InputTransformer must be provided."));
                        }
                        if let Some(i) = &t.input {
                            if serde_json::from_str::<Value>(i).is_err() {
                                return Err(validation(format!("Target {} has an invalid Input: it must be valid JSON text.", t.id)));
                            }
                        }
                        if let Some(path) = &t.input_path {
                            nimbus_events::select_path(&json!({}), path).map_err(|e| validation(e.to_string()))?;
                        }
                        if let Some(x) = &t.input_transformer {
                            nimbus_events::InputTransformer::new(x.input_paths_map.clone(), x.input_template.clone())
                                .map_err(|e| validation(e.to_string()))?;
                        }
                        if !matches!(Destination::parse(&t.arn, &identity), Ok(Destination::Function { .. })) {
                            failed.push(json!({
                                "TargetId": t.id,
                                "ErrorCode": "InvalidArgument",
                                "ErrorMessage": format!("Nimbus delivers rule targets to Lambda functions of this region and account only: {}", t.arn),
                            }));
                            continue;
                        }
                        let record = TargetRecord {
                            id: t.id.clone(),
                            arn: t.arn,
                            input: t.input,
                            input_path: t.input_path,
                            input_transformer: t.input_transformer.map(|x| InputTransformerRecord {
                                input_paths_map: x.input_paths_map,
                                input_template: x.input_template,
                            }),
                        };
                        match r.targets.iter_mut().find(|x| x.id == t.id) {
                            Some(existing) => *existing = record,
                            None => r.targets.push(record),
                        }
                    }
                    if r.targets.len() > MAX_TARGETS {
                        return Err(ApiError::new(
                            StatusCode::BAD_REQUEST,
                            "LimitExceededException",
                            format!("The requested resource exceeds the maximum number allowed: a rule has at most {MAX_TARGETS} targets."),
                        ));
                    }
                    Ok((Some(r), failed))
                })
                .await?;
            Ok(json!({ "FailedEntryCount": failed.len(), "FailedEntries": failed }))
        }
        "RemoveTargets" => {
            let p: RemoveTargets = parse(input)?;
            let bus_id = bus_name(bus, p.event_bus_name.as_deref())?;
            let failed = bus
                .update(&bus_id, &p.rule, |current| {
                    let mut r = current.cloned().ok_or_else(|| rule_missing(&p.rule, &bus_id))?;
                    let mut failed = Vec::new();
                    for id in &p.ids {
                        let before = r.targets.len();
                        r.targets.retain(|t| &t.id != id);
                        if r.targets.len() == before {
                            failed.push(json!({
                                "TargetId": id,
                                "ErrorCode": "ResourceNotFoundException",
                                "ErrorMessage": format!("Target {id} does not exist on rule {}.", p.rule),
                            }));
                        }
                    }
                    Ok((Some(r), failed))
                })
                .await?;
            Ok(json!({ "FailedEntryCount": failed.len(), "FailedEntries": failed }))
        }
        "ListTargetsByRule" => {
            let p: ListTargets = parse(input)?;
            let bus_id = bus_name(bus, p.event_bus_name.as_deref())?;
            let rule = bus
                .rule(&bus_id, &p.rule)
                .ok_or_else(|| rule_missing(&p.rule, &bus_id))?;
            let targets: Vec<Value> = rule.record.targets.iter().map(target_json).collect();
            let (items, next) = page(&targets, p.next_token.as_deref(), p.limit)?;
            Ok(with_token(json!({ "Targets": items }), next))
        }
        "ListRuleNamesByTarget" => {
            let p: ByTarget = parse(input)?;
            let bus_id = bus_name(bus, p.event_bus_name.as_deref())?;
            let names: Vec<String> = bus
                .rules()
                .iter()
                .map(|r| &r.record)
                .filter(|r| r.bus == bus_id && r.targets.iter().any(|t| t.arn == p.target_arn))
                .map(|r| r.name.clone())
                .collect();
            let (items, next) = page(&names, p.next_token.as_deref(), p.limit)?;
            Ok(with_token(json!({ "RuleNames": items }), next))
        }
        "PutEvents" => put_events(state, parse(input)?).await,
        "TestEventPattern" => {
            let p: TestPattern = parse(input)?;
            let pattern = nimbus_events::Pattern::parse(&p.event_pattern).map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "InvalidEventPatternException",
                    e.to_string(),
                )
            })?;
            let event: Value = serde_json::from_str(&p.event)
                .ok()
                .filter(|e: &Value| {
                    ["id", "account", "source", "time", "region", "detail-type"]
                        .iter()
                        .all(|k| e.get(k).is_some())
                })
                .ok_or_else(|| validation("Parameter Event is not valid."))?;
            Ok(json!({ "Result": pattern.matches(&event) }))
        }
        other => Err(crate::json11::unknown(&format!("AWSEvents.{other}"))),
    }
}

fn with_token(mut v: Value, next: Option<String>) -> Value {
    if let Some(n) = next {
        v["NextToken"] = json!(n);
    }
    v
}

/// PutEvents: every entry is checked on its own (failures are reported per entry); the
/// invocations of all matched targets are queued durably before the answer.
async fn put_events(state: &Arc<AppState>, p: PutEvents) -> Result<Value, ApiError> {
    if p.entries.is_empty() || p.entries.len() > 10 {
        return Err(validation("1 validation error detected: Value at 'entries' failed to satisfy constraint: Member must have length between 1 and 10"));
    }
    let size: usize = p
        .entries
        .iter()
        .map(|e| {
            e.source.as_deref().map_or(0, str::len)
                + e.detail_type.as_deref().map_or(0, str::len)
                + e.detail.as_deref().map_or(0, str::len)
                + e.resources.iter().map(String::len).sum::<usize>()
        })
        .sum();
    if size > PUT_EVENTS_MAX_BYTES {
        return Err(validation(
            "Total size of the entries in the request is over the limit.",
        ));
    }
    let bus = &state.bus;
    let mut results = Vec::new();
    let mut invocations = Vec::new();
    let mut failed = 0;
    for e in p.entries {
        let problem =
            |code: &str, message: &str| json!({ "ErrorCode": code, "ErrorMessage": message });
        let entry = (|| {
            let bus_id = bus_name(bus, e.event_bus_name.as_deref())
                .map_err(|err| problem("InvalidArgument", &err.message))?;
            let source = e.source.filter(|s| !s.is_empty()).ok_or_else(|| {
                problem(
                    "InvalidArgument",
                    "Parameter Source is not valid. Reason: Source is a required argument.",
                )
            })?;
            let detail_type = e.detail_type.filter(|s| !s.is_empty()).ok_or_else(|| {
                problem(
                    "InvalidArgument",
                    "Parameter DetailType is not valid. Reason: DetailType is a required argument.",
                )
            })?;
            let detail: Value = e
                .detail
                .as_deref()
                .and_then(|d| serde_json::from_str(d).ok())
                .filter(Value::is_object)
                .ok_or_else(|| problem("MalformedDetail", "Detail is malformed."))?;
            let time = e
                .time
                .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t as i64).ok())
                .unwrap_or_else(time::OffsetDateTime::now_utc);
            let event = bus.envelope_at(&source, &detail_type, e.resources, detail, time);
            Ok::<_, Value>((bus_id, event))
        })();
        match entry {
            Ok((bus_id, event)) => {
                invocations.extend(bus.route(&bus_id, &event));
                results.push(json!({ "EventId": event["id"] }));
            }
            Err(problem) => {
                failed += 1;
                results.push(problem);
            }
        }
    }
    if !invocations.is_empty() {
        state
            .async_invoke
            .enqueue(invocations, None)
            .await
            .map_err(|e| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalException",
                    e.to_string(),
                )
            })?;
    }
    Ok(json!({ "FailedEntryCount": failed, "Entries": results }))
}
