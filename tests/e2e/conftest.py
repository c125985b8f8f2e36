"""Shared fixtures and helpers for the Nimbus end-to-end suite.

The suite drives a real `nimbus serve` process (NIMBUS_BIN, default
target/release/nimbus) through unmodified clients: boto3, the AWS CLI and the
`nimbus` CLI. Nothing is started at import/collection time: the session server
is started lazily by the `server` fixture, so `pytest --collect-only` works
without a built binary.

Test modules import the plain helpers below with `from .conftest import ...`
(tests/e2e is a package, so this is the same module object pytest loaded).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

# --------------------------------------------------------------------------
# Constants of the deployment under test
# --------------------------------------------------------------------------

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES_DIR = REPO_ROOT / "tests" / "fixtures"
FUNCTIONS_DIR = FIXTURES_DIR / "functions"
REGION = "us-east-1"
ACCOUNT = "000000000000"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/lambda-role"
DEFAULT_RUNTIME = "python3.11"

STREAM_NAME_RE = re.compile(r"^\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}$")
LAST_MODIFIED_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+0000$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

# Limits (AWS defaults, reference §5)
SYNC_PAYLOAD_LIMIT = 6 * 1024 * 1024  # 6291456 bytes

NODE = shutil.which("node")


def function_arn(name: str, qualifier: str | None = None) -> str:
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
    return f"{arn}:{qualifier}" if qualifier else arn


def b64sha256(data: bytes) -> str:
    """CodeSha256 as Lambda reports it: standard base64 of the raw SHA-256 digest."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def real_python() -> str:
    """Absolute path of a real interpreter (never a version-manager shim).

    Inside the e2e venv sys.executable is a symlink to the base interpreter;
    resolving it gives e.g. /usr/bin/python3.11, which custom-runtime
    bootstraps can exec directly (same ABI as packages the venv's pip builds).
    """
    return os.path.realpath(sys.executable)


# --------------------------------------------------------------------------
# Zip building
# --------------------------------------------------------------------------

_ZIP_DATE = (2020, 1, 1, 0, 0, 0)  # fixed timestamps => identical zips for identical content


