use std::collections::BTreeMap;

use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{json, Value};

use super::{event_v1, event_v2, is_binary_content_type, HttpRequest, RequestContext};

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        let name = HeaderName::from_bytes(name.as_bytes()).expect("test header name");
        map.append(
            name,
            HeaderValue::from_str(value).expect("test header value"),
        );
    }
    map
}

fn request<'a>(
    method: &'a str,
    path: &'a str,
    query: &'a str,
    headers: &'a HeaderMap,
    body: &'a [u8],
) -> HttpRequest<'a> {
    HttpRequest {
        method,
        raw_path: path,
        raw_query: query,
        headers,
        body,
        source_ip: "123.123.123.123",
        protocol: "HTTP/1.1",
        time_ms: 1_583_348_638_390,
        request_id: "id",
    }
}

/// A Function URL's context.
fn url_context() -> RequestContext {
    RequestContext {
        account_id: "123456789012".into(),
        api_id: "abcdefghijklmnopqrstuvwxyz012345".into(),
        domain_name: "abcdefghijklmnopqrstuvwxyz012345.lambda-url.us-west-2.localhost".into(),
        domain_prefix: "abcdefghijklmnopqrstuvwxyz012345".into(),
        stage: "$default".into(),
        route_key: "$default".into(),
        resource_path: "/my/path".into(),
        path_parameters: None,
        stage_variables: None,
        authorizer: None,
    }
}

/// An HTTP API route's context, with a stage, path parameters, stage variables and a JWT
/// authorizer.
fn api_context() -> RequestContext {
    RequestContext {
        account_id: "123456789012".into(),
        api_id: "a1b2c3d4e5".into(),
        domain_name: "a1b2c3d4e5.execute-api.us-east-1.localhost".into(),
        domain_prefix: "a1b2c3d4e5".into(),
        stage: "prod".into(),
        route_key: "POST /pets/{id}/photo".into(),
        resource_path: "/pets/{id}/photo".into(),
        path_parameters: Some(BTreeMap::from([("id".to_owned(), "7".to_owned())])),
        stage_variables: Some(BTreeMap::from([(
            "lambdaAlias".to_owned(),
            "live".to_owned(),
        )])),
        authorizer: Some(json!({"jwt": {"claims": {"sub": "u-1"}, "scopes": ["pets:write"]}})),
    }
}

/// The GET of AWS' documented Function URL request: repeated headers and query parameters, two
/// cookies.
fn documented_get_headers() -> HeaderMap {
    headers(&[
        ("Header1", "value1"),
        ("Header2", "value1"),
        ("Header2", "value2"),
        ("Cookie", "cookie1; cookie2"),
        ("User-Agent", "agent"),
    ])
}

const DOCUMENTED_QUERY: &str = "parameter1=value1&parameter1=value2&parameter2=value";

// ---------------------------------------------------------------------------------------------
// Payload format 2.0
// ---------------------------------------------------------------------------------------------

#[test]
fn v2_get_with_query_cookies_and_headers_matches_aws_documented_event() {
    let h = documented_get_headers();
    let event = event_v2(
        &request("GET", "/my/path", DOCUMENTED_QUERY, &h, b""),
        &url_context(),
    );
    assert_eq!(
        event,
        json!({
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": "/my/path",
            "rawQueryString": "parameter1=value1&parameter1=value2&parameter2=value",
            "cookies": ["cookie1", "cookie2"],
            "headers": {"header1": "value1", "header2": "value1,value2", "user-agent": "agent"},
            "queryStringParameters": {"parameter1": "value1,value2", "parameter2": "value"},
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "abcdefghijklmnopqrstuvwxyz012345",
                "domainName": "abcdefghijklmnopqrstuvwxyz012345.lambda-url.us-west-2.localhost",
                "domainPrefix": "abcdefghijklmnopqrstuvwxyz012345",
                "http": {
                    "method": "GET",
                    "path": "/my/path",
                    "protocol": "HTTP/1.1",
                    "sourceIp": "123.123.123.123",
                    "userAgent": "agent"
                },
                "requestId": "id",
                "routeKey": "$default",
                "stage": "$default",
                "time": "04/Mar/2020:19:03:58 +0000",
                "timeEpoch": 1_583_348_638_390_i64
            },
            "isBase64Encoded": false
        })
    );
}

