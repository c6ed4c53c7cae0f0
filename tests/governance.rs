//! Ownership and excluded columns, in both directions: a column owned by one node takes no value from
//! another (logged as `not_owner`), and an excluded column never leaves its node.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use tandem::harness::{MariaDb, PgServer};

use crate::support::{start_tandem_run, wait_for, Pair};

type Row = (i32, String, i32, Option<String>);

async fn pg_row(pg: &PgServer) -> Option<Row> {
    let c = pg.connect("crm").await.unwrap();
    c.query_opt(
        "SELECT id, name, credit_limit, ssn FROM customers WHERE id = 1",
        &[],
    )
    .await
    .unwrap()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
}

async fn maria_row(maria: &MariaDb) -> Option<Row> {
    let mut c = maria.connect("desk").await.unwrap();
    let r: Option<Row> = c
        .query_first("SELECT id, name, credit_limit, ssn FROM customers WHERE id = 1")
        .await
        .unwrap();
    c.disconnect().await.unwrap();
    r
}

#[tokio::test]
async fn governance_owned_and_excluded_columns_in_both_directions() {
    let p = Pair::start(
        "CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, credit_limit int NOT NULL, ssn text)",
        "CREATE TABLE customers (id int PRIMARY KEY, name varchar(100) NOT NULL, credit_limit int NOT NULL, ssn varchar(20))",
        "[[tables]]\nname = \"customers\"\nkey = [\"id\"]\nexclude = [\"ssn\"]\n\n[[tables.columns]]\nname = \"credit_limit\"\nowner = \"crm\"",
    )
    .await;
    let (pg, maria, config) = (&p.pg, &p.maria, &p.config);
    let c = pg.connect("crm").await.unwrap();
    let mut m = maria.connect("desk").await.unwrap();
    let mut tandem = start_tandem_run(config, 2).await;

    c.batch_execute("INSERT INTO customers VALUES (1, 'Ada', 100, 'crm-secret')")
        .await
        .unwrap();
    let arrived = wait_for("the insert on MariaDB", Duration::from_secs(30), || async {
        maria_row(maria).await
    })
    .await;
    assert_eq!(
        arrived,
        (1, "Ada".into(), 100, None),
        "the owner's value arrives; the excluded ssn does not"
    );

    // The help desk changes the name (synced), the credit limit (owned by crm) and its own ssn.
    m.query_drop("UPDATE customers SET name = 'Ada L.', credit_limit = 999, ssn = 'desk-secret' WHERE id = 1").await.unwrap();
    wait_for(
        "the name change on PostgreSQL",
        Duration::from_secs(30),
        || async { pg_row(pg).await.filter(|r| r.1 == "Ada L.") },
    )
    .await;
    assert_eq!(
        pg_row(pg).await,
        Some((1, "Ada L.".into(), 100, Some("crm-secret".into())))
    );
    let not_owner: i64 = c
        .query_one(
            "SELECT count(*) FROM tandem.conflict WHERE kind = 'not_owner'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        not_owner >= 1,
        "the rejected credit_limit change left no not_owner record"
    );

    // The owner's own change goes out and overrides the other node's value.
    c.batch_execute("UPDATE customers SET credit_limit = 200 WHERE id = 1")
        .await
        .unwrap();
    wait_for(
        "the owner's change on MariaDB",
        Duration::from_secs(30),
        || async { maria_row(maria).await.filter(|r| r.2 == 200) },
    )
    .await;
    assert_eq!(
        maria_row(maria).await.and_then(|r| r.3),
        Some("desk-secret".into()),
        "MariaDB's own ssn stays"
    );
    m.disconnect().await.unwrap();
    tandem.kill().await.ok();
}

#[tokio::test]
async fn governance_row_filter_syncs_only_matching_rows() {
    let p = Pair::start(
        "CREATE TABLE accounts (id int PRIMARY KEY, region text NOT NULL)",
        "CREATE TABLE accounts (id int PRIMARY KEY, region varchar(10) NOT NULL)",
        "[[tables]]\nname = \"accounts\"\nkey = [\"id\"]\nfilter = { region = [\"EU\"] }",
    )
    .await;
    let (maria, config) = (&p.maria, &p.config);
    let c = p.pg.connect("crm").await.unwrap();
    let mut tandem = start_tandem_run(config, 2).await;
    let maria_ids = |maria: &MariaDb| {
        let url = maria.url("desk");
        async move {
            let mut c = mysql_async::Conn::from_url(url).await.unwrap();
            let ids: Vec<(i32, String)> = c
                .query("SELECT id, region FROM accounts ORDER BY id")
                .await
                .unwrap();
            c.disconnect().await.unwrap();
            ids
        }
    };
    c.batch_execute("INSERT INTO accounts VALUES (1, 'EU'), (2, 'US'); UPDATE accounts SET region = 'EU' WHERE id = 2")
        .await
        .unwrap();
    // A marker row that passes, written last: once it is there, everything before it was decided.
    c.batch_execute("INSERT INTO accounts VALUES (9, 'EU')")
        .await
        .unwrap();
    wait_for("the marker on MariaDB", Duration::from_secs(30), || async {
        maria_ids(maria)
            .await
            .iter()
            .any(|r| r.0 == 9)
            .then_some(())
    })
    .await;
    assert_eq!(
        maria_ids(maria).await,
        vec![(1, "EU".into()), (2, "EU".into()), (9, "EU".into())],
        "row 2 entered the filter by its update and arrived as an insert"
    );
    c.batch_execute("UPDATE accounts SET region = 'US' WHERE id = 1; INSERT INTO accounts VALUES (3, 'US'), (10, 'EU')")
        .await
        .unwrap();
    wait_for(
        "the second marker on MariaDB",
        Duration::from_secs(30),
        || async {
            maria_ids(maria)
                .await
                .iter()
                .any(|r| r.0 == 10)
                .then_some(())
        },
    )
    .await;
    assert_eq!(
        maria_ids(maria).await,
        vec![(2, "EU".into()), (9, "EU".into()), (10, "EU".into())],
        "row 1 left the filter (deleted there), row 3 never entered"
    );
    tandem.kill().await.ok();
}
