//! Plain queries against the source server (not the binlog dump): connecting, the current binlog
//! position, the collation table, and information_schema column data for the metadata fallback.

use std::collections::HashMap;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts};

use super::error::MysqlCaptureError;
use super::metadata::{InfoColumn, SchemaInfo};
use super::types::{Charset, FixedBinary};
use crate::connect::ConnectError;
use crate::model::{BinlogPosition, MariaGtidList, Position, TableRef};

/// Parses a `mysql://` URL, TLS parameters included; errors name the parameter, never the URL.
pub fn parse_url(url: &str) -> Result<Opts, MysqlCaptureError> {
    crate::connect::mysql_opts(url).map_err(MysqlCaptureError::Setup)
}

pub async fn connect(opts: &Opts) -> Result<Conn, MysqlCaptureError> {
    crate::connect::mysql(opts.clone())
        .await
        .map_err(|e| match e {
            ConnectError::Mysql(e) => MysqlCaptureError::Connect(e),
            other => MysqlCaptureError::Setup(other),
        })
}

fn query_err(what: &'static str) -> impl FnOnce(mysql_async::Error) -> MysqlCaptureError {
    move |source| MysqlCaptureError::Query { what, source }
}

/// Whether the server is MariaDB (it says so in its version string).
pub async fn is_mariadb(conn: &mut Conn) -> Result<bool, MysqlCaptureError> {
    let v: Option<String> = conn
        .query_first("SELECT VERSION()")
        .await
        .map_err(query_err("reading the server version"))?;
    Ok(v.is_some_and(|v| v.to_ascii_lowercase().contains("mariadb")))
}

/// The end of the binlog right now: a MariaDB GTID list on MariaDB (exactly the state at that file
/// and offset, via `BINLOG_GTID_POS`; file and offset while no GTID exists yet), a file and offset
/// on MySQL.
pub async fn current_position(conn: &mut Conn) -> Result<Position, MysqlCaptureError> {
    let mariadb = is_mariadb(conn).await?;
    let Some((file, offset)) = log_end(conn, mariadb).await? else {
        return Err(MysqlCaptureError::Unsupported {
            what: "a source without a binary log",
            fix: "start the server with log_bin enabled",
        });
    };
    if mariadb {
        let gtid: Option<Option<String>> = conn
            .exec_first("SELECT BINLOG_GTID_POS(?, ?)", (file.as_str(), offset))
            .await
            .map_err(query_err("BINLOG_GTID_POS"))?;
        let text = gtid.flatten().unwrap_or_default();
        let list: MariaGtidList = text.parse().map_err(|_| MysqlCaptureError::Unsupported {
            what: "an unreadable GTID position from BINLOG_GTID_POS",
            fix: "check the server's gtid_binlog_pos",
        })?;
        // An empty GTID state as @slave_connect_state means "from the oldest binlog", not "now";
        // with no GTID written yet, file and offset are the exact point instead.
        if !list.domains.is_empty() {
            return Ok(Position::MariaGtid(list));
        }
    }
    Ok(Position::Binlog(BinlogPosition { file, offset }))
}

/// Where the binary log ends now: file and offset (`SHOW MASTER STATUS`, which MariaDB reads under
/// the lock the log is written under; MySQL 8.4: `SHOW BINARY LOG STATUS`). `None` without a
/// binary log.
async fn log_end(
    conn: &mut Conn,
    mariadb: bool,
) -> Result<Option<(String, u64)>, MysqlCaptureError> {
    let status: Option<mysql_async::Row> = match conn.query_first("SHOW MASTER STATUS").await {
        Ok(r) => r,
        // MySQL 8.4 removed SHOW MASTER STATUS.
        Err(_) if !mariadb => conn
            .query_first("SHOW BINARY LOG STATUS")
            .await
            .map_err(query_err("SHOW BINARY LOG STATUS"))?,
        Err(e) => return Err(query_err("SHOW MASTER STATUS")(e)),
    };
    let Some(row) = status else {
        return Ok(None);
    };
    match (row.get_opt::<String, _>(0), row.get_opt::<u64, _>(1)) {
        (Some(Ok(file)), Some(Ok(offset))) => Ok(Some((file, offset))),
        _ => Err(MysqlCaptureError::Unsupported {
            what: "an unreadable SHOW MASTER STATUS result",
            fix: "check the account's BINLOG MONITOR / REPLICATION CLIENT privilege",
        }),
    }
}

