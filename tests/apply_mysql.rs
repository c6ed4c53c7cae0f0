//! The applier with MariaDB as the target (the source is PostgreSQL, whose changes are built by hand
//! here: capture lands separately).

use tandem::apply::Applier;
use tandem::model::{Change, Op, Transaction, Value};

use crate::apply_scenarios as sc;
use crate::apply_support::*;

#[tokio::test]
async fn apply_my_setup_is_idempotent_and_dry_run_lists_the_sql() {
    sc::setup_is_idempotent_and_dry_run_lists_the_sql(Kind::My).await;
}

#[tokio::test]
async fn apply_my_applies_once_and_resumes_from_the_checkpoint() {
    sc::applies_once_and_resumes_from_the_checkpoint(Kind::My).await;
}

#[tokio::test]
async fn apply_my_every_conflict_kind_is_detected_and_recorded() {
    sc::every_conflict_kind_is_detected_and_recorded(Kind::My).await;
}

#[tokio::test]
async fn apply_my_merge_keeps_columns_changed_on_one_side() {
    sc::merge_keeps_columns_changed_on_one_side(Kind::My).await;
}

#[tokio::test]
async fn apply_my_prefer_and_owner_rules() {
    sc::prefer_and_owner_rules(Kind::My).await;
}

#[tokio::test]
async fn apply_my_manual_parks_one_key_while_others_flow_until_resolved() {
    sc::manual_parks_one_key_while_others_flow_until_resolved(Kind::My).await;
}

#[tokio::test]
async fn apply_my_manual_on_the_other_node_defers_to_the_decider() {
    sc::manual_on_the_other_node_defers_to_the_decider(Kind::My).await;
}

#[tokio::test]
async fn apply_my_resolve_with_supplied_values() {
    sc::resolve_with_supplied_values(Kind::My).await;
}

#[tokio::test]
async fn apply_my_definite_errors_go_to_the_dead_letter_table_and_replay() {
    sc::definite_errors_go_to_the_dead_letter_table_and_replay(Kind::My).await;
}

#[tokio::test]
async fn apply_my_a_replayed_update_logged_without_its_old_row_is_still_checked() {
    sc::a_replayed_update_logged_without_its_old_row_is_still_checked(Kind::My).await;
}

#[tokio::test]
async fn apply_my_a_replayed_reinsert_weighs_its_own_nodes_deletes_by_when_they_came() {
    sc::a_replayed_reinsert_weighs_its_own_nodes_deletes_by_when_they_came(Kind::My).await;
}

#[tokio::test]
async fn apply_my_a_replayed_reinsert_keeps_the_tombstones_its_transaction_revived() {
    sc::a_replayed_reinsert_keeps_the_tombstones_its_transaction_revived(Kind::My).await;
}

#[tokio::test]
async fn apply_my_delete_policies_soft_and_ignore() {
    sc::delete_policies_soft_and_ignore(Kind::My).await;
}

#[tokio::test]
async fn apply_my_a_multi_table_transaction_applies_whole() {
    sc::a_multi_table_transaction_applies_whole(Kind::My).await;
}

/// An application that never mentions the marker columns: INSERT without a column list and SELECT *
/// see only its own columns (the managed ones are INVISIBLE), and the row is stamped all the same.
#[tokio::test]
async fn apply_my_invisible_columns_keep_column_less_inserts_working() {
    let mut f = Fixture::new(Kind::My, "", 0).await;
    f.db.exec("INSERT INTO customer VALUES (5, 'app', 'app@x', NULL, 0)")
        .await;
    let star = f.db.rows("SELECT * FROM customer WHERE id = 5").await;
    assert_eq!(
        star[0].len(),
        5,
        "SELECT * shows the application's columns only"
    );
    assert_eq!(f.row(5).await.expect("row")[3], Some(TARGET.to_string()));
}

