"""Tests for the Nimbus Python runtime bootstrap (crates/runtimes/assets/python/bootstrap.py).

A pure-Python mock of the Lambda Runtime API (2018-06-01) runs in-process on
127.0.0.1:<ephemeral port>; the bootstrap is started exactly like the server
does it (`<python> -I -S -B -u <runtime_dir>/python/bootstrap.py`, cwd = code
dir) with a function code directory written into pytest's tmp_path.  The
bootstrap is copied into a temporary runtime dir so its bytecode cache never
lands in the repository.

Interpreter: $NIMBUS_TEST_PYTHON, else /usr/bin/python3, else the resolved
sys.executable.

Run: cd /work/main && python3 -m pytest -q tests/runtime/test_python_bootstrap.py
"""

import importlib.util
import json
import os
import queue
import re
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BOOTSTRAP = REPO / "crates" / "runtimes" / "assets" / "python" / "bootstrap.py"
PREFIX = "/2018-06-01/runtime"
TS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
WAIT = 10.0  # upper bound for any single expected event (normally milliseconds)
NBSP = "\u00a0"


def _find_python():
    explicit = os.environ.get("NIMBUS_TEST_PYTHON")
    if explicit:
        return explicit
    if os.path.exists("/usr/bin/python3"):
        return "/usr/bin/python3"
    return os.path.realpath(sys.executable)


PYTHON = _find_python()


# ---------------------------------------------------------------------------
# Mock Runtime API


class Result:
    def __init__(self, kind, path, headers, body):
        self.kind = kind  # "response" | "error" | "init_error"
        self.path = path
        self.headers = headers  # lower-cased names
        self.raw = body

    @property
    def json(self):
        return json.loads(self.raw)


_DROP = object()  # queue item: close the /next connection without answering


