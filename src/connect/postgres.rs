//! PostgreSQL client connections with libpq's `sslmode` and `sslrootcert`, through a small
//! tokio-postgres [`MakeTlsConnect`] adapter over tokio-rustls.
//!
//! sslmode, as libpq: `disable` (plain), `prefer` (the default: TLS if the server offers it, the
//! certificate unchecked; plain otherwise), `require` (TLS, certificate unchecked), `verify-full` (TLS,
//! the certificate chains to `sslrootcert`, or to the public web roots without one, and names the
//! host). `verify-ca` is refused rather than silently treated as something else. tokio-postgres reads
//! every other URL parameter (`connect_timeout`, `keepalives`, `application_name`, …) itself.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::ServerName;

use super::tls::{client_config, Failure};
use super::{ConnectError, TlsFailure};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyFull,
}

impl SslMode {
    /// Reads an `sslmode` value; the error names the parameter and the values that work.
    pub fn parse(value: &str) -> Result<SslMode, String> {
        match value {
            "disable" => Ok(SslMode::Disable),
            "prefer" | "allow" => Ok(SslMode::Prefer),
            "require" => Ok(SslMode::Require),
            "verify-full" => Ok(SslMode::VerifyFull),
            "verify-ca" => Err(
                "sslmode=verify-ca is not supported: use sslmode=verify-full \
                 (checks the CA and that the certificate names the host) or sslmode=require"
                    .into(),
            ),
            other => Err(format!(
                "sslmode={other} is not a TLS mode: use disable, prefer, require or verify-full"
            )),
        }
    }
}

/// The TLS part of a connection URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsParams {
    pub sslmode: SslMode,
    pub sslrootcert: Option<PathBuf>,
}

impl TlsParams {
    /// The rustls configuration these settings ask for.
    pub(crate) fn client_config(&self) -> Result<rustls::ClientConfig, String> {
        client_config(
            self.sslmode == SslMode::VerifyFull,
            self.sslrootcert.as_deref(),
        )
        .map_err(|e| format!("sslrootcert: {e}"))
    }

    /// A handshake failure with `host:port`, in words, with the parameter to change.
    pub(crate) fn failure(&self, host: &str, port: u16, failure: &Failure) -> TlsFailure {
        let trusted = match &self.sslrootcert {
            Some(p) => format!("the CA in sslrootcert {}", p.display()),
            None => "a public CA (no sslrootcert given)".into(),
        };
        let fix = match failure {
            Failure::Untrusted => "set sslrootcert to the PEM file of the CA that signed the \
                 server's certificate, or use sslmode=require to encrypt without checking it"
                .to_string(),
            Failure::NameMismatch => format!(
                "connect with a host name the certificate lists (subjectAltName), reissue the \
                 certificate for {host}, or use sslmode=require to encrypt without checking it"
            ),
            Failure::Expired => {
                "renew the server's certificate (or correct this machine's clock)".into()
            }
            Failure::Other(_) => "check the server's ssl settings; sslmode=disable connects \
                 without TLS where the server allows it"
                .into(),
        };
        TlsFailure {
            endpoint: format!("PostgreSQL at {host}:{port}"),
            what: failure.what(host, &trusted),
            fix,
        }
    }

    /// The server answered an SSLRequest with no while this mode needs TLS.
    pub(crate) fn refused(&self, host: &str, port: u16) -> TlsFailure {
        TlsFailure {
            endpoint: format!("PostgreSQL at {host}:{port}"),
            what: "the server does not accept TLS connections".into(),
            fix: "turn ssl on in the server's postgresql.conf, or use sslmode=prefer or \
                  sslmode=disable"
                .into(),
        }
    }
}

