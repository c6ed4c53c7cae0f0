//! What `tandem setup` installs, on real servers: the cheap paths (column defaults, the tombstone
//! flag) keep every guarantee of the row triggers they replaced. A local insert of a key bumps the
//! key's tombstones (a local delete's, or an applied one's) in its own transaction, including a
//! delete that was still open when the insert began.

use std::time::Duration;

use mysql_async::prelude::Queryable;

use crate::support::{wait_for, Pair};

const PG_TABLE: &str = "CREATE TABLE items (id int PRIMARY KEY, v text)";
const MARIA_TABLE: &str = "CREATE TABLE items (id int PRIMARY KEY, v varchar(20))";

async fn pair() -> Pair {
    Pair::start(
        PG_TABLE,
        MARIA_TABLE,
        "[[tables]]\nname = \"items\"\nkey = [\"id\"]\n",
    )
    .await
}

/// `(node, revived)` of the tombstones of key `id` on PostgreSQL.
async fn pg_stones(c: &tokio_postgres::Client, id: i32) -> Vec<(String, i64)> {
    c.query(
        "SELECT node, revived FROM tandem.tombstone WHERE target_table = 'public.items' \
         AND row_key = $1 ORDER BY node",
        &[&format!("{{\"id\":\"{id}\"}}")],
    )
    .await
    .expect("tombstones")
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

async fn maria_stones(c: &mut mysql_async::Conn, id: i32) -> Vec<(String, i64)> {
    c.exec(
        "SELECT node, revived FROM tandem.tombstone WHERE target_table = 'desk.items' \
         AND row_key = ? ORDER BY node",
        (format!("{{\"id\":\"{id}\"}}"),),
    )
    .await
    .expect("tombstones")
}

/// The insert of a key waits for a delete of it that is still open; the delete's tombstone, the
/// table's first, is visible once it commits. The row trigger bumped tombstones before the row was
/// in, so it missed this one: the insert then read, on the other node, as concurrent with a
/// delete it had waited for.
#[tokio::test]
async fn pg_a_local_insert_that_waited_for_a_delete_of_its_key_bumps_its_tombstone() {
    let pair = pair().await;
    let a = pair.pg.connect("crm").await.expect("connect");
    let b = pair.pg.connect("crm").await.expect("connect");
    a.batch_execute("INSERT INTO items VALUES (1, 'doomed')")
        .await
        .expect("insert");
    a.batch_execute("BEGIN; DELETE FROM items WHERE id = 1")
        .await
        .expect("an open delete");
    let insert = tokio::spawn(async move {
        b.batch_execute("INSERT INTO items VALUES (1, 'again')")
            .await
            .map(|()| b)
    });
    wait_for(
        "the insert waiting for the delete",
        Duration::from_secs(30),
        || async {
            let waiting: i64 = a
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' \
                     AND query LIKE 'INSERT INTO items%'",
                    &[],
                )
                .await
                .ok()?
                .get(0);
            (waiting == 1).then_some(())
        },
    )
    .await;
    a.batch_execute("COMMIT").await.expect("the delete commits");
    insert
        .await
        .expect("the insert task")
        .expect("the insert, once the delete committed");
    assert_eq!(
        pg_stones(&a, 1).await,
        vec![("crm".to_string(), 1)],
        "the re-insert bumped the tombstone of the delete it waited for"
    );
}

