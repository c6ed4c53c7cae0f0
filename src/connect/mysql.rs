//! MySQL/MariaDB connection options from a `mysql://` URL, TLS included.
//!
//! mysql_async reads `require_ssl`, `verify_ca`, `verify_identity` and `built_in_roots`; tandem adds
//! `ssl_ca` (a PEM file of the CA to trust: then only that CA is trusted, as with `--ssl-ca`) and
//! refuses a TLS parameter that would do nothing because `require_ssl=true` is missing: without it
//! mysql_async connects in plain text whatever else the URL says.
//!
//! | URL                                         | encrypted | CA checked | host name checked |
//! |---------------------------------------------|-----------|------------|-------------------|
//! | (nothing) or `require_ssl=false`            | no        |            |                   |
//! | `require_ssl=true&verify_ca=false`          | yes       | no         | no                |
//! | `require_ssl=true`                          | yes       | yes        | yes               |

use std::path::PathBuf;

use mysql_async::prelude::Queryable;
use mysql_async::{Opts, OptsBuilder};

use super::tls::{read_pem, Failure};
use super::{ConnectError, TlsFailure};

/// The TLS parameters tandem reads itself; mysql_async does not know them.
const OURS: &[&str] = &["ssl_ca"];
/// mysql_async's TLS parameters that only matter with `require_ssl=true`.
const NEED_REQUIRE: &[&str] = &["verify_ca", "verify_identity", "built_in_roots", "ssl_ca"];

/// Reads a `mysql://` URL into driver options. Errors name the parameter and the fix, never the URL.
pub fn mysql_opts(url: &str) -> Result<Opts, ConnectError> {
    let config = |m: String| ConnectError::Config(m);
    let mut parsed =
        url::Url::parse(url).map_err(|e| config(format!("MySQL/MariaDB connection URL: {e}")))?;
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let param = |name: &str| pairs.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v);
    let require = param("require_ssl").is_some_and(|v| v == "true");
    if !require {
        if let Some(name) = NEED_REQUIRE.iter().find(|n| param(n).is_some()) {
            return Err(config(format!(
                "{name} does nothing without require_ssl=true (the connection would not be \
                 encrypted): add require_ssl=true to the URL, or remove {name}"
            )));
        }
    }
    if param("verify_identity").is_some_and(|v| v == "false")
        && param("verify_ca").is_none_or(|v| v != "false")
    {
        // mysql_async 0.37 recognises a name mismatch by the text "NotValidForName", which rustls
        // 0.23 no longer prints, so it would check the name anyway and fail confusingly later.
        return Err(config(
            "verify_identity=false is not honoured by the MySQL driver (it checks the host name \
             anyway): connect with a host name the server's certificate lists, or use \
             verify_ca=false to encrypt without checking the certificate"
                .into(),
        ));
    }
    let ca = param("ssl_ca").map(PathBuf::from);
    if let Some(path) = &ca {
        read_pem(path).map_err(|e| config(format!("ssl_ca: {e}")))?;
    }
    let kept: Vec<&(String, String)> = pairs
        .iter()
        .filter(|(k, _)| !OURS.contains(&k.as_str()))
        .collect();
    if kept.is_empty() {
        parsed.set_query(None);
    } else {
        parsed.query_pairs_mut().clear().extend_pairs(kept);
    }
    let opts = Opts::from_url(parsed.as_str()).map_err(|e| {
        config(match e {
            mysql_async::UrlError::UnknownParameter { param } => format!(
                "unknown URL parameter {param}: see the README's TLS section for the ones \
                 tandem reads"
            ),
            other => format!("MySQL/MariaDB connection URL: {other}"),
        })
    })?;
    let Some(ssl) = opts.ssl_opts().cloned() else {
        return Ok(opts);
    };
    let mut builder = OptsBuilder::from_opts(opts);
    if param("prefer_socket").is_none() {
        // mysql_async would otherwise swap a loopback TCP connection for the server's unix socket,
        // which it never encrypts: with require_ssl=true every connection is TLS.
        builder = builder.prefer_socket(false);
    }
    if let Some(path) = ca {
        builder = builder.ssl_opts(
            ssl.with_root_certs(vec![path.into()])
                .with_disable_built_in_roots(true),
        );
    }
    Ok(builder.into())
}

