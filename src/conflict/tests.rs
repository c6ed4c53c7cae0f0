//! Resolution rules: each kind under each rule, and symmetry: the same conflict decided on both nodes
//! ends with the same row.

use proptest::prelude::*;

use super::*;
use crate::config::ConflictRule;

fn stamp(version: i128, node: &str, priority: i32) -> Stamp {
    Stamp {
        version: Some(version),
        node: node.into(),
        priority,
    }
}

fn rules(rule: ConflictRule, prefer: Option<&str>, local: &str) -> Rules {
    Rules {
        rule,
        prefer: prefer.map(str::to_string),
        merge_fallback: ConflictRule::LastWriteWins,
        columns: Default::default(),
        local_node: local.into(),
        local_priority: 0,
    }
}

fn col(name: &str, inc: bool, cur: bool, differs: bool) -> ColumnState {
    ColumnState {
        name: name.into(),
        changed_incoming: inc,
        changed_current: cur,
        differs,
    }
}

fn update_differs(incoming: Stamp, current: Stamp, columns: Vec<ColumnState>) -> Conflict {
    Conflict {
        kind: ConflictKind::UpdateDiffers,
        incoming,
        current: Some(current),
        columns,
        incoming_complete: true,
        deleted_at: None,
        deleted_by: None,
    }
}

#[test]
fn last_write_wins_takes_the_later_version_then_priority_then_node_id() {
    let r = rules(ConflictRule::LastWriteWins, None, "a");
    let cols = vec![col("x", true, true, true)];
    let c = update_differs(stamp(20, "b", 0), stamp(10, "a", 0), cols.clone());
    assert_eq!(resolve(&c, &r), Decision::ApplyIncoming);
    let c = update_differs(stamp(5, "b", 0), stamp(10, "a", 0), cols.clone());
    assert_eq!(resolve(&c, &r), Decision::KeepCurrent);
    let c = update_differs(stamp(10, "b", 0), stamp(10, "a", 0), cols.clone());
    assert_eq!(
        resolve(&c, &r),
        Decision::ApplyIncoming,
        "tie: greater id b"
    );
    let c = update_differs(stamp(10, "b", 0), stamp(10, "a", 1), cols);
    assert_eq!(
        resolve(&c, &r),
        Decision::KeepCurrent,
        "tie: priority first"
    );
}

#[test]
fn prefer_takes_the_preferred_nodes_side_whatever_the_time() {
    let cols = vec![col("x", true, true, true)];
    let c = update_differs(stamp(5, "b", 0), stamp(10, "a", 0), cols);
    assert_eq!(
        resolve(&c, &rules(ConflictRule::Prefer, Some("b"), "a")),
        Decision::ApplyIncoming
    );
    assert_eq!(
        resolve(&c, &rules(ConflictRule::Prefer, Some("a"), "a")),
        Decision::KeepCurrent
    );
}

#[test]
fn merge_keeps_one_sided_changes_and_falls_back_for_both_sided() {
    let r = rules(ConflictRule::Merge, None, "a");
    let cols = vec![
        col("email", true, false, true),
        col("phone", false, true, true),
        col("name", true, true, true),
        col("same", false, false, false),
    ];
    let c = update_differs(stamp(5, "b", 0), stamp(10, "a", 0), cols);
    assert_eq!(
        resolve(&c, &r),
        Decision::Merge {
            take_incoming: vec!["email".into()],
            version_from_incoming: false,
            origin: "a".into(),
            announce: false
        }
    );
}

#[test]
fn manual_parks_on_the_decider_and_defers_on_the_other_node() {
    let cols = vec![col("x", true, true, true)];
    let on_b = update_differs(stamp(5, "a", 0), stamp(10, "b", 0), cols.clone());
    assert_eq!(
        resolve(&on_b, &rules(ConflictRule::Manual, None, "b")),
        Decision::Park
    );
    let on_a = update_differs(stamp(10, "b", 0), stamp(5, "a", 0), cols);
    assert_eq!(
        resolve(&on_a, &rules(ConflictRule::Manual, None, "a")),
        Decision::Defer {
            decider: "b".into()
        }
    );
}

