//! `tandem cutover --to crm` on a pair with `tandem run` running both ways, as an operator moving the
//! applications from the help desk's MariaDB to the CRM's PostgreSQL uses it: not ready while a
//! conflict waits in the review queue, a dead letter is open or verify finds a difference; ready
//! (exit 0) once each is dealt with; `--wait` returns 0 once a backlog drains.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;

use crate::conflicts_cli::{parked_conflict, resolve_and_settle};
use crate::support::{output_text, start_tandem_run, stop_tandem_run, tandem_cli, wait_for, Pair};

const DEADLINE: Duration = Duration::from_secs(60);

/// Runs `tandem cutover --to crm` (JSON); returns the exit code, the unmet conditions as
/// (condition, subject), and everything printed.
async fn cutover(config: &std::path::Path) -> (i32, Vec<(String, String)>, String) {
    let args = [
        "cutover",
        "--to",
        "crm",
        "--settle-timeout",
        "10",
        "--format",
        "json",
    ];
    let out = tandem_cli(&args, config).await;
    let said = output_text(&out);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("cutover printed no JSON ({e}):\n{said}"));
    let unmet = doc["unmet"]
        .as_array()
        .unwrap_or_else(|| panic!("no unmet array:\n{said}"))
        .iter()
        .map(|u| {
            (
                u["condition"].as_str().unwrap_or_default().to_string(),
                u["subject"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        doc["ready"].as_bool(),
        Some(out.status.success()),
        "the verdict and the exit code disagree:\n{said}"
    );
    (out.status.code().unwrap_or(-1), unmet, said)
}

/// `tandem ARGS --config F`, which must succeed; what it printed.
async fn tandem(args: &[&str], config: &std::path::Path) -> String {
    let out = tandem_cli(args, config).await;
    let said = output_text(&out);
    assert!(out.status.success(), "tandem {args:?} failed:\n{said}");
    said
}

fn has(unmet: &[(String, String)], condition: &str, subject: &str) -> bool {
    unmet.iter().any(|(c, s)| c == condition && s == subject)
}

#[tokio::test]
async fn cutover_is_not_ready_while_a_conflict_or_a_dead_letter_is_open() {
    let mut p = parked_conflict().await;
    // crm's edit is parked on helpdesk: the rows differ and a person must decide.
    let (code, unmet, said) = cutover(&p.config).await;
    assert_eq!(code, 1, "ready with a parked conflict:\n{said}");
    assert!(has(&unmet, "review_queue", "crm_to_helpdesk"), "{said}");
    assert!(has(&unmet, "verify", "items"), "{said}");
    resolve_and_settle(&p.pg, &p.maria, &p.config, p.id, "incoming", "crm edit").await;
    let (code, unmet, said) = cutover(&p.config).await;
    assert_eq!(
        (code, unmet.len()),
        (0, 0),
        "not ready once resolved:\n{said}"
    );

    // A name MariaDB's varchar(50) cannot take: a dead letter on helpdesk.
    let long = "x".repeat(60);
    let c = p.pg.connect("crm").await.unwrap();
    c.execute("INSERT INTO items VALUES (2, $1)", &[&long])
        .await
        .unwrap();
    let id = wait_for("a dead letter on helpdesk", DEADLINE, || async {
        let out = tandem(
            &[
                "dead-letter",
                "list",
                "--node",
                "helpdesk",
                "--format",
                "json",
            ],
            &p.config,
        )
        .await;
        out.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find_map(|e| e["id"].as_i64())
    })
    .await;
    let (code, unmet, said) = cutover(&p.config).await;
    assert_eq!(code, 1, "ready with a dead letter:\n{said}");
    assert!(has(&unmet, "dead_letters", "crm_to_helpdesk"), "{said}");
    assert!(has(&unmet, "verify", "items"), "{said}");
    assert!(
        said.contains("tandem dead-letter replay --config F --node helpdesk"),
        "the fix is not named:\n{said}"
    );

    // Fix the cause, replay: ready.
    p.m.query_drop("ALTER TABLE items MODIFY name varchar(100) NOT NULL")
        .await
        .unwrap();
    tandem(
        &[
            "dead-letter",
            "replay",
            "--node",
            "helpdesk",
            &id.to_string(),
        ],
        &p.config,
    )
    .await;
    let (code, unmet, said) = cutover(&p.config).await;
    assert_eq!(
        (code, unmet),
        (0, vec![]),
        "not ready after the replay:\n{said}"
    );
    stop_tandem_run(p.run).await;
}

#[tokio::test]
async fn cutover_sees_a_verify_difference_and_wait_returns_once_a_backlog_drains() {
    let p = Pair::start(
        "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)",
        "CREATE TABLE items (id int PRIMARY KEY, name varchar(50) NOT NULL)",
        "[[tables]]\nname = \"items\"\nkey = [\"id\"]\n",
    )
    .await;
    let run = start_tandem_run(&p.config, 2).await;
    // A row written on MariaDB outside its binlog never crosses: drift only verify can see.
    let mut m = p.maria.connect("desk").await.unwrap();
    m.query_drop("SET SESSION sql_log_bin = 0; INSERT INTO items VALUES (1, 'unlogged')")
        .await
        .unwrap();
    let (code, unmet, said) = cutover(&p.config).await;
    assert_eq!(code, 1, "ready with a difference:\n{said}");
    assert_eq!(unmet, vec![("verify".into(), "items".into())], "{said}");
    m.query_drop("DELETE FROM items WHERE id = 1")
        .await
        .unwrap();
    m.query_drop("SET SESSION sql_log_bin = 1").await.unwrap();
    let (code, unmet, said) = cutover(&p.config).await;
    assert_eq!((code, unmet), (0, vec![]), "not ready once equal:\n{said}");

    // A backlog on the help desk while tandem is down; `--wait` says ready once it has crossed.
    stop_tandem_run(run).await;
    for i in 0..200 {
        m.exec_drop(
            "INSERT INTO items VALUES (?, ?)",
            (100 + i, format!("backlog {i}")),
        )
        .await
        .unwrap();
    }
    m.disconnect().await.unwrap();
    let mut waiter = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args([
            "cutover",
            "--to",
            "crm",
            "--wait",
            "--interval",
            "1s",
            "--timeout",
            "2m",
        ])
        .args(["--settle-timeout", "10", "--config"])
        .arg(&p.config)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start tandem cutover --wait");
    let mut stdout = waiter.stdout.take().expect("stdout");
    let mut lines = BufReader::new(waiter.stderr.take().expect("stderr")).lines();
    // It says why it is not ready yet (the link into crm does not stream) and keeps checking.
    let mut said = String::new();
    tokio::time::timeout(DEADLINE, async {
        while let Ok(Some(line)) = lines.next_line().await {
            said.push_str(&line);
            said.push('\n');
            if line.contains("not ready") && line.contains("streaming (helpdesk_to_crm)") {
                return;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("cutover --wait never said why it waits:\n{said}"));
    let run = start_tandem_run(&p.config, 2).await;
    let rest = tokio::spawn(async move {
        let mut text = String::new();
        while let Ok(Some(line)) = lines.next_line().await {
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    let status = tokio::time::timeout(Duration::from_secs(150), waiter.wait())
        .await
        .expect("cutover --wait ended within its timeout")
        .expect("cutover --wait status");
    let mut report = String::new();
    stdout.read_to_string(&mut report).await.unwrap();
    said.push_str(&rest.await.unwrap());
    said.push_str(&report);
    assert!(
        status.success(),
        "cutover --wait did not say ready:\n{said}"
    );
    assert!(
        report.starts_with("cutover to crm: ready"),
        "no verdict in the report:\n{said}"
    );
    let c = p.pg.connect("crm").await.unwrap();
    let rows: i64 = c
        .query_one("SELECT count(*) FROM items WHERE id >= 100", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 200, "ready before the backlog crossed:\n{said}");
    stop_tandem_run(run).await;
}
