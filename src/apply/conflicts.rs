//! The conflict path of a link: reading the locked current row, deciding with `conflict::resolve`,
//! carrying the decision out, the audit record, and owner rules. The review queue is in `queue.rs`.
//!
//! ```text
//!  version check failed ─> current() (locked) ─> describe() ─> resolve() ─> carry_out() ─> audit()
//! ```
//!
//! Error handling: database errors propagate to the link, which rolls the target transaction back;
//! nothing here is retried on its own.

use super::error::ApplyError;
use super::link::{rule_name, Link};
use super::row::{version_key, RowChange};
use super::target::{ColKind, Current, Probe, TableInfo, Target, Write};
use crate::config::DeletePolicy;
use crate::conflict::audit::{ConflictRecord, ConflictState};
use crate::conflict::{resolve, ColumnState, Conflict, ConflictKind, Decision, Rules, Stamp};
use crate::mapping::TablePlan;
use crate::model::{Field, Op, Value};
use tracing::debug;

impl<T: Target> Link<T> {
    pub(super) async fn current(
        &mut self,
        info: &TableInfo,
        row: &RowChange,
    ) -> Result<Option<Current>, ApplyError> {
        let compared = row.compared();
        let probe = Probe {
            key: row.key.clone(),
            before: compared
                .iter()
                .filter_map(|c| row.before.iter().find(|b| b.name == c.name).cloned())
                .collect(),
            after: compared,
            version: row.version_column.clone(),
            origin: row.origin_column.clone(),
        };
        self.t.current(info, &probe).await
    }

    pub(super) async fn conflict(
        &mut self,
        plan: &TablePlan,
        info: &TableInfo,
        mut row: RowChange,
        position: Option<&str>,
    ) -> Result<(), ApplyError> {
        let mut cur = self.current(info, &row).await?;
        if row.op == Op::Update && cur.is_some() && merges(plan) {
            if let Some(base) = self.chained_base(info, &row).await? {
                row.before = base;
                cur = self.current(info, &row).await?;
            }
        }
        let kind = match (row.op, cur.is_some()) {
            (Op::Insert, false) => ConflictKind::InsertDeleted,
            (Op::Insert, true) => ConflictKind::InsertExists,
            (Op::Update, true) => ConflictKind::UpdateDiffers,
            (Op::Update, false) => ConflictKind::UpdateMissing,
            (_, true) => ConflictKind::DeleteDiffers,
            (_, false) => ConflictKind::DeleteMissing,
        };
        let mut conflict = self.describe(kind, &row, cur.as_ref());
        if kind.current_missing() && row.managed_version {
            let stones = self
                .t
                .tombstones(&info.table.to_string(), &row.key_text(), self.replaying)
                .await?;
            conflict.deleted_at = stones.iter().map(|t| t.version).max();
            // Who deleted: for an insert, among the deletes it was concurrent with (a delete its
            // node had seen, even a later-stamped one of its own, is behind it: `prefer` weighs
            // the insert against the other node's delete, as that node weighs the delete against
            // the insert). The latest one; ties: the greater node id, as every node would pick.
            let concurrent = if kind == ConflictKind::InsertDeleted {
                self.unseen(plan, &row, stones.clone())
            } else {
                Vec::new()
            };
            let weighed = if concurrent.is_empty() {
                &stones
            } else {
                &concurrent
            };
            if let Some(latest) = weighed
                .iter()
                .filter(|t| !t.node.is_empty())
                .max_by(|a, b| (a.version, &a.node).cmp(&(b.version, &b.node)))
            {
                conflict.deleted_by = Some(latest.node.clone());
            }
        }
        let rules = Rules::from_plan(plan, &self.ctx.target, self.ctx.priority(&self.ctx.target));
        let decision = resolve(&conflict, &rules);
        debug!(link = %self.ctx.link(), table = %plan.business, key = %row.key_text(), kind = kind.as_str(), decision = decision.as_str(), "conflict");
        self.carry_out(plan, info, &row, cur.is_some(), &decision)
            .await?;
        if kind == ConflictKind::DeleteMissing && plan.deletes == DeletePolicy::Propagate {
            // This node has now seen that delete too (see `Link::deleted_here`).
            self.leave_tombstone(info, &row).await?;
        }
        self.audit(plan, info, &row, kind, cur.as_ref(), &decision, position)
            .await
    }

