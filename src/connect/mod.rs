//! How tandem opens its database connections: a node's URL in, a driver connection out, with TLS as
//! the URL asks, for every connection (apply, catalog, setup, status, heartbeat, MySQL/MariaDB binlog).
//! The PostgreSQL replication connection speaks the protocol itself (`capture/postgres`) but shares
//! the TLS settings and the rustls configuration from here.
//!
//! ```text
//!  postgres://…?sslmode=verify-full&sslrootcert=ca.pem ──> postgres() ──> tokio_postgres::Client
//!  mysql://…?require_ssl=true&ssl_ca=ca.pem            ──> mysql_opts() ──> mysql() ──> mysql_async::Conn
//! ```
//!
//! Error handling: a URL parameter that cannot work is a [`ConnectError::Config`] naming the parameter
//! and the fix; a failed handshake is a [`ConnectError::Tls`] saying what failed (not trusted, wrong
//! name, expired, no TLS on the server) and the parameter to change. Both are definite: retrying cannot
//! help. Everything else is the driver's error, classified by its caller as before. No message quotes
//! the URL, which may hold a password.

pub mod mysql;
pub mod postgres;
pub mod quote;
pub(crate) mod tls;

pub use mysql::{mysql, mysql_opts};
pub use postgres::{postgres, PgConnection};

/// Why a connection could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// A URL parameter is wrong or cannot work; the message names it and the fix.
    #[error("{0}")]
    Config(String),
    /// The TLS session could not be set up.
    #[error("{0}")]
    Tls(TlsFailure),
    /// PostgreSQL refused or dropped the connection.
    #[error("{}", postgres::describe(.0))]
    Postgres(tokio_postgres::Error),
    /// MySQL/MariaDB refused or dropped the connection.
    #[error("{0}")]
    Mysql(mysql_async::Error),
}

impl ConnectError {
    /// A URL or TLS problem: retrying cannot help, someone must change the URL or a certificate.
    /// The drivers' errors are not (their callers classify those as before).
    pub fn is_tls_or_config(&self) -> bool {
        matches!(self, ConnectError::Config(_) | ConnectError::Tls(_))
    }
}

/// A TLS failure: where, what failed, and what to change.
#[derive(Debug, Clone, thiserror::Error)]
#[error("TLS to {endpoint} failed: {what}; fix: {fix}")]
pub struct TlsFailure {
    pub endpoint: String,
    pub what: String,
    pub fix: String,
}
