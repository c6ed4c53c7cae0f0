//! Dead letters: a transaction that failed with a definite error is recorded on the target, with the
//! checkpoint moved past it, so the link goes on; `tandem dead-letter replay` applies it again.
//!
//! ```text
//!  record:  tx.changes (memory or spill file) ─> Parts ─> part 0: dead_letter.payload
//!                                                       └ part 1…n: dead_letter_part   ─> checkpoint ─> COMMIT
//!  replay:  dead_letter.payload, dead_letter_part 1…n ─> apply each change ─> state 'replayed' ─> COMMIT
//! ```
//!
//! A part is a JSON array of changes of about [`PART_BYTES`]: a spilled transaction of any size is
//! written and read back one part at a time, never whole in memory, and no statement comes near
//! MySQL's `max_allowed_packet` (a part holds at least one change, so one huge row makes one big part).
//!
//! Error handling: recording runs in its own target transaction; any error rolls it back and returns
//! (the caller retries the group). A replay that fails with a definite error leaves the dead letter
//! open with the new error; a transient one leaves it as it was.

use tracing::warn;

use super::error::ApplyError;
use super::link::{Failure, Link, TxMeta};
use super::target::{DeadLetter, Target};
use super::tombstone::Revived;
use crate::config::OnError;
use crate::model::{Change, Transaction};

/// The serialised size at which a part is closed and the next begun.
pub(crate) const PART_BYTES: usize = 1 << 20;

/// Cuts a sequence of changes into JSON arrays of about `limit` bytes each, lazily: one part in
/// memory at a time. An empty sequence gives one empty array, so every dead letter has a part 0.
pub(crate) struct Parts<I> {
    changes: I,
    limit: usize,
    /// A change read past the end of the previous part.
    carried: Option<String>,
    started: bool,
    done: bool,
}

impl<I: Iterator<Item = std::io::Result<Change>>> Parts<I> {
    pub(crate) fn new(changes: I, limit: usize) -> Self {
        Parts {
            changes,
            limit,
            carried: None,
            started: false,
            done: false,
        }
    }

    fn next_change(&mut self) -> Option<std::io::Result<String>> {
        if let Some(c) = self.carried.take() {
            return Some(Ok(c));
        }
        let change = self.changes.next()?;
        Some(change.and_then(|c| serde_json::to_string(&c).map_err(std::io::Error::other)))
    }
}

impl<I: Iterator<Item = std::io::Result<Change>>> Iterator for Parts<I> {
    /// A part, or the error reading the spill file (or serialising a change).
    type Item = std::io::Result<String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let mut part = String::from("[");
        let mut count = 0usize;
        loop {
            match self.next_change() {
                None => {
                    self.done = true;
                    break;
                }
                Some(Err(e)) => {
                    self.done = true;
                    return Some(Err(e));
                }
                Some(Ok(json)) => {
                    if count > 0 && part.len() + json.len() + 2 > self.limit {
                        self.carried = Some(json);
                        break;
                    }
                    if count > 0 {
                        part.push(',');
                    }
                    part.push_str(&json);
                    count += 1;
                }
            }
        }
        if count == 0 && self.started {
            return None;
        }
        self.started = true;
        part.push(']');
        Some(Ok(part))
    }
}

/// The changes of one part; the error names the dead letter and the part.
fn read_part(id: i64, part: i32, text: &str) -> Result<Vec<Change>, String> {
    serde_json::from_str(text)
        .map_err(|e| format!("dead letter {id} payload (part {part}) cannot be read: {e}"))
}