/// The server's GTID state, when its binary log ends at `file` and `offset` (where a dump thread
/// stood idle): read between two looks at the end of the log, which must both be there. The end
/// is read under the lock the binlog is written under, so no transaction was being written
/// meanwhile, and the state holds exactly the transactions before `offset`. `None` when the log
/// moved (a later heartbeat past more left-out events asks again). `BINLOG_GTID_POS` would say it
/// for any offset, but reads the file from its start to do so.
pub async fn gtid_state_at_end(
    conn: &mut Conn,
    file: &str,
    offset: u64,
) -> Result<Option<MariaGtidList>, MysqlCaptureError> {
    let at = |e: &Option<(String, u64)>| e.as_ref().is_some_and(|(f, o)| f == file && *o == offset);
    if !at(&log_end(conn, true).await?) {
        return Ok(None);
    }
    let row: Option<mysql_async::Row> = conn
        .query_first("SELECT @@gtid_binlog_pos")
        .await
        .map_err(query_err("reading gtid_binlog_pos"))?;
    if !at(&log_end(conn, true).await?) {
        return Ok(None);
    }
    row.and_then(|r| r.get_opt::<Option<String>, _>(0)?.ok())
        .flatten()
        .unwrap_or_default()
        .parse()
        .map(Some)
        .map_err(|_| MysqlCaptureError::Unsupported {
            what: "an unreadable gtid_binlog_pos",
            fix: "check the server's gtid_binlog_pos",
        })
}

/// Whether the server writes CRC32 checksums on binlog events.
pub async fn binlog_checksum(conn: &mut Conn) -> Result<bool, MysqlCaptureError> {
    let v: Option<String> = conn
        .query_first("SELECT @@GLOBAL.binlog_checksum")
        .await
        .map_err(query_err("reading binlog_checksum"))?;
    Ok(v.is_some_and(|v| !v.eq_ignore_ascii_case("NONE")))
}

/// The server's collation id -> charset table.
pub async fn collations(conn: &mut Conn) -> Result<HashMap<u16, Charset>, MysqlCaptureError> {
    let rows: Vec<(u64, String)> = conn
        .query(
            "SELECT ID, CHARACTER_SET_NAME FROM information_schema.COLLATIONS WHERE ID IS NOT NULL",
        )
        .await
        .map_err(query_err("reading information_schema.COLLATIONS"))?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, cs)| Some((u16::try_from(id).ok()?, Charset::from_name(&cs))))
        .collect())
}

/// Column data for `table` from information_schema, in ordinal order.
pub async fn schema_info(
    conn: &mut Conn,
    table: &TableRef,
) -> Result<SchemaInfo, MysqlCaptureError> {
    let cols: Vec<(String, String, Option<String>, String, String)> = conn
        .exec(
            "SELECT COLUMN_NAME, COLUMN_TYPE, CHARACTER_SET_NAME, COLUMN_KEY, DATA_TYPE \
             FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? \
             ORDER BY ORDINAL_POSITION",
            (&*table.schema, &*table.name),
        )
        .await
        .map_err(query_err("reading information_schema.COLUMNS"))?;
    if cols.is_empty() {
        return Err(MysqlCaptureError::MissingTable {
            table: table.clone(),
        });
    }
    // MariaDB's JSON is LONGTEXT plus a json_valid() check named after the column. MySQL has no
    // such view rows for it, and its JSON arrives as a JSON binlog type anyway.
    let checks: Vec<(String, String)> = conn
        .exec(
            "SELECT CONSTRAINT_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS \
             WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?",
            (&*table.schema, &*table.name),
        )
        .await
        .unwrap_or_default();
    let columns = cols
        .into_iter()
        .map(|(name, column_type, charset, key, data_type)| {
            let lower = column_type.to_ascii_lowercase();
            let clause = format!("json_valid(`{}`)", name.to_ascii_lowercase());
            let is_json = data_type.eq_ignore_ascii_case("json")
                || checks
                    .iter()
                    .any(|(_, c)| c.to_ascii_lowercase().replace(' ', "") == clause);
            InfoColumn {
                unsigned: lower.contains(" unsigned"),
                charset,
                enum_values: if lower.starts_with("enum(") {
                    labels(&column_type)
                } else {
                    Vec::new()
                },
                set_values: if lower.starts_with("set(") {
                    labels(&column_type)
                } else {
                    Vec::new()
                },
                is_json,
                fixed_binary: FixedBinary::from_data_type(&data_type),
                primary_key: key == "PRI",
                name,
            }
        })
        .collect();
    Ok(SchemaInfo { columns })
}

/// The labels of `enum('a','b''c')` / `set(...)` as information_schema prints them.
pub fn labels(column_type: &str) -> Vec<String> {
    let Some(start) = column_type.find('(') else {
        return Vec::new();
    };
    let body = &column_type[start + 1..];
    let mut out = Vec::new();
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\'' {
            continue;
        }
        let mut label = String::new();
        loop {
            match chars.next() {
                Some('\'') if chars.peek() == Some(&'\'') => {
                    chars.next();
                    label.push('\'');
                }
                Some('\'') | None => break,
                Some('\\') => {
                    if let Some(n) = chars.next() {
                        label.push(n);
                    }
                }
                Some(c) => label.push(c),
            }
        }
        out.push(label);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_enum_labels() {
        assert_eq!(
            super::labels("enum('a','b''c','')"),
            vec!["a".to_string(), "b'c".into(), "".into()]
        );
        assert_eq!(super::labels("set('x,y','z')"), vec!["x,y", "z"]);
    }
}
