//! Opt-in DDL propagation (`ddl = "propagate"` on a table): a column the source added is added on
//! the target, its type chosen from the source's catalog through the type rules `tandem schema` and
//! `tandem check` use; a column the source dropped is dropped on the target. Each is recorded in the
//! target's audit log (`kind = 'ddl'`).
//!
//! ```text
//!  gate (pause.rs): the change carries a column the target never had ─┐
//!                   a full after-image lacks a column earlier ones had ─┴> Due ─> ApplyError::SchemaDue
//!  driver: roll back ─> carry_out(): ALTER TABLE on a session of its own ─> audit ─> the group again
//! ```
//!
//! The DDL runs between target transactions, on a connection of its own: MySQL/MariaDB commits
//! any open transaction at a DDL statement, which must never cut an apply transaction in two. A
//! column is dropped only after this process saw it in the source's changes; one dropped while
//! tandem was not running stays on the target.
//!
//! Error handling: a column with no lossless type on the target, or an `ALTER TABLE` the target
//! refuses, is recorded as refused (audit and a warning naming the column, node and why); the
//! column then stays home like any column the target lacks. Transient errors propagate.

use std::collections::{BTreeSet, HashMap, HashSet};

use tracing::{info, warn};

use super::error::ApplyError;
use super::link::Link;
use super::target::{TableInfo, Target};
use crate::conflict::audit::{ConflictRecord, ConflictState};
use crate::mapping::Mapped;
use crate::model::{Change, ImageKind, TableRef};

/// Schema changes waiting for the driver to carry them out.
#[derive(Debug, Clone)]
pub(super) struct Due {
    business: String,
    source_table: TableRef,
    target_table: TableRef,
    add: BTreeSet<String>,
    drop: BTreeSet<String>,
    position: Option<String>,
}

/// A link's DDL propagation state.
#[derive(Debug, Default)]
pub(super) struct DdlState {
    due: Option<Due>,
    /// Target table -> the columns the source's full after-images carried.
    carried: HashMap<TableRef, BTreeSet<String>>,
    /// (target table, column) whose propagation was refused: not tried again by this process.
    refused: HashSet<(TableRef, String)>,
}

impl<T: Target> Link<T> {
    /// For a `propagate` table: the columns of `change` to add on the target (`home`: it lacks them)
    /// and those the source dropped; `true` when a DDL is due (the caller fails the group with
    /// [`ApplyError::SchemaDue`]).
    pub(super) fn ddl_due(
        &mut self,
        m: &Mapped,
        change: &Change,
        info: &TableInfo,
        home: &BTreeSet<String>,
        position: Option<&str>,
    ) -> bool {
        let target = &m.plan.target;
        let refused = &self.ddl.refused;
        let add: BTreeSet<String> = home
            .iter()
            .filter(|c| !refused.contains(&(target.clone(), (*c).clone())))
            .cloned()
            .collect();
        let mut drop = BTreeSet::new();
        if let Some(after) = change.after.as_ref().filter(|a| a.kind == ImageKind::Full) {
            let now: BTreeSet<String> = after.fields.iter().map(|f| f.name.to_string()).collect();
            let carried = self.ddl.carried.entry(target.clone()).or_default();
            drop = carried
                .iter()
                .filter(|c| !now.contains(*c) && info.column(c).is_some())
                .filter(|c| !refused.contains(&(target.clone(), (*c).clone())))
                .cloned()
                .collect();
            carried.retain(|c| now.contains(c));
            carried.extend(now);
        }
        if add.is_empty() && drop.is_empty() {
            return false;
        }
        self.ddl.due = Some(Due {
            business: m.plan.business.clone(),
            source_table: m.source.table.clone(),
            target_table: target.clone(),
            add,
            drop,
            position: position.map(str::to_string),
        });
        true
    }

