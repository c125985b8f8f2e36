//! EventBridge's pure logic, free of I/O so it can be tested exhaustively and shared by the API
//! layer (validation at `PutRule`/`PutTargets` time) and the event router (matching, scheduling,
//! delivery).
//!
//! - [`pattern`]: event patterns — parsing with AWS' validation messages, and matching events.
//! - [`schedule`]: `rate(...)` and `cron(...)` schedule expressions and their next fire times.
//! - [`input`]: what a target receives — `InputPath` and `InputTransformer`.
//!
//! The semantics follow the AWS documentation and, where it is silent, Event Ruler (the open-source
//! matcher EventBridge runs); each module documents where it deliberately differs.
//!
//! ```
//! use nimbus_events::{InputTransformer, Pattern, Schedule, TransformContext};
//! use serde_json::json;
//!
//! let event = json!({"source": "shop", "detail-type": "order", "detail": {"total": 120, "id": "o-1"}});
//! let pattern = Pattern::parse(r#"{"source": ["shop"], "detail": {"total": [{"numeric": [">", 100]}]}}"#)?;
//! assert!(pattern.matches(&event));
//!
//! let every_5 = Schedule::parse("rate(5 minutes)")?;
//! assert_eq!(every_5.next_after(0, 60_000), Some(300_000));
//! let nine_am = Schedule::parse("cron(0 9 ? * MON-FRI *)")?;
//! assert_eq!(nine_am.next_after(0, 0), Some(32_400_000)); // Thursday 1970-01-01 09:00 UTC
//!
//! let paths = [("id".to_owned(), "$.detail.id".to_owned())].into();
//! let transformer = InputTransformer::new(paths, r#"{"order": <id>, "rule": "<aws.events.rule-name>"}"#.into())?;
//! let ctx = TransformContext { rule_arn: "arn:aws:events:us-east-1:123456789012:rule/r", rule_name: "r", ingestion_time: "1970-01-01T00:00:00Z" };
//! assert_eq!(transformer.render(&event, &ctx)?, r#"{"order": "o-1", "rule": "r"}"#);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod input;
pub mod pattern;
pub mod schedule;

pub use input::{select_path, validate_path, InputError, InputTransformer, TransformContext};
pub use pattern::{Pattern, PatternError};
pub use schedule::{Cron, Schedule, ScheduleError};
