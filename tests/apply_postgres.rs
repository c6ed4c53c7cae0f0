//! The applier with PostgreSQL as the target (the source is MySQL/MariaDB, whose changes are built
//! by hand here: capture lands separately).

use tandem::model::Op;

use crate::apply_scenarios as sc;
use crate::apply_support::*;

#[tokio::test]
async fn apply_pg_setup_is_idempotent_and_dry_run_lists_the_sql() {
    sc::setup_is_idempotent_and_dry_run_lists_the_sql(Kind::Pg).await;
}

#[tokio::test]
async fn apply_pg_applies_once_and_resumes_from_the_checkpoint() {
    sc::applies_once_and_resumes_from_the_checkpoint(Kind::Pg).await;
}

#[tokio::test]
async fn apply_pg_every_conflict_kind_is_detected_and_recorded() {
    sc::every_conflict_kind_is_detected_and_recorded(Kind::Pg).await;
}

#[tokio::test]
async fn apply_pg_merge_keeps_columns_changed_on_one_side() {
    sc::merge_keeps_columns_changed_on_one_side(Kind::Pg).await;
}

#[tokio::test]
async fn apply_pg_prefer_and_owner_rules() {
    sc::prefer_and_owner_rules(Kind::Pg).await;
}

#[tokio::test]
async fn apply_pg_manual_parks_one_key_while_others_flow_until_resolved() {
    sc::manual_parks_one_key_while_others_flow_until_resolved(Kind::Pg).await;
}

#[tokio::test]
async fn apply_pg_manual_on_the_other_node_defers_to_the_decider() {
    sc::manual_on_the_other_node_defers_to_the_decider(Kind::Pg).await;
}

#[tokio::test]
async fn apply_pg_resolve_with_supplied_values() {
    sc::resolve_with_supplied_values(Kind::Pg).await;
}

#[tokio::test]
async fn apply_pg_definite_errors_go_to_the_dead_letter_table_and_replay() {
    sc::definite_errors_go_to_the_dead_letter_table_and_replay(Kind::Pg).await;
}

#[tokio::test]
async fn apply_pg_a_replayed_update_logged_without_its_old_row_is_still_checked() {
    sc::a_replayed_update_logged_without_its_old_row_is_still_checked(Kind::Pg).await;
}

#[tokio::test]
async fn apply_pg_a_replayed_reinsert_weighs_its_own_nodes_deletes_by_when_they_came() {
    sc::a_replayed_reinsert_weighs_its_own_nodes_deletes_by_when_they_came(Kind::Pg).await;
}

#[tokio::test]
async fn apply_pg_a_replayed_reinsert_keeps_the_tombstones_its_transaction_revived() {
    sc::a_replayed_reinsert_keeps_the_tombstones_its_transaction_revived(Kind::Pg).await;
}

#[tokio::test]
async fn apply_pg_delete_policies_soft_and_ignore() {
    sc::delete_policies_soft_and_ignore(Kind::Pg).await;
}

#[tokio::test]
async fn apply_pg_a_multi_table_transaction_applies_whole() {
    sc::a_multi_table_transaction_applies_whole(Kind::Pg).await;
}

