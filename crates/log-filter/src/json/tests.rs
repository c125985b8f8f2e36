//! Examples from AWS' "Using filter patterns to match terms in JSON log events", and the
//! behaviour of `TestMetricFilter` as recorded by others against AWS.

use super::JsonPattern;
use crate::FilterError;

/// The guide's example event (on one line, as it must be for testing).
const EVENT: &str = r#"{"eventType": "UpdateTrail", "sourceIPAddress": "111.111.111.111",
  "arrayKey": ["value", "another value"],
  "objectList": [{"name": "a", "id": 1}, {"name": "b", "id": 2}],
  "SomeObject": null, "ThisFlag": true}"#;

/// The guide's compound-expression example.
const USERS: &str = r#"{"user": {"id": 1, "email": "John.Stiles@example.com"},
  "users": [{"id": 2, "email": "John.Doe@example.com"}, {"id": 3, "email": "Jane.Doe@example.com"}],
  "actions": ["GET", "PUT", "DELETE"],
  "coordinates": [[0, 1, 2], [4, 5, 6], [7, 8, 9]]}"#;

/// Values as a third party recorded them against AWS' TestMetricFilter.
const VALUES: &str = r#"{"eventType": "UpdateTrail", "someString": "111.111.111.111", "emptyString": "",
  "someInt": 123, "someFloat": 12.34, "someFloat2": 12.0, "someObject": {}, "someArray": [],
  "someNull": null, "numericString": "500"}"#;

fn pattern(p: &str) -> JsonPattern {
    JsonPattern::parse(p).unwrap_or_else(|e| panic!("{p}: {}", e.detail()))
}

#[track_caller]
fn yes(p: &str, event: &str) {
    assert!(pattern(p).matches(event), "{p} should match {event}");
}

#[track_caller]
fn no(p: &str, event: &str) {
    assert!(!pattern(p).matches(event), "{p} should not match {event}");
}

