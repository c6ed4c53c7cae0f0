//! `tandem verify` on real servers: drift made before the links ran (rows written before `tandem
//! setup` are never replicated) is reported exactly, through a renamed, value-mapped and filtered
//! table, while both nodes take writes and a change is held in flight; values appear only when
//! asked for; wall-clock date-times compare at their node's time zone; exit codes 0, 1 and 2.

use std::collections::BTreeSet;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use tokio::io::AsyncBufReadExt;
use tokio::process::Command;

use crate::support::{start_tandem_run, stop_tandem_run, Pair};

pub(crate) const CUSTOMER: &str = r#"
[[tables]]
name = "customer"
key = ["id"]
on = { crm = "public.customers", helpdesk = "clients" }
filter = { region = ["EU"] }

[[tables.columns]]
name = "id"
on = { helpdesk = "client_id" }

[[tables.columns]]
name = "full_name"
on = { helpdesk = "name" }

[[tables.columns]]
name = "status"
on = { helpdesk = "status_code" }
values = { helpdesk = { "Approved" = 1, "Pending" = 2 } }
"#;

/// 20,050 rows on PostgreSQL (50 outside the filter, which stay home); on MariaDB the same 20,000
/// less 10, with 5 changed, plus 1 of its own.
pub(crate) const PG_CUSTOMERS: &str = "CREATE TABLE customers (id int PRIMARY KEY, full_name text NOT NULL, \
     status text NOT NULL, region text NOT NULL);
     INSERT INTO customers SELECT g, 'name ' || g, CASE WHEN g % 2 = 0 THEN 'Approved' ELSE 'Pending' END, 'EU' \
     FROM generate_series(1, 20000) g;
     INSERT INTO customers SELECT g, 'us ' || g, 'Approved', 'US' FROM generate_series(20001, 20050) g;
     UPDATE customers SET full_name = 'renamed on crm' WHERE id IN (3001, 3002);
     UPDATE customers SET status = 'Approved' WHERE id IN (3003, 3005, 3007);";

pub(crate) const MARIA_CLIENTS: &str = "CREATE TABLE clients (client_id INT PRIMARY KEY, name VARCHAR(100) NOT NULL, \
     status_code TINYINT NOT NULL, region VARCHAR(10) NOT NULL);
     INSERT INTO clients SELECT seq, CONCAT('name ', seq), IF(seq % 2 = 0, 1, 2), 'EU' FROM seq_1_to_20000;
     DELETE FROM clients WHERE client_id IN (11, 222, 1333, 4444, 5555, 9999, 12345, 15000, 17777, 20000);
     INSERT INTO clients VALUES (30000, 'only on helpdesk', 1, 'EU');";

pub(crate) const MISSING_ON_HELPDESK: [i64; 10] =
    [11, 222, 1333, 4444, 5555, 9999, 12345, 15000, 17777, 20000];

pub(crate) fn verify_cmd(config: &std::path::Path, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tandem"));
    c.args(["verify", "--config"])
        .arg(config)
        .args(extra)
        .env("TANDEM_LOG", "info")
        .kill_on_drop(true);
    c
}

/// (table, key id, kind, columns) of each difference in a JSON report.
pub(crate) fn differences(
    report: &serde_json::Value,
) -> BTreeSet<(String, i64, String, Vec<String>)> {
    report["differences"]
        .as_array()
        .expect("differences is an array")
        .iter()
        .map(|d| {
            let id = d["key"]["id"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("key without an id: {d}"));
            let columns = d["columns"]
                .as_array()
                .expect("columns")
                .iter()
                .map(|c| c.as_str().unwrap_or_default().to_string())
                .collect();
            (
                d["table"].as_str().unwrap_or_default().to_string(),
                id,
                d["kind"].as_str().unwrap_or_default().to_string(),
                columns,
            )
        })
        .collect()
}

