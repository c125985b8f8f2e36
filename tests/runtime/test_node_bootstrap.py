"""Tests for the Nimbus Node.js runtime bootstrap (crates/runtimes/assets/node/bootstrap.mjs).

A pure-Python mock of the Lambda Runtime API (2018-06-01) runs in-process on
127.0.0.1:<ephemeral>; `node bootstrap.mjs` is spawned against it with a
function code directory written into pytest's tmp_path.

Run: cd /work/main && python3 -m pytest -q tests/runtime/test_node_bootstrap.py
"""

from __future__ import annotations

import json
import os
import queue
import re
import select
import shutil
import socket
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BOOTSTRAP = REPO / "crates" / "runtimes" / "assets" / "node" / "bootstrap.mjs"
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")

PREFIX = "/2018-06-01/runtime"
TS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
WAIT = 5.0  # seconds; upper bound for any single expected event


# ---------------------------------------------------------------------------
# Mock Runtime API


class Result:
    def __init__(self, kind: str, body: bytes, headers: dict, at: float):
        self.kind = kind  # "response" | "error"
        self.raw = body
        self.headers = headers  # lower-cased names
        self.at = at

    @property
    def json(self):
        return json.loads(self.raw)


class MockRuntimeAPI:
    def __init__(self):
        self.events: "queue.Queue[tuple[str, bytes, dict]]" = queue.Queue()
        self.results: dict[str, "queue.Queue[Result]"] = {}
        self.init_errors: "queue.Queue[Result]" = queue.Queue()
        self.requests: list[tuple[str, str, tuple]] = []  # (method, path, client address)
        self.next_calls: "queue.Queue[float]" = queue.Queue()
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive

            def log_message(self, *args):  # keep pytest output clean
                pass

            def _reply(self, status: int, body: bytes, headers: dict | None = None):
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()

            def do_GET(self):
                with api.lock:
                    api.requests.append(("GET", self.path, self.client_address))
                if self.path != PREFIX + "/invocation/next":
                    return self._reply(404, b'{"errorType":"NotFound"}')
                api.next_calls.put(time.monotonic())
                while not api.stopping.is_set() and not self._client_gone():
                    try:
                        item = api.events.get(timeout=0.05)
                    except queue.Empty:
                        continue
                    rid, payload, headers = item
                    hdrs = {"Lambda-Runtime-Aws-Request-Id": rid, "Content-Type": "application/json"}
                    hdrs.update(headers)
                    try:
                        return self._reply(200, payload, hdrs)
                    except OSError:
                        api.events.put(item)  # the runtime died meanwhile: keep the event
                        break
                self.close_connection = True

            def _client_gone(self) -> bool:
                """True when the long-polling runtime closed its connection (e.g. was killed)."""
                readable, _, _ = select.select([self.connection], [], [], 0)
                if not readable:
                    return False
                try:
                    return self.connection.recv(1, socket.MSG_PEEK) == b""
                except OSError:
                    return True

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                with api.lock:
                    api.requests.append(("POST", self.path, self.client_address))
                now = time.monotonic()
                if self.path == PREFIX + "/init/error":
                    api.init_errors.put(Result("init_error", body, headers, now))
                    return self._reply(202, b'{"status":"OK"}', {"Content-Type": "application/json"})
                m = re.fullmatch(re.escape(PREFIX) + r"/invocation/([^/]+)/(response|error)", self.path)
                if not m:
                    return self._reply(404, b'{"errorType":"NotFound"}')
                rid = m.group(1)
                with api.lock:
                    q = api.results.setdefault(rid, queue.Queue())
                q.put(Result(m.group(2), body, headers, now))
                return self._reply(202, b'{"status":"OK"}', {"Content-Type": "application/json"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def address(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{host}:{port}"

    def enqueue(self, event, *, request_id=None, timeout_ms=3000, headers=None, raw=None) -> str:
        rid = request_id or str(uuid.uuid4())
        with self.lock:
            self.results.setdefault(rid, queue.Queue())
        hdrs = {
            "Lambda-Runtime-Deadline-Ms": str(int(time.time() * 1000) + timeout_ms),
            "Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:us-east-1:123456789012:function:probe",
        }
        hdrs.update(headers or {})
        payload = raw if raw is not None else json.dumps(event).encode()
        self.events.put((rid, payload, hdrs))
        return rid

    def result(self, rid: str, timeout: float = WAIT) -> Result:
        with self.lock:
            q = self.results.setdefault(rid, queue.Queue())
        try:
            return q.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no result posted for {rid} within {timeout}s") from None

    def no_more_results(self, rid: str, wait: float = 0.2) -> bool:
        with self.lock:
            q = self.results.setdefault(rid, queue.Queue())
        try:
            q.get(timeout=wait)
            return False
        except queue.Empty:
            return True

    def invoke(self, event=None, **kw) -> Result:
        return self.result(self.enqueue(event, **kw))

    def wait_ready(self, timeout: float = 10.0) -> float:
        """Wait for the runtime's first GET /next (so timing assertions exclude node startup)."""
        try:
            return self.next_calls.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("runtime never called /next") from None

    def init_error(self, timeout: float = WAIT) -> Result:
        try:
            return self.init_errors.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no /init/error posted") from None

    def close(self):
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------------------
# Node process harness


class NodeRuntime:
    def __init__(self, api: MockRuntimeAPI, code_dir: Path, handler: str, extra_env: dict | None = None):
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(code_dir),
            "LANG": "C.UTF-8",
            "TZ": "UTC",
            "_HANDLER": handler,
            "AWS_LAMBDA_RUNTIME_API": api.address,
            "LAMBDA_TASK_ROOT": str(code_dir),
            "AWS_LAMBDA_FUNCTION_NAME": "probe",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
            "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/probe",
            "AWS_LAMBDA_LOG_STREAM_NAME": "2026/11/30/[$LATEST]0123456789abcdef0123456789abcdef",
            "AWS_REGION": "us-east-1",
            "NODE_PATH": f"{code_dir / '_nodepath'}:{code_dir}",
        }
        env.update(extra_env or {})
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [NODE, str(BOOTSTRAP)],
            cwd=str(code_dir),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self._out = bytearray()
        self._err = bytearray()
        self._readers = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, self._out), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr, self._err), daemon=True),
        ]
        for t in self._readers:
            t.start()

    @staticmethod
    def _pump(stream, buf: bytearray):
        for chunk in iter(lambda: stream.read1(65536), b""):
            buf.extend(chunk)

    @property
    def stdout(self) -> str:
        return bytes(self._out).decode("utf-8", "replace")

    @property
    def stderr(self) -> str:
        return bytes(self._err).decode("utf-8", "replace")

    def wait_exit(self, timeout: float = WAIT) -> int:
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"node did not exit; stderr={self.stderr!r}") from None
        for t in self._readers:
            t.join(timeout=1)
        return code

    def wait_for_stdout(self, needle: str, timeout: float = WAIT) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.stdout:
                return self.stdout
            time.sleep(0.01)
        raise AssertionError(f"{needle!r} not in stdout: {self.stdout!r}")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


