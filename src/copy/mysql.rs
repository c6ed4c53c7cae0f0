//! Reading a MariaDB source for the copy: `START TRANSACTION WITH CONSISTENT SNAPSHOT`, whose binlog
//! position MariaDB reports without locks (`binlog_snapshot_file` / `binlog_snapshot_position`,
//! turned into a GTID position with `BINLOG_GTID_POS` once the server has written GTIDs), read in key
//! order with keyset pagination over the binary protocol. Values are converted to what the binlog
//! decoder yields for the same column, so a copied row equals a streamed insert.
//!
//! MySQL offers no lock-free snapshot position; copying from MySQL is refused with that explanation.

use std::collections::HashMap;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Params, Value as My};

use super::{CopyError, KeyOrder};
use crate::capture::mysql::temporal::{date_value, datetime_value};
use crate::capture::mysql::MysqlCaptureError;
use crate::config::Node;
use crate::model::time::{days_from_civil, MICROS_PER_DAY};
use crate::model::{
    BinlogPosition, Field, ImageKind, MariaGtidList, Position, RowImage, TableRef, Value,
};

/// What the reader needs to know of a column.
#[derive(Debug, Clone)]
struct Col {
    name: String,
    data_type: String,
    unsigned: bool,
    /// Bits of a BIT(n) column.
    bits: u32,
    text: bool,
    json: bool,
}

pub struct MyReader {
    node: String,
    conn: Conn,
    /// The snapshot's binlog position (`None`: opened without one).
    position: Option<Position>,
    columns: HashMap<TableRef, Vec<Col>>,
}

use crate::connect::quote::mysql::ident;

fn qualified(t: &TableRef) -> String {
    format!("{}.{}", ident(&t.schema), ident(&t.name))
}

fn query_err(node: &Node, what: &'static str) -> impl FnOnce(mysql_async::Error) -> CopyError {
    let node = node.id.clone();
    move |source| CopyError::Mysql {
        node,
        source: MysqlCaptureError::Query { what, source },
    }
}

