//! Batched writes: consecutive changes of one kind to one table in one target transaction (the
//! source transactions of a group, see `link.rs`) are applied with a few statements instead of one
//! per row, with the same outcome as row by row. Each row keeps its own source transaction's
//! origin, commit time and position (for its conflict record).
//!
//! Inserts: one insert of the rows whose key is not there (`Target::insert_new`). Rows whose key
//! exists take the row-by-row path, which finds the conflict; anything unusual (a queued key,
//! differing column sets, a key twice in the run, a key with a tombstone, a race with a local
//! insert) sends the whole run that way.
//!
//! Updates and deletes: consecutive rows that write the same columns (and all carry a version
//! check, or none) form a batch, applied by one version-checked statement that tells which rows
//! applied (`Target::update_many`, `delete_many`); each row whose check failed then takes the
//! conflict path, in source order. A row that needs more than the version-checked write (a queued
//! key, a key the update changes, a soft or ignored delete, a row filter that turns it into
//! another kind) closes the batch before it and is applied alone, so rows apply in source order.
//! A key already in the batch closes it too: rows of one batch never touch the same row, so
//! applying them together and then deciding the conflicts of the ones that did not apply gives
//! what row by row gives. Column owners other than the source, and a batch the engine could not
//! apply together (a definite error), go row by row, which names the row at fault.
//!
//! ```text
//!  run of updates ─> map ─> RowChange ─> same shape, new key? ─ yes ─> batch
//!                                          └ no ─> flush batch; unusual? apply_row alone
//!  flush: update_many ─> [applied?] ─ no ─> conflict (in order)
//! ```

use std::collections::HashSet;
use std::sync::Arc;

use tracing::debug;

use super::error::ApplyError;
use super::link::{with_row_context, Link, Queue, Staged, TxMeta};
use super::row::RowChange;
use super::target::{Checked, TableInfo, Target, Write};
use crate::config::DeletePolicy;
use crate::mapping::TablePlan;
use crate::model::{Op, Value};

/// Rows per batch (keeps statements well under the engines' parameter limits, and a batch whose
/// version checks fail small). Larger insert batches cost fewer round trips (PG->PG `replicate`
/// bench, one 200,000-row transaction: the group's apply 1.04 s at 500 rows a batch, 0.88 s at
/// 2,000), but at 2,000 the `memory` bench's 2,000,000-row transactions peaked at 63.7 and 75.2 MiB
/// against 37.7 and 55.4 MiB at 500, no faster: the budget wins.
pub const MAX_ROWS: usize = 500;

/// Bytes of captured changes a batch gathers at most, so that wide rows do not make a batch
/// outgrow the memory budget (a batch holds each change as captured and as mapped).
pub const MAX_RUN_BYTES: usize = 4 << 20;

/// The changes gathered for one batch: consecutive changes of one kind to one table, at most
/// [`MAX_ROWS`] of them and `limit` bytes of captured changes.
pub(super) struct Run {
    staged: Vec<Staged>,
    bytes: usize,
    limit: usize,
}

impl Run {
    /// An empty run whose batches hold at most `limit` bytes of captured changes
    /// ([`super::target::Target::batch_bytes`]).
    pub(super) fn new(limit: usize) -> Run {
        Run {
            staged: Vec::new(),
            bytes: 0,
            limit,
        }
    }

    /// Whether a change of `plan`, of kind `op` and `bytes` large, belongs in this run: the same
    /// table and kind, and room left (a first change always fits).
    pub(super) fn takes(&self, plan: &Arc<TablePlan>, op: Option<Op>, bytes: usize) -> bool {
        let Some(first) = self.staged.first() else {
            return true;
        };
        Arc::ptr_eq(&first.change.plan, plan)
            && first.op() == op
            && self.staged.len() < MAX_ROWS
            && self.bytes + bytes <= self.limit
    }

    pub(super) fn push(&mut self, staged: Staged, bytes: usize) {
        self.staged.push(staged);
        self.bytes += bytes;
    }

    pub(super) fn is_empty(&self) -> bool {
        self.staged.is_empty()
    }

    /// The gathered changes; the run is empty again.
    pub(super) fn take(&mut self) -> Vec<Staged> {
        self.bytes = 0;
        std::mem::take(&mut self.staged)
    }
}

/// Parameters per batch statement (the engines' limits are 32,767 or 65,535).
const MAX_PARAMS: usize = 30_000;

/// What rows of one batch share: the kind of write, the columns written and whether a version is
/// checked.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Shape {
    op: Op,
    set: Vec<String>,
    checked: bool,
}

/// The update or delete batch being gathered.
#[derive(Default)]
struct Pending {
    shape: Option<Shape>,
    rows: Vec<RowChange>,
    /// Each row's source transaction (a batch may span several of one group).
    metas: Vec<Arc<TxMeta>>,
    writes: Vec<Checked>,
    /// The rows' keys as the target may compare them (see [`row_identity`]).
    keys: HashSet<String>,
    params: usize,
}