@pytest.fixture
def api():
    server = MockRuntimeAPI()
    yield server
    server.close()


@pytest.fixture
def start(api, tmp_path):
    """start(files, handler, env=None) -> NodeRuntime; writes `files` into the code dir."""
    procs: list[NodeRuntime] = []

    def _start(files: dict[str, str], handler: str, env: dict | None = None) -> NodeRuntime:
        code = tmp_path / "task"
        for name, content in files.items():
            p = code / name
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(content)
        code.mkdir(exist_ok=True)
        rt = NodeRuntime(api, code, handler, env)
        procs.append(rt)
        return rt

    yield _start
    for rt in procs:
        rt.kill()


# ---------------------------------------------------------------------------
# Success paths and module formats

CJS_ECHO = """
exports.handler = async (event, context) => ({ ok: true, event, fn: context.functionName });
"""


def test_cjs_async_success(api, start):
    rt = start({"index.js": CJS_ECHO}, "index.handler")
    r = api.invoke({"hello": "world"})
    assert r.kind == "response"
    assert r.headers["content-type"] == "application/json"
    assert r.json == {"ok": True, "event": {"hello": "world"}, "fn": "probe"}
    r2 = api.invoke([1, 2, 3])
    assert r2.json["event"] == [1, 2, 3]
    # Everything goes over one kept-alive connection.
    with api.lock:
        clients = {addr for _m, _p, addr in api.requests}
    assert len(clients) == 1, clients
    assert rt.proc.poll() is None


