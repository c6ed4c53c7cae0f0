//! The engine-neutral apply driver of one link: transactions in, target transactions with the
//! checkpoint out; version checks, conflicts, the review queue and dead letters.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use tracing::{debug, warn};

use super::error::ApplyError;
use super::row::{version_key, Names, RowChange};
use super::target::{ColKind, Current, Probe, TableInfo, Target, Write};
use crate::config::{ConflictRule, DeletePolicy, OnError};
use crate::conflict::audit::{ConflictRecord, ConflictState};
use crate::conflict::{resolve, ColumnState, Conflict, ConflictKind, Decision, Rules, Stamp};
use crate::mapping::{Mapper, TablePlan};
use crate::model::{Change, Field, Op, Position, Transaction, Value};

/// What a link knows about its pairing.
#[derive(Debug, Clone)]
pub struct LinkContext {
    pub source: String,
    pub target: String,
    pub names: Names,
    pub priorities: BTreeMap<String, i32>,
    pub on_error: OnError,
}

impl LinkContext {
    pub fn link(&self) -> String {
        format!("{}->{}", self.source, self.target)
    }

    pub fn priority(&self, node: &str) -> i32 {
        self.priorities.get(node).copied().unwrap_or(0)
    }
}

/// The source transaction a row change belongs to.
#[derive(Debug, Clone)]
pub(crate) struct TxMeta {
    pub origin: String,
    pub position: Option<String>,
    pub commit_time: i64,
}

pub(crate) struct Link<T: Target> {
    pub t: T,
    pub ctx: Arc<LinkContext>,
    pub mapper: Arc<Mapper>,
    pub committed: Option<Position>,
    open_keys: HashSet<(String, String)>,
    /// Set while releasing waiting changes: they pass the queue they were held in.
    pub skip_queue: bool,
    /// The table of the change being applied, for the on_error policy of a failure.
    last_plan: Option<TablePlan>,
}

impl<T: Target> Link<T> {
    pub async fn start(t: T, ctx: LinkContext, mapper: Mapper) -> Result<Self, ApplyError> {
        let mut link = Link {
            t,
            ctx: Arc::new(ctx),
            mapper: Arc::new(mapper),
            committed: None,
            open_keys: HashSet::new(),
            skip_queue: false,
            last_plan: None,
        };
        link.t.set_applying(true).await?;
        link.committed = match link.t.read_checkpoint(&link.ctx.source).await? {
            Some(text) => Some(text.parse().map_err(|_| ApplyError::Checkpoint {
                link: link.ctx.link(),
                text,
            })?),
            None => None,
        };
        link.open_keys = link.t.open_keys().await?.into_iter().collect();
        Ok(link)
    }

    fn is_applied(&self, p: &Position) -> bool {
        self.committed
            .as_ref()
            .is_some_and(|c| c.same_kind(p) && p <= c)
    }

    /// Applies `txs` in order as one target transaction (see [`super::Applier::apply`]).
    pub async fn apply(&mut self, txs: &[Transaction]) -> Result<Option<Position>, ApplyError> {
        let fresh: Vec<&Transaction> = txs
            .iter()
            .filter(|t| !self.is_applied(&t.position))
            .collect();
        if fresh.is_empty() {
            return Ok(self.committed.clone());
        }
        match self.apply_group(&fresh).await {
            Ok(()) => {}
            Err(e) if e.is_transient() => return Err(e),
            Err(e) if fresh.len() == 1 => self.dead_letter_or_halt(fresh[0], e).await?,
            Err(_) => {
                // Find the failing transaction: apply them one at a time.
                for tx in fresh {
                    match self.apply_group(&[tx]).await {
                        Ok(()) => {}
                        Err(e) if e.is_transient() => return Err(e),
                        Err(e) => self.dead_letter_or_halt(tx, e).await?,
                    }
                }
            }
        }
        Ok(self.committed.clone())
    }

