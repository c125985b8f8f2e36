"""CloudWatch Logs API beyond reading: filter patterns (terms, phrases, ?alternatives,
-exclusions, %regex%, JSON and space-delimited patterns) over real function output,
retention policies, AWS' errors, and the FilterLogEvents loop `aws logs tail` runs."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
import uuid

import pytest

from .conftest import (
    DEFAULT_RUNTIME,
    ROLE,
    all_log_events,
    aws_cli_path,
    expect_client_error,
    invoke,
    make_zip,
    unique_name,
    wait_active,
    wait_for_log_messages,
)

APP = """\
import json


def handler(event, context):
    for line in event["lines"]:
        print(line if isinstance(line, str) else json.dumps(line), flush=True)
    return {"printed": len(event["lines"])}
"""

RETENTION_VALUES = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192,
                    2557, 2922, 3288, 3653]
INVALID_RETENTION = f"Invalid retention value. Valid values are: [{', '.join(map(str, RETENTION_VALUES))}]"


class Printed:
    """One function whose single invocation printed text, JSON and space-delimited lines."""

    def __init__(self, name: str, marker: str):
        self.name = name
        self.group = f"/aws/lambda/{name}"
        m = self.marker = marker
        self.error_disk = f"ERROR {m} disk full"
        self.warn = f"WARN {m} slow   request"
        self.info = f"INFO {m} all good"
        self.error_args = f"ERROR {m} ARGUMENTS missing"
        self.json_error = {"marker": m, "level": "ERROR", "latency": 1500,
                           "user": {"id": 7, "tags": ["a", "b"]}, "ok": False, "note": None}
        self.json_info = {"marker": m, "level": "INFO", "latency": 20.5,
                          "user": {"id": 8, "tags": ["c"]}, "ok": True}
        self.access_html = f'{m} 10.0.0.1 GET /index.html "Mozilla/5.0 (X11)" 404 1534'
        self.access_js = f'{m} 10.0.0.2 GET /app.js "curl/8.0" 200 99'
        self.lines = [self.error_disk, self.warn, self.info, self.error_args, self.json_error, self.json_info,
                      self.access_html, self.access_js]

    def text(self, line) -> str:
        return line if isinstance(line, str) else json.dumps(line)


@pytest.fixture(scope="module")
def printed(lam, logs):
    name = unique_name("logs-api")
    lam.create_function(FunctionName=name, Runtime=DEFAULT_RUNTIME, Role=ROLE, Handler="app.handler",
                        Code={"ZipFile": make_zip({"app.py": APP})})
    try:
        wait_active(lam, name)
        p = Printed(name, "m" + uuid.uuid4().hex[:12])
        assert invoke(lam, name, {"lines": p.lines}).ok() == {"printed": len(p.lines)}
        wait_for_log_messages(logs, p.group, [p.text(line) for line in p.lines] + ["REPORT RequestId"])
        yield p
    finally:
        with contextlib.suppress(Exception):
            lam.delete_function(FunctionName=name)


def filtered(logs, p: Printed, pattern: str, **kwargs) -> list[str]:
    return [e["message"] for e in all_log_events(logs, p.group, filterPattern=pattern, **kwargs)]


def test_unstructured_terms_phrases_alternatives_and_exclusions(logs, printed):
    p, m = printed, printed.marker
    json_error = p.text(p.json_error)
    # All terms must appear, case-sensitively, anywhere in the message.
    assert filtered(logs, p, f"ERROR {m}") == [p.error_disk, p.error_args, json_error]
    assert filtered(logs, p, f"error {m}") == []
    assert filtered(logs, p, f"ERROR ARGUMENTS {m}") == [p.error_args]
    # ?term: any of them.
    assert filtered(logs, p, "?WARN ?ARGUMENTS") == [p.warn, p.error_args]
    # -term: excluded.
    assert filtered(logs, p, f"{m} -ERROR -INFO") == [p.warn, p.access_html, p.access_js]
    # "exact phrase" (spaces and punctuation need the quotes).
    assert filtered(logs, p, '"disk full"') == [p.error_disk]
    assert filtered(logs, p, '"full disk"') == []
    assert filtered(logs, p, '"/index.html"') == [p.access_html]
    # The platform's own lines are events like any other.
    starts = filtered(logs, p, '"START RequestId"')
    assert len(starts) == 1 and starts[0].startswith("START RequestId: ")


def test_regular_expressions(logs, printed):
    p = printed
    assert filtered(logs, p, r"%slow\s+request%") == [p.warn]
    assert filtered(logs, p, r"%^ERROR\s%") == [p.error_disk, p.error_args]
    assert filtered(logs, p, rf"%{p.marker}\s\d{{1,3}}\.\d{{1,3}}\.\d{{1,3}}\.\d{{1,3}}%") == \
        [p.access_html, p.access_js]
    assert filtered(logs, p, "%[Ww]arn|WARN%") == [p.warn]


def test_json_patterns(logs, printed):
    p, m = printed, printed.marker
    json_error, json_info = p.text(p.json_error), p.text(p.json_info)
    assert filtered(logs, p, '{ $.level = "ERROR" && $.latency > 1000 }') == [json_error]
    assert filtered(logs, p, "{ $.latency <= 20.5 }") == [json_info]
    assert filtered(logs, p, '{ $.user.tags[1] = "b" }') == [json_error]
    assert filtered(logs, p, "{ $.user.id != 7 }") == [json_info]
    assert filtered(logs, p, "{ $.note IS NULL }") == [json_error]
    assert filtered(logs, p, "{ $.ok IS FALSE }") == [json_error]
    assert filtered(logs, p, "{ $.ok IS TRUE }") == [json_info]
    assert filtered(logs, p, f"{{ $.note NOT EXISTS && $.marker = {m} }}") == [json_info]
    assert filtered(logs, p, "{ $.level = ERR* || $.latency < 50 }") == [json_error, json_info]
    assert filtered(logs, p, "{ ($.level = INFO || $.level = ERROR) && $.user.id = 8 }") == [json_info]
    assert filtered(logs, p, r"{ $.level = %^ERR% }") == [json_error]
    # A selector that points to an object matches neither = nor !=.
    assert filtered(logs, p, '{ $.user = "x" || $.user != "x" }') == []


def test_space_delimited_patterns(logs, printed):
    p, m = printed, printed.marker
    assert filtered(logs, p, f"[marker = {m}, ip, method, path = *.html, agent, status = 4*, bytes > 1000]") \
        == [p.access_html]
    assert filtered(logs, p, f"[marker = {m}, ..., status = 200, bytes]") == [p.access_js]
    assert filtered(logs, p, f'[marker = {m}, ..., agent = "curl*", status, bytes]') == [p.access_js]
    assert filtered(logs, p, f"[marker = {m}, ip, ..., status != 200 && bytes >= 1534, bytes]") == [p.access_html]
    # The field count must match: the text lines have four fields (runs of spaces separate one).
    assert filtered(logs, p, f"[level, marker = {m}, w3, w4]") == [p.error_disk, p.warn, p.info, p.error_args]
    assert filtered(logs, p, f"[level, marker = {m}, w3]") == []
    assert filtered(logs, p, f"[level = ERROR || level = WARN, marker = {m}, ...]") \
        == [p.error_disk, p.warn, p.error_args]


def test_filtered_pages_follow_next_tokens(logs, printed):
    p, m = printed, printed.marker
    everything = filtered(logs, p, m)
    assert len(everything) == len(p.lines)
    assert filtered(logs, p, m, limit=1) == everything
    assert filtered(logs, p, f"{{ $.marker = {m} }}", limit=1) == [p.text(p.json_error), p.text(p.json_info)]
    first = logs.filter_log_events(logGroupName=p.group, filterPattern=m, limit=3)
    assert [e["message"] for e in first["events"]] == everything[:3]
    assert first.get("nextToken")
    rest = logs.filter_log_events(logGroupName=p.group, filterPattern=m, nextToken=first["nextToken"])
    assert [e["message"] for e in rest["events"]] == everything[3:]
    assert "nextToken" not in rest


def test_invalid_filter_patterns(logs, printed):
    for pattern, message in [
        ("user@example.com", "Invalid character(s) in term 'user@example.com'"),
        ('""', "Invalid character(s) in term '\"\"'"),
        ("{ $.level = ERROR", "If a filter pattern starts with '{' it must end with '}'"),
        ("[a, b", "If a filter pattern starts with '[' it must end with ']'"),
        ('{ $.latency > "fast" }', "Invalid character(s) in term '\"fast\"'"),
        ("%something!%", "Invalid character(s) in term '%something!%'"),
        ("{ $.level EXISTS }", "Invalid filter pattern"),
        ("{ $.a = 1 && }", "Invalid filter pattern"),
    ]:
        err = expect_client_error(
            lambda: logs.filter_log_events(logGroupName=printed.group, filterPattern=pattern),
            400, "InvalidParameterException",
        )
        assert err.response["Error"]["Message"] == message, pattern


def test_retention_policies(logs, printed):
    group = printed.group

    def described() -> dict:
        groups = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
        return next(g for g in groups if g["logGroupName"] == group)

    assert "retentionInDays" not in described()
    for days in (1, 731, 3653, 14):
        logs.put_retention_policy(logGroupName=group, retentionInDays=days)
        assert described()["retentionInDays"] == days

    for days in (0, 2, 730, 3654):
        err = expect_client_error(lambda: logs.put_retention_policy(logGroupName=group, retentionInDays=days),
                                  400, "InvalidParameterException")
        assert err.response["Error"]["Message"] == INVALID_RETENTION
    assert described()["retentionInDays"] == 14, "a rejected value leaves the policy as it was"

    # Events are well within 14 days: nothing is lost while the policy is set.
    assert len(filtered(logs, printed, printed.marker)) == len(printed.lines)

    logs.delete_retention_policy(logGroupName=group)
    assert "retentionInDays" not in described()
    logs.delete_retention_policy(logGroupName=group)  # idempotent, as on AWS

    missing = f"/aws/lambda/e2e-no-such-function-{uuid.uuid4().hex[:8]}"
    expect_client_error(lambda: logs.put_retention_policy(logGroupName=missing, retentionInDays=7),
                        400, "ResourceNotFoundException")
    expect_client_error(lambda: logs.delete_retention_policy(logGroupName=missing),
                        400, "ResourceNotFoundException")


def test_retention_on_a_created_group(logs):
    group = f"/e2e/retention-{uuid.uuid4().hex[:8]}"
    logs.create_log_group(logGroupName=group)
    try:
        logs.put_retention_policy(logGroupName=group, retentionInDays=1)
        [g] = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
        assert g["retentionInDays"] == 1
    finally:
        logs.delete_log_group(logGroupName=group)


def tail_events(logs, group: str, since_ms: int, pattern: str | None) -> list[dict]:
    """What `aws logs tail GROUP --since … [--filter-pattern …]` (AWS CLI v2) requests: the
    filter_log_events paginator with interleaved=True from startTime."""
    kwargs = {"logGroupName": group, "interleaved": True, "startTime": since_ms}
    if pattern is not None:
        kwargs["filterPattern"] = pattern
    return [e for page in logs.get_paginator("filter_log_events").paginate(**kwargs) for e in page["events"]]


def tail_follow(logs, group: str, since_ms: int, pattern: str, want: int, timeout: float = 10.0) -> list[dict]:
    """`aws logs tail --follow`: follow nextToken while there is one, then poll again from the newest
    timestamp seen, dropping events already yielded."""
    kwargs = {"logGroupName": group, "interleaved": True, "startTime": since_ms, "filterPattern": pattern}
    seen: dict[int, set[str]] = {}
    out: list[dict] = []
    deadline = time.monotonic() + timeout
    while len(out) < want and time.monotonic() < deadline:
        response = logs.filter_log_events(**kwargs)
        for e in response["events"]:
            if e["eventId"] not in seen.setdefault(e["timestamp"], set()):
                seen[e["timestamp"]].add(e["eventId"])
                out.append(e)
        if "nextToken" in response:
            kwargs["nextToken"] = response["nextToken"]
        else:
            if seen:
                kwargs["startTime"] = max(seen)
            kwargs.pop("nextToken", None)
            time.sleep(0.2)
    return out


def test_aws_logs_tail_requests_still_work(lam, logs, printed):
    p, m = printed, printed.marker
    since = int(time.time() * 1000) - 600_000
    everything = tail_events(logs, p.group, since, None)
    messages = [e["message"] for e in everything]
    assert any(msg.startswith("START RequestId") for msg in messages)
    assert [msg for msg in messages if m in msg] == [p.text(line) for line in p.lines]
    assert [e["message"] for e in tail_events(logs, p.group, since, "ERROR")] == \
        [p.error_disk, p.error_args, p.text(p.json_error)]
    assert tail_events(logs, p.group, int(time.time() * 1000) + 600_000, None) == []

    # --follow sees new lines as they come, through the filter (another marker, so the other tests'
    # expectations hold in any order).
    m2 = "n" + uuid.uuid4().hex[:12]
    later = f"ERROR {m2} later line"
    assert invoke(lam, p.name, {"lines": [f"INFO {m2} ignored", later]}).ok() == {"printed": 2}
    followed = tail_follow(logs, p.group, since, "ERROR", want=4)
    assert [e["message"] for e in followed] == [p.error_disk, p.error_args, p.text(p.json_error), later]


def test_aws_cli_logs_tail(server, printed, tmp_path):
    path = aws_cli_path()
    if path is None:
        pytest.skip("aws CLI not installed in the e2e venv")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1",
               AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
               AWS_PAGER="")

    def aws(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(path), "--endpoint-url", server.url, *args], capture_output=True, text=True,
                              env=env, timeout=120, stdin=subprocess.DEVNULL, cwd=tmp_path)

    out = aws("logs", "filter-log-events", "--log-group-name", printed.group,
              "--filter-pattern", f"{{ $.marker = {printed.marker} && $.latency > 1000 }}")
    assert out.returncode == 0, out.stderr
    assert [e["message"] for e in json.loads(out.stdout)["events"]] == [printed.text(printed.json_error)]

    version = aws("--version")
    if "aws-cli/2" not in version.stdout + version.stderr:
        pytest.skip("`aws logs tail` came with AWS CLI v2; its requests are covered above")
    out = aws("logs", "tail", printed.group, "--since", "1h", "--format", "short",
              "--filter-pattern", f"ERROR {printed.marker}")
    assert out.returncode == 0, out.stderr
    assert printed.error_disk in out.stdout and printed.error_args in out.stdout
    assert printed.warn not in out.stdout