def test_esm_mjs_with_top_level_await(api, start):
    src = """
const config = await new Promise((resolve) => setTimeout(() => resolve({ greeting: 'hi' }), 20));
export const handler = async (event) => ({ format: 'esm', greeting: config.greeting, name: event.name });
"""
    start({"index.mjs": src}, "index.handler")
    assert api.invoke({"name": "x"}).json == {"format": "esm", "greeting": "hi", "name": "x"}


def test_type_module_package_js(api, start):
    files = {
        "package.json": json.dumps({"name": "fn", "type": "module"}),
        "app.js": "import { helper } from './lib.js';\nexport async function handler() { return helper(); }\n",
        "lib.js": "export const helper = () => ({ esm: typeof require === 'undefined' });\n",
    }
    start(files, "app.handler")
    assert api.invoke({}).json == {"esm": True}


def test_cjs_extension_and_subdirectory(api, start):
    start({"src/app.cjs": "module.exports.handler = async () => 'from-cjs';\n"}, "src/app.handler")
    assert api.invoke({}).json == "from-cjs"


def test_nested_export(api, start):
    src = "module.exports = { nested: { fn: async (e) => ({ nested: e.v }) } };\n"
    start({"index.js": src}, "index.nested.fn")
    assert api.invoke({"v": 7}).json == {"nested": 7}


def test_node_path_module_resolution(api, start):
    files = {
        "_nodepath/shared-lib/index.js": "exports.value = 42;\n",
        "index.js": "const lib = require('shared-lib');\nexports.handler = async () => lib.value;\n",
    }
    start(files, "index.handler")
    assert api.invoke({}).json == 42


def test_undefined_result_is_null(api, start):
    start({"index.js": "exports.handler = async () => undefined;\n"}, "index.handler")
    r = api.invoke({})
    assert r.kind == "response" and r.raw == b"null"


def test_sync_return_value_is_result(api, start):
    src = "exports.handler = (event) => ({ sync: event.n });\n"
    start({"index.js": src}, "index.handler")
    assert api.invoke({"n": 1}).json == {"sync": 1}


def test_sync_handler_without_answer_returns_null_when_loop_drains(api, start):
    src = "exports.handler = (event, context) => { setTimeout(() => { globalThis.x = 1; }, 50); };\n"
    start({"index.js": src}, "index.handler")
    r = api.invoke({})
    assert r.kind == "response" and r.raw == b"null"


def test_globals_persist_across_invokes(api, start):
    src = "let count = 0;\nexports.handler = async () => ++count;\n"
    start({"index.js": src}, "index.handler")
    assert [api.invoke({}).json for _ in range(3)] == [1, 2, 3]


# ---------------------------------------------------------------------------
# Callback style and legacy context methods


def test_callback_style(api, start):
    src = """
exports.handler = function (event, context, callback) {
  setTimeout(() => callback(null, { cb: event.x }), 10);
};
"""
    start({"index.js": src}, "index.handler")
    assert api.invoke({"x": "y"}).json == {"cb": "y"}


def test_callback_waits_for_empty_event_loop_by_default(api, start):
    src = """
let timerFired = false;
exports.handler = (event, context, callback) => {
  setTimeout(() => { timerFired = true; }, 400);
  callback(null, { waited: true });
};
exports.check = (event, context, callback) => callback(null, timerFired);
"""
    start({"index.js": src}, "index.handler")
    api.wait_ready()
    t0 = time.monotonic()
    rid = api.enqueue({})
    r = api.result(rid)
    assert r.json == {"waited": True}
    assert r.at - t0 >= 0.35, "response must wait for the pending timer"


