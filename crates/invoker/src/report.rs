//! The platform's own log lines, in the function's `LogFormat`. Text: the lines Lambda writes
//! (`INIT_START`, `START`, `END`, `REPORT`, …). JSON: the records of Lambda's Telemetry API
//! schema (`platform.initStart`, `platform.start`, `platform.runtimeDone`, `platform.report`,
//! …), each at the level of Lambda's system log level event mapping, written only at or above
//! the function's `SystemLogLevel`. [`PlatformLog`] is the one place that decides.

use std::fmt::{self, Write};

use nimbus_model::time_fmt::iso_millis;
use nimbus_model::LoggingConfig;
use time::OffsetDateTime;
use tokio::sync::mpsc;

use crate::logs::LogCmd;

/// A system log level, most detailed first (`SystemLogLevel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Level {
    Debug,
    Info,
    Warn,
}

impl Level {
    fn parse(s: &str) -> Option<Level> {
        match s {
            "DEBUG" => Some(Level::Debug),
            "INFO" => Some(Level::Info),
            "WARN" => Some(Level::Warn),
            _ => None,
        }
    }
}

/// How an init or an invocation ended: the Telemetry API's `status` and `errorType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status<'a> {
    Success,
    Timeout,
    /// `error`, with its error type (`Runtime.ExitError`, `Function.ResponseSizeTooLarge`, …).
    Error(&'a str),
}

impl Status<'_> {
    /// Success at the level of the event; anything else is a warning.
    fn level(self, success: Level) -> Level {
        if self == Status::Success {
            success
        } else {
            Level::Warn
        }
    }

    /// `Status: …` of the Text lines (nothing on success).
    fn text(self) -> String {
        match self {
            Status::Success => String::new(),
            Status::Timeout => "Status: timeout".into(),
            Status::Error(t) => format!("Status: error\tError Type: {t}"),
        }
    }

    fn members(self, record: &mut Vec<(&'static str, J)>) {
        let (status, error_type) = match self {
            Status::Success => ("success", None),
            Status::Timeout => ("timeout", None),
            Status::Error(t) => ("error", Some(t)),
        };
        record.push(("status", J::str(status)));
        if let Some(t) = error_type {
            record.push(("errorType", J::str(t)));
        }
    }
}

/// One platform event of an environment.
pub(crate) enum Event<'a> {
    /// Init began. Text: `INIT_START`, for managed runtimes only.
    InitStart {
        runtime: &'a str,
        region: &'a str,
        function: &'a str,
        version: &'a str,
        init_type: &'a str,
    },
    /// Init ended: the runtime asked for its first event, or failed. Text: `INIT_REPORT`, on
    /// failure only.
    InitDone {
        init_type: &'a str,
        duration_ms: f64,
        status: Status<'a>,
    },
    /// Text: `START`.
    Start {
        request_id: &'a str,
        version: &'a str,
    },
    /// The runtime is done with the invocation. Text: `END`.
    RuntimeDone {
        request_id: &'a str,
        status: Status<'a>,
        duration_ms: f64,
        /// The response's size, when it was buffered.
        produced_bytes: Option<usize>,
    },
    /// Text: `REPORT`.
    Report(Report<'a>),
    /// Text: `<time> <request id> Task timed out after N seconds`. JSON records say it with
    /// `"status": "timeout"`.
    TimedOut { request_id: &'a str, secs: f64 },
    /// Text: `RequestId: … Error: Runtime exited with error: …` and the error type. JSON
    /// records say it with `"status": "error"` and the `errorType`.
    Crashed {
        message: &'a str,
        error_type: &'a str,
    },
}

pub(crate) struct Report<'a> {
    pub request_id: &'a str,
    pub duration_ms: f64,
    pub memory_mb: u32,
    pub max_memory_mb: Option<u64>,
    pub init_ms: Option<f64>,
    pub status: Status<'a>,
}