def make_zip(
    files: Mapping[str, str | bytes],
    modes: Mapping[str, int] | None = None,
    symlinks: Mapping[str, str] | None = None,
) -> bytes:
    """Build a deployment package in memory.

    files: archive path -> content. Files named `bootstrap` default to 0755,
    everything else to 0644; `modes` overrides per path. `symlinks` adds
    entries stored the way Info-ZIP stores symlinks (S_IFLNK mode, link
    target as the content).
    """
    modes = dict(modes or {})
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in files.items():
            data = content.encode() if isinstance(content, str) else bytes(content)
            default = 0o755 if name.rsplit("/", 1)[-1] == "bootstrap" else 0o644
            mode = modes.get(name, default)
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix, so external_attr carries the mode
            info.external_attr = (stat.S_IFREG | mode) << 16
            zf.writestr(info, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.create_system = 3
            info.external_attr = 0o120777 << 16
            zf.writestr(info, target)
    return buf.getvalue()


def read_function_dir(path: Path) -> tuple[dict[str, bytes], dict[str, int]]:
    files: dict[str, bytes] = {}
    modes: dict[str, int] = {}
    for p in sorted(path.rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts:
            rel = p.relative_to(path).as_posix()
            files[rel] = p.read_bytes()
            modes[rel] = stat.S_IMODE(p.stat().st_mode)
    return files, modes


def zip_dir(path: Path, extra: Mapping[str, str | bytes] | None = None) -> bytes:
    files, modes = read_function_dir(path)
    files.update(extra or {})
    return make_zip(files, modes)


def fixture_function(name: str) -> dict[str, bytes]:
    """Files of tests/fixtures/functions/<name> as a dict suitable for make_zip."""
    files, _ = read_function_dir(FUNCTIONS_DIR / name)
    return files


def python_probe_zip(extra: Mapping[str, str | bytes] | None = None) -> bytes:
    return zip_dir(FUNCTIONS_DIR / "python_probe", extra)


def node_probe_zip(extra: Mapping[str, str | bytes] | None = None) -> bytes:
    return zip_dir(FUNCTIONS_DIR / "node_probe", extra)


def bash_runtime_zip() -> bytes:
    return zip_dir(FUNCTIONS_DIR / "provided_bash")


def python_custom_runtime_zip() -> bytes:
    src = (FUNCTIONS_DIR / "provided_python" / "bootstrap").read_text()
    lines = src.splitlines(keepends=True)
    lines[0] = f"#!{real_python()}\n"
    return make_zip({"bootstrap": "".join(lines)}, {"bootstrap": 0o755})


# --------------------------------------------------------------------------
# Small utilities
# --------------------------------------------------------------------------


def wait_until(
    predicate: Callable[[], Any],
    timeout: float = 5.0,
    interval: float = 0.1,
    message: str = "condition",
) -> Any:
    """Poll `predicate` until it returns a truthy value; return that value.

    Exceptions raised by the predicate count as "not yet" (the last one is
    reported if the deadline passes).
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            value = predicate()
            if value:
                return value
            last = value
        except Exception as exc:  # noqa: BLE001 - polled condition
            last = exc
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}; last: {last!r}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pid_alive(pid: int) -> bool:
    """True if the process exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return False


def client_error(exc: ClientError) -> tuple[int, str, str]:
    """(HTTP status, error code, message) of a botocore ClientError."""
    return (
        exc.response["ResponseMetadata"]["HTTPStatusCode"],
        exc.response["Error"]["Code"],
        exc.response["Error"].get("Message", ""),
    )


def expect_client_error(
    call: Callable[[], Any],
    status: int | Iterable[int],
    codes: str | Iterable[str],
) -> ClientError:
    """Run `call`, require a ClientError with the given status and code(s)."""
    statuses = {status} if isinstance(status, int) else set(status)
    allowed = {codes} if isinstance(codes, str) else set(codes)
    with pytest.raises(ClientError) as info:
        call()
    got_status, got_code, msg = client_error(info.value)
    assert got_status in statuses and got_code in allowed, (
        f"expected HTTP {sorted(statuses)} {sorted(allowed)}, got HTTP {got_status} {got_code}: {msg}"
    )
    return info.value


# --------------------------------------------------------------------------
# Invocation helpers
# --------------------------------------------------------------------------


@dataclass
class InvokeResult:
    response: dict
    body: bytes

    @property
    def status(self) -> int:
        return self.response["StatusCode"]

    @property
    def http_status(self) -> int:
        return self.response["ResponseMetadata"]["HTTPStatusCode"]

    @property
    def function_error(self) -> str | None:
        return self.response.get("FunctionError")

    @property
    def executed_version(self) -> str | None:
        return self.response.get("ExecutedVersion")

    @property
    def request_id(self) -> str:
        return self.response["ResponseMetadata"]["RequestId"]

    @property
    def headers(self) -> dict:
        return self.response["ResponseMetadata"].get("HTTPHeaders", {})

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def log(self) -> str:
        """Decoded X-Amz-Log-Result (only with LogType='Tail')."""
        raw = self.response.get("LogResult")
        assert raw, "response has no LogResult"
        return base64.b64decode(raw).decode("utf-8", "replace")

    def ok(self) -> Any:
        """Assert a successful synchronous invoke and return the decoded result."""
        assert self.status == 200, self.response
        assert self.function_error is None, f"function error {self.function_error}: {self.body[:2000]!r}"
        return self.json

    def error(self, error_type: str | Iterable[str] | None = None) -> dict:
        """Assert an Unhandled function error and return the error JSON."""
        assert self.status == 200, self.response
        assert self.function_error == "Unhandled", f"expected FunctionError Unhandled, got {self.function_error!r}: {self.body[:2000]!r}"
        err = self.json
        assert isinstance(err, dict), err
        if error_type is not None:
            allowed = {error_type} if isinstance(error_type, str) else set(error_type)
            assert err.get("errorType") in allowed, f"errorType {err.get('errorType')!r} not in {sorted(allowed)}: {err}"
        return err


def invoke(lam, name: str, event: Any = None, *, raw: bytes | None = None, **kwargs) -> InvokeResult:
    """Invoke and read the whole payload. `event` is JSON-encoded unless `raw` is given."""
    payload = raw if raw is not None else json.dumps({} if event is None else event).encode()
    resp = lam.invoke(FunctionName=name, Payload=payload, **kwargs)
    body = resp["Payload"].read() if "Payload" in resp else b""
    return InvokeResult(resp, body)


def is_cold_report(log: str) -> bool:
    return "Init Duration:" in log


# --------------------------------------------------------------------------
# Clients
# --------------------------------------------------------------------------

_CLIENT_CONFIG = dict(
    retries={"total_max_attempts": 1, "mode": "standard"},  # no retries: each call is exactly one request
    read_timeout=120,
    connect_timeout=10,
    max_pool_connections=32,
)


def make_client(service: str, url: str, **config_overrides):
    session = boto3.session.Session()
    return session.client(
        service,
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(**{**_CLIENT_CONFIG, **config_overrides}),
    )


def lambda_client(url: str, **config_overrides):
    return make_client("lambda", url, **config_overrides)


def logs_client(url: str, **config_overrides):
    return make_client("logs", url, **config_overrides)


def all_log_events(logs, group: str, **kwargs) -> list[dict]:
    """FilterLogEvents over every page."""
    events: list[dict] = []
    token = None
    for _ in range(1000):
        args = dict(logGroupName=group, **kwargs)
        if token:
            args["nextToken"] = token
        page = logs.filter_log_events(**args)
        events.extend(page.get("events", []))
        new_token = page.get("nextToken")
        if not new_token or new_token == token:
            break
        token = new_token
    return events


def wait_for_log_messages(logs, group: str, needles: Iterable[str], timeout: float = 10.0, **kwargs) -> list[dict]:
    """Poll FilterLogEvents until every needle occurs in some event's message."""
    needles = list(needles)

    def check():
        events = all_log_events(logs, group, **kwargs)
        text = "\n".join(e["message"] for e in events)
        return events if all(n in text for n in needles) else None

    return wait_until(check, timeout=timeout, interval=0.25, message=f"log messages {needles} in {group}")


# --------------------------------------------------------------------------
# Server process management
# --------------------------------------------------------------------------


def resolve_nimbus_bin() -> Path:
    raw = os.environ.get("NIMBUS_BIN")
    if raw:
        p = Path(raw)
        if not p.is_absolute():
            p = p if p.exists() else REPO_ROOT / p
        return p.resolve()
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO_ROOT / "target"))
    return (target / "release" / "nimbus").resolve()