def test_callback_waits_false_responds_immediately(api, start):
    src = """
let fired = 0;
exports.handler = (event, context, callback) => {
  context.callbackWaitsForEmptyEventLoop = false;
  setTimeout(() => { fired += 1; }, 1500);
  callback(null, { fired, waits: context.callbackWaitsForEmptyEventLoop });
};
"""
    start({"index.js": src}, "index.handler")
    api.wait_ready()
    t0 = time.monotonic()
    r = api.result(api.enqueue({}))
    assert r.json == {"fired": 0, "waits": False}
    assert r.at - t0 < 1.0, "response must not wait for the timer"


def test_late_callback_from_previous_invoke_does_not_disturb_current(api, start):
    src = """
exports.handler = (event, context, callback) => {
  if (event.step === 1) {
    // Never answers itself; an unref'd timer answers after the invocation got null.
    setTimeout(() => context.succeed('late'), 150).unref();
    return;
  }
  setTimeout(() => {}, 300);
  callback(null, 'second');
};
"""
    rt = start({"index.js": src}, "index.handler")
    r1 = api.invoke({"step": 1})
    assert r1.kind == "response" and r1.raw == b"null"
    assert api.invoke({"step": 2}).json == "second"
    out = rt.wait_for_stdout("already been reported")
    assert "Invocation has already been reported as done" in out
    assert rt.proc.poll() is None


def test_callback_error_string(api, start):
    start({"index.js": "exports.handler = (e, c, cb) => cb('bad thing');\n"}, "index.handler")
    r = api.invoke({})
    assert r.kind == "error"
    assert r.json == {"errorType": "string", "errorMessage": "bad thing", "trace": []}


def test_context_succeed_fail_done(api, start):
    src = """
exports.ok = (event, context) => { setTimeout(() => context.succeed({ via: 'succeed' }), 5); };
exports.bad = (event, context) => { context.fail(new RangeError('nope')); context.succeed('ignored'); };
exports.done = (event, context) => { context.done(null, 'via-done'); };
"""
    rt = start({"index.js": src}, "index.ok")
    assert api.invoke({}).json == {"via": "succeed"}
    rt.kill()
    rt = start({"index.js": src}, "index.bad")
    rid = api.enqueue({})
    r = api.result(rid)
    assert r.kind == "error" and r.json["errorType"] == "RangeError" and r.json["errorMessage"] == "nope"
    assert api.no_more_results(rid)
    rt.kill()
    start({"index.js": src}, "index.done")
    assert api.invoke({}).json == "via-done"


# ---------------------------------------------------------------------------
# Errors


def test_handler_throw_shape_and_log(api, start):
    src = "exports.handler = async () => { throw new TypeError('kaput'); };\n"
    rt = start({"index.js": src}, "index.handler")
    rid = api.enqueue({})
    r = api.result(rid)
    assert r.kind == "error"
    body = r.json
    assert set(body) == {"errorType", "errorMessage", "trace"}
    assert body["errorType"] == "TypeError" and body["errorMessage"] == "kaput"
    assert body["trace"][0] == "TypeError: kaput"
    assert any("index.js" in line for line in body["trace"][1:])
    assert r.headers["lambda-runtime-function-error-type"] == "TypeError"
    assert r.headers["content-type"] == "application/json"
    cause = json.loads(r.headers["lambda-runtime-function-xray-error-cause"])
    assert cause["exceptions"][0]["type"] == "TypeError"
    out = rt.wait_for_stdout("Invoke Error")
    m = re.search(rf"^{TS}\t{rid}\tERROR\tInvoke Error \t(\{{.*\}})$", out, re.M)
    assert m, out
    logged = json.loads(m.group(1))
    assert logged["errorType"] == "TypeError" and logged["errorMessage"] == "kaput"
    assert logged["stack"][0] == "TypeError: kaput"
    # The runtime keeps serving after a handler error.
    assert rt.proc.poll() is None
    assert api.invoke({}).kind == "error"


