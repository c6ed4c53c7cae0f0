//! The node keys `tls` and `tls_ca_file`, folded into the node's connection URL once, when the file
//! is resolved: every connection to the node (apply, capture, catalog, setup, status, heartbeat,
//! copy) then reads them from the URL like parameters written there.
//!
//! ```text
//!  tls          PostgreSQL URL            MySQL/MariaDB URL
//!  disable      sslmode=disable           (nothing: plain is the driver's only other mode)
//!  prefer       sslmode=prefer            refused: the driver has no "prefer"
//!  require      sslmode=require           require_ssl=true&verify_ca=false
//!  verify-full  sslmode=verify-full       require_ssl=true
//!  tls_ca_file  sslrootcert=<file>        ssl_ca=<file>
//! ```
//!
//! A URL that already says something about TLS keeps it: when it says the same as the node keys
//! nothing is added, when it says something different the file is refused at the key, so that no
//! setting silently loses. `tls_ca_file` is read only under `verify-full` (a mode that checks the
//! certificate); with any other mode it is refused rather than ignored. No message quotes the URL.

use super::resolve::{Engine, TlsMode};
use super::{ConnUrl, Problem};

impl TlsMode {
    /// The name written in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::Disable => "disable",
            TlsMode::Prefer => "prefer",
            TlsMode::Require => "require",
            TlsMode::VerifyFull => "verify-full",
        }
    }

    fn parse(text: &str) -> Option<TlsMode> {
        Some(match text {
            "disable" => TlsMode::Disable,
            "prefer" => TlsMode::Prefer,
            "require" => TlsMode::Require,
            "verify-full" => TlsMode::VerifyFull,
            _ => return None,
        })
    }
}

/// Folds `tls` / `tls_ca_file` of node `path` into `url`. Returns the URL to connect with and the
/// TLS mode in effect; problems go to `problems` (the URL is then returned unchanged).
pub(super) fn fold(
    engine: Engine,
    url: ConnUrl,
    tls: Option<&str>,
    ca_file: Option<&str>,
    path: &str,
    problems: &mut Vec<Problem>,
) -> (ConnUrl, TlsMode) {
    let before = problems.len();
    let tls = tls.and_then(|t| {
        let mode = TlsMode::parse(t);
        if mode.is_none() {
            let message = if matches!(t, "verify-ca" | "verify_ca") {
                "verify-ca is not supported (the certificate would be checked without the host name)"
                    .to_string()
            } else {
                format!("unknown TLS mode {t:?}")
            };
            problems.push(Problem::error(
                format!("{path}.tls"),
                message,
                "use disable, prefer, require or verify-full (verify-full checks the CA and the host name)",
            ));
        }
        mode
    });
    let (from_url, url_ca) = match engine {
        Engine::Postgres => (
            url.param("sslmode").map(|m| match m.as_str() {
                "allow" => "prefer".to_string(),
                _ => m,
            }),
            url.param("sslrootcert"),
        ),
        Engine::Mysql => (
            mysql_mode(&url).map(|m| m.as_str().to_string()),
            url.param("ssl_ca"),
        ),
    };
    let (url_key, ca_key) = match engine {
        Engine::Postgres => ("sslmode", "sslrootcert"),
        Engine::Mysql => ("require_ssl", "ssl_ca"),
    };
    if let (Some(mode), Some(said)) = (tls, &from_url) {
        if mode.as_str() != said {
            problems.push(Problem::error(
                format!("{path}.tls"),
                format!(
                    "tls = {:?} but the url's {url_key} parameters say {said:?}",
                    mode.as_str()
                ),
                format!("say it once: remove tls, or the url's {url_key} parameters"),
            ));
        }
    }
    if let (Some(file), Some(said)) = (ca_file, &url_ca) {
        if file != said {
            problems.push(Problem::error(
                format!("{path}.tls_ca_file"),
                format!("tls_ca_file names another file than the url's {ca_key}"),
                format!("say it once: remove tls_ca_file, or {ca_key} from the url"),
            ));
        }
    }
    if engine == Engine::Mysql && tls == Some(TlsMode::Prefer) {
        problems.push(Problem::error(
            format!("{path}.tls"),
            "the MySQL/MariaDB driver has no \"prefer\": it connects either in plain text or with TLS required",
            "use require (encrypted, certificate unchecked), verify-full, or disable",
        ));
    }
    let effective = tls
        .or_else(|| from_url.as_deref().and_then(TlsMode::parse))
        .unwrap_or(match engine {
            Engine::Postgres => TlsMode::Prefer,
            Engine::Mysql => TlsMode::Disable,
        });
    if ca_file.is_some() && effective != TlsMode::VerifyFull {
        problems.push(Problem::error(
            format!("{path}.tls_ca_file"),
            format!(
                "tls_ca_file is read only under verify-full, and the TLS mode here is {}",
                effective.as_str()
            ),
            "set tls = \"verify-full\" to check the server's certificate against this CA, or remove tls_ca_file",
        ));
    }
    if problems.len() > before {
        return (url, effective);
    }
    let mut added: Vec<(&str, &str)> = Vec::new();
    if let (Some(mode), None) = (tls, &from_url) {
        match (engine, mode) {
            (Engine::Postgres, m) => added.push(("sslmode", m.as_str())),
            (Engine::Mysql, TlsMode::Require) => {
                added.extend([("require_ssl", "true"), ("verify_ca", "false")])
            }
            (Engine::Mysql, TlsMode::VerifyFull) => added.push(("require_ssl", "true")),
            (Engine::Mysql, TlsMode::Disable | TlsMode::Prefer) => {}
        }
    }
    if let (Some(file), None) = (ca_file, &url_ca) {
        added.push((ca_key, file));
    }
    match url.with_params(&added) {
        Ok(folded) => (folded, effective),
        Err(e) => {
            problems.push(Problem::error(
                format!("{path}.tls_ca_file"),
                format!("the TLS settings cannot be added to the url ({e})"),
                "write them in the url instead",
            ));
            (url, effective)
        }
    }
}

