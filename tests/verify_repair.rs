//! `tandem verify --repair` on real servers: each difference settled by the table's rule through
//! the apply paths (last write wins with tombstones, a `manual` table's review entries), the result
//! kept on the nodes for `tandem status` and the verify gauges. The drift and helpers are
//! `verify.rs`'s.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::Queryable;

use crate::support::{start_tandem_run, stop_tandem_run, Pair};
use crate::verify::{
    differences, maria_writer, pg_writer, verify_cmd, CUSTOMER, MARIA_CLIENTS, MISSING_ON_HELPDESK,
    PG_CUSTOMERS,
};

/// `--repair` under last write wins, while both nodes take writes: rows that differ take the later
/// writer's values (equal stamps: the greater node id), missing rows are written where they lack,
/// a row whose key the other node deleted later (its tombstone) is deleted, and each repair leaves
/// an audit record. A second verify finds the nodes equal.
#[tokio::test(flavor = "multi_thread")]
async fn repair_settles_each_difference_by_the_rule() {
    let port = crate::support::free_port();
    let pair = Pair::start(
        PG_CUSTOMERS,
        MARIA_CLIENTS,
        &format!("{CUSTOMER}\n[metrics]\nlisten = \"127.0.0.1:{port}\"\n"),
    )
    .await;
    let run = start_tandem_run(&pair.config, 2).await;
    // Changes on helpdesk that never reach the binlog (a fix with replication off): a later write
    // of client 43, and a delete of client 42, whose trigger leaves a tombstone.
    let mut desk = pair.maria.connect("desk").await.unwrap();
    desk.query_drop(
        "SET sql_log_bin = 0; \
         UPDATE clients SET name = 'fixed by hand' WHERE client_id = 43; \
         DELETE FROM clients WHERE client_id = 42; SET sql_log_bin = 1",
    )
    .await
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writers = (
        tokio::spawn(pg_writer(pair.pg.url("crm"), stop.clone())),
        tokio::spawn(maria_writer(pair.maria.url("desk"), stop.clone())),
    );
    let out = verify_cmd(&pair.config, &["--format", "json", "--repair"])
        .output()
        .await
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "differences were found\n{log}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let found = differences(&report);
    assert_eq!(found.len(), 18, "16 drifted keys and 42, 43: {found:?}");
    let repairs = report["repairs"].as_array().expect("repairs in the report");
    let by_id = |id: i64| {
        repairs
            .iter()
            .find(|r| r["key"]["id"].as_str() == Some(id.to_string().as_str()))
            .unwrap_or_else(|| panic!("no repair of {id}: {report}"))
    };
    assert_eq!(repairs.len(), 18, "one repair per key: {report}");
    for id in MISSING_ON_HELPDESK {
        let r = by_id(id);
        assert_eq!(r["action"], "write", "{r}");
        assert_eq!(r["from"], "crm", "{r}");
        assert_eq!(r["nodes"], serde_json::json!(["helpdesk"]), "{r}");
    }
    // Rows written before setup carry version 0 on both nodes: the tie goes to the greater node id.
    for id in [3001, 3002, 3003, 3005, 3007, 30000, 43] {
        let r = by_id(id);
        assert_eq!(r["action"], "write", "{r}");
        assert_eq!(r["from"], "helpdesk", "{r}");
        assert_eq!(r["nodes"], serde_json::json!(["crm"]), "{r}");
    }
    let r = by_id(42);
    assert_eq!(r["action"], "delete", "{r}");
    assert_eq!(r["nodes"], serde_json::json!(["crm"]), "{r}");
    // The result is kept on the nodes: `tandem run`'s gauge shows it.
    let gauge = |m: &str| {
        m.lines()
            .find(|l| {
                l.starts_with("tandem_verify_differences{") && l.contains("table=\"customer\"")
            })
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
    };
    crate::support::wait_for(
        "the verify gauge shows 18",
        Duration::from_secs(60),
        || async {
            let (_, m) = crate::support::http_get(port, "/metrics").await?;
            (gauge(&m) == Some(18.0)).then_some(())
        },
    )
    .await;

    stop.store(true, Ordering::Relaxed);
    let _ = (writers.0.await.unwrap(), writers.1.await.unwrap());
    let pg = pair.pg.connect("crm").await.unwrap();
    let name: String = pg
        .query_one("SELECT full_name FROM customers WHERE id = 43", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(name, "fixed by hand");
    let (gone, status): (i64, String) = {
        let r = pg
            .query_one(
                "SELECT (SELECT count(*) FROM customers WHERE id = 42), \
                 (SELECT status FROM customers WHERE id = 3003)",
                &[],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(gone, 0, "42 was deleted later on helpdesk");
    assert_eq!(
        status, "Pending",
        "3003 took helpdesk's status (2 = Pending)"
    );
    let audited: i64 = pg
        .query_one(
            "SELECT count(*) FROM tandem.conflict WHERE kind IN ('verify_missing', 'verify_differs') \
             AND decision IN ('repair_write', 'repair_delete') AND state = 'resolved'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(audited, 8, "an audit record per key repaired on crm");
    let on_desk: Option<i64> = desk
        .query_first(
            "SELECT COUNT(*) FROM tandem.conflict WHERE kind = 'verify_missing' AND decision = 'repair_write'",
        )
        .await
        .unwrap();
    assert_eq!(
        on_desk,
        Some(10),
        "an audit record per row written on helpdesk"
    );
    desk.disconnect().await.unwrap();

    let out = verify_cmd(&pair.config, &["--format", "json"])
        .output()
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "a second verify finds the nodes equal:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let status = tokio::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["status", "--config"])
        .arg(&pair.config)
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    // The writers keep inserting while the second verify runs: the row count is only bounded.
    let rows: Option<u64> = text
        .lines()
        .find_map(|l| l.strip_prefix("verify customer: 0 differences in "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok());
    assert!(
        rows.is_some_and(|n| n >= 20_000),
        "status shows the last verify, clean, over the 20000 seeded rows or more:\n{text}"
    );
    crate::support::wait_for(
        "the verify gauge shows 0",
        Duration::from_secs(60),
        || async {
            let (_, m) = crate::support::http_get(port, "/metrics").await?;
            (gauge(&m) == Some(0.0)).then_some(())
        },
    )
    .await;
    stop_tandem_run(run).await;
}

/// `--repair` on a `manual` table writes no row: the decider (the greater node id, helpdesk) gets
/// a parked entry holding the other node's state, and the other node a deferral, so that the
/// steward's resolution on the decider reaches both nodes. After resolving, the nodes are equal.
#[tokio::test(flavor = "multi_thread")]
async fn repair_of_a_manual_table_queues_the_differences_for_review() {
    let pg_sql = "CREATE TABLE items (id int PRIMARY KEY, v text NOT NULL);
        INSERT INTO items SELECT g, 'v' || g FROM generate_series(1, 20) g;";
    let maria_sql = "CREATE TABLE items (id INT PRIMARY KEY, v VARCHAR(50) NOT NULL);
        INSERT INTO items SELECT seq, CONCAT('v', seq) FROM seq_1_to_20;
        UPDATE items SET v = 'desk' WHERE id = 5; DELETE FROM items WHERE id = 6;";
    let pair = Pair::start(
        pg_sql,
        maria_sql,
        "[[tables]]\nname = \"items\"\nkey = [\"id\"]\nconflict = \"manual\"\n",
    )
    .await;
    let run = start_tandem_run(&pair.config, 2).await;
    let out = verify_cmd(&pair.config, &["--repair"])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.matches("for review on helpdesk (manual)").count(),
        2,
        "{stdout}"
    );
    let mut desk = pair.maria.connect("desk").await.unwrap();
    let parked: Vec<(i64, String)> = desk
        .query("SELECT id, row_key FROM tandem.conflict WHERE state = 'parked' ORDER BY row_key")
        .await
        .unwrap();
    assert_eq!(parked.len(), 2, "{parked:?}");
    let pg = pair.pg.connect("crm").await.unwrap();
    let deferred: i64 = pg
        .query_one(
            "SELECT count(*) FROM tandem.conflict WHERE state = 'deferred' AND source_node = 'helpdesk'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(deferred, 2, "crm defers to helpdesk on both keys");
    let (v5, n6): (String, i64) = {
        let r = pg
            .query_one(
                "SELECT (SELECT v FROM items WHERE id = 5), (SELECT count(*) FROM items WHERE id = 6)",
                &[],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(
        (v5.as_str(), n6),
        ("v5", 1),
        "a manual table is not written"
    );
    // The steward keeps helpdesk's 5 and takes crm's 6.
    for (id, key) in &parked {
        let take = if key.contains("\"5\"") {
            "current"
        } else {
            "incoming"
        };
        let st = tokio::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
            .args([
                "conflicts",
                "resolve",
                "--node",
                "helpdesk",
                "--take",
                take,
                "--config",
            ])
            .arg(&pair.config)
            .arg(id.to_string())
            .status()
            .await
            .unwrap();
        assert!(st.success(), "resolve {id} ({key})");
    }
    crate::support::wait_for(
        "crm takes helpdesk's 5",
        Duration::from_secs(60),
        || async {
            let r = pg
                .query_one("SELECT v FROM items WHERE id = 5", &[])
                .await
                .ok()?;
            (r.get::<_, String>(0) == "desk").then_some(())
        },
    )
    .await;
    desk.disconnect().await.unwrap();
    let out = verify_cmd(&pair.config, &[]).output().await.unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    stop_tandem_run(run).await;
}