def test_unhandled_rejection_during_invoke_exits(api, start):
    src = """
exports.handler = async () => { Promise.reject(new Error('lost')); await new Promise((r) => setTimeout(r, 200)); return 'late'; };
"""
    rt = start({"index.js": src}, "index.handler")
    r = api.invoke({})
    assert r.kind == "error"
    assert r.json["errorType"] == "Runtime.UnhandledPromiseRejection"
    assert r.json["errorMessage"] == "Error: lost"
    assert rt.wait_exit() == 128
    assert "Unhandled Promise Rejection" in rt.stdout


def test_uncaught_exception_during_invoke_exits(api, start):
    src = "exports.handler = (e, c, cb) => { setTimeout(() => { null.boom; }, 5); };\n"
    rt = start({"index.js": src}, "index.handler")
    r = api.invoke({})
    assert r.kind == "error" and r.json["errorType"] == "TypeError"
    assert r.headers["lambda-runtime-function-error-type"] == "TypeError"
    assert rt.wait_exit() == 129
    assert "\tERROR\tUncaught Exception \t{" in rt.stdout


def test_invalid_event_json_reports_error(api, start):
    rt = start({"index.js": CJS_ECHO}, "index.handler")
    r = api.invoke(raw=b"{not json")
    assert r.kind == "error" and r.json["errorType"] == "SyntaxError"
    assert api.invoke({"a": 1}).json["event"] == {"a": 1}
    assert rt.proc.poll() is None


# ---------------------------------------------------------------------------
# Init errors


def _assert_init_error(api, rt, error_type: str) -> dict:
    r = api.init_error()
    assert r.headers["lambda-runtime-function-error-type"] == error_type
    body = r.json
    assert set(body) == {"errorType", "errorMessage", "trace"}
    assert body["errorType"] == error_type
    assert isinstance(body["trace"], list)
    assert rt.wait_exit() == 1
    m = re.search(rf"^{TS}\tundefined\tERROR\tUncaught Exception \t(\{{.*\}})$", rt.stdout, re.M)
    assert m, rt.stdout
    assert json.loads(m.group(1))["errorType"] == error_type
    with api.lock:
        assert not any(p.endswith("/invocation/next") for _m, p, _a in api.requests)
    return body


def test_init_error_missing_module(api, start):
    rt = start({"other.js": "exports.handler = async () => 1;\n"}, "index.handler")
    body = _assert_init_error(api, rt, "Runtime.ImportModuleError")
    assert body["errorMessage"] == f"Error: Cannot find module 'index'\nRequire stack:\n- {BOOTSTRAP}"
    assert body["trace"][0] == "Runtime.ImportModuleError: Error: Cannot find module 'index'"


def test_init_error_missing_dependency(api, start):
    rt = start({"index.js": "require('not-installed-anywhere');\n"}, "index.handler")
    body = _assert_init_error(api, rt, "Runtime.ImportModuleError")
    assert body["errorMessage"].startswith("Error: Cannot find module 'not-installed-anywhere'\nRequire stack:\n- ")


def test_init_error_esm_missing_package(api, start):
    rt = start({"index.mjs": "import x from 'no-such-pkg';\nexport const handler = async () => x;\n"}, "index.handler")
    body = _assert_init_error(api, rt, "Runtime.ImportModuleError")
    # Node's own message for ESM resolution failures (Lambda reports the same form:
    # "Error [ERR_MODULE_NOT_FOUND]: Cannot find package 'x' imported from /var/task/index.mjs").
    assert body["errorMessage"].startswith("Error [ERR_MODULE_NOT_FOUND]: Cannot find package 'no-such-pkg' imported from ")


def test_init_error_handler_not_exported(api, start):
    rt = start({"index.js": "exports.other = async () => 1;\n"}, "index.handler")
    body = _assert_init_error(api, rt, "Runtime.HandlerNotFound")
    assert body["errorMessage"] == "index.handler is undefined or not exported"


def test_init_error_handler_not_a_function(api, start):
    rt = start({"index.js": "exports.handler = 5;\n"}, "index.handler")
    body = _assert_init_error(api, rt, "Runtime.HandlerNotFound")
    assert body["errorMessage"] == "index.handler is not a function"


