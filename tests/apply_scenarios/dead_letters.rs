//! Dead letters: a definite error parks a transaction while the link goes on, and a replay, once
//! the cause is fixed, applies it as it first came (its revived tombstones, its old versions, the
//! deletes its node had made before it).

use tandem::apply;
use tandem::model::{Change, Field, Op, TableRef, Value};

use super::s;
use crate::apply_support::*;

pub async fn definite_errors_go_to_the_dead_letter_table_and_replay(kind: Kind) {
    let mut f = Fixture::new(kind, "", 0).await;
    let mut a = f.applier().await;
    let long = "x".repeat(30);
    let bad = f.too_long_insert(1, 1);
    let good = f.tx(
        2,
        vec![f.change(
            Op::Insert,
            None,
            Some(customer(2, "bob", "b@x", 10, SOURCE)),
        )],
    );
    let committed = a.apply(&[bad, good]).await.expect("the link goes on");
    assert_eq!(committed, Some(f.position(2)));
    assert_eq!(f.row(1).await, None);
    assert_eq!(f.row(2).await.expect("row")[0], s("bob"));
    let dead = a.list_dead_letters(true).await.expect("list");
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].source_position, f.position(1).to_string());
    assert!(
        dead[0].error.contains("customer")
            && dead[0].error.contains("\"id\":\"1\"")
            && dead[0].error.contains("column name"),
        "{}",
        dead[0].error
    );
    assert!(
        !dead[0].error.contains(&long),
        "the value is not in the message"
    );
    // Replay before the fix fails again and counts the attempt.
    assert!(a.replay_dead_letter(dead[0].id).await.is_err());
    let again = a.list_dead_letters(true).await.expect("list");
    assert_eq!(again[0].attempts, 2);
    let mut a = widen_name_and_replay(&mut f, kind, dead[0].id).await;
    assert_eq!(f.row(1).await.expect("row")[0], s(&long));
    assert!(a.list_dead_letters(true).await.expect("list").is_empty());
}

/// Widens the target's `name` column (the fix a too-long name's dead letter waits for) and replays
/// dead letter `id` with a new applier, which it returns.
async fn widen_name_and_replay(f: &mut Fixture, kind: Kind, id: i64) -> apply::Applier {
    f.db.exec(match kind {
        Kind::Pg => "ALTER TABLE customer ALTER COLUMN name TYPE VARCHAR(40)",
        Kind::My => "ALTER TABLE customer MODIFY name VARCHAR(40)",
    })
    .await;
    let mut a = f.applier().await;
    a.replay_dead_letter(id)
        .await
        .expect("replay after the fix");
    a
}

/// A dead-lettered transaction that inserts a deleted key back, having seen the delete (its
/// trigger bumped the key's tombstone in the same transaction), is replayed as it first came: the
/// insert applies with no conflict. The replay weighed it against an empty list of bumps, and the
/// delete it had seen counted as concurrent (`insert_deleted`).
pub async fn a_replayed_reinsert_keeps_the_tombstones_its_transaction_revived(kind: Kind) {
    let mut f = Fixture::new(kind, "", 0).await;
    let mut a = f.applier().await;
    let first = customer(1, "ann", "a@x", 10, SOURCE);
    let bump = Change {
        table: TableRef::new(&f.schema, "tombstone"),
        op: Op::Update,
        before: None,
        after: Some(image(&[
            (
                "target_table",
                Value::Text(f.source_table("customer").to_string()),
            ),
            ("row_key", Value::Text("{\"id\":\"1\"}".into())),
            ("version", Value::Int(11)),
            ("node", Value::Text(SOURCE.into())),
            ("revived", Value::Int(1)),
        ])),
    };
    let txs = [
        f.tx(1, vec![f.change(Op::Insert, None, Some(first.clone()))]),
        f.tx(2, vec![f.change(Op::Delete, Some(first), None)]),
        f.tx(
            3,
            vec![
                bump,
                f.change(
                    Op::Insert,
                    None,
                    Some(customer(1, &"x".repeat(30), "a@x", 20, SOURCE)),
                ),
            ],
        ),
    ];
    a.apply(&txs).await.expect("the link goes on");
    let dead = a.list_dead_letters(true).await.expect("list");
    assert_eq!(dead.len(), 1, "{dead:?}");
    widen_name_and_replay(&mut f, kind, dead[0].id).await;
    assert_eq!(f.conflicts().await, [], "the insert had seen the delete");
    assert_eq!(f.row(1).await.expect("row")[0], s(&"x".repeat(30)));
}

