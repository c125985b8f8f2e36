"""Lambda control-plane API (REST-JSON, 2015-03-31) through boto3.

Every function is a real zip built here; where behaviour matters it is invoked.
"""

from __future__ import annotations

import datetime as dt
import urllib.request
import uuid

import pytest

from .conftest import (
    ACCOUNT,
    LAST_MODIFIED_RE,
    ROLE,
    UUID_RE,
    b64sha256,
    expect_client_error,
    function_arn,
    invoke,
    make_zip,
    pid_alive,
    python_probe_zip,
    unique_name,
    wait_until,
)

VERSIONED_APP = """\
import os, uuid
INIT_ID = uuid.uuid4().hex
def handler(event, context):
    return {{"version": {version}, "init_id": INIT_ID, "pid": os.getpid()}}
"""

SECOND_HANDLER = """\
import os
def handler2(event, context):
    return {
        "handler": "handler2",
        "env": dict(os.environ),
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "remaining_ms": context.get_remaining_time_in_millis(),
    }
"""

WAIT = {"Delay": 1, "MaxAttempts": 30}


def _strip_meta(d: dict) -> dict:
    return {k: v for k, v in d.items() if k != "ResponseMetadata"}


def _parse_last_modified(value: str) -> dt.datetime:
    return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z")


# ---------------------------------------------------------------- create / get


def test_create_function_returns_201_with_full_configuration(lam, create_fn):
    name = unique_name("create")
    code = python_probe_zip()
    fn = create_fn(name=name, code=code, wait=False)
    resp = fn.config

    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert resp["FunctionName"] == name
    assert resp["FunctionArn"] == function_arn(name)
    assert resp["Runtime"] == "python3.11"
    assert resp["Role"] == ROLE
    assert resp["Handler"] == "app.handler"
    assert resp["CodeSize"] == len(code)
    assert resp["CodeSha256"] == b64sha256(code)
    assert len(resp["CodeSha256"]) == 44
    assert resp["Version"] == "$LATEST"
    assert resp["MemorySize"] == 128
    assert resp["Timeout"] == 3
    assert resp.get("Description", "") == ""
    assert LAST_MODIFIED_RE.match(resp["LastModified"]), resp["LastModified"]
    modified = _parse_last_modified(resp["LastModified"])
    assert abs((dt.datetime.now(dt.timezone.utc) - modified).total_seconds()) < 600
    assert UUID_RE.match(resp["RevisionId"]), resp["RevisionId"]
    assert resp["State"] in ("Pending", "Active")
    if "LastUpdateStatus" in resp:
        assert resp["LastUpdateStatus"] in ("Successful", "InProgress")
    assert resp["PackageType"] == "Zip"
    assert resp["Architectures"] == ["x86_64"]
    assert resp["EphemeralStorage"] == {"Size": 512}
    assert resp.get("TracingConfig", {"Mode": "PassThrough"}) == {"Mode": "PassThrough"}

    # The waiter the SDK/CLI/IaC tools use after create must succeed.
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig=WAIT)
    cfg = lam.get_function_configuration(FunctionName=name)
    assert cfg["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert cfg["State"] == "Active"
    assert cfg["LastUpdateStatus"] == "Successful"
    for key in (
        "FunctionName", "FunctionArn", "Runtime", "Role", "Handler", "CodeSize", "CodeSha256",
        "Version", "MemorySize", "Timeout", "PackageType", "Architectures", "EphemeralStorage",
    ):
        assert cfg[key] == resp[key], key

    # ... and the function really runs.
    assert invoke(lam, name, {"k": "v"}).ok()["event"] == {"k": "v"}


def test_get_function_returns_configuration_code_location_and_tags(lam, create_fn):
    code = python_probe_zip({"data/extra.txt": "payload " * 100})
    fn = create_fn(code=code, Tags={"team": "nimbus", "stage": "e2e"})

    got = lam.get_function(FunctionName=fn.name)
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 200
    cfg = _strip_meta(lam.get_function_configuration(FunctionName=fn.name))
    assert got["Configuration"] == cfg
    assert got["Configuration"]["CodeSha256"] == b64sha256(code)

    assert got["Code"]["RepositoryType"] == "S3"
    location = got["Code"]["Location"]
    assert location.startswith("http"), location
    with urllib.request.urlopen(location, timeout=30) as resp:
        assert resp.status == 200
        downloaded = resp.read()
    assert downloaded == code

    assert got["Tags"] == {"team": "nimbus", "stage": "e2e"}


def test_get_function_configuration_reflects_create_parameters(lam, create_fn):
    fn = create_fn(
        MemorySize=256,
        Timeout=7,
        Description="configured by the e2e suite",
        env={"GREETING": "hello", "EMPTY_OK": ""},
    )
    cfg = lam.get_function_configuration(FunctionName=fn.name)
    assert cfg["MemorySize"] == 256
    assert cfg["Timeout"] == 7
    assert cfg["Description"] == "configured by the e2e suite"
    assert cfg["Environment"]["Variables"] == {"GREETING": "hello", "EMPTY_OK": ""}
    result = invoke(lam, fn.name).ok()
    assert result["env"]["GREETING"] == "hello"
    assert str(result["ctx"]["memory_limit_in_mb"]) == "256"
    assert 0 < result["ctx"]["remaining_ms"] <= 7000


# ---------------------------------------------------------------- list


def test_list_functions_pagination_with_marker_and_paginator(lam, create_fn):
    prefix = f"e2e-page-{uuid.uuid4().hex[:6]}"
    names = {create_fn(name=f"{prefix}-{i}", wait=False).name for i in range(7)}
    for name in names:
        lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig=WAIT)

    seen: list[str] = []
    marker = None
    pages = 0
    while True:
        kwargs = {"MaxItems": 2}
        if marker:
            kwargs["Marker"] = marker
        page = lam.list_functions(**kwargs)
        pages += 1
        assert page["ResponseMetadata"]["HTTPStatusCode"] == 200
        assert len(page["Functions"]) <= 2
        for f in page["Functions"]:
            seen.append(f["FunctionName"])
            if f["FunctionName"] in names:
                assert f["FunctionArn"] == function_arn(f["FunctionName"])
                assert f["Runtime"] == "python3.11"
                assert f["Version"] == "$LATEST"
                assert LAST_MODIFIED_RE.match(f["LastModified"])
        marker = page.get("NextMarker")
        if not marker:
            break
        assert pages < 500, "pagination does not terminate"
    assert pages >= 4  # at least 7 functions, 2 per page
    assert len(seen) == len(set(seen)), f"duplicates across pages: {seen}"
    assert names <= set(seen)

    first = lam.list_functions(MaxItems=1)
    assert len(first["Functions"]) == 1 and first.get("NextMarker")

    via_paginator = []
    for page in lam.get_paginator("list_functions").paginate(PaginationConfig={"PageSize": 3}):
        assert len(page["Functions"]) <= 3
        via_paginator.extend(f["FunctionName"] for f in page["Functions"])
    assert len(via_paginator) == len(set(via_paginator))
    assert names <= set(via_paginator)
    assert set(via_paginator) == set(seen)


