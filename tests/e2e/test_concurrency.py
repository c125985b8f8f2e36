"""Concurrency: the account limit, reserved concurrency (Put/Get/DeleteFunctionConcurrency),
throttling with Lambda's reasons, and parallel environments — on a server whose account
limit is small enough to reach."""

import concurrent.futures as cf
import json

import pytest
from botocore.exceptions import ClientError

from .conftest import ROLE, expect_client_error, make_zip, unique_name

SLEEPY = (
    "import os, time\n"
    "def handler(event, context):\n"
    "    time.sleep(event.get('sleep', 0))\n"
    "    return {'pid': os.getpid(), 'stream': context.log_stream_name}\n"
)


@pytest.fixture(scope="module")
def small(tmp_path_factory, nimbus_bin):
    """A server with an account limit of 10, of which 2 can never be reserved."""
    from .conftest import ServerFactory

    factory = ServerFactory(nimbus_bin, tmp_path_factory.mktemp("concurrency"))
    srv = factory.new("small", extra_args=["--concurrency-limit", "10", "--min-unreserved", "2"])
    yield srv
    factory.close()


@pytest.fixture(scope="module")
def slam(small):
    return small.lambda_client()


def _create(lam, name=None):
    name = name or unique_name("conc")
    lam.create_function(
        FunctionName=name, Runtime="python3.11", Role=ROLE, Handler="app.handler",
        Code={"ZipFile": make_zip({"app.py": SLEEPY})}, Timeout=10,
    )
    return name


def _parallel(lam, name, n, sleep):
    """n simultaneous invokes; returns (results, throttle reasons)."""

    def one(_):
        try:
            r = lam.invoke(FunctionName=name, Payload=json.dumps({"sleep": sleep}).encode())
            assert "FunctionError" not in r, r["Payload"].read()
            return ("ok", json.loads(r["Payload"].read()))
        except ClientError as e:
            assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 429
            assert e.response["Error"]["Code"] == "TooManyRequestsException"
            return ("throttled", e.response.get("Reason"))

    with cf.ThreadPoolExecutor(n) as pool:
        out = list(pool.map(one, range(n)))
    return [r for k, r in out if k == "ok"], [r for k, r in out if k == "throttled"]


def test_concurrency_api_shapes(slam):
    name = _create(slam)
    assert "ReservedConcurrentExecutions" not in slam.get_function_concurrency(FunctionName=name)
    put = slam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=3)
    assert put["ReservedConcurrentExecutions"] == 3
    assert slam.get_function_concurrency(FunctionName=name)["ReservedConcurrentExecutions"] == 3
    assert slam.get_function(FunctionName=name)["Concurrency"] == {"ReservedConcurrentExecutions": 3}
    limits = slam.get_account_settings()["AccountLimit"]
    assert limits["ConcurrentExecutions"] == 10 and limits["UnreservedConcurrentExecutions"] == 7
    # Reservations must leave the minimum unreserved.
    other = _create(slam)
    expect_client_error(
        lambda: slam.put_function_concurrency(FunctionName=other, ReservedConcurrentExecutions=6),
        400, ("InvalidParameterValueException",),
    )
    slam.delete_function_concurrency(FunctionName=name)
    assert "ReservedConcurrentExecutions" not in slam.get_function_concurrency(FunctionName=name)
    assert "Concurrency" not in slam.get_function(FunctionName=name)
    assert slam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == 10
    expect_client_error(
        lambda: slam.put_function_concurrency(FunctionName=unique_name("missing"), ReservedConcurrentExecutions=1),
        404, ("ResourceNotFoundException",),
    )
    for n in (name, other):
        slam.delete_function(FunctionName=n)


def test_reserved_zero_disables_the_function(slam):
    name = _create(slam)
    slam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    err = expect_client_error(lambda: slam.invoke(FunctionName=name), 429, ("TooManyRequestsException",))
    assert err.response["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    slam.delete_function_concurrency(FunctionName=name)
    assert slam.invoke(FunctionName=name)["StatusCode"] == 200
    slam.delete_function(FunctionName=name)


def test_reserved_concurrency_caps_exactly_under_contention(slam):
    name = _create(slam)
    slam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=2)
    ok, throttled = _parallel(slam, name, 6, sleep=3)
    assert len(ok) == 2, (ok, throttled)
    assert throttled == ["ReservedFunctionConcurrentInvocationLimitExceeded"] * 4
    # The two that ran did so in two distinct environments.
    assert len({r["pid"] for r in ok}) == 2
    slam.delete_function(FunctionName=name)


def test_account_limit_throttles_the_unreserved_pool(slam):
    name = _create(slam)
    ok, throttled = _parallel(slam, name, 13, sleep=3)
    assert len(ok) == 10, (len(ok), throttled)
    assert throttled == ["ConcurrentInvocationLimitExceeded"] * 3
    assert len({r["stream"] for r in ok}) == 10
    # Afterwards the slots are free again and warm environments are reused.
    ok2, throttled2 = _parallel(slam, name, 5, sleep=0)
    assert not throttled2 and {r["pid"] for r in ok2} <= {r["pid"] for r in ok}
    slam.delete_function(FunctionName=name)


def test_reservation_survives_restart(small, slam):
    name = _create(slam)
    slam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=4)
    small.restart()
    lam = small.lambda_client()
    assert lam.get_function_concurrency(FunctionName=name)["ReservedConcurrentExecutions"] == 4
    assert lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == 6
    lam.delete_function(FunctionName=name)
    assert lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == 10


