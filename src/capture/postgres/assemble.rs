//! Turns decoded pgoutput messages into whole model [`Transaction`]s.
//!
//! ```text
//!  Begin ─ Origin? ─ (Relation | Insert | Update | Delete | Truncate)* ─ Commit   -> one Transaction
//!  Stream Start(xid) ─ changes(subxid) ─ Stream Stop … Stream Commit(xid)          -> one Transaction
//!                                        … Stream Abort(xid, subxid)               -> that subxid dropped
//! ```
//!
//! Pure: no I/O except the spill files of [`SpillBuffer`]. Changes are collected in a spill buffer per
//! transaction, so a transaction larger than the memory budget goes to disk (DESIGN rule 7). Protocol v2
//! streams in-progress transactions when the server's `logical_decoding_work_mem` fills; each streamed
//! transaction is buffered by its top-level xid, and each change remembers which subtransaction wrote it
//! so that a rolled-back savepoint is discarded ("Stream Abort … Xid of the subtransaction (will be
//! same as xid of the transaction for top-level transactions)").
//!
//! Transactions whose end LSN is at or below `skip_through` (the confirmed or last delivered position)
//! are dropped: after a reconnect the server replays from the confirmed position and the consumer must
//! not see a transaction twice.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use super::decode::{Column, OldTuple, PgOutput, TupleValue};
use super::error::PgCaptureError;
use super::types::TypeRegistry;
use crate::capture::CaptureEvent;
use crate::model::spill::SpillBuffer;
use crate::model::{
    Change, ChangeSet, Field, ImageKind, LoopMarks, Lsn, NodeId, Op, PgPosition, Position,
    RowImage, TableRef, Transaction, Value,
};

/// Microseconds from 1970-01-01 to PostgreSQL's epoch, 2000-01-01.
pub const PG_EPOCH_OFFSET_MICROS: i64 = 946_684_800_000_000;

/// Changes after which a committed (not streamed) transaction counts as large
/// ([`Assembler::in_large_transaction`]).
pub const LARGE_TXN_CHANGES: usize = 1000;

/// A table as the last Relation message described it.
#[derive(Debug, Clone)]
pub struct Relation {
    pub table: TableRef,
    pub columns: Vec<RelColumn>,
}

#[derive(Debug, Clone)]
pub struct RelColumn {
    pub name: Arc<str>,
    pub type_oid: u32,
    pub key: bool,
}

struct OpenTxn {
    xid: u32,
    origin: Option<String>,
    /// Its changes are left out: the transaction is tandem's own (see [`Assembler::drop_applied`]).
    dropped: bool,
    /// Already delivered before a reconnect: read through, but do not buffer.
    skip: bool,
    buf: SpillBuffer,
    /// Row changes read so far, buffered or not.
    seen: usize,
}

/// A streamed (protocol v2) transaction still in progress.
struct StreamedTxn {
    origin: Option<String>,
    dropped: bool,
    buf: SpillBuffer,
    /// Run-length list of which subtransaction wrote each buffered change, in order.
    runs: Vec<(u32, usize)>,
    aborted: HashSet<u32>,
}

/// Assembles transactions; see the module docs.
pub struct Assembler {
    node: NodeId,
    budget: usize,
    spill_dir: PathBuf,
    relations: HashMap<u32, Relation>,
    types: TypeRegistry,
    open: Option<OpenTxn>,
    streams: HashMap<u32, StreamedTxn>,
    stream_xid: Option<u32>,
    skip_through: Lsn,
    spilled_count: u64,
    drop_applied: bool,
}

impl Assembler {
    pub fn new(node: NodeId, budget: usize, spill_dir: PathBuf, skip_through: Lsn) -> Self {
        Assembler {
            node,
            budget,
            spill_dir,
            relations: HashMap::new(),
            types: TypeRegistry::default(),
            open: None,
            streams: HashMap::new(),
            stream_xid: None,
            skip_through,
            spilled_count: 0,
            drop_applied: false,
        }
    }

    /// Changes of a transaction that carries tandem's replication origin (`tandem_<node>`, set by
    /// the PostgreSQL applier) are neither decoded into values nor buffered: the transaction comes
    /// out with its origin and no changes, which the loop guard drops. A link's reader turns this
    /// on; `tandem tail` leaves it off to show what tandem applied too.
    pub fn drop_applied(&mut self, on: bool) {
        self.drop_applied = on;
    }

