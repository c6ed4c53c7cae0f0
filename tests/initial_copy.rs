//! The initial copy on real servers: rows that exist before the first `tandem run` arrive exactly
//! once, a row present on both sides with different values is decided by the conflict rule (and
//! audited, and the winner reaches both nodes), streaming continues with the writes made during and
//! after the copy, an interrupted copy resumes from its last key, and nothing echoes back.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mysql_async::prelude::Queryable;
use tandem::harness::{MariaDb, PgServer};
use tokio::io::AsyncBufReadExt;

use crate::support::{start_tandem_run, wait_for, Pair};

type Rows = BTreeMap<i32, String>;

async fn pg_rows(pg: &PgServer) -> Option<Rows> {
    let c = pg.connect("crm").await.ok()?;
    let rows = c.query("SELECT id, v FROM items", &[]).await.ok()?;
    Some(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

async fn maria_rows(maria: &MariaDb) -> Option<Rows> {
    let mut c = maria.connect("desk").await.ok()?;
    let rows: Vec<(i32, String)> = c.query("SELECT id, v FROM items").await.ok()?;
    let _ = c.disconnect().await;
    Some(rows.into_iter().collect())
}

async fn pg_conflicts(pg: &PgServer) -> Vec<(String, String)> {
    let c = pg.connect("crm").await.unwrap();
    c.query("SELECT row_key, kind FROM tandem.conflict ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

async fn maria_conflicts(maria: &MariaDb) -> Vec<(String, String)> {
    let mut c = maria.connect("desk").await.unwrap();
    let rows: Vec<(String, String)> = c
        .query("SELECT row_key, kind FROM tandem.conflict ORDER BY id")
        .await
        .unwrap();
    c.disconnect().await.unwrap();
    rows
}

/// Waits until both nodes hold the same rows, apart from `only_maria` (rows the copy leaves alone).
async fn wait_equal(pair: &Pair, only_maria: &[i32]) -> Rows {
    let last = Mutex::new(String::new());
    let found = tokio::time::timeout(
        Duration::from_secs(90),
        wait_for(
            "both nodes to hold the same rows",
            Duration::from_secs(3600),
            || async {
                let p = pg_rows(&pair.pg).await?;
                let mut m = maria_rows(&pair.maria).await?;
                for k in only_maria {
                    m.remove(k)?;
                }
                if p != m {
                    *last.lock().unwrap() = describe_diff(&p, &m);
                }
                (p == m).then_some(p)
            },
        ),
    )
    .await;
    match found {
        Ok(rows) => rows,
        Err(_) => panic!(
            "the nodes did not hold the same rows within 90 s; PostgreSQL vs MariaDB: {}",
            last.lock().unwrap()
        ),
    }
}

fn describe_diff(a: &Rows, b: &Rows) -> String {
    let mut out = Vec::new();
    for (k, v) in a {
        if b.get(k) != Some(v) {
            out.push(format!("id {k}: {v:?} vs {:?}", b.get(k)));
        }
    }
    for k in b.keys().filter(|k| !a.contains_key(k)) {
        out.push(format!("id {k}: missing vs {:?}", b.get(k)));
    }
    out.truncate(10);
    out.join("; ")
}

const PG_TABLE: &str = "CREATE TABLE items (id int PRIMARY KEY, v text NOT NULL);";
const MARIA_TABLE: &str = "CREATE TABLE items (id INT PRIMARY KEY, v VARCHAR(100) NOT NULL);";

fn config(from: &str, batch_rows: u32) -> String {
    format!(
        "[copy]\nfrom = \"{from}\"\nbatch_rows = {batch_rows}\n[[tables]]\nname = \"items\"\nkey = [\"id\"]\n"
    )
}

/// Pre-existing rows on the copy source arrive once; the row both sides hold with different values
/// is decided by last write wins (equal versions: the greater node id, helpdesk) and audited once on
/// the target; the writes made while the copy runs and after it stream on; nothing comes back.
#[tokio::test(flavor = "multi_thread")]
async fn postgres_rows_copied_to_mariadb_then_streamed() {
    let pg_sql = format!(
        "{PG_TABLE} INSERT INTO items SELECT g, 'pg ' || g FROM generate_series(1, 500) g; \
         UPDATE items SET v = 'from pg' WHERE id = 2;"
    );
    let maria_sql = format!(
        "{MARIA_TABLE} INSERT INTO items VALUES (1, 'pg 1'), (2, 'from maria'), (100000, 'maria only');"
    );
    let pair = Pair::start(&pg_sql, &maria_sql, &config("crm", 50)).await;
    // Writes racing the copy: before, during and after its snapshot.
    let url = pair.pg.url("crm");
    let writer = tokio::spawn(async move {
        let (c, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        for i in 0..40 {
            c.execute("INSERT INTO items VALUES ($1, 'new')", &[&(1000 + i)])
                .await
                .unwrap();
            c.execute("UPDATE items SET v = v || '+' WHERE id = $1", &[&(10 + i)])
                .await
                .unwrap();
        }
        c.execute("DELETE FROM items WHERE id = 300", &[])
            .await
            .unwrap();
    });
    let _run = start_tandem_run(&pair.config, 2).await;
    writer.await.unwrap();
    let c = pair.pg.connect("crm").await.unwrap();
    c.execute("UPDATE items SET v = 'after' WHERE id = 400", &[])
        .await
        .unwrap();
    let rows = wait_equal(&pair, &[100000]).await;
    assert_eq!(rows.len(), 500 + 40 - 1, "every source row exactly once");
    assert_eq!(rows.get(&2).map(String::as_str), Some("from maria"));
    assert_eq!(rows.get(&400).map(String::as_str), Some("after"));
    assert_eq!(rows.get(&15).map(String::as_str), Some("pg 15+"));
    let maria = maria_rows(&pair.maria).await.unwrap();
    assert_eq!(
        maria.get(&100000).map(String::as_str),
        Some("maria only"),
        "a row only the target holds is left alone"
    );
    assert_eq!(
        maria_conflicts(&pair.maria).await,
        vec![(r#"{"id":"2"}"#.to_string(), "insert_exists".to_string())],
        "exactly the differing row is audited on the target"
    );
    assert_eq!(
        pg_conflicts(&pair.pg).await,
        Vec::new(),
        "nothing the copy wrote came back to PostgreSQL as a change"
    );
}

/// The same from MariaDB: the snapshot's binlog position starts the stream, the differing row goes to
/// helpdesk's version (the greater node id wins the tie) on PostgreSQL.
#[tokio::test(flavor = "multi_thread")]
async fn mariadb_rows_copied_to_postgres_then_streamed() {
    let pg_sql = format!("{PG_TABLE} INSERT INTO items VALUES (1, 'm 1'), (2, 'from pg');");
    let values: Vec<String> = (1..=500).map(|i| format!("({i}, 'm {i}')")).collect();
    let maria_sql = format!(
        "{MARIA_TABLE} INSERT INTO items VALUES {}; UPDATE items SET v = 'from maria' WHERE id = 2;",
        values.join(", ")
    );
    let pair = Pair::start(&pg_sql, &maria_sql, &config("helpdesk", 50)).await;
    let url = pair.maria.url("desk");
    let writer = tokio::spawn(async move {
        let mut c = mysql_async::Conn::from_url(url).await.unwrap();
        for i in 0..40 {
            c.exec_drop("INSERT INTO items VALUES (?, 'new')", (1000 + i,))
                .await
                .unwrap();
            c.exec_drop(
                "UPDATE items SET v = CONCAT(v, '+') WHERE id = ?",
                (10 + i,),
            )
            .await
            .unwrap();
        }
        c.query_drop("DELETE FROM items WHERE id = 300")
            .await
            .unwrap();
        c.disconnect().await.unwrap();
    });
    let _run = start_tandem_run(&pair.config, 2).await;
    writer.await.unwrap();
    let mut c = pair.maria.connect("desk").await.unwrap();
    c.query_drop("UPDATE items SET v = 'after' WHERE id = 400")
        .await
        .unwrap();
    c.disconnect().await.unwrap();
    let rows = wait_equal(&pair, &[]).await;
    assert_eq!(rows.len(), 500 + 40 - 1, "every source row exactly once");
    assert_eq!(rows.get(&2).map(String::as_str), Some("from maria"));
    assert_eq!(rows.get(&400).map(String::as_str), Some("after"));
    assert_eq!(rows.get(&15).map(String::as_str), Some("m 15+"));
    assert_eq!(
        pg_conflicts(&pair.pg).await,
        vec![(r#"{"id":"2"}"#.to_string(), "insert_exists".to_string())],
        "exactly the differing row is audited on the target"
    );
    assert_eq!(
        maria_conflicts(&pair.maria).await,
        Vec::new(),
        "nothing the copy wrote came back to MariaDB as a change"
    );
}

/// Starts `tandem run` keeping every log line.
fn spawn_run(config: &std::path::Path) -> (tokio::process::Child, Arc<Mutex<Vec<String>>>) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["run", "--config"])
        .arg(config)
        .env("TANDEM_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start tandem run");
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let sink = log.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            eprintln!("[tandem run] {line}");
            sink.lock().unwrap().push(line);
        }
    });
    (child, log)
}

async fn progress(maria: &MariaDb) -> Option<(i64, bool)> {
    let mut c = maria.connect("desk").await.ok()?;
    let r: Option<(i64, i8)> = c
        .query_first(
            "SELECT rows_copied, done FROM tandem.copy_progress WHERE table_name = 'items'",
        )
        .await
        .ok()?;
    let _ = c.disconnect().await;
    r.map(|(n, d)| (n, d != 0))
}

/// A copy killed mid-way resumes from its last key (the second run compares no row the first one
/// copied), the changes made while it was down arrive whether they fall in the copied or the
/// uncopied range (the latter replayed over a fresh snapshot, harmlessly), and the nodes end equal.
#[tokio::test(flavor = "multi_thread")]
async fn interrupted_copy_resumes_from_its_last_key() {
    const ROWS: i32 = 5000;
    let pg_sql = format!(
        "{PG_TABLE} INSERT INTO items SELECT g, 'pg ' || g FROM generate_series(1, {ROWS}) g;"
    );
    let pair = Pair::start(&pg_sql, MARIA_TABLE, &config("crm", 10)).await;
    let (mut first, _) = spawn_run(&pair.config);
    let copied = wait_for(
        "the copy to be under way",
        Duration::from_secs(60),
        || async { progress(&pair.maria).await.filter(|(n, _)| *n >= 200) },
    )
    .await;
    first.start_kill().unwrap();
    first.wait().await.unwrap();
    let (done_before, finished) = progress(&pair.maria).await.unwrap();
    assert!(
        !finished && done_before < i64::from(ROWS),
        "the copy finished ({done_before} rows) before it could be interrupted; raise ROWS"
    );
    assert!(done_before >= copied.0);
    // Changes while tandem is down: in the copied range, in the range not copied yet, and new rows.
    let c = pair.pg.connect("crm").await.unwrap();
    c.batch_execute(
        "UPDATE items SET v = 'down low' WHERE id IN (1, 2, 3); \
         UPDATE items SET v = 'down high' WHERE id IN (4990, 4991); \
         DELETE FROM items WHERE id IN (5, 4995); \
         INSERT INTO items VALUES (9001, 'down new');",
    )
    .await
    .unwrap();
    let (_second, log) = spawn_run(&pair.config);
    let rows = wait_equal(&pair, &[]).await;
    assert_eq!(rows.len(), ROWS as usize - 2 + 1);
    assert_eq!(rows.get(&4990).map(String::as_str), Some("down high"));
    assert_eq!(rows.get(&1).map(String::as_str), Some("down low"));
    assert!(!rows.contains_key(&5) && !rows.contains_key(&4995));
    let lines = log.lock().unwrap().clone();
    let resumed = lines
        .iter()
        .any(|l| l.contains("initial copy resumes from its progress"));
    assert!(
        resumed,
        "the second run did not resume:\n{}",
        lines.join("\n")
    );
    let copied_line = lines
        .iter()
        .find(|l| l.contains("table copied"))
        .unwrap_or_else(|| panic!("no 'table copied' line:\n{}", lines.join("\n")));
    assert!(
        copied_line.contains("equal=0"),
        "the second run compared rows the first had copied (it started over): {copied_line}"
    );
    let (total, done) = progress(&pair.maria).await.unwrap();
    assert!(done);
    assert!(
        total >= i64::from(ROWS) - 1,
        "progress counts the rows of both runs: {total}"
    );
    assert_eq!(
        pg_conflicts(&pair.pg).await,
        Vec::new(),
        "nothing echoed back to PostgreSQL"
    );
    let p = pg_rows(&pair.pg).await.unwrap();
    let m = maria_rows(&pair.maria).await.unwrap();
    assert_eq!(p, m, "{}", describe_diff(&p, &m));
}

/// A row the target refuses during the copy (a value longer than the MariaDB column) goes to the
/// dead-letter table with the copy as its position; the copy and the stream go on; once the column
/// is widened, replaying the dead letter brings the row.
#[tokio::test(flavor = "multi_thread")]
async fn a_refused_row_is_dead_lettered_and_the_copy_goes_on() {
    let pg_sql = format!(
        "{PG_TABLE} INSERT INTO items SELECT g, 'pg ' || g FROM generate_series(1, 120) g; \
         UPDATE items SET v = 'a value far too long for the help desk' WHERE id = 57;"
    );
    let maria_sql = "CREATE TABLE items (id INT PRIMARY KEY, v VARCHAR(10) NOT NULL);";
    let pair = Pair::start(&pg_sql, maria_sql, &config("crm", 50)).await;
    let _run = start_tandem_run(&pair.config, 2).await;
    let c = pair.pg.connect("crm").await.unwrap();
    c.execute("INSERT INTO items VALUES (1000, 'streamed')", &[])
        .await
        .unwrap();
    wait_for(
        "every other row and the streamed one on MariaDB",
        Duration::from_secs(60),
        || async {
            let m = maria_rows(&pair.maria).await?;
            (m.len() == 120 && !m.contains_key(&57) && m.contains_key(&1000)).then_some(())
        },
    )
    .await;
    let mut conn = pair.maria.connect("desk").await.unwrap();
    let dead: Vec<(i64, String)> = conn
        .query("SELECT id, source_position FROM tandem.dead_letter")
        .await
        .unwrap();
    assert_eq!(dead.len(), 1, "one dead letter: {dead:?}");
    assert!(dead[0].1.starts_with("copy:"), "{dead:?}");
    conn.query_drop("ALTER TABLE items MODIFY v VARCHAR(100) NOT NULL")
        .await
        .unwrap();
    conn.disconnect().await.unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["dead-letter", "replay", "--node", "helpdesk", "--config"])
        .arg(&pair.config)
        .arg(dead[0].0.to_string())
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "replay: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for("the replayed row", Duration::from_secs(30), || async {
        let m = maria_rows(&pair.maria).await?;
        (m.get(&57).map(String::as_str) == Some("a value far too long for the help desk"))
            .then_some(())
    })
    .await;
}

/// A refused row's dead letter is written with the batch's progress, in one transaction. Before
/// the fix it was committed on its own first: a failure (here a trigger refusing the progress
/// write; in life a crash) between the two left the dead letter without the progress, the batch
/// was copied again on restart, and the row was dead-lettered a second time (2 dead letters).
#[tokio::test(flavor = "multi_thread")]
async fn a_copy_interrupted_after_a_refusal_records_it_once() {
    let pg_sql = format!(
        "{PG_TABLE} INSERT INTO items SELECT g, 'pg ' || g FROM generate_series(1, 120) g; \
         UPDATE items SET v = 'a value far too long for the help desk' WHERE id = 57;"
    );
    let maria_sql = "CREATE TABLE items (id INT PRIMARY KEY, v VARCHAR(10) NOT NULL);";
    let pair = Pair::start(&pg_sql, maria_sql, &config("crm", 50)).await;
    let mut conn = pair.maria.connect("desk").await.unwrap();
    conn.query_drop(
        "CREATE TRIGGER tandem.refuse_progress BEFORE UPDATE ON tandem.copy_progress FOR EACH ROW \
         BEGIN IF NEW.rows_copied > 0 AND (SELECT COUNT(*) FROM tandem.dead_letter) > 0 THEN \
         SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'progress refused by the test'; END IF; END",
    )
    .await
    .unwrap();
    // The first run halts the copy at the batch holding the refused row.
    let mut first = tokio::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["run", "--config"])
        .arg(&pair.config)
        .env("TANDEM_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start tandem run");
    let mut lines = tokio::io::BufReader::new(first.stderr.take().unwrap()).lines();
    let halted = tokio::time::timeout(Duration::from_secs(90), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("halted") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(
        halted,
        Ok(true),
        "the copy did not halt on the refused progress"
    );
    first.kill().await.unwrap();
    conn.query_drop("DROP TRIGGER tandem.refuse_progress")
        .await
        .unwrap();
    let _run = start_tandem_run(&pair.config, 2).await;
    wait_for(
        "every row but the refused one on MariaDB",
        Duration::from_secs(60),
        || async {
            let m = maria_rows(&pair.maria).await?;
            (m.len() == 119).then_some(())
        },
    )
    .await;
    let dead: Vec<(i64, String)> = conn
        .query("SELECT id, source_position FROM tandem.dead_letter")
        .await
        .unwrap();
    assert_eq!(dead.len(), 1, "the refused row is recorded once: {dead:?}");
    conn.disconnect().await.unwrap();
}

/// Runs `tandem run` on `pair` until a line of its log contains `until`; returns the process (killed
/// when dropped) and the log so far.
async fn run_until(pair: &Pair, until: &str) -> (tokio::process::Child, String) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["run", "--config"])
        .arg(&pair.config)
        .env("TANDEM_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start tandem run");
    let mut lines = tokio::io::BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut log = String::new();
    let found = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            log.push_str(&line);
            log.push('\n');
            if line.contains(until) {
                return true;
            }
        }
        false
    })
    .await;
    assert!(
        matches!(found, Ok(true)),
        "no log line with {until:?}:\n{log}"
    );
    (child, log)
}

