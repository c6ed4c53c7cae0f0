//! MySQL/MariaDB catalog queries (`information_schema`): the one reader of a table's columns, types
//! and keys on MySQL/MariaDB ([`read_table`]), used on their own sessions by `check`, the applier,
//! the initial copy and verify.

use std::collections::BTreeMap;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use super::{CatalogError, ForeignKey, Generator, GeneratorKind, TableExtras, TableGenerators};
use crate::config::Node;
use crate::connect::quote::mysql::ident;
use crate::model::schema::{parse_mysql, ColumnSchema, ColumnType, TableSchema};
use crate::model::TableRef;

const COLUMNS: &str = "
SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE = 'YES',
       (COLUMN_DEFAULT IS NOT NULL OR EXTRA LIKE '%auto_increment%' OR EXTRA LIKE '%GENERATED%'),
       CHARACTER_SET_NAME, LOWER(DATA_TYPE), EXTRA LIKE '%GENERATED%'
FROM information_schema.COLUMNS
WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?
ORDER BY ORDINAL_POSITION";

/// Asked with constants only, which the server answers without opening every table.
const CHECKS: &str = "
SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS
WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?";

const KEYS: &str = "
SELECT INDEX_NAME, COLUMN_NAME
FROM information_schema.STATISTICS
WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND NON_UNIQUE = 0
ORDER BY INDEX_NAME, SEQ_IN_INDEX";

type ColumnRow = (String, String, bool, bool, Option<String>, String, bool);

/// `table` as `information_schema` declares it, read on `conn`'s session; `None` when there is no
/// such table. MariaDB's JSON is a LONGTEXT with a `json_valid` check: its `base` is `json`.
pub async fn read_table(
    conn: &mut Conn,
    table: &TableRef,
) -> Result<Option<TableSchema>, mysql_async::Error> {
    let rows: Vec<ColumnRow> = conn.exec(COLUMNS, (&*table.schema, &*table.name)).await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let checks: Vec<String> = if rows.iter().any(|r| r.5 == "longtext") {
        conn.exec(CHECKS, (&*table.schema, &*table.name)).await?
    } else {
        Vec::new()
    };
    let is_json = |name: &str| {
        let clause = format!("json_valid({})", ident(name)).to_lowercase();
        checks
            .iter()
            .any(|c| c.to_lowercase().replace(' ', "") == clause)
    };
    let columns = rows
        .into_iter()
        .map(
            |(name, declared, nullable, has_default, charset, data_type, generated)| {
                let json = data_type == "json" || (data_type == "longtext" && is_json(&name));
                ColumnSchema {
                    ty: parse_mysql(&declared, json),
                    base: if json { "json".into() } else { data_type },
                    name,
                    declared,
                    nullable,
                    has_default,
                    charset,
                    generated,
                    identity_always: false,
                    type_oid: None,
                    array_delim: ',',
                }
            },
        )
        .collect();
    let mut schema = TableSchema {
        table: table.clone(),
        columns,
        primary_key: Vec::new(),
        unique_keys: Vec::new(),
    };
    let keys: Vec<(String, String)> = conn.exec(KEYS, (&*table.schema, &*table.name)).await?;
    let mut by_index: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (index, column) in keys {
        by_index.entry(index).or_default().push(column);
    }
    for (index, cols) in by_index {
        if index == "PRIMARY" {
            schema.primary_key = cols;
        } else {
            schema.unique_keys.push(cols);
        }
    }
    Ok(Some(schema))
}

/// A session of the catalog's own on `node`.
async fn connect(node: &Node) -> Result<Conn, CatalogError> {
    let failed = |detail: String| CatalogError::Connect {
        node: node.id.clone(),
        detail,
    };
    let opts = crate::connect::mysql_opts(node.url.expose()).map_err(|e| failed(e.to_string()))?;
    crate::connect::mysql(opts)
        .await
        .map_err(|e| failed(e.to_string()))
}

