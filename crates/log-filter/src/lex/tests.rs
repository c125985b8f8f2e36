use super::{tokenize, Tok};
use crate::value::Op;

fn texts(s: &str) -> Vec<String> {
    tokenize(s).unwrap().iter().map(Tok::text).collect()
}

#[test]
fn tokens() {
    assert_eq!(
        texts("$.a>=500&&$.b!=x"),
        ["$.a", ">=", "500", "&&", "$.b", "!=", "x"]
    );
    assert_eq!(
        texts(r#"( $.a == "x y" ) || $.b < -1e3"#),
        ["(", "$.a", "=", r#""x y""#, ")", "||", "$.b", "<", "-1e3"]
    );
    assert_eq!(texts("a = %x|y%, ..."), ["a", "=", "%x|y%", ",", "..."]);
    assert!(matches!(tokenize("a <= 1").unwrap()[1], Tok::Op(Op::Le)));
}

#[test]
fn quoted_escapes() {
    match &tokenize(r#""a\"b\\c\*d\e""#).unwrap()[0] {
        Tok::Quoted(chars, raw) => {
            let s: String = chars.iter().map(|(c, _)| c).collect();
            assert_eq!(s, r#"a"b\c*d\e"#);
            assert!(chars.iter().any(|&(c, escaped)| c == '*' && escaped));
            assert_eq!(raw, r#""a\"b\\c\*d\e""#);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn errors() {
    for s in ["a & b", "a | b", "a ! b", r#""open"#, "%open"] {
        assert!(tokenize(s).is_err(), "{s}");
    }
}
