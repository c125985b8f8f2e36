"""Provisioned concurrency: configs on versions and aliases, environments initialised ahead of
time with AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency, invokes without Init
Duration, overflow to on-demand environments, and the error cases."""

import base64
import concurrent.futures as cf
import json

from .conftest import expect_client_error, unique_name, wait_until

APP = (
    "import os, time\n"
    "INIT = time.time()\n"
    "def handler(event, context):\n"
    "    time.sleep(event.get('sleep', 0))\n"
    "    return {'init_type': os.environ['AWS_LAMBDA_INITIALIZATION_TYPE'], 'pid': os.getpid(), 'init': INIT}\n"
)


def _ready(lam, name, qualifier):
    def check():
        c = lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier=qualifier)
        return c if c["Status"] == "READY" else None

    return wait_until(check, timeout=60, interval=0.2, message="provisioned concurrency READY")


def test_provisioned_environments_are_ready_and_used(lam, create_fn):
    fn = create_fn(code={"app.py": APP})
    v = lam.publish_version(FunctionName=fn.name)["Version"]
    lam.create_alias(FunctionName=fn.name, Name="live", FunctionVersion=v)
    put = lam.put_provisioned_concurrency_config(FunctionName=fn.name, Qualifier="live", ProvisionedConcurrentExecutions=2)
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert put["RequestedProvisionedConcurrentExecutions"] == 2
    assert put["Status"] in ("IN_PROGRESS", "READY")
    cfg = _ready(lam, fn.name, "live")
    assert cfg["AvailableProvisionedConcurrentExecutions"] == 2 and cfg["AllocatedProvisionedConcurrentExecutions"] == 2
    listed = lam.list_provisioned_concurrency_configs(FunctionName=fn.name)["ProvisionedConcurrencyConfigs"]
    assert [c["FunctionArn"] for c in listed] == [f"{fn.arn}:live"]

    r = lam.invoke(FunctionName=fn.name, Qualifier="live", LogType="Tail")
    body = json.loads(r["Payload"].read())
    assert body["init_type"] == "provisioned-concurrency"
    log = base64.b64decode(r["LogResult"]).decode()
    assert "REPORT RequestId" in log and "Init Duration" not in log
    # Two parallel calls both land on the provisioned environments; a third spills over to
    # an on-demand one.
    with cf.ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda _: json.loads(lam.invoke(FunctionName=f"{fn.name}:live", Payload=b'{"sleep": 1.5}')["Payload"].read()), range(3)))
    kinds = sorted(r["init_type"] for r in results)
    assert kinds == ["on-demand", "provisioned-concurrency", "provisioned-concurrency"], kinds

    lam.delete_provisioned_concurrency_config(FunctionName=fn.name, Qualifier="live")
    expect_client_error(
        lambda: lam.get_provisioned_concurrency_config(FunctionName=fn.name, Qualifier="live"),
        404, ("ProvisionedConcurrencyConfigNotFoundException",),
    )


def test_provisioned_concurrency_errors(lam, create_fn):
    fn = create_fn(code={"app.py": APP})
    expect_client_error(
        lambda: lam.put_provisioned_concurrency_config(FunctionName=fn.name, Qualifier="$LATEST", ProvisionedConcurrentExecutions=1),
        400, ("InvalidParameterValueException",),
    )
    expect_client_error(
        lambda: lam.put_provisioned_concurrency_config(FunctionName=fn.name, Qualifier="9", ProvisionedConcurrentExecutions=1),
        404, ("ResourceNotFoundException",),
    )
    v = lam.publish_version(FunctionName=fn.name)["Version"]
    expect_client_error(
        lambda: lam.get_provisioned_concurrency_config(FunctionName=fn.name, Qualifier=v),
        404, ("ProvisionedConcurrencyConfigNotFoundException",),
    )
    lam.put_function_concurrency(FunctionName=fn.name, ReservedConcurrentExecutions=1)
    expect_client_error(
        lambda: lam.put_provisioned_concurrency_config(FunctionName=fn.name, Qualifier=v, ProvisionedConcurrentExecutions=2),
        400, ("InvalidParameterValueException",),
    )
    lam.delete_function_concurrency(FunctionName=fn.name)
    expect_client_error(
        lambda: lam.put_provisioned_concurrency_config(FunctionName=unique_name("nope"), Qualifier="1", ProvisionedConcurrentExecutions=1),
        404, ("ResourceNotFoundException",),
    )


def test_failing_init_marks_the_config_failed(lam, create_fn):
    fn = create_fn(code={"app.py": "raise RuntimeError('init breaks')\n"})
    v = lam.publish_version(FunctionName=fn.name)["Version"]
    lam.put_provisioned_concurrency_config(FunctionName=fn.name, Qualifier=v, ProvisionedConcurrentExecutions=1)

    def failed():
        c = lam.get_provisioned_concurrency_config(FunctionName=fn.name, Qualifier=v)
        return c if c["Status"] == "FAILED" else None

    cfg = wait_until(failed, timeout=60, interval=0.2, message="provisioned concurrency FAILED")
    assert "init breaks" in cfg["StatusReason"]


def test_provisioned_concurrency_follows_its_alias(lam, create_fn):
    fn = create_fn(code={"app.py": APP})
    v1 = lam.publish_version(FunctionName=fn.name)["Version"]
    lam.create_alias(FunctionName=fn.name, Name="prod", FunctionVersion=v1)
    lam.put_provisioned_concurrency_config(FunctionName=fn.name, Qualifier="prod", ProvisionedConcurrentExecutions=1)
    _ready(lam, fn.name, "prod")
    lam.update_function_configuration(FunctionName=fn.name, Description="v2")
    v2 = lam.publish_version(FunctionName=fn.name)["Version"]
    lam.update_alias(FunctionName=fn.name, Name="prod", FunctionVersion=v2)
    cfg = _ready(lam, fn.name, "prod")
    assert cfg["AvailableProvisionedConcurrentExecutions"] == 1

    def provisioned_v2():
        r = lam.invoke(FunctionName=fn.name, Qualifier="prod")
        return r["ExecutedVersion"] == v2 and json.loads(r["Payload"].read())["init_type"] == "provisioned-concurrency"

    wait_until(provisioned_v2, timeout=30, message="the alias' new version runs on provisioned environments")
    lam.delete_provisioned_concurrency_config(FunctionName=fn.name, Qualifier="prod")
