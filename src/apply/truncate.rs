//! A captured `TRUNCATE` at the target, by the table's `truncate` policy. Either way it leaves a
//! record in the target's conflict log (kind `truncate`, no key), so that no truncate is dropped
//! without a trace:
//!
//! ```text
//!  Op::Truncate ─ owner elsewhere? ──────────────> record: decision ignored, rule owner
//!               ─ truncate = "ignore" (default) ─> record: decision ignored, rule truncate   + warn
//!               ─ truncate = "propagate" ────────> empty the target table, in the open target
//!                                                  transaction (with its checkpoint write)
//!                                                  record: decision applied, rule truncate
//! ```
//!
//! The emptying is tandem's write like any other: on PostgreSQL a `TRUNCATE` inside the transaction
//! that writes the checkpoint row, under the replication origin; on MySQL/MariaDB a `DELETE FROM`
//! (a `TRUNCATE` there would commit the transaction on its own) under `skip_replication`. The target
//! node's reader drops it as an echo. It leaves no tombstones, as a truncate on the source leaves none.
//!
//! Error handling: a failing statement (a foreign key that refers to the table, a missing privilege)
//! is a definite error for the link's `on_error`, like a row that cannot be written.

use tracing::{info, warn};

use super::error::ApplyError;
use super::link::Link;
use super::target::Target;
use crate::config::TruncatePolicy;
use crate::conflict::audit::{ConflictRecord, ConflictState};
use crate::mapping::TablePlan;

impl<T: Target> Link<T> {
    /// Applies (or records without applying) a truncate of `plan`'s table.
    pub(super) async fn truncate(
        &mut self,
        plan: &TablePlan,
        position: Option<&str>,
    ) -> Result<(), ApplyError> {
        let info = self.t.table(&plan.target).await?;
        let link = self.ctx.link();
        let foreign_owner = plan.owner.as_deref().filter(|o| *o != self.ctx.source);
        let (decision, rule) = match (foreign_owner, plan.truncate) {
            (Some(owner), _) => {
                warn!(link = %link, table = %plan.business, owner = %owner, "truncate not applied: the table's owner is another node; recorded in the conflict log");
                ("ignored", "owner")
            }
            (None, TruncatePolicy::Ignore) => {
                warn!(link = %link, table = %plan.business, "truncate not applied (truncate = \"ignore\"); recorded in the conflict log; set truncate = \"propagate\" on the table to empty it here");
                ("ignored", "truncate")
            }
            (None, TruncatePolicy::Propagate) => {
                let removed = self.t.truncate(&info).await.map_err(|e| match e {
                    ApplyError::Row {
                        key,
                        column,
                        message,
                        code,
                        fix,
                        class,
                        ..
                    } => ApplyError::Row {
                        table: plan.business.clone(),
                        key,
                        column,
                        message: format!("emptying the table for a replicated truncate: {message}"),
                        code,
                        fix: format!(
                            "{fix}; or set truncate = \"ignore\" on the table and empty it by hand"
                        ),
                        class,
                    },
                    other => other,
                })?;
                info!(link = %link, table = %plan.business, target = %info.table, rows = ?removed, "table emptied by a replicated truncate");
                ("applied", "truncate")
            }
        };
        let record = ConflictRecord {
            link: link.clone(),
            source_node: self.ctx.source.clone(),
            table: plan.business.clone(),
            target_table: info.table.to_string(),
            // The whole table: stored as NULL.
            key: String::new(),
            kind: "truncate".into(),
            before: None,
            current: None,
            incoming: None,
            decision: decision.into(),
            rule: rule.into(),
            state: ConflictState::Resolved,
            source_position: position.map(str::to_string),
            payload: None,
        };
        self.t.insert_conflict(&record).await.map_err(|e| {
            if e.is_transient() {
                return e;
            }
            ApplyError::Invalid(format!(
                "recording the truncate of table {} in {}.conflict on node {} failed: {e}; fix: run \
                 `tandem setup` (bookkeeping version 6 lets a record have no key)",
                plan.business, self.ctx.schema, self.ctx.target
            ))
        })?;
        crate::observe::truncate(&self.ctx.source, &self.ctx.target, &plan.business, decision);
        Ok(())
    }
}
