"""HTTP triggers: Function URLs (lambda client) and API Gateway HTTP APIs (apigatewayv2
client), called with a plain HTTP client through Nimbus' own listener, routed by Host (and
by the documented path fallback)."""

import base64
import http.client
import json
import re
from urllib.parse import urlparse

import pytest

from .conftest import ACCOUNT, REGION, ROLE, expect_client_error, make_client, make_zip, unique_name

ECHO = r'''
import base64, json
def handler(event, context):
    path = event.get("rawPath") or event.get("path") or ""
    if path.endswith("/fail"):
        raise RuntimeError("boom")
    if path.endswith("/binary"):
        return {"statusCode": 200, "headers": {"content-type": "image/png"},
                "body": base64.b64encode(bytes(range(256))).decode(), "isBase64Encoded": True}
    if path.endswith("/shortcut"):
        return {"plain": "json"}
    if path.endswith("/structured"):
        return {"statusCode": 201, "headers": {"x-custom": "yes", "content-type": "text/plain"},
                "cookies": ["a=1; Path=/", "b=2; Secure"], "body": "created"}
    if path.endswith("/sleep"):
        import time; time.sleep(3)
    return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": json.dumps(event)}
'''


def request(url, method="GET", path="/", body=None, headers=None, host=None):
    """One HTTP request to `url` (its host and port), optionally with another Host header."""
    u = urlparse(url)
    conn = http.client.HTTPConnection("127.0.0.1", u.port, timeout=30)
    h = dict(headers or {})
    h["Host"] = host or u.netloc
    conn.request(method, path, body=body, headers=h)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, r.headers, data


def create_echo(lam):
    name = unique_name("http")
    lam.create_function(FunctionName=name, Runtime="python3.11", Role=ROLE, Handler="app.handler",
                        Code={"ZipFile": make_zip({"app.py": ECHO})}, Timeout=10)
    return name


@pytest.fixture(scope="module")
def apigw(server):
    return make_client("apigatewayv2", server.url)


def test_function_url_crud(lam, lam_novalidate):
    fn = create_echo(lam)
    created = lam.create_function_url_config(FunctionName=fn, AuthType="NONE",
                                             Cors={"AllowOrigins": ["https://example.com"], "MaxAge": 60})
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert re.fullmatch(rf"http://[a-z0-9]{{32}}\.lambda-url\.{REGION}\.localhost:\d+/", created["FunctionUrl"])
    assert created["FunctionArn"] == f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{fn}"
    assert created["InvokeMode"] == "BUFFERED" and created["Cors"]["MaxAge"] == 60
    got = lam.get_function_url_config(FunctionName=fn)
    assert got["FunctionUrl"] == created["FunctionUrl"] and got["LastModifiedTime"]
    expect_client_error(lambda: lam.create_function_url_config(FunctionName=fn, AuthType="NONE"),
                        409, "ResourceConflictException")
    up = lam.update_function_url_config(FunctionName=fn, AuthType="AWS_IAM")
    assert up["AuthType"] == "AWS_IAM" and up["FunctionUrl"] == created["FunctionUrl"]
    v = lam.publish_version(FunctionName=fn)["Version"]
    expect_client_error(lambda: lam_novalidate.create_function_url_config(FunctionName=fn, Qualifier=v, AuthType="NONE"),
                        400, "ValidationException")
    lam.create_alias(FunctionName=fn, Name="live", FunctionVersion=v)
    alias_url = lam.create_function_url_config(FunctionName=fn, Qualifier="live", AuthType="NONE")
    assert alias_url["FunctionArn"].endswith(f":{fn}:live")
    urls = lam.list_function_url_configs(FunctionName=fn)["FunctionUrlConfigs"]
    assert sorted(u["FunctionUrl"] for u in urls) == sorted([created["FunctionUrl"], alias_url["FunctionUrl"]])
    lam.delete_function_url_config(FunctionName=fn)
    expect_client_error(lambda: lam.get_function_url_config(FunctionName=fn), 404, "ResourceNotFoundException")
    status, headers, _ = request(created["FunctionUrl"], path="/")
    assert status == 403 and headers["x-amzn-ErrorType"] == "AccessDeniedException", "a deleted URL answers nothing"
    expect_client_error(lambda: lam.create_function_url_config(FunctionName=unique_name("ghost"), AuthType="NONE"),
                        404, "ResourceNotFoundException")


