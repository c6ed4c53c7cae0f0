//! Row images, changes and transactions.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::spill::SpilledChanges;
use super::{Position, Value};

/// A node's id, as named in the configuration file (`crm`, `helpdesk`). It is also the origin tag written
/// on rows.
pub type NodeId = Arc<str>;

/// A physical table: PostgreSQL `schema.table`, or MySQL/MariaDB `database.table`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TableRef {
    pub schema: Arc<str>,
    pub name: Arc<str>,
}

impl TableRef {
    pub fn new(schema: &str, name: &str) -> Self {
        TableRef {
            schema: schema.into(),
            name: name.into(),
        }
    }
}

impl std::fmt::Display for TableRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Insert,
    Update,
    Delete,
    Truncate,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Insert => "insert",
            Op::Update => "update",
            Op::Delete => "delete",
            Op::Truncate => "truncate",
        }
    }
}

/// How much of a row an image carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageKind {
    /// Every column of the row.
    Full,
    /// Only the key (replica identity) columns.
    Key,
    /// Some columns; the others are unknown (not the same as NULL).
    Partial,
}

/// One column of a row image. Names are shared `Arc<str>`s, so a decoder hands out the same allocation
/// for every row of a table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    #[serde(deserialize_with = "shared_name")]
    pub name: Arc<str>,
    pub value: Value,
}

/// Deserializes a field name into the `Arc<str>` this thread made for the same name before, so
/// that the rows of a spilled transaction read back share their names as the decoder's did
/// (one allocation per name, not one per field of every row).
fn shared_name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Arc<str>, D::Error> {
    struct Name;
    impl serde::de::Visitor<'_> for Name {
        type Value = Arc<str>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a column name")
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Arc<str>, E> {
            Ok(intern(s))
        }
    }
    d.deserialize_str(Name)
}

/// Names kept per thread at most; past it the set starts over (names compare by content, so a
/// name made before and one made after are equal, only not shared).
const MAX_SHARED_NAMES: usize = 4096;

thread_local! {
    static NAMES: std::cell::RefCell<std::collections::HashSet<Arc<str>>> =
        std::cell::RefCell::new(std::collections::HashSet::new());
}

fn intern(s: &str) -> Arc<str> {
    NAMES.with(|names| {
        let mut names = names.borrow_mut();
        if let Some(name) = names.get(s) {
            return name.clone();
        }
        let name: Arc<str> = Arc::from(s);
        if names.len() >= MAX_SHARED_NAMES {
            names.clear();
        }
        names.insert(name.clone());
        name
    })
}

/// The columns of a row as they were before or after a change, in the table's column order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowImage {
    pub kind: ImageKind,
    pub fields: Vec<Field>,
}

impl RowImage {
    pub fn new(kind: ImageKind, fields: Vec<Field>) -> Self {
        RowImage { kind, fields }
    }

    /// The value of column `name`, if the image carries it.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields
            .iter()
            .find(|f| &*f.name == name)
            .map(|f| &f.value)
    }

    /// Approximate heap bytes held, for memory budgets.
    pub fn approx_bytes(&self) -> usize {
        self.fields
            .iter()
            .map(|f| std::mem::size_of::<Field>() + value_bytes(&f.value))
            .sum()
    }
}

fn value_bytes(v: &Value) -> usize {
    match v {
        Value::Text(s) | Value::Json(s) | Value::Enum(s) => s.len(),
        Value::Decimal(d) => d.as_str().len(),
        Value::Bytes(b) | Value::Bits { bytes: b, .. } | Value::Geometry { wkb: b, .. } => b.len(),
        Value::Set(items) => items.iter().map(String::len).sum(),
        Value::Array(items) => items
            .iter()
            .map(|i| std::mem::size_of::<Value>() + value_bytes(i))
            .sum(),
        Value::Other { type_name, text } => type_name.len() + text.len(),
        _ => 0,
    }
}

/// One row change. Which images are present depends on the operation:
///
/// | op       | before                                   | after                           |
/// |----------|------------------------------------------|---------------------------------|
/// | insert   | `None`                                   | full                            |
/// | update   | full or key (or `None` if the source had neither) | full (may hold `Unchanged`) |
/// | delete   | full or key                              | `None`                          |
/// | truncate | `None`                                   | `None`                          |
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub table: TableRef,
    pub op: Op,
    pub before: Option<RowImage>,
    pub after: Option<RowImage>,
}

/// What a captured change is to tandem: a business row, or one of tandem's own bookkeeping writes
/// (which travel in the same transactions as the rows they account for). Classified in one place,
/// here, for the loop guard, the applier and the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// A row of a business table.
    Data,
    /// A write of `<schema>.checkpoint`: the applier's marker (its `source_node` names the origin).
    Checkpoint,
    /// A write of `<schema>.tombstone`: a delete remembered, or a revived key's tombstones bumped.
    Tombstone,
    /// A write of `<schema>.heartbeat`: progress on a quiet source, never data.
    Heartbeat,
    /// Any other table of the bookkeeping schema (conflicts, dead letters, copy progress).
    Bookkeeping,
}

impl ChangeKind {
    /// What a change of `table` is, with `schema` the bookkeeping schema.
    pub fn of_table(table: &TableRef, schema: &str) -> ChangeKind {
        if &*table.schema != schema {
            return ChangeKind::Data;
        }
        match &*table.name {
            "checkpoint" => ChangeKind::Checkpoint,
            "tombstone" => ChangeKind::Tombstone,
            "heartbeat" => ChangeKind::Heartbeat,
            _ => ChangeKind::Bookkeeping,
        }
    }
}

