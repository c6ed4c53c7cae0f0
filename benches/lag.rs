//! Two-way lag: PostgreSQL <-> MariaDB through one `tandem run` (both links), under a steady load of
//! one-row insert transactions offered at a fixed rate each way at once, on throwaway servers the
//! harness starts (fsync off). Rates `TANDEM_BENCH_RATES` (default `1000,4000` transactions per second
//! each way), each for `TANDEM_BENCH_SECONDS` (default 60), one after the other on the same tables.
//!
//! Lag per row = arrival time minus source commit time, both read from the same machine clock by the
//! two servers (no skew), in microseconds since the epoch:
//! - the source stamps `created_us` at insert (column default: PostgreSQL `clock_timestamp()`,
//!   MariaDB `SYSDATE(6)`; the insert is its own transaction, so this is the commit time less the
//!   commit itself); tandem carries it to the target like any column;
//! - the target stamps `arrived_us` by its own default when tandem's apply inserts the row (the same
//!   expressions); the table's `exclude = ["arrived_us"]` keeps that column on its node, so tandem
//!   never sends it and the target's default fills it.
//!
//! The load: `TANDEM_BENCH_CLIENTS` connections each way (default 8) share one schedule, row `i` due
//! at `start + i / rate`; a client sleeps until its next row is due, and sends at once when behind.
//! "Offered rate reached" means every row was committed within 2% of the schedule's length. After the
//! load the benchmark waits until each target holds every row, then reads every row's lag from the
//! targets and prints p50, p99 and max per direction, and p99 over the rows created in the last 10 s
//! of the load (whether the lag is steady or growing). At the end both tables must hold every row of
//! both directions: count and checksum (`id|src|created_us`) equal on both sides, or the run fails.
//!
//! Run: `cargo bench --bench lag` (release build). Smoke test: `TANDEM_BENCH_SECONDS=3 cargo bench
//! --profile dev --bench lag`. The machine's load moves the numbers.

mod support;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use support::{
    connect, exited, mariadb_pid, my_connect, postmaster, Error, Meters, TandemRun, Tool,
};
use tandem::harness::{MariaDb, PgOptions, PgServer};
use tokio_postgres::Client;

const PG_DDL: &str = "CREATE TABLE events (id bigint PRIMARY KEY, src varchar(8) NOT NULL, \
    created_us bigint NOT NULL DEFAULT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint, \
    arrived_us bigint DEFAULT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint)";
const MY_DDL: &str = "CREATE TABLE events (id BIGINT PRIMARY KEY, src VARCHAR(8) NOT NULL, \
    created_us BIGINT NOT NULL DEFAULT (UNIX_TIMESTAMP(SYSDATE(6)) * 1000000), \
    arrived_us BIGINT DEFAULT (UNIX_TIMESTAMP(SYSDATE(6)) * 1000000))";

/// Count and sum of the first 60 bits of each row's md5 (business columns), as text.
const PG_CHECKSUM: &str = "SELECT count(*)::text || ' ' || coalesce(sum(('x' || substr(md5(concat_ws('|', id, src, created_us)), 1, 15))::bit(60)::bigint), 0)::text FROM events";
const MY_CHECKSUM: &str = "SELECT CONCAT(COUNT(*), ' ', COALESCE(SUM(CAST(CONV(SUBSTRING(MD5(CONCAT_WS('|', id, src, created_us)), 1, 15), 16, 10) AS UNSIGNED)), 0)) FROM events";

/// Row ids: run `r` uses `r * RUN_SPAN + 1 …` from PostgreSQL and `… + HALF_SPAN` from MariaDB.
const RUN_SPAN: i64 = 10_000_000_000;
const HALF_SPAN: i64 = 5_000_000_000;

/// How long a direction may take to drain after the load before the run fails.
const DRAIN: Duration = Duration::from_secs(1800);

/// The two databases, with the URLs the load clients connect to.
struct Nodes {
    pg: Client,
    my: mysql_async::Conn,
    pg_url: String,
    my_url: String,
    tandem: u32,
    /// The PostgreSQL postmaster and the MariaDB server, for their CPU time.
    pg_pid: u32,
    my_pid: u32,
}