def test_function_url_builds_the_v2_event_and_maps_responses(lam):
    fn = create_echo(lam)
    url = lam.create_function_url_config(FunctionName=fn, AuthType="NONE")["FunctionUrl"]
    url_id = urlparse(url).hostname.split(".")[0]
    status, headers, data = request(url, "POST", "/my/path?x=1&x=2&y=hello%20world", body=b'{"k": "v"}',
                                    headers={"Content-Type": "application/json", "Cookie": "c1=v1; c2=v2",
                                             "X-Multi": "one", "User-Agent": "nimbus-test"})
    assert status == 200, data
    assert headers["x-amzn-RequestId"]
    ev = json.loads(data)
    assert ev["version"] == "2.0" and ev["routeKey"] == "$default"
    assert ev["rawPath"] == "/my/path"
    assert ev["rawQueryString"] == "x=1&x=2&y=hello%20world"
    assert ev["queryStringParameters"] == {"x": "1,2", "y": "hello world"}
    assert ev["cookies"] == ["c1=v1", "c2=v2"]
    assert "cookie" not in ev["headers"] and ev["headers"]["x-multi"] == "one"
    assert ev["body"] == '{"k": "v"}' and ev["isBase64Encoded"] is False
    ctx = ev["requestContext"]
    assert ctx["http"]["method"] == "POST" and ctx["http"]["path"] == "/my/path"
    assert ctx["http"]["userAgent"] == "nimbus-test" and ctx["http"]["sourceIp"] == "127.0.0.1"
    assert ctx["apiId"] == url_id and ctx["domainPrefix"] == url_id
    assert ctx["accountId"] == ACCOUNT and ctx["stage"] == "$default"
    assert re.fullmatch(r"\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} \+0000", ctx["time"])

    # Binary in and out.
    status, headers, data = request(url, "POST", "/binary", body=bytes(range(256)),
                                    headers={"Content-Type": "application/octet-stream"})
    assert status == 200 and data == bytes(range(256)) and headers["content-type"] == "image/png"
    _, _, data = request(url, "POST", "/", body=b"\x00\xff", headers={"Content-Type": "application/octet-stream"})
    ev = json.loads(data)
    assert ev["isBase64Encoded"] is True and base64.b64decode(ev["body"]) == b"\x00\xff"

    # A plain JSON return is a 200 application/json.
    status, headers, data = request(url, path="/shortcut")
    assert status == 200 and headers["content-type"].startswith("application/json")
    assert json.loads(data) == {"plain": "json"}
    # Structured: status, headers, cookies as Set-Cookie.
    status, headers, data = request(url, path="/structured")
    assert (status, data, headers["x-custom"]) == (201, b"created", "yes")
    assert headers.get_all("set-cookie") == ["a=1; Path=/", "b=2; Secure"]
    # A function error is a 502.
    status, _, data = request(url, path="/fail")
    assert (status, data) == (502, b"Internal Server Error")
    # The path fallback reaches the same URL.
    port = urlparse(url).port
    status, _, data = request(f"http://127.0.0.1:{port}", path=f"/_nimbus/url/{url_id}/via/fallback?q=1")
    assert status == 200 and json.loads(data)["rawPath"] == "/via/fallback"


