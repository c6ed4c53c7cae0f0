//! Reading the live schema of mapped tables: columns, declared types, nullability, defaults and keys.
//!
//! `tandem check` holds the file against these, and the appliers use them to know the target's column
//! types. The neutral description lives here; each engine's catalog queries live in its own file.
//!
//! Error handling: a table that does not exist is not an error here (it is `None`, and `check`
//! reports it with the fix); failing to connect or to query is a [`CatalogError`].

mod mysql;
mod postgres;

use std::collections::BTreeMap;

use crate::config::{scrub, Engine, Node};
use crate::mapping::types::ColumnType;
use crate::model::TableRef;

/// One column as the database declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnSchema {
    pub name: String,
    /// The type as the catalog prints it (`character varying(20)`, `int(10) unsigned`).
    pub declared: String,
    pub ty: ColumnType,
    pub nullable: bool,
    /// Has a default, is an identity / auto-increment column, or is generated.
    pub has_default: bool,
    /// A MySQL/MariaDB character column's character set (`utf8mb3`, `latin1`, …); `None` elsewhere.
    pub charset: Option<String>,
}

/// One table as the database declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSchema {
    pub table: TableRef,
    /// In the table's column order.
    pub columns: Vec<ColumnSchema>,
    pub primary_key: Vec<String>,
    /// Unique keys other than the primary key.
    pub unique_keys: Vec<Vec<String>>,
}

impl TableSchema {
    pub fn column(&self, name: &str) -> Option<&ColumnSchema> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Whether `key` (in any order) is the primary key or a unique key whose columns are all NOT NULL.
    pub fn is_unique_key(&self, key: &[String]) -> bool {
        let same = |k: &Vec<String>| k.len() == key.len() && key.iter().all(|c| k.contains(c));
        same(&self.primary_key)
            || self.unique_keys.iter().any(|k| {
                same(k)
                    && k.iter()
                        .all(|c| self.column(c).is_some_and(|c| !c.nullable))
            })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot connect to node {node}: {detail}")]
    Connect { node: String, detail: String },
    #[error("reading the catalog of node {node} failed: {detail}")]
    Query { node: String, detail: String },
}

/// Reads the given tables on `node`. A missing table maps to `None`.
pub async fn read_tables(
    node: &Node,
    tables: &[TableRef],
) -> Result<BTreeMap<TableRef, Option<TableSchema>>, CatalogError> {
    let result = match node.engine {
        Engine::Postgres => postgres::read_tables(node, tables).await,
        Engine::Mysql => mysql::read_tables(node, tables).await,
    };
    // Driver errors may quote the URL; never let its password through.
    result.map_err(|e| match e {
        CatalogError::Connect { node: n, detail } => CatalogError::Connect {
            node: n,
            detail: scrub(&detail, &node.url),
        },
        CatalogError::Query { node: n, detail } => CatalogError::Query {
            node: n,
            detail: scrub(&detail, &node.url),
        },
    })
}

/// Reads up to `limit` rows of `table` on `node` as row images (values in a neutral form: text,
/// integers, decimals, booleans, JSON; good enough to test lengths, NULLs and value maps).
pub async fn sample_rows(
    node: &Node,
    schema: &TableSchema,
    limit: u32,
) -> Result<Vec<crate::model::RowImage>, CatalogError> {
    let rows = match node.engine {
        Engine::Postgres => postgres::sample_json(node, &schema.table, limit).await,
        Engine::Mysql => mysql::sample_json(node, schema, limit).await,
    }
    .map_err(|e| match e {
        CatalogError::Query { node: n, detail } => CatalogError::Query {
            node: n,
            detail: scrub(&detail, &node.url),
        },
        other => other,
    })?;
    Ok(rows
        .iter()
        .filter_map(|text| json_row(text, schema))
        .collect())
}

fn json_row(text: &str, schema: &TableSchema) -> Option<crate::model::RowImage> {
    use crate::model::{Field, ImageKind, RowImage, Value};
    let serde_json::Value::Object(map) = serde_json::from_str::<serde_json::Value>(text).ok()?
    else {
        return None;
    };
    let fields = map
        .into_iter()
        .map(|(name, v)| {
            let value = match v {
                serde_json::Value::Null => Value::Null,
                serde_json::Value::Bool(b) => Value::Bool(b),
                serde_json::Value::String(s) => Value::Text(s),
                serde_json::Value::Number(n) => match n.as_i64() {
                    Some(i) => Value::Int(i),
                    None => n
                        .to_string()
                        .parse()
                        .map_or(Value::Text(n.to_string()), Value::Decimal),
                },
                other => Value::Json(other.to_string()),
            };
            // A spatial column is sampled as its SRID only (see `mysql::sample_json`).
            let value = match (value, schema.column(&name).map(|c| &c.ty)) {
                (Value::Int(srid), Some(crate::mapping::types::ColumnType::Geometry)) => {
                    Value::Geometry {
                        srid: u32::try_from(srid).unwrap_or(u32::MAX),
                        wkb: Vec::new(),
                    }
                }
                (value, _) => value,
            };
            Field {
                name: name.as_str().into(),
                value,
            }
        })
        .collect();
    Some(RowImage::new(ImageKind::Full, fields))
}