def _bench(nimbus_bin, srv, *args):
    import subprocess

    return subprocess.run(
        [str(nimbus_bin), "bench", *args, "--endpoint", srv.url],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )


def test_bench_reports_latency_cold_starts_and_throttles(small, slam, nimbus_bin):
    import re

    name = _create(slam)
    proc = _bench(nimbus_bin, small, name, "-c", "4", "-n", "200")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert re.search(r"requests\s+200 in", out), out
    assert re.search(r"p50 [\d.]+ ms\s+p90 [\d.]+ ms\s+p99 [\d.]+ ms\s+max [\d.]+ ms", out), out
    cold = int(re.search(r"(\d+) cold starts", out).group(1))
    assert 1 <= cold <= 4, out
    assert "0 throttled" in out and "histogram" in out
    # With one reserved slot and four clients of a slow handler, some calls are throttled.
    slam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    proc = _bench(nimbus_bin, small, name, "-c", "4", "-n", "12", "--payload", '{"sleep": 0.3}')
    assert proc.returncode == 0, proc.stderr
    throttled = int(re.search(r"(\d+) throttled", proc.stdout).group(1))
    assert throttled > 0, proc.stdout
    slam.delete_function(FunctionName=name)


def test_memory_budget_evicts_least_recently_used_idle_environments(tmp_path, nimbus_bin):
    import base64

    from .conftest import ServerFactory

    factory = ServerFactory(nimbus_bin, tmp_path)
    try:
        srv = factory.new("budget", extra_args=["--memory-budget", "512"])
        lam = srv.lambda_client()
        names = []
        for _ in range(3):
            name = _create(lam)
            lam.update_function_configuration(FunctionName=name, MemorySize=256)
            names.append(name)

        def cold(name, **event):
            r = lam.invoke(FunctionName=name, LogType="Tail", Payload=json.dumps(event).encode())
            assert "FunctionError" not in r
            return "Init Duration" in base64.b64decode(r["LogResult"]).decode()

        a, b, c = names
        assert cold(a) and cold(b)  # the budget is now full (2 x 256 MB)
        assert not cold(a)  # a is warm and now the most recently used
        assert cold(c)  # room for c is made by stopping b, the least recently used
        assert not cold(a)
        assert cold(b)  # b was evicted
        # When every environment is busy, nothing can be evicted: a third one is throttled.
        with cf.ThreadPoolExecutor(3) as pool:
            busy = [pool.submit(lam.invoke, FunctionName=n, Payload=b'{"sleep": 3}') for n in (a, b)]
            import time

            time.sleep(1)
            err = expect_client_error(lambda: lam.invoke(FunctionName=c), 429, ("TooManyRequestsException",))
            assert err.response["Reason"] == "ConcurrentInvocationLimitExceeded"
            for f in busy:
                assert f.result()["StatusCode"] == 200
    finally:
        factory.close()


def test_nothing_leaks_after_ten_thousand_invocations(tmp_path, nimbus_bin):
    """10,000 invocations (plus crashes and timeouts) leave no extra environments, processes
    or file descriptors behind in the server."""
    import os

    from .conftest import ServerFactory

    def fds(pid):
        return len(os.listdir(f"/proc/{pid}/fd"))

    def children(pid):
        out = []
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                out += open(f"/proc/{pid}/task/{task}/children").read().split()
            except OSError:
                pass
        return out

    factory = ServerFactory(nimbus_bin, tmp_path)
    try:
        srv = factory.new("leaks")
        lam = srv.lambda_client()
        name = _create(lam)
        lam.update_function_configuration(FunctionName=name, Timeout=1)
        assert _bench(nimbus_bin, srv, name, "-c", "4", "-n", "200").returncode == 0
        before = fds(srv.pid)
        proc = _bench(nimbus_bin, srv, name, "-c", "4", "-n", "10000")
        assert proc.returncode == 0, proc.stderr
        assert "10000 ok" in proc.stdout, proc.stdout
        # Environments that time out are replaced, not accumulated.
        for _ in range(3):
            r = lam.invoke(FunctionName=name, Payload=b'{"sleep": 2}')
            assert json.loads(r["Payload"].read())["errorType"] == "Sandbox.Timedout"
        assert _bench(nimbus_bin, srv, name, "-c", "4", "-n", "200").returncode == 0
        after = fds(srv.pid)
        assert after <= before + 8, (before, after)
        assert len(children(srv.pid)) <= 4, children(srv.pid)
    finally:
        factory.close()


def test_burst_scaling_rate_limits_new_environments(tmp_path_factory, nimbus_bin):
    """With `--scale-rate 2`, a function starts at most 2 environments per 10 s: a burst of
    4 parallel invocations gets 2 through and 2 throttled; the warm ones are reused."""
    from .conftest import ServerFactory

    factory = ServerFactory(nimbus_bin, tmp_path_factory.mktemp("scale"))
    try:
        lam = factory.new("scale", extra_args=["--scale-rate", "2"]).lambda_client()
        name = _create(lam)
        ok, throttled = _parallel(lam, name, 4, 1.5)
        assert len(ok) == 2
        assert throttled == ["FunctionInvocationRateLimitExceeded"] * 2
        # Warm environments need no new start.
        for _ in range(3):
            assert "FunctionError" not in lam.invoke(FunctionName=name, Payload=b"{}")
    finally:
        factory.close()
