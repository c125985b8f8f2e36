"""Invoking Python functions: invocation types, logs, context, environment,
warm reuse, error shapes, timeouts, crashes, isolation, managed boto3 and
concurrency."""

from __future__ import annotations

import base64
import json
import os
import re
import sys
import threading
import time
import uuid

import pytest

from .conftest import (
    STREAM_NAME_RE,
    UUID_RE,
    function_arn,
    invoke,
    pid_alive,
    wait_until,
)

REPORT_RE = re.compile(
    r"REPORT RequestId: (?P<rid>[0-9a-f-]{36})\tDuration: (?P<duration>\d+\.\d{2}) ms\t"
    r"Billed Duration: (?P<billed>\d+) ms\tMemory Size: (?P<memory>\d+) MB\tMax Memory Used: (?P<used>\d+) MB"
)


# ---------------------------------------------------------------- invocation types


def test_request_response_returns_result_and_headers(lam, create_fn):
    fn = create_fn()
    res = invoke(lam, fn.name, {"hello": "world", "n": [1, 2, 3]})
    assert res.status == 200
    assert res.http_status == 200
    assert res.executed_version == "$LATEST"
    assert res.headers.get("x-amz-executed-version") == "$LATEST"
    assert res.function_error is None
    assert "LogResult" not in res.response  # only with LogType=Tail
    assert UUID_RE.match(res.request_id), res.request_id
    body = res.ok()
    assert body["event"] == {"hello": "world", "n": [1, 2, 3]}
    assert body["count"] == 1


def test_non_object_events_are_passed_through(lam, create_fn):
    fn = create_fn()
    assert invoke(lam, fn.name, "just a string").ok()["event"] == {"value": "just a string"}
    assert invoke(lam, fn.name, [1, 2]).ok()["event"] == {"value": [1, 2]}
    assert invoke(lam, fn.name, 42).ok()["event"] == {"value": 42}


def test_dry_run_is_204_and_does_not_run(lam, create_fn):
    fn = create_fn()
    res = invoke(lam, fn.name, {"x": 1}, InvocationType="DryRun")
    assert res.status == 204
    assert res.body == b""
    assert invoke(lam, fn.name).ok()["count"] == 1, "DryRun must not execute the function"


def test_event_invocation_is_202_and_runs_asynchronously(lam, create_fn, tmp_path):
    fn = create_fn(Timeout=10)
    target = tmp_path / "side-effect.txt"
    token = uuid.uuid4().hex
    res = invoke(lam, fn.name, {"sleep": 2, "write": {"path": str(target), "content": token}}, InvocationType="Event")
    assert res.status == 202
    assert res.body == b""
    assert res.function_error is None
    assert not target.exists(), "Event invoke answered only after the function finished"
    wait_until(lambda: target.exists() and target.read_text() == token, timeout=15, message="async side effect")


# ---------------------------------------------------------------- logs in the response


def test_tail_log_has_platform_lines_and_function_output(lam, create_fn):
    fn = create_fn()
    marker = f"print-marker-{uuid.uuid4().hex}"
    cold = invoke(lam, fn.name, {"print": marker}, LogType="Tail")
    cold.ok()
    log = cold.log
    rid = cold.request_id
    assert len(base64.b64decode(cold.response["LogResult"])) <= 4096
    assert f"START RequestId: {rid} Version: $LATEST" in log, log
    assert f"END RequestId: {rid}" in log, log
    assert marker in log, log
    m = REPORT_RE.search(log)
    assert m, log
    assert m["rid"] == rid
    assert m["memory"] == "128"
    assert int(m["billed"]) >= int(float(m["duration"]))
    assert int(m["used"]) > 0
    report_line = log[m.start():].splitlines()[0]
    assert re.search(r"\tInit Duration: \d+\.\d{2} ms", report_line), report_line
    assert log.index(f"START RequestId: {rid}") < log.index(marker) < log.index(f"END RequestId: {rid}")

    warm = invoke(lam, fn.name, {"print": marker + "-warm"}, LogType="Tail")
    warm.ok()
    wlog = warm.log
    assert f"START RequestId: {warm.request_id}" in wlog
    assert f"REPORT RequestId: {warm.request_id}" in wlog
    assert marker + "-warm" in wlog
    warm_report = wlog[wlog.index(f"REPORT RequestId: {warm.request_id}"):].splitlines()[0]
    assert "Init Duration" not in warm_report, "Init Duration only on the cold invoke"
    assert rid not in wlog, "Tail log must only contain this invocation"


