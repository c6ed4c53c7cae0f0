//! What `tandem setup` installs on MariaDB: no insert trigger until a table holds another node's
//! tombstone, the applier making it before the first, and an earlier install moved onto it.

use std::time::Duration;

use mysql_async::prelude::Queryable;

use super::pair;
use crate::support::{tandem_cli, wait_for};

async fn maria_stones(c: &mut mysql_async::Conn, id: i32) -> Vec<(String, i64)> {
    c.exec(
        "SELECT node, revived FROM tandem.tombstone WHERE target_table = 'desk.items' \
         AND row_key = ? ORDER BY node",
        (format!("{{\"id\":\"{id}\"}}"),),
    )
    .await
    .expect("tombstones")
}

/// The triggers of `desk.items` on MariaDB, sorted.
async fn maria_triggers(c: &mut mysql_async::Conn) -> Vec<String> {
    let mut triggers: Vec<String> = c
        .query("SELECT trigger_name FROM information_schema.triggers WHERE event_object_schema = 'desk'")
        .await
        .expect("triggers");
    triggers.sort();
    triggers
}

/// On MariaDB a local insert revives only the tombstones of other nodes' deletes (a peer counts
/// this node's own deletes as seen: the link carried them first), and the trigger that does it
/// exists only once the table holds one: setup installs none on a table without, a local delete
/// and the re-insert of its key leave the tombstone alone. The applier makes the trigger before it
/// writes the table's first tombstone of another node's delete; a local insert of that key then
/// bumps it, and the insert reaches the deleting node as the later write it is, no conflict.
#[tokio::test]
async fn maria_the_revive_trigger_comes_with_the_first_applied_tombstone() {
    let pair = pair().await;
    let mut a = pair.maria.connect("desk").await.expect("connect");
    assert_eq!(
        maria_triggers(&mut a).await,
        ["tandem_delete_items", "tandem_update_items"],
        "no revive trigger on a table without tombstones"
    );
    a.query_drop("INSERT INTO items VALUES (1, 'doomed'); DELETE FROM items WHERE id = 1")
        .await
        .expect("a local insert and delete");
    a.query_drop("INSERT INTO items VALUES (1, 'again')")
        .await
        .expect("a re-insert");
    assert_eq!(
        maria_stones(&mut a, 1).await,
        vec![("helpdesk".to_string(), 0)],
        "the re-insert left its own node's tombstone alone"
    );
    let run = crate::support::start_tandem_run(&pair.config, 2).await;
    let c = pair.pg.connect("crm").await.expect("connect");
    c.batch_execute("INSERT INTO items VALUES (5, 'pg')")
        .await
        .expect("insert on PostgreSQL");
    let maria = &pair.maria;
    let has = |sql: &'static str| async move {
        let mut w = maria.connect("desk").await.ok()?;
        let n: Option<i64> = w.query_first(sql).await.ok()?;
        w.disconnect().await.ok();
        (n == Some(1)).then_some(())
    };
    wait_for("row 5 on MariaDB", Duration::from_secs(30), || {
        has("SELECT count(*) FROM items WHERE id = 5")
    })
    .await;
    c.batch_execute("DELETE FROM items WHERE id = 5")
        .await
        .expect("delete on PostgreSQL");
    wait_for(
        "the applied delete's tombstone on MariaDB",
        Duration::from_secs(30),
        || has("SELECT count(*) FROM tandem.tombstone WHERE node = 'crm'"),
    )
    .await;
    assert_eq!(
        maria_triggers(&mut a).await,
        [
            "tandem_delete_items",
            "tandem_revive_items",
            "tandem_update_items"
        ],
        "the applier made the revive trigger"
    );
    a.query_drop("INSERT INTO items VALUES (5, 'maria')")
        .await
        .expect("a local insert of the deleted key");
    assert_eq!(
        maria_stones(&mut a, 5).await,
        vec![("crm".to_string(), 1)],
        "the insert bumped the applied delete's tombstone"
    );
    let stamped: Option<(String, bool)> = a
        .query_first(
            "SELECT _tandem_origin, _tandem_version > 1000000000000000 FROM items WHERE id = 5",
        )
        .await
        .expect("the row");
    assert_eq!(
        stamped,
        Some(("helpdesk".to_string(), true)),
        "defaults stamp the insert"
    );
    wait_for(
        "MariaDB's insert on PostgreSQL",
        Duration::from_secs(30),
        || async {
            let c = pair.pg.connect("crm").await.ok()?;
            let v: String = c
                .query_opt("SELECT v FROM items WHERE id = 5", &[])
                .await
                .ok()??
                .get(0);
            (v == "maria").then_some(())
        },
    )
    .await;
    assert_eq!(
        pair.conflicts().await.0,
        0,
        "an insert after the delete it saw is no conflict"
    );
    crate::support::stop_tandem_run(run).await;
    a.disconnect().await.ok();
}

