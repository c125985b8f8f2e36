"""Input validation and limits: every refused request gets an AWS-shaped 4xx,
writes nothing outside the data directory, and leaves existing functions
working (checked after every test by the `canary_survives` fixture)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import uuid
import warnings
import zipfile
from pathlib import Path

import pytest

from botocore.exceptions import ClientError

from .conftest import (
    ROLE,
    SYNC_PAYLOAD_LIMIT,
    client_error,
    expect_client_error,
    invoke,
    make_zip,
    python_probe_zip,
    unique_name,
    wait_active,
)

BAD_REQUEST = ("ValidationException", "InvalidParameterValueException")


# ---------------------------------------------------------------- canary


@pytest.fixture(scope="module")
def canary(lam):
    """A function created before the refused requests; it must keep working."""
    name = unique_name("canary")
    lam.create_function(
        FunctionName=name, Runtime="python3.11", Role=ROLE, Handler="app.handler", Code={"ZipFile": python_probe_zip()}
    )
    wait_active(lam, name)
    assert invoke(lam, name, {"warm": True}).ok()["event"] == {"warm": True}
    yield name
    with contextlib.suppress(Exception):
        lam.delete_function(FunctionName=name)


@pytest.fixture(autouse=True)
def canary_survives(lam, canary):
    yield
    result = invoke(lam, canary, {"after": "refused request"}).ok()
    assert result["event"] == {"after": "refused request"}


def _create(lam, name=None, code=None, **kw):
    args = dict(
        FunctionName=name or unique_name("val"),
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": code if code is not None else python_probe_zip()},
    )
    args.update(kw)
    return lambda: lam.create_function(**args)


def _assert_absent(lam, name):
    expect_client_error(lambda: lam.get_function(FunctionName=name), (400, 404), ("ResourceNotFoundException",) + BAD_REQUEST)


# ---------------------------------------------------------------- names and settings


@pytest.mark.parametrize("bad_name", ["bad name!", "semi;colon", "dot.ted", "a" * 65])
def test_invalid_function_name_is_400(lam, bad_name):
    expect_client_error(_create(lam, name=bad_name), 400, BAD_REQUEST)


@pytest.mark.parametrize("memory", [127, 10241])
def test_memory_out_of_range_is_400(lam_novalidate, memory):
    name = unique_name("mem")
    expect_client_error(_create(lam_novalidate, name=name, MemorySize=memory), 400, BAD_REQUEST)
    _assert_absent(lam_novalidate, name)


@pytest.mark.parametrize("timeout", [0, 901])
def test_timeout_out_of_range_is_400(lam_novalidate, timeout):
    name = unique_name("timeout")
    expect_client_error(_create(lam_novalidate, name=name, Timeout=timeout), 400, BAD_REQUEST)
    _assert_absent(lam_novalidate, name)


def test_limits_are_inclusive(lam, create_fn):
    fn = create_fn(MemorySize=10240, Timeout=900)
    assert (fn.config["MemorySize"], fn.config["Timeout"]) == (10240, 900)
    resp = lam.update_function_configuration(FunctionName=fn.name, MemorySize=128, Timeout=1)
    assert (resp["MemorySize"], resp["Timeout"]) == (128, 1)


def test_memory_out_of_range_on_update_is_400_and_config_unchanged(lam_novalidate, create_fn):
    fn = create_fn(MemorySize=256)
    expect_client_error(
        lambda: lam_novalidate.update_function_configuration(FunctionName=fn.name, MemorySize=10241), 400, BAD_REQUEST
    )
    expect_client_error(lambda: lam_novalidate.update_function_configuration(FunctionName=fn.name, Timeout=0), 400, BAD_REQUEST)
    cfg = lam_novalidate.get_function_configuration(FunctionName=fn.name)
    assert (cfg["MemorySize"], cfg["Timeout"]) == (256, 3)


def test_environment_larger_than_4kb_is_400(lam, create_fn):
    name = unique_name("bigenv")
    big = {"BIG_VALUE": "x" * 4096}
    expect_client_error(_create(lam, name=name, Environment={"Variables": big}), 400, BAD_REQUEST)
    _assert_absent(lam, name)

    fn = create_fn(env={"SMALL": "ok"})
    expect_client_error(
        lambda: lam.update_function_configuration(FunctionName=fn.name, Environment={"Variables": big}), 400, BAD_REQUEST
    )
    assert lam.get_function_configuration(FunctionName=fn.name)["Environment"]["Variables"] == {"SMALL": "ok"}


@pytest.mark.parametrize("key", ["A", "1ABC", "HAS-DASH", "has space"])
def test_invalid_environment_key_is_400(lam, key):
    name = unique_name("badkey")
    expect_client_error(_create(lam, name=name, Environment={"Variables": {key: "x"}}), 400, BAD_REQUEST)
    _assert_absent(lam, name)


@pytest.mark.parametrize("key", ["AWS_REGION", "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT"])
def test_reserved_environment_key_is_400(lam, key):
    name = unique_name("reserved")
    err = expect_client_error(_create(lam, name=name, Environment={"Variables": {key: "x"}}), 400, BAD_REQUEST)
    assert key in err.response["Error"]["Message"], err.response["Error"]
    _assert_absent(lam, name)


def test_reserved_environment_key_on_update_is_400(lam, create_fn):
    fn = create_fn(env={"MINE": "1"})
    expect_client_error(
        lambda: lam.update_function_configuration(FunctionName=fn.name, Environment={"Variables": {"AWS_REGION": "eu-west-1"}}),
        400,
        BAD_REQUEST,
    )
    assert invoke(lam, fn.name).ok()["env"]["AWS_REGION"] == "us-east-1"


def test_deprecated_runtime_is_invalid_parameter(lam):
    name = unique_name("py27")
    expect_client_error(_create(lam, name=name, Runtime="python2.7"), 400, "InvalidParameterValueException")
    _assert_absent(lam, name)


def test_unknown_runtime_is_400(lam):
    name = unique_name("foo")
    # InvalidParameterValueException per the Nimbus contract; real Lambda's
    # framework layer may answer ValidationException for a non-enum value.
    expect_client_error(_create(lam, name=name, Runtime="foo"), 400, BAD_REQUEST)
    _assert_absent(lam, name)


# ---------------------------------------------------------------- malformed packages


def test_garbage_zip_bytes_is_invalid_parameter(lam):
    name = unique_name("garbage")
    expect_client_error(_create(lam, name=name, code=b"this is definitely not a zip file" * 10), 400, "InvalidParameterValueException")
    _assert_absent(lam, name)


def test_garbage_zip_on_update_keeps_old_code(lam, create_fn):
    fn = create_fn()
    expect_client_error(
        lambda: lam.update_function_code(FunctionName=fn.name, ZipFile=b"PK\x03\x04 truncated"), 400, "InvalidParameterValueException"
    )
    assert lam.get_function_configuration(FunctionName=fn.name)["CodeSha256"] == fn.config["CodeSha256"]
    invoke(lam, fn.name).ok()


def _escape_candidates(server, marker: str) -> list[Path]:
    """Where an extractor that honours `..`, absolute paths or symlinks would
    have written `marker`: directly inside every ancestor of the data dir, the
    server's cwd and /tmp."""
    paths = [Path("/tmp") / marker, server.cwd / marker]
    for parent in server.data_dir.resolve().parents:
        paths.append(parent / marker)
    return paths


