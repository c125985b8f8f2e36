"""Function versions (PublishVersion, ListVersionsByFunction, qualified
addressing, DeleteFunction with Qualifier) and aliases (CreateAlias, GetAlias,
UpdateAlias, DeleteAlias, ListAliases, weighted routing) through boto3.

Every version runs a tiny Python app whose result names the code it was built
from ("v") and reports what the runtime saw (context.function_version,
context.invoked_function_arn, AWS_LAMBDA_FUNCTION_VERSION), so each test can
tell which snapshot actually ran.
"""

from __future__ import annotations

import collections
import urllib.request

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
    unique_name,
    wait_active,
)

APP = """\
import os
TAG = {tag!r}
def handler(event, context):
    return {{
        "v": TAG,
        "version": context.function_version,
        "arn": context.invoked_function_arn,
        "env_version": os.environ.get("AWS_LAMBDA_FUNCTION_VERSION"),
        "mark": os.environ.get("MARK"),
        "memory": str(context.memory_limit_in_mb),
    }}
"""

TAGS = ("one", "two", "three", "four")
BAD_INPUT = ("InvalidParameterValueException", "ValidationException")
WAIT = {"Delay": 1, "MaxAttempts": 30}


def _app(tag: str) -> bytes:
    return make_zip({"app.py": APP.format(tag=tag)})


def _deploy(lam, name: str, tag: str, **kwargs) -> dict:
    """UpdateFunctionCode on $LATEST to the app tagged `tag`; wait for the update."""
    resp = lam.update_function_code(FunctionName=name, ZipFile=_app(tag), **kwargs)
    wait_active(lam, name)
    return resp


def _publish(lam, name: str, **kwargs) -> dict:
    resp = lam.publish_version(FunctionName=name, **kwargs)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 201, resp["ResponseMetadata"]
    return resp


def _versioned_fn(lam, create_fn, count: int, **kwargs):
    """A function with published versions 1..count; version N runs app TAGS[N-1].
    $LATEST is left with the code of the last version. Returns (fn, {version: zip})."""
    fn = create_fn(code=_app(TAGS[0]), **kwargs)
    codes: dict[str, bytes] = {}
    for n in range(1, count + 1):
        if n > 1:
            _deploy(lam, fn.name, TAGS[n - 1])
        resp = _publish(lam, fn.name)
        assert resp["Version"] == str(n), resp
        codes[str(n)] = _app(TAGS[n - 1])
    return fn, codes


def _all_versions(lam, name: str) -> list[dict]:
    out: list[dict] = []
    for page in lam.get_paginator("list_versions_by_function").paginate(FunctionName=name):
        out.extend(page["Versions"])
    return out


def _version_ids(lam, name: str) -> list[str]:
    return [v["Version"] for v in _all_versions(lam, name)]


def _alias_names(lam, name: str, **kwargs) -> set[str]:
    out: set[str] = set()
    for page in lam.get_paginator("list_aliases").paginate(FunctionName=name, **kwargs):
        out.update(a["Name"] for a in page["Aliases"])
    return out


def _strip_meta(d: dict) -> dict:
    return {k: v for k, v in d.items() if k != "ResponseMetadata"}


