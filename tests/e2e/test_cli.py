"""The human CLI (`nimbus deploy|invoke|ls|logs|rm`) and the unmodified AWS
CLI (awscli v1 from the e2e venv) against the same server."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from .conftest import (
    ROLE,
    b64sha256,
    aws_cli_path,
    expect_client_error,
    python_probe_zip,
    unique_name,
    wait_until,
)

APP_TEMPLATE = """\
def handler(event, context):
    print("cli-app {version} handling", context.aws_request_id)
    return {{"version": "{version}", "event": event}}
"""


# ---------------------------------------------------------------- helpers


@pytest.fixture
def nimbus(nimbus_bin, server):
    env = dict(os.environ, NIMBUS_ENDPOINT=server.url)

    def run(*args: str, input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(nimbus_bin), *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            stdin=None if input is not None else subprocess.DEVNULL,
        )

    run.env = env  # type: ignore[attr-defined]
    run.bin = nimbus_bin  # type: ignore[attr-defined]
    return run


def _ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, f"{proc.args} -> {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
    return proc


def _write_app(directory: Path, version: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "app.py").write_text(APP_TEMPLATE.format(version=version))
    (directory / "data").mkdir(exist_ok=True)
    (directory / "data" / "info.txt").write_text(f"data for {version}\n")


# ---------------------------------------------------------------- nimbus CLI


def test_deploy_directory_invoke_and_redeploy(nimbus, lam, create_fn, tmp_path):
    name = unique_name("cli-dir")
    create_fn.created.append(name)  # delete at teardown
    src = tmp_path / "fn"
    _write_app(src, "v1")

    _ok(nimbus("deploy", str(src), "--name", name, "--runtime", "python3.11", "--handler", "app.handler"))
    cfg = lam.get_function_configuration(FunctionName=name)
    assert (cfg["Runtime"], cfg["Handler"], cfg["State"]) == ("python3.11", "app.handler", "Active")
    first_sha = cfg["CodeSha256"]

    out = _ok(nimbus("invoke", name, '{"a": 1}')).stdout
    assert json.loads(out) == {"version": "v1", "event": {"a": 1}}

    _write_app(src, "v2")
    _ok(nimbus("deploy", str(src), "--name", name, "--runtime", "python3.11", "--handler", "app.handler"))
    cfg = lam.get_function_configuration(FunctionName=name)
    assert cfg["CodeSha256"] != first_sha

    out = _ok(nimbus("invoke", name, "-", input='{"b": 2}')).stdout
    assert json.loads(out) == {"version": "v2", "event": {"b": 2}}


def test_deploy_zip_with_options(nimbus, lam, create_fn, tmp_path):
    name = unique_name("cli-zip")
    create_fn.created.append(name)
    code = python_probe_zip()
    path = tmp_path / "function.zip"
    path.write_bytes(code)

    _ok(
        nimbus(
            "deploy", str(path), "--name", name, "--runtime", "python3.11", "--handler", "app.handler",
            "--memory", "256", "--timeout", "5", "--env", "GREETING=hi", "--env", "EXPR=a=b",
        )
    )
    cfg = lam.get_function_configuration(FunctionName=name)
    assert cfg["CodeSha256"] == b64sha256(code), "a .zip must be uploaded as-is"
    assert (cfg["MemorySize"], cfg["Timeout"]) == (256, 5)
    assert cfg["Environment"]["Variables"] == {"GREETING": "hi", "EXPR": "a=b"}

    result = json.loads(_ok(nimbus("invoke", name, '{"from": "cli"}')).stdout)
    assert result["event"] == {"from": "cli"}
    assert result["env"]["GREETING"] == "hi"
    assert str(result["ctx"]["memory_limit_in_mb"]) == "256"


def test_invoke_function_error_exits_1(nimbus, create_fn):
    fn = create_fn()
    proc = nimbus("invoke", fn.name, '{"raise": "cli boom"}')
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    err = json.loads(proc.stdout)
    assert err["errorType"] == "ValueError"
    assert err["errorMessage"] == "cli boom"


def test_ls_lists_functions_as_a_table(nimbus, create_fn):
    py = create_fn()
    node = create_fn(runtime="nodejs20.x", handler="index.handler", wait=True)
    out = _ok(nimbus("ls")).stdout
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) >= 3, out
    header = lines[0]
    assert py.name not in header and node.name not in header
    rows = {fn.name: [line for line in lines[1:] if fn.name in line] for fn in (py, node)}
    assert rows[py.name] and "python3.11" in rows[py.name][0], out
    assert rows[node.name] and "nodejs20.x" in rows[node.name][0], out


def test_logs_prints_function_output(nimbus, lam, create_fn):
    fn = create_fn()
    marker = f"cli-logs-{uuid.uuid4().hex}"
    res = lam.invoke(FunctionName=fn.name, Payload=json.dumps({"print": marker}).encode())
    res["Payload"].read()
    assert res["StatusCode"] == 200 and "FunctionError" not in res
    rid = res["ResponseMetadata"]["RequestId"]

    def logs_contain_marker():
        proc = nimbus("logs", fn.name, timeout=30)
        return proc.stdout if proc.returncode == 0 and marker in proc.stdout and f"REPORT RequestId: {rid}" in proc.stdout else None

    out = wait_until(logs_contain_marker, timeout=10, interval=0.5, message="marker in `nimbus logs`")
    assert f"START RequestId: {rid}" in out
    assert f"END RequestId: {rid}" in out


def test_logs_follow(nimbus, lam, create_fn):
    fn = create_fn()
    lam.invoke(FunctionName=fn.name, Payload=b"{}")["Payload"].read()  # the log group exists before following
    marker = f"cli-follow-{uuid.uuid4().hex}"
    proc = subprocess.Popen(
        [str(nimbus.bin), "logs", fn.name, "-f"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=nimbus.env,
    )
    lines: queue.Queue = queue.Queue()

    def pump():
        for line in proc.stdout:  # type: ignore[union-attr]
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    try:
        seen = []
        deadline = time.monotonic() + 20
        next_invoke = 0.0
        found = False
        while time.monotonic() < deadline and not found:
            if time.monotonic() >= next_invoke:
                res = lam.invoke(FunctionName=fn.name, Payload=json.dumps({"print": marker}).encode())
                res["Payload"].read()
                assert res["StatusCode"] == 200
                next_invoke = time.monotonic() + 3
            try:
                line = lines.get(timeout=0.2)
            except queue.Empty:
                continue
            if line is None:
                pytest.fail(f"`nimbus logs -f` exited early with {proc.wait()}: {proc.stderr.read()}")  # type: ignore[union-attr]
            seen.append(line)
            found = marker in line
        assert found, f"marker not followed within 20 s; got: {''.join(seen)[-2000:]}"
        assert proc.poll() is None, "`logs -f` must keep running"
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_rm(nimbus, lam, create_fn):
    fn = create_fn()
    _ok(nimbus("rm", fn.name))
    expect_client_error(lambda: lam.get_function(FunctionName=fn.name), 404, "ResourceNotFoundException")
    proc = nimbus("rm", fn.name)
    assert proc.returncode != 0
    assert proc.stderr.strip(), "rm of a missing function must explain itself on stderr"


# ---------------------------------------------------------------- AWS CLI


@pytest.fixture
def aws(server, tmp_path):
    path = aws_cli_path()
    if path is None:
        pytest.skip("aws CLI not installed in the e2e venv")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=str(tmp_path / "aws-config-none"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "aws-credentials-none"),
        AWS_PAGER="",
    )
    version = subprocess.run([str(path), "--version"], capture_output=True, text=True, env=env, timeout=60)
    v2 = "aws-cli/2" in (version.stdout + version.stderr)

    def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(path), "--endpoint-url", server.url, "--output", "json", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            stdin=subprocess.DEVNULL,
            cwd=tmp_path,
        )

    # awscli v1 sends --payload as given; v2 needs to be told it is raw text
    run.binary_format_args = ["--cli-binary-format", "raw-in-base64-out"] if v2 else []  # type: ignore[attr-defined]
    return run


def test_aws_cli_function_lifecycle(aws, create_fn, tmp_path):
    name = unique_name("awscli")
    create_fn.created.append(name)
    zip_path = tmp_path / "fn.zip"
    code = python_probe_zip()
    zip_path.write_bytes(code)

    created = json.loads(_ok(aws(
        "lambda", "create-function", "--function-name", name, "--runtime", "python3.11", "--role", ROLE,
        "--handler", "app.handler", "--zip-file", f"fileb://{zip_path}", "--timeout", "5",
    )).stdout)
    assert created["FunctionName"] == name
    assert created["CodeSha256"] == b64sha256(code)

    _ok(aws("lambda", "wait", "function-active-v2", "--function-name", name))

    marker = f"awscli-marker-{uuid.uuid4().hex}"
    outfile = tmp_path / "out.json"
    inv = _ok(aws(
        "lambda", "invoke", "--function-name", name, "--payload", json.dumps({"print": marker, "k": "v"}),
        *aws.binary_format_args, str(outfile),
    ))
    printed = json.loads(inv.stdout)
    assert printed["StatusCode"] == 200
    assert printed.get("ExecutedVersion") == "$LATEST"
    assert "FunctionError" not in printed
    result = json.loads(outfile.read_text())
    assert result["event"] == {"print": marker, "k": "v"}

    listed = json.loads(_ok(aws("lambda", "list-functions")).stdout)
    assert name in {f["FunctionName"] for f in listed["Functions"]}

    got = json.loads(_ok(aws("lambda", "get-function", "--function-name", name)).stdout)
    assert got["Configuration"]["FunctionName"] == name
    assert got["Configuration"]["CodeSha256"] == b64sha256(code)
    assert got["Code"]["Location"]

    def filtered():
        proc = aws("logs", "filter-log-events", "--log-group-name", f"/aws/lambda/{name}")
        if proc.returncode != 0:
            return None
        events = json.loads(proc.stdout)["events"]
        return events if any(marker in e["message"] for e in events) else None

    events = wait_until(filtered, timeout=15, interval=0.5, message="marker via aws logs filter-log-events")
    assert any(e["message"].startswith("START RequestId:") for e in events)

    _ok(aws("lambda", "delete-function", "--function-name", name))
    missing = aws("lambda", "get-function", "--function-name", name)
    assert missing.returncode == 255
    assert "ResourceNotFoundException" in missing.stderr


def test_aws_cli_invoke_function_error_still_exits_0(aws, create_fn, tmp_path):
    fn = create_fn()
    outfile = tmp_path / "err.json"
    proc = _ok(aws(
        "lambda", "invoke", "--function-name", fn.name, "--payload", json.dumps({"raise": "cli err"}),
        *aws.binary_format_args, str(outfile),
    ))
    printed = json.loads(proc.stdout)
    assert printed["StatusCode"] == 200
    assert printed["FunctionError"] == "Unhandled"
    assert json.loads(outfile.read_text())["errorMessage"] == "cli err"
