//! `${VAR}` substitution from the environment in every string of the file.
//!
//! In a connection URL a value is percent-encoded for the part of the URL it lands in, so that a
//! password holding `@`, `/`, `#` or `%` stays a password instead of moving the host or cutting the
//! URL short:
//!
//! ```text
//!   postgres://app:${PW}@db/crm        PW = p@ss/w#rd  ->  postgres://app:p%40ss%2Fw%23rd@db/crm
//!   ${URL}   postgres://${HOST}:5432/  inserted as is (scheme, host and port)
//! ```
//!
//! The part is read from the text the file writes around the variable, never from the value.

/// Replaces each `${NAME}` in `text` with the environment variable's value. `$${` stands for a
/// literal `${`. Returns the names of unset variables as the error.
pub fn expand(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, Vec<String>> {
    expand_with(text, lookup, &|_, _, value| value.to_string())
}

/// [`expand`] for a connection URL: each value is percent-encoded for where it lands (see the
/// module doc).
pub fn expand_url(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, Vec<String>> {
    expand_with(
        text,
        lookup,
        &|before, after, value| match url_part(before, after) {
            UrlPart::Verbatim => value.to_string(),
            UrlPart::UserInfo => encode(value, unreserved),
            UrlPart::Path => encode(value, |c| plain_except(c, "/?#")),
            UrlPart::Query => encode(value, |c| plain_except(c, "&=+#")),
            UrlPart::Fragment => value.to_string(),
        },
    )
}

#[derive(Debug, PartialEq, Eq)]
enum UrlPart {
    /// The scheme, the host or the port, or a whole URL: the value is URL text already.
    Verbatim,
    UserInfo,
    Path,
    Query,
    Fragment,
}

/// Which part of a URL a value lands in, from the file's text before and after the variable.
fn url_part(before: &str, after: &str) -> UrlPart {
    let Some(start) = before.find("://") else {
        return UrlPart::Verbatim;
    };
    let rest = &before[start + 3..];
    if rest.contains('#') {
        return UrlPart::Fragment;
    }
    if rest.contains('?') {
        return UrlPart::Query;
    }
    if rest.contains('/') {
        return UrlPart::Path;
    }
    if rest.contains('@') {
        return UrlPart::Verbatim;
    }
    let authority_rest = after.split(['/', '?', '#']).next().unwrap_or("");
    if authority_rest.contains('@') {
        UrlPart::UserInfo
    } else {
        UrlPart::Verbatim
    }
}

/// `value` with every character `keep` refuses percent-encoded as UTF-8 bytes.
fn encode(value: &str, keep: fn(char) -> bool) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if keep(c) {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

/// RFC 3986's unreserved characters: the only ones a user name or password keeps as they are.
fn unreserved(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~')
}

/// Printable ASCII other than `%`, a space and `delimiters`.
fn plain_except(c: char, delimiters: &str) -> bool {
    c.is_ascii_graphic() && c != '%' && !delimiters.contains(c)
}

/// The substitution loop; `place(text before, text after, value)` gives what the value becomes
/// (the texts are the file's, around the `${…}`).
fn expand_with(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    place: &dyn Fn(&str, &str, &str) -> String,
) -> Result<String, Vec<String>> {
    let mut out = String::with_capacity(text.len());
    let mut missing = Vec::new();
    let mut at = 0;
    while let Some(found) = text[at..].find('$') {
        let start = at + found;
        out.push_str(&text[at..start]);
        let tail = &text[start..];
        if tail.starts_with("$${") {
            out.push_str("${");
            at = start + 3;
        } else if let Some(after) = tail.strip_prefix("${") {
            match after.find('}') {
                Some(end) if is_name(&after[..end]) => {
                    let name = &after[..end];
                    let next = start + 2 + end + 1;
                    match lookup(name) {
                        Some(v) => out.push_str(&place(&text[..start], &text[next..], &v)),
                        None => missing.push(name.to_string()),
                    }
                    at = next;
                }
                _ => {
                    out.push('$');
                    at = start + 1;
                }
            }
        } else {
            out.push('$');
            at = start + 1;
        }
    }
    out.push_str(&text[at..]);
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
    fn url_values_are_encoded_for_their_part() {
        let env = |name: &str| {
            let value = match name {
                "PW" => "p@ss/w#rd:%é",
                "HOST" => "db.example:5433",
                "URL" => "postgres://u:x%40y@h/db",
                "DB" => "a/b",
                "CA" => "/etc/ssl/c a.pem",
                _ => return None,
            };
            Some(value.to_string())
        };
        let url = |t: &str| expand_url(t, &env).unwrap();
        assert_eq!(
            url("postgres://app:${PW}@db/crm"),
            "postgres://app:p%40ss%2Fw%23rd%3A%25%C3%A9@db/crm"
        );
        assert_eq!(
            url("postgres://${PW}@db/crm"),
            "postgres://p%40ss%2Fw%23rd%3A%25%C3%A9@db/crm"
        );
        assert_eq!(url("${URL}"), "postgres://u:x%40y@h/db");
        assert_eq!(
            url("postgres://u@${HOST}/crm"),
            "postgres://u@db.example:5433/crm"
        );
        assert_eq!(
            url("postgres://${HOST}/crm"),
            "postgres://db.example:5433/crm"
        );
        assert_eq!(url("mysql://u@h/${DB}"), "mysql://u@h/a%2Fb");
        assert_eq!(
            url("postgres://u@h/d?sslrootcert=${CA}&sslmode=verify-full"),
            "postgres://u@h/d?sslrootcert=/etc/ssl/c%20a.pem&sslmode=verify-full"
        );
        let parsed = url::Url::parse(&url("postgres://app:${PW}@db/crm")).unwrap();
        assert_eq!(parsed.host_str(), Some("db"));
        assert_eq!(parsed.username(), "app");
        // Outside URLs nothing changes.
        assert_eq!(expand("x ${PW}", &env).unwrap(), "x p@ss/w#rd:%é");
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