    async fn apply_group(&mut self, txs: &[&Transaction]) -> Result<(), ApplyError> {
        let Some(last) = txs.last() else {
            return Ok(());
        };
        self.t.begin().await?;
        let body = async {
            for tx in txs {
                self.apply_body(tx).await?;
            }
            self.t
                .write_checkpoint(
                    &self.ctx.source,
                    &last.position.to_string(),
                    last.commit_time,
                )
                .await
        }
        .await;
        match body {
            Ok(()) => {
                self.t.commit().await?;
                self.committed = Some(last.position.clone());
                Ok(())
            }
            Err(e) => {
                if let Err(rb) = self.t.rollback().await {
                    debug!(error = %rb, "rollback after a failed apply failed");
                }
                Err(e)
            }
        }
    }

    async fn apply_body(&mut self, tx: &Transaction) -> Result<(), ApplyError> {
        let meta = TxMeta {
            origin: tx.origin.to_string(),
            position: Some(tx.position.to_string()),
            commit_time: tx.commit_time,
        };
        for change in tx.changes.iter() {
            let change = change.map_err(ApplyError::Spill)?;
            self.apply_change(&change, &meta).await?;
        }
        Ok(())
    }

    pub async fn apply_change(&mut self, src: &Change, meta: &TxMeta) -> Result<(), ApplyError> {
        let mapper = self.mapper.clone();
        let (Some(plan), Some(mapped)) = (mapper.plan_for_source(&src.table), mapper.map(src))
        else {
            return Ok(());
        };
        let mapped = mapped?;
        self.last_plan = Some(plan.clone());
        if mapped.op == Op::Truncate {
            warn!(link = %self.ctx.link(), table = %plan.business, "truncate is not replicated; truncate the target table yourself if intended");
            return Ok(());
        }
        let info = self.t.table(&plan.target).await?;
        let row = RowChange::new(
            plan,
            &info,
            &self.ctx.names,
            src,
            &mapped,
            &meta.origin,
            meta.commit_time,
        );
        self.apply_row(plan, &info, row, meta.position.as_deref())
            .await
            .map_err(|e| with_row_context(e, plan, &info))
    }

    /// Applies one prepared row change: owner rules, the review queue, the version check, and the
    /// conflict path.
    pub async fn apply_row(
        &mut self,
        plan: &TablePlan,
        info: &TableInfo,
        mut row: RowChange,
        position: Option<&str>,
    ) -> Result<(), ApplyError> {
        if plan.owner.as_deref().is_some_and(|o| o != self.ctx.source) {
            let cur = self.current(info, &row).await?;
            return self
                .audit(
                    plan,
                    info,
                    &row,
                    ConflictKind::NotOwner,
                    cur.as_ref(),
                    &Decision::KeepCurrent,
                    position,
                )
                .await;
        }
        if row.op == Op::Update {
            self.drop_owned_columns(plan, info, &mut row, position)
                .await?;
        }
        let queue_key = (info.table.to_string(), row.key_text());
        if !self.skip_queue && self.open_keys.contains(&queue_key) {
            match self.queue_check(&queue_key, &row, plan, position).await? {
                QueueState::Held => return Ok(()),
                QueueState::Released => return self.force(plan, info, &row).await,
                QueueState::Clear => {}
            }
        }
        let applied = match (row.op, &plan.deletes) {
            (Op::Insert, _) => self.t.insert(info, &row.full_write()).await?,
            (Op::Update, _) => {
                let n = self
                    .t
                    .update(
                        info,
                        &row.full_write(),
                        &row.version_column,
                        row.before_version.as_ref(),
                    )
                    .await?;
                n > 0
            }
            (Op::Delete, DeletePolicy::Ignore) => {
                debug!(link = %self.ctx.link(), table = %plan.business, "delete ignored by policy");
                true
            }
            (Op::Delete, DeletePolicy::Propagate) => {
                let n = self
                    .t
                    .delete(
                        info,
                        &row.key,
                        &row.version_column,
                        row.before_version.as_ref(),
                    )
                    .await?;
                n > 0
            }
            (Op::Delete, DeletePolicy::Soft(col)) => {
                let w = soft_write(info, &row, col);
                self.t
                    .update(info, &w, &row.version_column, row.before_version.as_ref())
                    .await?
                    > 0
            }
            (Op::Truncate, _) => true,
        };
        if applied {
            return Ok(());
        }
        self.conflict(plan, info, row, position).await
    }

