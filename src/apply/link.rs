//! The engine-neutral apply driver of one link: transactions in, target transactions with the
//! checkpoint out; the version-checked write of each row. Around it: batched inserts, updates and
//! deletes in `batch.rs`; the conflict path in `conflicts.rs`; the review queue in `queue.rs`;
//! tombstones in `tombstone.rs`; dead letters in `dead_letter.rs`; the bookkeeping statements in
//! `book.rs` over `dialect.rs`.
//!
//! ```text
//!  apply(txs) ─ skip duplicates (<= checkpoint) ─> BEGIN ─> apply_body(tx)… ─> checkpoint ─> COMMIT
//!                                                    └ Mapper::map_tx(tx) ─> Mapped { plan, source, target }
//!                                                        ─> runs (batch.rs) or apply_mapped ─> RowChange ─> apply_row:
//!                                                        owner? queue? ─> conditional write ─> 0 rows? conflict
//! ```
//!
//! Error handling: a transient error rolls back and returns (the caller reconnects and redelivers);
//! a definite one rolls back, isolates the failing transaction by applying the group one at a time,
//! and dead-letters it (with a checkpoint past it) or halts, per the failing table's `on_error`
//! (carried by the [`Failure`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use tracing::debug;

use super::batch::Run;
use super::conflicts::soft_write;
use super::ddl::DdlState;
use super::error::{ApplyError, UnknownErrors};
use super::pause::{Gate, Pauses};
use super::queue::QueueState;
use super::row::{Names, RowChange};
use super::target::{TableInfo, Target};
use super::tombstone::Revived;
use crate::config::{ConflictRule, DeletePolicy, OnError};
use crate::conflict::{ConflictKind, Decision};
use crate::mapping::{Mapped, Mapper, TablePlan};
use crate::model::{Change, Op, Position, Transaction};

/// Rounds an operator's action is tried again for revive triggers made meanwhile (one per table).
const REVIVE_ROUNDS: usize = 8;

/// What a link knows about its pairing.
#[derive(Debug, Clone)]
pub struct LinkContext {
    pub source: String,
    pub target: String,
    /// The nodes themselves (a schema change propagated reads the source's catalog and alters the
    /// target on sessions of its own).
    pub source_node: crate::config::Node,
    pub target_node: crate::config::Node,
    pub names: Names,
    pub priorities: BTreeMap<String, i32>,
    pub on_error: OnError,
    /// The bookkeeping schema (`[tandem] schema`).
    pub schema: String,
    /// `[tandem] tombstone_retention`; `None` keeps every tombstone.
    pub tombstone_retention: Option<std::time::Duration>,
    /// `[tandem] manage_columns`: whether tandem keeps the tables' triggers (the applier makes a
    /// table's revive trigger only then, see `Target::check_revive`).
    pub manage_columns: bool,
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

/// A change waiting in a run of its group, with the source transaction it belongs to.
#[derive(Debug, Clone)]
pub(crate) struct Staged {
    pub change: Mapped,
    pub meta: Arc<TxMeta>,
}

impl Staged {
    /// The operation on the target; `None` when the change could not be mapped.
    pub fn op(&self) -> Option<Op> {
        self.change.target.as_ref().ok().map(|c| c.op)
    }
}

/// Whether a row change meets the review queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Queue {
    /// A change from the stream: a key under review holds it.
    Check,
    /// A change released from the queue it waited in: it passes.
    Pass,
}

/// A failed apply, with the business table whose change failed where it was a change (its
/// `on_error` decides between a dead letter and a halt).
#[derive(Debug)]
pub(super) struct Failure {
    pub error: ApplyError,
    pub table: Option<FailedTable>,
}

#[derive(Debug, Clone)]
pub(super) struct FailedTable {
    pub business: String,
    pub on_error: OnError,
}

impl FailedTable {
    pub fn of(plan: &TablePlan) -> Self {
        FailedTable {
            business: plan.business.clone(),
            on_error: plan.on_error,
        }
    }
}

