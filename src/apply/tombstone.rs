//! Tombstones: what each node's deletes of a key left behind, so that an incoming insert of the key
//! can be placed before or after them, and the pruning of expired ones.
//!
//! ```text
//!  source tx ─ bookkeeping `tombstone` updates (a local insert bumped `revived`) ─> Revived (per tx)
//!  incoming insert ─> insert ─> tombstones of the key here, read after the insert ─┐
//!                     every one seen by the inserting node (Revived)? ── yes ─> keep
//!                                                                      └─ no ─> take it back, conflict path
//!  applied delete  ─> put_tombstone (stamped as the deleting node stamped it)
//! ```
//!
//! The statements are in `book.rs` ([`super::book::Tombstones`]); this module holds the decisions.

use tracing::debug;

use super::error::ApplyError;
use super::link::Link;
use super::row::RowChange;
use super::target::{TableInfo, Target, Tombstone};
use crate::conflict::audit::key_values;
use crate::mapping::{Mapper, TablePlan};
use crate::model::{Change, ChangeKind, ChangeSet, Op, TableRef, Transaction, Value};

/// A tombstone a source transaction revived: its node inserted the key again, having seen that
/// node's deletes of the key up to that stamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Revived {
    /// The source's physical table, as the tombstone names it (`schema.table`).
    pub source_table: String,
    /// The key's values as text, sorted (column names differ between nodes).
    pub values: Vec<String>,
    pub stone: Tombstone,
}

impl Revived {
    /// The tombstones a source transaction revived. Its changes are read in place (not copied),
    /// and a spilled transaction whose list of tables shows no `tombstone` is not read back at all:
    /// a bulk insert's spill file is read once, by the mapping, instead of twice.
    pub(super) fn of_transaction(tx: &Transaction, schema: &str) -> Vec<Revived> {
        let tombstone = |t: &TableRef| ChangeKind::of_table(t, schema) == ChangeKind::Tombstone;
        match &tx.changes {
            ChangeSet::Memory(changes) => changes
                .iter()
                .filter_map(|c| Revived::from_change(c, schema))
                .collect(),
            spilled if !spilled.may_touch(tombstone) => Vec::new(),
            // A read error is the mapping's to report: it reads the same file next.
            spilled => spilled
                .iter()
                .flatten()
                .filter_map(|c| Revived::from_change(&c, schema))
                .collect(),
        }
    }

    /// Reads an updated row of the source's `tombstone` table (a local insert bumps `revived`).
    pub(super) fn from_change(change: &Change, schema: &str) -> Option<Revived> {
        if change.op != Op::Update || change.kind(schema) != ChangeKind::Tombstone {
            return None;
        }
        let image = change.after.as_ref()?;
        let text = |name: &str| match image.get(name) {
            Some(Value::Text(t)) => Some(t.clone()),
            Some(Value::Bytes(b)) => String::from_utf8(b.clone()).ok(),
            Some(Value::Int(i)) => Some(i.to_string()),
            _ => None,
        };
        Some(Revived {
            source_table: text("target_table")?,
            values: key_values(&text("row_key")?)?,
            stone: Tombstone {
                version: text("version")?.parse().ok()?,
                node: text("node").unwrap_or_default(),
                before_dead_letter: false,
            },
        })
    }
}

/// Every way to read `schema.table` as a schema and a table name (either may contain dots).
fn table_readings(text: &str) -> impl Iterator<Item = TableRef> + '_ {
    text.match_indices('.')
        .map(|(i, _)| TableRef::new(&text[..i], &text[i + 1..]))
}

/// Whether a tombstone's source table (as written by the source's trigger) is mapped to `plan`'s
/// target.
fn maps_to(mapper: &Mapper, source_table: &str, plan: &TablePlan) -> bool {
    table_readings(source_table).any(|t| {
        mapper
            .plan_for_source(&t)
            .is_some_and(|p| p.target == plan.target)
    })
}

