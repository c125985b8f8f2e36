//! Where the outcome of an asynchronous invocation goes: destinations and dead-letter
//! targets, and the invocation record Lambda sends them.

use nimbus_model::time_fmt::iso_millis;
use nimbus_model::Identity;
use serde_json::{json, Value};

/// A destination or dead-letter ARN, by what Nimbus does with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// Another function, invoked asynchronously with the record as its event.
    Function {
        name: String,
        qualifier: Option<String>,
    },
    /// An EventBridge bus: the record is put on it as an event.
    Bus(String),
    /// SQS, SNS or S3: Nimbus has none, so it keeps the message (`nimbus messages`).
    Stored(String),
}

impl Destination {
    /// Parses a destination ARN of this region and account.
    pub fn parse(arn: &str, identity: &Identity) -> Result<Destination, String> {
        let bad = || format!("The destination ARN {arn} is invalid.");
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let [prefix, partition, service, region, account, resource] = parts[..] else {
            return Err(bad());
        };
        if prefix != "arn" || partition != "aws" || resource.is_empty() {
            return Err(bad());
        }
        let local = region == identity.region && account == identity.account_id;
        match service {
            "lambda" if local => {
                let mut it = resource.split(':');
                let (Some("function"), Some(name)) = (it.next(), it.next()) else {
                    return Err(bad());
                };
                let qualifier = it.next().map(str::to_string);
                if it.next().is_some() || !nimbus_model::names::is_valid_function_name(name) {
                    return Err(bad());
                }
                Ok(Destination::Function {
                    name: name.to_string(),
                    qualifier,
                })
            }
            "events" if local => resource
                .strip_prefix("event-bus/")
                .filter(|b| !b.is_empty())
                .map(|b| Destination::Bus(b.to_string()))
                .ok_or_else(bad),
            "sqs" | "sns" if local => Ok(Destination::Stored(arn.to_string())),
            "s3" if region.is_empty() && account.is_empty() => {
                Ok(Destination::Stored(arn.to_string()))
            }
            _ => Err(bad()),
        }
    }
}

/// Why an event reached a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    Success,
    RetriesExhausted,
    EventAgeExceeded,
}

impl Condition {
    fn as_str(self) -> &'static str {
        match self {
            Condition::Success => "Success",
            Condition::RetriesExhausted => "RetriesExhausted",
            Condition::EventAgeExceeded => "EventAgeExceeded",
        }
    }

    /// The `detail-type` of the record when it goes to an EventBridge bus.
    pub fn detail_type(self) -> &'static str {
        match self {
            Condition::Success => "Lambda Function Invocation Result - Success",
            _ => "Lambda Function Invocation Result - Failure",
        }
    }
}

/// The outcome of one attempt, kept between attempts as JSON.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Outcome {
    pub executed_version: String,
    pub function_error: bool,
    /// The function's response (or error) text.
    pub response: String,
}

fn as_json(text: &[u8]) -> Value {
    serde_json::from_slice(text)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(text).into_owned()))
}

/// The invocation record (`version` 1.0) Lambda sends to destinations.
pub fn invocation_record(
    request_id: &str,
    function_arn: &str,
    condition: Condition,
    attempts: u32,
    payload: &[u8],
    outcome: Option<&Outcome>,
) -> Value {
    let mut record = json!({
        "version": "1.0",
        "timestamp": iso_millis(time::OffsetDateTime::now_utc()),
        "requestContext": {
            "requestId": request_id,
            "functionArn": function_arn,
            "condition": condition.as_str(),
            "approximateInvokeCount": attempts,
        },
        "requestPayload": as_json(payload),
    });
    if let Some(o) = outcome {
        let mut ctx = json!({ "statusCode": 200, "executedVersion": o.executed_version });
        if o.function_error {
            ctx["functionError"] = json!("Unhandled");
        }
        record["responseContext"] = ctx;
        record["responsePayload"] = as_json(o.response.as_bytes());
    }
    record
}