    /// Carries out the due schema changes on the target, each on a session of its own, and records
    /// each (done or refused) in the audit log.
    pub(super) async fn carry_out_ddl(&mut self) -> Result<(), ApplyError> {
        let Some(due) = self.ddl.due.take() else {
            return Ok(());
        };
        let source_columns = if due.add.is_empty() {
            None
        } else {
            self.source_columns(&due).await?
        };
        let target_engine = self.ctx.target_node.engine;
        let table_sql = format!(
            "{}.{}",
            quote(target_engine, &due.target_table.schema),
            quote(target_engine, &due.target_table.name)
        );
        for column in &due.add {
            let ident = quote(target_engine, column);
            let source = source_columns
                .as_ref()
                .and_then(|s| s.column(column).cloned());
            let statement = match source {
                None => Err(format!(
                    "the source table {} has no column {column} any more",
                    due.source_table
                )),
                Some(c) => {
                    crate::schema::choose_type(&c, self.ctx.source_node.engine, target_engine)
                        .map_err(|candidates| {
                            format!(
                                "its type {} has no lossless counterpart on node {} (tried: {})",
                                c.declared,
                                self.ctx.target,
                                if candidates.is_empty() {
                                    "none".to_string()
                                } else {
                                    candidates.join(", ")
                                }
                            )
                        })
                        .and_then(|choice| match choice.fit {
                            crate::mapping::types::Fit::Exact
                            | crate::mapping::types::Fit::Conventional(_) => Ok(format!(
                                "ALTER TABLE {table_sql} ADD COLUMN {ident} {}",
                                choice.sql
                            )),
                            other => Err(format!(
                                "its type {} becomes {} on node {}, which does not keep every value ({other:?})",
                                c.declared, choice.sql, self.ctx.target
                            )),
                        })
                }
            };
            self.run_ddl(&due, column, "added", statement).await?;
        }
        for column in &due.drop {
            let statement = Ok(format!(
                "ALTER TABLE {table_sql} DROP COLUMN {}",
                quote(target_engine, column)
            ));
            self.run_ddl(&due, column, "dropped", statement).await?;
        }
        self.t.forget_table(Some(&due.target_table));
        Ok(())
    }

    /// The source table's columns, read on a session of its own.
    async fn source_columns(
        &self,
        due: &Due,
    ) -> Result<Option<crate::model::schema::TableSchema>, ApplyError> {
        let node = &self.ctx.source_node;
        let tables = crate::catalog::read_tables(node, std::slice::from_ref(&due.source_table))
            .await
            .map_err(|e| {
                ApplyError::SourceCatalog(format!(
                    "reading {} on node {} for a schema change: {e}",
                    due.source_table, node.id
                ))
            })?;
        Ok(tables.into_values().flatten().next())
    }

    /// Runs one schema change (or records why it cannot be), then its audit record.
    async fn run_ddl(
        &mut self,
        due: &Due,
        column: &str,
        done: &str,
        statement: Result<String, String>,
    ) -> Result<(), ApplyError> {
        let (link, node) = (self.ctx.link(), self.ctx.target.clone());
        let outcome = match statement {
            Ok(sql) => match crate::connect::execute(&self.ctx.target_node, &sql).await {
                Ok(()) => Ok(sql),
                Err(e) => Err((
                    sql,
                    format!(
                        "node {node} refused it: {}",
                        crate::config::scrub(&e, &self.ctx.target_node.url)
                    ),
                )),
            },
            Err(why) => Err((String::new(), why)),
        };
        let (decision, incoming) = match &outcome {
            Ok(sql) => {
                info!(link = %link, table = %due.business, column = %column, node = %node, statement = %sql, "schema change propagated");
                (
                    done.to_string(),
                    serde_json::json!({ "column": column, "statement": sql }),
                )
            }
            Err((sql, why)) => {
                warn!(link = %link, table = %due.business, column = %column, node = %node, reason = %why,
                    "schema change not propagated: the column stays on the source; change the target by hand or exclude the column in the file");
                self.ddl
                    .refused
                    .insert((due.target_table.clone(), column.to_string()));
                (
                    "refused".to_string(),
                    serde_json::json!({ "column": column, "statement": sql, "reason": why }),
                )
            }
        };
        let record = ConflictRecord {
            link: link.clone(),
            source_node: self.ctx.source.clone(),
            table: due.business.clone(),
            target_table: due.target_table.to_string(),
            key: String::new(),
            kind: "ddl".into(),
            before: None,
            current: None,
            incoming: Some(incoming),
            decision,
            rule: "ddl".into(),
            state: ConflictState::Resolved,
            source_position: due.position.clone(),
            payload: None,
        };
        self.in_transaction(async |l| l.record_conflict(&record).await)
            .await
    }
}

fn quote(engine: crate::config::Engine, name: &str) -> String {
    match engine {
        crate::config::Engine::Postgres => crate::connect::quote::postgres::ident(name),
        crate::config::Engine::Mysql => crate::connect::quote::mysql::ident(name),
    }
}