/// A copied row the target refuses, in a batch with others: under `halt` the message names that
/// row's key (it said `key {}`, the whole batch) and promises no dead letter; under `dead_letter`
/// the stored error names the key and says how to replay it.
#[tokio::test(flavor = "multi_thread")]
async fn copy_refusals_name_the_row_and_the_right_next_step() {
    for policy in ["halt", "dead_letter"] {
        let pair = Pair::start(
            "CREATE TABLE items (id int PRIMARY KEY, v text NOT NULL)",
            "CREATE TABLE items (id INT PRIMARY KEY, v VARCHAR(3) NOT NULL)",
            &format!(
                "[copy]\nfrom = \"crm\"\n[tandem]\non_error = \"{policy}\"\n\
                 [[tables]]\nname = \"items\"\nkey = [\"id\"]\n"
            ),
        )
        .await;
        pair.pg
            .connect("crm")
            .await
            .expect("connect")
            .batch_execute(
                "INSERT INTO items VALUES (1, 'a'), (2, 'b'), (3, 'too long'), (4, 'd'), (5, 'e')",
            )
            .await
            .expect("rows to copy");
        if policy == "halt" {
            let (_run, log) = run_until(&pair, "link halted").await;
            let line = log
                .lines()
                .find(|l| l.contains("link halted"))
                .unwrap_or_default();
            assert!(line.contains(r#"key {"id":"3"}"#), "{line}");
            assert!(line.contains("column v"), "{line}");
            assert!(!line.contains("key {}"), "{line}");
            assert!(
                !line.contains("replay"),
                "no dead letter was written: {line}"
            );
        } else {
            let (_run, _) = run_until(&pair, "copied row sent to the dead-letter table").await;
            let errors: Vec<String> =
                wait_for("the dead letter", Duration::from_secs(30), || async {
                    let mut c = pair.maria.connect("desk").await.ok()?;
                    let rows: Vec<String> =
                        c.query("SELECT error FROM tandem.dead_letter").await.ok()?;
                    let _ = c.disconnect().await;
                    (!rows.is_empty()).then_some(rows)
                })
                .await;
            assert_eq!(errors.len(), 1, "{errors:?}");
            assert!(errors[0].contains(r#"key {"id":"3"}"#), "{}", errors[0]);
            assert!(!errors[0].contains('…'), "nothing scrubbed: {}", errors[0]);
            assert!(
                errors[0].contains("tandem dead-letter replay --node helpdesk"),
                "{}",
                errors[0]
            );
        }
    }
}
