"""Nimbus benchmark: warm invoke latency and throughput, and cold-start latency, for a trivial
Python handler, next to the machine's floor measured in the same run (shared/bench-floor).

Run it through scripts/bench.sh (which builds what it needs). Prints one line per figure and a
JSON summary. Everything listens on 127.0.0.1 and stops by itself.
"""
import base64
import http.client
import io
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NIMBUS = os.environ.get("NIMBUS_BIN", os.path.join(ROOT, "target/release/nimbus"))
FLOOR_BIN = os.environ.get("FLOOR_BIN")
FLOOR_DIR = os.environ.get("FLOOR_DIR")
WARM_N = int(os.environ.get("WARM_N", "2000"))
COLD_N = int(os.environ.get("COLD_N", "30"))
PY_HANDLER = b'def handler(event, context):\n    return {"ok": True}\n'


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def summary(name, xs_ms):
    return {
        "name": name,
        "n": len(xs_ms),
        "p50_ms": round(statistics.median(xs_ms), 3),
        "p90_ms": round(pct(xs_ms, 90), 3),
        "p99_ms": round(pct(xs_ms, 99), 3),
        "max_ms": round(max(xs_ms), 3),
    }


def show(s, extra=""):
    print(f"  {s['name']:<38} p50 {s['p50_ms']:8.3f} ms   p99 {s['p99_ms']:8.3f} ms   max {s['max_ms']:8.3f} ms {extra}")


class Api:
    """Unsigned Lambda REST calls over one keep-alive connection (what an SDK does)."""

    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port)

    def call(self, method, path, body=None, headers=None):
        self.conn.request(method, path, body=body, headers=headers or {})
        r = self.conn.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data


SLEEP_HANDLER = b'import time\ndef handler(event, context):\n    time.sleep(event.get("sleep", 0))\n    return {"ok": True}\n'


def make_zip(source=PY_HANDLER):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("app.py", source)
    return buf.getvalue()


def parse_bench(out):
    """The figures `nimbus bench` prints."""
    import re

    def num(pattern, cast=float):
        m = re.search(pattern, out)
        return cast(m.group(1)) if m else 0

    return {
        "p50_ms": num(r"p50 ([\d.]+) ms"),
        "p99_ms": num(r"p99 ([\d.]+) ms"),
        "rps": num(r"\(([\d.]+) req/s\)"),
        "cold": num(r"(\d+) cold starts", int),
        "throttled": num(r"(\d+) throttled", int),
    }


def idle_rss_mb(server_pid):
    """VmRSS of the runtime processes the server started (its direct children)."""
    out = []
    try:
        children = open(f"/proc/{server_pid}/task/{server_pid}/children").read().split()
    except OSError:
        children = []
    for task in os.listdir(f"/proc/{server_pid}/task"):
        try:
            children += open(f"/proc/{server_pid}/task/{task}/children").read().split()
        except OSError:
            pass
    for pid in set(children):
        try:
            for line in open(f"/proc/{pid}/status"):
                if line.startswith("VmRSS:"):
                    out.append(int(line.split()[1]) / 1024)
        except OSError:
            pass
    return out