/// The apply session's replication origin marks its transactions: a decoder asked for local changes
/// only (`only-local`) sees none of them, while a local write on the same table is seen.
#[tokio::test]
async fn apply_pg_applied_transactions_carry_the_replication_origin() {
    let mut f = Fixture::with_source(Kind::Pg, "", 0, "origintest").await;
    let slot = unique_slot();
    f.db.exec(&format!(
        "SELECT pg_create_logical_replication_slot('{slot}', 'test_decoding')"
    ))
    .await;
    let mut a = f.applier().await;
    a.apply(&[f.tx(
        1,
        vec![f.change(
            Op::Insert,
            None,
            Some(customer(1, "ann", "a@x", 10, "origintest")),
        )],
    )])
    .await
    .expect("apply");
    f.db.exec("INSERT INTO customer (id, name) VALUES (2, 'local')")
        .await;
    let local_only = f
        .db
        .rows(&format!("SELECT data FROM pg_logical_slot_peek_changes('{slot}', NULL, NULL, 'only-local', '1')"))
        .await;
    let text: Vec<String> = local_only
        .into_iter()
        .filter_map(|r| r[0].clone())
        .collect();
    assert!(
        text.iter().any(|d| d.contains("id[integer]:2")),
        "the local insert is seen: {text:?}"
    );
    assert!(
        !text.iter().any(|d| d.contains("id[integer]:1")),
        "the applied insert is filtered: {text:?}"
    );
    assert!(!text.iter().any(|d| d.contains("checkpoint")), "{text:?}");
    let all =
        f.db.rows(&format!(
            "SELECT data FROM pg_logical_slot_peek_changes('{slot}', NULL, NULL)"
        ))
        .await;
    let all: Vec<String> = all.into_iter().filter_map(|r| r[0].clone()).collect();
    assert!(
        all.iter()
            .any(|d| d.contains(".checkpoint:") && d.contains("source_node[text]:'origintest'")),
        "{all:?}"
    );
    let origins =
        f.db.one("SELECT string_agg(roname, ',') FROM pg_replication_origin")
            .await;
    assert!(origins.unwrap_or_default().contains("tandem_origintest"));
    f.db.exec(&format!("SELECT pg_drop_replication_slot('{slot}')"))
        .await;
}

fn unique_slot() -> String {
    crate::support::unique_name("tslot")
}

#[tokio::test]
async fn apply_pg_values_of_every_kind_are_converted() {
    sc::values_of_every_kind_are_converted(Kind::Pg).await;
}

#[tokio::test]
async fn apply_pg_halt_policy_stops_the_link() {
    sc::halt_policy_stops_the_link(Kind::Pg).await;
}

#[tokio::test]
async fn apply_pg_batched_inserts_with_some_existing_keys() {
    sc::batched_inserts_with_some_existing_keys(Kind::Pg).await;
}

#[tokio::test]
async fn apply_pg_inserts_of_many_batches_match_row_by_row() {
    sc::inserts_of_many_batches_match_row_by_row(Kind::Pg).await;
}

#[tokio::test]
async fn apply_pg_a_key_under_review_holds_its_batch_of_inserts_unwritten() {
    sc::a_key_under_review_holds_its_batch_of_inserts_unwritten(Kind::Pg).await;
}

#[tokio::test]
async fn apply_pg_a_refused_batch_of_inserts_is_dead_lettered_whole() {
    sc::a_refused_batch_of_inserts_is_dead_lettered_whole(Kind::Pg).await;
}

#[tokio::test]
async fn apply_pg_batched_updates_and_deletes_match_row_by_row() {
    sc::batched_updates_and_deletes_match_row_by_row(Kind::Pg).await;
}

#[tokio::test]
async fn apply_pg_a_refused_batch_goes_row_by_row() {
    sc::a_refused_batch_goes_row_by_row(Kind::Pg).await;
}

#[tokio::test]
async fn apply_pg_batched_inserts_keep_escaped_characters() {
    sc::batched_inserts_keep_escaped_characters(Kind::Pg).await;
}

#[tokio::test]
async fn apply_pg_batched_updates_convert_values_of_every_kind() {
    sc::batched_updates_convert_values_of_every_kind(Kind::Pg).await;
}

#[tokio::test]
async fn apply_pg_a_group_of_one_row_transactions_matches_one_at_a_time() {
    sc::a_group_of_one_row_transactions_matches_one_at_a_time(Kind::Pg).await;
}