def test_logging_module_uses_lambda_text_format(lam, create_fn):
    fn = create_fn()
    marker = f"logger-marker-{uuid.uuid4().hex}"
    res = invoke(lam, fn.name, {"log": marker}, LogType="Tail")
    res.ok()
    pattern = (
        r"\[INFO\]\t\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z\t" + re.escape(res.request_id) + r"\t" + re.escape(marker)
    )
    assert re.search(pattern, res.log), res.log


# ---------------------------------------------------------------- context and environment


def test_context_object(lam, create_fn):
    fn = create_fn()
    res = invoke(lam, fn.name)
    ctx = res.ok()["ctx"]
    assert ctx["function_name"] == fn.name
    assert ctx["function_version"] == "$LATEST"
    assert ctx["invoked_function_arn"] == function_arn(fn.name)
    assert str(ctx["memory_limit_in_mb"]) == "128"
    assert ctx["aws_request_id"] == res.request_id
    assert ctx["log_group_name"] == f"/aws/lambda/{fn.name}"
    assert STREAM_NAME_RE.match(ctx["log_stream_name"]), ctx["log_stream_name"]
    assert 0 < ctx["remaining_ms"] <= 3000
    assert ctx["client_context"] is None


def test_client_context_reaches_the_handler(lam, create_fn):
    fn = create_fn()
    client_context = {
        "client": {
            "installation_id": "install-1",
            "app_title": "e2e",
            "app_version_name": "1.0",
            "app_version_code": "1",
            "app_package_name": "dev.nimbus.e2e",
        },
        "custom": {"user": "alice", "nested": {"k": [1, 2]}},
        "env": {"platform": "linux", "locale": "en_US"},
    }
    encoded = base64.b64encode(json.dumps(client_context).encode()).decode()
    ctx = invoke(lam, fn.name, ClientContext=encoded).ok()["ctx"]
    assert ctx["client_context"] == {"custom": client_context["custom"], "env": client_context["env"]}


