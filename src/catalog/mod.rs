//! Reading the live schema of tables: columns, declared types, nullability, defaults and keys, as
//! one [`TableSchema`] (in `model::schema`).
//!
//! ```text
//!  postgres::read_table(&Client, table)   pg_attribute, pg_type, pg_index   ┐
//!  mysql::read_table(&mut Conn, table)    information_schema                ┴─> Option<TableSchema>
//!    used by: `tandem check` (read_tables, its own connection per node), the appliers (their apply
//!    session, once per table and link), the initial copy and verify (their snapshot sessions)
//!  read_generators(node, tables)          sequences / AUTO_INCREMENT + globals ─> TableGenerators
//!    used by: `check`, `setup` and `run` start, through `crate::keys`
//!  read_extras(node, tables)              defaults, comments, foreign keys, AUTO_INCREMENT ─> TableExtras
//!    used by: `tandem schema` (through `crate::schema`)
//! ```
//!
//! Each engine has exactly one such reader; the capture's binlog metadata fallback
//! (`capture::mysql::server::schema_info`) is separate, since it reads what a TABLE_MAP lacks.
//!
//! Error handling: a table that does not exist is not an error here (it is `None`, and `check`
//! reports it with the fix); failing to connect or to query is a [`CatalogError`].

pub mod mysql;
pub mod postgres;

use std::collections::BTreeMap;

use crate::config::{scrub, Engine, Node};
use crate::model::schema::{ColumnType, TableSchema};
use crate::model::TableRef;

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot connect to node {node}: {detail}")]
    Connect { node: String, detail: String },
    #[error("reading the catalog of node {node} failed: {detail}")]
    Query { node: String, detail: String },
}

/// `e` without the node URL's password: driver errors may quote the URL.
fn scrubbed(e: CatalogError, node: &Node) -> CatalogError {
    match e {
        CatalogError::Connect { node: n, detail } => CatalogError::Connect {
            node: n,
            detail: scrub(&detail, &node.url),
        },
        CatalogError::Query { node: n, detail } => CatalogError::Query {
            node: n,
            detail: scrub(&detail, &node.url),
        },
    }
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
    result.map_err(|e| scrubbed(e, node))
}

/// A key generator on one column of one node's table: where that node's own inserts take their
/// default keys from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generator {
    /// The physical column.
    pub column: String,
    pub kind: GeneratorKind,
    /// The largest value the column holds now; `None` for an empty table (or a non-integer column).
    pub max: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GeneratorKind {
    /// A PostgreSQL sequence (serial, identity or a `nextval` default): `name` as the server quotes
    /// it, and the value its next `nextval` returns.
    Sequence {
        name: String,
        increment: i64,
        next: i64,
    },
    /// MySQL/MariaDB AUTO_INCREMENT under the server's global `auto_increment_increment` and
    /// `auto_increment_offset` (what new sessions start with).
    AutoIncrement { increment: i64, offset: i64 },
}

impl GeneratorKind {
    /// The values it hands out as `(modulus, residue)`: every value is `residue` modulo `modulus`.
    pub fn progression(&self) -> (i64, i64) {
        match *self {
            GeneratorKind::Sequence {
                increment, next, ..
            } => {
                let m = increment.unsigned_abs().max(1) as i64;
                (m, next.rem_euclid(m))
            }
            GeneratorKind::AutoIncrement { increment, offset } => {
                let m = increment.max(1);
                // The server ignores an offset larger than the increment (and counts from 1).
                let offset = if offset > m { 1 } else { offset };
                (m, offset.rem_euclid(m))
            }
        }
    }
}

/// Physical table -> its generated columns (tables without any are absent).
pub type TableGenerators = BTreeMap<TableRef, Vec<Generator>>;

/// Reads the key generators of the given tables on `node`, with each column's largest value.
pub async fn read_generators(
    node: &Node,
    tables: &[TableRef],
) -> Result<TableGenerators, CatalogError> {
    let result = match node.engine {
        Engine::Postgres => postgres::read_generators(node, tables).await,
        Engine::Mysql => mysql::read_generators(node, tables).await,
    };
    result.map_err(|e| scrubbed(e, node))
}

/// What a table's DDL says beyond [`TableSchema`]: only `tandem schema` needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableExtras {
    pub comment: Option<String>,
    /// Column -> its default as the catalog prints it (PostgreSQL `pg_get_expr`, MariaDB
    /// `COLUMN_DEFAULT`: a string literal quoted, an expression as written).
    pub defaults: BTreeMap<String, String>,
    /// Column -> its comment (columns without one are absent).
    pub comments: BTreeMap<String, String>,
    pub foreign_keys: Vec<ForeignKey>,
    /// MySQL/MariaDB: the table's AUTO_INCREMENT counter (the value the next insert takes).
    pub auto_increment: Option<i64>,
}

/// A foreign key as declared; the actions in SQL words (`NO ACTION`, `CASCADE`, `SET NULL`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignKey {
    pub name: String,
    pub columns: Vec<String>,
    pub references: TableRef,
    pub ref_columns: Vec<String>,
    pub on_delete: String,
    pub on_update: String,
}

/// Reads the extras of the given tables on `node` (tables that do not exist are absent).
pub async fn read_extras(
    node: &Node,
    tables: &[TableRef],
) -> Result<BTreeMap<TableRef, TableExtras>, CatalogError> {
    let result = match node.engine {
        Engine::Postgres => postgres::read_extras(node, tables).await,
        Engine::Mysql => mysql::read_extras(node, tables).await,
    };
    result.map_err(|e| scrubbed(e, node))
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
    .map_err(|e| scrubbed(e, node))?;
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
                (Value::Int(srid), Some(ColumnType::Geometry)) => Value::Geometry {
                    srid: u32::try_from(srid).unwrap_or(u32::MAX),
                    wkb: Vec::new(),
                },
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