def _assert_nothing_escaped(server, marker: str) -> None:
    leaked = [str(p) for p in _escape_candidates(server, marker) if os.path.lexists(p)]
    data_root = server.data_dir.resolve()
    for p in server.log_dir.rglob(f"*{marker}*"):
        if data_root not in p.resolve().parents:
            leaked.append(str(p))
    assert not leaked, f"zip extraction wrote outside the data directory: {leaked}"


def test_zip_with_parent_traversal_entries_is_refused(lam, server):
    marker = f"nimbus-e2e-evil-{uuid.uuid4().hex[:8]}"
    files = {"app.py": "def handler(e, c):\n    return 1\n"}
    for depth in range(1, 8):
        files["../" * depth + marker] = "escaped"
    files["../" * 20 + "tmp/" + marker] = "escaped"
    files["sub/../../" + marker + "-2"] = "escaped"
    name = unique_name("dotdot")
    expect_client_error(_create(lam, name=name, code=make_zip(files)), 400, BAD_REQUEST)
    _assert_absent(lam, name)
    _assert_nothing_escaped(server, marker)


def test_zip_with_absolute_path_entry_is_refused(lam, server):
    marker = f"nimbus-e2e-abs-{uuid.uuid4().hex[:8]}"
    code = make_zip({"app.py": "def handler(e, c):\n    return 1\n", f"/tmp/{marker}": "escaped"})
    name = unique_name("abs")
    expect_client_error(_create(lam, name=name, code=code), 400, BAD_REQUEST)
    _assert_absent(lam, name)
    assert not os.path.lexists(f"/tmp/{marker}")
    _assert_nothing_escaped(server, marker)


