use http::{HeaderMap, HeaderName, HeaderValue};

use super::{apply_cors, preflight, Cors};
use crate::response::HttpResponse;

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

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn example_cors() -> Cors {
    Cors {
        allow_origins: strings(&["https://www.example.com", "http://localhost:60905"]),
        allow_methods: strings(&["GET", "POST", "DELETE"]),
        allow_headers: strings(&["content-type", "x-custom-header"]),
        expose_headers: strings(&["date", "x-api-id"]),
        max_age: Some(300),
        allow_credentials: false,
    }
}

fn preflight_from(origin: &str) -> HeaderMap {
    headers(&[
        ("Origin", origin),
        ("Access-Control-Request-Method", "POST"),
        ("Access-Control-Request-Headers", "content-type"),
    ])
}

fn no_content(headers: &[(&str, &str)]) -> HttpResponse {
    HttpResponse {
        status: 204,
        headers: pairs(headers),
        body: Vec::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// Preflight
// ---------------------------------------------------------------------------------------------

#[test]
fn preflight_from_an_allowed_origin_gets_the_configured_headers() {
    let r = preflight(
        &example_cors(),
        "OPTIONS",
        &preflight_from("https://www.example.com"),
    );
    assert_eq!(
        r,
        Some(no_content(&[
            (
                "access-control-allow-headers",
                "content-type,x-custom-header"
            ),
            ("access-control-allow-methods", "GET,POST,DELETE"),
            ("access-control-allow-origin", "https://www.example.com"),
            ("access-control-max-age", "300"),
            ("vary", "Origin"),
        ]))
    );
}

#[test]
fn preflight_from_another_origin_gets_no_cors_headers() {
    let r = preflight(
        &example_cors(),
        "OPTIONS",
        &preflight_from("https://evil.example"),
    );
    assert_eq!(r, Some(no_content(&[])));
    // A prefix or a differing port is another origin.
    for origin in [
        "https://www.example.com.evil",
        "https://www.example.co",
        "http://localhost:60906",
        "http://localhost",
    ] {
        assert_eq!(
            preflight(&example_cors(), "OPTIONS", &preflight_from(origin)),
            Some(no_content(&[])),
            "{origin}"
        );
    }
}

#[test]
fn only_options_with_origin_and_request_method_is_a_preflight() {
    let cors = example_cors();
    assert_eq!(
        preflight(&cors, "GET", &preflight_from("https://www.example.com")),
        None
    );
    assert_eq!(
        preflight(&cors, "options", &preflight_from("https://www.example.com")),
        None
    );
    let no_method = headers(&[("Origin", "https://www.example.com")]);
    assert_eq!(preflight(&cors, "OPTIONS", &no_method), None);
    let no_origin = headers(&[("Access-Control-Request-Method", "GET")]);
    assert_eq!(preflight(&cors, "OPTIONS", &no_origin), None);
    assert_eq!(preflight(&cors, "OPTIONS", &HeaderMap::new()), None);
}

#[test]
fn preflight_with_wildcard_origin_answers_star() {
    let cors = Cors {
        allow_origins: strings(&["*"]),
        allow_methods: strings(&["*"]),
        ..Cors::default()
    };
    let r = preflight(
        &cors,
        "OPTIONS",
        &preflight_from("https://anything.example"),
    );
    assert_eq!(
        r,
        Some(no_content(&[
            ("access-control-allow-methods", "*"),
            ("access-control-allow-origin", "*")
        ]))
    );
}

#[test]
fn preflight_with_credentials_echoes_the_origin() {
    let cors = Cors {
        allow_origins: strings(&["*"]),
        allow_methods: strings(&["GET"]),
        allow_credentials: true,
        max_age: Some(0),
        ..Cors::default()
    };
    let r = preflight(&cors, "OPTIONS", &preflight_from("https://app.example"));
    assert_eq!(
        r,
        Some(no_content(&[
            ("access-control-allow-credentials", "true"),
            ("access-control-allow-methods", "GET"),
            ("access-control-allow-origin", "https://app.example"),
            ("access-control-max-age", "0"),
            ("vary", "Origin"),
        ]))
    );
}

#[test]
fn prefix_patterns_and_case() {
    let cors = Cors {
        allow_origins: strings(&["https://*"]),
        ..Cors::default()
    };
    let allowed = |origin: &str| {
        preflight(&cors, "OPTIONS", &preflight_from(origin))
            .and_then(|r| r.header("access-control-allow-origin").map(str::to_owned))
    };
    assert_eq!(
        allowed("https://a.example").as_deref(),
        Some("https://a.example")
    );
    assert_eq!(
        allowed("HTTPS://A.example").as_deref(),
        Some("HTTPS://A.example")
    );
    assert_eq!(allowed("http://a.example"), None);

    let cors = Cors {
        allow_origins: strings(&["https://*.example.com"]),
        ..Cors::default()
    };
    let allowed = |origin: &str| {
        preflight(&cors, "OPTIONS", &preflight_from(origin))
            .is_some_and(|r| r.header("access-control-allow-origin").is_some())
    };
    assert!(allowed("https://app.example.com"));
    assert!(allowed("https://a.b.example.com"));
    assert!(!allowed("https://example.com"));
    assert!(!allowed("https://app.example.com.evil"));

    let cors = Cors {
        allow_origins: strings(&["HTTPS://WWW.EXAMPLE.COM"]),
        ..Cors::default()
    };
    let r = preflight(&cors, "OPTIONS", &preflight_from("https://www.example.com"));
    assert_eq!(
        r.and_then(|r| r.header("access-control-allow-origin").map(str::to_owned))
            .as_deref(),
        Some("https://www.example.com")
    );
}

#[test]
fn empty_configuration_allows_no_origin() {
    let r = preflight(
        &Cors::default(),
        "OPTIONS",
        &preflight_from("https://www.example.com"),
    );
    assert_eq!(r, Some(no_content(&[])));
}

// ---------------------------------------------------------------------------------------------
// Actual responses
// ---------------------------------------------------------------------------------------------

fn function_response() -> HttpResponse {
    HttpResponse {
        status: 200,
        headers: pairs(&[
            ("content-type", "application/json"),
            (
                "Access-Control-Allow-Origin",
                "https://from-the-function.example",
            ),
            ("Access-Control-Allow-Methods", "PUT"),
            ("access-control-max-age", "1"),
            ("x-other", "kept"),
        ]),
        body: b"{}".to_vec(),
    }
}

#[test]
fn actual_response_from_an_allowed_origin() {
    let mut r = function_response();
    apply_cors(
        &example_cors(),
        &headers(&[("origin", "http://localhost:60905")]),
        &mut r,
    );
    assert_eq!(
        r.headers,
        pairs(&[
            ("content-type", "application/json"),
            ("x-other", "kept"),
            ("access-control-allow-origin", "http://localhost:60905"),
            ("access-control-expose-headers", "date,x-api-id"),
            ("vary", "Origin"),
        ])
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"{}");
}

#[test]
fn actual_response_with_credentials_and_wildcard() {
    let cors = Cors {
        allow_origins: strings(&["*"]),
        allow_credentials: true,
        ..Cors::default()
    };
    let mut r = HttpResponse {
        status: 200,
        headers: Vec::new(),
        body: Vec::new(),
    };
    apply_cors(
        &cors,
        &headers(&[("origin", "https://app.example")]),
        &mut r,
    );
    assert_eq!(
        r.headers,
        pairs(&[
            ("access-control-allow-origin", "https://app.example"),
            ("access-control-allow-credentials", "true"),
            ("vary", "Origin"),
        ])
    );

    let cors = Cors {
        allow_origins: strings(&["*"]),
        ..Cors::default()
    };
    let mut r = HttpResponse {
        status: 200,
        headers: Vec::new(),
        body: Vec::new(),
    };
    apply_cors(
        &cors,
        &headers(&[("origin", "https://app.example")]),
        &mut r,
    );
    assert_eq!(r.headers, pairs(&[("access-control-allow-origin", "*")]));
}

#[test]
fn actual_response_without_origin_or_from_another_origin_gets_no_cors_headers() {
    for request in [
        HeaderMap::new(),
        headers(&[("origin", "https://evil.example")]),
    ] {
        let mut r = function_response();
        apply_cors(&example_cors(), &request, &mut r);
        assert_eq!(
            r.headers,
            pairs(&[("content-type", "application/json"), ("x-other", "kept")])
        );
    }
}

#[test]
fn vary_is_merged_with_the_functions() {
    let mut r = HttpResponse {
        status: 200,
        headers: pairs(&[("Vary", "Accept-Encoding")]),
        body: Vec::new(),
    };
    apply_cors(
        &example_cors(),
        &headers(&[("origin", "https://www.example.com")]),
        &mut r,
    );
    assert_eq!(
        r.header_values("vary").collect::<Vec<_>>(),
        ["Accept-Encoding, Origin"]
    );

    for vary in ["origin", "Accept, Origin", "*"] {
        let mut r = HttpResponse {
            status: 200,
            headers: pairs(&[("vary", vary)]),
            body: Vec::new(),
        };
        apply_cors(
            &example_cors(),
            &headers(&[("origin", "https://www.example.com")]),
            &mut r,
        );
        assert_eq!(r.header_values("vary").collect::<Vec<_>>(), [vary]);
    }
}

#[test]
fn an_origin_that_is_not_text_is_ignored() {
    let mut h = HeaderMap::new();
    h.insert(
        "origin",
        HeaderValue::from_bytes(b"https://\xe9.example").expect("obs-text"),
    );
    h.insert(
        "access-control-request-method",
        HeaderValue::from_static("GET"),
    );
    assert_eq!(preflight(&example_cors(), "OPTIONS", &h), None);
    let mut r = HttpResponse::default();
    apply_cors(&example_cors(), &h, &mut r);
    assert!(r.headers.is_empty());
}
