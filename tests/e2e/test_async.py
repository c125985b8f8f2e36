"""Asynchronous invocation: the durable queue, retries, event age, destinations, dead
letters and FunctionEventInvokeConfig — on a server whose first retry waits 1 s instead of
AWS' minute (`--async-retry-delay 1`)."""

import json
import time
import urllib.request

import pytest
from botocore.exceptions import ClientError

from .conftest import (
    ACCOUNT,
    REGION,
    ROLE,
    all_log_events,
    expect_client_error,
    make_client,
    make_zip,
    unique_name,
    wait_until,
)

RECORDER = (
    "import json\n"
    "def handler(event, context):\n"
    "    print('RECORD ' + json.dumps(event))\n"
    "    return {'recorded': True}\n"
)

WORKER = (
    "import json, time\n"
    "def handler(event, context):\n"
    "    print('ATTEMPT ' + context.aws_request_id)\n"
    "    time.sleep(event.get('sleep', 0))\n"
    "    if event.get('fail'):\n"
    "        raise ValueError('asked to fail: ' + str(event.get('tag')))\n"
    "    return {'echo': event.get('tag')}\n"
)


@pytest.fixture(scope="module")
def srv(tmp_path_factory, nimbus_bin):
    from .conftest import ServerFactory

    factory = ServerFactory(nimbus_bin, tmp_path_factory.mktemp("async"))
    yield factory.new("async", extra_args=["--async-retry-delay", "1"])
    factory.close()


@pytest.fixture(scope="module")
def alam(srv):
    return srv.lambda_client()


@pytest.fixture(scope="module")
def alogs(srv):
    return srv.logs_client()


def arn(name, qualifier=None):
    base = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
    return f"{base}:{qualifier}" if qualifier else base


def create(lam, code, prefix, **kw):
    name = unique_name(prefix)
    lam.create_function(
        FunctionName=name, Runtime="python3.11", Role=ROLE, Handler="app.handler",
        Code={"ZipFile": make_zip({"app.py": code})}, Timeout=kw.pop("Timeout", 10), **kw,
    )
    return name


def lines(logs, name, prefix):
    try:
        events = all_log_events(logs, f"/aws/lambda/{name}")
    except ClientError:
        return []
    return [e["message"].split(prefix, 1)[1].strip() for e in events if prefix in e["message"]]


def records(logs, name):
    return [json.loads(line) for line in lines(logs, name, "RECORD ")]


def wait_records(logs, name, n=1, timeout=30):
    return wait_until(lambda: (r := records(logs, name)) and len(r) >= n and r, timeout=timeout,
                      message=f"{n} record(s) in {name}")


def send(lam, name, event, **kw):
    r = lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps(event).encode(), **kw)
    assert r["StatusCode"] == 202
    return r["ResponseMetadata"]["RequestId"]


def test_event_is_accepted_then_delivered_with_its_request_id(alam, alogs):
    rec = create(alam, RECORDER, "rec")
    rid = send(alam, rec, {"hello": "async"})
    got = wait_records(alogs, rec)
    assert got[0] == {"hello": "async"}
    text = "\n".join(e["message"] for e in all_log_events(alogs, f"/aws/lambda/{rec}"))
    assert f"START RequestId: {rid}" in text, "the async invocation keeps the request id it was accepted with"


def test_async_payload_limit_is_one_megabyte(alam, alogs):
    sizer = "import json\ndef handler(event, context):\n    print('RECORD ' + json.dumps({'pad': len(event['pad'])}))\n"
    rec = create(alam, sizer, "big")
    body = {"pad": "x" * (1024 * 1024 - 100)}
    send(alam, rec, body)
    with pytest.raises(ClientError) as e:
        alam.invoke(FunctionName=rec, InvocationType="Event",
                    Payload=json.dumps({"pad": "x" * (1024 * 1024 + 1)}).encode())
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert e.value.response["Error"]["Code"] == "RequestTooLargeException"
    got = wait_records(alogs, rec)
    time.sleep(1)
    assert len(records(alogs, rec)) == 1, "the refused event was not queued"
    assert got[0]["pad"] == len(body["pad"])


