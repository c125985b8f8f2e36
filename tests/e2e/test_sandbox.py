"""The namespace sandbox (`--isolation sandbox`), proven with hostile functions: what a
function can see, write, reach and exhaust, and that nothing is left behind."""

import base64
import json
import os
import time

import pytest

from .conftest import ROLE, ServerFactory, make_zip, unique_name, wait_until

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the namespace sandbox needs root")

PROBE = r'''
import os, socket, subprocess, sys
def handler(event, context):
    out = {"uid": os.getuid(), "gid": os.getgid(), "pid": os.getpid(), "cwd": os.getcwd(),
           "task_root": os.environ["LAMBDA_TASK_ROOT"], "runtime_api": os.environ["AWS_LAMBDA_RUNTIME_API"],
           "root": sorted(os.listdir("/")), "hostname": socket.gethostname(),
           "processes": sorted(p for p in os.listdir("/proc") if p.isdigit())}
    def can_write(path):
        try:
            with open(path, "w") as f:
                f.write("x")
            return True
        except OSError:
            return False
    out["write_task"] = can_write("/var/task/evil")
    out["write_etc"] = can_write("/etc/evil")
    out["write_usr"] = can_write("/usr/evil")
    out["write_tmp"] = can_write("/tmp/fine")
    st = os.statvfs("/tmp")
    out["tmp_mb"] = st.f_blocks * st.f_frsize // (1024 * 1024)
    out["sees_data_dir"] = os.path.exists(event["data_dir"])
    out["sees_root_home"] = os.path.exists("/root/.bashrc")
    out["opt"] = sorted(os.listdir("/opt"))
    try:
        s = socket.create_connection(("127.0.0.1", event["host_port"]), timeout=1)
        s.close()
        out["host_port"] = "open"
    except OSError as e:
        out["host_port"] = e.errno
    import resource
    out["nofile"] = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    out["no_new_privs"] = [l.split()[1] for l in open("/proc/self/status") if l.startswith("NoNewPrivs")][0]
    out["cap_eff"] = [l.split()[1] for l in open("/proc/self/status") if l.startswith("CapEff")][0]
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    out["mount"] = libc.mount(b"tmpfs", b"/tmp", b"tmpfs", 0, None) == 0
    import platform
    denied = {}
    if platform.machine() == "x86_64":
        for name, nr in (("unshare", 272), ("bpf", 321), ("keyctl", 250), ("ptrace", 101), ("perf_event_open", 298)):
            rc = libc.syscall(nr, 0, 0, 0, 0, 0)
            denied[name] = (rc, ctypes.get_errno())
    out["denied"] = denied
    return out
'''

HOG = r'''
import threading, time
def handler(event, context):
    if event.get("memory"):
        blocks = []
        while True:
            blocks.append(bytearray(16 * 1024 * 1024))
    if event.get("threads"):
        started = 0
        try:
            for _ in range(5000):
                threading.Thread(target=time.sleep, args=(5,), daemon=True).start()
                started += 1
        except RuntimeError:
            pass
        return {"threads": started}
    return {"ok": True}
'''


@pytest.fixture(scope="module")
def sandboxed(tmp_path_factory, nimbus_bin):
    factory = ServerFactory(nimbus_bin, tmp_path_factory.mktemp("sandbox"))
    srv = factory.new("sandboxed", extra_args=["--isolation", "sandbox"])
    yield srv
    factory.close()


@pytest.fixture(scope="module")
def slam(sandboxed):
    return sandboxed.lambda_client()


def _create(lam, code, memory=1769, **kw):
    name = unique_name("sbx")
    lam.create_function(FunctionName=name, Runtime="python3.11", Role=ROLE, Handler="app.handler",
                        Code={"ZipFile": make_zip({"app.py": code})}, MemorySize=memory, Timeout=20, **kw)
    return name


def _invoke(lam, name, event):
    r = lam.invoke(FunctionName=name, Payload=json.dumps(event).encode(), LogType="Tail")
    return r.get("FunctionError"), json.loads(r["Payload"].read()), base64.b64decode(r["LogResult"]).decode()