/// Connects with `opts`; a failed TLS setup comes back as [`ConnectError::Tls`] in words. The session
/// runs with `NO_BACKSLASH_ESCAPES`, which tandem's literals need (see [`super::quote`]).
pub async fn mysql(opts: Opts) -> Result<mysql_async::Conn, ConnectError> {
    let host = opts.ip_or_hostname().to_string();
    let port = opts.tcp_port();
    let ssl = opts.ssl_opts().cloned();
    let conn = mysql_async::Conn::new(opts).await.map_err(|e| {
        let Some(ssl) = &ssl else {
            return ConnectError::Mysql(e);
        };
        let endpoint = format!("MySQL/MariaDB at {host}:{port}");
        match &e {
            mysql_async::Error::Driver(mysql_async::DriverError::NoClientSslFlagFromServer) => {
                ConnectError::Tls(TlsFailure {
                    endpoint,
                    what: "the server does not accept TLS connections".into(),
                    fix: "give the server ssl_cert and ssl_key, or remove require_ssl=true from \
                          the URL"
                        .into(),
                })
            }
            mysql_async::Error::Io(_) if is_tls(&e) => {
                let failure = Failure::of(&e);
                let trusted = if ssl.root_certs().is_empty() {
                    "a public CA (no ssl_ca given)"
                } else {
                    "the CA in ssl_ca"
                };
                let fix = match failure {
                    Failure::Untrusted => "add ssl_ca=<PEM file of the CA that signed the \
                         server's certificate> to the URL, or verify_ca=false to encrypt without \
                         checking it"
                        .to_string(),
                    Failure::NameMismatch => format!(
                        "connect with a host name the certificate lists (subjectAltName), \
                         or reissue the certificate for {host}"
                    ),
                    Failure::Expired => {
                        "renew the server's certificate (or correct this machine's clock)".into()
                    }
                    Failure::Other(_) => {
                        "check the server's TLS settings (ssl_cert, ssl_key)".into()
                    }
                };
                ConnectError::Tls(TlsFailure {
                    endpoint,
                    what: failure.what(&host, trusted),
                    fix,
                })
            }
            _ => ConnectError::Mysql(e),
        }
    })?;
    let mut conn = conn;
    conn.query_drop(super::quote::mysql::NO_BACKSLASH_ESCAPES)
        .await
        .map_err(ConnectError::Mysql)?;
    Ok(conn)
}

/// Whether an i/o error came from the TLS layer (a rustls error anywhere in it).
fn is_tls(e: &mysql_async::Error) -> bool {
    matches!(e, mysql_async::Error::Io(mysql_async::IoError::Tls(_)))
        || super::tls::find_rustls(e).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_parameters_without_require_ssl_are_refused() {
        for p in [
            "verify_ca=false",
            "verify_identity=true",
            "ssl_ca=/tmp/ca.pem",
        ] {
            let url = format!("mysql://u:hunter2@h/db?{p}");
            let err = mysql_opts(&url).unwrap_err().to_string();
            let name = p.split('=').next().unwrap();
            assert!(
                err.contains(name) && err.contains("require_ssl=true"),
                "{err}"
            );
            assert!(!err.contains("hunter2"), "{err}");
        }
    }

    #[test]
    fn url_parameters_reach_the_ssl_options() {
        let opts = mysql_opts("mysql://u@h/db?require_ssl=true").unwrap();
        let ssl = opts.ssl_opts().expect("TLS on");
        assert!(!ssl.skip_domain_validation() && !ssl.accept_invalid_certs());
        let err = mysql_opts("mysql://u@h/db?require_ssl=true&verify_identity=false")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("verify_identity=false is not honoured"),
            "{err}"
        );
        assert!(
            !opts.prefer_socket(),
            "a TLS connection must not move to the unix socket"
        );
        let opts = mysql_opts("mysql://u@h/db?require_ssl=true&verify_ca=false").unwrap();
        assert!(opts.ssl_opts().expect("TLS on").accept_invalid_certs());
        assert!(mysql_opts("mysql://u@h/db").unwrap().ssl_opts().is_none());
        assert!(mysql_opts("mysql://u@h/db?require_ssl=false")
            .unwrap()
            .ssl_opts()
            .is_none());
    }

    #[test]
    fn ssl_ca_is_the_only_trusted_root() {
        let path = std::env::temp_dir().join(format!("tandem-mysql-ca-{}.pem", std::process::id()));
        // A syntactically valid PEM certificate block is enough to be read; it is not used here.
        std::fs::write(
            &path,
            "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let url = format!(
            "mysql://u@h/db?require_ssl=true&ssl_ca={}&tcp_nodelay=true",
            path.display()
        );
        let opts = mysql_opts(&url);
        let _ = std::fs::remove_file(&path);
        let opts = opts.unwrap();
        let ssl = opts.ssl_opts().expect("TLS on");
        assert!(ssl.disable_built_in_roots());
        assert_eq!(ssl.root_certs().len(), 1);
        let err = mysql_opts("mysql://u@h/db?require_ssl=true&ssl_ca=/nonexistent.pem")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ssl_ca") && err.contains("/nonexistent.pem"),
            "{err}"
        );
        let err = mysql_opts("mysql://u@h/db?require_ssl=true&sslmode=verify-full")
            .unwrap_err()
            .to_string();
        assert!(err.contains("sslmode"), "{err}");
    }
}