/// Billed duration: whole milliseconds rounded up, including init on a cold start (as
/// Lambda bills since August 2025).
pub fn billed_ms(duration_ms: f64, init_ms: Option<f64>) -> u64 {
    let total = duration_ms + init_ms.unwrap_or(0.0);
    (total.ceil().max(1.0)) as u64
}

/// The runtime version (`python:3.12.nimbus`) and its ARN, for managed runtimes.
fn runtime_version(runtime: &str, region: &str) -> Option<(String, String)> {
    use sha2::Digest;
    let (lang, ver) = if let Some(v) = runtime.strip_prefix("python") {
        ("python", v)
    } else if let Some(v) = runtime.strip_prefix("nodejs") {
        ("nodejs", v.trim_end_matches(".x"))
    } else {
        return None;
    };
    let arn_id = hex::encode(sha2::Sha256::digest(format!("nimbus:{runtime}")));
    Some((
        format!("{lang}:{ver}.nimbus"),
        format!("arn:aws:lambda:{region}::runtime:{arn_id}"),
    ))
}

impl Event<'_> {
    /// What the event writes: its Text line, or (`json` = the `SystemLogLevel`) its JSON
    /// records at that level and above.
    pub(crate) fn lines(&self, json: Option<Level>, now: OffsetDateTime) -> Vec<String> {
        let time = iso_millis(now);
        let Some(min) = json else {
            return self.text(&time).into_iter().collect();
        };
        self.records()
            .into_iter()
            .filter(|(level, ..)| *level >= min)
            .map(|(_, kind, record)| {
                format!(r#"{{"time":"{time}","type":"{kind}","record":{record}}}"#)
            })
            .collect()
    }

    fn text(&self, time: &str) -> Option<String> {
        Some(match *self {
            Event::InitStart {
                runtime, region, ..
            } => {
                let (version, arn) = runtime_version(runtime, region)?;
                format!("INIT_START Runtime Version: {version}\tRuntime Version ARN: {arn}")
            }
            Event::InitDone {
                status: Status::Success,
                ..
            } => return None,
            Event::InitDone {
                duration_ms,
                status,
                ..
            } => format!(
                "INIT_REPORT Init Duration: {duration_ms:.2} ms\tPhase: init\t{}",
                status.text()
            ),
            Event::Start {
                request_id,
                version,
            } => format!("START RequestId: {request_id} Version: {version}"),
            Event::RuntimeDone { request_id, .. } => format!("END RequestId: {request_id}"),
            Event::Report(ref r) => {
                let mut s = format!(
                    "REPORT RequestId: {}\tDuration: {:.2} ms\tBilled Duration: {} ms\tMemory Size: {} MB\tMax Memory Used: {} MB\t",
                    r.request_id,
                    r.duration_ms,
                    billed_ms(r.duration_ms, r.init_ms),
                    r.memory_mb,
                    r.max_memory_used(),
                );
                if let Some(init) = r.init_ms {
                    let _ = write!(s, "Init Duration: {init:.2} ms\t");
                }
                s + &r.status.text()
            }
            Event::TimedOut { request_id, secs } => {
                format!("{time} {request_id} Task timed out after {secs:.2} seconds")
            }
            Event::Crashed {
                message,
                error_type,
            } => format!("{message}\n{error_type}"),
        })
    }

    /// The Telemetry API records of the event, with their system log levels.
    fn records(&self) -> Vec<(Level, &'static str, J)> {
        match *self {
            Event::InitStart {
                runtime,
                region,
                function,
                version,
                init_type,
            } => {
                let mut r = vec![
                    ("initializationType", J::str(init_type)),
                    ("phase", J::str("init")),
                ];
                // Without a runtime version (custom runtimes) initStart is a DEBUG record.
                let mut level = Level::Debug;
                if let Some((runtime_version, arn)) = runtime_version(runtime, region) {
                    level = Level::Info;
                    r.push(("runtimeVersion", J::Str(runtime_version)));
                    r.push(("runtimeVersionArn", J::Str(arn)));
                }
                r.push(("functionName", J::str(function)));
                r.push(("functionVersion", J::str(version)));
                vec![(level, "platform.initStart", J::Obj(r))]
            }
            Event::InitDone {
                init_type,
                duration_ms,
                status,
            } => {
                let mut done = vec![
                    ("initializationType", J::str(init_type)),
                    ("phase", J::str("init")),
                ];
                status.members(&mut done);
                let mut report = done.clone();
                report.push(("metrics", J::Obj(vec![("durationMs", J::Num(duration_ms))])));
                // A successful on-demand init reports at DEBUG, a provisioned one at INFO.
                let report_level = status.level(if init_type == "on-demand" {
                    Level::Debug
                } else {
                    Level::Info
                });
                vec![
                    (
                        status.level(Level::Debug),
                        "platform.initRuntimeDone",
                        J::Obj(done),
                    ),
                    (report_level, "platform.initReport", J::Obj(report)),
                ]
            }
            Event::Start {
                request_id,
                version,
            } => vec![(
                Level::Info,
                "platform.start",
                J::Obj(vec![
                    ("requestId", J::str(request_id)),
                    ("version", J::str(version)),
                ]),
            )],
            Event::RuntimeDone {
                request_id,
                status,
                duration_ms,
                produced_bytes,
            } => {
                let mut r = vec![("requestId", J::str(request_id))];
                status.members(&mut r);
                let mut metrics = vec![("durationMs", J::Num(duration_ms))];
                if let Some(n) = produced_bytes {
                    metrics.push(("producedBytes", J::Int(n as u64)));
                }
                r.push(("metrics", J::Obj(metrics)));
                vec![(
                    status.level(Level::Debug),
                    "platform.runtimeDone",
                    J::Obj(r),
                )]
            }
            Event::Report(ref rep) => {
                let mut metrics = vec![
                    ("durationMs", J::Num(rep.duration_ms)),
                    (
                        "billedDurationMs",
                        J::Int(billed_ms(rep.duration_ms, rep.init_ms)),
                    ),
                    ("memorySizeMB", J::Int(u64::from(rep.memory_mb))),
                    ("maxMemoryUsedMB", J::Int(rep.max_memory_used())),
                ];
                if let Some(init) = rep.init_ms {
                    metrics.push(("initDurationMs", J::Num(init)));
                }
                let mut r = vec![
                    ("requestId", J::str(rep.request_id)),
                    ("metrics", J::Obj(metrics)),
                ];
                rep.status.members(&mut r);
                vec![(rep.status.level(Level::Info), "platform.report", J::Obj(r))]
            }
            Event::TimedOut { .. } | Event::Crashed { .. } => vec![],
        }
    }
}