impl<T: Target> Link<T> {
    /// Sends a transaction that failed with a definite error to the dead-letter table (and moves the
    /// checkpoint past it), or halts, per the failing table's `on_error` (the link's where the
    /// failure was not a table's change).
    pub(super) async fn dead_letter_or_halt(
        &mut self,
        tx: &Transaction,
        failure: Failure,
    ) -> Result<(), ApplyError> {
        let Failure { error, table } = failure;
        let policy = table.as_ref().map_or(self.ctx.on_error, |t| t.on_error);
        if policy == OnError::Halt {
            return Err(error);
        }
        let table = table.map(|t| t.business).unwrap_or_default();
        let position = tx.position.to_string();
        let recorded = self
            .in_transaction(async |l| l.record(tx, &position, &error).await)
            .await;
        let parts = match recorded {
            Ok(parts) => parts,
            Err(e) if e.is_transient() => return Err(e),
            // Neither applied nor recordable (a row larger than MySQL's max_allowed_packet): the
            // link halts, saying both.
            Err(e) => {
                return Err(ApplyError::Invalid(format!(
                    "{}; the transaction at {position} could not be recorded in the dead-letter \
                     table either: {}",
                    super::shown(&error),
                    super::error::with_cause(&e)
                )))
            }
        };
        self.committed = Some(tx.position.clone());
        warn!(link = %self.ctx.link(), position = %position, code = %error.code(), table = %table, parts, "transaction sent to the dead-letter table; its error column says why");
        crate::observe::dead_letter(&self.ctx.source, &self.ctx.target, &table);
        Ok(())
    }

    /// Writes the dead letter part by part and the checkpoint past it, inside the open transaction.
    /// Returns how many parts it took.
    async fn record(
        &mut self,
        tx: &Transaction,
        position: &str,
        error: &ApplyError,
    ) -> Result<i32, ApplyError> {
        // Parts small enough for the target's statements (MySQL's max_allowed_packet).
        let mut parts = Parts::new(tx.changes.iter(), PART_BYTES.min(self.t.batch_bytes()));
        let first = match parts.next() {
            Some(part) => part.map_err(ApplyError::Spill)?,
            None => "[]".into(),
        };
        let record = DeadLetter {
            id: 0,
            link: self.ctx.link(),
            source_node: self.ctx.source.clone(),
            source_position: position.to_string(),
            commit_time: Some(tx.commit_time),
            payload: first,
            error: super::error::dead_letter_error(error, &self.ctx.target),
            attempts: 1,
            state: "open".into(),
        };
        let id = self.t.insert_dead_letter(&record).await?;
        drop(record);
        let mut count = 1;
        for part in parts {
            let part = part.map_err(ApplyError::Spill)?;
            self.t.insert_dead_letter_part(id, count, &part).await?;
            count += 1;
        }
        self.t
            .write_checkpoint(&self.ctx.source, position, tx.commit_time)
            .await?;
        Ok(count)
    }

    /// Applies dead letter `id` again in one target transaction, part by part; marks it replayed, or
    /// open with the new error when it fails again for a definite reason. The error, and the
    /// error of recording it on the entry when that failed too (the entry is then as it was).
    pub(super) async fn replay_on(
        &mut self,
        id: i64,
    ) -> Result<(), (ApplyError, Option<ApplyError>)> {
        let result = in_transaction_reviving!(self, async |l| l.replay_parts(id).await);
        let Err(e) = result else {
            return Ok(());
        };
        if e.is_transient() {
            return Err((e, None));
        }
        let message = e.to_string();
        let recorded = self
            .in_transaction(async |l| l.t.set_dead_letter(id, "open", Some(&message)).await)
            .await;
        Err((e, recorded.err()))
    }

