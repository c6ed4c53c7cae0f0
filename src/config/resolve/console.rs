//! `[console]`: where the steward's console listens and the token that opens it.
//!
//! The rules: a token is required (at least [`MIN_TOKEN_LEN`] characters, so that it is not a
//! word); `tls_cert` and `tls_key` come together (the console then serves HTTPS); without them the
//! console serves plain HTTP, so a non-loopback address is refused unless the file says
//! `insecure = true` (a TLS-terminating proxy in front, or a trusted network).

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use super::super::file::ConsoleFile;
use super::super::Problem;

/// Shortest token accepted.
pub const MIN_TOKEN_LEN: usize = 16;

/// The console, resolved. `Debug` hides the token; nothing serializes it.
#[derive(Clone, PartialEq, Eq)]
pub struct ConsoleSettings {
    pub listen: SocketAddr,
    token: String,
    /// `(certificate chain, private key)` PEM files: the console serves HTTPS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Non-loopback over plain HTTP allowed.
    pub insecure: bool,
}

impl ConsoleSettings {
    pub fn new(
        listen: SocketAddr,
        token: String,
        tls: Option<(PathBuf, PathBuf)>,
        insecure: bool,
    ) -> Self {
        ConsoleSettings {
            listen,
            token,
            tls,
            insecure,
        }
    }

    /// The token, for comparing with what a client sends. Never log or print this.
    pub fn token(&self) -> &str {
        &self.token
    }
}

impl fmt::Debug for ConsoleSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsoleSettings")
            .field("listen", &self.listen)
            .field("token", &"***")
            .field("tls", &self.tls)
            .field("insecure", &self.insecure)
            .finish()
    }
}

