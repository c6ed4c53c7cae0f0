//! What the engine-neutral apply logic asks of a target database. One implementation per engine
//! (`postgres`, `mysql`); every method runs on the link's one session, inside the transaction the
//! driver opened, unless it says otherwise.

use std::sync::Arc;

use super::book::{
    BookSession, Checkpoints, CopyBook, DeadLetters, Holds, ReviewQueue, Tombstones, VerifyResults,
};
use super::error::ApplyError;
use crate::conflict::audit::ConflictState;
use crate::model::{Field, TableRef, Value};

/// How the applier treats a target column's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColKind {
    Bool,
    Int,
    Float,
    Numeric,
    Text,
    Bytes,
    Json,
    Uuid,
    Date,
    Time,
    /// Wall-clock date-time (PostgreSQL `timestamp`, MySQL `DATETIME`).
    Timestamp,
    /// An instant (PostgreSQL `timestamptz`, MySQL `TIMESTAMP`).
    TimestampTz,
    Bit,
    /// A spatial column (MySQL/MariaDB GEOMETRY, POINT, …; PostGIS `geometry`).
    Geometry,
    Other,
}

/// A live target column.
#[derive(Debug, Clone)]
pub struct ColumnInfo {
    pub name: String,
    /// The type as the server prints it (`character varying(5)`, `varchar(5)`).
    pub type_name: String,
    /// The type without modifiers (`character varying`), what values are cast to before assignment
    /// (an explicit cast to `varchar(5)` would truncate instead of failing).
    pub base_type: String,
    pub kind: ColKind,
    /// PostgreSQL `GENERATED ALWAYS AS IDENTITY`: an insert that gives it a value must say
    /// `OVERRIDING SYSTEM VALUE`.
    pub identity_always: bool,
    /// PostgreSQL array columns: the element type's delimiter in array literals (`,`, but `;` for
    /// `box` and `:` for PostGIS `geometry`).
    pub array_delim: char,
}

/// A live target table, read from the catalog once per link.
#[derive(Debug, Clone)]
pub struct TableInfo {
    pub table: TableRef,
    pub columns: Vec<ColumnInfo>,
}

impl TableInfo {
    pub fn column(&self, name: &str) -> Option<&ColumnInfo> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The names a server may quote in a message about this table: schema, table, columns.
    pub fn names(&self) -> Vec<&str> {
        let mut names = vec![&*self.table.schema, &*self.table.name];
        names.extend(self.columns.iter().map(|c| c.name.as_str()));
        names
    }
}

/// A row write: the key that finds the row, and the columns to set (for an insert, every column).
#[derive(Debug, Clone)]
pub struct Write {
    pub key: Vec<Field>,
    pub set: Vec<Field>,
}

/// One row of a version-checked batch: the write (for a delete, the key alone) and the version the
/// target row must hold for the row to apply (`None`: no check).
#[derive(Debug, Clone)]
pub struct Checked {
    pub write: Write,
    pub check: Option<Value>,
}

/// What to compare the locked current row with.
#[derive(Debug, Clone, Default)]
pub struct Probe {
    pub key: Vec<Field>,
    /// The incoming before-image's values, for "changed here since the base".
    pub before: Vec<Field>,
    /// The incoming after-image's values, for "differs from the incoming row".
    pub after: Vec<Field>,
    /// The version column.
    pub version: String,
    /// The origin column, if the table has one.
    pub origin: Option<String>,
}

/// The locked current row.
#[derive(Debug, Clone)]
pub struct Current {
    /// The version as an orderable number, where the column's type allows.
    pub version_key: Option<i128>,
    pub origin: Option<String>,
    /// Per `Probe::before` field: equal to the current value.
    pub same_as_before: Vec<bool>,
    /// Per `Probe::after` field: equal to the current value.
    pub same_as_after: Vec<bool>,
    /// The whole row as `{column: text}` for the audit log.
    pub image: serde_json::Value,
}

/// An open (not resolved) review-queue entry for a key.
#[derive(Debug, Clone)]
pub struct OpenEntry {
    pub id: i64,
    pub state: ConflictState,
    pub source_node: String,
    pub payload: Option<String>,
}

/// What a node's deletes of a key left behind: the latest stamp (the deleted row's version + 1) and
/// the node that deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tombstone {
    pub version: i128,
    /// Empty for tombstones written before bookkeeping version 5.
    pub node: String,
    /// Read for a dead-letter replay: the tombstone was last written before the dead letter was
    /// recorded (this node's clock for both), so its delete came before the dead-lettered
    /// transaction in the source's order, when the node is the source's.
    pub before_dead_letter: bool,
}

/// A dead-letter row.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeadLetter {
    pub id: i64,
    pub link: String,
    pub source_node: String,
    pub source_position: String,
    /// Source commit time, microseconds since the epoch.
    pub commit_time: Option<i64>,
    /// The transaction's changes as JSON (model `Change`s, source names).
    pub payload: String,
    pub error: String,
    pub attempts: i32,
    pub state: String,
}

