//! The one error type of the PostgreSQL capture layer, and its transient/definite classification.
//!
//! Error handling: every failure of the capture ends up as a [`PgCaptureError`]. The stream retries the
//! transient ones itself (reconnect with backoff, resume from the confirmed position) and hands the
//! definite ones to its caller. [`PgCaptureError::is_transient`] is the single place that decides which
//! is which; an error nobody classified is transient (DESIGN rule 8).

use std::io;

use super::decode::DecodeError;
use super::types::TypeError;

/// Anything that can go wrong while capturing from PostgreSQL.
#[derive(Debug, thiserror::Error)]
pub enum PgCaptureError {
    /// The connection URL could not be read. Never carries the password.
    #[error("invalid PostgreSQL connection settings: {0}")]
    Config(String),
    /// A socket read, write or connect failed.
    #[error("PostgreSQL connection i/o failed")]
    Io(#[source] io::Error),
    /// TLS could not be set up (handshake, certificates, or the server refused TLS under sslmode=require).
    /// The message says where, what failed, and the fix.
    #[error("{0}")]
    Tls(String),
    /// The server answered with an ErrorResponse.
    #[error("PostgreSQL error {code}: {message}")]
    Server {
        code: String,
        message: String,
        detail: Option<String>,
        hint: Option<String>,
    },
    /// The server sent something the replication protocol does not allow at this point.
    #[error("PostgreSQL replication protocol violation: {0}")]
    Protocol(String),
    /// Authentication failed or needs a method tandem does not speak.
    #[error("PostgreSQL authentication failed: {0}")]
    Auth(String),
    /// A pgoutput message could not be decoded.
    #[error("could not decode pgoutput message")]
    Decode(#[source] DecodeError),
    /// A column value could not be decoded into the model.
    #[error("could not decode a value of table {table} column {column}")]
    Value {
        table: String,
        column: String,
        #[source]
        source: TypeError,
    },
    /// A catalog or setup query through tokio-postgres failed.
    #[error("PostgreSQL catalog query failed")]
    Query(#[source] tokio_postgres::Error),
    /// Writing or reading a spill file failed.
    #[error("spilling a large transaction to disk failed")]
    Spill(#[source] io::Error),
    /// A prerequisite is not met; the message names the fix.
    #[error("{0}")]
    Prerequisite(String),
    /// The server closed the replication stream.
    #[error("PostgreSQL closed the replication stream")]
    Closed,
}

impl PgCaptureError {
    /// The SQLSTATE of a server error, if this is one.
    pub fn sql_state(&self) -> Option<&str> {
        match self {
            PgCaptureError::Server { code, .. } => Some(code),
            PgCaptureError::Query(e) => e.code().map(|c| c.code()),
            _ => None,
        }
    }

    /// Whether retrying (reconnecting and resuming) can succeed without anyone changing anything.
    ///
    /// Definite: configuration, authentication, TLS setup, undecodable data, unmet prerequisites, and
    /// SQLSTATE classes 3D (no such database), 3F (no such schema), 42 (syntax/access/undefined object),
    /// 28 (invalid authorization), 55 (object not in prerequisite state, e.g. slot in use is 55006 and is
    /// transient). Transient: connection loss, SQLSTATE 08, 40, 53, 57P01..57P05, and anything unknown.
    pub fn is_transient(&self) -> bool {
        match self {
            PgCaptureError::Config(_)
            | PgCaptureError::Auth(_)
            | PgCaptureError::Tls(_)
            | PgCaptureError::Decode(_)
            | PgCaptureError::Value { .. }
            | PgCaptureError::Prerequisite(_) => false,
            PgCaptureError::Io(_)
            | PgCaptureError::Closed
            | PgCaptureError::Protocol(_)
            | PgCaptureError::Spill(_) => true,
            PgCaptureError::Server { code, .. } => sqlstate_is_transient(code),
            PgCaptureError::Query(e) => match e.code() {
                Some(c) => sqlstate_is_transient(c.code()),
                None => true,
            },
        }
    }
}

/// Classifies a SQLSTATE (see [`crate::classify`]). Unknown codes are transient until proven otherwise
/// (DESIGN rule 8).
pub fn sqlstate_is_transient(code: &str) -> bool {
    crate::classify::sqlstate(code) != Some(crate::classify::ErrorClass::Definite)
}

impl From<io::Error> for PgCaptureError {
    fn from(e: io::Error) -> Self {
        PgCaptureError::Io(e)
    }
}

impl From<DecodeError> for PgCaptureError {
    fn from(e: DecodeError) -> Self {
        PgCaptureError::Decode(e)
    }
}

impl From<tokio_postgres::Error> for PgCaptureError {
    fn from(e: tokio_postgres::Error) -> Self {
        PgCaptureError::Query(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        assert!(sqlstate_is_transient("08006"));
        assert!(sqlstate_is_transient("40001"));
        assert!(sqlstate_is_transient("57P01"));
        assert!(sqlstate_is_transient("53300"));
        assert!(!sqlstate_is_transient("3D000"));
        assert!(!sqlstate_is_transient("42P01"));
        assert!(!sqlstate_is_transient("3F000"));
        assert!(sqlstate_is_transient("XX999"));
        assert!(PgCaptureError::Closed.is_transient());
        assert!(!PgCaptureError::Config("x".into()).is_transient());
    }
}
