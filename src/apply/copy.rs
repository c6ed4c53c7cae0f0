//! The target side of the initial copy: a batch of source rows becomes one target transaction that
//! writes the rows like streamed inserts, records the copy's progress, and carries the link's
//! checkpoint (the stream start), so it is marked as tandem's like every applied transaction.
//!
//! ```text
//!  copy_batch(rows) ─> BEGIN ─> map ─> existing keys? ── no ──> batched insert (batch.rs)
//!                                             └ yes ─> equal? skip (align a managed version)
//!                                                      differs? conflict rules + audit (conflicts.rs)
//!                      progress + checkpoint(stream start) ─> COMMIT
//!  rows the target kept (its row won) ─> BEGIN as a local write: touch ─> progress ─> COMMIT
//! ```
//!
//! Why the touch: a row that differs and whose target version wins (or is merged) was never sent
//! from the target, so the source would keep its own. Rewriting it as a local write (stamped by the
//! triggers, not marked as tandem's) lets the reverse link carry it to the source, exactly as a
//! `keep_current` resolution does. The progress is written in that second transaction, so a crash
//! between the two copies the batch again rather than forget the touch.
//!
//! Error handling: as in `link.rs`: a failing transaction is rolled back and the error returned;
//! nothing transient is retried here. A batch the target refuses with a definite error is copied
//! again row by row: under the table's `on_error = "dead_letter"` (the default) each refused row
//! goes to the dead-letter table (position `copy:<stream start>`, replayable like any dead letter)
//! and the copy goes on; under `"halt"` the first refused row halts the copy, its error naming the
//! table, the row's key and the fix (the rows before it in the batch are written).

use super::batch::Run;
use super::error::ApplyError;
use super::link::{Link, Staged, TxMeta};
use super::row::{version_key, RowChange};
use super::target::{Target, Write};
use crate::config::OnError;
use crate::model::{Change, Field, Op, Position, RowImage, TableRef};

/// One table's copy progress on the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyProgress {
    /// Business table name.
    pub table: String,
    /// The last key copied, in the source reader's own form (JSON); `None`: nothing yet.
    pub last_key: Option<String>,
    pub rows: i64,
    pub done: bool,
    /// Where the link's stream starts (the first snapshot's position).
    pub stream_start: String,
}

/// A batch of source rows of one table, in key order, and the progress after it.
#[derive(Debug, Clone)]
pub struct CopyBatch {
    /// The physical source table the rows come from.
    pub source_table: TableRef,
    pub rows: Vec<RowImage>,
    /// Progress to record with the batch (its last key, the new count, done).
    pub progress: CopyProgress,
    pub stream_start: Position,
    /// Source time of the snapshot, microseconds since the epoch.
    pub snapshot_time: i64,
}

/// What a batch did on the target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopyStats {
    /// Rows written (inserted, or an existing row that differed and was decided by the rules).
    pub written: u64,
    /// Rows that were already equal on the target.
    pub equal: u64,
    /// Existing rows that differed (each went through the conflict rules and was audited).
    pub differed: u64,
    /// Rows whose target version won and were rewritten as local writes to reach the source.
    pub sent_back: u64,
    /// Rows the target refused, recorded in the dead-letter table.
    pub dead_lettered: u64,
}

impl<T: Target> Link<T> {
    /// Records the start of the copy: a progress row per table and the checkpoint at `start`.
    pub(super) async fn copy_start(
        &mut self,
        start: &Position,
        tables: &[String],
        time: i64,
    ) -> Result<(), ApplyError> {
        let source = self.ctx.source.clone();
        self.in_transaction(async |l| {
            for table in tables {
                let p = CopyProgress {
                    table: table.clone(),
                    last_key: None,
                    rows: 0,
                    done: false,
                    stream_start: start.to_string(),
                };
                l.t.write_copy_progress(&source, &p).await?;
            }
            l.t.write_checkpoint(&source, &start.to_string(), time)
                .await
        })
        .await?;
        self.committed = Some(start.clone());
        Ok(())
    }

    pub(super) async fn copy_progress(&mut self) -> Result<Vec<CopyProgress>, ApplyError> {
        let source = self.ctx.source.clone();
        self.t.read_copy_progress(&source).await
    }

