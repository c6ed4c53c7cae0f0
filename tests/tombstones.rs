//! Tombstones on real servers: a delete leaves one on both nodes (the trigger's on the deleting node,
//! the applier's on the other), and `[tandem] tombstone_retention` prunes them once they are older.

use std::time::Duration;

use mysql_async::prelude::Queryable;

use crate::support::{start_tandem_run, wait_for, Pair};

/// A pair with the same `items` table on both nodes, set up with the file's `rules`.
async fn items_pair(rules: &str) -> Pair {
    let table = "CREATE TABLE items (id int PRIMARY KEY, v varchar(20) NOT NULL);";
    Pair::start(table, table, rules).await
}

async fn tombstones(pair: &Pair) -> (i64, i64) {
    let c = pair.pg.connect("crm").await.expect("connect");
    let on_pg: i64 = c
        .query_one("SELECT count(*) FROM tandem.tombstone", &[])
        .await
        .expect("count")
        .get(0);
    let mut m = pair.maria.connect("desk").await.expect("connect");
    let on_maria: Option<i64> = m
        .query_first("SELECT count(*) FROM tandem.tombstone")
        .await
        .expect("count");
    m.disconnect().await.ok();
    (on_pg, on_maria.unwrap_or(-1))
}

#[tokio::test]
async fn tombstones_are_left_by_deletes_and_pruned_after_the_retention() {
    let pair = items_pair(
        "[tandem]\ntombstone_retention = \"1s\"\n[[tables]]\nname = \"items\"\nkey = [\"id\"]\n",
    )
    .await;
    let _run = start_tandem_run(&pair.config, 2).await;
    let c = pair.pg.connect("crm").await.expect("connect");
    c.batch_execute("INSERT INTO items VALUES (1, 'doomed')")
        .await
        .expect("insert");
    let mut m = pair.maria.connect("desk").await.expect("connect");
    wait_for("the row on MariaDB", Duration::from_secs(30), || {
        let m = &pair.maria;
        async move {
            let mut m = m.connect("desk").await.ok()?;
            let n: Option<i64> = m.query_first("SELECT count(*) FROM items").await.ok()?;
            m.disconnect().await.ok();
            (n == Some(1)).then_some(())
        }
    })
    .await;
    c.batch_execute("DELETE FROM items WHERE id = 1")
        .await
        .expect("delete");
    wait_for(
        "a tombstone on both nodes (the trigger's and the applier's)",
        Duration::from_secs(30),
        || async { (tombstones(&pair).await == (1, 1)).then_some(()) },
    )
    .await;
    // Traffic both ways drives the links' commits, after which each prunes what has expired.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut id = 100;
    loop {
        id += 1;
        c.execute("INSERT INTO items VALUES ($1, 'pg')", &[&id])
            .await
            .expect("insert on PostgreSQL");
        m.exec_drop("INSERT INTO items VALUES (?, 'maria')", (id + 100_000,))
            .await
            .expect("insert on MariaDB");
        let left = tombstones(&pair).await;
        if left == (0, 0) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "tombstones left after 60 s with a 1 s retention (PostgreSQL, MariaDB): {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    m.disconnect().await.ok();
}

/// Under `prefer`, an insert is weighed against the delete it had not seen, not against a later
/// delete of its own node that it had seen (found by `converge_under_fire_prefer_a_node`, seed
/// 1796582818453838479): crm updates, deletes and re-inserts a key while helpdesk deletes it, with
/// tandem stopped; helpdesk is preferred, so its delete wins on both nodes.
#[tokio::test]
async fn tombstones_prefer_weighs_an_insert_against_the_delete_it_had_not_seen() {
    let pair = items_pair("[[tables]]\nname = \"items\"\nkey = [\"id\"]\nconflict = \"prefer\"\nprefer = \"helpdesk\"\n").await;
    let count = |node: &'static str| {
        let pair = &pair;
        async move {
            if node == "crm" {
                let c = pair.pg.connect("crm").await.ok()?;
                let n: i64 = c
                    .query_one("SELECT count(*) FROM items WHERE id = 5", &[])
                    .await
                    .ok()?
                    .get(0);
                Some(n)
            } else {
                let mut m = pair.maria.connect("desk").await.ok()?;
                let n: Option<i64> = m
                    .query_first("SELECT count(*) FROM items WHERE id = 5")
                    .await
                    .ok()?;
                m.disconnect().await.ok();
                n
            }
        }
    };
    let run = start_tandem_run(&pair.config, 2).await;
    let c = pair.pg.connect("crm").await.expect("connect");
    c.batch_execute("INSERT INTO items VALUES (5, 'a')")
        .await
        .expect("insert");
    wait_for("the row on MariaDB", Duration::from_secs(30), || async {
        (count("helpdesk").await == Some(1)).then_some(())
    })
    .await;
    crate::support::stop_tandem_run(run).await;

    for sql in [
        "UPDATE items SET v = 'b' WHERE id = 5",
        "DELETE FROM items WHERE id = 5",
        "INSERT INTO items VALUES (5, 'c')",
    ] {
        c.batch_execute(sql).await.expect(sql);
    }
    let mut m = pair.maria.connect("desk").await.expect("connect");
    m.query_drop("DELETE FROM items WHERE id = 5")
        .await
        .expect("delete on MariaDB");
    m.disconnect().await.ok();

    let run = start_tandem_run(&pair.config, 2).await;
    // A marker each way, written after everything above: once both arrived, all of it has.
    c.batch_execute("INSERT INTO items VALUES (100, 'm')")
        .await
        .expect("marker");
    let mut m = pair.maria.connect("desk").await.expect("connect");
    m.query_drop("INSERT INTO items VALUES (101, 'm')")
        .await
        .expect("marker");
    m.disconnect().await.ok();
    wait_for(
        "both markers on both nodes",
        Duration::from_secs(30),
        || async {
            let c = pair.pg.connect("crm").await.ok()?;
            let on_pg: i64 = c
                .query_one("SELECT count(*) FROM items WHERE id >= 100", &[])
                .await
                .ok()?
                .get(0);
            let mut m = pair.maria.connect("desk").await.ok()?;
            let on_maria: Option<i64> = m
                .query_first("SELECT count(*) FROM items WHERE id >= 100")
                .await
                .ok()?;
            m.disconnect().await.ok();
            (on_pg == 2 && on_maria == Some(2)).then_some(())
        },
    )
    .await;
    assert_eq!(
        (count("crm").await, count("helpdesk").await),
        (Some(0), Some(0)),
        "helpdesk's delete (preferred) must win on both nodes: (rows of key 5 on crm, on helpdesk)"
    );
    crate::support::stop_tandem_run(run).await;
}

