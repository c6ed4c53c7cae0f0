//! Connection URLs that hold passwords: never printed, logged or serialized with the password.

use std::fmt;

/// A database connection URL. `Debug` and `Display` show it with the password replaced by `***`;
/// only [`ConnUrl::expose`] gives the real text, for handing to a driver.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnUrl {
    raw: String,
    parsed: url::Url,
}

impl ConnUrl {
    pub fn parse(text: &str) -> Result<Self, url::ParseError> {
        let parsed = url::Url::parse(text)?;
        Ok(ConnUrl {
            raw: text.to_string(),
            parsed,
        })
    }

    /// The URL with its password, for a driver. Never log or print this.
    pub fn expose(&self) -> &str {
        &self.raw
    }

    pub fn scheme(&self) -> &str {
        self.parsed.scheme()
    }

    pub fn host(&self) -> Option<String> {
        self.parsed.host_str().map(str::to_string)
    }

    pub fn port(&self) -> Option<u16> {
        self.parsed.port()
    }

    pub fn user(&self) -> &str {
        self.parsed.username()
    }

    pub fn has_password(&self) -> bool {
        !self.secrets().is_empty()
    }

    /// Every secret the URL holds, as written and decoded: the password of its user info and the
    /// value of any query parameter named like a password (`?password=`, which libpq and
    /// tokio-postgres read, `sslpassword`).
    fn secrets(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(p) = self.parsed.password().filter(|p| !p.is_empty()) {
            out.push(p.to_string());
            out.push(
                percent_encoding::percent_decode_str(p)
                    .decode_utf8_lossy()
                    .into_owned(),
            );
        }
        for (k, v) in self.parsed.query_pairs() {
            if is_secret_param(&k) && !v.is_empty() {
                out.push(v.into_owned());
            }
        }
        if let Some(query) = self.parsed.query() {
            for pair in query.split('&') {
                if let Some((k, v)) = pair.split_once('=') {
                    if is_secret_param(k) && !v.is_empty() {
                        out.push(v.to_string());
                    }
                }
            }
        }
        out.sort_by_key(|s| std::cmp::Reverse(s.len()));
        out.dedup();
        out
    }

    /// The database named by the URL's path (`/app` -> `app`), percent-decoded.
    pub fn database(&self) -> Option<String> {
        let path = self.parsed.path().trim_start_matches('/');
        if path.is_empty() {
            return None;
        }
        // A URL path is percent-encoded, not form-encoded: `+` stays a plus sign, as the drivers
        // read it.
        Some(
            percent_encoding::percent_decode_str(path)
                .decode_utf8_lossy()
                .into_owned(),
        )
    }

    /// A query parameter (`?sslmode=require`).
    pub fn param(&self, name: &str) -> Option<String> {
        self.parsed
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// The same URL with `pairs` added to its query (values percent-encoded). The rest of the text,
    /// password included, is kept exactly as written.
    pub fn with_params(&self, pairs: &[(&str, &str)]) -> Result<ConnUrl, url::ParseError> {
        if pairs.is_empty() {
            return Ok(self.clone());
        }
        let added: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        let (body, fragment) = match self.raw.split_once('#') {
            Some((b, f)) => (b, Some(f)),
            None => (self.raw.as_str(), None),
        };
        let joiner = match body.find('?') {
            None => "?",
            Some(i) if i + 1 == body.len() || body.ends_with('&') => "",
            Some(_) => "&",
        };
        let mut text = format!("{body}{joiner}{added}");
        if let Some(f) = fragment {
            text.push('#');
            text.push_str(f);
        }
        ConnUrl::parse(&text)
    }

    /// The URL with the password replaced, in the user info and in the query, safe to print.
    pub fn redacted(&self) -> String {
        let mut u = self.parsed.clone();
        if u.password().is_some() {
            let _ = u.set_password(Some("***"));
        }
        if u.query_pairs().any(|(k, _)| is_secret_param(&k)) {
            let pairs: Vec<(String, String)> = u
                .query_pairs()
                .map(|(k, v)| {
                    let v = if is_secret_param(&k) {
                        "***".to_string()
                    } else {
                        v.into_owned()
                    };
                    (k.into_owned(), v)
                })
                .collect();
            u.query_pairs_mut().clear().extend_pairs(pairs);
        }
        u.to_string()
    }
}

impl fmt::Debug for ConnUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnUrl({:?})", self.redacted())
    }
}