    /// Whether the change about to be read belongs to a transaction being dropped (decided when
    /// its origin arrived, see [`Assembler::origin`]).
    fn dropping(&self) -> bool {
        match self.stream_xid {
            Some(xid) => self.streams.get(&xid).is_some_and(|s| s.dropped),
            None => self.open.as_ref().is_some_and(|t| t.dropped),
        }
    }

    pub fn types(&self) -> &TypeRegistry {
        &self.types
    }

    pub fn types_mut(&mut self) -> &mut TypeRegistry {
        &mut self.types
    }

    /// Whether the next message is inside a Stream Start … Stream Stop block (its changes carry xids).
    pub fn in_stream(&self) -> bool {
        self.stream_xid.is_some()
    }

    /// Whether the messages coming next are the middle of a large transaction: a streamed block
    /// (the transaction has not committed yet), or a committed transaction already
    /// [`LARGE_TXN_CHANGES`] changes long. Nobody waits on a message of either before the rest of
    /// its transaction has arrived, so the reader may wait for a socketful (see
    /// `ReplConn::set_gulp`).
    pub fn in_large_transaction(&self) -> bool {
        self.in_stream()
            || self
                .open
                .as_ref()
                .is_some_and(|t| t.seen >= LARGE_TXN_CHANGES)
    }

    /// No transaction, streamed or not, is partly read.
    pub fn is_idle(&self) -> bool {
        self.open.is_none() && self.streams.is_empty() && self.stream_xid.is_none()
    }

    /// How many transactions went to disk so far (for tests and metrics).
    pub fn spilled_count(&self) -> u64 {
        self.spilled_count
    }

    /// Transactions ending at or below `lsn` are dropped from now on.
    pub fn skip_through(&mut self, lsn: Lsn) {
        self.skip_through = self.skip_through.max(lsn);
    }

    /// Forgets partly read transactions: after a reconnect the server sends them again from the start.
    pub fn reset(&mut self) {
        self.open = None;
        self.streams.clear();
        self.stream_xid = None;
    }

    /// Feeds one message; returns an event when a transaction completes.
    pub fn handle(&mut self, msg: PgOutput) -> Result<Option<CaptureEvent>, PgCaptureError> {
        if let (
            PgOutput::Insert { xid: None, .. }
            | PgOutput::Update { xid: None, .. }
            | PgOutput::Delete { xid: None, .. },
            Some(t),
        ) = (&msg, &mut self.open)
        {
            t.seen += 1;
        }
        match msg {
            PgOutput::Begin { final_lsn, xid, .. } => self.begin(final_lsn, xid),
            PgOutput::Origin { name, .. } => self.origin(name),
            PgOutput::Commit {
                commit_lsn,
                end_lsn,
                commit_time,
                ..
            } => self.commit(commit_lsn, end_lsn, commit_time),
            PgOutput::Relation {
                oid,
                namespace,
                name,
                columns,
                ..
            } => {
                self.remember_relation(oid, &namespace, &name, &columns);
                Ok(None)
            }
            // The catalog lookup in the stream resolves custom types; the name alone is not enough to
            // tell an enum from a domain.
            PgOutput::Type { .. } => Ok(None),
            // Logical decoding messages (pg_logical_emit_message) have no place in the model.
            PgOutput::Message { prefix, .. } => {
                tracing::debug!(prefix = %prefix, "ignoring logical decoding message");
                Ok(None)
            }
            PgOutput::Insert { xid, oid, new } => self.insert(xid, oid, &new),
            PgOutput::Update { xid, oid, old, new } => self.update(xid, oid, old, &new),
            PgOutput::Delete { xid, oid, old } => self.delete(xid, oid, &old),
            PgOutput::Truncate { xid, oids, .. } => self.truncate(xid, oids),
            PgOutput::StreamStart { xid, .. } => self.stream_start(xid),
            PgOutput::StreamStop => {
                self.stream_xid = None;
                Ok(None)
            }
            PgOutput::StreamAbort { xid, subxid } => {
                self.stream_abort(xid, subxid);
                Ok(None)
            }
            PgOutput::StreamCommit {
                xid,
                commit_lsn,
                end_lsn,
                commit_time,
                ..
            } => self.stream_commit(xid, commit_lsn, end_lsn, commit_time),
        }
    }