#[test]
fn updates_win_over_deletes_unless_the_deleter_is_preferred() {
    let lww = rules(ConflictRule::LastWriteWins, None, "a");
    let delete_differs = Conflict {
        kind: ConflictKind::DeleteDiffers,
        incoming: stamp(1, "b", 0),
        current: Some(stamp(99, "a", 0)),
        columns: vec![],
        incoming_complete: true,
        deleted_at: None,
        deleted_by: None,
    };
    assert_eq!(resolve(&delete_differs, &lww), Decision::KeepCurrent);
    let update_missing = Conflict {
        kind: ConflictKind::UpdateMissing,
        incoming: stamp(99, "b", 0),
        current: None,
        columns: vec![col("x", true, true, true)],
        incoming_complete: true,
        deleted_at: None,
        deleted_by: None,
    };
    assert_eq!(resolve(&update_missing, &lww), Decision::ApplyIncoming);
    let tombstoned = Conflict {
        deleted_at: Some(100),
        deleted_by: None,
        ..update_missing.clone()
    };
    assert_eq!(
        resolve(&tombstoned, &lww),
        Decision::KeepCurrent,
        "deleted here after the update"
    );
    let later_delete = Conflict {
        incoming: stamp(100, "b", 0),
        ..delete_differs.clone()
    };
    assert_eq!(
        resolve(&later_delete, &lww),
        Decision::ApplyIncoming,
        "the delete is later"
    );
    let prefer_a = rules(ConflictRule::Prefer, Some("a"), "a");
    assert_eq!(
        resolve(&update_missing, &prefer_a),
        Decision::KeepCurrent,
        "a deleted and is preferred"
    );
    let prefer_b = rules(ConflictRule::Prefer, Some("b"), "a");
    assert_eq!(resolve(&update_missing, &prefer_b), Decision::ApplyIncoming);
    let partial = Conflict {
        incoming_complete: false,
        ..update_missing
    };
    assert_eq!(resolve(&partial, &prefer_b), Decision::Park);
    let missing = Conflict {
        kind: ConflictKind::DeleteMissing,
        ..delete_differs
    };
    assert_eq!(resolve(&missing, &lww), Decision::KeepCurrent);
}

/// The final state of a row on one node after a decision: values per column, version, origin.
/// `None` when the row is gone; `Err` for the manual outcomes.
type Row = Option<(Vec<u8>, i128, String)>;

fn outcome(d: &Decision, current: &Row, incoming: &Row, names: &[String]) -> Result<Row, Decision> {
    Ok(match d {
        Decision::ApplyIncoming => incoming.clone(),
        Decision::KeepCurrent => current.clone(),
        Decision::Merge {
            take_incoming,
            version_from_incoming,
            origin,
            ..
        } => {
            let (cur, inc) = (
                current.clone().expect("row"),
                incoming.clone().expect("row"),
            );
            let values = names
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    if take_incoming.contains(n) {
                        inc.0[i]
                    } else {
                        cur.0[i]
                    }
                })
                .collect();
            let version = if *version_from_incoming { inc.1 } else { cur.1 };
            Some((values, version, origin.clone()))
        }
        other => return Err(other.clone()),
    })
}

fn any_rules() -> impl Strategy<Value = (ConflictRule, Option<&'static str>, ConflictRule)> {
    prop_oneof![
        Just((
            ConflictRule::LastWriteWins,
            None,
            ConflictRule::LastWriteWins
        )),
        Just((ConflictRule::Prefer, Some("a"), ConflictRule::LastWriteWins)),
        Just((ConflictRule::Prefer, Some("b"), ConflictRule::LastWriteWins)),
        Just((ConflictRule::Merge, None, ConflictRule::LastWriteWins)),
        Just((ConflictRule::Merge, Some("a"), ConflictRule::Prefer)),
        Just((ConflictRule::Merge, None, ConflictRule::Manual)),
        Just((ConflictRule::Manual, None, ConflictRule::LastWriteWins)),
    ]
}