# ---------------------------------------------------------------- update code


def test_update_function_code_runs_new_code_and_retires_old_environment(lam, create_fn):
    v1 = make_zip({"app.py": VERSIONED_APP.format(version=1)})
    v2 = make_zip({"app.py": VERSIONED_APP.format(version=2)})
    fn = create_fn(code=v1)
    first = invoke(lam, fn.name).ok()
    assert first["version"] == 1
    before = lam.get_function_configuration(FunctionName=fn.name)

    resp = lam.update_function_code(FunctionName=fn.name, ZipFile=v2)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert resp["CodeSha256"] == b64sha256(v2) != before["CodeSha256"]
    assert resp["CodeSize"] == len(v2)
    assert resp["RevisionId"] != before["RevisionId"]
    assert resp["LastUpdateStatus"] in ("InProgress", "Successful")
    lam.get_waiter("function_updated_v2").wait(FunctionName=fn.name, WaiterConfig=WAIT)
    cfg = lam.get_function_configuration(FunctionName=fn.name)
    assert cfg["LastUpdateStatus"] == "Successful"
    assert cfg["CodeSha256"] == b64sha256(v2)

    second = invoke(lam, fn.name).ok()
    assert second["version"] == 2
    assert second["init_id"] != first["init_id"], "new code must run in a fresh environment"
    with urllib.request.urlopen(lam.get_function(FunctionName=fn.name)["Code"]["Location"], timeout=30) as r:
        assert r.read() == v2
    # The environment that ran v1 is retired (its process goes away).
    wait_until(lambda: not pid_alive(first["pid"]), timeout=10, message=f"old environment pid {first['pid']} to exit")


# ---------------------------------------------------------------- update configuration


