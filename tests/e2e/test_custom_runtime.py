"""Custom runtimes (provided.al2023 / provided.al2): an executable `bootstrap`
in the zip speaks the Runtime API itself. Covers a bash runtime (no curl, via
/dev/tcp), a Python-stdlib runtime that reports the raw Runtime API headers,
the real awslambdaric (vendored into the zip), the Rust lambda_runtime fixture
binary, and bootstrap failures."""

from __future__ import annotations

import base64
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from .conftest import (
    REPO_ROOT,
    bash_runtime_zip,
    function_arn,
    invoke,
    make_zip,
    python_custom_runtime_zip,
    read_function_dir,
    real_python,
    resolve_rust_fixture_bin,
)

RIC_VERSION = "4.2.2"


# ---------------------------------------------------------------- bash runtime


def test_bash_bootstrap_runtime(lam, create_fn):
    fn = create_fn(code=bash_runtime_zip(), runtime="provided.al2023", handler="function.handler")
    res = invoke(lam, fn.name, {"x": 1, "s": "text"}, LogType="Tail")
    body = res.ok()
    assert body["runtime"] == "bash"
    assert body["event"] == {"x": 1, "s": "text"}
    assert body["handler"] == "function.handler"
    assert body["function_name"] == fn.name
    assert body["request_id"] == res.request_id
    assert f"bash runtime handling {res.request_id}" in res.log, res.log
    assert f"START RequestId: {res.request_id}" in res.log
    assert f"REPORT RequestId: {res.request_id}" in res.log

    err = invoke(lam, fn.name, {"fail": True}).error("BashRuntime.Failure")
    assert err == {"errorMessage": "bash runtime was asked to fail", "errorType": "BashRuntime.Failure"}

    again = invoke(lam, fn.name, {"y": 2}).ok()
    assert again["event"] == {"y": 2}
    assert again["pid"] == body["pid"], "a reported function error must not replace the environment"


# ---------------------------------------------------------------- python stdlib runtime


def test_python_stdlib_bootstrap_sees_runtime_api_contract(lam, create_fn):
    fn = create_fn(
        code=python_custom_runtime_zip(),
        runtime="provided.al2",
        handler="my.handler",
        Timeout=3,
        env={"CUSTOM_VAR": "custom-value"},
    )
    cc = {"custom": {"k": "v"}, "env": {"e": "1"}}
    sent_ms = int(time.time() * 1000)
    res = invoke(lam, fn.name, {"q": "headers"}, ClientContext=base64.b64encode(json.dumps(cc).encode()).decode())
    body = res.ok()
    assert body["runtime"] == "python-custom"
    assert body["event"] == {"q": "headers"}

    h = body["headers"]
    assert h["lambda-runtime-aws-request-id"] == res.request_id
    deadline = int(h["lambda-runtime-deadline-ms"])
    assert sent_ms - 1000 <= deadline - 3000 <= body["now_ms"] + 1000, (sent_ms, deadline, body["now_ms"])
    assert h["lambda-runtime-invoked-function-arn"] == function_arn(fn.name)
    assert json.loads(h["lambda-runtime-client-context"]) == cc

    env = body["env"]
    assert "AWS_EXECUTION_ENV" not in env, "AWS_EXECUTION_ENV is not set for provided runtimes"
    assert env["_HANDLER"] == "my.handler"
    assert env["CUSTOM_VAR"] == "custom-value"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == fn.name
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "128"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == f"/aws/lambda/{fn.name}"
    assert env["AWS_REGION"] == "us-east-1"
    assert env["AWS_LAMBDA_RUNTIME_API"]
    assert os.path.realpath(body["cwd"]) == os.path.realpath(env["LAMBDA_TASK_ROOT"])

    err = invoke(lam, fn.name, {"fail": "custom failure"}).error("Custom.Failure")
    assert err["errorMessage"] == "custom failure"
    assert invoke(lam, fn.name).ok()["count"] == 3


def test_runtime_init_error_is_reported_to_the_caller(lam, create_fn):
    fn = create_fn(code=python_custom_runtime_zip(), runtime="provided.al2023", handler="init-error")
    for _ in range(2):
        err = invoke(lam, fn.name).error("Custom.InitError")
        assert err["errorMessage"] == "custom runtime init failed"


# ---------------------------------------------------------------- bootstrap failures


def test_bootstrap_that_exits_immediately_is_exit_error(lam, create_fn):
    code = make_zip({"bootstrap": "#!/bin/sh\necho 'bootstrap giving up' >&2\nexit 3\n"})
    fn = create_fn(code=code, runtime="provided.al2023", handler="x")
    for _ in range(2):
        err = invoke(lam, fn.name).error("Runtime.ExitError")
        assert err.get("errorMessage"), err


@pytest.mark.parametrize(
    "case",
    ["missing", "not-executable"],
)
def test_unusable_bootstrap_is_reported(lam, create_fn, case):
    if case == "missing":
        code = make_zip({"README.txt": "no bootstrap here\n"})
    else:
        code = make_zip({"bootstrap": "#!/bin/sh\nexit 0\n"}, modes={"bootstrap": 0o644})
    fn = create_fn(code=code, runtime="provided.al2023", handler="x")
    err = invoke(lam, fn.name).error({"Runtime.InvalidEntrypoint", "Runtime.ExitError"})
    assert err.get("errorMessage"), err


