//! Convergence under fire: random concurrent inserts, updates and deletes on both nodes over the same
//! keys, under each automatic conflict rule. After the writers stop and the links drain, every row is
//! equal on both nodes, and nothing echoes.

use std::collections::BTreeMap;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use tandem::harness::{MariaDb, PgServer};
use tokio::process::Command;

use crate::support::{start_tandem_run, unique_name, wait_for};

const KEYS: u64 = 12;
const OPS_PER_WRITER: usize = 120;
const WRITERS_PER_NODE: u64 = 2;

type Rows = BTreeMap<i32, (i32, String)>;

/// A small deterministic generator (xorshift64*), so a failing run can be repeated from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

async fn pg_rows(pg: &PgServer) -> Rows {
    let c = pg.connect("crm").await.unwrap();
    c.query("SELECT id, n, label FROM items", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect()
}

async fn maria_rows(maria: &MariaDb) -> Rows {
    let mut c = maria.connect("desk").await.unwrap();
    let rows: Vec<(i32, i32, String)> = c.query("SELECT id, n, label FROM items").await.unwrap();
    c.disconnect().await.unwrap();
    rows.into_iter().map(|(id, n, l)| (id, (n, l))).collect()
}

/// The first difference between the two nodes, as a sentence.
fn first_difference(a: &Rows, b: &Rows) -> Option<String> {
    let keys: std::collections::BTreeSet<_> = a.keys().chain(b.keys()).collect();
    keys.into_iter().find_map(|k| match (a.get(k), b.get(k)) {
        (x, y) if x == y => None,
        (x, y) => Some(format!(
            "table items, key id={k}: crm has {x:?}, helpdesk has {y:?}"
        )),
    })
}

async fn pg_writer(pg_url: String, seed: u64, deletes: bool) {
    let (client, conn) = tokio_postgres::connect(&pg_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut rng = Rng(seed);
    for i in 0..OPS_PER_WRITER {
        let id = (rng.below(KEYS) + 1) as i32;
        let label = format!("crm-{seed}-{i}");
        let sql = match rng.below(if deletes { 10 } else { 9 }) {
            0..=3 => {
                "INSERT INTO items (id, n, label) VALUES ($1, 0, $2) ON CONFLICT (id) DO NOTHING"
            }
            4..=8 => "UPDATE items SET n = n + 1, label = $2 WHERE id = $1",
            _ => "DELETE FROM items WHERE id = $1 AND $2 <> ''",
        };
        // Deadlocks and serialization failures are part of the weather here; the write is just skipped.
        let _ = client.execute(sql, &[&id, &label]).await;
    }
}

async fn maria_writer(maria_url: String, seed: u64, deletes: bool) {
    let mut c = mysql_async::Conn::from_url(maria_url).await.unwrap();
    let mut rng = Rng(seed);
    for i in 0..OPS_PER_WRITER {
        let id = rng.below(KEYS) + 1;
        let label = format!("desk-{seed}-{i}");
        let sql = match rng.below(if deletes { 10 } else { 9 }) {
            0..=3 => "INSERT IGNORE INTO items (id, n, label) VALUES (?, 0, ?)",
            4..=8 => "UPDATE items SET n = n + 1, label = ? WHERE id = ?",
            _ => "DELETE FROM items WHERE id = ? AND ? <> ''",
        };
        let params: (String, String) = if sql.starts_with("UPDATE") {
            (label, id.to_string())
        } else {
            (id.to_string(), label)
        };
        let _ = c.exec_drop(sql, params).await;
    }
    c.disconnect().await.unwrap();
}

async fn converge_under(rule: &str, deletes: bool) {
    let (pg, maria) = tokio::join!(PgServer::start(), MariaDb::start());
    let (pg, maria) = (
        pg.expect("PostgreSQL starts"),
        maria.expect("MariaDB starts"),
    );
    pg.create_database("crm").await.unwrap();
    pg.connect("crm")
        .await
        .unwrap()
        .batch_execute(
            "CREATE TABLE items (id int PRIMARY KEY, n int NOT NULL, label varchar(50) NOT NULL)",
        )
        .await
        .unwrap();
    maria.create_database("desk").await.unwrap();
    let mut conn = maria.connect("desk").await.unwrap();
    conn.query_drop(
        "CREATE TABLE items (id int PRIMARY KEY, n int NOT NULL, label varchar(50) NOT NULL)",
    )
    .await
    .unwrap();
    conn.disconnect().await.unwrap();
    let config = std::env::temp_dir().join(format!("{}.toml", unique_name("tandem_converge")));
    std::fs::write(
        &config,
        format!(
            "[nodes.crm]\nurl = \"{}\"\n[nodes.helpdesk]\nurl = \"{}\"\n[[tables]]\nname = \"items\"\nkey = [\"id\"]\n{rule}\n",
            pg.url("crm"),
            maria.url("desk")
        ),
    )
    .unwrap();
    let setup = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["setup", "--config"])
        .arg(&config)
        .output()
        .await
        .unwrap();
    assert!(
        setup.status.success(),
        "setup: {}",
        String::from_utf8_lossy(&setup.stderr)
    );
    let mut tandem = start_tandem_run(&config, 2).await;
    // TANDEM_CONVERGE_TRACE=DIR records both nodes' logs as JSON lines, to replay a divergence.
    let mut _traces: Vec<tokio::process::Child> = Vec::new();
    if let Some(dir) = std::env::var_os("TANDEM_CONVERGE_TRACE") {
        for node in ["crm", "helpdesk"] {
            _traces.push(start_trace(&config, node, std::path::Path::new(&dir)).await);
        }
    }

    let mut writers = Vec::new();
    for w in 0..WRITERS_PER_NODE {
        writers.push(tokio::spawn(pg_writer(
            pg.url("crm"),
            0x9E37_79B9 + w,
            deletes,
        )));
        writers.push(tokio::spawn(maria_writer(
            maria.url("desk"),
            0x85EB_CA6B + w,
            deletes,
        )));
    }
    for w in writers {
        w.await.expect("writer");
    }

    let mut last = String::new();
    let converged = tokio::time::timeout(Duration::from_secs(90), async {
        loop {
            let (a, b) = (pg_rows(&pg).await, maria_rows(&maria).await);
            match first_difference(&a, &b) {
                None => return a,
                Some(d) => last = d,
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    let rows = match converged {
        Ok(rows) => rows,
        Err(_) => panic!(
            "under `{rule}` the nodes did not converge within 90 s; first difference: {last}\n{}",
            bookkeeping(&pg, &maria).await
        ),
    };

    // Nothing echoes: marker rows crossing both ways carry any echo in flight ahead of them (each log
    // is ordered), and afterwards every other row is as it was.
    pg.connect("crm")
        .await
        .unwrap()
        .batch_execute("INSERT INTO items VALUES (1001, 0, 'marker')")
        .await
        .unwrap();
    let mut c = maria.connect("desk").await.unwrap();
    c.query_drop("INSERT INTO items VALUES (1002, 0, 'marker')")
        .await
        .unwrap();
    c.disconnect().await.unwrap();
    wait_for(
        "both markers on both nodes",
        Duration::from_secs(30),
        || async {
            let (a, b) = (pg_rows(&pg).await, maria_rows(&maria).await);
            (a.contains_key(&1001)
                && a.contains_key(&1002)
                && b.contains_key(&1001)
                && b.contains_key(&1002))
            .then_some(())
        },
    )
    .await;
    let mut after = pg_rows(&pg).await;
    after.retain(|k, _| *k < 1000);
    assert_eq!(
        after, rows,
        "rows changed after convergence under `{rule}`: an echo"
    );
    let mut after = maria_rows(&maria).await;
    after.retain(|k, _| *k < 1000);
    assert_eq!(
        after, rows,
        "rows changed after convergence under `{rule}`: an echo"
    );

    let pid = tandem.id().expect("pid");
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let status = tokio::time::timeout(Duration::from_secs(30), tandem.wait())
        .await
        .expect("stops")
        .unwrap();
    assert!(status.success(), "tandem run exited with {status}");
    std::fs::remove_file(&config).ok();
}

#[tokio::test]
async fn converge_last_write_wins() {
    converge_under("conflict = \"last_write_wins\"", false).await;
}

#[tokio::test]
async fn converge_prefer_a_node() {
    converge_under("conflict = \"prefer\"\nprefer = \"helpdesk\"", false).await;
}

#[tokio::test]
async fn converge_merge() {
    converge_under("conflict = \"merge\"", false).await;
}

#[tokio::test]
async fn converge_last_write_wins_with_deletes() {
    converge_under("conflict = \"last_write_wins\"", true).await;
}

#[tokio::test]
async fn converge_prefer_a_node_with_deletes() {
    converge_under("conflict = \"prefer\"\nprefer = \"helpdesk\"", true).await;
}

/// Starts `tandem tail` for `node` writing to `DIR/<node>.jsonl`, and waits until it reads the log.
async fn start_trace(
    config: &std::path::Path,
    node: &str,
    dir: &std::path::Path,
) -> tokio::process::Child {
    use tokio::io::AsyncBufReadExt;
    let out = std::fs::File::create(dir.join(format!("{node}.jsonl"))).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["tail", "--node", node, "--config"])
        .arg(config)
        .env("TANDEM_LOG", "info")
        .stdout(out)
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stderr = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let started = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = stderr.next_line().await {
            if line.contains("tail started") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(started, Ok(true), "the trace tail of {node} did not start");
    tokio::spawn(async move { while let Ok(Some(_)) = stderr.next_line().await {} });
    child
}

/// The dead letters and conflicts of both nodes, for a failure message.
async fn bookkeeping(pg: &PgServer, maria: &MariaDb) -> String {
    let mut out = String::new();
    let c = pg.connect("crm").await.unwrap();
    for r in c
        .query(
            "SELECT link, error, payload::text FROM tandem.dead_letter",
            &[],
        )
        .await
        .unwrap()
    {
        out += &format!(
            "crm dead letter: {} {} {}\n",
            r.get::<_, String>(0),
            r.get::<_, String>(1),
            r.get::<_, String>(2)
        );
    }
    for r in c
        .query(
            "SELECT kind, decision, row_key, state FROM tandem.conflict ORDER BY id",
            &[],
        )
        .await
        .unwrap()
    {
        out += &format!(
            "crm conflict: {} {} {} {}\n",
            r.get::<_, String>(0),
            r.get::<_, String>(1),
            r.get::<_, String>(2),
            r.get::<_, String>(3)
        );
    }
    let mut m = maria.connect("desk").await.unwrap();
    let dead: Vec<(String, String, String)> = m
        .query("SELECT link, error, payload FROM tandem.dead_letter")
        .await
        .unwrap();
    for (l, e, p) in dead {
        out += &format!("helpdesk dead letter: {l} {e} {p}\n");
    }
    let conflicts: Vec<(String, String, String, String)> = m
        .query("SELECT kind, decision, row_key, state FROM tandem.conflict ORDER BY id")
        .await
        .unwrap();
    for (k, d, key, s) in conflicts {
        out += &format!("helpdesk conflict: {k} {d} {key} {s}\n");
    }
    m.disconnect().await.unwrap();
    out
}