/// Writes on `pairs` (update of an existing key, insert of a new one), each key once, until `stop`.
pub(crate) async fn pg_writer(url: String, stop: Arc<AtomicBool>) -> usize {
    let (c, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) && i < 900 {
        c.execute(
            "UPDATE customers SET full_name = 'pg live' WHERE id = $1",
            &[&(5000 + i)],
        )
        .await
        .unwrap();
        c.execute(
            "INSERT INTO customers VALUES ($1, 'pg new', 'Pending', 'EU')",
            &[&(40000 + i)],
        )
        .await
        .unwrap();
        i += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    i as usize
}

pub(crate) async fn maria_writer(url: String, stop: Arc<AtomicBool>) -> usize {
    let mut c = mysql_async::Conn::from_url(url).await.unwrap();
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) && i < 900 {
        c.exec_drop(
            "UPDATE clients SET name = 'maria live' WHERE client_id = ?",
            (8000 + i,),
        )
        .await
        .unwrap();
        c.exec_drop(
            "INSERT INTO clients VALUES (?, 'maria new', 1, 'EU')",
            (50000 + i,),
        )
        .await
        .unwrap();
        i += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    c.disconnect().await.unwrap();
    i
}

/// The issue's case: 16 drifted keys among 20,000, writes on both nodes during the verify, and one
/// change held in flight (its target row locked) while the first pass reads: exactly the 16 are
/// reported, the held change is seen in the first pass and not reported.
#[tokio::test(flavor = "multi_thread")]
async fn drift_is_reported_exactly_while_both_nodes_take_writes() {
    let pair = Pair::start(PG_CUSTOMERS, MARIA_CLIENTS, CUSTOMER).await;
    let run = start_tandem_run(&pair.config, 2).await;
    // Hold one change in flight: the applier's update of client 7777 waits for this lock.
    let mut lock = pair.maria.connect("desk").await.unwrap();
    lock.query_drop("BEGIN").await.unwrap();
    lock.query_drop("SELECT * FROM clients WHERE client_id = 7777 FOR UPDATE")
        .await
        .unwrap();
    let pg = pair.pg.connect("crm").await.unwrap();
    pg.execute(
        "UPDATE customers SET full_name = 'held in flight' WHERE id = 7777",
        &[],
    )
    .await
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writers = (
        tokio::spawn(pg_writer(pair.pg.url("crm"), stop.clone())),
        tokio::spawn(maria_writer(pair.maria.url("desk"), stop.clone())),
    );
    tokio::time::sleep(Duration::from_millis(300)).await; // some writes before the pass starts
    let mut child = verify_cmd(&pair.config, &["--format", "json", "--batch-rows", "3000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tandem verify");
    let mut stderr = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut log = String::new();
    let mut lock = Some(lock);
    while let Ok(Some(line)) = stderr.next_line().await {
        log.push_str(&line);
        log.push('\n');
        // The first pass is over: let the held change through.
        if line.contains("table read") {
            if let Some(mut l) = lock.take() {
                l.query_drop("COMMIT").await.unwrap();
                l.disconnect().await.unwrap();
            }
        }
    }
    let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("verify finishes within 120 s")
        .expect("verify output");
    stop.store(true, Ordering::Relaxed);
    let written = (writers.0.await.unwrap(), writers.1.await.unwrap());
    assert!(
        lock.is_none(),
        "verify never logged the end of its first pass:\n{log}"
    );
    assert!(
        written.0 > 0 && written.1 > 0,
        "both nodes took writes during the verify: {written:?}"
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "exit 1 when nodes differ\n{log}"
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "verify prints JSON ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    let mut expected = BTreeSet::new();
    for id in MISSING_ON_HELPDESK {
        expected.insert((
            "customer".to_string(),
            id,
            "missing_on helpdesk".to_string(),
            vec![],
        ));
    }
    for id in [3001, 3002] {
        expected.insert((
            "customer".to_string(),
            id,
            "differs".to_string(),
            vec!["full_name".to_string()],
        ));
    }
    for id in [3003, 3005, 3007] {
        expected.insert((
            "customer".to_string(),
            id,
            "differs".to_string(),
            vec!["status".to_string()],
        ));
    }
    expected.insert((
        "customer".to_string(),
        30000,
        "missing_on crm".to_string(),
        vec![],
    ));
    let found = differences(&report);
    assert_eq!(
        found,
        expected,
        "reported vs expected; extra: {:?}; missed: {:?}",
        found.difference(&expected).collect::<Vec<_>>(),
        expected.difference(&found).collect::<Vec<_>>()
    );
    let tables = report["tables"].as_array().expect("tables");
    assert_eq!(tables.len(), 1, "one mapped table: {report}");
    assert_eq!(tables[0]["table"], "customer");
    assert_eq!(tables[0]["differences"], 16);
    assert!(
        tables[0]["rows"].as_u64().is_some_and(|r| r >= 20_050),
        "every key is counted: {}",
        tables[0]
    );
    assert!(
        tables[0]["chunks"].as_u64().is_some_and(|c| c >= 7),
        "20,050 rows in batches of 3,000 are at least 7 chunks: {}",
        tables[0]
    );
    let settled = &report["settled"];
    assert_eq!(settled["lagging"], serde_json::json!([]), "{settled}");
    assert_eq!(settled["not_streaming"], serde_json::json!([]), "{settled}");
    let seen: usize = log
        .lines()
        .find(|l| l.contains("re-read the differing keys"))
        .and_then(|l| l.split("seen=").nth(1))
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no re-read line in the log:\n{log}"));
    assert!(
        seen >= 17,
        "the first pass saw the held change as a difference (saw {seen})"
    );
    assert!(
        !log.contains("{\"id\""),
        "keys never reach the log at info:\n{log}"
    );
    assert!(
        report["differences"][0].get("values").is_none(),
        "values only with --show-values"
    );
    stop_tandem_run(run).await;
}

/// `--since` reads only the rows written in the window on any node: an old drift (rows written
/// before setup carry version 0) is not looked at, a recent one is.
#[tokio::test(flavor = "multi_thread")]
async fn since_looks_only_at_recent_writes() {
    let pg_sql = "CREATE TABLE items (id int PRIMARY KEY, v text NOT NULL);
        INSERT INTO items SELECT g, 'v' || g FROM generate_series(1, 50) g;";
    let maria_sql = "CREATE TABLE items (id INT PRIMARY KEY, v VARCHAR(50) NOT NULL);
        INSERT INTO items SELECT seq, CONCAT('v', seq) FROM seq_1_to_50;
        UPDATE items SET v = 'old drift' WHERE id = 5;";
    let pair = Pair::start(pg_sql, maria_sql, ITEMS).await;
    let mut c = pair.maria.connect("desk").await.unwrap();
    // No links run: a local write stays on its node.
    c.query_drop("UPDATE items SET v = 'recent drift' WHERE id = 7")
        .await
        .unwrap();
    c.disconnect().await.unwrap();
    let out = verify_cmd(&pair.config, &["--format", "json", "--since", "10m"])
        .output()
        .await
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{log}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let expected: BTreeSet<_> = [(
        "items".to_string(),
        7,
        "differs".to_string(),
        vec!["v".to_string()],
    )]
    .into();
    assert_eq!(differences(&report), expected, "{report}");
    assert_eq!(
        report["tables"][0]["rows"], 1,
        "one key written in the window: {report}"
    );
    let out = verify_cmd(&pair.config, &["--format", "json"])
        .output()
        .await
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        differences(&report).len(),
        2,
        "a whole verify sees both: {report}"
    );
}

const ITEMS: &str = r#"
[[tables]]
name = "items"
key = ["id"]
"#;

/// Wall-clock `DATETIME`s on a node at +02:00 equal the instants on PostgreSQL; a row changed with
/// the links stopped is reported with the links named as not streaming; values only with
/// `--show-values`; exit 0 once equal, 2 for an unknown node.
#[tokio::test(flavor = "multi_thread")]
async fn time_zones_values_and_exit_codes() {
    let pg_sql = "CREATE TABLE items (id int PRIMARY KEY, v text NOT NULL, at timestamptz NOT NULL);
        INSERT INTO items SELECT g, 'v' || g, '2024-01-01 10:00:00+00' FROM generate_series(1, 100) g;";
    let maria_sql =
        "CREATE TABLE items (id INT PRIMARY KEY, v VARCHAR(50) NOT NULL, at DATETIME(6) NOT NULL);
        INSERT INTO items SELECT seq, CONCAT('v', seq), '2024-01-01 12:00:00' FROM seq_1_to_100;
        UPDATE items SET at = '2024-01-01 10:00:00' WHERE id = 50;";
    let pair = Pair::start(pg_sql, maria_sql, ITEMS).await;
    let text = std::fs::read_to_string(&pair.config).unwrap();
    std::fs::write(
        &pair.config,
        text.replace(
            "[nodes.helpdesk]\n",
            "[nodes.helpdesk]\ntimezone = \"+02:00\"\n",
        ),
    )
    .unwrap();

    let out = verify_cmd(&pair.config, &["--format", "json"])
        .output()
        .await
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{log}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let expected: BTreeSet<_> = [(
        "items".to_string(),
        50,
        "differs".to_string(),
        vec!["at".to_string()],
    )]
    .into();
    assert_eq!(differences(&report), expected, "{report}");
    assert!(report["differences"][0].get("values").is_none(), "{report}");
    let not_streaming = report["settled"]["not_streaming"]
        .as_array()
        .expect("not_streaming");
    assert_eq!(
        not_streaming.len(),
        2,
        "both links are reported as not streaming: {report}"
    );

    let out = verify_cmd(
        &pair.config,
        &["--format", "json", "--show-values", "--table", "items"],
    )
    .output()
    .await
    .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let values = &report["differences"][0]["values"];
    assert_eq!(values["crm"]["at"], "2024-01-01T10:00:00Z", "{report}");
    assert_eq!(values["helpdesk"]["at"], "2024-01-01T10:00:00", "{report}");

    let mut c = pair.maria.connect("desk").await.unwrap();
    c.query_drop("UPDATE items SET at = '2024-01-01 12:00:00' WHERE id = 50")
        .await
        .unwrap();
    c.disconnect().await.unwrap();
    let out = verify_cmd(&pair.config, &[]).output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("table items: 100 rows"), "{stdout}");
    assert!(stdout.contains("the nodes are equal"), "{stdout}");

    let out = verify_cmd(&pair.config, &["--node", "nosuch", "--node", "crm"])
        .output()
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown node is a usage error"
    );
}