/// A batch of inserts goes in as one `COPY`, which PostgreSQL refuses into a table with row-level
/// security for a role its policies apply to. The applier reads that from the catalog before its
/// first batch of a table; a table that gains it while the applier runs gets a refused `COPY`: the
/// session is ended (tokio-postgres is one answer out of step after it), and on the next one the
/// transaction is applied with `INSERT`. Every row arrives, once. (Without the fallback the
/// transaction was dead-lettered; without the session ended, the next statement failed with a
/// closed connection.)
#[tokio::test]
async fn apply_pg_a_table_with_row_level_security_takes_its_inserts_without_copy() {
    let mut f = Fixture::new(Kind::Pg, "", 0).await;
    let role = crate::support::unique_name("rls_applier");
    f.db.exec(&format!(
        "CREATE ROLE {role} LOGIN; \
         GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}; \
         GRANT USAGE ON SCHEMA \"{s}\" TO {role}; \
         GRANT ALL ON ALL TABLES IN SCHEMA \"{s}\" TO {role}; \
         GRANT ALL ON ALL SEQUENCES IN SCHEMA \"{s}\" TO {role}",
        s = f.schema
    ))
    .await;
    let mut config = f.config.clone();
    let node = config.nodes.get_mut(TARGET).expect("target node");
    node.url = tandem::config::ConnUrl::parse(&format!(
        "postgres://{role}@127.0.0.1:{}/{}",
        pg().await.port(),
        f.db_name
    ))
    .expect("url");
    let mut applier = None;
    apply_inserts(&f, &config, &mut applier, 1, 1..=600).await;
    f.db.exec(
        "ALTER TABLE customer ENABLE ROW LEVEL SECURITY; \
         CREATE POLICY anything ON customer USING (true) WITH CHECK (true)",
    )
    .await;
    // The session read the table before: its COPY is refused, and the next session inserts.
    apply_inserts(&f, &config, &mut applier, 2, 601..=1200).await;
    // A new session reads the catalog first.
    applier = None;
    apply_inserts(&f, &config, &mut applier, 3, 1201..=1800).await;
    let mut a = applier.expect("connected");
    let dead = a.list_dead_letters(true).await.expect("dead letters");
    assert!(dead.is_empty(), "nothing dead-lettered: {dead:?}");
    let n = f.db.rows("SELECT count(*) FROM customer").await;
    assert_eq!(
        n,
        vec![vec![Some("1800".to_string())]],
        "every row arrived, once"
    );
}

/// Applies source transaction `n` inserting customers `ids`, connecting again after a transient
/// error as `tandem run` does.
async fn apply_inserts(
    f: &Fixture,
    config: &tandem::config::Config,
    applier: &mut Option<tandem::apply::Applier>,
    n: u64,
    ids: std::ops::RangeInclusive<i32>,
) {
    let inserts = ids
        .map(|id| f.change(Op::Insert, None, Some(customer(id, "r", "x@x", 5, SOURCE))))
        .collect();
    tandem::apply::apply_retrying(config, SOURCE, TARGET, applier, &[f.tx(n, inserts)], 3)
        .await
        .expect("applied");
}