def floor_figures():
    """The floor, measured now: loopback HTTP RTT with this same client, and rapid-mini's
    warm Runtime API round trip and cold spawn for the same handler."""
    out = {}
    port = free_port()
    echo = subprocess.Popen([FLOOR_BIN, "echo", f"127.0.0.1:{port}", "60"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        api = Api(port)
        xs = []
        for i in range(WARM_N + 200):
            t = time.perf_counter()
            api.call("POST", "/", b"{}")
            if i >= 200:
                xs.append((time.perf_counter() - t) * 1000)
        out["http_rtt"] = summary("floor: loopback HTTP RTT (same client)", xs)
    finally:
        echo.kill()
        echo.wait()
    python = real_python()
    for mode, args in (("warm", ["--n", str(WARM_N), "--warmup", "200"]), ("cold", ["--rounds", str(COLD_N)])):
        r = subprocess.run([FLOOR_BIN, mode, *args, "--cwd", os.path.join(FLOOR_DIR, "fn"), "--", python, "-I", os.path.join(FLOOR_DIR, "bare_runtime.py")],
                           capture_output=True, text=True, timeout=300)
        for line in r.stdout.splitlines():
            if line.startswith("JSON "):
                rec = json.loads(line[5:])
                out.setdefault(f"rapid_{mode}", []).append(rec)
    return out


def cold_starts(api, name):
    """COLD_N first invokes of new environments: a configuration change retires the
    environment each round. Returns (end-to-end, Init Duration) summaries."""
    invoke = f"/2015-03-31/functions/{name}/invocations"
    cold, inits = [], []
    for i in range(COLD_N):
        cfg = json.dumps({"Environment": {"Variables": {"ROUND": str(i)}}})
        api.call("PUT", f"/2015-03-31/functions/{name}/configuration", cfg, {"content-type": "application/json"})
        t = time.perf_counter()
        status, headers, out = api.call("POST", invoke, b"{}", {"X-Amz-Log-Type": "Tail"})
        cold.append((time.perf_counter() - t) * 1000)
        assert status == 200 and out == b'{"ok": true}', (status, out)
        log = base64.b64decode(headers.get("x-amz-log-result", "")).decode()
        inits += [float(p.split()[2]) for p in log.split("\t") if p.startswith("Init Duration:")]
    return summary(f"{name}: cold invoke (end to end)", cold), summary(f"{name}: Init Duration (REPORT)", inits)


NET_PROBE = r"""
import socket, time
def get(host, port, path):
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(f"GET /{path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
        buf, n = bytearray(1 << 22), 0
        view = memoryview(buf)
        while True:
            k = s.recv_into(view[n % len(buf):])
            if not k:
                return n
            n += k
def handler(event, context):
    lat = []
    for _ in range(event["n"]):
        t = time.perf_counter()
        get(event["ip"], event["port"], "0")
        lat.append((time.perf_counter() - t) * 1000)
    t = time.perf_counter()
    got = get(event["ip"], event["port"], str(event["bytes"]))
    return {"lat": lat, "mb_s": got / (time.perf_counter() - t) / 1e6}
"""


def outside_server():
    """An HTTP server on the host's own non-loopback address: /N answers N bytes."""
    import http.server
    import threading

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))
            ip = s.getsockname()[0]
        except OSError:
            return None, None, None
    if ip.startswith("127."):
        return None, None, None
    chunk = b"x" * (1 << 20)

    class Blob(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            n = int(self.path[1:] or 0)
            self.send_response(200)
            self.send_header("content-length", str(n))
            self.end_headers()
            while n > 0:
                self.wfile.write(chunk[:min(n, len(chunk))])
                n -= len(chunk)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("0.0.0.0", 0), Blob)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, ip, httpd.server_address[1]


def sandbox_network(api):
    """Outbound from a sandboxed function through the user-mode stack: a fresh TCP
    connection plus a small HTTP request, sequentially; and one 64 MB download."""
    httpd, ip, port = outside_server()
    if httpd is None:
        print("  (no non-loopback address: skipped)")
        return None
    try:
        body = json.dumps({"FunctionName": "sbxnet", "Runtime": "python3.11", "Handler": "app.handler", "MemorySize": 1769,
                           "Timeout": 60, "Role": "arn:aws:iam::000000000000:role/bench",
                           "Code": {"ZipFile": base64.b64encode(make_zip(NET_PROBE)).decode()}})
        status, _, resp = api.call("POST", "/2015-03-31/functions", body, {"content-type": "application/json"})
        assert status == 201, resp
        event = json.dumps({"ip": ip, "port": port, "n": 300, "bytes": 64 << 20})
        status, _, out = api.call("POST", "/2015-03-31/functions/sbxnet/invocations", event, {})
        assert status == 200, out
        fig = json.loads(out)
        conn = summary("sandbox: new TCP connection + HTTP GET", fig["lat"][20:])
        show(conn)
        host = []
        for _ in range(300):
            t = time.perf_counter()
            with socket.create_connection((ip, port), timeout=10) as c:
                c.sendall(b"GET /0 HTTP/1.0\r\nHost: x\r\n\r\n")
                while c.recv(65536):
                    pass
            host.append((time.perf_counter() - t) * 1000)
        floor = summary("floor: the same from the host", host[20:])
        show(floor)
        print(f"  sandbox: one 64 MB download             {fig['mb_s']:.0f} MB/s")
        return {"connect_get": conn, "host_connect_get": floor, "download_mb_s": round(fig["mb_s"], 1)}
    finally:
        httpd.shutdown()