/// A key deleted and inserted again on MariaDB arrives on PostgreSQL as the insert it is, though the
/// insert revived no tombstone there (a MariaDB insert revives only tombstones of other nodes'
/// deletes): the link carried the delete first, so PostgreSQL counts that tombstone as seen. No
/// conflict is logged, and the row lives on both nodes.
#[tokio::test]
async fn tombstones_a_maria_reinsert_of_its_own_deleted_key_is_no_conflict() {
    let pair = items_pair("[[tables]]\nname = \"items\"\nkey = [\"id\"]\n").await;
    let run = start_tandem_run(&pair.config, 2).await;
    let mut m = pair.maria.connect("desk").await.expect("connect");
    m.query_drop("INSERT INTO items VALUES (9, 'first')")
        .await
        .expect("insert");
    let on_pg = |sql: &'static str| {
        let pg = &pair.pg;
        async move {
            let c = pg.connect("crm").await.ok()?;
            let v: Option<String> = c.query_opt(sql, &[]).await.ok()?.map(|r| r.get(0));
            v
        }
    };
    wait_for("the row on PostgreSQL", Duration::from_secs(30), || async {
        on_pg("SELECT v FROM items WHERE id = 9").await
    })
    .await;
    m.query_drop("DELETE FROM items WHERE id = 9")
        .await
        .expect("delete");
    m.query_drop("INSERT INTO items VALUES (9, 'again')")
        .await
        .expect("insert again");
    let revived: Vec<(String, i64)> = m
        .query("SELECT node, revived FROM tandem.tombstone")
        .await
        .expect("stones");
    assert_eq!(
        revived,
        vec![("helpdesk".to_string(), 0)],
        "the insert revived nothing: its node's own delete"
    );
    wait_for(
        "the insert on PostgreSQL",
        Duration::from_secs(30),
        || async {
            (on_pg("SELECT v FROM items WHERE id = 9").await.as_deref() == Some("again"))
                .then_some(())
        },
    )
    .await;
    // A marker after it: once it arrived, everything before it was applied (or logged).
    m.query_drop("INSERT INTO items VALUES (10, 'marker')")
        .await
        .expect("marker");
    wait_for(
        "the marker on PostgreSQL",
        Duration::from_secs(30),
        || async { on_pg("SELECT v FROM items WHERE id = 10").await },
    )
    .await;
    assert_eq!(
        pair.conflicts().await.0,
        0,
        "a re-insert after its own node's delete is no conflict"
    );
    crate::support::stop_tandem_run(run).await;
    m.disconnect().await.ok();
}

/// The same from PostgreSQL: its revive trigger waits for a tombstone of another node's delete (the
/// table's peer flag), so the re-insert bumps nothing, and MariaDB counts PostgreSQL's own delete
/// as seen. No conflict is logged, and the row lives on both nodes.
#[tokio::test]
async fn tombstones_a_pg_reinsert_of_its_own_deleted_key_is_no_conflict() {
    let pair = items_pair("[[tables]]\nname = \"items\"\nkey = [\"id\"]\n").await;
    let run = start_tandem_run(&pair.config, 2).await;
    let c = pair.pg.connect("crm").await.expect("connect");
    let on_maria = |sql: &'static str| {
        let maria = &pair.maria;
        async move {
            let mut m = maria.connect("desk").await.ok()?;
            let v: Option<String> = m.query_first(sql).await.ok()?;
            m.disconnect().await.ok();
            v
        }
    };
    c.batch_execute("INSERT INTO items VALUES (9, 'first')")
        .await
        .expect("insert");
    wait_for("the row on MariaDB", Duration::from_secs(30), || async {
        on_maria("SELECT v FROM items WHERE id = 9").await
    })
    .await;
    c.batch_execute("DELETE FROM items WHERE id = 9; INSERT INTO items VALUES (9, 'again')")
        .await
        .expect("delete and insert again");
    let stones: Vec<(String, i64)> = c
        .query("SELECT node, revived FROM tandem.tombstone", &[])
        .await
        .expect("stones")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        stones,
        vec![("crm".to_string(), 0)],
        "the insert revived nothing: its node's own delete"
    );
    c.batch_execute("INSERT INTO items VALUES (10, 'marker')")
        .await
        .expect("marker");
    wait_for("the marker on MariaDB", Duration::from_secs(30), || async {
        on_maria("SELECT v FROM items WHERE id = 10").await
    })
    .await;
    assert_eq!(
        on_maria("SELECT v FROM items WHERE id = 9")
            .await
            .as_deref(),
        Some("again")
    );
    assert_eq!(
        pair.conflicts().await.1,
        0,
        "a re-insert after its own node's delete is no conflict"
    );
    crate::support::stop_tandem_run(run).await;
}
