//! `tandem verify` over a large table: `TANDEM_BENCH_ROWS` rows (default 1,000,000) on a PostgreSQL
//! and a MariaDB node the harness starts (fsync off), the same rows on both except 10 deleted on
//! MariaDB, then the release binary's `tandem verify --format json` timed, with its peak resident
//! memory (`VmHWM` from `/proc/<pid>/status`, read every 20 ms until it exits; the mark only grows).
//!
//! Run: `cargo bench --bench verify` (the bench profile builds the binary in release). Loading the
//! rows is not timed. No `tandem setup` and no links: the settle step finds no streaming link and
//! does not wait, so this measures reading, merging and comparing.

mod support;

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use tandem::harness::{MariaDb, PgServer};

fn rows() -> u64 {
    std::env::var("TANDEM_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

#[tokio::main]
async fn main() {
    let n = rows();
    let (pg, maria) = tokio::join!(PgServer::start(), MariaDb::start());
    let (pg, maria) = (
        pg.expect("PostgreSQL starts"),
        maria.expect("MariaDB starts"),
    );
    pg.create_database("app").await.expect("database");
    maria.create_database("app").await.expect("database");
    let load = Instant::now();
    let c = pg.connect("app").await.expect("connect");
    c.batch_execute(&format!(
        "CREATE TABLE items (id bigint PRIMARY KEY, name varchar(64) NOT NULL, qty int NOT NULL, \
         price numeric(12,2) NOT NULL, status text NOT NULL); \
         INSERT INTO items SELECT g, 'item ' || g, g % 100, 19.99, CASE WHEN g % 3 = 0 THEN 'open' ELSE 'closed' END \
         FROM generate_series(1, {n}) g;"
    ))
    .await
    .expect("PostgreSQL rows");
    c.batch_execute("VACUUM ANALYZE items")
        .await
        .expect("VACUUM");
    let mut m = maria.connect("app").await.expect("connect");
    m.query_drop(
        "CREATE TABLE items (id BIGINT PRIMARY KEY, name VARCHAR(64) NOT NULL, qty INT NOT NULL, \
         price DECIMAL(12,2) NOT NULL, status_code TINYINT NOT NULL)",
    )
    .await
    .expect("MariaDB table");
    m.query_drop(format!(
        "INSERT INTO items SELECT seq, CONCAT('item ', seq), seq % 100, 19.99, IF(seq % 3 = 0, 1, 2) \
         FROM seq_1_to_{n}"
    ))
    .await
    .expect("MariaDB rows");
    m.query_drop("DELETE FROM items WHERE id % 100003 = 7")
        .await
        .expect("drift");
    m.disconnect().await.expect("disconnect");
    println!(
        "loaded {n} rows per node in {:.1} s",
        load.elapsed().as_secs_f64()
    );

    let config =
        std::env::temp_dir().join(format!("tandem_bench_verify_{}.toml", std::process::id()));
    std::fs::write(
        &config,
        format!(
            "[nodes.crm]\nurl = \"{}\"\n[nodes.helpdesk]\nurl = \"{}\"\n\
             [[tables]]\nname = \"items\"\nkey = [\"id\"]\n\
             [[tables.columns]]\nname = \"status\"\non = {{ helpdesk = \"status_code\" }}\n\
             values = {{ helpdesk = {{ \"open\" = 1, \"closed\" = 2 }} }}\n",
            pg.url("app"),
            maria.url("app")
        ),
    )
    .expect("config");
    let started = Instant::now();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["verify", "--format", "json", "--config"])
        .arg(&config)
        .env("TANDEM_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start tandem verify");
    let pid = child.id().expect("pid");
    let mut peak = 0;
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = tokio::spawn(async move {
        let mut text = String::new();
        let _ = tokio::io::AsyncReadExt::read_to_string(&mut stdout, &mut text).await;
        text
    });
    let status = loop {
        if let Some(kib) = support::proc_kib(pid, "VmHWM:") {
            peak = peak.max(kib);
        }
        if let Ok(Some(status)) = child.try_wait() {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let elapsed = started.elapsed();
    let text = reader.await.expect("stdout");
    let report: serde_json::Value = serde_json::from_str(&text).expect("verify prints JSON");
    let _ = std::fs::remove_file(&config);
    let differences = report["differences"].as_array().map_or(0, Vec::len);
    let expected = (1..=n).filter(|i| i % 100_003 == 7).count();
    assert_eq!(
        differences, expected,
        "verify reports exactly the deleted rows: {}",
        report["tables"]
    );
    println!(
        "tandem verify, {n} rows per node (PostgreSQL and MariaDB, 5 columns, one value map): \
         {:.1} s, {:.0} rows/s, peak RSS {:.1} MiB, exit {:?}, {differences} differences, tables {}",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        peak as f64 / 1024.0,
        status.code(),
        report["tables"]
    );
}
