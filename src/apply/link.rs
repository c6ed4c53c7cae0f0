//! The engine-neutral apply driver of one link: transactions in, target transactions with the
//! checkpoint out; the version-checked write of each row; dead letters. The conflict path is in
//! `conflicts.rs`, batched inserts, updates and deletes in `batch.rs`.
//!
//! ```text
//!  apply(txs) ─ skip duplicates (<= checkpoint) ─> BEGIN ─> apply_body(tx)… ─> checkpoint ─> COMMIT
//!                                                    └ change ─> map ─> RowChange ─> apply_row:
//!                                                        owner? queue? ─> conditional write ─> 0 rows? conflict
//! ```
//!
//! Error handling: a transient error rolls back and returns (the caller reconnects and redelivers);
//! a definite one rolls back, isolates the failing transaction by applying the group one at a time,
//! and dead-letters it (with a checkpoint past it) or halts, per the table's `on_error`.

use std::collections::BTreeMap;
use std::sync::Arc;

use tracing::{debug, warn};

use super::conflicts::{soft_write, QueueState};
use super::error::{ApplyError, UnknownErrors};
use super::row::{Names, RowChange};
use super::target::{TableInfo, Target, Tombstone};
use crate::config::{ConflictRule, DeletePolicy, OnError};
use crate::conflict::{ConflictKind, Decision};
use crate::mapping::{Mapper, TablePlan};
use crate::model::{Change, Op, Position, Transaction, Value};

/// What a link knows about its pairing.
#[derive(Debug, Clone)]
pub struct LinkContext {
    pub source: String,
    pub target: String,
    pub names: Names,
    pub priorities: BTreeMap<String, i32>,
    pub on_error: OnError,
    /// The bookkeeping schema (`[tandem] schema`).
    pub schema: String,
    /// `[tandem] tombstone_retention`; `None` keeps every tombstone.
    pub tombstone_retention: Option<std::time::Duration>,
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
    /// Set while releasing waiting changes: they pass the queue they were held in.
    pub skip_queue: bool,
    /// The table of the change being applied, for the on_error policy of a failure.
    pub(super) last_plan: Option<TablePlan>,
    /// The tombstones the source transaction being applied removed (keys it inserted again).
    pub(super) revived: Vec<Revived>,
    /// A committed merge waits to be announced (see `announce`).
    pub(super) announce_due: bool,
    /// When this link last pruned the target's expired tombstones.
    last_prune: Option<std::time::Instant>,
}

/// A tombstone a source transaction revived: its node inserted the key again, having seen that
/// node's deletes of the key up to that stamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Revived {
    /// The source's physical table, as the tombstone names it (`schema.table`).
    pub source_table: String,
    /// The key's values as text, sorted (column names differ between nodes).
    pub values: Vec<String>,
    pub stone: Tombstone,
}

impl Revived {
    /// Reads an updated row of the source's `tombstone` table (a local insert bumps `revived`).
    fn from_change(change: &Change, schema: &str) -> Option<Revived> {
        if change.op != Op::Update
            || &*change.table.schema != schema
            || &*change.table.name != "tombstone"
        {
            return None;
        }
        let image = change.after.as_ref()?;
        let text = |name: &str| match image.get(name) {
            Some(Value::Text(t)) => Some(t.clone()),
            Some(Value::Bytes(b)) => String::from_utf8(b.clone()).ok(),
            Some(Value::Int(i)) => Some(i.to_string()),
            _ => None,
        };
        Some(Revived {
            source_table: text("target_table")?,
            values: key_values(&text("row_key")?)?,
            stone: Tombstone {
                version: text("version")?.parse().ok()?,
                node: text("node").unwrap_or_default(),
            },
        })
    }
}