class MockRuntimeAPI:
    def __init__(self):
        self.events = queue.Queue()
        self.results = {}
        self.init_errors = queue.Queue()
        self.requests = []  # (method, path, headers, client address)
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.next_status = 200  # set to e.g. 500 to fail /next
        self.chunked = False  # answer /next with Transfer-Encoding: chunked
        self.post_status = 202  # set to e.g. 413 to reject /response and /error
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _reply(self, status, body, headers=None, chunked=False):
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                if chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    step = max(1, len(body) // 3)
                    for i in range(0, len(body), step):
                        part = body[i : i + step]
                        self.wfile.write(b"%x;ext=1\r\n%s\r\n" % (len(part), part))
                    self.wfile.write(b"0\r\nX-Trailer: y\r\n\r\n")
                else:
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                self.wfile.flush()

            def _record(self):
                with api.lock:
                    api.requests.append(
                        (self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, self.client_address)
                    )

            def do_GET(self):
                self._record()
                if self.path != PREFIX + "/invocation/next":
                    self._reply(404, b'{"errorType":"NotFound"}')
                    return
                if api.next_status != 200:
                    self._reply(api.next_status, b'{"errorType":"InternalServerError","errorMessage":"boom"}')
                    return
                while True:
                    try:
                        item = api.events.get(timeout=0.05)
                        break
                    except queue.Empty:
                        if api.stopping.is_set():
                            self.close_connection = True
                            return
                if item is _DROP:
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
                body, headers = item
                self._reply(200, body, headers, chunked=api.chunked)

            def do_POST(self):
                self._record()
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                m = re.fullmatch(PREFIX + r"/invocation/([^/]+)/(response|error)", self.path)
                if m:
                    result = Result(m.group(2), self.path, headers, body)
                    api._queue(m.group(1)).put(result)
                elif self.path == PREFIX + "/init/error":
                    api.init_errors.put(Result("init_error", self.path, headers, body))
                else:
                    self._reply(404, b'{"errorType":"NotFound"}')
                    return
                if api.post_status != 202:
                    self._reply(api.post_status, b'{"errorType":"RequestEntityTooLarge","errorMessage":"too big"}')
                    return
                self._reply(202, b'{"status":"OK"}', {"Content-Type": "application/json"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def address(self):
        return "127.0.0.1:%d" % self.server.server_address[1]

    def _queue(self, request_id):
        with self.lock:
            return self.results.setdefault(request_id, queue.Queue())

    def push(self, event=None, request_id=None, headers=None, raw=None, deadline_in=30.0):
        request_id = request_id or str(uuid.uuid4())
        body = raw if raw is not None else json.dumps(event).encode()
        h = {
            "Lambda-Runtime-Aws-Request-Id": request_id,
            "Lambda-Runtime-Deadline-Ms": str(int((time.time() + deadline_in) * 1000)),
            "Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:us-east-1:123456789012:function:my-fn",
            "Content-Type": "application/json",
        }
        for k, v in (headers or {}).items():
            if v is None:
                h.pop(k, None)
            else:
                h[k] = v
        self.events.put((body, h))
        return request_id

    def drop_next(self):
        self.events.put(_DROP)

    def result(self, request_id, timeout=WAIT):
        try:
            return self._queue(request_id).get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no result for %s within %ss" % (request_id, timeout))

    def init_error(self, timeout=WAIT):
        try:
            return self.init_errors.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no /init/error within %ss" % timeout)

    def next_calls(self):
        with self.lock:
            return [r for r in self.requests if r[0] == "GET"]

    def stop(self):
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------------------
# Process harness


class Proc:
    def __init__(self, popen, out_path, err_path):
        self.popen = popen
        self.out_path = out_path
        self.err_path = err_path

    def wait(self, timeout=WAIT):
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("bootstrap did not exit within %ss\nstdout:%s\nstderr:%s" % (timeout, self.stdout, self.stderr))

    def kill(self):
        if self.popen.poll() is None:
            self.popen.kill()
        try:
            self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass

    @property
    def stdout(self):
        return self.out_path.read_bytes().decode("utf-8", "replace")

    @property
    def stderr(self):
        return self.err_path.read_bytes().decode("utf-8", "replace")


class Harness:
    def __init__(self, tmp_path, runtime_dir):
        self.tmp = tmp_path
        self.runtime_dir = runtime_dir
        self.code = tmp_path / "code"
        self.code.mkdir()
        self.api = MockRuntimeAPI()
        self.procs = []

    def write(self, files):
        for name, text in files.items():
            p = self.code / name
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(textwrap.dedent(text))

    def env(self, handler, extra):
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "TZ": ":UTC",
            "_HANDLER": handler,
            "AWS_LAMBDA_RUNTIME_API": self.api.address,
            "LAMBDA_TASK_ROOT": str(self.code),
            "LAMBDA_RUNTIME_DIR": str(self.runtime_dir / "python"),
            "AWS_LAMBDA_FUNCTION_NAME": "my-fn",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
            "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/my-fn",
            "AWS_LAMBDA_LOG_STREAM_NAME": "2024/01/01/[$LATEST]0123456789abcdef0123456789abcdef",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "PYTHONPATH": "",
        }
        for k, v in (extra or {}).items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        return env

    def start(self, handler="app.handler", env=None):
        n = len(self.procs)
        out = self.tmp / ("stdout-%d.txt" % n)
        err = self.tmp / ("stderr-%d.txt" % n)
        with open(out, "wb") as fo, open(err, "wb") as fe:
            popen = subprocess.Popen(
                [PYTHON, "-I", "-S", "-B", "-u", str(self.runtime_dir / "python" / "bootstrap.py")],
                cwd=str(self.code),
                env=self.env(handler, env),
                stdin=subprocess.DEVNULL,
                stdout=fo,
                stderr=fe,
                start_new_session=True,
            )
        proc = Proc(popen, out, err)
        self.procs.append(proc)
        return proc

    def invoke(self, event=None, **kw):
        rid = self.api.push(event, **kw)
        return self.api.result(rid)

    def close(self):
        for p in self.procs:
            p.kill()
        self.api.stop()


@pytest.fixture(scope="session")
def runtime_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("runtime")
    (d / "python").mkdir()
    shutil.copy(BOOTSTRAP, d / "python" / "bootstrap.py")
    return d


@pytest.fixture
def lam(tmp_path, runtime_dir):
    h = Harness(tmp_path, runtime_dir)
    try:
        yield h
    finally:
        h.close()


@pytest.fixture(scope="session")
def bs(runtime_dir, tmp_path_factory):
    """The bootstrap loaded in-process (for unit tests of pure helpers)."""
    d = tmp_path_factory.mktemp("bs-module")
    shutil.copy(BOOTSTRAP, d / "bootstrap.py")
    spec = importlib.util.spec_from_file_location("nimbus_bootstrap_under_test", str(d / "bootstrap.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def wait_for(cond, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met within %ss" % timeout)
        time.sleep(0.01)


def python_eval(code):
    out = subprocess.run([PYTHON, "-I", "-S", "-c", code], capture_output=True, text=True, timeout=WAIT)
    assert out.returncode == 0, out.stderr
    return out.stdout


ECHO = """
    def handler(event, context):
        return {"got": event}
"""


# ---------------------------------------------------------------------------
# Invocation basics


def test_success_roundtrip_over_one_keepalive_connection(lam):
    lam.write({"app.py": ECHO})
    proc = lam.start()
    events = [{"a": 1, "s": "h\u00e9llo \u2603", "l": [1.5, None, True]}, "just a string", None, 42]
    for ev in events:
        res = lam.invoke(ev)
        assert res.kind == "response"
        assert res.headers["content-type"] == "application/json"
        assert res.raw == json.dumps({"got": ev}).encode()
    wait_for(lambda: len(lam.api.requests) == 2 * len(events) + 1)
    reqs = lam.api.requests
    assert [r[0] for r in reqs] == ["GET", "POST"] * len(events) + ["GET"]
    assert len({r[3] for r in reqs}) == 1, "all requests must share one keep-alive connection"
    assert reqs[0][2]["user-agent"].startswith("aws-lambda-python/")
    assert proc.popen.poll() is None


def test_context_fields(lam):
    lam.write(
        {
            "app.py": """
            def handler(event, context):
                return {
                    "function_name": context.function_name,
                    "function_version": context.function_version,
                    "invoked_function_arn": context.invoked_function_arn,
                    "memory_limit_in_mb": context.memory_limit_in_mb,
                    "aws_request_id": context.aws_request_id,
                    "log_group_name": context.log_group_name,
                    "log_stream_name": context.log_stream_name,
                    "identity": [context.identity.cognito_identity_id, context.identity.cognito_identity_pool_id],
                    "client_context": context.client_context,
                    "tenant_id": context.tenant_id,
                    "remaining": context.get_remaining_time_in_millis(),
                    "w3c": context.w3c(),
                    "repr": repr(context),
                }
            """
        }
    )
    lam.start()
    rid = lam.api.push({}, deadline_in=5.0)
    out = lam.api.result(rid).json
    assert out["function_name"] == "my-fn"
    assert out["function_version"] == "$LATEST"
    assert out["invoked_function_arn"] == "arn:aws:lambda:us-east-1:123456789012:function:my-fn"
    assert out["memory_limit_in_mb"] == "256"  # a string, as on Lambda
    assert out["aws_request_id"] == rid
    assert out["log_group_name"] == "/aws/lambda/my-fn"
    assert out["log_stream_name"] == "2024/01/01/[$LATEST]0123456789abcdef0123456789abcdef"
    assert out["identity"] == [None, None]
    assert out["client_context"] is None
    assert out["tenant_id"] is None
    assert 3000 < out["remaining"] <= 5000
    assert out["w3c"] == {}
    assert out["repr"].startswith("LambdaContext([aws_request_id=%s,log_group_name=/aws/lambda/my-fn," % rid)


def test_remaining_time_counts_down_and_floors_at_zero(lam):
    lam.write(
        {
            "app.py": """
            import time
            def handler(event, context):
                a = context.get_remaining_time_in_millis()
                time.sleep(0.2)
                return [a, context.get_remaining_time_in_millis()]
            """
        }
    )
    lam.start()
    a, b = lam.invoke({}, deadline_in=10.0).json
    assert 9000 < a <= 10000
    assert 150 <= a - b < 2000
    assert lam.invoke({}, deadline_in=-5.0).json == [0, 0]
    # Missing deadline header: remaining time is 0 (deadline 0), not a crash.
    assert lam.invoke({}, headers={"Lambda-Runtime-Deadline-Ms": None}).json == [0, 0]


def test_client_context_cognito_tenant_headers(lam):
    lam.write(
        {
            "app.py": """
            def handler(event, context):
                cc = context.client_context
                c = cc.client
                return {
                    "client": [c.installation_id, c.app_title, c.app_version_name, c.app_version_code, c.app_package_name],
                    "custom": cc.custom,
                    "env": cc.env,
                    "identity": [context.identity.cognito_identity_id, context.identity.cognito_identity_pool_id],
                    "tenant_id": context.tenant_id,
                    "w3c": context.w3c(),
                    "has_w3c_attr": hasattr(cc, "w3c"),
                }
            """
        }
    )
    lam.start()
    client_context = {
        "client": {
            "installation_id": "inst-1",
            "app_title": "My App",
            "app_version_name": "1.2",
            "app_version_code": "12",
            "app_package_name": "com.example",
        },
        "custom": {"k": "v"},
        "env": {"platform": "Android"},
        "w3c": {"traceparent": "00-abc-def-01", "tracestate": 5, "other": "x"},
    }
    cognito = {"cognitoIdentityId": "us-east-1:id", "cognitoIdentityPoolId": "us-east-1:pool"}
    out = lam.invoke(
        {},
        headers={
            "Lambda-Runtime-Client-Context": json.dumps(client_context),
            "Lambda-Runtime-Cognito-Identity": json.dumps(cognito),
            "Lambda-Runtime-Aws-Tenant-Id": "tenant-7",
        },
    ).json
    assert out["client"] == ["inst-1", "My App", "1.2", "12", "com.example"]
    assert out["custom"] == {"k": "v"}
    assert out["env"] == {"platform": "Android"}
    assert out["identity"] == ["us-east-1:id", "us-east-1:pool"]
    assert out["tenant_id"] == "tenant-7"
    assert out["w3c"] == {"traceparent": "00-abc-def-01"}
    assert out["has_w3c_attr"] is False


def test_bad_client_context_is_a_context_unmarshal_error(lam):
    lam.write({"app.py": ECHO})
    lam.start()
    rid = lam.api.push({}, headers={"Lambda-Runtime-Client-Context": "{nope"})
    res = lam.api.result(rid)
    assert res.kind == "error"
    assert res.json == {
        "errorMessage": "Unable to parse Client Context JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
        "errorType": "Runtime.LambdaContextUnmarshalError",
        "requestId": rid,
        "stackTrace": [],
    }


def test_trace_id_env_var_set_and_unset_per_invoke(lam):
    lam.write(
        {
            "app.py": """
            import os
            def handler(event, context):
                return os.environ.get("_X_AMZN_TRACE_ID")
            """
        }
    )
    lam.start()
    trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    assert lam.invoke({}, headers={"Lambda-Runtime-Trace-Id": trace}).json == trace
    assert lam.invoke({}).json is None


def test_globals_persist_across_invokes(lam):
    lam.write(
        {
            "app.py": """
            import os
            COUNT = 0
            def handler(event, context):
                global COUNT
                COUNT += 1
                return [COUNT, os.getpid()]
            """
        }
    )
    proc = lam.start()
    assert lam.invoke({}).json == [1, proc.popen.pid]
    assert lam.invoke({}).json == [2, proc.popen.pid]
    assert lam.invoke({}).json == [3, proc.popen.pid]


@pytest.mark.parametrize(
    "handler,files",
    [
        ("dir/mod.handler", {"dir/mod.py": ECHO}),
        ("pkg.sub.mod.handler", {"pkg/__init__.py": "", "pkg/sub/__init__.py": "", "pkg/sub/mod.py": ECHO}),
        ("pkg/sub/mod.handler", {"pkg/__init__.py": "", "pkg/sub/__init__.py": "", "pkg/sub/mod.py": ECHO}),
    ],
)
def test_handler_module_paths(lam, handler, files):
    lam.write(files)
    lam.start(handler)
    assert lam.invoke({"x": 1}).json == {"got": {"x": 1}}


# ---------------------------------------------------------------------------
# Marshalling


def test_decimal_bytes_and_special_results(lam):
    lam.write(
        {
            "app.py": """
            from decimal import Decimal
            def handler(event, context):
                kind = event["kind"]
                if kind == "decimal":
                    return {"price": Decimal("1.10"), "big": Decimal("12345678901234567890.123456789"),
                            "exp": Decimal("1E+2"), "nan": Decimal("NaN"), "list": [Decimal("-0")]}
                if kind == "bytes":
                    return b"\\x00\\xffraw"
                if kind == "nested-bytes":
                    return {"b": b"caf\\xc3\\xa9"}
                if kind == "float":
                    return [float("nan"), float("inf"), 1e300, 0.1]
                if kind == "none":
                    return None
            """
        }
    )
    lam.start()
    res = lam.invoke({"kind": "decimal"})
    assert res.raw == b'{"price": 1.10, "big": 12345678901234567890.123456789, "exp": 1E+2, "nan": NaN, "list": [-0]}'
    res = lam.invoke({"kind": "bytes"})
    assert res.headers["content-type"] == "application/unknown"
    assert res.raw == b"\x00\xffraw"
    assert lam.invoke({"kind": "nested-bytes"}).raw == b'{"b": "caf\\u00e9"}'
    assert lam.invoke({"kind": "float"}).raw == b"[NaN, Infinity, 1e+300, 0.1]"
    assert lam.invoke({"kind": "none"}).raw == b"null"


def test_non_serialisable_result_is_marshal_error(lam):
    lam.write(
        {
            "app.py": """
            def handler(event, context):
                return {"s": {1, 2}}
            """
        }
    )
    proc = lam.start()
    rid = lam.api.push({})
    res = lam.api.result(rid)
    assert res.kind == "error"
    assert res.json == {
        "errorMessage": "Unable to marshal response: Object of type set is not JSON serializable",
        "errorType": "Runtime.MarshalError",
        "requestId": rid,
        "stackTrace": [],
    }
    cause = json.loads(res.headers["lambda-runtime-function-xray-error-cause"])
    assert cause["exceptions"][0]["type"] == "LambdaValidationError"
    assert (
        "[ERROR] Runtime.MarshalError: Unable to marshal response: Object of type set is not JSON serializable"
        "\rTraceback (most recent call last):\n"
    ) in proc.stdout
    # The runtime keeps serving.
    rid2 = lam.api.push({})
    assert lam.api.result(rid2).kind == "error"


def test_async_handler_does_not_hang(lam):
    lam.write(
        {
            "app.py": """
            async def handler(event, context):
                return 1
            """
        }
    )
    lam.start()
    rid = lam.api.push({})
    res = lam.api.result(rid)
    assert res.json["errorType"] == "Runtime.MarshalError"
    assert res.json["errorMessage"] == "Unable to marshal response: Object of type coroutine is not JSON serializable"


def test_event_unmarshal_error_and_raw_content_types(lam):
    lam.write(
        {
            "app.py": """
            def handler(event, context):
                return {"type": type(event).__name__, "value": event.decode() if isinstance(event, bytes) else event}
            """
        }
    )
    lam.start()
    rid = lam.api.push(raw=b"not json")
    assert lam.api.result(rid).json == {
        "errorMessage": "Unable to unmarshal input: Expecting value: line 1 column 1 (char 0)",
        "errorType": "Runtime.UnmarshalError",
        "requestId": rid,
        "stackTrace": [],
    }
    rid = lam.api.push(raw=b"")
    assert lam.api.result(rid).json["errorType"] == "Runtime.UnmarshalError"
    rid = lam.api.push(raw=b'{"a": 1} x')
    assert lam.api.result(rid).json["errorMessage"] == "Unable to unmarshal input: Extra data: line 1 column 10 (char 9)"
    # Non-JSON content types reach the handler as raw bytes (awslambdaric).
    assert lam.invoke(raw=b"plain text", headers={"Content-Type": "text/plain"}).json == {
        "type": "bytes",
        "value": "plain text",
    }
    # Whitespace, a UTF-8 BOM and UTF-16 are accepted like json.loads() does.
    assert lam.invoke(raw=b' \n {"k": "\xc3\xa9"} \r\n').json == {"type": "dict", "value": {"k": "\u00e9"}}
    assert lam.invoke(raw=b'\xef\xbb\xbf["bom"]').json == {"type": "list", "value": ["bom"]}
    assert lam.invoke(raw='{"u": 16}'.encode("utf-16-le")).json == {"type": "dict", "value": {"u": 16}}


def test_big_event_and_response(lam):
    lam.write(
        {
            "app.py": """
            def handler(event, context):
                return {"n": len(event["blob"]), "out": "y" * event["size"]}
            """
        }
    )
    lam.start()
    size = 6 * 1024 * 1024 - 100
    res = lam.invoke({"blob": "x" * (5 * 1024 * 1024), "size": size})
    assert len(res.raw) == size + len('{"n": 5242880, "out": ""}')
    out = res.json
    assert out["n"] == 5 * 1024 * 1024 and len(out["out"]) == size


def test_chunked_next_response(lam):
    lam.api.chunked = True
    lam.write({"app.py": ECHO})
    lam.start()
    assert lam.invoke({"chunked": "yes" * 1000}).json == {"got": {"chunked": "yes" * 1000}}
    assert lam.invoke([1, 2, 3]).json == {"got": [1, 2, 3]}


# ---------------------------------------------------------------------------
# Handler errors


def test_handler_exception_payload_headers_and_log_line(lam):
    lam.write(
        {
            "app.py": """
            def helper(x):
                raise ValueError("bad input")

            def handler(event, context):
                print("before error")
                helper(event)
            """
        }
    )
    proc = lam.start()
    rid = lam.api.push({})
    res = lam.api.result(rid)
    app = str(lam.code / "app.py")
    frames = [
        '  File "%s", line 7, in handler\n    helper(event)\n' % app,
        '  File "%s", line 3, in helper\n    raise ValueError("bad input")\n' % app,
    ]
    assert res.kind == "error"
    assert res.headers["content-type"] == "application/json"
    assert "lambda-runtime-function-error-type" not in res.headers  # awslambdaric sends none on invoke errors
    assert list(res.json) == ["errorMessage", "errorType", "requestId", "stackTrace"]
    assert res.json == {"errorMessage": "bad input", "errorType": "ValueError", "requestId": rid, "stackTrace": frames}
    cause = json.loads(res.headers["lambda-runtime-function-xray-error-cause"])
    assert cause["working_directory"] == str(lam.code)
    assert cause["paths"] == [app]
    assert cause["exceptions"] == [
        {
            "message": "bad input",
            "type": "ValueError",
            "stack": [
                {"label": "handler", "path": app, "line": 7},
                {"label": "helper", "path": app, "line": 3},
            ],
        }
    ]
    expected_log = (
        "[ERROR] ValueError: bad input\rTraceback (most recent call last):\r"
        + NBSP * 2 + 'File "%s", line 7, in handler\r' % app
        + NBSP * 4 + "helper(event)\r"
        + NBSP * 2 + 'File "%s", line 3, in helper\r' % app
        + NBSP * 4 + 'raise ValueError("bad input")\n'
    )
    assert proc.stdout == "before error\n" + expected_log
    # Still alive and serving.
    rid2 = lam.api.push({})
    assert lam.api.result(rid2).json["requestId"] == rid2


def test_huge_traceback_drops_xray_header_but_reports_error(lam):
    lam.write(
        {
            "app.py": """
            def recurse(n):
                return recurse(n + 1)

            def handler(event, context):
                return recurse(0)
            """
        }
    )
    proc = lam.start()
    rid = lam.api.push({})
    res = lam.api.result(rid)
    body = res.json
    assert body["errorType"] == "RecursionError"
    # traceback.format_list() folds the repetition, the X-Ray stack does not.
    assert "more times]" in body["stackTrace"][-1]
    assert "lambda-runtime-function-xray-error-cause" not in res.headers
    assert proc.popen.poll() is None


def test_handler_exception_json_log_format(lam):
    lam.write(
        {
            "app.py": """
            class MyError(Exception):
                pass

            def handler(event, context):
                raise MyError("caf\\u00e9")
            """
        }
    )
    proc = lam.start(env={"AWS_LAMBDA_LOG_FORMAT": "JSON"})
    rid = lam.api.push({})
    res = lam.api.result(rid)
    assert res.json["errorType"] == "MyError"
    assert res.json["errorMessage"] == "caf\u00e9"
    assert b"\\u00e9" in res.raw  # ASCII-escaped unless AWS_EXECUTION_ENV is python3.12+
    line = proc.stdout.strip()
    rec = json.loads(line)
    assert list(rec) == ["timestamp", "level", "errorMessage", "errorType", "requestId", "stackTrace"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", rec["timestamp"])
    assert rec["level"] == "ERROR" and rec["requestId"] == rid and rec["errorType"] == "MyError"
    assert rec["stackTrace"] == res.json["stackTrace"]


def test_non_ascii_output_for_python312_execution_env(lam):
    lam.write(
        {
            "app.py": """
            def handler(event, context):
                if event == "raise":
                    raise ValueError("caf\\u00e9")
                return {"s": "caf\\u00e9 \\u2603"}
            """
        }
    )
    lam.start(env={"AWS_EXECUTION_ENV": "AWS_Lambda_python3.12"})
    assert lam.invoke("ok").raw == '{"s": "caf\u00e9 \u2603"}'.encode()
    res = lam.invoke("raise")
    assert b'"errorMessage": "caf\xc3\xa9"' in res.raw
    json.loads(res.headers["lambda-runtime-function-xray-error-cause"])  # header stays ASCII JSON


# ---------------------------------------------------------------------------
# Init errors


def _expect_init_error(lam, proc, error_type, message, stack_trace=None):
    res = lam.api.init_error()
    assert proc.wait() == 1
    assert res.headers["lambda-runtime-function-error-type"] == error_type
    body = res.json
    assert list(body) == ["errorMessage", "errorType", "requestId", "stackTrace"]
    assert body["errorType"] == error_type
    assert body["errorMessage"] == message
    assert body["requestId"] == ""
    if stack_trace is not None:
        assert body["stackTrace"] == stack_trace
    assert lam.api.next_calls() == [], "/next must not be called after an init error"
    out = proc.stdout
    assert re.search(r"^\[WARNING\]\t%s\t\tLAMBDA_WARNING: Unhandled exception\. " % TS, out, re.M), out
    return body, out


def test_init_error_module_not_found(lam):
    proc = lam.start("nosuch.handler")
    _, out = _expect_init_error(
        lam, proc, "Runtime.ImportModuleError", "Unable to import module 'nosuch': No module named 'nosuch'", []
    )
    assert out.endswith(
        "[ERROR] Runtime.ImportModuleError: Unable to import module 'nosuch': No module named 'nosuch'"
        "\rTraceback (most recent call last):\n"
    )


def test_init_error_missing_dependency(lam):
    lam.write({"app.py": "import requests_not_installed\n"})
    proc = lam.start()
    _expect_init_error(
        lam, proc, "Runtime.ImportModuleError", "Unable to import module 'app': No module named 'requests_not_installed'", []
    )


def test_init_error_handler_not_found(lam):
    lam.write({"app.py": ECHO})
    proc = lam.start("app.nothere")
    _expect_init_error(lam, proc, "Runtime.HandlerNotFound", "Handler 'nothere' missing on module 'app'", [])


def test_init_error_malformed_handler(lam):
    lam.write({"app.py": ECHO})
    proc = lam.start("app")
    _expect_init_error(
        lam, proc, "Runtime.MalformedHandlerName", "Bad handler 'app': not enough values to unpack (expected 2, got 1)", []
    )


def test_init_error_builtin_module_conflict(lam):
    proc = lam.start("sys.handler")
    _expect_init_error(
        lam, proc, "Runtime.BuiltInModuleConflict", "Cannot use built-in module sys as a handler module", []
    )


def test_init_error_syntax_error(lam):
    source = "import os\nx = = 1\n"
    lam.write({"app.py": source})
    app = str(lam.code / "app.py")
    # What this interpreter says about the error (message text varies by version).
    expected = json.loads(
        python_eval(
            "import json\ntry:\n compile(%r, %r, 'exec')\nexcept SyntaxError as e:\n"
            " print(json.dumps([str(e), e.lineno, e.text]))" % (source, app)
        )
    )
    proc = lam.start()
    _, out = _expect_init_error(
        lam,
        proc,
        "Runtime.UserCodeSyntaxError",
        "Syntax error in module 'app': %s" % expected[0],
        ['  File "%s" Line %s\n    %s' % (app, expected[1], expected[2])],
    )
    assert (
        "[ERROR] Runtime.UserCodeSyntaxError: Syntax error in module 'app': %s\rTraceback (most recent call last):\r"
        % expected[0]
        + NBSP * 2 + 'File "%s" Line %s\r' % (app, expected[1])
        + NBSP * 4 + expected[2].rstrip("\n") + "\n"
    ) in out


def test_init_error_exception_at_import(lam):
    lam.write({"app.py": "import os\n\nraise RuntimeError('config missing')\n"})
    proc = lam.start()
    body, out = _expect_init_error(lam, proc, "RuntimeError", "config missing")
    # Frames start at importlib (bootstrap frames removed), end in the module.
    assert "importlib" in body["stackTrace"][0]
    assert body["stackTrace"][-1] == '  File "%s", line 3, in <module>\n    raise RuntimeError(\'config missing\')\n' % (
        lam.code / "app.py"
    )
    assert not any("bootstrap.py" in f for f in body["stackTrace"])
    assert "[ERROR] RuntimeError: config missing\rTraceback (most recent call last):\r" in out


def test_init_error_logs_include_module_level_output(lam):
    lam.write(
        {
            "app.py": """
            import logging
            print("init print")
            logging.getLogger().warning("init warning")
            import does_not_exist
            """
        }
    )
    proc = lam.start()
    _, out = _expect_init_error(
        lam, proc, "Runtime.ImportModuleError", "Unable to import module 'app': No module named 'does_not_exist'"
    )
    assert out.startswith("init print\n")
    assert re.search(r"^\[WARNING\]\t%s\t\tinit warning\n" % TS, out, re.M), out


# ---------------------------------------------------------------------------
# Logging


LOGGING_APP = """
    import logging
    logging.basicConfig(level=logging.DEBUG, format="%(message)s")  # a no-op on Lambda
    logging.getLogger().warning("at import")
    log = logging.getLogger("child")

    def handler(event, context):
        root = logging.getLogger()
        root.debug("debug msg")
        root.info("info msg")
        root.warning("warn %s", 1)
        log.error("child error")
        print("plain print")
        try:
            1 / 0
        except ZeroDivisionError:
            log.exception("caught")
        print("after exception")
        context.log("ctx-log\\n")
        return "ok"
"""


def test_logging_text_format_default_level(lam):
    lam.write({"app.py": LOGGING_APP})
    proc = lam.start()
    rid = lam.api.push({})
    assert lam.api.result(rid).json == "ok"
    out = proc.stdout
    lines = out.split("\n")
    assert re.fullmatch(r"\[WARNING\]\t%s\t\tat import" % TS, lines[0]), lines
    assert re.fullmatch(r"\[WARNING\]\t%s\t%s\twarn 1" % (TS, rid), lines[1]), lines
    assert re.fullmatch(r"\[ERROR\]\t%s\t%s\tchild error" % (TS, rid), lines[2]), lines
    assert lines[3] == "plain print"
    # A multi-line record stays one line (one log event): inner newlines become \r.
    assert re.fullmatch(
        r"\[ERROR\]\t%s\t%s\tcaught\rTraceback \(most recent call last\):\r  File .*\r    1 / 0\r.*"
        r"ZeroDivisionError: division by zero" % (TS, rid),
        lines[4],
    ), lines
    assert lines[5:] == ["after exception", "ctx-log", ""]
    assert "debug msg" not in out and "info msg" not in out  # root stays at WARNING


@pytest.mark.parametrize(
    "level,shown",
    [
        ("DEBUG", {"debug msg", "info msg", "warn 1"}),
        ("TRACE", {"debug msg", "info msg", "warn 1"}),  # TRACE maps to DEBUG
        ("INFO", {"info msg", "warn 1"}),
        ("ERROR", set()),
        ("trace", {"warn 1"}),  # not a level name after upper-casing only TRACE: ignored
        ("bogus", {"warn 1"}),
    ],
)
def test_logging_level_from_env(lam, level, shown):
    lam.write({"app.py": LOGGING_APP})
    proc = lam.start(env={"AWS_LAMBDA_LOG_LEVEL": level})
    rid = lam.api.push({})
    lam.api.result(rid)
    out = proc.stdout
    for msg in ["debug msg", "info msg", "warn 1"]:
        assert (msg in out) == (msg in shown), (msg, out)
    assert "child error" in out


def test_logging_text_multiline_message_is_one_line(lam):
    lam.write(
        {
            "app.py": """
            import logging
            def handler(event, context):
                logging.warning("first\\nsecond\\n")
                print("printed\\nas is")
                return 1
            """
        }
    )
    proc = lam.start()
    rid = lam.api.push({})
    lam.api.result(rid)
    lines = proc.stdout.split("\n")
    assert re.fullmatch(r"\[WARNING\]\t%s\t%s\tfirst\rsecond\r" % (TS, rid), lines[0]), lines
    assert lines[1:] == ["printed", "as is", ""]


def test_logging_json_format(lam):
    lam.write({"app.py": LOGGING_APP})
    proc = lam.start(env={"AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": "INFO"})
    rid = lam.api.push({}, headers={"Lambda-Runtime-Aws-Tenant-Id": "t-1"})
    lam.api.result(rid)
    records = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    by_msg = {r["message"]: r for r in records}
    assert by_msg["at import"] == {
        "timestamp": by_msg["at import"]["timestamp"],
        "level": "WARNING",
        "message": "at import",
        "logger": "root",
        "requestId": "",
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", by_msg["at import"]["timestamp"])
    info = by_msg["info msg"]
    assert info["level"] == "INFO" and info["requestId"] == rid and info["tenantId"] == "t-1" and info["logger"] == "root"
    assert "debug msg" not in by_msg
    exc = by_msg["caught"]
    assert exc["errorType"] == "ZeroDivisionError" and exc["errorMessage"] == "division by zero"
    assert exc["logger"] == "child" and exc["level"] == "ERROR"
    assert exc["location"].endswith("app.py:handler:17")
    assert any("1 / 0" in frame for frame in exc["stackTrace"])
    assert "plain print" in proc.stdout.splitlines()


def test_logging_json_extra_fields_and_dict_messages(lam):
    lam.write(
        {
            "app.py": """
            import logging
            logger = logging.getLogger("app")
            def handler(event, context):
                logger.warning({"event": "dict message", "n": 1})
                logger.warning("with extra", extra={"order_id": 42, "obj": object})
                return "ok"
            """
        }
    )
    proc = lam.start(env={"AWS_LAMBDA_LOG_FORMAT": "json"})
    lam.invoke({})
    recs = [json.loads(line) for line in proc.stdout.splitlines()]
    assert recs[0]["message"] == {"event": "dict message", "n": 1}
    assert recs[1]["message"] == "with extra" and recs[1]["order_id"] == 42 and recs[1]["obj"] == "<class 'object'>"


# ---------------------------------------------------------------------------
# Environment: sys.path, builtins, stdio


def test_sys_path_isolation_and_pythonpath(lam, tmp_path, runtime_dir):
    lib1 = tmp_path / "lib1"
    lib2 = tmp_path / "lib2"
    (lib1).mkdir()
    (lib2).mkdir()
    (lib1 / "extmod.py").write_text("WHERE = 'lib1'\n")
    (lib2 / "extmod.py").write_text("WHERE = 'lib2'\n")
    (lib2 / "other.py").write_text("X = 2\n")
    lam.write(
        {
            "app.py": """
            import sys
            def handler(event, context):
                out = {"path": sys.path, "site": "site" in sys.modules, "exit": callable(exit)}
                for name in ["pytest", "bootstrap", "extmod", "other", "json"]:
                    try:
                        mod = __import__(name)
                        out[name] = getattr(mod, "WHERE", getattr(mod, "X", "imported"))
                    except ImportError as e:
                        out[name] = type(e).__name__
                return out
            """
        }
    )
    lam.start(env={"PYTHONPATH": "%s::%s:%s" % (lib1, tmp_path / "missing", lib2)})
    out = lam.invoke({}).json
    host_site = json.loads(python_eval("import json, site; print(json.dumps(site.getsitepackages() + [site.getusersitepackages()]))"))
    path = out["path"]
    assert path[:3] == [str(lam.code), str(lib1), str(lib2)]
    assert str(tmp_path / "missing") not in path and "" not in path
    assert str(runtime_dir / "python") not in path
    assert not any(p in path for p in host_site)
    assert not any(p.endswith(("site-packages", "dist-packages")) for p in path)
    assert out["pytest"] == "ModuleNotFoundError"
    assert out["bootstrap"] == "ModuleNotFoundError"
    assert out["extmod"] == "lib1" and out["other"] == 2 and out["json"] == "imported"
    assert out["site"] is False and out["exit"] is True


def test_bootstrap_does_not_load_heavy_modules(lam):
    # Cold-start guard: the bootstrap itself must not import these (user code may).
    lam.write(
        {
            "app.py": """
            import sys
            def handler(event, context):
                return sorted(sys.modules)
            """
        }
    )
    lam.start()
    loaded = set(lam.invoke({"a": [1, 2]}).json)
    heavy = {"json", "re", "logging", "socket", "http.client", "traceback", "enum", "encodings.idna", "decimal", "site"}
    assert loaded & heavy == set()


def test_exit_builtin_ends_the_process(lam):
    lam.write(
        {
            "app.py": """
            def handler(event, context):
                exit(3)
            """
        }
    )
    proc = lam.start()
    lam.api.push({})
    assert proc.wait() == 3


# ---------------------------------------------------------------------------
# Runtime API failures


def test_next_failure_exits_1(lam):
    lam.api.next_status = 500
    lam.write({"app.py": ECHO})
    proc = lam.start()
    assert proc.wait() == 1
    assert "Failed to get next invocation" in proc.stderr


def test_dropped_next_connection_exits_1(lam):
    lam.write({"app.py": ECHO})
    proc = lam.start()
    assert lam.invoke({}).kind == "response"
    lam.api.drop_next()  # the kept-alive connection dies: one retry on a fresh one...
    lam.api.drop_next()  # ...which dies too
    assert proc.wait() == 1
    assert "Failed to get next invocation" in proc.stderr


def test_missing_request_id_exits_1(lam):
    lam.write({"app.py": ECHO})
    proc = lam.start()
    lam.api.push({}, headers={"Lambda-Runtime-Aws-Request-Id": None})
    assert proc.wait() == 1


def test_rejected_response_post_exits_1(lam):
    # awslambdaric treats any non-2xx answer to /response or /error as fatal.
    lam.api.post_status = 413
    lam.write({"app.py": ECHO})
    proc = lam.start()
    rid = lam.api.push({})
    assert lam.api.result(rid).kind == "response"
    assert proc.wait() == 1
    assert "413" in proc.stderr


def test_unreachable_runtime_api_exits_1(lam):
    lam.write({"app.py": ECHO})
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    proc = lam.start(env={"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:%d" % port})
    assert proc.wait() == 1


# ---------------------------------------------------------------------------
# Bytecode cache of the bootstrap implementation


def test_bytecode_cache_is_written_and_survives_corruption(lam, runtime_dir):
    lam.write({"app.py": ECHO})
    lam.start()
    assert lam.invoke(1).json == {"got": 1}
    tag = python_eval("import sys; print(sys.implementation.cache_tag)").strip()
    cache = runtime_dir / "python" / "__pycache__" / ("bootstrap-impl.%s.pyc" % tag)
    assert cache.is_file()
    cache.write_bytes(b"garbage")
    lam.start()
    assert lam.invoke(2).json == {"got": 2}
    assert lam.invoke(3).json == {"got": 3}
    assert cache.read_bytes() != b"garbage"


# ---------------------------------------------------------------------------
# In-process unit tests of the JSON helpers


@pytest.mark.parametrize(
    "obj",
    [
        {"a": [1, 2.5, None, True, False], "b": {"c": "d\u00e9\u2603\U0001F600\n\t\"\\"}},
        "plain",
        "",
        0,
        -1.0,
        1e-7,
        [],
        {},
        {1: "int key", 2.5: "float key", None: "none", True: "bool"},
        [float("inf"), float("-inf")],
        list(range(100)),
        ("tuple", 1),
        "\ud800 lone surrogate",
    ],
)
def test_json_dumps_matches_stdlib(bs, obj):
    assert bs._json_dumps(obj) == json.dumps(obj)
    assert bs._json_dumps(obj, ensure_ascii=False) == json.dumps(obj, ensure_ascii=False)


def test_json_dumps_errors_match_stdlib(bs):
    class Foo:
        pass

    for bad in [{"x": Foo()}, {(1, 2): 1}]:
        with pytest.raises(TypeError) as ours:
            bs._json_dumps(bad)
        with pytest.raises(TypeError) as theirs:
            json.dumps(bad)
        assert str(ours.value) == str(theirs.value)
    loop = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular reference detected"):
        bs._json_dumps(loop)
    # The encoder is not poisoned by a previous failure.
    shared = [1]
    assert bs._json_dumps([shared, shared]) == "[[1], [1]]"


def test_json_dumps_decimal_like_simplejson(bs):
    assert bs._json_dumps({"d": Decimal("3.14159265358979323846264338327950288")}) == (
        '{"d": 3.14159265358979323846264338327950288}'
    )
    assert bs._json_dumps([Decimal("sNaN"), Decimal("-Infinity"), Decimal("0E-7")]) == "[NaN, -Infinity, 0E-7]"
    # A user string that merely looks like the internal tag is left alone.
    assert bs._json_dumps(["\x00nimbus-decimal-0:1"]) == json.dumps(["\x00nimbus-decimal-0:1"])


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a": 1}',
        b'  [1, 2.5, "x", null, true, false, -0, 1e400, NaN, -Infinity]  ',
        b'"str"',
        b"123",
        '{"\u00e9": "\u2603"}'.encode(),
        '{"a": 1}',
        b"\xef\xbb\xbf{}",
        '[1]'.encode("utf-16"),
        '[1]'.encode("utf-32-be"),
        b'{"dup": 1, "dup": 2}',
    ],
)
def test_json_loads_matches_stdlib(bs, raw):
    ours = bs._json_loads(raw)
    theirs = json.loads(raw)
    assert json.dumps(ours) == json.dumps(theirs)


@pytest.mark.parametrize("raw", [b"", b" ", b"nope", b'{"a": 1} 2', b"[1,]", b'{"a" 1}', b"\xff\xfe\xfd", b'"\\x"'])
def test_json_loads_errors_match_stdlib(bs, raw):
    with pytest.raises(Exception) as ours:
        bs._json_loads(raw)
    with pytest.raises(Exception) as theirs:
        json.loads(raw)
    assert type(ours.value) is type(theirs.value)
    assert str(ours.value) == str(theirs.value)