/// The applied transaction is in the binlog with the checkpoint write (the loop marker) in the same
/// transaction, and the session ran with skip_replication.
#[tokio::test]
async fn apply_my_applied_transactions_carry_the_checkpoint_marker() {
    let mut f = Fixture::new(Kind::My, "", 0).await;
    f.db.exec("FLUSH BINARY LOGS").await;
    let file = f.db.rows("SHOW MASTER STATUS").await[0][0]
        .clone()
        .expect("binlog file");
    let mut a = f.applier().await;
    a.apply(&[f.tx(
        1,
        vec![f.change(
            Op::Insert,
            None,
            Some(customer(1, "ann", "a@x", 10, SOURCE)),
        )],
    )])
    .await
    .expect("apply");
    let events = f.db.rows(&format!("SHOW BINLOG EVENTS IN '{file}'")).await;
    // (event type, info); the binlog is server-wide, so find this test's table and its transaction.
    let events: Vec<(String, String)> = events
        .into_iter()
        .map(|r| {
            (
                r[2].clone().unwrap_or_default(),
                r[5].clone().unwrap_or_default(),
            )
        })
        .collect();
    let customer = events
        .iter()
        .position(|(t, i)| t == "Table_map" && i.contains(&format!("({}.customer)", f.db_name)))
        .unwrap_or_else(|| panic!("no customer write in the binlog: {events:#?}"));
    let end = events[customer..]
        .iter()
        .position(|(t, _)| t == "Xid")
        .map(|x| x + customer)
        .expect("the transaction commits");
    assert!(
        events[customer..end]
            .iter()
            .any(|(t, i)| t == "Table_map" && i.contains(&format!("({}.checkpoint)", f.schema))),
        "the checkpoint is written in the same transaction: {:#?}",
        &events[customer..=end]
    );
}

#[tokio::test]
async fn apply_my_values_of_every_kind_are_converted() {
    sc::values_of_every_kind_are_converted(Kind::My).await;
}

#[tokio::test]
async fn apply_my_halt_policy_stops_the_link() {
    sc::halt_policy_stops_the_link(Kind::My).await;
}

#[tokio::test]
async fn apply_my_batched_inserts_with_some_existing_keys() {
    sc::batched_inserts_with_some_existing_keys(Kind::My).await;
}

#[tokio::test]
async fn apply_my_inserts_of_many_batches_match_row_by_row() {
    sc::inserts_of_many_batches_match_row_by_row(Kind::My).await;
}

#[tokio::test]
async fn apply_my_a_key_under_review_holds_its_batch_of_inserts_unwritten() {
    sc::a_key_under_review_holds_its_batch_of_inserts_unwritten(Kind::My).await;
}

#[tokio::test]
async fn apply_my_a_refused_batch_of_inserts_is_dead_lettered_whole() {
    sc::a_refused_batch_of_inserts_is_dead_lettered_whole(Kind::My).await;
}

#[tokio::test]
async fn apply_my_batched_updates_and_deletes_match_row_by_row() {
    sc::batched_updates_and_deletes_match_row_by_row(Kind::My).await;
}

#[tokio::test]
async fn apply_my_a_refused_batch_goes_row_by_row() {
    sc::a_refused_batch_goes_row_by_row(Kind::My).await;
}

#[tokio::test]
async fn apply_my_batched_inserts_keep_escaped_characters() {
    sc::batched_inserts_keep_escaped_characters(Kind::My).await;
}

#[tokio::test]
async fn apply_my_batched_updates_convert_values_of_every_kind() {
    sc::batched_updates_convert_values_of_every_kind(Kind::My).await;
}