def test_zip_with_symlink_to_outside_file_is_refused(lam, server):
    code = make_zip({"app.py": "def handler(e, c):\n    return open('passwd').read()\n"}, symlinks={"passwd": "/etc/passwd"})
    name = unique_name("symlink")
    expect_client_error(_create(lam, name=name, code=code), 400, BAD_REQUEST)
    _assert_absent(lam, name)


def test_duplicate_entry_cannot_write_through_a_symlink(lam, tmp_path):
    """A symlink to a file outside, then a regular entry of the same name: a
    naive extractor would write through the link. Refusing the zip or keeping
    only the regular file are both safe; the outside file must be untouched."""
    victim = tmp_path / "victim.txt"
    victim.write_text("original\n")
    code = make_zip(
        {"app.py": "def handler(e, c):\n    return open('victim.txt').read()\n"}, symlinks={"victim.txt": str(victim)}
    )
    buf = io.BytesIO(code)
    with warnings.catch_warnings(), zipfile.ZipFile(buf, "a") as zf:
        warnings.simplefilter("ignore")  # the duplicate entry name is the point
        zf.writestr("victim.txt", "overwritten by a zip entry\n")
    name = unique_name("dupsym")
    try:
        lam.create_function(FunctionName=name, Runtime="python3.11", Role=ROLE, Handler="app.handler",
                            Code={"ZipFile": buf.getvalue()})
    except ClientError as exc:
        status, code_, msg = client_error(exc)
        assert status == 400 and code_ in BAD_REQUEST, (status, code_, msg)
    else:
        try:
            wait_active(lam, name)
            assert invoke(lam, name).ok() == "overwritten by a zip entry\n", "the function must see the zip's own file"
        finally:
            lam.delete_function(FunctionName=name)
    assert victim.read_text() == "original\n", "zip extraction wrote through a symlink"


def test_zip_with_symlinked_directory_outside_is_refused(lam, server, tmp_path):
    outside = tmp_path / "outside-target"
    outside.mkdir()
    marker = f"pwned-{uuid.uuid4().hex[:8]}"
    code = make_zip(
        {"app.py": "def handler(e, c):\n    return 1\n", f"escape/{marker}": "escaped through a symlink"},
        symlinks={"escape": str(outside)},
    )
    # The symlink must come first so a naive extractor would follow it: rebuild in that order.
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(code)) as src, zipfile.ZipFile(buf, "w") as dst:
        infos = sorted(src.infolist(), key=lambda i: 0 if i.filename == "escape" else 1)
        for info in infos:
            dst.writestr(info, src.read(info.filename))
    name = unique_name("symdir")
    expect_client_error(_create(lam, name=name, code=buf.getvalue()), 400, BAD_REQUEST)
    _assert_absent(lam, name)
    assert list(outside.iterdir()) == [], "zip extraction wrote through a symlink"
    _assert_nothing_escaped(server, marker)