def test_function_url_cors_and_iam(lam):
    fn = create_echo(lam)
    url = lam.create_function_url_config(
        FunctionName=fn, AuthType="NONE",
        Cors={"AllowOrigins": ["https://app.example"], "AllowMethods": ["GET", "POST"],
              "AllowHeaders": ["x-token"], "ExposeHeaders": ["x-custom"], "MaxAge": 300})["FunctionUrl"]
    status, headers, _ = request(url, "OPTIONS", "/anything", headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-token"})
    assert status == 204
    assert headers["access-control-allow-origin"] == "https://app.example"
    assert "POST" in headers["access-control-allow-methods"]
    assert headers["access-control-max-age"] == "300"
    status, headers, _ = request(url, "GET", "/structured", headers={"Origin": "https://app.example"})
    assert status == 201 and headers["access-control-allow-origin"] == "https://app.example"
    status, headers, _ = request(url, "GET", "/structured", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in headers

    lam.update_function_url_config(FunctionName=fn, AuthType="AWS_IAM")
    status, _, _ = request(url, path="/")
    assert status == 403


def test_function_url_on_an_alias_runs_the_alias_version(lam):
    fn = create_echo(lam)
    v = lam.publish_version(FunctionName=fn)["Version"]
    lam.create_alias(FunctionName=fn, Name="prod", FunctionVersion=v)
    url = lam.create_function_url_config(FunctionName=fn, Qualifier="prod", AuthType="NONE")["FunctionUrl"]
    status, _, data = request(url, path="/x")
    assert status == 200 and json.loads(data)["rawPath"] == "/x"


def test_http_api_quick_create(lam, apigw):
    fn = create_echo(lam)
    api = apigw.create_api(Name=unique_name("quick"), ProtocolType="HTTP",
                           Target=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{fn}")
    assert re.fullmatch(rf"http://[a-z0-9]{{10}}\.execute-api\.{REGION}\.localhost:\d+", api["ApiEndpoint"])
    assert [s["StageName"] for s in apigw.get_stages(ApiId=api["ApiId"])["Items"]] == ["$default"]
    status, _, data = request(api["ApiEndpoint"], "PUT", "/any/path?a=b")
    assert status == 200, data
    ev = json.loads(data)
    assert ev["routeKey"] == "$default" and ev["rawPath"] == "/any/path"
    assert ev["requestContext"]["apiId"] == api["ApiId"]
    apigw.delete_api(ApiId=api["ApiId"])
    assert request(api["ApiEndpoint"], path="/")[0] == 404
    expect_client_error(lambda: apigw.get_api(ApiId=api["ApiId"]), 404, "NotFoundException")


def test_http_api_routes_follow_aws_precedence(lam, apigw):
    fn = create_echo(lam)
    api = apigw.create_api(Name=unique_name("routes"), ProtocolType="HTTP")
    api_id = api["ApiId"]
    integ = apigw.create_integration(ApiId=api_id, IntegrationType="AWS_PROXY", PayloadFormatVersion="2.0",
                                     IntegrationUri=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{fn}")
    target = f"integrations/{integ['IntegrationId']}"
    for key in ("GET /pets/{id}", "GET /pets/dog", "ANY /pets/{proxy+}"):
        apigw.create_route(ApiId=api_id, RouteKey=key, Target=target)
    apigw.create_stage(ApiId=api_id, StageName="$default", AutoDeploy=True)
    expect_client_error(lambda: apigw.create_route(ApiId=api_id, RouteKey="GET /pets/dog", Target=target),
                        409, "ConflictException")
    expect_client_error(lambda: apigw.create_route(ApiId=api_id, RouteKey="FETCH /x"), 400, "BadRequestException")

    def call(method, path):
        status, _, data = request(api["ApiEndpoint"], method, path)
        return status, (json.loads(data) if status == 200 else data)

    status, ev = call("GET", "/pets/dog")
    assert ev["routeKey"] == "GET /pets/dog" and ev.get("pathParameters") in (None, {})
    status, ev = call("GET", "/pets/cat")
    assert ev["routeKey"] == "GET /pets/{id}" and ev["pathParameters"] == {"id": "cat"}
    status, ev = call("POST", "/pets/cat/toys")
    assert ev["routeKey"] == "ANY /pets/{proxy+}" and ev["pathParameters"] == {"proxy": "cat/toys"}
    status, body = call("GET", "/other")
    assert status == 404 and json.loads(body) == {"message": "Not Found"}
    status, body = call("GET", "/pets/x/fail")
    assert status == 502
    routes = apigw.get_routes(ApiId=api_id)["Items"]
    assert sorted(r["RouteKey"] for r in routes) == ["ANY /pets/{proxy+}", "GET /pets/dog", "GET /pets/{id}"]
    # Routes can be changed and removed.
    dog = next(r for r in routes if r["RouteKey"] == "GET /pets/dog")
    apigw.update_route(ApiId=api_id, RouteId=dog["RouteId"], RouteKey="GET /dogs")
    assert call("GET", "/dogs")[1]["routeKey"] == "GET /dogs"
    apigw.delete_route(ApiId=api_id, RouteId=dog["RouteId"])
    assert call("GET", "/dogs")[0] == 404


def test_http_api_payload_v1_named_stage_and_timeout(lam, apigw):
    fn = create_echo(lam)
    api = apigw.create_api(Name=unique_name("v1"), ProtocolType="HTTP")
    api_id = api["ApiId"]
    integ = apigw.create_integration(ApiId=api_id, IntegrationType="AWS_PROXY", PayloadFormatVersion="1.0",
                                     IntegrationUri=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{fn}",
                                     TimeoutInMillis=1000)
    apigw.create_route(ApiId=api_id, RouteKey="ANY /items/{id}", Target=f"integrations/{integ['IntegrationId']}")
    apigw.create_stage(ApiId=api_id, StageName="prod", StageVariables={"env": "production"})
    status, _, data = request(api["ApiEndpoint"], "GET", "/prod/items/42?a=1&a=2")
    assert status == 200, data
    ev = json.loads(data)
    assert ev["version"] == "1.0" and ev["httpMethod"] == "GET"
    assert ev["resource"] == "/items/{id}" and ev["pathParameters"] == {"id": "42"}
    assert ev["multiValueQueryStringParameters"] == {"a": ["1", "2"]}
    assert ev["stageVariables"] == {"env": "production"}
    assert ev["requestContext"]["stage"] == "prod"
    assert request(api["ApiEndpoint"], "GET", "/nope/items/42")[0] == 404
    # The integration's timeout: 1 s against a 3 s function.
    assert request(api["ApiEndpoint"], "GET", "/prod/items/sleep")[0] == 503
    # Path fallback.
    port = urlparse(api["ApiEndpoint"]).port
    status, _, data = request(f"http://127.0.0.1:{port}", path=f"/_nimbus/api/{api_id}/prod/items/7")
    assert status == 200 and json.loads(data)["pathParameters"] == {"id": "7"}


def test_http_api_cors(lam, apigw):
    fn = create_echo(lam)
    api = apigw.create_api(Name=unique_name("cors"), ProtocolType="HTTP",
                           Target=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{fn}",
                           CorsConfiguration={"AllowOrigins": ["https://app.example"], "AllowMethods": ["GET"],
                                              "MaxAge": 120})
    assert apigw.get_api(ApiId=api["ApiId"])["CorsConfiguration"]["AllowOrigins"] == ["https://app.example"]
    status, headers, _ = request(api["ApiEndpoint"], "OPTIONS", "/x", headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "GET"})
    assert status == 204 and headers["access-control-allow-origin"] == "https://app.example"
    assert headers["access-control-max-age"] == "120"
    status, headers, _ = request(api["ApiEndpoint"], "GET", "/structured", headers={"Origin": "https://app.example"})
    assert status == 201 and headers["access-control-allow-origin"] == "https://app.example"
