//! Examples from AWS' "Supported regular expressions (regex) syntax".

use super::Regex;
use crate::FilterError;

fn re(body: &str) -> Regex {
    Regex::parse(body, &format!("%{body}%")).unwrap_or_else(|e| panic!("%{body}%: {e:?}"))
}

#[track_caller]
fn yes(body: &str, text: &str) {
    assert!(re(body).is_match(text), "%{body}% should match {text:?}");
}

#[track_caller]
fn no(body: &str, text: &str) {
    assert!(
        !re(body).is_match(text),
        "%{body}% should not match {text:?}"
    );
}

#[test]
fn documented_examples() {
    yes("AUTHORIZED", "[ERROR 401] UNAUTHORIZED REQUEST");
    yes("AUTHORIZED", "[SUCCESS 200] AUTHORIZED REQUEST");
    let ip = r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}";
    yes(ip, "client 10.0.0.12 connected");
    no(ip, "client 10.0.12 connected");
    let errors = "[Ee]rror|[Ff]ail";
    yes(errors, "an Error");
    yes(errors, "an error");
    yes(errors, "it will fail");
    no(errors, "ERROR");
    yes("^[hc]at", "hat trick");
    yes("^[hc]at", "cat");
    no("^[hc]at", "that");
    yes("[hc]at$", "that");
    no("[hc]at$", "hats");
    yes("colou?r", "color");
    yes("colou?r", "colour");
    no("colou?r", "colouur");
    yes("gray|grey", "grey");
    yes(r"10\.10\.0\.1", "from 10.10.0.1");
    no(r"10\.10\.0\.1", "from 10x10x0x1");
    yes("a{3,5}", "caaat");
    no("a{3,5}", "caat");
    yes("ab+c", "abbbc");
    no("ab+c", "ac");
    yes("ab*c", "ac");
}

#[test]
fn classes_and_escapes() {
    yes(r"\w+@\w+", "mail bob@example");
    yes(r"[^0-9]", "12a");
    no(r"[^0-9]", "123");
    yes(r"id=\S+\s", "id=42 ok");
    no(r"\D", "2024");
    yes(r"\W", "a-b");
    yes(r"[a-c\d]", "9");
    yes(r"[-x]", "a-b");
    yes(r"\x28", "f(x)");
    yes(r"[\x28-\x29]", "f(x)");
    yes(r"x\.y", "x.y");
    no(r"x\.y", "xzy");
    yes(r"a\sb", "a\tb");
    yes(".", "x");
    no(".", "\n");
    yes(r"x\$", "cost x$");
}

#[test]
fn anchors() {
    yes("^START", "START RequestId");
    no("^START", " START");
    yes("done$", "all done");
    yes("done$", "all done\n");
    no("done$", "done!x");
    yes("^$", "");
    no("^$", "x");
}

#[test]
fn lazy_quantifiers_are_accepted() {
    yes("a+?b", "aab");
    yes("a{2}?", "aa");
}

#[test]
fn rejected() {
    let err = |body: &str| Regex::parse(body, &format!("%{body}%")).unwrap_err();
    assert_eq!(
        err("something!"),
        FilterError::InvalidCharacters("%something!%".into())
    );
    assert_eq!(
        err("(a|b)"),
        FilterError::InvalidCharacters("%(a|b)%".into())
    );
    assert_eq!(err(r"\("), FilterError::InvalidCharacters(r"%\(%".into()));
    assert_eq!(err("a b"), FilterError::InvalidCharacters("%a b%".into()));
    assert_eq!(err("café"), FilterError::InvalidCharacters("%café%".into()));
    for bad in [
        "*a", "a**", "a{2", "a{x}", "a{3,2}", "[a", "[]", "[b-a]", r"\b", "a++", "]", "a{1001}", "",
    ] {
        assert!(matches!(err(bad), FilterError::Syntax(_)), "{bad}");
    }
}

#[test]
fn required_literal() {
    assert_eq!(re("ERROR").required_literal().as_deref(), Some("ERROR"));
    assert_eq!(
        re(r"id=\d+\suser=ab?c").required_literal().as_deref(),
        Some("user=a")
    );
    assert_eq!(re("a|b").required_literal(), None);
    assert_eq!(re(r"\d+").required_literal(), None);
}

#[test]
fn linear_time_on_hostile_input() {
    // Catastrophic for a backtracking engine.
    let text = "a".repeat(50_000);
    no("a*a*a*a*a*a*a*a*[bc]", &text);
    yes("a{1000}", &text[..5_000]);
}