    /// Applies one batch (see the module doc).
    pub(super) async fn copy_batch(&mut self, batch: &CopyBatch) -> Result<CopyStats, ApplyError> {
        let first = match self.copy_batch_once(batch, true).await {
            // A batched insert found a key taken (a row that differs here): the target inserts
            // that table the checked way now, so the batch goes again at once (as `apply_group`).
            Err(ApplyError::Raced(_)) => self.copy_batch_once(batch, true).await,
            other => other,
        };
        let error = match first {
            Err(e) if !e.is_transient() => e,
            other => return other,
        };
        let halt = self.copy_policy(batch) == OnError::Halt;
        if halt && batch.rows.len() == 1 {
            return Err(error);
        }
        // One row per transaction, without the progress; then the refused rows' dead letters and the
        // progress together: a crash before that copies the batch again (the rows already written
        // are then equal, the refused ones are refused again) and records each refusal once. Under
        // `halt` too, so that the halt names the row the target refused rather than the batch.
        let mut stats = CopyStats::default();
        let mut refused = Vec::new();
        for image in &batch.rows {
            let one = CopyBatch {
                rows: vec![image.clone()],
                ..batch.clone()
            };
            match self.copy_batch_once(&one, false).await {
                Ok(s) => {
                    stats.written += s.written;
                    stats.equal += s.equal;
                    stats.differed += s.differed;
                    stats.sent_back += s.sent_back;
                }
                Err(e) if e.is_transient() || halt => return Err(e),
                Err(e) => refused.push((image, e)),
            }
        }
        let source = self.ctx.source.clone();
        self.in_transaction(async |l| {
            for (image, error) in &refused {
                l.copy_dead_letter(batch, image, error).await?;
            }
            l.t.write_copy_progress(&source, &batch.progress).await
        })
        .await?;
        for (_, error) in &refused {
            tracing::warn!(link = %self.ctx.link(), table = %batch.source_table, code = %error.code(), "copied row sent to the dead-letter table; its error column says why");
            crate::observe::dead_letter(&self.ctx.source, &self.ctx.target, &batch.progress.table);
        }
        stats.dead_lettered = refused.len() as u64;
        Ok(stats)
    }

    fn copy_policy(&self, batch: &CopyBatch) -> OnError {
        self.mapper
            .plan_for_source(&batch.source_table)
            .map_or(self.ctx.on_error, |p| p.on_error)
    }

    /// Records a row the target refused during the copy as a dead letter, inside the open
    /// transaction: an insert of the row at the copy's position, which `dead-letter replay` applies
    /// like any other.
    async fn copy_dead_letter(
        &mut self,
        batch: &CopyBatch,
        image: &RowImage,
        error: &ApplyError,
    ) -> Result<(), ApplyError> {
        let change = Change {
            table: batch.source_table.clone(),
            op: Op::Insert,
            before: None,
            after: Some(image.clone()),
        };
        let payload = serde_json::to_string(&[change])
            .map_err(|e| ApplyError::Invalid(format!("cannot serialise the row: {e}")))?;
        let record = super::target::DeadLetter {
            id: 0,
            link: self.ctx.link(),
            source_node: self.ctx.source.clone(),
            source_position: format!("copy:{}", batch.stream_start),
            commit_time: Some(batch.snapshot_time),
            payload,
            error: super::error::dead_letter_error(error, &self.ctx.target),
            attempts: 1,
            state: "open".into(),
        };
        self.t.insert_dead_letter(&record).await.map(drop)
    }

    /// Applies one batch in one transaction; `progress`: record the batch's progress with it.
    async fn copy_batch_once(
        &mut self,
        batch: &CopyBatch,
        progress: bool,
    ) -> Result<CopyStats, ApplyError> {
        let source = self.ctx.source.clone();
        let meta = TxMeta {
            origin: source.clone(),
            position: Some(format!("copy:{}", batch.stream_start)),
            commit_time: batch.snapshot_time,
        };
        let (stats, touch) = self
            .in_transaction(async |l| {
                let (stats, touch) = l.copy_rows(batch, &meta).await?;
                if touch.is_empty() && progress {
                    l.t.write_copy_progress(&source, &batch.progress).await?;
                }
                let start = batch.stream_start.to_string();
                l.t.write_checkpoint(&source, &start, batch.snapshot_time)
                    .await?;
                Ok::<_, ApplyError>((stats, touch))
            })
            .await?;
        self.committed = Some(batch.stream_start.clone());
        if !touch.is_empty() {
            self.send_back(batch, &touch, progress).await?;
        }
        Ok(stats)
    }

