//! End to end against the tool a user would otherwise pick: PostgreSQL -> PostgreSQL with native
//! publication/subscription, then with tandem, on the same two throwaway servers (the harness's,
//! fsync off), one after the other in one run, each in fresh databases.
//!
//! Workloads (issue #15), each timed from the first source statement until the target holds the
//! result:
//! 1. bulk: one transaction of `TANDEM_BENCH_ROWS` rows (default 200,000), `INSERT … SELECT
//!    generate_series`;
//! 2. singles: 20,000 one-row insert transactions from one client;
//! 3. updates: 8 clients x 2,500 one-row updates (autocommit) on the first 100,000 rows.
//!
//! "The target holds the result" is observed without scanning the table: after each workload the
//! client commits one row into a small `mark` table that both tools replicate in commit order, and
//! the clock stops when that row is on the target. At the end every row of both tables is compared
//! (a checksum of all rows on each side); a difference fails the run. Peak RSS of `tandem run` is
//! sampled from `/proc` every 20 ms. Each figure line also gives the source's own time (until its
//! last commit returned) and the whole run's, for native and tandem, and the ceiling that puts on
//! the ratio: no replicator delivers before the source's last commit, so native's whole run over
//! tandem's source time is the most tandem's ratio could be in that run. The workloads themselves
//! are in `support/pg_source.rs`.
//!
//! Run: `cargo bench --bench replicate` (release build). `TANDEM_BENCH_SCALE` divides the three
//! workloads (CI runs `TANDEM_BENCH_SCALE=100` as a smoke test). The machine's load moves absolute
//! numbers; the ratios of one run are what to compare. `PG_BIN` picks the servers' PostgreSQL (the
//! harness's rule); `TANDEM_BENCH_FORWARD_REPLICATED=false` sets `forward_replicated = false` on
//! both nodes.

mod support;

use std::time::{Duration, Instant};

use support::pg_source::{self, PgMarks};
use support::{connect, postmaster, Error, Figures, Meters, Sizes, TandemRun, Tool};
use tandem::harness::{PgOptions, PgServer};

const DDL: &str =
    "CREATE TABLE items (id bigint PRIMARY KEY, name text, qty int, price numeric(12,2));
    CREATE TABLE mark (id int PRIMARY KEY)";

/// The checksum of a table's business columns, in key order.
const CHECKSUM: &str = "SELECT count(*)::text || ' ' || coalesce(md5(string_agg(concat_ws('|', id, name, qty, price), ',' ORDER BY id)), '') FROM items";

/// Runs the three workloads (`support::pg_source`) from `src_url`, waiting on `dst_url`, then
/// compares every row of both sides.
async fn workloads(
    src_url: &str,
    dst_url: &str,
    sizes: &Sizes,
    what: &str,
    meters: Meters,
) -> Result<Figures, Error> {
    let dst = connect(dst_url).await?;
    let f = pg_source::workloads(src_url, &mut PgMarks(&dst), sizes, what, &meters).await?;
    let (a, b) = (
        connect(src_url)
            .await?
            .query_one(CHECKSUM, &[])
            .await?
            .get::<_, String>(0),
        dst.query_one(CHECKSUM, &[]).await?.get::<_, String>(0),
    );
    if a != b {
        return Err(format!("{what}: the target differs from the source: {a} against {b}").into());
    }
    Ok(f)
}

async fn fresh_databases(
    a: &PgServer,
    b: &PgServer,
    name: &str,
) -> Result<(String, String), Error> {
    a.create_database(&format!("{name}_src")).await?;
    b.create_database(&format!("{name}_dst")).await?;
    let (src_url, dst_url) = (a.url(&format!("{name}_src")), b.url(&format!("{name}_dst")));
    connect(&src_url).await?.batch_execute(DDL).await?;
    connect(&dst_url).await?.batch_execute(DDL).await?;
    Ok((src_url, dst_url))
}