impl Nodes {
    /// Rows with ids in `lo..=hi` on PostgreSQL (`on_pg`) or MariaDB.
    async fn count(&mut self, on_pg: bool, lo: i64, hi: i64) -> Result<i64, Error> {
        if on_pg {
            Ok(self
                .pg
                .query_one(
                    "SELECT count(*) FROM events WHERE id BETWEEN $1 AND $2",
                    &[&lo, &hi],
                )
                .await?
                .get(0))
        } else {
            Ok(self
                .my
                .exec_first(
                    "SELECT COUNT(*) FROM events WHERE id BETWEEN ? AND ?",
                    (lo, hi),
                )
                .await?
                .unwrap_or(0))
        }
    }

    /// Waits until the node holds `want` rows with ids in `lo..=hi`.
    async fn wait_rows(
        &mut self,
        on_pg: bool,
        lo: i64,
        hi: i64,
        want: i64,
        what: &str,
    ) -> Result<(), Error> {
        let start = Instant::now();
        loop {
            let have = self.count(on_pg, lo, hi).await?;
            if have >= want {
                return Ok(());
            }
            if exited(self.tandem) {
                return Err(format!("{what}: tandem run exited ({have} of {want} rows)").into());
            }
            if start.elapsed() > DRAIN {
                return Err(
                    format!("{what}: {have} of {want} rows after {} s", DRAIN.as_secs()).into(),
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `(created_us, arrived_us - created_us)` of the rows with ids in `lo..=hi`.
    async fn lags(&mut self, on_pg: bool, lo: i64, hi: i64) -> Result<Vec<(i64, i64)>, Error> {
        if on_pg {
            Ok(self
                .pg
                .query(
                    "SELECT created_us, arrived_us - created_us FROM events WHERE id BETWEEN $1 AND $2",
                    &[&lo, &hi],
                )
                .await?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect())
        } else {
            Ok(self
                .my
                .exec(
                    "SELECT created_us, arrived_us - created_us FROM events WHERE id BETWEEN ? AND ?",
                    (lo, hi),
                )
                .await?)
        }
    }
}

/// What one direction's load did: rows sent, and when the last one committed after the start.
struct Load {
    rows: i64,
    took: Duration,
    /// The PostgreSQL clients, kept open until the servers' CPU time is read (an exited backend's
    /// time is not counted).
    _open: Vec<Client>,
}

/// Sends `total` one-row insert transactions with ids `base..`, paced at `rate` per second from
/// `start`, over `clients` connections to PostgreSQL (`pg`) or MariaDB.
async fn load(
    pg: bool,
    url: &str,
    clients: usize,
    rate: f64,
    total: i64,
    base: i64,
    start: Instant,
) -> Result<Load, Error> {
    let next = Arc::new(AtomicI64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let next = next.clone();
        let due = move |i: i64| {
            tokio::time::Instant::from_std(start + Duration::from_secs_f64(i as f64 / rate))
        };
        if pg {
            let client = connect(url).await?;
            let insert = client
                .prepare("INSERT INTO events (id, src) VALUES ($1, 'crm')")
                .await?;
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        return Ok::<_, Error>((Instant::now(), Some(client)));
                    }
                    tokio::time::sleep_until(due(i)).await;
                    client.execute(&insert, &[&(base + i)]).await?;
                }
            }));
        } else {
            let mut conn = my_connect(url).await?;
            let insert = conn
                .prep("INSERT INTO events (id, src) VALUES (?, 'desk')")
                .await?;
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        let end = Instant::now();
                        conn.disconnect().await?;
                        return Ok::<_, Error>((end, None));
                    }
                    tokio::time::sleep_until(due(i)).await;
                    conn.exec_drop(&insert, (base + i,)).await?;
                }
            }));
        }
    }
    let (mut end, mut open) = (start, Vec::new());
    for t in tasks {
        let (done, client) = t.await??;
        end = end.max(done);
        open.extend(client);
    }
    Ok(Load {
        rows: total,
        took: end.saturating_duration_since(start),
        _open: open,
    })
}

