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

use super::error::ApplyError;
use super::link::{Link, TxMeta};
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

/// The copy's bookkeeping on a target.
#[allow(async_fn_in_trait)]
pub(crate) trait CopyBook {
    async fn read_copy_progress(&mut self, source: &str) -> Result<Vec<CopyProgress>, ApplyError>;
    async fn write_copy_progress(
        &mut self,
        source: &str,
        p: &CopyProgress,
    ) -> Result<(), ApplyError>;
}

impl<T: Target + CopyBook> Link<T> {
    /// Records the start of the copy: a progress row per table and the checkpoint at `start`.
    pub(super) async fn copy_start(
        &mut self,
        start: &Position,
        tables: &[String],
        time: i64,
    ) -> Result<(), ApplyError> {
        let source = self.ctx.source.clone();
        self.t.begin().await?;
        let r = async {
            for table in tables {
                let p = CopyProgress {
                    table: table.clone(),
                    last_key: None,
                    rows: 0,
                    done: false,
                    stream_start: start.to_string(),
                };
                self.t.write_copy_progress(&source, &p).await?;
            }
            self.t
                .write_checkpoint(&source, &start.to_string(), time)
                .await
        }
        .await;
        self.finish(r).await?;
        self.committed = Some(start.clone());
        Ok(())
    }

    pub(super) async fn copy_progress(&mut self) -> Result<Vec<CopyProgress>, ApplyError> {
        let source = self.ctx.source.clone();
        self.t.read_copy_progress(&source).await
    }

    /// Applies one batch (see the module doc).
    pub(super) async fn copy_batch(&mut self, batch: &CopyBatch) -> Result<CopyStats, ApplyError> {
        let error = match self.copy_batch_once(batch, true).await {
            Err(e) if !e.is_transient() => e,
            other => return other,
        };
        let halt = self.copy_policy(batch) == OnError::Halt;
        if halt && batch.rows.len() == 1 {
            return Err(error);
        }
        // One row per transaction, without the progress (a crash copies the batch again: the rows
        // already written are then equal), then the progress alone. Under `halt` too, so that the
        // halt names the row the target refused rather than the batch.
        let mut stats = CopyStats::default();
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
                Err(e) => {
                    self.copy_dead_letter(batch, image, &e).await?;
                    stats.dead_lettered += 1;
                }
            }
        }
        let source = self.ctx.source.clone();
        self.t.begin().await?;
        let r = self.t.write_copy_progress(&source, &batch.progress).await;
        self.finish(r).await?;
        Ok(stats)
    }

    fn copy_policy(&self, batch: &CopyBatch) -> OnError {
        self.mapper
            .plan_for_source(&batch.source_table)
            .map_or(self.ctx.on_error, |p| p.on_error)
    }

    /// Records a row the target refused during the copy as a dead letter: an insert of the row at
    /// the copy's position, which `dead-letter replay` applies like any other.
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
        let position = format!("copy:{}", batch.stream_start);
        tracing::warn!(link = %self.ctx.link(), table = %batch.source_table, code = %error.code(), "copied row sent to the dead-letter table; its error column says why");
        let record = super::target::DeadLetter {
            id: 0,
            link: self.ctx.link(),
            source_node: self.ctx.source.clone(),
            source_position: position,
            commit_time: Some(batch.snapshot_time),
            payload,
            error: super::error::dead_letter_error(error, &self.ctx.target),
            attempts: 1,
            state: "open".into(),
        };
        self.t.begin().await?;
        let r = self.t.insert_dead_letter(&record).await.map(drop);
        self.finish(r).await?;
        crate::observe::dead_letter(&self.ctx.source, &self.ctx.target, &batch.progress.table);
        Ok(())
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
        self.t.begin().await?;
        let body = async {
            let (stats, touch) = self.copy_rows(batch, &meta).await?;
            if touch.is_empty() && progress {
                self.t.write_copy_progress(&source, &batch.progress).await?;
            }
            self.t
                .write_checkpoint(
                    &source,
                    &batch.stream_start.to_string(),
                    batch.snapshot_time,
                )
                .await?;
            Ok((stats, touch))
        }
        .await;
        let (stats, touch) = match body {
            Ok(v) => {
                self.t.commit().await?;
                v
            }
            Err(e) => return Err(self.rolled_back(e).await),
        };
        self.committed = Some(batch.stream_start.clone());
        if !touch.is_empty() {
            self.send_back(batch, &touch, progress).await?;
        }
        Ok(stats)
    }

    /// Commits on `Ok`, rolls back and returns the error otherwise.
    async fn finish(&mut self, r: Result<(), ApplyError>) -> Result<(), ApplyError> {
        match r {
            Ok(()) => self.t.commit().await,
            Err(e) => Err(self.rolled_back(e).await),
        }
    }

    async fn rolled_back(&mut self, e: ApplyError) -> ApplyError {
        if let Err(rb) = self.t.rollback().await {
            tracing::debug!(error = %rb, "rollback after a failed copy batch failed");
        }
        e
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
            let Some(mapped) = mapper.map(&change) else {
                continue; // outside the table's filter: stays home
            };
            let mapped = mapped?;
            let row = RowChange::new(
                plan,
                &info,
                &self.ctx.names,
                &change,
                &mapped,
                &meta.origin,
                meta.commit_time,
            )?;
            prepared.push((change, row));
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
        if !write.is_empty() {
            self.apply_inserts(&write, meta).await?;
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
        self.t.begin().await?;
        let r = async {
            for key in keys {
                let w = Write {
                    key: key.clone(),
                    set: key.clone(),
                };
                self.t.update(&info, &w, &plan.version, None).await?;
            }
            if progress {
                self.t.write_copy_progress(&source, &batch.progress).await?;
            }
            Ok(())
        }
        .await;
        let r = self.finish(r).await;
        self.t.set_applying(true).await?;
        r
    }
}