def _download(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as resp:
        assert resp.status == 200
        return resp.read()


# ---------------------------------------------------------------- PublishVersion


def test_publish_version_returns_201_with_qualified_snapshot(lam, create_fn):
    code = _app("one")
    fn = create_fn(code=code, MemorySize=256, Timeout=7, Description="function description",
                   env={"MARK": "published"})
    latest = lam.get_function_configuration(FunctionName=fn.name)

    resp = _publish(lam, fn.name)
    assert resp["Version"] == "1"
    assert resp["FunctionName"] == fn.name
    assert resp["FunctionArn"] == function_arn(fn.name, "1")
    assert resp["CodeSha256"] == b64sha256(code) == latest["CodeSha256"]
    assert resp["CodeSize"] == len(code)
    assert resp["Runtime"] == "python3.11"
    assert resp["Handler"] == "app.handler"
    assert resp["Role"] == ROLE
    assert resp["MemorySize"] == 256
    assert resp["Timeout"] == 7
    assert resp["Environment"]["Variables"] == {"MARK": "published"}
    assert LAST_MODIFIED_RE.match(resp["LastModified"]), resp["LastModified"]
    assert UUID_RE.match(resp["RevisionId"]), resp["RevisionId"]

    # The version is a real, Active, addressable resource (the waiter SDK/IaC tools use).
    lam.get_waiter("published_version_active").wait(FunctionName=fn.name, Qualifier="1",
                                                     WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    cfg = lam.get_function_configuration(FunctionName=fn.name, Qualifier="1")
    assert cfg["State"] == "Active"
    for key in ("FunctionName", "FunctionArn", "Version", "CodeSha256", "CodeSize", "Runtime", "Handler",
                "Role", "MemorySize", "Timeout", "Environment"):
        assert cfg[key] == resp[key], key

    # $LATEST is still $LATEST, unqualified ARN.
    after = lam.get_function_configuration(FunctionName=fn.name)
    assert after["Version"] == "$LATEST"
    assert after["FunctionArn"] == function_arn(fn.name)
    assert after["Description"] == "function description"

    body = invoke(lam, f"{fn.name}:1").ok()
    assert body["v"] == "one"
    assert body["mark"] == "published"
    assert body["memory"] == "256"


def test_publish_version_description_overrides_only_the_version(lam, create_fn):
    fn = create_fn(code=_app("one"), Description="function description")
    resp = _publish(lam, fn.name, Description="release 1.0")
    assert resp["Version"] == "1"
    assert resp["Description"] == "release 1.0"
    assert lam.get_function_configuration(FunctionName=fn.name, Qualifier="1")["Description"] == "release 1.0"
    assert lam.get_function_configuration(FunctionName=fn.name)["Description"] == "function description"
    listed = {v["Version"]: v for v in _all_versions(lam, fn.name)}
    assert listed["1"]["Description"] == "release 1.0"
    assert listed["$LATEST"]["Description"] == "function description"


def test_publish_without_changes_returns_existing_latest_version(lam, create_fn):
    fn = create_fn(code=_app("one"))
    first = _publish(lam, fn.name)
    assert first["Version"] == "1"

    again = lam.publish_version(FunctionName=fn.name)
    assert again["Version"] == "1"
    assert again["FunctionArn"] == function_arn(fn.name, "1")
    assert again["CodeSha256"] == first["CodeSha256"]
    assert _version_ids(lam, fn.name) == ["$LATEST", "1"]

    # A configuration-only change is a change: the next publish creates version 2.
    lam.update_function_configuration(FunctionName=fn.name, Environment={"Variables": {"MARK": "two"}})
    wait_active(lam, fn.name)
    second = _publish(lam, fn.name)
    assert second["Version"] == "2"
    assert second["Environment"]["Variables"] == {"MARK": "two"}
    assert lam.publish_version(FunctionName=fn.name)["Version"] == "2"
    assert _version_ids(lam, fn.name) == ["$LATEST", "1", "2"]
    assert invoke(lam, f"{fn.name}:1").ok()["mark"] is None
    assert invoke(lam, f"{fn.name}:2").ok()["mark"] == "two"


def test_version_numbers_are_never_reused(lam, create_fn):
    fn, _ = _versioned_fn(lam, create_fn, 2)
    assert _version_ids(lam, fn.name) == ["$LATEST", "1", "2"]

    lam.delete_function(FunctionName=fn.name, Qualifier="2")
    assert _version_ids(lam, fn.name) == ["$LATEST", "1"]

    _deploy(lam, fn.name, "three")
    third = _publish(lam, fn.name)
    assert third["Version"] == "3", "version 2 was deleted, but its number must not be reused"
    assert third["FunctionArn"] == function_arn(fn.name, "3")
    assert third["CodeSha256"] == b64sha256(_app("three"))
    assert _version_ids(lam, fn.name) == ["$LATEST", "1", "3"]

    res = invoke(lam, fn.name, Qualifier="3")
    assert res.executed_version == "3"
    assert res.ok()["v"] == "three"
    expect_client_error(lambda: invoke(lam, fn.name, Qualifier="2"), 404, "ResourceNotFoundException")


def test_publish_version_preconditions(lam, create_fn):
    code = _app("one")
    fn = create_fn(code=code)
    cfg = lam.get_function_configuration(FunctionName=fn.name)
    wrong_sha = b64sha256(b"some other package")

    expect_client_error(
        lambda: lam.publish_version(FunctionName=fn.name, CodeSha256=wrong_sha),
        (400, 412),
        ("InvalidParameterValueException", "PreconditionFailedException"),
    )
    stale_rev = "00000000-0000-4000-8000-000000000000"
    assert stale_rev != cfg["RevisionId"]
    expect_client_error(
        lambda: lam.publish_version(FunctionName=fn.name, RevisionId=stale_rev),
        412,
        "PreconditionFailedException",
    )
    assert _version_ids(lam, fn.name) == ["$LATEST"], "a failed precondition must not publish anything"

    ok = _publish(lam, fn.name, CodeSha256=b64sha256(code), RevisionId=cfg["RevisionId"])
    assert ok["Version"] == "1"
    assert ok["CodeSha256"] == b64sha256(code)
    assert _version_ids(lam, fn.name) == ["$LATEST", "1"]


def test_create_and_update_code_with_publish(lam, create_fn):
    code = _app("one")
    fn = create_fn(code=code, Publish=True)
    assert fn.config["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert fn.config["Version"] == "1"
    assert fn.config["CodeSha256"] == b64sha256(code)
    assert _version_ids(lam, fn.name) == ["$LATEST", "1"]
    assert lam.get_function_configuration(FunctionName=fn.name, Qualifier="1")["CodeSha256"] == b64sha256(code)

    resp = _deploy(lam, fn.name, "two", Publish=True)
    assert resp["Version"] == "2"
    assert resp["CodeSha256"] == b64sha256(_app("two"))
    assert _version_ids(lam, fn.name) == ["$LATEST", "1", "2"]

    res1 = invoke(lam, f"{fn.name}:1")
    res2 = invoke(lam, f"{fn.name}:2")
    assert (res1.executed_version, res1.ok()["v"]) == ("1", "one")
    assert (res2.executed_version, res2.ok()["v"]) == ("2", "two")
    assert invoke(lam, fn.name).ok()["v"] == "two"


# ---------------------------------------------------------------- ListVersionsByFunction


def test_list_versions_latest_first_then_ascending_with_pagination(lam, create_fn):
    fn, codes = _versioned_fn(lam, create_fn, 3)

    first = lam.list_versions_by_function(FunctionName=fn.name)
    assert first["ResponseMetadata"]["HTTPStatusCode"] == 200
    versions = first["Versions"]
    assert [v["Version"] for v in versions] == ["$LATEST", "1", "2", "3"]
    assert versions[0]["FunctionArn"] == function_arn(fn.name, "$LATEST")
    assert versions[0]["CodeSha256"] == b64sha256(codes["3"])
    for v in versions[1:]:
        assert v["FunctionArn"] == function_arn(fn.name, v["Version"])
        assert v["FunctionName"] == fn.name
        assert v["CodeSha256"] == b64sha256(codes[v["Version"]])
        assert v["Runtime"] == "python3.11"
    assert not first.get("NextMarker")

    seen: list[str] = []
    marker = None
    pages = 0
    while True:
        kwargs = {"MaxItems": 1}
        if marker:
            kwargs["Marker"] = marker
        page = lam.list_versions_by_function(FunctionName=fn.name, **kwargs)
        pages += 1
        assert len(page["Versions"]) <= 1
        seen.extend(v["Version"] for v in page["Versions"])
        marker = page.get("NextMarker")
        if not marker:
            break
        assert pages < 20, "pagination does not terminate"
    assert seen == ["$LATEST", "1", "2", "3"]
    assert pages >= 4

    page = lam.list_versions_by_function(FunctionName=fn.name, MaxItems=2)
    assert [v["Version"] for v in page["Versions"]] == ["$LATEST", "1"]
    assert page.get("NextMarker")
    rest = lam.list_versions_by_function(FunctionName=fn.name, MaxItems=2, Marker=page["NextMarker"])
    assert [v["Version"] for v in rest["Versions"]] == ["2", "3"]

    via_paginator = []
    for page in lam.get_paginator("list_versions_by_function").paginate(
        FunctionName=fn.name, PaginationConfig={"PageSize": 3}
    ):
        via_paginator.extend(v["Version"] for v in page["Versions"])
    assert via_paginator == ["$LATEST", "1", "2", "3"]

    expect_client_error(
        lambda: lam.list_versions_by_function(FunctionName=unique_name("missing")), 404, "ResourceNotFoundException"
    )


# ---------------------------------------------------------------- immutability


def test_published_version_keeps_code_and_configuration(lam, create_fn):
    code_one = _app("one")
    fn = create_fn(code=code_one, env={"MARK": "old"}, MemorySize=128, Timeout=3, Description="old")
    v1 = _publish(lam, fn.name)
    assert v1["Version"] == "1"

    _deploy(lam, fn.name, "two")
    lam.update_function_configuration(
        FunctionName=fn.name, Environment={"Variables": {"MARK": "new"}}, MemorySize=256, Timeout=9, Description="new"
    )
    wait_active(lam, fn.name)

    latest = invoke(lam, fn.name)
    assert latest.executed_version == "$LATEST"
    body = latest.ok()
    assert (body["v"], body["mark"], body["memory"]) == ("two", "new", "256")

    old = invoke(lam, f"{fn.name}:1")
    assert old.executed_version == "1"
    body = old.ok()
    assert (body["v"], body["mark"], body["memory"]) == ("one", "old", "128")

    cfg = lam.get_function_configuration(FunctionName=fn.name, Qualifier="1")
    assert cfg["Version"] == "1"
    assert cfg["CodeSha256"] == b64sha256(code_one)
    assert cfg["Environment"]["Variables"] == {"MARK": "old"}
    assert (cfg["MemorySize"], cfg["Timeout"]) == (128, 3)
    assert cfg["Description"] == "old"

    got = lam.get_function(FunctionName=fn.name, Qualifier="1")
    assert got["Configuration"]["Version"] == "1"
    assert got["Configuration"]["CodeSha256"] == b64sha256(code_one)
    assert _download(got["Code"]["Location"]) == code_one

    # A published version cannot be reconfigured.
    expect_client_error(
        lambda: lam.update_function_configuration(FunctionName=f"{fn.name}:1", MemorySize=512),
        400,
        BAD_INPUT,
    )
    cfg = lam.get_function_configuration(FunctionName=fn.name, Qualifier="1")
    assert cfg["MemorySize"] == 128
    assert lam.get_function_configuration(FunctionName=fn.name)["MemorySize"] == 256
    assert invoke(lam, f"{fn.name}:1").ok()["memory"] == "128"


# ---------------------------------------------------------------- addressing


def test_version_addressing_forms_and_runtime_view(lam, create_fn):
    fn, codes = _versioned_fn(lam, create_fn, 1)
    _deploy(lam, fn.name, "latest")
    v1_arn = function_arn(fn.name, "1")

    forms = [
        (dict(FunctionName=fn.name, Qualifier="1"), v1_arn),
        (dict(FunctionName=f"{fn.name}:1"), v1_arn),
        (dict(FunctionName=v1_arn), v1_arn),
        (dict(FunctionName=f"{ACCOUNT}:function:{fn.name}:1"), v1_arn),
    ]
    for kwargs, invoked_arn in forms:
        cfg = lam.get_function_configuration(**kwargs)
        assert cfg["Version"] == "1", kwargs
        assert cfg["FunctionArn"] == v1_arn, kwargs
        assert cfg["CodeSha256"] == b64sha256(codes["1"]), kwargs
        got = lam.get_function(**kwargs)
        assert got["Configuration"]["Version"] == "1", kwargs
        assert got["Configuration"]["CodeSha256"] == b64sha256(codes["1"]), kwargs

        name = kwargs.pop("FunctionName")
        res = invoke(lam, name, {"k": 1}, **kwargs)
        assert res.executed_version == "1", (name, kwargs)
        body = res.ok()
        assert body["v"] == "one", (name, kwargs)
        assert body["version"] == "1", (name, kwargs)
        assert body["env_version"] == "1", (name, kwargs)
        assert body["arn"] == invoked_arn, (name, kwargs)

    latest = invoke(lam, fn.name)
    assert latest.executed_version == "$LATEST"
    body = latest.ok()
    assert (body["v"], body["version"], body["env_version"]) == ("latest", "$LATEST", "$LATEST")
    assert body["arn"] == function_arn(fn.name)

    # unknown version
    expect_client_error(lambda: lam.get_function_configuration(FunctionName=fn.name, Qualifier="99"),
                        404, "ResourceNotFoundException")
    expect_client_error(lambda: lam.get_function(FunctionName=f"{fn.name}:99"), 404, "ResourceNotFoundException")
    expect_client_error(lambda: invoke(lam, fn.name, Qualifier="99"), 404, "ResourceNotFoundException")
    expect_client_error(lambda: invoke(lam, function_arn(fn.name, "99")), 404, "ResourceNotFoundException")


# ---------------------------------------------------------------- DeleteFunction with Qualifier


def test_delete_single_version(lam, create_fn):
    fn, _ = _versioned_fn(lam, create_fn, 2)
    _deploy(lam, fn.name, "latest")

    resp = lam.delete_function(FunctionName=fn.name, Qualifier="1")
    assert resp["ResponseMetadata"]["HTTPStatusCode"] in (200, 204)

    expect_client_error(lambda: lam.get_function_configuration(FunctionName=fn.name, Qualifier="1"),
                        404, "ResourceNotFoundException")
    expect_client_error(lambda: invoke(lam, f"{fn.name}:1"), 404, "ResourceNotFoundException")
    expect_client_error(lambda: lam.delete_function(FunctionName=fn.name, Qualifier="1"),
                        404, "ResourceNotFoundException")
    assert _version_ids(lam, fn.name) == ["$LATEST", "2"]

    # the function and the other version are untouched
    assert invoke(lam, fn.name).ok()["v"] == "latest"
    res = invoke(lam, fn.name, Qualifier="2")
    assert (res.executed_version, res.ok()["v"]) == ("2", "two")
    assert lam.get_function(FunctionName=fn.name)["Configuration"]["Version"] == "$LATEST"


def test_delete_latest_qualifier_is_rejected(lam, create_fn):
    fn, _ = _versioned_fn(lam, create_fn, 1)
    expect_client_error(lambda: lam.delete_function(FunctionName=fn.name, Qualifier="$LATEST"),
                        400, "InvalidParameterValueException")
    assert _version_ids(lam, fn.name) == ["$LATEST", "1"]
    assert invoke(lam, fn.name).ok()["v"] == "one"


def test_delete_version_referenced_by_alias_is_409(lam, create_fn):
    fn, _ = _versioned_fn(lam, create_fn, 2)
    lam.create_alias(FunctionName=fn.name, Name="live", FunctionVersion="2")

    expect_client_error(lambda: lam.delete_function(FunctionName=fn.name, Qualifier="2"),
                        409, "ResourceConflictException")
    assert _version_ids(lam, fn.name) == ["$LATEST", "1", "2"]
    res = invoke(lam, f"{fn.name}:live")
    assert (res.executed_version, res.ok()["v"]) == ("2", "two")

    # once the alias moves away the version can go
    lam.update_alias(FunctionName=fn.name, Name="live", FunctionVersion="1")
    lam.delete_function(FunctionName=fn.name, Qualifier="2")
    assert _version_ids(lam, fn.name) == ["$LATEST", "1"]
    res = invoke(lam, f"{fn.name}:live")
    assert (res.executed_version, res.ok()["v"]) == ("1", "one")


def test_unqualified_delete_removes_versions_and_aliases(lam, create_fn):
    fn, _ = _versioned_fn(lam, create_fn, 2)
    lam.create_alias(FunctionName=fn.name, Name="live", FunctionVersion="1")

    lam.delete_function(FunctionName=fn.name)

    expect_client_error(lambda: lam.get_function(FunctionName=fn.name), 404, "ResourceNotFoundException")
    for q in ("1", "2", "live"):
        expect_client_error(lambda: lam.get_function_configuration(FunctionName=fn.name, Qualifier=q),
                            404, "ResourceNotFoundException")
        expect_client_error(lambda: invoke(lam, f"{fn.name}:{q}"), 404, "ResourceNotFoundException")
    expect_client_error(lambda: lam.get_alias(FunctionName=fn.name, Name="live"), 404, "ResourceNotFoundException")
    expect_client_error(lambda: lam.list_versions_by_function(FunctionName=fn.name), 404, "ResourceNotFoundException")

    # The name is free again and numbering restarts with a fresh function.
    lam.create_function(FunctionName=fn.name, Runtime="python3.11", Role=ROLE, Handler="app.handler",
                        Code={"ZipFile": _app("reborn")})
    wait_active(lam, fn.name)
    assert _version_ids(lam, fn.name) == ["$LATEST"]
    expect_client_error(lambda: lam.get_alias(FunctionName=fn.name, Name="live"), 404, "ResourceNotFoundException")
    assert _publish(lam, fn.name)["Version"] == "1"
    assert invoke(lam, f"{fn.name}:1").ok()["v"] == "reborn"


# ---------------------------------------------------------------- aliases: CRUD


def test_alias_create_get_update_list_delete(lam, create_fn):
    fn, _ = _versioned_fn(lam, create_fn, 2)
    live_arn = function_arn(fn.name, "live")

    created = lam.create_alias(FunctionName=fn.name, Name="live", FunctionVersion="1", Description="production")
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert created["AliasArn"] == live_arn
    assert created["Name"] == "live"
    assert created["FunctionVersion"] == "1"
    assert created["Description"] == "production"
    assert UUID_RE.match(created["RevisionId"]), created["RevisionId"]

    got = lam.get_alias(FunctionName=fn.name, Name="live")
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 200
    for key in ("AliasArn", "Name", "FunctionVersion", "Description", "RevisionId"):
        assert got[key] == created[key], key
    # the alias can also be read through the function ARN
    assert lam.get_alias(FunctionName=function_arn(fn.name), Name="live")["AliasArn"] == live_arn

    updated = lam.update_alias(FunctionName=fn.name, Name="live", FunctionVersion="2")
    assert updated["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert updated["FunctionVersion"] == "2"
    assert updated["AliasArn"] == live_arn
    assert updated["Description"] == "production"  # unchanged when not given
    assert updated["RevisionId"] != created["RevisionId"]
    assert lam.get_alias(FunctionName=fn.name, Name="live")["FunctionVersion"] == "2"

    # RevisionId precondition
    expect_client_error(
        lambda: lam.update_alias(FunctionName=fn.name, Name="live", FunctionVersion="1",
                                 RevisionId=created["RevisionId"]),
        412,
        "PreconditionFailedException",
    )
    assert lam.get_alias(FunctionName=fn.name, Name="live")["FunctionVersion"] == "2"
    again = lam.update_alias(FunctionName=fn.name, Name="live", Description="prod v2", RevisionId=updated["RevisionId"])
    assert again["Description"] == "prod v2"
    assert again["FunctionVersion"] == "2"

    lam.create_alias(FunctionName=fn.name, Name="beta", FunctionVersion="1")
    lam.create_alias(FunctionName=fn.name, Name="edge", FunctionVersion="$LATEST")
    listed = lam.list_aliases(FunctionName=fn.name)
    assert listed["ResponseMetadata"]["HTTPStatusCode"] == 200
    by_name = {a["Name"]: a for a in listed["Aliases"]}
    assert set(by_name) == {"live", "beta", "edge"}
    assert by_name["live"]["FunctionVersion"] == "2"
    assert by_name["live"]["AliasArn"] == live_arn
    assert by_name["beta"]["FunctionVersion"] == "1"
    assert by_name["edge"]["FunctionVersion"] == "$LATEST"
    assert _alias_names(lam, fn.name, FunctionVersion="2") == {"live"}
    assert _alias_names(lam, fn.name, FunctionVersion="1") == {"beta"}

    deleted = lam.delete_alias(FunctionName=fn.name, Name="live")
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    expect_client_error(lambda: lam.get_alias(FunctionName=fn.name, Name="live"), 404, "ResourceNotFoundException")
    expect_client_error(lambda: invoke(lam, f"{fn.name}:live"), 404, "ResourceNotFoundException")
    assert _alias_names(lam, fn.name) == {"beta", "edge"}
    # the version the alias pointed to is still there
    assert invoke(lam, f"{fn.name}:2").ok()["v"] == "two"


def test_alias_validation_errors(lam, lam_novalidate, create_fn):
    fn, _ = _versioned_fn(lam, create_fn, 1)
    lam.create_alias(FunctionName=fn.name, Name="live", FunctionVersion="1")

    expect_client_error(lambda: lam.create_alias(FunctionName=fn.name, Name="live", FunctionVersion="1"),
                        409, "ResourceConflictException")
    expect_client_error(lambda: lam.create_alias(FunctionName=fn.name, Name="ghost", FunctionVersion="42"),
                        (404, 400), ("ResourceNotFoundException", "InvalidParameterValueException"))
    expect_client_error(lambda: lam.get_alias(FunctionName=fn.name, Name="ghost"), 404, "ResourceNotFoundException")
    expect_client_error(lambda: lam_novalidate.create_alias(FunctionName=fn.name, Name="123", FunctionVersion="1"),
                        400, BAD_INPUT)
    expect_client_error(lambda: lam.update_alias(FunctionName=fn.name, Name="live", FunctionVersion="42"),
                        (404, 400), ("ResourceNotFoundException", "InvalidParameterValueException"))
    assert lam.get_alias(FunctionName=fn.name, Name="live")["FunctionVersion"] == "1"
    expect_client_error(lambda: lam.get_alias(FunctionName=fn.name, Name="nope"), 404, "ResourceNotFoundException")
    expect_client_error(lambda: lam.update_alias(FunctionName=fn.name, Name="nope", FunctionVersion="1"),
                        404, "ResourceNotFoundException")
    expect_client_error(lambda: lam.delete_alias(FunctionName=fn.name, Name="nope"), 404, "ResourceNotFoundException")
    expect_client_error(
        lambda: lam.create_alias(FunctionName=unique_name("missing"), Name="live", FunctionVersion="1"),
        404, "ResourceNotFoundException",
    )
    assert _alias_names(lam, fn.name) == {"live"}


def test_alias_on_latest_without_weights(lam, create_fn):
    fn = create_fn(code=_app("one"))
    created = lam.create_alias(FunctionName=fn.name, Name="dev", FunctionVersion="$LATEST")
    assert created["FunctionVersion"] == "$LATEST"
    assert created["AliasArn"] == function_arn(fn.name, "dev")

    res = invoke(lam, f"{fn.name}:dev")
    assert res.executed_version == "$LATEST"
    body = res.ok()
    assert (body["v"], body["version"]) == ("one", "$LATEST")
    assert body["arn"] == function_arn(fn.name, "dev")

    _deploy(lam, fn.name, "two")  # the alias follows $LATEST
    res = invoke(lam, fn.name, Qualifier="dev")
    assert (res.executed_version, res.ok()["v"]) == ("$LATEST", "two")


# ---------------------------------------------------------------- aliases: invocation


def test_invoke_through_alias_runs_alias_version(lam, create_fn):
    fn, codes = _versioned_fn(lam, create_fn, 2)
    _deploy(lam, fn.name, "latest")
    lam.create_alias(FunctionName=fn.name, Name="live", FunctionVersion="1")
    alias_arn = function_arn(fn.name, "live")

    for name, kwargs in (
        (f"{fn.name}:live", {}),
        (fn.name, {"Qualifier": "live"}),
        (alias_arn, {}),
    ):
        res = invoke(lam, name, **kwargs)
        assert res.executed_version == "1", (name, kwargs)
        body = res.ok()
        assert body["v"] == "one", (name, kwargs)
        assert body["version"] == "1", (name, kwargs)
        assert body["env_version"] == "1", (name, kwargs)
        assert body["arn"] == alias_arn, (name, kwargs)
        assert body["arn"].endswith(":live")

    cfg = lam.get_function_configuration(FunctionName=fn.name, Qualifier="live")
    assert cfg["Version"] == "1"
    assert cfg["CodeSha256"] == b64sha256(codes["1"])

    lam.update_alias(FunctionName=fn.name, Name="live", FunctionVersion="2")
    res = invoke(lam, f"{fn.name}:live")
    assert res.executed_version == "2"
    body = res.ok()
    assert (body["v"], body["version"], body["env_version"]) == ("two", "2", "2")
    assert body["arn"] == alias_arn
    assert lam.get_function_configuration(FunctionName=fn.name, Qualifier="live")["Version"] == "2"

    # unqualified invoke is unaffected by the alias
    res = invoke(lam, fn.name)
    assert (res.executed_version, res.ok()["v"]) == ("$LATEST", "latest")


# ---------------------------------------------------------------- aliases: weighted routing


def test_weighted_alias_routes_between_two_versions(lam, create_fn):
    fn, _ = _versioned_fn(lam, create_fn, 2)
    created = lam.create_alias(FunctionName=fn.name, Name="canary", FunctionVersion="1",
                               RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}})
    assert created["FunctionVersion"] == "1"
    assert created["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.5}}
    got = lam.get_alias(FunctionName=fn.name, Name="canary")
    assert got["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.5}}

    alias_arn = function_arn(fn.name, "canary")
    expected_tag = {"1": "one", "2": "two"}
    counts: collections.Counter = collections.Counter()
    for i in range(200):
        res = invoke(lam, f"{fn.name}:canary", {"i": i})
        body = res.ok()
        executed = res.executed_version
        assert executed in ("1", "2"), executed
        assert body["v"] == expected_tag[executed], (executed, body)
        assert body["version"] == executed, (executed, body)
        assert body["arn"] == alias_arn, body
        counts[executed] += 1
    assert counts["1"] >= 40 and counts["2"] >= 40, f"50/50 routing over 200 invokes gave {dict(counts)}"

    # weight 0.0: always the primary version
    upd = lam.update_alias(FunctionName=fn.name, Name="canary",
                           RoutingConfig={"AdditionalVersionWeights": {"2": 0.0}})
    assert upd["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.0}}
    executed = {invoke(lam, f"{fn.name}:canary").executed_version for _ in range(30)}
    assert executed == {"1"}, executed

    # weight 1.0: always the additional version
    lam.update_alias(FunctionName=fn.name, Name="canary", RoutingConfig={"AdditionalVersionWeights": {"2": 1.0}})
    assert lam.get_alias(FunctionName=fn.name, Name="canary")["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 1.0}}
    results = [invoke(lam, f"{fn.name}:canary") for _ in range(30)]
    assert {r.executed_version for r in results} == {"2"}
    assert {r.ok()["v"] for r in results} == {"two"}


def test_weighted_alias_validation(lam, lam_novalidate, create_fn):
    fn, _ = _versioned_fn(lam, create_fn, 3)
    name = fn.name

    def create(alias: str, version: str, weights: dict):
        return lam_novalidate.create_alias(FunctionName=name, Name=alias, FunctionVersion=version,
                                           RoutingConfig={"AdditionalVersionWeights": weights})

    expect_client_error(lambda: create("w-high", "1", {"2": 1.5}), 400, BAD_INPUT)
    expect_client_error(lambda: create("w-neg", "1", {"2": -0.5}), 400, BAD_INPUT)
    expect_client_error(lambda: create("w-two", "1", {"2": 0.2, "3": 0.2}), 400, BAD_INPUT)
    expect_client_error(lambda: create("w-self", "1", {"1": 0.5}), 400, BAD_INPUT)
    expect_client_error(lambda: create("w-latest", "$LATEST", {"1": 0.5}), 400, "InvalidParameterValueException")
    expect_client_error(lambda: create("w-addlatest", "1", {"$LATEST": 0.5}), 400, BAD_INPUT)
    for alias in ("w-high", "w-neg", "w-two", "w-self", "w-latest", "w-addlatest"):
        expect_client_error(lambda: lam.get_alias(FunctionName=name, Name=alias), 404, "ResourceNotFoundException")
    assert _alias_names(lam, name) == set()

    # the same rules apply to UpdateAlias, and a rejected update changes nothing
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1",
                     RoutingConfig={"AdditionalVersionWeights": {"2": 0.25}})

    def update(**kwargs):
        return lam_novalidate.update_alias(FunctionName=name, Name="live", **kwargs)

    expect_client_error(lambda: update(RoutingConfig={"AdditionalVersionWeights": {"2": 2.0}}), 400, BAD_INPUT)
    expect_client_error(lambda: update(RoutingConfig={"AdditionalVersionWeights": {"2": 0.1, "3": 0.1}}), 400, BAD_INPUT)
    weights = {"AdditionalVersionWeights": {"2": 0.25}}
    expect_client_error(lambda: update(FunctionVersion="$LATEST", RoutingConfig=weights),
                        400, "InvalidParameterValueException")
    expect_client_error(lambda: update(FunctionVersion="2", RoutingConfig=weights), 400, BAD_INPUT)  # primary == additional
    got = lam.get_alias(FunctionName=name, Name="live")
    assert got["FunctionVersion"] == "1"
    assert got["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.25}}


# ---------------------------------------------------------------- durability


def _create(lam, name: str, tag: str, **kwargs) -> None:
    lam.create_function(FunctionName=name, Runtime="python3.11", Role=ROLE, Handler="app.handler",
                        Code={"ZipFile": _app(tag)}, **kwargs)
    wait_active(lam, name)


def test_versions_and_aliases_survive_restart(server_factory):
    srv = server_factory.new("versions")
    lam = srv.lambda_client()
    name = unique_name("versions-restart")
    _create(lam, name, "one", Environment={"Variables": {"MARK": "v1"}})
    assert _publish(lam, name, Description="first")["Version"] == "1"
    _deploy(lam, name, "two")
    lam.update_function_configuration(FunctionName=name, Environment={"Variables": {"MARK": "v2"}})
    wait_active(lam, name)
    assert _publish(lam, name)["Version"] == "2"
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1", Description="prod")
    lam.create_alias(FunctionName=name, Name="canary", FunctionVersion="1",
                     RoutingConfig={"AdditionalVersionWeights": {"2": 1.0}})
    # version 3 is published and deleted: its number must stay used after the restart
    _deploy(lam, name, "three")
    assert _publish(lam, name)["Version"] == "3"
    lam.delete_function(FunctionName=name, Qualifier="3")

    versions_before = [_strip_meta(v) for v in _all_versions(lam, name)]
    aliases_before = {a: _strip_meta(lam.get_alias(FunctionName=name, Name=a)) for a in ("live", "canary")}
    assert [v["Version"] for v in versions_before] == ["$LATEST", "1", "2"]

    def check(client):
        versions = _all_versions(client, name)
        assert [v["Version"] for v in versions] == ["$LATEST", "1", "2"]
        for before, after in zip(versions_before, versions):
            for key in ("FunctionArn", "CodeSha256", "CodeSize", "Environment", "Description", "RevisionId"):
                assert after.get(key) == before.get(key), (after["Version"], key)
        for alias, before in aliases_before.items():
            got = _strip_meta(client.get_alias(FunctionName=name, Name=alias))
            for key in ("AliasArn", "Name", "FunctionVersion", "Description", "RevisionId", "RoutingConfig"):
                assert got.get(key) == before.get(key), (alias, key)
        res = invoke(client, f"{name}:live")
        assert res.executed_version == "1"
        assert (res.ok()["v"], res.ok()["mark"]) == ("one", "v1")
        res = invoke(client, f"{name}:canary")
        assert (res.executed_version, res.ok()["v"]) == ("2", "two")
        res = invoke(client, name, Qualifier="2")
        assert (res.executed_version, res.ok()["mark"]) == ("2", "v2")
        assert invoke(client, name).ok()["v"] == "three"
        expect_client_error(lambda: invoke(client, name, Qualifier="3"), 404, "ResourceNotFoundException")

    check(lam)

    rc, _ = srv.stop()
    assert rc == 0, srv.log_tail()
    srv.start()
    lam = srv.lambda_client()
    check(lam)

    # numbering continues after the highest number ever used (3 was deleted)
    _deploy(lam, name, "four")
    assert _publish(lam, name)["Version"] == "4"
    lam.update_alias(FunctionName=name, Name="live", FunctionVersion="4")
    live_rev = lam.get_alias(FunctionName=name, Name="live")["RevisionId"]

    # crash: no chance to flush anything
    srv.kill()
    srv.start()
    lam = srv.lambda_client()
    assert _version_ids(lam, name) == ["$LATEST", "1", "2", "4"]
    alias = lam.get_alias(FunctionName=name, Name="live")
    assert (alias["FunctionVersion"], alias["RevisionId"]) == ("4", live_rev)
    res = invoke(lam, f"{name}:live")
    assert (res.executed_version, res.ok()["v"]) == ("4", "four")
    res = invoke(lam, f"{name}:1")
    assert (res.executed_version, res.ok()["v"]) == ("1", "one")


def test_description_change_publishes_and_list_functions_all_versions(lam, create_fn):
    fn = create_fn(code={"app.py": "def handler(e, c):\n    return 1\n"}, Publish=True)
    lam.update_function_configuration(FunctionName=fn.name, Description="changed")
    assert lam.publish_version(FunctionName=fn.name)["Version"] == "2"
    # Nothing changed since: the same version comes back, whatever the override says.
    assert lam.publish_version(FunctionName=fn.name, Description="override")["Version"] == "2"
    arn = f"arn:aws:lambda:us-east-1:000000000000:function:{fn.name}"
    seen = [
        (f["Version"], f["FunctionArn"])
        for page in lam.get_paginator("list_functions").paginate(FunctionVersion="ALL", PaginationConfig={"PageSize": 1})
        for f in page["Functions"]
        if f["FunctionName"] == fn.name
    ]
    assert seen == [("$LATEST", f"{arn}:$LATEST"), ("1", f"{arn}:1"), ("2", f"{arn}:2")]
    plain = [f for page in lam.get_paginator("list_functions").paginate() for f in page["Functions"] if f["FunctionName"] == fn.name]
    assert [f["Version"] for f in plain] == ["$LATEST"] and plain[0]["FunctionArn"] == arn