pub(super) fn resolve(file: ConsoleFile, problems: &mut Vec<Problem>) -> Option<ConsoleSettings> {
    let before = problems.len();
    let listen = match file.listen.parse::<SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            problems.push(Problem::error(
                "console.listen",
                format!("{:?} is not an address", file.listen),
                "write host:port, e.g. \"127.0.0.1:9465\"",
            ));
            None
        }
    };
    match file.token.as_deref() {
        None | Some("") => problems.push(Problem::error(
            "console.token",
            "the console needs a token (anyone reaching the address could otherwise resolve conflicts)",
            "add token = \"${TANDEM_CONSOLE_TOKEN}\" and export a long random value, e.g. `openssl rand -hex 32`",
        )),
        Some(t) if t.chars().count() < MIN_TOKEN_LEN => problems.push(Problem::error(
            "console.token",
            format!("the token is {} characters; at least {MIN_TOKEN_LEN} are required", t.chars().count()),
            "use a long random value, e.g. `openssl rand -hex 32`",
        )),
        Some(_) => {}
    }
    let tls = match (&file.tls_cert, &file.tls_key) {
        (Some(c), Some(k)) => Some((PathBuf::from(c), PathBuf::from(k))),
        (None, None) => None,
        (Some(_), None) => {
            problems.push(Problem::error(
                "console.tls_key",
                "tls_cert is set but tls_key is not",
                "add tls_key = \"/path/to/key.pem\" (the certificate's private key), or remove tls_cert",
            ));
            None
        }
        (None, Some(_)) => {
            problems.push(Problem::error(
                "console.tls_cert",
                "tls_key is set but tls_cert is not",
                "add tls_cert = \"/path/to/cert.pem\" (the certificate chain), or remove tls_key",
            ));
            None
        }
    };
    if let Some(a) = listen {
        let tls_asked = file.tls_cert.is_some() || file.tls_key.is_some();
        if !a.ip().is_loopback() && !tls_asked && !file.insecure {
            problems.push(Problem::error(
                "console.listen",
                format!("{a} is not a loopback address and the console would serve plain HTTP: the token and row values would cross the network in clear"),
                "set tls_cert and tls_key (the console then serves HTTPS), listen on 127.0.0.1 (reach it through an SSH tunnel or a TLS-terminating proxy on the same host), or set insecure = true if a proxy or a trusted network protects it",
            ));
        }
    }
    if problems.len() > before {
        return None;
    }
    Some(ConsoleSettings::new(
        listen?,
        file.token?,
        tls,
        file.insecure,
    ))
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, Severity};

    const BASE: &str =
        "[nodes.a]\nurl = \"postgres://u@h/db\"\n[nodes.b]\nurl = \"mysql://u@h/db\"\n\
         [[tables]]\nname = \"t\"\nkey = [\"id\"]\n";

    fn problems(console: &str, env: &[(&str, &str)]) -> Vec<String> {
        let text = format!("{BASE}[console]\n{console}");
        let lookup = |name: &str| {
            env.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        };
        match Config::from_str_with_env(&text, "t.toml", &lookup) {
            Ok((c, _)) => {
                assert!(c.console.is_some());
                vec![]
            }
            Err(e) => e
                .problems
                .iter()
                .filter(|p| p.severity == Severity::Error)
                .map(|p| format!("{}: {} / {}", p.path, p.message, p.fix))
                .collect(),
        }
    }

    #[test]
    fn console_needs_a_long_token() {
        let p = problems("listen = \"127.0.0.1:9465\"\n", &[]);
        assert!(
            p.len() == 1 && p[0].starts_with("console.token: the console needs a token"),
            "{p:?}"
        );
        assert!(
            p[0].contains("TANDEM_CONSOLE_TOKEN"),
            "the fix shows how: {p:?}"
        );
        let p = problems("listen = \"127.0.0.1:9465\"\ntoken = \"short\"\n", &[]);
        assert!(p.len() == 1 && p[0].contains("at least 16"), "{p:?}");
        let p = problems(
            "listen = \"127.0.0.1:9465\"\ntoken = \"${T}\"\n",
            &[("T", "0123456789abcdef0123")],
        );
        assert!(p.is_empty(), "{p:?}");
    }

    #[test]
    fn console_refuses_a_public_address_unless_insecure() {
        let token = "token = \"0123456789abcdef0123\"\n";
        let p = problems(&format!("listen = \"0.0.0.0:9465\"\n{token}"), &[]);
        assert!(
            p.len() == 1 && p[0].starts_with("console.listen: 0.0.0.0:9465 is not a loopback"),
            "{p:?}"
        );
        assert!(
            p[0].contains("insecure = true"),
            "the fix names the key: {p:?}"
        );
        let p = problems(
            &format!("listen = \"0.0.0.0:9465\"\n{token}insecure = true\n"),
            &[],
        );
        assert!(p.is_empty(), "{p:?}");
        let p = problems(&format!("listen = \"[::1]:9465\"\n{token}"), &[]);
        assert!(p.is_empty(), "{p:?}");
        let p = problems(
            &format!(
                "listen = \"0.0.0.0:9465\"\n{token}tls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n"
            ),
            &[],
        );
        assert!(p.is_empty(), "HTTPS may listen anywhere: {p:?}");
        let p = problems(
            &format!("listen = \"127.0.0.1:9465\"\n{token}tls_cert = \"c.pem\"\n"),
            &[],
        );
        assert!(
            p.len() == 1 && p[0].starts_with("console.tls_key: tls_cert is set"),
            "{p:?}"
        );
        let p = problems(&format!("listen = \"nowhere\"\n{token}"), &[]);
        assert!(
            p.len() == 1 && p[0].starts_with("console.listen: \"nowhere\""),
            "{p:?}"
        );
    }

    #[test]
    fn console_token_is_hidden_from_debug() {
        let (c, _) = Config::from_str_with_env(
            &format!(
                "{BASE}[console]\nlisten = \"127.0.0.1:1\"\ntoken = \"0123456789abcdef-secret\"\n"
            ),
            "t.toml",
            &|_| None,
        )
        .unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("secret"), "{shown}");
    }
}
