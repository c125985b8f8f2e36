"""Lambda layers through boto3: PublishLayerVersion, GetLayerVersion(ByArn),
ListLayerVersions, ListLayers, DeleteLayerVersion, layer-version permissions,
and functions that use layers (Python, Node.js, PATH/LD_LIBRARY_PATH, a
custom runtime's bootstrap shipped in a layer), limits and durability.

Nimbus runs execution environments as plain host processes, so a function's
merged layer tree is a host directory rather than the literal `/opt`; its
path is in NIMBUS_OPT_DIR (set only when the function has layers). Functions
here find layer content the way they do on Lambda: Python imports from
<opt>/python and <opt>/python/lib/python3.X/site-packages, Node requires from
<opt>/nodejs/node_modules and <opt>/nodejs/node<major>/node_modules,
executables in <opt>/bin are on PATH, <opt>/lib is on LD_LIBRARY_PATH, and a
provided.al2023 function without its own bootstrap runs <opt>/bootstrap.
Nothing below looks at the literal path /opt.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import stat
import urllib.request
import zipfile
from dataclasses import dataclass

import pytest

from .conftest import (
    ACCOUNT,
    LAST_MODIFIED_RE,
    NODE,
    REGION,
    ROLE,
    b64sha256,
    bash_runtime_zip,
    client_error,
    expect_client_error,
    invoke,
    is_cold_report,
    make_zip,
    python_custom_runtime_zip,
    unique_name,
    wait_active,
)

RUNTIME = "python3.11"
NODE_RUNTIME = "nodejs20.x"
BAD_INPUT = ("InvalidParameterValueException", "ValidationException")
MISSING_LAYER = ("InvalidParameterValueException", "ResourceNotFoundException")
STALE_REVISION = "00000000-0000-4000-8000-000000000000"
MiB = 1024 * 1024

# Reports what the function could load from its layers. Every module the tests
# ship defines VALUE; "file" is the resolved path it was imported from.
PY_APP = """\
import importlib, os, shutil, subprocess, sys

def _load(name):
    try:
        mod = importlib.import_module(name)
    except Exception as exc:
        return {"error": type(exc).__name__}
    return {"value": getattr(mod, "VALUE", None), "file": os.path.realpath(mod.__file__)}

def _entries(var):
    return [os.path.realpath(p) for p in os.environ.get(var, "").split(":") if p]

def _opt_file(opt, rel):
    path = os.path.join(opt, rel)
    return os.path.realpath(path) if os.path.exists(path) else None

def handler(event, context):
    opt = os.environ.get("NIMBUS_OPT_DIR")
    out = {
        "minor": sys.version_info[1],
        "opt": opt,
        "opt_real": os.path.realpath(opt) if opt else None,
        "opt_files": {rel: _opt_file(opt, rel) for rel in event.get("opt_files", [])} if opt else None,
        "mark": os.environ.get("MARK"),
        "path_entries": _entries("PATH"),
        "ld_entries": _entries("LD_LIBRARY_PATH"),
        "modules": {name: _load(name) for name in event.get("modules", [])},
    }
    if event.get("which"):
        exe = shutil.which(event["which"])
        out["which"] = os.path.realpath(exe) if exe else None
        if exe:
            proc = subprocess.run([event["which"], "arg-1"], capture_output=True, text=True, timeout=10)
            out["run"] = {"rc": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr}
    if event.get("lib"):
        out["lib_dirs"] = [d for d in _entries("LD_LIBRARY_PATH") if os.path.isfile(os.path.join(d, event["lib"]))]
    return out
