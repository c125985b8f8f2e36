"""`nimbus release`: a canary on an alias that promotes a healthy version and rolls back a
failing one, with real traffic flowing through the alias during the release."""

import os
import subprocess
import threading
import time

from .conftest import make_zip

GOOD = 'def handler(event, context):\n    return {"code": "%s", "version": context.function_version}\n'
BAD = 'def handler(event, context):\n    raise RuntimeError("new version is broken")\n'


class Traffic:
    """Invokes NAME:ALIAS in a loop on a thread, counting executed versions."""

    def __init__(self, lam, name, alias):
        self.lam, self.target = lam, f"{name}:{alias}"
        self.seen: dict[str, int] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop.is_set():
            r = self.lam.invoke(FunctionName=self.target, Payload=b"{}")
            r["Payload"].read()
            v = r["ExecutedVersion"]
            self.seen[v] = self.seen.get(v, 0) + 1
            time.sleep(0.01)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=30)


def _setup(lam, create_fn, second_code):
    fn = create_fn(code={"app.py": GOOD % "one"})
    v1 = lam.publish_version(FunctionName=fn.name)["Version"]
    lam.create_alias(FunctionName=fn.name, Name="live", FunctionVersion=v1)
    lam.update_function_code(FunctionName=fn.name, ZipFile=make_zip({"app.py": second_code}))
    return fn, v1


def _release(nimbus_bin, server, name, *extra):
    env = dict(os.environ, NIMBUS_ENDPOINT=server.url)
    return subprocess.run(
        [str(nimbus_bin), "release", name, "--alias", "live", "--canary", "30%", "--over", "3s", "--steps", "3", *extra],
        capture_output=True, text=True, timeout=120, env=env, stdin=subprocess.DEVNULL,
    )


def test_release_promotes_a_healthy_version(lam, create_fn, nimbus_bin, server):
    fn, v1 = _setup(lam, create_fn, GOOD % "two")
    with Traffic(lam, fn.name, "live") as traffic:
        proc = _release(nimbus_bin, server, fn.name)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "promoted" in proc.stdout
    alias = lam.get_alias(FunctionName=fn.name, Name="live")
    assert alias["FunctionVersion"] == "2" and not alias.get("RoutingConfig", {}).get("AdditionalVersionWeights")
    # Both versions served traffic while the weight moved.
    assert traffic.seen.get(v1, 0) > 0 and traffic.seen.get("2", 0) > 0, traffic.seen
    r = lam.invoke(FunctionName=f"{fn.name}:live")
    assert r["ExecutedVersion"] == "2"


def test_release_rolls_back_a_failing_version(lam, create_fn, nimbus_bin, server):
    fn, v1 = _setup(lam, create_fn, BAD)
    with Traffic(lam, fn.name, "live"):
        proc = _release(nimbus_bin, server, fn.name)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "rolled back" in proc.stdout
    alias = lam.get_alias(FunctionName=fn.name, Name="live")
    assert alias["FunctionVersion"] == v1
    assert not alias.get("RoutingConfig", {}).get("AdditionalVersionWeights")
    for _ in range(10):
        assert lam.invoke(FunctionName=f"{fn.name}:live")["ExecutedVersion"] == v1


def test_release_of_the_current_version_is_a_no_op(lam, create_fn, nimbus_bin, server):
    fn = create_fn(code={"app.py": GOOD % "one"})
    v1 = lam.publish_version(FunctionName=fn.name)["Version"]
    lam.create_alias(FunctionName=fn.name, Name="live", FunctionVersion=v1)
    proc = _release(nimbus_bin, server, fn.name, "--version", v1)
    assert proc.returncode == 0 and "nothing to release" in proc.stdout, proc.stdout + proc.stderr