/// A table's first tombstone written by the applier (its session skips tandem's triggers) flags the
/// table too: the next local insert of the key bumps it. A table that never had a delete keeps its
/// flag down, so its inserts skip the lookup.
#[tokio::test]
async fn pg_a_local_insert_bumps_an_applied_tombstone_of_its_key() {
    let pair = pair().await;
    let c = pair.pg.connect("crm").await.expect("connect");
    let flag = "SELECT pg_sequence_last_value('tandem.tombstoned_public_items')";
    c.batch_execute("INSERT INTO items VALUES (1, 'a'), (2, 'b')")
        .await
        .expect("inserts");
    let up: Option<i64> = c.query_one(flag, &[]).await.expect("flag").get(0);
    assert_eq!(up, None, "inserts alone raise no flag");
    let applier = pair.pg.connect("crm").await.expect("connect");
    applier
        .batch_execute(
            "SET tandem.applying = 'on'; \
             INSERT INTO tandem.tombstone (target_table, row_key, version, node) \
             VALUES ('public.items', '{\"id\":\"7\"}', 42, 'helpdesk')",
        )
        .await
        .expect("an applied delete's tombstone");
    let up: Option<i64> = c.query_one(flag, &[]).await.expect("flag").get(0);
    assert_eq!(up, Some(1), "the applied tombstone raised the flag");
    c.batch_execute("INSERT INTO items VALUES (7, 'back'), (8, 'new')")
        .await
        .expect("a local insert");
    assert_eq!(
        pg_stones(&c, 7).await,
        vec![("helpdesk".to_string(), 1)],
        "the insert bumped the applied tombstone"
    );
    // A local delete of two rows and a re-insert of one: the re-inserted key's tombstone is bumped.
    c.batch_execute(
        "DELETE FROM items WHERE id IN (1, 2); INSERT INTO items VALUES (2, 'b again')",
    )
    .await
    .expect("delete and re-insert");
    assert_eq!(pg_stones(&c, 1).await, vec![("crm".to_string(), 0)]);
    assert_eq!(pg_stones(&c, 2).await, vec![("crm".to_string(), 1)]);
    let stamped: (String, bool) = c
        .query_one(
            "SELECT _tandem_origin, _tandem_version > 1000000000000000 FROM items WHERE id = 2",
            &[],
        )
        .await
        .map(|r| (r.get(0), r.get(1)))
        .expect("the row");
    assert_eq!(
        stamped,
        ("crm".to_string(), true),
        "defaults stamp the insert"
    );
}

/// The same on MariaDB: the revive trigger runs after the row is in, and an applied tombstone is
/// bumped by the next local insert of its key.
#[tokio::test]
async fn maria_a_local_insert_bumps_local_and_applied_tombstones_of_its_key() {
    let pair = pair().await;
    let mut a = pair.maria.connect("desk").await.expect("connect");
    let mut b = pair.maria.connect("desk").await.expect("connect");
    a.query_drop("INSERT INTO items VALUES (1, 'doomed')")
        .await
        .expect("insert");
    let flag =
        "SELECT next_not_cached_value >= 4611686018427387904 FROM tandem.tombstoned_desk_items";
    let up: Option<bool> = a.query_first(flag).await.expect("flag");
    assert_eq!(up, Some(false), "inserts alone raise no flag");
    a.query_drop("BEGIN").await.expect("begin");
    a.query_drop("DELETE FROM items WHERE id = 1")
        .await
        .expect("an open delete");
    let insert = tokio::spawn(async move {
        b.query_drop("INSERT INTO items VALUES (1, 'again')")
            .await
            .map(|()| b)
    });
    wait_for(
        "the insert waiting for the delete",
        Duration::from_secs(30),
        || {
            let maria = &pair.maria;
            async move {
                let mut w = maria.connect("desk").await.ok()?;
                let n: Option<i64> = w
                    .query_first(
                        "SELECT count(*) FROM information_schema.innodb_trx \
                         WHERE trx_state = 'LOCK WAIT'",
                    )
                    .await
                    .ok()?;
                w.disconnect().await.ok();
                (n == Some(1)).then_some(())
            }
        },
    )
    .await;
    a.query_drop("COMMIT").await.expect("the delete commits");
    let up: Option<bool> = a.query_first(flag).await.expect("flag");
    assert_eq!(up, Some(true), "the first tombstone raised the flag");
    let mut b = insert
        .await
        .expect("the insert task")
        .expect("the insert, once the delete committed");
    assert_eq!(
        maria_stones(&mut a, 1).await,
        vec![("helpdesk".to_string(), 1)],
        "the re-insert bumped the tombstone of the delete it waited for"
    );
    b.query_drop(
        "SET @tandem_applying = 1; \
         INSERT INTO tandem.tombstone (target_table, row_key, version, node) \
         VALUES ('desk.items', '{\"id\":\"7\"}', 42, 'crm'); SET @tandem_applying = 0",
    )
    .await
    .expect("an applied delete's tombstone");
    a.query_drop("INSERT INTO items VALUES (7, 'back')")
        .await
        .expect("a local insert");
    assert_eq!(
        maria_stones(&mut a, 7).await,
        vec![("crm".to_string(), 1)],
        "the insert bumped the applied tombstone"
    );
    let stamped: Option<(String, bool)> = a
        .query_first(
            "SELECT _tandem_origin, _tandem_version > 1000000000000000 FROM items WHERE id = 7",
        )
        .await
        .expect("the row");
    assert_eq!(
        stamped,
        Some(("helpdesk".to_string(), true)),
        "defaults stamp the insert"
    );
    for c in [a, b] {
        c.disconnect().await.ok();
    }
}