"""

NODE_APP = """\
'use strict';
const fs = require('fs');
const path = require('path');
exports.handler = async (event) => {
  const opt = process.env.NIMBUS_OPT_DIR || null;
  const out = { opt, optFiles: {}, modules: {} };
  for (const rel of event.optFiles || []) {
    const p = opt && path.join(opt, rel);
    out.optFiles[rel] = p && fs.existsSync(p) ? fs.realpathSync(p) : null;
  }
  for (const name of event.modules || []) {
    try {
      const mod = require(name);
      out.modules[name] = { value: mod.VALUE, file: fs.realpathSync(require.resolve(name)) };
    } catch (err) {
      out.modules[name] = { error: err.code || err.name };
    }
  }
  return out;
};
"""

# Layer 1 ships a module in python/, a package in the 3.11 site-packages dir,
# and one `sp_minor` module per python3.N site-packages dir (VALUE = N), so the
# interpreter must pick the site-packages dir of its own minor version.
LAYER_ONE = {
    "python/layer_one.py": 'VALUE = "one"\n',
    "python/shared.py": 'VALUE = "layer1"\n',
    "python/lib/python3.11/site-packages/layer_sp/__init__.py": 'VALUE = "site-packages"\n',
    **{f"python/lib/python3.{m}/site-packages/sp_minor.py": f"VALUE = {m}\n" for m in range(8, 16)},
}
LAYER_TWO = {
    "python/layer_two.py": 'VALUE = "two"\n',
    "python/shared.py": 'VALUE = "layer2"\n',
}


def layer_arn(name: str, version: int | None = None) -> str:
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:{name}"
    return f"{arn}:{version}" if version is not None else arn


def _py_app(extra: dict | None = None) -> bytes:
    return make_zip({"app.py": PY_APP, **(extra or {})})


def _layers_of(cfg: dict) -> list[dict]:
    """FunctionConfiguration.Layers reduced to Arn + CodeSize ([] when absent)."""
    return [{"Arn": layer["Arn"], "CodeSize": layer["CodeSize"]} for layer in cfg.get("Layers") or []]


def _strip_meta(d: dict) -> dict:
    return {k: v for k, v in d.items() if k != "ResponseMetadata"}


def _without_location(d: dict) -> dict:
    """A layer version without ResponseMetadata and Content.Location (a URL that may be re-signed per call)."""
    out = _strip_meta(d)
    out["Content"] = {k: v for k, v in out.get("Content", {}).items() if k != "Location"}
    return out


def _download(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as resp:
        assert resp.status == 200
        return resp.read()


def _versions(lam, name: str, **kwargs) -> list[int]:
    return [v["Version"] for v in lam.list_layer_versions(LayerName=name, **kwargs)["LayerVersions"]]


def _all_layers(lam, **kwargs) -> dict[str, dict]:
    """ListLayers over every page, by LayerName; fails on a repeated name."""
    out: dict[str, dict] = {}
    marker = None
    for _ in range(10_000):
        args = dict(kwargs)
        if marker:
            args["Marker"] = marker
        page = lam.list_layers(**args)
        for item in page["Layers"]:
            assert item["LayerName"] not in out, f"layer {item['LayerName']} listed twice"
            out[item["LayerName"]] = item
        new = page.get("NextMarker")
        if not new:
            return out
        assert new != marker, "NextMarker did not advance"
        marker = new
    raise AssertionError("ListLayers pagination did not terminate")


def _policy(lam, name: str, version: int) -> tuple[dict, str]:
    resp = lam.get_layer_version_policy(LayerName=name, VersionNumber=version)
    return json.loads(resp["Policy"]), resp["RevisionId"]


def _create_args(name: str, code: bytes, runtime: str = RUNTIME, handler: str = "app.handler", **kwargs) -> dict:
    return dict(FunctionName=name, Runtime=runtime, Role=ROLE, Handler=handler, Code={"ZipFile": code}, **kwargs)


def _assert_absent(lam, name: str) -> None:
    expect_client_error(lambda: lam.get_function(FunctionName=name), 404, "ResourceNotFoundException")


def _zeros_zip(files: dict[str, str], big_name: str, mb: int) -> bytes:
    """A small zip whose entry `big_name` inflates to `mb` MiB of zeros."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in files.items():
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            zf.writestr(info, content)
        info = zipfile.ZipInfo(big_name, date_time=(2020, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        info.create_system = 3
        info.external_attr = (stat.S_IFREG | 0o644) << 16
        with zf.open(info, "w", force_zip64=True) as w:
            chunk = bytes(MiB)
            for _ in range(mb):
                w.write(chunk)
    data = buf.getvalue()
    assert len(data) < 2 * MiB, len(data)
    return data


# ---------------------------------------------------------------- fixtures


@dataclass
class Layer:
    name: str
    version: int
    arn: str  # LayerVersionArn
    zip: bytes
    resp: dict


class LayerFactory:
    """publish_layer(files | zip_bytes=..., name=..., **PublishLayerVersion args) -> Layer;
    every version published is deleted at teardown."""

    def __init__(self, lam, prefix: str):
        self.lam = lam
        self.prefix = prefix
        self.published: list[tuple[str, int]] = []

    def __call__(self, files=None, *, name=None, zip_bytes=None, modes=None, **kwargs) -> Layer:
        name = name or unique_name(self.prefix)
        data = zip_bytes if zip_bytes is not None else make_zip(files or {"python/placeholder.py": "VALUE = 0\n"}, modes)
        resp = self.lam.publish_layer_version(LayerName=name, Content={"ZipFile": data}, **kwargs)
        assert resp["ResponseMetadata"]["HTTPStatusCode"] == 201, resp["ResponseMetadata"]
        self.published.append((name, resp["Version"]))
        return Layer(name, resp["Version"], resp["LayerVersionArn"], bytes(data), resp)

    def cleanup(self) -> None:
        for name, version in self.published:
            with contextlib.suppress(Exception):
                self.lam.delete_layer_version(LayerName=name, VersionNumber=version)


@pytest.fixture
def publish_layer(request, lam):
    factory = LayerFactory(lam, request.node.name)
    yield factory
    factory.cleanup()


# ---------------------------------------------------------------- PublishLayerVersion


def test_publish_layer_version_returns_201_with_content(lam, publish_layer):
    code = make_zip({"python/pub_mod.py": 'VALUE = "published"\n'})
    layer = publish_layer(
        zip_bytes=code,
        Description="shared helpers",
        CompatibleRuntimes=["python3.11", "python3.12"],
        CompatibleArchitectures=["x86_64"],
        LicenseInfo="MIT",
    )
    resp = layer.resp
    assert resp["LayerArn"] == layer_arn(layer.name)
    assert resp["LayerVersionArn"] == layer_arn(layer.name, 1)
    assert resp["Version"] == 1
    assert resp["Description"] == "shared helpers"
    assert resp["CompatibleRuntimes"] == ["python3.11", "python3.12"]
    assert resp["CompatibleArchitectures"] == ["x86_64"]
    assert resp["LicenseInfo"] == "MIT"
    assert isinstance(resp["CreatedDate"], str) and LAST_MODIFIED_RE.match(resp["CreatedDate"]), resp["CreatedDate"]
    content = resp["Content"]
    assert content["CodeSha256"] == b64sha256(code)
    assert content["CodeSize"] == len(code)
    assert _download(content["Location"]) == code

    # Unlike PublishVersion, identical content still makes a new layer version.
    second = publish_layer(zip_bytes=code, name=layer.name)
    assert second.version == 2
    assert second.resp["LayerArn"] == layer_arn(layer.name)
    assert second.resp["LayerVersionArn"] == layer_arn(layer.name, 2)
    assert second.resp["Content"]["CodeSha256"] == b64sha256(code)
    assert second.resp.get("Description", "") == ""
    assert not second.resp.get("CompatibleRuntimes")
    assert _versions(lam, layer.name) == [2, 1]


def test_layer_version_numbers_are_never_reused(lam, publish_layer):
    v1 = publish_layer({"python/n.py": "VALUE = 1\n"})
    v2 = publish_layer({"python/n.py": "VALUE = 2\n"}, name=v1.name)
    assert (v1.version, v2.version) == (1, 2)

    lam.delete_layer_version(LayerName=v1.name, VersionNumber=2)
    v3 = publish_layer({"python/n.py": "VALUE = 3\n"}, name=v1.name)
    assert v3.version == 3, "version 2 was deleted, but its number must not be reused"
    assert v3.arn == layer_arn(v1.name, 3)
    assert _versions(lam, v1.name) == [3, 1]

    # Even with every version deleted, the layer's numbering continues.
    lam.delete_layer_version(LayerName=v1.name, VersionNumber=1)
    lam.delete_layer_version(LayerName=v1.name, VersionNumber=3)
    v4 = publish_layer({"python/n.py": "VALUE = 4\n"}, name=v1.name)
    assert v4.version == 4
    assert _versions(lam, v1.name) == [4]


def test_publish_layer_version_rejects_bad_input(lam, lam_novalidate, publish_layer):
    name = unique_name("bad-layer")
    good = make_zip({"python/ok.py": "VALUE = 1\n"})

    def publish(client=lam, layer_name=name, **kwargs):
        args = dict(LayerName=layer_name, Content={"ZipFile": good})
        args.update(kwargs)
        return lambda: client.publish_layer_version(**args)

    expect_client_error(publish(Content={"ZipFile": b"this is not a zip archive"}), 400, "InvalidParameterValueException")
    expect_client_error(publish(Content={"S3Bucket": "some-bucket", "S3Key": "layer.zip"}), 400, BAD_INPUT)
    for bad_name in ("bad.name", "bad name", "x" * 141):
        expect_client_error(publish(layer_name=bad_name), 400, BAD_INPUT)
    expect_client_error(publish(client=lam_novalidate, CompatibleRuntimes=["cobol42"]), 400, BAD_INPUT)
    expect_client_error(publish(client=lam_novalidate, CompatibleRuntimes=[RUNTIME] * 16), 400, BAD_INPUT)
    expect_client_error(
        publish(client=lam_novalidate, CompatibleArchitectures=["x86_64", "arm64", "x86_64"]), 400, BAD_INPUT
    )
    expect_client_error(publish(client=lam_novalidate, CompatibleArchitectures=["sparc"]), 400, BAD_INPUT)
    expect_client_error(publish(client=lam_novalidate, LicenseInfo="L" * 513), 400, BAD_INPUT)

    # None of the refused requests created the layer or consumed a version number.
    assert name not in _all_layers(lam)
    first = publish_layer(zip_bytes=good, name=name)
    assert first.version == 1
    assert first.resp["Content"]["CodeSha256"] == b64sha256(good)


# ---------------------------------------------------------------- Get / List / Delete


def test_get_layer_version_by_name_and_by_arn(lam, publish_layer):
    code = make_zip({"python/get_mod.py": "VALUE = 1\n"})
    layer = publish_layer(zip_bytes=code, Description="get me", CompatibleRuntimes=[RUNTIME],
                          CompatibleArchitectures=["x86_64", "arm64"], LicenseInfo="Apache-2.0")
    published = _without_location(layer.resp)

    got = lam.get_layer_version(LayerName=layer.name, VersionNumber=1)
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert _without_location(got) == published
    assert _download(got["Content"]["Location"]) == code

    by_arn = lam.get_layer_version_by_arn(Arn=layer.arn)
    assert _without_location(by_arn) == published
    assert _download(by_arn["Content"]["Location"]) == code

    # LayerName may also be the layer's ARN.
    via_layer_arn = lam.get_layer_version(LayerName=layer_arn(layer.name), VersionNumber=1)
    assert _without_location(via_layer_arn) == published

    expect_client_error(lambda: lam.get_layer_version(LayerName=layer.name, VersionNumber=2), 404,
                        "ResourceNotFoundException")
    expect_client_error(lambda: lam.get_layer_version(LayerName=unique_name("no-such-layer"), VersionNumber=1), 404,
                        "ResourceNotFoundException")
    expect_client_error(lambda: lam.get_layer_version_by_arn(Arn=layer_arn(layer.name, 7)), 404,
                        "ResourceNotFoundException")
    # GetLayerVersionByArn needs a layer *version* ARN.
    expect_client_error(lambda: lam.get_layer_version_by_arn(Arn=layer_arn(layer.name)), 400, BAD_INPUT)


def test_list_layer_versions_newest_first_with_filters_and_pagination(lam, publish_layer):
    v1 = publish_layer({"python/lv.py": "VALUE = 1\n"}, Description="first", CompatibleRuntimes=["python3.11"],
                       CompatibleArchitectures=["x86_64"])
    name = v1.name
    publish_layer({"python/lv.py": "VALUE = 2\n"}, name=name, Description="second",
                  CompatibleRuntimes=[NODE_RUNTIME], CompatibleArchitectures=["arm64"])
    v3 = publish_layer({"python/lv.py": "VALUE = 3\n"}, name=name, Description="third",
                       CompatibleRuntimes=["python3.11", "python3.12"], CompatibleArchitectures=["x86_64", "arm64"],
                       LicenseInfo="MIT")

    resp = lam.list_layer_versions(LayerName=name)
    items = resp["LayerVersions"]
    assert [v["Version"] for v in items] == [3, 2, 1]
    assert not resp.get("NextMarker")
    top = items[0]
    assert top["LayerVersionArn"] == v3.arn
    for key in ("Version", "Description", "CreatedDate", "CompatibleRuntimes", "CompatibleArchitectures",
                "LicenseInfo"):
        assert top[key] == v3.resp[key], key
    assert items[2]["LayerVersionArn"] == v1.arn
    assert items[2]["Description"] == "first"

    assert _versions(lam, name, CompatibleRuntime="python3.11") == [3, 1]
    assert _versions(lam, name, CompatibleRuntime=NODE_RUNTIME) == [2]
    assert _versions(lam, name, CompatibleRuntime="python3.9") == []
    assert _versions(lam, name, CompatibleArchitecture="arm64") == [3, 2]
    assert _versions(lam, name, CompatibleRuntime="python3.11", CompatibleArchitecture="arm64") == [3]

    # MaxItems/Marker: one version per page, newest first, then the paginator.
    seen: list[int] = []
    marker = None
    pages = 0
    for _ in range(10):
        args = {"MaxItems": 1}
        if marker:
            args["Marker"] = marker
        page = lam.list_layer_versions(LayerName=name, **args)
        pages += 1
        assert len(page["LayerVersions"]) <= 1, page["LayerVersions"]
        seen.extend(v["Version"] for v in page["LayerVersions"])
        marker = page.get("NextMarker")
        if not marker:
            break
    assert seen == [3, 2, 1]
    assert pages >= 3

    first_page = lam.list_layer_versions(LayerName=name, MaxItems=2)
    assert [v["Version"] for v in first_page["LayerVersions"]] == [3, 2]
    assert first_page.get("NextMarker")
    rest = lam.list_layer_versions(LayerName=name, MaxItems=2, Marker=first_page["NextMarker"])
    assert [v["Version"] for v in rest["LayerVersions"]] == [1]

    paged = [v["Version"] for page in lam.get_paginator("list_layer_versions").paginate(
        LayerName=name, PaginationConfig={"PageSize": 2}) for v in page["LayerVersions"]]
    assert paged == [3, 2, 1]


def test_list_layers_reports_latest_matching_version(lam, publish_layer):
    a1 = publish_layer({"python/la.py": "VALUE = 1\n"}, Description="a one", CompatibleRuntimes=["python3.11"],
                       LicenseInfo="MIT")
    a2 = publish_layer({"python/la.py": "VALUE = 2\n"}, name=a1.name, Description="a two",
                       CompatibleRuntimes=[NODE_RUNTIME], CompatibleArchitectures=["arm64"])
    b1 = publish_layer({"nodejs/node_modules/lb/index.js": "exports.VALUE = 1;\n"}, CompatibleRuntimes=[NODE_RUNTIME])
    gone = publish_layer({"python/gone.py": "VALUE = 1\n"})
    lam.delete_layer_version(LayerName=gone.name, VersionNumber=1)

    listed = _all_layers(lam)
    assert gone.name not in listed, "a layer without versions is not listed"
    a = listed[a1.name]
    assert a["LayerArn"] == layer_arn(a1.name)
    latest = a["LatestMatchingVersion"]
    assert latest["LayerVersionArn"] == a2.arn
    for key in ("Version", "Description", "CreatedDate", "CompatibleRuntimes", "CompatibleArchitectures"):
        assert latest[key] == a2.resp[key], key
    assert listed[b1.name]["LatestMatchingVersion"]["Version"] == 1

    py = _all_layers(lam, CompatibleRuntime="python3.11")
    assert b1.name not in py
    latest_py = py[a1.name]["LatestMatchingVersion"]
    assert (latest_py["Version"], latest_py["LayerVersionArn"]) == (1, a1.arn)
    assert latest_py["Description"] == "a one"
    assert latest_py["LicenseInfo"] == "MIT"

    arm = _all_layers(lam, CompatibleArchitecture="arm64")
    assert arm[a1.name]["LatestMatchingVersion"]["Version"] == 2

    # MaxItems=1 pages through every layer exactly once (_all_layers checks duplicates).
    one_by_one = _all_layers(lam, MaxItems=1)
    assert {a1.name, b1.name} <= set(one_by_one)
    assert gone.name not in one_by_one
    first = lam.list_layers(MaxItems=1)
    assert len(first["Layers"]) == 1


def test_delete_layer_version(lam, publish_layer):
    v1 = publish_layer({"python/del_mod.py": "VALUE = 1\n"})
    v2 = publish_layer({"python/del_mod.py": "VALUE = 2\n"}, name=v1.name)

    resp = lam.delete_layer_version(LayerName=v1.name, VersionNumber=1)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    expect_client_error(lambda: lam.get_layer_version(LayerName=v1.name, VersionNumber=1), 404,
                        "ResourceNotFoundException")
    expect_client_error(lambda: lam.get_layer_version_by_arn(Arn=v1.arn), 404, "ResourceNotFoundException")
    expect_client_error(
        lambda: lam.add_layer_version_permission(LayerName=v1.name, VersionNumber=1, StatementId="s",
                                                 Action="lambda:GetLayerVersion", Principal="*"),
        404, "ResourceNotFoundException",
    )
    assert _versions(lam, v1.name) == [2]
    assert _all_layers(lam)[v1.name]["LatestMatchingVersion"]["Version"] == 2

    # DeleteLayerVersion is idempotent.
    again = lam.delete_layer_version(LayerName=v1.name, VersionNumber=1)
    assert again["ResponseMetadata"]["HTTPStatusCode"] == 204

    kept = lam.get_layer_version(LayerName=v1.name, VersionNumber=2)
    assert kept["LayerVersionArn"] == v2.arn
    assert _download(kept["Content"]["Location"]) == v2.zip


# ---------------------------------------------------------------- permissions


def test_layer_version_permissions(lam, lam_novalidate, publish_layer):
    layer = publish_layer({"python/perm_mod.py": "VALUE = 1\n"})
    publish_layer({"python/perm_mod.py": "VALUE = 2\n"}, name=layer.name)
    name = layer.name
    expect_client_error(lambda: lam.get_layer_version_policy(LayerName=name, VersionNumber=1), 404,
                        "ResourceNotFoundException")

    resp = lam.add_layer_version_permission(LayerName=name, VersionNumber=1, StatementId="xaccount",
                                            Action="lambda:GetLayerVersion", Principal="123456789012")
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert isinstance(resp["Statement"], str)
    first = json.loads(resp["Statement"])
    assert first["Sid"] == "xaccount"
    assert first["Effect"] == "Allow"
    assert first["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"}
    assert first["Action"] == "lambda:GetLayerVersion"
    assert first["Resource"] == layer.arn
    rev1 = resp["RevisionId"]
    assert isinstance(rev1, str) and rev1

    org = lam.add_layer_version_permission(LayerName=name, VersionNumber=1, StatementId="engineering-org",
                                           Action="lambda:GetLayerVersion", Principal="*",
                                           OrganizationId="o-t194hfs8cz")
    assert org["ResponseMetadata"]["HTTPStatusCode"] == 201
    second = json.loads(org["Statement"])
    assert second["Sid"] == "engineering-org"
    assert second["Principal"] == "*"
    assert second["Resource"] == layer.arn
    assert second["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": "o-t194hfs8cz"}}
    rev2 = org["RevisionId"]
    assert rev2 and rev2 != rev1

    doc, rev = _policy(lam, name, 1)
    assert rev == rev2
    assert doc["Version"] == "2012-10-17"
    assert doc["Id"] == "default"
    assert doc["Statement"] == [first, second]

    # Policies belong to one version.
    expect_client_error(lambda: lam.get_layer_version_policy(LayerName=name, VersionNumber=2), 404,
                        "ResourceNotFoundException")

    def add(client=lam, **kwargs):
        args = dict(LayerName=name, VersionNumber=1, StatementId="another", Action="lambda:GetLayerVersion",
                    Principal="*")
        args.update(kwargs)
        return lambda: client.add_layer_version_permission(**args)

    expect_client_error(add(Action="lambda:InvokeFunction"), 400, BAD_INPUT)
    expect_client_error(add(client=lam_novalidate, Principal="someone"), 400, BAD_INPUT)
    expect_client_error(add(StatementId="xaccount"), 409, "ResourceConflictException")
    expect_client_error(add(RevisionId=STALE_REVISION), 412, "PreconditionFailedException")
    expect_client_error(add(VersionNumber=99), 404, "ResourceNotFoundException")
    doc, rev = _policy(lam, name, 1)
    assert [s["Sid"] for s in doc["Statement"]] == ["xaccount", "engineering-org"]
    assert rev == rev2, "refused requests must not change the policy"

    # A matching RevisionId is accepted.
    ok = lam.add_layer_version_permission(LayerName=name, VersionNumber=1, StatementId="third",
                                          Action="lambda:GetLayerVersion", Principal="*", RevisionId=rev2)
    assert ok["ResponseMetadata"]["HTTPStatusCode"] == 201
    rev3 = ok["RevisionId"]

    removed = lam.remove_layer_version_permission(LayerName=name, VersionNumber=1, StatementId="xaccount")
    assert removed["ResponseMetadata"]["HTTPStatusCode"] == 204
    doc, rev4 = _policy(lam, name, 1)
    assert [s["Sid"] for s in doc["Statement"]] == ["engineering-org", "third"]
    assert rev4 != rev3
    expect_client_error(
        lambda: lam.remove_layer_version_permission(LayerName=name, VersionNumber=1, StatementId="xaccount"),
        404, "ResourceNotFoundException",
    )
    expect_client_error(
        lambda: lam.remove_layer_version_permission(LayerName=name, VersionNumber=1, StatementId="never-added"),
        404, "ResourceNotFoundException",
    )
    expect_client_error(
        lambda: lam.remove_layer_version_permission(LayerName=name, VersionNumber=1, StatementId="third",
                                                    RevisionId=STALE_REVISION),
        412, "PreconditionFailedException",
    )

    lam.remove_layer_version_permission(LayerName=name, VersionNumber=1, StatementId="engineering-org")
    lam.remove_layer_version_permission(LayerName=name, VersionNumber=1, StatementId="third")
    expect_client_error(lambda: lam.get_layer_version_policy(LayerName=name, VersionNumber=1), 404,
                        "ResourceNotFoundException")


# ---------------------------------------------------------------- functions using layers


def test_python_function_imports_modules_from_its_layers(lam, create_fn, publish_layer):
    one = publish_layer(LAYER_ONE, CompatibleRuntimes=[RUNTIME])
    two = publish_layer(LAYER_TWO)
    fn = create_fn(code=_py_app(), runtime=RUNTIME, Layers=[one.arn, two.arn])

    expected = [{"Arn": one.arn, "CodeSize": len(one.zip)}, {"Arn": two.arn, "CodeSize": len(two.zip)}]
    assert _layers_of(fn.config) == expected
    assert _layers_of(lam.get_function_configuration(FunctionName=fn.name)) == expected
    assert _layers_of(lam.get_function(FunctionName=fn.name)["Configuration"]) == expected

    files = {
        "layer_one": "python/layer_one.py",
        "layer_two": "python/layer_two.py",
        "shared": "python/shared.py",
        "layer_sp": "python/lib/python3.11/site-packages/layer_sp/__init__.py",
    }
    body = invoke(lam, fn.name, {"modules": [*files, "sp_minor"], "opt_files": list(files.values())}).ok()
    assert body["minor"] == 11, f"runtime {RUNTIME} ran Python 3.{body['minor']}"
    opt = body["opt"]
    assert opt and os.path.isabs(opt), f"NIMBUS_OPT_DIR should be an absolute path, got {opt!r}"
    in_opt = body["opt_files"]
    assert all(in_opt.values()), f"missing from the merged layer directory: {in_opt}"
    mods = body["modules"]
    assert mods["layer_one"] == {"value": "one", "file": in_opt[files["layer_one"]]}
    assert mods["layer_two"] == {"value": "two", "file": in_opt[files["layer_two"]]}
    # Both layers ship python/shared.py: the later layer in the list wins.
    assert mods["shared"] == {"value": "layer2", "file": in_opt[files["shared"]]}
    assert mods["layer_sp"] == {"value": "site-packages", "file": in_opt[files["layer_sp"]]}
    assert mods["sp_minor"]["value"] == body["minor"], "site-packages of another Python version was used"


def test_layer_order_decides_and_function_code_comes_first(lam, create_fn, publish_layer):
    one = publish_layer(LAYER_ONE)
    two = publish_layer(LAYER_TWO)

    reversed_fn = create_fn(code=_py_app(), Layers=[two.arn, one.arn])
    assert [layer["Arn"] for layer in reversed_fn.config["Layers"]] == [two.arn, one.arn]
    mods = invoke(lam, reversed_fn.name, {"modules": ["shared", "layer_one", "layer_two"]}).ok()["modules"]
    assert mods["shared"]["value"] == "layer1"
    assert (mods["layer_one"]["value"], mods["layer_two"]["value"]) == ("one", "two")

    only_one = create_fn(code=_py_app(), Layers=[one.arn])
    mods = invoke(lam, only_one.name, {"modules": ["shared", "layer_two"]}).ok()["modules"]
    assert mods["shared"]["value"] == "layer1"
    assert mods["layer_two"] == {"error": "ModuleNotFoundError"}, "each function sees only its own layers"

    # The function's own code is searched before the layers.
    own = create_fn(code=_py_app({"shared.py": 'VALUE = "function"\n'}), Layers=[one.arn, two.arn])
    mods = invoke(lam, own.name, {"modules": ["shared", "layer_two"]}).ok()["modules"]
    assert mods["shared"]["value"] == "function"
    assert mods["layer_two"]["value"] == "two"


@pytest.mark.skipif(NODE is None, reason="node is not on PATH")
def test_node_function_requires_modules_from_its_layers(lam, create_fn, publish_layer):
    layer = publish_layer({
        "nodejs/node_modules/layer-greet/package.json": '{"name": "layer-greet", "version": "1.0.0", "main": "main.js"}\n',
        "nodejs/node_modules/layer-greet/main.js": "exports.VALUE = 'greetings from a layer';\n",
        "nodejs/node20/node_modules/layer-versioned/index.js": "exports.VALUE = 'node20';\n",
    }, CompatibleRuntimes=[NODE_RUNTIME])
    fn = create_fn(code=make_zip({"index.js": NODE_APP}), runtime=NODE_RUNTIME, handler="index.handler",
                   Layers=[layer.arn])
    assert _layers_of(fn.config) == [{"Arn": layer.arn, "CodeSize": len(layer.zip)}]

    greet = "nodejs/node_modules/layer-greet/main.js"
    versioned = "nodejs/node20/node_modules/layer-versioned/index.js"
    body = invoke(lam, fn.name, {"modules": ["layer-greet", "layer-versioned", "not-in-any-layer"],
                                 "optFiles": [greet, versioned]}).ok()
    assert body["opt"] and os.path.isabs(body["opt"])
    in_opt = body["optFiles"]
    assert all(in_opt.values()), f"missing from the merged layer directory: {in_opt}"
    mods = body["modules"]
    assert mods["layer-greet"] == {"value": "greetings from a layer", "file": in_opt[greet]}
    assert mods["layer-versioned"] == {"value": "node20", "file": in_opt[versioned]}
    assert mods["not-in-any-layer"] == {"error": "MODULE_NOT_FOUND"}


def test_layer_bin_is_on_path_and_lib_on_ld_library_path(lam, create_fn, publish_layer):
    layer = publish_layer(
        {
            "bin/hello-layer": '#!/bin/sh\necho "hello from layer: $1"\n',
            "lib/libnimbus-layer-probe.so": b"\x7fELF not really a library\n",
        },
        modes={"bin/hello-layer": 0o755},
    )
    fn = create_fn(code=_py_app(), Layers=[layer.arn])
    body = invoke(lam, fn.name, {"which": "hello-layer", "lib": "libnimbus-layer-probe.so",
                                 "opt_files": ["bin", "lib", "bin/hello-layer"]}).ok()
    assert body["opt"], "NIMBUS_OPT_DIR is not set for a function with layers"
    in_opt = body["opt_files"]
    assert all(in_opt.values()), f"missing from the merged layer directory: {in_opt}"
    bin_dir, lib_dir = in_opt["bin"], in_opt["lib"]
    assert bin_dir in body["path_entries"], body["path_entries"]
    assert lib_dir in body["ld_entries"], body["ld_entries"]
    assert body["which"] == in_opt["bin/hello-layer"]
    assert body["run"] == {"rc": 0, "stdout": "hello from layer: arg-1\n", "stderr": ""}
    assert lib_dir in body["lib_dirs"]


def test_custom_runtime_bootstrap_from_a_layer(lam, create_fn, publish_layer):
    runtime_layer = publish_layer(zip_bytes=python_custom_runtime_zip(), CompatibleRuntimes=["provided.al2023"])
    fn = create_fn(code=make_zip({"handler.txt": "the bootstrap comes from a layer\n"}), runtime="provided.al2023",
                   handler="layer.handler", Layers=[runtime_layer.arn])
    res = invoke(lam, fn.name, {"from": "layer"})
    body = res.ok()
    assert body["runtime"] == "python-custom"
    assert body["event"] == {"from": "layer"}
    assert body["headers"]["lambda-runtime-aws-request-id"] == res.request_id
    env = body["env"]
    assert env["_HANDLER"] == "layer.handler"
    opt = env.get("NIMBUS_OPT_DIR")
    assert opt and os.path.isabs(opt)
    # Started from the layer, but running in the function's code directory.
    assert os.path.realpath(body["cwd"]) != os.path.realpath(opt)
    assert os.path.isfile(os.path.join(body["cwd"], "handler.txt"))

    # A bootstrap in the function's own zip takes precedence over the layer's.
    own = create_fn(code=bash_runtime_zip(), runtime="provided.al2023", handler="function.handler",
                    Layers=[runtime_layer.arn])
    assert invoke(lam, own.name, {"from": "zip"}).ok()["runtime"] == "bash"


# ---------------------------------------------------------------- layer configuration rules


def test_more_than_five_layers_is_rejected(lam, create_fn, publish_layer):
    layers = [publish_layer({f"python/layer_mod_{i}.py": f"VALUE = {i}\n"}) for i in range(6)]
    arns = [layer.arn for layer in layers]

    name = unique_name("six-layers")
    expect_client_error(lambda: lam.create_function(**_create_args(name, _py_app(), Layers=arns)), 400,
                        "InvalidParameterValueException")
    _assert_absent(lam, name)

    fn = create_fn(code=_py_app(), Layers=arns[:5])
    assert [layer["Arn"] for layer in fn.config["Layers"]] == arns[:5]
    mods = invoke(lam, fn.name, {"modules": [f"layer_mod_{i}" for i in range(6)]}).ok()["modules"]
    assert [mods[f"layer_mod_{i}"].get("value") for i in range(5)] == [0, 1, 2, 3, 4]
    assert mods["layer_mod_5"] == {"error": "ModuleNotFoundError"}

    expect_client_error(lambda: lam.update_function_configuration(FunctionName=fn.name, Layers=arns), 400,
                        "InvalidParameterValueException")
    assert [layer["Arn"] for layer in lam.get_function_configuration(FunctionName=fn.name)["Layers"]] == arns[:5]


def test_unknown_or_deleted_layer_version_is_rejected(lam, create_fn, publish_layer):
    layer = publish_layer({"python/real_mod.py": 'VALUE = "real"\n'})
    deleted = publish_layer({"python/real_mod.py": 'VALUE = "deleted"\n'}, name=layer.name)
    lam.delete_layer_version(LayerName=layer.name, VersionNumber=deleted.version)

    for missing in (layer_arn(layer.name, 99), layer_arn(unique_name("no-such-layer"), 1), deleted.arn):
        name = unique_name("missing-layer")
        err = expect_client_error(
            lambda: lam.create_function(**_create_args(name, _py_app(), Layers=[layer.arn, missing])),
            (400, 404), MISSING_LAYER,
        )
        status, _, message = client_error(err)
        if status == 400:
            assert missing in message or "not exist" in message.lower(), message
        _assert_absent(lam, name)

    # Layers must be layer *version* ARNs.
    name = unique_name("unversioned-layer")
    expect_client_error(lambda: lam.create_function(**_create_args(name, _py_app(), Layers=[layer_arn(layer.name)])),
                        400, BAD_INPUT)
    _assert_absent(lam, name)

    fn = create_fn(code=_py_app(), Layers=[layer.arn])
    expect_client_error(
        lambda: lam.update_function_configuration(FunctionName=fn.name, Layers=[layer_arn(layer.name, 99)]),
        (400, 404), MISSING_LAYER,
    )
    assert _layers_of(lam.get_function_configuration(FunctionName=fn.name)) == [
        {"Arn": layer.arn, "CodeSize": len(layer.zip)}
    ]
    assert invoke(lam, fn.name, {"modules": ["real_mod"]}).ok()["modules"]["real_mod"]["value"] == "real"


def test_update_function_configuration_replaces_and_removes_layers(lam, create_fn, publish_layer):
    a = publish_layer({"python/swap_mod.py": 'VALUE = "A"\n'})
    b = publish_layer({"python/swap_mod.py": 'VALUE = "B"\n', "python/only_b.py": 'VALUE = "b"\n'})
    event = {"modules": ["swap_mod", "only_b"]}
    fn = create_fn(code=_py_app(), Layers=[a.arn])
    mods = invoke(lam, fn.name, event).ok()["modules"]
    assert mods["swap_mod"]["value"] == "A"
    assert mods["only_b"] == {"error": "ModuleNotFoundError"}

    resp = lam.update_function_configuration(FunctionName=fn.name, Layers=[b.arn])
    assert _layers_of(resp) == [{"Arn": b.arn, "CodeSize": len(b.zip)}]
    wait_active(lam, fn.name)
    assert _layers_of(lam.get_function_configuration(FunctionName=fn.name)) == _layers_of(resp)
    mods = invoke(lam, fn.name, event).ok()["modules"]
    assert mods["swap_mod"]["value"] == "B"
    assert mods["only_b"]["value"] == "b"

    # An update that does not mention Layers keeps them.
    resp = lam.update_function_configuration(FunctionName=fn.name, Description="still with layer b")
    assert [layer["Arn"] for layer in resp["Layers"]] == [b.arn]
    wait_active(lam, fn.name)

    resp = lam.update_function_configuration(FunctionName=fn.name, Layers=[])
    assert not resp.get("Layers")
    wait_active(lam, fn.name)
    assert not lam.get_function_configuration(FunctionName=fn.name).get("Layers")
    body = invoke(lam, fn.name, event).ok()
    assert body["modules"]["swap_mod"] == {"error": "ModuleNotFoundError"}
    assert body["modules"]["only_b"] == {"error": "ModuleNotFoundError"}
    assert body["opt"] is None, "NIMBUS_OPT_DIR is only set for functions with layers"


def test_function_keeps_layer_content_after_layer_version_is_deleted(lam, create_fn, publish_layer):
    layer = publish_layer({"python/kept_mod.py": 'VALUE = "kept"\n'})
    fn = create_fn(code=_py_app(), Layers=[layer.arn])
    event = {"modules": ["kept_mod"]}
    assert invoke(lam, fn.name, event).ok()["modules"]["kept_mod"]["value"] == "kept"
    assert lam.publish_version(FunctionName=fn.name)["Version"] == "1"

    lam.delete_layer_version(LayerName=layer.name, VersionNumber=layer.version)
    expect_client_error(lambda: lam.get_layer_version_by_arn(Arn=layer.arn), 404, "ResourceNotFoundException")

    # Force a fresh environment: it must still get the content it was deployed with.
    lam.update_function_configuration(FunctionName=fn.name, Environment={"Variables": {"MARK": "cold"}})
    wait_active(lam, fn.name)
    assert _layers_of(lam.get_function_configuration(FunctionName=fn.name)) == [
        {"Arn": layer.arn, "CodeSize": len(layer.zip)}
    ]
    res = invoke(lam, fn.name, event, LogType="Tail")
    body = res.ok()
    assert is_cold_report(res.log), res.log
    assert body["mark"] == "cold"
    assert body["modules"]["kept_mod"]["value"] == "kept"

    # So does the version published while the layer version existed.
    res = invoke(lam, fn.name, event, Qualifier="1")
    assert res.executed_version == "1"
    assert res.ok()["modules"]["kept_mod"]["value"] == "kept"


def test_unzipped_size_limit_counts_function_and_layers(lam, create_fn, publish_layer):
    # 200 MiB layer + 60 MiB function > 250 MiB, while each fits on its own.
    big = publish_layer(zip_bytes=_zeros_zip({"python/big_marker.py": 'VALUE = "big"\n'}, "python/zeros.bin", 200))
    assert big.resp["Content"]["CodeSize"] == len(big.zip)
    fn_zip = _zeros_zip({"app.py": PY_APP}, "zeros.bin", 60)

    small = create_fn(code=_py_app(), Layers=[big.arn])
    assert invoke(lam, small.name, {"modules": ["big_marker"]}).ok()["modules"]["big_marker"]["value"] == "big"
    alone = create_fn(code=fn_zip)
    assert invoke(lam, alone.name).ok()["opt"] is None

    name = unique_name("too-big")
    expect_client_error(lambda: lam.create_function(**_create_args(name, fn_zip, Layers=[big.arn])), 400,
                        "InvalidParameterValueException")
    _assert_absent(lam, name)

    expect_client_error(lambda: lam.update_function_configuration(FunctionName=alone.name, Layers=[big.arn]), 400,
                        "InvalidParameterValueException")
    assert not lam.get_function_configuration(FunctionName=alone.name).get("Layers")

    expect_client_error(lambda: lam.update_function_code(FunctionName=small.name, ZipFile=fn_zip), 400,
                        "InvalidParameterValueException")
    assert lam.get_function_configuration(FunctionName=small.name)["CodeSha256"] == small.config["CodeSha256"]
    assert invoke(lam, small.name, {"modules": ["big_marker"]}).ok()["modules"]["big_marker"]["value"] == "big"


# ---------------------------------------------------------------- durability


def test_layers_survive_restart(server_factory):
    srv = server_factory.new("layers")
    lam = srv.lambda_client()
    name = unique_name("layer-restart")
    gone_name = unique_name("layer-restart-gone")
    z1 = make_zip({"python/restart_mod.py": 'VALUE = "v1"\n'})
    z2 = make_zip({"python/restart_mod.py": 'VALUE = "v2"\n'})
    zg = make_zip({"python/gone_mod.py": 'VALUE = "gone"\n'})
    assert lam.publish_layer_version(LayerName=name, Content={"ZipFile": z1})["Version"] == 1
    p2 = lam.publish_layer_version(LayerName=name, Content={"ZipFile": z2}, Description="second",
                                   CompatibleRuntimes=[RUNTIME], CompatibleArchitectures=["x86_64"],
                                   LicenseInfo="MIT")
    assert p2["Version"] == 2
    lam.delete_layer_version(LayerName=name, VersionNumber=1)
    pg = lam.publish_layer_version(LayerName=gone_name, Content={"ZipFile": zg})
    lam.add_layer_version_permission(LayerName=name, VersionNumber=2, StatementId="share",
                                     Action="lambda:GetLayerVersion", Principal="*")

    fn = unique_name("layer-restart-fn")
    lam.create_function(**_create_args(fn, _py_app(), Layers=[pg["LayerVersionArn"], p2["LayerVersionArn"]]))
    wait_active(lam, fn)
    # The function keeps the deleted layer's content across restarts too.
    lam.delete_layer_version(LayerName=gone_name, VersionNumber=1)

    expected_layers = [
        {"Arn": pg["LayerVersionArn"], "CodeSize": len(zg)},
        {"Arn": p2["LayerVersionArn"], "CodeSize": len(z2)},
    ]
    version_before = _without_location(lam.get_layer_version(LayerName=name, VersionNumber=2))
    assert version_before == _without_location(p2)
    policy_before = _policy(lam, name, 2)

    def check(client):
        got = client.get_layer_version(LayerName=name, VersionNumber=2)
        assert _without_location(got) == version_before
        assert _download(got["Content"]["Location"]) == z2
        assert _versions(client, name) == [2]
        expect_client_error(lambda: client.get_layer_version(LayerName=name, VersionNumber=1), 404,
                            "ResourceNotFoundException")
        listed = _all_layers(client)
        assert set(listed) == {name}
        assert listed[name]["LatestMatchingVersion"]["LayerVersionArn"] == p2["LayerVersionArn"]
        assert _policy(client, name, 2) == policy_before
        assert _layers_of(client.get_function_configuration(FunctionName=fn)) == expected_layers
        mods = invoke(client, fn, {"modules": ["restart_mod", "gone_mod"]}).ok()["modules"]
        assert mods["restart_mod"]["value"] == "v2"
        assert mods["gone_mod"]["value"] == "gone"

    check(lam)

    rc, _ = srv.stop()
    assert rc == 0, srv.log_tail()
    srv.start()
    lam = srv.lambda_client()
    check(lam)

    # Numbering continues after the highest number ever used, for both layers.
    z3 = make_zip({"python/restart_mod.py": 'VALUE = "v3"\n'})
    assert lam.publish_layer_version(LayerName=name, Content={"ZipFile": z3})["Version"] == 3
    assert lam.publish_layer_version(LayerName=gone_name, Content={"ZipFile": zg})["Version"] == 2

    # A crash loses nothing that was acknowledged.
    srv.kill()
    srv.start()
    lam = srv.lambda_client()
    assert _versions(lam, name) == [3, 2]
    assert _download(lam.get_layer_version(LayerName=name, VersionNumber=3)["Content"]["Location"]) == z3
    assert _versions(lam, gone_name) == [2]
    mods = invoke(lam, fn, {"modules": ["restart_mod", "gone_mod"]}).ok()["modules"]
    assert (mods["restart_mod"]["value"], mods["gone_mod"]["value"]) == ("v2", "gone")
