//! Connection settings from a `postgres://` URL, and the socket (plain TCP or TLS via rustls/ring)
//! of the replication connection, which speaks the protocol itself.
//!
//! sslmode follows libpq, read and checked exactly as for every other connection
//! ([`crate::connect::postgres`], which also supplies the rustls configuration): `disable`, `prefer`
//! (the default), `require`, `verify-full`; `verify-ca` is refused.

use std::fmt;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;

use super::error::PgCaptureError;
pub use crate::connect::postgres::SslMode;
use crate::connect::postgres::TlsParams;
use crate::connect::tls::Failure;

/// Where and how to connect. `Debug` never shows the password.
#[derive(Clone)]
pub struct ConnParams {
    pub host: String,
    pub port: u16,
    pub user: String,
    password: Option<String>,
    pub dbname: String,
    pub sslmode: SslMode,
    pub sslrootcert: Option<PathBuf>,
}

impl fmt::Debug for ConnParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnParams")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("dbname", &self.dbname)
            .field("sslmode", &self.sslmode)
            .field("sslrootcert", &self.sslrootcert)
            .finish()
    }
}

impl ConnParams {
    /// Reads `postgres://user:password@host:port/db?sslmode=…&sslrootcert=…`. Errors never quote the
    /// URL, which may hold a password.
    pub fn parse(url: &str) -> Result<ConnParams, PgCaptureError> {
        let bad = |what: &str| PgCaptureError::Config(what.to_owned());
        let u = url::Url::parse(url).map_err(|e| bad(&format!("connection URL: {e}")))?;
        if !matches!(u.scheme(), "postgres" | "postgresql") {
            return Err(bad("connection URL must start with postgres://"));
        }
        let mut p = ConnParams {
            host: u.host_str().unwrap_or("localhost").to_owned(),
            port: u.port().unwrap_or(5432),
            user: match percent_decode(u.username()) {
                s if s.is_empty() => "postgres".to_owned(),
                s => s,
            },
            password: u.password().map(percent_decode),
            dbname: percent_decode(u.path().trim_start_matches('/')),
            sslmode: SslMode::Prefer,
            sslrootcert: None,
        };
        if p.dbname.is_empty() {
            p.dbname = p.user.clone();
        }
        for (k, v) in u.query_pairs() {
            match &*k {
                "sslmode" => p.sslmode = SslMode::parse(&v).map_err(|e| bad(&e))?,
                "sslrootcert" => p.sslrootcert = Some(PathBuf::from(&*v)),
                "user" => p.user = v.into_owned(),
                "password" => p.password = Some(v.into_owned()),
                "host" => p.host = v.into_owned(),
                "dbname" => p.dbname = v.into_owned(),
                "port" => p.port = v.parse().map_err(|_| bad("port must be a number"))?,
                _ => {}
            }
        }
        Ok(p)
    }

    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    fn tls(&self) -> TlsParams {
        TlsParams {
            sslmode: self.sslmode,
            sslrootcert: self.sslrootcert.clone(),
        }
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (b[i], b.get(i + 1).copied(), b.get(i + 2).copied()) {
            (b'%', Some(h), Some(l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push(((hex(h).unwrap_or(0) << 4) | hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A connected socket, plain or TLS.
pub enum Socket {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Socket {
    /// Whether the connection is encrypted.
    pub fn is_tls(&self) -> bool {
        matches!(self, Socket::Tls(_))
    }

    /// Connects and, per sslmode, negotiates TLS with an SSLRequest.
    pub async fn connect(p: &ConnParams) -> Result<Socket, PgCaptureError> {
        let mut tcp = TcpStream::connect((p.host.as_str(), p.port)).await?;
        tcp.set_nodelay(true)?;
        if p.sslmode == SslMode::Disable {
            return Ok(Socket::Plain(tcp));
        }
        let mut req = BytesMut::new();
        postgres_protocol::message::frontend::ssl_request(&mut req);
        tcp.write_all(&req).await?;
        // "The server then responds with a single byte containing S or N, indicating that it is
        // willing or unwilling to perform SSL, respectively."
        match tcp.read_u8().await? {
            b'S' => {}
            b'N' if p.sslmode == SslMode::Prefer => return Ok(Socket::Plain(tcp)),
            b'N' => {
                return Err(PgCaptureError::Tls(
                    p.tls().refused(&p.host, p.port).to_string(),
                ))
            }
            other => {
                return Err(PgCaptureError::Protocol(format!(
                    "unexpected answer {other:#04x} to SSLRequest"
                )))
            }
        }
        let config = p.tls().client_config().map_err(PgCaptureError::Config)?;
        let name = ServerName::try_from(p.host.clone()).map_err(|_| {
            PgCaptureError::Tls(format!(
                "TLS to PostgreSQL failed: {} is not a valid TLS server name",
                p.host
            ))
        })?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| {
                PgCaptureError::Tls(
                    p.tls()
                        .failure(&p.host, p.port, &Failure::of(&e))
                        .to_string(),
                )
            })?;
        Ok(Socket::Tls(Box::new(tls)))
    }
}

impl AsyncRead for Socket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Socket::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Socket::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Socket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Socket::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Socket::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Socket::Plain(s) => Pin::new(s).poll_flush(cx),
            Socket::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Socket::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Socket::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Opens an ordinary (non-replication) tokio-postgres session over a [`Socket`], so catalog queries
/// and setup use the same TLS settings as the replication connection.
pub async fn catalog_client(p: &ConnParams) -> Result<tokio_postgres::Client, PgCaptureError> {
    let socket = Socket::connect(p).await?;
    let mut cfg = tokio_postgres::Config::new();
    cfg.user(&p.user)
        .dbname(&p.dbname)
        .application_name("tandem")
        .ssl_mode(tokio_postgres::config::SslMode::Disable);
    if let Some(pw) = p.password() {
        cfg.password(pw);
    }
    let (client, conn) = cfg.connect_raw(socket, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        if let Err(error) = conn.await {
            tracing::debug!(error = %error, "catalog connection ended");
        }
    });
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_and_redaction() {
        let p =
            ConnParams::parse("postgres://al%40ice:s3cr%3At@db.example:6543/crm?sslmode=require")
                .unwrap();
        assert_eq!(p.user, "al@ice");
        assert_eq!(p.password(), Some("s3cr:t"));
        assert_eq!(
            (p.host.as_str(), p.port, p.dbname.as_str()),
            ("db.example", 6543, "crm")
        );
        assert_eq!(p.sslmode, SslMode::Require);
        let dbg = format!("{p:?}");
        assert!(!dbg.contains("s3cr"), "password leaked into Debug: {dbg}");
        let err = ConnParams::parse("postgres://u:hunter2@h/db?sslmode=verify-ca").unwrap_err();
        assert!(!err.to_string().contains("hunter2"));
        assert!(ConnParams::parse("mysql://h/db").is_err());
    }
}