    fn describe(&self, kind: ConflictKind, row: &RowChange, cur: Option<&Current>) -> Conflict {
        let incoming_version = match row.op {
            // A delete comes right after the write it saw (see conflict's module doc); with an
            // application version there is no such stamp and the update wins.
            Op::Delete if row.managed_version => row
                .before_version
                .as_ref()
                .and_then(version_key)
                .map(|v| v + 1),
            Op::Delete => None,
            _ => row.after_version.as_ref().and_then(version_key),
        };
        let incoming = Stamp {
            version: incoming_version,
            node: row.origin.clone(),
            priority: self.ctx.priority(&row.origin),
        };
        let current = cur.map(|c| {
            let node = c.origin.clone().unwrap_or_else(|| self.ctx.target.clone());
            Stamp {
                version: c.version_key,
                priority: self.ctx.priority(&node),
                node,
            }
        });
        let compared = row.compared();
        let columns = match (row.op, cur) {
            (Op::Delete, _) => Vec::new(),
            (_, None) => compared
                .iter()
                .map(|f| ColumnState {
                    name: f.name.to_string(),
                    changed_incoming: true,
                    changed_current: true,
                    differs: true,
                })
                .collect(),
            (_, Some(c)) => {
                let befores: Vec<&Field> = compared
                    .iter()
                    .filter_map(|f| row.before.iter().find(|b| b.name == f.name))
                    .collect();
                compared
                    .iter()
                    .enumerate()
                    .map(|(i, f)| {
                        let base = befores.iter().position(|b| b.name == f.name);
                        ColumnState {
                            name: f.name.to_string(),
                            changed_incoming: base.is_none_or(|b| befores[b].value != f.value),
                            changed_current: base
                                .is_none_or(|b| !c.same_as_before.get(b).copied().unwrap_or(false)),
                            differs: !c.same_as_after.get(i).copied().unwrap_or(false),
                        }
                    })
                    .collect()
            }
        };
        Conflict {
            kind,
            incoming,
            current,
            columns,
            incoming_complete: !row.partial,
            deleted_at: None,
            deleted_by: None,
        }
    }

    async fn carry_out(
        &mut self,
        plan: &TablePlan,
        info: &TableInfo,
        row: &RowChange,
        exists: bool,
        decision: &Decision,
    ) -> Result<(), ApplyError> {
        match decision {
            Decision::ApplyIncoming => self.force_with(plan, info, row, exists).await,
            Decision::KeepCurrent | Decision::Park | Decision::Defer { .. } => Ok(()),
            Decision::Merge {
                take_incoming,
                version_from_incoming,
                origin,
                ..
            } => {
                let mut set: Vec<Field> = row
                    .after
                    .iter()
                    .filter(|f| take_incoming.iter().any(|t| *t == *f.name))
                    .cloned()
                    .collect();
                if *version_from_incoming {
                    let version = if row.managed_version {
                        row.after_version.clone()
                    } else {
                        row.after
                            .iter()
                            .find(|f| *f.name == *row.version_column)
                            .map(|f| f.value.clone())
                    };
                    if let Some(v) = version {
                        set.retain(|f| *f.name != *row.version_column);
                        set.push(Field {
                            name: row.version_column.as_str().into(),
                            value: v,
                        });
                    }
                }
                if let Some(col) = &row.origin_column {
                    set.push(Field {
                        name: col.as_str().into(),
                        value: Value::Text(origin.clone()),
                    });
                }
                if !set.is_empty() {
                    let w = Write {
                        key: row.key.clone(),
                        set,
                    };
                    self.t.update(info, &w, &row.version_column, None).await?;
                }
                Ok(())
            }
        }
    }

    /// Applies the incoming change without a version check.
    pub async fn force(
        &mut self,
        plan: &TablePlan,
        info: &TableInfo,
        row: &RowChange,
    ) -> Result<(), ApplyError> {
        let exists = self.current(info, row).await?.is_some();
        self.force_with(plan, info, row, exists).await
    }

