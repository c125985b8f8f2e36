"""Crash/restart durability and clean shutdown, on servers of their own
(own data dir, own port) so the shared session server is not disturbed."""

from __future__ import annotations

import contextlib
import os
import signal
import urllib.request

from .conftest import (
    NODE,
    ROLE,
    bash_runtime_zip,
    invoke,
    make_zip,
    node_probe_zip,
    pid_alive,
    python_probe_zip,
    unique_name,
    wait_active,
    wait_until,
)

COMPARED_FIELDS = (
    "FunctionName", "FunctionArn", "Runtime", "Role", "Handler", "CodeSize", "CodeSha256", "RevisionId",
    "Version", "MemorySize", "Timeout", "LastModified", "Environment", "Description", "PackageType",
)


BUSY_APP = """\
import os, time

def handler(event, context):
    tmp = event["pid_file"] + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(os.getpid()))
    os.replace(tmp, event["pid_file"])
    time.sleep(event["sleep"])
    return "done"
"""


def _all_functions(lam) -> dict[str, dict]:
    out = {}
    for page in lam.get_paginator("list_functions").paginate():
        for f in page["Functions"]:
            out[f["FunctionName"]] = f
    return out


def _read_pid(path) -> int:
    return int(wait_until(lambda: path.exists() and path.read_text().strip(), timeout=10, message=f"pid file {path}"))


def test_kill_9_then_restart_keeps_functions_and_sigterm_leaves_no_runtimes(server_factory, tmp_path):
    srv = server_factory.new("restart")
    lam = srv.lambda_client()
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()

    specs = {
        "python": dict(Runtime="python3.11", Handler="app.handler", zip=python_probe_zip(), Environment=None),
        "provided": dict(Runtime="provided.al2023", Handler="fn.handler", zip=bash_runtime_zip(),
                         Environment={"Variables": {"PID_FILE": str(pid_dir / "provided.pid")}}),
    }
    if NODE:
        specs["node"] = dict(Runtime="nodejs20.x", Handler="index.handler", zip=node_probe_zip(), Environment=None)

    names = {}
    for kind, spec in specs.items():
        name = unique_name(f"restart-{kind}")
        args = dict(FunctionName=name, Runtime=spec["Runtime"], Role=ROLE, Handler=spec["Handler"],
                    Code={"ZipFile": spec["zip"]}, Description=f"{kind} function", Timeout=5)
        if spec["Environment"]:
            args["Environment"] = spec["Environment"]
        lam.create_function(**args)
        wait_active(lam, name)
        names[kind] = name

    def invoke_all(client, tag):
        pids = {}
        for kind, name in names.items():
            pid_file = pid_dir / f"{kind}.pid"
            with contextlib.suppress(FileNotFoundError):
                pid_file.unlink()
            event = {"tag": tag} if kind == "provided" else {"tag": tag, "pid_file": str(pid_file)}
            body = invoke(client, name, event).ok()
            assert body["event"] == event, (kind, body)
            pids[kind] = _read_pid(pid_file)
        return pids

    old_pids = invoke_all(lam, "before")
    before = {name: lam.get_function_configuration(FunctionName=name) for name in names.values()}
    new_pids: dict[str, int] = {}

    try:
        # crash: no chance to flush or clean up
        srv.kill()
        srv.start()
        lam = srv.lambda_client()

        listed = _all_functions(lam)
        for kind, name in names.items():
            assert name in listed, f"{kind} function lost across kill -9"
            cfg = lam.get_function_configuration(FunctionName=name)
            for key in COMPARED_FIELDS:
                assert cfg.get(key) == before[name].get(key), (kind, key, cfg.get(key), before[name].get(key))
                assert listed[name].get(key) == before[name].get(key), (kind, key)
            assert cfg["State"] == "Active"
            location = lam.get_function(FunctionName=name)["Code"]["Location"]
            with urllib.request.urlopen(location, timeout=30) as resp:
                assert resp.read() == specs[kind]["zip"]

        new_pids = invoke_all(lam, "after")
        assert set(new_pids.values()).isdisjoint(old_pids.values()), "environments from before the crash were reused"

        # one environment is busy (an async invocation sleeping far past the stop deadline)
        busy = unique_name("restart-busy")
        lam.create_function(FunctionName=busy, Runtime="python3.11", Role=ROLE, Handler="app.handler",
                            Code={"ZipFile": make_zip({"app.py": BUSY_APP})}, Timeout=120)
        wait_active(lam, busy)
        busy_pid_file = pid_dir / "busy.pid"
        res = invoke(lam, busy, {"pid_file": str(busy_pid_file), "sleep": 100}, InvocationType="Event")
        assert res.status == 202
        new_pids["busy"] = _read_pid(busy_pid_file)
        assert all(pid_alive(p) for p in new_pids.values())

        # graceful stop: exit status 0 within 10 s, no runtime processes left behind
        rc, took = srv.stop(timeout=10)
        assert rc == 0, f"exit status {rc} after SIGTERM (took {took:.1f}s)\n{srv.log_tail()}"
        def survivors():
            return {k: p for k, p in new_pids.items() if pid_alive(p)}

        try:
            wait_until(lambda: not survivors(), timeout=2, interval=0.05, message="runtime processes to exit")
        except AssertionError:
            raise AssertionError(f"runtime processes outlived the server: {survivors()}") from None
    finally:
        for pid in list(old_pids.values()) + list(new_pids.values()):
            if pid_alive(pid):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)


def test_sigterm_on_idle_server_exits_0(server_factory):
    srv = server_factory.new("idle")
    lam = srv.lambda_client()
    assert lam.list_functions()["Functions"] == []
    rc, took = srv.stop(timeout=10)
    assert rc == 0, f"exit status {rc} after SIGTERM (took {took:.1f}s)\n{srv.log_tail()}"


def test_restart_after_clean_stop_keeps_state(server_factory):
    srv = server_factory.new("clean")
    lam = srv.lambda_client()
    name = unique_name("clean-restart")
    code = python_probe_zip()
    lam.create_function(FunctionName=name, Runtime="python3.11", Role=ROLE, Handler="app.handler",
                        Code={"ZipFile": code}, Tags={"kept": "yes"})
    wait_active(lam, name)
    rev = lam.get_function_configuration(FunctionName=name)["RevisionId"]
    rc, _ = srv.stop()
    assert rc == 0
    srv.start()
    lam = srv.lambda_client()
    got = lam.get_function(FunctionName=name)
    assert got["Configuration"]["RevisionId"] == rev
    assert got["Tags"] == {"kept": "yes"}
    assert invoke(lam, name, {"after": "restart"}).ok()["event"] == {"after": "restart"}
