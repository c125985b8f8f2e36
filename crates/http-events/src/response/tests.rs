use base64::Engine;
use serde_json::json;

use super::{response_v1, response_v2, HttpResponse, ResponseError};

fn v2(output: &str) -> HttpResponse {
    response_v2(output.as_bytes()).unwrap_or_else(|e| panic!("{output} should map: {e}"))
}

fn v1(output: &str) -> HttpResponse {
    response_v1(output.as_bytes()).unwrap_or_else(|e| panic!("{output} should map: {e}"))
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

fn json_200(body: &[u8]) -> HttpResponse {
    HttpResponse {
        status: 200,
        headers: pairs(&[("content-type", "application/json")]),
        body: body.to_vec(),
    }
}

// ---------------------------------------------------------------------------------------------
// 2.0: the shortcut
// ---------------------------------------------------------------------------------------------

#[test]
fn v2_string_is_sent_without_its_quotes() {
    // AWS' documented example, and LocalStack's AWS-validated `"hello"` → `hello`.
    assert_eq!(v2(r#""Hello, world!""#), json_200(b"Hello, world!"));
    assert_eq!(v2(r#""hello""#), json_200(b"hello"));
    assert_eq!(
        v2(r#""a \"quoted\" \u00e9""#),
        json_200("a \"quoted\" é".as_bytes())
    );
}

#[test]
fn v2_object_without_status_code_is_sent_as_returned() {
    let output = "{\n  \"message\": \"Hello, world!\"\n}";
    assert_eq!(v2(output), json_200(output.as_bytes()));
    // Even with members that look like a response.
    let output = r#"{"body": "x", "headers": {"a": "b"}, "isBase64Encoded": true}"#;
    assert_eq!(v2(output), json_200(output.as_bytes()));
}

#[test]
fn v2_other_json_values_are_sent_as_returned() {
    for output in [
        "3",
        "3.1",
        "true",
        "false",
        "null",
        r#"["hello",3,true]"#,
        "[]",
        " 42 \n",
    ] {
        assert_eq!(v2(output), json_200(output.as_bytes()), "{output}");
    }
}

#[test]
fn v2_output_that_is_not_json_is_an_error() {
    for output in [
        "",
        "hello",
        "{",
        "{\"statusCode\": 200",
        "nul",
        "\"unterminated",
    ] {
        assert_eq!(
            response_v2(output.as_bytes()),
            Err(ResponseError::InvalidJson),
            "{output:?}"
        );
    }
    assert_eq!(response_v2(&[0xff, 0xfe]), Err(ResponseError::InvalidJson));
}

// ---------------------------------------------------------------------------------------------
// 2.0: structured responses
// ---------------------------------------------------------------------------------------------

#[test]
fn v2_documented_structured_response_with_cookies() {
    let output = r#"{
        "statusCode": 201,
        "headers": {"Content-Type": "application/json", "My-Custom-Header": "Custom Value"},
        "body": "{ \"message\": \"Hello, world!\" }",
        "cookies": ["Cookie_1=Value1; Expires=21 Oct 2021 07:48 GMT", "Cookie_2=Value2; Max-Age=78000"],
        "isBase64Encoded": false
    }"#;
    assert_eq!(
        v2(output),
        HttpResponse {
            status: 201,
            headers: pairs(&[
                ("Content-Type", "application/json"),
                ("My-Custom-Header", "Custom Value"),
                (
                    "set-cookie",
                    "Cookie_1=Value1; Expires=21 Oct 2021 07:48 GMT"
                ),
                ("set-cookie", "Cookie_2=Value2; Max-Age=78000"),
            ]),
            body: br#"{ "message": "Hello, world!" }"#.to_vec(),
        }
    );
}

#[test]
fn v2_structured_response_defaults_to_json_content_type() {
    // LocalStack's AWS-validated `{"statusCode": 200, "body": "body123"}`.
    assert_eq!(
        v2(r#"{"statusCode": 200, "body": "body123"}"#),
        json_200(b"body123")
    );
    let r =
        v2(r#"{"statusCode": 404, "headers": {"content-type": "text/html"}, "body": "<p>no</p>"}"#);
    assert_eq!(r.headers, pairs(&[("content-type", "text/html")]));
    assert_eq!(r.status, 404);
}

#[test]
fn v2_status_code_may_be_a_numeric_string() {
    // LocalStack's AWS-validated teapot.
    let r = v2(r#"{"statusCode": "418", "body": "i'm a teapot", "isBase64Encoded": false}"#);
    assert_eq!(r.status, 418);
    assert_eq!(r.body, b"i'm a teapot");
    assert_eq!(v2(r#"{"statusCode": 204.0}"#).status, 204);
}

#[test]
fn v2_invalid_status_codes_are_errors() {
    for status in [
        "null",
        "0",
        "99",
        "199",
        "600",
        "1000",
        "-200",
        "200.5",
        "\"abc\"",
        "\"\"",
        "\" 200\"",
        "true",
        "[200]",
        "99999999999999999999",
    ] {
        let output = format!(r#"{{"statusCode": {status}}}"#);
        assert!(
            matches!(
                response_v2(output.as_bytes()),
                Err(ResponseError::InvalidStatusCode(_))
            ),
            "{status} should be rejected"
        );
    }
}

#[test]
fn v2_missing_body_is_empty() {
    let r = v2(r#"{"statusCode": 302, "headers": {"Location": "/next"}}"#);
    assert_eq!(r.status, 302);
    assert_eq!(r.body, b"");
    assert_eq!(r.header("location"), Some("/next"));
    assert_eq!(v2(r#"{"statusCode": 200, "body": null}"#).body, b"");
}

#[test]
fn v2_non_string_body_is_sent_as_json() {
    // LocalStack's AWS-validated echo server returns `"body": {…}`.
    let r = v2(
        r#"{"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": {"args": {}, "n": [1, 2]}}"#,
    );
    assert_eq!(r.body, br#"{"args":{},"n":[1,2]}"#);
    assert_eq!(v2(r#"{"statusCode": 200, "body": 12}"#).body, b"12");
}

#[test]
fn v2_base64_body_round_trips() {
    let bytes: Vec<u8> = (0..=255).collect();
    let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
    let output = json!({"statusCode": 200, "headers": {"content-type": "image/png"}, "body": encoded, "isBase64Encoded": true});
    let r = response_v2(output.to_string().as_bytes()).expect("maps");
    assert_eq!(r.body, bytes);
    assert_eq!(r.header("Content-Type"), Some("image/png"));

    // Without the flag the base64 text is the body.
    let output = json!({"statusCode": 200, "body": encoded, "isBase64Encoded": false});
    assert_eq!(
        response_v2(output.to_string().as_bytes())
            .expect("maps")
            .body,
        encoded.as_bytes()
    );
    // Only `true` counts.
    let output = json!({"statusCode": 200, "body": "aGk=", "isBase64Encoded": "true"});
    assert_eq!(
        response_v2(output.to_string().as_bytes())
            .expect("maps")
            .body,
        b"aGk="
    );
}

#[test]
fn v2_invalid_base64_is_an_error() {
    let output = r#"{"statusCode": 200, "body": "not base64!", "isBase64Encoded": true}"#;
    assert_eq!(
        response_v2(output.as_bytes()),
        Err(ResponseError::InvalidBase64)
    );
}

#[test]
fn v2_cookies() {
    let r = v2(
        r#"{"statusCode": 200, "cookies": ["a=1", "b=2; Path=/; HttpOnly"], "headers": {"Set-Cookie": "c=3"}}"#,
    );
    assert_eq!(
        r.header_values("set-cookie").collect::<Vec<_>>(),
        ["c=3", "a=1", "b=2; Path=/; HttpOnly"]
    );
    assert!(v2(r#"{"statusCode": 200, "cookies": []}"#)
        .header("set-cookie")
        .is_none());
    assert!(v2(r#"{"statusCode": 200, "cookies": null}"#)
        .header("set-cookie")
        .is_none());
    for bad in [r#""a=1""#, r#"[1]"#, r#"["a=1", null]"#, r#"{"a": "1"}"#] {
        let output = format!(r#"{{"statusCode": 200, "cookies": {bad}}}"#);
        assert_eq!(
            response_v2(output.as_bytes()),
            Err(ResponseError::InvalidCookies),
            "{bad}"
        );
    }
    let output = r#"{"statusCode": 200, "cookies": ["a=1\r\nx: y"]}"#;
    assert!(matches!(
        response_v2(output.as_bytes()),
        Err(ResponseError::InvalidHeader { .. })
    ));
}

#[test]
fn v2_header_values() {
    let r = v2(
        r#"{"statusCode": 200, "headers": {"X-Count": 12, "X-Flag": true, "X-None": null, "X-Text": "é"}}"#,
    );
    assert_eq!(r.header("x-count"), Some("12"));
    assert_eq!(r.header("x-flag"), Some("true"));
    assert_eq!(r.header("x-none"), None);
    assert_eq!(r.header("x-text"), Some("é"));
    assert_eq!(v2(r#"{"statusCode": 200, "headers": null}"#), json_200(b""));
}

#[test]
fn v2_invalid_headers_are_errors() {
    for headers in [
        r#"{"X-List": ["a"]}"#,
        r#"{"X-Obj": {"a": 1}}"#,
        r#"{"Bad Name": "x"}"#,
        r#"{"": "x"}"#,
        r#"{"X-Split": "a\r\nInjected: yes"}"#,
        r#"{"X-Nul": "a\u0000b"}"#,
    ] {
        let output = format!(r#"{{"statusCode": 200, "headers": {headers}}}"#);
        assert!(
            matches!(
                response_v2(output.as_bytes()),
                Err(ResponseError::InvalidHeader { .. })
            ),
            "{headers} should be rejected"
        );
    }
    for headers in [r#""x""#, "[]", "3"] {
        let output = format!(r#"{{"statusCode": 200, "headers": {headers}}}"#);
        assert_eq!(
            response_v2(output.as_bytes()),
            Err(ResponseError::InvalidHeaders("headers")),
            "{headers}"
        );
    }
}

#[test]
fn v2_ignores_multi_value_headers() {
    let r = v2(r#"{"statusCode": 200, "multiValueHeaders": {"X-A": ["1", "2"]}, "body": ""}"#);
    assert_eq!(r, json_200(b""));
}

// ---------------------------------------------------------------------------------------------
// 1.0
// ---------------------------------------------------------------------------------------------

#[test]
fn v1_documented_response_with_multi_value_headers() {
    let r = v1(r#"{
        "isBase64Encoded": false,
        "statusCode": 200,
        "headers": {"Content-Type": "text/plain", "X-Single": "one", "X-Both": "from-headers"},
        "multiValueHeaders": {"X-Multi": ["a", "b"], "x-both": ["m1", "m2"]},
        "body": "Hello from Lambda!"
    }"#);
    assert_eq!(
        r,
        HttpResponse {
            status: 200,
            headers: pairs(&[
                ("Content-Type", "text/plain"),
                ("X-Single", "one"),
                ("X-Multi", "a"),
                ("X-Multi", "b"),
                ("x-both", "m1"),
                ("x-both", "m2"),
            ]),
            body: b"Hello from Lambda!".to_vec(),
        }
    );
}

#[test]
fn v1_requires_an_object_with_status_code() {
    assert_eq!(
        response_v1(br#""Hello from Lambda!""#),
        Err(ResponseError::NotAnObject)
    );
    assert_eq!(response_v1(b"[1]"), Err(ResponseError::NotAnObject));
    assert_eq!(
        response_v1(br#"{"message": "hi"}"#),
        Err(ResponseError::MissingStatusCode)
    );
    assert_eq!(response_v1(b"nope"), Err(ResponseError::InvalidJson));
    assert!(matches!(
        response_v1(br#"{"statusCode": "x"}"#),
        Err(ResponseError::InvalidStatusCode(_))
    ));
}

#[test]
fn v1_body_must_be_a_string() {
    assert_eq!(
        response_v1(br#"{"statusCode": 200, "body": {"a": 1}}"#),
        Err(ResponseError::InvalidBody)
    );
    assert_eq!(
        v1(r#"{"statusCode": 204}"#),
        HttpResponse {
            status: 204,
            headers: pairs(&[("content-type", "application/json")]),
            body: Vec::new()
        }
    );
}

#[test]
fn v1_base64_body_and_ignored_cookies() {
    let r =
        v1(r#"{"statusCode": 200, "body": "AAEC", "isBase64Encoded": true, "cookies": ["a=1"]}"#);
    assert_eq!(r.body, [0, 1, 2]);
    assert!(r.header("set-cookie").is_none());
}

#[test]
fn v1_invalid_multi_value_headers_are_errors() {
    assert_eq!(
        response_v1(br#"{"statusCode": 200, "multiValueHeaders": "x"}"#),
        Err(ResponseError::InvalidHeaders("multiValueHeaders"))
    );
    assert!(matches!(
        response_v1(br#"{"statusCode": 200, "multiValueHeaders": {"X-A": "not a list"}}"#),
        Err(ResponseError::InvalidHeader { .. })
    ));
    let r =
        v1(r#"{"statusCode": 200, "multiValueHeaders": {"X-A": null, "X-B": [1, null, "two"]}}"#);
    assert_eq!(r.header_values("x-b").collect::<Vec<_>>(), ["1", "two"]);
    assert!(r.header("x-a").is_none());
}

#[test]
fn errors_read_as_short_reasons() {
    assert_eq!(
        ResponseError::InvalidJson.to_string(),
        "the function's response is not valid JSON"
    );
    assert_eq!(
        ResponseError::InvalidStatusCode("600".into()).to_string(),
        "statusCode 600 is not a valid HTTP status"
    );
    assert_eq!(
        ResponseError::InvalidHeaders("headers").to_string(),
        "headers must be an object"
    );
}