def test_environment_variables(lam, create_fn):
    fn = create_fn(env={"USER_VAR": "user-value", "WITH_EQUALS": "a=b=c"})
    result = invoke(lam, fn.name).ok()
    env = result["env"]
    name = fn.name
    assert env["USER_VAR"] == "user-value"
    assert env["WITH_EQUALS"] == "a=b=c"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == name
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "128"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == f"/aws/lambda/{name}"
    assert STREAM_NAME_RE.match(env["AWS_LAMBDA_LOG_STREAM_NAME"])
    assert env["AWS_LAMBDA_LOG_STREAM_NAME"] == result["ctx"]["log_stream_name"]
    assert env["_HANDLER"] == "app.handler"
    assert env["LAMBDA_TASK_ROOT"]
    assert env["LAMBDA_RUNTIME_DIR"]
    assert re.match(r"^[A-Za-z0-9.\-]+:\d+$", env["AWS_LAMBDA_RUNTIME_API"]), env["AWS_LAMBDA_RUNTIME_API"]
    assert env["AWS_REGION"] == "us-east-1"
    assert env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.11"
    assert env["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand"
    assert env["TZ"] == ":UTC"
    # the runtime works from the unpacked package
    assert os.path.realpath(result["cwd"]) == os.path.realpath(env["LAMBDA_TASK_ROOT"])
    assert "app.py" in result["task_root_files"]


# ---------------------------------------------------------------- warm reuse


def test_globals_persist_across_warm_invocations(lam, create_fn):
    fn = create_fn()
    results = [invoke(lam, fn.name, {"i": i}).ok() for i in range(3)]
    assert [r["count"] for r in results] == [1, 2, 3]
    assert len({r["init_id"] for r in results}) == 1, "init code must run once per environment"
    assert len({r["pid"] for r in results}) == 1
    assert len({r["ctx"]["log_stream_name"] for r in results}) == 1


# ---------------------------------------------------------------- function errors


def test_handler_exception_shape(lam, create_fn):
    fn = create_fn()
    warm = invoke(lam, fn.name).ok()
    res = invoke(lam, fn.name, {"raise": "bad input"}, LogType="Tail")
    err = res.error("ValueError")
    assert err["errorMessage"] == "bad input"
    assert err["requestId"] == res.request_id
    assert isinstance(err["stackTrace"], list) and err["stackTrace"]
    assert all(isinstance(frame, str) for frame in err["stackTrace"])
    assert any("app.py" in frame and "handler" in frame for frame in err["stackTrace"]), err["stackTrace"]
    assert "[ERROR] ValueError: bad input" in res.log, res.log
    assert f"REPORT RequestId: {res.request_id}" in res.log
    # a handler exception does not reset the environment
    after = invoke(lam, fn.name).ok()
    assert after["init_id"] == warm["init_id"]
    assert after["count"] == 3


BROKEN_CODE = {
    "missing-module": ({"app.py": "def handler(e, c):\n    return 1\n"}, "missing.handler", "Runtime.ImportModuleError",
                       "Unable to import module 'missing'"),
    "missing-dependency": ({"app.py": "import not_a_real_dependency_xyz\n\ndef handler(e, c):\n    return 1\n"}, "app.handler",
                           "Runtime.ImportModuleError",
                           "Unable to import module 'app': No module named 'not_a_real_dependency_xyz'"),
    "missing-handler": ({"app.py": "def other(e, c):\n    return 1\n"}, "app.nope", "Runtime.HandlerNotFound",
                        "Handler 'nope' missing on module 'app'"),
    "syntax-error": ({"app.py": "def handler(event, context)\n    return 1\n"}, "app.handler", "Runtime.UserCodeSyntaxError",
                     None),
}


@pytest.mark.parametrize("case", sorted(BROKEN_CODE))
def test_init_errors(lam, create_fn, case):
    files, handler, error_type, message_prefix = BROKEN_CODE[case]
    fn = create_fn(code=files, handler=handler)
    for _ in range(2):  # init is retried on the next invoke, with the same outcome
        res = invoke(lam, fn.name)
        err = res.error(error_type)
        assert err.get("errorMessage"), err
        if message_prefix:
            assert err["errorMessage"].startswith(message_prefix), err


def test_timeout_is_sandbox_timedout_and_environment_is_replaced(lam, create_fn):
    fn = create_fn(Timeout=1)
    before = invoke(lam, fn.name).ok()
    res = invoke(lam, fn.name, {"sleep": 5}, LogType="Tail")
    err = res.error("Sandbox.Timedout")
    assert "Task timed out after 1.0" in err["errorMessage"], err
    assert "Task timed out after 1.0" in res.log, res.log
    assert f"REPORT RequestId: {res.request_id}" in res.log
    after = invoke(lam, fn.name).ok()
    assert after["count"] == 1, "a timed-out environment must not be reused"
    assert after["init_id"] != before["init_id"]
    wait_until(lambda: not pid_alive(before["pid"]), timeout=5, message="timed-out runtime process to be killed")


def test_runtime_crash_is_exit_error_and_next_invoke_works(lam, create_fn):
    fn = create_fn()
    before = invoke(lam, fn.name).ok()
    res = invoke(lam, fn.name, {"exit": 3})
    err = res.error("Runtime.ExitError")
    assert "exit status 3" in err["errorMessage"], err
    after = invoke(lam, fn.name).ok()
    assert after["count"] == 1
    assert after["init_id"] != before["init_id"]


# ---------------------------------------------------------------- isolation from the host


def test_host_site_packages_are_not_importable(lam, create_fn):
    fn = create_fn()
    result = invoke(lam, fn.name, {"imports": ["pytest", "_pytest", "pluggy", "json"]}).ok()
    assert result["imports"]["json"] == "ok"
    for mod in ("pytest", "_pytest", "pluggy"):  # installed only in the test venv
        assert result["imports"][mod] == "ModuleNotFoundError", result["imports"]
    venv = os.path.realpath(sys.prefix)
    leaked = [p for p in result["sys_path"] if p and os.path.realpath(p).startswith(venv + os.sep)]
    assert not leaked, f"test venv paths on the function's sys.path: {leaked}"


BOTO3_APP = """\
import os
import boto3
import botocore

def handler(event, context):
    client = boto3.client("lambda")  # no endpoint, region or credentials given
    names = []
    for page in client.get_paginator("list_functions").paginate():
        names.extend(f["FunctionName"] for f in page["Functions"])
    return {
        "names": names,
        "endpoint": client.meta.endpoint_url,
        "boto3_file": boto3.__file__,
        "botocore_file": botocore.__file__,
    }
"""


def test_managed_boto3_reaches_nimbus(lam, create_fn, server):
    fn = create_fn(code={"app.py": BOTO3_APP}, Timeout=30)
    deadline = time.monotonic() + 180
    while True:
        res = invoke(lam, fn.name)
        if res.function_error and res.json.get("errorType") == "Runtime.ImportModuleError":
            if time.monotonic() > deadline:
                pytest.skip(f"managed boto3 never became importable: {res.json.get('errorMessage')}")
            time.sleep(3)
            continue
        break
    result = res.ok()
    assert fn.name in result["names"]
    assert result["endpoint"].rstrip("/") == server.url
    venv = os.path.realpath(sys.prefix)
    assert not os.path.realpath(result["boto3_file"]).startswith(venv + os.sep), "boto3 came from the test venv"


# ---------------------------------------------------------------- concurrency


def test_concurrent_invocations_use_parallel_environments(lam, create_fn):
    fn = create_fn(Timeout=10)
    results: list = [None] * 8
    errors: list = []

    def worker(i):
        try:
            results[i] = invoke(lam, fn.name, {"sleep": 0.5, "i": i}).ok()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert all(r is not None for r in results)
    assert sorted(r["event"]["i"] for r in results) == list(range(8))

    streams: dict[str, list[tuple[float, float]]] = {}
    for r in results:
        streams.setdefault(r["ctx"]["log_stream_name"], []).append((r["started"], r["finished"]))
    assert len(streams) >= 2, f"all 8 invocations ran in one environment: {list(streams)}"
    # one invocation at a time per environment
    for stream, spans in streams.items():
        spans.sort()
        for (s1, e1), (s2, e2) in zip(spans, spans[1:]):
            assert s2 >= e1 - 0.01, f"overlapping invocations in environment {stream}"
    # and several environments really ran at the same time
    points = sorted([(s, 1) for r in results for s in [r["started"]]] + [(r["finished"], -1) for r in results])
    running = peak = 0
    for _, delta in points:
        running += delta
        peak = max(peak, running)
    assert peak >= 2, "no two invocations overlapped in time"


def test_environments_get_lambdas_open_file_limit(lam, create_fn):
    # 1024, as on Lambda, however many the server itself may open.
    code = {"app.py": "import resource\ndef handler(e, c):\n    return resource.getrlimit(resource.RLIMIT_NOFILE)\n"}
    fn = create_fn(code=code, Handler="app.handler")
    assert invoke(lam, fn.name, {}).ok() == [1024, 1024]