    fn begin(&mut self, final_lsn: u64, xid: u32) -> Result<Option<CaptureEvent>, PgCaptureError> {
        if self.open.is_some() {
            return Err(protocol("Begin inside an open transaction"));
        }
        self.open = Some(OpenTxn {
            xid,
            origin: None,
            dropped: false,
            // Commit records do not overlap: a commit starting below a delivered end is that
            // transaction or an earlier one.
            skip: Lsn(final_lsn) < self.skip_through,
            buf: SpillBuffer::new(&self.spill_dir, self.budget),
            seen: 0,
        });
        Ok(None)
    }

    /// The origin belongs to the stream in progress, else to the open transaction.
    /// tandem's own origin, with `drop_applied`, drops the changes that follow.
    fn origin(&mut self, name: String) -> Result<Option<CaptureEvent>, PgCaptureError> {
        let drop = self.drop_applied && name.starts_with(crate::loopguard::PG_ORIGIN_PREFIX);
        match (self.stream_xid, self.open.as_mut()) {
            (Some(xid), _) => {
                if let Some(s) = self.streams.get_mut(&xid) {
                    s.origin = Some(name);
                    s.dropped = drop;
                }
            }
            (None, Some(t)) => {
                t.origin = Some(name);
                t.dropped = drop;
            }
            (None, None) => return Err(protocol("Origin outside a transaction")),
        }
        Ok(None)
    }

    fn commit(
        &mut self,
        commit_lsn: u64,
        end_lsn: u64,
        commit_time: i64,
    ) -> Result<Option<CaptureEvent>, PgCaptureError> {
        let txn = self
            .open
            .take()
            .ok_or_else(|| protocol("Commit without Begin"))?;
        if txn.skip || Lsn(end_lsn) <= self.skip_through {
            return Ok(None);
        }
        let changes = txn.buf.finish().map_err(PgCaptureError::Spill)?;
        self.finish(
            txn.xid,
            ended(commit_lsn, end_lsn),
            commit_time,
            txn.origin,
            changes,
            txn.dropped,
        )
    }

    fn remember_relation(&mut self, oid: u32, namespace: &str, name: &str, columns: &[Column]) {
        let schema = if namespace.is_empty() {
            "pg_catalog"
        } else {
            namespace
        };
        self.relations.insert(
            oid,
            Relation {
                table: TableRef::new(schema, name),
                columns: columns.iter().map(rel_column).collect(),
            },
        );
    }

    fn insert(
        &mut self,
        xid: Option<u32>,
        oid: u32,
        new: &[TupleValue],
    ) -> Result<Option<CaptureEvent>, PgCaptureError> {
        if self.dropping() {
            return Ok(None);
        }
        let rel = self.relation(oid)?;
        let after = self.image(rel, ImageKind::Full, new)?;
        let change = change(rel, Op::Insert, None, Some(after));
        self.push(xid, change)
    }

    fn update(
        &mut self,
        xid: Option<u32>,
        oid: u32,
        old: Option<OldTuple>,
        new: &[TupleValue],
    ) -> Result<Option<CaptureEvent>, PgCaptureError> {
        if self.dropping() {
            return Ok(None);
        }
        let rel = self.relation(oid)?;
        let before = old.map(|o| self.old_image(rel, &o)).transpose()?;
        let after = self.image(rel, ImageKind::Full, new)?;
        let change = change(rel, Op::Update, before, Some(after));
        self.push(xid, change)
    }

    fn delete(
        &mut self,
        xid: Option<u32>,
        oid: u32,
        old: &OldTuple,
    ) -> Result<Option<CaptureEvent>, PgCaptureError> {
        if self.dropping() {
            return Ok(None);
        }
        let rel = self.relation(oid)?;
        let before = self.old_image(rel, old)?;
        let change = change(rel, Op::Delete, Some(before), None);
        self.push(xid, change)
    }