impl Report<'_> {
    fn max_memory_used(&self) -> u64 {
        self.max_memory_mb
            .unwrap_or(0)
            .min(u64::from(self.memory_mb))
    }
}

/// A JSON value written with its members in the order given (Lambda's order; serde_json's
/// map would sort them).
#[derive(Clone)]
enum J {
    Str(String),
    Int(u64),
    /// Milliseconds, written with at most three decimals.
    Num(f64),
    Obj(Vec<(&'static str, J)>),
}

impl J {
    fn str(s: &str) -> J {
        J::Str(s.to_string())
    }
}

impl fmt::Display for J {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            J::Str(s) => write!(f, "{}", serde_json::Value::from(s.as_str())),
            J::Int(n) => write!(f, "{n}"),
            J::Num(x) => write!(
                f,
                "{}",
                serde_json::Value::from((x * 1000.0).round() / 1000.0)
            ),
            J::Obj(members) => {
                f.write_char('{')?;
                for (i, (key, value)) in members.iter().enumerate() {
                    if i > 0 {
                        f.write_char(',')?;
                    }
                    write!(f, "\"{key}\":{value}")?;
                }
                f.write_char('}')
            }
        }
    }
}

/// Where an environment's platform events go: to its log task, as Text lines or as JSON
/// records filtered by `SystemLogLevel`, as the function's `LoggingConfig` says.
#[derive(Clone)]
pub(crate) struct PlatformLog {
    tx: mpsc::UnboundedSender<LogCmd>,
    /// `None` with Text logs; with JSON, the least level written.
    json: Option<Level>,
}