def test_event_to_missing_function_is_404(alam):
    expect_client_error(lambda: alam.invoke(FunctionName=unique_name("nope"), InvocationType="Event", Payload=b"{}"),
                        404, "ResourceNotFoundException")


def test_event_invoke_config_crud_and_validation(srv, alam):
    raw = srv.lambda_client(parameter_validation=False)
    fn = create(alam, RECORDER, "cfg")
    dest = create(alam, RECORDER, "cfgdest")
    expect_client_error(lambda: alam.get_function_event_invoke_config(FunctionName=fn), 404, "ResourceNotFoundException")
    put = alam.put_function_event_invoke_config(
        FunctionName=fn, MaximumRetryAttempts=1,
        DestinationConfig={"OnFailure": {"Destination": arn(dest)}},
    )
    assert put["FunctionArn"] == arn(fn, "$LATEST")
    assert put["MaximumRetryAttempts"] == 1
    assert put["DestinationConfig"]["OnFailure"]["Destination"] == arn(dest)
    assert "MaximumEventAgeInSeconds" not in put
    # Update merges; Put replaces.
    up = alam.update_function_event_invoke_config(FunctionName=fn, MaximumEventAgeInSeconds=120)
    assert (up["MaximumRetryAttempts"], up["MaximumEventAgeInSeconds"]) == (1, 120)
    assert up["DestinationConfig"]["OnFailure"]["Destination"] == arn(dest)
    got = alam.get_function_event_invoke_config(FunctionName=fn)
    assert got["MaximumEventAgeInSeconds"] == 120
    assert got["LastModified"].timestamp() > time.time() - 60
    rep = alam.put_function_event_invoke_config(FunctionName=fn, MaximumEventAgeInSeconds=60)
    assert "MaximumRetryAttempts" not in rep and rep["DestinationConfig"]["OnFailure"] == {}

    # Per qualifier: an alias has its own config.
    v = alam.publish_version(FunctionName=fn)["Version"]
    alam.create_alias(FunctionName=fn, Name="live", FunctionVersion=v)
    alam.put_function_event_invoke_config(FunctionName=fn, Qualifier="live", MaximumRetryAttempts=0)
    listed = alam.list_function_event_invoke_configs(FunctionName=fn)["FunctionEventInvokeConfigs"]
    assert sorted(c["FunctionArn"] for c in listed) == sorted([arn(fn, "$LATEST"), arn(fn, "live")])
    page = alam.list_function_event_invoke_configs(FunctionName=fn, MaxItems=1)
    assert len(page["FunctionEventInvokeConfigs"]) == 1 and page["NextMarker"]

    # Validation, as AWS answers it.
    expect_client_error(lambda: raw.put_function_event_invoke_config(FunctionName=fn, MaximumRetryAttempts=3),
                        400, "ValidationException")
    expect_client_error(lambda: raw.put_function_event_invoke_config(FunctionName=fn, MaximumEventAgeInSeconds=59),
                        400, "ValidationException")
    expect_client_error(lambda: alam.put_function_event_invoke_config(
        FunctionName=fn, DestinationConfig={"OnSuccess": {"Destination": "arn:aws:nothing:::x"}}),
        400, "InvalidParameterValueException")
    expect_client_error(lambda: alam.put_function_event_invoke_config(FunctionName=fn, Qualifier="nope", MaximumRetryAttempts=1),
                        404, "ResourceNotFoundException")

    alam.delete_function_event_invoke_config(FunctionName=fn, Qualifier="live")
    expect_client_error(lambda: alam.get_function_event_invoke_config(FunctionName=fn, Qualifier="live"),
                        404, "ResourceNotFoundException")
    expect_client_error(lambda: alam.delete_function_event_invoke_config(FunctionName=fn, Qualifier="live"),
                        404, "ResourceNotFoundException")
    # Deleting an alias takes its settings with it.
    alam.put_function_event_invoke_config(FunctionName=fn, Qualifier="live", MaximumRetryAttempts=0)
    alam.delete_alias(FunctionName=fn, Name="live")
    listed = alam.list_function_event_invoke_configs(FunctionName=fn)["FunctionEventInvokeConfigs"]
    assert [c["FunctionArn"] for c in listed] == [arn(fn, "$LATEST")]


