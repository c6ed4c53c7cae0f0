//! `${VAR}` substitution from the environment in every string of the file.

/// Replaces each `${NAME}` in `text` with the environment variable's value. `$${` stands for a
/// literal `${`. Returns the names of unset variables as the error.
pub fn expand(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, Vec<String>> {
    let mut out = String::with_capacity(text.len());
    let mut missing = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = tail.strip_prefix("${") {
            match after.find('}') {
                Some(end) if is_name(&after[..end]) => {
                    let name = &after[..end];
                    match lookup(name) {
                        Some(v) => out.push_str(&v),
                        None => missing.push(name.to_string()),
                    }
                    rest = &after[end + 1..];
                }
                _ => {
                    out.push('$');
                    rest = &tail[1..];
                }
            }
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    if missing.is_empty() {
        Ok(out)
    } else {
        Err(missing)
    }
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !s.as_bytes()[0].is_ascii_digit()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "PW").then(|| "p@ss".to_string())
    }

    #[test]
    fn substitutes_and_reports_missing() {
        assert_eq!(expand("a${PW}b", &env).unwrap(), "ap@ssb");
        assert_eq!(
            expand("cost $5 and $${PW}", &env).unwrap(),
            "cost $5 and ${PW}"
        );
        assert_eq!(
            expand("${NOPE}${PW}${ALSO}", &env).unwrap_err(),
            vec!["NOPE", "ALSO"]
        );
        assert_eq!(expand("${not valid}", &env).unwrap(), "${not valid}");
    }
}
