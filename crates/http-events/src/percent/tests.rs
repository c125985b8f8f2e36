use super::{decode, decode_query};

#[test]
fn decodes_valid_escapes_and_keeps_the_rest() {
    assert_eq!(decode("a%20b%2Fc"), "a b/c");
    assert_eq!(decode("%e2%82%ac"), "€");
    assert_eq!(decode("100%"), "100%");
    assert_eq!(decode("%zz%4"), "%zz%4");
    assert_eq!(decode("pa2%Fth"), "pa2%Fth");
    assert_eq!(decode("a+b"), "a+b");
}

#[test]
fn invalid_utf8_becomes_replacement_characters() {
    assert_eq!(decode("%ff%fe"), "\u{fffd}\u{fffd}");
}

#[test]
fn query_components_turn_plus_into_space() {
    assert_eq!(decode_query("-+createdAt"), "- createdAt");
    assert_eq!(decode_query("a%2Bb"), "a+b");
}
