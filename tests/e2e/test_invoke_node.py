"""Invoking Node.js functions (host node): CommonJS, ESM and callback
handlers, error shapes, context, console.log format, init errors."""

from __future__ import annotations

import re
import uuid

import pytest

from .conftest import NODE, STREAM_NAME_RE, function_arn, invoke, node_probe_zip

pytestmark = pytest.mark.skipif(NODE is None, reason="node is not on PATH")

RUNTIME = "nodejs20.x"

ESM_APP = """\
export const handler = async (event, context) => {
  return { esm: true, event, moduleUrl: import.meta.url, requestId: context.awsRequestId };
};
"""

CALLBACK_APP = """\
exports.handler = (event, context, callback) => {
  if (event.fail) {
    setTimeout(() => callback(new Error('callback failure: ' + event.fail)), 5);
    return;
  }
  setTimeout(() => callback(null, { callback: true, event }), 5);
};
"""


def test_commonjs_async_handler(lam, create_fn):
    fn = create_fn(runtime=RUNTIME, handler="index.handler")
    res = invoke(lam, fn.name, {"hello": "node"})
    assert res.executed_version == "$LATEST"
    body = res.ok()
    assert body["runtime"] == "nodejs"
    assert body["event"] == {"hello": "node"}
    assert body["env"]["AWS_EXECUTION_ENV"] == f"AWS_Lambda_{RUNTIME}"
    assert body["env"]["_HANDLER"] == "index.handler"
    assert body["env"]["AWS_LAMBDA_FUNCTION_NAME"] == fn.name
    assert body["env"]["AWS_REGION"] == "us-east-1"
    assert body["env"]["TZ"] == ":UTC"
    # warm reuse keeps module state
    again = invoke(lam, fn.name).ok()
    assert (again["count"], again["initId"]) == (2, body["initId"])


def test_esm_mjs_handler(lam, create_fn):
    fn = create_fn(code={"index.mjs": ESM_APP}, runtime=RUNTIME, handler="index.handler")
    res = invoke(lam, fn.name, {"esm": "please"})
    body = res.ok()
    assert body["esm"] is True
    assert body["event"] == {"esm": "please"}
    # import.meta only parses inside an ES module
    assert body["moduleUrl"].startswith("file://") and body["moduleUrl"].endswith("/index.mjs"), body["moduleUrl"]
    assert body["requestId"] == res.request_id


def test_callback_style_handler(lam, create_fn):
    fn = create_fn(code={"index.js": CALLBACK_APP}, runtime=RUNTIME, handler="index.handler")
    assert invoke(lam, fn.name, {"a": 1}).ok() == {"callback": True, "event": {"a": 1}}
    err = invoke(lam, fn.name, {"fail": "nope"}).error("Error")
    assert err["errorMessage"] == "callback failure: nope"


def test_thrown_error_shape(lam, create_fn):
    fn = create_fn(runtime=RUNTIME, handler="index.handler")
    res = invoke(lam, fn.name, {"throw": "boom"})
    err = res.error("TypeError")
    assert err["errorMessage"] == "boom"
    assert isinstance(err["trace"], list) and err["trace"], err
    assert err["trace"][0].startswith("TypeError: boom"), err["trace"]
    assert any("index.js" in line for line in err["trace"]), err["trace"]
    # the environment survives a thrown error
    assert invoke(lam, fn.name).ok()["count"] == 2


def test_context_fields(lam, create_fn):
    fn = create_fn(runtime=RUNTIME, handler="index.handler", MemorySize=192, Timeout=4)
    res = invoke(lam, fn.name)
    ctx = res.ok()["ctx"]
    assert ctx["functionName"] == fn.name
    assert ctx["functionVersion"] == "$LATEST"
    assert ctx["invokedFunctionArn"] == function_arn(fn.name)
    assert str(ctx["memoryLimitInMB"]) == "192"
    assert ctx["awsRequestId"] == res.request_id
    assert ctx["logGroupName"] == f"/aws/lambda/{fn.name}"
    assert STREAM_NAME_RE.match(ctx["logStreamName"]), ctx["logStreamName"]
    assert 0 < ctx["remainingMs"] <= 4000


def test_console_log_format_in_tail_log(lam, create_fn):
    fn = create_fn(runtime=RUNTIME, handler="index.handler")
    marker = f"node-marker-{uuid.uuid4().hex}"
    res = invoke(lam, fn.name, {"print": marker}, LogType="Tail")
    res.ok()
    pattern = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z\t" + re.escape(res.request_id) + r"\tINFO\t" + re.escape(marker)
    assert re.search(pattern, res.log), res.log
    assert f"START RequestId: {res.request_id}" in res.log
    assert f"REPORT RequestId: {res.request_id}" in res.log


def test_missing_handler_file_is_import_module_error(lam, create_fn):
    fn = create_fn(code=node_probe_zip(), runtime=RUNTIME, handler="missing.handler")
    for _ in range(2):
        err = invoke(lam, fn.name).error("Runtime.ImportModuleError")
        assert "missing" in err["errorMessage"], err


@pytest.mark.parametrize("runtime", ["nodejs18.x", "nodejs22.x"])
def test_other_node_runtime_identifiers(lam, create_fn, runtime):
    fn = create_fn(runtime=runtime, handler="index.handler")
    body = invoke(lam, fn.name).ok()
    assert body["env"]["AWS_EXECUTION_ENV"] == f"AWS_Lambda_{runtime}"