def resolve_rust_fixture_bin() -> Path:
    raw = os.environ.get("RUST_FN_FIXTURE_BIN")
    if raw:
        return Path(raw).resolve()
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO_ROOT / "target"))
    return (target / "release" / "rust-fn-fixture").resolve()


_LIVE_SERVERS: list["Server"] = []


class Server:
    """One `nimbus serve` process with its own data directory.

    start() / stop() / kill() / restart() can be called repeatedly; the data
    directory and (by default) the port are kept, so a restarted server is the
    "same" deployment.
    """

    def __init__(
        self,
        binary: Path,
        data_dir: Path,
        log_dir: Path,
        name: str = "nimbus",
        port: int | None = None,
        extra_args: list[str] | None = None,
    ):
        self.binary = binary
        self.extra_args = list(extra_args or [])
        self.data_dir = data_dir
        self.log_dir = log_dir
        self.name = name
        self.port = port or free_port()
        self.cwd = log_dir / f"{name}-cwd"  # empty scratch cwd: relative writes would show up here
        self.stderr_path = log_dir / f"{name}.stderr.log"
        self.stdout_path = log_dir / f"{name}.stdout.log"
        self.proc: subprocess.Popen | None = None
        self.pgids: set[int] = set()
        self.starts = 0
        data_dir.mkdir(parents=True, exist_ok=True)
        self.cwd.mkdir(parents=True, exist_ok=True)

    # -- addresses ---------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def lambda_client(self, **kw):
        return lambda_client(self.url, **kw)

    def logs_client(self, **kw):
        return logs_client(self.url, **kw)

    # -- lifecycle ---------------------------------------------------------
    def start(self, timeout: float = 30.0) -> "Server":
        if self.running():
            return self
        if not self.binary.is_file():
            pytest.fail(f"nimbus binary not found at {self.binary} (build it with `cargo build --release` or set NIMBUS_BIN)")
        self.starts += 1
        env = dict(os.environ)
        env.setdefault("RUST_BACKTRACE", "1")
        # Most tests look at host paths and pids, so process isolation unless a test (or
        # NIMBUS_E2E_SERVER_ARGS) asks for the sandbox; test_sandbox.py covers the default.
        isolation = [] if "--isolation" in self.extra_args else ["--isolation", "process"]
        cmd = [str(self.binary), "serve", "--listen", f"127.0.0.1:{self.port}", "--data-dir", str(self.data_dir),
               *isolation, *self.extra_args]
        with open(self.stderr_path, "ab") as err, open(self.stdout_path, "ab") as out:
            banner = f"\n===== start #{self.starts}: {' '.join(cmd)} =====\n".encode()
            err.write(banner)
            err.flush()
            self.proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                cwd=self.cwd,
                env=env,
                start_new_session=True,  # own process group: SIGINT to pytest does not hit it; cleanup can reap it
            )
        self.pgids.add(self.proc.pid)
        if self not in _LIVE_SERVERS:
            _LIVE_SERVERS.append(self)
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        health = f"{self.url}/_nimbus/health"
        last: Any = None
        while time.monotonic() < deadline:
            assert self.proc is not None
            rc = self.proc.poll()
            if rc is not None:
                raise AssertionError(f"{self.name} exited with status {rc} before becoming ready\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(health, timeout=2) as resp:
                    if resp.status == 200:
                        return
                    last = resp.status
            except urllib.error.HTTPError as exc:
                last = exc.code
            except (urllib.error.URLError, OSError) as exc:
                last = exc
            time.sleep(0.05)
        raise AssertionError(f"{self.name} not healthy after {timeout}s (last: {last!r})\n{self.log_tail()}")

    def stop(self, timeout: float = 10.0) -> tuple[int | None, float]:
        """SIGTERM and wait. Returns (exit status, seconds taken); the status is
        None if the process had to be SIGKILLed after `timeout`."""
        if self.proc is None:
            return (None, 0.0)
        if self.proc.poll() is not None:
            return (self.proc.returncode, 0.0)
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return (None, time.monotonic() - t0)
        return (rc, time.monotonic() - t0)

    def kill(self) -> None:
        """SIGKILL the server process only (its children are left as they are)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def restart(self, timeout: float = 30.0) -> "Server":
        self.stop()
        return self.start(timeout)

    def cleanup(self) -> None:
        """Last-resort teardown: stop the server and SIGKILL whatever is left in
        the process groups it led (orphaned environments after a kill -9)."""
        if self.running():
            self.stop()
        for pgid in list(self.pgids):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
        if self in _LIVE_SERVERS:
            _LIVE_SERVERS.remove(self)

    # -- diagnostics -------------------------------------------------------
    def log_tail(self, lines: int = 60) -> str:
        out = []
        for path in (self.stderr_path, self.stdout_path):
            try:
                text = path.read_text(errors="replace").splitlines()
            except OSError:
                continue
            if text:
                out.append(f"--- {path} (last {min(lines, len(text))} lines) ---")
                out.extend(text[-lines:])
        return "\n".join(out) if out else f"(no output from {self.name})"


class ServerFactory:
    def __init__(self, binary: Path, base_dir: Path):
        self.binary = binary
        self.base_dir = base_dir
        self.servers: list[Server] = []

    def new(self, name: str | None = None, start: bool = True, extra_args: list[str] | None = None) -> Server:
        name = name or f"nimbus-{len(self.servers) + 1}"
        root = self.base_dir / f"{name}-{uuid.uuid4().hex[:6]}"
        srv = Server(self.binary, root / "data", root, name=name, extra_args=extra_args)
        self.servers.append(srv)
        if start:
            srv.start()
        return srv

    def close(self) -> None:
        for srv in self.servers:
            srv.cleanup()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for srv in list(_LIVE_SERVERS):
            rep.sections.append((f"{srv.name} log tail", srv.log_tail()))


# --------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def nimbus_bin() -> Path:
    path = resolve_nimbus_bin()
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(f"nimbus binary not found or not executable: {path} (set NIMBUS_BIN or build with cargo build --release)")
    return path


@pytest.fixture(scope="session")
def _session_servers(tmp_path_factory, nimbus_bin):
    factory = ServerFactory(nimbus_bin, tmp_path_factory.mktemp("nimbus-session"))
    yield factory
    factory.close()


@pytest.fixture(scope="session")
def server(_session_servers) -> Server:
    """The shared Nimbus server for the whole session (started on first use).
    NIMBUS_E2E_SERVER_ARGS adds arguments, e.g. "--isolation sandbox"."""
    srv = _session_servers.new("nimbus", extra_args=os.environ.get("NIMBUS_E2E_SERVER_ARGS", "").split())
    yield srv
    rc, took = srv.stop()
    if rc != 0:
        sys.stderr.write(f"\nWARNING: session server exit status {rc} after SIGTERM ({took:.1f}s)\n{srv.log_tail()}\n")


@pytest.fixture
def server_factory(tmp_path, nimbus_bin):
    """Creates extra, independent servers (own data dir, own port) for one test."""
    factory = ServerFactory(nimbus_bin, tmp_path)
    yield factory
    factory.close()


@pytest.fixture(scope="session")
def lam(server):
    return server.lambda_client()


@pytest.fixture(scope="session")
def lam_novalidate(server):
    """Lambda client without botocore's client-side parameter validation, so
    out-of-range values (MemorySize=127, Timeout=0, ...) reach the server."""
    return server.lambda_client(parameter_validation=False)


@pytest.fixture(scope="session")
def logs(server):
    return server.logs_client()


def unique_name(prefix: str = "fn") -> str:
    clean = re.sub(r"[^A-Za-z0-9-]+", "-", prefix).strip("-")[:40] or "fn"
    return f"e2e-{clean}-{uuid.uuid4().hex[:10]}"


@dataclass
class Function:
    name: str
    arn: str
    zip: bytes
    config: dict
    runtime: str
    handler: str
    extra: dict = field(default_factory=dict)


class FunctionFactory:
    """create_fn(...) -> Function; every function created is deleted at teardown."""

    def __init__(self, lam, prefix: str):
        self.lam = lam
        self.prefix = prefix
        self.created: list[str] = []

    def __call__(
        self,
        name: str | None = None,
        code: bytes | Mapping[str, str | bytes] | None = None,
        runtime: str = DEFAULT_RUNTIME,
        handler: str = "app.handler",
        *,
        env: Mapping[str, str] | None = None,
        wait: bool = True,
        lam=None,
        **kwargs,
    ) -> Function:
        client = lam or self.lam
        name = name or unique_name(self.prefix)
        if code is None:
            if runtime.startswith("python"):
                code = python_probe_zip()
            elif runtime.startswith("nodejs"):
                code = node_probe_zip()
            else:
                code = bash_runtime_zip()
        zip_bytes = code if isinstance(code, (bytes, bytearray)) else make_zip(code)
        args = dict(FunctionName=name, Runtime=runtime, Role=ROLE, Handler=handler, Code={"ZipFile": zip_bytes})
        if env is not None:
            args["Environment"] = {"Variables": dict(env)}
        args.update(kwargs)
        resp = client.create_function(**args)
        self.created.append(name)
        if wait:
            wait_active(client, name)
        return Function(name, resp["FunctionArn"], bytes(zip_bytes), resp, runtime, handler)

    def cleanup(self) -> None:
        for name in self.created:
            with contextlib.suppress(Exception):
                self.lam.delete_function(FunctionName=name)


def wait_active(lam, name: str, timeout: float = 30.0) -> dict:
    """Poll until State Active and LastUpdateStatus Successful (what the v2 waiters check)."""
    deadline = time.monotonic() + timeout
    while True:
        cfg = lam.get_function_configuration(FunctionName=name)
        state = cfg.get("State")
        if state == "Failed" or cfg.get("LastUpdateStatus") == "Failed":
            raise AssertionError(f"function {name} failed: {cfg.get('StateReason')} {cfg.get('LastUpdateStatusReason')}")
        if state == "Active" and cfg.get("LastUpdateStatus", "Successful") == "Successful":
            return cfg
        if time.monotonic() > deadline:
            raise AssertionError(f"function {name} not Active/Successful after {timeout}s: {cfg}")
        time.sleep(0.1)


@pytest.fixture
def create_fn(request, lam):
    factory = FunctionFactory(lam, request.node.name)
    yield factory
    factory.cleanup()


def aws_cli_path() -> Path | None:
    p = Path(sys.executable).parent / "aws"
    if p.exists():
        return p
    found = shutil.which("aws")
    return Path(found) if found else None
