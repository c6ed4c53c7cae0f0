//! `tandem tail` shows a live database's changes exactly, as JSON lines.

use std::process::Stdio;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use serde_json::{json, Value};
use tandem::harness::{MariaDb, PgServer};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use crate::support::unique_name;

const DEADLINE: Duration = Duration::from_secs(30);

struct Tail {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Tail {
    /// Starts `tandem tail` and waits until it reads the log.
    async fn start(config: &std::path::Path, node: &str) -> Tail {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tandem"))
            .args(["tail", "--node", node, "--config"])
            .arg(config)
            .env("TANDEM_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start tandem tail");
        let mut stderr = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let ready = tokio::time::timeout(DEADLINE, async {
            while let Ok(Some(line)) = stderr.next_line().await {
                if line.contains("tail started") {
                    return Ok(());
                }
                if line.contains("error") {
                    return Err(line);
                }
            }
            Err("tail exited".to_string())
        })
        .await;
        match ready {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("tandem tail failed: {e}"),
            Err(_) => panic!("tandem tail did not start within {DEADLINE:?}"),
        }
        // Keep draining stderr so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = stderr.next_line().await {} });
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        Tail { child, lines }
    }

    async fn next(&mut self) -> Value {
        let line = tokio::time::timeout(DEADLINE, self.lines.next_line())
            .await
            .expect("a transaction line within the deadline")
            .expect("read stdout")
            .expect("tail still running");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    }
}

/// A row image without the bookkeeping columns `tandem setup` added, after checking their origin.
fn business(row: &Value, origin: &str) -> Value {
    let mut row = row.clone();
    let map = row.as_object_mut().expect("a row is an object");
    assert_eq!(
        map.remove("_tandem_origin"),
        Some(json!(origin)),
        "origin marker of {row}"
    );
    assert!(
        map.remove("_tandem_version").is_some_and(|v| v.is_u64()),
        "managed version"
    );
    // PostgreSQL: the old version beside it (the table is logged without old rows).
    map.remove("_tandem_version_prev");
    row
}

fn write_config(pg: &PgServer, maria: &MariaDb) -> std::path::PathBuf {
    let text = format!(
        "[nodes.crm]\nurl = \"{}\"\n[nodes.helpdesk]\nurl = \"{}\"\n[[tables]]\nname = \"items\"\nkey = [\"id\"]\n",
        pg.url("crm"),
        maria.url("desk")
    );
    let path = std::env::temp_dir().join(format!("{}.toml", unique_name("tandem_tail")));
    std::fs::write(&path, text).expect("write config");
    path
}

#[tokio::test]
async fn tail_shows_postgres_and_mariadb_changes_exactly() {
    let (pg, maria) = tokio::join!(PgServer::start(), MariaDb::start());
    let (pg, maria) = (
        pg.expect("PostgreSQL starts"),
        maria.expect("MariaDB starts"),
    );
    pg.create_database("crm").await.unwrap();
    let client = pg.connect("crm").await.unwrap();
    client
        .batch_execute(
            "CREATE TABLE items (id bigint PRIMARY KEY, amount numeric(40,10), big bigint, data bytea, note text, \
             at timestamptz)",
        )
        .await
        .unwrap();
    maria.create_database("desk").await.unwrap();
    let mut conn = maria.connect("desk").await.unwrap();
    conn.query_drop(
        "CREATE TABLE items (id bigint PRIMARY KEY, amount decimal(40,10), big bigint unsigned, data blob, \
         note text, at datetime(6))",
    )
    .await
    .unwrap();
    let config = write_config(&pg, &maria);
    let setup = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["setup", "--config"])
        .arg(&config)
        .output()
        .await
        .expect("run tandem setup");
    assert!(
        setup.status.success(),
        "setup failed: {}",
        String::from_utf8_lossy(&setup.stderr)
    );

    let mut tail = Tail::start(&config, "crm").await;
    client
        .batch_execute(
            "BEGIN; INSERT INTO items VALUES (1, 123456789012345678901234567890.0123456789, 9007199254740993, \
             '\\x00ff', 'é ✓', '2024-02-29 12:34:56.123456+00'); UPDATE items SET note = NULL WHERE id = 1; COMMIT",
        )
        .await
        .unwrap();
    let t = tail.next().await;
    assert_eq!(t["node"], "crm");
    assert!(
        t["position"].as_str().is_some_and(|p| p.starts_with("pg:")),
        "{t}"
    );
    let changes = t["changes"].as_array().expect("changes");
    assert_eq!(changes.len(), 2, "{t}");
    assert_eq!(changes[0]["table"], "public.items");
    assert_eq!(changes[0]["op"], "insert");
    assert_eq!(
        business(&changes[0]["after"], "crm"),
        json!({"id": 1, "amount": "123456789012345678901234567890.0123456789", "big": "9007199254740993",
               "data": "AP8=", "note": "é ✓", "at": "2024-02-29T12:34:56.123456Z"})
    );
    assert_eq!(changes[1]["op"], "update");
    assert_eq!(changes[1]["after"]["note"], Value::Null);
    drop(tail);

    let mut tail = Tail::start(&config, "helpdesk").await;
    conn.query_drop(
        "INSERT INTO items VALUES (2, -0.0000000001, 18446744073709551615, x'00ff', 'emoji 😀', \
         '2024-02-29 12:34:56.000001')",
    )
    .await
    .unwrap();
    conn.query_drop("DELETE FROM items WHERE id = 2")
        .await
        .unwrap();
    let insert = tail.next().await;
    assert_eq!(insert["node"], "helpdesk");
    assert_eq!(insert["changes"][0]["table"], "desk.items");
    assert_eq!(
        business(&insert["changes"][0]["after"], "helpdesk"),
        json!({"id": 2, "amount": "-0.0000000001", "big": "18446744073709551615", "data": "AP8=",
               "note": "emoji 😀", "at": "2024-02-29T12:34:56.000001"})
    );
    let delete = tail.next().await;
    assert_eq!(delete["changes"][0]["op"], "delete");
    assert_eq!(delete["changes"][0]["before"]["id"], 2);
    assert_eq!(delete["changes"][0]["after"], Value::Null);
    tail.child.kill().await.ok();
    std::fs::remove_file(&config).ok();
}
