//! Query strings, decoded (repeated keys such as `tagKeys` kept in order).

pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    pub(crate) fn parse(raw: Option<&str>) -> Self {
        let pairs = raw
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (decode(k), decode(v))
            })
            .collect();
        Query(pairs)
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// One page of `(key, item)` pairs: the items after the one whose key is the `Marker`, at
/// most `MaxItems` (capped at `max`), and the marker of the next page if there is one.
pub(crate) fn paginate(
    items: Vec<(String, serde_json::Value)>,
    q: &Query,
    max: usize,
) -> crate::ApiResult<(Vec<serde_json::Value>, Option<String>)> {
    let size = match q.get("MaxItems") {
        None => max,
        Some(m) => match m.parse::<usize>() {
            Ok(n) if n >= 1 => n.min(max),
            _ => {
                return Err(crate::ApiError::validation(format!(
                    "1 validation error detected: Value '{m}' at 'maxItems' failed to satisfy constraint: Member must have value greater than or equal to 1"
                )))
            }
        },
    };
    let start = match q.get("Marker").filter(|m| !m.is_empty()) {
        Some(m) => items
            .iter()
            .position(|(k, _)| k == m)
            .map_or(items.len(), |i| i + 1),
        None => 0,
    };
    let rest = &items[start.min(items.len())..];
    let next = (rest.len() > size).then(|| rest[size - 1].0.clone());
    Ok((
        rest.iter().take(size).map(|(_, v)| v.clone()).collect(),
        next,
    ))
}

/// One page as Lambda's list operations answer it: `{key: [...], "NextMarker": …}`.
pub(crate) fn page(
    key: &str,
    items: Vec<(String, serde_json::Value)>,
    q: &Query,
    max: usize,
) -> crate::ApiResult<serde_json::Value> {
    let (page, next) = paginate(items, q, max)?;
    let mut out = serde_json::json!({ key: page });
    if let Some(n) = next {
        out["NextMarker"] = n.into();
    }
    Ok(out)
}

/// Percent-decoding (`+` is a space, as form encoding has it).
pub(crate) fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_repeated_keys() {
        let q = Query::parse(Some("tagKeys=a&tagKeys=b%20c&Qualifier=%24LATEST&x=%"));
        assert_eq!(q.all("tagKeys"), vec!["a", "b c"]);
        assert_eq!(q.get("Qualifier"), Some("$LATEST"));
        assert_eq!(q.get("x"), Some("%"));
    }
}
