//! Peak memory of `tandem run` while one large source transaction crosses: PostgreSQL -> MariaDB and
//! MariaDB -> PostgreSQL, each a single `INSERT … SELECT` of `TANDEM_BENCH_ROWS` rows (default
//! 200,000), against throwaway servers the harness starts (fsync off), with the file's default
//! `memory_budget_mib` unless `TANDEM_BENCH_BUDGET_MIB` is set. The resident set of the tandem
//! process is sampled every 50 ms from `/proc/<pid>/status` (`VmRSS`; `VmHWM` at the end), from
//! the statement's start until the target holds every row.
//!
//! Run: `cargo bench --bench memory` (release build; the binary is the package's `tandem`), e.g.
//! `TANDEM_BENCH_ROWS=2000000 cargo bench --bench memory`. Memory does not depend on the machine's
//! load the way time does; the time printed is for orientation only.

mod support;

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use support::{status_kib, Error, TandemRun};
use tandem::harness::{MariaDb, PgServer};

const PG_DDL: &str =
    "CREATE TABLE items (id bigint PRIMARY KEY, name text, qty int, price numeric(12,2))";
const MY_DDL: &str =
    "CREATE TABLE items (id BIGINT PRIMARY KEY, name VARCHAR(64), qty INT, price DECIMAL(12,2))";

/// `(VmRSS, VmHWM)` of `pid`, in KiB.
fn rss(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some((
        status_kib(&status, "VmRSS:")?,
        status_kib(&status, "VmHWM:")?,
    ))
}

async fn pg_count(pg: &tokio_postgres::Client) -> Result<i64, Error> {
    Ok(pg
        .query_one("SELECT count(*) FROM items", &[])
        .await?
        .get(0))
}

async fn my_count(my: &mut mysql_async::Conn) -> Result<i64, Error> {
    Ok(my
        .query_first("SELECT COUNT(*) FROM items")
        .await?
        .unwrap_or(0))
}

struct Case {
    name: &'static str,
    seconds: f64,
    peak_kib: u64,
    hwm_kib: u64,
}

/// One direction: the insert on the source, then sampling until the target count reaches `rows`.
async fn measure(
    name: &'static str,
    rows: i64,
    pid: u32,
    pg: &tokio_postgres::Client,
    my: &mut mysql_async::Conn,
    offset: i64,
) -> Result<Case, Error> {
    let start = Instant::now();
    let (first, last) = (offset + 1, offset + rows);
    let mut peak = 0;
    if name.starts_with("PostgreSQL") {
        pg.batch_execute(&format!(
            "INSERT INTO items SELECT g, 'name ' || g, g % 100, g * 1.5 FROM generate_series({first}, {last}) g"
        ))
        .await?;
    } else {
        my.query_drop(format!(
            "INSERT INTO items SELECT seq, CONCAT('name ', seq), seq % 100, seq * 1.5 FROM seq_{first}_to_{last}"
        ))
        .await?;
    }
    let want = offset + rows;
    loop {
        if let Some((now, _)) = rss(pid) {
            peak = peak.max(now);
        }
        let have = if name.starts_with("PostgreSQL") {
            my_count(my).await?
        } else {
            pg_count(pg).await?
        };
        if have >= want {
            break;
        }
        if start.elapsed() > Duration::from_secs(3600) {
            return Err(format!("{name}: {have} of {want} rows after an hour").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let hwm = rss(pid).map_or(0, |(_, h)| h);
    Ok(Case {
        name,
        seconds: start.elapsed().as_secs_f64(),
        peak_kib: peak,
        hwm_kib: hwm,
    })
}

async fn run() -> Result<(), Error> {
    let rows: i64 = std::env::var("TANDEM_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let budget = std::env::var("TANDEM_BENCH_BUDGET_MIB").ok();
    let (pg, maria) = tokio::join!(PgServer::start(), MariaDb::start());
    let (pg, maria) = (pg?, maria?);
    pg.create_database("crm").await?;
    maria.create_database("desk").await?;
    let pgc = pg.connect("crm").await?;
    pgc.batch_execute(PG_DDL).await?;
    let mut my = maria.connect("desk").await?;
    my.query_drop(MY_DDL).await?;
    let mut text = format!(
        "[nodes.crm]\nurl = \"{}\"\n[nodes.helpdesk]\nurl = \"{}\"\n[[tables]]\nname = \"items\"\nkey = [\"id\"]\n",
        pg.url("crm"),
        maria.url("desk")
    );
    if let Some(b) = &budget {
        text += &format!("[tandem]\nmemory_budget_mib = {b}\n");
    }
    let run = TandemRun::start("memory", &text).await?;
    let pid = run.pid;
    let idle = rss(pid).map_or(0, |(r, _)| r);
    let mut cases = Vec::new();
    cases.push(measure("PostgreSQL -> MariaDB", rows, pid, &pgc, &mut my, 0).await?);
    cases.push(measure("MariaDB -> PostgreSQL", rows, pid, &pgc, &mut my, rows).await?);
    run.stop().await?;
    println!(
        "memory: one {rows}-row transaction each way, memory_budget_mib = {}, tandem run idle RSS {:.1} MiB",
        budget.as_deref().unwrap_or("default"),
        idle as f64 / 1024.0
    );
    for c in &cases {
        println!(
            "  {:<24} peak RSS {:>6.1} MiB (VmHWM {:>6.1} MiB so far), {:>7.1} s",
            c.name,
            c.peak_kib as f64 / 1024.0,
            c.hwm_kib as f64 / 1024.0,
            c.seconds
        );
    }
    Ok(())
}

fn main() {
    support::main("memory bench", "memory bench failed", run());
}
