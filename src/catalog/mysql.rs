//! MySQL/MariaDB catalog queries (`information_schema`).

use std::collections::BTreeMap;

use mysql_async::prelude::Queryable;

use super::{CatalogError, ColumnSchema, TableSchema};
use crate::config::Node;
use crate::mapping::types::parse_mysql;
use crate::model::TableRef;

const COLUMNS: &str = "
SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE = 'YES',
       (COLUMN_DEFAULT IS NOT NULL OR EXTRA LIKE '%auto_increment%' OR EXTRA LIKE '%GENERATED%'),
       EXISTS (SELECT 1 FROM information_schema.CHECK_CONSTRAINTS cc
               WHERE cc.CONSTRAINT_SCHEMA = c.TABLE_SCHEMA AND cc.TABLE_NAME = c.TABLE_NAME
                 AND cc.CHECK_CLAUSE = CONCAT('json_valid(`', REPLACE(c.COLUMN_NAME, '`', '``'), '`)')),
       CHARACTER_SET_NAME
FROM information_schema.COLUMNS c
WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?
ORDER BY ORDINAL_POSITION";

const KEYS: &str = "
SELECT INDEX_NAME, COLUMN_NAME
FROM information_schema.STATISTICS
WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND NON_UNIQUE = 0
ORDER BY INDEX_NAME, SEQ_IN_INDEX";

pub(super) async fn read_tables(
    node: &Node,
    tables: &[TableRef],
) -> Result<BTreeMap<TableRef, Option<TableSchema>>, CatalogError> {
    let connect = |detail: String| CatalogError::Connect {
        node: node.id.clone(),
        detail,
    };
    let opts = crate::connect::mysql_opts(node.url.expose()).map_err(|e| connect(e.to_string()))?;
    let mut conn = crate::connect::mysql(opts)
        .await
        .map_err(|e| connect(e.to_string()))?;
    let query = |e: mysql_async::Error| CatalogError::Query {
        node: node.id.clone(),
        detail: e.to_string(),
    };
    let mut out = BTreeMap::new();
    for t in tables {
        let rows: Vec<(String, String, bool, bool, bool, Option<String>)> = conn
            .exec(COLUMNS, (&*t.schema, &*t.name))
            .await
            .map_err(query)?;
        if rows.is_empty() {
            out.insert(t.clone(), None);
            continue;
        }
        let columns = rows
            .into_iter()
            .map(
                |(name, declared, nullable, has_default, is_json, charset)| ColumnSchema {
                    name,
                    ty: parse_mysql(&declared, is_json),
                    declared,
                    nullable,
                    has_default,
                    charset,
                },
            )
            .collect();
        let mut schema = TableSchema {
            table: t.clone(),
            columns,
            primary_key: Vec::new(),
            unique_keys: Vec::new(),
        };
        let keys: Vec<(String, String)> = conn
            .exec(KEYS, (&*t.schema, &*t.name))
            .await
            .map_err(query)?;
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
        out.insert(t.clone(), Some(schema));
    }
    let _ = conn.disconnect().await;
    Ok(out)
}

pub(super) async fn sample_json(
    node: &Node,
    schema: &TableSchema,
    limit: u32,
) -> Result<Vec<String>, CatalogError> {
    let connect = |detail: String| CatalogError::Connect {
        node: node.id.clone(),
        detail,
    };
    let opts = crate::connect::mysql_opts(node.url.expose()).map_err(|e| connect(e.to_string()))?;
    let mut conn = crate::connect::mysql(opts)
        .await
        .map_err(|e| connect(e.to_string()))?;
    use crate::connect::quote::mysql::{ident as q, literal};
    let pairs: Vec<String> = schema
        .columns
        .iter()
        .map(|c| {
            // Bytes are not text: send them base64, so that a sample never fails on them.
            let expr = match c.ty {
                crate::mapping::types::ColumnType::Bytes { .. } => {
                    format!("TO_BASE64({})", q(&c.name))
                }
                // BIT values are bytes too; their text is the bit string (b'101' is "101").
                crate::mapping::types::ColumnType::Bits { .. } => {
                    format!("BIN({})", q(&c.name))
                }
                // A spatial value by its SRID: what decides whether a bytes column takes it.
                crate::mapping::types::ColumnType::Geometry => {
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