impl Change {
    /// What this change is, with `schema` the bookkeeping schema (`[tandem] schema`).
    pub fn kind(&self, schema: &str) -> ChangeKind {
        ChangeKind::of_table(&self.table, schema)
    }

    pub fn approx_bytes(&self) -> usize {
        std::mem::size_of::<Change>()
            + self.before.as_ref().map_or(0, RowImage::approx_bytes)
            + self.after.as_ref().map_or(0, RowImage::approx_bytes)
    }
}

/// What the source server recorded about who wrote a transaction; the loop guard reads these.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoopMarks {
    /// PostgreSQL: the replication origin name of the session that wrote it (pgoutput Origin message).
    pub pg_origin: Option<String>,
    /// MySQL/MariaDB: the event header's `LOG_EVENT_SKIP_REPLICATION_F` (0x8000) flag was set.
    pub skip_replication: bool,
    /// MySQL/MariaDB: the `server_id` in the event headers.
    pub server_id: Option<u32>,
}

/// The changes of one transaction, held in memory or, past the memory budget, in a spill file.
#[derive(Debug)]
pub enum ChangeSet {
    Memory(Vec<Change>),
    Spilled(SpilledChanges),
}

impl Default for ChangeSet {
    fn default() -> Self {
        ChangeSet::Memory(Vec::new())
    }
}

impl ChangeSet {
    pub fn len(&self) -> usize {
        match self {
            ChangeSet::Memory(v) => v.len(),
            ChangeSet::Spilled(s) => s.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads the changes in order. A spilled set reads them back from its file one at a time.
    pub fn iter(&self) -> Box<dyn Iterator<Item = std::io::Result<Change>> + Send + '_> {
        match self {
            ChangeSet::Memory(v) => Box::new(v.iter().cloned().map(Ok)),
            ChangeSet::Spilled(s) => Box::new(s.iter()),
        }
    }

    /// Approximate heap bytes held: the changes in memory; a spilled set holds only its file handle.
    pub fn approx_bytes(&self) -> usize {
        match self {
            ChangeSet::Memory(v) => v.iter().map(Change::approx_bytes).sum(),
            ChangeSet::Spilled(_) => 0,
        }
    }

    /// Whether a change may be to a table `wanted` accepts: exactly for changes in memory; for a
    /// spilled set, from the tables it remembers, without reading its file (`true` when it does not
    /// know).
    pub fn may_touch(&self, wanted: impl Fn(&TableRef) -> bool) -> bool {
        match self {
            ChangeSet::Memory(v) => v.iter().any(|c| wanted(&c.table)),
            ChangeSet::Spilled(s) => s.tables().is_none_or(|t| t.iter().any(wanted)),
        }
    }

    /// All changes in memory (for tests and small transactions). A spilled set is read back whole.
    pub fn to_vec(&self) -> std::io::Result<Vec<Change>> {
        self.iter().collect()
    }
}

/// One committed source transaction, engine-neutral.
#[derive(Debug)]
pub struct Transaction {
    /// The node whose log the transaction was read from.
    pub origin: NodeId,
    /// The position of the transaction's commit in the source log; acknowledging it means everything up
    /// to and including this transaction is durably applied.
    pub position: Position,
    /// Commit time at the source, microseconds since the Unix epoch (UTC).
    pub commit_time: i64,
    /// The source's transaction id, where it has one (PostgreSQL xid).
    pub xid: Option<u64>,
    pub marks: LoopMarks,
    pub changes: ChangeSet,
}

#[cfg(test)]
impl RowImage {
    /// A full image of `fields`, for tests.
    pub(crate) fn of(fields: &[(&str, Value)]) -> RowImage {
        let fields = fields
            .iter()
            .map(|(name, value)| Field {
                name: (*name).into(),
                value: value.clone(),
            })
            .collect();
        RowImage::new(ImageKind::Full, fields)
    }
}

#[cfg(test)]
impl Transaction {
    /// A transaction of `origin` at PostgreSQL position 0/1 holding `changes`, for tests.
    pub(crate) fn at_pg(origin: &str, changes: ChangeSet) -> Transaction {
        Transaction {
            origin: origin.into(),
            position: Position::Postgres(super::PgPosition {
                commit_lsn: super::Lsn(1),
                lsn: super::Lsn(1),
            }),
            commit_time: 0,
            xid: None,
            marks: LoopMarks::default(),
            changes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names read back share one allocation per thread; values and names round-trip unchanged.
    #[test]
    fn fields_read_back_share_their_names() {
        let field = Field {
            name: "customer_name".into(),
            value: Value::Text("x".into()),
        };
        let bytes = postcard::to_allocvec(&field).expect("encode");
        let a: Field = postcard::from_bytes(&bytes).expect("decode");
        let b: Field = postcard::from_bytes(&bytes).expect("decode");
        assert_eq!(a, field);
        assert!(Arc::ptr_eq(&a.name, &b.name), "one allocation for the name");
        // A name a format hands over unescaped into a buffer of its own (JSON with an escape).
        let json = serde_json::to_string(&field)
            .expect("json")
            .replace("customer_name", "customer\\u005fname");
        let c: Field = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json}: {e}"));
        assert_eq!(c, field);
    }
}
