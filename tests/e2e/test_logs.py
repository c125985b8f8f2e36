"""CloudWatch Logs subset (JSON 1.1, Logs_20140328.*) for function logs:
one group per function, one stream per execution environment."""

from __future__ import annotations

import json
import re
import time
import uuid

import pytest

from .conftest import (
    DEFAULT_RUNTIME,
    NODE,
    STREAM_NAME_RE,
    all_log_events,
    expect_client_error,
    invoke,
    python_probe_zip,
    wait_for_log_messages,
    wait_until,
)


def test_function_logs_via_cloudwatch_logs_api(lam, logs, create_fn):
    fn = create_fn()
    group = f"/aws/lambda/{fn.name}"
    marker = f"logs-marker-{uuid.uuid4().hex}"
    t0 = int(time.time() * 1000)
    first = invoke(lam, fn.name, {"print": marker})
    stream = first.ok()["ctx"]["log_stream_name"]
    second = invoke(lam, fn.name, {"print": marker + "-second"})
    second.ok()
    rid1, rid2 = first.request_id, second.request_id

    # log group and stream
    wait_until(
        lambda: group in [g["logGroupName"] for g in logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]],
        timeout=5,
        interval=0.2,
        message=f"log group {group}",
    )

    def streams():
        found = logs.describe_log_streams(logGroupName=group)["logStreams"]
        return found if stream in [s["logStreamName"] for s in found] else None

    found = wait_until(streams, timeout=5, interval=0.2, message=f"stream {stream}")
    for s in found:
        assert STREAM_NAME_RE.match(s["logStreamName"]), s
        assert isinstance(s["creationTime"], int)
    assert len(found) == 1, "two sequential invokes share one environment, hence one stream"

    # FilterLogEvents: platform lines and function output, in order, with ms timestamps
    needles = [f"START RequestId: {rid1}", marker, f"END RequestId: {rid1}", f"REPORT RequestId: {rid1}",
               f"START RequestId: {rid2}", f"REPORT RequestId: {rid2}"]
    events = wait_for_log_messages(logs, group, needles, timeout=5)
    now = int(time.time() * 1000)
    for e in events:
        assert isinstance(e["timestamp"], int) and t0 - 60_000 <= e["timestamp"] <= now + 60_000, e
        assert isinstance(e["ingestionTime"], int) and e["ingestionTime"] >= e["timestamp"] - 1000, e
        assert e["logStreamName"] == stream
        assert e.get("eventId")

    def index_of(needle):
        return next(i for i, e in enumerate(events) if needle in e["message"])

    assert index_of(f"START RequestId: {rid1}") < index_of(marker) < index_of(f"END RequestId: {rid1}")
    assert index_of(f"END RequestId: {rid1}") < index_of(f"REPORT RequestId: {rid1}") < index_of(f"START RequestId: {rid2}")
    timestamps = [e["timestamp"] for e in events]
    assert timestamps == sorted(timestamps)

    # pagination with limit/nextToken returns the same events
    paged = all_log_events(logs, group, limit=2)
    assert [e["message"] for e in paged] == [e["message"] for e in events]
    first_page = logs.filter_log_events(logGroupName=group, limit=2)
    assert len(first_page["events"]) <= 2 and first_page.get("nextToken")

    # time window and stream filters
    assert all_log_events(logs, group, startTime=now + 3_600_000) == []
    assert all_log_events(logs, group, endTime=t0 - 3_600_000) == []
    windowed = all_log_events(logs, group, startTime=t0 - 60_000, endTime=now + 60_000)
    assert len(windowed) == len(events)
    assert len(all_log_events(logs, group, logStreamNames=[stream])) == len(events)

    # GetLogEvents on the stream
    got = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)
    messages = [e["message"] for e in got["events"]]
    assert any(marker in m for m in messages), messages
    assert any(m.startswith(f"START RequestId: {rid1}") for m in messages)
    assert all(isinstance(e["timestamp"], int) and isinstance(e["ingestionTime"], int) for e in got["events"])
    assert "nextForwardToken" in got and "nextBackwardToken" in got


