//! A small fixed hash (FNV-1a, 64 bits) for names and references that must stay the same across
//! tandem and Rust versions (`std`'s hasher promises no such thing). Not for security.

/// FNV-1a over `parts` joined by NUL bytes.
pub fn fnv1a(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, part) in parts.iter().enumerate() {
        let sep: &[u8] = if i == 0 { b"" } else { b"\0" };
        for &b in sep.iter().chain(part.as_bytes()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// How logs, errors and `/health` refer to a row key without showing its values: `#` and 8 hex
/// digits of its text's hash (the same key always gives the same reference).
pub fn key_ref(key: &str) -> String {
    format!("#{:08x}", fnv1a(&[key]) >> 32)
}

/// `text` with every occurrence of the row key `key` replaced by its [`key_ref`].
pub fn without_key(text: &str, key: &str) -> String {
    if key.is_empty() {
        text.to_string()
    } else {
        text.replace(key, &key_ref(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_references_hide_the_values() {
        let key = r#"{"id":"31337"}"#;
        let text = format!("table t, key {key}: too long");
        let shown = without_key(&text, key);
        assert!(!shown.contains("31337"), "{shown}");
        assert_eq!(shown, format!("table t, key {}: too long", key_ref(key)));
        assert_eq!(key_ref(key).len(), 9);
        assert_eq!(without_key("x", ""), "x");
    }
}
