//! The audit checks: every committed transaction arrived exactly once, and every conflict the
//! writes forced left a complete audit row.

use std::collections::{BTreeMap, BTreeSet};

use mysql_async::prelude::Queryable;

use super::writer::{ItemWrite, WriterReport};
use super::{Node, Snapshot};
use crate::support::Pair;

/// Every committed writer transaction's event is on both nodes, nothing else is, no event conflicted
/// (a transaction applied twice would meet its own event's key: `insert_exists`), no transaction
/// went to the dead letters, and every contested row holds what a committed transaction wrote (its
/// label is that transaction's event label), not a write that was rolled back.
pub fn assert_exactly_once(
    what: &str,
    reports: &[WriterReport],
    converged: &Snapshot,
    audit: &Audit,
) {
    let committed: BTreeSet<i64> = reports
        .iter()
        .flat_map(|r| r.events.iter().copied())
        .collect();
    let arrived: BTreeSet<i64> = converged.events.keys().copied().collect();
    let lost: Vec<_> = committed.difference(&arrived).take(5).collect();
    let extra: Vec<_> = arrived.difference(&committed).take(5).collect();
    assert!(
        lost.is_empty() && extra.is_empty(),
        "{what}: {} committed transactions, {} events on both nodes; lost events {lost:?}, events no writer committed {extra:?}",
        committed.len(),
        arrived.len()
    );
    let labels: BTreeSet<Option<&str>> = converged
        .events
        .values()
        .map(|r| Snapshot::event_label(r))
        .collect();
    if let Some((k, row)) = converged
        .items
        .iter()
        .find(|(_, r)| !labels.contains(&Snapshot::item_label(r)))
    {
        panic!("{what}: items id={k} holds {row:?}, which no committed transaction wrote");
    }
    if let Some(c) = audit.conflicts.iter().find(|c| c.table != "items") {
        panic!("{what}: a conflict on an insert-only table (a change applied twice?): {c:?}");
    }
    assert!(
        audit.dead_letters.is_empty(),
        "{what}: dead letters: {:?}",
        audit.dead_letters
    );
}

/// One row of `tandem.conflict`, on the node named by `on`.
#[derive(Debug, Clone)]
pub struct AuditRow {
    pub on: Node,
    pub source_node: String,
    pub table: String,
    pub key: String,
    pub kind: String,
    pub decision: String,
    pub rule: String,
    pub state: String,
    pub before: Option<serde_json::Value>,
    pub current: Option<serde_json::Value>,
    pub incoming: Option<serde_json::Value>,
}

impl AuditRow {
    fn label(image: &Option<serde_json::Value>) -> Option<&str> {
        image.as_ref()?.get("label")?.as_str()
    }