/// Splits a `postgres://` URL into the part tokio-postgres reads and the TLS parameters it does not
/// know (`sslmode=verify-full`, `sslrootcert`). Errors never quote the URL.
pub fn split_url(url: &str) -> Result<(String, TlsParams), String> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err("a PostgreSQL connection URL must start with postgres://".into());
    }
    let mut tls = TlsParams {
        sslmode: SslMode::Prefer,
        sslrootcert: None,
    };
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), tls));
    };
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = url::form_urlencoded::parse(pair.as_bytes())
            .next()
            .unwrap_or_default();
        match &*k {
            "sslmode" => tls.sslmode = SslMode::parse(&v)?,
            "sslrootcert" => tls.sslrootcert = Some(PathBuf::from(&*v)),
            "sslcert" | "sslkey" | "sslpassword" | "sslcrl" => {
                return Err(format!(
                    "{k} (client certificates) is not supported: authenticate with a password \
                     over sslmode=verify-full, or remove {k} from the URL"
                ))
            }
            _ => kept.push(pair),
        }
    }
    if kept.is_empty() {
        Ok((base.to_string(), tls))
    } else {
        Ok((format!("{base}?{}", kept.join("&")), tls))
    }
}

/// Reads what [`split_url`] left of a URL with `tokio_postgres::Config`. The error names the
/// parameter at fault (tokio-postgres keeps it in the source error), never the URL.
pub fn parse_config(rest: &str) -> Result<tokio_postgres::Config, String> {
    rest.parse().map_err(
        |e: tokio_postgres::Error| match std::error::Error::source(&e) {
            Some(cause) => format!("PostgreSQL connection URL: {e}: {cause}"),
            None => format!("PostgreSQL connection URL: {e}"),
        },
    )
}

/// The connection half of a client made by [`postgres`]; spawn it (it ends when the client is dropped).
pub type PgConnection = tokio_postgres::Connection<tokio_postgres::Socket, RustlsStream>;

/// Connects a tokio-postgres client as the URL says, TLS included (see the module doc).
pub async fn postgres(url: &str) -> Result<(tokio_postgres::Client, PgConnection), ConnectError> {
    let (rest, tls) = split_url(url).map_err(ConnectError::Config)?;
    let mut config = parse_config(&rest).map_err(ConnectError::Config)?;
    config.ssl_mode(match tls.sslmode {
        SslMode::Disable => tokio_postgres::config::SslMode::Disable,
        SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
        SslMode::Require | SslMode::VerifyFull => tokio_postgres::config::SslMode::Require,
    });
    if config.get_application_name().is_none() {
        config.application_name("tandem");
    }
    let connector = MakeRustls {
        config: Arc::new(tls.client_config().map_err(ConnectError::Config)?),
        params: Arc::new(tls.clone()),
        port: config.get_ports().first().copied().unwrap_or(5432),
    };
    config.connect(connector).await.map_err(|e| {
        use std::error::Error;
        if let Some(f) = e.source().and_then(|s| s.downcast_ref::<TlsFailure>()) {
            return ConnectError::Tls(f.clone());
        }
        // tokio-postgres's own words when the server answers an SSLRequest with no.
        if tls.sslmode != SslMode::Prefer && e.to_string().contains("server does not support TLS") {
            let host = match config.get_hosts().first() {
                Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
                _ => "localhost".into(),
            };
            let port = config.get_ports().first().copied().unwrap_or(5432);
            return ConnectError::Tls(tls.refused(&host, port));
        }
        ConnectError::Postgres(e)
    })
}

/// A tokio-postgres error in words, with the fix where the server requires what the URL did not ask.
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        // pg_hba.conf has only hostssl lines for this client: "… no encryption".
        Some(db) if db.code().code() == "28000" && db.message().contains("no encryption") => {
            format!(
                "{}; fix: the server accepts this client over TLS only: use sslmode=require or \
             sslmode=verify-full",
                db.message()
            )
        }
        Some(db) => db.message().to_string(),
        None => e.to_string(),
    }
}