/// The checkpoint row and the commit go to the server together (`commit_with_checkpoint`): a
/// checkpoint write the server refuses leaves nothing of its transaction committed (with the
/// COMMIT sent first, rows 4-6 committed), and once it is accepted again the transaction applies,
/// once (the checkpoint moves, nothing is dead-lettered). `halt`, so that the error seen is the
/// checkpoint's own, not that of a dead-letter record (which writes a checkpoint too).
#[tokio::test]
async fn apply_pg_a_refused_checkpoint_write_commits_nothing() {
    let mut f = Fixture::new(Kind::Pg, "on_error = \"halt\"", 0).await;
    let config = f.config.clone();
    let mut applier = None;
    apply_inserts(&f, &config, &mut applier, 1, 1..=3).await;
    let checkpoint = format!("SELECT position FROM \"{}\".checkpoint", f.schema);
    let before = f.db.rows(&checkpoint).await;
    // The applier's session skips ordinary triggers (replica role): this one fires always.
    f.db.exec(&format!(
        "CREATE FUNCTION refuse_checkpoint() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN RAISE EXCEPTION 'checkpoint refused'; END $$; \
         CREATE TRIGGER refuse BEFORE INSERT OR UPDATE ON \"{s}\".checkpoint \
         FOR EACH ROW EXECUTE FUNCTION refuse_checkpoint(); \
         ALTER TABLE \"{s}\".checkpoint ENABLE ALWAYS TRIGGER refuse",
        s = f.schema
    ))
    .await;
    let tx = f.tx(
        2,
        (4..=6)
            .map(|id| f.change(Op::Insert, None, Some(customer(id, "r", "x@x", 5, SOURCE))))
            .collect(),
    );
    let refused = tandem::apply::apply_retrying(
        &config,
        SOURCE,
        TARGET,
        &mut applier,
        std::slice::from_ref(&tx),
        1,
    )
    .await;
    let refused = refused.expect_err("the refused checkpoint fails the apply");
    assert!(
        refused.to_string().contains("a bookkeeping statement")
            && refused.to_string().contains("P0001"),
        "the checkpoint's error: {refused}"
    );
    let count = "SELECT count(*) FROM customer";
    assert_eq!(
        f.db.rows(count).await,
        vec![vec![Some("3".to_string())]],
        "nothing of the refused transaction committed"
    );
    assert_eq!(
        f.db.rows(&checkpoint).await,
        before,
        "the checkpoint did not move"
    );
    f.db.exec(&format!(
        "DROP TRIGGER refuse ON \"{}\".checkpoint",
        f.schema
    ))
    .await;
    tandem::apply::apply_retrying(&config, SOURCE, TARGET, &mut applier, &[tx], 3)
        .await
        .expect("applied once the checkpoint is accepted");
    assert_eq!(f.db.rows(count).await, vec![vec![Some("6".to_string())]]);
    assert_ne!(f.db.rows(&checkpoint).await, before, "the checkpoint moved");
    let dead = applier
        .as_mut()
        .expect("connected")
        .list_dead_letters(true)
        .await
        .expect("dead letters");
    assert!(dead.is_empty(), "nothing dead-lettered: {dead:?}");
}

#[tokio::test]
async fn apply_pg_a_refused_revive_trigger_is_a_dead_letter_naming_the_privilege() {
    sc::a_refused_revive_trigger_is_a_dead_letter_naming_the_privilege(Kind::Pg).await;
}

#[tokio::test]
async fn apply_pg_a_delete_released_behind_a_resolution_makes_the_revive_trigger() {
    sc::a_delete_released_behind_a_resolution_makes_the_revive_trigger(Kind::Pg).await;
}

/// A replay that fails for a definite reason, and whose error cannot be recorded on the entry
/// either (here a trigger on the dead-letter table, enabled ALWAYS so that the applier's replica
/// role fires it, refuses the update), says the entry is as it was and why, instead of "stays open
/// with this error"; the replay's own error is the one shown.
#[tokio::test]
async fn apply_pg_a_replay_whose_error_cannot_be_recorded_says_the_entry_is_as_it_was() {
    let mut f = Fixture::new(Kind::Pg, "", 0).await;
    let mut a = f.applier().await;
    a.apply(&[f.too_long_insert(1, 1)])
        .await
        .expect("dead-lettered");
    let dead = a.list_dead_letters(true).await.expect("list");
    assert_eq!(dead.len(), 1, "{dead:?}");
    f.db.exec(&format!(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS \
         $$BEGIN RAISE EXCEPTION 'dead letters are read-only today'; END$$; \
         CREATE TRIGGER refuse BEFORE UPDATE ON \"{0}\".dead_letter \
         FOR EACH ROW EXECUTE FUNCTION refuse();          ALTER TABLE \"{0}\".dead_letter ENABLE ALWAYS TRIGGER refuse",
        f.schema
    ))
    .await;
    let failure = tandem::apply::replay_dead_letter(&f.config, TARGET, dead[0].id)
        .await
        .expect_err("the name is still too long");
    let left = failure.left().expect("the entry exists");
    assert!(
        left.starts_with("the entry is as it was (recording this error on it failed")
            && left.contains("dead letters are read-only today"),
        "{left}"
    );
    assert!(
        failure.to_string().contains("column name"),
        "the replay's own error: {failure}"
    );
    let again = a.list_dead_letters(true).await.expect("list");
    assert_eq!(again[0].attempts, 1, "nothing was recorded");
}