/// The TLS mode a `mysql://` URL asks for, when it says anything about TLS.
fn mysql_mode(url: &ConnUrl) -> Option<TlsMode> {
    let require = url.param("require_ssl")?;
    Some(
        match (require.as_str(), url.param("verify_ca").as_deref()) {
            ("true", Some("false")) => TlsMode::Require,
            ("true", _) => TlsMode::VerifyFull,
            _ => TlsMode::Disable,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        engine: Engine,
        url: &str,
        tls: Option<&str>,
        ca: Option<&str>,
    ) -> Result<(String, TlsMode), Vec<Problem>> {
        let mut problems = Vec::new();
        let (u, mode) = fold(
            engine,
            ConnUrl::parse(url).unwrap(),
            tls,
            ca,
            "nodes.a",
            &mut problems,
        );
        if problems.is_empty() {
            Ok((u.expose().to_string(), mode))
        } else {
            for p in &problems {
                assert!(!p.to_string().contains("s3cret"), "{p}");
            }
            Err(problems)
        }
    }

    fn refused(r: Result<(String, TlsMode), Vec<Problem>>, path: &str, needle: &str) {
        let problems = r.expect_err("refused");
        assert!(
            problems
                .iter()
                .any(|p| p.path == path && p.to_string().contains(needle)),
            "expected {path} mentioning {needle:?}: {problems:?}"
        );
    }

    const PG: &str = "postgres://app:s3cret@db.example:5432/crm";
    const MY: &str = "mysql://app:s3cret@db.example:3306/desk";

    #[test]
    fn postgres_keys_become_sslmode_and_sslrootcert() {
        assert_eq!(
            run(
                Engine::Postgres,
                PG,
                Some("verify-full"),
                Some("/etc/tandem/ca.pem")
            )
            .unwrap(),
            (
                format!("{PG}?sslmode=verify-full&sslrootcert=%2Fetc%2Ftandem%2Fca.pem"),
                TlsMode::VerifyFull
            )
        );
        assert_eq!(
            run(Engine::Postgres, PG, Some("require"), None).unwrap(),
            (format!("{PG}?sslmode=require"), TlsMode::Require)
        );
        assert_eq!(
            run(Engine::Postgres, PG, None, None).unwrap(),
            (PG.to_string(), TlsMode::Prefer)
        );
    }

    #[test]
    fn mysql_keys_become_require_ssl_and_ssl_ca() {
        assert_eq!(
            run(Engine::Mysql, MY, Some("verify-full"), Some("/ca.pem"))
                .unwrap()
                .0,
            format!("{MY}?require_ssl=true&ssl_ca=%2Fca.pem")
        );
        assert_eq!(
            run(Engine::Mysql, MY, Some("require"), None).unwrap(),
            (
                format!("{MY}?require_ssl=true&verify_ca=false"),
                TlsMode::Require
            )
        );
        assert_eq!(
            run(Engine::Mysql, MY, Some("disable"), None).unwrap(),
            (MY.to_string(), TlsMode::Disable)
        );
        refused(
            run(Engine::Mysql, MY, Some("prefer"), None),
            "nodes.a.tls",
            "no \"prefer\"",
        );
    }

    #[test]
    fn the_url_saying_the_same_adds_nothing_and_saying_otherwise_is_refused() {
        let url = format!("{PG}?sslmode=verify-full&sslrootcert=/ca.pem");
        assert_eq!(
            run(Engine::Postgres, &url, Some("verify-full"), Some("/ca.pem"))
                .unwrap()
                .0,
            url
        );
        refused(
            run(
                Engine::Postgres,
                &format!("{PG}?sslmode=require"),
                Some("verify-full"),
                None,
            ),
            "nodes.a.tls",
            "say it once",
        );
        refused(
            run(Engine::Postgres, &url, None, Some("/other.pem")),
            "nodes.a.tls_ca_file",
            "another file",
        );
        // The URL's mode with the node's CA file.
        assert_eq!(
            run(
                Engine::Postgres,
                &format!("{PG}?sslmode=verify-full"),
                None,
                Some("/ca.pem")
            )
            .unwrap()
            .0,
            format!("{PG}?sslmode=verify-full&sslrootcert=%2Fca.pem")
        );
        let url = format!("{MY}?require_ssl=true");
        assert_eq!(
            run(Engine::Mysql, &url, Some("verify-full"), None)
                .unwrap()
                .0,
            url
        );
        refused(
            run(Engine::Mysql, &url, Some("require"), None),
            "nodes.a.tls",
            "require_ssl",
        );
    }

    #[test]
    fn a_ca_file_without_verify_full_and_verify_ca_are_refused() {
        refused(
            run(Engine::Postgres, PG, None, Some("/ca.pem")),
            "nodes.a.tls_ca_file",
            "verify-full",
        );
        refused(
            run(Engine::Mysql, MY, Some("require"), Some("/ca.pem")),
            "nodes.a.tls_ca_file",
            "verify-full",
        );
        refused(
            run(Engine::Postgres, PG, Some("verify-ca"), Some("/ca.pem")),
            "nodes.a.tls",
            "verify-ca is not supported",
        );
        refused(
            run(Engine::Postgres, PG, Some("sometimes"), None),
            "nodes.a.tls",
            "unknown TLS mode",
        );
    }
}