def test_zip_with_internal_symlink_is_accepted(lam, create_fn):
    """Symlinks that stay inside the package (e.g. node_modules/.bin) are legal on Lambda."""
    code = make_zip(
        {"real.py": "def handler(event, context):\n    return {'via': 'symlink'}\n"},
        symlinks={"app.py": "real.py"},
    )
    fn = create_fn(code=code)
    assert invoke(lam, fn.name).ok() == {"via": "symlink"}


@pytest.fixture(scope="module")
def zip_bomb() -> bytes:
    """~300 KB zip whose single entry inflates to 300 MB (> 250 MB unzipped limit)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("app.py", "def handler(event, context):\n    return 'bomb'\n")
        info = zipfile.ZipInfo("zeros.bin", date_time=(2020, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w", force_zip64=True) as w:
            chunk = bytes(1 << 20)
            for _ in range(300):
                w.write(chunk)
    data = buf.getvalue()
    assert len(data) < 2 * 1024 * 1024
    return data


def test_zip_bomb_is_refused(lam, create_fn, zip_bomb):
    name = unique_name("bomb")
    expect_client_error(_create(lam, name=name, code=zip_bomb), 400, "InvalidParameterValueException")
    _assert_absent(lam, name)

    fn = create_fn()
    expect_client_error(
        lambda: lam.update_function_code(FunctionName=fn.name, ZipFile=zip_bomb), 400, "InvalidParameterValueException"
    )
    assert lam.get_function_configuration(FunctionName=fn.name)["CodeSha256"] == fn.config["CodeSha256"]
    invoke(lam, fn.name).ok()


def test_zip_larger_than_50mb_is_refused(lam):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("app.py", "def handler(event, context):\n    return 1\n")
        zf.writestr("blob.bin", os.urandom(51 * 1024 * 1024))
    code = buf.getvalue()
    assert len(code) > 50 * 1024 * 1024
    name = unique_name("huge")
    expect_client_error(
        _create(lam, name=name, code=code),
        (400, 413),
        ("InvalidParameterValueException", "RequestTooLargeException", "ValidationException"),
    )
    _assert_absent(lam, name)


# ---------------------------------------------------------------- invoke limits


def test_invoke_payload_over_6mb_is_413(lam, canary):
    payload = b'"' + b"a" * (SYNC_PAYLOAD_LIMIT + 16) + b'"'
    expect_client_error(lambda: invoke(lam, canary, raw=payload), 413, "RequestTooLargeException")


def test_invoke_payload_just_under_6mb_is_accepted(lam, canary):
    body = {"big": 16, "pad": "a" * (SYNC_PAYLOAD_LIMIT - 64 * 1024)}
    assert invoke(lam, canary, body).ok() == "x" * 16  # "big": the probe answers a short string


@pytest.mark.parametrize("invocation_type", ["RequestResponse", "Event"])
def test_invoke_with_non_json_body_is_400(lam, canary, invocation_type):
    err = expect_client_error(
        lambda: invoke(lam, canary, raw=b"this is {not json", InvocationType=invocation_type),
        400,
        "InvalidRequestContentException",
    )
    assert err.response["Error"]["Message"], err.response


def test_response_over_6mb_is_function_error(lam, canary):
    res = invoke(lam, canary, {"big": SYNC_PAYLOAD_LIMIT + 1024})
    err = res.error("Function.ResponseSizeTooLarge")
    assert err.get("errorMessage")
    assert len(res.body) < 64 * 1024
    # the environment survives / is replaced: the next call works
    assert invoke(lam, canary, {"small": 1}).ok()["event"] == {"small": 1}


def test_empty_invoke_body_is_accepted(lam, canary):
    res = invoke(lam, canary, raw=b"")
    assert res.status == 200 and res.function_error is None
    json.loads(res.body)