    fn truncate(
        &mut self,
        xid: Option<u32>,
        oids: Vec<u32>,
    ) -> Result<Option<CaptureEvent>, PgCaptureError> {
        if self.dropping() {
            return Ok(None);
        }
        for oid in oids {
            let rel = self.relation(oid)?;
            let change = change(rel, Op::Truncate, None, None);
            self.push(xid, change)?;
        }
        Ok(None)
    }

    fn stream_start(&mut self, xid: u32) -> Result<Option<CaptureEvent>, PgCaptureError> {
        if self.stream_xid.is_some() || self.open.is_some() {
            return Err(protocol("Stream Start inside a transaction or stream"));
        }
        self.stream_xid = Some(xid);
        let (dir, budget) = (&self.spill_dir, self.budget);
        self.streams.entry(xid).or_insert_with(|| StreamedTxn {
            origin: None,
            dropped: false,
            buf: SpillBuffer::new(dir, budget),
            runs: Vec::new(),
            aborted: HashSet::new(),
        });
        Ok(None)
    }

    /// The whole streamed transaction when `subxid` is its own xid, else that subtransaction only.
    fn stream_abort(&mut self, xid: u32, subxid: u32) {
        if xid == subxid {
            self.streams.remove(&xid);
        } else if let Some(s) = self.streams.get_mut(&xid) {
            s.aborted.insert(subxid);
        }
    }

    fn stream_commit(
        &mut self,
        xid: u32,
        commit_lsn: u64,
        end_lsn: u64,
        commit_time: i64,
    ) -> Result<Option<CaptureEvent>, PgCaptureError> {
        // A transaction whose changes all fit in the server's memory never streamed a segment,
        // and a commit may still arrive for one whose segments we dropped on reconnect: both mean
        // nothing buffered, which is an empty transaction.
        if Lsn(end_lsn) <= self.skip_through {
            self.streams.remove(&xid);
            return Ok(None);
        }
        let Some(s) = self.streams.remove(&xid) else {
            return self.finish(
                xid,
                ended(commit_lsn, end_lsn),
                commit_time,
                None,
                ChangeSet::default(),
                false,
            );
        };
        let (origin, dropped) = (s.origin.clone(), s.dropped);
        let changes = self.streamed_changes(s)?;
        self.finish(
            xid,
            ended(commit_lsn, end_lsn),
            commit_time,
            origin,
            changes,
            dropped,
        )
    }

    fn relation(&self, oid: u32) -> Result<&Relation, PgCaptureError> {
        self.relations.get(&oid).ok_or_else(|| {
            protocol(&format!(
                "change for relation oid {oid} before its Relation message"
            ))
        })
    }

    fn image(
        &self,
        rel: &Relation,
        kind: ImageKind,
        tuple: &[TupleValue],
    ) -> Result<RowImage, PgCaptureError> {
        if tuple.len() != rel.columns.len() {
            return Err(protocol(&format!(
                "tuple for {} has {} columns, its Relation message {}",
                rel.table,
                tuple.len(),
                rel.columns.len()
            )));
        }
        let mut fields = Vec::with_capacity(tuple.len());
        for (col, v) in rel.columns.iter().zip(tuple) {
            if kind == ImageKind::Key && !col.key {
                continue;
            }
            fields.push(Field {
                name: col.name.clone(),
                value: self.value(rel, col, v)?,
            });
        }
        Ok(RowImage::new(kind, fields))
    }

    fn old_image(&self, rel: &Relation, old: &OldTuple) -> Result<RowImage, PgCaptureError> {
        match old {
            OldTuple::Key(t) => self.image(rel, ImageKind::Key, t),
            OldTuple::Full(t) => self.image(rel, ImageKind::Full, t),
        }
    }

    fn value(
        &self,
        rel: &Relation,
        col: &RelColumn,
        v: &TupleValue,
    ) -> Result<Value, PgCaptureError> {
        let bad = |source| PgCaptureError::Value {
            table: rel.table.to_string(),
            column: col.name.to_string(),
            source,
        };
        match v {
            TupleValue::Null => Ok(Value::Null),
            // An unchanged TOAST value is not NULL: the applier must keep what the target has.
            TupleValue::Unchanged => Ok(Value::Unchanged),
            TupleValue::Text(b) => {
                let text = std::str::from_utf8(b).map_err(|_| {
                    bad(super::types::TypeError {
                        type_name: self.types.name(col.type_oid),
                    })
                })?;
                self.types.decode_text(col.type_oid, text).map_err(bad)
            }
            // tandem never asks for binary; if a server sends it anyway, keep the bytes with the type.
            TupleValue::Binary(b) => Ok(Value::Other {
                type_name: self.types.name(col.type_oid),
                text: Value::Bytes(b.to_vec()).to_string(),
            }),
        }
    }