pub(super) async fn read_tables(
    node: &Node,
    tables: &[TableRef],
) -> Result<BTreeMap<TableRef, Option<TableSchema>>, CatalogError> {
    let mut conn = connect(node).await?;
    let mut out = BTreeMap::new();
    for t in tables {
        let schema = read_table(&mut conn, t)
            .await
            .map_err(|e| CatalogError::Query {
                node: node.id.clone(),
                detail: e.to_string(),
            })?;
        out.insert(t.clone(), schema);
    }
    let _ = conn.disconnect().await;
    Ok(out)
}

const AUTO_INCREMENT: &str = "
SELECT COLUMN_NAME FROM information_schema.COLUMNS
WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND EXTRA LIKE '%auto_increment%'";

/// The AUTO_INCREMENT columns of `tables`, under the server's global increment and offset (what
/// every new session starts with), each with the column's largest value.
pub(super) async fn read_generators(
    node: &Node,
    tables: &[TableRef],
) -> Result<TableGenerators, CatalogError> {
    let mut conn = connect(node).await?;
    let result = generators_on(&mut conn, tables).await;
    let _ = conn.disconnect().await;
    result.map_err(|e| CatalogError::Query {
        node: node.id.clone(),
        detail: e.to_string(),
    })
}

async fn generators_on(
    conn: &mut Conn,
    tables: &[TableRef],
) -> Result<TableGenerators, mysql_async::Error> {
    let globals: Option<(i64, i64)> = conn
        .query_first("SELECT @@GLOBAL.auto_increment_increment, @@GLOBAL.auto_increment_offset")
        .await?;
    let (increment, offset) = globals.unwrap_or((1, 1));
    let mut out = BTreeMap::new();
    for t in tables {
        let columns: Vec<String> = conn.exec(AUTO_INCREMENT, (&*t.schema, &*t.name)).await?;
        let mut generators = Vec::new();
        for column in columns {
            let max: Option<Option<String>> = conn
                .query_first(format!(
                    "SELECT CAST(MAX({}) AS CHAR) FROM {}.{}",
                    ident(&column),
                    ident(&t.schema),
                    ident(&t.name)
                ))
                .await?;
            generators.push(Generator {
                column,
                kind: GeneratorKind::AutoIncrement { increment, offset },
                max: max.flatten().and_then(|m| m.parse().ok()),
            });
        }
        if !generators.is_empty() {
            out.insert(t.clone(), generators);
        }
    }
    Ok(out)
}

pub(super) async fn sample_json(
    node: &Node,
    schema: &TableSchema,
    limit: u32,
) -> Result<Vec<String>, CatalogError> {
    let mut conn = connect(node).await?;
    use crate::connect::quote::mysql::{ident as q, literal};
    let pairs: Vec<String> = schema
        .columns
        .iter()
        .map(|c| {
            // Bytes are not text: send them base64, so that a sample never fails on them.
            let expr = match c.ty {
                ColumnType::Bytes { .. } => {
                    format!("TO_BASE64({})", q(&c.name))
                }
                // BIT values are bytes too; their text is the bit string (b'101' is "101").
                ColumnType::Bits { .. } => {
                    format!("BIN({})", q(&c.name))
                }
                // A spatial value by its SRID: what decides whether a bytes column takes it.
                ColumnType::Geometry => {
                    format!("ST_SRID({})", q(&c.name))
                }
                _ => q(&c.name),
            };
            format!("{}, {expr}", literal(&c.name))
        })
        .collect();
    let sql = format!(
        "SELECT JSON_OBJECT({}) FROM {}.{} LIMIT {limit}",
        pairs.join(", "),
        q(&schema.table.schema),
        q(&schema.table.name)
    );
    // Read as bytes: a value the server sends in a binary character set must not fail the row
    // conversion (it panicked inside the driver); what is not UTF-8 is replaced, for a sample only.
    let rows: Result<Vec<Option<Vec<u8>>>, _> = conn.query(sql).await;
    let _ = conn.disconnect().await;
    rows.map(|rows| {
        rows.into_iter()
            .flatten()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .collect()
    })
    .map_err(|e| CatalogError::Query {
        node: node.id.clone(),
        detail: e.to_string(),
    })
}