def test_function_errors_are_retried_then_sent_to_the_failure_destination(alam, alogs):
    worker = create(alam, WORKER, "retry")
    sink = create(alam, RECORDER, "onfail")
    alam.put_function_event_invoke_config(
        FunctionName=worker, DestinationConfig={"OnFailure": {"Destination": arn(sink)}})
    started = time.monotonic()
    rid = send(alam, worker, {"fail": True, "tag": "t1"})
    record = wait_records(alogs, sink, timeout=40)[0]
    took = time.monotonic() - started
    attempts = lines(alogs, worker, "ATTEMPT ")
    assert attempts == [rid, rid, rid], "two retries (the default), each with the same request id"
    assert took >= 3, "retries wait 1 s then 2 s"
    ctx = record["requestContext"]
    assert ctx == {"requestId": rid, "functionArn": arn(worker, "$LATEST"),
                   "condition": "RetriesExhausted", "approximateInvokeCount": 3}
    assert record["version"] == "1.0"
    assert record["requestPayload"] == {"fail": True, "tag": "t1"}
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
    assert record["responsePayload"]["errorType"] == "ValueError"
    assert record["responsePayload"]["errorMessage"] == "asked to fail: t1"
    assert record["timestamp"].endswith("Z")


def test_zero_retries_and_success_destination(alam, alogs):
    worker = create(alam, WORKER, "zero")
    ok_sink = create(alam, RECORDER, "onok")
    fail_sink = create(alam, RECORDER, "onko")
    alam.put_function_event_invoke_config(
        FunctionName=worker, MaximumRetryAttempts=0,
        DestinationConfig={"OnSuccess": {"Destination": arn(ok_sink)}, "OnFailure": {"Destination": arn(fail_sink)}})
    send(alam, worker, {"fail": True, "tag": "once"})
    rid = send(alam, worker, {"tag": "fine"})
    fail = wait_records(alogs, fail_sink)[0]
    assert fail["requestContext"]["approximateInvokeCount"] == 1
    ok = wait_records(alogs, ok_sink)[0]
    assert ok["requestContext"]["condition"] == "Success"
    assert ok["requestContext"]["requestId"] == rid
    assert ok["responsePayload"] == {"echo": "fine"}
    assert ok["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
    assert len(lines(alogs, worker, "ATTEMPT ")) == 2


def test_destination_through_an_alias_names_the_alias_and_version(alam, alogs):
    worker = create(alam, WORKER, "alias")
    sink = create(alam, RECORDER, "aliassink")
    v = alam.publish_version(FunctionName=worker)["Version"]
    alam.create_alias(FunctionName=worker, Name="prod", FunctionVersion=v)
    alam.put_function_event_invoke_config(
        FunctionName=worker, Qualifier="prod",
        DestinationConfig={"OnSuccess": {"Destination": arn(sink)}})
    send(alam, worker, {"tag": "via-alias"}, Qualifier="prod")
    rec = wait_records(alogs, sink)[0]
    assert rec["requestContext"]["functionArn"] == arn(worker, "prod")
    assert rec["responseContext"]["executedVersion"] == v


def test_dead_letter_queue_gets_the_original_event(srv, alam, alogs):
    dlq = f"arn:aws:sqs:{REGION}:{ACCOUNT}:dlq-{unique_name('q')}"
    worker = create(alam, WORKER, "dlq", DeadLetterConfig={"TargetArn": dlq})
    alam.put_function_event_invoke_config(FunctionName=worker, MaximumRetryAttempts=0)
    rid = send(alam, worker, {"fail": True, "tag": "dead"})

    def stored():
        with urllib.request.urlopen(f"{srv.url}/_nimbus/messages?target={urllib.request.quote(dlq, safe='')}") as r:
            return json.loads(r.read())["messages"]

    msgs = wait_until(stored, timeout=20, message="a dead letter")
    assert len(msgs) == 1
    assert json.loads(msgs[0]["body"]) == {"fail": True, "tag": "dead"}
    assert msgs[0]["attributes"]["RequestID"] == rid
    assert "asked to fail: dead" in msgs[0]["attributes"]["ErrorMessage"]


def test_reserved_concurrency_zero_sends_events_straight_to_failure(alam, alogs):
    worker = create(alam, WORKER, "off")
    sink = create(alam, RECORDER, "offsink")
    alam.put_function_event_invoke_config(FunctionName=worker, DestinationConfig={"OnFailure": {"Destination": arn(sink)}})
    alam.put_function_concurrency(FunctionName=worker, ReservedConcurrentExecutions=0)
    send(alam, worker, {"tag": "never"})
    rec = wait_records(alogs, sink)[0]
    assert rec["requestContext"]["approximateInvokeCount"] == 0
    assert rec["requestPayload"] == {"tag": "never"}
    assert lines(alogs, worker, "ATTEMPT ") == []


def test_throttled_events_wait_for_room_and_are_delivered(alam, alogs):
    worker = create(alam, WORKER, "busy")
    sink = create(alam, RECORDER, "busysink")
    alam.put_function_concurrency(FunctionName=worker, ReservedConcurrentExecutions=1)
    alam.put_function_event_invoke_config(FunctionName=worker, DestinationConfig={"OnSuccess": {"Destination": arn(sink)}})
    # The first event holds the only slot for 3 s; the others are throttled and come back.
    for i in range(4):
        send(alam, worker, {"tag": i, "sleep": 3 if i == 0 else 0})
    recs = wait_records(alogs, sink, n=4, timeout=60)
    assert sorted(r["responsePayload"]["echo"] for r in recs) == [0, 1, 2, 3]
    assert all(r["requestContext"]["approximateInvokeCount"] == 1 for r in recs), "throttles are not invocations"


def test_eventbridge_destination(srv, alam, alogs):
    events = make_client("events", srv.url)
    worker = create(alam, WORKER, "tobus")
    sink = create(alam, RECORDER, "bussink")
    rule = unique_name("results")
    events.put_rule(Name=rule, EventPattern=json.dumps({
        "source": ["lambda"], "detail-type": ["Lambda Function Invocation Result - Success"],
        "resources": [arn(worker, "$LATEST")]}))
    events.put_targets(Rule=rule, Targets=[{"Id": "sink", "Arn": arn(sink)}])
    bus = f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/default"
    alam.put_function_event_invoke_config(FunctionName=worker, DestinationConfig={"OnSuccess": {"Destination": bus}})
    rid = send(alam, worker, {"tag": "bus"})
    ev = wait_records(alogs, sink)[0]
    assert ev["source"] == "lambda"
    assert ev["detail-type"] == "Lambda Function Invocation Result - Success"
    assert ev["resources"] == [arn(worker, "$LATEST"), bus]
    assert ev["detail"]["requestContext"]["requestId"] == rid
    assert ev["detail"]["responsePayload"] == {"echo": "bus"}
    assert ev["account"] == ACCOUNT and ev["region"] == REGION


def test_throttled_event_expires_after_its_maximum_age(alam, alogs):
    """The only slot is held for 80 s; the second event is throttled until its 60 s age runs
    out, then goes to the failure destination as EventAgeExceeded, never having run."""
    worker = create(alam, WORKER, "expire", Timeout=90)
    sink = create(alam, RECORDER, "expiresink")
    alam.put_function_concurrency(FunctionName=worker, ReservedConcurrentExecutions=1)
    alam.put_function_event_invoke_config(
        FunctionName=worker, MaximumEventAgeInSeconds=60,
        DestinationConfig={"OnFailure": {"Destination": arn(sink)}})
    send(alam, worker, {"tag": "hog", "sleep": 80})
    wait_until(lambda: len(lines(alogs, worker, "ATTEMPT ")) == 1, timeout=20, message="the hog running")
    started = time.monotonic()
    rid = send(alam, worker, {"tag": "late"})
    rec = wait_records(alogs, sink, timeout=90)[0]
    assert time.monotonic() - started >= 55
    assert rec["requestContext"]["condition"] == "EventAgeExceeded"
    assert rec["requestContext"]["requestId"] == rid
    assert rec["requestContext"]["approximateInvokeCount"] == 0
    assert rec["requestPayload"] == {"tag": "late"}
    assert "responseContext" not in rec
    assert len(lines(alogs, worker, "ATTEMPT ")) == 1, "the expired event never ran"