    async fn current(
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

    async fn conflict(
        &mut self,
        plan: &TablePlan,
        info: &TableInfo,
        row: RowChange,
        position: Option<&str>,
    ) -> Result<(), ApplyError> {
        let cur = self.current(info, &row).await?;
        let kind = match (row.op, cur.is_some()) {
            (Op::Insert, _) => ConflictKind::InsertExists,
            (Op::Update, true) => ConflictKind::UpdateDiffers,
            (Op::Update, false) => ConflictKind::UpdateMissing,
            (_, true) => ConflictKind::DeleteDiffers,
            (_, false) => ConflictKind::DeleteMissing,
        };
        let conflict = self.describe(kind, &row, cur.as_ref());
        let rules = Rules::from_plan(plan, &self.ctx.target, self.ctx.priority(&self.ctx.target));
        let decision = resolve(&conflict, &rules);
        debug!(link = %self.ctx.link(), table = %plan.business, kind = kind.as_str(), decision = decision.as_str(), "conflict");
        self.carry_out(plan, info, &row, cur.is_some(), &decision)
            .await?;
        self.audit(plan, info, &row, kind, cur.as_ref(), &decision, position)
            .await
    }

    fn describe(&self, kind: ConflictKind, row: &RowChange, cur: Option<&Current>) -> Conflict {
        let incoming_version = match row.op {
            Op::Delete => Some(i128::from(row.commit_time)),
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
    async fn force(
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
                self.t.insert(info, &row.full_write()).await?;
            }
        }
        Ok(())
    }

    /// Columns owned by another node than the source are not changed; a change to one is recorded.
    async fn drop_owned_columns(
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
    async fn audit(
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
            payload: matches!(state, ConflictState::Parked).then(|| payload(row)),
        };
        self.t.insert_conflict(&record).await?;
        if state != ConflictState::Resolved {
            self.open_keys.insert((record.target_table, record.key));
        }
        Ok(())
    }

    async fn queue_check(
        &mut self,
        queue_key: &(String, String),
        row: &RowChange,
        plan: &TablePlan,
        position: Option<&str>,
    ) -> Result<QueueState, ApplyError> {
        let entries = self.t.open_entries(&queue_key.0, &queue_key.1).await?;
        if entries.is_empty() {
            self.open_keys.remove(queue_key);
            return Ok(QueueState::Clear);
        }
        if entries
            .iter()
            .any(|e| matches!(e.state, ConflictState::Parked | ConflictState::Waiting))
        {
            let record = ConflictRecord {
                link: self.ctx.link(),
                source_node: self.ctx.source.clone(),
                table: plan.business.clone(),
                target_table: queue_key.0.clone(),
                key: queue_key.1.clone(),
                kind: "queued".into(),
                before: row.before_json(),
                current: None,
                incoming: row.after_json(),
                decision: "wait".into(),
                rule: rule_name(plan.conflict).into(),
                state: ConflictState::Waiting,
                source_position: position.map(str::to_string),
                payload: Some(payload(row)),
            };
            self.t.insert_conflict(&record).await?;
            return Ok(QueueState::Held);
        }
        for e in entries
            .iter()
            .filter(|e| e.state == ConflictState::Deferred && e.source_node == self.ctx.source)
        {
            self.t
                .set_conflict_state(e.id, ConflictState::Resolved, Some("released_by_decider"))
                .await?;
            return Ok(QueueState::Released);
        }
        Ok(QueueState::Clear)
    }

    /// Applies a stored row change (a waiting one, released) as this link would, with its version
    /// check: it may conflict again.
    pub async fn apply_stored(
        &mut self,
        target_table: &str,
        payload: &str,
        position: Option<&str>,
    ) -> Result<(), ApplyError> {
        let row: RowChange = serde_json::from_str(payload)
            .map_err(|e| ApplyError::Invalid(format!("stored change cannot be read: {e}")))?;
        let mapper = self.mapper.clone();
        let Some(plan) = mapper
            .plans()
            .find(|p| p.target.to_string() == target_table)
        else {
            return Err(ApplyError::Invalid(format!(
                "table {target_table} is no longer mapped on link {}; fix: restore its mapping or resolve the entry by hand",
                self.ctx.link()
            )));
        };
        let info = self.t.table(&plan.target).await?;
        self.apply_row(plan, &info, row, position).await
    }

    /// Sends a transaction that failed with a definite error to the dead-letter table (and moves the
    /// checkpoint past it), or halts, per the failing table's `on_error`.
    async fn dead_letter_or_halt(
        &mut self,
        tx: &Transaction,
        error: ApplyError,
    ) -> Result<(), ApplyError> {
        let policy = self
            .last_plan
            .as_ref()
            .map_or(self.ctx.on_error, |p| p.on_error);
        if policy == OnError::Halt {
            return Err(error);
        }
        let changes = tx.changes.to_vec().map_err(ApplyError::Spill)?;
        let payload = serde_json::to_string(&changes)
            .map_err(|e| ApplyError::Invalid(format!("cannot serialise the transaction: {e}")))?;
        let position = tx.position.to_string();
        warn!(link = %self.ctx.link(), position = %position, error = %error, "transaction sent to the dead-letter table");
        let record = super::target::DeadLetter {
            id: 0,
            link: self.ctx.link(),
            source_node: self.ctx.source.clone(),
            source_position: position.clone(),
            commit_time: Some(tx.commit_time),
            payload,
            error: error.to_string(),
            attempts: 1,
            state: "open".into(),
        };
        self.t.begin().await?;
        let r = async {
            self.t.insert_dead_letter(&record).await?;
            self.t
                .write_checkpoint(&self.ctx.source, &position, tx.commit_time)
                .await
        }
        .await;
        match r {
            Ok(()) => {
                self.t.commit().await?;
                self.committed = Some(tx.position.clone());
                Ok(())
            }
            Err(e) => {
                let _ = self.t.rollback().await;
                Err(e)
            }
        }
    }
}

enum QueueState {
    /// Held behind a parked change.
    Held,
    /// A deferral was released: apply without a version check.
    Released,
    Clear,
}

fn payload(row: &RowChange) -> String {
    serde_json::to_string(row).unwrap_or_default()
}

pub(crate) fn rule_name(rule: ConflictRule) -> &'static str {
    match rule {
        ConflictRule::LastWriteWins => "last_write_wins",
        ConflictRule::Prefer => "prefer",
        ConflictRule::Merge => "merge",
        ConflictRule::Manual => "manual",
    }
}

/// The write that soft-deletes a row: the flag column set to true (or 1), a time column to the
/// delete's commit time.
fn soft_write(info: &TableInfo, row: &RowChange, column: &str) -> Write {
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

/// Adds the business table to a row error that lacks it.
fn with_row_context(e: ApplyError, plan: &TablePlan, _info: &TableInfo) -> ApplyError {
    match e {
        ApplyError::Row {
            table,
            key,
            column,
            message,
            code,
            fix,
            class,
        } if table.is_empty() => ApplyError::Row {
            table: plan.business.clone(),
            key,
            column,
            message,
            code,
            fix,
            class,
        },
        other => other,
    }
}
