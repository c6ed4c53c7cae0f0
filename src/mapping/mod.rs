//! Mapping: a change to a physical table on one node becomes the same change to the physical table of
//! another node, through the business table the file declares.
//!
//! ```text
//!  source Change (crm: public.customers, columns id, status='Approved', ssn)
//!     │ rename columns to business names, decode value maps, drop excluded and unmapped columns
//!     ▼
//!  business row (customer: id, status='Approved')
//!     │ rename to the target's columns, encode value maps
//!     ▼
//!  target Change (helpdesk: desk.clients, columns client_id, status_code=1)
//! ```
//!
//! The applier of a link takes each source transaction through [`Mapper::map_tx`] first: a stage of
//! its own that yields, lazily and in order, a [`Mapped`] per synced change (the business table's
//! plan, the source change as captured, the change in the target's terms); then it applies those.
//!
//! Columns the file does not list map by name; a column the target does not have is dropped by the
//! applier, which knows the live schema (`tandem check` lists such columns). The bookkeeping columns
//! (origin marker, managed version) are never mapped: each node has its own.
//!
//! Error handling: a value with no entry in a value map is a [`MappingError`] naming the table, column
//! and node; the applier treats it as a definite error (dead letter or halt, as configured).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

pub mod check;
pub mod old_version;
pub mod refusals;
pub mod sample;
pub mod transform;
pub mod types;

use crate::config::{
    Config, ConflictRule, DdlPolicy, DeletePolicy, OnError, Scalar, Table, TruncatePolicy,
};
use crate::model::{Change, Field, ImageKind, Op, RowImage, TableRef, Transaction, Value};
use old_version::{Completed, OldVersions};
use transform::Transform;

/// Everything an applier needs to know about one business table on its target node, in the target's
/// physical names.
#[derive(Debug, Clone)]
pub struct TablePlan {
    /// Business name (for audit rows and messages).
    pub business: String,
    pub target: TableRef,
    /// Physical key columns on the target, in key order.
    pub key: Vec<String>,
    /// Physical version column on the target (the table's own, or the managed one).
    pub version: String,
    /// True when `version` is tandem's managed column (advanced by tandem's trigger), false when it is
    /// the application's own (`lock_version`, `updated_at`).
    pub managed_version: bool,
    /// Physical origin marker column on the target.
    pub origin_column: String,
    pub conflict: ConflictRule,
    /// Node that wins under `prefer` (also the table owner, when one is set).
    pub prefer: Option<String>,
    /// System of record for the whole table.
    pub owner: Option<String>,
    pub merge_fallback: ConflictRule,
    /// Per physical target column: its own rule, preferred node and owner, where the file sets them.
    pub columns: BTreeMap<String, ColumnRule>,
    /// Delete policy; a soft-delete column is given in the target's physical name.
    pub deletes: DeletePolicy,
    pub on_error: OnError,
    /// What a captured truncate of the table does here.
    pub truncate: TruncatePolicy,
    /// Whether the source's schema changes of the table are made here too.
    pub ddl: DdlPolicy,
}

/// A column's own conflict settings.
#[derive(Debug, Clone, Default)]
pub struct ColumnRule {
    pub conflict: Option<ConflictRule>,
    pub prefer: Option<String>,
    pub owner: Option<String>,
}

/// A source change through the mapping of one link.
#[derive(Debug, Clone)]
pub struct Mapped {
    /// The business table's plan on this link.
    pub plan: Arc<TablePlan>,
    /// The change as captured: conflict records, dead letters and the review queue keep it.
    pub source: Change,
    /// The change in the target's tables, columns and values, or why it cannot be.
    pub target: Result<Change, MappingError>,
}

/// A value that cannot be mapped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("table {table}, column {column}, node {node}: {reason}")]
pub struct MappingError {
    pub table: String,
    pub column: String,
    pub node: String,
    /// What went wrong and what to do, without the value itself.
    pub reason: String,
}

fn not_in_map(table: &str, column: &str, node: &str) -> MappingError {
    MappingError {
        table: table.to_string(),
        column: column.to_string(),
        node: node.to_string(),
        reason: format!(
            "the value is not in the value map; add it to tables.columns.values.{node} in the file"
        ),
    }
}