def test_a_function_sees_only_its_own_sandbox(sandboxed, slam):
    name = _create(slam, PROBE, EphemeralStorage={"Size": 700})
    err, out, log = _invoke(slam, name, {"data_dir": str(sandboxed.data_dir), "host_port": sandboxed.port + 1})
    assert err is None, (out, log)
    assert out["uid"] >= 1000 and out["gid"] >= 1000
    assert out["pid"] == 1 and len(out["processes"]) <= 3, out["processes"]
    assert out["cwd"] == out["task_root"] == "/var/task"
    assert out["runtime_api"] == "127.0.0.1:9001"
    assert not out["write_task"] and not out["write_etc"] and not out["write_usr"]
    assert out["write_tmp"] and 650 <= out["tmp_mb"] <= 700
    assert not out["sees_data_dir"] and not out["sees_root_home"]
    assert out["host_port"] != "open"
    assert out["nofile"] == 1024
    assert out["no_new_privs"] == "1" and int(out["cap_eff"], 16) == 0
    assert out["mount"] is False
    # The seccomp filter answers EPERM (1) to what a function never needs.
    for name, (rc, errno) in out["denied"].items():
        assert rc == -1 and errno == 1, (name, rc, errno)
    assert "home" not in out["root"]


def test_functions_reach_nimbus_itself(slam):
    code = (
        "import json, urllib.request, os\n"
        "def handler(e, c):\n"
        "    url = os.environ['AWS_ENDPOINT_URL'] + '/2015-03-31/functions'\n"
        "    return [f['FunctionName'] for f in json.load(urllib.request.urlopen(url))['Functions']]\n"
    )
    name = _create(slam, code)
    err, out, _ = _invoke(slam, name, {})
    assert err is None and name in out


def test_out_of_memory_is_reported_and_the_environment_replaced(slam):
    name = _create(slam, HOG, memory=128)
    err, out, log = _invoke(slam, name, {"memory": True})
    assert err == "Unhandled" and out["errorType"] == "Runtime.OutOfMemory", (out, log)
    assert "Max Memory Used: 128 MB" in log or "Max Memory Used: 127 MB" in log, log
    err, out, _ = _invoke(slam, name, {})
    assert err is None and out == {"ok": True}


def test_thread_bombs_hit_the_pids_limit(slam):
    name = _create(slam, HOG)
    err, out, _ = _invoke(slam, name, {"threads": True})
    assert err is None and out["threads"] < 1024


FORK_BOMB = r"""
import os, signal, time
def handler(event, context):
    children = []
    try:
        for _ in range(5000):
            pid = os.fork()
            if pid == 0:
                time.sleep(30)
                os._exit(0)
            children.append(pid)
    except OSError as e:
        error = e.strerror
    else:
        error = None
    for pid in children:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    return {"forked": len(children), "error": error}
"""


def test_fork_bombs_hit_the_process_limit_and_the_function_keeps_serving(slam):
    name = _create(slam, FORK_BOMB)
    err, out, log = _invoke(slam, name, {})
    assert err is None, log
    assert out["forked"] < 1024 and out["error"], out
    err, again, log = _invoke(slam, name, {})
    assert err is None and again["forked"] < 1024, log


def test_layers_are_mounted_at_opt(slam):
    layer = slam.publish_layer_version(LayerName=unique_name("sbxlayer"),
                                      Content={"ZipFile": make_zip({"python/layer_mod.py": "VALUE = 'from /opt'\n"})})
    code = "import layer_mod\ndef handler(e, c):\n    return layer_mod.VALUE + ' ' + layer_mod.__file__\n"
    name = _create(slam, code, Layers=[layer["LayerVersionArn"]])
    err, out, _ = _invoke(slam, name, {})
    assert err is None and out == "from /opt /opt/python/layer_mod.py"


