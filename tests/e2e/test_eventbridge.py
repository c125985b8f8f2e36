"""EventBridge on the same endpoint (`events` client): rules, targets, PutEvents routed by
event patterns to Lambda targets with Input, InputPath and InputTransformer, and
TestEventPattern."""

import json
import time

import pytest
from botocore.exceptions import ClientError

from .conftest import ACCOUNT, REGION, ROLE, all_log_events, expect_client_error, make_client, make_zip, unique_name, wait_until

RECORDER = (
    "import json\n"
    "def handler(event, context):\n"
    "    print('RECORD ' + json.dumps(event))\n"
)


@pytest.fixture(scope="module")
def events(server):
    return make_client("events", server.url)


def fn_arn(name):
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


def recorder(lam):
    name = unique_name("evrec")
    lam.create_function(FunctionName=name, Runtime="python3.11", Role=ROLE, Handler="app.handler",
                        Code={"ZipFile": make_zip({"app.py": RECORDER})})
    return name


def records(logs, name):
    try:
        evs = all_log_events(logs, f"/aws/lambda/{name}")
    except ClientError:
        return []
    return [json.loads(e["message"].split("RECORD ", 1)[1]) for e in evs if "RECORD " in e["message"]]


def wait_records(logs, name, n, timeout=20):
    return wait_until(lambda: (r := records(logs, name)) and len(r) >= n and r, timeout=timeout,
                      message=f"{n} record(s) in {name}")


def test_rule_lifecycle_and_errors(events, lam):
    name = unique_name("rule")
    arn = events.put_rule(Name=name, EventPattern=json.dumps({"source": ["my.app"]}), Description="d")["RuleArn"]
    assert arn == f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{name}"
    d = events.describe_rule(Name=name)
    assert (d["Name"], d["Arn"], d["State"], d["EventBusName"], d["Description"]) == (name, arn, "ENABLED", "default", "d")
    assert json.loads(d["EventPattern"]) == {"source": ["my.app"]}
    events.disable_rule(Name=name)
    assert events.describe_rule(Name=name)["State"] == "DISABLED"
    events.enable_rule(Name=name)
    assert name in [r["Name"] for r in events.list_rules(NamePrefix=name)["Rules"]]

    target = recorder(lam)
    out = events.put_targets(Rule=name, Targets=[{"Id": "t1", "Arn": fn_arn(target)}])
    assert out["FailedEntryCount"] == 0
    assert [t["Id"] for t in events.list_targets_by_rule(Rule=name)["Targets"]] == ["t1"]
    assert events.list_rule_names_by_target(TargetArn=fn_arn(target))["RuleNames"] == [name]
    expect_client_error(lambda: events.delete_rule(Name=name), 400, "ValidationException")
    out = events.remove_targets(Rule=name, Ids=["t1", "ghost"])
    assert out["FailedEntryCount"] == 1 and out["FailedEntries"][0]["TargetId"] == "ghost"
    events.delete_rule(Name=name)
    expect_client_error(lambda: events.describe_rule(Name=name), 400, "ResourceNotFoundException")

    expect_client_error(lambda: events.put_rule(Name=unique_name("bad")), 400, "ValidationException")
    expect_client_error(lambda: events.put_rule(Name=unique_name("bad"), EventPattern='{"source": "not-a-list"}'),
                        400, "InvalidEventPatternException")
    expect_client_error(lambda: events.put_rule(Name=unique_name("bad"), ScheduleExpression="rate(1 minutes)"),
                        400, "ValidationException")
    expect_client_error(lambda: events.put_rule(Name=unique_name("bad"), ScheduleExpression="cron(0 12 * * * *)"),
                        400, "ValidationException")
    expect_client_error(lambda: events.put_targets(Rule=unique_name("ghost"), Targets=[{"Id": "x", "Arn": fn_arn("x")}]),
                        400, "ResourceNotFoundException")