impl<T: Target> Link<T> {
    /// Deletes the target's tombstones older than the retention, at most every tenth of it (and at
    /// most every ten minutes), after a commit. Each node prunes its own; an insert of a key whose
    /// tombstone is gone is weighed as if the key had not been deleted there.
    pub(super) async fn prune_tombstones(&mut self) -> Result<(), ApplyError> {
        let Some(retention) = self.ctx.tombstone_retention else {
            return Ok(());
        };
        let every = (retention / 10).min(std::time::Duration::from_secs(600));
        if self.last_prune.is_some_and(|t| t.elapsed() < every) {
            return Ok(());
        }
        self.last_prune = Some(std::time::Instant::now());
        let pruned = self.t.prune_tombstones(retention.as_secs()).await?;
        if pruned > 0 {
            debug!(link = %self.ctx.link(), pruned, retention_s = retention.as_secs(), "expired tombstones pruned");
        }
        Ok(())
    }

    /// Inserts the incoming row unless a delete its node had not seen makes it a conflict (then
    /// `false`, nothing changed). The tombstones are read after the insert, in its transaction:
    /// under READ COMMITTED that read sees every local delete that committed before the insert
    /// (one still open made the insert wait for it), and a later delete must wait for the inserted
    /// row. Read before the insert, a delete committing in between went unseen.
    pub(super) async fn insert_unless_deleted(
        &mut self,
        plan: &TablePlan,
        info: &TableInfo,
        row: &RowChange,
    ) -> Result<bool, ApplyError> {
        if !self.t.insert(info, &row.full_write()).await? {
            return Ok(false);
        }
        if !self.concurrent_delete(plan, info, row).await? {
            return Ok(true);
        }
        // Take the insert back (the applier's session fires no tandem trigger, so no tombstone).
        self.t
            .delete(info, &row.key, &row.version_column, None)
            .await?;
        Ok(false)
    }

    /// Whether the incoming insert's key was deleted here by a delete its node had not seen: then
    /// the insert takes the conflict path (`insert_deleted`, or `insert_exists` when the key lives
    /// here again), where the table's rule weighs it against the delete. The inserting node had
    /// seen every delete this node knows of when its transaction revived, for each node whose
    /// deletes of the key this node holds, a tombstone at least as late.
    async fn concurrent_delete(
        &mut self,
        plan: &TablePlan,
        info: &TableInfo,
        row: &RowChange,
    ) -> Result<bool, ApplyError> {
        if !row.managed_version {
            return Ok(false);
        }
        let stones = self
            .t
            .tombstones(&info.table.to_string(), &row.key_text(), self.replaying)
            .await?;
        if stones.iter().any(|s| s.node.is_empty()) {
            // Written before bookkeeping version 5: only the stamps can be compared.
            let latest = stones.iter().map(|s| s.version).max();
            let incoming = row.after_version.as_ref().and_then(super::row::version_key);
            return Ok(latest > incoming);
        }
        Ok(!self.unseen(plan, row, stones).is_empty())
    }

    /// The tombstones of `stones` (this node's, of the incoming insert's key) that the inserting
    /// node had not seen when it inserted: the deletes the insert was concurrent with. A tombstone
    /// it had seen (its transaction revived one of that node as late) is behind it, and so, while
    /// the link applies its source's transactions in their commit order, is every tombstone of the
    /// source node's own deletes: this node applied them before this insert, so they committed
    /// there before it (a link is the one path by which a node's changes reach another). Out of
    /// that order (a dead-letter replay), so is a tombstone of the source node last written
    /// before the dead letter was recorded; versions cannot tell (a rule that keeps the other
    /// side's row can lower a row's version). A node's inserts revive only the tombstones of other
    /// nodes' deletes (the revive triggers wait for the first of those, see
    /// `apply/mysql/setup.rs` and `apply/postgres/setup.rs`). A decision taken later from the
    /// review queue weighs the insert by what it revived alone.
    pub(super) fn unseen(
        &self,
        plan: &TablePlan,
        row: &RowChange,
        stones: Vec<Tombstone>,
    ) -> Vec<Tombstone> {
        let values = key_values(&row.key_text()).unwrap_or_default();
        let seen: Vec<&Tombstone> = self
            .revived
            .iter()
            .filter(|r| r.values == values && maps_to(&self.mapper, &r.source_table, plan))
            .map(|r| &r.stone)
            .collect();
        stones
            .into_iter()
            .filter(|mine| {
                // The source node's own deletes that this node applied before the insert's
                // transaction reached it: in the stream, all of them; replayed from the dead
                // letters, those last written before the dead letter was (a later write of the
                // tombstone is a later delete, which the insert had not seen).
                let own = mine.node == self.ctx.source
                    && (self.in_stream || (self.replaying.is_some() && mine.before_dead_letter));
                let revived = seen
                    .iter()
                    .any(|s| s.node == mine.node && s.version >= mine.version);
                !own && !revived
            })
            .collect()
    }