/// p50, p99 and max of `values` (sorted here), in milliseconds.
fn percentiles(values: &mut [i64]) -> (f64, f64, f64) {
    if values.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    values.sort_unstable();
    let at = |q: f64| {
        let i = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1;
        values[i] as f64 / 1000.0
    };
    (at(0.5), at(0.99), values[values.len() - 1] as f64 / 1000.0)
}

async fn run_rate(
    nodes: &mut Nodes,
    r: i64,
    rate: f64,
    seconds: f64,
    clients: usize,
) -> Result<(), Error> {
    let total = ((rate * seconds).round() as i64).max(1);
    let (pg_base, my_base) = (r * RUN_SPAN + 1, r * RUN_SPAN + HALF_SPAN + 1);
    // CPU seconds of PostgreSQL (the postmaster and its children), MariaDB and tandem.
    let meters = Meters {
        source: nodes.pg_pid,
        target: nodes.my_pid,
        tool: Some(Tool::Pid(nodes.tandem)),
    };
    let cpu_start = meters.read();
    // Clients connect before the clock starts.
    let start = Instant::now() + Duration::from_millis(500);
    let (a, b) = tokio::join!(
        load(true, &nodes.pg_url, clients, rate, total, pg_base, start),
        load(false, &nodes.my_url, clients, rate, total, my_base, start)
    );
    let (to_my, to_pg) = (a?, b?);
    let load_end = Instant::now();
    let (pg_hi, my_hi) = (pg_base + total - 1, my_base + total - 1);
    nodes
        .wait_rows(false, pg_base, pg_hi, total, "PostgreSQL -> MariaDB")
        .await?;
    let drain_my = load_end.elapsed();
    nodes
        .wait_rows(true, my_base, my_hi, total, "MariaDB -> PostgreSQL")
        .await?;
    let drain_pg = load_end.elapsed();
    let used = meters.since(cpu_start);
    println!(
        "  {rate:.0} txn/s each way for {seconds:.0} s ({total} rows each way, {clients} clients each):"
    );
    for (name, on_pg, lo, hi, sent, drain) in [
        (
            "PostgreSQL -> MariaDB",
            false,
            pg_base,
            pg_hi,
            &to_my,
            drain_my,
        ),
        (
            "MariaDB -> PostgreSQL",
            true,
            my_base,
            my_hi,
            &to_pg,
            drain_pg,
        ),
    ] {
        let rows = nodes.lags(on_pg, lo, hi).await?;
        let last_created = rows.iter().map(|(c, _)| *c).max().unwrap_or(0);
        let mut all: Vec<i64> = rows.iter().map(|(_, l)| *l).collect();
        let mut tail: Vec<i64> = rows
            .iter()
            .filter(|(c, _)| *c >= last_created - 10_000_000)
            .map(|(_, l)| *l)
            .collect();
        let (p50, p99, max) = percentiles(&mut all);
        let (_, tail_p99, _) = percentiles(&mut tail);
        let achieved = sent.rows as f64 / sent.took.as_secs_f64().max(1e-9);
        let reached = sent.took.as_secs_f64() <= seconds * 1.02;
        println!(
            "    {name:<22} lag p50 {p50:>9.1} ms  p99 {p99:>9.1} ms  max {max:>9.1} ms  (p99 of the last 10 s {tail_p99:.1} ms); \
             offered {rate:.0} txn/s, sent {achieved:.0} txn/s: {}; all rows on the target {:.1} s after the load ended",
            if reached { "reached" } else { "NOT reached" },
            drain.as_secs_f64()
        );
    }
    println!(
        "    CPU s: PostgreSQL {:.1}, MariaDB {:.1}, tandem {:.1}",
        used[0], used[1], used[2]
    );
    Ok(())
}

