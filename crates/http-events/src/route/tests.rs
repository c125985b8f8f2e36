use std::collections::BTreeMap;

use super::{select_route, RouteKey, RouteKeyError};

fn keys(list: &[&str]) -> Vec<RouteKey> {
    list.iter()
        .map(|k| RouteKey::parse(k).unwrap_or_else(|e| panic!("{k} should parse: {e}")))
        .collect()
}

fn params(list: &[(&str, &str)]) -> BTreeMap<String, String> {
    list.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[track_caller]
fn assert_selects(
    routes: &[RouteKey],
    method: &str,
    path: &str,
    index: usize,
    expected: &[(&str, &str)],
) {
    let selected = select_route(routes, method, path);
    assert_eq!(
        selected,
        Some((index, params(expected))),
        "{method} {path} should select {}",
        routes[index].as_str()
    );
}

#[track_caller]
fn assert_no_route(routes: &[RouteKey], method: &str, path: &str) {
    assert_eq!(
        select_route(routes, method, path),
        None,
        "{method} {path} should match nothing"
    );
}

// ---------------------------------------------------------------------------------------------
// Route keys
// ---------------------------------------------------------------------------------------------

#[test]
fn valid_route_keys() {
    for key in [
        "$default",
        "ANY /{proxy+}",
        "GET /orders/{id}",
        "POST /a/b",
        "GET /",
        "PUT /pets/{petId}/toys/{toy_id}",
        "DELETE /a/{b}/c/{rest+}",
        "PATCH /v1.2/items:batch",
        "HEAD /.well-known/openid-configuration",
        "OPTIONS /{proxy+}",
        "GET /a%20b/~user/@me/x=1;y=2",
        "GET /{a.b:c-d_e}",
    ] {
        let parsed = RouteKey::parse(key).unwrap_or_else(|e| panic!("{key} should parse: {e}"));
        assert_eq!(parsed.as_str(), key);
        assert_eq!(parsed.to_string(), key);
        assert_eq!(key.parse::<RouteKey>().as_ref(), Ok(&parsed));
    }
}

#[test]
fn route_key_accessors() {
    let default = RouteKey::parse("$default").expect("valid");
    assert!(default.is_default());
    assert_eq!((default.method(), default.path()), (None, None));
    let route = RouteKey::parse("GET /pets/{id}").expect("valid");
    assert!(!route.is_default());
    assert_eq!(
        (route.method(), route.path()),
        (Some("GET"), Some("/pets/{id}"))
    );
}

#[track_caller]
fn assert_invalid(key: &str, expected: &RouteKeyError) {
    assert_eq!(RouteKey::parse(key).as_ref(), Err(expected), "{key:?}");
}

#[track_caller]
fn assert_invalid_path(key: &str) {
    let result = RouteKey::parse(key);
    assert!(
        matches!(result, Err(RouteKeyError::Path { .. })),
        "{key:?} should have an invalid path: {result:?}"
    );
}

#[test]
fn invalid_route_keys() {
    assert_invalid("", &RouteKeyError::Empty);
    for key in [
        "GET",
        "/pets",
        "GET  /pets",
        " GET /pets",
        "GET ",
        "$default ",
        "$connect",
        "$DEFAULT",
        "GET\t/pets",
    ] {
        assert_invalid(key, &RouteKeyError::Format(key.to_owned()));
    }
    for (key, method) in [
        ("get /pets", "get"),
        ("FETCH /pets", "FETCH"),
        ("TRACE /pets", "TRACE"),
        ("CONNECT /x", "CONNECT"),
        ("Any /x", "Any"),
    ] {
        assert_invalid(key, &RouteKeyError::Method(method.to_owned()));
    }
    for key in [
        "GET pets",
        "GET pets/",
        "GET /pets/",
        "GET /pets//toys",
        "GET //",
        "GET /{proxy+}/toys",
        "GET /a/{rest+}/{id}",
        "GET /{id}/{id}",
        "GET /{id}/{id+}",
        "GET /pets{id}",
        "GET /{id}.json",
        "GET /{id",
        "GET /id}",
        "GET /{}",
        "GET /{+}",
        "GET /{a b}",
        "GET /{a/b}",
        "GET /{{id}}",
        "GET /{id++}",
        "GET /a b",
        "GET /a?b=1",
        "GET /a#frag",
        "GET /a\"b",
        "GET /a<b>",
        "GET /é",
    ] {
        assert_invalid_path(key);
    }
}

#[test]
fn route_key_errors_read_like_bad_request_messages() {
    assert_eq!(RouteKeyError::Empty.to_string(), "Route key is required.");
    assert_eq!(
        RouteKey::parse("GET").map(|_| ()).map_err(|e| e.to_string()),
        Err("Invalid route key: GET. A route key must be $default or an HTTP method followed by a single space and a resource path, such as GET /pets.".to_owned())
    );
    assert_eq!(
        RouteKey::parse("FETCH /x").map(|_| ()).map_err(|e| e.to_string()),
        Err("Invalid HTTP method FETCH in route key. Supported methods are ANY, DELETE, GET, HEAD, OPTIONS, PATCH, POST and PUT.".to_owned())
    );
    assert_eq!(
        RouteKey::parse("GET /{proxy+}/x").map(|_| ()).map_err(|e| e.to_string()),
        Err("Invalid resource path /{proxy+}/x in route key: a greedy path variable {name+} must be the last segment.".to_owned())
    );
    assert_eq!(
        RouteKey::parse("GET /pets/")
            .map(|_| ())
            .map_err(|e| e.to_string()),
        Err("Invalid resource path /pets/ in route key: the path must not end with /.".to_owned())
    );
}

// ---------------------------------------------------------------------------------------------
// Route selection
// ---------------------------------------------------------------------------------------------

#[test]
fn precedence_literal_over_variable_over_greedy_over_default() {
    let routes = keys(&[
        "GET /pets/{id}",
        "GET /pets/dog",
        "ANY /pets/{proxy+}",
        "$default",
    ]);
    assert_selects(&routes, "GET", "/pets/dog", 1, &[]);
    assert_selects(&routes, "GET", "/pets/cat", 0, &[("id", "cat")]);
    assert_selects(
        &routes,
        "GET",
        "/pets/cat/toys",
        2,
        &[("proxy", "cat/toys")],
    );
    assert_selects(&routes, "GET", "/other", 3, &[]);
    // Other methods fall to ANY, then $default.
    assert_selects(&routes, "POST", "/pets/dog", 2, &[("proxy", "dog")]);
    assert_selects(&routes, "DELETE", "/pets", 3, &[]);
    // The order of the list does not matter.
    let reversed = keys(&[
        "$default",
        "ANY /pets/{proxy+}",
        "GET /pets/dog",
        "GET /pets/{id}",
    ]);
    assert_selects(&reversed, "GET", "/pets/dog", 2, &[]);
    assert_selects(&reversed, "GET", "/pets/cat", 3, &[("id", "cat")]);
    assert_selects(
        &reversed,
        "GET",
        "/pets/cat/toys",
        1,
        &[("proxy", "cat/toys")],
    );
    assert_selects(&reversed, "GET", "/other", 0, &[]);
}

#[test]
fn aws_documented_routing_example() {
    let routes = keys(&[
        "GET /pets/dog/1",
        "GET /pets/dog/{id}",
        "GET /pets/{proxy+}",
        "ANY /{proxy+}",
        "$default",
    ]);
    assert_selects(&routes, "GET", "/pets/dog/1", 0, &[]);
    assert_selects(&routes, "GET", "/pets/dog/2", 1, &[("id", "2")]);
    assert_selects(&routes, "GET", "/pets/cat/1", 2, &[("proxy", "cat/1")]);
    assert_selects(&routes, "POST", "/test/5", 3, &[("proxy", "test/5")]);
}

#[test]
fn method_specific_route_beats_any_for_the_same_path() {
    let routes = keys(&["ANY /pets", "GET /pets"]);
    assert_selects(&routes, "GET", "/pets", 1, &[]);
    assert_selects(&routes, "POST", "/pets", 0, &[]);
    let routes = keys(&["ANY /pets/{id}", "DELETE /pets/{petId}"]);
    assert_selects(&routes, "DELETE", "/pets/1", 1, &[("petId", "1")]);
    assert_selects(&routes, "GET", "/pets/1", 0, &[("id", "1")]);
}

#[test]
fn a_more_specific_path_beats_the_method() {
    let routes = keys(&["GET /pets/{id}", "ANY /pets/dog"]);
    assert_selects(&routes, "GET", "/pets/dog", 1, &[]);
}

#[test]
fn specificity_is_decided_from_the_left() {
    let routes = keys(&["GET /{a}/b/c", "GET /x/{b}/{c}"]);
    assert_selects(&routes, "GET", "/x/b/c", 1, &[("b", "b"), ("c", "c")]);
    let routes = keys(&[
        "GET /pets/{proxy+}",
        "GET /pets/{id}/{proxy+}",
        "GET /pets/{id}/{sub}",
    ]);
    assert_selects(
        &routes,
        "GET",
        "/pets/1/toys",
        2,
        &[("id", "1"), ("sub", "toys")],
    );
    assert_selects(
        &routes,
        "GET",
        "/pets/1/toys/2",
        1,
        &[("id", "1"), ("proxy", "toys/2")],
    );
    assert_selects(&routes, "GET", "/pets/1", 0, &[("proxy", "1")]);
}

#[test]
fn methods_must_match_exactly() {
    let routes = keys(&["GET /pets"]);
    assert_no_route(&routes, "HEAD", "/pets");
    assert_no_route(&routes, "get", "/pets");
    assert_no_route(&routes, "POST", "/pets");
    assert_selects(&routes, "GET", "/pets", 0, &[]);
}

#[test]
fn nothing_matches_without_default() {
    let routes = keys(&["GET /pets/{id}"]);
    assert_no_route(&routes, "GET", "/pets");
    assert_no_route(&routes, "GET", "/pets/1/2");
    assert_no_route(&routes, "GET", "/other");
    assert_no_route(&[], "GET", "/");
}

#[test]
fn default_alone_catches_everything() {
    let routes = keys(&["$default"]);
    for (method, path) in [
        ("GET", "/"),
        ("POST", "/a/b/c"),
        ("OPTIONS", "/x"),
        ("PURGE", ""),
        ("GET", "not-a-path"),
    ] {
        assert_selects(&routes, method, path, 0, &[]);
    }
}

#[test]
fn parameters_are_percent_decoded() {
    let routes = keys(&["GET /pets/{id}", "GET /static/{path+}"]);
    assert_selects(&routes, "GET", "/pets/a%20b", 0, &[("id", "a b")]);
    assert_selects(&routes, "GET", "/pets/x+y", 0, &[("id", "x+y")]);
    assert_selects(&routes, "GET", "/pets/%E2%82%AC", 0, &[("id", "€")]);
    assert_selects(&routes, "GET", "/pets/100%", 0, &[("id", "100%")]);
    // An encoded slash stays inside its segment.
    assert_selects(&routes, "GET", "/pets/a%2Fb", 0, &[("id", "a/b")]);
    assert_selects(
        &routes,
        "GET",
        "/static/css/a%20b.css",
        1,
        &[("path", "css/a b.css")],
    );
}

#[test]
fn literal_segments_compare_decoded_and_case_sensitively() {
    let routes = keys(&["GET /a%20b", "GET /pets"]);
    assert_selects(&routes, "GET", "/a%20b", 0, &[]);
    assert_selects(&routes, "GET", "/a b", 0, &[]);
    assert_selects(&routes, "GET", "/pet%73", 1, &[]);
    assert_no_route(&routes, "GET", "/Pets");
    assert_no_route(&routes, "GET", "/PETS");
}

#[test]
fn trailing_slashes_are_significant() {
    let routes = keys(&["GET /pets", "GET /pets/{id}"]);
    assert_no_route(&routes, "GET", "/pets/");
    assert_no_route(&routes, "GET", "/pets/1/");
    let routes = keys(&["GET /pets", "GET /pets/{proxy+}"]);
    assert_selects(&routes, "GET", "/pets/", 1, &[("proxy", "")]);
    assert_selects(&routes, "GET", "/pets/cat/", 1, &[("proxy", "cat/")]);
    assert_selects(&routes, "GET", "/pets", 0, &[]);
}

#[test]
fn root_path() {
    let routes = keys(&["GET /", "ANY /{proxy+}"]);
    assert_selects(&routes, "GET", "/", 0, &[]);
    assert_selects(&routes, "POST", "/", 1, &[("proxy", "")]);
    assert_selects(&routes, "GET", "/x", 1, &[("proxy", "x")]);
    let routes = keys(&["GET /{id}"]);
    assert_no_route(&routes, "GET", "/");
}

#[test]
fn empty_segments_match_no_variable() {
    let routes = keys(&["GET /pets/{id}/toys"]);
    assert_no_route(&routes, "GET", "/pets//toys");
    assert_selects(&routes, "GET", "/pets/1/toys", 0, &[("id", "1")]);
}

#[test]
fn query_and_fragment_are_not_part_of_the_path() {
    let routes = keys(&["GET /pets/{id}"]);
    assert_selects(&routes, "GET", "/pets/1?x=/y", 0, &[("id", "1")]);
    assert_selects(&routes, "GET", "/pets/1#top", 0, &[("id", "1")]);
}

#[test]
fn odd_request_paths_do_not_panic() {
    let routes = keys(&["GET /{a}", "GET /{proxy+}", "GET /", "$default"]);
    for path in [
        "",
        "/",
        "//",
        "%",
        "%%%",
        "/%zz",
        "/{proxy+}",
        "/\u{0}",
        "no-slash",
        "/a/../b",
        "?",
        "#",
        "/é/ü",
    ] {
        let _ = select_route(&routes, "GET", path);
        let _ = select_route(&routes, "", path);
    }
    // A path without its leading slash is read as if it had one.
    assert_selects(
        &keys(&["GET /pets/{id}"]),
        "GET",
        "pets/1",
        0,
        &[("id", "1")],
    );
}
