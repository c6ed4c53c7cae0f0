//! `tandem run` end to end: PostgreSQL and MariaDB with differently named tables, columns and value
//! encodings, changes on both sides, nothing echoed, clean stop.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use tandem::harness::{MariaDb, PgServer};
use tokio::process::Command;

use crate::support::{start_tandem_run, stop_tandem_run, unique_name, wait_for};

const DEADLINE: Duration = Duration::from_secs(30);

const MAPPING: &str = r#"
[[tables]]
name = "customer"
key = ["id"]
on = { crm = "public.customers", helpdesk = "clients" }

[[tables.columns]]
name = "id"
on = { helpdesk = "client_id" }

[[tables.columns]]
name = "status"
on = { helpdesk = "status_code" }
values = { helpdesk = { "Approved" = 1, "Pending review" = 2 } }
"#;

struct Pair {
    pg: PgServer,
    maria: MariaDb,
    config: std::path::PathBuf,
}

async fn pair() -> Pair {
    pair_prepared(&[]).await
}

/// A pair whose MariaDB server first runs `maria_server_sql` (server-wide settings, before setup).
async fn pair_prepared(maria_server_sql: &[&str]) -> Pair {
    let (pg, maria) = tokio::join!(PgServer::start(), MariaDb::start());
    let (pg, maria) = (
        pg.expect("PostgreSQL starts"),
        maria.expect("MariaDB starts"),
    );
    if !maria_server_sql.is_empty() {
        let mut c = maria.connect("mysql").await.unwrap();
        for sql in maria_server_sql {
            c.query_drop(*sql).await.unwrap();
        }
        c.disconnect().await.unwrap();
    }
    pg.create_database("crm").await.unwrap();
    pg.connect("crm")
        .await
        .unwrap()
        .batch_execute(
            "CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, status text)",
        )
        .await
        .unwrap();
    maria.create_database("desk").await.unwrap();
    let mut conn = maria.connect("desk").await.unwrap();
    conn.query_drop("CREATE TABLE clients (client_id int PRIMARY KEY, name varchar(200) NOT NULL, status_code tinyint)")
        .await
        .unwrap();
    conn.disconnect().await.unwrap();
    let text = format!(
        "[nodes.crm]\nurl = \"{}\"\n[nodes.helpdesk]\nurl = \"{}\"\n{MAPPING}",
        pg.url("crm"),
        maria.url("desk")
    );
    let config = std::env::temp_dir().join(format!("{}.toml", unique_name("tandem_two_way")));
    std::fs::write(&config, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["setup", "--config"])
        .arg(&config)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "setup failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Pair { pg, maria, config }
}

type PgRow = (i32, String, Option<String>, String);
type MariaRow = (i32, String, Option<i8>, String);

