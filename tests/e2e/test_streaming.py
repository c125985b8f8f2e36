"""Response streaming: InvokeWithResponseStream (boto3's event stream) and Function URLs in
RESPONSE_STREAM mode, for Node.js (`awslambda.streamifyResponse`) and a custom runtime.
Chunks reach the client while the function is still running: the function waits for a file
the test creates only after it has received the first chunk."""

import http.client
import json
import os
import time
from urllib.parse import urlparse

import pytest

from .conftest import ROLE, ServerFactory, make_zip, real_python, unique_name

STREAMER = r"""
const fs = require('node:fs');
const waitFor = async (path) => {
  for (let i = 0; i < 200 && !fs.existsSync(path); i++) await new Promise((r) => setTimeout(r, 50));
  if (!fs.existsSync(path)) throw new Error('the client never saw the first chunk');
};
exports.handler = awslambda.streamifyResponse(async (event, responseStream, context) => {
  if (event.http) {
    responseStream = awslambda.HttpResponseStream.from(responseStream, {
      statusCode: 201, headers: { 'content-type': 'text/plain', 'x-streamed': 'yes' }, cookies: ['s=1'] });
  }
  responseStream.write('hello ');
  await waitFor(event.gate);
  if (event.fail) throw new Error('broke mid-stream');
  responseStream.write('world');
  responseStream.end();
});
"""

URL_STREAMER = STREAMER.replace("if (event.http)", "event = JSON.parse(event.body || '{}'); event.http = true; if (event.http)")

CUSTOM_BOOTSTRAP = """#!{python}
import http.client, json, os
host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
base = "/2018-06-01/runtime/invocation/"
while True:
    c = http.client.HTTPConnection(host, int(port))
    c.request("GET", base + "next")
    r = c.getresponse()
    rid = r.getheader("Lambda-Runtime-Aws-Request-Id")
    event = json.loads(r.read())
    c.putrequest("POST", base + rid + "/response")
    c.putheader("Lambda-Runtime-Function-Response-Mode", "streaming")
    c.putheader("Transfer-Encoding", "chunked")
    c.putheader("Content-Type", "text/plain")
    c.endheaders()
    for part in event["parts"]:
        data = part.encode()
        c.send(b"%x\\r\\n%s\\r\\n" % (len(data), data))
    c.send(b"0\\r\\n\\r\\n")
    c.getresponse().read()
"""


@pytest.fixture(scope="module")
def srv(tmp_path_factory, nimbus_bin):
    # Its own server with process isolation: the gate files live on the host.
    factory = ServerFactory(nimbus_bin, tmp_path_factory.mktemp("streaming"))
    yield factory.new("streaming", extra_args=["--isolation", "process"])
    factory.close()


@pytest.fixture(scope="module")
def slam(srv):
    return srv.lambda_client()


def node_fn(lam, source):
    name = unique_name("stream")
    lam.create_function(FunctionName=name, Runtime="nodejs20.x", Role=ROLE, Handler="index.handler",
                        Code={"ZipFile": make_zip({"index.js": source})}, Timeout=15)
    return name


def test_invoke_with_response_stream_delivers_chunks_as_written(slam, tmp_path):
    fn = node_fn(slam, STREAMER)
    gate = tmp_path / "gate1"
    resp = slam.invoke_with_response_stream(FunctionName=fn, Payload=json.dumps({"gate": str(gate)}).encode())
    assert resp["StatusCode"] == 200 and resp["ExecutedVersion"] == "$LATEST"
    events = resp["EventStream"]
    chunks, complete = [], None
    for ev in events:
        if "PayloadChunk" in ev:
            chunks.append(ev["PayloadChunk"]["Payload"])
            gate.touch()  # only now may the function go on
        elif "InvokeComplete" in ev:
            complete = ev["InvokeComplete"]
    assert b"".join(chunks) == b"hello world"
    assert chunks[0] == b"hello ", "the first chunk arrived on its own, before the function finished"
    assert complete is not None and "ErrorCode" not in complete


def test_a_mid_stream_error_is_reported_in_invoke_complete(slam, tmp_path):
    fn = node_fn(slam, STREAMER)
    gate = tmp_path / "gate2"
    gate.touch()
    resp = slam.invoke_with_response_stream(FunctionName=fn, LogType="Tail",
                                            Payload=json.dumps({"gate": str(gate), "fail": True}).encode())
    events = list(resp["EventStream"])
    data = b"".join(e["PayloadChunk"]["Payload"] for e in events if "PayloadChunk" in e)
    complete = [e["InvokeComplete"] for e in events if "InvokeComplete" in e][0]
    assert data == b"hello "
    assert complete["ErrorCode"] == "Error" and "broke mid-stream" in complete["ErrorDetails"]
    assert complete["LogResult"]


def test_non_streaming_function_and_buffered_invoke_of_a_streamer(slam, tmp_path):
    name = unique_name("plain")
    slam.create_function(FunctionName=name, Runtime="python3.11", Role=ROLE, Handler="app.handler",
                         Code={"ZipFile": make_zip({"app.py": "def handler(e, c):\n    return {'n': e['n']}\n"})})
    events = list(slam.invoke_with_response_stream(FunctionName=name, Payload=b'{"n": 7}')["EventStream"])
    assert json.loads(b"".join(e["PayloadChunk"]["Payload"] for e in events if "PayloadChunk" in e)) == {"n": 7}
    assert "InvokeComplete" in events[-1]
    # A plain Invoke of a streaming function gets the whole streamed body.
    fn = node_fn(slam, STREAMER)
    gate = tmp_path / "gate3"
    gate.touch()
    out = slam.invoke(FunctionName=fn, Payload=json.dumps({"gate": str(gate)}).encode())
    assert out["Payload"].read() == b"hello world" and "FunctionError" not in out


def test_custom_runtime_streams(slam):
    name = unique_name("customstream")
    boot = CUSTOM_BOOTSTRAP.replace("{python}", real_python())
    slam.create_function(FunctionName=name, Runtime="provided.al2023", Role=ROLE, Handler="x",
                         Code={"ZipFile": make_zip({"bootstrap": boot}, {"bootstrap": 0o755})})
    resp = slam.invoke_with_response_stream(FunctionName=name, Payload=json.dumps({"parts": ["a", "bc", "def"]}).encode())
    chunks = [e["PayloadChunk"]["Payload"] for e in resp["EventStream"] if "PayloadChunk" in e]
    assert b"".join(chunks) == b"abcdef"


def test_streaming_function_url(slam, tmp_path):
    fn = node_fn(slam, URL_STREAMER)
    url = slam.create_function_url_config(FunctionName=fn, AuthType="NONE", InvokeMode="RESPONSE_STREAM")["FunctionUrl"]
    gate = tmp_path / "gate4"
    u = urlparse(url)
    conn = http.client.HTTPConnection("127.0.0.1", u.port, timeout=30)
    conn.request("POST", "/", body=json.dumps({"gate": str(gate)}), headers={"Host": u.netloc, "Content-Type": "application/json"})
    r = conn.getresponse()
    assert r.status == 201
    assert r.getheader("x-streamed") == "yes" and r.getheader("set-cookie") == "s=1"
    first = r.read1(65536)
    assert first == b"hello "
    gate.touch()
    rest = r.read()
    assert rest == b"world"