    async fn replay_parts(&mut self, id: i64) -> Result<(), ApplyError> {
        let d = self
            .t
            .get_dead_letter(id)
            .await?
            .ok_or_else(|| ApplyError::Invalid(format!("no dead letter with id {id}")))?;
        if d.source_node != self.ctx.source {
            return Err(ApplyError::Invalid(format!(
                "dead letter {id} belongs to link {}; replay it with an applier for that link",
                d.link
            )));
        }
        let meta = TxMeta {
            origin: d.source_node.clone(),
            position: Some(d.source_position.clone()),
            commit_time: d.commit_time.unwrap_or(0),
        };
        // The tombstones the transaction revived, from every part first, as when it first came:
        // its inserts are weighed against them.
        let mut revived = Vec::new();
        let mut part = 0;
        let mut text = Some(d.payload.clone());
        while let Some(t) = text {
            let changes = read_part(id, part, &t).map_err(ApplyError::Invalid)?;
            revived.extend(
                changes
                    .iter()
                    .filter_map(|c| Revived::from_change(c, &self.ctx.schema)),
            );
            part += 1;
            text = self.t.dead_letter_part(id, part).await?;
        }
        self.revived = revived;
        self.replaying = Some(id);
        let result = self.replay_changes(id, &d.payload, &meta).await;
        self.replaying = None;
        self.revived.clear();
        result?;
        self.t.touch_checkpoint(&d.source_node).await?;
        self.t.set_dead_letter(id, "replayed", None).await
    }

    /// Applies the dead letter's changes, part by part, in order.
    async fn replay_changes(
        &mut self,
        id: i64,
        payload: &str,
        meta: &TxMeta,
    ) -> Result<(), ApplyError> {
        let mut changes = read_part(id, 0, payload).map_err(ApplyError::Invalid)?;
        let mut part = 0;
        // The stored changes are the source's as captured: their old versions are read again,
        // across the parts, as when the transaction first came.
        let mut old = self.mapper.old_versions();
        loop {
            for c in &mut changes {
                self.mapper.complete(&mut old, c);
                self.apply_change(c, meta).await?;
            }
            part += 1;
            match self.t.dead_letter_part(id, part).await? {
                Some(text) => {
                    changes = read_part(id, part, &text).map_err(ApplyError::Invalid)?;
                }
                None => return Ok(()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Field, ImageKind, Op, RowImage, TableRef, Value};

    fn change(i: i64, text: &str) -> Change {
        let field = |name: &str, value: Value| Field {
            name: name.into(),
            value,
        };
        Change {
            table: TableRef::new("public", "t"),
            op: Op::Insert,
            before: None,
            after: Some(RowImage::new(
                ImageKind::Full,
                vec![
                    field("id", Value::Int(i)),
                    field("note", Value::Text(text.into())),
                ],
            )),
        }
    }

    fn parts(changes: Vec<Change>, limit: usize) -> Vec<String> {
        Parts::new(changes.into_iter().map(Ok), limit)
            .collect::<Result<_, _>>()
            .expect("parts")
    }

    #[test]
    fn parts_are_bounded_and_read_back_in_order() {
        let all: Vec<Change> = (0..100).map(|i| change(i, &"x".repeat(50))).collect();
        let cut = parts(all.clone(), 1000);
        assert!(
            cut.len() > 5,
            "100 changes of ~100 bytes in parts of 1000: {}",
            cut.len()
        );
        for p in &cut {
            assert!(p.len() <= 1000, "a part of {} bytes", p.len());
        }
        let back: Vec<Change> = cut
            .iter()
            .enumerate()
            .flat_map(|(i, p)| read_part(1, i as i32, p).expect("a part reads back"))
            .collect();
        assert_eq!(back, all);
    }

    #[test]
    fn an_empty_transaction_has_one_empty_part_and_a_huge_change_its_own() {
        assert_eq!(parts(Vec::new(), 1000), vec!["[]".to_string()]);
        let big = vec![change(1, "a"), change(2, &"y".repeat(5000)), change(3, "b")];
        let cut = parts(big.clone(), 1000);
        assert_eq!(cut.len(), 3, "the big change stands alone");
        assert!(cut[1].len() > 5000);
    }

    #[test]
    fn a_spill_read_error_ends_the_parts_with_it() {
        let items = vec![
            Ok(change(1, "a")),
            Err(std::io::Error::other("disk")),
            Ok(change(2, "b")),
        ];
        let out: Vec<_> = Parts::new(items.into_iter(), 1000).collect();
        assert_eq!(out.len(), 1);
        assert!(out[0].is_err());
    }
}