/// A source's re-insert revives no tombstone of its own node's delete (its revive trigger waits
/// for other nodes' deletes). Replayed from the dead letters, out of the stream's order, it still
/// counts a delete of its node that this node applied before the dead letter was recorded as seen:
/// no conflict. A delete applied after it (of the dead-lettered row itself) is not behind the
/// replayed insert, whatever its stamp says (here lower than the insert's, as a rule that kept
/// another node's row could leave it): a conflict.
pub async fn a_replayed_reinsert_weighs_its_own_nodes_deletes_by_when_they_came(kind: Kind) {
    let mut f = Fixture::new(kind, "", 0).await;
    let mut a = f.applier().await;
    let long = "x".repeat(30);
    let first = customer(1, "ann", "a@x", 10, SOURCE);
    let doomed = customer(2, &long, "b@x", 30, SOURCE);
    // The row the source deleted, as its node last had it: stamped lower than the insert.
    let lowered = customer(2, &long, "b@x", 5, SOURCE);
    let txs = [
        f.tx(1, vec![f.change(Op::Insert, None, Some(first.clone()))]),
        f.tx(2, vec![f.change(Op::Delete, Some(first), None)]),
        // Key 1 again (no tombstone revived), and key 2, which the source deletes right after.
        f.tx(
            3,
            vec![f.change(
                Op::Insert,
                None,
                Some(customer(1, &long, "a@x", 20, SOURCE)),
            )],
        ),
        f.tx(4, vec![f.change(Op::Insert, None, Some(doomed))]),
        f.tx(5, vec![f.change(Op::Delete, Some(lowered), None)]),
    ];
    a.apply(&txs).await.expect("the link goes on");
    let dead = a.list_dead_letters(true).await.expect("list");
    assert_eq!(dead.len(), 2, "{dead:?}");
    let kinds = async |f: &mut Fixture| -> Vec<String> {
        f.conflicts().await.into_iter().map(|c| c.0).collect()
    };
    // Key 2's delete found no row (its insert is a dead letter): it left its tombstone.
    assert_eq!(kinds(&mut f).await, ["delete_missing"]);
    let mut a = widen_name_and_replay(&mut f, kind, dead[0].id).await;
    assert_eq!(
        kinds(&mut f).await,
        ["delete_missing"],
        "the re-insert had seen its own node's earlier delete: no conflict"
    );
    assert_eq!(f.row(1).await.expect("row")[0], s(&long));
    a.replay_dead_letter(dead[1].id).await.expect("replay");
    assert_eq!(
        kinds(&mut f).await,
        ["delete_missing", "insert_deleted"],
        "the insert meets the later delete of its own row"
    );
}

/// An update a PostgreSQL source logged without its old row (its old version in the new row's
/// `_tandem_version_prev`) goes to the dead letters; the target's row changes meanwhile. The
/// replay reads the old version again and meets the change: a conflict, not an overwrite (the
/// replay applied it unchecked).
pub async fn a_replayed_update_logged_without_its_old_row_is_still_checked(kind: Kind) {
    let mut f = Fixture::new(kind, "", 0).await;
    let mut a = f.applier().await;
    let long = "x".repeat(30);
    let mut after = customer(1, &long, "a@x", 11, SOURCE);
    after.fields.push(Field {
        name: "_tandem_version_prev".into(),
        value: Value::Int(10),
    });
    let txs = [
        f.tx(
            1,
            vec![f.change(
                Op::Insert,
                None,
                Some(customer(1, "ann", "a@x", 10, SOURCE)),
            )],
        ),
        f.tx(2, vec![f.change(Op::Update, None, Some(after))]),
    ];
    a.apply(&txs).await.expect("the link goes on");
    let dead = a.list_dead_letters(true).await.expect("list");
    assert_eq!(dead.len(), 1, "{dead:?}");
    f.db.exec("UPDATE customer SET name = 'local' WHERE id = 1")
        .await;
    widen_name_and_replay(&mut f, kind, dead[0].id).await;
    let kinds: Vec<String> = f.conflicts().await.into_iter().map(|c| c.0).collect();
    assert_eq!(kinds, ["update_differs"], "the replay met the local change");
}