# ---------------------------------------------------------------- awslambdaric


def _copy_installed_distributions(names: list[str], dest: Path) -> None:
    """Offline fallback: copy already-installed distributions out of this venv."""
    for name in names:
        dist = importlib.metadata.distribution(name)
        for rel in dist.files or []:
            if ".." in Path(rel).parts:
                continue  # console scripts etc. outside site-packages
            src = Path(dist.locate_file(rel))
            if src.is_file():
                out = dest / rel
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, out)


@pytest.fixture(scope="module")
def ric_vendor_dir() -> Path:
    """awslambdaric and its dependencies installed with `pip install --target`,
    cached under target/e2e-cache (built for this interpreter's ABI)."""
    tag = f"awslambdaric-{RIC_VERSION}-py{sys.version_info[0]}{sys.version_info[1]}"
    cache = Path(os.environ.get("CARGO_TARGET_DIR", REPO_ROOT / "target")) / "e2e-cache"
    dest = cache / tag
    if (dest / ".complete").is_file():
        return dest
    cache.mkdir(parents=True, exist_ok=True)
    tmp = cache / f"{tag}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
         "--target", str(tmp), f"awslambdaric=={RIC_VERSION}"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            _copy_installed_distributions(["awslambdaric", "simplejson", "snapshot-restore-py"], tmp)
        except importlib.metadata.PackageNotFoundError as exc:
            pytest.skip(f"cannot vendor awslambdaric (pip failed: {proc.stderr[-500:]}; not installed: {exc})")
    (tmp / ".complete").write_text(RIC_VERSION)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest


RIC_APP = """\
import os

def handler(event, context):
    if isinstance(event, dict) and "fail" in event:
        raise ValueError("ric failure: %s" % event["fail"])
    return {
        "ric": True,
        "event": event,
        "request_id": context.aws_request_id,
        "function_name": context.function_name,
        "remaining_ms": context.get_remaining_time_in_millis(),
    }
"""


@pytest.fixture(scope="module")
def ric_zip(ric_vendor_dir) -> bytes:
    files, modes = read_function_dir(ric_vendor_dir)
    files.pop(".complete", None)
    files["app.py"] = RIC_APP.encode()
    files["bootstrap"] = (
        "#!/bin/sh\n"
        "# awslambdaric vendored in this zip, run as a custom runtime\n"
        'export PYTHONPATH="${LAMBDA_TASK_ROOT:-$PWD}${PYTHONPATH:+:$PYTHONPATH}"\n'
        f'exec {real_python()} -m awslambdaric "$_HANDLER"\n'
    ).encode()
    modes["bootstrap"] = 0o755
    return make_zip(files, modes)


def test_awslambdaric_success_and_error_shape(lam, create_fn, ric_zip):
    fn = create_fn(code=ric_zip, runtime="provided.al2023", handler="app.handler")
    res = invoke(lam, fn.name, {"via": "awslambdaric"})
    body = res.ok()
    assert body["ric"] is True
    assert body["event"] == {"via": "awslambdaric"}
    assert body["request_id"] == res.request_id
    assert body["function_name"] == fn.name
    assert 0 < body["remaining_ms"] <= 3000

    res = invoke(lam, fn.name, {"fail": "x"})
    err = res.error("ValueError")
    assert err["errorMessage"] == "ric failure: x"
    assert err["requestId"] == res.request_id
    assert isinstance(err["stackTrace"], list) and any("app.py" in f for f in err["stackTrace"]), err

    assert invoke(lam, fn.name, {"after": 1}).ok()["event"] == {"after": 1}


def test_awslambdaric_import_error(lam, create_fn, ric_zip):
    fn = create_fn(code=ric_zip, runtime="provided.al2023", handler="nomodule.handler")
    err = invoke(lam, fn.name).error("Runtime.ImportModuleError")
    assert err["errorMessage"].startswith("Unable to import module 'nomodule'"), err


# ---------------------------------------------------------------- Rust lambda_runtime


@pytest.fixture(scope="module")
def rust_zip() -> bytes:
    binary = resolve_rust_fixture_bin()
    if not binary.is_file():
        pytest.skip(f"rust fixture binary not built: {binary}")
    return make_zip({"bootstrap": binary.read_bytes()}, modes={"bootstrap": 0o755})


def test_rust_lambda_runtime_fixture(lam, create_fn, rust_zip):
    fn = create_fn(code=rust_zip, runtime="provided.al2023", handler="bootstrap")
    event = {"hello": "rust", "n": [1, 2, 3], "id": uuid.uuid4().hex}
    res = invoke(lam, fn.name, event)
    body = res.ok()
    assert body["echo"] == event
    assert body["function_name"] == fn.name
    assert body["request_id"] == res.request_id
    if "invoked_function_arn" in body:  # extra context fields the fixture may report
        assert body["invoked_function_arn"] == function_arn(fn.name)
    if "memory" in body:
        assert int(body["memory"]) == 128

    res = invoke(lam, fn.name, {"fail": True})
    err = res.error()
    assert isinstance(err.get("errorType"), str) and err["errorType"], err
    assert isinstance(err.get("errorMessage"), str) and err["errorMessage"], err

    again = invoke(lam, fn.name, {"after": "error"})
    assert again.ok()["echo"] == {"after": "error"}