/// The engine operations: the session's transaction and the row writes, and through the supertraits
/// the bookkeeping (`book.rs`, written once over the engine's [`BookSession`]). Errors are already
/// classified `ApplyError`s.
#[allow(async_fn_in_trait)]
pub(crate) trait Target:
    BookSession
    + Checkpoints
    + Tombstones
    + ReviewQueue
    + DeadLetters
    + CopyBook
    + VerifyResults
    + Holds
{
    /// Opens the target transaction every later call runs in, until `commit` or `rollback` (the
    /// driver's `Link::in_transaction` pairs them, and `Link::try_group` with
    /// `Checkpoints::commit_with_checkpoint`). One at a time per session.
    async fn begin(&mut self) -> Result<(), ApplyError>;
    /// Commits: the changes and the checkpoint written with them become durable together. An error
    /// here leaves the outcome unknown; the caller reconnects and reads the checkpoint back.
    async fn commit(&mut self) -> Result<(), ApplyError>;
    /// Rolls back everything since `begin`; nothing of the failed attempt stays.
    async fn rollback(&mut self) -> Result<(), ApplyError>;
    /// Before the first tombstone this transaction writes for `table` (whose key columns are `key`):
    /// where a local insert bumps the tombstones of its key by a trigger that exists only once the
    /// table holds one of another node's delete, that the trigger is there. When it is not,
    /// `ApplyError::ReviveDue`: the rollback makes it, and the transaction is tried again
    /// ([`Target::revive_made`] says whether it did).
    async fn check_revive(&mut self, _table: &TableRef, _key: &[String]) -> Result<(), ApplyError> {
        Ok(())
    }
    /// Whether the last rollback made a revive trigger (asked once: the answer is reset). A
    /// transaction that stopped for that trigger is then tried again at once.
    fn revive_made(&mut self) -> bool {
        false
    }
    /// Bytes of captured changes one batch gathers at most on this target (see `batch.rs`):
    /// [`MAX_RUN_BYTES`](super::batch::MAX_RUN_BYTES), or less where the server refuses larger
    /// statements.
    fn batch_bytes(&self) -> usize {
        super::batch::MAX_RUN_BYTES
    }
    /// Marks the session's writes as tandem's (`true`) or as local writes that replicate (`false`).
    async fn set_applying(&mut self, on: bool) -> Result<(), ApplyError>;
    /// Keeps the session's writes as tandem's for the triggers (stamps left as written) but drops the
    /// engine's replication mark, so that they replicate; `set_applying(true)` restores the mark.
    async fn set_replicating(&mut self) -> Result<(), ApplyError>;
    /// The live columns of `table`, read from the catalog once per session and cached; a table that
    /// does not exist is a definite error naming it.
    async fn table(&mut self, table: &TableRef) -> Result<Arc<TableInfo>, ApplyError>;
    /// Drops the cached columns of `table` (or of every table), so that the next [`Target::table`]
    /// reads the catalog again: its schema changed, or may have.
    fn forget_table(&mut self, table: Option<&TableRef>);
    /// Inserts unless the key exists; `false` when it does (nothing written: a duplicate means the
    /// row is there already, and the caller's conflict path decides).
    async fn insert(&mut self, t: &TableInfo, w: &Write) -> Result<bool, ApplyError>;
    /// For each key, whether the table has a row with it; the rows found are locked.
    async fn existing(
        &mut self,
        t: &TableInfo,
        keys: &[Vec<Field>],
    ) -> Result<Vec<bool>, ApplyError>;
    /// Inserts the rows (same columns each, distinct keys) whose key the table does not have, and
    /// says for each row whether it was inserted. A row not inserted found its key, or another
    /// unique key, taken. `None`, with nothing inserted: a concurrent insert got in the way; the
    /// caller goes row by row. `ApplyError::Raced`: a key was taken and the target transaction is
    /// lost (PostgreSQL's plain insert); applied again, the engine inserts the checked way.
    async fn insert_new(
        &mut self,
        t: &TableInfo,
        rows: &[Write],
    ) -> Result<Option<Vec<bool>>, ApplyError>;
    /// Updates the row with `w.key` (and, with `check`, only if its version equals it). Rows changed.
    async fn update(
        &mut self,
        t: &TableInfo,
        w: &Write,
        version: &str,
        check: Option<&Value>,
    ) -> Result<u64, ApplyError>;
    /// Deletes the row with `key` (and, with `check`, only if its version equals it). Rows deleted:
    /// 0 when the row is gone or its version moved on (the caller's conflict path decides).
    async fn delete(
        &mut self,
        t: &TableInfo,
        key: &[Field],
        version: &str,
        check: Option<&Value>,
    ) -> Result<u64, ApplyError>;
    /// Empties the table inside the open transaction, as tandem's write (no tombstones, no stamps).
    /// PostgreSQL `TRUNCATE` (transactional there); MySQL/MariaDB `DELETE FROM`, since its
    /// `TRUNCATE` commits the open transaction implicitly. Returns the rows removed where known.
    async fn truncate(&mut self, t: &TableInfo) -> Result<Option<u64>, ApplyError>;
    /// Updates every row as [`Target::update`] would, one after the other, in one atomic step:
    /// the rows' keys are distinct and none is changed by the write, every row sets the same
    /// columns, and either every row or none has a check. Per row, whether it applied (its row
    /// exists and its version matched). `None`, with nothing changed, when the rows could not be
    /// applied together (a definite error): the caller applies them one by one, which names the
    /// row at fault.
    async fn update_many(
        &mut self,
        t: &TableInfo,
        rows: &[Checked],
        version: &str,
    ) -> Result<Option<Vec<bool>>, ApplyError>;
    /// Deletes every row as [`Target::delete`] would, under the same terms as
    /// [`Target::update_many`] (the writes carry keys only).
    async fn delete_many(
        &mut self,
        t: &TableInfo,
        rows: &[Checked],
        version: &str,
    ) -> Result<Option<Vec<bool>>, ApplyError>;
    /// Reads and locks the row with `probe.key`.
    async fn current(
        &mut self,
        t: &TableInfo,
        probe: &Probe,
    ) -> Result<Option<Current>, ApplyError>;
}
