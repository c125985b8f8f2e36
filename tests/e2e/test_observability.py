"""Metrics, the bill and power tuning: `/metrics` in Prometheus' format, `nimbus stats`,
`nimbus cost` checked against the pricing formula computed by hand from the REPORT lines,
usage that survives a restart, and `nimbus tune`."""

import base64
import json
import re
import subprocess
import urllib.request

import pytest

from .conftest import ROLE, ServerFactory, make_zip, unique_name

CODE = (
    "def handler(event, context):\n"
    "    if event.get('fail'):\n"
    "        raise ValueError('no')\n"
    "    return {'ok': True, 'pad': 'x' * event.get('pad', 0)}\n"
)


@pytest.fixture(scope="module")
def srv(tmp_path_factory, nimbus_bin):
    factory = ServerFactory(nimbus_bin, tmp_path_factory.mktemp("observability"))
    yield factory.new("obs")
    factory.close()


@pytest.fixture(scope="module")
def olam(srv):
    return srv.lambda_client()


def scrape(url):
    with urllib.request.urlopen(f"{url}/metrics") as r:
        assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
        text = r.read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return text, samples


def billed(res):
    log = base64.b64decode(res["LogResult"]).decode()
    return int(re.search(r"Billed Duration: (\d+) ms", log).group(1))


def nimbus(nimbus_bin, *args):
    return subprocess.run([str(nimbus_bin), *args], capture_output=True, text=True, check=True).stdout


def create(lam):
    name = unique_name("obs")
    lam.create_function(FunctionName=name, Runtime="python3.11", Role=ROLE, Handler="app.handler",
                        Code={"ZipFile": make_zip({"app.py": CODE})}, MemorySize=256)
    return name


def test_metrics_stats_and_cost(srv, olam, nimbus_bin):
    fn = create(olam)
    total_billed = 0
    for i in range(4):
        r = olam.invoke(FunctionName=fn, LogType="Tail", Payload=json.dumps({"pad": 100}).encode())
        total_billed += billed(r)
    r = olam.invoke(FunctionName=fn, LogType="Tail", Payload=b'{"fail": true}')
    assert r["FunctionError"] == "Unhandled"
    total_billed += billed(r)
    v = olam.publish_version(FunctionName=fn)["Version"]
    olam.create_alias(FunctionName=fn, Name="live", FunctionVersion=v)
    total_billed += billed(olam.invoke(FunctionName=fn, Qualifier="live", LogType="Tail", Payload=b"{}"))

    text, m = scrape(srv.url)
    lab = f'function="{fn}",version="$LATEST"'
    assert m[f"nimbus_invocations_total{{{lab}}}"] == 5
    assert m[f"nimbus_errors_total{{{lab}}}"] == 1
    assert m[f"nimbus_cold_starts_total{{{lab}}}"] >= 1
    assert m[f'nimbus_duration_seconds_bucket{{{lab},le="+Inf"}}'] == 5
    assert m[f"nimbus_duration_seconds_count{{{lab}}}"] == 5
    assert m[f"nimbus_concurrent_executions{{{lab}}}"] == 0
    assert m[f'nimbus_alias_invocations_total{{function="{fn}",alias="live",version="{v}"}}'] == 1
    for name in ("nimbus_async_queue_depth", "nimbus_account_concurrency_limit", "nimbus_uptime_seconds",
                 "nimbus_async_events_dead_lettered_total", "nimbus_async_oldest_event_age_seconds"):
        assert name in m, name
    assert "# TYPE nimbus_duration_seconds histogram" in text

    out = nimbus(nimbus_bin, "stats", fn, "--once", "--endpoint", srv.url)
    row = next(line for line in out.splitlines() if line.startswith(fn) and "$LATEST" in line)
    assert row.split()[2] == "5"

    doc = json.loads(nimbus(nimbus_bin, "cost", "--output", "json", "--since", "1h", "--endpoint", srv.url))
    mine = [f for f in doc["functions"] if f["function"] == fn]
    # One bill line per function and price-relevant configuration: both versions share it.
    assert len(mine) == 1
    latest = mine[0]
    assert latest["versions"] == ["$LATEST", "1"]
    assert latest["requests"] == 6 and latest["errors"] == 1 and latest["memory_mb"] == 256
    assert latest["billed_ms"] == total_billed
    gb_s = 256 / 1024 * total_billed / 1000
    assert latest["gb_seconds"] == pytest.approx(gb_s)
    assert latest["cost_usd"] == pytest.approx(6 * 0.20 / 1e6 + gb_s * 0.0000166667 + latest["egress_usd"])
    assert latest["egress_bytes"] > 4 * 100
    assert doc["monthly_projection_usd"] == pytest.approx(doc["total_usd"] * 30 * 24)
    table = nimbus(nimbus_bin, "cost", "--since", "1h", "--endpoint", srv.url)
    assert fn in table and "TOTAL" in table

    free = json.loads(nimbus(nimbus_bin, "cost", "--output", "json", "--free-tier", "--endpoint", srv.url))
    assert free["total_usd"] == pytest.approx(0.0)


def test_usage_survives_a_restart(srv, olam, nimbus_bin):
    fn = create(olam)
    olam.invoke(FunctionName=fn, Payload=b"{}")
    srv.restart()
    doc = json.loads(nimbus(nimbus_bin, "cost", "--output", "json", "--endpoint", srv.url))
    assert sum(f["requests"] for f in doc["functions"] if f["function"] == fn) == 1


def test_tune_tries_each_size_and_restores_memory(srv, olam, nimbus_bin, tmp_path):
    fn = create(olam)
    chart = tmp_path / "tune.svg"
    out = nimbus(nimbus_bin, "tune", fn, "--memory", "128,512", "--invocations", "2",
                 "--chart", str(chart), "--endpoint", srv.url)
    assert re.search(r"^\s+128MB", out, re.M) and re.search(r"^\s+512MB", out, re.M)
    assert "cheapest:" in out and "fastest:" in out
    assert chart.read_text().startswith("<svg")
    assert olam.get_function_configuration(FunctionName=fn)["MemorySize"] == 256