def sandbox_cold_starts():
    """The same cold start under --isolation sandbox (needs root), at 1769 MB (one full
    vCPU) and at 128 MB (Lambda's CPU share for 128 MB, about 7 % of a core)."""
    if os.geteuid() != 0:
        print("  (not root: the sandbox is skipped)")
        return {}
    data = tempfile.mkdtemp(prefix="nimbus-bench-sbx-")
    port = free_port()
    server = subprocess.Popen([NIMBUS, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", data, "--no-python-sdk",
                               "--isolation", "sandbox"], stdout=subprocess.DEVNULL,
                              stderr=open(os.path.join(data, "server.log"), "w"), env={**os.environ, "NIMBUS_LOG": "warn"})
    out = {}
    try:
        api = wait_for(port)
        for memory in (1769, 128):
            name = f"sbx{memory}"
            body = json.dumps({"FunctionName": name, "Runtime": "python3.11", "Handler": "app.handler", "MemorySize": memory,
                               "Role": "arn:aws:iam::000000000000:role/bench", "Code": {"ZipFile": base64.b64encode(make_zip()).decode()}})
            status, _, resp = api.call("POST", "/2015-03-31/functions", body, {"content-type": "application/json"})
            assert status == 201, resp
            out[memory] = cold_starts(api, name)
            show(out[memory][0])
            show(out[memory][1])
        out["network"] = sandbox_network(api)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=10)
        shutil.rmtree(data, ignore_errors=True)
    return out


def wait_for(port):
    api = Api(port)
    for _ in range(200):
        try:
            if api.call("GET", "/_nimbus/health")[0] == 200:
                return api
        except OSError:
            api = Api(port)
            time.sleep(0.05)
    raise RuntimeError("server did not start")


def real_python():
    for p in ("/usr/bin/python3",):
        if os.path.exists(p):
            return p
    return os.path.realpath(sys.executable)


ASYNC_N = int(os.environ.get("ASYNC_N", "20000"))


def async_figures(api, port):
    """Events accepted per second (each on disk before its 202) by 8 Rust clients, measured
    against a function that runs one slow invocation at a time (so deliveries take no CPU from
    the measurement); then how fast a backlog drains into a trivial function."""
    def create(name, source, reserved=None):
        body = json.dumps({"FunctionName": name, "Runtime": "python3.11", "Handler": "app.handler",
                           "Role": "arn:aws:iam::000000000000:role/bench",
                           "Code": {"ZipFile": base64.b64encode(make_zip(source)).decode()}})
        status, _, resp = api.call("POST", "/2015-03-31/functions", body, {"content-type": "application/json"})
        assert status == 201, resp
        if reserved is not None:
            status, _, resp = api.call("PUT", f"/2017-10-31/functions/{name}/concurrency",
                                       json.dumps({"ReservedConcurrentExecutions": reserved}),
                                       {"content-type": "application/json"})
            assert status == 200, resp

    def stats():
        return json.loads(api.call("GET", "/_nimbus/async")[2])

    def load(name):
        out = subprocess.run([NIMBUS, "bench", name, "--event", "-c", "8", "-n", str(ASYNC_N),
                              "--endpoint", f"http://127.0.0.1:{port}"], capture_output=True, text=True, timeout=600).stdout
        return parse_bench(out)

    create("asyncslow", b"import time\ndef handler(event, context):\n    time.sleep(60)\n", reserved=1)
    accepted = load("asyncslow")
    create("asyncbench", PY_HANDLER)
    before = stats()["delivered"]
    t0 = time.perf_counter()
    load("asyncbench")
    while stats()["delivered"] - before < ASYNC_N:
        time.sleep(0.05)
    drain = time.perf_counter() - t0
    return {"accepted_per_s": round(accepted["rps"]), "accept_p50_ms": accepted["p50_ms"],
            "accept_p99_ms": accepted["p99_ms"], "delivered_per_s": round(ASYNC_N / drain), "events": ASYNC_N}