    fn push(
        &mut self,
        xid: Option<u32>,
        change: Change,
    ) -> Result<Option<CaptureEvent>, PgCaptureError> {
        if let Some(top) = self.stream_xid {
            let s = self
                .streams
                .get_mut(&top)
                .ok_or_else(|| protocol("change in a stream that was not started"))?;
            let sub = xid.unwrap_or(top);
            match s.runs.last_mut() {
                Some((x, n)) if *x == sub => *n += 1,
                _ => s.runs.push((sub, 1)),
            }
            s.buf.push(change).map_err(PgCaptureError::Spill)?;
            return Ok(None);
        }
        let txn = self
            .open
            .as_mut()
            .ok_or_else(|| protocol("change outside a transaction"))?;
        if !txn.skip {
            txn.buf.push(change).map_err(PgCaptureError::Spill)?;
        }
        Ok(None)
    }

    /// The changes of a streamed transaction without those of its rolled-back subtransactions.
    fn streamed_changes(&mut self, s: StreamedTxn) -> Result<ChangeSet, PgCaptureError> {
        let all = s.buf.finish().map_err(PgCaptureError::Spill)?;
        if s.aborted.is_empty() {
            return Ok(all);
        }
        let mut keep = SpillBuffer::new(&self.spill_dir, self.budget);
        let mut it = all.iter();
        for (sub, n) in s.runs {
            for _ in 0..n {
                let c = it
                    .next()
                    .ok_or_else(|| protocol("spilled stream shorter than recorded"))?
                    .map_err(PgCaptureError::Spill)?;
                if !s.aborted.contains(&sub) {
                    keep.push(c).map_err(PgCaptureError::Spill)?;
                }
            }
        }
        keep.finish().map_err(PgCaptureError::Spill)
    }

    fn finish(
        &mut self,
        xid: u32,
        ended: PgPosition,
        commit_time: i64,
        origin: Option<String>,
        changes: ChangeSet,
        dropped: bool,
    ) -> Result<Option<CaptureEvent>, PgCaptureError> {
        self.skip_through(ended.lsn);
        let position = Position::Postgres(ended);
        // A transaction that touched no published table (older servers still send its Begin/Commit)
        // tells the consumer only that the stream got this far. One whose changes were dropped as
        // tandem's own still comes out whole, for the loop guard to count as an echo.
        if changes.is_empty() && !dropped {
            return Ok(Some(CaptureEvent::Heartbeat(position)));
        }
        if matches!(changes, ChangeSet::Spilled(_)) {
            self.spilled_count += 1;
        }
        Ok(Some(CaptureEvent::Transaction(Transaction {
            origin: self.node.clone(),
            position,
            commit_time: commit_time.saturating_add(PG_EPOCH_OFFSET_MICROS),
            xid: Some(u64::from(xid)),
            marks: LoopMarks {
                pg_origin: origin,
                ..LoopMarks::default()
            },
            changes,
        })))
    }
}

/// A transaction's position: its commit record and the end of it.
fn ended(commit_lsn: u64, end_lsn: u64) -> PgPosition {
    PgPosition {
        commit_lsn: Lsn(commit_lsn),
        lsn: Lsn(end_lsn),
    }
}

fn rel_column(c: &Column) -> RelColumn {
    RelColumn {
        name: c.name.as_str().into(),
        type_oid: c.type_oid,
        key: c.key,
    }
}

fn change(rel: &Relation, op: Op, before: Option<RowImage>, after: Option<RowImage>) -> Change {
    Change {
        table: rel.table.clone(),
        op,
        before,
        after,
    }
}

fn protocol(what: &str) -> PgCaptureError {
    PgCaptureError::Protocol(what.to_owned())
}

#[cfg(test)]
#[path = "assemble_tests.rs"]
mod tests;