    /// Records an applied delete in this node's tombstone for the deleting node, stamped as that
    /// node stamped it, so that a later insert of the key can be placed (see `concurrent_delete`).
    pub(super) async fn leave_tombstone(
        &mut self,
        info: &TableInfo,
        row: &RowChange,
    ) -> Result<(), ApplyError> {
        let Some(stone) = row.tombstone() else {
            return Ok(());
        };
        if self.ctx.manage_columns {
            let key: Vec<String> = row.key.iter().map(|f| f.name.to_string()).collect();
            self.t.check_revive(&info.table, &key).await?;
        }
        self.t
            .put_tombstone(&info.table.to_string(), &row.key_text(), &stone)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::model::{spill::SpillBuffer, RowImage};

    fn image(fields: &[(&str, &str)]) -> RowImage {
        let fields: Vec<(&str, Value)> = fields
            .iter()
            .map(|(n, v)| (*n, Value::Text((*v).into())))
            .collect();
        RowImage::of(&fields)
    }

    fn insert(id: &str) -> Change {
        Change {
            table: TableRef::new("public", "item"),
            op: Op::Insert,
            before: None,
            after: Some(image(&[("id", id)])),
        }
    }

    fn bump(id: &str) -> Change {
        Change {
            table: TableRef::new("tandem", "tombstone"),
            op: Op::Update,
            before: None,
            after: Some(image(&[
                ("target_table", "public.item"),
                ("row_key", &format!("{{\"id\":\"{id}\"}}")),
                ("version", "17"),
                ("node", "b"),
            ])),
        }
    }

    fn transaction(changes: Vec<Change>, spill: bool) -> Transaction {
        let dir = std::env::temp_dir().join(format!("tandem-revived-{}", std::process::id()));
        let mut b = SpillBuffer::new(&dir, if spill { 0 } else { 1 << 30 });
        for c in changes {
            b.push(c).expect("push");
        }
        let changes = b.finish().expect("finish");
        assert_eq!(matches!(changes, ChangeSet::Spilled(_)), spill);
        Transaction::at_pg("a", changes)
    }

    #[test]
    fn a_transactions_revived_tombstones_are_found_in_memory_and_spilled_alike() {
        for spill in [false, true] {
            let tx = transaction(vec![insert("1"), bump("1"), insert("2")], spill);
            let revived = Revived::of_transaction(&tx, "tandem");
            assert_eq!(revived.len(), 1, "spilled: {spill}");
            assert_eq!(revived[0].source_table, "public.item");
            assert_eq!(revived[0].stone.version, 17);
            assert_eq!(revived[0].stone.node, "b");
            // Another bookkeeping schema: none of them is a tombstone.
            assert!(Revived::of_transaction(&tx, "other").is_empty());
        }
    }

    #[test]
    fn a_dotted_name_is_read_every_way() {
        let readings: Vec<String> = table_readings("a.b.c").map(|t| t.to_string()).collect();
        assert_eq!(readings.len(), 2);
        assert!(table_readings("plain").next().is_none());
    }
}