def test_new_environment_gets_a_new_stream(lam, logs, create_fn):
    fn = create_fn()
    group = f"/aws/lambda/{fn.name}"
    s1 = invoke(lam, fn.name).ok()["ctx"]["log_stream_name"]
    lam.update_function_code(FunctionName=fn.name, ZipFile=python_probe_zip({"v2.txt": "2"}))
    lam.get_waiter("function_updated_v2").wait(FunctionName=fn.name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    s2 = invoke(lam, fn.name).ok()["ctx"]["log_stream_name"]
    assert s1 != s2

    def both():
        names = {s["logStreamName"] for s in logs.describe_log_streams(logGroupName=group)["logStreams"]}
        return names if {s1, s2} <= names else None

    wait_until(both, timeout=5, interval=0.2, message="both streams listed")
    assert all_log_events(logs, group, logStreamNames=[s2])
    assert all(e["logStreamName"] == s2 for e in all_log_events(logs, group, logStreamNames=[s2]))


def test_unknown_log_group_is_resource_not_found(logs):
    group = f"/aws/lambda/e2e-no-such-function-{uuid.uuid4().hex[:8]}"
    expect_client_error(lambda: logs.describe_log_streams(logGroupName=group), 400, "ResourceNotFoundException")
    expect_client_error(lambda: logs.filter_log_events(logGroupName=group), 400, "ResourceNotFoundException")
    expect_client_error(
        lambda: logs.get_log_events(logGroupName=group, logStreamName="2024/01/01/[$LATEST]" + "0" * 32),
        400,
        "ResourceNotFoundException",
    )
    assert logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"] == []


# --------------------------------------------------------------------------
# LoggingConfig: JSON logs (Telemetry API records for the platform's events,
# SystemLogLevel and ApplicationLogLevel filtering)
# --------------------------------------------------------------------------

ISO_MS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")

PY_LOGGING_APP = """\
import logging
import time

logger = logging.getLogger()


def handler(event, context):
    logger.info("info-%s", event["marker"])
    logger.warning("warn-%s", event["marker"])
    time.sleep(event.get("sleep", 0))
    return {"requestId": context.aws_request_id}
"""

NODE_LOGGING_APP = """\
exports.handler = async (event, context) => {
  console.info(`info-${event.marker}`);
  console.warn(`warn-${event.marker}`);
  return { requestId: context.awsRequestId };
};
"""

# runtime, handler, code, the "level" a WARN record carries in that runtime
JSON_RUNTIMES = [
    pytest.param(DEFAULT_RUNTIME, "app.handler", {"app.py": PY_LOGGING_APP}, "WARNING", id="python"),
    pytest.param(
        "nodejs20.x",
        "index.handler",
        {"index.js": NODE_LOGGING_APP},
        "WARN",
        id="nodejs",
        marks=pytest.mark.skipif(NODE is None, reason="node is not on PATH"),
    ),
]


def json_records(logs, group: str, done, timeout: float = 10.0) -> list[dict]:
    """The group's events once `done(records)` holds; every event must be one JSON object."""

    def check():
        records = []
        for e in all_log_events(logs, group):
            try:
                record = json.loads(e["message"])
            except ValueError:
                raise AssertionError(f"not a JSON log event: {e['message']!r}") from None
            assert isinstance(record, dict), e["message"]
            records.append(record)
        return records if done(records) else None

    return wait_until(check, timeout=timeout, interval=0.25, message=f"JSON log records in {group}")


def platform(records: list[dict], kind: str, request_id: str | None = None) -> list[dict]:
    return [
        r
        for r in records
        if r.get("type") == kind and (request_id is None or r["record"].get("requestId") == request_id)
    ]


def has_report(request_id: str):
    return lambda records: bool(platform(records, "platform.report", request_id))


@pytest.mark.parametrize("runtime,handler,code,warn_level", JSON_RUNTIMES)
def test_json_logs_platform_records_and_levels(lam, logs, create_fn, runtime, handler, code, warn_level):
    fn = create_fn(
        runtime=runtime,
        handler=handler,
        code=code,
        LoggingConfig={"LogFormat": "JSON", "ApplicationLogLevel": "WARN", "SystemLogLevel": "INFO"},
    )
    group = f"/aws/lambda/{fn.name}"
    assert fn.config["LoggingConfig"] == {
        "LogFormat": "JSON",
        "ApplicationLogLevel": "WARN",
        "SystemLogLevel": "INFO",
        "LogGroup": group,
    }
    markers = [uuid.uuid4().hex, uuid.uuid4().hex]
    rids = []
    for m in markers:
        res = invoke(lam, fn.name, {"marker": m})
        assert res.ok()["requestId"] == res.request_id
        rids.append(res.request_id)
    cold, warm = rids

    records = json_records(logs, group, lambda rs: all(has_report(r)(rs) for r in rids))
    for r in records:
        if "type" in r:  # a platform record: the Telemetry API envelope
            assert set(r) == {"time", "type", "record"}, r
            assert ISO_MS_RE.match(r["time"]), r

    # INIT_START as platform.initStart
    (init,) = platform(records, "platform.initStart")
    assert init["record"]["initializationType"] == "on-demand"
    assert init["record"]["phase"] == "init"
    assert init["record"]["functionName"] == fn.name
    assert init["record"]["functionVersion"] == "$LATEST"
    assert init["record"]["runtimeVersion"] and init["record"]["runtimeVersionArn"].startswith("arn:aws:lambda:")

    for rid in rids:
        (start,) = platform(records, "platform.start", rid)
        assert start["record"] == {"requestId": rid, "version": "$LATEST"}
        (report,) = platform(records, "platform.report", rid)
        rec = report["record"]
        assert rec["status"] == "success" and "errorType" not in rec
        metrics = rec["metrics"]
        assert isinstance(metrics["durationMs"], (int, float)) and metrics["durationMs"] >= 0
        assert isinstance(metrics["billedDurationMs"], int) and metrics["billedDurationMs"] >= 1
        assert metrics["memorySizeMB"] == 128
        assert isinstance(metrics["maxMemoryUsedMB"], int)
        assert ("initDurationMs" in metrics) == (rid == cold), metrics
        assert records.index(start) < records.index(report)
    assert platform(records, "platform.report", cold)[0]["record"]["metrics"]["initDurationMs"] > 0
    assert records.index(platform(records, "platform.report", cold)[0]) < records.index(
        platform(records, "platform.start", warm)[0]
    )
    # DEBUG records stay out at SystemLogLevel INFO; no Text lines at all.
    kinds = {r.get("type") for r in records}
    assert not kinds & {"platform.runtimeDone", "platform.initRuntimeDone", "platform.initReport"}, kinds

    # Application logs: INFO filtered out by ApplicationLogLevel WARN, WARN kept with its fields.
    app = [r for r in records if "type" not in r]
    assert not [r for r in app if "info-" in str(r.get("message"))], app
    for marker, rid in zip(markers, rids):
        (warn,) = [r for r in app if r.get("message") == f"warn-{marker}"]
        assert warn["level"] == warn_level
        assert warn["requestId"] == rid
        assert ISO_MS_RE.match(warn["timestamp"]) or warn["timestamp"].endswith("Z"), warn
        # (Not checked against the report: the log task may read the runtime's last output
        # after the platform's END/REPORT, in Text and JSON alike.)
        assert records.index(platform(records, "platform.start", rid)[0]) < records.index(warn)


def test_json_logs_system_level_warn_keeps_only_failures(lam, logs, create_fn):
    fn = create_fn(
        code={"app.py": PY_LOGGING_APP},
        Timeout=1,
        LoggingConfig={"LogFormat": "JSON", "SystemLogLevel": "WARN"},
    )
    group = f"/aws/lambda/{fn.name}"
    # ApplicationLogLevel defaults to INFO with JSON logs.
    assert fn.config["LoggingConfig"]["ApplicationLogLevel"] == "INFO"
    assert fn.config["LoggingConfig"]["SystemLogLevel"] == "WARN"
    ok_marker, slow_marker = uuid.uuid4().hex, uuid.uuid4().hex
    ok = invoke(lam, fn.name, {"marker": ok_marker})
    ok.ok()
    slow = invoke(lam, fn.name, {"marker": slow_marker, "sleep": 3})
    slow.error("Sandbox.Timedout")

    # Records are written in order: once the timed-out report is there, so is everything before.
    records = json_records(logs, group, has_report(slow.request_id), timeout=15)
    kinds = [r.get("type") for r in records if "type" in r]
    assert "platform.start" not in kinds and "platform.initStart" not in kinds, kinds
    assert not platform(records, "platform.report", ok.request_id)
    (done,) = platform(records, "platform.runtimeDone", slow.request_id)
    assert done["record"]["status"] == "timeout"
    (report,) = platform(records, "platform.report", slow.request_id)
    assert report["record"]["status"] == "timeout"
    assert report["record"]["metrics"]["durationMs"] >= 1000
    assert records.index(done) < records.index(report)
    # The application's INFO records pass (ApplicationLogLevel INFO).
    messages = [r.get("message") for r in records if "type" not in r]
    assert f"info-{ok_marker}" in messages and f"warn-{slow_marker}" in messages, messages


def test_text_logs_keep_lambda_lines(lam, logs, create_fn):
    fn = create_fn(LoggingConfig={"LogFormat": "Text"})
    group = f"/aws/lambda/{fn.name}"
    assert fn.config["LoggingConfig"] == {"LogFormat": "Text", "LogGroup": group}
    rid = invoke(lam, fn.name).request_id
    events = wait_for_log_messages(logs, group, [f"REPORT RequestId: {rid}"])
    messages = [e["message"] for e in events]
    assert messages[0].startswith("INIT_START Runtime Version: "), messages
    assert f"START RequestId: {rid} Version: $LATEST" in messages
    assert f"END RequestId: {rid}" in messages
    report = next(m for m in messages if m.startswith(f"REPORT RequestId: {rid}\t"))
    assert re.search(r"\tDuration: \d+\.\d{2} ms\tBilled Duration: \d+ ms\tMemory Size: 128 MB\t", report), report
    assert "Init Duration: " in report
    assert not [m for m in messages if m.startswith("{")], messages


def test_logging_config_validation_and_defaults(lam, lam_novalidate, create_fn):
    fn = create_fn(LoggingConfig={"LogFormat": "JSON"})
    cfg = lam.get_function_configuration(FunctionName=fn.name)["LoggingConfig"]
    assert cfg == {
        "LogFormat": "JSON",
        "ApplicationLogLevel": "INFO",
        "SystemLogLevel": "INFO",
        "LogGroup": f"/aws/lambda/{fn.name}",
    }
    for bad in (
        {"LogFormat": "JSON", "SystemLogLevel": "ERROR"},  # DEBUG, INFO or WARN only
        {"LogFormat": "JSON", "ApplicationLogLevel": "warn"},
        {"LogFormat": "Json"},
        {"LogFormat": "JSON", "LogGroup": "bad group"},
    ):
        expect_client_error(
            lambda: lam_novalidate.update_function_configuration(FunctionName=fn.name, LoggingConfig=bad),
            400,
            "ValidationException",
        )
    assert lam.get_function_configuration(FunctionName=fn.name)["LoggingConfig"] == cfg
