//! A PostgreSQL table whose rules need only the key and tandem's version is logged without its old
//! rows (`REPLICA IDENTITY DEFAULT`): the version checks still hold. An update carries its old
//! version in the new row (`_tandem_version_prev`), a delete in the tombstone its trigger writes
//! just before the row goes; a concurrent change on the other node is a conflict either way, one
//! delete at a time or many in one statement.

use std::time::Duration;

use mysql_async::prelude::Queryable;

use crate::support::{start_tandem_run, stop_tandem_run, wait_for, Pair};

const TABLE: &str = "CREATE TABLE items (id int PRIMARY KEY, v varchar(20) NOT NULL)";

/// `(source_node, kind, before_image)` of each conflict on MariaDB for key `id`.
async fn maria_conflicts(pair: &Pair, id: i32) -> Vec<(String, String, Option<String>)> {
    let mut m = pair.maria.connect("desk").await.expect("connect");
    let rows = m
        .exec(
            "SELECT source_node, kind, CAST(before_image AS CHAR) FROM tandem.conflict \
             WHERE table_name = 'items' AND row_key = ? ORDER BY id",
            (format!("{{\"id\":\"{id}\"}}"),),
        )
        .await
        .expect("conflicts");
    m.disconnect().await.ok();
    rows
}

async fn maria_ids(pair: &Pair) -> Vec<i32> {
    let mut m = pair.maria.connect("desk").await.expect("connect");
    let ids = m
        .query("SELECT id FROM items ORDER BY id")
        .await
        .expect("ids");
    m.disconnect().await.ok();
    ids
}

/// `items`' replica identity (`pg_class.relreplident`: `d` default, `f` full).
async fn identity(c: &tokio_postgres::Client) -> String {
    c.query_one(
        "SELECT relreplident::text FROM pg_class WHERE oid = 'items'::regclass",
        &[],
    )
    .await
    .expect("identity")
    .get(0)
}

#[tokio::test]
async fn pg_a_table_logged_without_old_rows_still_checks_each_version() {
    let pair = Pair::start(
        TABLE,
        TABLE,
        "[[tables]]\nname = \"items\"\nkey = [\"id\"]\n",
    )
    .await;
    let c = pair.pg.connect("crm").await.expect("connect");
    let identity = identity(&c).await;
    assert_eq!(identity, "d", "setup logs the key only");

    let run = start_tandem_run(&pair.config, 2).await;
    c.batch_execute("INSERT INTO items SELECT g, 'new' FROM generate_series(1, 6) g")
        .await
        .expect("insert");
    wait_for("the rows on MariaDB", Duration::from_secs(30), || async {
        (maria_ids(&pair).await.len() == 6).then_some(())
    })
    .await;
    stop_tandem_run(run).await;

    // With tandem stopped, both nodes change the same rows. crm first: MariaDB's later writes win.
    let version = |id: i32| {
        let c = &c;
        async move {
            c.query_one("SELECT _tandem_version FROM items WHERE id = $1", &[&id])
                .await
                .expect("version")
                .get::<_, i64>(0)
        }
    };
    let (v2, v5) = (version(2).await, version(5).await);
    c.batch_execute(
        "UPDATE items SET v = 'crm' WHERE id = 1; DELETE FROM items WHERE id = 2; \
         DELETE FROM items WHERE id = 3; DELETE FROM items WHERE id IN (4, 5, 6)",
    )
    .await
    .expect("crm's writes");
    let prev: Option<i64> = c
        .query_one("SELECT _tandem_version_prev FROM items WHERE id = 1", &[])
        .await
        .expect("the old version")
        .get(0);
    assert!(prev.is_some(), "the update trigger keeps the old version");
    let mut m = pair.maria.connect("desk").await.expect("connect");
    m.query_drop(
        "UPDATE items SET v = 'desk' WHERE id = 1; UPDATE items SET v = 'desk' WHERE id = 2; \
         UPDATE items SET v = 'desk' WHERE id = 5",
    )
    .await
    .expect("MariaDB's writes");
    m.disconnect().await.ok();

    let run = start_tandem_run(&pair.config, 2).await;
    c.batch_execute("INSERT INTO items VALUES (100, 'marker')")
        .await
        .expect("marker");
    wait_for(
        "crm's writes on MariaDB",
        Duration::from_secs(30),
        || async { maria_ids(&pair).await.contains(&100).then_some(()) },
    )
    .await;
    stop_tandem_run(run).await;

    let kinds = |rows: &[(String, String, Option<String>)]| -> Vec<String> {
        rows.iter()
            .filter(|(node, ..)| node == "crm")
            .map(|(_, kind, _)| kind.clone())
            .collect()
    };
    let one = maria_conflicts(&pair, 1).await;
    assert_eq!(
        kinds(&one),
        ["update_differs"],
        "the update's version check failed: {one:?}"
    );
    for (id, old) in [(2, v2), (5, v5)] {
        let rows = maria_conflicts(&pair, id).await;
        assert_eq!(
            kinds(&rows),
            ["delete_differs"],
            "the delete of {id} met the row MariaDB changed: {rows:?}"
        );
        let before = rows[0].2.clone().unwrap_or_default();
        assert!(
            before.contains(&old.to_string()),
            "the audit's before-image of {id} names the deleted version {old}: {before}"
        );
    }
    for id in [3, 4, 6] {
        let rows = maria_conflicts(&pair, id).await;
        assert!(
            rows.is_empty(),
            "the unchanged row {id} is deleted without a conflict: {rows:?}"
        );
    }
    let left = maria_ids(&pair).await;
    assert!(
        !left.contains(&3) && !left.contains(&4) && !left.contains(&6),
        "the unchallenged deletes applied: {left:?}"
    );
}

/// A deferrable primary key is no replica identity to PostgreSQL: setup keeps such a table logged
/// whole, and the application's updates and deletes go on (with `REPLICA IDENTITY DEFAULT` the
/// server refuses them on a published table).
#[tokio::test]
async fn pg_a_deferrable_primary_key_keeps_the_old_rows_logged() {
    let pair = Pair::start(
        "CREATE TABLE items (id int PRIMARY KEY DEFERRABLE, v varchar(20) NOT NULL)",
        TABLE,
        "[[tables]]\nname = \"items\"\nkey = [\"id\"]\n",
    )
    .await;
    let c = pair.pg.connect("crm").await.expect("connect");
    let identity = identity(&c).await;
    assert_eq!(identity, "f");
    c.batch_execute(
        "INSERT INTO items VALUES (1, 'a'); UPDATE items SET v = 'b' WHERE id = 1; \
         DELETE FROM items WHERE id = 1",
    )
    .await
    .expect("the application's writes");
}