    async fn force_with(
        &mut self,
        plan: &TablePlan,
        info: &TableInfo,
        row: &RowChange,
        exists: bool,
    ) -> Result<(), ApplyError> {
        match (row.op, &plan.deletes) {
            (Op::Delete, DeletePolicy::Propagate) => {
                self.t
                    .delete(info, &row.key, &row.version_column, None)
                    .await?;
                self.leave_tombstone(info, row).await?;
            }
            (Op::Delete, DeletePolicy::Soft(col)) => {
                self.t
                    .update(info, &soft_write(info, row, col), &row.version_column, None)
                    .await?;
            }
            (Op::Delete | Op::Truncate, _) => {}
            (_, _) if exists => {
                self.t
                    .update(info, &row.full_write(), &row.version_column, None)
                    .await?;
            }
            (_, _) => {
                if !self.t.insert(info, &row.full_write()).await? {
                    // A local insert of the key committed after the decision was taken on its
                    // absence: retried, the transaction meets the row and decides again.
                    return Err(ApplyError::Raced(format!(
                        "a local insert into {} committed while a conflict on the same key was decided",
                        info.table
                    )));
                }
            }
        }
        Ok(())
    }

    /// Columns owned by another node than the source are not changed; a change to one is recorded.
    pub(super) async fn drop_owned_columns(
        &mut self,
        plan: &TablePlan,
        info: &TableInfo,
        row: &mut RowChange,
        position: Option<&str>,
    ) -> Result<(), ApplyError> {
        let source = self.ctx.source.clone();
        let owned = |name: &str| {
            plan.columns
                .get(name)
                .and_then(|c| c.owner.as_deref())
                .is_some_and(|o| o != source)
        };
        let changed: Vec<String> = row
            .after
            .iter()
            .filter(|f| owned(&f.name))
            .filter(|f| {
                row.before
                    .iter()
                    .find(|b| b.name == f.name)
                    .is_none_or(|b| b.value != f.value)
            })
            .map(|f| f.name.to_string())
            .collect();
        row.after.retain(|f| !owned(&f.name));
        if !changed.is_empty() {
            let cur = self.current(info, row).await?;
            let decision = Decision::Merge {
                take_incoming: Vec::new(),
                version_from_incoming: true,
                origin: row.origin.clone(),
                announce: false,
            };
            self.audit(
                plan,
                info,
                row,
                ConflictKind::NotOwner,
                cur.as_ref(),
                &decision,
                position,
            )
            .await?;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn audit(
        &mut self,
        plan: &TablePlan,
        info: &TableInfo,
        row: &RowChange,
        kind: ConflictKind,
        cur: Option<&Current>,
        decision: &Decision,
        position: Option<&str>,
    ) -> Result<(), ApplyError> {
        let state = match decision {
            Decision::Park => ConflictState::Parked,
            Decision::Defer { .. } => ConflictState::Deferred,
            Decision::Merge { announce: true, .. } => ConflictState::Announcing,
            Decision::KeepCurrent
                if kind == ConflictKind::DeleteDiffers
                    && self.holds_unseen_merge(info, row, cur).await? =>
            {
                ConflictState::Announcing
            }
            _ => ConflictState::Resolved,
        };
        let rule = if kind == ConflictKind::NotOwner {
            "owner"
        } else {
            rule_name(plan.conflict)
        };
        let record = ConflictRecord {
            link: self.ctx.link(),
            source_node: self.ctx.source.clone(),
            table: plan.business.clone(),
            target_table: info.table.to_string(),
            key: row.key_text(),
            kind: kind.as_str().to_string(),
            before: row.before_json(),
            current: cur.map(|c| c.image.clone()),
            incoming: row.after_json(),
            decision: decision.as_str().to_string(),
            rule: rule.to_string(),
            state,
            source_position: position.map(str::to_string),
            // A merge keeps its change (with the base it was merged from) for the next change of
            // the same run from that node (see `chained_base`).
            payload: (matches!(state, ConflictState::Parked | ConflictState::Announcing)
                || (matches!(decision, Decision::Merge { .. })
                    && kind == ConflictKind::UpdateDiffers))
                .then(|| payload(row)),
        };
        if state == ConflictState::Announcing {
            self.announce_due = true;
        }
        self.record_conflict(&record).await
    }

    /// Writes a conflict record (in the open transaction) and counts it in the metrics.
    pub(super) async fn record_conflict(
        &mut self,
        record: &ConflictRecord,
    ) -> Result<(), ApplyError> {
        self.t.insert_conflict(record).await?;
        crate::observe::conflict(
            &self.ctx.source,
            &self.ctx.target,
            &record.table,
            &record.key,
            &record.kind,
            &record.decision,
        );
        Ok(())
    }
}

impl<T: Target> Link<T> {
    /// The base to merge an update from when it continues a run of the source's changes whose
    /// previous one was merged here: that merge's own base (the last state both nodes held), not
    /// this update's before-image, which is a state only the source held. Without it, a run of
    /// updates of a column changed on both sides looks one-sided from its second update on as soon
    /// as the two sides' values coincide (`n` 8 -> 9 on each node, then 9 -> 10 on one), and the
    /// merges of the two nodes differ.
    async fn chained_base(
        &mut self,
        info: &TableInfo,
        row: &RowChange,
    ) -> Result<Option<Vec<Field>>, ApplyError> {
        if row.before.is_empty() {
            return Ok(None);
        }
        let Some((kind, Some(text))) = self
            .t
            .last_conflict_change(&info.table.to_string(), &row.key_text(), &self.ctx.source)
            .await?
        else {
            return Ok(None);
        };
        if kind != ConflictKind::UpdateDiffers.as_str() {
            return Ok(None);
        }
        let Ok(prev) = serde_json::from_str::<RowChange>(&text) else {
            return Ok(None);
        };
        if prev.before.is_empty() {
            return Ok(None);
        }
        let value = |fields: &[Field], name: &str| {
            fields
                .iter()
                .find(|f| *f.name == *name)
                .map(|f| f.value.clone())
        };
        let continues = row
            .compared()
            .iter()
            .all(|f| value(&prev.after, &f.name) == value(&row.before, &f.name));
        Ok(continues.then_some(prev.before))
    }

    /// A row kept over the other node's delete may hold columns this node merged from the updates
    /// that delete ended, which the deleting node never merges (it takes this row whole, over its
    /// own older delete), so it must be announced: when a merge of a change from that node since
    /// the row was last written (the row before it had the version the row has now) changed the
    /// row's values.
    async fn holds_unseen_merge(
        &mut self,
        info: &TableInfo,
        row: &RowChange,
        cur: Option<&Current>,
    ) -> Result<bool, ApplyError> {
        let Some(serde_json::Value::Object(now)) = cur.map(|c| &c.image) else {
            return Ok(false);
        };
        let bases = self
            .t
            .recent_merge_bases(&info.table.to_string(), &row.key_text(), &self.ctx.source)
            .await?;
        let version = row.version_column.as_str();
        let origin = row.origin_column.as_deref();
        Ok(bases.iter().any(|text| {
            let Ok(serde_json::Value::Object(before)) = serde_json::from_str(text) else {
                return false;
            };
            let unwritten =
                before.get(version).is_some() && before.get(version) == now.get(version);
            unwritten
                && now.iter().any(|(k, v)| {
                    k != version && Some(k.as_str()) != origin && before.get(k) != Some(v)
                })
        }))
    }
}

/// Whether rows of the table can be merged column by column (the `merge` rule, or a column with a
/// rule of its own).
fn merges(plan: &TablePlan) -> bool {
    plan.conflict == crate::config::ConflictRule::Merge
        || plan
            .columns
            .values()
            .any(|c| c.conflict.is_some() || c.prefer.is_some())
}

pub(super) fn payload(row: &RowChange) -> String {
    serde_json::to_string(row).unwrap_or_default()
}

/// The write that soft-deletes a row: the flag column set to true (or 1), a time column to the
/// delete's commit time.
pub(super) fn soft_write(info: &TableInfo, row: &RowChange, column: &str) -> Write {
    let value = match info.column(column).map(|c| c.kind) {
        Some(ColKind::Bool) => Value::Bool(true),
        Some(ColKind::Int) => Value::Int(1),
        Some(ColKind::Timestamp) => Value::Timestamp(row.commit_time),
        _ => Value::TimestampTz(row.commit_time),
    };
    Write {
        key: row.key.clone(),
        set: vec![Field {
            name: column.into(),
            value,
        }],
    }
}
