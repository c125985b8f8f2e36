"""CloudWatch Logs subset (JSON 1.1, Logs_20140328.*) for function logs:
one group per function, one stream per execution environment."""

from __future__ import annotations

import time
import uuid

from .conftest import (
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
