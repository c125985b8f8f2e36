//! The environment lifecycle, end to end below HTTP: real Python processes started through
//! the process sandbox, speaking the Runtime API to the invoker.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use nimbus_invoker::{CodePaths, Concurrency, InvokeRequest, Invoker, LogSink, Platform};
use nimbus_model::{CodeInfo, FunctionConfig, FunctionRecord, Identity};
use nimbus_runtimes::{RuntimeOptions, Runtimes};
use nimbus_sandbox::ProcessSandbox;
use nimbus_store::{LogQuery, LogStore, SqliteStore};

const APP: &str = r#"
import os, time
COUNT = 0
def handler(event, context):
    global COUNT
    COUNT += 1
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("crash"):
        os._exit(3)
    if event.get("raise"):
        raise ValueError("bad input")
    print("marker-" + context.aws_request_id)
    return {"count": COUNT, "pid": os.getpid(), "version": context.function_version}
"#;

fn record(runtime: &str, generation: u64) -> FunctionRecord {
    let mut config = FunctionConfig::new(
        "lifecycle",
        runtime,
        "app.handler",
        "arn:aws:iam::000000000000:role/r",
    );
    config.timeout_s = 1;
    let code = CodeInfo {
        sha256_hex: "0".repeat(64),
        size: 0,
        unzipped_size: 0,
    };
    let mut rec = FunctionRecord::new_latest(
        "lifecycle",
        config,
        code,
        "r".into(),
        "2026-01-01T00:00:00.000+0000".into(),
    );
    rec.generation = generation;
    rec
}

fn request(payload: &str, tail: bool) -> InvokeRequest {
    InvokeRequest {
        request_id: uuid_like(),
        payload: Bytes::from(payload.to_string()),
        invoked_arn: "arn:aws:lambda:us-east-1:000000000000:function:lifecycle".into(),
        client_context: None,
        want_tail: tail,
        stream: None,
    }
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    format!(
        "00000000-0000-4000-8000-{:012x}",
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn json(b: &Bytes) -> serde_json::Value {
    serde_json::from_slice(b).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cold_warm_timeout_crash_and_retirement() {
    let dir = tempfile::tempdir().unwrap();
    let code = dir.path().join("code");
    std::fs::create_dir(&code).unwrap();
    std::fs::write(code.join("app.py"), APP).unwrap();
    let runtimes = Runtimes::discover(
        &dir.path().join("runtimes"),
        &dir.path().join("sdk"),
        RuntimeOptions::default(),
    )
    .unwrap();
    let runtime = "python3.11";
    if runtimes.check(runtime).is_err() {
        eprintln!("no Python 3 on this host: skipping");
        return;
    }
    let store = Arc::new(SqliteStore::in_memory().unwrap());
    let (logs, _writer) = LogSink::start(store.clone());
    let platform = Platform {
        identity: Identity::default(),
        endpoint_url: "http://127.0.0.1:9".into(),
        runtimes: Arc::new(runtimes),
        logs,
        api_port: 9,
        serve_api: None,
        outbound: nimbus_egress::Outbound::None,
    };
    let invoker = Invoker::new(platform, Arc::new(ProcessSandbox), Concurrency::new(10, 1));
    let f = Arc::new(record(runtime, 1));
    let run = |payload: &'static str, tail: bool, f: Arc<FunctionRecord>| {
        let code: &Path = &code;
        let paths = CodePaths {
            task: code.to_path_buf(),
            opt: None,
        };
        let fut = invoker.invoke(f, paths, request(payload, tail));
        async move { fut.await.expect("not throttled") }
    };

    // Cold, then warm in the same environment: init runs once, globals persist.
    let first = run("{}", true, f.clone()).await;
    assert!(!first.function_error, "{:?}", first.body);
    assert!(first.init_ms.is_some());
    let tail = first.log_tail.unwrap();
    assert!(
        tail.contains("START RequestId:")
            && tail.contains("marker-")
            && tail.contains("Init Duration:"),
        "{tail}"
    );
    let second = run("{}", false, f.clone()).await;
    assert!(second.init_ms.is_none());
    assert_eq!(json(&second.body)["count"], 2);
    assert_eq!(json(&second.body)["pid"], json(&first.body)["pid"]);

    // A handler exception is a function error; the environment survives it.
    let err = run(r#"{"raise": true}"#, false, f.clone()).await;
    assert!(err.function_error);
    assert_eq!(json(&err.body)["errorType"], "ValueError");
    assert_eq!(json(&run("{}", false, f.clone()).await.body)["count"], 4);

    // Timeout: Sandbox.Timedout, and the environment is replaced.
    let slow = run(r#"{"sleep": 5}"#, false, f.clone()).await;
    assert!(slow.function_error);
    let body = json(&slow.body);
    assert_eq!(body["errorType"], "Sandbox.Timedout");
    assert!(
        body["errorMessage"]
            .as_str()
            .unwrap()
            .contains("Task timed out after 1.0"),
        "{body}"
    );
    let fresh = run("{}", false, f.clone()).await;
    assert_eq!(json(&fresh.body)["count"], 1);

    // A crash: Runtime.ExitError with the exit status, then a new environment.
    let crash = run(r#"{"crash": true}"#, false, f.clone()).await;
    let body = json(&crash.body);
    assert_eq!(body["errorType"], "Runtime.ExitError");
    assert!(
        body["errorMessage"]
            .as_str()
            .unwrap()
            .ends_with("exit status 3"),
        "{body}"
    );
    assert_eq!(json(&run("{}", false, f.clone()).await.body)["count"], 1);

    // A new generation (an update) never reuses the old environment.
    let before = json(&run("{}", false, f.clone()).await.body)["pid"].clone();
    let updated = Arc::new(record(runtime, 2));
    let after = run("{}", false, updated).await;
    assert!(after.init_ms.is_some());
    assert_ne!(json(&after.body)["pid"], before);

    // Everything reached the log store, START/END/REPORT included.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let events = store
        .query_logs(&LogQuery {
            group: "/aws/lambda/lifecycle".into(),
            limit: 10_000,
            ..Default::default()
        })
        .unwrap();
    let text: Vec<&str> = events.iter().map(|e| e.message.as_str()).collect();
    assert!(
        text.iter()
            .any(|m| m.starts_with("REPORT RequestId:") && m.contains("Status: timeout")),
        "{text:?}"
    );
    assert!(text.iter().any(|m| m.contains("Task timed out after")));
    assert!(text
        .iter()
        .any(|m| m.contains("Runtime exited with error: exit status 3")));
    invoker.shutdown();
}