/// Business value -> stored value, as the file lists them for one node.
type ValueMap = Vec<(String, Scalar)>;

/// Maps changes from one source node to one target node (one link).
#[derive(Debug)]
pub struct Mapper {
    source: String,
    target: String,
    /// The bookkeeping schema, whose tombstone writes carry the old versions of key-only deletes.
    schema: String,
    /// tandem's managed version column.
    version_column: String,
    by_source_table: HashMap<TableRef, usize>,
    tables: Vec<LinkTable>,
}

#[derive(Debug)]
struct LinkTable {
    plan: Arc<TablePlan>,
    /// Source physical column -> business column, for columns that are synced.
    source_to_business: HashMap<String, String>,
    /// Business column -> target physical column (shared name allocation).
    business_to_target: HashMap<String, Arc<str>>,
    /// Value maps: business column -> (source map, target map).
    values: HashMap<String, (Option<ValueMap>, Option<ValueMap>)>,
    /// One-way transforms on the way to the target, by business column.
    transforms: HashMap<String, Vec<Transform>>,
    /// The text standing for NULL: by business column, (on the source, on the target).
    null_as: HashMap<String, (Option<String>, Option<String>)>,
    excluded_source: Vec<String>,
    /// The old version beside a managed version column (a PostgreSQL table logged without its old
    /// rows): tandem's, never mapped.
    prev_version: String,
    /// Why the table's rules read the old row (see [`crate::config::Table::old_row_needed`]).
    old_row_needed: Option<&'static str>,
    /// An update or delete arrived without it, and the log said so once.
    warned_old_row: std::sync::atomic::AtomicBool,
    /// A key-only delete arrived without its tombstone, and the log said so once.
    warned_unpaired: std::sync::atomic::AtomicBool,
    /// Row filter in source terms: physical column, allowed business values, the column's source map.
    filter: Vec<(String, Vec<Scalar>, Option<ValueMap>)>,
}