#[test]
fn v2_binary_post_to_an_api_route_matches_the_expected_event() {
    let h = headers(&[
        ("content-type", "application/octet-stream"),
        ("content-length", "4"),
        ("host", "a1b2c3d4e5.execute-api.us-east-1.localhost"),
        ("user-agent", "curl/8.5.0"),
        ("x-forwarded-for", "123.123.123.123"),
    ]);
    let body = [0x00, 0xff, 0x80, 0x0a];
    let event = event_v2(
        &request("POST", "/prod/pets/7/photo", "", &h, &body),
        &api_context(),
    );
    assert_eq!(
        event,
        json!({
            "version": "2.0",
            "routeKey": "POST /pets/{id}/photo",
            "rawPath": "/prod/pets/7/photo",
            "rawQueryString": "",
            "headers": {
                "content-length": "4",
                "content-type": "application/octet-stream",
                "host": "a1b2c3d4e5.execute-api.us-east-1.localhost",
                "user-agent": "curl/8.5.0",
                "x-forwarded-for": "123.123.123.123"
            },
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "a1b2c3d4e5",
                "authorizer": {"jwt": {"claims": {"sub": "u-1"}, "scopes": ["pets:write"]}},
                "domainName": "a1b2c3d4e5.execute-api.us-east-1.localhost",
                "domainPrefix": "a1b2c3d4e5",
                "http": {
                    "method": "POST",
                    "path": "/prod/pets/7/photo",
                    "protocol": "HTTP/1.1",
                    "sourceIp": "123.123.123.123",
                    "userAgent": "curl/8.5.0"
                },
                "requestId": "id",
                "routeKey": "POST /pets/{id}/photo",
                "stage": "prod",
                "time": "04/Mar/2020:19:03:58 +0000",
                "timeEpoch": 1_583_348_638_390_i64
            },
            "body": "AP+ACg==",
            "pathParameters": {"id": "7"},
            "isBase64Encoded": true,
            "stageVariables": {"lambdaAlias": "live"}
        })
    );
}

