//! Examples from AWS' "Using filter patterns to match terms in unstructured log events".

use super::TextPattern;
use crate::FilterError;

const EVENTS: [&str; 5] = [
    "[ERROR 400] BAD REQUEST",
    "[ERROR 401] UNAUTHORIZED REQUEST",
    "[ERROR 419] MISSING ARGUMENTS",
    "[ERROR 420] INVALID ARGUMENTS",
    "[ERROR 500] INTERNAL SERVER ERROR",
];

fn matching(pattern: &str, events: &[&'static str]) -> Vec<&'static str> {
    let p = TextPattern::parse(pattern).unwrap_or_else(|e| panic!("{pattern}: {e}"));
    events.iter().copied().filter(|e| p.matches(e)).collect()
}

#[test]
fn single_term() {
    assert_eq!(matching("ERROR", &EVENTS), EVENTS.to_vec());
    // A term also matches inside a longer word, and matching is case-sensitive.
    assert_eq!(
        matching("ERROR", &["Exiting with ERRORCODE: -1", "error"]),
        vec!["Exiting with ERRORCODE: -1"]
    );
}

#[test]
fn multiple_terms_must_all_appear() {
    assert_eq!(
        matching("ERROR ARGUMENTS", &EVENTS),
        vec![
            "[ERROR 419] MISSING ARGUMENTS",
            "[ERROR 420] INVALID ARGUMENTS"
        ]
    );
}

#[test]
fn question_mark_terms_are_alternatives() {
    assert_eq!(matching("?ERROR ?ARGUMENTS", &EVENTS), EVENTS.to_vec());
    let events = ["ERROR WARN message", "ERROR message", "WARN message"];
    assert_eq!(matching("?ERROR ?WARN", &events), events.to_vec());
    assert_eq!(matching("ERROR WARN", &events), vec!["ERROR WARN message"]);
    assert_eq!(matching("ERROR -WARN", &events), vec!["ERROR message"]);
}

#[test]
fn question_mark_starts_a_group_of_terms() {
    // The CDK's anyTermGroup(["ERROR", "MainThread"], ["WARN", "Deadlock"]).
    let p = r#"?"ERROR" "MainThread" ?"WARN" "Deadlock""#;
    let events = [
        "ERROR in MainThread",
        "ERROR in worker",
        "WARN Deadlock detected",
        "WARN slow",
    ];
    assert_eq!(
        matching(p, &events),
        vec!["ERROR in MainThread", "WARN Deadlock detected"]
    );
}

#[test]
fn exact_phrases() {
    assert_eq!(
        matching(r#""INTERNAL SERVER ERROR""#, &EVENTS),
        vec!["[ERROR 500] INTERNAL SERVER ERROR"]
    );
    assert_eq!(
        matching(r#""SERVER INTERNAL""#, &EVENTS),
        Vec::<&str>::new()
    );
    // Quoted terms may hold any character; \" and \\ escape.
    assert_eq!(
        matching(
            r#""user@example.com""#,
            &["login user@example.com", "login user"]
        ),
        vec!["login user@example.com"]
    );
    assert_eq!(
        matching(r#""say \"hi\"""#, &[r#"they say "hi""#, "say hi"]),
        vec![r#"they say "hi""#]
    );
}

#[test]
fn include_and_exclude() {
    assert_eq!(
        matching("ERROR -ARGUMENTS", &EVENTS),
        vec![
            "[ERROR 400] BAD REQUEST",
            "[ERROR 401] UNAUTHORIZED REQUEST",
            "[ERROR 500] INTERNAL SERVER ERROR"
        ]
    );
    // The older guide's spelling: a minus, a space, a quoted term.
    let events = [
        "[ERROR] A fatal exception has occurred",
        "Exiting with ERRORCODE: -1",
    ];
    assert_eq!(
        matching(r#""ERROR" - "Exiting""#, &events),
        vec!["[ERROR] A fatal exception has occurred"]
    );
    assert_eq!(matching("-ERROR", &["ok", "ERROR"]), vec!["ok"]);
}

#[test]
fn blank_phrase_matches_everything() {
    let p = TextPattern::parse(r#"" ""#).unwrap();
    assert!(p.matches_everything());
    assert!(p.matches("nospace"));
    assert!(TextPattern::parse("").unwrap().matches_everything());
    assert!(!TextPattern::parse("a").unwrap().matches_everything());
}

#[test]
fn invalid_terms() {
    let err = |p: &str| TextPattern::parse(p).unwrap_err();
    assert_eq!(
        err("user@example.com"),
        FilterError::InvalidCharacters("user@example.com".into())
    );
    assert_eq!(
        err("RequestId: x"),
        FilterError::InvalidCharacters("RequestId:".into())
    );
    assert_eq!(err(r#""""#), FilterError::InvalidCharacters(r#""""#.into()));
    assert_eq!(err("? ERROR"), FilterError::InvalidCharacters("?".into()));
    assert_eq!(err("ERROR -"), FilterError::InvalidCharacters("-".into()));
    assert_eq!(err("-a.b"), FilterError::InvalidCharacters("-a.b".into()));
    assert!(matches!(err(r#""unterminated"#), FilterError::Syntax(_)));
    assert_eq!(
        err("x\"y\"").to_string(),
        "Invalid character(s) in term 'x\"y\"'"
    );
}

#[test]
fn required_substrings() {
    let req = |p: &str| TextPattern::parse(p).unwrap().required_substrings();
    assert_eq!(req("ERROR ARGUMENTS"), vec!["ERROR", "ARGUMENTS"]);
    assert_eq!(
        req(r#"ERROR "bad thing" -WARN"#),
        vec!["ERROR", "bad thing"]
    );
    assert!(req("?ERROR ?WARN").is_empty());
    assert_eq!(req("?ERROR x ?ERROR y"), vec!["ERROR"]);
    assert_eq!(req("a a"), vec!["a"]);
    assert!(req(r#"" ""#).is_empty());
}