impl Pending {
    fn accepts(&self, shape: &Shape, identity: &str, params: usize) -> bool {
        self.shape.as_ref().is_none_or(|s| s == shape)
            && !self.keys.contains(identity)
            && self.rows.len() < MAX_ROWS
            && self.params + params <= MAX_PARAMS
    }
}

/// A row's key as the target may compare it: text without case or trailing blanks (MySQL's
/// default collations), decimals without trailing zeros. Two rows with the same identity might be
/// one target row, so they never share a batch.
fn row_identity(row: &RowChange) -> String {
    row.key
        .iter()
        .map(|f| match &f.value {
            Value::Text(t) => t.trim_end().to_lowercase(),
            Value::Decimal(d) => d.normalized().to_string(),
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\u{1f}")
}

impl<T: Target> Link<T> {
    /// The row change of a staged change (mapped already) for the table `info`.
    // The error ends the batch: its size costs nothing on the way that matters.
    #[allow(clippy::result_large_err)]
    fn row_change(
        &self,
        plan: &TablePlan,
        info: &TableInfo,
        staged: &Staged,
    ) -> Result<RowChange, ApplyError> {
        let c = &staged.change;
        let mapped = c.target.as_ref().map_err(Clone::clone)?;
        Ok(RowChange::new(
            plan,
            info,
            &self.ctx.names,
            &c.source,
            mapped,
            &staged.meta.origin,
            staged.meta.commit_time,
        )?)
    }

    pub(super) async fn apply_inserts(&mut self, changes: &[Staged]) -> Result<(), ApplyError> {
        let plan = match changes.first().map(|c| &*c.change.plan) {
            Some(p) if p.owner.as_deref().is_none_or(|o| o == self.ctx.source) => p,
            _ => return self.one_by_one(changes).await,
        };
        let info = self.t.table(&plan.target).await?;
        let Some(first) = changes.first() else {
            return Ok(());
        };
        let first = self.row_change(plan, &info, first)?;
        if first.full_write_len() * changes.len() > MAX_PARAMS && changes.len() > 1 {
            // A wide table: two smaller batches, in order (told from the first row, before the
            // others are made).
            let (head, tail) = changes.split_at(changes.len() / 2);
            Box::pin(self.apply_inserts(head)).await?;
            return Box::pin(self.apply_inserts(tail)).await;
        }
        let mut rows = Vec::with_capacity(changes.len());
        let mut metas = Vec::with_capacity(changes.len());
        rows.push(first);
        for staged in &changes[1..] {
            rows.push(self.row_change(plan, &info, staged)?);
        }
        for staged in changes {
            metas.push(staged.meta.clone());
        }
        let table = info.table.to_string();
        let keys: HashSet<String> = rows.iter().map(RowChange::key_text).collect();
        let uniform = rows.windows(2).all(|w| w[0].writes_columns_of(&w[1]));
        let key_list: Vec<String> = keys.iter().cloned().collect();
        let queued = !self.t.open_keys(&table, &key_list).await?.is_empty();
        if keys.len() != rows.len() || !uniform || queued || rows.iter().any(|r| r.key.is_empty()) {
            return self.one_by_one(changes).await;
        }
        // The rows become the writes (their fields moved, not copied); the rare row not inserted
        // is made again from its change.
        let writes: Vec<Write> = rows.into_iter().map(RowChange::into_full_write).collect();
        let Some(inserted) = self
            .t
            .insert_new(&info, &writes)
            .await
            .map_err(|e| with_row_context(e, plan, &info))?
        else {
            // A local insert raced in between: decide row by row.
            return self.one_by_one(changes).await;
        };
        // Only a key deleted before needs the row-by-row check for a concurrent delete. Read after
        // the insert, in its transaction, no local delete committed before it goes unseen (see
        // `Link::insert_unless_deleted`); rare, so the batch is taken back and redone row by row.
        if plan.managed_version && self.t.any_tombstone(&info.table, &key_list).await? {
            for (write, _) in writes.iter().zip(&inserted).filter(|(_, i)| **i) {
                self.t
                    .delete(&info, &write.key, &plan.version, None)
                    .await?;
            }
            return self.one_by_one(changes).await;
        }
        // A row not inserted found its key (or another unique key) taken: the row-by-row path
        // tells which, and takes the conflict path.
        for ((staged, meta), _) in changes.iter().zip(metas).zip(inserted).filter(|(_, i)| !*i) {
            let row = self.row_change(plan, &info, staged)?;
            self.apply_row(plan, &info, row, meta.position.as_deref(), Queue::Check)
                .await
                .map_err(|e| with_row_context(e, plan, &info))?;
        }
        Ok(())
    }

    /// Applies a run of updates or deletes of one table (see the module doc).
    pub(super) async fn apply_checked(&mut self, changes: &[Staged]) -> Result<(), ApplyError> {
        let source = self.ctx.source.clone();
        let foreign = |o: &Option<String>| o.as_deref().is_some_and(|o| o != source);
        let plan = match changes.first().map(|c| &*c.change.plan) {
            Some(p) if !foreign(&p.owner) && !p.columns.values().any(|c| foreign(&c.owner)) => p,
            _ => return self.one_by_one(changes).await,
        };
        let info = self.t.table(&plan.target).await?;
        if plan.managed_version && info.column(&plan.version).is_none() {
            // The row-by-row path says what to do about it.
            return self.one_by_one(changes).await;
        }
        let mut rows = Vec::with_capacity(changes.len());
        for staged in changes {
            rows.push((self.row_change(plan, &info, staged)?, staged.meta.clone()));
        }
        // Keys under review (parked by any link into this node) go the row-by-row way.
        let queued: HashSet<String> = {
            let keys: Vec<String> = rows.iter().map(|(r, _)| r.key_text()).collect();
            let table = info.table.to_string();
            self.t.open_keys(&table, &keys).await?.into_iter().collect()
        };
        let mut pending = Pending::default();
        for (row, meta) in rows {
            let write = if queued.contains(&row.key_text()) {
                None
            } else {
                Self::checked_write(plan, &row)
            };
            let Some(write) = write else {
                self.flush_checked(plan, &info, &mut pending).await?;
                self.apply_row(plan, &info, row, meta.position.as_deref(), Queue::Check)
                    .await
                    .map_err(|e| with_row_context(e, plan, &info))?;
                continue;
            };
            let shape = Shape {
                op: row.op,
                set: write.write.set.iter().map(|f| f.name.to_string()).collect(),
                checked: write.check.is_some(),
            };
            let identity = row_identity(&row);
            let params = write.write.key.len() + write.write.set.len() + 1;
            if !pending.accepts(&shape, &identity, params) {
                self.flush_checked(plan, &info, &mut pending).await?;
            }
            pending.shape = Some(shape);
            pending.keys.insert(identity);
            pending.params += params;
            pending.rows.push(row);
            pending.metas.push(meta);
            pending.writes.push(write);
        }
        self.flush_checked(plan, &info, &mut pending).await
    }

    /// The version-checked write that is all a row needs, or `None` when it needs more than that
    /// (then it is applied alone by `apply_row`).
    fn checked_write(plan: &TablePlan, row: &RowChange) -> Option<Checked> {
        if row.key.is_empty() {
            return None;
        }
        let write = match (row.op, &plan.deletes) {
            (Op::Update, _) => {
                let w = row.changed_write();
                // A write that moves the row to another key goes alone.
                let moves = w.set.iter().any(|f| {
                    row.key
                        .iter()
                        .any(|k| k.name == f.name && k.value != f.value)
                });
                if moves {
                    return None;
                }
                w
            }
            (Op::Delete, DeletePolicy::Propagate) => Write {
                key: row.key.clone(),
                set: Vec::new(),
            },
            _ => return None,
        };
        Some(Checked {
            write,
            check: row.before_version.clone(),
        })
    }

    /// Applies the gathered batch, then the conflict path for each row that did not apply.
    async fn flush_checked(
        &mut self,
        plan: &TablePlan,
        info: &TableInfo,
        pending: &mut Pending,
    ) -> Result<(), ApplyError> {
        let Pending {
            rows,
            metas,
            writes,
            ..
        } = std::mem::take(pending);
        let op = rows.first().map(|r| r.op);
        let applied = match op {
            None => return Ok(()),
            // One row: the row-by-row path costs no savepoint.
            Some(_) if rows.len() == 1 => None,
            Some(Op::Delete) => self
                .t
                .delete_many(info, &writes, &plan.version)
                .await
                .map_err(|e| with_row_context(e, plan, info))?,
            Some(_) => self
                .t
                .update_many(info, &writes, &plan.version)
                .await
                .map_err(|e| with_row_context(e, plan, info))?,
        };
        let Some(applied) = applied else {
            for (row, meta) in rows.into_iter().zip(metas) {
                self.apply_row(plan, info, row, meta.position.as_deref(), Queue::Check)
                    .await
                    .map_err(|e| with_row_context(e, plan, info))?;
            }
            return Ok(());
        };
        if op == Some(Op::Delete) {
            let stones: Vec<_> = rows
                .iter()
                .zip(&applied)
                .filter(|(_, a)| **a)
                .filter_map(|(r, _)| Some((r.key_text(), r.tombstone()?)))
                .collect();
            if let Some(first) = rows
                .first()
                .filter(|_| !stones.is_empty() && self.ctx.manage_columns)
            {
                let key: Vec<String> = first.key.iter().map(|f| f.name.to_string()).collect();
                self.t.check_revive(&info.table, &key).await?;
            }
            self.t
                .put_tombstones(&info.table.to_string(), &stones)
                .await?;
        }
        for ((row, meta), applied) in rows.into_iter().zip(metas).zip(applied) {
            debug!(link = %self.ctx.link(), table = %plan.business, key = %row.key_text(), op = row.op.as_str(), before_version = ?row.before_version, after_version = ?row.after_version, applied, batched = true, "row");
            if !applied {
                self.conflict(plan, info, row, meta.position.as_deref())
                    .await
                    .map_err(|e| with_row_context(e, plan, info))?;
            }
        }
        Ok(())
    }

    async fn one_by_one(&mut self, changes: &[Staged]) -> Result<(), ApplyError> {
        for c in changes {
            self.apply_mapped(&c.change, &c.meta).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::mapping::{Mapped, Mapper};
    use crate::model::{Change, Field, ImageKind, RowImage, TableRef};

    fn mapper() -> Mapper {
        let (config, _) = Config::from_str_with_env(
            "[nodes.a]\nurl = \"postgres://u@h/d\"\n[nodes.b]\nurl = \"postgres://u@h/d\"\n\
             [[tables]]\nname = \"item\"\nkey = [\"id\"]\n\
             [[tables]]\nname = \"other\"\nkey = [\"id\"]\n",
            "t",
            &|_| None,
        )
        .expect("config");
        Mapper::new(&config, "a", "b")
    }

    fn change(table: &str, op: Op, note: &str) -> Change {
        let image = RowImage::new(
            ImageKind::Full,
            vec![
                Field {
                    name: "id".into(),
                    value: Value::Int(1),
                },
                Field {
                    name: "note".into(),
                    value: Value::Text(note.into()),
                },
            ],
        );
        Change {
            table: TableRef::new("public", table),
            op,
            before: (op != Op::Insert).then(|| image.clone()),
            after: (op != Op::Delete).then_some(image),
        }
    }

    fn staged(m: &Mapper, c: Change) -> (Staged, usize) {
        let mapped: Mapped = m.map_change(c).expect("mapped");
        let bytes = mapped.source.approx_bytes();
        let meta = Arc::new(TxMeta {
            origin: "a".into(),
            position: None,
            commit_time: 0,
        });
        (
            Staged {
                change: mapped,
                meta,
            },
            bytes,
        )
    }

    /// Fills a run with copies of `c` until it refuses one; returns how many it took.
    fn fill(m: &Mapper, c: &Change) -> usize {
        fill_up_to(m, c, MAX_RUN_BYTES)
    }

    /// [`fill`] for a run of at most `limit` bytes.
    fn fill_up_to(m: &Mapper, c: &Change, limit: usize) -> usize {
        let mut run = Run::new(limit);
        loop {
            let (s, bytes) = staged(m, c.clone());
            if !run.takes(&s.change.plan, s.op(), bytes) {
                return run.take().len();
            }
            run.push(s, bytes);
        }
    }

    #[test]
    fn a_run_holds_one_table_and_kind_up_to_its_rows_and_bytes() {
        let m = mapper();
        assert_eq!(fill(&m, &change("item", Op::Insert, "x")), MAX_ROWS);
        assert_eq!(fill(&m, &change("item", Op::Update, "x")), MAX_ROWS);
        assert_eq!(fill(&m, &change("item", Op::Delete, "x")), MAX_ROWS);
        // Wide rows: the bytes close the run first; a row wider than the bound still goes alone.
        let wide = change("item", Op::Insert, &"w".repeat(MAX_RUN_BYTES / 3));
        assert_eq!(fill(&m, &wide), 2);
        let huge = change("item", Op::Insert, &"h".repeat(MAX_RUN_BYTES + 1));
        assert_eq!(fill(&m, &huge), 1);
        // A target's own bound (MySQL's max_allowed_packet) closes it sooner.
        let row = change("item", Op::Insert, &"r".repeat(10_000));
        assert_eq!(fill_up_to(&m, &row, 35_000), 3);
        assert_eq!(fill_up_to(&m, &row, 5_000), 1);
        // Another table or another kind closes it.
        let mut run = Run::new(MAX_RUN_BYTES);
        let (s, bytes) = staged(&m, change("item", Op::Insert, "x"));
        run.push(s, bytes);
        for other in [
            change("other", Op::Insert, "x"),
            change("item", Op::Update, "x"),
        ] {
            let (s, bytes) = staged(&m, other);
            assert!(!run.takes(&s.change.plan, s.op(), bytes));
        }
        assert_eq!(run.take().len(), 1);
        assert!(run.is_empty());
    }
}