@pytest.mark.parametrize("filename", ["index.js", "index.mjs"])
def test_init_error_syntax_error(api, start, filename):
    rt = start({filename: "exports.handler = async () => {\n  return 1 +;\n};\n"}, "index.handler")
    body = _assert_init_error(api, rt, "Runtime.UserCodeSyntaxError")
    assert body["errorMessage"].startswith("SyntaxError: ")


@pytest.mark.parametrize("handler", ["index", "", "../index.handler"])
def test_init_error_malformed_handler(api, start, handler):
    rt = start({"index.js": CJS_ECHO}, handler)
    body = _assert_init_error(api, rt, "Runtime.MalformedHandlerName")
    if handler == "../index.handler":
        assert "is not a valid handler name" in body["errorMessage"]
    else:
        assert body["errorMessage"] == "Bad handler"


def test_init_error_thrown_by_user_code(api, start):
    rt = start({"index.js": "throw new Error('config missing');\n"}, "index.handler")
    body = _assert_init_error(api, rt, "Error")
    assert body["errorMessage"] == "config missing"


# ---------------------------------------------------------------------------
# Context


def test_context_fields_and_trace_id(api, start):
    src = """
exports.handler = async (event, context) => ({
  functionName: context.functionName,
  functionVersion: context.functionVersion,
  invokedFunctionArn: context.invokedFunctionArn,
  memoryLimitInMB: context.memoryLimitInMB,
  awsRequestId: context.awsRequestId,
  logGroupName: context.logGroupName,
  logStreamName: context.logStreamName,
  identity: context.identity ?? 'absent',
  clientContext: context.clientContext ?? 'absent',
  waits: context.callbackWaitsForEmptyEventLoop,
  trace: process.env._X_AMZN_TRACE_ID ?? 'absent',
});
"""
    start({"index.js": src}, "index.handler")
    trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    ident = {"cognitoIdentityId": "us-east-1:abc", "cognitoIdentityPoolId": "us-east-1:pool"}
    cc = {"client": {"installation_id": "i-1"}, "custom": {"k": "v"}, "env": {"platform": "x"}}
    rid = api.enqueue(
        {},
        headers={
            "Lambda-Runtime-Trace-Id": trace,
            "Lambda-Runtime-Cognito-Identity": json.dumps(ident),
            "Lambda-Runtime-Client-Context": json.dumps(cc),
        },
    )
    r = api.result(rid).json
    assert r == {
        "functionName": "probe",
        "functionVersion": "$LATEST",
        "invokedFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:probe",
        "memoryLimitInMB": "256",
        "awsRequestId": rid,
        "logGroupName": "/aws/lambda/probe",
        "logStreamName": "2026/11/30/[$LATEST]0123456789abcdef0123456789abcdef",
        "identity": ident,
        "clientContext": cc,
        "waits": True,
        "trace": trace,
    }
    r2 = api.invoke({})
    assert r2.json["trace"] == "absent"
    assert r2.json["identity"] == "absent" and r2.json["clientContext"] == "absent"


def test_remaining_time(api, start):
    src = """
exports.handler = async (event, context) => {
  const a = context.getRemainingTimeInMillis();
  await new Promise((r) => setTimeout(r, 100));
  return [a, context.getRemainingTimeInMillis()];
};
"""
    start({"index.js": src}, "index.handler")
    api.wait_ready()
    a, b = api.invoke({}, timeout_ms=3000).json
    assert 2000 < a <= 3000
    assert 50 <= a - b <= 1000


# ---------------------------------------------------------------------------
# Logging

LOG_SRC = """
exports.handler = async (event) => {
  console.log('hello %s', 'world', 42);
  console.info({ a: 1 });
  console.warn('multi\\nline');
  console.error(new Error('oops'));
  console.debug('dbg');
  console.trace('trc');
  process.stdout.write('raw\\n');
  return 'ok';
};
"""

WRITE_SPY = """
const fs = require('fs');
const out = process.env.WRITE_SPY_FILE;
const orig = process.stdout.write.bind(process.stdout);
process.stdout.write = (chunk, ...rest) => {
  fs.appendFileSync(out, JSON.stringify(String(chunk)) + '\\n');
  return orig(chunk, ...rest);
};
"""