async fn native(a: &PgServer, b: &PgServer, sizes: &Sizes) -> Result<Figures, Error> {
    let (src_url, dst_url) = fresh_databases(a, b, "native").await?;
    connect(&src_url)
        .await?
        .batch_execute("CREATE PUBLICATION bench FOR TABLE items, mark")
        .await?;
    let dst = connect(&dst_url).await?;
    dst.batch_execute(&format!(
        "CREATE SUBSCRIPTION bench CONNECTION 'host=127.0.0.1 port={} dbname=native_src user=postgres' PUBLICATION bench",
        a.port()
    ))
    .await?;
    let start = Instant::now();
    loop {
        let waiting: i64 = dst
            .query_one(
                "SELECT count(*) FROM pg_subscription_rel WHERE srsubstate <> 'r'",
                &[],
            )
            .await?
            .get(0);
        if waiting == 0 {
            break;
        }
        if start.elapsed() > Duration::from_secs(60) {
            return Err("the native subscription did not become ready".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let meters = Meters {
        source: postmaster(a)?,
        target: postmaster(b)?,
        tool: None,
    };
    let figures = workloads(&src_url, &dst_url, sizes, "native", meters).await?;
    dst.batch_execute("DROP SUBSCRIPTION bench").await?;
    Ok(figures)
}

async fn tandem(a: &PgServer, b: &PgServer, sizes: &Sizes) -> Result<(Figures, u64), Error> {
    let (src_url, dst_url) = fresh_databases(a, b, "tandem").await?;
    // `TANDEM_BENCH_FORWARD_REPLICATED=false`: both nodes say so (PostgreSQL 16+ servers then send
    // neither tandem's own transactions nor any other origin's).
    let fwd = match std::env::var("TANDEM_BENCH_FORWARD_REPLICATED").as_deref() {
        Ok("false") => "forward_replicated = false\n",
        _ => "",
    };
    let run = TandemRun::start(
        "replicate",
        &format!(
            "[nodes.a]\nurl = \"{src_url}\"\n{fwd}[nodes.b]\nurl = \"{dst_url}\"\n{fwd}\
             [[tables]]\nname = \"items\"\nkey = [\"id\"]\n[[tables]]\nname = \"mark\"\nkey = [\"id\"]\n"
        ),
    )
    .await?;
    let rss = support::PeakRss::start(run.pid);
    let meters = Meters {
        source: postmaster(a)?,
        target: postmaster(b)?,
        tool: Some(Tool::Pid(run.pid)),
    };
    let figures = workloads(&src_url, &dst_url, sizes, "tandem", meters).await;
    rss.stop();
    run.stop().await?;
    Ok((figures?, rss.kib()))
}

async fn run() -> Result<(), Error> {
    let sizes = Sizes::from_env();
    // The server default for logical_decoding_work_mem (the harness lowers it to exercise spilling).
    let statements = std::env::var("TANDEM_BENCH_STATEMENTS").is_ok_and(|v| v == "1");
    let options = || {
        let mut settings = vec![("logical_decoding_work_mem".into(), "64MB".into())];
        if statements {
            settings.extend([
                (
                    "shared_preload_libraries".into(),
                    "pg_stat_statements".into(),
                ),
                ("pg_stat_statements.track_planning".into(), "on".into()),
            ]);
        }
        PgOptions {
            settings,
            ..PgOptions::default()
        }
    };
    let (a, b) = tokio::join!(
        PgServer::start_with(options()),
        PgServer::start_with(options())
    );
    let (a, b) = (a?, b?);
    println!(
        "replicate: PostgreSQL {} -> PostgreSQL {} (harness servers, fsync off), {} build of tandem; \
         bulk {} rows in one transaction, {} one-row insert transactions, {} clients x {} one-row updates on {} rows",
        a.version(),
        b.version(),
        support::build(),
        sizes.bulk,
        sizes.singles,
        sizes.clients,
        sizes.updates_each,
        sizes.updated_rows
    );
    let n = native(&a, &b, &sizes).await?;
    if statements {
        connect(&b.url("postgres"))
            .await?
            .batch_execute("CREATE EXTENSION pg_stat_statements; SELECT pg_stat_statements_reset()")
            .await?;
    }
    let (t, peak_kib) = tandem(&a, &b, &sizes).await?;
    if statements {
        // TANDEM_BENCH_STATEMENTS=1: where the target server spent its time on tandem's statements.
        let rows = connect(&b.url("postgres"))
            .await?
            .query(
                "SELECT calls, rows, round(total_plan_time)::text, round(total_exec_time)::text, \
                 left(regexp_replace(query, '\\s+', ' ', 'g'), 160) FROM pg_stat_statements \
                 ORDER BY total_plan_time + total_exec_time DESC LIMIT 15",
                &[],
            )
            .await?;
        println!("  target server, tandem's statements (calls, rows, plan ms, exec ms, text):");
        for r in rows {
            println!(
                "    {:>7} {:>8} {:>6} {:>6}  {}",
                r.get::<_, i64>(0),
                r.get::<_, i64>(1),
                r.get::<_, String>(2),
                r.get::<_, String>(3),
                r.get::<_, String>(4)
            );
        }
    }
    let line = |i: usize, what: &str, unit: &str, native: f64, tandem: f64| {
        let (nc, tc) = (n.cpu[i], t.cpu[i]);
        println!(
            "  {what:<28} native {native:>8.0} {unit}   tandem {tandem:>8.0} {unit}   ratio {:.2}x   \
             CPU s source/target: native {:.1}/{:.1}, tandem {:.1}/{:.1} + tandem {:.1}",
            tandem / native,
            nc[0],
            nc[1],
            tc[0],
            tc[1],
            tc[2]
        );
        println!(
            "  {:<28} {} (native / tandem)",
            "",
            support::bound(i, &n, &t)
        );
    };
    line(0, "bulk, one transaction", "rows/s", n.bulk, t.bulk);
    line(
        1,
        "one-row insert transactions",
        "txn/s",
        n.singles,
        t.singles,
    );
    line(
        2,
        "one-row updates, 8 clients",
        "txn/s",
        n.updates,
        t.updates,
    );
    println!(
        "  tandem run peak RSS {:.1} MiB; every row equal on both sides for both tools",
        peak_kib as f64 / 1024.0
    );
    Ok(())
}

fn main() {
    support::main("replicate bench", "replicate bench failed", run());
}