/// An insert whose key a local session committed while the apply transaction was under way meets
/// that row as a conflict (`insert_exists`), not as a definite error that sends the whole source
/// transaction to the dead letters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_my_insert_meets_a_row_committed_after_its_snapshot() {
    let mut f = Fixture::new(Kind::My, "", 0).await;
    let (a, locker) = applied_and_locked(&f, 1).await;
    let tx = f.tx(
        2,
        vec![
            order(&f, 7),
            f.change(
                Op::Update,
                Some(customer(1, "ann", "a@x", 10, SOURCE)),
                Some(customer(1, "bob", "a@x", 11, SOURCE)),
            ),
            f.change(Op::Insert, None, Some(customer(2, "cy", "c@x", 12, SOURCE))),
        ],
    );
    let local = "INSERT INTO customer (id, name, email) VALUES (2, 'local', 'l@x')";
    apply_around(&mut f, a, locker, tx, local).await;
    assert_eq!(
        f.db.one(&format!("SELECT COUNT(*) FROM {}", f.book("dead_letter")))
            .await
            .as_deref(),
        Some("0"),
        "the transaction went to the dead letters"
    );
    let conflicts = f.conflicts().await;
    assert!(
        conflicts.iter().any(|c| c.0 == "insert_exists"),
        "the insert of customer 2 is a conflict: {conflicts:?}"
    );
}

/// An update whose row a local delete removed while the apply transaction was under way is weighed
/// against that delete's tombstone: the delete is later than the update, so the row stays deleted
/// (as the other node decides when the delete reaches it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_my_update_meets_a_tombstone_written_after_its_snapshot() {
    let mut f = Fixture::new(Kind::My, "", 0).await;
    let (a, locker) = applied_and_locked(&f, 5).await;
    // A local write of customer 1, later than the incoming update (the trigger stamps now).
    f.db.exec("UPDATE customer SET name = 'local' WHERE id = 1")
        .await;
    // The order between keeps the two updates out of one batch.
    let tx = f.tx(
        2,
        vec![
            order(&f, 7),
            f.change(
                Op::Update,
                Some(customer(5, "eve", "e@x", 10, SOURCE)),
                Some(customer(5, "eva", "e@x", 11, SOURCE)),
            ),
            order(&f, 8),
            f.change(
                Op::Update,
                Some(customer(1, "ann", "a@x", 10, SOURCE)),
                Some(customer(1, "bob", "a@x", 11, SOURCE)),
            ),
        ],
    );
    apply_around(&mut f, a, locker, tx, "DELETE FROM customer WHERE id = 1").await;
    assert_eq!(
        f.row(1).await,
        None,
        "the update came back over a later delete: {:?}",
        f.conflicts().await
    );
}

/// Customers 1 and 5 applied from the source (version 10), and a local session holding a lock on
/// customer `locked`.
async fn applied_and_locked(f: &Fixture, locked: i32) -> (Applier, Db) {
    let mut a = f.applier().await;
    let rows = [(1, "ann", "a@x"), (5, "eve", "e@x")]
        .iter()
        .map(|(id, name, email)| {
            f.change(
                Op::Insert,
                None,
                Some(customer(*id, name, email, 10, SOURCE)),
            )
        })
        .collect();
    a.apply(&[f.tx(1, rows)]).await.expect("apply");
    let mut locker = Db::open(Kind::My, &f.db_name).await;
    locker.exec("BEGIN").await;
    locker
        .exec(&format!(
            "UPDATE customer SET name = 'held' WHERE id = {locked}"
        ))
        .await;
    (a, locker)
}

fn order(f: &Fixture, id: i64) -> Change {
    Change {
        table: f.source_table("orders"),
        op: Op::Insert,
        before: None,
        after: Some(image(&[("id", Value::Int(id))])),
    }
}

