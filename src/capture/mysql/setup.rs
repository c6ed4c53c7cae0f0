//! Prerequisite checks for capturing a MySQL/MariaDB source, each problem with the fix that removes it.
//!
//! Required: `log_bin=ON`, `binlog_format=ROW`, `binlog_row_image=FULL`, privileges to read the
//! binlog (`REPLICATION SLAVE`, and `REPLICATION CLIENT` / MariaDB's `BINLOG MONITOR`), the captured
//! tables, and uncompressed binlog events (MariaDB `log_bin_compress=OFF`). Recommended:
//! `binlog_row_metadata=FULL` (without it column names come from information_schema, which is only
//! right while the table is not altered mid-stream) and a binlog retention long enough to outlive an
//! outage (a purged resume point means a re-sync).

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, GnoInterval, Sid};

use super::error::MysqlCaptureError;
use super::server;
use crate::model::{MysqlGtidSet, Position, TableRef};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Capture cannot work until this is fixed.
    Error,
    /// Capture works, with a weaker guarantee.
    Warning,
}

/// One unmet prerequisite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub severity: Severity,
    pub message: String,
    pub fix: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}; fix: {}", self.message, self.fix)
    }
}

fn problem(severity: Severity, message: impl Into<String>, fix: impl Into<String>) -> Problem {
    Problem {
        severity,
        message: message.into(),
        fix: fix.into(),
    }
}

/// Checks everything capture needs on the source at `url`; an empty list means ready.
pub async fn check_prerequisites(url: &str, tables: &[TableRef]) -> Vec<Problem> {
    let conn = match server::parse_url(url) {
        Ok(opts) => server::connect(&opts).await,
        Err(e) => Err(e),
    };
    let mut conn = match conn {
        Ok(c) => c,
        Err(e) => {
            let cause = std::error::Error::source(&e)
                .map(|s| format!(": {s}"))
                .unwrap_or_default();
            return vec![problem(
                Severity::Error,
                format!("{e}{cause}"),
                "check the source URL, that the server is up, and the account's password",
            )];
        }
    };
    let mut problems = Vec::new();
    if let Err(e) = check(&mut conn, tables, &mut problems).await {
        problems.push(problem(
            Severity::Error,
            format!("{e}"),
            "grant the capture account SELECT on information_schema and retry",
        ));
    }
    let _ = conn.disconnect().await;
    problems
}

async fn variable(conn: &mut Conn, name: &str) -> Option<String> {
    conn.query_first::<String, _>(format!("SELECT @@GLOBAL.{name}"))
        .await
        .ok()
        .flatten()
}