/// Text keys whose order differs between the engines' collations (MariaDB's case-insensitive
/// `utf8mb4_unicode_ci` puts `a` before `B`; bytes put `B` first) are merged in byte order on both,
/// so no equal row is reported missing; the real drift is.
#[tokio::test(flavor = "multi_thread")]
async fn text_keys_merge_in_one_order_on_both_engines() {
    let keys = ["a", "B", "Z", "b2", "é", "_x", "Ab", "ab c", "Éa", "0"];
    let values: Vec<String> = keys
        .iter()
        .map(|k| format!("('{k}', 'label {k}')"))
        .collect();
    let pg_sql = format!(
        "CREATE TABLE tags (code varchar(20) PRIMARY KEY, label text NOT NULL); INSERT INTO tags VALUES {};",
        values.join(", ")
    );
    let maria_sql = format!(
        "CREATE TABLE tags (code VARCHAR(20) PRIMARY KEY, label VARCHAR(50) NOT NULL); INSERT INTO tags VALUES {}; \
         DELETE FROM tags WHERE code = 'Z'; UPDATE tags SET label = 'changed' WHERE code = 'é';",
        values.join(", ")
    );
    let pair = Pair::start(
        &pg_sql,
        &maria_sql,
        "[[tables]]\nname = \"tags\"\nkey = [\"code\"]\n",
    )
    .await;
    let out = verify_cmd(&pair.config, &["--format", "json", "--batch-rows", "3"])
        .output()
        .await
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{log}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let found: BTreeSet<(String, String, Vec<String>)> = report["differences"]
        .as_array()
        .expect("differences")
        .iter()
        .map(|d| {
            (
                d["key"]["code"].as_str().unwrap_or_default().to_string(),
                d["kind"].as_str().unwrap_or_default().to_string(),
                d["columns"]
                    .as_array()
                    .expect("columns")
                    .iter()
                    .map(|c| c.as_str().unwrap_or_default().to_string())
                    .collect(),
            )
        })
        .collect();
    let expected: BTreeSet<(String, String, Vec<String>)> = [
        ("Z".to_string(), "missing_on helpdesk".to_string(), vec![]),
        (
            "é".to_string(),
            "differs".to_string(),
            vec!["label".to_string()],
        ),
    ]
    .into();
    assert_eq!(found, expected, "{report}");
    assert_eq!(report["tables"][0]["rows"], keys.len(), "{report}");
    assert_eq!(report["tables"][0]["unlisted"], 0, "{report}");

    // A cap on the differences held: the rest are counted, and the nodes still differ.
    let out = verify_cmd(
        &pair.config,
        &["--format", "json", "--max-differences", "1"],
    )
    .output()
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        report["differences"].as_array().map(Vec::len),
        Some(1),
        "{report}"
    );
    assert_eq!(report["tables"][0]["differences"], 1, "{report}");
    assert_eq!(report["tables"][0]["unlisted"], 1, "{report}");
}