    /// The image's `_tandem_version`, as text.
    fn version(image: &Option<serde_json::Value>) -> Option<String> {
        match image.as_ref()?.get("_tandem_version")? {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    /// The before-image names the state the change replaced: by its label, or, for a change from
    /// crm (PostgreSQL, whose `items` table `tandem setup` logs without old rows unless a rule
    /// reads them: `last_write_wins` and `prefer` need only the key and the version), by its
    /// version.
    fn names_before(&self) -> bool {
        AuditRow::label(&self.before).is_some()
            || (self.source_node == "crm" && AuditRow::version(&self.before).is_some())
    }
}

/// The conflict logs and dead letters of both nodes.
#[derive(Debug, Default)]
pub struct Audit {
    pub conflicts: Vec<AuditRow>,
    pub dead_letters: Vec<String>,
}

type ConflictCols = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn audit_row(on: Node, c: ConflictCols) -> AuditRow {
    let json = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
    AuditRow {
        on,
        source_node: c.0,
        table: c.1,
        key: c.2,
        kind: c.3,
        decision: c.4,
        rule: c.5,
        state: c.6,
        before: json(c.7),
        current: json(c.8),
        incoming: json(c.9),
    }
}

pub async fn read_audit(p: &Pair) -> Audit {
    const CONFLICTS: &str = "SELECT source_node, table_name, row_key, kind, decision, rule, state";
    let mut audit = Audit::default();
    let c = p.pg.connect("crm").await.expect("connect to crm");
    for r in c
        .query(
            &format!("{CONFLICTS}, before_image::text, current_image::text, incoming_image::text FROM tandem.conflict ORDER BY id"),
            &[],
        )
        .await
        .expect("read crm conflicts")
    {
        let cols: ConflictCols = (
            r.get(0),
            r.get(1),
            r.get(2),
            r.get(3),
            r.get(4),
            r.get(5),
            r.get(6),
            r.get(7),
            r.get(8),
            r.get(9),
        );
        audit.conflicts.push(audit_row(Node::Crm, cols));
    }
    for r in c
        .query("SELECT link, error FROM tandem.dead_letter", &[])
        .await
        .expect("read crm dead letters")
    {
        audit.dead_letters.push(format!(
            "crm: {} {}",
            r.get::<_, String>(0),
            r.get::<_, String>(1)
        ));
    }
    let mut m = p.maria.connect("desk").await.expect("connect to helpdesk");
    let rows: Vec<mysql_async::Row> = m
        .query(format!(
            "{CONFLICTS}, before_image, current_image, incoming_image FROM tandem.conflict ORDER BY id"
        ))
        .await
        .expect("read helpdesk conflicts");
    for mut r in rows {
        let mut s = |i: usize| r.take::<Option<String>, _>(i).flatten();
        let cols: ConflictCols = (
            s(0).unwrap_or_default(),
            s(1).unwrap_or_default(),
            s(2).unwrap_or_default(),
            s(3).unwrap_or_default(),
            s(4).unwrap_or_default(),
            s(5).unwrap_or_default(),
            s(6).unwrap_or_default(),
            s(7),
            s(8),
            s(9),
        );
        audit.conflicts.push(audit_row(Node::Helpdesk, cols));
    }
    let dead: Vec<(String, String)> = m
        .query("SELECT link, error FROM tandem.dead_letter")
        .await
        .expect("read helpdesk dead letters");
    audit
        .dead_letters
        .extend(dead.into_iter().map(|(l, e)| format!("helpdesk: {l} {e}")));
    m.disconnect().await.ok();
    audit
}

/// Every conflict left an audit row, checked where the test knows for sure that a conflict happened.
///
/// Every label is written once, so a row state on either node is named by its label, and each writer
/// records the state its update or delete replaced (read under `FOR UPDATE`, so it is exactly the
/// state overwritten). A state is replaced at most once per node (states never come back: tandem
/// writes only other nodes' states, each once). Now take a state P replaced on crm by write W1 and on
/// helpdesk by write W2. When W1 reached helpdesk, helpdesk no longer held P: had W1 arrived while it
/// did, W1 would have been applied over P and W2 would have replaced W1, not P. So W1's version check
/// on helpdesk must have failed (a differing version, or a missing row), and likewise W2's on crm.
/// Each such write must have an audit row on the other node: from its node, for its key, showing it
/// (its label as the incoming image; for a delete, P as the before-image).
///
/// This needs every row state to be one write's, which holds under `last_write_wins` and `prefer`;
/// `merge` writes mixed states (one side's label, the greater version), so under it only the
/// completeness of the audit rows is checked.
///
/// Writes outside such pairs may conflict too (an insert racing an insert); they are not required to
/// here, but every audit row, whatever its cause, must be complete: a known kind, a decision, the
/// table's rule, resolved, and the images the kind implies.
///
/// Returns how many writes had to conflict (`None` under `merge`, where that is not known).
pub fn assert_conflicts_audited(
    what: &str,
    rule: &str,
    reports: &[WriterReport],
    audit: &Audit,
) -> Option<usize> {
    for c in audit.conflicts.iter().filter(|c| c.table == "items") {
        let kinds = [
            "insert_exists",
            "insert_deleted",
            "update_missing",
            "update_differs",
            "delete_missing",
            "delete_differs",
        ];
        let has_before = c.kind.starts_with("update") || c.kind.starts_with("delete");
        let has_current = matches!(
            c.kind.as_str(),
            "insert_exists" | "update_differs" | "delete_differs"
        );
        let has_incoming = !c.kind.starts_with("delete");
        let complete = kinds.contains(&c.kind.as_str())
            && ["apply_incoming", "keep_current", "merge"].contains(&c.decision.as_str())
            && c.rule == rule
            && c.state == "resolved"
            && (!has_before || c.names_before())
            && (!has_current || AuditRow::label(&c.current).is_some())
            && (!has_incoming || AuditRow::label(&c.incoming).is_some());
        assert!(
            complete,
            "{what}: an incomplete audit row (rule {rule}): {c:?}"
        );
    }
    if rule == "merge" {
        return None;
    }
    let mut by_parent: BTreeMap<(i32, &str), Vec<&ItemWrite>> = BTreeMap::new();
    for w in reports.iter().flat_map(|r| &r.item_writes) {
        by_parent
            .entry((w.key, w.parent.as_str()))
            .or_default()
            .push(w);
    }
    let mut forced = 0;
    for ((key, parent), writes) in &by_parent {
        let nodes: BTreeSet<Node> = writes.iter().map(|w| w.node).collect();
        assert_eq!(
            nodes.len(),
            writes.len(),
            "{what}: state {parent:?} of key {key} was replaced twice on one node: {writes:?}"
        );
        if nodes.len() < 2 {
            continue;
        }
        for w in writes {
            forced += 1;
            let row_key = format!("{{\"id\":\"{key}\"}}");
            let found = audit.conflicts.iter().any(|c| {
                c.on == w.node.other()
                    && c.source_node == w.node.name()
                    && c.table == "items"
                    && c.key == row_key
                    && match &w.label {
                        Some(l) => AuditRow::label(&c.incoming) == Some(l),
                        None => {
                            c.kind.starts_with("delete")
                                && (AuditRow::label(&c.before) == Some(parent)
                                    || (c.source_node == "crm"
                                        && AuditRow::version(&c.before).as_ref()
                                            == Some(&w.parent_version)))
                        }
                    }
            });
            assert!(
                found,
                "{what}: no audit row on {} for {w:?}, although the other node also replaced {parent:?}; audit rows for the key: {:#?}",
                w.node.other().name(),
                audit
                    .conflicts
                    .iter()
                    .filter(|c| c.key == row_key)
                    .collect::<Vec<_>>()
            );
        }
    }
    assert!(
        forced > 0,
        "{what}: the writers never replaced the same row state on both nodes, so this run checked no conflict"
    );
    Some(forced)
}