#[test]
fn v2_text_body_travels_as_text() {
    let h = headers(&[("Content-Type", "application/json; charset=utf-8")]);
    let event = event_v2(
        &request("POST", "/", "", &h, br#"{"example": "test"}"#),
        &url_context(),
    );
    assert_eq!(event["body"], r#"{"example": "test"}"#);
    assert_eq!(event["isBase64Encoded"], false);

    let h = headers(&[("content-type", "text/plain")]);
    let event = event_v2(
        &request("POST", "/", "", &h, "Grüße".as_bytes()),
        &url_context(),
    );
    assert_eq!(event["body"], "Grüße");
    assert_eq!(event["isBase64Encoded"], false);
}

#[test]
fn v2_form_and_untyped_bodies_travel_base64() {
    let h = headers(&[("content-type", "application/x-www-form-urlencoded")]);
    let event = event_v2(&request("POST", "/", "", &h, b"a=1&b=2"), &url_context());
    assert_eq!(event["body"], "YT0xJmI9Mg==");
    assert_eq!(event["isBase64Encoded"], true);

    let h = HeaderMap::new();
    let event = event_v2(&request("POST", "/", "", &h, b"hello"), &url_context());
    assert_eq!(event["body"], "aGVsbG8=");
    assert_eq!(event["isBase64Encoded"], true);
}

#[test]
fn v2_text_content_type_with_invalid_utf8_travels_base64() {
    let h = headers(&[("content-type", "text/plain")]);
    let event = event_v2(&request("POST", "/", "", &h, &[0x66, 0xff]), &url_context());
    assert_eq!(event["body"], "Zv8=");
    assert_eq!(event["isBase64Encoded"], true);
}

#[test]
fn v2_empty_body_is_left_out() {
    let h = headers(&[("content-type", "application/octet-stream")]);
    let event = event_v2(&request("POST", "/", "", &h, b""), &url_context());
    assert!(event.get("body").is_none());
    assert_eq!(event["isBase64Encoded"], false);
}

#[test]
fn v2_cookie_headers_become_cookies_and_leave_headers() {
    let h = headers(&[
        ("cookie", "a=1;b=2"),
        ("cookie", " c=3 ;  ; d=\"x y\""),
        ("accept", "*/*"),
    ]);
    let event = event_v2(&request("GET", "/", "", &h, b""), &url_context());
    assert_eq!(event["cookies"], json!(["a=1", "b=2", "c=3", "d=\"x y\""]));
    assert_eq!(event["headers"], json!({"accept": "*/*"}));
}

#[test]
fn v2_members_with_nothing_in_them_are_left_out() {
    let h = HeaderMap::new();
    let ctx = RequestContext {
        path_parameters: Some(BTreeMap::new()),
        stage_variables: Some(BTreeMap::new()),
        ..url_context()
    };
    let event = event_v2(&request("GET", "/", "", &h, b""), &ctx);
    let object = event.as_object().expect("an object");
    for absent in [
        "cookies",
        "queryStringParameters",
        "pathParameters",
        "stageVariables",
        "body",
    ] {
        assert!(!object.contains_key(absent), "{absent} should be left out");
    }
    assert_eq!(event["headers"], json!({}));
    assert!(event["requestContext"].get("authorizer").is_none());
    assert_eq!(event["requestContext"]["http"]["userAgent"], "");
}

#[test]
fn v2_query_parameters_are_decoded() {
    let h = HeaderMap::new();
    let query = "q=a%20b&sort=-+createdAt&email=x%2By%40z.com&flag&=empty&&multi=foo&multi=%2Fbar";
    let event = event_v2(&request("GET", "/", query, &h, b""), &url_context());
    assert_eq!(event["rawQueryString"], query);
    assert_eq!(
        event["queryStringParameters"],
        json!({
            "": "empty",
            "email": "x+y@z.com",
            "flag": "",
            "multi": "foo,/bar",
            "q": "a b",
            "sort": "- createdAt"
        })
    );
}

#[test]
fn v2_raw_path_is_passed_through_encoded() {
    let h = HeaderMap::new();
    let event = event_v2(
        &request("GET", "/pa2%Fth/a%20b", "", &h, b""),
        &url_context(),
    );
    assert_eq!(event["rawPath"], "/pa2%Fth/a%20b");
    assert_eq!(event["requestContext"]["http"]["path"], "/pa2%Fth/a%20b");
}

#[test]
fn header_values_that_are_not_utf8_are_replaced() {
    let mut h = HeaderMap::new();
    h.insert(
        "x-bin",
        HeaderValue::from_bytes(b"caf\xe9").expect("obs-text is a valid value"),
    );
    let event = event_v2(&request("GET", "/", "", &h, b""), &url_context());
    assert_eq!(event["headers"]["x-bin"], "caf\u{fffd}");
    let event = event_v1(&request("GET", "/", "", &h, b""), &url_context());
    assert_eq!(event["multiValueHeaders"]["x-bin"], json!(["caf\u{fffd}"]));
}

#[test]
fn request_time_uses_the_access_log_format() {
    let h = HeaderMap::new();
    let at = |time_ms| {
        let mut r = request("GET", "/", "", &h, b"");
        r.time_ms = time_ms;
        event_v2(&r, &url_context())["requestContext"]["time"].clone()
    };
    assert_eq!(at(0), "01/Jan/1970:00:00:00 +0000");
    assert_eq!(at(1_631_055_022_677), "07/Sep/2021:22:50:22 +0000");
    assert_eq!(at(1_583_348_638_390), "04/Mar/2020:19:03:58 +0000");
    // Out of range: no panic, the epoch's start.
    assert_eq!(at(i64::MAX), "01/Jan/1970:00:00:00 +0000");
    assert_eq!(at(i64::MIN), "01/Jan/1970:00:00:00 +0000");
}

// ---------------------------------------------------------------------------------------------
// Payload format 1.0
// ---------------------------------------------------------------------------------------------

/// The 1.0 context of an HTTP API `$default` route on the `$default` stage.
fn v1_context() -> RequestContext {
    RequestContext {
        account_id: "123456789012".into(),
        api_id: "id".into(),
        domain_name: "id.execute-api.us-east-1.localhost".into(),
        domain_prefix: "id".into(),
        stage: "$default".into(),
        route_key: "$default".into(),
        resource_path: "/my/path".into(),
        path_parameters: None,
        stage_variables: None,
        authorizer: None,
    }
}

#[test]
fn v1_get_with_multi_value_headers_and_query_matches_aws_documented_event() {
    let h = headers(&[
        ("Header1", "value1"),
        ("Header2", "value1"),
        ("Header2", "value2"),
        ("Content-Type", "text/plain"),
        ("User-Agent", "user-agent"),
    ]);
    let mut r = request(
        "GET",
        "/my/path",
        DOCUMENTED_QUERY,
        &h,
        b"Hello from Lambda!",
    );
    r.time_ms = 1_583_349_317_135;
    r.source_ip = "IP";
    r.request_id = "id=";
    let event = event_v1(&r, &v1_context());
    assert_eq!(
        event,
        json!({
            "version": "1.0",
            "resource": "/my/path",
            "path": "/my/path",
            "httpMethod": "GET",
            "headers": {
                "content-type": "text/plain",
                "header1": "value1",
                "header2": "value2",
                "user-agent": "user-agent"
            },
            "multiValueHeaders": {
                "content-type": ["text/plain"],
                "header1": ["value1"],
                "header2": ["value1", "value2"],
                "user-agent": ["user-agent"]
            },
            "queryStringParameters": {"parameter1": "value1", "parameter2": "value"},
            "multiValueQueryStringParameters": {
                "parameter1": ["value1", "value2"],
                "parameter2": ["value"]
            },
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "id",
                "domainName": "id.execute-api.us-east-1.localhost",
                "domainPrefix": "id",
                "extendedRequestId": "id=",
                "httpMethod": "GET",
                "identity": {
                    "accessKey": null,
                    "accountId": null,
                    "caller": null,
                    "cognitoAuthenticationProvider": null,
                    "cognitoAuthenticationType": null,
                    "cognitoIdentityId": null,
                    "cognitoIdentityPoolId": null,
                    "principalOrgId": null,
                    "sourceIp": "IP",
                    "user": null,
                    "userAgent": "user-agent",
                    "userArn": null
                },
                "path": "/my/path",
                "protocol": "HTTP/1.1",
                "requestId": "id=",
                "requestTime": "04/Mar/2020:19:15:17 +0000",
                "requestTimeEpoch": 1_583_349_317_135_i64,
                "resourceId": null,
                "resourcePath": "/my/path",
                "stage": "$default"
            },
            "pathParameters": null,
            "stageVariables": null,
            "body": "Hello from Lambda!",
            "isBase64Encoded": false
        })
    );
}

#[test]
fn v1_binary_post_with_parameters_and_stage_variables() {
    let h = headers(&[("content-type", "image/png"), ("cookie", "a=1; b=2")]);
    let event = event_v1(
        &request(
            "POST",
            "/prod/pets/7/photo",
            "",
            &h,
            &[0x89, 0x50, 0x4e, 0x47],
        ),
        &api_context(),
    );
    assert_eq!(event["resource"], "/pets/{id}/photo");
    assert_eq!(event["path"], "/prod/pets/7/photo");
    assert_eq!(event["httpMethod"], "POST");
    assert_eq!(event["body"], "iVBORw==");
    assert_eq!(event["isBase64Encoded"], true);
    assert_eq!(event["pathParameters"], json!({"id": "7"}));
    assert_eq!(event["stageVariables"], json!({"lambdaAlias": "live"}));
    // 1.0 has no `cookies`: the Cookie header stays a header.
    assert!(event.get("cookies").is_none());
    assert_eq!(event["headers"]["cookie"], "a=1; b=2");
    assert_eq!(event["queryStringParameters"], Value::Null);
    assert_eq!(event["multiValueQueryStringParameters"], Value::Null);
    assert_eq!(
        event["requestContext"]["authorizer"],
        json!({"jwt": {"claims": {"sub": "u-1"}, "scopes": ["pets:write"]}})
    );
    assert_eq!(event["requestContext"]["resourcePath"], "/pets/{id}/photo");
    assert_eq!(event["requestContext"]["stage"], "prod");
}

#[test]
fn v1_members_with_nothing_in_them_are_null() {
    let h = HeaderMap::new();
    let event = event_v1(&request("GET", "/", "", &h, b""), &v1_context());
    for null in [
        "headers",
        "multiValueHeaders",
        "queryStringParameters",
        "multiValueQueryStringParameters",
        "pathParameters",
        "stageVariables",
        "body",
    ] {
        assert_eq!(event[null], Value::Null, "{null} should be null");
    }
    assert_eq!(event["isBase64Encoded"], false);
    assert!(event["requestContext"].get("authorizer").is_none());
}

#[test]
fn v1_text_body_and_decoded_query() {
    let h = headers(&[("content-type", "application/xml")]);
    let event = event_v1(
        &request("PUT", "/x", "a=1+1&a=%32", &h, b"<a/>"),
        &v1_context(),
    );
    assert_eq!(event["body"], "<a/>");
    assert_eq!(event["isBase64Encoded"], false);
    assert_eq!(event["queryStringParameters"], json!({"a": "1 1"}));
    assert_eq!(
        event["multiValueQueryStringParameters"],
        json!({"a": ["1 1", "2"]})
    );
}

// ---------------------------------------------------------------------------------------------
// Binary content types
// ---------------------------------------------------------------------------------------------

#[test]
fn text_content_types() {
    for text in [
        "text/plain",
        "text/html; charset=utf-8",
        "TEXT/CSV",
        "text/event-stream",
        "application/json",
        "Application/JSON ; charset=UTF-8",
        "application/xml",
        "application/javascript",
        " application/json",
    ] {
        assert!(!is_binary_content_type(Some(text)), "{text} should be text");
    }
}

#[test]
fn binary_content_types() {
    for binary in [
        "application/octet-stream",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "image/png",
        "application/pdf",
        "application/vnd.api+json",
        "application/problem+xml",
        "application/jsonx",
        "text/",
        "text",
        "",
        ";",
    ] {
        assert!(
            is_binary_content_type(Some(binary)),
            "{binary:?} should be binary"
        );
    }
    assert!(
        is_binary_content_type(None),
        "a missing content type is binary"
    );
}
