//! The review queue as the applier meets it: a key with an open entry holds later changes of it
//! (they wait, in order, as `waiting` entries), a decider's release lets them through, and merged rows
//! are announced back as local writes. Resolution itself (`tandem conflicts resolve`) is in
//! `admin.rs`; the statements are in `book.rs` ([`super::book::ReviewQueue`]).
//!
//! ```text
//!  row change ─> queue_check(key): parked/waiting entry ─> record `waiting`, hold (Held)
//!                                  deferred by this link's source ─> resolve it, apply unchecked (Released)
//!                                  none ─> Clear
//!  resolved key ─> apply_stored(waiting change, Queue::Pass) … until one parks again
//!  commit that merged ─> announce(): rewrite merged rows as local writes, entries resolved
//! ```
//!
//! Error handling: database errors propagate to the caller, which rolls the target transaction back.

use super::conflicts::payload;
use super::error::ApplyError;
use super::link::{rule_name, Link, Queue};
use super::row::RowChange;
use super::target::{Target, Write};
use crate::conflict::audit::{ConflictRecord, ConflictState, StoredConflict};
use crate::mapping::TablePlan;

/// What the queue says about a row change.
pub(super) enum QueueState {
    /// Held behind a parked change.
    Held,
    /// A deferral was released: apply without a version check.
    Released,
    Clear,
}

impl<T: Target> Link<T> {
    /// Whether the review queue holds the row change (its key has an open entry), releases it (a
    /// deferral by this link's source was decided), or lets it pass.
    pub(super) async fn queue_check(
        &mut self,
        queue_key: &(String, String),
        row: &RowChange,
        plan: &TablePlan,
        position: Option<&str>,
    ) -> Result<QueueState, ApplyError> {
        let entries = self.t.open_entries(&queue_key.0, &queue_key.1).await?;
        if entries.is_empty() {
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
            self.record_conflict(&record).await?;
            return Ok(QueueState::Held);
        }
        if let Some(e) = entries
            .iter()
            .find(|e| e.state == ConflictState::Deferred && e.source_node == self.ctx.source)
        {
            self.t
                .set_conflict_state(e.id, ConflictState::Resolved, Some("released_by_decider"))
                .await?;
            return Ok(QueueState::Released);
        }
        Ok(QueueState::Clear)
    }

    /// Rewrites, as local writes that replicate, the rows this node merged as the pair's decider
    /// (audit state `announcing`), then marks those entries resolved, in one transaction. Runs after
    /// each commit that merged, and on start (a crash between the merge's commit and its
    /// announcement loses nothing: the entry is still `announcing`).
    pub(super) async fn announce(&mut self) -> Result<(), ApplyError> {
        if !self.announce_due {
            return Ok(());
        }
        let link = self.ctx.link();
        let due: Vec<_> = self
            .t
            .list_conflicts(true, 10_000)
            .await?
            .into_iter()
            .filter(|e| e.record.state == ConflictState::Announcing && e.record.link == link)
            .collect();
        self.announce_due = false;
        if due.is_empty() {
            return Ok(());
        }
        self.t.set_applying(false).await?;
        let done = self
            .in_transaction(async |l| {
                for entry in &due {
                    l.announce_one(entry).await?;
                }
                Ok::<_, ApplyError>(())
            })
            .await;
        if done.is_err() {
            self.announce_due = true;
        }
        self.t.set_applying(true).await?;
        done
    }

    /// Announces one merged row (see [`Link::announce`]), inside the open transaction.
    async fn announce_one(&mut self, entry: &StoredConflict) -> Result<(), ApplyError> {
        let row: Option<RowChange> = entry
            .record
            .payload
            .as_deref()
            .and_then(|p| serde_json::from_str(p).ok());
        let mapper = self.mapper.clone();
        let plan = mapper
            .plans()
            .find(|p| p.target.to_string() == entry.record.target_table);
        if let (Some(row), Some(plan)) = (row, plan) {
            let info = self.t.table(&plan.target).await?;
            // Rewriting the key as it is fires the local-write trigger: new version, this node as
            // origin.
            let touch = Write {
                key: row.key.clone(),
                set: row.key.clone(),
            };
            self.t
                .update(&info, &touch, &row.version_column, None)
                .await?;
        }
        self.t
            .set_conflict_state(entry.id, ConflictState::Resolved, Some("announced"))
            .await
    }

    /// Applies a stored row change (a waiting one, released) as this link would, with its version
    /// check: it may conflict again. It passes the queue it waited in.
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
        self.apply_row(plan, &info, row, position, Queue::Pass)
            .await
    }
}
