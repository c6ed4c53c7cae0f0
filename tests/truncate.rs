//! A captured TRUNCATE, both ways between PostgreSQL and MariaDB, under the table's `truncate`
//! policy: `ignore` (the default) empties nothing and leaves a keyless `truncate` record in the
//! target's conflict log; `propagate` empties the target table in the target transaction that
//! applies the source transaction, records it as `applied`, and does not echo.

use std::time::Duration;

use mysql_async::prelude::Queryable;

use crate::support::{start_tandem_run, wait_for, Pair};

const DEADLINE: Duration = Duration::from_secs(30);

const PG_SQL: &str = "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)";
const MARIA_SQL: &str = "CREATE TABLE items (id int PRIMARY KEY, name varchar(100) NOT NULL)";

/// One `truncate` record of the conflict log: (table_name, row_key, kind, decision, rule, state).
type Record = (String, Option<String>, String, String, String, String);

async fn pg_ids(p: &Pair) -> Vec<i32> {
    let c = p.pg.connect("crm").await.unwrap();
    c.query("SELECT id FROM items ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

async fn maria_ids(p: &Pair) -> Vec<i32> {
    let mut c = p.maria.connect("desk").await.unwrap();
    let ids = c.query("SELECT id FROM items ORDER BY id").await.unwrap();
    c.disconnect().await.unwrap();
    ids
}

async fn pg_records(p: &Pair) -> Vec<Record> {
    let c = p.pg.connect("crm").await.unwrap();
    c.query(
        "SELECT table_name, row_key, kind, decision, rule, state FROM tandem.conflict ORDER BY id",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
    .collect()
}

async fn maria_records(p: &Pair) -> Vec<Record> {
    let mut c = p.maria.connect("desk").await.unwrap();
    let rows: Vec<mysql_async::Row> = c
        .query(
            "SELECT table_name, row_key, kind, decision, rule, state FROM tandem.conflict ORDER BY id",
        )
        .await
        .unwrap();
    c.disconnect().await.unwrap();
    rows.into_iter()
        .map(|mut r| {
            (
                r.take(0).unwrap(),
                r.take(1).unwrap(),
                r.take(2).unwrap(),
                r.take(3).unwrap(),
                r.take(4).unwrap(),
                r.take(5).unwrap(),
            )
        })
        .collect()
}

fn record(decision: &str) -> Record {
    (
        "items".into(),
        None,
        "truncate".into(),
        decision.into(),
        "truncate".into(),
        "resolved".into(),
    )
}

async fn wait_ids<F, Fut>(what: &str, want: &[i32], read: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Vec<i32>>,
{
    let mut last = Vec::new();
    let found = tokio::time::timeout(DEADLINE, async {
        loop {
            last = read().await;
            if last == want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(
        found.is_ok(),
        "{what}: expected ids {want:?}, still {last:?} after {DEADLINE:?}"
    );
}

#[tokio::test]
async fn truncate_ignored_by_default_is_recorded_and_empties_nothing() {
    let p = Pair::start(
        PG_SQL,
        MARIA_SQL,
        "[[tables]]\nname = \"items\"\nkey = [\"id\"]\n",
    )
    .await;
    let mut tandem = start_tandem_run(&p.config, 2).await;
    let pg = p.pg.connect("crm").await.unwrap();
    pg.batch_execute("INSERT INTO items VALUES (1, 'a'), (2, 'b')")
        .await
        .unwrap();
    wait_ids("the rows on MariaDB", &[1, 2], || maria_ids(&p)).await;

    // PostgreSQL -> MariaDB: recorded on MariaDB, rows kept there.
    pg.batch_execute("TRUNCATE items").await.unwrap();
    wait_for("the truncate record on MariaDB", DEADLINE, || async {
        maria_records(&p)
            .await
            .contains(&record("ignored"))
            .then_some(())
    })
    .await;
    assert_eq!(
        maria_ids(&p).await,
        vec![1, 2],
        "truncate = \"ignore\" emptied the MariaDB table"
    );
    assert_eq!(maria_records(&p).await, vec![record("ignored")]);
    // The keyless record reads back through `tandem conflicts list`.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args([
            "conflicts",
            "list",
            "--node",
            "helpdesk",
            "--kind",
            "truncate",
        ])
        .args(["--format", "json", "--config"])
        .arg(&p.config)
        .output()
        .await
        .unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        listed.contains("\"truncate\"")
            && listed.contains("\"ignored\"")
            && listed.contains("items"),
        "tandem conflicts list does not show the truncate record:\n{listed}{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // MariaDB -> PostgreSQL (a TRUNCATE is a QUERY event in the binlog): recorded, rows kept.
    let mut maria = p.maria.connect("desk").await.unwrap();
    maria
        .query_drop("INSERT INTO items VALUES (3, 'c')")
        .await
        .unwrap();
    wait_ids("row 3 on PostgreSQL", &[3], || pg_ids(&p)).await;
    maria.query_drop("TRUNCATE TABLE items").await.unwrap();
    wait_for("the truncate record on PostgreSQL", DEADLINE, || async {
        pg_records(&p)
            .await
            .contains(&record("ignored"))
            .then_some(())
    })
    .await;
    assert_eq!(pg_ids(&p).await, vec![3]);

    // Later changes still flow (MariaDB's own truncate emptied it there).
    pg.batch_execute("INSERT INTO items VALUES (4, 'd')")
        .await
        .unwrap();
    wait_ids("row 4 on MariaDB", &[4], || maria_ids(&p)).await;
    maria.disconnect().await.unwrap();
    tandem.kill().await.ok();
}

#[tokio::test]
async fn truncate_propagated_empties_the_target_in_the_same_transaction_without_echo() {
    let p = Pair::start(
        PG_SQL,
        MARIA_SQL,
        "[[tables]]\nname = \"items\"\nkey = [\"id\"]\ntruncate = \"propagate\"\n",
    )
    .await;
    let mut tandem = start_tandem_run(&p.config, 2).await;
    let pg = p.pg.connect("crm").await.unwrap();
    let mut maria = p.maria.connect("desk").await.unwrap();
    pg.batch_execute("INSERT INTO items VALUES (1, 'a'), (2, 'b'), (3, 'c')")
        .await
        .unwrap();
    wait_ids("the rows on MariaDB", &[1, 2, 3], || maria_ids(&p)).await;

    // PostgreSQL -> MariaDB: the truncate and the insert after it, in one source transaction.
    pg.batch_execute("BEGIN; TRUNCATE items; INSERT INTO items VALUES (4, 'd'); COMMIT")
        .await
        .unwrap();
    wait_ids("only row 4 on MariaDB", &[4], || maria_ids(&p)).await;
    assert_eq!(maria_records(&p).await, vec![record("applied")]);

    // Nothing echoes: a MariaDB write after the applied truncate reaches PostgreSQL; an echo of
    // tandem's DELETE FROM would have come before it (delete_missing conflicts there).
    maria
        .query_drop("INSERT INTO items VALUES (5, 'e')")
        .await
        .unwrap();
    wait_ids("rows 4 and 5 on PostgreSQL", &[4, 5], || pg_ids(&p)).await;
    assert_eq!(
        pg_records(&p).await,
        vec![],
        "an echo of the applied truncate reached PostgreSQL"
    );

    // MariaDB -> PostgreSQL: TRUNCATE TABLE empties PostgreSQL; tandem's TRUNCATE there does not
    // come back (a later PostgreSQL write arrives after it, and MariaDB records nothing new).
    maria.query_drop("TRUNCATE TABLE items").await.unwrap();
    wait_ids("PostgreSQL emptied", &[], || pg_ids(&p)).await;
    assert_eq!(pg_records(&p).await, vec![record("applied")]);
    pg.batch_execute("INSERT INTO items VALUES (6, 'f')")
        .await
        .unwrap();
    wait_ids("row 6 on MariaDB", &[6], || maria_ids(&p)).await;
    assert_eq!(
        maria_records(&p).await,
        vec![record("applied")],
        "an echo of the applied truncate reached MariaDB"
    );
    assert_eq!(pg_ids(&p).await, vec![6]);
    maria.disconnect().await.unwrap();
    tandem.kill().await.ok();
}
