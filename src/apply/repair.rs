//! `tandem verify --repair` as a link meets it: a row of the link's source node (in the source's
//! physical form, as verify read it) is written on the target node as a *local* write, so that the
//! target's triggers stamp it and it replicates to every other node; or the key is deleted there; or,
//! on a `manual` table, the difference becomes a review-queue entry. Each leaves an audit record in the
//! target's conflict table (`kind` `verify_missing` or `verify_differs`).
//!
//! ```text
//!  source row (insert image) ─ map (the link's mapping) ─ RowChange ─┬ write: update by key, else insert; local
//!                                                                    ├ delete: by key; local (the trigger leaves
//!                                                                    │         the tombstone)
//!                                                                    ├ park:  parked entry, the change as payload
//!                                                                    └ defer: deferred entry (the decider's next
//!                                                                             change of the key passes unchecked)
//! ```
//!
//! Why a local write: the repaired node's new row replicates back to the node whose row won; it
//! holds the same values there, so every rule adopts it as it is (only the version and origin move),
//! and the nodes end equal with one version.
//!
//! Error handling: database errors propagate; the write and its audit record share one transaction.

use super::error::ApplyError;
use super::link::{rule_name, Link};
use super::row::RowChange;
use super::target::{TableInfo, Target};
use crate::conflict::audit::{ConflictRecord, ConflictState};
use crate::mapping::TablePlan;
use crate::model::Change;

/// What a repair does on the link's target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepairAct {
    /// Write the source's row (an insert image) over the target's, or insert it.
    Write,
    /// Delete the key (the change is a delete whose before-image is the row in the source's form).
    Delete,
    /// Park the change for a person (this node decides the pair under `manual`).
    Park,
    /// Record that the source node decides: its next change of the key passes unchecked.
    Defer,
}

impl RepairAct {
    fn decision(self) -> &'static str {
        match self {
            RepairAct::Write => "repair_write",
            RepairAct::Delete => "repair_delete",
            RepairAct::Park => "park",
            RepairAct::Defer => "defer",
        }
    }

    fn state(self) -> ConflictState {
        match self {
            RepairAct::Write | RepairAct::Delete => ConflictState::Resolved,
            RepairAct::Park => ConflictState::Parked,
            RepairAct::Defer => ConflictState::Deferred,
        }
    }
}

impl<T: Target> Link<T> {
    /// The source change as this link would write it; `None` when the table is not synced on this
    /// link or the row filter keeps the row home.
    async fn prepared(
        &mut self,
        src: &Change,
    ) -> Result<Option<(TablePlan, std::sync::Arc<TableInfo>, RowChange)>, ApplyError> {
        let Some(m) = self.mapper.map_change(src.clone()) else {
            return Ok(None);
        };
        let (plan, mapped) = (&*m.plan, m.target.as_ref().map_err(Clone::clone)?);
        let info = self.t.table(&plan.target).await?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as i64);
        let row = RowChange::new(
            plan,
            &info,
            &self.ctx.names,
            src,
            mapped,
            &self.ctx.source,
            now,
        )?;
        Ok(Some((plan.clone(), info, row)))
    }

    /// The stamp of the latest delete of the source row's key this link's target remembers (its
    /// tombstones), if the table has tandem's version.
    pub(super) async fn repair_deleted_at(
        &mut self,
        src: &Change,
    ) -> Result<Option<i128>, ApplyError> {
        let Some((plan, info, row)) = self.prepared(src).await? else {
            return Ok(None);
        };
        if !plan.managed_version {
            return Ok(None);
        }
        let stones = self
            .t
            .tombstones(&info.table.to_string(), &row.key_text(), None)
            .await?;
        Ok(stones.iter().map(|t| t.version).max())
    }

    /// Carries out one repair act for `src` on the target (see the module doc), with its audit
    /// record, in one transaction. `false` when the link does not carry the row (not synced, or
    /// filtered).
    pub(super) async fn repair(
        &mut self,
        src: &Change,
        act: RepairAct,
        kind: &str,
    ) -> Result<bool, ApplyError> {
        let local = matches!(act, RepairAct::Write | RepairAct::Delete);
        if local {
            self.t.set_applying(false).await?;
        }
        let done = self
            .in_transaction(async |l| {
                let Some((plan, info, row)) = l.prepared(src).await? else {
                    return Ok::<_, ApplyError>(false);
                };
                let current = match act {
                    RepairAct::Write => {
                        let w = row.full_write();
                        if l.t.update(&info, &w, &row.version_column, None).await? == 0 {
                            l.t.insert(&info, &w).await?;
                        }
                        None
                    }
                    RepairAct::Delete => {
                        l.t.delete(&info, &row.key, &row.version_column, None)
                            .await?;
                        None
                    }
                    RepairAct::Park | RepairAct::Defer => {
                        l.current(&info, &row).await?.map(|c| c.image)
                    }
                };
                let record = ConflictRecord {
                    link: l.ctx.link(),
                    source_node: l.ctx.source.clone(),
                    table: plan.business.clone(),
                    target_table: info.table.to_string(),
                    key: row.key_text(),
                    kind: kind.to_string(),
                    before: None,
                    current,
                    incoming: row.after_json(),
                    decision: act.decision().to_string(),
                    rule: rule_name(plan.conflict).to_string(),
                    state: act.state(),
                    source_position: None,
                    payload: (act == RepairAct::Park).then(|| super::conflicts::payload(&row)),
                };
                l.record_conflict(&record).await?;
                Ok(true)
            })
            .await;
        if local {
            self.t.set_applying(true).await?;
        }
        done
    }
}
