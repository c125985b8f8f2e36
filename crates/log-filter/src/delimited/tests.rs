//! Examples from AWS' "Using filter patterns to match terms in space-delimited log events".

use super::{split_fields, DelimitedPattern};
use crate::FilterError;

const LOG: [&str; 3] = [
    r#"127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /apache_pb.gif HTTP/1.0" 200 1534"#,
    r#"127.0.0.1 - frank [10/Oct/2000:13:35:22 -0700] "GET /apache_pb.gif HTTP/1.0" 500 5324"#,
    r#"127.0.0.1 Prod frank [10/Oct/2000:13:50:35 -0700] "GET /index.html HTTP/1.0" 404 1534"#,
];

fn matching(pattern: &str, events: &[&'static str]) -> Vec<&'static str> {
    let p =
        DelimitedPattern::parse(pattern).unwrap_or_else(|e| panic!("{pattern}: {}", e.detail()));
    events.iter().copied().filter(|e| p.matches(e)).collect()
}

#[test]
fn fields_are_split_at_spaces_quotes_and_brackets() {
    assert_eq!(
        split_fields(LOG[2]),
        vec![
            "127.0.0.1",
            "Prod",
            "frank",
            "10/Oct/2000:13:50:35 -0700",
            "GET /index.html HTTP/1.0",
            "404",
            "1534"
        ]
    );
    assert_eq!(split_fields("  a\tb  c\n"), vec!["a", "b", "c"]);
    assert_eq!(
        split_fields(r#"a "unclosed b"#),
        vec!["a", r#""unclosed"#, "b"]
    );
    assert!(split_fields("   ").is_empty());
}

#[test]
fn named_fields_and_conditions() {
    let all = LOG.to_vec();
    assert_eq!(
        matching(
            "[ip, user, username, timestamp, request, status_code, bytes]",
            &LOG
        ),
        all
    );
    assert_eq!(
        matching(
            "[ip, user, username, timestamp, request, status_code, bytes > 1000]",
            &LOG
        ),
        all
    );
    assert_eq!(
        matching(
            "[ip, user, username, timestamp, request, status_code, bytes > 2000]",
            &LOG
        ),
        vec![LOG[1]]
    );
    assert_eq!(
        matching(
            "[ip, user, username, timestamp, request, status_code = 200, bytes]",
            &LOG
        ),
        vec![LOG[0]]
    );
    assert_eq!(
        matching(
            "[ip, user, username, timestamp, request, status_code = 4*, bytes]",
            &LOG
        ),
        vec![LOG[2]]
    );
    assert_eq!(
        matching(
            "[ip, user, username, timestamp, request =*.html*, status_code = 4*, bytes]",
            &LOG
        ),
        vec![LOG[2]]
    );
    assert_eq!(
        matching(
            "[ip, user, username, timestamp, request, status_code != 200, bytes]",
            &LOG
        ),
        vec![LOG[1], LOG[2]]
    );
    assert_eq!(matching(r#"[ip, user = "Prod", ...]"#, &LOG), vec![LOG[2]]);
}

#[test]
fn ellipsis() {
    assert_eq!(matching("[..., status_code, bytes]", &LOG), LOG.to_vec());
    assert_eq!(
        matching("[ip, user, ..., status_code, bytes]", &LOG),
        LOG.to_vec()
    );
    assert_eq!(matching("[ip, user, ...]", &LOG), LOG.to_vec());
    assert_eq!(
        matching("[..., request =*.html*, status_code = 4*, bytes]", &LOG),
        vec![LOG[2]]
    );
    assert_eq!(
        matching("[..., status_code = 500, ...]", &LOG),
        vec![LOG[1]]
    );
    assert_eq!(matching("[a, ..., b]", &["x"]), Vec::<&str>::new());
    assert_eq!(matching("[a, ..., b]", &["x y"]), vec!["x y"]);
}

#[test]
fn field_count_must_match() {
    let events = ["ERROR WARN message", "ERROR message", "WARN message"];
    assert_eq!(matching("[w1=ERROR, w2]", &events), vec!["ERROR message"]);
    assert_eq!(
        matching("[w1=ERROR || w1=WARN, w2]", &events),
        vec!["ERROR message", "WARN message"]
    );
    // The guide spells the second name `W1`.
    assert_eq!(
        matching("[w1=ERROR || W1=WARN, w2]", &events),
        vec!["ERROR message", "WARN message"]
    );
    assert_eq!(
        matching(
            "[w1!=ERROR && w1!=WARN, w2]",
            &["INFO message", "ERROR message"]
        ),
        vec!["INFO message"]
    );
}

#[test]
fn conditions_across_fields() {
    // The older guide's `[ip, user, username, timestamp, request, status_code = 4* && bytes > 1000]`
    // names no `bytes` field; AWS' console rejects it as an invalid filter pattern
    // (awsdocs/amazon-cloudwatch-logs-user-guide#21), and so does this.
    assert!(DelimitedPattern::parse(
        "[ip, user, username, timestamp, request, status_code = 4* && bytes > 1000]"
    )
    .is_err());
    assert_eq!(
        matching(
            "[ip, user, username, timestamp, request, status_code = 4* && bytes > 1000, bytes]",
            &[
                r#"1.2.3.4 - f [t] "GET /" 404 1534"#,
                r#"1.2.3.4 - f [t] "GET /" 404 999"#,
            ]
        ),
        vec![r#"1.2.3.4 - f [t] "GET /" 404 1534"#]
    );
    assert_eq!(
        matching(
            "[ip, user, username, timestamp, request =*.html*, status_code = 404 || status_code = 410, bytes]",
            &LOG
        ),
        vec![LOG[2]]
    );
    assert_eq!(
        matching(
            "[a, b = 1 && (a = x || a = y)]",
            &["x 1", "y 1", "z 1", "x 2"]
        ),
        vec!["x 1", "y 1"]
    );
}

#[test]
fn numbers_and_regex() {
    assert_eq!(
        matching("[a = 200, b]", &["200 x", "200.0 x", "2000 x"]),
        vec!["200 x", "200.0 x"]
    );
    assert_eq!(
        matching("[a >= 1.5, b]", &["2 x", "1 x", "abc x"]),
        vec!["2 x"]
    );
    assert_eq!(
        matching(r"[w1 = %^ERR\w*%, w2]", &["ERROR x", "WARN x"]),
        vec!["ERROR x"]
    );
    assert_eq!(
        matching("[w1 != %ERR%, w2]", &["ERROR x", "WARN x"]),
        vec!["WARN x"]
    );
    // Lambda's text log lines: tab-separated, with the level in brackets.
    assert_eq!(
        matching(
            "[level = ERROR, time, request_id, ...]",
            &[
                "[ERROR]\t2024-01-01T00:00:00.000Z\tabc\tboom happened",
                "[INFO]\tt\tabc\tfine"
            ]
        ),
        vec!["[ERROR]\t2024-01-01T00:00:00.000Z\tabc\tboom happened"]
    );
}

#[test]
fn trailing_comma_is_an_unnamed_field() {
    assert_eq!(matching("[a = x,]", &["x y", "x"]), vec!["x y"]);
}

#[test]
fn invalid_patterns() {
    let err = |p: &str| DelimitedPattern::parse(p).unwrap_err();
    assert_eq!(
        err("[a, b").to_string(),
        "If a filter pattern starts with '[' it must end with ']'"
    );
    assert_eq!(
        err("[a > x, b]"),
        FilterError::InvalidCharacters("x".into())
    );
    assert_eq!(
        err("[a@b, c]"),
        FilterError::InvalidCharacters("a@b".into())
    );
    for p in [
        "[]",
        "[a = ]",
        "[a, b = 1 &&]",
        "[a, b = 1 && z = 2]",
        "[a b]",
        "[\"x\"]",
        "[a = %x%, b = %y%, c = %z%]",
    ] {
        assert!(matches!(err(p), FilterError::Syntax(_)), "{p}");
    }
}