async fn check(
    conn: &mut Conn,
    tables: &[TableRef],
    problems: &mut Vec<Problem>,
) -> Result<(), MysqlCaptureError> {
    use Severity::*;
    let mariadb = server::is_mariadb(conn).await?;
    let var = |v: Option<String>| v.unwrap_or_default().to_ascii_uppercase();
    if !matches!(var(variable(conn, "log_bin").await).as_str(), "1" | "ON") {
        problems.push(problem(
            Error,
            "the binary log is off (log_bin)",
            "start the server with --log-bin (and a server_id), then restart it",
        ));
    }
    let format = var(variable(conn, "binlog_format").await);
    if format != "ROW" {
        problems.push(problem(
            Error,
            format!("binlog_format is {format}, capture needs ROW"),
            "SET GLOBAL binlog_format = 'ROW' and set binlog_format=ROW in the server config",
        ));
    }
    let image = var(variable(conn, "binlog_row_image").await);
    if image != "FULL" {
        problems.push(problem(
            Error,
            format!("binlog_row_image is {image}, capture needs FULL (whole before-images for version checks)"),
            "SET GLOBAL binlog_row_image = 'FULL' and set binlog_row_image=FULL in the server config",
        ));
    }
    let metadata = var(variable(conn, "binlog_row_metadata").await);
    if metadata != "FULL" {
        problems.push(problem(
            Warning,
            format!("binlog_row_metadata is {metadata}: column names will come from information_schema, which is wrong for events written before an ALTER TABLE"),
            "SET GLOBAL binlog_row_metadata = 'FULL' and set it in the server config",
        ));
    }
    if mariadb
        && matches!(
            var(variable(conn, "log_bin_compress").await).as_str(),
            "1" | "ON"
        )
    {
        problems.push(problem(
            Error,
            "log_bin_compress is ON; compressed binlog events are not supported",
            "SET GLOBAL log_bin_compress = OFF",
        ));
    }
    check_grants(conn, problems).await?;
    let expire = variable(conn, "binlog_expire_logs_seconds")
        .await
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    if expire != 0 && expire < 86_400 {
        problems.push(problem(
            Warning,
            format!("binlogs are purged after {expire}s; a link down longer than that must be re-synced"),
            "SET GLOBAL binlog_expire_logs_seconds = 604800 (or longer than your longest outage)",
        ));
    }
    for t in tables {
        let found: Option<u64> = conn
            .exec_first(
                "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
                (&*t.schema, &*t.name),
            )
            .await
            .map_err(|source| MysqlCaptureError::Query { what: "looking up tables", source })?;
        if found.unwrap_or(0) == 0 {
            problems.push(problem(
                Error,
                format!("table {t} does not exist on the source"),
                "create it, or remove it from the mapping",
            ));
        }
    }
    Ok(())
}

async fn check_grants(
    conn: &mut Conn,
    problems: &mut Vec<Problem>,
) -> Result<(), MysqlCaptureError> {
    let grants: Vec<String> =
        conn.query("SHOW GRANTS")
            .await
            .map_err(|source| MysqlCaptureError::Query {
                what: "SHOW GRANTS",
                source,
            })?;
    let all = grants.join("\n").to_ascii_uppercase();
    let has = |p: &str| all.contains("ALL PRIVILEGES ON *.*") || all.contains(p);
    if !has("REPLICATION SLAVE") && !has("REPLICATION REPLICA") {
        problems.push(problem(
            Severity::Error,
            "the capture account lacks REPLICATION SLAVE (needed to read the binlog)",
            "GRANT REPLICATION SLAVE ON *.* TO <capture account>",
        ));
    }
    if !has("REPLICATION CLIENT") && !has("BINLOG MONITOR") {
        problems.push(problem(
            Severity::Error,
            "the capture account lacks REPLICATION CLIENT / BINLOG MONITOR (needed for the current binlog position)",
            "GRANT REPLICATION CLIENT ON *.* TO <capture account> (MariaDB 10.5+: BINLOG MONITOR)",
        ));
    }
    Ok(())
}

/// The current end of the binlog at `url`, to start capturing "from now".
pub async fn current_position(url: &str) -> Result<Position, MysqlCaptureError> {
    let opts = server::parse_url(url)?;
    let mut conn = server::connect(&opts).await?;
    let p = server::current_position(&mut conn).await;
    let _ = conn.disconnect().await;
    p
}

/// A MySQL GTID set in the dump request's form (intervals with exclusive ends).
pub(crate) fn gtid_sids(set: &MysqlGtidSet) -> Result<Vec<Sid<'static>>, MysqlCaptureError> {
    set.sets
        .iter()
        .map(|(uuid, intervals)| {
            if uuid.contains(':') {
                return Err(MysqlCaptureError::Unsupported {
                    what: "resuming from tagged GTIDs",
                    fix: "use untagged GTIDs on the source",
                });
            }
            let bytes = crate::model::parse_uuid(uuid)
                .ok_or(MysqlCaptureError::WrongPositionKind(uuid.clone()))?;
            let mut sid = Sid::new(bytes);
            for &(s, e) in intervals {
                sid = sid.with_interval(GnoInterval::new(s, e.saturating_add(1)));
            }
            Ok(sid)
        })
        .collect()
}