/// Applies `tx`, whose first change is an insert (its tombstone check reads) and whose second waits
/// on the locked customer; while it waits, runs `local` as a local write, then releases the lock.
async fn apply_around(
    f: &mut Fixture,
    mut a: Applier,
    mut locker: Db,
    tx: Transaction,
    local: &str,
) {
    let apply = tokio::spawn(async move { a.apply(&[tx]).await.map(|_| ()) });
    // The update cannot finish while the row is locked: once it runs, the transaction has read.
    let running = format!(
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST \
         WHERE info LIKE '%`{}`.`customer`%' AND id <> CONNECTION_ID()",
        f.db_name
    );
    let mut probe = Db::open(Kind::My, &f.db_name).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while probe.one(&running).await.as_deref() != Some("1") {
        assert!(
            std::time::Instant::now() < deadline,
            "the apply transaction never reached the locked row"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    f.db.exec(local).await;
    locker.exec("COMMIT").await;
    apply.await.expect("apply task").expect("apply");
}

#[tokio::test]
async fn apply_my_a_group_of_one_row_transactions_matches_one_at_a_time() {
    sc::a_group_of_one_row_transactions_matches_one_at_a_time(Kind::My).await;
}

#[tokio::test]
async fn apply_my_a_refused_revive_trigger_is_a_dead_letter_naming_the_privilege() {
    sc::a_refused_revive_trigger_is_a_dead_letter_naming_the_privilege(Kind::My).await;
}

#[tokio::test]
async fn apply_my_a_delete_released_behind_a_resolution_makes_the_revive_trigger() {
    sc::a_delete_released_behind_a_resolution_makes_the_revive_trigger(Kind::My).await;
}

/// A target whose `max_allowed_packet` is smaller than a batch of wide rows: the batches shrink to
/// fit it (before, the server refused the statement and closed the connection, and the same group
/// was sent again after every reconnect: the link never moved). A row that alone is larger is
/// refused before it is sent, with an error that names the setting, and the session stays up.
#[tokio::test]
async fn apply_my_batches_fit_the_targets_max_allowed_packet() {
    const PACKET: usize = 256 << 10;
    let server = tandem::harness::MariaDb::start_with(tandem::harness::MariaDbOptions {
        settings: vec![("max-allowed-packet".into(), PACKET.to_string())],
    })
    .await
    .expect("MariaDB starts");
    let mut f = Fixture::on_maria(&server).await;
    f.db.exec("ALTER TABLE typed MODIFY t LONGTEXT").await;
    let mut a = f.applier().await;
    let table = f.source_table("typed");
    let typed = |id: i64, text: String| Change {
        table: table.clone(),
        op: Op::Insert,
        before: None,
        after: Some(image(&[
            ("id", Value::Int(id)),
            ("t", Value::Text(text)),
            ("_tandem_version", Value::Int(5)),
            ("_tandem_origin", Value::Text(SOURCE.into())),
        ])),
    };
    // 40 rows of 20,000 characters: 800,000 bytes, three times the packet.
    let wide = (1..=40)
        .map(|id| typed(id, format!("{id:05}").repeat(4_000)))
        .collect();
    a.apply(&[f.tx(1, wide)]).await.expect("applied in batches");
    assert_eq!(
        f.db.one("SELECT CONCAT(COUNT(*), ' ', SUM(LENGTH(t))) FROM typed")
            .await,
        Some("40 800000".to_string())
    );

    let huge = typed(41, "h".repeat(PACKET + 1));
    let e = a
        .apply(&[f.tx(2, vec![huge])])
        .await
        .expect_err("a row larger than the packet cannot be written");
    let text = e.to_string();
    assert!(!e.is_transient(), "{text}");
    // It says why the row was not applied, what to change, and that no dead letter could hold it.
    assert!(
        text.contains("max_allowed_packet on this target is 262144 bytes")
            && text.contains("fix: raise max_allowed_packet on the target")
            && text.contains("could not be recorded in the dead-letter table"),
        "{text}"
    );
    // Nothing of it was written, and the session is the same one (not closed by the server).
    a.apply(&[f.tx(3, vec![typed(42, "small".into())])])
        .await
        .expect("the next transaction applies");
    assert_eq!(
        f.db.one("SELECT GROUP_CONCAT(id ORDER BY id) FROM typed WHERE id > 40")
            .await,
        Some("42".to_string())
    );
}