/// The same on MariaDB: the previous version's BEFORE INSERT trigger (which stamped and bumped
/// tombstones) is dropped by running setup again, so a re-insert bumps an applied delete's
/// tombstone once.
#[tokio::test]
async fn maria_setup_moves_an_earlier_install_onto_the_new_triggers() {
    let pair = pair().await;
    let mut c = pair.maria.connect("desk").await.expect("connect");
    c.query_drop(
        "CREATE TRIGGER desk.tandem_insert_items BEFORE INSERT ON desk.items FOR EACH ROW BEGIN \
         IF COALESCE(@tandem_applying, 0) = 0 THEN SET NEW._tandem_origin = 'helpdesk'; \
         SET NEW._tandem_version = GREATEST(COALESCE(NEW._tandem_version, 0) + 1, CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000 AS SIGNED)); \
         UPDATE tandem.tombstone SET revived = revived + 1 WHERE target_table = 'desk.items' \
         AND row_key = CONCAT('{', JSON_QUOTE('id'), ':', JSON_QUOTE(CAST(NEW.id AS CHAR)), '}'); END IF; END",
    )
    .await
    .expect("the previous version's insert trigger");
    // The flag of the version before this one: a sequence, raised by a trigger on the tombstone
    // table, read by the revive trigger.
    c.query_drop(
        "CREATE SEQUENCE tandem.tombstoned_desk_items CACHE 1000000; \
         CREATE TRIGGER tandem.tandem_mark AFTER INSERT ON tandem.tombstone FOR EACH ROW \
         BEGIN IF NEW.target_table = 'desk.items' THEN IF NEXTVAL(tandem.tombstoned_desk_items) < 4611686018427387904 \
         THEN DO SETVAL(tandem.tombstoned_desk_items, 4611686018427387904); END IF; END IF; END; \
         CREATE OR REPLACE TRIGGER desk.tandem_revive_items AFTER INSERT ON desk.items FOR EACH ROW BEGIN \
         IF COALESCE(@tandem_applying, 0) = 0 AND NEXTVAL(tandem.tombstoned_desk_items) > 4611686018427387904 THEN \
         UPDATE tandem.tombstone SET revived = revived + 1 WHERE target_table = 'desk.items' \
         AND row_key = CONCAT('{', JSON_QUOTE('id'), ':', JSON_QUOTE(CAST(NEW.id AS CHAR)), '}'); END IF; END",
    )
    .await
    .expect("the previous version's flag");
    c.query_drop(
        "SET @tandem_applying = 1; \
         INSERT INTO tandem.tombstone (target_table, row_key, version, node) \
         VALUES ('desk.items', '{\"id\":\"1\"}', 42, 'crm'); SET @tandem_applying = 0",
    )
    .await
    .expect("a delete applied under the earlier install");
    let setup = tandem_cli(&["setup"], &pair.config).await;
    assert!(
        setup.status.success(),
        "setup over the earlier install: {}",
        String::from_utf8_lossy(&setup.stderr)
    );
    assert_eq!(
        maria_triggers(&mut c).await,
        [
            "tandem_delete_items",
            "tandem_revive_items",
            "tandem_update_items"
        ],
        "the table's triggers after the upgrade (it holds an applied delete's tombstone)"
    );
    let flags: Option<i64> = c
        .query_first(
            "SELECT count(*) FROM information_schema.triggers WHERE trigger_name = 'tandem_mark'",
        )
        .await
        .expect("the flag trigger");
    assert_eq!(flags, Some(0), "the earlier flag trigger is gone");
    let left: Option<i64> = c
        .query_first(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'tandem' \
             AND table_name = 'tombstoned_desk_items'",
        )
        .await
        .expect("the flag");
    assert_eq!(left, Some(0), "the earlier flag is gone");
    c.query_drop("INSERT INTO items VALUES (1, 'back')")
        .await
        .expect("a re-insert");
    assert_eq!(
        maria_stones(&mut c, 1).await,
        vec![("crm".to_string(), 1)],
        "the tombstone is bumped once"
    );
    c.disconnect().await.ok();
}