/// The applier makes a table's revive trigger, between its transactions, before it writes the
/// table's first tombstone of another node's delete. An account without the TRIGGER privilege
/// cannot: the delete goes to the dead letters with an error that names the privilege (definite,
/// not retried forever), and once the privilege is granted a replay (a new process, as `tandem
/// dead-letters replay` is) makes the trigger and applies the delete.
pub async fn a_refused_revive_trigger_is_a_dead_letter_naming_the_privilege(kind: Kind) {
    let mut f = Fixture::new(kind, "", 0).await;
    let user = crate::support::unique_name("lim");
    let (db, schema) = (f.db_name.clone(), f.schema.clone());
    let (accounts, url, grant, made) = match kind {
        Kind::Pg => (
            vec![
                format!("CREATE ROLE {user} LOGIN"),
                format!(
                    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {user}"
                ),
                format!("GRANT USAGE ON SCHEMA {schema} TO {user}"),
                format!("GRANT ALL ON ALL TABLES IN SCHEMA {schema} TO {user}"),
                format!("GRANT ALL ON ALL SEQUENCES IN SCHEMA {schema} TO {user}"),
            ],
            format!("postgres://{user}@127.0.0.1:{{port}}/{db}"),
            vec![format!("GRANT TRIGGER ON customer TO {user}")],
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'public.customer'::regclass \
             AND tgname = 'tandem_revive'"
                .to_string(),
        ),
        Kind::My => (
            vec![
                format!("CREATE USER '{user}'@'%' IDENTIFIED BY 'pw'"),
                format!("GRANT SELECT, INSERT, UPDATE, DELETE ON `{db}`.* TO '{user}'@'%'"),
                format!("GRANT ALL ON `{schema}`.* TO '{user}'@'%'"),
            ],
            format!("mysql://{user}:pw@127.0.0.1:{{port}}/{db}"),
            // With binary logging on (and log_bin_trust_function_creators off) making a trigger
            // also takes SUPER, as for setup.
            vec![
                format!("GRANT TRIGGER ON `{db}`.* TO '{user}'@'%'"),
                format!("GRANT SUPER ON *.* TO '{user}'@'%'"),
            ],
            format!(
                "SELECT count(*) FROM information_schema.triggers WHERE trigger_schema = '{db}' \
                 AND trigger_name = 'tandem_revive_customer'"
            ),
        ),
    };
    for sql in &accounts {
        f.db.exec(sql).await;
    }
    let mut config = f.config.clone();
    let node = config.nodes.get_mut(TARGET).expect("the target node");
    let port = node.url.port().expect("a port");
    node.url =
        tandem::config::ConnUrl::parse(&url.replace("{port}", &port.to_string())).expect("url");
    let mut a = apply::Applier::connect(&config, &f.source, TARGET)
        .await
        .expect("the limited account connects");
    let row = customer(1, "ann", "a@x", 10, SOURCE);
    a.apply(&[
        f.tx(1, vec![f.change(Op::Insert, None, Some(row.clone()))]),
        f.tx(2, vec![f.change(Op::Delete, Some(row), None)]),
    ])
    .await
    .expect("the link goes on");
    let dead = a.list_dead_letters(true).await.expect("list");
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(
        dead[0].error.contains("revive trigger") && dead[0].error.contains("TRIGGER privilege"),
        "{}",
        dead[0].error
    );
    assert!(
        f.row(1).await.is_some(),
        "the delete waits in the dead letters"
    );
    for sql in &grant {
        f.db.exec(sql).await;
    }
    let mut again = apply::Applier::connect(&config, &f.source, TARGET)
        .await
        .expect("connects");
    again
        .replay_dead_letter(dead[0].id)
        .await
        .expect("the replay makes the trigger");
    assert!(f.row(1).await.is_none(), "the delete applied");
    assert_eq!(
        f.db.one(&made).await.as_deref(),
        Some("1"),
        "the applier made the revive trigger"
    );
}
