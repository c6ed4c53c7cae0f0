//! MySQL/MariaDB values: model values to driver values, column kinds from `information_schema`.

use mysql_async::Value as My;

use crate::apply::target::ColKind;
use crate::model::{time, Value};

/// The column kind from `DATA_TYPE` and `COLUMN_TYPE`.
pub fn kind_of(data_type: &str, column_type: &str) -> ColKind {
    match data_type {
        "tinyint" if column_type.starts_with("tinyint(1)") => ColKind::Bool,
        "tinyint" | "smallint" | "mediumint" | "int" | "bigint" | "year" => ColKind::Int,
        "float" | "double" => ColKind::Float,
        "decimal" => ColKind::Numeric,
        "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" | "enum" | "set" => {
            ColKind::Text
        }
        "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => ColKind::Bytes,
        "json" => ColKind::Json,
        "uuid" => ColKind::Uuid,
        "date" => ColKind::Date,
        "time" => ColKind::Time,
        "datetime" => ColKind::Timestamp,
        "timestamp" => ColKind::TimestampTz,
        "bit" => ColKind::Bit,
        "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
        | "multipolygon" | "geometrycollection" => ColKind::Geometry,
        _ => ColKind::Other,
    }
}

fn text(s: impl Into<String>) -> My {
    My::Bytes(s.into().into_bytes())
}

fn datetime(micros: i64) -> My {
    text(time::format_timestamp(micros).replace('T', " "))
}

/// The driver value for `v` in a column of `kind`. `target_offset_secs` is the target node's UTC
/// offset: an instant written to a `DATETIME` is stored as the node's wall-clock time. The session's
/// time zone is UTC, so a `TIMESTAMP` takes the instant as it is.
pub fn to_my(v: &Value, kind: ColKind, target_offset_secs: i32) -> My {
    match v {
        Value::Null | Value::Unchanged => My::NULL,
        Value::Bool(b) => My::Int(i64::from(*b)),
        Value::Int(i) => My::Int(*i),
        Value::UInt(u) => My::UInt(*u),
        Value::Float32(x) => My::Float(*x),
        Value::Float64(x) => My::Double(*x),
        // Plain WKB (from a PostgreSQL `bytea`) into a spatial column: the server's form with SRID 0.
        Value::Bytes(b) if kind == ColKind::Geometry => {
            My::Bytes(Value::geometry_server_bytes(0, b))
        }
        Value::Bytes(b) => My::Bytes(b.clone()),
        Value::Geometry { srid, wkb } => My::Bytes(Value::geometry_server_bytes(*srid, wkb)),
        Value::Uuid(u) if kind == ColKind::Bytes => My::Bytes(u.to_vec()),
        Value::Date(d) if *d != i32::MAX && *d != i32::MIN => {
            text(time::format_date(i64::from(*d)))
        }
        Value::Time(t) => text(time::format_time(*t)),
        // Into a text column: the time and its offset, as PostgreSQL writes them (a TIME column
        // gets a time at offset 0 only, as `Value::Time`: see `row::target_form`).
        Value::TimeTz { .. } => text(v.to_string()),
        Value::Timestamp(t) if *t != i64::MAX && *t != i64::MIN => datetime(*t),
        Value::TimestampTz(t) if *t != i64::MAX && *t != i64::MIN => match kind {
            ColKind::Timestamp => datetime(t + i64::from(target_offset_secs) * 1_000_000),
            _ => datetime(*t),
        },
        Value::Set(items) => text(items.join(",")),
        // An array in a JSON column is a JSON array (PostgreSQL's `{…}` text would read as an
        // object, or not at all).
        Value::Array(_) if kind == ColKind::Json => text(crate::model::json::value(v).to_string()),
        Value::Bits { len, bytes } if *len <= 64 => {
            let n = bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
            let pad = (bytes.len() as u32 * 8).saturating_sub(*len);
            My::UInt(n >> pad)
        }
        other => text(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_mysql_reads() {
        assert_eq!(to_my(&Value::Bool(true), ColKind::Bool, 0), My::Int(1));
        assert_eq!(
            to_my(&Value::TimestampTz(0), ColKind::Timestamp, 7200),
            My::Bytes(b"1970-01-01 02:00:00".to_vec())
        );
        assert_eq!(
            to_my(
                &Value::Bits {
                    len: 3,
                    bytes: vec![0b1010_0000]
                },
                ColKind::Bit,
                0
            ),
            My::UInt(0b101)
        );
        assert_eq!(
            to_my(
                &Value::Array(vec![Value::Int(1), Value::Null, Value::Text("ü".into())]),
                ColKind::Json,
                0
            ),
            My::Bytes("[1,null,\"ü\"]".as_bytes().to_vec())
        );
    }
}