/// A column rule override or none, for column 0.
fn any_override() -> impl Strategy<Value = Option<ColumnRules>> {
    prop_oneof![
        Just(None),
        Just(Some(ColumnRules {
            rule: Some(ConflictRule::Prefer),
            prefer: Some("a".into())
        })),
        Just(Some(ColumnRules {
            rule: Some(ConflictRule::LastWriteWins),
            prefer: None
        })),
    ]
}

#[derive(Debug, Clone, Copy)]
enum Scenario {
    BothUpdate,
    BothInsert,
    /// a deletes, b updates.
    DeleteUpdate,
    BothDelete,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    /// Nodes a and b both change the same row from a common base; each detects the other's change.
    /// Deciding on both nodes must end with the same row (values, version, origin), or, under manual,
    /// with exactly one node parking and the other deferring to it.
    #[test]
    fn both_nodes_reach_the_same_row(
        base in proptest::collection::vec(0u8..3, 1..5),
        a_edits in proptest::collection::vec(0u8..3, 5),
        b_edits in proptest::collection::vec(0u8..3, 5),
        (va, vb) in (0i128..4, 0i128..4),
        (pa, pb) in (0i32..2, 0i32..2),
        (rule, prefer, fallback) in any_rules(),
        over in any_override(),
        d in 0i128..5,
        scenario in prop_oneof![
            Just(Scenario::BothUpdate), Just(Scenario::BothInsert),
            Just(Scenario::DeleteUpdate), Just(Scenario::BothDelete)
        ],
    ) {
        let n = base.len();
        let names: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
        let a_vals: Vec<u8> = base.iter().zip(&a_edits).map(|(b, e)| if *e == 0 { *b } else { *e }).collect();
        let b_vals: Vec<u8> = base.iter().zip(&b_edits).map(|(b, e)| if *e == 1 { *b } else { *e }).collect();
        let a_row: Row = Some((a_vals.clone(), va, "a".into()));
        let b_row: Row = Some((b_vals.clone(), vb, "b".into()));
        let mk_rules = |local: &str, priority: i32| {
            let mut r = rules(rule, prefer, local);
            r.local_priority = priority;
            r.merge_fallback = fallback;
            if let Some(o) = &over {
                r.columns.insert("c0".into(), o.clone());
            }
            r
        };
        let cols = |inc: &[u8], cur: &[u8], based: bool| -> Vec<ColumnState> {
            (0..n).map(|i| col(&names[i],
                !based || inc[i] != base[i],
                !based || cur[i] != base[i],
                inc[i] != cur[i])).collect()
        };
        let sa = stamp(va, "a", pa);
        let sb = stamp(vb, "b", pb);
        // (conflict seen on a, a's current row, incoming row) and the same on b.
        let (on_a, cur_a, inc_a, on_b, cur_b, inc_b) = match scenario {
            Scenario::BothUpdate | Scenario::BothInsert => {
                let based = matches!(scenario, Scenario::BothUpdate);
                let kind = if based { ConflictKind::UpdateDiffers } else { ConflictKind::InsertExists };
                (
                    Conflict { kind, incoming: sb.clone(), current: Some(sa.clone()), columns: cols(&b_vals, &a_vals, based), incoming_complete: true, deleted_at: None, deleted_by: None },
                    a_row.clone(), b_row.clone(),
                    Conflict { kind, incoming: sa.clone(), current: Some(sb.clone()), columns: cols(&a_vals, &b_vals, based), incoming_complete: true, deleted_at: None, deleted_by: None },
                    b_row.clone(), a_row.clone(),
                )
            }
            Scenario::DeleteUpdate => (
                Conflict { kind: ConflictKind::UpdateMissing, incoming: sb.clone(), current: None, columns: cols(&b_vals, &b_vals, false), incoming_complete: true, deleted_at: Some(d), deleted_by: Some("a".into()) },
                None, b_row.clone(),
                Conflict { kind: ConflictKind::DeleteDiffers, incoming: stamp(d, "a", pa), current: Some(sb.clone()), columns: vec![], incoming_complete: true, deleted_at: None, deleted_by: None },
                b_row.clone(), None,
            ),
            Scenario::BothDelete => (
                Conflict { kind: ConflictKind::DeleteMissing, incoming: sb.clone(), current: None, columns: vec![], incoming_complete: true, deleted_at: None, deleted_by: None },
                None, None,
                Conflict { kind: ConflictKind::DeleteMissing, incoming: sa.clone(), current: None, columns: vec![], incoming_complete: true, deleted_at: None, deleted_by: None },
                None, None,
            ),
        };
        let da = resolve(&on_a, &mk_rules("a", pa));
        let db = resolve(&on_b, &mk_rules("b", pb));
        match (outcome(&da, &cur_a, &inc_a, &names), outcome(&db, &cur_b, &inc_b, &names)) {
            (Ok(ra), Ok(rb)) => prop_assert_eq!(ra, rb, "decisions {:?} on a, {:?} on b", da, db),
            (Err(Decision::Park), Err(Decision::Defer { decider })) => prop_assert_eq!(decider, "a"),
            (Err(Decision::Defer { decider }), Err(Decision::Park)) => prop_assert_eq!(decider, "b"),
            (x, y) => prop_assert!(false, "asymmetric: {:?} on a, {:?} on b", x, y),
        }
    }
}