const EXTRAS_COLUMNS: &str = "
SELECT COLUMN_NAME, COLUMN_DEFAULT, COLUMN_COMMENT
FROM information_schema.COLUMNS
WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?
ORDER BY ORDINAL_POSITION";

const EXTRAS_TABLE: &str = "
SELECT TABLE_COMMENT, CAST(AUTO_INCREMENT AS SIGNED)
FROM information_schema.TABLES
WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?";

const FOREIGN_KEYS: &str = "
SELECT k.CONSTRAINT_NAME, k.COLUMN_NAME, k.REFERENCED_TABLE_SCHEMA, k.REFERENCED_TABLE_NAME,
       k.REFERENCED_COLUMN_NAME, r.DELETE_RULE, r.UPDATE_RULE
FROM information_schema.KEY_COLUMN_USAGE k
JOIN information_schema.REFERENTIAL_CONSTRAINTS r
  ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME
 AND r.TABLE_NAME = k.TABLE_NAME
WHERE k.TABLE_SCHEMA = ? AND k.TABLE_NAME = ? AND k.REFERENCED_TABLE_NAME IS NOT NULL
ORDER BY k.CONSTRAINT_NAME, k.ORDINAL_POSITION";

type ForeignKeyRow = (String, String, String, String, String, String, String);

async fn table_extras(
    conn: &mut Conn,
    table: &TableRef,
) -> Result<Option<TableExtras>, mysql_async::Error> {
    let args = (&*table.schema, &*table.name);
    let Some((comment, auto_increment)): Option<(Option<String>, Option<i64>)> =
        conn.exec_first(EXTRAS_TABLE, args).await?
    else {
        return Ok(None);
    };
    let mut extras = TableExtras {
        comment: comment.filter(|c| !c.is_empty()),
        auto_increment,
        ..TableExtras::default()
    };
    let columns: Vec<(String, Option<String>, Option<String>)> =
        conn.exec(EXTRAS_COLUMNS, args).await?;
    for (column, default, comment) in columns {
        if let Some(default) = default {
            extras.defaults.insert(column.clone(), default);
        }
        if let Some(comment) = comment.filter(|c| !c.is_empty()) {
            extras.comments.insert(column, comment);
        }
    }
    let keys: Vec<ForeignKeyRow> = conn.exec(FOREIGN_KEYS, args).await?;
    for (name, column, ref_schema, ref_table, ref_column, on_delete, on_update) in keys {
        match extras.foreign_keys.last_mut() {
            Some(fk) if fk.name == name => {
                fk.columns.push(column);
                fk.ref_columns.push(ref_column);
            }
            _ => extras.foreign_keys.push(ForeignKey {
                name,
                columns: vec![column],
                references: TableRef::new(&ref_schema, &ref_table),
                ref_columns: vec![ref_column],
                on_delete,
                on_update,
            }),
        }
    }
    Ok(Some(extras))
}

pub(super) async fn read_extras(
    node: &Node,
    tables: &[TableRef],
) -> Result<BTreeMap<TableRef, TableExtras>, CatalogError> {
    let mut conn = connect(node).await?;
    let mut out = BTreeMap::new();
    for t in tables {
        match table_extras(&mut conn, t).await {
            Ok(Some(extras)) => {
                out.insert(t.clone(), extras);
            }
            Ok(None) => {}
            Err(e) => {
                let _ = conn.disconnect().await;
                return Err(CatalogError::Query {
                    node: node.id.clone(),
                    detail: e.to_string(),
                });
            }
        }
    }
    let _ = conn.disconnect().await;
    Ok(out)
}