def test_update_function_configuration_replaces_settings(lam, create_fn):
    code = python_probe_zip({"app2.py": SECOND_HANDLER})
    fn = create_fn(code=code, env={"VAR_A": "1", "VAR_B": "2"})
    before = lam.get_function_configuration(FunctionName=fn.name)
    assert invoke(lam, fn.name).ok()["env"]["VAR_A"] == "1"

    resp = lam.update_function_configuration(
        FunctionName=fn.name,
        Environment={"Variables": {"VAR_C": "3"}},
        MemorySize=256,
        Timeout=5,
        Description="updated by e2e",
        Handler="app2.handler2",
    )
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert resp["MemorySize"] == 256
    assert resp["Timeout"] == 5
    assert resp["Description"] == "updated by e2e"
    assert resp["Handler"] == "app2.handler2"
    assert resp["Environment"]["Variables"] == {"VAR_C": "3"}
    assert resp["RevisionId"] != before["RevisionId"]
    assert resp["CodeSha256"] == before["CodeSha256"]
    assert LAST_MODIFIED_RE.match(resp["LastModified"])

    lam.get_waiter("function_updated_v2").wait(FunctionName=fn.name, WaiterConfig=WAIT)
    cfg = lam.get_function_configuration(FunctionName=fn.name)
    assert cfg["Environment"]["Variables"] == {"VAR_C": "3"}  # replaced, not merged
    assert (cfg["MemorySize"], cfg["Timeout"], cfg["Handler"]) == (256, 5, "app2.handler2")

    result = invoke(lam, fn.name).ok()
    assert result["handler"] == "handler2"
    assert result["env"]["VAR_C"] == "3"
    assert "VAR_A" not in result["env"] and "VAR_B" not in result["env"]
    assert result["env"]["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert str(result["memory_limit_in_mb"]) == "256"
    assert 0 < result["remaining_ms"] <= 5000


def test_revision_id_precondition(lam, create_fn):
    fn = create_fn()
    rev0 = fn.config["RevisionId"]
    ok = lam.update_function_configuration(FunctionName=fn.name, Description="first", RevisionId=rev0)
    rev1 = ok["RevisionId"]
    assert rev1 != rev0
    lam.get_waiter("function_updated_v2").wait(FunctionName=fn.name, WaiterConfig=WAIT)

    expect_client_error(
        lambda: lam.update_function_configuration(FunctionName=fn.name, Description="stale", RevisionId=rev0),
        412,
        "PreconditionFailedException",
    )
    expect_client_error(
        lambda: lam.update_function_code(FunctionName=fn.name, ZipFile=python_probe_zip({"x.txt": "x"}), RevisionId=rev0),
        412,
        "PreconditionFailedException",
    )
    cfg = lam.get_function_configuration(FunctionName=fn.name)
    assert cfg["Description"] == "first"
    assert cfg["RevisionId"] == rev1
    assert cfg["CodeSha256"] == fn.config["CodeSha256"]

    again = lam.update_function_configuration(FunctionName=fn.name, Description="second", RevisionId=rev1)
    assert again["Description"] == "second"


# ---------------------------------------------------------------- delete / conflicts


def test_delete_function_then_everything_is_404(lam, create_fn):
    fn = create_fn()
    assert invoke(lam, fn.name).ok()
    resp = lam.delete_function(FunctionName=fn.name)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] in (200, 204)

    err = expect_client_error(lambda: lam.get_function(FunctionName=fn.name), 404, "ResourceNotFoundException")
    assert fn.name in err.response["Error"]["Message"]
    expect_client_error(lambda: lam.get_function_configuration(FunctionName=fn.name), 404, "ResourceNotFoundException")
    expect_client_error(lambda: invoke(lam, fn.name), 404, "ResourceNotFoundException")
    expect_client_error(lambda: lam.delete_function(FunctionName=fn.name), 404, "ResourceNotFoundException")
    assert fn.name not in {f["FunctionName"] for p in lam.get_paginator("list_functions").paginate() for f in p["Functions"]}


def test_unknown_function_is_404_everywhere(lam):
    name = unique_name("missing")
    err = expect_client_error(lambda: lam.get_function(FunctionName=name), 404, "ResourceNotFoundException")
    assert err.response["Error"]["Message"].startswith("Function not found"), err.response["Error"]
    expect_client_error(lambda: invoke(lam, name), 404, "ResourceNotFoundException")
    expect_client_error(lambda: lam.update_function_configuration(FunctionName=name, Timeout=5), 404, "ResourceNotFoundException")
    expect_client_error(lambda: lam.list_tags(Resource=function_arn(name)), 404, "ResourceNotFoundException")


def test_duplicate_create_is_409(lam, create_fn):
    fn = create_fn()
    other = python_probe_zip({"other.txt": "different"})
    expect_client_error(
        lambda: lam.create_function(
            FunctionName=fn.name, Runtime="python3.11", Role=ROLE, Handler="app.handler", Code={"ZipFile": other}
        ),
        409,
        "ResourceConflictException",
    )
    assert lam.get_function_configuration(FunctionName=fn.name)["CodeSha256"] == fn.config["CodeSha256"]


# ---------------------------------------------------------------- account settings


