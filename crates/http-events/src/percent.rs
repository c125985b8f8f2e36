//! Percent-decoding as the front ends do it: `%XX` with two hex digits becomes that byte, anything
//! else — including a `%` not followed by two hex digits — stays as it is, and bytes that are not
//! UTF-8 afterwards become U+FFFD.

#[cfg(test)]
mod tests;

/// Decodes `%XX` sequences of a path segment (a `+` stays a `+`).
pub(crate) fn decode(s: &str) -> String {
    decode_bytes(s.as_bytes(), false)
}

/// Decodes a query-string name or value: `+` is a space, then `%XX` sequences.
pub(crate) fn decode_query(s: &str) -> String {
    decode_bytes(s.as_bytes(), true)
}

fn decode_bytes(input: &[u8], plus_is_space: bool) -> String {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let byte = input[i];
        if byte == b'%' {
            let hi = input.get(i + 1).and_then(|b| hex(*b));
            let lo = input.get(i + 2).and_then(|b| hex(*b));
            if let (Some(hi), Some(lo)) = (hi, lo) {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
        }
        out.push(if plus_is_space && byte == b'+' {
            b' '
        } else {
            byte
        });
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}
