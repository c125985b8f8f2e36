"""Scheduled rules: `rate(1 minute)` fires the Scheduled Event envelope at its target once
per tick, and the schedule survives a restart of the server; `nimbus schedules` lists it."""

import json
import subprocess
import time

from .conftest import ACCOUNT, REGION, ROLE, ServerFactory, make_client, make_zip, unique_name, wait_until

APPENDER = (
    "import json, os\n"
    "def handler(event, context):\n"
    "    with open(os.environ['OUT'], 'a') as f:\n"
    "        f.write(json.dumps(event) + '\\n')\n"
)


def test_rate_schedule_fires_once_per_tick_across_a_restart(tmp_path, nimbus_bin):
    factory = ServerFactory(nimbus_bin, tmp_path / "servers")
    try:
        srv = factory.new("sched")
        lam, events = srv.lambda_client(), make_client("events", srv.url)
        out = tmp_path / "fired.jsonl"
        fn = unique_name("tick")
        lam.create_function(FunctionName=fn, Runtime="python3.11", Role=ROLE, Handler="app.handler",
                            Code={"ZipFile": make_zip({"app.py": APPENDER})},
                            Environment={"Variables": {"OUT": str(out)}})
        rule = unique_name("every-minute")
        created = time.time()
        arn = events.put_rule(Name=rule, ScheduleExpression="rate(1 minute)")["RuleArn"]
        events.put_targets(Rule=rule, Targets=[{"Id": "fn", "Arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{fn}"}])
        assert events.describe_rule(Name=rule)["ScheduleExpression"] == "rate(1 minute)"

        listing = subprocess.run([str(nimbus_bin), "schedules", "--endpoint", srv.url],
                                 capture_output=True, text=True, check=True).stdout
        assert rule in listing and "rate(1 minute)" in listing and "ENABLED" in listing

        srv.restart()
        fired = wait_until(lambda: out.exists() and out.read_text().splitlines(), timeout=90, interval=0.5,
                           message="the first tick")
        assert time.time() - created >= 59, "a rate counts from when the rule was created"
        ev = json.loads(fired[0])
        assert (ev["source"], ev["detail-type"], ev["detail"], ev["resources"]) == (
            "aws.events", "Scheduled Event", {}, [arn])
        # A restart right after the tick does not fire it again.
        srv.restart()
        time.sleep(3)
        assert len(out.read_text().splitlines()) == 1
    finally:
        factory.close()