def test_put_events_routes_matching_events_to_targets(events, lam, logs):
    target = recorder(lam)
    name = unique_name("orders")
    events.put_rule(Name=name, EventPattern=json.dumps({
        "source": ["shop.orders"],
        "detail": {"amount": [{"numeric": [">", 100]}], "region": [{"prefix": "eu-"}],
                   "status": [{"anything-but": ["cancelled"]}]},
    }))
    events.put_targets(Rule=name, Targets=[{"Id": "rec", "Arn": fn_arn(target)}])

    def put(detail, source="shop.orders"):
        r = events.put_events(Entries=[{"Source": source, "DetailType": "Order Placed",
                                        "Detail": json.dumps(detail), "Resources": ["res:1"]}])
        assert r["FailedEntryCount"] == 0
        return r["Entries"][0]["EventId"]

    eid = put({"amount": 150, "region": "eu-west-1", "status": "new", "n": 1})
    put({"amount": 50, "region": "eu-west-1", "status": "new", "n": 2})      # too small
    put({"amount": 150, "region": "us-east-1", "status": "new", "n": 3})     # wrong prefix
    put({"amount": 150, "region": "eu-west-1", "status": "cancelled", "n": 4})
    put({"amount": 150, "region": "eu-west-1", "status": "new", "n": 5}, source="other")
    ev = wait_records(logs, target, 1)[0]
    time.sleep(1.5)
    assert [r["detail"]["n"] for r in records(logs, target)] == [1]
    assert ev["id"] == eid
    assert (ev["version"], ev["source"], ev["detail-type"], ev["account"], ev["region"]) == (
        "0", "shop.orders", "Order Placed", ACCOUNT, REGION)
    assert ev["resources"] == ["res:1"]
    assert ev["time"].endswith("Z")

    # A disabled rule delivers nothing.
    events.disable_rule(Name=name)
    put({"amount": 999, "region": "eu-north-1", "status": "new", "n": 6})
    time.sleep(1.5)
    assert [r["detail"]["n"] for r in records(logs, target)] == [1]


def test_target_inputs(events, lam, logs):
    constant, path, transformed = recorder(lam), recorder(lam), recorder(lam)
    name = unique_name("inputs")
    events.put_rule(Name=name, EventPattern=json.dumps({"source": ["inputs.test"]}))
    events.put_targets(Rule=name, Targets=[
        {"Id": "constant", "Arn": fn_arn(constant), "Input": json.dumps({"fixed": True})},
        {"Id": "path", "Arn": fn_arn(path), "InputPath": "$.detail.order"},
        {"Id": "transformed", "Arn": fn_arn(transformed), "InputTransformer": {
            "InputPathsMap": {"id": "$.detail.order.id", "src": "$.source", "items": "$.detail.order.items"},
            "InputTemplate": '{"order": "<id>", "from": "<src>", "items": <items>}'}},
    ])
    events.put_events(Entries=[{"Source": "inputs.test", "DetailType": "t",
                                "Detail": json.dumps({"order": {"id": "o-1", "items": [1, 2]}})}])
    assert wait_records(logs, constant, 1)[0] == {"fixed": True}
    assert wait_records(logs, path, 1)[0] == {"id": "o-1", "items": [1, 2]}
    assert wait_records(logs, transformed, 1)[0] == {"order": "o-1", "from": "inputs.test", "items": [1, 2]}
    bad = events.put_targets(Rule=name, Targets=[{"Id": "sqs", "Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:q"}])
    assert bad["FailedEntryCount"] == 1


def test_put_events_entry_errors(events):
    r = events.put_events(Entries=[
        {"Source": "a", "DetailType": "b", "Detail": "not json"},
        {"Source": "a", "DetailType": "b", "Detail": "{}"},
    ])
    assert r["FailedEntryCount"] == 1
    assert r["Entries"][0]["ErrorCode"] == "MalformedDetail"
    assert "EventId" in r["Entries"][1]


@pytest.mark.parametrize("pattern,event,expected", [
    ({"source": ["a"]}, {"source": "a"}, True),
    ({"detail": {"state": [{"prefix": "run"}]}}, {"detail": {"state": "running"}}, True),
    ({"detail": {"state": [{"suffix": "ing"}]}}, {"detail": {"state": "stopped"}}, False),
    ({"detail": {"x": [{"exists": False}]}}, {"detail": {}}, True),
    ({"detail": {"ip": [{"cidr": "10.0.0.0/24"}]}}, {"detail": {"ip": "10.0.0.7"}}, True),
    ({"detail": {"n": [{"numeric": [">=", 0, "<", 10]}]}}, {"detail": {"n": 10}}, False),
    ({"detail": {"name": [{"wildcard": "*.png"}]}}, {"detail": {"name": "a/b.png"}}, True),
    ({"detail": {"c": [{"equals-ignore-case": "RED"}]}}, {"detail": {"c": "red"}}, True),
    ({"$or": [{"source": ["x"]}, {"detail": {"n": [1]}}]}, {"source": "y", "detail": {"n": 1}}, True),
    ({"detail": {"tags": ["a"]}}, {"detail": {"tags": ["b", "a"]}}, True),
])
def test_test_event_pattern(events, pattern, event, expected):
    full = {"id": "1", "account": ACCOUNT, "source": "s", "time": "2026-01-01T00:00:00Z",
            "region": REGION, "detail-type": "t", "resources": [], "detail": {}}
    full.update(event)
    assert events.test_event_pattern(EventPattern=json.dumps(pattern), Event=json.dumps(full))["Result"] is expected
