use super::{FilterError, FilterPattern};

#[test]
fn kinds_by_first_character() {
    let p = |s: &str| FilterPattern::parse(s).unwrap_or_else(|e| panic!("{s}: {}", e.detail()));
    assert!(p("").matches_everything());
    assert!(p("   ").matches_everything());
    assert!(p(r#"" ""#).matches_everything());
    assert!(p("ERROR").matches("an ERROR"));
    assert!(p(" { $.a = 1 } ").matches(r#"{"a": 1}"#));
    assert!(p(" [a, b] ").matches("x y"));
    assert!(p("%^x+$%").matches("xxx"));
    assert!(!p("%^x+$%").matches("xxy"));
}

#[test]
fn errors_display_aws_messages() {
    let e = |s: &str| FilterPattern::parse(s).unwrap_err();
    assert_eq!(
        e("{ $.a = 1").to_string(),
        "If a filter pattern starts with '{' it must end with '}'"
    );
    assert_eq!(
        e("user@example.com").to_string(),
        "Invalid character(s) in term 'user@example.com'"
    );
    assert_eq!(
        e(r#""""#).to_string(),
        r#"Invalid character(s) in term '""'"#
    );
    assert_eq!(
        e("%something!%").to_string(),
        "Invalid character(s) in term '%something!%'"
    );
    let syntax = e("{ $.a = }");
    assert_eq!(syntax.to_string(), "Invalid filter pattern");
    assert_eq!(syntax.detail(), "expected a value");
    assert!(matches!(e("%a|%%"), FilterError::InvalidCharacters(_)));
}

#[test]
fn required_substrings() {
    let r = |s: &str| FilterPattern::parse(s).unwrap().required_substrings();
    assert!(r("").is_empty());
    assert_eq!(r(r#"ERROR "timed out""#), vec!["ERROR", "timed out"]);
    assert_eq!(r(r"%Task\stimed\sout%"), vec!["timed"]);
    assert_eq!(r("{ $.a = 1 }"), vec!["{"]);
    assert!(r("[a, b]").is_empty());
}

#[test]
fn required_substrings_are_necessary() {
    let patterns = [
        "ERROR -WARN",
        r#"?"ERROR" "x" ?"ERROR" "y""#,
        r"%id=\d+\sok%",
        r#"{ $.level = "error" }"#,
    ];
    let messages = [
        "ERROR x",
        "ERROR y WARN",
        "id=42 ok",
        r#"{"level": "error"}"#,
        "nothing",
    ];
    for p in patterns {
        let fp = FilterPattern::parse(p).unwrap();
        for m in messages {
            if fp.matches(m) {
                for s in fp.required_substrings() {
                    assert!(m.contains(&s), "{p} matched {m} without {s}");
                }
            }
        }
    }
}
