//! Connection settings from a `postgres://` URL, and the socket (plain TCP, TLS via rustls/ring, or
//! a Unix-domain socket) of the replication connection, which speaks the protocol itself.
//!
//! The URL is read by `tokio_postgres::Config` (user, password, host, port, database, percent
//! decoding, `connect_timeout`, a socket directory as host), after [`crate::connect::postgres::split_url`]
//! took out the TLS parameters, exactly as for every other connection. What stays here, and why:
//! - the defaults where the URL is silent (user `postgres`, database = user, host `localhost`),
//!   which tokio-postgres leaves unset and this connection has always used;
//! - the socket itself: a replication connection is not a tokio-postgres session (`replication=
//!   database` in the startup packet, then CopyBoth), so it opens its own socket. It connects to one
//!   host, the last the URL names (a `host` or `port` query parameter overrides the address part,
//!   as it always has here), honouring `connect_timeout`; other tokio-postgres settings (several
//!   hosts to try in turn, `hostaddr`, keepalives, `target_session_attrs`) are parsed but not used.
//!
//! sslmode follows libpq, read and checked exactly as for every other connection
//! ([`crate::connect::postgres`], which also supplies the rustls configuration): `disable`, `prefer`
//! (the default), `require`, `verify-full`; `verify-ca` is refused. As in libpq, a host that starts
//! with `/` is the directory of a Unix-domain socket, and sslmode is ignored for it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio_postgres::config::Host;
use tokio_rustls::rustls::pki_types::ServerName;

use super::error::PgCaptureError;
pub use crate::connect::postgres::SslMode;
use crate::connect::postgres::{parse_config, split_url, TlsParams};
use crate::connect::tls::Failure;

/// Where and how to connect. `Debug` never shows the password.
#[derive(Clone)]
pub struct ConnParams {
    /// A host name or address, or (starting with `/`) the directory of a Unix-domain socket.
    pub host: String,
    pub port: u16,
    pub user: String,
    password: Option<String>,
    pub dbname: String,
    pub sslmode: SslMode,
    pub sslrootcert: Option<PathBuf>,
    /// `connect_timeout`: how long opening the socket may take (none: the system's limit).
    pub connect_timeout: Option<Duration>,
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
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

impl ConnParams {
    /// Reads `postgres://user:password@host:port/db?sslmode=…&sslrootcert=…` (see the module doc).
    /// Errors never quote the URL, which may hold a password.
    pub fn parse(url: &str) -> Result<ConnParams, PgCaptureError> {
        let (rest, tls) = split_url(url).map_err(PgCaptureError::Config)?;
        let config = parse_config(&rest).map_err(PgCaptureError::Config)?;
        // tokio-postgres appends a `host` or `port` query parameter to the address part's; the
        // last one wins, as a query parameter always has here.
        let host = match config.get_hosts().last() {
            Some(Host::Tcp(name)) => name.clone(),
            Some(Host::Unix(dir)) => dir.to_string_lossy().into_owned(),
            None => "localhost".to_owned(),
        };
        let user = match config.get_user() {
            Some(u) if !u.is_empty() => u.to_owned(),
            _ => "postgres".to_owned(),
        };
        let dbname = match config.get_dbname() {
            Some(d) if !d.is_empty() => d.to_owned(),
            _ => user.clone(),
        };
        Ok(ConnParams {
            host,
            port: config.get_ports().last().copied().unwrap_or(5432),
            user,
            password: config
                .get_password()
                .map(|p| String::from_utf8_lossy(p).into_owned()),
            dbname,
            sslmode: tls.sslmode,
            sslrootcert: tls.sslrootcert,
            connect_timeout: config.get_connect_timeout().copied(),
        })
    }

    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// The Unix-domain socket file, when the host is a socket directory.
    fn unix_socket(&self) -> Option<PathBuf> {
        self.host
            .starts_with('/')
            .then(|| Path::new(&self.host).join(format!(".s.PGSQL.{}", self.port)))
    }

    fn tls(&self) -> TlsParams {
        TlsParams {
            sslmode: self.sslmode,
            sslrootcert: self.sslrootcert.clone(),
        }
    }
}

/// A connected socket, plain, TLS or local.
pub enum Socket {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    Unix(UnixStream),
}

impl Socket {
    /// Whether the connection is encrypted.
    pub fn is_tls(&self) -> bool {
        matches!(self, Socket::Tls(_))
    }

    /// Whether the connection is a Unix-domain socket (never leaves the machine).
    pub fn is_local(&self) -> bool {
        matches!(self, Socket::Unix(_))
    }

    /// Sets `SO_RCVLOWAT` on a TCP socket (plain or under TLS): the socket reads as ready only
    /// once it holds `bytes`. Returns whether it took: a Unix socket, or a system where
    /// [`lowat_wakes_reader`] is false, does nothing.
    pub fn set_recv_lowat(&self, bytes: u32) -> std::io::Result<bool> {
        let tcp = match self {
            Socket::Plain(s) => s,
            Socket::Tls(s) => s.get_ref().0,
            Socket::Unix(_) => return Ok(false),
        };
        if !lowat_wakes_reader() {
            return Ok(false);
        }
        socket_opt::set_recv_lowat(tcp, bytes)?;
        Ok(true)
    }