/// The values of a key text (`{"col":"value",…}`), sorted.
fn key_values(key: &str) -> Option<Vec<String>> {
    let serde_json::Value::Object(map) = serde_json::from_str(key).ok()? else {
        return None;
    };
    let mut values: Vec<String> = map
        .values()
        .map(|v| match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect();
    values.sort();
    Some(values)
}

impl<T: Target> Link<T> {
    pub async fn start(t: T, ctx: LinkContext, mapper: Mapper) -> Result<Self, ApplyError> {
        let mut link = Link {
            t,
            ctx: Arc::new(ctx),
            mapper: Arc::new(mapper),
            committed: None,
            skip_queue: false,
            last_plan: None,
            revived: Vec::new(),
            announce_due: true,
            last_prune: None,
        };
        link.t.set_applying(true).await?;
        link.check_bookkeeping().await?;
        link.committed = match link.t.read_checkpoint(&link.ctx.source).await? {
            Some(text) => Some(text.parse().map_err(|_| ApplyError::Checkpoint {
                link: link.ctx.link(),
                text,
            })?),
            None => None,
        };
        link.announce().await?;
        Ok(link)
    }

    /// Deletes the target's tombstones older than the retention, at most every tenth of it (and at
    /// most every ten minutes), after a commit. Each node prunes its own; an insert of a key whose
    /// tombstone is gone is weighed as if the key had not been deleted there.
    async fn prune_tombstones(&mut self) -> Result<(), ApplyError> {
        let Some(retention) = self.ctx.tombstone_retention else {
            return Ok(());
        };
        let every = (retention / 10).min(std::time::Duration::from_secs(600));
        if self.last_prune.is_some_and(|t| t.elapsed() < every) {
            return Ok(());
        }
        self.last_prune = Some(std::time::Instant::now());
        let pruned = self.t.prune_tombstones(retention.as_secs()).await?;
        if pruned > 0 {
            debug!(link = %self.ctx.link(), pruned, retention_s = retention.as_secs(), "expired tombstones pruned");
        }
        Ok(())
    }

    /// Refuses to apply into a bookkeeping schema older than this tandem's (an upgrade without
    /// `tandem setup`), naming the fix, instead of failing later on a missing column.
    async fn check_bookkeeping(&mut self) -> Result<(), ApplyError> {
        let installed = match self.t.schema_versions().await {
            Ok(v) => v,
            Err(e) if e.is_transient() => return Err(e),
            Err(e) => {
                return Err(ApplyError::Invalid(format!(
                    "node {}: tandem's bookkeeping schema cannot be read ({e}); fix: run `tandem setup --config FILE`",
                    self.ctx.target
                )))
            }
        };
        let missing: Vec<String> = super::setup::BOOKKEEPING_VERSIONS
            .iter()
            .filter(|v| !installed.contains(v))
            .map(ToString::to_string)
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        Err(ApplyError::Invalid(format!(
            "node {}: tandem's bookkeeping schema lacks version(s) {} (installed: {:?}); fix: run `tandem setup --config FILE`, which upgrades it in place",
            self.ctx.target,
            missing.join(", "),
            installed
        )))
    }

    fn is_applied(&self, p: &Position) -> bool {
        self.committed.as_ref().is_some_and(|c| p.is_within(c))
    }

    /// Applies `txs` in order as one target transaction (see [`super::Applier::apply`]).
    pub async fn apply(
        &mut self,
        txs: &[Transaction],
        unknown: UnknownErrors,
    ) -> Result<Option<Position>, ApplyError> {
        for t in txs.iter().filter(|t| self.is_applied(&t.position)) {
            debug!(link = %self.ctx.link(), position = %t.position, "duplicate skipped");
        }
        let fresh: Vec<&Transaction> = txs
            .iter()
            .filter(|t| !self.is_applied(&t.position))
            .collect();
        if fresh.is_empty() {
            return Ok(self.committed.clone());
        }
        match self.apply_group(&fresh).await {
            Ok(()) => {}
            Err(e) if unknown.retries(&e) => return Err(e),
            Err(e) if fresh.len() == 1 => {
                self.dead_letter_or_halt(fresh[0], unknown.refused(e))
                    .await?
            }
            Err(_) => {
                // Find the failing transaction: apply them one at a time.
                for tx in fresh {
                    match self.apply_group(&[tx]).await {
                        Ok(()) => {}
                        Err(e) if unknown.retries(&e) => return Err(e),
                        Err(e) => self.dead_letter_or_halt(tx, unknown.refused(e)).await?,
                    }
                }
            }
        }
        self.announce().await?;
        self.prune_tombstones().await?;
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
        self.revived = tx
            .changes
            .iter()
            .flatten()
            .filter_map(|c| Revived::from_change(&c, &self.ctx.schema))
            .collect();
        // Consecutive inserts, updates or deletes of one table are applied as a batch (`batch.rs`);
        // everything else row by row.
        let mut run: Vec<Change> = Vec::new();
        for change in tx.changes.iter() {
            let change = change.map_err(ApplyError::Spill)?;
            let batched = matches!(change.op, Op::Insert | Op::Update | Op::Delete);
            let joins = batched
                && run
                    .first()
                    .is_none_or(|first| first.table == change.table && first.op == change.op)
                && run.len() < super::batch::MAX_ROWS;
            if !joins {
                self.flush_run(&mut run, &meta).await?;
            }
            if batched {
                run.push(change);
            } else {
                self.apply_change(&change, &meta).await?;
            }
        }
        self.flush_run(&mut run, &meta).await
    }

    async fn flush_run(&mut self, run: &mut Vec<Change>, meta: &TxMeta) -> Result<(), ApplyError> {
        match (run.len(), run.first().map(|c| c.op)) {
            (0, _) => Ok(()),
            (1, _) => {
                let c = run.remove(0);
                self.apply_change(&c, meta).await
            }
            (_, Some(Op::Insert)) => {
                let changes = std::mem::take(run);
                self.apply_inserts(&changes, meta).await
            }
            _ => {
                let changes = std::mem::take(run);
                self.apply_checked(&changes, meta).await
            }
        }
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
            return self.truncate(plan, meta.position.as_deref()).await;
        }
        let info = self.t.table(&plan.target).await?;
        if plan.managed_version && info.column(&plan.version).is_none() {
            return Err(ApplyError::Invalid(format!(
                "table {} on node {} has no version column {}; fix: run `tandem setup` (manage_columns) or name the table's own version column with version = \"…\"",
                info.table, self.ctx.target, plan.version
            )));
        }
        let row = RowChange::new(
            plan,
            &info,
            &self.ctx.names,
            src,
            &mapped,
            &meta.origin,
            meta.commit_time,
        )?;
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
        if !self.skip_queue {
            match self.queue_check(&queue_key, &row, plan, position).await? {
                QueueState::Held => return Ok(()),
                // The decider took this node's own row (`resolve --take incoming`): it is here
                // already, or a later write of this node that waited behind it there.
                QueueState::Released if row.origin == self.ctx.target => return Ok(()),
                QueueState::Released => return self.force(plan, info, &row).await,
                QueueState::Clear => {}
            }
        }
        let applied = match (row.op, &plan.deletes) {
            (Op::Insert, _) => self.insert_unless_deleted(plan, info, &row).await?,
            (Op::Update, _) => {
                let n = self
                    .t
                    .update(
                        info,
                        &row.changed_write(),
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
                if n > 0 {
                    self.leave_tombstone(info, &row).await?;
                }
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
        debug!(link = %self.ctx.link(), table = %plan.business, key = %row.key_text(), op = row.op.as_str(), before_version = ?row.before_version, after_version = ?row.after_version, applied, "row");
        if applied {
            return Ok(());
        }
        self.conflict(plan, info, row, position).await
    }

    /// Inserts the incoming row unless a delete its node had not seen makes it a conflict (then
    /// `false`, nothing changed). The tombstones are read after the insert, in its transaction:
    /// under READ COMMITTED that read sees every local delete that committed before the insert
    /// (one still open made the insert wait for it), and a later delete must wait for the inserted
    /// row. Read before the insert, a delete committing in between went unseen.
    async fn insert_unless_deleted(
        &mut self,
        plan: &TablePlan,
        info: &TableInfo,
        row: &RowChange,
    ) -> Result<bool, ApplyError> {
        if !self.t.insert(info, &row.full_write()).await? {
            return Ok(false);
        }
        if !self.concurrent_delete(plan, info, row).await? {
            return Ok(true);
        }
        // Take the insert back (the applier's session fires no tandem trigger, so no tombstone).
        self.t
            .delete(info, &row.key, &row.version_column, None)
            .await?;
        Ok(false)
    }

    /// Whether the incoming insert's key was deleted here by a delete its node had not seen: then
    /// the insert takes the conflict path (`insert_deleted`, or `insert_exists` when the key lives
    /// here again), where the table's rule weighs it against the delete. The inserting node had
    /// seen every delete this node knows of when its transaction revived, for each node whose
    /// deletes of the key this node holds, a tombstone at least as late.
    async fn concurrent_delete(
        &mut self,
        plan: &TablePlan,
        info: &TableInfo,
        row: &RowChange,
    ) -> Result<bool, ApplyError> {
        if !row.managed_version {
            return Ok(false);
        }
        let stones = self
            .t
            .tombstones(&info.table.to_string(), &row.key_text())
            .await?;
        if stones.iter().any(|s| s.node.is_empty()) {
            // Written before bookkeeping version 5: only the stamps can be compared.
            let latest = stones.iter().map(|s| s.version).max();
            let incoming = row.after_version.as_ref().and_then(super::row::version_key);
            return Ok(latest > incoming);
        }
        let values = key_values(&row.key_text()).unwrap_or_default();
        let mapper = self.mapper.clone();
        let seen: Vec<&Tombstone> = self
            .revived
            .iter()
            .filter(|r| {
                r.values == values
                    && r.source_table
                        .split_once('.')
                        .map(|(s, n)| crate::model::TableRef::new(s, n))
                        .is_some_and(|t| {
                            mapper
                                .plan_for_source(&t)
                                .is_some_and(|p| p.target == plan.target)
                        })
            })
            .map(|r| &r.stone)
            .collect();
        Ok(!stones.iter().all(|mine| {
            seen.iter()
                .any(|s| s.node == mine.node && s.version >= mine.version)
        }))
    }

    /// Records an applied delete in this node's tombstone for the deleting node, stamped as that
    /// node stamped it, so that a later insert of the key can be placed (see `concurrent_delete`).
    pub(super) async fn leave_tombstone(
        &mut self,
        info: &TableInfo,
        row: &RowChange,
    ) -> Result<(), ApplyError> {
        let Some(stone) = row.tombstone() else {
            return Ok(());
        };
        self.t
            .put_tombstone(&info.table.to_string(), &row.key_text(), &stone)
            .await
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
        warn!(link = %self.ctx.link(), position = %position, code = %error.code(), table = self.last_plan.as_ref().map_or("", |p| p.business.as_str()), "transaction sent to the dead-letter table; its error column says why");
        let record = super::target::DeadLetter {
            id: 0,
            link: self.ctx.link(),
            source_node: self.ctx.source.clone(),
            source_position: position.clone(),
            commit_time: Some(tx.commit_time),
            payload,
            error: super::error::dead_letter_error(&error, &self.ctx.target),
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
                crate::observe::dead_letter(
                    &self.ctx.source,
                    &self.ctx.target,
                    self.last_plan.as_ref().map_or("", |p| p.business.as_str()),
                );
                Ok(())
            }
            Err(e) => {
                let _ = self.t.rollback().await;
                Err(e)
            }
        }
    }
}

pub(crate) fn rule_name(rule: ConflictRule) -> &'static str {
    match rule {
        ConflictRule::LastWriteWins => "last_write_wins",
        ConflictRule::Prefer => "prefer",
        ConflictRule::Merge => "merge",
        ConflictRule::Manual => "manual",
    }
}

/// Adds the business table to a row error that lacks it.
pub(super) fn with_row_context(e: ApplyError, plan: &TablePlan, _info: &TableInfo) -> ApplyError {
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