impl Mapper {
    pub fn new(config: &Config, source: &str, target: &str) -> Mapper {
        let mut by_source_table = HashMap::new();
        let mut tables = Vec::new();
        for t in &config.tables {
            let (Some(src), Some(_)) = (t.physical.get(source), t.physical.get(target)) else {
                continue;
            };
            by_source_table.insert(src.clone(), tables.len());
            tables.push(LinkTable::new(config, t, source, target));
        }
        Mapper {
            source: source.to_string(),
            target: target.to_string(),
            schema: config.settings.schema.clone(),
            version_column: config.settings.version_column.clone(),
            by_source_table,
            tables,
        }
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn target(&self) -> &str {
        &self.target
    }

    /// The source tables this link reads.
    pub fn source_tables(&self) -> impl Iterator<Item = &TableRef> {
        self.by_source_table.keys()
    }

    /// The plan for the business table that `source_table` belongs to.
    pub fn plan_for_source(&self, source_table: &TableRef) -> Option<&TablePlan> {
        self.by_source_table
            .get(source_table)
            .map(|&i| &*self.tables[i].plan)
    }

    /// All target plans of this link.
    pub fn plans(&self) -> impl Iterator<Item = &TablePlan> {
        self.tables.iter().map(|t| &*t.plan)
    }

    /// A source transaction's changes through the mapping, in order and one at a time (a spilled
    /// transaction is read once, never held whole): the changes of tables not synced on this link,
    /// and rows the row filter keeps home, are left out. An error reading a spilled change is
    /// passed on.
    pub fn map_tx<'a>(
        &'a self,
        tx: &'a Transaction,
    ) -> impl Iterator<Item = std::io::Result<Mapped>> + 'a {
        let mut old = self.old_versions();
        tx.changes.iter().filter_map(move |c| match c {
            Ok(mut c) => {
                let t = self.table_of(&c.table);
                self.complete_in(t, &mut old, &mut c);
                self.map_change_in(t?, c).map(Ok)
            }
            Err(e) => Some(Err(e)),
        })
    }

    /// The link's table that `source_table` is synced as.
    fn table_of(&self, source_table: &TableRef) -> Option<&LinkTable> {
        self.by_source_table
            .get(source_table)
            .map(|&i| &self.tables[i])
    }

    /// The state [`Mapper::complete`] keeps while one transaction's changes are read.
    pub fn old_versions(&self) -> OldVersions {
        OldVersions::new(&self.schema, &self.version_column)
    }

    /// Gives `change` the old version a PostgreSQL node logged without its old row (see
    /// `old_version.rs`), from what `old` kept of the transaction's earlier changes: every change
    /// of a transaction goes through here, in order, before [`Mapper::map_change`]. Says once per
    /// table when a table's rules read the old row and its changes come without it, or when a
    /// delete comes without its tombstone.
    pub fn complete(&self, old: &mut OldVersions, change: &mut Change) {
        self.complete_in(self.table_of(&change.table), old, change);
    }

    /// [`Mapper::complete`], with the change's table already looked up.
    fn complete_in(&self, table: Option<&LinkTable>, old: &mut OldVersions, change: &mut Change) {
        let done = old.complete(change, table.map(|t| &*t.plan));
        if let Some(t) = table {
            t.warn_without_old_row(change, done, &self.source);
        }
    }

    /// One source change through the mapping (see [`Mapper::map_tx`]).
    pub fn map_change(&self, change: Change) -> Option<Mapped> {
        self.map_change_in(self.table_of(&change.table)?, change)
    }

    fn map_change_in(&self, t: &LinkTable, change: Change) -> Option<Mapped> {
        let target = self.map_in(t, &change)?;
        Some(Mapped {
            plan: t.plan.clone(),
            source: change,
            target,
        })
    }

    /// Maps one source change. `None` when the table is not synced on this link, or the row filter
    /// keeps the row home. A row updated into the filter becomes an insert, one updated out of it a
    /// delete.
    pub fn map(&self, change: &Change) -> Option<Result<Change, MappingError>> {
        self.map_in(self.table_of(&change.table)?, change)
    }

    fn map_in(&self, t: &LinkTable, change: &Change) -> Option<Result<Change, MappingError>> {
        let filtered;
        let change = if t.filter.is_empty() {
            change
        } else {
            filtered = t.admit(change)?;
            &filtered
        };
        let map_image = |img: &Option<RowImage>| -> Result<Option<RowImage>, MappingError> {
            img.as_ref()
                .map(|i| t.map_image(i, &self.source, &self.target))
                .transpose()
        };
        Some((|| {
            Ok(Change {
                table: t.plan.target.clone(),
                op: change.op,
                before: map_image(&change.before)?,
                after: map_image(&change.after)?,
            })
        })())
    }
}