async fn pg_rows(pg: &PgServer) -> Vec<PgRow> {
    let c = pg.connect("crm").await.unwrap();
    c.query(
        "SELECT id, name, status, _tandem_origin FROM customers ORDER BY id",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
    .collect()
}

async fn maria_rows(maria: &MariaDb) -> Vec<MariaRow> {
    let mut c = maria.connect("desk").await.unwrap();
    let rows = c
        .query(
            "SELECT client_id, name, status_code, _tandem_origin FROM clients ORDER BY client_id",
        )
        .await
        .unwrap();
    c.disconnect().await.unwrap();
    rows
}

#[tokio::test]
async fn two_way_sync_between_postgres_and_mariadb() {
    let p = pair().await;
    let mut tandem = start_tandem_run(&p.config, 2).await;
    let pg = p.pg.connect("crm").await.unwrap();
    let mut maria = p.maria.connect("desk").await.unwrap();

    // An application that never mentions the marker or version columns, on both sides.
    pg.batch_execute("INSERT INTO customers VALUES (1, 'Ada', 'Approved')")
        .await
        .unwrap();
    maria
        .query_drop("INSERT INTO clients VALUES (2, 'Grace', 2)")
        .await
        .unwrap();
    let want_maria: Vec<MariaRow> = vec![
        (1, "Ada".into(), Some(1), "crm".into()),
        (2, "Grace".into(), Some(2), "helpdesk".into()),
    ];
    wait_for("both inserts on MariaDB", DEADLINE, || async {
        (maria_rows(&p.maria).await == want_maria).then_some(())
    })
    .await;
    let want_pg: Vec<PgRow> = vec![
        (1, "Ada".into(), Some("Approved".into()), "crm".into()),
        (
            2,
            "Grace".into(),
            Some("Pending review".into()),
            "helpdesk".into(),
        ),
    ];
    wait_for("both inserts on PostgreSQL", DEADLINE, || async {
        (pg_rows(&p.pg).await == want_pg).then_some(())
    })
    .await;

    // A local update of a row tandem last wrote is replicated (not mistaken for an echo).
    pg.batch_execute("UPDATE customers SET status = 'Approved' WHERE id = 2")
        .await
        .unwrap();
    wait_for("the update on MariaDB", DEADLINE, || async {
        (maria_rows(&p.maria).await.get(1) == Some(&(2, "Grace".into(), Some(1), "crm".into())))
            .then_some(())
    })
    .await;
    // A multi-statement transaction and a delete from the other side.
    maria.query_drop("START TRANSACTION").await.unwrap();
    maria
        .query_drop("UPDATE clients SET name = 'Ada L.' WHERE client_id = 1")
        .await
        .unwrap();
    maria
        .query_drop("DELETE FROM clients WHERE client_id = 2")
        .await
        .unwrap();
    maria.query_drop("COMMIT").await.unwrap();
    let want_pg: Vec<PgRow> = vec![(
        1,
        "Ada L.".into(),
        Some("Approved".into()),
        "helpdesk".into(),
    )];
    wait_for("the transaction on PostgreSQL", DEADLINE, || async {
        (pg_rows(&p.pg).await == want_pg).then_some(())
    })
    .await;

    // Nothing echoes. Had crm sent helpdesk's change back, that echo would precede this marker in
    // crm's log, so once the marker has arrived on MariaDB the echo would have been applied there too.
    let maria_version = |maria: &MariaDb| {
        let url = maria.url("desk");
        async move {
            let mut c = mysql_async::Conn::from_url(url).await.unwrap();
            let v: Option<(i64, u64)> = c
                .query_first(
                    "SELECT (SELECT _tandem_version FROM clients WHERE client_id = 1), \
                     (SELECT COUNT(*) FROM tandem.conflict)",
                )
                .await
                .unwrap();
            c.disconnect().await.unwrap();
            v.unwrap()
        }
    };
    let before = maria_version(&p.maria).await;
    pg.batch_execute("INSERT INTO customers VALUES (3, 'Marker', NULL)")
        .await
        .unwrap();
    wait_for("the marker row on MariaDB", DEADLINE, || async {
        maria_rows(&p.maria)
            .await
            .iter()
            .any(|r| r.0 == 3)
            .then_some(())
    })
    .await;
    assert_eq!(
        maria_version(&p.maria).await,
        before,
        "row 1 changed again on MariaDB, or a conflict was logged: an echo"
    );
    let pg_conflicts: i64 = pg
        .query_one("SELECT count(*) FROM tandem.conflict", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        pg_conflicts, 0,
        "an echo would have shown as a conflict on PostgreSQL"
    );
    assert_eq!(maria_rows(&p.maria).await.len(), 2);

    // Clean stop on SIGTERM, exit 0.
    let pid = tandem.id().expect("pid");
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let status = tokio::time::timeout(DEADLINE, tandem.wait())
        .await
        .expect("stops within the deadline")
        .unwrap();
    assert!(status.success(), "tandem run exited with {status}");
    maria.disconnect().await.unwrap();
    std::fs::remove_file(&p.config).ok();
}

#[tokio::test]
async fn two_way_writes_between_setup_and_the_first_run_are_not_lost() {
    let p = pair().await;
    // Written after `tandem setup` but before any link ran: the PostgreSQL slot holds the first, the
    // checkpoint setup seeded from MariaDB's binlog position holds the second.
    p.pg.connect("crm")
        .await
        .unwrap()
        .batch_execute("INSERT INTO customers VALUES (10, 'Early PG', 'Approved')")
        .await
        .unwrap();
    let mut m = p.maria.connect("desk").await.unwrap();
    m.query_drop("INSERT INTO clients VALUES (20, 'Early Maria', 2)")
        .await
        .unwrap();
    m.disconnect().await.unwrap();
    let mut tandem = start_tandem_run(&p.config, 2).await;
    wait_for("the early PostgreSQL row on MariaDB", DEADLINE, || async {
        maria_rows(&p.maria)
            .await
            .iter()
            .any(|r| r.0 == 10)
            .then_some(())
    })
    .await;
    wait_for("the early MariaDB row on PostgreSQL", DEADLINE, || async {
        pg_rows(&p.pg).await.iter().any(|r| r.0 == 20).then_some(())
    })
    .await;
    tandem.kill().await.ok();
    std::fs::remove_file(&p.config).ok();
}

/// A MariaDB source writing in several GTID domains, interleaved, including domains numbered below
/// every domain of the link's checkpoint: every row arrives, live and after a restart. (A GTID
/// position is one sequence per domain; comparing the lists as a whole skipped such transactions.)
#[tokio::test]
async fn mariadb_gtid_domains_interleaved_all_arrive() {
    let p = pair_prepared(&["SET GLOBAL gtid_domain_id = 5", "RESET MASTER"]).await;
    let mut tandem = start_tandem_run(&p.config, 2).await;
    let mut m = p.maria.connect("desk").await.unwrap();
    let insert = |id: i32, domain: u32| {
        format!(
            "SET SESSION gtid_domain_id = {domain}; \
             INSERT INTO clients (client_id, name, status_code) VALUES ({id}, 'd{domain}', 1)"
        )
    };
    let arrived = |ids: Vec<i32>| {
        let pg = &p.pg;
        async move {
            let have: Vec<i32> = pg_rows(pg).await.iter().map(|r| r.0).collect();
            ids.iter().all(|id| have.contains(id)).then_some(())
        }
    };
    m.query_drop(insert(1, 5)).await.unwrap();
    wait_for("the domain 5 row on PostgreSQL", DEADLINE, || {
        arrived(vec![1])
    })
    .await;
    // Domains below, between and above the checkpoint's, interleaved.
    for (id, domain) in [(2, 1), (3, 5), (4, 7), (5, 1), (6, 3), (7, 5), (8, 0)] {
        m.query_drop(insert(id, domain)).await.unwrap();
    }
    wait_for("rows from domains 0, 1, 3, 5, 7", DEADLINE, || {
        arrived((1..=8).collect())
    })
    .await;
    // Stopped, then written in old and new domains, then resumed from the multi-domain checkpoint.
    stop_tandem_run(tandem).await;
    for (id, domain) in [(9, 2), (10, 0), (11, 7)] {
        m.query_drop(insert(id, domain)).await.unwrap();
    }
    tandem = start_tandem_run(&p.config, 2).await;
    wait_for("rows written while stopped", DEADLINE, || {
        arrived((1..=11).collect())
    })
    .await;
    m.query_drop(insert(12, 4)).await.unwrap();
    wait_for(
        "a row from a new domain after the restart",
        DEADLINE,
        || arrived((1..=12).collect()),
    )
    .await;
    assert_eq!(
        pg_rows(&p.pg).await.len(),
        12,
        "no row applied twice or lost"
    );
    stop_tandem_run(tandem).await;
    m.disconnect().await.unwrap();
    std::fs::remove_file(&p.config).ok();
}

/// Rows that reach the PostgreSQL node through native logical replication (a subscription, which
/// marks them with its own replication origin) are that node's changes to forward: they reach
/// MariaDB. Only tandem's own origin marks a transaction as an echo.
#[tokio::test]
async fn rows_from_native_replication_are_forwarded() {
    let p = pair().await;
    p.pg.create_database("upstream").await.unwrap();
    let up = p.pg.connect("upstream").await.unwrap();
    for sql in [
        "CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, status text)",
        "CREATE PUBLICATION up_pub FOR TABLE customers",
        "SELECT pg_create_logical_replication_slot('up_sub', 'pgoutput')",
    ] {
        up.batch_execute(sql).await.unwrap();
    }
    let crm = p.pg.connect("crm").await.unwrap();
    // Same cluster: the slot is made beforehand, as CREATE SUBSCRIPTION cannot make it here.
    crm.batch_execute(&format!(
        "CREATE SUBSCRIPTION up_sub CONNECTION '{}' PUBLICATION up_pub \
         WITH (create_slot = false, slot_name = 'up_sub', copy_data = false)",
        p.pg.url("upstream")
    ))
    .await
    .unwrap();
    let mut tandem = start_tandem_run(&p.config, 2).await;
    up.batch_execute("INSERT INTO customers VALUES (7, 'From upstream', 'Approved')")
        .await
        .unwrap();
    wait_for("the natively replicated row on crm", DEADLINE, || async {
        let n: i64 = crm
            .query_one("SELECT count(*) FROM customers WHERE id = 7", &[])
            .await
            .unwrap()
            .get(0);
        (n == 1).then_some(())
    })
    .await;
    wait_for(
        "the natively replicated row on MariaDB",
        DEADLINE,
        || async {
            maria_rows(&p.maria)
                .await
                .iter()
                .any(|r| r.0 == 7 && r.1 == "From upstream")
                .then_some(())
        },
    )
    .await;
    stop_tandem_run(tandem).await;
    tandem = start_tandem_run(&p.config, 2).await;
    stop_tandem_run(tandem).await;
    crm.batch_execute("ALTER SUBSCRIPTION up_sub DISABLE; ALTER SUBSCRIPTION up_sub SET (slot_name = NONE); DROP SUBSCRIPTION up_sub")
        .await
        .unwrap();
    std::fs::remove_file(&p.config).ok();
}