def test_node_and_custom_runtimes_run_sandboxed(slam):
    node = unique_name("sbxnode")
    slam.create_function(FunctionName=node, Runtime="nodejs20.x", Role=ROLE, Handler="index.handler", MemorySize=1769,
                         Code={"ZipFile": make_zip({"index.js": "exports.handler = async () => ({uid: process.getuid(), cwd: process.cwd()});\n"})})
    err, out, _ = _invoke(slam, node, {})
    assert err is None and out["uid"] >= 1000 and out["cwd"] == "/var/task"
    boot = (
        "#!/bin/sh\n"
        "while true; do\n"
        "  exec 3<>/dev/null\n"
        "  python3 -c \"import http.client,os;c=http.client.HTTPConnection(os.environ['AWS_LAMBDA_RUNTIME_API']);"
        "c.request('GET','/2018-06-01/runtime/invocation/next');r=c.getresponse();i=r.getheader('Lambda-Runtime-Aws-Request-Id');r.read();"
        "c.request('POST','/2018-06-01/runtime/invocation/'+i+'/response','\\\"'+os.getcwd()+'\\\"');c.getresponse().read()\"\n"
        "done\n"
    )
    custom = unique_name("sbxcustom")
    slam.create_function(FunctionName=custom, Runtime="provided.al2023", Role=ROLE, Handler="x", MemorySize=1769,
                         Code={"ZipFile": make_zip({"bootstrap": boot})})
    err, out, _ = _invoke(slam, custom, {})
    assert err is None and out == "/var/task"


def test_nothing_is_left_behind(tmp_path, nimbus_bin):
    factory = ServerFactory(nimbus_bin, tmp_path)
    try:
        srv = factory.new("cleanup", extra_args=["--isolation", "sandbox"])
        lam = srv.lambda_client()
        name = _create(lam, HOG)
        for _ in range(3):
            assert _invoke(lam, name, {})[0] is None
        cgroup_root = None
        for line in open("/proc/self/cgroup"):
            _, ctrls, path = line.strip().split(":", 2)
            if "memory" in ctrls.split(","):
                cgroup_root = f"/sys/fs/cgroup/memory{path}/nimbus"
        if not cgroup_root or not os.path.isdir(cgroup_root):
            cgroup_root = None
        code, _ = srv.stop()
        assert code == 0
        if cgroup_root:
            wait_until(lambda: not [d for d in os.listdir(cgroup_root) if os.path.isdir(os.path.join(cgroup_root, d))],
                       timeout=10, message="environment cgroups removed")
        # No host mounts are made at all: the sandbox's tree lives in its own mount namespace.
        assert str(srv.data_dir) not in open("/proc/self/mounts").read()
    finally:
        factory.close()


def test_environments_are_frozen_between_invocations(slam):
    """A background thread makes no progress while its environment waits for work."""
    code = (
        "import threading, time\n"
        "TICKS = [0]\n"
        "def tick():\n"
        "    while True:\n"
        "        TICKS[0] += 1\n"
        "        time.sleep(0.01)\n"
        "threading.Thread(target=tick, daemon=True).start()\n"
        "def handler(e, c):\n"
        "    return TICKS[0]\n"
    )
    name = _create(slam, code)
    _invoke(slam, name, {})
    first = _invoke(slam, name, {})[1]
    time.sleep(1.5)  # unfrozen, the thread would tick ~150 times meanwhile
    second = _invoke(slam, name, {})[1]
    assert second - first < 40, (first, second)


NETWORK = r"""
import os, socket, urllib.error, urllib.request
def handler(event, context):
    out = {"proxy": os.environ.get("HTTPS_PROXY")}
    errors = out["errors"] = []
    def fetch(url):
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, ""
        except OSError as e:
            return "error", str(e)
    def raw_get(host, port):
        # A plain socket: no proxy, no HTTP library.
        try:
            with socket.create_connection((host, port), timeout=5) as s:
                s.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
                data = b""
                while chunk := s.recv(65536):
                    data += chunk
                return data.split(b"\r\n\r\n", 1)[-1].decode()
        except OSError as e:
            errors.append(f"{host}:{port}: {e}")
            return "error"
    out["outbound"] = fetch(event["outside"])
    out["raw"] = raw_get(event["ip"], event["port"])
    if event.get("upload"):
        import http.client
        c = http.client.HTTPConnection(event["ip"], event["port"], timeout=5)
        c.request("POST", "/", body=b"u" * event["upload"])
        r = c.getresponse()
        out["upload"] = [r.status, r.read().decode()]
    out["by_name"] = fetch(event["by_name"]) if event.get("by_name") else None
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.settimeout(5)
            u.sendto(b"ping", (event["ip"], event["udp_port"]))
            out["udp"] = u.recvfrom(100)[0].decode()
    except OSError as e:
        out["udp"] = "error"
    # Never the host's loopback or Nimbus itself on the host's address, nor metadata.
    out["host_loopback"] = raw_get("127.0.0.1", event["port"])
    out["nimbus_on_host"] = raw_get(event["ip"], event["api_port"])
    out["metadata"] = raw_get("169.254.169.254", 80)
    if os.environ.get("HTTP_PROXY"):
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", 3128, timeout=5)
        c.request("GET", event["loopback"])
        out["proxy_loopback"] = c.getresponse().status
        c = http.client.HTTPConnection("127.0.0.1", 3128, timeout=5)
        c.request("CONNECT", event["loopback"].split("//")[1].rstrip("/"))
        out["proxy_loopback_connect"] = c.getresponse().status
    return out
"""


