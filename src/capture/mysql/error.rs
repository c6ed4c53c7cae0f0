//! The one error type of the MySQL/MariaDB capture layer, and its transient/definite classification.
//!
//! `Display` prints this layer's message only; the driver or decoder cause is the `#[source]`.
//! Messages name the table, column or setting involved and, for definite errors, the fix. They never
//! carry row values or connection passwords.

use super::metadata::MetadataError;
use super::types::DecodeError;
use crate::model::TableRef;

/// The server error of a dump request whose position is no longer in the binlogs.
const MASTER_FATAL_READING_BINLOG: u16 = 1236;

#[derive(Debug, thiserror::Error)]
pub enum MysqlCaptureError {
    #[error("connecting to the MySQL/MariaDB source failed")]
    Connect(#[source] mysql_async::Error),
    /// A URL parameter or the TLS setup; the message says what to change.
    #[error("connecting to the MySQL/MariaDB source failed: {0}")]
    Setup(crate::connect::ConnectError),
    #[error("{what} failed on the source")]
    Query {
        what: &'static str,
        #[source]
        source: mysql_async::Error,
    },
    #[error("the binlog stream failed")]
    Stream(#[source] mysql_async::Error),
    #[error("the source closed the binlog stream")]
    StreamEnded,
    #[error("no binlog event or heartbeat for {secs}s; the connection is presumed lost")]
    Silent { secs: u64 },
    #[error(
        "resume position {position} is no longer in the source's binlogs (purged or never \
         written): re-sync this link from a fresh snapshot (`tandem setup` then start from the \
         current position), and raise binlog_expire_logs_seconds so the binlogs outlive outages"
    )]
    PurgedPosition {
        position: String,
        #[source]
        source: mysql_async::Error,
    },
    #[error("decoding a {event} event{}", table.as_ref().map(|t| format!(" for table {t}")).unwrap_or_default())]
    Decode {
        event: &'static str,
        table: Option<TableRef>,
        #[source]
        source: DecodeError,
    },
    #[error("table metadata")]
    Metadata(#[source] MetadataError),
    #[error("writing a large transaction to the spill directory failed")]
    Spill(#[source] std::io::Error),
    #[error("{what} is not supported; {fix}")]
    Unsupported {
        what: &'static str,
        fix: &'static str,
    },
    #[error("the start position {0} is not a MySQL/MariaDB binlog position")]
    WrongPositionKind(String),
    #[error("table {table} does not exist on the source; create it or remove it from the mapping")]
    MissingTable { table: TableRef },
}

impl MysqlCaptureError {
    /// Whether retrying (reconnecting, with backoff) can succeed. Connection loss, deadlocks and lock
    /// wait timeouts are transient; purged binlogs, missing tables, access denied, undecodable events
    /// and unsupported settings are definite. Anything unrecognised is transient until proven
    /// otherwise (DESIGN rule 8).
    pub fn is_transient(&self) -> bool {
        match self {
            MysqlCaptureError::Connect(e)
            | MysqlCaptureError::Query { source: e, .. }
            | MysqlCaptureError::Stream(e) => driver_error_is_transient(e),
            MysqlCaptureError::StreamEnded | MysqlCaptureError::Silent { .. } => true,
            MysqlCaptureError::Spill(_) => true,
            MysqlCaptureError::Setup(e) => !e.is_tls_or_config(),
            MysqlCaptureError::PurgedPosition { .. }
            | MysqlCaptureError::Decode { .. }
            | MysqlCaptureError::Metadata(_)
            | MysqlCaptureError::Unsupported { .. }
            | MysqlCaptureError::WrongPositionKind(_)
            | MysqlCaptureError::MissingTable { .. } => false,
        }
    }

    /// The server error code, when the cause is a server error.
    pub fn server_code(&self) -> Option<u16> {
        match self {
            MysqlCaptureError::Connect(e)
            | MysqlCaptureError::Query { source: e, .. }
            | MysqlCaptureError::Stream(e)
            | MysqlCaptureError::PurgedPosition { source: e, .. } => server_code(e),
            _ => None,
        }
    }
}

pub(crate) fn server_code(e: &mysql_async::Error) -> Option<u16> {
    match e {
        mysql_async::Error::Server(s) => Some(s.code),
        _ => None,
    }
}

fn driver_error_is_transient(e: &mysql_async::Error) -> bool {
    match server_code(e) {
        Some(code) => crate::classify::mysql(code) != Some(crate::classify::ErrorClass::Definite),
        None => !matches!(e, mysql_async::Error::Url(_)),
    }
}

/// Whether a dump request failed because the requested position is not in the binlogs any more.
pub(crate) fn is_purged(e: &mysql_async::Error) -> bool {
    server_code(e) == Some(MASTER_FATAL_READING_BINLOG)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(code: u16) -> mysql_async::Error {
        mysql_async::Error::Server(mysql_async::ServerError {
            code,
            message: "m".into(),
            state: "HY000".into(),
        })
    }

    #[test]
    fn classification() {
        assert!(MysqlCaptureError::Stream(server(1213)).is_transient());
        assert!(MysqlCaptureError::Stream(server(1205)).is_transient());
        assert!(MysqlCaptureError::Stream(server(9999)).is_transient());
        assert!(!MysqlCaptureError::Connect(server(1045)).is_transient());
        assert!(!MysqlCaptureError::Stream(server(1236)).is_transient());
        assert!(MysqlCaptureError::StreamEnded.is_transient());
        let purged = MysqlCaptureError::PurgedPosition {
            position: "binlog:bin.000001:4".into(),
            source: server(1236),
        };
        assert!(!purged.is_transient());
        assert!(purged.to_string().contains("re-sync"));
        assert_eq!(purged.server_code(), Some(1236));
    }
}