impl LinkTable {
    /// Says once per table, as a warning, that its changes do not carry what its rules need: an
    /// update or delete of a table whose rules read the old row came without it (the node was set
    /// up when they did not, with `REPLICA IDENTITY DEFAULT`: a merge, a system of record or a row
    /// filter now sees no old values), or a key-only delete came without the tombstone that
    /// carries its version (a delete made with triggers off: it is applied unchecked).
    fn warn_without_old_row(&self, change: &Change, done: Completed, source: &str) {
        let whole = change
            .before
            .as_ref()
            .is_some_and(|b| b.kind == ImageKind::Full);
        let (why, flag) = match self.old_row_needed {
            Some(why) if !whole && matches!(change.op, Op::Update | Op::Delete) => {
                (why, &self.warned_old_row)
            }
            _ if done == Completed::Unpaired => ("", &self.warned_unpaired),
            _ => return,
        };
        if flag.swap(true, std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        if why.is_empty() {
            tracing::warn!(
                table = %change.table,
                node = source,
                "a delete came without the tombstone that carries its version (made with tandem's \
                 triggers off, as by a session with session_replication_role = replica): it is applied \
                 without a version check; fix: make the application's writes with triggers on, or set \
                 replica_identity = \"full\" on the table and run `tandem setup` again"
            );
        } else {
            tracing::warn!(
                table = %change.table,
                node = source,
                "the table's rules read the old row ({why}), but its updates and deletes arrive \
                 without it; fix: run `tandem setup` again (it sets REPLICA IDENTITY FULL on the table)"
            );
        }
    }

    /// Whether a row image passes the row filter (an image without a filtered column does not).
    fn passes(&self, img: &RowImage) -> bool {
        self.filter.iter().all(|(column, allowed, map)| {
            img.get(column).is_some_and(|v| {
                allowed.iter().any(|a| {
                    scalar_matches(a, v)
                        || map
                            .as_ref()
                            .and_then(|m| decode(m, v))
                            .is_some_and(|b| a.to_string().trim_matches('"') == b)
                })
            })
        })
    }

    /// The change as it crosses the filter, or `None` when it stays home.
    fn admit(&self, change: &Change) -> Option<Change> {
        let full_before = change.before.as_ref().filter(|b| b.kind == ImageKind::Full);
        let before = full_before.map(|b| self.passes(b));
        let after = change.after.as_ref().map(|a| self.passes(a));
        let op = match (change.op, before, after) {
            (Op::Insert, _, Some(true)) | (Op::Truncate, _, _) => change.op,
            (Op::Delete, Some(true), _) => Op::Delete,
            (Op::Delete, None, _) => Op::Delete, // a key-only image cannot be judged: let it through
            (Op::Update, Some(true) | None, Some(true)) => Op::Update,
            (Op::Update, Some(false), Some(true)) => Op::Insert,
            (Op::Update, Some(true), Some(false)) => Op::Delete,
            _ => return None,
        };
        let mut out = change.clone();
        out.op = op;
        match op {
            Op::Insert => out.before = None,
            Op::Delete if change.op == Op::Update => out.after = None,
            _ => {}
        }
        Some(out)
    }

    fn new(config: &Config, t: &Table, source: &str, target: &str) -> LinkTable {
        let settings = &config.settings;
        let target_col = |business: &str| t.column_on(business, target).to_string();
        let version_business = t.version.clone();
        let version = version_business
            .as_deref()
            .map_or_else(|| settings.version_column.clone(), target_col);
        let columns = t
            .columns
            .iter()
            .map(|c| {
                (
                    target_col(&c.name),
                    ColumnRule {
                        conflict: c.conflict,
                        prefer: c.prefer.clone(),
                        owner: c.owner.clone(),
                    },
                )
            })
            .collect();
        let deletes = match &t.deletes {
            DeletePolicy::Soft(col) => DeletePolicy::Soft(target_col(col)),
            other => other.clone(),
        };
        let plan = TablePlan {
            business: t.name.clone(),
            target: t.physical[target].clone(),
            key: t.key.iter().map(|k| target_col(k)).collect(),
            version,
            managed_version: t.version.is_none(),
            origin_column: settings.origin_column.clone(),
            conflict: t.conflict,
            prefer: t.prefer.clone().or_else(|| t.owner.clone()),
            owner: t.owner.clone(),
            merge_fallback: t.merge_fallback,
            columns,
            deletes,
            on_error: t.on_error,
            truncate: t.truncate,
            ddl: t.ddl,
        };
        let mut source_to_business = HashMap::new();
        let mut business_to_target = HashMap::new();
        let filter = t
            .filter
            .iter()
            .map(|(column, allowed)| {
                let map = t
                    .columns
                    .iter()
                    .find(|c| &c.name == column)
                    .and_then(|c| c.values.get(source).cloned());
                (
                    t.column_on(column, source).to_string(),
                    allowed.clone(),
                    map,
                )
            })
            .collect();
        let mut values = HashMap::new();
        let mut transforms = HashMap::new();
        let mut null_as = HashMap::new();
        for c in &t.columns {
            source_to_business.insert(t.column_on(&c.name, source).to_string(), c.name.clone());
            business_to_target.insert(c.name.clone(), Arc::from(t.column_on(&c.name, target)));
            let (s, d) = (c.values.get(source).cloned(), c.values.get(target).cloned());
            if s.is_some() || d.is_some() {
                values.insert(c.name.clone(), (s, d));
            }
            if let Some(list) = c.transform.get(target).filter(|l| !l.is_empty()) {
                transforms.insert(c.name.clone(), list.clone());
            }
            let (s, d) = (
                c.null_as.get(source).cloned(),
                c.null_as.get(target).cloned(),
            );
            if s.is_some() || d.is_some() {
                null_as.insert(c.name.clone(), (s, d));
            }
        }
        let excluded_source = t
            .exclude
            .iter()
            .map(|e| t.column_on(e, source).to_string())
            .collect();
        LinkTable {
            plan: Arc::new(plan),
            source_to_business,
            business_to_target,
            values,
            transforms,
            null_as,
            excluded_source,
            filter,
            prev_version: crate::names::prev_version_column(&settings.version_column),
            old_row_needed: t.old_row_needed(),
            warned_old_row: std::sync::atomic::AtomicBool::new(false),
            warned_unpaired: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn map_image(
        &self,
        img: &RowImage,
        source: &str,
        target: &str,
    ) -> Result<RowImage, MappingError> {
        let mut fields = Vec::with_capacity(img.fields.len());
        for f in &img.fields {
            let name: &str = &f.name;
            if name == self.plan.origin_column
                || (self.plan.managed_version
                    && (name == self.plan.version || name == self.prev_version))
                || self.excluded_source.iter().any(|e| e == name)
            {
                continue;
            }
            let business = self
                .source_to_business
                .get(name)
                .map_or(name, String::as_str);
            let target_name = self
                .business_to_target
                .get(business)
                .cloned()
                .unwrap_or_else(|| {
                    if business == name {
                        f.name.clone()
                    } else {
                        Arc::from(business)
                    }
                });
            let (null_from, null_to) = self
                .null_as
                .get(business)
                .map_or((None, None), |(s, t)| (s.as_ref(), t.as_ref()));
            let incoming = match (&f.value, null_from) {
                (Value::Text(t), Some(n)) if t == n => Value::Null,
                (v, _) => v.clone(),
            };
            let mut value = match self.values.get(business) {
                Some((from, to)) if !matches!(incoming, Value::Null | Value::Unchanged) => {
                    let business_value = match from {
                        Some(map) => decode(map, &incoming)
                            .ok_or_else(|| not_in_map(&self.plan.business, business, source))?,
                        None => value_text(&incoming),
                    };
                    match to {
                        Some(map) => encode(map, &business_value)
                            .ok_or_else(|| not_in_map(&self.plan.business, business, target))?,
                        None => Value::Text(business_value),
                    }
                }
                _ => incoming,
            };
            for t in self.transforms.get(business).into_iter().flatten() {
                value = t.apply(value).map_err(|e| MappingError {
                    table: self.plan.business.clone(),
                    column: business.to_string(),
                    node: target.to_string(),
                    reason: format!("{e}; correct the value at its source"),
                })?;
            }
            if let (Value::Null, Some(n)) = (&value, null_to) {
                value = Value::Text(n.clone());
            }
            fields.push(Field {
                name: target_name,
                value,
            });
        }
        Ok(RowImage::new(img.kind, fields))
    }
}

/// The business value (a key of the value map) whose stored form equals `v`.
fn decode(map: &[(String, Scalar)], v: &Value) -> Option<String> {
    map.iter()
        .find(|(_, stored)| scalar_matches(stored, v))
        .map(|(b, _)| b.clone())
}

fn encode(map: &[(String, Scalar)], business: &str) -> Option<Value> {
    map.iter()
        .find(|(b, _)| b == business)
        .map(|(_, s)| match s {
            Scalar::Int(i) => Value::Int(*i),
            Scalar::Float(x) => Value::Float64(*x),
            Scalar::Bool(b) => Value::Bool(*b),
            Scalar::Text(t) => Value::Text(t.clone()),
        })
}

fn scalar_matches(s: &Scalar, v: &Value) -> bool {
    match (s, v) {
        (Scalar::Int(i), Value::Int(x)) => i == x,
        (Scalar::Int(i), Value::UInt(x)) => u64::try_from(*i).is_ok_and(|i| i == *x),
        (Scalar::Int(i), Value::Decimal(d)) => d.normalized() == i.to_string(),
        (Scalar::Bool(b), Value::Bool(x)) => b == x,
        (Scalar::Bool(b), Value::Int(x)) => i64::from(*b) == *x,
        (Scalar::Float(f), Value::Float64(x)) => f == x,
        (Scalar::Float(f), Value::Float32(x)) => *f == f64::from(*x),
        (Scalar::Text(t), Value::Text(x) | Value::Enum(x)) => t == x,
        (s, v) => s.to_string().trim_matches('"') == value_text(v),
    }
}

fn value_text(v: &Value) -> String {
    v.to_string()
}

#[cfg(test)]
mod tests;