impl PlatformLog {
    pub(crate) fn new(tx: mpsc::UnboundedSender<LogCmd>, logging: &LoggingConfig) -> Self {
        let json = logging
            .system_level()
            .map(|l| Level::parse(l).unwrap_or(Level::Info));
        PlatformLog { tx, json }
    }

    pub(crate) fn emit(&self, event: &Event<'_>) {
        // Lines that report how an invocation or init ended come after everything the runtime
        // printed before it answered; lines sent at handout must not wait for the pipe, or
        // output printed after them would be put first.
        let after_output = !matches!(
            event,
            Event::InitStart { .. } | Event::InitDone { .. } | Event::Start { .. }
        );
        for line in event.lines(self.json, OffsetDateTime::now_utc()) {
            self.send(LogCmd::Platform { line, after_output });
        }
    }

    /// Any other command to the log task.
    pub(crate) fn send(&self, cmd: LogCmd) {
        let _ = self.tx.send(cmd);
    }
}

/// How Go's os/exec (and so Lambda) describes a process exit.
pub(crate) fn exit_text(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(9)) => "signal: killed".into(),
        (None, Some(sig)) => format!("signal: {sig}"),
        _ => "unknown exit".into(),
    }
}

/// A fresh X-Ray trace header.
pub(crate) fn trace_id() -> String {
    let u = uuid::Uuid::new_v4().simple().to_string();
    let secs = time::OffsetDateTime::now_utc().unix_timestamp();
    format!(
        "Root=1-{secs:08x}-{};Parent={};Sampled=0",
        &u[..24],
        &u[16..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    const NOW: &str = "2024-01-01T00:00:00.123Z";

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(1_704_067_200_123_000_000).unwrap()
    }

    fn text(event: &Event<'_>) -> Vec<String> {
        event.lines(None, now())
    }

    /// The JSON records of `event` written at `level`, parsed; each checked for its envelope.
    fn json_at(event: &Event<'_>, level: Level) -> Vec<Value> {
        event
            .lines(Some(level), now())
            .iter()
            .map(|line| {
                assert!(
                    line.starts_with(&format!(r#"{{"time":"{NOW}","type":"platform."#)),
                    "{line}"
                );
                let v: Value = serde_json::from_str(line).unwrap();
                assert_eq!(v.as_object().unwrap().len(), 3, "{line}");
                v
            })
            .collect()
    }

    fn report(status: Status<'_>, init_ms: Option<f64>) -> Event<'_> {
        Event::Report(Report {
            request_id: "id",
            duration_ms: 12.3414,
            memory_mb: 128,
            max_memory_mb: Some(35),
            init_ms,
            status,
        })
    }

    #[test]
    fn text_lines_match_lambda() {
        assert_eq!(
            text(&report(Status::Success, Some(120.5))),
            ["REPORT RequestId: id\tDuration: 12.34 ms\tBilled Duration: 133 ms\tMemory Size: 128 MB\tMax Memory Used: 35 MB\tInit Duration: 120.50 ms\t"]
        );
        assert!(text(&report(Status::Timeout, None))[0]
            .ends_with("Max Memory Used: 35 MB\tStatus: timeout"));
        assert!(text(&report(Status::Error("Runtime.ExitError"), None))[0]
            .ends_with("Max Memory Used: 35 MB\tStatus: error\tError Type: Runtime.ExitError"));
        assert_eq!(billed_ms(0.2, None), 1);
        let start = Event::Start {
            request_id: "id",
            version: "$LATEST",
        };
        assert_eq!(text(&start), ["START RequestId: id Version: $LATEST"]);
        let end = Event::RuntimeDone {
            request_id: "id",
            status: Status::Success,
            duration_ms: 1.0,
            produced_bytes: Some(2),
        };
        assert_eq!(text(&end), ["END RequestId: id"]);
        let init = |runtime| Event::InitStart {
            runtime,
            region: "us-east-1",
            function: "f",
            version: "$LATEST",
            init_type: "on-demand",
        };
        let line = &text(&init("python3.12"))[0];
        assert!(line.starts_with("INIT_START Runtime Version: python:3.12.nimbus\tRuntime Version ARN: arn:aws:lambda:us-east-1::runtime:"));
        assert!(text(&init("provided.al2023")).is_empty());
        let failed = Event::InitDone {
            init_type: "on-demand",
            duration_ms: 3.456,
            status: Status::Error("Runtime.ExitError"),
        };
        assert_eq!(
            text(&failed),
            ["INIT_REPORT Init Duration: 3.46 ms\tPhase: init\tStatus: error\tError Type: Runtime.ExitError"]
        );
        let ok = Event::InitDone {
            status: Status::Success,
            init_type: "on-demand",
            duration_ms: 1.0,
        };
        assert!(text(&ok).is_empty());
        let timed_out = Event::TimedOut {
            request_id: "id",
            secs: 3.0,
        };
        assert_eq!(
            text(&timed_out),
            [format!("{NOW} id Task timed out after 3.00 seconds")]
        );
        let crashed = Event::Crashed {
            message: "RequestId: id Error: Runtime exited with error: exit status 1",
            error_type: "Runtime.ExitError",
        };
        assert_eq!(
            text(&crashed),
            ["RequestId: id Error: Runtime exited with error: exit status 1\nRuntime.ExitError"]
        );
    }

    #[test]
    fn json_records_follow_the_telemetry_schema() {
        let cold = json_at(&report(Status::Success, Some(120.5)), Level::Info);
        assert_eq!(
            cold,
            [json!({"time": NOW, "type": "platform.report", "record": {
                "requestId": "id",
                "metrics": {"durationMs": 12.341, "billedDurationMs": 133, "memorySizeMB": 128,
                            "maxMemoryUsedMB": 35, "initDurationMs": 120.5},
                "status": "success"}})]
        );
        // Members in Lambda's order.
        let line = &report(Status::Success, None).lines(Some(Level::Debug), now())[0];
        assert!(line.ends_with(r#""record":{"requestId":"id","metrics":{"durationMs":12.341,"billedDurationMs":13,"memorySizeMB":128,"maxMemoryUsedMB":35},"status":"success"}}"#), "{line}");

        let timeout = &json_at(&report(Status::Timeout, None), Level::Warn)[0]["record"];
        assert_eq!(timeout["status"], "timeout");
        assert!(timeout.get("errorType").is_none());
        let error = &json_at(
            &report(Status::Error("Runtime.OutOfMemory"), None),
            Level::Warn,
        )[0]["record"];
        assert_eq!(
            (&error["status"], &error["errorType"]),
            (&json!("error"), &json!("Runtime.OutOfMemory"))
        );

        let start = Event::Start {
            request_id: "id",
            version: "$LATEST",
        };
        assert_eq!(
            json_at(&start, Level::Info),
            [
                json!({"time": NOW, "type": "platform.start", "record": {"requestId": "id", "version": "$LATEST"}})
            ]
        );

        let init = Event::InitStart {
            runtime: "nodejs20.x",
            region: "eu-west-1",
            function: "f",
            version: "$LATEST",
            init_type: "on-demand",
        };
        let record = &json_at(&init, Level::Info)[0]["record"];
        assert_eq!(record["initializationType"], "on-demand");
        assert_eq!(record["phase"], "init");
        assert_eq!(record["runtimeVersion"], "nodejs:20.nimbus");
        assert!(record["runtimeVersionArn"]
            .as_str()
            .unwrap()
            .starts_with("arn:aws:lambda:eu-west-1::runtime:"));
        assert_eq!(
            (&record["functionName"], &record["functionVersion"]),
            (&json!("f"), &json!("$LATEST"))
        );

        let done = Event::RuntimeDone {
            request_id: "id",
            status: Status::Error("Runtime.ExitError"),
            duration_ms: 5.0,
            produced_bytes: None,
        };
        assert_eq!(
            json_at(&done, Level::Warn)[0]["record"],
            json!({"requestId": "id", "status": "error", "errorType": "Runtime.ExitError", "metrics": {"durationMs": 5.0}})
        );

        let failed = Event::InitDone {
            init_type: "on-demand",
            duration_ms: 3.4567,
            status: Status::Error("Runtime.ExitError"),
        };
        let records = json_at(&failed, Level::Warn);
        assert_eq!(records[0]["type"], "platform.initRuntimeDone");
        assert_eq!(
            records[1]["record"],
            json!({"initializationType": "on-demand", "phase": "init", "status": "error",
                   "errorType": "Runtime.ExitError", "metrics": {"durationMs": 3.457}})
        );
        // The Text-only lines have no records of their own: the statuses above say it.
        assert!(json_at(
            &Event::TimedOut {
                request_id: "id",
                secs: 1.0
            },
            Level::Debug
        )
        .is_empty());
    }

    #[test]
    fn system_log_level_filters_records() {
        let types = |event: &Event<'_>, level| -> Vec<String> {
            json_at(event, level)
                .iter()
                .map(|v| v["type"].as_str().unwrap().to_string())
                .collect()
        };
        let start = Event::Start {
            request_id: "id",
            version: "1",
        };
        let done = |status| Event::RuntimeDone {
            request_id: "id",
            status,
            duration_ms: 1.0,
            produced_bytes: Some(2),
        };
        let init_done = |init_type, status| Event::InitDone {
            init_type,
            duration_ms: 1.0,
            status,
        };
        let custom = Event::InitStart {
            runtime: "provided.al2023",
            region: "r",
            function: "f",
            version: "1",
            init_type: "on-demand",
        };
        // (event, records at DEBUG, at INFO, at WARN)
        let cases: Vec<(Event<'_>, usize, usize, usize)> = vec![
            (start, 1, 1, 0),
            (report(Status::Success, None), 1, 1, 0),
            (report(Status::Timeout, None), 1, 1, 1),
            (report(Status::Error("Runtime.ExitError"), None), 1, 1, 1),
            (done(Status::Success), 1, 0, 0),
            (done(Status::Timeout), 1, 1, 1),
            (custom, 1, 0, 0),
            (init_done("on-demand", Status::Success), 2, 0, 0),
            (
                init_done("provisioned-concurrency", Status::Success),
                2,
                1,
                0,
            ),
            (
                init_done("on-demand", Status::Error("Runtime.Unknown")),
                2,
                2,
                2,
            ),
        ];
        for (event, debug, info, warn) in &cases {
            let counts = [Level::Debug, Level::Info, Level::Warn].map(|l| types(event, l).len());
            assert_eq!(
                counts,
                [*debug, *info, *warn],
                "{:?}",
                types(event, Level::Debug)
            );
        }
        assert_eq!(
            types(
                &init_done("provisioned-concurrency", Status::Success),
                Level::Info
            ),
            ["platform.initReport"]
        );
    }

    #[test]
    fn platform_log_follows_the_logging_config() {
        let config = |format: &str, system: Option<&str>| LoggingConfig {
            log_format: format.into(),
            application_log_level: None,
            system_log_level: system.map(Into::into),
            log_group: "/aws/lambda/f".into(),
        };
        let (tx, _rx) = mpsc::unbounded_channel();
        assert_eq!(
            PlatformLog::new(tx.clone(), &config("Text", None)).json,
            None
        );
        assert_eq!(
            PlatformLog::new(tx.clone(), &config("JSON", None)).json,
            Some(Level::Info)
        );
        assert_eq!(
            PlatformLog::new(tx, &config("JSON", Some("WARN"))).json,
            Some(Level::Warn)
        );
    }
}