impl fmt::Display for ConnUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// A query parameter that holds a password.
fn is_secret_param(name: &str) -> bool {
    name.to_ascii_lowercase().contains("password")
}

/// Hides a password from error texts that might quote it (driver errors sometimes echo the URL).
pub fn scrub(text: &str, url: &ConnUrl) -> String {
    url.secrets()
        .iter()
        .fold(text.to_string(), |t, secret| t.replace(secret, "***"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_never_shows() {
        let u =
            ConnUrl::parse("postgres://app:s3cr%21t@db.example:5433/crm?sslmode=require").unwrap();
        for shown in [format!("{u:?}"), u.to_string(), u.redacted()] {
            assert!(!shown.contains("s3cr"), "{shown}");
            assert!(shown.contains("***"), "{shown}");
        }
        assert_eq!(u.database().as_deref(), Some("crm"));
        assert_eq!(u.param("sslmode").as_deref(), Some("require"));
        assert_eq!(scrub("failed for s3cr%21t", &u), "failed for ***");
        assert_eq!(scrub("failed for s3cr!t", &u), "failed for ***");
    }

    /// Before the fix the path was decoded as form data: `a+b` came back as `a b`, while the
    /// driver connected to `a+b`.
    #[test]
    fn a_database_name_is_percent_decoded_and_keeps_its_plus_signs() {
        let u = ConnUrl::parse("mysql://app@db:3306/a+b%20c").unwrap();
        assert_eq!(u.database().as_deref(), Some("a+b c"));
    }

    #[test]
    fn a_password_in_the_query_never_shows() {
        let u = ConnUrl::parse(
            "postgres://app@db:5433/crm?sslmode=require&password=hunter%402&application_name=x",
        )
        .unwrap();
        for shown in [format!("{u:?}"), u.to_string(), u.redacted()] {
            assert!(!shown.contains("hunter"), "{shown}");
            assert!(shown.contains("sslmode=require"), "{shown}");
            assert!(shown.contains("application_name=x"), "{shown}");
        }
        assert!(u.has_password());
        assert_eq!(scrub("auth failed: hunter@2", &u), "auth failed: ***");
        assert_eq!(scrub("url …password=hunter%402", &u), "url …password=***");
    }

    #[test]
    fn parameters_are_added_and_the_rest_kept() {
        let u = ConnUrl::parse("postgres://app:s3cr%21t@db:5433/crm").unwrap();
        let v = u
            .with_params(&[
                ("sslmode", "verify-full"),
                ("sslrootcert", "/etc/a b/ca.pem"),
            ])
            .unwrap();
        assert_eq!(
            v.expose(),
            "postgres://app:s3cr%21t@db:5433/crm?sslmode=verify-full&sslrootcert=%2Fetc%2Fa+b%2Fca.pem"
        );
        assert_eq!(v.param("sslrootcert").as_deref(), Some("/etc/a b/ca.pem"));
        assert!(!format!("{v:?}").contains("s3cr"));
        let u = ConnUrl::parse("mysql://u@h/db?tcp_nodelay=true").unwrap();
        let v = u.with_params(&[("require_ssl", "true")]).unwrap();
        assert_eq!(
            v.expose(),
            "mysql://u@h/db?tcp_nodelay=true&require_ssl=true"
        );
        assert_eq!(u.with_params(&[]).unwrap(), u);
    }
}