#[test]
fn documented_matches() {
    yes(r#"{ $.eventType = "UpdateTrail" }"#, EVENT);
    yes("{ $.sourceIPAddress != 123.123.* }", EVENT);
    yes(r#"{ $.arrayKey[0] = "value" }"#, EVENT);
    yes("{ $.objectList[1].id = 2 }", EVENT);
    yes("{ $.SomeObject IS NULL }", EVENT);
    yes("{ $.SomeOtherObject NOT EXISTS }", EVENT);
    yes("{ $.ThisFlag IS TRUE }", EVENT);
    no("{ $.ThisFlag IS FALSE }", EVENT);
    no("{ $.eventType IS NULL }", EVENT);
    no("{ $.eventType NOT EXISTS }", EVENT);
    no(r#"{ $.arrayKey[5] = "value" }"#, EVENT);
    // Not an array / not an object: false.
    no("{ $.eventType[0] = U* }", EVENT);
    no("{ $.eventType.x = 1 }", EVENT);
}

#[test]
fn or_between_values() {
    yes("{$.foo = bar}", r#"{"foo": "bar"}"#);
    no("{$.foo = baz }", r#"{"foo": "bar"}"#);
    yes("{$.foo = bar || $.foo = baz }", r#"{"foo": "baz"}"#);
}

#[test]
fn compound_expressions() {
    yes(
        r#"{ ($.user.id = 1) && ($.users[0].email = "John.Doe@example.com") }"#,
        USERS,
    );
    no(
        r#"{ ($.user.id = 2 && $.users[0].email = "nonmatch") || $.actions[2] = "GET" }"#,
        USERS,
    );
    yes(
        r#"{ $.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = nonmatch && $.actions[2] = nomatch }"#,
        USERS,
    );
    no(
        r#"{ ($.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = nonmatch) && $.actions[2] = nomatch }"#,
        USERS,
    );
    yes("{ $.coordinates[2][0] = 7 }", USERS);
}

#[test]
fn numeric_comparisons() {
    let e = r#"{"latency": 500, "numbers": [0.001, 1000], "errorCode": 400,
      "processes": [0, 1, 2, 3, {"averageRuntime": 55.5}]}"#;
    yes("{ $.latency >= 500 }", e);
    no("{ $.latency > 500 }", e);
    yes("{ $.numbers[0] < 10e3 }", e);
    no("{ $.numbers[0] < 10e-3 }", r#"{"numbers": [0.5]}"#);
    yes("{ $.numbers[0] = 1e-3 }", e);
    yes("{ $.numbers[1] != 1e+4 }", e);
    yes("{ $.processes[4].averageRuntime <= 55.5 }", e);
    yes("{ $.errorCode = 400}", e);
    yes("{ $.errorCode != 500 }", e);
    yes("{ $.latency > +100 }", e);
    yes("{ $.latency > -1 }", e);
    yes("{$.latency>=500&&$.errorCode<401}", e);
}

#[test]
fn strings_and_numbers_as_aws_compares_them() {
    for p in [
        r#"{ $.someString = "111.111.111.111" }"#,
        "{ $.someString = 111.111.111.111 }",
        "{ $.someString != 111*111 }",
        "{ $.someString = * }",
        r#"{ $.someString = "*" }"#,
        r#"{ $.emptyString = "*" }"#,
        "{ $.someString = *.111.111.111 }",
        "{ $.someString = 111* }",
        "{ $.someString != *222 }",
        r#"{ $.someInt = "123" }"#,
        r#"{ $.someInt != "123.0" }"#,
        "{ $.someInt = 123.0 }",
        "{ $.someInt = 1* }",
        "{ $.someInt = *23 }",
        "{ $.someInt != 3* }",
        r#"{ $.someFloat = "12.3*" }"#,
        "{ $.someFloat = 12.34 }",
        "{ $.someFloat2 = 12 }",
        r#"{ $.someFloat2 != "12" }"#,
        "{ $.someFloat != 43.21 }",
        "{ $.numericString = 500 }",
        "{ $.numericString > 499 }",
        "{ $.eventType = Update* }",
        "{ $.eventType = *Trail }",
        "{ $.eventType = *dateTr* }",
    ] {
        yes(p, VALUES);
    }
    for p in [
        "{ $.someString > 123 }",
        "{ $.someString = 123 }",
        r#"{ $.someString = "123" }"#,
        "{ $.someObject = 123 }",
        "{ $.someObject != 123 }",
        r#"{ $.someObject != "x" }"#,
        "{ $.someArray != x }",
        "{ $.someNull = x }",
        "{ $.missing != x }",
        "{ $.missing = * }",
        "{ $.eventType = Up*Trail }",
        r#"{ $.eventType = "updatetrail" }"#,
    ] {
        no(p, VALUES);
    }
}

#[test]
fn escaped_star_is_literal() {
    yes(r#"{ $.a = "\*x" }"#, r#"{"a": "*x"}"#);
    no(r#"{ $.a = "\*x" }"#, r#"{"a": "yx"}"#);
}

#[test]
fn regex_values() {
    yes(r"{ $.eventType = %Update\w+% }", VALUES);
    yes(r"{ $.someInt = %^1\d\d$% }", VALUES);
    no("{ $.eventType != %Trail% }", VALUES);
    assert!(JsonPattern::parse("{ $.a = %x% || $.b = %y% || $.c = %z% }").is_err());
}

#[test]
fn only_json_objects_match() {
    for msg in [
        "START RequestId: x",
        "[1, 2]",
        "42",
        r#""s""#,
        "",
        "{not json",
    ] {
        no("{ $.x NOT EXISTS }", msg);
    }
    yes("{ $.x NOT EXISTS }", "  {}\n");
}

#[test]
fn keywords_ignore_case() {
    yes("{ $.SomeObject is null }", EVENT);
}

#[test]
fn invalid_patterns() {
    let err = |p: &str| JsonPattern::parse(p).unwrap_err();
    assert_eq!(
        err("{ $.a = 1").to_string(),
        "If a filter pattern starts with '{' it must end with '}'"
    );
    assert_eq!(
        err("{ $.someString > unquoted_string }"),
        FilterError::InvalidCharacters("unquoted_string".into())
    );
    assert_eq!(
        err(r#"{ $.someString >= "123" }"#).to_string(),
        r#"Invalid character(s) in term '"123"'"#
    );
    assert_eq!(
        err("{ $.a = a@b }"),
        FilterError::InvalidCharacters("a@b".into())
    );
    assert_eq!(
        err("{ $.a b = 1 }"),
        FilterError::Syntax("expected an operator, found 'b'".into())
    );
    for p in [
        "{}",
        "{ a = 1 }",
        "{ $ = 1 }",
        "{ $.a EXISTS }",
        "{ $.a IS NOT NULL }",
        "{ $.a = }",
        "{ $.a = 1 && }",
        "{ ($.a = 1 }",
        "{ $.a = 1) }",
        r#"{ $.a = "x }"#,
        "{ $.a & $.b }",
    ] {
        assert!(matches!(err(p), FilterError::Syntax(_)), "{p}");
    }
    for p in [
        "{ $[0] = 1 }",
        "{ $.a[x] = 1 }",
        "{ $.@timestamp = 1 }",
        "{ $.a. = 1 }",
    ] {
        assert!(matches!(err(p), FilterError::InvalidCharacters(_)), "{p}");
    }
}
