//! The I/O of `tandem schema`: reading the source node's catalog, and applying the statements on
//! the target (`--apply`).
//!
//! Error handling: every failure is a message naming the node and what to do; the URL's password is
//! scrubbed from driver errors. `--apply` first reads which of the tables exist on the target and
//! refuses when any does, before running anything: PostgreSQL then runs every statement in one
//! transaction; MariaDB/MySQL commit each DDL statement on its own, so a statement failing half-way
//! leaves the tables created before it (the message names them).

use std::collections::BTreeMap;

use super::Source;
use crate::catalog;
use crate::config::{scrub, Config, Engine, Node};
use crate::connect::execute;
use crate::model::TableRef;

/// Node `from`'s catalog for the physical tables of the mapped tables (or only `only`, a business table).
pub async fn read_sources(
    config: &Config,
    from: &Node,
    only: Option<&str>,
) -> Result<BTreeMap<TableRef, Source>, String> {
    let tables: Vec<TableRef> = config
        .tables
        .iter()
        .filter(|t| only.is_none_or(|o| o == t.name))
        .filter_map(|t| t.physical.get(&from.id).cloned())
        .collect();
    let schemas = catalog::read_tables(from, &tables)
        .await
        .map_err(|e| e.to_string())?;
    let mut extras = catalog::read_extras(from, &tables)
        .await
        .map_err(|e| e.to_string())?;
    let mut generators = catalog::read_generators(from, &tables)
        .await
        .map_err(|e| e.to_string())?;
    Ok(schemas
        .into_iter()
        .filter_map(|(table, schema)| {
            let source = Source {
                schema: schema?,
                extras: extras.remove(&table).unwrap_or_default(),
                generators: generators.remove(&table).unwrap_or_default(),
            };
            Some((table, source))
        })
        .collect())
}

/// Which of `tables` exist on `node`.
pub async fn existing(node: &Node, tables: &[TableRef]) -> Result<Vec<TableRef>, String> {
    let found = catalog::read_tables(node, tables)
        .await
        .map_err(|e| e.to_string())?;
    Ok(found
        .into_iter()
        .filter_map(|(t, s)| s.map(|_| t))
        .collect())
}

/// Runs `statements` on `node`: in one transaction on PostgreSQL, one by one on MySQL/MariaDB.
pub async fn apply(node: &Node, statements: &[String]) -> Result<(), String> {
    let failed = |e: String| format!("node {}: {}", node.id, scrub(&e, &node.url));
    match node.engine {
        Engine::Postgres => {
            let script = format!("BEGIN;\n{};\nCOMMIT", statements.join(";\n"));
            execute(node, &script).await.map_err(|e| {
                failed(format!(
                    "creating the tables failed, and nothing was created: {e}"
                ))
            })
        }
        Engine::Mysql => {
            for (done, sql) in statements.iter().enumerate() {
                execute(node, sql).await.map_err(|e| {
                    failed(format!(
                        "statement {} of {} failed: {e}; MariaDB/MySQL commit each DDL statement on its own, so the {done} statement(s) before it took effect: drop what they created, fix the cause and run schema again\n{sql}",
                        done + 1,
                        statements.len()
                    ))
                })?;
            }
            Ok(())
        }
    }
}