impl From<ApplyError> for Failure {
    fn from(error: ApplyError) -> Self {
        Failure { error, table: None }
    }
}

pub(crate) struct Link<T: Target> {
    pub t: T,
    pub ctx: Arc<LinkContext>,
    pub mapper: Arc<Mapper>,
    pub committed: Option<Position>,
    /// The tombstones the source transaction being applied removed (keys it inserted again).
    pub(super) revived: Vec<Revived>,
    /// Whether the source's transactions are being applied in their commit order (the stream, not a
    /// dead-letter replay or a decision from the review queue): a delete of the source node this
    /// node holds a tombstone of then came before the insert being applied (see `Link::unseen`).
    pub(super) in_stream: bool,
    /// The dead letter being replayed (see `Link::unseen`).
    pub(super) replaying: Option<i64>,
    /// A committed merge waits to be announced (see `announce`).
    pub(super) announce_due: bool,
    /// When this link last pruned the target's expired tombstones.
    pub(super) last_prune: Option<std::time::Instant>,
    /// Tables paused by a schema change of the target, and columns that stay home (`pause.rs`).
    pub(super) pauses: Pauses,
    /// Schema changes to propagate (`ddl.rs`).
    pub(super) ddl: DdlState,
}

impl<T: Target> Link<T> {
    pub async fn start(t: T, ctx: LinkContext, mapper: Mapper) -> Result<Self, ApplyError> {
        let mut link = Link {
            t,
            ctx: Arc::new(ctx),
            mapper: Arc::new(mapper),
            committed: None,
            revived: Vec::new(),
            in_stream: false,
            replaying: None,
            announce_due: true,
            last_prune: None,
            pauses: Pauses::default(),
            ddl: DdlState::default(),
        };
        link.t.set_applying(true).await?;
        link.check_bookkeeping().await?;
        link.load_pauses().await?;
        link.load_columns().await?;
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
            Err(f) if unknown.retries(&f.error) => return Err(f.error),
            Err(f) if fresh.len() == 1 => {
                self.dead_letter_or_halt(fresh[0], refused(unknown, f))
                    .await?
            }
            Err(_) => {
                // Find the failing transaction: apply them one at a time.
                for tx in fresh {
                    match self.apply_group(&[tx]).await {
                        Ok(()) => {}
                        Err(f) if unknown.retries(&f.error) => return Err(f.error),
                        Err(f) => self.dead_letter_or_halt(tx, refused(unknown, f)).await?,
                    }
                }
            }
        }
        self.announce().await?;
        self.prune_tombstones().await?;
        Ok(self.committed.clone())
    }

    /// Applies `txs` as one target transaction. A statement refused for a missing table or column
    /// means the cached columns are stale: the group is tried once more on the live catalog, where
    /// the schema gate (`pause.rs`) sees what changed. A definite error of a table whose column
    /// changed type pauses that table, and the group is tried once more too. A schema change due
    /// under `ddl = "propagate"` (`ddl.rs`) is carried out between two tries. A race with a local
    /// write (`ApplyError::Raced`) is tried again once at once.
    async fn apply_group(&mut self, txs: &[&Transaction]) -> Result<(), Failure> {
        let (mut drifted, mut retyped, mut raced, mut revived) = (false, false, false, 0);
        // Each round settles one schema matter; a group touches few tables, so few rounds.
        for _ in 0..8 {
            match self.try_group(txs).await {
                // A batch of inserts found a key taken, or a local write raced a conflict's
                // decision: once at once (the target now inserts that table the checked way),
                // then with the run loop's backoff.
                Err(f) if matches!(f.error, ApplyError::Raced(_)) && !raced => {
                    debug!(link = %self.ctx.link(), error = %f.error, "applying the group again");
                    raced = true;
                }
                Err(f) if matches!(f.error, ApplyError::SchemaDue(_)) => {
                    self.carry_out_ddl().await?;
                }
                // The rollback made a table's revive trigger: again at once, one round per table
                // (when it could not, the run loop's backoff).
                Err(f) if self.revive_again(&f.error, &mut revived) => {}
                Err(f) if f.error.is_schema_drift() && !drifted => {
                    drifted = true;
                    self.t.forget_table(None);
                }
                Err(f) if !f.error.is_transient() && !retyped => {
                    retyped = match &f.table {
                        Some(t) => self.paused_by_retype(&t.business, &f.error).await,
                        None => false,
                    };
                    if !retyped {
                        return Err(f);
                    }
                }
                r => return r,
            }
        }
        self.try_group(txs).await
    }

    async fn try_group(&mut self, txs: &[&Transaction]) -> Result<(), Failure> {
        let Some(last) = txs.last() else {
            return Ok(());
        };
        let position = last.position.to_string();
        self.pauses.new_transaction();
        self.t.begin().await?;
        self.in_stream = true;
        let body = self.group_body(txs, &position, last.commit_time).await;
        self.in_stream = false;
        if let Err(e) = body {
            // The ROLLBACK ends what the failure left: an aborted or live transaction after a
            // failed change (or a `Raced`, a schema matter, a spill read), nothing after a failed
            // checkpoint write or commit, which the server ended already.
            if let Err(rb) = self.t.rollback().await {
                debug!(link = %self.ctx.link(), error = %rb, "rollback after a failure failed");
            }
            return Err(e);
        }
        self.committed = Some(last.position.clone());
        Ok(())
    }

    /// The group's changes, then its checkpoint and the commit, sent together
    /// (`Checkpoints::commit_with_checkpoint`).
    async fn group_body(
        &mut self,
        txs: &[&Transaction],
        position: &str,
        commit_time: i64,
    ) -> Result<(), Failure> {
        let mut run = Run::new(self.t.batch_bytes());
        for tx in txs {
            self.apply_body(tx, &mut run).await?;
        }
        self.flush_run(&mut run).await?;
        let source = self.ctx.source.clone();
        self.t
            .commit_with_checkpoint(&source, position, commit_time)
            .await
            .map_err(Failure::from)
    }

    /// Runs `body` in one target transaction: commits when it succeeds; rolls back and returns its
    /// error when it fails (a failed rollback is logged: the session is reset on reconnect).
    pub(super) async fn in_transaction<R, E: From<ApplyError>>(
        &mut self,
        body: impl AsyncFnOnce(&mut Self) -> Result<R, E>,
    ) -> Result<R, E> {
        self.t.begin().await?;
        match body(self).await {
            Ok(r) => {
                self.t.commit().await?;
                Ok(r)
            }
            Err(e) => {
                if let Err(rb) = self.t.rollback().await {
                    debug!(link = %self.ctx.link(), error = %rb, "rollback after a failure failed");
                }
                Err(e)
            }
        }
    }

    /// Whether a transaction that failed with `e` is run again at once: it stopped for a table's
    /// missing revive trigger, and either the rollback made it or this is the first round (a
    /// refusal to make it then comes back as the definite error that names the grant, see
    /// `apply/revive.rs`). One round per table the transaction reaches without one, at most
    /// [`REVIVE_ROUNDS`]: a group, a replay, a resolution and the changes released behind it go
    /// through in one call.
    pub(super) fn revive_again(&mut self, e: &ApplyError, rounds: &mut usize) -> bool {
        let again = matches!(e, ApplyError::ReviveDue(_))
            && *rounds < REVIVE_ROUNDS
            && (self.t.revive_made() || *rounds == 0);
        if again {
            *rounds += 1;
            debug!(link = %self.ctx.link(), error = %e, "trying again for a revive trigger");
        }
        again
    }

    /// Adds the changes of `tx` to the group's runs. Consecutive inserts, updates or deletes of one
    /// table are applied as a batch (`batch.rs`), across the transactions of the group (they
    /// commit together); everything else row by row, in order. A transaction that brings keys back
    /// (its `revived` tombstones) keeps its runs to itself: the insert checks read that list.
    async fn apply_body(&mut self, tx: &Transaction, run: &mut Run) -> Result<(), Failure> {
        let meta = Arc::new(TxMeta {
            origin: tx.origin.to_string(),
            position: Some(tx.position.to_string()),
            commit_time: tx.commit_time,
        });
        let revived = Revived::of_transaction(tx, &self.ctx.schema);
        if !revived.is_empty() || !self.revived.is_empty() {
            self.flush_run(run).await?;
            self.revived = revived;
        }
        let mapper = self.mapper.clone();
        for mapped in mapper.map_tx(tx) {
            let mapped = mapped.map_err(ApplyError::Spill)?;
            let gate = self
                .gate(&mapped, meta.position.as_deref())
                .await
                .map_err(|error| Failure {
                    error,
                    table: Some(FailedTable::of(&mapped.plan)),
                })?;
            if let Gate::Hold(reason) = gate {
                self.hold(&mapped, &meta, &reason).await?;
                continue;
            }
            let op = mapped.target.as_ref().ok().map(|c| c.op);
            let batched = matches!(op, Some(Op::Insert | Op::Update | Op::Delete));
            let bytes = if batched {
                mapped.source.approx_bytes()
            } else {
                0
            };
            if !(batched && run.takes(&mapped.plan, op, bytes)) {
                self.flush_run(run).await?;
            }
            if batched {
                let staged = Staged {
                    change: mapped,
                    meta: meta.clone(),
                };
                run.push(staged, bytes);
            } else if let Err(error) = self.apply_mapped(&mapped, &meta).await {
                let table = Some(FailedTable::of(&mapped.plan));
                return Err(Failure { error, table });
            }
        }
        if !self.revived.is_empty() {
            self.flush_run(run).await?;
        }
        Ok(())
    }

    async fn flush_run(&mut self, run: &mut Run) -> Result<(), Failure> {
        if run.is_empty() {
            return Ok(());
        }
        let mut changes = run.take();
        let table = changes.first().map(|s| FailedTable::of(&s.change.plan));
        let r = match (changes.len(), changes.first().and_then(Staged::op)) {
            (1, _) => {
                let c = changes.remove(0);
                self.apply_mapped(&c.change, &c.meta).await
            }
            (_, Some(Op::Insert)) => self.apply_inserts(&changes).await,
            _ => self.apply_checked(&changes).await,
        };
        r.map_err(|error| Failure { error, table })
    }

    /// Maps and applies one source change (a dead letter's, a released queue entry's).
    pub async fn apply_change(&mut self, src: &Change, meta: &TxMeta) -> Result<(), ApplyError> {
        match self.mapper.map_change(src.clone()) {
            Some(mapped) => self.apply_mapped(&mapped, meta).await,
            None => Ok(()),
        }
    }

    /// Applies one mapped change row by row.
    pub async fn apply_mapped(&mut self, m: &Mapped, meta: &TxMeta) -> Result<(), ApplyError> {
        let (plan, src) = (&*m.plan, &m.source);
        let mapped = m.target.as_ref().map_err(Clone::clone)?;
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
            mapped,
            &meta.origin,
            meta.commit_time,
        )?;
        self.apply_row(plan, &info, row, meta.position.as_deref(), Queue::Check)
            .await
            .map_err(|e| with_row_context(e, plan, &info))
    }

    /// Applies one prepared row change: owner rules, the review queue (unless `queue` lets it
    /// pass), the version check, and the conflict path.
    pub async fn apply_row(
        &mut self,
        plan: &TablePlan,
        info: &TableInfo,
        mut row: RowChange,
        position: Option<&str>,
        queue: Queue,
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
        if queue == Queue::Check {
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
}

/// The failure's error as it is reported once refused (see [`UnknownErrors::refused`]).
fn refused(unknown: UnknownErrors, f: Failure) -> Failure {
    Failure {
        error: unknown.refused(f.error),
        table: f.table,
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
