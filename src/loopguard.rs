//! The loop guard: recognises a captured transaction that tandem itself applied, so that it is not
//! sent back where it came from.
//!
//! ```text
//!  captured Transaction ──> provenance() ──> Local                    forward to every peer
//!                                       └──> Applied { origin }       forward nowhere (pair, mesh),
//!                                                                     or everywhere but origin (hub)
//! ```
//!
//! Three markers, any one of which is enough (the appliers set all that their engine offers):
//! 1. a write to the bookkeeping `checkpoint` table in the same transaction; the row's `source_node`
//!    names the node the change came from;
//! 2. PostgreSQL: the transaction carries the replication origin `tandem_<source node>`, which the
//!    PostgreSQL applier sets up on its session (`marks.pg_origin`); any other origin (native
//!    subscriptions' `pg_<oid>`, another tool's) is not tandem's, and such a transaction is forwarded;
//! 3. MySQL/MariaDB: the events carry the `skip_replication` flag, which the MySQL applier sets on its
//!    session (`marks.skip_replication`).
//!
//! The engines' own marks (2 and 3) are known before a transaction's first change, so a link's
//! reader leaves that transaction's changes out (`drop_applied` in the capture options: not decoded,
//! not buffered, not spilled) and the guard sees it with its marks and no changes. The checkpoint
//! row (1) stays the guard everywhere: without the session mark (a role that may not set up a
//! replication origin), the changes come whole and the guard finds the row among them.
//!
//! The per-row origin column is deliberately *not* a marker: a local update of a row tandem last wrote
//! still carries the old origin in its before-image, and its after-image is stamped by the local
//! trigger; judging by the column would drop a genuine local change.
//!
//! Error handling: none; the guard is a pure function of the transaction. A spilled change set that
//! cannot be read back is treated as local (forwarded): losing a change is worse than an echo, which
//! the receiving side's version check turns into a no-op conflict record.

use crate::model::{Change, ChangeKind, Transaction, Value};

/// Prefix of the PostgreSQL replication origin an applier uses: `tandem_<source node>`.
pub const PG_ORIGIN_PREFIX: &str = "tandem_";

/// Who wrote a captured transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provenance {
    /// An application (or a person) on the source node: replicate it.
    Local,
    /// tandem applied it; `origin` is the node the change first came from, when a marker names it.
    Applied { origin: Option<String> },
}

/// Decides whether `tx` was applied by tandem. `schema` is the bookkeeping schema name (`[tandem]
/// schema`); the checkpoint table is `<schema>.checkpoint` on every engine.
pub fn provenance(tx: &Transaction, schema: &str) -> Provenance {
    let mut applied = false;
    let mut origin = None;
    // Only tandem's own origin marks an applied transaction: one that reached this node through native
    // logical replication or another tool carries that tool's origin and is this node's to forward.
    if let Some(node) = tx
        .marks
        .pg_origin
        .as_deref()
        .and_then(|name| name.strip_prefix(PG_ORIGIN_PREFIX))
    {
        applied = true;
        origin = Some(node.to_string());
    }
    if tx.marks.skip_replication {
        applied = true;
    }
    // A large transaction's changes are on disk: read back only when it may hold a checkpoint
    // row (an application's bulk load does not).
    let checkpoint = |t: &crate::model::TableRef| &*t.schema == schema && &*t.name == "checkpoint";
    let changes = tx
        .changes
        .may_touch(checkpoint)
        .then(|| tx.changes.iter())
        .into_iter()
        .flatten();
    for change in changes.flatten() {
        if let Some(node) = checkpoint_origin(&change, schema) {
            applied = true;
            origin = Some(node).filter(|n| !n.is_empty()).or(origin);
            break;
        }
    }
    if applied {
        Provenance::Applied { origin }
    } else {
        Provenance::Local
    }
}

/// Whether a captured transaction goes to `target`. In a pair or a full mesh every node sends its own
/// changes to every peer, so an applied transaction goes nowhere. With `relay` (a hub forwarding for
/// spokes that do not see each other), it goes everywhere except to its origin and back to the node it
/// was read from.
pub fn should_forward(provenance: &Provenance, source: &str, target: &str, relay: bool) -> bool {
    match provenance {
        Provenance::Local => true,
        Provenance::Applied { origin } => {
            relay && target != source && origin.as_deref().is_some_and(|o| o != target)
        }
    }
}

