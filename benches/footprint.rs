//! What `tandem setup` costs the application's own writes: the same writes on a plain table and on a
//! table setup prepared (origin and version columns, stamping and tombstone triggers, REPLICA
//! IDENTITY FULL on PostgreSQL, publication and slots), in one run, against throwaway servers the
//! harness starts (fsync off). tandem itself is not running: only what setup installed is measured.
//!
//! Workloads, each on the plain table and then on the set-up one: one `INSERT … SELECT` of
//! `TANDEM_BENCH_BULK` rows (default 200,000); `TANDEM_BENCH_ROWS` (default 20,000) one-row inserts,
//! updates and deletes from one client, each its own transaction. PostgreSQL also reports WAL bytes
//! per updated row (`pg_current_wal_lsn()` before and after the updates).
//!
//! Run: `cargo bench --bench footprint`. Compare the ratios, not the absolute times: the machine is
//! shared and noisy, the ratios within one run hold.

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use tandem::config::Config;
use tandem::harness::{MariaDb, PgServer};

const DDL: &str =
    "CREATE TABLE {t} (id BIGINT PRIMARY KEY, name VARCHAR(64), qty INT, price NUMERIC(12,2))";

fn env_count(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The statements of one workload, per engine (`{t}` is the table, `{i}` the row number).
struct Workload {
    name: &'static str,
    /// `None`: one bulk statement; `Some(sql)`: one statement per row.
    per_row: Option<&'static str>,
}

const BULK_PG: &str =
    "INSERT INTO {t} SELECT g, 'item ' || g, g % 100, 19.99 FROM generate_series(1, {n}) g";
const BULK_MY: &str = "INSERT INTO {t} (id, name, qty, price) SELECT seq, CONCAT('item ', seq), seq % 100, 19.99 FROM seq_1_to_{n}";
const ONE_ROW: [Workload; 3] = [
    Workload {
        name: "one-row inserts",
        per_row: Some("INSERT INTO {t} (id, name, qty, price) VALUES ({i}, 'row {i}', 1, 2.50)"),
    },
    Workload {
        name: "one-row updates",
        per_row: Some("UPDATE {t} SET qty = qty + 1 WHERE id = {i}"),
    },
    Workload {
        name: "one-row deletes",
        per_row: Some("DELETE FROM {t} WHERE id = {i}"),
    },
];

/// A connection to one engine, running text statements.
enum Client {
    Pg(tokio_postgres::Client),
    My(mysql_async::Conn),
}

impl Client {
    async fn exec(&mut self, sql: &str) -> Result<(), String> {
        match self {
            Client::Pg(c) => c
                .batch_execute(sql)
                .await
                .map_err(|e| format!("{sql}: {e}")),
            Client::My(c) => c.query_drop(sql).await.map_err(|e| format!("{sql}: {e}")),
        }
    }

    async fn wal_lsn(&mut self) -> Result<Option<i64>, String> {
        match self {
            Client::Pg(c) => c
                .query_one("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint", &[])
                .await
                .map(|r| Some(r.get(0)))
                .map_err(|e| e.to_string()),
            Client::My(_) => Ok(None),
        }
    }
}

/// The result of one workload on one table.
struct Timing {
    elapsed: Duration,
    wal_per_row: Option<f64>,
}

async fn run_workload(
    c: &mut Client,
    table: &str,
    bulk: &str,
    w: Option<&Workload>,
    bulk_rows: u64,
    rows: u64,
) -> Result<Timing, String> {
    let start_lsn = c.wal_lsn().await?;
    let began = Instant::now();
    match w.and_then(|w| w.per_row) {
        None => {
            let sql = bulk
                .replace("{t}", table)
                .replace("{n}", &bulk_rows.to_string());
            c.exec(&sql).await?;
        }
        Some(stmt) => {
            // Rows above the bulk load's ids, so inserts never collide and updates/deletes find them.
            for i in 0..rows {
                let id = bulk_rows + 1 + i;
                c.exec(&stmt.replace("{t}", table).replace("{i}", &id.to_string()))
                    .await?;
            }
        }
    }
    let elapsed = began.elapsed();
    let end_lsn = c.wal_lsn().await?;
    let count = if w.is_some() { rows } else { bulk_rows };
    let wal_per_row = match (start_lsn, end_lsn) {
        (Some(a), Some(b)) => Some((b - a) as f64 / count as f64),
        _ => None,
    };
    Ok(Timing {
        elapsed,
        wal_per_row,
    })
}

/// A config naming `node` (the real server, table `setup_table`) and a peer that is never contacted.
fn config(node_url: &str, peer_url: &str, setup_table: &str) -> Result<Config, String> {
    let text = format!(
        "[nodes.a]\nurl = \"{node_url}\"\n[nodes.b]\nurl = \"{peer_url}\"\n\
         [[tables]]\nname = \"item\"\nkey = [\"id\"]\non = {{ a = \"{setup_table}\", b = \"x.item\" }}\n"
    );
    Config::from_str_with_env(&text, "footprint.toml", &|_| None)
        .map(|(c, _)| c)
        .map_err(|e| format!("{:?}", e.problems))
}

async fn engine(name: &str, mut c: Client, config: Config, bulk: &str) -> Result<(), String> {
    let (bulk_rows, rows) = (
        env_count("TANDEM_BENCH_BULK", 200_000),
        env_count("TANDEM_BENCH_ROWS", 20_000),
    );
    for t in ["item_plain", "item_setup"] {
        c.exec(&DDL.replace("{t}", t)).await?;
    }
    let node = config.node("a").ok_or("no node a")?.clone();
    tandem::setup::setup_node(&config, &node, false).await?;
    println!("{name}: {bulk_rows}-row INSERT … SELECT; {rows} one-row statements each");
    println!(
        "  {:<18} {:>10} {:>10} {:>7} {:>14}",
        "workload", "plain", "set up", "ratio", "WAL B/row"
    );
    let workloads: Vec<(&str, Option<&Workload>)> = std::iter::once(("bulk insert", None))
        .chain(ONE_ROW.iter().map(|w| (w.name, Some(w))))
        .collect();
    for (label, w) in workloads {
        let plain = run_workload(&mut c, "item_plain", bulk, w, bulk_rows, rows).await?;
        let set_up = run_workload(&mut c, "item_setup", bulk, w, bulk_rows, rows).await?;
        let wal = match (plain.wal_per_row, set_up.wal_per_row) {
            (Some(a), Some(b)) => format!("{a:.0} -> {b:.0} ({:.2}x)", b / a),
            _ => "-".into(),
        };
        println!(
            "  {label:<18} {:>9.2}s {:>9.2}s {:>6.2}x {wal:>14}",
            plain.elapsed.as_secs_f64(),
            set_up.elapsed.as_secs_f64(),
            set_up.elapsed.as_secs_f64() / plain.elapsed.as_secs_f64()
        );
    }
    Ok(())
}

async fn bench() -> Result<(), String> {
    let pg = PgServer::start().await.map_err(|e| e.to_string())?;
    pg.create_database("bench")
        .await
        .map_err(|e| e.to_string())?;
    let client = pg.connect("bench").await.map_err(|e| e.to_string())?;
    let cfg = config(
        &pg.url("bench"),
        "mysql://root@127.0.0.1:9/x",
        "public.item_setup",
    )?;
    engine("PostgreSQL", Client::Pg(client), cfg, BULK_PG).await?;
    drop(pg);

    let maria = MariaDb::start().await.map_err(|e| e.to_string())?;
    maria
        .create_database("bench")
        .await
        .map_err(|e| e.to_string())?;
    let conn = maria.connect("bench").await.map_err(|e| e.to_string())?;
    let cfg = config(
        &maria.url("bench"),
        "postgres://postgres@127.0.0.1:9/x",
        "bench.item_setup",
    )?;
    engine("MariaDB", Client::My(conn), cfg, BULK_MY).await
}

fn main() {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(bench()) {
        eprintln!("benchmark failed: {e}");
        std::process::exit(1);
    }
}
