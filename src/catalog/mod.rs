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