/// A session as the copy reads: UTC, REPEATABLE READ.
async fn session(node: &Node) -> Result<Conn, CopyError> {
    let setup = |e| CopyError::Mysql {
        node: node.id.clone(),
        source: MysqlCaptureError::Setup(e),
    };
    let opts = crate::connect::mysql_opts(node.url.expose()).map_err(setup)?;
    let mut conn = crate::connect::mysql(opts).await.map_err(setup)?;
    let err = |what| query_err(node, what);
    conn.query_drop("SET time_zone = '+00:00'")
        .await
        .map_err(err("preparing the copy session"))?;
    conn.query_drop("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        .await
        .map_err(err("preparing the copy session"))?;
    Ok(conn)
}

async fn snapshot(conn: &mut Conn, node: &Node) -> Result<(), CopyError> {
    conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        .await
        .map_err(query_err(
            node,
            "START TRANSACTION WITH CONSISTENT SNAPSHOT",
        ))
}

impl MyReader {
    /// A snapshot for the copy, with its binlog position (MariaDB only, see the module doc).
    pub async fn open(node: &Node) -> Result<MyReader, CopyError> {
        let mut conn = session(node).await?;
        let err = |what| query_err(node, what);
        let version: Option<String> = conn
            .query_first("SELECT VERSION()")
            .await
            .map_err(err("reading the server version"))?;
        if !version.is_some_and(|v| v.to_ascii_lowercase().contains("mariadb")) {
            return Err(CopyError::Definite(format!(
                "node {} is MySQL, which reports no binlog position for a consistent snapshot without locking every table; fix: name a PostgreSQL or MariaDB node in [copy] from",
                node.id
            )));
        }
        snapshot(&mut conn, node).await?;
        let status: Vec<(String, String)> = conn
            .query("SHOW STATUS LIKE 'binlog_snapshot_%'")
            .await
            .map_err(err("SHOW STATUS LIKE 'binlog_snapshot_%'"))?;
        let get = |name: &str| {
            status
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let (Some(file), Some(offset)) = (
            get("binlog_snapshot_file"),
            get("binlog_snapshot_position").and_then(|p| p.parse::<u64>().ok()),
        ) else {
            return Err(CopyError::Definite(format!(
                "node {} reports no binlog snapshot position; fix: enable the binary log (log_bin) on it",
                node.id
            )));
        };
        if file.is_empty() {
            return Err(CopyError::Definite(format!(
                "node {} has no binary log; fix: enable log_bin",
                node.id
            )));
        }
        let gtid: Option<Option<String>> = conn
            .exec_first("SELECT BINLOG_GTID_POS(?, ?)", (file.as_str(), offset))
            .await
            .map_err(err("BINLOG_GTID_POS"))?;
        let list: Option<MariaGtidList> = gtid.flatten().and_then(|t| t.parse().ok());
        // As in capture: an empty GTID state would mean "from the oldest binlog", so file and offset
        // are the exact point until the server has written a GTID.
        let position = match list {
            Some(l) if !l.domains.is_empty() => Position::MariaGtid(l),
            _ => Position::Binlog(BinlogPosition { file, offset }),
        };
        Ok(MyReader {
            node: node.id.clone(),
            conn,
            position: Some(position),
            columns: HashMap::new(),
        })
    }

    /// A consistent snapshot without a log position (any MySQL or MariaDB), for reading only.
    pub async fn open_plain(node: &Node) -> Result<MyReader, CopyError> {
        let mut conn = session(node).await?;
        snapshot(&mut conn, node).await?;
        Ok(MyReader {
            node: node.id.clone(),
            conn,
            position: None,
            columns: HashMap::new(),
        })
    }

    /// The binlog position of the snapshot: the stream starts after it.
    pub fn snapshot_position(&self) -> Option<&Position> {
        self.position.as_ref()
    }

    fn err(&self, what: &'static str) -> impl FnOnce(mysql_async::Error) -> CopyError {
        let node = self.node.clone();
        move |source| CopyError::Mysql {
            node,
            source: MysqlCaptureError::Query { what, source },
        }
    }

    pub async fn estimate(&mut self, table: &TableRef) -> Result<Option<u64>, CopyError> {
        let n: Option<Option<u64>> = self
            .conn
            .exec_first(
                "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
                (&*table.schema, &*table.name),
            )
            .await
            .map_err(self.err("reading information_schema.TABLES"))?;
        Ok(n.flatten())
    }

    async fn columns(&mut self, table: &TableRef) -> Result<Vec<Col>, CopyError> {
        if let Some(c) = self.columns.get(table) {
            return Ok(c.clone());
        }
        let read = crate::catalog::mysql::read_table(&mut self.conn, table).await;
        let Some(schema) = read.map_err(self.err("reading information_schema"))? else {
            return Err(CopyError::Definite(format!(
                "table {table} does not exist on node {}; fix: create it or correct the mapping",
                self.node
            )));
        };
        let cols: Vec<Col> = schema
            .columns
            .into_iter()
            .map(|c| {
                let lower = c.declared.to_ascii_lowercase();
                let bits = lower
                    .strip_prefix("bit(")
                    .and_then(|r| r.trim_end_matches(')').parse().ok())
                    .unwrap_or(1);
                Col {
                    json: c.base == "json",
                    data_type: c.base,
                    unsigned: lower.contains(" unsigned"),
                    bits,
                    text: c
                        .charset
                        .is_some_and(|cs| !cs.eq_ignore_ascii_case("binary")),
                    name: c.name,
                }
            })
            .collect();
        self.columns.insert(table.clone(), cols.clone());
        Ok(cols)
    }

    /// Up to `limit` rows with a key above `after` (a JSON array of the key's model values), in key
    /// order, and the last row's key in that form. Under [`KeyOrder::Bytes`] text key columns are
    /// ordered by their bytes (`BINARY`), the order every engine can give.
    pub async fn batch(
        &mut self,
        table: &TableRef,
        key: &[String],
        after: Option<&str>,
        limit: u32,
        order: KeyOrder,
    ) -> Result<(Vec<RowImage>, Option<String>), CopyError> {
        let cols = self.columns(table).await?;
        let key_index = self
            .key_index(table, &cols, key)
            .map_err(CopyError::Definite)?;
        let order: Vec<String> = key_index
            .iter()
            .map(|&i| {
                if order == KeyOrder::Bytes && cols[i].text {
                    format!("BINARY {}", ident(&cols[i].name))
                } else {
                    ident(&cols[i].name)
                }
            })
            .collect();
        let mut sql = select_list(table, &cols);
        let mut params = Vec::new();
        if let Some(after) = after {
            let values: Vec<Value> = serde_json::from_str(after).map_err(|_| {
                CopyError::Definite(format!(
                    "the copy progress of {table} holds an unreadable key; fix: delete that table's row from the copy_progress table on the target to copy it again"
                ))
            })?;
            // (a, b) > (x, y) spelled out, which MariaDB turns into an index range.
            let mut ors = Vec::new();
            for i in 0..order.len() {
                let mut ands: Vec<String> = order[..i].iter().map(|c| format!("{c} = ?")).collect();
                ands.push(format!("{} > ?", order[i]));
                ors.push(format!("({})", ands.join(" AND ")));
                for v in values.iter().take(i + 1) {
                    params.push(to_param(v));
                }
            }
            sql.push_str(&format!(" WHERE {}", ors.join(" OR ")));
        }
        sql.push_str(&format!(" ORDER BY {} LIMIT {limit}", order.join(", ")));
        let rows = self.read(table, &cols, sql, params).await?;
        let last = match rows.last() {
            Some(r) => {
                let k: Vec<Value> = key_index
                    .iter()
                    .map(|&i| r.fields[i].value.clone())
                    .collect();
                Some(serde_json::to_string(&k).map_err(|e| {
                    CopyError::Definite(format!("cannot record the last key of {table}: {e}"))
                })?)
            }
            None => None,
        };
        Ok((rows, last))
    }

    /// The rows whose key is one of `keys` (model values, in key column order), in no set order.
    pub async fn rows_with_keys(
        &mut self,
        table: &TableRef,
        key: &[String],
        keys: &[Vec<Value>],
    ) -> Result<Vec<RowImage>, CopyError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let cols = self.columns(table).await?;
        self.key_index(table, &cols, key)
            .map_err(CopyError::Definite)?;
        let names: Vec<String> = key.iter().map(|k| ident(k)).collect();
        let tuple = format!("({})", vec!["?"; key.len()].join(", "));
        let mut sql = select_list(table, &cols);
        sql.push_str(&format!(
            " WHERE ({}) IN ({})",
            names.join(", "),
            vec![tuple; keys.len()].join(", ")
        ));
        let params = keys.iter().flatten().map(to_param).collect();
        self.read(table, &cols, sql, params).await
    }

    /// The rows whose `version` column (tandem's managed version: microseconds) is at least
    /// `since_micros`, in no set order.
    pub async fn rows_since(
        &mut self,
        table: &TableRef,
        key: &[String],
        version: &str,
        since_micros: i64,
    ) -> Result<Vec<RowImage>, CopyError> {
        let cols = self.columns(table).await?;
        self.key_index(table, &cols, key)
            .map_err(CopyError::Definite)?;
        let mut sql = select_list(table, &cols);
        sql.push_str(&format!(" WHERE {} >= {since_micros}", ident(version)));
        self.read(table, &cols, sql, Vec::new()).await
    }

    fn key_index(
        &self,
        table: &TableRef,
        cols: &[Col],
        key: &[String],
    ) -> Result<Vec<usize>, String> {
        key.iter()
            .map(|k| {
                cols.iter().position(|c| c.name == *k).ok_or_else(|| {
                    format!(
                        "table {table} on node {} has no key column {k}; fix: correct the table's key in the file",
                        self.node
                    )
                })
            })
            .collect()
    }

    /// Runs `sql` (a select of `cols`) and converts its rows.
    async fn read(
        &mut self,
        table: &TableRef,
        cols: &[Col],
        sql: String,
        params: Vec<My>,
    ) -> Result<Vec<RowImage>, CopyError> {
        let result: Vec<mysql_async::Row> = self
            .conn
            .exec(sql, Params::Positional(params))
            .await
            .map_err(self.err("reading rows to copy"))?;
        let mut rows = Vec::with_capacity(result.len());
        for r in result {
            let raw = r.unwrap_raw();
            let mut fields = Vec::with_capacity(cols.len());
            for (col, v) in cols.iter().zip(raw) {
                let v = v.unwrap_or(My::NULL);
                let value = to_value(col, v).ok_or_else(|| CopyError::Value {
                    table: table.clone(),
                    column: col.name.clone(),
                    type_name: col.data_type.clone(),
                })?;
                fields.push(Field {
                    name: col.name.as_str().into(),
                    value,
                });
            }
            rows.push(RowImage::new(ImageKind::Full, fields));
        }
        Ok(rows)
    }
}

fn select_list(table: &TableRef, cols: &[Col]) -> String {
    let list: Vec<String> = cols.iter().map(|c| ident(&c.name)).collect();
    format!("SELECT {} FROM {}", list.join(", "), qualified(table))
}

/// A key value back as a statement parameter.
fn to_param(v: &Value) -> My {
    match v {
        Value::Int(i) => My::Int(*i),
        Value::UInt(u) => My::UInt(*u),
        Value::Float32(f) => My::Float(*f),
        Value::Float64(f) => My::Double(*f),
        Value::Bytes(b) => My::Bytes(b.clone()),
        Value::Geometry { srid, wkb } => My::Bytes(Value::geometry_server_bytes(*srid, wkb)),
        Value::Text(t) | Value::Json(t) | Value::Enum(t) => My::Bytes(t.as_bytes().to_vec()),
        Value::Decimal(d) => My::Bytes(d.to_string().into_bytes()),
        Value::Date(d) => My::Bytes(crate::model::time::format_date(i64::from(*d)).into_bytes()),
        Value::Timestamp(t) | Value::TimestampTz(t) => {
            My::Bytes(crate::model::time::format_timestamp(*t).into_bytes())
        }
        Value::Time(t) => My::Bytes(crate::model::time::format_time(*t).into_bytes()),
        other => My::Bytes(other.to_string().into_bytes()),
    }
}

/// A binary-protocol value as the binlog decoder would give it for `col`; `None` when it cannot be.
fn to_value(col: &Col, v: My) -> Option<Value> {
    if v == My::NULL {
        return Some(Value::Null);
    }
    let text = |v: &My| match v {
        My::Bytes(b) => String::from_utf8(b.clone()).ok(),
        My::Int(i) => Some(i.to_string()),
        My::UInt(u) => Some(u.to_string()),
        My::Float(f) => Some(f.to_string()),
        My::Double(d) => Some(d.to_string()),
        _ => None,
    };
    Some(match col.data_type.as_str() {
        "tinyint" | "smallint" | "mediumint" | "int" | "bigint" | "year" => {
            let t = text(&v)?;
            if col.unsigned {
                Value::UInt(t.parse().ok()?)
            } else {
                Value::Int(t.parse().ok()?)
            }
        }
        "float" => match v {
            My::Float(f) => Value::Float32(f),
            My::Double(d) => Value::Float32(d as f32),
            other => Value::Float32(text(&other)?.parse().ok()?),
        },
        "double" => match v {
            My::Double(d) => Value::Float64(d),
            My::Float(f) => Value::Float64(f64::from(f)),
            other => Value::Float64(text(&other)?.parse().ok()?),
        },
        "decimal" => Value::Decimal(text(&v)?.parse().ok()?),
        "date" | "datetime" | "timestamp" => match v {
            My::Date(0, 0, 0, ..) => Value::Other {
                type_name: "zero_date".into(),
                text: if col.data_type == "date" {
                    "0000-00-00".into()
                } else {
                    "0000-00-00 00:00:00".into()
                },
            },
            // As the binlog decoder: a partly-zero date ('2013-00-00') the source's sql_mode
            // admitted stays its text, never a normalised neighbour ('2012-11-30').
            My::Date(y, mo, d, ..) if col.data_type == "date" => {
                date_value(i64::from(y), u32::from(mo), u32::from(d))
            }
            My::Date(y, mo, d, h, mi, s, us) if col.data_type == "datetime" => datetime_value(
                i64::from(y),
                u32::from(mo),
                u32::from(d),
                i64::from(h),
                i64::from(mi),
                i64::from(s),
                i64::from(us),
            )
            .ok()?,
            My::Date(y, mo, d, h, mi, s, us) => {
                let days = days_from_civil(i64::from(y), u32::from(mo), u32::from(d));
                let tod = ((i64::from(h) * 60 + i64::from(mi)) * 60 + i64::from(s)) * 1_000_000
                    + i64::from(us);
                Value::TimestampTz(days * MICROS_PER_DAY + tod)
            }
            _ => return None,
        },
        "time" => match v {
            My::Time(neg, d, h, mi, s, us) => {
                let micros = (((i64::from(d) * 24 + i64::from(h)) * 60 + i64::from(mi)) * 60
                    + i64::from(s))
                    * 1_000_000
                    + i64::from(us);
                Value::Time(if neg { -micros } else { micros })
            }
            _ => return None,
        },
        "bit" => match v {
            My::Bytes(b) => Value::Bits {
                len: col.bits,
                bytes: crate::capture::mysql::types::left_align_bits(&b, col.bits),
            },
            My::Int(i) => bits_from_u64(i as u64, col.bits),
            My::UInt(u) => bits_from_u64(u, col.bits),
            _ => return None,
        },
        // As the binlog decoder gives them (see `FixedBinary`); the text read here is the
        // server's own form, and an address must not travel as bytes, which the target would read
        // as the binary form whenever the text has exactly the type's width.
        "inet4" | "inet6" => Value::Text(text(&v)?),
        "uuid" => Value::Uuid(crate::model::parse_uuid(&text(&v)?)?),
        "enum" => Value::Enum(text(&v)?),
        "set" => {
            let t = text(&v)?;
            Value::Set(if t.is_empty() {
                Vec::new()
            } else {
                t.split(',').map(str::to_string).collect()
            })
        }
        "json" => Value::Json(text(&v)?),
        "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
        | "multipolygon" | "geometrycollection" => match v {
            My::Bytes(b) => Value::geometry_from_server(&b),
            _ => return None,
        },
        _ if col.text && col.json => Value::Json(text(&v)?),
        _ if col.text => Value::Text(text(&v)?),
        _ => match v {
            My::Bytes(b) => Value::Bytes(b),
            other => Value::Bytes(text(&other)?.into_bytes()),
        },
    })
}

fn bits_from_u64(v: u64, len: u32) -> Value {
    let raw = v.to_be_bytes();
    let n = len.div_ceil(8) as usize;
    Value::Bits {
        len,
        bytes: crate::capture::mysql::types::left_align_bits(&raw[8 - n.min(8)..], len),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(data_type: &str) -> Col {
        Col {
            name: "c".into(),
            data_type: data_type.into(),
            unsigned: false,
            bits: 1,
            text: false,
            json: false,
        }
    }

    #[test]
    fn binary_protocol_values_become_binlog_values() {
        assert_eq!(to_value(&col("int"), My::Int(-5)), Some(Value::Int(-5)));
        assert_eq!(
            to_value(&col("datetime"), My::Date(1970, 1, 2, 0, 0, 1, 5)),
            Some(Value::Timestamp(MICROS_PER_DAY + 1_000_005))
        );
        assert_eq!(
            to_value(&col("date"), My::Date(1970, 1, 3, 0, 0, 0, 0)),
            Some(Value::Date(2))
        );
        assert_eq!(
            to_value(&col("time"), My::Time(true, 1, 1, 0, 0, 0)),
            Some(Value::Time(-25 * 3_600_000_000))
        );
        assert_eq!(
            to_value(&col("set"), My::Bytes(b"a,b".to_vec())),
            Some(Value::Set(vec!["a".into(), "b".into()]))
        );
        let mut text = col("varchar");
        text.text = true;
        assert_eq!(
            to_value(&text, My::Bytes(b"x".to_vec())),
            Some(Value::Text("x".into()))
        );
        assert_eq!(
            to_value(&col("varbinary"), My::Bytes(vec![0, 1])),
            Some(Value::Bytes(vec![0, 1]))
        );
        assert_eq!(to_value(&col("int"), My::NULL), Some(Value::Null));
        assert_eq!(
            to_value(&col("datetime"), My::Date(2013, 0, 0, 0, 0, 0, 0)),
            Some(Value::Other {
                type_name: "zero_date".into(),
                text: "2013-00-00 00:00:00".into()
            }),
            "a partly-zero date is kept, not normalised"
        );
        assert_eq!(
            to_value(&col("date"), My::Date(2015, 5, 0, 0, 0, 0, 0)),
            Some(Value::Other {
                type_name: "zero_date".into(),
                text: "2015-05-00".into()
            })
        );
        assert_eq!(to_value(&col("date"), My::Int(1)), None);
    }
}
