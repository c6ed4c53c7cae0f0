//! The review queue: `manual` parks a key while other keys flow, the node that decides a table's
//! conflicts parks them for the other, and a steward resolves a parked key with values.

use std::collections::BTreeMap;

use tandem::apply::Resolution;
use tandem::model::Op;

use super::s;
use crate::apply_support::*;

pub async fn manual_parks_one_key_while_others_flow_until_resolved(kind: Kind) {
    // The target has the higher priority: it is the deciding node and parks.
    let mut f = Fixture::new(kind, "conflict = \"manual\"", 5).await;
    let mut a = f.applier().await;
    f.replicated_then_edited_locally(&mut a).await;
    let c1 = f.change(
        Op::Update,
        Some(customer(1, "ann", "a@x", 10, SOURCE)),
        Some(customer(1, "remote", "a@x", 11, SOURCE)),
    );
    let c2 = f.change(
        Op::Update,
        Some(customer(1, "remote", "a@x", 11, SOURCE)),
        Some(customer(1, "remote", "r2@x", 12, SOURCE)),
    );
    let other = f.change(Op::Insert, None, Some(customer(2, "bob", "b@x", 1, SOURCE)));
    a.apply(&[f.tx(2, vec![c1]), f.tx(3, vec![c2, other])])
        .await
        .expect("apply");
    assert_eq!(
        f.row(1).await.expect("row")[0],
        s("local"),
        "parked: the row is untouched"
    );
    assert_eq!(
        f.row(2).await.expect("row")[0],
        s("bob"),
        "another key flows"
    );
    let states = f.conflict_states().await;
    assert_eq!(states, ["parked", "waiting"]);
    let open = a.list_conflicts(true, 10).await.expect("list");
    let parked = open
        .iter()
        .find(|c| c.record.kind == "update_differs")
        .expect("parked entry");
    assert!(a.show_conflict(parked.id).await.expect("show").is_some());
    a.resolve_conflict(parked.id, &Resolution::TakeIncoming, &Default::default())
        .await
        .expect("resolve");
    let row = f.row(1).await.expect("row");
    assert_eq!(
        (row[0].clone(), row[1].clone()),
        (s("remote"), s("r2@x")),
        "resolution and the waiting change applied"
    );
    let states = f.conflict_states().await;
    assert!(states.iter().all(|s| s == "resolved"), "{states:?}");
    assert_eq!(
        row[3],
        s(SOURCE),
        "taking the incoming row is tandem's write: origin and version are the source's"
    );
    assert_eq!(row[2], s("12"));
}

pub async fn manual_on_the_other_node_defers_to_the_decider(kind: Kind) {
    let mut f = Fixture::new(kind, "conflict = \"manual\"", -5).await;
    let mut a = f.applier().await;
    f.replicated_then_edited_locally(&mut a).await;
    a.apply(&[f.tx(
        2,
        vec![f.change(
            Op::Update,
            Some(customer(1, "ann", "a@x", 10, SOURCE)),
            Some(customer(1, "remote", "a@x", 11, SOURCE)),
        )],
    )])
    .await
    .expect("apply");
    assert_eq!(f.row(1).await.expect("row")[0], s("local"));
    assert_eq!(f.conflicts().await[0].2, "deferred");
    // The decider's resolution arrives based on its own version: applied without a check.
    a.apply(&[f.tx(
        3,
        vec![f.change(
            Op::Update,
            Some(customer(1, "remote", "a@x", 11, SOURCE)),
            Some(customer(1, "decided", "a@x", 12, SOURCE)),
        )],
    )])
    .await
    .expect("apply");
    assert_eq!(
        f.row(1).await,
        Some(vec![s("decided"), s("a@x"), s("12"), s(SOURCE)])
    );
}

pub async fn resolve_with_supplied_values(kind: Kind) {
    let mut f = Fixture::new(kind, "conflict = \"manual\"", 5).await;
    let mut a = f.applier().await;
    f.replicated_then_edited_locally(&mut a).await;
    a.apply(&[f.tx(
        2,
        vec![f.change(
            Op::Update,
            Some(customer(1, "ann", "a@x", 10, SOURCE)),
            Some(customer(1, "remote", "a@x", 11, SOURCE)),
        )],
    )])
    .await
    .expect("apply");
    let id = a.list_conflicts(true, 10).await.expect("list")[0].id;
    let values = BTreeMap::from([("name".to_string(), Some("chosen".to_string()))]);
    a.resolve_conflict(id, &Resolution::Values(values), &Default::default())
        .await
        .expect("resolve");
    let row = f.row(1).await.expect("row");
    assert_eq!(row[0], s("chosen"));
    assert_eq!(
        row[3],
        s(TARGET),
        "a resolution is a local write, stamped by the local node"
    );
}

/// A delete that waited behind a parked key is the table's first tombstone of another node's
/// delete: releasing it after the resolution makes the table's revive trigger (the rollback) and
/// applies it in the same call, instead of leaving it waiting behind a key no longer parked.
pub async fn a_delete_released_behind_a_resolution_makes_the_revive_trigger(kind: Kind) {
    let mut f = Fixture::new(kind, "conflict = \"manual\"", 5).await;
    let mut a = f.applier().await;
    f.replicated_then_edited_locally(&mut a).await;
    let edit = f.change(
        Op::Update,
        Some(customer(1, "ann", "a@x", 10, SOURCE)),
        Some(customer(1, "remote", "a@x", 11, SOURCE)),
    );
    let delete = f.change(
        Op::Delete,
        Some(customer(1, "remote", "a@x", 11, SOURCE)),
        None,
    );
    a.apply(&[f.tx(2, vec![edit]), f.tx(3, vec![delete])])
        .await
        .expect("apply");
    assert_eq!(f.conflict_states().await, ["parked", "waiting"]);
    let triggers = match kind {
        Kind::Pg => "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'public.customer'::regclass \
                     AND tgname = 'tandem_revive'"
            .to_string(),
        Kind::My => format!(
            "SELECT count(*) FROM information_schema.triggers WHERE trigger_schema = '{}' \
             AND trigger_name = 'tandem_revive_customer'",
            f.db_name
        ),
    };
    assert_eq!(
        f.db.one(&triggers).await.as_deref(),
        Some("0"),
        "no trigger yet"
    );
    let parked = a.list_conflicts(true, 10).await.expect("list");
    let parked = parked
        .iter()
        .find(|c| c.record.state.as_str() == "parked")
        .expect("parked entry");
    a.resolve_conflict(parked.id, &Resolution::TakeIncoming, &Default::default())
        .await
        .expect("resolve, and the delete released behind it");
    assert!(f.row(1).await.is_none(), "the released delete applied");
    let states = f.conflict_states().await;
    assert!(states.iter().all(|s| s == "resolved"), "{states:?}");
    assert_eq!(
        f.db.one(&triggers).await.as_deref(),
        Some("1"),
        "the revive trigger made for its tombstone"
    );
}