    /// Connects (within `connect_timeout`, if the URL gives one) and, per sslmode, negotiates TLS
    /// with an SSLRequest.
    pub async fn connect(p: &ConnParams) -> Result<Socket, PgCaptureError> {
        let Some(limit) = p.connect_timeout else {
            return Socket::open(p).await;
        };
        tokio::time::timeout(limit, Socket::open(p))
            .await
            .map_err(|_| {
                PgCaptureError::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "no connection to {}:{} within connect_timeout ({}s)",
                        p.host,
                        p.port,
                        limit.as_secs()
                    ),
                ))
            })?
    }

    async fn open(p: &ConnParams) -> Result<Socket, PgCaptureError> {
        if let Some(path) = p.unix_socket() {
            return Ok(Socket::Unix(UnixStream::connect(path).await?));
        }
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

/// Whether a TCP socket's low-water mark may be raised while reading: Linux from 4.18 honours it
/// for poll and epoll, and wakes a waiting reader when the mark is lowered under what is already
/// queued (`tcp_set_rcvlowat`). Elsewhere, or on an older kernel, lowering it would leave a reader
/// asleep until the next segment, so the mark is never raised.
pub fn lowat_wakes_reader() -> bool {
    static WAKES: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *WAKES.get_or_init(|| {
        cfg!(target_os = "linux")
            && std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .ok()
                .and_then(|r| kernel_release(&r))
                .is_some_and(|v| v >= (4, 18))
    })
}

/// A kernel release's major and minor numbers (`6.1.0-18-amd64` -> (6, 1)).
fn kernel_release(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.trim().split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

mod socket_opt {
    use std::os::fd::AsRawFd;

    /// `setsockopt(SOL_SOCKET, SO_RCVLOWAT)`; no crate the project uses wraps this option.
    pub fn set_recv_lowat(socket: &impl AsRawFd, bytes: u32) -> std::io::Result<()> {
        let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
        // SAFETY: the descriptor is open for as long as `socket` is borrowed, and the option value
        // points at a live c_int whose size is passed with it.
        let rc = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVLOWAT,
                std::ptr::from_ref(&value).cast::<libc::c_void>(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
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
            Socket::Unix(s) => Pin::new(s).poll_read(cx, buf),
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
            Socket::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Socket::Plain(s) => Pin::new(s).poll_flush(cx),
            Socket::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Socket::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Socket::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Socket::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Socket::Unix(s) => Pin::new(s).poll_shutdown(cx),
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
    fn kernel_releases_are_read_to_major_and_minor() {
        assert_eq!(kernel_release("6.1.0-18-amd64\n"), Some((6, 1)));
        assert_eq!(kernel_release("4.18.0-553.el8_10.x86_64"), Some((4, 18)));
        assert_eq!(kernel_release("3.10.0-1160.el7.x86_64"), Some((3, 10)));
        assert!(kernel_release("3.10.0").is_some_and(|v| v < (4, 18)));
        assert!(kernel_release("4.17.19").is_some_and(|v| v < (4, 18)));
        assert_eq!(kernel_release("garbage"), None);
        assert_eq!(kernel_release(""), None);
    }

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

    /// What tokio_postgres::Config reads for this connection: defaults where the URL is silent, a
    /// socket directory, brackets around an IPv6 address, connect_timeout, query parameters.
    #[test]
    fn url_forms_read_by_tokio_postgres() {
        let p = ConnParams::parse("postgres://db.example").unwrap();
        assert_eq!(
            (p.host.as_str(), p.port, p.user.as_str(), p.dbname.as_str()),
            ("db.example", 5432, "postgres", "postgres")
        );
        assert_eq!((p.sslmode, p.connect_timeout), (SslMode::Prefer, None));
        let p = ConnParams::parse("postgres://app@/crm").unwrap();
        assert_eq!((p.host.as_str(), p.dbname.as_str()), ("localhost", "crm"));
        let p = ConnParams::parse("postgres://app@%2Fvar%2Frun%2Fpostgresql:5433/crm").unwrap();
        assert_eq!(
            p.unix_socket(),
            Some(PathBuf::from("/var/run/postgresql/.s.PGSQL.5433"))
        );
        let p = ConnParams::parse("postgres://app@[::1]:5433/crm?connect_timeout=7").unwrap();
        assert_eq!((p.host.as_str(), p.port), ("::1", 5433));
        assert_eq!(p.unix_socket(), None);
        assert_eq!(p.connect_timeout, Some(Duration::from_secs(7)));
        let p =
            ConnParams::parse("postgres://h/?user=app&password=pw&dbname=crm&port=6000").unwrap();
        assert_eq!(
            (p.user.as_str(), p.password(), p.dbname.as_str(), p.port),
            ("app", Some("pw"), "crm", 6000)
        );
        let err = ConnParams::parse("postgres://u:hunter2@h:port/db").unwrap_err();
        assert!(err.to_string().contains("port"), "{err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    /// A server that accepts the TCP connection and never answers the SSLRequest: connect_timeout
    /// ends the wait.
    #[tokio::test]
    async fn connect_timeout_bounds_the_wait() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let peer = tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(s);
        });
        let mut p = ConnParams::parse(&format!("postgres://u@127.0.0.1:{port}/db")).unwrap();
        p.connect_timeout = Some(Duration::from_millis(200));
        let err = Socket::connect(&p).await.map(drop).unwrap_err();
        let cause = std::error::Error::source(&err).map(ToString::to_string);
        assert!(
            matches!(err, PgCaptureError::Io(_))
                && cause
                    .as_deref()
                    .is_some_and(|c| c.contains("connect_timeout")),
            "{err}: {cause:?}"
        );
        peer.abort();
    }
}