#[test]
fn an_insert_of_a_key_deleted_here_later_stays_deleted() {
    assert!(ConflictKind::InsertDeleted.current_missing());
    let c = Conflict {
        kind: ConflictKind::InsertDeleted,
        incoming: stamp(10, "b", 0),
        current: None,
        columns: vec![col("x", true, true, true)],
        incoming_complete: true,
        deleted_at: Some(11),
        deleted_by: None,
    };
    let lww = rules(ConflictRule::LastWriteWins, None, "a");
    assert_eq!(resolve(&c, &lww), Decision::KeepCurrent);
    let older = Conflict {
        deleted_at: Some(9),
        deleted_by: None,
        ..c
    };
    assert_eq!(resolve(&older, &lww), Decision::ApplyIncoming);
}

/// Under `prefer`, the deleter of a row that is gone here is the node its tombstone names, not this
/// node; and when one node both deleted the row and wrote it (a re-insert reaching a node that still
/// holds that node's tombstone), its later act stands.
#[test]
fn prefer_weighs_the_tombstones_node_as_the_deleter() {
    let insert_deleted = |deleted_at: i128, deleted_by: &str, inserter: &str| Conflict {
        kind: ConflictKind::InsertDeleted,
        incoming: stamp(50, inserter, 0),
        current: None,
        columns: vec![col("x", true, true, true)],
        incoming_complete: true,
        deleted_at: Some(deleted_at),
        deleted_by: Some(deleted_by.into()),
    };
    // On c (neither node preferred nor involved as local): a deleted, b inserted; prefer b.
    let on_c = rules(ConflictRule::Prefer, Some("b"), "c");
    assert_eq!(
        resolve(&insert_deleted(10, "a", "b"), &on_c),
        Decision::ApplyIncoming
    );
    // Prefer a, the deleter: the delete stands.
    let on_c_prefer_a = rules(ConflictRule::Prefer, Some("a"), "c");
    assert_eq!(
        resolve(&insert_deleted(10, "a", "b"), &on_c_prefer_a),
        Decision::KeepCurrent
    );
    // a deleted and later inserted the key again: the insert (later) stands even though a is
    // preferred, and an insert older than a's delete does not.
    assert_eq!(
        resolve(&insert_deleted(10, "a", "a"), &on_c_prefer_a),
        Decision::ApplyIncoming
    );
    assert_eq!(
        resolve(&insert_deleted(60, "a", "a"), &on_c_prefer_a),
        Decision::KeepCurrent
    );
}