def test_account_settings_shape_and_usage(lam, create_fn):
    before = lam.get_account_settings()
    assert before["ResponseMetadata"]["HTTPStatusCode"] == 200
    limit = before["AccountLimit"]
    for key in ("TotalCodeSize", "CodeSizeUnzipped", "CodeSizeZipped", "ConcurrentExecutions", "UnreservedConcurrentExecutions"):
        assert isinstance(limit[key], int) and limit[key] > 0, (key, limit)
    assert limit["CodeSizeZipped"] == 52428800
    assert limit["CodeSizeUnzipped"] == 262144000
    assert limit["UnreservedConcurrentExecutions"] <= limit["ConcurrentExecutions"]
    usage = before["AccountUsage"]
    assert isinstance(usage["FunctionCount"], int) and usage["FunctionCount"] >= 0
    assert isinstance(usage["TotalCodeSize"], int) and usage["TotalCodeSize"] >= 0

    fn = create_fn()
    after = lam.get_account_settings()["AccountUsage"]
    assert after["FunctionCount"] == usage["FunctionCount"] + 1
    assert after["TotalCodeSize"] == usage["TotalCodeSize"] + len(fn.zip)

    lam.delete_function(FunctionName=fn.name)
    final = lam.get_account_settings()["AccountUsage"]
    assert final["FunctionCount"] == usage["FunctionCount"]


# ---------------------------------------------------------------- tags


def test_tag_list_untag_on_function_arn(lam, create_fn):
    fn = create_fn(Tags={"initial": "yes"})
    arn = function_arn(fn.name)
    assert lam.list_tags(Resource=arn)["Tags"] == {"initial": "yes"}

    resp = lam.tag_resource(Resource=arn, Tags={"a": "1", "b c": "two words", "team": "nimbus"})
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert lam.list_tags(Resource=arn)["Tags"] == {"initial": "yes", "a": "1", "b c": "two words", "team": "nimbus"}

    lam.tag_resource(Resource=arn, Tags={"team": "platform"})  # overwrite a value
    assert lam.list_tags(Resource=arn)["Tags"]["team"] == "platform"

    resp = lam.untag_resource(Resource=arn, TagKeys=["a", "b c"])
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert lam.list_tags(Resource=arn)["Tags"] == {"initial": "yes", "team": "platform"}
    assert lam.get_function(FunctionName=fn.name)["Tags"] == {"initial": "yes", "team": "platform"}


# ---------------------------------------------------------------- addressing


def test_function_addressing_forms(lam, create_fn):
    fn = create_fn()
    arn = function_arn(fn.name)
    forms = {
        fn.name: arn,
        arn: arn,
        f"{ACCOUNT}:function:{fn.name}": arn,
        f"{fn.name}:$LATEST": f"{arn}:$LATEST",
        f"{arn}:$LATEST": f"{arn}:$LATEST",
    }
    for form, invoked_arn in forms.items():
        cfg = lam.get_function_configuration(FunctionName=form)
        assert cfg["FunctionName"] == fn.name, form
        assert cfg["Version"] == "$LATEST", form
        assert cfg["CodeSha256"] == fn.config["CodeSha256"], form
        assert lam.get_function(FunctionName=form)["Configuration"]["FunctionName"] == fn.name, form

        res = invoke(lam, form, {"form": form})
        assert res.executed_version == "$LATEST", form
        body = res.ok()
        assert body["event"] == {"form": form}
        assert body["ctx"]["invoked_function_arn"] == invoked_arn, form

    res = invoke(lam, fn.name, Qualifier="$LATEST")
    assert res.executed_version == "$LATEST"
    res.ok()

    expect_client_error(
        lambda: lam.get_function_configuration(FunctionName=f"{ACCOUNT}:function:{fn.name}-nope"),
        404,
        "ResourceNotFoundException",
    )


# ---------------------------------------------------------------- unsupported code sources


def test_s3_code_source_is_rejected(lam, create_fn):
    name = unique_name("s3code")
    expect_client_error(
        lambda: lam.create_function(
            FunctionName=name,
            Runtime="python3.11",
            Role=ROLE,
            Handler="app.handler",
            Code={"S3Bucket": "some-bucket", "S3Key": "code/app.zip"},
        ),
        400,
        "InvalidParameterValueException",
    )
    expect_client_error(lambda: lam.get_function(FunctionName=name), 404, "ResourceNotFoundException")

    fn = create_fn()
    expect_client_error(
        lambda: lam.update_function_code(FunctionName=fn.name, S3Bucket="some-bucket", S3Key="code/app.zip"),
        400,
        "InvalidParameterValueException",
    )
    assert lam.get_function_configuration(FunctionName=fn.name)["CodeSha256"] == fn.config["CodeSha256"]
    invoke(lam, fn.name).ok()


@pytest.mark.parametrize("runtime", ["python3.9", "python3.12", "python3.13", "python3.14"])
def test_other_python_runtime_identifiers_are_accepted(lam, create_fn, runtime):
    fn = create_fn(runtime=runtime)
    assert fn.config["Runtime"] == runtime
    result = invoke(lam, fn.name).ok()
    assert result["env"]["AWS_EXECUTION_ENV"] == f"AWS_Lambda_{runtime}"