def _outside_ip():
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))
            ip = s.getsockname()[0]
        except OSError:
            return None
    return None if ip.startswith("127.") else ip


class _Outside:
    """Services on the host, as the outside world: HTTP, UDP echo and a DNS server that
    answers `*.nimbus.test` with the host's address."""

    def __init__(self, ip):
        import http.server
        import socket
        import struct
        import threading

        class Hello(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = b"hello from outside"
                self.send_response(200)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                got = len(self.rfile.read(int(self.headers["content-length"])))
                body = f"got {got}".encode()
                self.send_response(200)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("0.0.0.0", 0), Hello)
        self.port = self.httpd.server_address[1]
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("0.0.0.0", 0))
        self.udp_port = self.udp.getsockname()[1]
        self.dns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.dns.bind(("127.0.0.1", 0))
        self.dns_port = self.dns.getsockname()[1]
        self.dns_queries = []
        addr = socket.inet_aton(ip)

        def echo():
            while True:
                data, peer = self.udp.recvfrom(100)
                self.udp.sendto(b"pong:" + data, peer)

        def dns():
            while True:
                q, peer = self.dns.recvfrom(512)
                end = q.index(b"\0", 12) + 1
                qtype = struct.unpack("!H", q[end:end + 2])[0]
                labels, i = [], 12
                while q[i]:
                    labels.append(q[i + 1:i + 1 + q[i]].decode())
                    i += 1 + q[i]
                self.dns_queries.append(".".join(labels))
                hit = qtype == 1 and ".".join(labels).endswith("nimbus.test")
                head = q[:2] + struct.pack("!HHHHH", 0x8180, 1, 1 if hit else 0, 0, 0)
                answer = struct.pack("!HHHIH", 0xC00C, 1, 1, 60, 4) + addr if hit else b""
                self.dns.sendto(head + q[12:end + 4] + answer, peer)

        for target in (self.httpd.serve_forever, echo, dns):
            threading.Thread(target=target, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


def test_functions_reach_the_network_through_nimbus_only(tmp_path, nimbus_bin):
    import urllib.request

    ip = _outside_ip()
    if ip is None:
        pytest.skip("no non-loopback address on this host")
    outside = _Outside(ip)
    factory = ServerFactory(nimbus_bin, tmp_path)
    try:
        def server(name, *args):
            srv = factory.new(name, extra_args=["--isolation", "sandbox", *args])
            return srv, srv.lambda_client()

        event = {"ip": ip, "port": outside.port, "udp_port": outside.udp_port,
                 "outside": f"http://{ip}:{outside.port}/", "loopback": f"http://127.0.0.1:{outside.port}/",
                 "by_name": f"http://db.nimbus.test:{outside.port}/"}

        # The default: transparent TCP and UDP, DNS through the configured resolver.
        srv, lam = server("nat", "--function-dns", f"127.0.0.1:{outside.dns_port}")
        name = _create(lam, NETWORK)
        err, out, log = _invoke(lam, name, {**event, "api_port": srv.port, "upload": 300_000})
        assert err is None, log
        assert out["upload"] == [200, "got 300000"], out
        # What the function sends out is egress on its bill.
        with urllib.request.urlopen(f"{srv.url}/_nimbus/usage") as r:
            usage = json.load(r)
        assert sum(u["egress_bytes"] for u in usage["usage"] if u["function"] == name) > 300_000, usage
        assert out["proxy"] is None, out
        assert out["outbound"] == [200, "hello from outside"], out
        assert out["raw"] == "hello from outside", out
        assert out["by_name"] == [200, "hello from outside"], out
        assert "db.nimbus.test" in outside.dns_queries
        assert out["udp"] == "pong:ping", out
        # Forbidden destinations are refused as a firewall would: a reset, at once.
        assert out["host_loopback"] == out["nimbus_on_host"] == out["metadata"] == "error", out
        assert all("Connection refused" in e for e in out["errors"]), out
        err, again, log = _invoke(lam, name, {**event, "api_port": srv.port})
        assert err is None and again["raw"] == "hello from outside", again

        # --function-network proxy: HTTP(S) through the egress proxy only.
        srv, lam = server("proxy", "--function-network", "proxy")
        name = _create(lam, NETWORK)
        err, out, log = _invoke(lam, name, {**event, "by_name": None, "api_port": srv.port})
        assert err is None, log
        assert out["proxy"] == "http://127.0.0.1:3128"
        assert out["outbound"] == [200, "hello from outside"]
        assert out["raw"] == "error" and out["udp"] == "error", out
        assert out["proxy_loopback"] == 403 and out["proxy_loopback_connect"] == 403, out

        # --function-network none: no way out at all.
        srv, lam = server("nonet", "--function-network", "none")
        name = _create(lam, NETWORK)
        err, out, log = _invoke(lam, name, {**event, "by_name": None, "api_port": srv.port})
        assert err is None, log
        assert out["proxy"] is None and out["outbound"][0] == "error", out
        assert out["raw"] == "error" and out["udp"] == "error", out
    finally:
        factory.close()
        outside.close()


def test_the_sandbox_is_the_default_where_it_works(tmp_path, nimbus_bin):
    import urllib.request

    factory = ServerFactory(nimbus_bin, tmp_path / "auto")
    try:
        srv = factory.new("auto", extra_args=["--isolation", "auto"])
        with urllib.request.urlopen(f"{srv.url}/_nimbus/health") as r:
            assert json.loads(r.read())["isolation"].startswith("sandbox")
    finally:
        factory.close()


FILL_TMP = r'''
import errno, os
def handler(event, context):
    written, err = 0, None
    chunk = b"x" * (4 << 20)
    try:
        with open("/tmp/fill", "wb") as f:
            while written < (1 << 30):
                f.write(chunk)
                f.flush()
                written += len(chunk)
    except OSError as e:
        err = errno.errorcode.get(e.errno)
    finally:
        if os.path.exists("/tmp/fill"):
            os.remove("/tmp/fill")
    return {"written_mb": written >> 20, "error": err}
'''

SPIN = r'''
import time
def handler(event, context):
    start, cpu0 = time.monotonic(), time.process_time()
    while time.monotonic() - start < 1.0:
        pass
    return {"cpu_s": time.process_time() - cpu0}
'''


def test_tmp_cannot_grow_beyond_ephemeral_storage(slam):
    name = _create(slam, FILL_TMP, EphemeralStorage={"Size": 512})
    err, out, log = _invoke(slam, name, {})
    assert err is None, log
    assert out["error"] == "ENOSPC" and out["written_mb"] <= 512
    err, again, _ = _invoke(slam, name, {})
    assert err is None and again["error"] == "ENOSPC", "the function keeps serving"


def test_a_busy_loop_gets_only_its_cpu_share(slam):
    small = _create(slam, SPIN, memory=128)
    big = _create(slam, SPIN, memory=1769)
    err, little, log = _invoke(slam, small, {})
    assert err is None, log
    err, much, log = _invoke(slam, big, {})
    assert err is None, log
    # 128 MB buys ~7 % of a core (128/1769); 1769 MB buys a whole one.
    assert little["cpu_s"] < 0.3, little
    assert much["cpu_s"] > little["cpu_s"] * 2, (little, much)


SPIN_AT_INIT = r'''
import time
def spin():
    start, cpu0 = time.monotonic(), time.process_time()
    while time.monotonic() - start < 0.5:
        pass
    return time.process_time() - cpu0
INIT_CPU_S = spin()
def handler(event, context):
    return {"init_cpu_s": INIT_CPU_S, "handler_cpu_s": spin()}
'''


def test_init_runs_with_burst_cpu_then_the_memory_share_applies(slam):
    # As on Lambda: init gets burst CPU whatever the memory; the handler gets 128 MB's share.
    name = _create(slam, SPIN_AT_INIT, memory=128)
    err, out, log = _invoke(slam, name, {})
    assert err is None, log
    assert out["handler_cpu_s"] < 0.15, out
    assert out["init_cpu_s"] > out["handler_cpu_s"] * 2, out


CGROUP_PROBE = "def handler(event, context):\n    return {'cgroup': open('/proc/self/cgroup').read()}\n"


@pytest.mark.skipif(not os.path.exists("/sys/fs/cgroup/unified/cgroup.procs"),
                    reason="no hybrid hierarchy here (on a pure v2 host every sandbox test takes the v2 path)")
def test_the_cgroup_v2_path(tmp_path, nimbus_bin, monkeypatch):
    # On a hybrid host the unified hierarchy has no controllers, but it has everything
    # else of v2: the runtime is born in its cgroup (clone3 CLONE_INTO_CGROUP), frozen with
    # cgroup.freeze, killed with cgroup.kill, and its cgroup removed.
    monkeypatch.setenv("NIMBUS_CGROUP2_MOUNT", "/sys/fs/cgroup/unified")
    factory = ServerFactory(nimbus_bin, tmp_path)
    try:
        srv = factory.new("v2", extra_args=["--isolation", "sandbox"])
        lam = srv.lambda_client()
        name = _create(lam, CGROUP_PROBE)
        err, out, log = _invoke(lam, name, {})
        assert err is None, log
        line = [l for l in out["cgroup"].splitlines() if l.startswith("0::")][0]
        assert "/nimbus/" in line, out
        env_dir = "/sys/fs/cgroup/unified" + line[3:]
        assert open(f"{env_dir}/cgroup.procs").read().split(), "the runtime is in its own v2 cgroup"
        wait_until(lambda: open(f"{env_dir}/cgroup.freeze").read().strip() == "1", timeout=5,
                   message="the idle environment is frozen")
        err, again, log = _invoke(lam, name, {})
        assert err is None and again == out, "thawed for the next invocation, same environment"
        code, _ = srv.stop()
        assert code == 0
        wait_until(lambda: not os.path.exists(env_dir), timeout=10, message="the environment's cgroup removed")
    finally:
        factory.close()


MANY_CONNECTIONS = r"""
import socket, time
def handler(event, context):
    held, error = [], None
    for _ in range(600):
        try:
            held.append(socket.create_connection((event["ip"], event["port"]), timeout=5))
        except OSError as e:
            error = e.strerror
            break
    opened = len(held)
    for s in held:
        s.close()
    # Closed connections free their slots.
    deadline = time.time() + 10
    while True:
        try:
            socket.create_connection((event["ip"], event["port"]), timeout=5).close()
            again = True
            break
        except OSError:
            if time.time() > deadline:
                again = False
                break
            time.sleep(0.1)
    return {"opened": opened, "error": error, "again": again}
"""


def test_an_environment_cannot_hold_unbounded_connections(tmp_path, nimbus_bin):
    import socket

    ip = _outside_ip()
    if ip is None:
        pytest.skip("no non-loopback address on this host")
    # A listener that completes handshakes in its backlog and never accepts.
    holder = socket.socket()
    holder.bind(("0.0.0.0", 0))
    holder.listen(2048)
    factory = ServerFactory(nimbus_bin, tmp_path)
    try:
        lam = factory.new("many", extra_args=["--isolation", "sandbox"]).lambda_client()
        name = _create(lam, MANY_CONNECTIONS)
        err, out, log = _invoke(lam, name, {"ip": ip, "port": holder.getsockname()[1]})
        assert err is None, log
        assert out["opened"] == 512 and out["error"] == "Connection refused", out
        assert out["again"], out
    finally:
        factory.close()
        holder.close()