/// The origin node named by a change to the checkpoint table, if `change` is one.
fn checkpoint_origin(change: &Change, schema: &str) -> Option<String> {
    if change.kind(schema) != ChangeKind::Checkpoint {
        return None;
    }
    let image = change.after.as_ref().or(change.before.as_ref());
    match image.and_then(|i| i.get("source_node")) {
        Some(Value::Text(node)) => Some(node.clone()),
        Some(Value::Bytes(b)) => Some(String::from_utf8_lossy(b).into_owned()),
        // The row is ours even when its node cannot be read: it is still tandem's write.
        _ => Some(String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ChangeSet, LoopMarks, Op, RowImage, TableRef};

    fn row(fields: &[(&str, Value)]) -> RowImage {
        RowImage::of(fields)
    }

    fn tx(changes: Vec<Change>, marks: LoopMarks) -> Transaction {
        Transaction {
            marks,
            ..Transaction::at_pg("crm", ChangeSet::Memory(changes))
        }
    }

    fn customer_update(origin: &str) -> Change {
        Change {
            table: TableRef::new("public", "customers"),
            op: Op::Update,
            before: Some(row(&[
                ("id", Value::Int(1)),
                ("_tandem_origin", Value::Text(origin.into())),
            ])),
            after: Some(row(&[
                ("id", Value::Int(1)),
                ("_tandem_origin", Value::Text("crm".into())),
            ])),
        }
    }

    fn checkpoint_write(schema: &str, node: &str) -> Change {
        Change {
            table: TableRef::new(schema, "checkpoint"),
            op: Op::Update,
            before: None,
            after: Some(row(&[
                ("source_node", Value::Text(node.into())),
                ("position", Value::Text("pg:0/1".into())),
            ])),
        }
    }

    /// A spilled transaction is read back for its checkpoint row only when its tables include the
    /// checkpoint table; with more tables than the set remembers, it is read back to tell.
    #[test]
    fn a_spilled_transaction_is_read_for_its_checkpoint_only_when_it_may_hold_one() {
        let dir = std::env::temp_dir().join(format!("tandem-loopguard-{}", std::process::id()));
        let spilled = |changes: Vec<Change>| {
            let mut b = crate::model::spill::SpillBuffer::new(&dir, 0);
            for c in changes {
                b.push(c).expect("push");
            }
            let mut t = tx(Vec::new(), LoopMarks::default());
            t.changes = b.finish().expect("finish");
            assert!(matches!(t.changes, ChangeSet::Spilled(_)));
            t
        };
        let applied = spilled(vec![
            customer_update("helpdesk"),
            checkpoint_write("tandem", "helpdesk"),
        ]);
        assert!(applied.changes.may_touch(|t| &*t.name == "checkpoint"));
        assert_eq!(
            provenance(&applied, "tandem"),
            Provenance::Applied {
                origin: Some("helpdesk".into())
            }
        );
        let local = spilled(vec![customer_update("crm"), customer_update("crm")]);
        assert!(!local.changes.may_touch(|t| &*t.name == "checkpoint"));
        assert_eq!(provenance(&local, "tandem"), Provenance::Local);
        // Many tables: not remembered, so read back, and the checkpoint still found.
        let mut many: Vec<Change> = (0..100)
            .map(|i| Change {
                table: TableRef::new("public", &format!("t{i}")),
                ..customer_update("crm")
            })
            .collect();
        many.push(checkpoint_write("tandem", "helpdesk"));
        let many = spilled(many);
        assert!(many.changes.may_touch(|_| false), "unknown tables: may");
        assert!(matches!(
            provenance(&many, "tandem"),
            Provenance::Applied { .. }
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_checkpoint_write_marks_the_transaction_and_names_its_origin() {
        let t = tx(
            vec![
                customer_update("helpdesk"),
                Change {
                    table: TableRef::new("public", "orders"),
                    ..customer_update("helpdesk")
                },
                checkpoint_write("tandem", "helpdesk"),
            ],
            LoopMarks::default(),
        );
        let p = provenance(&t, "tandem");
        assert_eq!(
            p,
            Provenance::Applied {
                origin: Some("helpdesk".into())
            }
        );
        assert!(!should_forward(&p, "crm", "helpdesk", false));
        assert!(!should_forward(&p, "crm", "billing", false));
        assert!(should_forward(&p, "crm", "billing", true), "a hub relays");
        assert!(!should_forward(&p, "crm", "helpdesk", true), "never home");
        // Another schema's table called checkpoint is application data.
        let other = tx(vec![checkpoint_write("public", "x")], LoopMarks::default());
        assert_eq!(provenance(&other, "tandem"), Provenance::Local);
    }

    #[test]
    fn native_marks_are_recognised() {
        let pg = tx(
            vec![customer_update("crm")],
            LoopMarks {
                pg_origin: Some("tandem_helpdesk".into()),
                ..LoopMarks::default()
            },
        );
        assert_eq!(
            provenance(&pg, "tandem"),
            Provenance::Applied {
                origin: Some("helpdesk".into())
            }
        );
        let maria = tx(
            vec![customer_update("crm")],
            LoopMarks {
                skip_replication: true,
                server_id: Some(7),
                ..LoopMarks::default()
            },
        );
        assert_eq!(
            provenance(&maria, "tandem"),
            Provenance::Applied { origin: None }
        );
    }

    #[test]
    fn another_tools_origin_is_forwarded() {
        // A native subscription's apply worker uses the origin pg_<subscription oid>.
        let native = tx(
            vec![customer_update("crm")],
            LoopMarks {
                pg_origin: Some("pg_16403".into()),
                ..LoopMarks::default()
            },
        );
        let p = provenance(&native, "tandem");
        assert_eq!(p, Provenance::Local);
        assert!(should_forward(&p, "crm", "helpdesk", false));
    }

    #[test]
    fn a_local_update_of_a_row_tandem_last_wrote_is_forwarded() {
        // The before-image still says helpdesk wrote the row; this is a local change all the same.
        let t = tx(vec![customer_update("helpdesk")], LoopMarks::default());
        let p = provenance(&t, "tandem");
        assert_eq!(p, Provenance::Local);
        assert!(should_forward(&p, "crm", "helpdesk", false));
    }
}
