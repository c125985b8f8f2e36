"""Durability of asynchronous invocation: kill -9 the server with thousands of events
queued or in flight, start it again, and every accepted event is delivered (perhaps twice,
never zero times); an event's retry count survives the crash too."""

import concurrent.futures as cf
import json
import time

from .conftest import ROLE, ServerFactory, make_zip, unique_name, wait_until

APPENDER = (
    "import json, os, time\n"
    "def handler(event, context):\n"
    "    time.sleep(event.get('sleep', 0))\n"
    "    with open(os.environ['OUT'], 'a') as f:\n"
    "        f.write(json.dumps({'rid': context.aws_request_id, 'event': event}) + '\\n')\n"
    "    if event.get('fail'):\n"
    "        raise RuntimeError('always fails')\n"
    "    return 'ok'\n"
)

EVENTS = 3000


def seen(path):
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_kill_9_loses_no_accepted_event_and_keeps_retry_counts(tmp_path, nimbus_bin):
    factory = ServerFactory(nimbus_bin, tmp_path / "servers")
    try:
        srv = factory.new("durable", extra_args=["--async-retry-delay", "3"])
        lam = srv.lambda_client(max_pool_connections=16)

        def create(out, **kw):
            name = unique_name("durable")
            lam.create_function(
                FunctionName=name, Runtime="python3.11", Role=ROLE, Handler="app.handler",
                Code={"ZipFile": make_zip({"app.py": APPENDER})}, Timeout=10,
                Environment={"Variables": {"OUT": str(out)}}, **kw)
            return name

        bulk_out, failing_out, sink_out = tmp_path / "bulk.jsonl", tmp_path / "failing.jsonl", tmp_path / "sink.jsonl"
        bulk = create(bulk_out)
        # Two environments at 10 ms each: a backlog that takes a while to drain.
        lam.put_function_concurrency(FunctionName=bulk, ReservedConcurrentExecutions=2)
        failing = create(failing_out)
        sink = create(sink_out)
        lam.put_function_event_invoke_config(
            FunctionName=failing,
            DestinationConfig={"OnFailure": {"Destination": f"arn:aws:lambda:us-east-1:000000000000:function:{sink}"}})

        def send(i):
            r = lam.invoke(FunctionName=bulk, InvocationType="Event",
                           Payload=json.dumps({"n": i, "sleep": 0.01}).encode())
            return r["StatusCode"]

        with cf.ThreadPoolExecutor(16) as pool:
            codes = list(pool.map(send, range(EVENTS)))
        assert codes == [202] * EVENTS
        lam.invoke(FunctionName=failing, InvocationType="Event", Payload=json.dumps({"fail": True}).encode())

        # The failing event's first attempt is done and its retry is 3 s away: crash now.
        wait_until(lambda: len(seen(failing_out)) == 1, timeout=20, message="the first attempt")
        time.sleep(1)
        before = {e["event"]["n"] for e in seen(bulk_out)}
        srv.kill()
        assert len(before) < EVENTS, "the crash must find events still queued"

        srv.start()
        wait_until(lambda: {e["event"]["n"] for e in seen(bulk_out)} >= set(range(EVENTS)),
                   timeout=240, interval=1, message="every accepted event delivered after the crash")
        record = wait_until(lambda: seen(sink_out), timeout=30, message="the failure record")[0]["event"]
        attempts = seen(failing_out)
        assert len(attempts) == 3, "one attempt before the crash and two retries after it"
        assert len({a["rid"] for a in attempts}) == 1
        assert record["requestContext"]["condition"] == "RetriesExhausted"
        assert record["requestContext"]["approximateInvokeCount"] == 3

        # Nothing is left behind in the queue.
        import urllib.request

        def drained():
            with urllib.request.urlopen(f"{srv.url}/_nimbus/async") as r:
                return json.loads(r.read())["queued"] == 0

        wait_until(drained, timeout=30, message="an empty queue")
    finally:
        factory.close()