/// Makes a [`RustlsConnect`] per host, for tokio-postgres.
#[derive(Clone)]
struct MakeRustls {
    config: Arc<rustls::ClientConfig>,
    params: Arc<TlsParams>,
    port: u16,
}

impl<S> MakeTlsConnect<S> for MakeRustls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = TlsFailure;

    fn make_tls_connect(&mut self, domain: &str) -> Result<RustlsConnect, TlsFailure> {
        let name = ServerName::try_from(domain.to_string()).map_err(|_| TlsFailure {
            endpoint: format!("PostgreSQL at {domain}:{}", self.port),
            what: format!("{domain} is not a valid TLS server name"),
            fix: "connect by a DNS name or an IP address".into(),
        })?;
        Ok(RustlsConnect {
            config: self.config.clone(),
            params: self.params.clone(),
            name,
            host: domain.to_string(),
            port: self.port,
        })
    }
}

/// One TLS handshake with one host.
struct RustlsConnect {
    config: Arc<rustls::ClientConfig>,
    params: Arc<TlsParams>,
    name: ServerName<'static>,
    host: String,
    port: u16,
}

impl<S> TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = TlsFailure;
    type Future = Pin<Box<dyn Future<Output = Result<RustlsStream<S>, TlsFailure>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            tokio_rustls::TlsConnector::from(self.config)
                .connect(self.name, stream)
                .await
                .map(|s| RustlsStream(Box::new(s)))
                .map_err(|e| self.params.failure(&self.host, self.port, &Failure::of(&e)))
        })
    }
}

/// A TLS session to PostgreSQL. Offers no channel binding (SCRAM runs without it).
pub struct RustlsStream<S = tokio_postgres::Socket>(Box<tokio_rustls::client::TlsStream<S>>);

impl<S: AsyncRead + AsyncWrite + Unpin> tokio_postgres::tls::TlsStream for RustlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(self.get_mut().0.as_mut()).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(self.get_mut().0.as_mut()).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(self.get_mut().0.as_mut()).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(self.get_mut().0.as_mut()).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_parameters_are_taken_out_of_the_url() {
        let (rest, tls) = split_url(
            "postgres://u:p%3Fw@db:5433/crm?connect_timeout=5&sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem",
        )
        .unwrap();
        assert_eq!(rest, "postgres://u:p%3Fw@db:5433/crm?connect_timeout=5");
        assert_eq!(tls.sslmode, SslMode::VerifyFull);
        assert_eq!(tls.sslrootcert, Some(PathBuf::from("/etc/ca.pem")));
        let (rest, tls) = split_url("postgres://u@db/crm").unwrap();
        assert_eq!(
            (rest.as_str(), tls.sslmode),
            ("postgres://u@db/crm", SslMode::Prefer)
        );
        let (rest, _) = split_url("postgres://u@db/crm?sslmode=disable").unwrap();
        assert_eq!(rest, "postgres://u@db/crm");
    }

    #[test]
    fn unsupported_settings_name_the_parameter_not_the_password() {
        for (url, names) in [
            (
                "postgres://u:hunter2@db/crm?sslmode=verify-ca",
                "verify-full",
            ),
            (
                "postgres://u:hunter2@db/crm?sslmode=sometimes",
                "sslmode=sometimes",
            ),
            ("postgres://u:hunter2@db/crm?sslcert=/c.pem", "sslcert"),
        ] {
            let err = split_url(url).unwrap_err();
            assert!(err.contains(names), "{url}: {err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
    }

    #[tokio::test]
    async fn an_unreadable_root_certificate_is_a_config_error() {
        let err = postgres("postgres://u:hunter2@127.0.0.1:1/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem")
            .await
            .map(drop)
            .unwrap_err();
        assert!(matches!(err, ConnectError::Config(_)), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("sslrootcert") && text.contains("/nonexistent/ca.pem"),
            "{text}"
        );
        assert!(!text.contains("hunter2"), "{text}");
    }
}