    /// The rows of a batch, inside the open transaction. Returns the stats and the keys to send back.
    async fn copy_rows(
        &mut self,
        batch: &CopyBatch,
        meta: &TxMeta,
    ) -> Result<(CopyStats, Vec<Vec<Field>>), ApplyError> {
        let mut stats = CopyStats::default();
        let mapper = self.mapper.clone();
        let Some(plan) = mapper.plan_for_source(&batch.source_table) else {
            return Ok((stats, Vec::new()));
        };
        let info = self.t.table(&plan.target).await?;
        let mut prepared = Vec::new();
        for image in &batch.rows {
            let change = Change {
                table: batch.source_table.clone(),
                op: Op::Insert,
                before: None,
                after: Some(image.clone()),
            };
            let Some(mapped) = mapper.map_change(change) else {
                continue; // outside the table's filter: stays home
            };
            let target = mapped.target.as_ref().map_err(Clone::clone)?;
            let row = RowChange::new(
                plan,
                &info,
                &self.ctx.names,
                &mapped.source,
                target,
                &meta.origin,
                meta.commit_time,
            )?;
            prepared.push((mapped, row));
        }
        let keys: Vec<Vec<Field>> = prepared.iter().map(|(_, r)| r.key.clone()).collect();
        let exists = if keys.is_empty() {
            Vec::new()
        } else {
            self.t.existing(&info, &keys).await?
        };
        let mut write = Vec::new();
        let mut differing = Vec::new();
        for ((change, row), exists) in prepared.into_iter().zip(exists) {
            let cur = if exists {
                self.current(&info, &row).await?
            } else {
                None
            };
            let Some(cur) = cur else {
                write.push(change);
                continue;
            };
            let incoming = row.after_version.as_ref().and_then(version_key);
            let same_values = cur.same_as_after.iter().all(|b| *b);
            if same_values && (incoming.is_none() || incoming == cur.version_key) {
                stats.equal += 1;
            } else if same_values && row.managed_version {
                // Same data, different managed stamps: take the source's, so that the next change
                // from either side passes the other's version check.
                stats.equal += 1;
                let w = Write {
                    key: row.key.clone(),
                    set: row.stamp_fields(true),
                };
                self.t.update(&info, &w, &row.version_column, None).await?;
            } else {
                stats.differed += 1;
                write.push(change);
                differing.push(row);
            }
        }
        stats.written = write.len() as u64;
        // Inserted in batches as a link's runs are cut: rows, and bytes the target's statements
        // take (a MySQL/MariaDB target's max_allowed_packet).
        let meta = std::sync::Arc::new(meta.clone());
        let mut run = Run::new(self.t.batch_bytes());
        for change in write {
            let bytes = change.source.approx_bytes();
            let staged = Staged {
                change,
                meta: meta.clone(),
            };
            if !run.takes(&staged.change.plan, staged.op(), bytes) {
                self.apply_inserts(&run.take()).await?;
            }
            run.push(staged, bytes);
        }
        if !run.is_empty() {
            self.apply_inserts(&run.take()).await?;
        }
        let mut touch = Vec::new();
        let keys: Vec<String> = differing.iter().map(RowChange::key_text).collect();
        let queued: std::collections::HashSet<String> = self
            .t
            .open_keys(&info.table.to_string(), &keys)
            .await?
            .into_iter()
            .collect();
        for row in differing {
            if queued.contains(&row.key_text()) {
                continue; // parked for a person; their resolution replicates
            }
            if let Some(cur) = self.current(&info, &row).await? {
                if !cur.same_as_after.iter().all(|b| *b) {
                    touch.push(row.key.clone());
                }
            }
        }
        stats.sent_back = touch.len() as u64;
        Ok((stats, touch))
    }

    /// Rewrites the rows the target kept as local writes (so they replicate to the source) and
    /// records the batch's progress, in one transaction of the session's local mode.
    async fn send_back(
        &mut self,
        batch: &CopyBatch,
        keys: &[Vec<Field>],
        progress: bool,
    ) -> Result<(), ApplyError> {
        let mapper = self.mapper.clone();
        let Some(plan) = mapper.plan_for_source(&batch.source_table) else {
            return Ok(());
        };
        let info = self.t.table(&plan.target).await?;
        let source = self.ctx.source.clone();
        self.t.set_applying(false).await?;
        let r = self
            .in_transaction(async |l| {
                for key in keys {
                    let w = Write {
                        key: key.clone(),
                        set: key.clone(),
                    };
                    l.t.update(&info, &w, &plan.version, None).await?;
                }
                if progress {
                    l.t.write_copy_progress(&source, &batch.progress).await?;
                }
                Ok::<_, ApplyError>(())
            })
            .await;
        self.t.set_applying(true).await?;
        r
    }
}