def url_figures(api, port):
    """Requests per second through a Function URL (path fallback, so no DNS is involved)."""
    body = json.dumps({"FunctionName": "urlbench", "Runtime": "python3.11", "Handler": "app.handler",
                       "Role": "arn:aws:iam::000000000000:role/bench", "Code": {"ZipFile": base64.b64encode(make_zip()).decode()}})
    status, _, resp = api.call("POST", "/2015-03-31/functions", body, {"content-type": "application/json"})
    assert status == 201, resp
    status, _, resp = api.call("POST", "/2021-10-31/functions/urlbench/url", json.dumps({"AuthType": "NONE"}),
                               {"content-type": "application/json"})
    assert status == 201, resp
    url_id = json.loads(resp)["FunctionUrl"].split("//", 1)[1].split(".", 1)[0]
    out = {}
    for clients in (1, 8):
        res = subprocess.run([NIMBUS, "bench", "urlbench", "--url", f"http://127.0.0.1:{port}/_nimbus/url/{url_id}/",
                              "-c", str(clients), "-n", str(max(WARM_N, clients * 500))],
                             capture_output=True, text=True, timeout=600).stdout
        out[clients] = parse_bench(res)
    return out


def main():
    data = tempfile.mkdtemp(prefix="nimbus-bench-")
    port = free_port()
    server = subprocess.Popen([NIMBUS, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", data, "--no-python-sdk",
                               "--memory-budget", "1000000", "--isolation", "process"],
                              stdout=subprocess.DEVNULL, stderr=open(os.path.join(data, "server.log"), "w"),
                              env={**os.environ, "NIMBUS_LOG": "warn"})
    results = {}
    try:
        api = Api(port)
        for _ in range(200):
            try:
                if api.call("GET", "/_nimbus/health")[0] == 200:
                    break
            except OSError:
                api = Api(port)
                time.sleep(0.05)
        body = json.dumps({"FunctionName": "bench", "Runtime": "python3.11", "Handler": "app.handler",
                           "Role": "arn:aws:iam::000000000000:role/bench", "Code": {"ZipFile": base64.b64encode(make_zip()).decode()}})
        status, _, resp = api.call("POST", "/2015-03-31/functions", body, {"content-type": "application/json"})
        assert status == 201, resp
        invoke = "/2015-03-31/functions/bench/invocations"
        event = b'{"key1":"value1","key2":"value2"}'

        print("Nimbus warm invoke (trivial Python handler, sequential, keep-alive):")
        xs = []
        t0 = time.perf_counter()
        for i in range(WARM_N + 200):
            if i == 200:
                t0 = time.perf_counter()
            t = time.perf_counter()
            status, _, out = api.call("POST", invoke, event)
            if i >= 200:
                xs.append((time.perf_counter() - t) * 1000)
            assert status == 200 and out == b'{"ok": true}', (status, out)
        elapsed = time.perf_counter() - t0
        results["warm"] = summary("nimbus: warm invoke", xs)
        results["warm"]["invocations_per_s"] = round(WARM_N / elapsed)
        show(results["warm"], f"  {results['warm']['invocations_per_s']} inv/s")

        print("Nimbus cold start (first invoke of a new environment), process isolation:")
        results["cold"], results["init"] = cold_starts(api, "bench")
        show(results["cold"])
        show(results["init"])

        print("Nimbus under concurrency (nimbus bench, Rust keep-alive clients):")
        results["concurrent"] = {}
        for clients in (1, 8, 64):
            n = max(WARM_N, clients * 100)
            out = subprocess.run([NIMBUS, "bench", "bench", "-c", str(clients), "-n", str(n), "--endpoint", f"http://127.0.0.1:{port}"],
                                 capture_output=True, text=True, timeout=600).stdout
            fig = parse_bench(out)
            results["concurrent"][clients] = fig
            print(f"  {clients:>3} client(s): p50 {fig['p50_ms']:.3f} ms   p99 {fig['p99_ms']:.3f} ms   {fig['rps']:.0f} inv/s   ({fig['cold']} cold starts)")

        print("Asynchronous invocation (InvocationType=Event, durable queue):")
        results["async"] = async_figures(api, port)
        a = results["async"]
        print(f"  accepted durably (fsync before 202): {a['accepted_per_s']} events/s with 8 clients "
              f"(p50 {a['accept_p50_ms']:.3f} ms, p99 {a['accept_p99_ms']:.3f} ms)")
        print(f"  delivered to a trivial Python function: {a['delivered_per_s']} events/s "
              f"({a['events']} events, accepted and drained)")

        print("Function URL (HTTP front door, payload 2.0 event, nimbus bench --url):")
        results["function_url"] = url_figures(api, port)
        for clients, fig in results["function_url"].items():
            print(f"  {clients:>3} client(s): p50 {fig['p50_ms']:.3f} ms   p99 {fig['p99_ms']:.3f} ms   {fig['rps']:.0f} req/s")

        print("Scale from zero to 200 concurrent environments (handler sleeps 2 s):")
        body = json.dumps({"FunctionName": "scale", "Runtime": "python3.11", "Handler": "app.handler",
                           "Role": "arn:aws:iam::000000000000:role/bench",
                           "Code": {"ZipFile": base64.b64encode(make_zip(SLEEP_HANDLER)).decode()}})
        status, _, resp = api.call("POST", "/2015-03-31/functions", body, {"content-type": "application/json"})
        assert status == 201, resp
        t = time.perf_counter()
        out = subprocess.run([NIMBUS, "bench", "scale", "-c", "200", "-n", "200", "--payload", '{"sleep": 2}',
                              "--endpoint", f"http://127.0.0.1:{port}"], capture_output=True, text=True, timeout=600).stdout
        wall = time.perf_counter() - t
        fig = parse_bench(out)
        results["scale"] = {"wall_s": round(wall, 2), "to_200_envs_s": round(wall - 2.0, 2), "cold": fig["cold"],
                            "throttled": fig["throttled"]}
        print(f"  200 invocations in {wall:.2f} s: all 200 environments started within ~{wall - 2.0:.2f} s "
              f"({fig['cold']} cold starts, {fig['throttled']} throttled)")
        rss = idle_rss_mb(server.pid)
        if rss:
            results["idle_env_rss_mb"] = {"n": len(rss), "median": round(statistics.median(rss), 1), "max": round(max(rss), 1)}
            print(f"  resident memory per idle Python environment: median {statistics.median(rss):.1f} MB over {len(rss)} environments")
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(data, ignore_errors=True)

    print("Nimbus cold start with the namespace sandbox (--isolation sandbox):")
    sbx = sandbox_cold_starts()
    if sbx:
        net = sbx.pop("network", None)
        results["sandbox_cold"] = {m: {"cold": c, "init": i} for m, (c, i) in sbx.items()}
        results["sandbox_network"] = net
        if "cold" in results and 1769 in sbx:
            extra = sbx[1769][1]["p50_ms"] - results["init"]["p50_ms"]
            print(f"  sandbox setup cost (Init Duration p50, 1769 MB sandbox - process isolation): {extra:.1f} ms")
            results["sandbox_setup_ms"] = round(extra, 1)

    if FLOOR_BIN and os.path.exists(FLOOR_BIN):
        print("Floor on this machine, same run (shared/bench-floor):")
        floor = floor_figures()
        results["floor"] = floor
        show(floor["http_rtt"])
        for key, label in (("rapid_warm", "floor: Runtime API warm (rapid-mini)"), ("rapid_cold", "floor: spawn → first response")):
            for rec in floor.get(key, []):
                print(f"  {label:<38} {json.dumps(rec)}")
        w = results["warm"]["p50_ms"] / floor["http_rtt"]["p50_ms"]
        print(f"Ratios: warm p50 = {w:.2f}x the loopback RTT floor (an invoke is at least two round trips)")
        results["ratio_warm_to_rtt"] = round(w, 2)
    print("JSON " + json.dumps(results))


if __name__ == "__main__":
    main()