def test_console_text_format(api, start, tmp_path):
    spy = tmp_path / "spy.cjs"
    spy.write_text(WRITE_SPY)
    writes = tmp_path / "writes.jsonl"
    rt = start(
        {"index.js": LOG_SRC},
        "index.handler",
        {"NODE_OPTIONS": f"--require {spy}", "WRITE_SPY_FILE": str(writes)},
    )
    rid = api.enqueue({})
    assert api.result(rid).json == "ok"
    out = rt.wait_for_stdout("raw\n")
    assert re.search(rf"^{TS}\t{rid}\tINFO\thello world 42$", out, re.M), out
    assert re.search(rf"^{TS}\t{rid}\tINFO\t\{{ a: 1 \}}$", out, re.M), out
    assert re.search(rf"^{TS}\t{rid}\tWARN\tmulti\rline$", out, re.M), out
    assert re.search(rf"^{TS}\t{rid}\tERROR\tError: oops\r    at ", out, re.M), out
    assert re.search(rf"^{TS}\t{rid}\tDEBUG\tdbg$", out, re.M), out
    assert re.search(rf"^{TS}\t{rid}\tTRACE\ttrc$", out, re.M), out
    # Each record is exactly one write, even when it spans several lines.
    chunks = [json.loads(line) for line in writes.read_text().splitlines()]
    warn = [c for c in chunks if "\tWARN\t" in c]
    assert len(warn) == 1 and warn[0].endswith("\tWARN\tmulti\rline\n")
    err = [c for c in chunks if "\tERROR\tError: oops" in c]
    assert len(err) == 1 and err[0].count("\r") > 2 and err[0].count("\n") == 1


def test_console_log_level_filter(api, start):
    rt = start({"index.js": LOG_SRC}, "index.handler", {"AWS_LAMBDA_LOG_LEVEL": "warn"})
    assert api.invoke({}).json == "ok"
    out = rt.wait_for_stdout("raw\n")
    levels = re.findall(rf"^{TS}\t[^\t]+\t([A-Z]+)\t", out, re.M)
    assert levels == ["WARN", "ERROR"], out


def test_console_json_format(api, start):
    rt = start({"index.js": LOG_SRC}, "index.handler", {"AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": "DEBUG"})
    rid = api.enqueue({})
    assert api.result(rid).json == "ok"
    out = rt.wait_for_stdout("raw\n")
    recs = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert [r["level"] for r in recs] == ["INFO", "INFO", "WARN", "ERROR", "DEBUG"]
    for r in recs:
        assert re.fullmatch(TS, r["timestamp"]) and r["requestId"] == rid
    assert recs[0]["message"] == "hello world 42"
    assert recs[1]["message"] == {"a": 1}
    assert recs[2]["message"] == "multi\nline"
    assert recs[3]["message"]["errorType"] == "Error"
    assert recs[3]["message"]["errorMessage"] == "oops"
    assert recs[3]["message"]["stackTrace"][0] == "Error: oops"


def test_init_logs_have_undefined_request_id(api, start):
    src = "console.log('cold start');\nexports.handler = async () => { console.log('warm'); return 1; };\n"
    rt = start({"index.js": src}, "index.handler")
    rid = api.enqueue({})
    api.result(rid)
    out = rt.wait_for_stdout("warm")
    assert re.search(rf"^{TS}\tundefined\tINFO\tcold start$", out, re.M), out
    assert re.search(rf"^{TS}\t{rid}\tINFO\twarm$", out, re.M), out


# ---------------------------------------------------------------------------
# Cold start


def test_cold_start_to_first_next(api, start):
    rt = start({"index.js": CJS_ECHO}, "index.handler")
    first = api.wait_ready()
    elapsed_ms = (first - rt.started) * 1000
    print(f"cold start to first /next: {elapsed_ms:.1f} ms")
    assert elapsed_ms < 3000  # sanity bound only; typically ~50 ms