async fn run() -> Result<(), Error> {
    let env = |k: &str| std::env::var(k).ok();
    let seconds: f64 = env("TANDEM_BENCH_SECONDS")
        .and_then(|v| v.parse().ok())
        .unwrap_or(60.0);
    let clients: usize = env("TANDEM_BENCH_CLIENTS")
        .and_then(|v| v.parse().ok())
        .unwrap_or(8)
        .max(1);
    let rates: Vec<f64> = env("TANDEM_BENCH_RATES")
        .unwrap_or_else(|| "1000,4000".into())
        .split(',')
        .map(|r| r.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("TANDEM_BENCH_RATES: {e}"))?;
    if rates.iter().any(|r| *r <= 0.0) || seconds <= 0.0 {
        return Err("TANDEM_BENCH_RATES and TANDEM_BENCH_SECONDS must be positive".into());
    }
    let options = PgOptions {
        settings: vec![("logical_decoding_work_mem".into(), "64MB".into())],
        ..PgOptions::default()
    };
    let (pg, maria) = tokio::join!(PgServer::start_with(options), MariaDb::start());
    let (pg, maria) = (pg?, maria?);
    pg.create_database("crm").await?;
    maria.create_database("desk").await?;
    let pgc = connect(&pg.url("crm")).await?;
    pgc.batch_execute(PG_DDL).await?;
    let mut my = maria.connect("desk").await?;
    my.query_drop(MY_DDL).await?;
    let version: String = my
        .query_first("SELECT VERSION()")
        .await?
        .unwrap_or_default();

    let run = TandemRun::start(
        "lag",
        &format!(
            "[nodes.crm]\nurl = \"{}\"\n[nodes.desk]\nurl = \"{}\"\n\
             [[tables]]\nname = \"events\"\nkey = [\"id\"]\nexclude = [\"arrived_us\"]\n",
            pg.url("crm"),
            maria.url("desk")
        ),
    )
    .await?;
    let pid = run.pid;
    let rss = support::PeakRss::start(pid);
    let mut nodes = Nodes {
        pg: pgc,
        my,
        pg_url: pg.url("crm"),
        my_url: maria.url("desk"),
        tandem: pid,
        pg_pid: postmaster(&pg)?,
        my_pid: mariadb_pid(&maria)?,
    };
    println!(
        "lag: PostgreSQL {} <-> MariaDB {version} (harness servers, fsync off), {} build of tandem, \
         one-row insert transactions offered at {:?} txn/s each way, {seconds} s each",
        pg.version(),
        support::build(),
        rates
    );
    let result = async {
        // Not measured: one row each way, so that both links are known to deliver.
        nodes
            .pg
            .execute("INSERT INTO events (id, src) VALUES (1, 'crm')", &[])
            .await?;
        nodes
            .my
            .query_drop("INSERT INTO events (id, src) VALUES (2, 'desk')")
            .await?;
        nodes.wait_rows(false, 1, 1, 1, "warm-up").await?;
        nodes.wait_rows(true, 2, 2, 1, "warm-up").await?;
        let mut expected = 2;
        for (i, rate) in rates.iter().enumerate() {
            let r = i as i64 + 1;
            run_rate(&mut nodes, r, *rate, seconds, clients).await?;
            expected += 2 * ((rate * seconds).round() as i64).max(1);
        }
        let a: String = nodes.pg.query_one(PG_CHECKSUM, &[]).await?.get(0);
        let b: String = nodes
            .my
            .query_first(MY_CHECKSUM)
            .await?
            .ok_or("the MariaDB checksum returned no row")?;
        let count: i64 = a
            .split(' ')
            .next()
            .and_then(|c| c.parse().ok())
            .ok_or("the PostgreSQL checksum has no count")?;
        if a != b || count != expected {
            return Err::<(), Error>(
                format!(
                    "the tables differ (count, checksum): PostgreSQL {a}, MariaDB {b}; {expected} rows expected"
                )
                .into(),
            );
        }
        Ok(())
    }
    .await;
    rss.stop();
    run.stop().await?;
    result?;
    println!(
        "  tandem run peak RSS {:.1} MiB; both tables hold every row of both directions (count and checksum equal)",
        rss.kib() as f64 / 1024.0
    );
    Ok(())
}

fn main() {
    support::main("lag bench", "lag bench failed", run());
}
