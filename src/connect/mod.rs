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

/// Runs `sql` on a session of its own on `node`: on PostgreSQL a script of any number of
/// statements (one implicit transaction unless it says otherwise), on MySQL/MariaDB one statement.
/// The error is the server's message (which may quote the URL: callers scrub it).
pub async fn execute(node: &crate::config::Node, sql: &str) -> Result<(), String> {
    use crate::config::Engine;
    use mysql_async::prelude::Queryable;
    match node.engine {
        Engine::Postgres => {
            let (client, conn) = postgres(node.url.expose())
                .await
                .map_err(|e| e.to_string())?;
            let task = tokio::spawn(conn);
            let result = client.batch_execute(sql).await.map_err(|e| {
                e.as_db_error()
                    .map_or_else(|| e.to_string(), |d| d.message().to_string())
            });
            drop(client);
            let _ = task.await;
            result
        }
        Engine::Mysql => {
            let opts = mysql_opts(node.url.expose()).map_err(|e| e.to_string())?;
            let mut conn = mysql(opts).await.map_err(|e| e.to_string())?;
            let result = conn.query_drop(sql).await.map_err(|e| e.to_string());
            let _ = conn.disconnect().await;
            result
        }
    }
}
